//! How any new action is queued: the API's submissions, undo, and agents' plans all journal
//! `action.submitted` and join their organisation's queue here, so every way in shares the
//! queue limit, the run slots and the end of an action that never started.

use std::sync::atomic::Ordering;

use kernos_core::NewEvent;
use kernos_core::event::kind;
use serde_json::Value;

use crate::St;
use crate::error::{ApiError, ApiResult};
use crate::sched::Job;
use crate::wire::ActionStatus;
use crate::worker::ACTION_FINISHED;

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
                st.config.queue
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
