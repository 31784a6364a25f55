//! Monitors: GET /v1/monitors. They watch the host, so only the host operator reads them.

use axum::Json;

use crate::St;
use crate::monitors::MonitorStatus;

/// GET /v1/monitors.
pub(super) async fn list(
    axum::extract::State(st): axum::extract::State<St>,
) -> Json<Vec<MonitorStatus>> {
    Json(st.monitors.list(&st))
}
