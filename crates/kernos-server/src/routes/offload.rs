//! Handlers whose work blocks (journaling at once, planning, starting threads) run it here, off
//! the async threads.

use crate::St;
use crate::error::{ApiError, ApiResult};

/// Runs `f` on a blocking thread.
pub(super) async fn blocking<T: Send + 'static>(
    st: &St,
    f: impl FnOnce(&St) -> ApiResult<T> + Send + 'static,
) -> ApiResult<T> {
    let st = st.clone();
    tokio::task::spawn_blocking(move || f(&st))
        .await
        .map_err(|e| ApiError::internal(format!("a blocking task failed: {e}; retry")))?
}
