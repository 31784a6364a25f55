//! Plans that run on other machines: the fleet. The home engine does every stage of the one
//! path but the run itself — it plans, judges each step with its own policy, asks its
//! approver, and journals the transaction — and hands the approved plan to a [`Remote`],
//! which runs it on each selected machine's own one path (their policy checks it again) and
//! journals each machine's outcome into the home transaction as it comes. Undo of such a
//! transaction goes back through the same [`Remote`] to the machines that changed something.

use kernos_core::event::kind;
use kernos_core::{Decision, Plan, Risk, TxId};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::payload::{ApprovalDecided, StepDecided, TxFinished, TxStarted};
use crate::{
    ActionOutcome, Approval, ApprovalRequest, Approver, Engine, Handled, Preview, Result, Review,
    Session, StepPreview, TxStatus, Verdict,
};

/// Where an approved plan runs when it is not this machine.
pub trait Remote: Send + Sync + std::fmt::Debug {
    /// Runs `run` on the machines and says how each did. Progress and each machine's
    /// outcome go into the home journal through `journal` (kind, payload; the engine puts them
    /// into the session's action and the run's transaction) as they happen.
    fn run(&self, run: &RemoteRun<'_>, journal: &mut dyn FnMut(&str, Value)) -> RemoteReport;
}

/// What a [`Remote`] is asked to do.
#[derive(Debug)]
pub struct RemoteRun<'a> {
    /// The home transaction.
    pub tx: TxId,
    /// Run a plan, or undo the machines' own transactions.
    pub work: RemoteWork<'a>,
    /// The highest risk approved at home: a machine runs nothing above it.
    pub approved_risk: Risk,
    /// Who approved, as journaled.
    pub approved_by: String,
}

/// Run, or undo.
#[derive(Debug)]
pub enum RemoteWork<'a> {
    /// Run this plan on every selected machine.
    Plan(&'a Plan),
    /// Undo each machine's transaction.
    Undo(&'a [RemoteChange]),
}

/// A machine's transaction that changed something (what undo fans out to).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteChange {
    /// The machine.
    pub node: String,
    /// Its own transaction.
    pub tx: String,
}

/// How a remote run went.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RemoteReport {
    /// Machines it was for.
    pub total: usize,
    /// Machines that did it.
    pub ok: usize,
    /// `3 ok, 1 failed, 1 unreachable`.
    pub summary: String,
    /// Each machine's result, as journaled.
    pub results: Value,
    /// Machines whose transaction changed something and can be undone.
    pub changed: Vec<RemoteChange>,
}

impl RemoteReport {
    /// Whether every machine did it (and there was at least one).
    pub fn all_ok(&self) -> bool {
        self.total > 0 && self.ok == self.total
    }
}

/// A remote run, as the action's outcome.
#[derive(Debug, Clone)]
pub struct RemoteOutcome {
    /// The home transaction.
    pub tx: TxId,
    /// Undo rather than a run.
    pub undo: bool,
    /// How it went.
    pub report: RemoteReport,
}

/// What `tx.finished` of a remote transaction adds: the machines that changed something.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct RemoteFinished {
    #[serde(flatten)]
    finished: TxFinished,
    remote: RemoteReport,
}

