//! A node runs what its controller sends as an ordinary action of this daemon: queued like
//! any submission (`action.submitted` with source `fleet`), run by a worker on the one path
//! under this daemon's policy, approved only up to the risk approved at home and this node's
//! `max_risk` — never waiting for a person here — and read back from the journal. The action
//! id comes from the dispatch, so a redelivered dispatch finds the action and is not run twice.

use std::sync::Weak;

use kernos_core::{ActionId, Actor, Risk};
use kernos_fleet::wire::{Dispatch, NodeResult, Outcome, Work, now_ms};
use kernos_journal::Query;
use serde_json::{Value, json};

use crate::State;
use crate::auth::{Principal, Role};
use crate::mcp::follow::{Follower, Stop};
use crate::sched::{FleetGrant, Job};
use crate::wire::SubmitRequest;

/// Rows per step a node sends home (its own journal keeps them all).
const MAX_ROWS: usize = 200;

/// The node side of the daemon.
pub(crate) struct DaemonExec {
    st: Weak<State>,
    org: String,
    max_risk: Risk,
    cwd: Option<String>,
}

impl DaemonExec {
    pub(crate) fn new(st: Weak<State>, cfg: &super::FleetConfig) -> Self {
        DaemonExec {
            st,
            org: cfg.local_org.clone(),
            max_risk: cfg.max_risk,
            cwd: cfg.cwd.as_ref().map(|c| c.display().to_string()),
        }
    }
}

impl kernos_fleet::Executor for DaemonExec {
    async fn known(&self, action: &str) -> bool {
        let (Some(st), Ok(id)) = (self.st.upgrade(), action.parse::<ActionId>()) else {
            return false;
        };
        st.read(move |j| {
            j.query(&Query {
                limit: Some(1),
                ..Query::action(id)
            })
        })
        .await
        .is_ok_and(|v| !v.is_empty())
    }

    async fn execute(&self, d: Dispatch) -> NodeResult {
        let failed = |why: String| NodeResult::at_home(&d.fanout, &d.node, Outcome::Failed, why);
        let Some(st) = self.st.upgrade() else {
            return failed("the node's daemon is stopping".into());
        };
        let Ok(action) = d.action.parse::<ActionId>() else {
            return failed(format!("bad action id {:?} in the dispatch", d.action));
        };
        // Subscribed before anything is queued, so no event of it is missed.
        let mut follow = Follower::new(&st, action);
        if !self.known(&d.action).await {
            if let Err(e) = self.submit(&st, &d, action).await {
                return failed(format!("the node refused it: {}", e.detail));
            }
        }
        let events = loop {
            match follow.next().await {
                Ok(Stop::Finished(events)) => break events,
                // The fleet's approver never queues; an approval seen here is someone else's.
                Ok(Stop::Approval(v)) => follow.handled(&v.approval),
                Err(e) => return failed(format!("cannot read the action back: {}", e.detail)),
            }
        };
        let done = crate::mcp::outcome::finished(&st, &d.action, &events, MAX_ROWS);
        let v = done.structured_content.unwrap_or(Value::Null);
        let status = v["status"].as_str().unwrap_or("unknown").to_owned();
        let ok = matches!(status.as_str(), "committed" | "undone");
        NodeResult {
            fanout: d.fanout.clone(),
            node: d.node.clone(),
            outcome: if ok { Outcome::Ok } else { Outcome::Failed },
            status: Some(status),
            tx: v["transaction"].as_str().map(str::to_owned),
            undoable: v["undoable"].as_bool().unwrap_or(false),
            error: v["error"].as_str().map(str::to_owned),
            steps: v["steps"].clone(),
            at_ms: now_ms(),
        }
    }
}

impl DaemonExec {
    /// Queues the dispatch as action `action` of `fleet:<controller>`.
    async fn submit(
        &self,
        st: &std::sync::Arc<State>,
        d: &Dispatch,
        action: ActionId,
    ) -> crate::error::ApiResult<()> {
        let (plan, undo) = match &d.work {
            Work::Run { plan } => (
                Some(serde_json::from_value(plan.clone()).map_err(|e| {
                    crate::error::ApiError::unprocessable(format!("the plan is not valid: {e}"))
                })?),
                None,
            ),
            Work::Undo { tx } => (None, Some(tx.clone())),
        };
        let req = SubmitRequest {
            request: None,
            plan,
            cwd: self.cwd.clone(),
            dry_run: false,
            auto_approve: false,
            context: None,
            undo,
            on: None,
            rollout: None,
        };
        crate::submit::check_submission(&req)?;
        let principal = Principal {
            actor: Actor(format!("fleet:{}", d.controller)),
            org: self.org.clone(),
            role: Role::Operator,
            key_id: None,
            source: format!("fleet:{}", d.fanout),
        };
        let payload = json!({
            "plan": req.plan, "undo": req.undo, "role": principal.role, "source": principal.source,
            "fleet": {"fanout": d.fanout, "controller": d.controller, "approved_by": d.approved_by,
                      "approved_risk": d.approved_risk, "deadline_ms": d.deadline_ms},
        });
        let job = Job {
            action,
            principal,
            req,
            agent: None,
            schedule: None,
            monitor: None,
            lease: None,
            max_risk: None,
            fleet: Some(FleetGrant {
                risk: d.approved_risk.min(self.max_risk),
                by: d.approved_by.clone(),
                fanout: d.fanout.clone(),
            }),
        };
        crate::submit::enqueue(st, job, payload).await
    }
}
