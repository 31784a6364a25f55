//! Transactions: GET /v1/state/transactions and POST /v1/undo/{tx}, which queues an action
//! that undoes one.

use axum::Json;
use axum::extract::Path;
use axum::response::Response;
use kernos_core::{ActionId, NewEvent, TxId};
use serde_json::json;

use super::actions::accepted;
use crate::St;
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::extract::Q;
use crate::submit::submit_checked;
use crate::wire::{ListParams, SubmitRequest, UndoRequest, clamp_limit};
use crate::worker::{org_transaction, tx_in_org};

/// GET /v1/state/transactions.
pub(super) async fn list_transactions(
    axum::extract::State(st): axum::extract::State<St>,
    p: Principal,
    Q(q): Q<ListParams>,
) -> ApiResult<Json<Vec<kernos_engine::TxSummary>>> {
    let limit = clamp_limit(q.limit, 50, 1000);
    let st2 = st.clone();
    let org = p.org.clone();
    let v = tokio::task::spawn_blocking(move || st2.engine.history(limit, Some(&org)))
        .await
        .map_err(|e| ApiError::internal(format!("history failed: {e}; retry")))??;
    Ok(Json(v))
}

/// GET /v1/state/transactions/{tx}.
pub(super) async fn get_transaction(
    axum::extract::State(st): axum::extract::State<St>,
    p: Principal,
    Path(tx): Path<String>,
) -> ApiResult<Json<Vec<kernos_core::Event>>> {
    let st2 = st.clone();
    let org = p.org.clone();
    let wanted = tx.clone();
    let events = tokio::task::spawn_blocking(move || org_transaction(&st2, &wanted, &org))
        .await
        .map_err(|e| ApiError::internal(format!("reading the transaction failed: {e}; retry")))??;
    events.map(Json).ok_or_else(|| {
        ApiError::not_found(format!(
            "no transaction {tx} in org {}; list them with GET /v1/state/transactions",
            p.org
        ))
    })
}

/// The optional body of POST /v1/undo/{tx}: empty means defaults.
fn undo_body(raw: &[u8]) -> ApiResult<UndoRequest> {
    let body: UndoRequest = if raw.iter().all(u8::is_ascii_whitespace) {
        UndoRequest::default()
    } else {
        serde_json::from_slice(raw).map_err(|e| {
            ApiError::unprocessable(format!(
                "the body is not an undo request ({e}); send {{}} or {{\"cwd\": \"/abs/path\"}}"
            ))
        })?
    };
    if let Some(c) = &body.cwd {
        if !c.starts_with('/') {
            return Err(ApiError::unprocessable(format!(
                "`cwd` must be an absolute path, not {c:?}"
            )));
        }
    }
    Ok(body)
}

/// POST /v1/undo/{tx}.
pub(super) async fn undo(
    axum::extract::State(st): axum::extract::State<St>,
    p: Principal,
    Path(tx): Path<String>,
    raw: axum::body::Bytes,
) -> ApiResult<Response> {
    let body = undo_body(&raw)?;
    let no_tx = || {
        ApiError::not_found(format!(
            "no transaction {tx} in org {}; list them with GET /v1/state/transactions",
            p.org
        ))
    };
    let id: TxId = tx.parse().map_err(|_| no_tx())?;
    let st2 = st.clone();
    let org = p.org.clone();
    let plan = tokio::task::spawn_blocking(move || {
        if !tx_in_org(&st2, id, &org) {
            return Ok(None);
        }
        st2.engine.undo_plan(id).map(Some)
    })
    .await
    .map_err(|e| ApiError::internal(format!("undo check failed: {e}; retry")))??;
    let Some(plan) = plan else {
        return Err(no_tx());
    };
    let items: Vec<&str> = plan.items.iter().map(|i| i.description.as_str()).collect();
    let action = ActionId::generate();
    st.append(
        NewEvent::new("audit.undo.requested", p.actor.clone())
            .org(&p.org)
            .action(action)
            .tx(id)
            .payload(json!({
                "actor": p.actor, "org": p.org, "role": p.role, "source": p.source,
                "tx": id, "before": {"undone": false}, "after": {"undo_requested": true, "items": items},
            })),
    )
    .await?;
    let req = SubmitRequest {
        cwd: body.cwd.clone(),
        auto_approve: true,
        undo: Some(id.to_string()),
        ..SubmitRequest::default()
    };
    submit_checked(&st, p, req, action, None).await?;
    Ok(accepted(action, false))
}
