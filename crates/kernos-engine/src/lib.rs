//! The Kernos engine: the one path every request takes once it is a plan.
//!
//! ```text
//! Plan ─► validate ─► per step: resolve references ─► effects ─► policy ─► approval
//!      ─► journal the decision ─► record undo (journaled) ─► execute (children sandboxed)
//!      ─► journal the result and after-state fingerprints
//! ```
//!
//! A plan runs as one transaction; `undo` replays the recorded inverses in reverse order after
//! checking that nothing changed since, and reports what it could not put back instead of
//! clobbering it.
//!
//! Front ends do not drive those stages themselves: they call [`Engine::handle`] (see
//! [`path`](crate::Request)), the one request path from plain language or a plan to
//! `action.finished`, supplying who asks ([`Session`]), how approval is obtained
//! ([`Approver`]) and where progress goes ([`Observer`]).

mod confine;
mod error;
mod lease;
mod outcome;
mod path;
pub mod payload;
mod remote;
mod run;
mod store;
mod trash;
mod undo;

use std::path::PathBuf;
use std::sync::Arc;

use kernos_core::{
    ActionId, Actor, CancelToken, Effect, Event, Lease, NewEvent, Plan, ProcessRunner,
    Reversibility, Risk, TxId,
};
use kernos_journal::{BlobStore, Query};
use kernos_policy::Assessment;
use kernos_tools::{Change, Env, Output, Registry};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use confine::DEFAULT_STEP_TIME_LIMIT;
pub use error::{EngineError, Result};
pub use lease::LEASE_INACTIVE;
pub use outcome::{ActionOutcome, ActionStatus};
pub use path::{Ask, Handled, Request, Review, Verdict};
pub use remote::{Remote, RemoteChange, RemoteOutcome, RemoteReport, RemoteRun, RemoteWork};
pub use store::{EventStore, JournalStore, Unrecorded, held, stored};
pub use trash::{PurgedItem, TRASH_EMPTIED, TrashEntry, TrashPurge};
pub use undo::{UndoItem, UndoPlan, UndoReport};

/// How a transaction ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TxStatus {
    /// Every step ran.
    Committed,
    /// A step failed; later steps did not run.
    Failed,
    /// Stopped by Ctrl-C or shutdown.
    Cancelled,
    /// Policy refused a step.
    Denied,
    /// A person (or the non-interactive rule) said no.
    Declined,
}

impl TxStatus {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            TxStatus::Committed => "committed",
            TxStatus::Failed => "failed",
            TxStatus::Cancelled => "cancelled",
            TxStatus::Denied => "denied",
            TxStatus::Declined => "declined",
        }
    }
}

/// How one step ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum StepStatus {
    /// It ran.
    Done,
    /// It failed.
    Failed {
        /// Why.
        error: String,
    },
    /// It did not run because of an earlier step, or because its input was empty.
    Skipped {
        /// Why.
        reason: String,
    },
    /// Policy refused it.
    Denied {
        /// Why.
        reason: String,
    },
    /// Approval was refused.
    Declined {
        /// Why.
        reason: String,
    },
    /// Cancelled while running.
    Cancelled,
}

/// What happened to one step.
#[derive(Debug, Clone, Serialize)]
pub struct StepReport {
    /// Index in the plan.
    pub index: usize,
    /// `tool.action`.
    pub name: String,
    /// Arguments after reference resolution.
    pub args: Map<String, Value>,
    /// Policy's verdict (absent if the step never got that far).
    pub assessment: Option<Assessment>,
    /// How it ended.
    #[serde(flatten)]
    pub status: StepStatus,
    /// Its output.
    pub output: Option<Output>,
}

/// What happened to a plan.
#[derive(Debug, Clone, Serialize)]
pub struct TxReport {
    /// The transaction id (for `kernos undo`).
    pub tx: TxId,
    /// How it ended.
    pub status: TxStatus,
    /// Per step.
    pub steps: Vec<StepReport>,
    /// Whether there is anything to undo.
    pub undoable: bool,
    /// CPU time of sandboxed children, ms.
    pub cpu_ms: u64,
}

