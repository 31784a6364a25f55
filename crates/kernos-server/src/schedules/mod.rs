//! Schedules: an approved plan run at set times, in the daemon, with nobody connected.
//!
//! Each run is an ordinary action of the schedule's creator, queued like `POST /v1/actions`
//! (policy, approval, sandbox, journal, undo); a step that needs a person waits in the approval
//! queue and ends declined, saying why, when nobody answers in time. The lease granted to
//! `schedule:<id>` lets steps inside it run unasked.
//!
//! The timing and its rules (catch-up after downtime, one run at a time, randomized delay)
//! are [`kernos_schedule`]'s; this module journals what it decides (`schedule.*` events, the
//! table in `model` is their read model) and runs one thread that takes the timer's fires and
//! the ends of runs in order, so two triggers of one schedule cannot both start a run.

pub(crate) mod model;

use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, RwLock};
use std::time::Duration;

use kernos_core::{ActionId, NewEvent, Plan, RawId};
use kernos_journal::{Journal, Query};
use kernos_schedule::{
    DateTime, Due, MissedRuns, RunNow, ScheduleState, SystemClock, Timer, Transition, Utc, When,
};
use serde_json::json;

use crate::State;
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::sched::Job;
use crate::wire::{ScheduleCreate, ScheduleRun, ScheduleView, SubmitRequest};
use model::{
    Changed, Created, Entry, SCHEDULE_CREATED, SCHEDULE_REMOVED, SCHEDULE_TRANSITION, Table,
};

/// What the schedule thread is asked to do.
#[derive(Debug)]
enum Msg {
    /// The timer says schedule `id` may be due.
    Fire(String),
    /// Run `action` ended with `status`.
    Ended(String, String),
}

/// Every schedule, the timer and the thread that acts for them.
#[derive(Default)]
pub(crate) struct Schedules {
    table: RwLock<Table>,
    /// Serialises decisions, so a decision and the transition it journals are one step.
    moves: Mutex<()>,
    timer: OnceLock<Timer<String>>,
    tx: OnceLock<Mutex<Sender<Msg>>>,
}

impl std::fmt::Debug for Schedules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Schedules").finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn now() -> DateTime<Utc> {
    kernos_schedule::Clock::now(&SystemClock)
}

impl Schedules {
    /// Rebuilds the table from the journal.
    pub(crate) fn load(j: &Journal) -> Result<Schedules, kernos_journal::JournalError> {
        let mut t = Table::default();
        j.for_each(&Query::kind_prefix("schedule."), |e| {
            t.apply(&e);
            true
        })?;
        Ok(Schedules {
            table: RwLock::new(t),
            ..Schedules::default()
        })
    }

    /// Keeps the table current; tells the schedule thread when one of their runs ended.
    pub(crate) fn on_published(&self, p: &crate::Published) {
        if p.kind.starts_with("schedule.") {
            if let (Some(e), Ok(mut t)) = (p.event(), self.table.write()) {
                t.apply(&e);
            }
        } else if p.kind == kernos_core::event::kind::ACTION_FINISHED {
            let Some(a) = p.action.as_deref() else {
                return;
            };
            let ours = self.table.read().is_ok_and(|t| t.running(a).is_some());
            if ours {
                let status = p
                    .event()
                    .and_then(|e| e.payload["status"].as_str().map(str::to_owned))
                    .unwrap_or_else(|| "unknown".into());
                self.send(Msg::Ended(a.to_owned(), status));
            }
        }
    }

    fn send(&self, m: Msg) {
        if let Some(tx) = self.tx.get() {
            let _ = lock(tx).send(m);
        }
    }

    fn entry(&self, id: &str) -> Option<Entry> {
        self.table.read().ok()?.schedules.get(id).cloned()
    }

    fn owned(&self, org: &str, id: &str) -> ApiResult<Entry> {
        self.entry(id).filter(|e| e.org == org).ok_or_else(|| {
            ApiError::not_found(format!(
                "no schedule {id} in org {org}; list schedules with GET /v1/schedules"
            ))
        })
    }
}

