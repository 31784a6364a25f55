//! How an action ends: one typed outcome for every front end, and the `action.finished`
//! record made from it (what the daemon's read models, metering and `kernos usage` read).

use kernos_core::TxId;
use kernos_planner::Suggestion;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::{StepReport, StepStatus, TxReport, TxStatus, UndoPlan, UndoReport};

/// Where an action stands: waiting or running (the daemon's read models), or how it ended (what
/// `action.finished` records). One enum for every front end and the API; the serialized names
/// are the strings journals have always held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ActionStatus {
    /// Accepted, waiting for a worker.
    Queued,
    /// Taken by a worker (planning, waiting for an approval, or running).
    Running,
    /// Every step ran.
    Committed,
    /// A step failed (or nothing could be undone).
    Failed,
    /// Stopped by Ctrl-C, `POST …/cancel` or shutdown.
    Cancelled,
    /// Policy refused a step.
    Denied,
    /// A person (or the rule standing in for one) said no.
    Declined,
    /// The planner did not understand the request.
    NotUnderstood,
    /// The plan (or the submission) is not valid.
    Invalid,
    /// Only previewed (dry run): nothing changed.
    Previewed,
    /// A transaction was put back.
    Undone,
    /// A crash stopped it; found when the daemon started again.
    Interrupted,
    /// The daemon shut down before it started.
    Aborted,
    /// Kernos itself failed (the journal could not be written, …).
    Error,
    /// A status this version does not know (read from a newer journal).
    #[serde(other)]
    Unknown,
}

impl ActionStatus {
    /// The name as journaled.
    pub fn as_str(self) -> &'static str {
        match self {
            ActionStatus::Queued => "queued",
            ActionStatus::Running => "running",
            ActionStatus::Committed => "committed",
            ActionStatus::Failed => "failed",
            ActionStatus::Cancelled => "cancelled",
            ActionStatus::Denied => "denied",
            ActionStatus::Declined => "declined",
            ActionStatus::NotUnderstood => "not_understood",
            ActionStatus::Invalid => "invalid",
            ActionStatus::Previewed => "previewed",
            ActionStatus::Undone => "undone",
            ActionStatus::Interrupted => "interrupted",
            ActionStatus::Aborted => "aborted",
            ActionStatus::Error => "error",
            ActionStatus::Unknown => "unknown",
        }
    }

    /// Whether the action did what was asked.
    pub fn is_success(self) -> bool {
        matches!(
            self,
            ActionStatus::Committed | ActionStatus::Previewed | ActionStatus::Undone
        )
    }
}

impl std::fmt::Display for ActionStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<TxStatus> for ActionStatus {
    fn from(s: TxStatus) -> Self {
        match s {
            TxStatus::Committed => ActionStatus::Committed,
            TxStatus::Failed => ActionStatus::Failed,
            TxStatus::Cancelled => ActionStatus::Cancelled,
            TxStatus::Denied => ActionStatus::Denied,
            TxStatus::Declined => ActionStatus::Declined,
        }
    }
}

/// What became of a request.
#[derive(Debug, Clone)]
pub enum ActionOutcome {
    /// The planner did not understand it.
    NotUnderstood {
        /// One line saying what went wrong.
        message: String,
        /// The closest things Kernos can do.
        suggestions: Vec<Suggestion>,
    },
    /// The plan is not valid against the catalog.
    Invalid {
        /// What is wrong with it.
        error: String,
    },
    /// Policy refuses a step: nothing ran.
    Denied {
        /// Which step and why.
        reason: String,
    },
    /// A dry run: previewed, nothing ran.
    Previewed,
    /// The approver declined the plan as a whole after its preview: nothing ran.
    Stopped {
        /// Why (the person's answer, or the rule that answered).
        reason: String,
    },
    /// The plan ran as a transaction (its own status says how far).
    Ran(TxReport),
    /// What undo would do (a dry run of undo): nothing changed.
    UndoPreviewed(UndoPlan),
    /// Undo ran (its report says whether everything was put back).
    Undone(UndoReport),
    /// Undo was not approved.
    UndoDeclined {
        /// The transaction it would have undone.
        tx: TxId,
        /// Why.
        reason: String,
    },
    /// The plan ran on other machines (or their changes were undone there).
    Remote(crate::RemoteOutcome),
    /// Ended before anything ran, for a reason decided outside the path (nothing to undo,
    /// cancelled before it started, the daemon shut down, Kernos failed).
    Ended {
        /// How it ended.
        status: ActionStatus,
        /// Why, in words that say what to do.
        error: String,
    },
}

