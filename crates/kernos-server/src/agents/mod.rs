//! Agents as kernel objects: a goal worked on across many actions, with an owner, a model
//! lane, budgets, a life of states ([`kernos_core::AgentState`]) and a memory that survives a
//! daemon restart.
//!
//! An agent is one more front end over the engine's one request path: each plan it proposes
//! is queued as an ordinary action of its owner (policy, approval, sandbox, journal, undo), so
//! the agent supplies only who asks (its owner), how approval is obtained (the API's approval
//! queue; a lease when one is attached) and where progress goes (its `agent.*` events, which
//! stream over SSE like every event).
//!
//! - `model`: the agent table, a read model of the journal's `agent.*` events.
//! - `runner`: one thread per working agent (think, snapshot, submit, wait, observe).
//! - `observe`: what an action did, read back from the journal.
//! - here: the operations (spawn, pause, resume, kill, clone) and the moves between states.

pub(crate) mod model;
pub(crate) mod observe;
mod runner;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use kernos_core::{ActionId, AgentId, AgentState, CancelToken, NewEvent, Wait};
use kernos_journal::{Journal, Query};
use kernos_planner::llm::Budget;

use crate::State;
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::wire::{AgentDetail, AgentLimits, AgentSpawn, AgentView};
pub use model::{AGENT_SNAPSHOT, AGENT_SPAWNED, AGENT_STATE};
use model::{Record, Spawned, StateChanged, Table};

/// Defaults for limits a spawn leaves out: enough for a real investigation, small enough that
/// a runaway agent is stopped within the hour.
const DEFAULT_STEPS: usize = 30;
const DEFAULT_TOKENS: u64 = 200_000;
const DEFAULT_TIME_S: u64 = 3_600;

/// The live side of one agent: how a person stops it.
#[derive(Debug, Default)]
pub(crate) struct Control {
    /// Kill: the thread stops at once and its action is cancelled.
    pub(crate) kill: CancelToken,
    /// Pause asked for: the thread stops at the next step boundary.
    pub(crate) pause: AtomicBool,
    /// Whether a thread works for it now.
    alive: AtomicBool,
}

