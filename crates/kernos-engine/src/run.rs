//! Preview and run: the request path from a validated plan to journaled results.

use std::sync::Arc;
use std::time::Instant;

use kernos_core::event::kind;
use kernos_core::{
    ColumnKind, Decision, Effect, EffectKind, Plan, Risk, Step, StepRef, Target, TxId,
};
use kernos_journal::BlobStore;
use kernos_policy::Assessment;
use kernos_tools::{
    Ctx, DynAction, Output, Progress, Record, Recorder, StepRecords, ToolError, UndoSink,
};
use serde_json::{Map, Value};

use crate::payload::{
    ApprovalDecided, StepDecided, StepFailed, StepFinished, StoredOutput, TxFinished, TxStarted,
    UndoRecorded,
};
use crate::{
    Approval, ApprovalRequest, Approver, Engine, Preview, Result, Session, StepAdmission,
    StepPreview, StepReport, StepStatus, TxReport, TxStatus,
};

/// Outputs bigger than this (as JSON) go to the blob store; the journal keeps a cut copy.
const INLINE_OUTPUT_BYTES: usize = 256 * 1024;
/// Rows kept inline when an output is moved to the blob store.
const INLINE_ROWS: usize = 200;

/// Where a step's arguments stand once earlier outputs are known.
enum Resolved {
    /// Ready to run.
    Ready(Map<String, Value>),
    /// A referenced step produced nothing: there is nothing to do.
    Empty(String),
    /// A referenced step has not produced output (it did not run, or only a dry run happened).
    Pending(usize),
}

/// Replaces every step reference in `step`'s arguments by the values of the referenced column.
fn resolve(engine: &Engine, plan: &Plan, step: &Step, outputs: &[Option<Output>]) -> Resolved {
    let refs = step.refs();
    if refs.is_empty() {
        return Resolved::Ready(step.args.clone());
    }
    let mut args = Value::Object(step.args.clone());
    for (ptr, r) in &refs {
        let Some(Some(out)) = outputs.get(r.step) else {
            return Resolved::Pending(r.step);
        };
        let column = column_of(engine, plan, r);
        let values: Vec<Value> = out.column_values(&column);
        if values.is_empty() {
            let src = plan.steps.get(r.step).map(|s| s.name()).unwrap_or_default();
            return Resolved::Empty(format!(
                "nothing to do: step {} ({src}) found nothing",
                r.step + 1
            ));
        }
        if let Some(slot) = args.pointer_mut(ptr) {
            *slot = Value::Array(values);
        }
    }
    match args {
        Value::Object(m) => Resolved::Ready(m),
        _ => Resolved::Ready(step.args.clone()),
    }
}

/// The column a reference reads: its `$field`, or the source action's first path column.
fn column_of(engine: &Engine, plan: &Plan, r: &StepRef) -> String {
    if let Some(f) = &r.field {
        return f.clone();
    }
    plan.steps
        .get(r.step)
        .and_then(|s| engine.registry.get(&s.tool, &s.action))
        .and_then(|a| {
            a.spec()
                .output
                .iter()
                .find(|c| c.kind == ColumnKind::Path)
                .map(|c| c.name.clone())
        })
        .unwrap_or_else(|| "path".into())
}

/// Forwards tool progress to the session's observer.
struct StepProgress<'a> {
    observer: &'a dyn crate::Observer,
    step: usize,
}

impl Progress for StepProgress<'_> {
    fn update(&self, done: u64, total: Option<u64>, what: &str) {
        self.observer.progress(self.step, done, total, what);
    }
}

/// Journals undo records durably before the tool acts, and tracks their after-states.
struct JournalSink<'a> {
    engine: &'a Engine,
    session: &'a Session<'a>,
    tx: TxId,
    step: usize,
    records: StepRecords,
}

