//! The controller half: the engine hands an approved plan (or the undo of one) to
//! [`FleetRemote`], which sends it to the selected nodes and journals, into the home
//! transaction, each node's progress and result as it comes (`fleet.node.*`), so SSE
//! subscribers and the CLI see the fan-out per node live.

use std::sync::Arc;

use kernos_engine::{Remote, RemoteChange, RemoteReport, RemoteRun, RemoteWork};
use kernos_fleet::controller::Request;
use kernos_fleet::wire::{Fanout, Outcome, Rollout, Work};
use kernos_fleet::{Progress, Selector};
use serde_json::{Value, json};

use crate::State;

/// `fleet.dispatched`: which nodes a fan-out goes to.
pub const FLEET_DISPATCHED: &str = "fleet.dispatched";
/// `fleet.node.sent` / `.started` / `.finished`: one node's progress.
pub const FLEET_NODE_SENT: &str = "fleet.node.sent";
/// A node took the plan.
pub const FLEET_NODE_STARTED: &str = "fleet.node.started";
/// A node's result (or the verdict made at home: unreachable, lost, timed out, skipped).
pub const FLEET_NODE_FINISHED: &str = "fleet.node.finished";

/// Where an action that names nodes runs.
pub(crate) struct FleetRemote {
    pub(crate) st: Arc<State>,
    pub(crate) org: String,
    /// The nodes (`None` for an undo: it goes to the nodes that changed).
    pub(crate) selector: Option<Selector>,
    pub(crate) rollout: Rollout,
    pub(crate) fanout: String,
    pub(crate) actor: String,
}

impl std::fmt::Debug for FleetRemote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FleetRemote")
            .field("selector", &self.selector)
            .field("fanout", &self.fanout)
            .finish_non_exhaustive()
    }
}

impl Remote for FleetRemote {
    fn run(&self, run: &RemoteRun<'_>, journal: &mut dyn FnMut(&str, Value)) -> RemoteReport {
        let Some((ctl, rt)) = self.st.fleet.controller_for(&self.org) else {
            return failed("the fleet broker is not connected yet; see the daemon's log and retry");
        };
        let nodes: Vec<(String, Work)> = match (&run.work, &self.selector) {
            (RemoteWork::Plan(plan), Some(sel)) => {
                let picked = match rt.block_on(ctl.select(sel)) {
                    Ok(p) => p,
                    Err(e) => return failed(&e.to_string()),
                };
                let plan = serde_json::to_value(plan).unwrap_or(Value::Null);
                picked
                    .into_iter()
                    .map(|n| (n.name, Work::Run { plan: plan.clone() }))
                    .collect()
            }
            (RemoteWork::Undo(changes), _) => changes
                .iter()
                .map(|c| (c.node.clone(), Work::Undo { tx: c.tx.clone() }))
                .collect(),
            (RemoteWork::Plan(_), None) => return failed("no nodes named"),
        };
        let names: Vec<&str> = nodes.iter().map(|(n, _)| n.as_str()).collect();
        journal(
            FLEET_DISPATCHED,
            json!({
                "selector": self.selector.as_ref().map(|s| s.to_string()),
                "nodes": names,
                "rollout": self.rollout,
                "approved_risk": run.approved_risk,
                "undo": matches!(run.work, RemoteWork::Undo(_)),
            }),
        );
        if nodes.is_empty() {
            return RemoteReport {
                total: 0,
                ok: 0,
                summary: format!(
                    "no node matches {}",
                    self.selector
                        .as_ref()
                        .map(|s| s.to_string())
                        .unwrap_or_default()
                ),
                results: Value::Array(Vec::new()),
                changed: Vec::new(),
            };
        }
        let req = Request {
            fanout: self.fanout.clone(),
            nodes,
            rollout: self.rollout.clone(),
            approved_risk: run.approved_risk,
            approved_by: run.approved_by.clone(),
            controller: self.actor.clone(),
        };
        let fanout = rt.block_on(ctl.fanout(req, |p| match p {
            Progress::Sent { node, offline } => {
                journal(FLEET_NODE_SENT, json!({"node": node, "offline": offline}));
            }
            Progress::Started { node } => journal(FLEET_NODE_STARTED, json!({"node": node})),
            Progress::Finished(r) => {
                journal(
                    FLEET_NODE_FINISHED,
                    serde_json::to_value(&r).unwrap_or_default(),
                );
            }
        }));
        report(&fanout, matches!(run.work, RemoteWork::Undo(_)))
    }
}

fn failed(why: &str) -> RemoteReport {
    RemoteReport {
        total: 0,
        ok: 0,
        summary: why.to_owned(),
        results: Value::Array(Vec::new()),
        changed: Vec::new(),
    }
}

fn report(f: &Fanout, undo: bool) -> RemoteReport {
    let changed = if undo {
        Vec::new()
    } else {
        f.results
            .iter()
            .filter(|r| r.outcome == Outcome::Ok && r.undoable)
            .filter_map(|r| {
                r.tx.as_ref().map(|tx| RemoteChange {
                    node: r.node.clone(),
                    tx: tx.clone(),
                })
            })
            .collect()
    };
    RemoteReport {
        total: f.results.len(),
        ok: f.count(Outcome::Ok),
        summary: f.summary(),
        results: serde_json::to_value(&f.results).unwrap_or_default(),
        changed,
    }
}
