//! Undo of a transaction: its recorded inverses, applied in reverse, each checked first.

use crate::trash::Emptied;
use kernos_core::event::kind;
use kernos_core::{Decision, Effect, EffectKind, Event, Step, TxId};
use kernos_tools::undo::{self, Inverse};
use kernos_tools::{Fingerprint, Record, Recorder};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::payload::{StepFailed, StepFinished, TxUndone, UndoRecorded};
use crate::{Approval, ApprovalRequest, Approver, Engine, EngineError, Result, Session};

/// One thing undo would do.
#[derive(Debug, Clone, Serialize)]
pub struct UndoItem {
    /// The step it belongs to.
    pub step: usize,
    /// What it does, in words.
    pub description: String,
    /// The record.
    #[serde(skip)]
    pub record: Record,
    /// After-state stored when the step finished (absent if it was interrupted).
    #[serde(skip)]
    pub after: Option<Fingerprint>,
}

/// What undoing a transaction would do, last change first.
#[derive(Debug, Clone, Serialize)]
pub struct UndoPlan {
    /// The transaction.
    pub tx: TxId,
    /// The request it came from.
    pub request: Option<String>,
    /// Items in the order they would be applied.
    pub items: Vec<UndoItem>,
}

/// What undo did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UndoReport {
    /// The transaction.
    pub tx: TxId,
    /// Put back.
    pub undone: Vec<String>,
    /// Left alone because they changed since (or similar), with the reason.
    pub conflicts: Vec<String>,
    /// Tried and failed.
    pub failed: Vec<String>,
}

impl UndoReport {
    /// True when everything was put back.
    pub fn complete(&self) -> bool {
        self.conflicts.is_empty() && self.failed.is_empty()
    }
}

fn parse<T: serde::de::DeserializeOwned>(e: &Event) -> Result<T> {
    serde_json::from_value(e.payload.clone()).map_err(|err| EngineError::BadEvent {
        seq: e.seq,
        reason: err.to_string(),
    })
}

impl Engine {
    /// What undoing `tx` would do.
    pub fn undo_plan(&self, tx: TxId) -> Result<UndoPlan> {
        let events = self.events_of(tx)?;
        if events.is_empty() {
            return Err(EngineError::NoSuchTx(tx.to_string()));
        }
        if events.iter().any(|e| e.kind == kind::TX_UNDONE) {
            return Err(EngineError::NothingToUndo(format!(
                "transaction {} was already undone",
                crate::short_id(&tx)
            )));
        }
        let request = events
            .iter()
            .find(|e| e.kind == kind::TX_STARTED)
            .and_then(|e| {
                e.payload
                    .get("plan")
                    .and_then(|p| p.get("request"))
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            });
        // Records per step in order, and the after-states stored when each step ended.
        let mut items: Vec<UndoItem> = Vec::new();
        let mut after_by_step: std::collections::HashMap<usize, Vec<Option<Fingerprint>>> =
            Default::default();
        for e in &events {
            match e.kind.as_str() {
                kind::STEP_UNDO_RECORDED => {
                    let p: UndoRecorded = parse(e)?;
                    for r in p.records {
                        items.push(UndoItem {
                            step: p.step,
                            description: r.describe(),
                            record: r,
                            after: None,
                        });
                    }
                }
                kind::STEP_FINISHED => {
                    let p: StepFinished = parse(e)?;
                    after_by_step.insert(p.step, p.after);
                }
                kind::STEP_FAILED => {
                    let p: StepFailed = parse(e)?;
                    after_by_step.insert(p.step, p.after);
                }
                _ => {}
            }
        }
        if items.is_empty() {
            return Err(EngineError::NothingToUndo(format!(
                "transaction {} changed nothing, so there is nothing to undo",
                crate::short_id(&tx)
            )));
        }
        // Attach after-states: the n-th record of a step gets the step's n-th after-state.
        let mut seen: std::collections::HashMap<usize, usize> = Default::default();
        for item in &mut items {
            let n = seen.entry(item.step).or_insert(0);
            item.after = after_by_step
                .get(&item.step)
                .and_then(|a| a.get(*n).cloned())
                .flatten();
            *n += 1;
        }
        items.reverse();
        Ok(UndoPlan { tx, request, items })
    }