impl Engine {
    /// A plan for other machines: previewed here without running anything (each step's
    /// effects from its own arguments, judged by this machine's policy), reviewed, every step
    /// policy asks about approved, then handed to `remote` as one home transaction.
    pub(crate) fn handle_remote(
        &self,
        plan: Plan,
        dry_run: bool,
        s: &Session<'_>,
        approver: &mut dyn Approver,
        remote: &dyn Remote,
    ) -> Result<Handled> {
        if let Err(e) = self.validate_in(&plan, &s.org) {
            let error = e.to_string();
            return Ok(Handled::with(ActionOutcome::Invalid { error }, plan, None));
        }
        let preview = self.preview_remote(&plan, s)?;
        self.previewed(s, &plan, &preview)?;
        if let Some(reason) = preview.denied.clone() {
            return Ok(Handled::with(
                ActionOutcome::Denied { reason },
                plan,
                Some(preview),
            ));
        }
        if dry_run {
            return Ok(Handled::with(ActionOutcome::Previewed, plan, Some(preview)));
        }
        if let Some(why) = self.refused_unrecorded() {
            return Ok(Handled::with(why, plan, Some(preview)));
        }
        self.store.release()?;
        let asked = serde_json::to_value(&plan).unwrap_or(Value::Null);
        let mut review = Review::new(self, s, plan, preview);
        let verdict = approver.review(&mut review)?;
        let (plan, mut preview) = review.into_parts();
        if let Some(reason) = preview.denied.clone() {
            return Ok(Handled::with(
                ActionOutcome::Denied { reason },
                plan,
                Some(preview),
            ));
        }
        if let Verdict::Stop(reason) = verdict {
            return Ok(Handled::with(
                ActionOutcome::Stopped { reason },
                plan,
                Some(preview),
            ));
        }
        // An edit was previewed the local way; judge it again as a remote plan.
        if serde_json::to_value(&plan).unwrap_or(Value::Null) != asked {
            preview = self.preview_remote(&plan, s)?;
            if let Some(reason) = preview.denied.clone() {
                return Ok(Handled::with(
                    ActionOutcome::Denied { reason },
                    plan,
                    Some(preview),
                ));
            }
        }
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
        let mut approved_by = vec![format!("requested by {}", s.actor)];
        for p in &preview.steps {
            let decided = StepDecided {
                step: p.index,
                name: p.name.clone(),
                args: p.args.clone(),
                effects: p.effects.clone(),
                risk: p.assessment.risk,
                decision: decision_word(&p.assessment.decision).into(),
                reasons: p.assessment.reasons.clone(),
                lease: None,
            };
            self.append(s, kind::STEP_DECIDED, tx, decided)?;
            if !matches!(p.assessment.decision, Decision::Ask { .. }) {
                continue;
            }
            let req = ApprovalRequest {
                tx,
                step: p.index,
                name: &p.name,
                args: &p.args,
                effects: &p.effects,
                assessment: &p.assessment,
                changes: None,
                untrusted: plan.untrusted_input,
            };
            let answer = approver.approve(&req);
            let (approved, reason) = match &answer {
                Approval::Approve(r) => (true, r.clone()),
                Approval::Decline(r) => (false, r.clone()),
            };
            let decided = ApprovalDecided {
                step: p.index,
                approved,
                reason: reason.clone(),
            };
            self.append(s, kind::APPROVAL_DECIDED, tx, decided)?;
            if !approved {
                let report = RemoteReport {
                    total: 0,
                    ok: 0,
                    summary: format!("declined at home: {reason}"),
                    results: Value::Array(Vec::new()),
                    changed: Vec::new(),
                };
                self.finish_remote(s, tx, &report, TxStatus::Declined)?;
                return Ok(Handled::with(
                    ActionOutcome::Stopped { reason },
                    plan,
                    Some(preview),
                ));
            }
            approved_by.push(format!("step {}: {reason}", p.index + 1));
        }
        let run = RemoteRun {
            tx,
            work: RemoteWork::Plan(&plan),
            approved_risk: preview.risk,
            approved_by: approved_by.join("; "),
        };
        let report = self.run_remote(s, &run, remote)?;
        let status = if report.all_ok() {
            TxStatus::Committed
        } else {
            TxStatus::Failed
        };
        self.finish_remote(s, tx, &report, status)?;
        let outcome = ActionOutcome::Remote(RemoteOutcome {
            tx,
            undo: false,
            report,
        });
        Ok(Handled::with(outcome, plan, Some(preview)))
    }

    /// Hands `run` to `remote`, journaling what it reports into the home transaction.
    fn run_remote(
        &self,
        s: &Session<'_>,
        run: &RemoteRun<'_>,
        remote: &dyn Remote,
    ) -> Result<RemoteReport> {
        let mut failed = None;
        let report = remote.run(run, &mut |k, payload| {
            if failed.is_none() {
                if let Err(e) = self.append(s, k, run.tx, payload) {
                    failed = Some(e);
                }
            }
        });
        match failed {
            Some(e) => Err(e),
            None => Ok(report),
        }
    }

    fn finish_remote(
        &self,
        s: &Session<'_>,
        tx: TxId,
        report: &RemoteReport,
        status: TxStatus,
    ) -> Result<()> {
        let finished = RemoteFinished {
            finished: TxFinished {
                status,
                done: report.ok,
                total: report.total,
                undo_records: report.changed.len(),
                cpu_ms: 0,
            },
            remote: report.clone(),
        };
        self.append(s, kind::TX_FINISHED, tx, finished)?;
        Ok(())
    }

    /// The machines' transactions a remote transaction changed, or `None` when `tx` ran here.
    pub(crate) fn remote_changes(&self, tx: TxId) -> Result<Option<Vec<RemoteChange>>> {
        let events = self.events_of(tx)?;
        Ok(events
            .iter()
            .find(|e| e.kind == kind::TX_FINISHED)
            .and_then(|e| serde_json::from_value::<RemoteFinished>(e.payload.clone()).ok())
            .map(|f| f.remote.changed))
    }