impl TxReport {
    /// The paths the run last produced: the path column of the latest step whose output has a
    /// non-empty one (what "them" and "that file" refer to in a follow-up request).
    pub fn produced_paths(&self) -> Vec<String> {
        for s in self.steps.iter().rev() {
            let Some(out) = &s.output else { continue };
            let Some(col) = out
                .columns
                .iter()
                .find(|c| c.kind == kernos_core::ColumnKind::Path)
            else {
                continue;
            };
            let paths: Vec<String> = out
                .column_values(&col.name)
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect();
            if !paths.is_empty() {
                return paths;
            }
        }
        Vec::new()
    }
}

/// Who asks, from where, on behalf of which action, and how to report back.
pub struct Session<'a> {
    /// Working directory, home, data directory.
    pub env: Env,
    /// Who is asking.
    pub actor: Actor,
    /// Organisation.
    pub org: String,
    /// The action this belongs to.
    pub action: ActionId,
    /// Stop request (Ctrl-C, shutdown).
    pub cancel: CancelToken,
    /// Progress and event listener.
    pub observer: &'a dyn Observer,
}

/// Where progress goes: journaled events as they are written, the stages of the request path
/// a front end shows (the plan, its preview, what undo would do), and progress of long steps.
/// Every method has a default that ignores it.
pub trait Observer: Send + Sync {
    /// An event was journaled (for a held run: handed to the journal, `seq` still 0).
    fn event(&self, _ev: &Event) {}
    /// Step `step` made progress.
    fn progress(&self, _step: usize, _done: u64, _total: Option<u64>, _what: &str) {}
    /// A text request was planned (the plan, or why not; a notice when the model tier failed).
    fn planned(&self, _planned: &kernos_planner::llm::Planned) {}
    /// A plan that changes things (or a dry run) was previewed; nothing has run yet.
    fn previewed(&self, _plan: &Plan, _preview: &Preview) {}
    /// What undo would put back, before it asks.
    fn undo_planned(&self, _plan: &UndoPlan) {}
}

/// An observer that ignores everything.
#[derive(Debug, Default, Clone, Copy)]
pub struct Quiet;

impl Observer for Quiet {}

/// A step waiting for a yes or no.
#[derive(Debug)]
pub struct ApprovalRequest<'a> {
    /// The transaction the step belongs to (the daemon journals it with the request).
    pub tx: TxId,
    /// Step index.
    pub step: usize,
    /// `tool.action`.
    pub name: &'a str,
    /// Resolved arguments.
    pub args: &'a Map<String, Value>,
    /// Concrete effects.
    pub effects: &'a [Effect],
    /// Policy's verdict.
    pub assessment: &'a Assessment,
    /// What it would change, when a dry run could say.
    pub changes: Option<&'a [Change]>,
    /// The plan was made after a model read untrusted text: a standing "yes" (`--yes`, an
    /// auto-approving submission) must not cover it; only a person may.
    pub untrusted: bool,
}

/// A yes or no, with the reason that goes into the journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Approval {
    /// Run it.
    Approve(String),
    /// Do not.
    Decline(String),
}

/// A step about to be decided, asked of [`Approver::admit`]: may it start at all? Asked for
/// every step of a run (reads too), before policy's verdict is journaled and before any
/// approval is asked for, so nobody is asked to approve a step that could not start.
#[derive(Debug, Clone, Copy)]
pub struct StepAdmission<'a> {
    /// The transaction.
    pub tx: TxId,
    /// Step index.
    pub step: usize,
    /// `tool.action`.
    pub name: &'a str,
    /// Run units this transaction has used so far (CPU seconds of sandboxed children plus
    /// `step_units` per step that ran), as `action.finished` will charge them.
    pub spent: f64,
    /// Run units charged per step on top of its CPU time (the least a step can cost).
    pub step_units: f64,
}