/// Starts the timer and the schedule thread, closes runs a crash or shutdown cut off, and arms
/// every schedule (a fire time missed while the daemon was down is then due at once).
pub(crate) fn start(st: &Arc<State>) -> std::io::Result<()> {
    let (tx, rx) = std::sync::mpsc::channel::<Msg>();
    let fire = tx.clone();
    let timer = Timer::start(
        Arc::new(SystemClock),
        Box::new(move |id: &String, _at| {
            let _ = fire.send(Msg::Fire(id.clone()));
            None
        }),
    )?;
    let _ = st.schedules.timer.set(timer);
    let _ = st.schedules.tx.set(Mutex::new(tx));
    let ids: Vec<String> = st
        .schedules
        .table
        .read()
        .map(|t| t.schedules.keys().cloned().collect())
        .unwrap_or_default();
    for id in &ids {
        if let Err(e) = close_lost_run(st, id) {
            tracing::error!(schedule = %id, "cannot close its interrupted run: {e}");
        }
        st.schedules.send(Msg::Fire(id.clone()));
    }
    let s = Arc::downgrade(st);
    std::thread::Builder::new()
        .name("kernos-schedules".into())
        .spawn(move || serve(&s, &rx))
        .map(|_| ())
}

/// The schedule thread: one message at a time, until the daemon stops.
fn serve(st: &std::sync::Weak<State>, rx: &Receiver<Msg>) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!("schedules cannot run: {e}");
            return;
        }
    };
    loop {
        let m = match rx.recv_timeout(Duration::from_millis(500)) {
            Ok(m) => m,
            Err(RecvTimeoutError::Timeout) => match st.upgrade() {
                Some(s) if !s.is_shutting_down() => continue,
                _ => return,
            },
            Err(RecvTimeoutError::Disconnected) => return,
        };
        let Some(st) = st.upgrade() else {
            return;
        };
        if st.is_shutting_down() {
            return;
        }
        let r = match &m {
            Msg::Fire(id) => step(&st, &rt, id),
            Msg::Ended(action, status) => ended(&st, &rt, action, status),
        };
        if let Err(e) = r {
            tracing::error!("schedule {m:?}: {e}");
        }
    }
}

/// Journals a transition of schedule `id` (the table applies it as it is published).
fn journal(st: &State, e: &Entry, t: Transition) -> Result<(), String> {
    let ev = NewEvent::new(SCHEDULE_TRANSITION, e.actor.clone())
        .org(&e.org)
        .payload(json!(Changed {
            schedule: e.created.schedule.clone(),
            transition: t,
        }));
    st.store
        .append_now(ev)
        .map(|_| ())
        .map_err(|err| format!("cannot journal the schedule's change: {err}"))
}

/// Does what schedule `id` is due to do now: skip missed times, start a run, or wait.
fn step(st: &Arc<State>, rt: &tokio::runtime::Runtime, id: &str) -> Result<(), String> {
    let _g = lock(&st.schedules.moves);
    loop {
        let Some(e) = st.schedules.entry(id) else {
            return Ok(());
        };
        let at = now();
        match e.state.due(at) {
            Due::Wait { until } => {
                if let Some(t) = st.schedules.timer.get() {
                    t.set(id.to_owned(), until);
                }
                return Ok(());
            }
            Due::Skip(t) => journal(st, &e, t)?,
            Due::Run(plan) => {
                let action = ActionId::generate();
                journal(st, &e, plan.start(action.to_string(), at))?;
                if let Err(why) = submit(st, rt, &e, action) {
                    tracing::warn!(schedule = %id, "its run could not be queued: {why}");
                    let t = Transition::Interrupted {
                        run: action.to_string(),
                        at: now(),
                    };
                    journal(st, &e, t)?;
                    continue;
                }
                return Ok(());
            }
        }
    }
}