/// Every agent: the table, the live controls, and the agents waiting on an action's end.
#[derive(Debug, Default)]
pub(crate) struct Agents {
    table: RwLock<Table>,
    controls: Mutex<HashMap<AgentId, Arc<Control>>>,
    /// Serialises moves between states, so two requests cannot both move one agent.
    moves: Mutex<()>,
    waiters: Mutex<HashMap<ActionId, SyncSender<()>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Agents {
    /// Rebuilds the table from the journal.
    pub(crate) fn load(j: &Journal) -> Result<Agents, kernos_journal::JournalError> {
        let mut t = Table::default();
        j.for_each(&Query::kind_prefix("agent."), |e| {
            t.apply(&e);
            true
        })?;
        Ok(Agents {
            table: RwLock::new(t),
            ..Agents::default()
        })
    }

    /// Applies a published event to the table; wakes the agent waiting on a finished action.
    pub(crate) fn on_published(&self, p: &crate::Published) {
        if p.kind.starts_with("agent.") {
            if let (Some(e), Ok(mut t)) = (p.event(), self.table.write()) {
                t.apply(&e);
            }
        } else if p.kind == kernos_core::event::kind::ACTION_FINISHED {
            let Some(a) = p.action.as_deref().and_then(|a| a.parse::<ActionId>().ok()) else {
                return;
            };
            if let Some(tx) = lock(&self.waiters).get(&a) {
                let _ = tx.try_send(());
            }
        }
    }

    pub(crate) fn record(&self, id: AgentId) -> Option<Record> {
        self.table.read().ok()?.agents.get(&id).cloned()
    }

    /// Agent `id` if it belongs to `org` (others' agents do not exist for the caller).
    fn owned(&self, org: &str, id: &str) -> ApiResult<Record> {
        let not_found = || {
            ApiError::not_found(format!(
                "no agent {id} in org {org}; list agents with GET /v1/agents"
            ))
        };
        let aid: AgentId = id.parse().map_err(|_| not_found())?;
        self.record(aid)
            .filter(|r| r.view.org == org)
            .ok_or_else(not_found)
    }

    /// The organisation's agents, newest first.
    pub(crate) fn list(st: &State, org: &str, state: Option<AgentState>) -> Vec<AgentView> {
        let Ok(t) = st.agents.table.read() else {
            return Vec::new();
        };
        let mut v: Vec<AgentView> = t
            .agents
            .values()
            .filter(|r| r.view.org == org && state.is_none_or(|s| r.view.state == s))
            .map(|r| with_lease(st, r.view.clone()))
            .collect();
        v.sort_by(|a, b| b.agent.cmp(&a.agent));
        v
    }

    /// `/metrics` lines: agents by organisation and state, and what they used.
    pub(crate) fn prometheus(&self) -> String {
        use kernos_core::prom::{Kind, Writer};
        let mut by_state: std::collections::BTreeMap<(String, &'static str), usize> =
            std::collections::BTreeMap::new();
        let mut used: std::collections::BTreeMap<String, (usize, u64)> =
            std::collections::BTreeMap::new();
        if let Ok(t) = self.table.read() {
            for r in t.agents.values() {
                *by_state
                    .entry((r.view.org.clone(), r.view.state.as_str()))
                    .or_default() += 1;
                let u = used.entry(r.view.org.clone()).or_default();
                u.0 += r.view.used.steps;
                u.1 += r.view.used.tokens;
            }
        }
        let mut w = Writer::with_capacity(1024);
        w.family(
            "kernos_agents",
            Kind::Gauge,
            "Agents, by organisation and state.",
        );
        for ((org, state), n) in &by_state {
            w.sample("kernos_agents", &[("org", org), ("state", state)], n);
        }
        w.family(
            "kernos_agent_steps",
            Kind::Gauge,
            "Steps run by the organisation's agents (as of their last snapshot).",
        );
        for (org, (steps, _)) in &used {
            w.sample("kernos_agent_steps", &[("org", org)], steps);
        }
        w.family(
            "kernos_agent_tokens",
            Kind::Gauge,
            "Model tokens used by the organisation's agents (as of their last snapshot).",
        );
        for (org, (_, tokens)) in &used {
            w.sample("kernos_agent_tokens", &[("org", org)], tokens);
        }
        w.finish()
    }

    fn control(&self, id: AgentId) -> Arc<Control> {
        lock(&self.controls).entry(id).or_default().clone()
    }

    /// Registers interest in action `a`'s end.
    fn wait_for(&self, a: ActionId) -> Receiver<()> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        lock(&self.waiters).insert(a, tx);
        rx
    }

    fn stop_waiting(&self, a: ActionId) {
        lock(&self.waiters).remove(&a);
    }

    /// A paused agent's thread ends unless a resume came meanwhile (decided under the lock
    /// resume takes, so a resume is never lost between the two).
    fn confirm_pause(&self, ctl: &Control) -> bool {
        let _g = lock(&self.controls);
        if ctl.pause.load(Ordering::Acquire) {
            ctl.alive.store(false, Ordering::Release);
            true
        } else {
            false
        }
    }

    fn runner_ended(&self, _id: AgentId, ctl: &Control) {
        let _g = lock(&self.controls);
        ctl.alive.store(false, Ordering::Release);
    }

    /// Starts a thread for agent `id` unless one works for it.
    fn ensure_running(&self, st: &Arc<State>, id: AgentId) -> ApiResult<()> {
        let ctl = self.control(id);
        let _g = lock(&self.controls);
        ctl.pause.store(false, Ordering::Release);
        if ctl.alive.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        runner::start(st, id, ctl.clone()).map_err(|e| {
            ctl.alive.store(false, Ordering::Release);
            ApiError::internal(format!("cannot start the agent's thread: {e}"))
        })
    }
}

/// Moves agents between states: checks the move is allowed and journals it.
pub(crate) struct Mover<'a> {
    st: &'a State,
    /// Moves made by an agent's own thread give way to a person's pause.
    ctl: Option<&'a Control>,
    actor: Option<kernos_core::Actor>,
}

