//! Actions: POST /v1/actions (submit), POST /v1/actions/{id}/cancel, and the read model
//! GET /v1/state/actions[/{id}]. Also how any new action is queued (undo queues one too).

use axum::Json;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use kernos_core::event::kind;
use kernos_core::{ActionId, Event, NewEvent};
use kernos_journal::Query as JQuery;
use serde::Deserialize;
use serde_json::json;

use crate::St;
use crate::auth::{Principal, Role};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Body, Q};
use crate::idempotency;
use crate::submit::{Idempotency, check_submission, end_unstarted, submit_checked};
use crate::wire::{
    Accepted, ActionDetail, ActionStatus, ActionSummary, Cancelled, ListParams, SubmitRequest,
    clamp_limit,
};
use crate::worker::ACTION_FINISHED;

/// POST /v1/actions.
pub(super) async fn submit(
    axum::extract::State(st): axum::extract::State<St>,
    p: Principal,
    headers: HeaderMap,
    Body(req): Body<SubmitRequest>,
) -> ApiResult<Response> {
    check_submission(&req)?;
    if req.on.is_some() && !st.fleet.controls(&p.org) {
        return Err(crate::error::ApiError::unprocessable(format!(
            "`on` names fleet nodes, but this daemon fans out no fleet for organisation {} ([fleet] org and controller = true)",
            p.org
        )));
    }
    let idem = idempotency::from_headers(&headers, &p)?;
    let action = ActionId::generate();
    // The body's hash only matters with a key (it tells a retry from a different request
    // under the same key): without one it is not computed (a serialisation and a SHA-256 of
    // every submission).
    let mut recorded = None;
    if let Some(k) = &idem {
        let hash = idempotency::body_hash(&req);
        // A retry is answered with the action it already made before anything else is
        // checked: that action may since have used the last of the quota the retry would be
        // refused for.
        if let Some(earlier) = idempotency::claim(&st, k, hash, action)? {
            return Ok(accepted(earlier, true));
        }
        recorded = Some(Idempotency {
            key: k.raw.clone(),
            // With the key, so a restarted daemon still recognises a retry (see
            // `restore_idempotency`).
            body_sha256: idempotency::hex(&hash),
        });
    }
    if let Err(e) = submit_checked(&st, p, req, action, recorded).await {
        // Not accepted: a retry with the same key must be able to go through.
        if let Some(k) = &idem {
            idempotency::release(&st, k);
        }
        return Err(e);
    }
    Ok(accepted(action, false))
}