/// Queues the schedule's plan as run `action`, as an action of its creator.
fn submit(
    st: &Arc<State>,
    rt: &tokio::runtime::Runtime,
    e: &Entry,
    action: ActionId,
) -> Result<(), String> {
    let c = &e.created;
    let source = format!("schedule:{}", c.schedule);
    let req = SubmitRequest {
        plan: Some(c.plan.clone()),
        request: c.request.clone(),
        cwd: c.cwd.clone(),
        ..SubmitRequest::default()
    };
    let payload = json!({
        "request": req.request,
        "plan": req.plan,
        "cwd": req.cwd,
        "dry_run": false,
        "auto_approve": false,
        "role": c.role,
        "source": source,
        "schedule": c.schedule,
    });
    let job = Job {
        action,
        principal: Principal {
            actor: e.actor.clone(),
            org: e.org.clone(),
            role: c.role,
            key_id: c.key_id.clone(),
            source,
        },
        req,
        agent: None,
        schedule: Some(c.schedule.clone()),
        monitor: None,
        lease: None,
        max_risk: None,
        fleet: None,
    };
    rt.block_on(crate::submit::enqueue(st, job, payload))
        .map_err(|e| e.detail)
}

/// A run ended: journal how, then see what is due next.
fn ended(
    st: &Arc<State>,
    rt: &tokio::runtime::Runtime,
    action: &str,
    status: &str,
) -> Result<(), String> {
    let id = {
        let _g = lock(&st.schedules.moves);
        let found = st
            .schedules
            .table
            .read()
            .ok()
            .and_then(|t| t.running(action).cloned());
        let Some(e) = found else {
            return Ok(());
        };
        let t = Transition::Finished {
            run: action.to_owned(),
            at: now(),
            status: status.to_owned(),
        };
        journal(st, &e, t)?;
        e.created.schedule
    };
    step(st, rt, &id)
}

/// At start: a run the journal shows in progress ended while the daemon was down (its action
/// is finished, interrupted by the crash at worst): record how, so the schedule goes on.
fn close_lost_run(st: &State, id: &str) -> Result<(), String> {
    let _g = lock(&st.schedules.moves);
    let Some(e) = st.schedules.entry(id) else {
        return Ok(());
    };
    let Some(run) = e.state.running.clone() else {
        return Ok(());
    };
    let status = st
        .store
        .with_reader(|j| {
            j.query(&Query::action(&run.run)).map(|evs| {
                evs.iter()
                    .find(|ev| ev.kind == kernos_core::event::kind::ACTION_FINISHED)
                    .and_then(|ev| ev.payload["status"].as_str().map(str::to_owned))
            })
        })
        .map_err(|err| err.to_string())?;
    let t = match status {
        Some(status) => Transition::Finished {
            run: run.run,
            at: now(),
            status,
        },
        None => match e.state.recover(now()) {
            Some(t) => t,
            None => return Ok(()),
        },
    };
    journal(st, &e, t)
}

