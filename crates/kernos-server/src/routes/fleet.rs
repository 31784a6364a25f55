//! GET /v1/fleet/nodes: the organisation's fleet as its nodes announced themselves.

use axum::Json;
use axum::extract::State;

use crate::St;
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::wire::{FleetNode, FleetNodes};

/// GET /v1/fleet/nodes. Another organisation's fleet is never listed: only the one this
/// daemon controls for the caller's own organisation.
pub(super) async fn nodes(State(st): State<St>, p: Principal) -> ApiResult<Json<FleetNodes>> {
    let controlled = st.fleet.controls(&p.org);
    let Some((ctl, rt)) = st.fleet.controller_for(&p.org) else {
        return Ok(Json(FleetNodes {
            controlled,
            connected: false,
            nodes: Vec::new(),
        }));
    };
    // The controller lives on the fleet's own runtime.
    let listed = rt
        .spawn(async move { ctl.nodes().await })
        .await
        .map_err(|e| ApiError::internal(format!("the fleet task failed: {e}; retry")))?
        .map_err(|e| ApiError::unavailable(format!("the broker did not answer: {e}"), 2))?;
    let now = kernos_fleet::wire::now_ms();
    let nodes = listed
        .into_iter()
        .map(|info| FleetNode {
            status: info.status(now),
            memory_used_pct: (info.facts.memory_used_pct() * 10.0).round() / 10.0,
            info,
        })
        .collect();
    Ok(Json(FleetNodes {
        controlled,
        connected: true,
        nodes,
    }))
}
