//! The payloads the engine journals, one type per event kind. Read models parse them back.

use kernos_core::{Effect, Plan, Risk};
use kernos_tools::{Change, Fingerprint, Output, Record};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `tx.started`
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TxStarted {
    /// The plan as submitted.
    pub plan: Plan,
    /// Working directory of the request.
    pub cwd: String,
    /// True when the run only previews (nothing changes).
    #[serde(default)]
    pub dry_run: bool,
}

/// `step.decided`
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepDecided {
    /// Step index.
    pub step: usize,
    /// `tool.action`.
    pub name: String,
    /// Arguments after references were resolved.
    pub args: Map<String, Value>,
    /// Concrete effects.
    pub effects: Vec<Effect>,
    /// Risk.
    pub risk: Risk,
    /// `allow`, `ask` or `deny`.
    pub decision: String,
    /// Why.
    pub reasons: Vec<String>,
    /// The capability lease the step was admitted under, if one covered it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<String>,
}

/// `approval.decided`
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApprovalDecided {
    /// Step index.
    pub step: usize,
    /// Yes or no.
    pub approved: bool,
    /// Why (the person's answer, or the rule that answered).
    pub reason: String,
}

/// `step.undo_recorded`
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UndoRecorded {
    /// Step index.
    pub step: usize,
    /// Position of the first record within the step.
    pub first: usize,
    /// The records.
    pub records: Vec<Record>,
}

/// Output as journaled: inline when small, in the blob store when large.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredOutput {
    /// The output (rows possibly cut to the first ones when `blob` is set).
    pub output: Output,
    /// Blob holding the full output JSON, when it was too big to inline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blob: Option<String>,
}

/// `step.finished`
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepFinished {
    /// Step index.
    pub step: usize,
    /// What it returned.
    pub result: StoredOutput,
    /// Fingerprints of every recorded path right after the step, aligned with its records.
    #[serde(default)]
    pub after: Vec<Option<Fingerprint>>,
    /// Wall time, ms.
    pub wall_ms: u64,
}

/// `step.failed`
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepFailed {
    /// Step index.
    pub step: usize,
    /// What went wrong.
    pub error: String,
    /// Whether it was a cancellation.
    #[serde(default)]
    pub cancelled: bool,
    /// Fingerprints of paths recorded before the failure.
    #[serde(default)]
    pub after: Vec<Option<Fingerprint>>,
    /// Changes made before the failure, as far as known.
    #[serde(default)]
    pub changes: Vec<Change>,
}

/// `tx.finished`
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TxFinished {
    /// How it ended.
    pub status: crate::TxStatus,
    /// Steps that completed.
    pub done: usize,
    /// Steps in the plan.
    pub total: usize,
    /// Number of undo records (0: nothing to undo).
    pub undo_records: usize,
    /// CPU time of sandboxed children, ms.
    #[serde(default)]
    pub cpu_ms: u64,
}

/// `tx.undone`
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TxUndone {
    /// What was put back.
    pub undone: Vec<String>,
    /// What was left alone, and why.
    pub conflicts: Vec<String>,
    /// What failed while undoing.
    pub failed: Vec<String>,
}

/// `action.submitted`: what was asked, by whom and through which front end. Written by the
/// front end when it accepts the request (the daemon before queueing it, the CLI before
/// [`crate::Engine::handle`]), so an action is on record even if it never runs.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ActionSubmitted {
    /// The request in plain language.
    pub request: Option<String>,
    /// The plan, when one was submitted as it is.
    pub plan: Option<Plan>,
    /// The transaction to undo (`last` for the newest one), for an undo.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub undo: Option<String>,
    /// Working directory relative paths refer to.
    pub cwd: Option<String>,
    /// Only preview.
    pub dry_run: bool,
    /// Steps the submitter may approve were approved at submission (`--yes`).
    pub auto_approve: bool,
    /// The submitter's role in its organisation.
    pub role: String,
    /// Which front end it came through (`cli (embedded engine)`, `api`, `unix socket` …).
    pub source: String,
}

impl ActionSubmitted {
    /// The record of `ask` submitted from the terminal without a daemon (its user owns the
    /// local organisation).
    pub fn embedded_cli(ask: &crate::Ask, cwd: &str, dry_run: bool, yes: bool) -> Self {
        let (request, plan, undo) = match ask {
            crate::Ask::Text(t) => (Some(t.clone()), None, None),
            crate::Ask::Plan(p) => (p.request.clone(), Some(p.clone()), None),
            crate::Ask::Undo(t) => (None, None, Some(t.clone().unwrap_or_else(|| "last".into()))),
        };
        ActionSubmitted {
            request,
            plan,
            undo,
            cwd: Some(cwd.to_owned()),
            dry_run,
            auto_approve: yes,
            role: "owner".into(),
            source: "cli (embedded engine)".into(),
        }
    }
}
