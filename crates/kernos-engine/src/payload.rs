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