impl<'a> Mover<'a> {
    fn runner(st: &'a State, ctl: &'a Control) -> Self {
        Mover {
            st,
            ctl: Some(ctl),
            actor: None,
        }
    }

    fn person(st: &'a State, p: &Principal) -> Self {
        Mover {
            st,
            ctl: None,
            actor: Some(p.actor.clone()),
        }
    }

    /// Journals the move of agent `id` to `state`, or says why it is not allowed.
    fn to(
        &self,
        id: AgentId,
        state: AgentState,
        wait: Option<Wait>,
        reason: Option<String>,
        answer: Option<String>,
    ) -> Result<(), String> {
        let _g = lock(&self.st.agents.moves);
        let rec = self
            .st
            .agents
            .record(id)
            .ok_or_else(|| format!("no agent {id}"))?;
        let from = rec.view.state;
        if let Some(ctl) = self.ctl {
            let paused = ctl.pause.load(Ordering::Acquire) || from == AgentState::Paused;
            if from.is_final() || (paused && !state.is_final()) {
                return Err(format!("agent {id} is {from}"));
            }
        }
        if from == state && rec.view.waiting_on == wait && reason.is_none() {
            return Ok(());
        }
        if !from.can_become(state) {
            return Err(format!("agent {id} is {from}, so it cannot become {state}"));
        }
        let ev = NewEvent::new(
            model::AGENT_STATE,
            self.actor.clone().unwrap_or_else(|| rec.actor.clone()),
        )
        .org(&rec.view.org)
        .payload(serde_json::json!(StateChanged {
            agent: id,
            state,
            wait,
            reason,
            answer,
        }));
        self.st
            .store
            .append_now(ev)
            .map(|_| ())
            .map_err(|e| format!("cannot journal the agent's state: {e}"))
    }
}

/// The planner's budget for limits on the wire.
fn budget(l: &AgentLimits) -> Budget {
    Budget {
        max_steps: l.max_steps,
        max_tokens: l.max_tokens,
        max_time: Duration::from_secs(l.max_time_s),
        max_units: l.max_units,
        max_cost_usd: l.max_cost_usd,
    }
}

/// Starts every agent that was working when the daemon stopped.
pub(crate) fn resume_all(st: &Arc<State>) {
    let live: Vec<AgentId> = st
        .agents
        .table
        .read()
        .map(|t| {
            t.agents
                .iter()
                .filter(|(_, r)| r.view.state.is_live())
                .map(|(id, _)| *id)
                .collect()
        })
        .unwrap_or_default();
    for id in live {
        if let Err(e) = st.agents.ensure_running(st, id) {
            tracing::error!(agent = %id, "cannot resume the agent: {}", e.detail);
        }
    }
}

