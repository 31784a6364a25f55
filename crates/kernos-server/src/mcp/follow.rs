//! Following one action from the journal until it ends or a step waits for an approval this
//! caller has not yet handled. Reading the journal (not only the live hub) makes a resumed
//! call — the second round of an input-required exchange, after any number of events —
//! and a lagging subscriber see exactly the same sequence.

use std::collections::HashSet;
use std::time::Duration;

use kernos_core::event::kind;
use kernos_core::{ActionId, Event};
use kernos_journal::Query;
use tokio::sync::broadcast;

use crate::St;
use crate::error::ApiResult;
use crate::hub::Published;
use crate::wire::ApprovalView;
use crate::worker::ACTION_FINISHED;

/// Where a followed action stands.
#[derive(Debug)]
pub(crate) enum Stop {
    /// It ended: every event it journaled.
    Finished(Vec<Event>),
    /// A step waits for this approval (still pending in the daemon's queue).
    Approval(Box<ApprovalView>),
}

/// Follows `action` from the journal and the live hub.
pub(crate) struct Follower {
    st: St,
    action: ActionId,
    live: broadcast::Receiver<std::sync::Arc<Published>>,
    events: Vec<Event>,
    /// Approvals already handled (answered, or left to the queue), not stopped at again.
    handled: HashSet<String>,
}

impl Follower {
    /// Subscribes first, so nothing journaled after this call is missed.
    pub(crate) fn new(st: &St, action: ActionId) -> Self {
        Follower {
            live: st.hub.subscribe(),
            st: st.clone(),
            action,
            events: Vec::new(),
            handled: HashSet::new(),
        }
    }

    /// The action followed.
    pub(crate) fn action(&self) -> ActionId {
        self.action
    }

    /// Stops again at no step waiting for `approval`: it was answered or is left to the queue.
    pub(crate) fn handled(&mut self, approval: &str) {
        self.handled.insert(approval.to_owned());
    }

    /// Waits until the action ends or a step waits for an approval not handled yet.
    pub(crate) async fn next(&mut self) -> ApiResult<Stop> {
        let id = self.action.to_string();
        loop {
            self.catch_up().await?;
            if let Some(stop) = self.stop() {
                return Ok(stop);
            }
            // Woken by the next event of this action; a lagging receiver or a quiet second
            // reads the journal again, so nothing is ever waited on that already happened.
            let wait = async {
                loop {
                    match self.live.recv().await {
                        Ok(p) if p.action.as_deref() == Some(id.as_str()) => return,
                        Ok(_) => {}
                        Err(broadcast::error::RecvError::Lagged(_)) => return,
                        Err(broadcast::error::RecvError::Closed) => {
                            tokio::time::sleep(Duration::from_millis(200)).await;
                            return;
                        }
                    }
                }
            };
            let _ = tokio::time::timeout(Duration::from_secs(1), wait).await;
        }
    }

    /// Reads the action's events journaled since the last read.
    async fn catch_up(&mut self) -> ApiResult<()> {
        let action = self.action;
        let after = self.events.last().map(|e| e.seq);
        let new = self
            .st
            .read(move |j| {
                j.query(&Query {
                    after,
                    ..Query::action(action)
                })
            })
            .await?;
        self.events.extend(new);
        Ok(())
    }

    fn stop(&self) -> Option<Stop> {
        if self.events.iter().any(|e| e.kind == ACTION_FINISHED) {
            return Some(Stop::Finished(self.events.clone()));
        }
        self.events
            .iter()
            .filter(|e| e.kind == kind::APPROVAL_REQUESTED)
            .filter_map(|e| serde_json::from_value::<ApprovalView>(e.payload.clone()).ok())
            .filter(|v| !self.handled.contains(&v.approval))
            .find(|v| self.pending(&v.approval))
            .map(|v| Stop::Approval(Box::new(v)))
    }

    /// Whether approval `id` still waits in the daemon's queue.
    fn pending(&self, id: &str) -> bool {
        let Ok(aid) = id.parse::<kernos_core::ApprovalId>() else {
            return false;
        };
        self.st.approvals.lock().is_ok_and(|a| a.contains_key(&aid))
    }
}
