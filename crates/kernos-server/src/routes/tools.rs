//! GET /v1/state/tools: the tool catalog, every tool and action with its effects.

use axum::Json;

use crate::St;

/// GET /v1/state/tools: the catalog as the caller's organisation sees it (with its own
/// installed generated skills, `skill.<name>`, and no other organisation's).
pub(super) async fn tools(
    axum::extract::State(st): axum::extract::State<St>,
    p: crate::auth::Principal,
) -> Json<Vec<kernos_core::ToolSpec>> {
    Json(st.engine.registry_for(&p.org).tools())
}
