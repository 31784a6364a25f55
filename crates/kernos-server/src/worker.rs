//! The blocking side: workers take queued actions and hand each to the engine's one request
//! path ([`kernos_engine::Engine::handle`]), as every front end does. Steps that policy asks
//! about wait for POST /v1/approvals/{id}.

use std::sync::Arc;
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use kernos_core::event::kind;
use kernos_core::{ActionId, ApprovalId, CancelToken, Event, NewEvent, Risk};
use kernos_engine::{
    ActionOutcome, ActionStatus, Approval, ApprovalRequest, Approver, Ask, Quiet, Request, Session,
    StepAdmission,
};
use kernos_journal::{Journal, Query};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::{KEY_CREATED, KEY_REVOKED, Principal};
use crate::limits::{Usage, now_ms};
use crate::sched::Job;
use crate::sessions::{SESSION_CREATED, SESSION_ENDED};
use crate::{DAEMON_STARTED, DAEMON_STOPPED, Pending, State};

pub use kernos_core::event::kind::{ACTION_FINISHED, ACTION_INTERRUPTED, ACTION_PREVIEWED};

/// An answer to a waiting step.
#[derive(Debug, Clone)]
pub(crate) struct Answer {
    pub(crate) approved: bool,
    pub(crate) reason: String,
}

/// Starts a worker thread (one more thread serving the run slots).
pub(crate) fn spawn(st: &Arc<State>) -> std::io::Result<()> {
    let s = st.clone();
    std::thread::Builder::new()
        .name("kernos-worker".into())
        .spawn(move || run(s))
        .map(|_| ())
}

/// The worker loop: one action at a time, each holding a run slot the scheduler gave it, until
/// shutdown (queued actions are then journaled as aborted by [`abort_queued`]) or until the
/// thread is one too many.
fn run(st: Arc<State>) {
    let mut finished: Option<(String, bool)> = None;
    while let Some(job) = st
        .sched
        .next_job(finished.as_ref().map(|(org, holds)| (org.as_str(), *holds)))
    {
        let holds_slot = start(&st, &job);
        finished = Some((job.principal.org.clone(), holds_slot));
    }
}

/// Runs a job that got a slot, unless it was cancelled or the daemon is stopping. Returns
/// whether it still holds the slot (a job whose step was declined after waiting ends
/// without one).
fn start(st: &Arc<State>, job: &Job) -> bool {
    if st.is_shutting_down() {
        abort(st, job);
        return true;
    }
    let was_cancelled = st
        .cancelled
        .lock()
        .map(|mut c| c.remove(&job.action))
        .unwrap_or(false);
    if was_cancelled {
        finish(
            st,
            job,
            ActionStatus::Cancelled,
            "cancelled before it started",
        );
        return true;
    }
    let cancel = CancelToken::new();
    if let Ok(mut r) = st.running.lock() {
        r.insert(job.action, (job.principal.org.clone(), cancel.clone()));
    }
    let holds_slot = run_job(st, job, &cancel);
    // Its `action.finished` was counted as used before the append returned (the commit hook
    // runs first), so dropping the reservation now leaves no moment uncounted.
    if st.config().quotas.contains_key(&job.principal.org) {
        crate::quota::release(st, job.action);
    }
    if let Ok(mut r) = st.running.lock() {
        r.remove(&job.action);
    }
    holds_slot
}

fn abort(st: &State, job: &Job) {
    finish(
        st,
        job,
        ActionStatus::Aborted,
        "the daemon shut down before the action started; submit it again",
    );
}

/// Journals queued actions a shutdown took off the queue as aborted.
pub(crate) fn abort_queued(st: &State, jobs: &[Job]) {
    for job in jobs {
        abort(st, job);
    }
}

/// The session of a job: who asks (the key's principal), from where, for which action.
fn session<'a>(st: &State, job: &Job, cancel: &CancelToken, observer: &'a Quiet) -> Session<'a> {
    Session {
        env: crate::scope::env_for(st, &job.principal.org, job.req.cwd.as_deref()),
        actor: job.principal.actor.clone(),
        org: job.principal.org.clone(),
        action: job.action,
        cancel: cancel.clone(),
        observer,
    }
}

