//! Journal events.
//!
//! An event is a fact that happened, recorded once and never changed. Its `kind` is a dotted
//! name (`step.started`, `audit.key.created`), so consumers can filter by prefix; its `payload`
//! is JSON whose shape the kind determines. Ids of the action and transaction an event belongs
//! to sit in their own fields so the journal can index them.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::id::{ActionId, TxId};

/// The organisation used when there is only one (a laptop, the local socket).
pub const LOCAL_ORG: &str = "local";

/// Who caused an event, written `type:name`, e.g. `user:alice`, `key:k01h…`, `system`.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(transparent)]
pub struct Actor(pub String);

impl Actor {
    /// The kernel itself (recovery, scheduled work).
    pub fn system() -> Self {
        Actor("system".into())
    }

    /// A local user, by login name.
    pub fn user(name: &str) -> Self {
        Actor(format!("user:{name}"))
    }

    /// The user running this process, from `$USER` (or the numeric uid when unset).
    pub fn current_user() -> Self {
        match std::env::var("USER") {
            Ok(u) if !u.is_empty() => Actor::user(&u),
            _ => Actor::user("unknown"),
        }
    }

    /// As a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Actor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Well-known event kinds. Kinds are open strings so later components add their own; these
/// are the ones the core request path writes.
pub mod kind {
    /// A request (text or plan) was accepted.
    pub const ACTION_SUBMITTED: &str = "action.submitted";
    /// A plan was made for an action.
    pub const PLAN_CREATED: &str = "plan.created";
    /// The planner could not make a plan.
    pub const PLAN_FAILED: &str = "plan.failed";
    /// Policy decided about a step (risk and allow/ask/deny).
    pub const STEP_DECIDED: &str = "step.decided";
    /// A step waits for approval.
    pub const APPROVAL_REQUESTED: &str = "approval.requested";
    /// Someone approved or denied a step.
    pub const APPROVAL_DECIDED: &str = "approval.decided";
    /// A transaction began.
    pub const TX_STARTED: &str = "tx.started";
    /// What is needed to undo a step was saved (written before the step acts).
    pub const STEP_UNDO_RECORDED: &str = "step.undo_recorded";
    /// A step started.
    pub const STEP_STARTED: &str = "step.started";
    /// A step finished with output.
    pub const STEP_FINISHED: &str = "step.finished";
    /// A step failed.
    pub const STEP_FAILED: &str = "step.failed";
    /// A transaction ended (committed, failed, cancelled).
    pub const TX_FINISHED: &str = "tx.finished";
    /// A transaction was undone (possibly partly).
    pub const TX_UNDONE: &str = "tx.undone";
    /// One try of a language-model call: provider, model, tokens in/out, cost, latency,
    /// mechanism, error (metering; `kernos usage` and the daemon's metrics read these).
    pub const LLM_CALL: &str = "llm.call";
    /// One request that reached the language-model tier of the planner: cache hit or miss,
    /// which model answered, repairs, fallback.
    pub const LLM_PLAN: &str = "llm.plan";
    /// Prefix of audit events (`audit.key.created`, `audit.config.changed`, …).
    pub const AUDIT_PREFIX: &str = "audit.";
}

/// An event about to be appended: everything but what the journal assigns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct NewEvent {
    /// Dotted kind, e.g. `step.started`.
    pub kind: String,
    /// Who caused it.
    pub actor: Actor,
    /// Which organisation it belongs to.
    pub org: String,
    /// The action it belongs to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<ActionId>,
    /// The transaction it belongs to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tx: Option<TxId>,
    /// Kind-specific data.
    #[serde(default)]
    pub payload: Value,
}

impl NewEvent {
    /// An event of `kind` by `actor` in the local organisation with an empty payload.
    pub fn new(kind: &str, actor: Actor) -> Self {
        NewEvent {
            kind: kind.to_owned(),
            actor,
            org: LOCAL_ORG.to_owned(),
            action: None,
            tx: None,
            payload: Value::Null,
        }
    }

    /// Sets the organisation.
    pub fn org(mut self, org: &str) -> Self {
        self.org = org.to_owned();
        self
    }

    /// Sets the action.
    pub fn action(mut self, id: ActionId) -> Self {
        self.action = Some(id);
        self
    }

    /// Sets the transaction.
    pub fn tx(mut self, id: TxId) -> Self {
        self.tx = Some(id);
        self
    }

    /// Sets the payload.
    pub fn payload(mut self, payload: Value) -> Self {
        self.payload = payload;
        self
    }
}

/// An event as stored: the appended fields plus what the journal assigned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Event {
    /// Position in the journal: 1, 2, 3, … with no gaps.
    pub seq: u64,
    /// When it was appended, milliseconds since the Unix epoch.
    pub ts_ms: i64,
    /// Dotted kind.
    pub kind: String,
    /// Who caused it.
    pub actor: Actor,
    /// Organisation.
    pub org: String,
    /// Action, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<ActionId>,
    /// Transaction, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tx: Option<TxId>,
    /// Kind-specific data.
    #[serde(default)]
    pub payload: Value,
    /// blake3 of this event chained with the previous event's hash (hex).
    pub hash: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_event_builder_and_round_trip() {
        let a = ActionId::generate();
        let t = TxId::generate();
        let e = NewEvent::new(kind::STEP_STARTED, Actor::user("alice"))
            .org("acme")
            .action(a)
            .tx(t)
            .payload(serde_json::json!({"step": 0}));
        let j = serde_json::to_string(&e).unwrap();
        let back: NewEvent = serde_json::from_str(&j).unwrap();
        assert_eq!(back, e);
        assert_eq!(back.actor.as_str(), "user:alice");
    }

    #[test]
    fn event_round_trip_omits_empty_ids() {
        let e = Event {
            seq: 7,
            ts_ms: 1,
            kind: "x.y".into(),
            actor: Actor::system(),
            org: LOCAL_ORG.into(),
            action: None,
            tx: None,
            payload: serde_json::json!([1, 2]),
            hash: "00".into(),
        };
        let j = serde_json::to_value(&e).unwrap();
        assert!(j.get("tx").is_none());
        assert_eq!(serde_json::from_value::<Event>(j).unwrap(), e);
    }
}
