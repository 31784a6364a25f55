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

    /// The user running this process: the account name of its real uid (or `uid<N>` when the
    /// uid has no account). Never `$USER`: anyone can set that, and this name goes into the
    /// audit record of every change.
    pub fn current_user() -> Self {
        // SAFETY: getuid has no preconditions and cannot fail.
        let uid = unsafe { libc::getuid() };
        match account_name(uid) {
            Some(n) => Actor::user(&n),
            None => Actor::user(&format!("uid{uid}")),
        }
    }

    /// As a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The passwd entry's name for `uid` (files, NSS — whatever the system is set up with).
fn account_name(uid: libc::uid_t) -> Option<String> {
    let mut buf = vec![0 as libc::c_char; 4096];
    loop {
        // SAFETY: zeroed passwd is a valid out-parameter; buf is live and its length is given.
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: every pointer is valid for the call; the strings it fills point into buf.
        let rc =
            unsafe { libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut result) };
        if rc == libc::ERANGE && buf.len() < 1 << 20 {
            buf.resize(buf.len() * 4, 0);
            continue;
        }
        if rc != 0 || result.is_null() || pwd.pw_name.is_null() {
            return None;
        }
        // SAFETY: on success pw_name is a NUL-terminated string inside buf.
        let name = unsafe { std::ffi::CStr::from_ptr(pwd.pw_name) };
        return Some(name.to_string_lossy().into_owned()).filter(|n| !n.is_empty());
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
    /// What a plan would do, journaled before it runs (front ends show it as the preview).
    pub const ACTION_PREVIEWED: &str = "action.previewed";
    /// An action ended (any way); its payload carries the outcome and the run units charged.
    pub const ACTION_FINISHED: &str = "action.finished";
    /// An action a crash stopped, found when the daemon started again.
    pub const ACTION_INTERRUPTED: &str = "action.interrupted";
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

    #[test]
    fn current_user_is_the_account_of_the_real_uid() {
        // SAFETY: getuid cannot fail.
        let uid = unsafe { libc::getuid() };
        let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
        let expected = passwd
            .lines()
            .map(|l| l.split(':').collect::<Vec<_>>())
            .find(|f| f.len() > 2 && f[2] == uid.to_string())
            .map(|f| format!("user:{}", f[0]))
            .unwrap_or_else(|| format!("user:uid{uid}"));
        assert_eq!(Actor::current_user().0, expected);
    }
}