/// How approval is obtained: the CLI prompt, the daemon's approval queue, a fixed rule, a
/// capability lease (and later an MCP client's elicitation, a fleet controller).
pub trait Approver {
    /// Decides about one step policy asks about (also undo as a whole, named `undo`).
    fn approve(&mut self, req: &ApprovalRequest<'_>) -> Approval;

    /// Whether a step may start, whatever policy says of it: a front end's own limits (the
    /// daemon checks and reserves the organisation's run-unit quota here). A decline ends the
    /// run like a policy refusal (the step is journaled as denied, with the reason); earlier
    /// steps' changes stay undoable. The default admits every step.
    fn admit(&mut self, _step: &StepAdmission<'_>) -> Approval {
        Approval::Approve(String::new())
    }

    /// The capability lease the run's steps are under, as it stands now (asked before every
    /// step, so a revocation or an expiry stops the next step at once). Inside the lease and
    /// within its risk, a step policy asks about is approved without [`Approver::approve`];
    /// outside it, a step policy would let run is asked about; once it is revoked, expired or
    /// spent, no new step starts. A denial stays a denial. The default holds no lease.
    fn lease(&mut self) -> Option<Lease> {
        None
    }

    /// Reviews a plan that changes things, once it is previewed and before any step runs. It
    /// may replace the plan ([`Review::replace`]). The default runs it: each step policy asks
    /// about still goes to [`Approver::approve`].
    fn review(&mut self, _review: &mut Review<'_, '_>) -> Result<Verdict> {
        Ok(Verdict::Run)
    }
}

/// Approves every step policy asks about (`--yes`). Denials still stand.
#[derive(Debug, Clone)]
pub struct ApproveAll(pub String);

impl Approver for ApproveAll {
    fn approve(&mut self, _: &ApprovalRequest<'_>) -> Approval {
        Approval::Approve(self.0.clone())
    }
}

/// Declines every step policy asks about (no TTY and no `--yes`).
#[derive(Debug, Clone)]
pub struct DeclineAll(pub String);

impl Approver for DeclineAll {
    fn approve(&mut self, _: &ApprovalRequest<'_>) -> Approval {
        Approval::Decline(self.0.clone())
    }
}

/// The plan was approved as previewed: steps up to that risk run; a step whose risk rose once
/// its inputs were known (e.g. a found file turned out to be in /etc) is declined.
#[derive(Debug, Clone)]
pub struct ApprovedUpTo {
    /// Highest risk the person saw and accepted.
    pub risk: Risk,
    /// Who approved.
    pub by: String,
}

impl Approver for ApprovedUpTo {
    fn approve(&mut self, req: &ApprovalRequest<'_>) -> Approval {
        if req.assessment.risk <= self.risk {
            Approval::Approve(format!("plan approved by {}", self.by))
        } else {
            Approval::Decline(format!(
                "step {} turned out {} risk ({}), more than the {} risk approved; review it again",
                req.step + 1,
                req.assessment.risk,
                req.assessment
                    .reasons
                    .first()
                    .map(String::as_str)
                    .unwrap_or(""),
                self.risk
            ))
        }
    }
}

/// What the preview says about one step.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepPreview {
    /// Index.
    pub index: usize,
    /// `tool.action`.
    pub name: String,
    /// One-line summary of the action.
    pub summary: String,
    /// Arguments (resolved when their inputs were known).
    pub args: Map<String, Value>,
    /// Concrete effects (for steps fed by a mutating step: their scope).
    pub effects: Vec<Effect>,
    /// Policy's verdict.
    pub assessment: Assessment,
    /// Whether it can be undone.
    pub reversibility: Reversibility,
    /// What it would change, when a dry run could say.
    pub changes: Option<Vec<Change>>,
    /// Anything worth saying (depends on another step's output; the dry run failed …).
    pub note: Option<String>,
    /// The output of a read step, run during the preview (reused by the run).
    #[serde(skip)]
    pub output: Option<Output>,
}