/// Spawns an agent for `p` (a clone when `parent` is given).
pub(crate) fn spawn(
    st: &Arc<State>,
    p: &Principal,
    req: AgentSpawn,
    parent: Option<AgentId>,
) -> ApiResult<AgentView> {
    let goal = req.goal.trim();
    if goal.is_empty() {
        return Err(ApiError::unprocessable(
            "`goal` is empty: say what the agent should achieve, e.g. \"keep /var under 80 % full\"",
        ));
    }
    if goal.len() > 4096 {
        return Err(ApiError::unprocessable("`goal` is longer than 4096 bytes"));
    }
    if let Some(c) = &req.cwd {
        if !c.starts_with('/') || c.contains('\0') {
            return Err(ApiError::unprocessable(format!(
                "`cwd` must be an absolute path, not {c:?}"
            )));
        }
    }
    let b = &req.budget;
    let limits = AgentLimits {
        max_steps: b.max_steps.unwrap_or(DEFAULT_STEPS),
        max_tokens: b.max_tokens.unwrap_or(DEFAULT_TOKENS),
        max_time_s: b.max_time_s.unwrap_or(DEFAULT_TIME_S),
        max_units: b.max_units,
        max_cost_usd: b.max_cost_usd,
    };
    if limits.max_steps == 0 || limits.max_tokens == 0 || limits.max_time_s == 0 {
        return Err(ApiError::unprocessable(
            "budget limits must be at least 1 (steps, tokens, seconds)",
        ));
    }
    if [limits.max_units, limits.max_cost_usd]
        .iter()
        .flatten()
        .any(|v| !v.is_finite() || *v <= 0.0)
    {
        return Err(ApiError::unprocessable(
            "`max_units` and `max_cost_usd` must be positive numbers",
        ));
    }
    let cascade = st.engine.planner().filter(|c| c.has_model());
    let Some(cascade) = cascade else {
        return Err(ApiError::conflict(
            "agents need a language model and the daemon has none: add a [[llm.providers]] entry to its config and restart it",
        ));
    };
    let lane = req.lane.clone().unwrap_or_else(|| cascade.lane_for(goal));
    let id = AgentId::generate();
    let spawned = Spawned {
        agent: id,
        goal: goal.to_owned(),
        lane,
        budget: limits,
        cwd: req.cwd.clone(),
        parent,
        role: p.role,
        key_id: p.key_id.clone(),
    };
    let ev = NewEvent::new(AGENT_SPAWNED, p.actor.clone())
        .org(&p.org)
        .payload(serde_json::to_value(&spawned).map_err(|e| ApiError::internal(e.to_string()))?);
    st.store.append_now(ev)?;
    if req.paused {
        Mover::person(st, p)
            .to(
                id,
                AgentState::Paused,
                None,
                Some(format!("spawned paused by {}", p.actor)),
                None,
            )
            .map_err(ApiError::internal)?;
    } else {
        st.agents.ensure_running(st, id)?;
    }
    st.agents.record(id).map(|r| r.view).ok_or_else(|| {
        ApiError::internal("the agent was journaled but is not in the table; retry GET /v1/agents")
    })
}

/// Pauses agent `id`: it stops at the next step boundary (a running step finishes).
pub(crate) fn pause(st: &Arc<State>, p: &Principal, id: &str) -> ApiResult<AgentView> {
    let rec = st.agents.owned(&p.org, id)?;
    let aid = rec.spawned.agent;
    if rec.view.state.is_final() || rec.view.state == AgentState::Paused {
        return Err(ApiError::conflict(format!(
            "agent {id} is already {}",
            rec.view.state
        )));
    }
    st.agents.control(aid).pause.store(true, Ordering::Release);
    Mover::person(st, p)
        .to(
            aid,
            AgentState::Paused,
            None,
            Some(format!("paused by {}", p.actor)),
            None,
        )
        .map_err(ApiError::conflict)?;
    view(st, aid)
}

/// Resumes a paused agent where it was.
pub(crate) fn resume(st: &Arc<State>, p: &Principal, id: &str) -> ApiResult<AgentView> {
    let rec = st.agents.owned(&p.org, id)?;
    let aid = rec.spawned.agent;
    if rec.view.state != AgentState::Paused {
        return Err(ApiError::conflict(format!(
            "agent {id} is {}, not paused",
            rec.view.state
        )));
    }
    Mover::person(st, p)
        .to(
            aid,
            AgentState::Running,
            None,
            Some(format!("resumed by {}", p.actor)),
            None,
        )
        .map_err(ApiError::conflict)?;
    st.agents.ensure_running(st, aid)?;
    view(st, aid)
}

/// Kills agent `id` now: no further step starts, the running one is cancelled.
pub(crate) fn kill(st: &Arc<State>, p: &Principal, id: &str) -> ApiResult<AgentView> {
    let rec = st.agents.owned(&p.org, id)?;
    let aid = rec.spawned.agent;
    if rec.view.state.is_final() {
        return Err(ApiError::conflict(format!(
            "agent {id} has already ended ({})",
            rec.view.state
        )));
    }
    let ctl = st.agents.control(aid);
    ctl.kill.cancel();
    Mover::person(st, p)
        .to(
            aid,
            AgentState::Killed,
            None,
            Some(format!("killed by {}", p.actor)),
            None,
        )
        .map_err(ApiError::conflict)?;
    if let Some(a) = rec.pending {
        stop_action(st, a);
    }
    view(st, aid)
}