/// Creates a schedule (or, as a dry run, only plans and describes it).
pub(crate) fn create(
    st: &Arc<State>,
    p: &Principal,
    req: ScheduleCreate,
) -> ApiResult<ScheduleView> {
    let when = When::parse(&req.when, kernos_schedule::host_zone())
        .map_err(|e| ApiError::unprocessable(e.to_string()))?;
    let missed = match req.missed.as_deref().unwrap_or("run_once") {
        "run_once" | "once" => MissedRuns::RunOnce,
        "skip" => MissedRuns::Skip,
        other => {
            return Err(ApiError::unprocessable(format!(
                "`missed` is {other:?}; use run_once (one run after downtime for all the missed fire times) or skip"
            )));
        }
    };
    if let Some(c) = &req.cwd {
        if !c.starts_with('/') || c.contains('\0') {
            return Err(ApiError::unprocessable(format!(
                "`cwd` must be an absolute path, not {c:?}"
            )));
        }
    }
    let plan = approved_plan(st, p, &req)?;
    let id = if req.dry_run {
        String::new()
    } else {
        RawId::generate().to_string()
    };
    let delay = Duration::from_secs(req.random_delay_s.unwrap_or(0));
    let initial = ScheduleState::new(id.clone(), when, missed, delay, now());
    let created = Created {
        schedule: id.clone(),
        initial: initial.clone(),
        plan,
        request: req.request.clone(),
        cwd: req.cwd.clone(),
        role: p.role,
        key_id: p.key_id.clone(),
    };
    let entry = Entry {
        created: created.clone(),
        state: initial,
        org: p.org.clone(),
        actor: p.actor.clone(),
        created_ms: crate::limits::now_ms(),
    };
    if req.dry_run {
        return Ok(view(st, &entry));
    }
    let ev = NewEvent::new(SCHEDULE_CREATED, p.actor.clone())
        .org(&p.org)
        .payload(serde_json::to_value(&created).map_err(|e| ApiError::internal(e.to_string()))?);
    st.store.append_now(ev)?;
    st.schedules.send(Msg::Fire(id.clone()));
    let e = st.schedules.entry(&id).ok_or_else(|| {
        ApiError::internal("the schedule was journaled but is not in the table; list them again")
    })?;
    Ok(view(st, &e))
}

/// The plan a schedule stores: the one given, or the request planned now. Checked against the
/// catalog; policy and approval apply to every run.
fn approved_plan(st: &State, p: &Principal, req: &ScheduleCreate) -> ApiResult<Plan> {
    let plan = match (&req.plan, &req.request) {
        (Some(plan), _) => plan.clone(),
        (None, Some(text)) if !text.trim().is_empty() && text.len() <= 4096 => {
            let Some(cascade) = st.engine.planner() else {
                return Err(ApiError::unprocessable(
                    "the daemon has no planner; send a plan",
                ));
            };
            let env = crate::scope::env_for(st, &p.org, req.cwd.as_deref());
            let ctx = kernos_planner::PlanContext::new(
                env.home.display().to_string(),
                env.cwd.display().to_string(),
            );
            // Model time is the organisation's share, and what it used is metered, as for any
            // request (planning only: nothing runs until the schedule fires).
            let opts = kernos_planner::llm::PlanOptions {
                client: Some(p.org.clone()),
                ..kernos_planner::llm::PlanOptions::default()
            };
            let planned = cascade.plan(text, &ctx, &opts);
            for (kind, payload) in kernos_planner::llm::events_for(&planned, text) {
                let ev = NewEvent::new(kind, p.actor.clone())
                    .org(&p.org)
                    .payload(payload);
                if let Err(e) = st.store.append_now(ev) {
                    tracing::warn!("cannot journal the schedule's planning: {e}");
                }
            }
            match planned.outcome {
                kernos_planner::Outcome::Plan { plan, .. } => plan,
                kernos_planner::Outcome::NotUnderstood { message, .. } => {
                    return Err(ApiError::unprocessable(format!(
                        "could not plan {text:?}: {message}; say it another way or send a plan"
                    )));
                }
                kernos_planner::Outcome::Undo { .. } => {
                    return Err(ApiError::unprocessable(
                        "a schedule cannot undo \"the last change\": send a plan",
                    ));
                }
            }
        }
        _ => {
            return Err(ApiError::unprocessable(
                "give `request` (plain language, up to 4096 bytes) or `plan`",
            ));
        }
    };
    if plan.steps.is_empty() {
        return Err(ApiError::unprocessable(
            "the plan has no steps; add at least one",
        ));
    }
    st.engine
        .validate(&plan)
        .map_err(|e| ApiError::unprocessable(format!("the plan is not valid: {e}")))?;
    Ok(plan)
}