    /// Undoes `tx`: each recorded inverse, newest first, checked right before it is applied;
    /// anything that changed since is reported and left alone. Inverse steps (package
    /// removal, service state) go through policy and `approver` like any step.
    pub fn undo(
        &self,
        tx: TxId,
        s: &Session<'_>,
        approver: &mut dyn Approver,
    ) -> Result<UndoReport> {
        let plan = self.undo_plan(tx)?;
        let emptied = self.trash_emptied(tx);
        self.append(s, "tx.undo_started", tx, serde_json::json!({"items": plan.items.iter().map(|i| &i.description).collect::<Vec<_>>()}))?;
        let mut report = UndoReport {
            tx,
            undone: vec![],
            conflicts: vec![],
            failed: vec![],
        };
        for item in &plan.items {
            if s.cancel.is_cancelled() {
                report
                    .failed
                    .push(format!("{}: cancelled before it ran", item.description));
                continue;
            }
            match &item.record.inverse {
                Inverse::Step { tool, action, args } => {
                    let step = Step {
                        tool: tool.clone(),
                        action: action.clone(),
                        args: args.as_object().cloned().unwrap_or_default(),
                        needs: vec![],
                        why: Some("undo".into()),
                    };
                    match self.run_inverse_step(tx, &step, s, approver) {
                        Ok(()) => report.undone.push(item.description.clone()),
                        Err(e) => report.failed.push(format!("{}: {e}", item.description)),
                    }
                }
                _ => {
                    if let Some(gone) = emptied_from_trash(&item.record.inverse, &s.env, &emptied) {
                        report.conflicts.push(gone);
                        continue;
                    }
                    if let Some(conflict) = undo::check(&item.record, item.after.as_ref()) {
                        report.conflicts.push(conflict);
                        continue;
                    }
                    let applied = self.vault_blobs(&s.env).and_then(|blobs| {
                        // Confined like any step: the record's paths are what it changes.
                        let effects = record_effects(&item.record.inverse);
                        let mut sink = kernos_tools::undo::MemorySink::default();
                        self.confined(s, &effects, &mut sink, |_, _| {
                            undo::apply(&item.record, &s.env, &blobs)
                        })
                    });
                    match applied {
                        Ok(()) => report.undone.push(item.description.clone()),
                        Err(e) => report.failed.push(format!("{}: {e}", item.description)),
                    }
                }
            }
        }
        self.append(
            s,
            kind::TX_UNDONE,
            tx,
            TxUndone {
                undone: report.undone.clone(),
                conflicts: report.conflicts.clone(),
                failed: report.failed.clone(),
            },
        )?;
        Ok(report)
    }

    /// Runs an inverse step (e.g. `pkg.remove` of what an install added) through policy, the
    /// approver and the sandbox, like any other step.
    fn run_inverse_step(
        &self,
        tx: TxId,
        step: &Step,
        s: &Session<'_>,
        approver: &mut dyn Approver,
    ) -> std::result::Result<(), String> {
        let registry = self.registry_for(&s.org);
        let action = registry
            .get(&step.tool, &step.action)
            .ok_or_else(|| format!("unknown action {}", step.name()))?;
        let v = Value::Object(step.args.clone());
        let no_progress = kernos_tools::NoProgress;
        let ctx = kernos_tools::Ctx {
            env: &s.env,
            runner: self.runner.as_ref(),
            cancel: &s.cancel,
            blobs: &self.blobs,
            progress: &no_progress,
            effects: &[],
        };
        let effects = action.effects(&v, &ctx).map_err(|e| e.to_string())?;
        let assessment = kernos_policy::assess(
            action.spec(),
            &effects,
            &self.policy_ctx(&s.env),
            &self.policy,
        );
        match &assessment.decision {
            Decision::Deny { reason } => return Err(format!("refused by policy: {reason}")),
            Decision::Ask { .. } => {
                let name = step.name();
                let req = ApprovalRequest {
                    tx,
                    step: 0,
                    name: &name,
                    args: &step.args,
                    effects: &effects,
                    assessment: &assessment,
                    changes: None,
                    untrusted: false,
                };
                if let Approval::Decline(r) = approver.approve(&req) {
                    return Err(format!("declined: {r}"));
                }
            }
            Decision::Allow => {}
        }
        // An undo is not itself undoable; its records are kept only in memory.
        let mut sink = kernos_tools::undo::MemorySink::default();
        let blobs = self.vault_blobs(&s.env).map_err(|e| e.to_string())?;
        self.confined(s, &effects, &mut sink, |c, sink| {
            let ctx = c.ctx(&s.env, &no_progress, &effects, &blobs);
            let mut rec = Recorder::new(sink, &s.env, &blobs);
            action.execute(&v, &ctx, &mut rec)
        })
        .map(|_| ())
        .map_err(|e| e.to_string())
    }
}

/// The paths an inverse changes, as the effects its confined thread is granted: what it
/// restores, removes (to the trash) or moves back, and where it moves from.
fn record_effects(inverse: &Inverse) -> Vec<Effect> {
    let write = |p: &std::path::Path| Effect::path(EffectKind::Write, p.to_path_buf(), false);
    let delete = |p: &std::path::Path| Effect::path(EffectKind::Delete, p.to_path_buf(), true);
    match inverse {
        Inverse::RestoreFile { path, .. } | Inverse::SetMode { path, .. } => vec![write(path)],
        Inverse::Remove { path, .. } | Inverse::RemoveTree { path } => vec![delete(path)],
        Inverse::MoveBack { from, to } => vec![delete(from), write(to)],
        Inverse::Step { .. } => Vec::new(),
    }
}

/// When `inverse` would bring something back from the trash that is no longer there (the
/// trash was emptied since, by `kernos trash empty` or its size budget), says so plainly:
/// by what, and when, as the journal's `trash.emptied` records it.
fn emptied_from_trash(
    inverse: &Inverse,
    env: &kernos_tools::Env,
    emptied: &[Emptied],
) -> Option<String> {
    let Inverse::MoveBack { from, to } = inverse else {
        return None;
    };
    if !kernos_tools::trash::contains(env, from) || std::fs::symlink_metadata(from).is_ok() {
        return None;
    }
    let why = emptied
        .iter()
        .rev()
        .find(|e| e.paths.iter().any(|p| p == to))
        .map(|e| {
            let at =
                std::time::UNIX_EPOCH + std::time::Duration::from_millis(e.ts_ms.max(0) as u64);
            format!(
                " by {} at {}",
                e.reason,
                humantime::format_rfc3339_seconds(at)
            )
        })
        .unwrap_or_else(|| " since".to_owned());
    Some(format!(
        "{} cannot be put back: it was emptied from Kernos's trash{why}",
        to.display()
    ))
}