/// Cancels action `a`: a running one stops cleanly; a queued one never starts.
fn stop_action(st: &State, a: ActionId) {
    let running = st
        .running
        .lock()
        .ok()
        .and_then(|r| r.get(&a).map(|(_, c)| c.clone()));
    if let Some(c) = running {
        c.cancel();
    } else if let Some(job) = st.sched.remove(a) {
        crate::worker::finish(
            st,
            &job,
            crate::wire::ActionStatus::Cancelled,
            "its agent was killed",
        );
    } else if let Ok(mut c) = st.cancelled.lock() {
        c.insert(a);
    }
}

/// A new agent with the same goal, lane and limits, and a fresh budget.
pub(crate) fn clone(st: &Arc<State>, p: &Principal, id: &str) -> ApiResult<AgentView> {
    let rec = st.agents.owned(&p.org, id)?;
    let s = &rec.spawned;
    let req = AgentSpawn {
        goal: s.goal.clone(),
        lane: Some(s.lane.clone()),
        budget: crate::wire::AgentBudgetRequest {
            max_steps: Some(s.budget.max_steps),
            max_tokens: Some(s.budget.max_tokens),
            max_time_s: Some(s.budget.max_time_s),
            max_units: s.budget.max_units,
            max_cost_usd: s.budget.max_cost_usd,
        },
        cwd: s.cwd.clone(),
        paused: false,
    };
    spawn(st, p, req, Some(s.agent))
}

fn view(st: &State, id: AgentId) -> ApiResult<AgentView> {
    st.agents
        .record(id)
        .map(|r| with_lease(st, r.view))
        .ok_or_else(|| ApiError::internal("the agent vanished from the table; retry"))
}

/// The view with the agent's active lease, looked up now (leases expire by the clock).
fn with_lease(st: &State, mut v: AgentView) -> AgentView {
    let grantee = format!("agent:{}", v.agent);
    v.lease = st.leases.read().ok().and_then(|t| {
        t.active_for(&v.org, &grantee, crate::limits::now_ms())
            .map(|l| l.id.clone())
    });
    v
}

/// Agent `id` with its memory.
pub(crate) fn detail(st: &State, p: &Principal, id: &str) -> ApiResult<AgentDetail> {
    let rec = st.agents.owned(&p.org, id)?;
    let mem = match &rec.snapshot {
        Some(b) => runner::load(st, b).map_err(ApiError::internal)?,
        None => kernos_planner::llm::Memory::new(&rec.spawned.goal),
    };
    Ok(AgentDetail {
        observations: mem
            .observations
            .iter()
            .map(|o| serde_json::json!({"step": o.step, "text": o.text}))
            .collect(),
        notes: mem.notes,
        plans: mem.plans,
        actions: rec.actions.iter().map(ToString::to_string).collect(),
        view: with_lease(st, rec.view),
    })
}

/// Agent `id`'s events: its own `agent.*` events, its model calls and its actions' events.
pub(crate) fn logs(st: &State, p: &Principal, id: &str) -> ApiResult<Vec<kernos_core::Event>> {
    let rec = st.agents.owned(&p.org, id)?;
    let me = rec.spawned.agent.to_string();
    let org = rec.view.org.clone();
    let actions = rec.actions.clone();
    let mut out = st.store.with_reader(|j| {
        let mut out = Vec::new();
        for kind in ["agent.", kernos_core::event::kind::LLM_CALL] {
            let q = Query {
                kind_prefix: Some(kind.into()),
                org: Some(org.clone()),
                ..Query::default()
            };
            j.for_each(&q, |e| {
                if e.payload.get("agent").and_then(|a| a.as_str()) == Some(me.as_str()) {
                    out.push(e);
                }
                true
            })?;
        }
        for a in &actions {
            out.extend(
                j.query(&Query::action(a))?
                    .into_iter()
                    .filter(|e| e.org == org),
            );
        }
        Ok(out)
    })?;
    out.sort_by_key(|e| e.seq);
    Ok(out)
}