impl UndoSink for JournalSink<'_> {
    fn record(&mut self, records: Vec<Record>) -> kernos_tools::Result<()> {
        let first = self.records.records.len();
        // Close earlier records on the same paths *before* journaling: their after-state is
        // now, before the new change happens.
        self.records.push(&records);
        self.engine
            .append(
                self.session,
                kind::STEP_UNDO_RECORDED,
                self.tx,
                UndoRecorded {
                    step: self.step,
                    first,
                    records,
                },
            )
            .map_err(|e| {
                ToolError::Failed(format!(
                    "cannot journal what undo needs, so nothing was changed: {e}"
                ))
            })?;
        Ok(())
    }
}

impl Engine {
    pub(crate) fn ctx<'a>(
        &'a self,
        s: &'a Session<'a>,
        progress: &'a dyn Progress,
        effects: &'a [Effect],
    ) -> Ctx<'a> {
        Ctx {
            env: &s.env,
            runner: self.runner.as_ref(),
            cancel: &s.cancel,
            blobs: &self.blobs,
            progress,
            effects,
        }
    }

    /// The undo-snapshot store of a session's vault: the engine's own for the host operator,
    /// the organisation's under its vault otherwise (no step sees another's snapshots).
    pub(crate) fn vault_blobs(&self, env: &kernos_tools::Env) -> kernos_tools::Result<BlobStore> {
        if env.vault == self.data_dir {
            return Ok(self.blobs.clone());
        }
        let root = env.vault.join("blobs");
        // Opened (created, leftovers cleaned) once per vault; after that only named.
        let opened = self.vaults_opened.lock().is_ok_and(|v| v.contains(&root));
        let store = BlobStore::open(&root, opened).map_err(|e| {
            ToolError::Failed(format!("cannot open the organisation's undo store: {e}"))
        })?;
        if !opened && let Ok(mut v) = self.vaults_opened.lock() {
            v.insert(root);
        }
        Ok(store)
    }

    /// The action a step names, as the session's organisation sees the catalog (shared: the
    /// organisation's catalog may be built for this request only).
    pub(crate) fn action_of(&self, step: &Step, org: &str) -> Result<Arc<dyn DynAction>> {
        self.registry_for(org)
            .get_shared(&step.tool, &step.action)
            .ok_or_else(|| {
                crate::EngineError::Invalid(vec![kernos_core::PlanIssue {
                    pointer: "/steps".into(),
                    message: format!("unknown action {}", step.name()),
                }])
            })
    }

    pub(crate) fn assess(
        &self,
        plan: &Plan,
        action: &dyn DynAction,
        effects: &[Effect],
        s: &Session<'_>,
    ) -> Assessment {
        let a = kernos_policy::assess(
            action.spec(),
            effects,
            &self.policy_ctx(&s.env),
            &self.policy,
        );
        // A model that read untrusted text may have been talked into anything: every step
        // that is not a pure local read waits for a person, whatever the settings say.
        if plan.untrusted_input {
            kernos_policy::assess_untrusted(a, action.spec(), effects)
        } else {
            a
        }
    }

    /// What a plan would do, without changing anything: read steps run for real (their output
    /// feeds later steps and is reused by [`Engine::run`]), change steps are dry-run.
    pub fn preview(&self, plan: &Plan, s: &Session<'_>) -> Result<Preview> {
        self.validate_in(plan, &s.org)?;
        let mut outputs: Vec<Option<Output>> = vec![None; plan.steps.len()];
        let mut steps = Vec::with_capacity(plan.steps.len());
        let mut denied = None;
        let no_progress = kernos_tools::NoProgress;
        for (i, step) in plan.steps.iter().enumerate() {
            let action = self.action_of(step, &s.org)?;
            let action = action.as_ref();
            let spec = action.spec();
            let mut note = None;
            let mut changes = None;
            let mut refused = None;
            let (args, effects, assessed) = match resolve(self, plan, step, &outputs) {
                Resolved::Ready(args) => {
                    let v = Value::Object(args.clone());
                    let effects = match action.effects(&v, &self.ctx(s, &no_progress, &[])) {
                        Ok(e) => e,
                        Err(kernos_tools::ToolError::Refused(why)) => {
                            // A safety rule of the tool (`rm -rf /` holds the data dir): the
                            // preview says so as policy does, not as a medium-risk change.
                            note = Some(format!("refused: {why}"));
                            refused = Some(why);
                            Vec::new()
                        }
                        Err(e) => {
                            note = Some(format!("cannot work out its effects: {e}"));
                            Vec::new()
                        }
                    };
                    // In a plan made after reading untrusted text, a read that talks to the
                    // network (a URL can carry what was read elsewhere) waits for approval
                    // like a change: the preview must not run it.
                    let held = plan.untrusted_input
                        && effects.iter().any(|e| e.kind == EffectKind::Network);
                    if held {
                        note = Some("runs only after approval (untrusted plan, network)".into());
                    }
                    // A read that policy would not let run unasked (a credential store, a
                    // path outside the organisation's scope) is not run to preview it either:
                    // its output would be shown before anyone approved reading it.
                    let assessed = self.assess(plan, action, &effects, s);
                    if spec.is_read_only() && assessed.decision != Decision::Allow && note.is_none()
                    {
                        note = Some("runs only once it is approved".into());
                    }
                    if note.is_none() {
                        let mut sink = kernos_tools::undo::MemorySink::default();
                        let read_only = spec.is_read_only();
                        let blobs = &self.blobs;
                        let done = self.confined(s, &effects, &mut sink, |c, sink| {
                            let ctx = c.ctx(&s.env, &no_progress, &effects, blobs);
                            if read_only {
                                let mut rec = Recorder::new(sink, &s.env, blobs);
                                action.execute(&v, &ctx, &mut rec).map(Ok)
                            } else {
                                action.dry_run(&v, &ctx).map(Err)
                            }
                        });
                        match (done, read_only) {
                            (Ok(Ok(out)), _) => {
                                outputs[i] = Some(out);
                                changes = Some(Vec::new());
                            }
                            (Ok(Err(c)), _) => changes = Some(c),
                            (Err(e), true) => {
                                note = Some(format!("fails: {e}"));
                                changes = Some(Vec::new());
                            }
                            (Err(e), false) => note = Some(format!("would fail: {e}")),
                        }
                    }
                    (args, effects, Some(assessed))
                }
                Resolved::Empty(reason) => {
                    outputs[i] = Some(Output::default());
                    note = Some(reason);
                    changes = Some(Vec::new());
                    (step.args.clone(), Vec::new(), None)
                }
                Resolved::Pending(src) => {
                    note = Some(format!("acts on what step {} produces", src + 1));
                    (
                        step.args.clone(),
                        self.scope_effects(plan, step, action, s),
                        None,
                    )
                }
            };
            let mut assessment = assessed.unwrap_or_else(|| self.assess(plan, action, &effects, s));
            if let Some(why) = refused {
                assessment = kernos_policy::Assessment {
                    risk: Risk::High,
                    decision: Decision::deny(why),
                    reasons: vec!["refused by a safety rule of the tool".into()],
                };
            }
            if let Decision::Deny { reason } = &assessment.decision {
                denied.get_or_insert_with(|| format!("step {} ({}): {reason}", i + 1, step.name()));
            }
            steps.push(StepPreview {
                index: i,
                name: step.name(),
                summary: spec.summary.clone(),
                args,
                effects,
                assessment,
                reversibility: spec.reversibility,
                changes,
                note,
                output: outputs[i].clone(),
            });
        }
        let risk = steps
            .iter()
            .map(|p| p.assessment.risk)
            .max()
            .unwrap_or(Risk::Low);
        let registry = self.registry_for(&s.org);
        let read_only = plan.steps.iter().all(|st| {
            registry
                .get(&st.tool, &st.action)
                .is_some_and(|a| a.spec().is_read_only())
        });
        let trash = self.trash_purge(
            &s.env,
            steps.iter().flat_map(|p| p.changes.iter().flatten()),
        );
        Ok(Preview {
            steps,
            risk,
            denied,
            read_only,
            trash,
        })
    }

    /// Effects of a step whose input is another step's output not yet known: each referenced
    /// input counts as everything under the source step's search root (an upper bound), plus
    /// the effects of the step's own literal arguments.
    pub(crate) fn scope_effects(
        &self,
        plan: &Plan,
        step: &Step,
        action: &dyn DynAction,
        s: &Session<'_>,
    ) -> Vec<Effect> {
        let kinds: Vec<EffectKind> = action
            .spec()
            .effects
            .iter()
            .copied()
            .filter(|k| matches!(k, EffectKind::Write | EffectKind::Delete))
            .collect();
        let mut out = Vec::new();
        let mut literal = Value::Object(step.args.clone());
        for (ptr, r) in step.refs() {
            let root = plan
                .steps
                .get(r.step)
                .and_then(|src| src.args.get("path").and_then(Value::as_str))
                .map(|p| s.env.real(&s.env.resolve(p)))
                .unwrap_or_else(|| s.env.cwd.clone());
            for k in &kinds {
                out.push(Effect {
                    kind: *k,
                    target: Target::Path {
                        path: root.clone(),
                        recursive: true,
                    },
                });
            }
            if let Some(slot) = literal.pointer_mut(&ptr) {
                *slot = Value::Array(Vec::new());
            }
        }
        let no_progress = kernos_tools::NoProgress;
        if let Ok(more) = action.effects(&literal, &self.ctx(s, &no_progress, &[])) {
            out.extend(more);
        }
        out
    }

    /// Runs a plan as one transaction. `preview`, when given, is the one the person approved:
    /// outputs of read steps are reused so changes act on exactly what was shown.
    pub fn run(
        &self,
        plan: &Plan,
        preview: Option<&Preview>,
        s: &Session<'_>,
        approver: &mut dyn Approver,
    ) -> Result<TxReport> {
        self.validate_in(plan, &s.org)?;
        let tx = TxId::generate();
        self.append(
            s,
            kind::TX_STARTED,
            tx,
            TxStarted {
                plan: plan.clone(),
                cwd: s.env.cwd.display().to_string(),
                dry_run: false,
            },
        )?;

        let n = plan.steps.len();
        let mut outputs: Vec<Option<Output>> = vec![None; n];
        let mut reports: Vec<StepReport> = Vec::with_capacity(n);
        let mut status = TxStatus::Committed;
        let mut undo_records = 0usize;
        let mut cpu_ms = 0u64;
        let mut done = 0usize;

        for (i, step) in plan.steps.iter().enumerate() {
            let name = step.name();
            let mut report = StepReport {
                index: i,
                name: name.clone(),
                args: step.args.clone(),
                assessment: None,
                status: StepStatus::Done,
                output: None,
            };
            if status != TxStatus::Committed {
                report.status = StepStatus::Skipped {
                    reason: "an earlier step did not complete".into(),
                };
                reports.push(report);
                continue;
            }
            if s.cancel.is_cancelled() {
                status = TxStatus::Cancelled;
                report.status = StepStatus::Cancelled;
                reports.push(report);
                continue;
            }
            let action = self.action_of(step, &s.org)?;
            let action = action.as_ref();
            let args = match resolve(self, plan, step, &outputs) {
                Resolved::Ready(a) => a,
                Resolved::Empty(reason) => {
                    outputs[i] = Some(Output::default());
                    report.status = StepStatus::Skipped { reason };
                    done += 1;
                    reports.push(report);
                    continue;
                }
                Resolved::Pending(src) => {
                    status = TxStatus::Failed;
                    report.status = StepStatus::Skipped {
                        reason: format!("step {} produced no output", src + 1),
                    };
                    reports.push(report);
                    continue;
                }
            };
            report.args = args.clone();
            let v = Value::Object(args.clone());
            let no_progress = kernos_tools::NoProgress;

            // Effects of the concrete arguments, then policy: computed here, at run time, from
            // what the step will really touch.
            let effects = match action.effects(&v, &self.ctx(s, &no_progress, &[])) {
                Ok(e) => e,
                Err(e) => {
                    self.append(
                        s,
                        kind::STEP_FAILED,
                        tx,
                        StepFailed {
                            step: i,
                            error: e.to_string(),
                            cancelled: false,
                            after: vec![],
                            changes: vec![],
                        },
                    )?;
                    status = TxStatus::Failed;
                    report.status = StepStatus::Failed {
                        error: e.to_string(),
                    };
                    reports.push(report);
                    continue;
                }
            };
            let mut assessment = self.assess(plan, action, &effects, s);
            self.admit(tx, i, &name, (&reports, cpu_ms), &mut assessment, approver);
            // Looked up for every step, so a revoked or expired lease stops the next one.
            let lease = approver.lease();
            let leased = crate::lease::apply(lease.as_ref(), &name, &effects, &mut assessment);
            report.assessment = Some(assessment.clone());
            let decision_name = match &assessment.decision {
                Decision::Allow => "allow",
                Decision::Ask { .. } => "ask",
                Decision::Deny { .. } => "deny",
            };
            self.append(
                s,
                kind::STEP_DECIDED,
                tx,
                StepDecided {
                    step: i,
                    name: name.clone(),
                    args: args.clone(),
                    effects: effects.clone(),
                    risk: assessment.risk,
                    decision: decision_name.into(),
                    reasons: assessment.reasons.clone(),
                    lease: leased.id,
                },
            )?;
            match &assessment.decision {
                Decision::Deny { reason } => {
                    status = TxStatus::Denied;
                    report.status = StepStatus::Denied {
                        reason: reason.clone(),
                    };
                    reports.push(report);
                    continue;
                }
                Decision::Ask { .. } => {
                    let previewed = preview
                        .and_then(|p| p.steps.get(i))
                        .filter(|p| p.args == args);
                    let req = ApprovalRequest {
                        tx,
                        step: i,
                        name: &name,
                        args: &args,
                        effects: &effects,
                        assessment: &assessment,
                        changes: previewed.and_then(|p| p.changes.as_deref()),
                        untrusted: plan.untrusted_input,
                    };
                    let answer = match leased.answer {
                        Some(a) => a,
                        None => approver.approve(&req),
                    };
                    let (approved, reason) = match &answer {
                        Approval::Approve(r) => (true, r.clone()),
                        Approval::Decline(r) => (false, r.clone()),
                    };
                    self.append(
                        s,
                        kind::APPROVAL_DECIDED,
                        tx,
                        ApprovalDecided {
                            step: i,
                            approved,
                            reason: reason.clone(),
                        },
                    )?;
                    if !approved {
                        status = TxStatus::Declined;
                        report.status = StepStatus::Declined { reason };
                        reports.push(report);
                        continue;
                    }
                }
                Decision::Allow => {}
            }

            // A read step the person already saw in the preview is not run twice: later steps
            // act on exactly what was shown.
            let reused = preview
                .and_then(|p| p.steps.get(i))
                .filter(|p| p.args == args && action.spec().is_read_only())
                .and_then(|p| p.output.clone());

            self.append(
                s,
                kind::STEP_STARTED,
                tx,
                serde_json::json!({"step": i, "name": name, "reused_preview": reused.is_some()}),
            )?;
            let started = Instant::now();
            let progress = StepProgress {
                observer: s.observer,
                step: i,
            };
            let mut sink = JournalSink {
                engine: self,
                session: s,
                tx,
                step: i,
                records: StepRecords::default(),
            };
            let result = match reused {
                Some(out) => Ok(out),
                None => self.vault_blobs(&s.env).and_then(|blobs| {
                    self.confined(s, &effects, &mut sink, |c, sink| {
                        let ctx = c.ctx(&s.env, &progress, &effects, &blobs);
                        let mut rec = Recorder::new(sink, &s.env, &blobs);
                        action.execute(&v, &ctx, &mut rec)
                    })
                }),
            };
            sink.records.finish();
            let after = sink.records.after.clone();
            undo_records += after.len();
            let wall_ms = started.elapsed().as_millis() as u64;
            for (kind, payload) in action.take_notices() {
                self.append_action(s, &kind, payload)?;
            }
            match result {
                Ok(out) => {
                    cpu_ms += out.cpu_ms;
                    let stored = self.store_output(&out);
                    self.append(
                        s,
                        kind::STEP_FINISHED,
                        tx,
                        StepFinished {
                            step: i,
                            result: stored,
                            after,
                            wall_ms,
                        },
                    )?;
                    report.output = Some(out.clone());
                    outputs[i] = Some(out);
                    done += 1;
                }
                Err(e) => {
                    let cancelled = matches!(e, ToolError::Cancelled);
                    self.append(
                        s,
                        kind::STEP_FAILED,
                        tx,
                        StepFailed {
                            step: i,
                            error: e.to_string(),
                            cancelled,
                            after,
                            changes: vec![],
                        },
                    )?;
                    if cancelled {
                        status = TxStatus::Cancelled;
                        report.status = StepStatus::Cancelled;
                    } else {
                        status = TxStatus::Failed;
                        report.status = StepStatus::Failed {
                            error: e.to_string(),
                        };
                    }
                }
            }
            reports.push(report);
        }

        self.append(
            s,
            kind::TX_FINISHED,
            tx,
            TxFinished {
                status,
                done,
                total: n,
                undo_records,
                cpu_ms,
            },
        )?;
        if undo_records > 0 {
            // Failing leaves the items in the trash: nothing goes without a record.
            let _ = self.enforce_trash_budget(s, tx);
        }
        Ok(TxReport {
            tx,
            status,
            steps: reports,
            undoable: undo_records > 0,
            cpu_ms,
        })
    }

    /// Asks the approver whether step `step` may start at all (a front end's limits, such as
    /// a quota), unless policy already refuses it. A decline becomes policy's verdict: the
    /// step is journaled as denied with the reason, like any refusal.
    fn admit(
        &self,
        tx: TxId,
        step: usize,
        name: &str,
        (reports, cpu_ms): (&[StepReport], u64),
        assessment: &mut Assessment,
        approver: &mut dyn Approver,
    ) {
        if matches!(assessment.decision, Decision::Deny { .. }) {
            return;
        }
        let (spent, _) = crate::outcome::run_units(reports, cpu_ms, self.step_units);
        let ask = StepAdmission {
            tx,
            step,
            name,
            spent,
            step_units: self.step_units,
        };
        if let Approval::Decline(reason) = approver.admit(&ask) {
            assessment.reasons.insert(0, reason.clone());
            assessment.decision = Decision::deny(reason);
        }
    }

    /// The journaled form of an output: inline when small, otherwise the full output in the
    /// blob store and a cut copy inline.
    fn store_output(&self, out: &Output) -> StoredOutput {
        let json = serde_json::to_vec(out).unwrap_or_default();
        if json.len() <= INLINE_OUTPUT_BYTES {
            return StoredOutput {
                output: out.clone(),
                blob: None,
            };
        }
        let blob = self.blobs.put(&json).ok().map(|b| b.to_hex());
        let mut cut = out.clone();
        cut.rows.truncate(INLINE_ROWS);
        if let Some(t) = &mut cut.text {
            let mut end = t.len().min(64 * 1024);
            while !t.is_char_boundary(end) {
                end -= 1;
            }
            t.truncate(end);
        }
        cut.changes.truncate(INLINE_ROWS);
        cut.truncated = true;
        StoredOutput { output: cut, blob }
    }

    /// The full output of a finished step, from the journal (and the blob store when it was
    /// too large to inline).
    pub fn stored_output(&self, finished: &StepFinished) -> Output {
        if let Some(id) = finished
            .result
            .blob
            .as_deref()
            .and_then(|b| b.parse::<kernos_journal::BlobId>().ok())
        {
            if let Ok(bytes) = self.blobs.get(&id) {
                if let Ok(out) = serde_json::from_slice::<Output>(&bytes) {
                    return out;
                }
            }
        }
        finished.result.output.clone()
    }
}
