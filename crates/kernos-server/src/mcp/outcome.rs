//! What an MCP client gets back from a tool call: the action's events read back from the
//! journal, as structured content (status, transaction, each step's rows) and as text a model
//! reads, with the transaction to undo.

use std::fmt::Write as _;

use kernos_core::Event;
use kernos_core::event::kind;
use kernos_engine::ActionStatus;
use kernos_engine::payload::{ApprovalDecided, StepDecided, StepFailed, StepFinished};
use rmcp::model::{CallToolResult, ContentBlock};
use serde::Deserialize as _;
use serde_json::{Map, Value, json};

use super::catalog::UNDO;
use crate::State;
use crate::agents::observe::output_text;
use crate::worker::{ACTION_FINISHED, ACTION_PREVIEWED};

/// The result of a finished action: an error result unless it committed, was previewed or
/// undone. At most `max_rows` rows per step are returned (the journal keeps them all).
pub(crate) fn finished(
    st: &State,
    action: &str,
    events: &[Event],
    max_rows: usize,
) -> CallToolResult {
    let fin = events.iter().find(|e| e.kind == ACTION_FINISHED);
    let status = fin
        .map(|f| ActionStatus::deserialize(&f.payload["status"]).unwrap_or(ActionStatus::Unknown))
        .unwrap_or(ActionStatus::Unknown);
    let fin_payload = fin.map(|f| f.payload.clone()).unwrap_or(Value::Null);
    let tx = fin_payload["tx"]
        .as_str()
        .map(str::to_owned)
        .or_else(|| events.iter().find_map(|e| e.tx.map(|t| t.to_string())));
    let undoable = fin_payload["undoable"].as_bool().unwrap_or(false);
    let mut steps: Vec<Map<String, Value>> = Vec::new();
    let mut preview = Value::Null;
    for e in events {
        match e.kind.as_str() {
            kind::STEP_DECIDED => {
                if let Ok(d) = serde_json::from_value::<StepDecided>(e.payload.clone()) {
                    let s = step(&mut steps, d.step);
                    s.insert("name".into(), json!(d.name));
                    s.insert("args".into(), Value::Object(d.args));
                    s.insert("risk".into(), json!(d.risk));
                    s.insert("decision".into(), json!(d.decision));
                    if d.decision == "deny" {
                        s.insert("status".into(), json!("denied"));
                        s.insert("error".into(), json!(d.reasons.join("; ")));
                    } else if !d.reasons.is_empty() {
                        s.insert("reasons".into(), json!(d.reasons));
                    }
                }
            }
            kind::APPROVAL_DECIDED => {
                if let Ok(d) = serde_json::from_value::<ApprovalDecided>(e.payload.clone()) {
                    let s = step(&mut steps, d.step);
                    s.insert("approved_by".into(), json!(e.actor.to_string()));
                    if !d.approved {
                        s.insert("status".into(), json!("declined"));
                        s.insert("error".into(), json!(d.reason));
                    }
                }
            }
            kind::STEP_FINISHED => {
                if let Ok(f) = serde_json::from_value::<StepFinished>(e.payload.clone()) {
                    let out = st.engine.stored_output(&f);
                    let s = step(&mut steps, f.step);
                    s.insert("status".into(), json!("done"));
                    s.insert("text".into(), json!(output_text(&out)));
                    if !out.columns.is_empty() {
                        let cols: Vec<&str> = out.columns.iter().map(|c| c.name.as_str()).collect();
                        s.insert("columns".into(), json!(cols));
                    }
                    if !out.rows.is_empty() {
                        let cut = out.rows.len() > max_rows;
                        s.insert(
                            "rows".into(),
                            json!(&out.rows[..out.rows.len().min(max_rows)]),
                        );
                        s.insert("truncated".into(), json!(cut || out.truncated));
                    }
                    if !out.changes.is_empty() {
                        s.insert("changes".into(), json!(out.changes));
                    }
                }
            }
            kind::STEP_FAILED => {
                if let Ok(f) = serde_json::from_value::<StepFailed>(e.payload.clone()) {
                    let s = step(&mut steps, f.step);
                    let what = if f.cancelled { "cancelled" } else { "failed" };
                    s.insert("status".into(), json!(what));
                    s.insert("error".into(), json!(f.error));
                }
            }
            ACTION_PREVIEWED => preview = e.payload["preview"].clone(),
            _ => {}
        }
    }
    let ok = matches!(
        status,
        ActionStatus::Committed | ActionStatus::Previewed | ActionStatus::Undone
    );
    let error = fin_payload["error"].as_str().map(str::to_owned);
    let undo_hint = (undoable && status == ActionStatus::Committed)
        .then(|| {
            tx.as_ref()
                .map(|t| format!("{UNDO} {{\"transaction\": \"{t}\"}}"))
        })
        .flatten();
    let mut structured = json!({
        "action": action,
        "status": status.as_str(),
        "transaction": tx,
        "undoable": undoable && status == ActionStatus::Committed,
        "steps": steps,
    });
    if let Value::Object(m) = &mut structured {
        if let Some(e) = &error {
            m.insert("error".into(), json!(e));
        }
        // A preview is the answer of kernos_plan; a run journals one too, but its steps say more.
        if !preview.is_null() && status == ActionStatus::Previewed {
            m.insert("preview".into(), preview);
        }
        if let Some(u) = &undo_hint {
            m.insert("undo".into(), json!(u));
        }
    }
    let text = text(
        status,
        tx.as_deref(),
        error.as_deref(),
        &steps,
        undo_hint.as_deref(),
    );
    let mut r = if ok {
        CallToolResult::success(vec![ContentBlock::text(text)])
    } else {
        CallToolResult::error(vec![ContentBlock::text(text)])
    };
    r.structured_content = Some(structured);
    r
}

/// The entry for step `i`, created in index order.
fn step(steps: &mut Vec<Map<String, Value>>, i: usize) -> &mut Map<String, Value> {
    let pos = match steps.iter().position(|s| s["step"] == json!(i + 1)) {
        Some(p) => p,
        None => {
            let mut m = Map::new();
            m.insert("step".into(), json!(i + 1));
            m.insert("status".into(), json!("not run"));
            steps.push(m);
            steps.len() - 1
        }
    };
    &mut steps[pos]
}

/// What a model reads: one line for the action, then each step and what it showed.
fn text(
    status: ActionStatus,
    tx: Option<&str>,
    error: Option<&str>,
    steps: &[Map<String, Value>],
    undo: Option<&str>,
) -> String {
    let mut s = format!("Kernos: {}", status.as_str());
    if let Some(t) = tx {
        let _ = write!(s, " (transaction {t})");
    }
    if let Some(e) = error {
        let _ = write!(s, ": {e}");
    }
    s.push('\n');
    for st in steps {
        let _ = writeln!(
            s,
            "step {} {}: {}",
            st["step"],
            st["name"].as_str().unwrap_or("?"),
            st["status"].as_str().unwrap_or("?")
        );
        if let Some(e) = st.get("error").and_then(Value::as_str) {
            let _ = writeln!(s, "  {e}");
        }
        if let Some(t) = st.get("text").and_then(Value::as_str) {
            s.push_str(t);
            if !t.ends_with('\n') {
                s.push('\n');
            }
        }
    }
    if let Some(u) = undo {
        let _ = writeln!(s, "To undo: {u}");
    }
    s
}
