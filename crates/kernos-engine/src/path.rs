//! The one request path. Every front end — the CLI and its REPL, the daemon's workers, agents,
//! and whatever comes next — hands [`Engine::handle`] a [`Request`] together with who asks (the
//! [`Session`]), how approval is obtained (an [`Approver`]) and where progress goes (the
//! session's [`Observer`](crate::Observer)). None of them repeats a step of it:
//!
//! ```text
//! request ─► plan (planner cascade; plan.created | plan.failed) ─► validate
//!   ├─ reads only ─► run (events committed together) ───────────────────────┐
//!   └─ changes ─► preview (action.previewed) ─► deny? dry run? ─► review ─► run ─► action.finished
//! "undo …" ─► undo plan ─► approval ─► undo ───────────────────────────────────┘
//! ```

use std::sync::OnceLock;

use kernos_core::event::kind;
use kernos_core::{ActionSpec, Decision, Effect, EffectKind, NewEvent, Plan, Risk, Target, TxId};
use kernos_journal::{JournalError, Query};
use kernos_planner::llm::{Cascade, PlanOptions, Planned, events_for};
use kernos_planner::{Conversation, Outcome, PlanContext};
use kernos_policy::Assessment;
use kernos_tools::undo::Inverse;
use serde::Serialize;
use serde_json::{Value, json};

use crate::payload::ActionSubmitted;
use crate::{
    ActionOutcome, ActionStatus, Approval, ApprovalRequest, Approver, Engine, Preview, Result,
    Session, TxReport, UndoPlan,
};

/// What is asked.
#[derive(Debug, Clone)]
pub enum Ask {
    /// Plain language, planned by the engine's planner cascade.
    Text(String),
    /// A plan to run as it is (validated like any other).
    Plan(Plan),
    /// Undo a transaction: an id (full, or a unique part), or `None` for the newest one of the
    /// session's organisation that changed something and was not undone.
    Undo(Option<String>),
}

/// A request as a front end hands it to [`Engine::handle`].
#[derive(Debug, Clone)]
pub struct Request {
    /// What is asked.
    pub ask: Ask,
    /// What the previous request did, for follow-ups ("them", "undo that").
    pub context: Option<Conversation>,
    /// Only preview: plan and dry-run, change nothing.
    pub dry_run: bool,
    /// How a text request may be planned (`--provider`, `--model`, `--no-cache`).
    pub plan_options: PlanOptions,
    /// The `action.submitted` record, for front ends that have not journaled the submission
    /// themselves (the daemon does so before queueing); the engine writes it first.
    pub submitted: Option<ActionSubmitted>,
    /// Run the plan on other machines (the fleet) instead of this one; also how the undo of
    /// such a transaction reaches them. Everything up to the run stays here.
    pub remote: Option<std::sync::Arc<dyn crate::Remote>>,
}

impl Request {
    /// A request for `ask` with no context, not a dry run, default planning.
    pub fn new(ask: Ask) -> Self {
        Request {
            ask,
            context: None,
            dry_run: false,
            plan_options: PlanOptions::default(),
            submitted: None,
            remote: None,
        }
    }
}

/// What [`Engine::handle`] did: the outcome, and what a front end shows with it.
#[derive(Debug, Clone)]
pub struct Handled {
    /// How the action ended.
    pub outcome: ActionOutcome,
    /// The plan, once there was one (as run: an approver may have edited it).
    pub plan: Option<Plan>,
    /// The preview, when the plan needed one (it changes things, or it was a dry run).
    pub preview: Option<Preview>,
}

impl Handled {
    pub(crate) fn of(outcome: ActionOutcome) -> Self {
        Handled {
            outcome,
            plan: None,
            preview: None,
        }
    }

    pub(crate) fn with(outcome: ActionOutcome, plan: Plan, preview: Option<Preview>) -> Self {
        Handled {
            outcome,
            plan: Some(plan),
            preview,
        }
    }

    fn ran(plan: Plan, preview: Option<Preview>, report: TxReport) -> Self {
        Handled::with(ActionOutcome::Ran(report), plan, preview)
    }

    /// The context for the next follow-up ("them", "that file", "undo that") when a plan
    /// ran; `None` leaves the previous one. Built on demand: only conversational front ends
    /// need it.
    pub fn conversation(&self) -> Option<Conversation> {
        match (&self.outcome, &self.plan) {
            (ActionOutcome::Ran(report), Some(plan)) => Some(Conversation::after_run(
                plan,
                report.produced_paths(),
                report.undoable.then(|| report.tx.to_string()),
            )),
            _ => None,
        }
    }
}