/// Ends a job that never reached the request path (cancelled while queued, shutdown).
pub(crate) fn finish(st: &State, job: &Job, status: ActionStatus, error: &str) {
    let quiet = Quiet;
    let s = session(st, job, &CancelToken::new(), &quiet);
    let outcome = ActionOutcome::Ended {
        status,
        error: error.to_owned(),
    };
    if let Err(e) = st.engine.finish(&s, &outcome) {
        tracing::error!(action = %job.action, "cannot journal the end of the action: {e}");
    }
}

/// Runs one job on the engine's request path; this adapter supplies only who asks (the
/// key's principal), how approval is obtained (the API's approval queue) and where progress
/// goes (nowhere: subscribers follow the journal). Returns whether the job still holds its
/// slot.
fn run_job(st: &Arc<State>, job: &Job, cancel: &CancelToken) -> bool {
    let ask = match (job.req.undo.clone(), &job.req.plan, &job.req.request) {
        (Some(t), _, _) if t == "last" => Ask::Undo(None),
        (Some(t), _, _) => Ask::Undo(Some(t)),
        (None, Some(p), _) => {
            let mut p = p.clone();
            if p.request.is_none() {
                p.request = job.req.request.clone();
            }
            Ask::Plan(p)
        }
        (None, None, Some(text)) => Ask::Text(text.clone()),
        (None, None, None) => {
            finish(st, job, ActionStatus::Invalid, "neither request nor plan");
            return true;
        }
    };
    let request = Request {
        ask,
        context: job
            .req
            .context
            .clone()
            .and_then(|c| serde_json::from_value(c).ok()),
        dry_run: job.req.dry_run,
        plan_options: kernos_planner::llm::PlanOptions::default(),
        // Journaled by the API handler before the job was queued.
        submitted: None,
        remote: fleet_remote(st, job),
    };
    if job.req.on.is_some() && request.remote.is_none() {
        finish(
            st,
            job,
            ActionStatus::Invalid,
            "`on` names fleet nodes, but this daemon fans out no fleet for the organisation (see [fleet] controller)",
        );
        return true;
    }
    let quiet = Quiet;
    let s = session(st, job, cancel, &quiet);
    let mut approver = ApiApprover {
        st: st.clone(),
        principal: job.principal.clone(),
        action: job.action,
        auto: job.req.auto_approve,
        agent: job.agent.clone(),
        cancel: cancel.clone(),
        holds_slot: true,
        grantee: grantee(job),
        lease: job.lease.clone(),
        max_risk: job.max_risk,
        fleet: job.fleet.clone(),
    };
    if let Err(e) = st.engine.handle(request, &s, &mut approver) {
        tracing::error!(action = %job.action, "the action ended with an error: {e}");
    }
    approver.holds_slot
}

/// Where a job runs when it is for the fleet: the nodes `on` selects (checked at submission),
/// or, for an undo, the nodes a fanned-out transaction changed. `None`: here.
fn fleet_remote(st: &Arc<State>, job: &Job) -> Option<Arc<dyn kernos_engine::Remote>> {
    let org = &job.principal.org;
    if !st.fleet.controls(org) {
        return None;
    }
    let selector = match &job.req.on {
        Some(s) => Some(kernos_fleet::Selector::parse(s).ok()?),
        None if job.req.undo.is_some() => None,
        None => return None,
    };
    Some(Arc::new(crate::fleet::FleetRemote {
        st: st.clone(),
        org: org.clone(),
        selector,
        rollout: job.req.rollout.clone().unwrap_or_default(),
        fanout: job.action.to_string(),
        actor: job.principal.actor.0.clone(),
    }))
}

