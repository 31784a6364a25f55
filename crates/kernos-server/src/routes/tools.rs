//! GET /v1/state/tools: the tool catalog, every tool and action with its effects.

use axum::Json;

use crate::St;

/// GET /v1/state/tools.
pub(super) async fn tools(
    axum::extract::State(st): axum::extract::State<St>,
) -> Json<Vec<kernos_core::ToolSpec>> {
    Json(st.engine.registry().tools())
}