/// A plan that changes things, previewed and waiting for the approver's verdict. An approver
/// may replace the plan (an edit); the replacement is validated and previewed again, so what
/// runs is always what was last shown.
pub struct Review<'e, 's> {
    engine: &'e Engine,
    session: &'e Session<'s>,
    plan: Plan,
    preview: Preview,
}

impl std::fmt::Debug for Review<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Review")
            .field("plan", &self.plan)
            .finish_non_exhaustive()
    }
}

impl<'e, 's> Review<'e, 's> {
    /// A review of `plan` as previewed.
    pub(crate) fn new(
        engine: &'e Engine,
        session: &'e Session<'s>,
        plan: Plan,
        preview: Preview,
    ) -> Self {
        Review {
            engine,
            session,
            plan,
            preview,
        }
    }

    /// The plan and preview as they stand after the review.
    pub(crate) fn into_parts(self) -> (Plan, Preview) {
        (self.plan, self.preview)
    }

    /// The plan under review.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// Its preview.
    pub fn preview(&self) -> &Preview {
        &self.preview
    }

    /// Checks a candidate plan against the catalog without adopting it.
    pub fn validate(&self, plan: &Plan) -> Result<()> {
        self.engine.validate_in(plan, &self.session.org)
    }

    /// Adopts an edited plan: validated, previewed again and journaled. Editing never
    /// launders a plan made after reading untrusted text.
    pub fn replace(&mut self, mut plan: Plan) -> Result<()> {
        plan.untrusted_input |= self.plan.untrusted_input;
        self.engine.validate_in(&plan, &self.session.org)?;
        let preview = self.engine.preview(&plan, self.session)?;
        self.engine.previewed(self.session, &plan, &preview)?;
        self.plan = plan;
        self.preview = preview;
        Ok(())
    }
}

/// An approver's verdict on a previewed plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Run it (steps policy asks about still go to [`Approver::approve`]).
    Run,
    /// Do not run it, and why.
    Stop(String),
}

/// The planner used when a front end gave none: the offline one, built on first use.
fn offline_planner() -> &'static Cascade {
    static OFFLINE: OnceLock<Cascade> = OnceLock::new();
    OFFLINE.get_or_init(Cascade::offline)
}

/// What planning a text request came to.
enum Planning {
    Plan(Plan),
    Undo(Option<String>),
    NotUnderstood(ActionOutcome),
}

impl Engine {
    /// Takes a request the whole way: plans it (text), checks it, previews what changes,
    /// asks `approver` where policy says to, runs it sandboxed as one transaction (or undoes
    /// one), and journals every stage, ending with `action.finished`. The session says who
    /// asks and where progress goes.
    ///
    /// Errors are Kernos's own failures (mostly the journal); the action is then recorded as
    /// ended with status `error` when the journal still allows it.
    pub fn handle(
        &self,
        req: Request,
        s: &Session<'_>,
        approver: &mut dyn Approver,
    ) -> Result<Handled> {
        // Planning and a read-only run change nothing, so no step depends on their events
        // being on disk first: they are committed together, with `action.finished`.
        self.store.hold();
        let started = std::time::Instant::now();
        match self.handle_held(req, s, approver) {
            Ok(handled) => {
                // The engine's own time for the action (planning, policy, the run, the journal
                // up to this last commit), recorded so a front end's cost can be told from it.
                let engine_us = started.elapsed().as_micros() as u64;
                self.finish_with(s, &handled.outcome, Some(engine_us))?;
                Ok(handled)
            }
            Err(e) => {
                let _ = self.store.release();
                let ended = ActionOutcome::Ended {
                    status: ActionStatus::Error,
                    error: e.to_string(),
                };
                let _ = self.finish(s, &ended);
                Err(e)
            }
        }
    }

    /// Journals `action.finished` for `outcome`, committing every event still held before it.
    /// Front ends call it directly only for actions that end before reaching the path (cancelled
    /// while queued, refused at shutdown).
    pub fn finish(&self, s: &Session<'_>, outcome: &ActionOutcome) -> Result<()> {
        self.finish_with(s, outcome, None)
    }