/// Whom a job's steps act for, as leases name grantees: the agent whose step it is, else the
/// API key that submitted it (the local socket's user holds no lease).
fn grantee(job: &Job) -> Option<String> {
    if let Some(agent) = &job.agent {
        return Some(format!("agent:{agent}"));
    }
    if let Some(schedule) = &job.schedule {
        return Some(format!("schedule:{schedule}"));
    }
    if let Some(monitor) = &job.monitor {
        return Some(format!("monitor:{monitor}"));
    }
    job.principal.key_id.as_ref().map(|k| format!("key:{k}"))
}

/// Whether transaction `tx` belongs to `org` (so no org can undo another's work).
pub(crate) fn tx_in_org(st: &State, tx: kernos_core::TxId, org: &str) -> bool {
    st.engine.tx_org(tx).as_deref() == Some(org)
}

/// The events of transaction `id` (its id or a unique part of it) when it belongs to `org`.
/// Another organisation's transaction is answered exactly like one that does not exist.
pub(crate) fn org_transaction(
    st: &State,
    id: &str,
    org: &str,
) -> Result<Option<Vec<kernos_core::Event>>, kernos_engine::EngineError> {
    match st.engine.resolve_tx(id) {
        Ok(tx) if tx_in_org(st, tx, org) => st.engine.events_of(tx).map(Some),
        Ok(_) | Err(kernos_engine::EngineError::NoSuchTx(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Answers approval requests through the API: journals `approval.requested` and waits for
/// POST /v1/approvals/{id} (or the timeout, or cancellation).
struct ApiApprover {
    st: Arc<State>,
    principal: Principal,
    action: ActionId,
    auto: bool,
    /// The agent whose plan this is, if any (named in the approval request).
    agent: Option<String>,
    cancel: CancelToken,
    /// Whether the action holds a run slot (not after a declined wait).
    holds_slot: bool,
    /// Whom the steps act for (`agent:<id>`, `key:<id>`), for finding their lease.
    grantee: Option<String>,
    /// The lease the run's steps came under: once found, the run stays with it (looked up
    /// again by id before every step, so its revocation or expiry stops the next step).
    lease: Option<String>,
    /// The highest risk the lease may approve for this run, if lower than its own.
    max_risk: Option<kernos_core::Risk>,
    /// A plan fanned out to this node: approved at home up to a risk, never queued here.
    fleet: Option<crate::sched::FleetGrant>,
}

impl Approver for ApiApprover {
    fn approve(&mut self, req: &ApprovalRequest<'_>) -> Approval {
        let risk = req.assessment.risk;
        if let Some(g) = &self.fleet {
            return if risk <= g.risk {
                Approval::Approve(format!(
                    "approved at home for fan-out {}: {}",
                    g.fanout, g.by
                ))
            } else {
                Approval::Decline(format!(
                    "{risk} risk is above what this node runs from the fleet ({}: what home approved, capped by this node's [fleet] max_risk)",
                    g.risk
                ))
            };
        }
        // A standing "yes" never covers a plan made after reading untrusted text.
        if self.auto
            && !req.untrusted
            && self
                .principal
                .role
                .max_approvable()
                .is_some_and(|m| risk <= m)
        {
            return Approval::Approve(format!(
                "approved at submission by {} ({})",
                self.principal.actor, self.principal.role
            ));
        }
        // Waiting for a person holds no run slot: it goes to other work until the answer.
        let parked = match self.st.sched.park(&self.principal.org, self.holds_slot) {
            Ok(p) => p,
            Err(e) => return Approval::Decline(e.to_string()),
        };
        if parked.spawn {
            if let Err(e) = spawn(&self.st) {
                tracing::error!("cannot start a worker thread for the freed slot: {e}");
                self.st.sched.spawn_failed();
            }
        }
        let answer = self.wait_for_answer(req);
        // A step that will run takes a slot again; a declined one only journals its end, so
        // a cancelled or refused action ends at once, however busy the slots are.
        self.holds_slot = matches!(answer, Approval::Approve(_));
        self.st.sched.unpark(&self.principal.org, self.holds_slot);
        answer
    }

    fn admit(&mut self, step: &StepAdmission<'_>) -> Approval {
        match crate::quota::admit_step(
            &self.st,
            &self.principal.org,
            self.action,
            step.spent,
            step.step_units,
        ) {
            Ok(()) => Approval::Approve(String::new()),
            Err(e) => Approval::Decline(e.to_string()),
        }
    }

    fn lease(&mut self) -> Option<kernos_core::Lease> {
        let table = self.st.leases.read().ok()?;
        let mut found = match &self.lease {
            // Only a lease of the run's own organisation.
            Some(id) => table
                .get(id)
                .filter(|l| l.org == self.principal.org)?
                .clone(),
            None => {
                let l = table
                    .active_for(&self.principal.org, self.grantee.as_deref()?, now_ms())?
                    .clone();
                self.lease = Some(l.id.clone());
                l
            }
        };
        if let Some(cap) = self.max_risk {
            found.max_risk = found.max_risk.min(cap);
        }
        Some(found)
    }
}

impl ApiApprover {
    /// Journals `approval.requested` and waits (parked) for POST /v1/approvals/{id}, the
    /// timeout, or cancellation.
    fn wait_for_answer(&self, req: &ApprovalRequest<'_>) -> Approval {
        let risk = req.assessment.risk;
        let id = ApprovalId::generate();
        let timeout = Duration::from_secs(self.st.config().approval_timeout_s);
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let view = crate::wire::ApprovalView {
            approval: id.to_string(),
            action: self.action.to_string(),
            tx: req.tx.to_string(),
            step: req.step,
            name: req.name.to_owned(),
            args: Value::Object(req.args.clone()),
            risk,
            reasons: req.assessment.reasons.clone(),
            changes: req
                .changes
                .map(|c| c.iter().map(|c| c.describe()).collect())
                .unwrap_or_default(),
            requested_by: self.principal.actor.0.clone(),
            requested_ms: now_ms(),
            expires_ms: now_ms() + timeout.as_millis() as i64,
            min_role: if risk > Risk::Medium {
                crate::Role::Admin
            } else {
                crate::Role::Operator
            },
            agent: self.agent.clone(),
        };
        // Registered before it is journaled, so a client reacting to the event finds it.
        if let Ok(mut a) = self.st.approvals.lock() {
            a.insert(
                id,
                Pending {
                    view: view.clone(),
                    risk,
                    answer: tx,
                    org: self.principal.org.clone(),
                },
            );
        }
        let ev = NewEvent::new(kind::APPROVAL_REQUESTED, self.principal.actor.clone())
            .org(&self.principal.org)
            .action(self.action)
            .tx(req.tx)
            .payload(serde_json::to_value(&view).unwrap_or(Value::Null));
        // Waited for even in a deferral scope: whoever answers must find it in the journal.
        if let Err(e) = self.st.store.append_now(ev) {
            self.forget(id);
            return Approval::Decline(format!("cannot journal the approval request: {e}"));
        }
        let deadline = Instant::now() + timeout;
        let answer = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break None;
            }
            match rx.recv_timeout(left.min(Duration::from_millis(100))) {
                Ok(a) => break Some(a),
                Err(RecvTimeoutError::Timeout) => {
                    if self.cancel.is_cancelled() {
                        break Some(Answer {
                            approved: false,
                            reason: "cancelled while waiting for approval".into(),
                        });
                    }
                }
                Err(RecvTimeoutError::Disconnected) => break None,
            }
        };
        self.forget(id);
        match answer {
            Some(a) if a.approved => Approval::Approve(a.reason),
            Some(a) => Approval::Decline(a.reason),
            None => Approval::Decline(format!(
                "no answer within {} s (approval {id}); submit the action again",
                timeout.as_secs()
            )),
        }
    }

    fn forget(&self, id: ApprovalId) {
        if let Ok(mut a) = self.st.approvals.lock() {
            a.remove(&id);
        }
    }
}

/// Adds a finished action to usage and metrics.
pub(crate) fn account(usage: &mut Usage, metrics: &crate::metrics::Metrics, e: &Event) {
    let p = &e.payload;
    let field = |k: &str| p.get(k).cloned().unwrap_or(Value::Null);
    account_fields(
        usage,
        metrics,
        &e.org,
        e.ts_ms,
        &FinishedPayload {
            units: field("units"),
            steps_run: field("steps_run"),
            cpu_ms: field("cpu_ms"),
            status: field("status"),
        },
    );
}

/// What accounting reads of an `action.finished` event. Parsed from the published JSON on the
/// writer thread for every action, so only these fields are built; the rest (every step's
/// summary) is skipped. Each field is any JSON value, read as leniently as [`account`] does.
#[derive(Deserialize)]
struct FinishedView {
    org: String,
    ts_ms: i64,
    #[serde(default)]
    action: Option<String>,
    #[serde(default)]
    payload: FinishedPayload,
}

#[derive(Default, Deserialize)]
struct FinishedPayload {
    #[serde(default)]
    units: Value,
    #[serde(default)]
    steps_run: Value,
    #[serde(default)]
    cpu_ms: Value,
    #[serde(default)]
    status: Value,
}

fn account_fields(
    usage: &mut Usage,
    metrics: &crate::metrics::Metrics,
    org: &str,
    ts_ms: i64,
    p: &FinishedPayload,
) {
    let units = p.units.as_f64().unwrap_or(0.0);
    let steps = p.steps_run.as_u64().unwrap_or(0);
    let cpu = p.cpu_ms.as_u64().unwrap_or(0);
    usage.add(org, ts_ms, units, steps, cpu);
    metrics.action_finished(p.status.as_str().unwrap_or("unknown"));
    metrics.units(org, units);
}

/// Keeps read models current from the published stream (runs on the writer thread: cheap).
pub(crate) fn on_published(st: &State, p: &crate::Published) {
    // The transparency log first: one leaf per event, in order (queued: the log's feeder
    // thread hashes it into the tree).
    st.tlog.live.enqueue(p.seq, &p.kind, &p.leaf);
    st.agents.on_published(p);
    st.schedules.on_published(p);
    st.monitors.on_published(p);
    let leases = st
        .leases
        .read()
        .is_ok_and(|t| t.concerns(&p.kind, &p.json, p.action.as_deref()));
    if leases && let (Some(e), Ok(mut t)) = (p.event(), st.leases.write()) {
        t.apply(&e);
    }
    match p.kind.as_str() {
        KEY_CREATED | KEY_REVOKED => {
            if let (Some(e), Ok(mut k)) = (p.event(), st.keys.write()) {
                k.apply(&e);
            }
            if p.kind == KEY_REVOKED {
                // Applied first, so a stream that wakes up finds its key revoked.
                st.revocations.send_modify(|n| *n = n.wrapping_add(1));
            }
        }
        SESSION_CREATED | SESSION_ENDED => {
            if let (Some(e), Ok(mut t)) = (p.event(), st.sessions.write()) {
                t.apply(&e);
            }
            if p.kind == SESSION_ENDED {
                // Applied first, so a stream of that session that wakes up finds it ended.
                st.revocations.send_modify(|n| *n = n.wrapping_add(1));
            }
        }
        ACTION_FINISHED => {
            // Parsed once for both read models: the payload can be large.
            if let Ok(f) = serde_json::from_str::<FinishedView>(&p.json) {
                if let Ok(mut u) = st.usage.lock() {
                    account_fields(&mut u, &st.metrics, &f.org, f.ts_ms, &f.payload);
                }
                if let Ok(mut d) = st.daily.lock() {
                    let units = f.payload.units.as_f64().unwrap_or(0.0);
                    d.finished(&f.org, f.ts_ms, f.action.as_deref(), units);
                }
            }
        }
        kind::ACTION_SUBMITTED | kind::LLM_CALL | kind::LLM_PLAN => {
            if let Ok(mut d) = st.daily.lock() {
                d.on_published(p);
            }
        }
        _ => {}
    }
}

/// At start: finds actions a crash left unfinished since the last `daemon.started` that has no
/// matching `daemon.stopped`, journals each as interrupted and finished, and reports them.
pub(crate) fn recover(
    st: &State,
    j: &Journal,
) -> Result<Vec<(ActionId, String)>, kernos_journal::JournalError> {
    let last = j.query(&Query {
        kind_prefix: Some("daemon.".into()),
        newest_first: true,
        limit: Some(1),
        ..Query::default()
    })?;
    let Some(last) = last.into_iter().next() else {
        return Ok(Vec::new());
    };
    if last.kind == DAEMON_STOPPED {
        return Ok(Vec::new());
    }
    let since = last.seq;
    let mut open: Vec<(ActionId, String, Option<String>)> = Vec::new();
    j.for_each(
        &Query {
            after: Some(since),
            kind: Some(kind::ACTION_SUBMITTED.into()),
            ..Query::default()
        },
        |e| {
            if let Some(a) = e.action {
                open.push((a, e.org.clone(), Some(e.actor.0.clone())));
            }
            true
        },
    )?;
    let mut done = std::collections::HashSet::new();
    j.for_each(
        &Query {
            after: Some(since),
            kind: Some(ACTION_FINISHED.into()),
            ..Query::default()
        },
        |e| {
            if let Some(a) = e.action {
                done.insert(a);
            }
            true
        },
    )?;
    let mut out = Vec::new();
    for (a, org, actor) in open {
        if done.contains(&a) {
            continue;
        }
        let actor = kernos_core::Actor(actor.unwrap_or_else(|| "system".into()));
        let detail = "the daemon stopped (crash or kill) while this action was queued or running; it did not complete. Check what it did with GET /v1/state/actions/{id} and submit it again if needed";
        for (k, payload) in [
            (ACTION_INTERRUPTED, json!({"detail": detail})),
            (
                ACTION_FINISHED,
                json!({"status": "interrupted", "error": detail, "units": 0.0}),
            ),
        ] {
            st.store.append_now(
                NewEvent::new(k, actor.clone())
                    .org(&org)
                    .action(a)
                    .payload(payload),
            )?;
        }
        tracing::warn!(action = %a, org = %org, "action interrupted by a crash: marked interrupted");
        out.push((a, org));
    }
    Ok(out)
}

/// Journals `daemon.started`, and `audit.config.changed` when the config differs from the
/// one recorded at the previous start.
pub(crate) fn journal_start(
    st: &State,
    config_text: Option<&str>,
) -> Result<(), kernos_journal::JournalError> {
    let hash = config_text.map(|t| {
        use sha2::Digest;
        kernos_core::hex::encode(&sha2::Sha256::digest(t.as_bytes()))
    });
    if let Some(h) = &hash {
        let prev = st.store.with_reader(|j| {
            j.query(&Query {
                kind: Some("audit.config.changed".into()),
                newest_first: true,
                limit: Some(1),
                ..Query::default()
            })
        })?;
        let before = prev.first().map(|e| e.payload["after"].clone());
        let before_hash = before
            .as_ref()
            .and_then(|b| b.get("sha256"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        if before_hash.as_deref() != Some(h.as_str()) {
            st.store.append_now(
                NewEvent::new("audit.config.changed", st.local_actor.clone()).payload(json!({
                    "actor": st.local_actor,
                    "org": kernos_core::LOCAL_ORG,
                    "role": "owner",
                    "source": "daemon start",
                    "before": before,
                    "after": {"sha256": h, "text": config_text},
                })),
            )?;
        }
    }
    st.store.append_now(
        NewEvent::new(DAEMON_STARTED, kernos_core::Actor::system()).payload(json!({
            "pid": std::process::id(),
            "version": env!("CARGO_PKG_VERSION"),
            "workers": st.config().workers,
            "queue": st.config().queue,
        })),
    )?;
    Ok(())
}
