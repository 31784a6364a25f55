//! What travels between a controller and its nodes, as JSON on the broker.

use std::collections::BTreeMap;

use kernos_core::Risk;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::inventory::Facts;

/// A node's announcement in the inventory bucket; each put is also its heartbeat.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct NodeInfo {
    /// The node's name (unique in its organisation).
    pub name: String,
    /// The labels it was given (`role=web`), matched by selectors.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Whether it is a member (`up`) or left (`left`).
    pub state: NodeState,
    /// When it last wrote this (milliseconds since the Unix epoch).
    pub last_seen_ms: i64,
    /// How often it writes it; three missed beats make it unreachable.
    pub heartbeat_s: u64,
    /// When its node agent started.
    pub started_ms: i64,
    /// Its Kernos version.
    pub version: String,
    /// The highest risk it runs from the fleet (its own policy may refuse more).
    pub max_risk: Risk,
    /// What the machine is.
    pub facts: Facts,
}

/// A member or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum NodeState {
    /// Joined and taking plans.
    Up,
    /// Left with `kernos node leave`.
    Left,
}

/// How a node looks from home now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum NodeStatus {
    /// Heartbeats arrive.
    Up,
    /// Three heartbeats missed.
    Unreachable,
    /// It left.
    Left,
}

impl NodeInfo {
    /// Its status at `now_ms`: three missed heartbeats make it unreachable.
    pub fn status(&self, now_ms: i64) -> NodeStatus {
        if self.state == NodeState::Left {
            return NodeStatus::Left;
        }
        let grace = 3 * self.heartbeat_s.max(1) as i64 * 1000;
        if now_ms - self.last_seen_ms > grace {
            NodeStatus::Unreachable
        } else {
            NodeStatus::Up
        }
    }
}

/// What a node is asked to do.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Work {
    /// Run this plan (approved at home).
    Run {
        /// The plan as approved.
        plan: Value,
    },
    /// Undo the node's own transaction `tx` (one this fan-out's original made).
    Undo {
        /// The node's transaction.
        tx: String,
    },
}

/// One node's copy of a fan-out, as published to its subject.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Dispatch {
    /// The fan-out (the home action's id).
    pub fanout: String,
    /// The node addressed.
    pub node: String,
    /// The action id the node runs it as: the same on every redelivery, so the node runs it
    /// at most once (a second delivery finds the action in its journal and reports it).
    pub action: String,
    /// What to do.
    pub work: Work,
    /// The highest risk approved at home; the node runs nothing above it (or above its own
    /// `max_risk`) and never waits for a person of its own.
    pub approved_risk: Risk,
    /// Who approved at home, as journaled there.
    pub approved_by: String,
    /// Who fanned it out (the home actor).
    pub controller: String,
    /// After this (milliseconds since the Unix epoch) the node does not start it: it reports
    /// `expired`. A node that was offline runs it on return while this has not passed.
    pub deadline_ms: i64,
}

/// What a node reports on a fan-out (on its result subject).
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum Report {
    /// It took the dispatch and started (or found it already started).
    Started {
        /// The fan-out.
        fanout: String,
        /// The node.
        node: String,
        /// When (milliseconds since the Unix epoch).
        at_ms: i64,
    },
    /// It ended there (or never started: expired).
    Finished(NodeResult),
}

/// How one node's part of a fan-out ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// It did what was asked (committed, undone).
    Ok,
    /// It ran and failed, or its policy refused, or it was declined.
    Failed,
    /// It was offline past the deadline and did not run it.
    Expired,
    /// It was not reachable at fan-out time and did not answer before the node timeout.
    Unreachable,
    /// It started and its heartbeat stopped: it died mid-run.
    Lost,
    /// It was reachable and did not finish within the node timeout.
    TimedOut,
    /// Not sent: the rollout stopped after too many failures.
    Skipped,
}

impl Outcome {
    /// The word journaled and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Failed => "failed",
            Outcome::Expired => "expired",
            Outcome::Unreachable => "unreachable",
            Outcome::Lost => "lost",
            Outcome::TimedOut => "timed_out",
            Outcome::Skipped => "skipped",
        }
    }

    /// Counts against the rollout's failure budget.
    pub fn is_failure(self) -> bool {
        !matches!(self, Outcome::Ok | Outcome::Skipped)
    }
}

/// One node's result.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct NodeResult {
    /// The fan-out.
    pub fanout: String,
    /// The node.
    pub node: String,
    /// How it ended, seen from home.
    pub outcome: Outcome,
    /// The action's status in the node's own journal (`committed`, `denied`, …), if it ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// The node's transaction, if it ran one (what undo fans out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tx: Option<String>,
    /// Whether the node can undo it.
    #[serde(default)]
    pub undoable: bool,
    /// Why it did not succeed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Each step as the node journaled it (name, status, rows, changes).
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub steps: Value,
    /// When the result was made (milliseconds since the Unix epoch).
    pub at_ms: i64,
}

impl NodeResult {
    /// A result made at home for a node that did not report (unreachable, lost, …).
    pub fn at_home(fanout: &str, node: &str, outcome: Outcome, error: String) -> Self {
        NodeResult {
            fanout: fanout.to_owned(),
            node: node.to_owned(),
            outcome,
            status: None,
            tx: None,
            undoable: false,
            error: Some(error),
            steps: Value::Null,
            at_ms: now_ms(),
        }
    }
}

/// How a fan-out rolls out.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Rollout {
    /// At most this many nodes run it at once (0: all at once).
    #[serde(default)]
    pub batch: usize,
    /// Stop sending to more nodes after this many failures (none: never stop).
    #[serde(default)]
    pub max_failures: Option<usize>,
    /// How long to wait for one node's result once it was sent.
    #[serde(default = "default_node_timeout")]
    pub node_timeout_s: u64,
    /// How long a node that is offline now may still run it when it returns.
    #[serde(default = "default_deadline")]
    pub deadline_s: u64,
}

fn default_node_timeout() -> u64 {
    60
}

fn default_deadline() -> u64 {
    3600
}

impl Default for Rollout {
    fn default() -> Self {
        Rollout {
            batch: 0,
            max_failures: None,
            node_timeout_s: default_node_timeout(),
            deadline_s: default_deadline(),
        }
    }
}

/// A finished fan-out, as the home journal records it at the end.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Fanout {
    /// The fan-out.
    pub fanout: String,
    /// Each node's result, in the order they came.
    pub results: Vec<NodeResult>,
}

impl Fanout {
    /// How many nodes ended with `outcome`.
    pub fn count(&self, outcome: Outcome) -> usize {
        self.results.iter().filter(|r| r.outcome == outcome).count()
    }

    /// Whether every node did it.
    pub fn all_ok(&self) -> bool {
        self.results.iter().all(|r| r.outcome == Outcome::Ok)
    }

    /// `3 ok, 1 failed, 1 unreachable`.
    pub fn summary(&self) -> String {
        let mut parts = vec![format!("{} ok", self.count(Outcome::Ok))];
        for o in [
            Outcome::Failed,
            Outcome::Unreachable,
            Outcome::Lost,
            Outcome::TimedOut,
            Outcome::Expired,
            Outcome::Skipped,
        ] {
            let n = self.count(o);
            if n > 0 {
                parts.push(format!("{n} {}", o.as_str().replace('_', " ")));
            }
        }
        parts.join(", ")
    }
}

/// Now, in milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
