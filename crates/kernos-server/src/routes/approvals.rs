//! Approvals: GET /v1/state/approvals (steps waiting for an answer) and
//! POST /v1/approvals/{id} (the answer).

use axum::Json;
use axum::extract::Path;
use kernos_core::{ActionId, ApprovalId, NewEvent, TxId};
use serde_json::json;

use crate::St;
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::extract::Body;
use crate::wire::{ApprovalAnswer, ApprovalView, Decided};
use crate::worker::Answer;

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
    let missing = || {
        ApiError::not_found(format!(
            "no pending approval {id}: it was answered, timed out, or does not exist; see GET /v1/state/approvals"
        ))
    };
    let aid: ApprovalId = id.parse().map_err(|_| missing())?;
    let pending = {
        let mut map = st
            .approvals
            .lock()
            .map_err(|_| ApiError::internal("approval table unavailable; retry"))?;
        let Some(pe) = map.get(&aid).filter(|pe| pe.org == p.org) else {
            return Err(missing());
        };
        if p.role.max_approvable().is_none_or(|m| pe.risk > m) {
            return Err(ApiError::forbidden(format!(
                "this step is {} risk; role {} may not approve it, it needs {} or higher",
                pe.risk, p.role, pe.view.min_role
            )));
        }
        map.remove(&aid).ok_or_else(missing)?
    };
    let reason = format!(
        "{} by {} ({}){}",
        if ans.approve { "approved" } else { "declined" },
        p.actor,
        p.role,
        ans.reason
            .as_deref()
            .map(|r| format!(": {r}"))
            .unwrap_or_default()
    );
    let _ = pending.answer.try_send(Answer {
        approved: ans.approve,
        reason: reason.clone(),
    });
    let action: Option<ActionId> = pending.view.action.parse().ok();
    let tx: Option<TxId> = pending.view.tx.parse().ok();
    let mut ev = NewEvent::new("audit.approval.decided", p.actor.clone())
        .org(&p.org)
        .payload(json!({
            "actor": p.actor, "org": p.org, "role": p.role, "source": p.source,
            "approval": id, "step": pending.view.step, "name": pending.view.name,
            "risk": pending.risk, "approved": ans.approve, "reason": reason,
            "before": {"state": "pending"},
            "after": {"state": if ans.approve {"approved"} else {"declined"}},
        }));
    if let Some(a) = action {
        ev = ev.action(a);
    }
    if let Some(t) = tx {
        ev = ev.tx(t);
    }
    st.append(ev).await?;
    Ok(Json(Decided {
        approval: id,
        approved: ans.approve,
    }))
}