    /// [`Engine::finish`], with the engine's time for the action when it ran one
    /// (`engine_us` in the payload).
    fn finish_with(
        &self,
        s: &Session<'_>,
        outcome: &ActionOutcome,
        engine_us: Option<u64>,
    ) -> Result<()> {
        let mut payload = outcome.finished_payload(self.step_units);
        if let (Some(us), Value::Object(m)) = (engine_us, &mut payload) {
            m.insert("engine_us".into(), json!(us));
        }
        let ev = self.action_event(s, kind::ACTION_FINISHED, payload);
        match self.store.append_closing(ev) {
            Ok(stored) => {
                s.observer.event(&stored);
                Ok(())
            }
            Err(JournalError::EarlierAppendFailed(why)) => {
                // An event of this action could not be written, so the rest of its record was
                // refused: end the action as failed, outside the broken link, rather than
                // leave it open.
                let why = format!("part of this action's record could not be journaled: {why}");
                let ev = self.action_event(
                    s,
                    kind::ACTION_FINISHED,
                    json!({"status": ActionStatus::Error, "error": why, "units": 0.0}),
                );
                let stored = self.store.append(ev)?;
                s.observer.event(&stored);
                Err(JournalError::EarlierAppendFailed(why).into())
            }
            Err(e) => Err(e.into()),
        }
    }

    fn handle_held(
        &self,
        req: Request,
        s: &Session<'_>,
        approver: &mut dyn Approver,
    ) -> Result<Handled> {
        let Request {
            ask,
            context,
            dry_run,
            plan_options,
            submitted,
            remote,
        } = req;
        if let Some(sub) = submitted {
            self.append_action(s, kind::ACTION_SUBMITTED, sub)?;
        }
        let plan = match ask {
            Ask::Plan(plan) => plan,
            Ask::Undo(target) => {
                return self.handle_undo(target, dry_run, s, approver, remote.as_deref());
            }
            Ask::Text(text) => {
                let last_tx = context.as_ref().and_then(|c| c.last_tx.clone());
                match self.plan_text(&text, context, &plan_options, s)? {
                    Planning::Plan(plan) => plan,
                    Planning::Undo(target) => {
                        let target = target.or(last_tx);
                        return self.handle_undo(target, dry_run, s, approver, remote.as_deref());
                    }
                    Planning::NotUnderstood(outcome) => return Ok(Handled::of(outcome)),
                }
            }
        };
        match remote {
            Some(r) => self.handle_remote(plan, dry_run, s, approver, r.as_ref()),
            None => self.handle_plan(plan, dry_run, s, approver),
        }
    }

    /// Plans a text request through the planner cascade and journals what it did: model
    /// calls and cache use (metering), then `plan.created` or `plan.failed`.
    fn plan_text(
        &self,
        text: &str,
        conversation: Option<Conversation>,
        opts: &PlanOptions,
        s: &Session<'_>,
    ) -> Result<Planning> {
        let ctx = PlanContext {
            home: s.env.home.display().to_string(),
            cwd: s.env.cwd.display().to_string(),
            conversation,
            org: Some(s.org.clone()),
        };
        let configured = self.planner();
        let planner = configured.as_deref().unwrap_or_else(|| offline_planner());
        // Model time is shared fairly between organisations: charge this one's.
        let opts = PlanOptions {
            client: opts.client.clone().or_else(|| Some(s.org.clone())),
            ..opts.clone()
        };
        let planned: Planned = planner.plan(text, &ctx, &opts);
        for (kind, payload) in events_for(&planned, text) {
            self.append_action(s, kind, payload)?;
        }
        s.observer.planned(&planned);
        Ok(match planned.outcome {
            Outcome::Plan {
                mut plan,
                confidence,
            } => {
                if plan.request.is_none() {
                    plan.request = Some(text.to_owned());
                }
                self.append_action(
                    s,
                    kind::PLAN_CREATED,
                    json!({"plan": plan, "confidence": confidence}),
                )?;
                Planning::Plan(plan)
            }
            Outcome::Undo { target } => Planning::Undo(target),
            Outcome::NotUnderstood {
                message,
                suggestions,
            } => {
                self.append_action(
                    s,
                    kind::PLAN_FAILED,
                    json!({"message": message, "suggestions": suggestions}),
                )?;
                Planning::NotUnderstood(ActionOutcome::NotUnderstood {
                    message,
                    suggestions,
                })
            }
        })
    }

