//! What an agent's action did, read back from the journal: the same path whether the action
//! ended a moment ago or before a crash, so a restarted agent sees exactly what happened and
//! never runs a step again to find out.

use std::fmt::Write as _;

use kernos_core::ActionId;
use kernos_core::event::kind;
use kernos_engine::ActionStatus;
use kernos_engine::payload::{ApprovalDecided, StepDecided, StepFailed, StepFinished};
use kernos_journal::{Journal, Query};
use kernos_planner::llm::{HostOutcome, Observation};
use kernos_tools::Output;
use serde::Deserialize as _;
use serde_json::Value;

use crate::State;

/// How an agent's action ended, as far as the agent is concerned.
#[derive(Debug)]
pub(crate) struct Observed {
    /// What its steps showed, and whether the agent must stop.
    pub(crate) outcome: HostOutcome,
    /// Run units it was charged.
    pub(crate) units: f64,
    /// A step did not start because the agent's lease expired, was revoked or is spent: the
    /// agent waits for a new one instead of stopping. Holds the reason.
    pub(crate) lease_inactive: Option<String>,
    /// Steps that ran (finished or failed).
    pub(crate) ran: usize,
}

/// What action `a` did, if it has ended. `after_restart`: the daemon stopped while it was
/// queued or running, so an interruption is reported to the model as such rather than
/// stopping the agent.
pub(crate) fn observe(
    st: &State,
    j: &Journal,
    a: ActionId,
    after_restart: bool,
) -> Result<Option<Observed>, kernos_journal::JournalError> {
    let events = j.query(&Query::action(a))?;
    let Some(fin) = events.iter().find(|e| e.kind == kind::ACTION_FINISHED) else {
        return Ok(None);
    };
    let status = ActionStatus::deserialize(&fin.payload["status"]).unwrap_or(ActionStatus::Unknown);
    let units = fin.payload["units"].as_f64().unwrap_or(0.0);
    let mut steps: Vec<(usize, String, String)> = Vec::new();
    let mut lease_inactive = None;
    let mut ran = 0;
    for e in &events {
        match e.kind.as_str() {
            kind::STEP_DECIDED => {
                if let Ok(d) = serde_json::from_value::<StepDecided>(e.payload.clone()) {
                    if !steps.iter().any(|(s, _, _)| *s == d.step) {
                        let line =
                            format!("step {}: {} {}", d.step + 1, d.name, args_line(&d.args));
                        steps.push((d.step, line, String::new()));
                    }
                    if d.decision == "deny" {
                        set(
                            &mut steps,
                            d.step,
                            format!("refused by policy: {}", d.reasons.join("; ")),
                        );
                    }
                }
            }
            kind::APPROVAL_DECIDED => {
                if let Ok(d) = serde_json::from_value::<ApprovalDecided>(e.payload.clone()) {
                    if !d.approved {
                        if d.reason.ends_with(kernos_engine::LEASE_INACTIVE) {
                            lease_inactive = Some(d.reason.clone());
                        }
                        set(&mut steps, d.step, format!("not run: {}", d.reason));
                    }
                }
            }
            kind::STEP_FINISHED => {
                if let Ok(f) = serde_json::from_value::<StepFinished>(e.payload.clone()) {
                    ran += 1;
                    let out = st.engine.stored_output(&f);
                    set(&mut steps, f.step, output_text(&out));
                }
            }
            kind::STEP_FAILED => {
                if let Ok(f) = serde_json::from_value::<StepFailed>(e.payload.clone()) {
                    ran += 1;
                    let what = if f.cancelled {
                        "cancelled".to_owned()
                    } else {
                        format!("failed: {}", f.error)
                    };
                    set(&mut steps, f.step, what);
                }
            }
            _ => {}
        }
    }
    let interrupted = matches!(status, ActionStatus::Interrupted | ActionStatus::Aborted)
        || (after_restart && status == ActionStatus::Cancelled);
    let mut observations: Vec<Observation> = steps
        .into_iter()
        .map(|(_, step, text)| Observation {
            step,
            text: if text.is_empty() && interrupted {
                "not finished: the daemon stopped while it ran or waited; it was not run again"
                    .into()
            } else if text.is_empty() {
                "not run".into()
            } else {
                clip(&text)
            },
        })
        .collect();
    let error = fin.payload["error"].as_str().unwrap_or_default().to_owned();
    let outcome = match status {
        ActionStatus::Committed | ActionStatus::Failed => HostOutcome::Ran(observations),
        // Not a person's "no": the agent takes in what ran and waits for a lease.
        ActionStatus::Declined if lease_inactive.is_some() => HostOutcome::Ran(observations),
        _ if interrupted => {
            observations.push(Observation {
                step: "the daemon".into(),
                text: format!("restarted while this plan ran ({}); steps shown as finished did run, the others did not", status.as_str()),
            });
            HostOutcome::Ran(observations)
        }
        other => HostOutcome::Stopped {
            observations,
            reason: if error.is_empty() {
                format!("its action ended {}", other.as_str())
            } else {
                error
            },
        },
    };
    Ok(Some(Observed {
        outcome,
        units,
        lease_inactive,
        ran,
    }))
}

fn set(steps: &mut [(usize, String, String)], i: usize, text: String) {
    if let Some(s) = steps.iter_mut().find(|(s, _, _)| *s == i) {
        s.2 = text;
    }
}

/// `key=value` pairs of a step's arguments, one line.
fn args_line(args: &serde_json::Map<String, Value>) -> String {
    let mut s = String::new();
    for (k, v) in args {
        let v = match v {
            Value::String(t) => t.clone(),
            other => other.to_string(),
        };
        let _ = write!(s, "{}{k}={v}", if s.is_empty() { "" } else { " " });
    }
    s
}

/// A step's output as the model reads it: the summary, then the text or the rows.
pub(crate) fn output_text(out: &Output) -> String {
    let mut s = String::new();
    if let Some(sum) = &out.summary {
        s.push_str(sum);
        s.push('\n');
    }
    if let Some(t) = &out.text {
        s.push_str(t);
    } else {
        for row in &out.rows {
            let _ = writeln!(s, "{}", args_line(row));
            if s.len() > kernos_planner::llm::MAX_STEP_OBSERVATION {
                break;
            }
        }
    }
    if s.is_empty() {
        s.push_str("(no output)");
    }
    s
}

fn clip(s: &str) -> String {
    if s.len() <= kernos_planner::llm::MAX_STEP_OBSERVATION {
        return s.to_owned();
    }
    let mut end = kernos_planner::llm::MAX_STEP_OBSERVATION;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… (cut)", &s[..end])
}