/// The organisation's schedules, oldest first.
pub(crate) fn list(st: &State, org: &str) -> Vec<ScheduleView> {
    let mut v: Vec<Entry> = st
        .schedules
        .table
        .read()
        .map(|t| {
            t.schedules
                .values()
                .filter(|e| e.org == org)
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    v.sort_by(|a, b| a.created.schedule.cmp(&b.created.schedule));
    v.iter().map(|e| view(st, e)).collect()
}

/// One schedule.
pub(crate) fn show(st: &State, p: &Principal, id: &str) -> ApiResult<ScheduleView> {
    st.schedules.owned(&p.org, id).map(|e| view(st, &e))
}

/// Pauses or resumes a schedule.
pub(crate) fn set_paused(
    st: &Arc<State>,
    p: &Principal,
    id: &str,
    paused: bool,
) -> ApiResult<ScheduleView> {
    {
        let _g = lock(&st.schedules.moves);
        let e = st.schedules.owned(&p.org, id)?;
        let t = if paused {
            e.state.pause(now())
        } else {
            e.state.resume(now())
        };
        let Some(t) = t else {
            return Err(ApiError::conflict(format!(
                "schedule {id} is already {}",
                if paused {
                    "paused"
                } else {
                    "running on its own"
                }
            )));
        };
        journal(st, &e, t).map_err(ApiError::internal)?;
    }
    st.schedules.send(Msg::Fire(id.to_owned()));
    show(st, p, id)
}

/// Runs a schedule now, unless a run is in progress or asked for (it then joins that one).
pub(crate) fn run_now(st: &Arc<State>, p: &Principal, id: &str) -> ApiResult<ScheduleRun> {
    let answer = {
        let _g = lock(&st.schedules.moves);
        let e = st.schedules.owned(&p.org, id)?;
        match e.state.request_run(now()) {
            RunNow::Requested(t) => {
                journal(st, &e, t).map_err(ApiError::internal)?;
                ScheduleRun {
                    schedule: id.to_owned(),
                    status: "requested".into(),
                    run: None,
                }
            }
            RunNow::AlreadyRunning { run } => ScheduleRun {
                schedule: id.to_owned(),
                status: "already_running".into(),
                run: Some(run),
            },
            RunNow::AlreadyRequested { .. } => ScheduleRun {
                schedule: id.to_owned(),
                status: "already_requested".into(),
                run: None,
            },
        }
    };
    st.schedules.send(Msg::Fire(id.to_owned()));
    Ok(answer)
}

/// Removes a schedule (a run in progress goes on to its end; nothing fires again).
pub(crate) fn remove(st: &Arc<State>, p: &Principal, id: &str) -> ApiResult<ScheduleView> {
    let _g = lock(&st.schedules.moves);
    let e = st.schedules.owned(&p.org, id)?;
    let ev = NewEvent::new(SCHEDULE_REMOVED, p.actor.clone())
        .org(&p.org)
        .payload(json!({"schedule": id, "actor": p.actor, "role": p.role, "source": p.source}));
    st.store.append_now(ev)?;
    if let Some(t) = st.schedules.timer.get() {
        t.remove(&id.to_owned());
    }
    Ok(view(st, &e))
}

fn view(st: &State, e: &Entry) -> ScheduleView {
    let s = &e.state;
    let grantee = format!("schedule:{}", e.created.schedule);
    let lease = st.leases.read().ok().and_then(|t| {
        t.active_for(&e.org, &grantee, crate::limits::now_ms())
            .map(|l| l.id.clone())
    });
    ScheduleView {
        schedule: e.created.schedule.clone(),
        org: e.org.clone(),
        owner: e.actor.0.clone(),
        when: s.when.text().to_owned(),
        describe: s.when.describe(),
        request: e.created.request.clone(),
        plan: e.created.plan.clone(),
        missed: match s.missed {
            MissedRuns::RunOnce => "run_once".into(),
            MissedRuns::Skip => "skip".into(),
        },
        random_delay_s: s.random_delay_ms / 1000,
        paused: s.paused,
        next_due: s.next_due.map(|t| t.to_rfc3339()),
        running: s.running.as_ref().map(|r| r.run.clone()),
        last_run: s
            .last_run
            .as_ref()
            .and_then(|r| serde_json::to_value(r).ok()),
        lease,
        created_ms: e.created_ms,
    }
}