/// What a plan would do, before it does anything.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Preview {
    /// Per step.
    pub steps: Vec<StepPreview>,
    /// Highest risk of any step.
    pub risk: Risk,
    /// Why the plan cannot run, if policy refuses a step.
    pub denied: Option<String>,
    /// True when every step only reads.
    pub read_only: bool,
    /// Older trash items the plan's deletes push out of the trash for good (its budget).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trash: Option<TrashPurge>,
}

/// The actions an organisation has beyond the process's catalog (its installed generated
/// skills, `kernos-skills`): asked for the session's organisation wherever the engine looks an
/// action up, so one organisation's own tools are never another's, and one installed while
/// the process runs counts from its next request. The host supplies it
/// ([`Engine::with_org_tools`]); the engine only asks.
pub trait OrgTools: Send + Sync {
    /// `base` plus `org`'s own actions, or `None` when it has none.
    fn catalog(&self, base: &Arc<Registry>, org: &str) -> Option<Arc<Registry>>;
}

/// The engine.
pub struct Engine {
    registry: Arc<Registry>,
    /// Organisations' own actions on top of `registry`, when the host has any.
    org_tools: Option<Arc<dyn OrgTools>>,
    store: Arc<dyn EventStore>,
    blobs: BlobStore,
    runner: Arc<dyn ProcessRunner>,
    policy: kernos_policy::Config,
    data_dir: PathBuf,
    /// Swapped whole by [`Engine::set_planner`] (a daemon's config reload): a request plans
    /// with the cascade it took at its start.
    planner: std::sync::RwLock<Option<Arc<kernos_planner::llm::Cascade>>>,
    step_units: f64,
    /// Why nothing can be journaled, when that is so: the engine then only reads.
    unrecorded: Option<String>,
    /// Confines the threads that do steps' in-process work (prepared views are kept).
    confiner: kernos_sandbox::ThreadConfiner,
    /// How long a step's in-process work may run.
    step_time_limit: std::time::Duration,
    /// Organisations' undo stores already opened (created and cleaned) by this engine.
    vaults_opened: std::sync::Mutex<std::collections::HashSet<PathBuf>>,
    /// How much the trash may keep.
    trash_budget: kernos_tools::trash::Budget,
}

/// Run units charged per step on top of the CPU seconds of its sandboxed children, unless the
/// front end configures another figure.
pub const DEFAULT_STEP_UNITS: f64 = 0.01;

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("data_dir", &self.data_dir)
            .finish_non_exhaustive()
    }
}

/// A transaction as the history shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TxSummary {
    /// Transaction id.
    pub tx: TxId,
    /// The action it belongs to.
    pub action: Option<ActionId>,
    /// When it started, ms.
    pub started_ms: i64,
    /// Who ran it.
    pub actor: String,
    /// The request text, when there was one.
    pub request: Option<String>,
    /// Step names.
    pub steps: Vec<String>,
    /// How it ended (absent while running or after a crash).
    pub status: Option<TxStatus>,
    /// Whether it was undone.
    pub undone: bool,
    /// Whether `kernos undo` can act on it.
    pub undoable: bool,
}

impl Engine {
    /// An engine over a registry, an event store, the blob store, a process runner (the
    /// sandbox) and policy settings.
    pub fn new(
        registry: Arc<Registry>,
        store: Arc<dyn EventStore>,
        blobs: BlobStore,
        runner: Arc<dyn ProcessRunner>,
        policy: kernos_policy::Config,
        data_dir: PathBuf,
    ) -> Self {
        Engine {
            registry,
            org_tools: None,
            store,
            blobs,
            runner,
            policy,
            data_dir,
            planner: std::sync::RwLock::new(None),
            step_units: DEFAULT_STEP_UNITS,
            unrecorded: None,
            confiner: kernos_sandbox::ThreadConfiner::new(),
            step_time_limit: confine::DEFAULT_STEP_TIME_LIMIT,
            vaults_opened: std::sync::Mutex::default(),
            trash_budget: kernos_tools::trash::Budget::default(),
        }
    }