impl ActionOutcome {
    /// The status `action.finished` records.
    pub fn status(&self) -> ActionStatus {
        match self {
            ActionOutcome::NotUnderstood { .. } => ActionStatus::NotUnderstood,
            ActionOutcome::Invalid { .. } => ActionStatus::Invalid,
            ActionOutcome::Denied { .. } => ActionStatus::Denied,
            ActionOutcome::Previewed | ActionOutcome::UndoPreviewed(_) => ActionStatus::Previewed,
            ActionOutcome::Stopped { .. } | ActionOutcome::UndoDeclined { .. } => {
                ActionStatus::Declined
            }
            ActionOutcome::Ran(r) => r.status.into(),
            ActionOutcome::Undone(r) if r.complete() => ActionStatus::Undone,
            ActionOutcome::Undone(_) => ActionStatus::Failed,
            ActionOutcome::Ended { status, .. } => *status,
            ActionOutcome::Remote(r) if !r.report.all_ok() => ActionStatus::Failed,
            ActionOutcome::Remote(r) if r.undo => ActionStatus::Undone,
            ActionOutcome::Remote(_) => ActionStatus::Committed,
        }
    }

    /// The `action.finished` payload: status, error, transaction and the run units charged
    /// (CPU seconds of sandboxed children plus `step_units` per step that ran).
    pub fn finished_payload(&self, step_units: f64) -> Value {
        let status = self.status();
        match self {
            ActionOutcome::NotUnderstood { message, .. } => {
                json!({"status": status, "error": message, "units": 0.0, "steps": []})
            }
            ActionOutcome::Invalid { error }
            | ActionOutcome::Denied { reason: error }
            | ActionOutcome::Stopped { reason: error }
            | ActionOutcome::Ended { error, .. } => {
                json!({"status": status, "error": error, "units": 0.0})
            }
            ActionOutcome::Previewed | ActionOutcome::UndoPreviewed(_) => {
                json!({"status": status, "units": 0.0})
            }
            ActionOutcome::Ran(report) => {
                let (units, steps_run) = units(report, step_units);
                let mut v = json!({
                    "status": status,
                    "tx": report.tx,
                    "undoable": report.undoable,
                    "cpu_ms": report.cpu_ms,
                    "units": units,
                    "steps_run": steps_run,
                    "steps": step_summaries(report),
                });
                if let (Some(why), Value::Object(m)) = (stopped_by(report), &mut v) {
                    m.insert("error".into(), json!(why));
                }
                v
            }
            ActionOutcome::Undone(r) => {
                json!({"status": status, "tx": r.tx, "undo": r, "units": 0.0})
            }
            ActionOutcome::Remote(r) => {
                let mut v = json!({
                    "status": status,
                    "tx": r.tx,
                    "undoable": !r.undo && !r.report.changed.is_empty(),
                    "units": 0.0,
                    "steps_run": 0,
                    "remote": {"total": r.report.total, "ok": r.report.ok, "summary": r.report.summary},
                });
                if let (false, Value::Object(m)) = (r.report.all_ok(), &mut v) {
                    m.insert(
                        "error".into(),
                        json!(format!("not every node did it: {}", r.report.summary)),
                    );
                }
                v
            }
            ActionOutcome::UndoDeclined { tx, reason } => {
                json!({"status": status, "error": reason, "tx": tx, "units": 0.0})
            }
        }
    }
}

/// Run units for a report, rounded to a millionth, and the number of steps that ran.
fn units(report: &TxReport, step_units: f64) -> (f64, u64) {
    run_units(&report.steps, report.cpu_ms, step_units)
}

/// Run units of the steps so far (those that ran or failed are charged `step_units` each, on
/// top of `cpu_ms` of sandboxed children), rounded to a millionth, and how many steps ran.
/// One rule for the charge at the end and the running total [`crate::StepAdmission`] reports.
pub(crate) fn run_units(steps: &[StepReport], cpu_ms: u64, step_units: f64) -> (f64, u64) {
    let ran = steps
        .iter()
        .filter(|s| matches!(s.status, StepStatus::Done | StepStatus::Failed { .. }))
        .count() as u64;
    let u = cpu_ms as f64 / 1000.0 + step_units * ran as f64;
    ((u * 1e6).round() / 1e6, ran)
}

/// Why a run stopped short, naming the step: the first step that failed, was refused or
/// was declined (what the action's `error` says, e.g. a quota refusal).
fn stopped_by(report: &TxReport) -> Option<String> {
    report.steps.iter().find_map(|s| {
        let why = match &s.status {
            StepStatus::Failed { error } => error,
            StepStatus::Denied { reason } | StepStatus::Declined { reason } => reason,
            _ => return None,
        };
        Some(format!("step {} ({}): {why}", s.index + 1, s.name))
    })
}

/// One line per step: index, name, risk and how it ended.
fn step_summaries(report: &TxReport) -> Value {
    Value::Array(
        report
            .steps
            .iter()
            .map(|s| {
                let mut v = serde_json::to_value(&s.status).unwrap_or(Value::Null);
                if let Value::Object(m) = &mut v {
                    m.insert("index".into(), json!(s.index));
                    m.insert("name".into(), json!(s.name));
                    if let Some(a) = &s.assessment {
                        m.insert("risk".into(), json!(a.risk));
                    }
                }
                v
            })
            .collect(),
    )
}