    fn handle_plan(
        &self,
        plan: Plan,
        dry_run: bool,
        s: &Session<'_>,
        approver: &mut dyn Approver,
    ) -> Result<Handled> {
        if let Err(e) = self.validate_in(&plan, &s.org) {
            let error = e.to_string();
            return Ok(Handled::with(ActionOutcome::Invalid { error }, plan, None));
        }
        if self.is_read_only(&plan, &s.org) && !dry_run {
            let report = self.run(&plan, None, s, approver)?;
            return Ok(Handled::ran(plan, None, report));
        }
        let preview = self.preview(&plan, s)?;
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
        // From here a step may change something: every event must be on disk before the next
        // step acts (and the record of what was asked must not wait on a person), so nothing
        // is held any more.
        self.store.release()?;
        let mut review = Review {
            engine: self,
            session: s,
            plan,
            preview,
        };
        let verdict = approver.review(&mut review)?;
        let Review { plan, preview, .. } = review;
        // An edit may have made the plan one policy refuses.
        if let Some(reason) = preview.denied.clone() {
            return Ok(Handled::with(
                ActionOutcome::Denied { reason },
                plan,
                Some(preview),
            ));
        }
        match verdict {
            Verdict::Stop(reason) => Ok(Handled::with(
                ActionOutcome::Stopped { reason },
                plan,
                Some(preview),
            )),
            Verdict::Run => {
                let report = self.run(&plan, Some(&preview), s, approver)?;
                Ok(Handled::ran(plan, Some(preview), report))
            }
        }
    }

    /// "undo …": finds the transaction (only the session's organisation's), shows what undo
    /// would do, asks, undoes.
    fn handle_undo(
        &self,
        target: Option<String>,
        dry_run: bool,
        s: &Session<'_>,
        approver: &mut dyn Approver,
        remote: Option<&dyn crate::Remote>,
    ) -> Result<Handled> {
        self.store.release()?;
        if let Some(why) = self.refused_unrecorded() {
            return Ok(Handled::of(why));
        }
        let failed = |error: String| {
            Handled::of(ActionOutcome::Ended {
                status: ActionStatus::Failed,
                error,
            })
        };
        let tx = match target {
            Some(t) => match self.resolve_tx(&t) {
                Ok(tx) => Some(tx),
                Err(e) => return Ok(failed(e.to_string())),
            },
            None => self.last_undoable(Some(&s.org))?,
        };
        let Some(tx) = tx.filter(|t| self.tx_org(*t).as_deref() == Some(s.org.as_str())) else {
            return Ok(failed(
                "nothing to undo: no transaction of this organisation that changed something is left undone (see `kernos history`)".into(),
            ));
        };
        if let Some(changes) = self.remote_changes(tx)? {
            return self.undo_remote(tx, changes, dry_run, s, approver, remote);
        }
        let plan = match self.undo_plan(tx) {
            Ok(p) => p,
            Err(e) => return Ok(failed(e.to_string())),
        };
        self.append_action(s, kind::ACTION_PREVIEWED, json!({"undo": plan}))?;
        s.observer.undo_planned(&plan);
        if dry_run {
            return Ok(Handled::of(ActionOutcome::UndoPreviewed(plan)));
        }
        let args = serde_json::Map::from_iter([
            ("tx".to_owned(), json!(tx.to_string())),
            (
                "items".to_owned(),
                json!(
                    plan.items
                        .iter()
                        .map(|i| &i.description)
                        .collect::<Vec<_>>()
                ),
            ),
        ]);
        let effects = self.undo_effects(&plan, s);
        let assessment = self.assess_undo(tx, &effects, s);
        if let Decision::Deny { reason } = &assessment.decision {
            return Ok(failed(format!("undo refused: {reason}")));
        }
        let req = ApprovalRequest {
            tx,
            step: 0,
            name: "undo",
            args: &args,
            effects: &effects,
            assessment: &assessment,
            changes: None,
            untrusted: false,
        };
        if let Approval::Decline(reason) = approver.approve(&req) {
            return Ok(Handled::of(ActionOutcome::UndoDeclined { tx, reason }));
        }
        let report = self.undo(tx, s, approver)?;
        Ok(Handled::of(ActionOutcome::Undone(report)))
    }

    /// What undoing touches: each recorded inverse as the effect it has (putting a file back
    /// writes it, removing what a step created deletes it, a tree moved back from the trash is
    /// written recursively), and an inverse step's own declared effects.
    fn undo_effects(&self, plan: &UndoPlan, s: &Session<'_>) -> Vec<Effect> {
        let on = |kind, path: &std::path::Path, recursive| Effect {
            kind,
            target: Target::Path {
                path: path.to_path_buf(),
                recursive,
            },
        };
        let mut out = Vec::new();
        for item in &plan.items {
            match &item.record.inverse {
                Inverse::RestoreFile { path, .. } | Inverse::SetMode { path, .. } => {
                    out.push(on(EffectKind::Write, path, false));
                }
                Inverse::Remove { path, dir } => out.push(on(EffectKind::Delete, path, *dir)),
                Inverse::RemoveTree { path } => out.push(on(EffectKind::Delete, path, true)),
                Inverse::MoveBack { from, to } => {
                    out.push(on(EffectKind::Write, to, from.is_dir()));
                }
                Inverse::Step { tool, action, args } => {
                    out.extend(self.declared_effects(tool, action, args, s));
                }
            }
        }
        out
    }