    /// Stops a step's in-process work after `limit` (steps that run a program have the
    /// sandbox's own wall-clock limit as well).
    pub fn with_step_time_limit(mut self, limit: std::time::Duration) -> Self {
        self.step_time_limit = limit;
        self
    }

    /// Keeps the trash to `budget` (`[trash]` in the configuration): previews name what a
    /// delete pushes out, runs remove it.
    pub fn with_trash_budget(mut self, budget: kernos_tools::trash::Budget) -> Self {
        self.trash_budget = budget;
        self
    }

    /// Marks an engine whose events cannot be journaled (it runs over [`Unrecorded`], e.g.
    /// because the data directory is read-only): reads still run and show their results,
    /// changes and undo are refused — a change must be on record before it happens, or it
    /// could not be undone.
    pub fn unrecorded(mut self, why: impl Into<String>) -> Self {
        self.unrecorded = Some(why.into());
        self
    }

    /// Plans text requests with `planner` (the offline planner, the configured models, the
    /// plan cache) instead of the offline planner alone.
    pub fn with_planner(self, planner: kernos_planner::llm::Cascade) -> Self {
        self.set_planner(planner);
        self
    }

    /// Replaces the planner (a config reload changed the providers): requests that already
    /// took the old one finish with it, later ones plan with the new one.
    pub fn set_planner(&self, planner: kernos_planner::llm::Cascade) {
        *self
            .planner
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Arc::new(planner));
    }

    /// Charges `units` run units per step that runs (metering, quotas).
    pub fn with_step_units(mut self, units: f64) -> Self {
        self.step_units = units;
        self
    }

    /// The planner text requests go through, when one was configured.
    pub fn planner(&self) -> Option<Arc<kernos_planner::llm::Cascade>> {
        self.planner
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The tool registry.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Adds each organisation's own actions to the catalog its requests see.
    pub fn with_org_tools(mut self, tools: Arc<dyn OrgTools>) -> Self {
        self.org_tools = Some(tools);
        self
    }

    /// The catalog `org`'s requests see: the process's, plus the organisation's own actions.
    pub fn registry_for(&self, org: &str) -> Arc<Registry> {
        self.org_tools
            .as_ref()
            .and_then(|t| t.catalog(&self.registry, org))
            .unwrap_or_else(|| self.registry.clone())
    }

    /// The event store.
    pub fn store(&self) -> &dyn EventStore {
        self.store.as_ref()
    }

    /// The blob store.
    pub fn blobs(&self) -> &BlobStore {
        &self.blobs
    }

    /// Checks a plan against the catalog.
    pub fn validate(&self, plan: &Plan) -> Result<()> {
        self.validate_in(plan, kernos_core::LOCAL_ORG)
    }

    /// Checks a plan against the catalog `org`'s requests see.
    pub fn validate_in(&self, plan: &Plan, org: &str) -> Result<()> {
        let issues = self.registry_for(org).validate(plan);
        if issues.is_empty() {
            Ok(())
        } else {
            Err(EngineError::Invalid(issues))
        }
    }

    fn policy_ctx(&self, env: &Env) -> kernos_policy::Context {
        kernos_policy::Context {
            home: env.home.clone(),
            cwd: env.cwd.clone(),
            data_dir: self.data_dir.clone(),
            uid: env.uid,
            pid: std::process::id(),
            scope: env.scope.clone(),
        }
    }

    pub(crate) fn append(
        &self,
        s: &Session<'_>,
        kind: &str,
        tx: TxId,
        payload: impl Serialize,
    ) -> Result<Event> {
        let ev = NewEvent::new(kind, s.actor.clone())
            .org(&s.org)
            .action(s.action)
            .tx(tx)
            .payload(serde_json::to_value(payload).unwrap_or(Value::Null));
        let stored = self.store.append(ev)?;
        s.observer.event(&stored);
        Ok(stored)
    }

    /// The newest transactions first.
    pub fn history(&self, limit: usize, org: Option<&str>) -> Result<Vec<TxSummary>> {
        let q = Query {
            kind: Some(kernos_core::event::kind::TX_STARTED.into()),
            org: org.map(str::to_owned),
            limit: Some(limit),
            newest_first: true,
            ..Query::default()
        };
        let started = self.store.query(&q)?;
        started.iter().map(|e| self.summarise(e)).collect()
    }

    fn summarise(&self, started: &Event) -> Result<TxSummary> {
        use kernos_core::event::kind;
        let tx = started.tx.ok_or(EngineError::BadEvent {
            seq: started.seq,
            reason: "tx.started without tx".into(),
        })?;
        let p: payload::TxStarted =
            serde_json::from_value(started.payload.clone()).map_err(|e| EngineError::BadEvent {
                seq: started.seq,
                reason: e.to_string(),
            })?;
        let events = self.store.query(&Query::tx(tx))?;
        let finished = events.iter().rev().find(|e| e.kind == kind::TX_FINISHED);
        let fin: Option<payload::TxFinished> =
            finished.and_then(|e| serde_json::from_value(e.payload.clone()).ok());
        let undone = events.iter().any(|e| e.kind == kind::TX_UNDONE);
        // A fleet transaction records its nodes' changes in `tx.finished` (undo_records).
        let records = events.iter().any(|e| e.kind == kind::STEP_UNDO_RECORDED)
            || fin.as_ref().is_some_and(|f| f.undo_records > 0);
        Ok(TxSummary {
            tx,
            action: started.action,
            started_ms: started.ts_ms,
            actor: started.actor.0.clone(),
            request: p.plan.request.clone(),
            steps: p.plan.steps.iter().map(|s| s.name()).collect(),
            status: fin.as_ref().map(|f| f.status),
            undone,
            undoable: records && !undone,
        })
    }

    /// Every event of a transaction, in order.
    pub fn events_of(&self, tx: TxId) -> Result<Vec<Event>> {
        Ok(self.store.query(&Query::tx(tx))?)
    }

    /// Finds a transaction by full id, unique prefix, or unique suffix (at least 4 characters).
    pub fn resolve_tx(&self, id: &str) -> Result<TxId> {
        let id = id.trim().to_ascii_lowercase();
        if let Ok(tx) = id.parse::<TxId>() {
            return Ok(tx);
        }
        if id.len() < 4 {
            return Err(EngineError::NoSuchTx(format!(
                "{id} (give at least 4 characters)"
            )));
        }
        let q = Query {
            kind: Some(kernos_core::event::kind::TX_STARTED.into()),
            ..Query::default()
        };
        let mut found: Vec<TxId> = Vec::new();
        for e in self.store.query(&q)? {
            if let Some(t) = e.tx {
                let s = t.to_string();
                if (s.starts_with(&id) || s.ends_with(&id)) && !found.contains(&t) {
                    found.push(t);
                }
            }
        }
        match found.len() {
            0 => Err(EngineError::NoSuchTx(id)),
            1 => Ok(found[0]),
            _ => Err(EngineError::Ambiguous(
                id,
                found
                    .iter()
                    .take(4)
                    .map(|t| t.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            )),
        }
    }

    /// The newest transaction that changed something and was not undone yet.
    pub fn last_undoable(&self, org: Option<&str>) -> Result<Option<TxId>> {
        Ok(self
            .history(200, org)?
            .into_iter()
            .find(|t| t.undoable)
            .map(|t| t.tx))
    }
}

/// The short form of an id shown to people: its last 8 characters (the random part).
pub fn short_id(id: &impl std::fmt::Display) -> String {
    let s = id.to_string();
    s[s.len().saturating_sub(8)..].to_owned()
}
