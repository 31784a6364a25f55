//! Approvals: GET /v1/state/approvals (steps waiting for an answer) and
//! POST /v1/approvals/{id} (the answer).

use axum::Json;
use axum::extract::Path;

use crate::St;
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::extract::Body;
use crate::wire::{ApprovalAnswer, ApprovalView, Decided};

/// GET /v1/state/approvals.
pub(super) async fn list_approvals(
    axum::extract::State(st): axum::extract::State<St>,
    p: Principal,
) -> ApiResult<Json<Vec<ApprovalView>>> {
    let mut v: Vec<ApprovalView> = st
        .approvals
        .lock()
        .map_err(|_| ApiError::internal("approval table unavailable; retry"))?
        .values()
        .filter(|a| a.org == p.org)
        .map(|a| a.view.clone())
        .collect();
    v.sort_by_key(|a| a.requested_ms);
    Ok(Json(v))
}

/// POST /v1/approvals/{id}. Beyond the route's permission, the step's risk decides which
/// roles may answer it.
pub(super) async fn decide(
    axum::extract::State(st): axum::extract::State<St>,
    p: Principal,
    Path(id): Path<String>,
    Body(ans): Body<ApprovalAnswer>,
) -> ApiResult<Json<Decided>> {
    crate::approve::answer(&st, &p, &id, ans.approve, ans.reason.as_deref())
        .await
        .map(Json)
}
