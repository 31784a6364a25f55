//! How any new action is queued: the API's submissions, undo, agents' plans and MCP tool
//! calls all journal `action.submitted` and join their organisation's queue here, so every way
//! in shares the checks, the quota, the queue limit, the run slots and the end of an action
//! that never started.

use std::sync::atomic::Ordering;

use kernos_core::ActionId;
use kernos_core::NewEvent;
use kernos_core::event::kind;
use serde_json::{Value, json};

use crate::St;
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::quota::check_quota;
use crate::sched::Job;
use crate::wire::{ActionStatus, SubmitRequest};
use crate::worker::ACTION_FINISHED;

/// The Idempotency-Key a submission came with, as journaled with it.
#[derive(Debug, Clone)]
pub(crate) struct Idempotency {
    /// The key as the client sent it.
    pub(crate) key: String,
    /// SHA-256 of the body, hex.
    pub(crate) body_sha256: String,
}

/// Queues a submission that passed [`check_submission`]: checks the organisation's quota
/// (undo is never charged: a used-up quota must not stop anyone putting their work back),
/// journals `action.submitted` with who asked and how, and queues it as `action`.
pub(crate) async fn submit_checked(
    st: &St,
    p: Principal,
    req: SubmitRequest,
    action: ActionId,
    idem: Option<Idempotency>,
) -> ApiResult<()> {
    if req.undo.is_none() {
        check_quota(st, &p.org)?;
    }
    let payload = json!({
        "request": req.request,
        "plan": req.plan,
        "undo": req.undo,
        "cwd": req.cwd,
        "dry_run": req.dry_run,
        "auto_approve": req.auto_approve,
        "on": req.on,
        "role": p.role,
        "source": p.source,
        "idempotency_key": idem.as_ref().map(|k| k.key.as_str()),
        "body_sha256": idem.as_ref().map(|k| k.body_sha256.as_str()),
    });
    let job = Job {
        action,
        principal: p,
        req,
        agent: None,
        schedule: None,
        monitor: None,
        lease: None,
        max_risk: None,
        fleet: None,
    };
    enqueue(st, job, payload).await
}

/// Refuses a submission that names nothing to do, several things, or bad fields, saying
/// what to send instead.
pub(crate) fn check_submission(req: &SubmitRequest) -> ApiResult<()> {
    match (&req.request, &req.plan) {
        (None, None) if req.undo.is_some() => {}
        (None, None) => {
            return Err(ApiError::unprocessable(
                "give `request` (plain language), `plan`, or `undo`",
            ));
        }
        (_, _) if req.undo.is_some() => {
            return Err(ApiError::unprocessable(
                "`undo` goes alone: give `undo`, `request` or `plan`, not several",
            ));
        }
        (Some(t), _) if t.trim().is_empty() => {
            return Err(ApiError::unprocessable(
                "`request` is empty: say what you want, e.g. \"show the 5 largest files in /var/log\"",
            ));
        }
        (Some(t), _) if t.len() > 4096 => {
            return Err(ApiError::unprocessable(
                "`request` is longer than 4096 bytes; shorten it or send a plan",
            ));
        }
        (_, Some(p)) if p.steps.is_empty() => {
            return Err(ApiError::unprocessable(
                "the plan has no steps; add at least one",
            ));
        }
        _ => {}
    }
    if let Some(on) = &req.on {
        if req.undo.is_some() {
            return Err(ApiError::unprocessable(
                "`undo` of a fanned-out transaction goes to its nodes by itself: drop `on`",
            ));
        }
        kernos_fleet::Selector::parse(on).map_err(|e| ApiError::unprocessable(e.to_string()))?;
    }
    if let Some(c) = &req.cwd {
        if !c.starts_with('/') || c.contains('\0') {
            return Err(ApiError::unprocessable(format!(
                "`cwd` must be an absolute path, not {c:?}"
            )));
        }
    }
    Ok(())
}

/// Queues a job after journaling `action.submitted`. The queue slot is reserved first, so a
/// full queue answers 429 without journaling anything.
pub(crate) async fn enqueue(st: &St, job: Job, payload: Value) -> ApiResult<()> {
    if st.is_shutting_down() {
        return Err(ApiError::unavailable(
            "the daemon is shutting down; retry against the restarted daemon",
            5,
        ));
    }
    if let Err(depth) = st.sched.reserve() {
        st.metrics.queue_full.fetch_add(1, Ordering::Relaxed);
        return Err(ApiError::too_many(
            "queue-full",
            format!(
                "{depth} actions are already waiting (server.queue = {}); retry in a moment",
                st.config().queue
            ),
            1,
        ));
    }
    let ev = NewEvent::new(kind::ACTION_SUBMITTED, job.principal.actor.clone())
        .org(&job.principal.org)
        .action(job.action)
        .payload(payload);
    if let Err(e) = st.append(ev).await {
        st.sched.unreserve();
        return Err(e.into());
    }
    if let Err(job) = st.sched.push(job) {
        // The daemon began to stop while the submission was being journaled.
        end_unstarted(
            st,
            &job,
            ActionStatus::Aborted,
            "the daemon shut down before the action started; submit it again",
        )
        .await;
        return Err(ApiError::unavailable(
            "the daemon is shutting down; retry against the restarted daemon",
            5,
        ));
    }
    st.metrics.accepted.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

/// Journals the end of an action that never started (taken off the queue).
pub(crate) async fn end_unstarted(st: &St, job: &Job, status: ActionStatus, error: &str) {
    let outcome = kernos_engine::ActionOutcome::Ended {
        status,
        error: error.to_owned(),
    };
    let ev = NewEvent::new(ACTION_FINISHED, job.principal.actor.clone())
        .org(&job.principal.org)
        .action(job.action)
        .payload(outcome.finished_payload(0.0));
    if let Err(e) = st.append(ev).await {
        tracing::error!(action = %job.action, "cannot journal the end of the action: {e}");
    }
}