    /// Undoes a remote transaction: asks once at home (undo always asks), then each machine
    /// that changed something undoes its own transaction through its own path.
    pub(crate) fn undo_remote(
        &self,
        tx: TxId,
        changes: Vec<RemoteChange>,
        dry_run: bool,
        s: &Session<'_>,
        approver: &mut dyn Approver,
        remote: Option<&dyn Remote>,
    ) -> Result<Handled> {
        let ended = |status, error: String| Handled::of(ActionOutcome::Ended { status, error });
        let events = self.events_of(tx)?;
        if events.iter().any(|e| e.kind == kind::TX_UNDONE) {
            return Ok(ended(
                crate::ActionStatus::Failed,
                format!("transaction {} was already undone", crate::short_id(&tx)),
            ));
        }
        let Some(remote) = remote else {
            return Ok(ended(
                crate::ActionStatus::Failed,
                "this transaction ran on the fleet: undo it through the daemon that fanned it out (it has the connection to the nodes)".into(),
            ));
        };
        if changes.is_empty() {
            return Ok(ended(
                crate::ActionStatus::Failed,
                "nothing to undo: no node changed anything in this transaction".into(),
            ));
        }
        let nodes: Vec<&str> = changes.iter().map(|c| c.node.as_str()).collect();
        self.append_action(
            s,
            kind::ACTION_PREVIEWED,
            json!({"undo": {"tx": tx, "remote": changes}}),
        )?;
        if dry_run {
            return Ok(Handled::of(ActionOutcome::Previewed));
        }
        let risk = events
            .iter()
            .filter(|e| e.kind == kind::STEP_DECIDED)
            .filter_map(|e| serde_json::from_value::<Risk>(e.payload["risk"].clone()).ok())
            .max()
            .unwrap_or(Risk::Medium);
        let assessment = kernos_policy::Assessment {
            risk,
            decision: Decision::Ask {
                reason: "undo changes the nodes back".into(),
            },
            reasons: vec![format!(
                "undoes on {} node(s) a change judged {risk} risk when it ran: {}",
                nodes.len(),
                nodes.join(", ")
            )],
        };
        let args = serde_json::Map::from_iter([
            ("tx".to_owned(), json!(tx.to_string())),
            ("nodes".to_owned(), json!(nodes)),
        ]);
        let req = ApprovalRequest {
            tx,
            step: 0,
            name: "undo",
            args: &args,
            effects: &[],
            assessment: &assessment,
            changes: None,
            untrusted: false,
        };
        let by = match approver.approve(&req) {
            Approval::Approve(r) => r,
            Approval::Decline(reason) => {
                return Ok(Handled::of(ActionOutcome::UndoDeclined { tx, reason }));
            }
        };
        let run = RemoteRun {
            tx,
            work: RemoteWork::Undo(&changes),
            approved_risk: risk,
            approved_by: by,
        };
        let report = self.run_remote(s, &run, remote)?;
        self.append(
            s,
            kind::TX_UNDONE,
            tx,
            json!({"undone": [], "conflicts": [], "failed": [], "remote": report}),
        )?;
        Ok(Handled::of(ActionOutcome::Remote(RemoteOutcome {
            tx,
            undo: true,
            report,
        })))
    }

    /// A preview that runs nothing: each step's effects from its literal arguments (a step
    /// fed by another's output is judged on the scope it could reach) and this machine's
    /// policy's verdict. The nodes judge the concrete run again with their own policy.
    pub(crate) fn preview_remote(&self, plan: &Plan, s: &Session<'_>) -> Result<Preview> {
        self.validate_in(plan, &s.org)?;
        let no_progress = kernos_tools::NoProgress;
        let mut steps = Vec::with_capacity(plan.steps.len());
        let mut denied = None;
        for (i, step) in plan.steps.iter().enumerate() {
            let action = self.action_of(step, &s.org)?;
            let action = action.as_ref();
            let spec = action.spec();
            let (args, effects) = if step.refs().is_empty() {
                let v = Value::Object(step.args.clone());
                let effects = action
                    .effects(&v, &self.ctx(s, &no_progress, &[]))
                    .unwrap_or_default();
                (step.args.clone(), effects)
            } else {
                (step.args.clone(), self.scope_effects(plan, step, action, s))
            };
            let assessment = self.assess(plan, action, &effects, s);
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
                changes: None,
                note: Some("runs on the selected nodes".into()),
                output: None,
            });
        }
        let risk = steps
            .iter()
            .map(|p| p.assessment.risk)
            .max()
            .unwrap_or(Risk::Low);
        Ok(Preview {
            steps,
            risk,
            denied,
            read_only: self.is_read_only(plan, &s.org),
            trash: None,
        })
    }
}

fn decision_word(d: &Decision) -> &'static str {
    match d {
        Decision::Allow => "allow",
        Decision::Ask { .. } => "ask",
        Decision::Deny { .. } => "deny",
    }
}