    /// The effects an action declares for `args` (none when it is unknown or cannot say).
    fn declared_effects(
        &self,
        tool: &str,
        action: &str,
        args: &Value,
        s: &Session<'_>,
    ) -> Vec<Effect> {
        let no_progress = kernos_tools::NoProgress;
        self.registry_for(&s.org)
            .get(tool, action)
            .and_then(|a| a.effects(args, &self.ctx(s, &no_progress, &[])).ok())
            .unwrap_or_default()
    }

    /// Policy's verdict on undoing `tx`: computed from the effects of the inverse, like any
    /// plan, and never below the risk the transaction's own steps were judged at — putting
    /// back an admin-approved change takes someone who could have approved it. Undo always
    /// asks (a person, or a standing approval up to the asker's role).
    fn assess_undo(&self, tx: TxId, effects: &[Effect], s: &Session<'_>) -> Assessment {
        let spec = ActionSpec {
            name: "undo".into(),
            summary: "put back what a transaction changed".into(),
            args_schema: Value::Null,
            effects: vec![EffectKind::Write, EffectKind::Delete],
            reversibility: kernos_core::Reversibility::Reversible,
            output: Vec::new(),
            risk_floor: None,
        };
        let mut a = kernos_policy::assess(&spec, effects, &self.policy_ctx(&s.env), &self.policy);
        let original = self
            .events_of(tx)
            .unwrap_or_default()
            .iter()
            .filter(|e| e.kind == kind::STEP_DECIDED)
            .filter_map(|e| serde_json::from_value::<Risk>(e.payload["risk"].clone()).ok())
            .max();
        if let Some(r) = original.filter(|r| *r > a.risk) {
            a.risk = r;
            a.reasons.insert(
                0,
                format!("undoes a change that was judged {r} risk when it ran"),
            );
        }
        if !matches!(a.decision, Decision::Deny { .. }) {
            a.decision = Decision::Ask {
                reason: "undo changes files back".into(),
            };
        }
        a.reasons
            .push("undo puts back what the transaction changed".into());
        a
    }

    /// The refusal of a change (or undo) by an engine that cannot journal it.
    pub(crate) fn refused_unrecorded(&self) -> Option<ActionOutcome> {
        self.unrecorded.as_ref().map(|why| ActionOutcome::Ended {
            status: ActionStatus::Failed,
            error: format!(
                "not run: the journal cannot be written ({why}), and a change must be on record before it happens so it can be undone; make the data directory writable. Reads still work"
            ),
        })
    }

    /// Journals `action.previewed` and shows the preview to the observer.
    pub(crate) fn previewed(&self, s: &Session<'_>, plan: &Plan, preview: &Preview) -> Result<()> {
        self.append_action(
            s,
            kind::ACTION_PREVIEWED,
            json!({"preview": preview, "plan": plan}),
        )?;
        s.observer.previewed(plan, preview);
        Ok(())
    }

    /// Whether every step of `plan` only reads (actions as `org` sees them).
    pub fn is_read_only(&self, plan: &Plan, org: &str) -> bool {
        let registry = self.registry_for(org);
        plan.steps.iter().all(|s| {
            registry
                .get(&s.tool, &s.action)
                .is_some_and(|a| a.spec().is_read_only())
        })
    }

    /// The organisation a transaction belongs to (so no org acts on another's work).
    pub fn tx_org(&self, tx: TxId) -> Option<String> {
        let q = Query {
            tx: Some(tx.to_string()),
            kind: Some(kind::TX_STARTED.into()),
            limit: Some(1),
            ..Query::default()
        };
        self.store
            .query(&q)
            .ok()
            .and_then(|v| v.into_iter().next())
            .map(|e| e.org)
    }

    fn action_event(&self, s: &Session<'_>, kind: &str, payload: Value) -> NewEvent {
        NewEvent::new(kind, s.actor.clone())
            .org(&s.org)
            .action(s.action)
            .payload(payload)
    }

    /// Appends an event of the session's action that belongs to no transaction.
    pub fn append_action(
        &self,
        s: &Session<'_>,
        kind: &str,
        payload: impl Serialize,
    ) -> Result<kernos_core::Event> {
        let payload = serde_json::to_value(payload).unwrap_or(Value::Null);
        let stored = self.store.append(self.action_event(s, kind, payload))?;
        s.observer.event(&stored);
        Ok(stored)
    }
}
