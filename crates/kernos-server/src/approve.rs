//! Answering a step that waits for approval, for every front end that can ask a person: the
//! API (POST /v1/approvals/{id}) and MCP clients (elicitation). The step's risk decides which
//! roles may answer; the answer is audited.

use kernos_core::{ActionId, ApprovalId, NewEvent, TxId};
use serde_json::json;

use crate::St;
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::wire::Decided;
use crate::worker::Answer;

/// Answers approval `id` as `p`: 404 when it is not pending in `p`'s organisation, 403 when
/// `p`'s role may not approve a step of its risk.
pub(crate) async fn answer(
    st: &St,
    p: &Principal,
    id: &str,
    approve: bool,
    why: Option<&str>,
) -> ApiResult<Decided> {
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
        if approve { "approved" } else { "declined" },
        p.actor,
        p.role,
        why.map(|r| format!(": {r}")).unwrap_or_default()
    );
    let _ = pending.answer.try_send(Answer {
        approved: approve,
        reason: reason.clone(),
    });
    let action: Option<ActionId> = pending.view.action.parse().ok();
    let tx: Option<TxId> = pending.view.tx.parse().ok();
    let mut ev = NewEvent::new("audit.approval.decided", p.actor.clone())
        .org(&p.org)
        .payload(json!({
            "actor": p.actor, "org": p.org, "role": p.role, "source": p.source,
            "approval": id, "step": pending.view.step, "name": pending.view.name,
            "risk": pending.risk, "approved": approve, "reason": reason,
            "before": {"state": "pending"},
            "after": {"state": if approve {"approved"} else {"declined"}},
        }));
    if let Some(a) = action {
        ev = ev.action(a);
    }
    if let Some(t) = tx {
        ev = ev.tx(t);
    }
    st.append(ev).await?;
    Ok(Decided {
        approval: id.to_owned(),
        approved: approve,
    })
}