/// The 202 for a queued action, pointing at its state and its events.
pub(super) fn accepted(action: ActionId, replayed: bool) -> Response {
    let mut r = (
        StatusCode::ACCEPTED,
        Json(Accepted {
            action: action.to_string(),
            status: ActionStatus::Queued,
            events: format!("/v1/events?action={action}"),
            replayed,
        }),
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("/v1/state/actions/{action}")) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

/// An action's summary from its `action.submitted` and, once it ended, `action.finished`.
fn summarise(submitted: &Event, finished: Option<&Event>, started: bool) -> ActionSummary {
    let fp = finished.map(|f| &f.payload);
    let status = match fp {
        Some(p) => ActionStatus::deserialize(&p["status"]).unwrap_or(ActionStatus::Unknown),
        None if started => ActionStatus::Running,
        None => ActionStatus::Queued,
    };
    ActionSummary {
        action: submitted.action.map(|a| a.to_string()).unwrap_or_default(),
        org: submitted.org.clone(),
        actor: submitted.actor.0.clone(),
        submitted_ms: submitted.ts_ms,
        request: submitted.payload["request"]
            .as_str()
            .map(str::to_owned)
            .or_else(|| {
                submitted.payload["plan"]["request"]
                    .as_str()
                    .map(str::to_owned)
            }),
        status,
        tx: fp.and_then(|p| p["tx"].as_str().map(str::to_owned)),
        units: fp.and_then(|p| p["units"].as_f64()),
        error: fp.and_then(|p| p["error"].as_str().map(str::to_owned)),
    }
}

/// GET /v1/state/actions.
pub(super) async fn list_actions(
    axum::extract::State(st): axum::extract::State<St>,
    p: Principal,
    Q(q): Q<ListParams>,
) -> ApiResult<Json<Vec<ActionSummary>>> {
    let limit = clamp_limit(q.limit, 50, 1000);
    let org = p.org.clone();
    let out = st
        .read(move |j| {
            let subs = j.query(&JQuery {
                kind: Some(kind::ACTION_SUBMITTED.into()),
                org: Some(org.clone()),
                newest_first: true,
                limit: Some(limit),
                ..JQuery::default()
            })?;
            let mut out = Vec::with_capacity(subs.len());
            for s in &subs {
                let Some(a) = s.action else { continue };
                let fin = j
                    .query(&JQuery {
                        action: Some(a.to_string()),
                        kind: Some(ACTION_FINISHED.into()),
                        limit: Some(1),
                        ..JQuery::default()
                    })?
                    .into_iter()
                    .next();
                let started = fin.is_some()
                    || j.count(&JQuery {
                        action: Some(a.to_string()),
                        after: Some(s.seq),
                        limit: Some(1),
                        ..JQuery::default()
                    })? > 0;
                out.push(summarise(s, fin.as_ref(), started));
            }
            Ok(out)
        })
        .await?;
    Ok(Json(out))
}

fn parse_action(id: &str) -> ApiResult<ActionId> {
    id.parse::<ActionId>().map_err(|e| {
        ApiError::not_found(format!(
            "no action {id:?} ({e}); list actions with GET /v1/state/actions"
        ))
    })
}

/// GET /v1/state/actions/{id}.
pub(super) async fn get_action(
    axum::extract::State(st): axum::extract::State<St>,
    p: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<ActionDetail>> {
    let a = parse_action(&id)?;
    let org = p.org.clone();
    // Audit records are for those who may read the audit log (as on the event stream).
    let audit = p.role >= Role::Admin;
    let events = st
        .read(move |j| {
            let mut evs = j.query(&JQuery::action(a))?;
            evs.retain(|e| e.org == org && (audit || !e.kind.starts_with(kind::AUDIT_PREFIX)));
            Ok(evs)
        })
        .await?;
    let Some(sub) = events.iter().find(|e| e.kind == kind::ACTION_SUBMITTED) else {
        return Err(ApiError::not_found(format!(
            "no action {id} in org {}; list actions with GET /v1/state/actions",
            p.org
        )));
    };
    let fin = events.iter().rev().find(|e| e.kind == ACTION_FINISHED);
    let summary = summarise(sub, fin, events.len() > 1);
    Ok(Json(ActionDetail { summary, events }))
}

/// POST /v1/actions/{id}/cancel.
pub(super) async fn cancel(
    axum::extract::State(st): axum::extract::State<St>,
    p: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<Cancelled>> {
    let a = parse_action(&id)?;
    let running = st
        .running
        .lock()
        .map_err(|_| ApiError::internal("action table unavailable; retry"))?
        .get(&a)
        .filter(|(org, _)| *org == p.org)
        .map(|(_, c)| c.clone());
    let status = if let Some(c) = running {
        c.cancel();
        "cancelling"
    } else {
        cancel_queued(&st, &p, a, &id).await?;
        "cancelled"
    };
    st.append(
        NewEvent::new("audit.action.cancelled", p.actor.clone())
            .org(&p.org)
            .action(a)
            .payload(json!({
                "actor": p.actor, "org": p.org, "role": p.role, "source": p.source,
                "before": {"state": if status == "cancelling" {"running"} else {"queued"}},
                "after": {"state": status},
            })),
    )
    .await?;
    Ok(Json(Cancelled {
        action: id,
        status: status.into(),
    }))
}

/// An action that is not running: queued (then it is stopped before it starts), finished
/// (409), or not the caller's (404).
async fn cancel_queued(st: &St, p: &Principal, a: ActionId, id: &str) -> ApiResult<()> {
    let org = p.org.clone();
    let (exists, finished) = st
        .read(move |j| {
            let evs = j.query(&JQuery::action(a))?;
            Ok((
                evs.iter()
                    .any(|e| e.org == org && e.kind == kind::ACTION_SUBMITTED),
                evs.iter().any(|e| e.kind == ACTION_FINISHED),
            ))
        })
        .await?;
    if !exists {
        return Err(ApiError::not_found(format!(
            "no action {id} in org {}; list actions with GET /v1/state/actions",
            p.org
        )));
    }
    if finished {
        return Err(ApiError::conflict(format!(
            "action {id} has already finished"
        )));
    }
    // Taken off its queue and ended now, rather than when its turn would have come.
    if let Some(job) = st.sched.remove(a) {
        end_unstarted(
            st,
            &job,
            ActionStatus::Cancelled,
            "cancelled before it started",
        )
        .await;
        return Ok(());
    }
    // Between the queue and a worker: the worker ends it before it starts.
    if let Ok(mut c) = st.cancelled.lock() {
        c.insert(a);
    }
    Ok(())
}
