//! One agent's thread: think (a model turn), snapshot, submit the plan as an ordinary action,
//! wait for it, take in what it did, snapshot, repeat — until the goal is reached, a budget
//! runs out, a step is refused, or a person pauses or kills it.
//!
//! Crash safety comes from the order: the snapshot naming the next action id is durable
//! before that action is submitted, and what the action did is read back from the journal.
//! After a restart an agent whose snapshot names an action that was never submitted submits
//! it (same id); one that was submitted waits for it or reads how it ended (a crash marks it
//! interrupted); no step is run twice and none is lost.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use kernos_core::event::kind;
use kernos_core::{ActionId, AgentId, AgentState, NewEvent, Wait};
use kernos_journal::Query;
use kernos_planner::PlanContext;
use kernos_planner::llm::{Agent, Memory, Next, Stop};
use serde_json::json;

use super::model::{AGENT_SNAPSHOT, Record, Snapshot};
use super::observe::observe;
use super::{Control, Mover};
use crate::State;
use crate::auth::Principal;
use crate::sched::Job;
use crate::wire::{AgentUsed, SubmitRequest};

/// How often a waiting agent looks at where its action is (queue, approval, running).
const POLL: Duration = Duration::from_millis(100);

/// Starts the thread of agent `id`.
pub(crate) fn start(st: &Arc<State>, id: AgentId, ctl: Arc<Control>) -> std::io::Result<()> {
    let st = st.clone();
    std::thread::Builder::new()
        .name(format!("kernos-agent-{}", &id.to_string()[20..]))
        .spawn(move || {
            let r = Runner::new(&st, id, &ctl).and_then(|mut r| r.run());
            if let Err(e) = r {
                tracing::error!(agent = %id, "agent stopped: {e}");
                let _ = Mover::runner(&st, &ctl).to(id, AgentState::Failed, None, Some(e), None);
            }
            st.agents.runner_ended(id, &ctl);
        })
        .map(|_| ())
}

struct Runner<'a> {
    st: &'a Arc<State>,
    id: AgentId,
    ctl: &'a Arc<Control>,
    rec: Record,
    mem: Memory,
    pending: Option<ActionId>,
    /// Time worked before this thread started.
    base: Duration,
    started: Instant,
    rt: tokio::runtime::Runtime,
}

impl<'a> Runner<'a> {
    fn new(st: &'a Arc<State>, id: AgentId, ctl: &'a Arc<Control>) -> Result<Self, String> {
        let rec = st
            .agents
            .record(id)
            .ok_or_else(|| format!("agent {id} is not in the agent table"))?;
        let mem = match &rec.snapshot {
            Some(blob) => load(st, blob)?,
            None => Memory::new(&rec.spawned.goal),
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the agent's runtime: {e}"))?;
        Ok(Runner {
            base: Duration::from_millis(mem.elapsed_ms),
            pending: rec.pending,
            st,
            id,
            ctl,
            rec,
            mem,
            started: Instant::now(),
            rt,
        })
    }

    fn elapsed(&self) -> Duration {
        self.base + self.started.elapsed()
    }

    fn mover(&self) -> Mover<'_> {
        Mover::runner(self.st, self.ctl)
    }

    /// Moves the agent unless a person paused or killed it meanwhile; false: stop working.
    fn become_(&self, state: AgentState, wait: Option<Wait>) -> bool {
        self.mover().to(self.id, state, wait, None, None).is_ok()
    }

    /// Whether to stop working now: killed, paused (the thread ends; resume starts a new one)
    /// or the daemon is stopping (the agent stays live in the journal and resumes at start).
    fn should_stop(&self) -> bool {
        self.ctl.kill.is_cancelled()
            || self.st.is_shutting_down()
            || (self.ctl.pause.load(Ordering::Acquire) && self.st.agents.confirm_pause(self.ctl))
    }

    fn run(&mut self) -> Result<(), String> {
        let after_restart = self.pending.is_some();
        if !self.become_(AgentState::Running, None) {
            return Ok(());
        }
        let mut first = true;
        loop {
            if self.should_stop() {
                return self.save(self.pending);
            }
            if let Some(a) = self.pending {
                let Some(obs) = self.follow(a, first && after_restart)? else {
                    return self.save(Some(a));
                };
                if self.st.is_shutting_down() {
                    // The shutdown cancelled its action: read it again after the restart,
                    // where a cancel by shutdown counts as an interruption, not a refusal.
                    return self.save(Some(a));
                }
                first = false;
                self.mem.units += obs.units;
                // Steps count when they ran, as the journal says: a refused, declined or
                // skipped step costs none of the budget.
                let before = self.mem.steps;
                let stop = self.mem.record(obs.outcome, 0);
                self.mem.steps = before + obs.ran;
                self.pending = None;
                self.save(None)?;
                if let Some(s) = stop {
                    return self.end(s);
                }
                if let Some(why) = obs.lease_inactive {
                    if !self.wait_for_lease(&why) {
                        return Ok(());
                    }
                }
                continue;
            }
            first = false;
            if !self.become_(AgentState::Waiting, Some(Wait::Model)) {
                return self.save(None);
            }
            let thought = self.think();
            match thought {
                Next::Stop(s) => return self.end(s),
                Next::Run { .. } => {
                    let a = ActionId::generate();
                    self.pending = Some(a);
                    // Durable before the action exists: a crash after this submits it once.
                    self.save(Some(a))?;
                    if !self.become_(AgentState::Running, None) {
                        return Ok(());
                    }
                }
            }
        }
    }

    /// One model turn, metered in the journal like any model call of the organisation.
    fn think(&mut self) -> Next {
        let st = self.st;
        let Some(cascade) = st.engine.planner() else {
            return Next::Stop(Stop::ModelFailed {
                reason: "the daemon has no planner".into(),
            });
        };
        let (Some(planner), Ok(model)) = (cascade.llm(), cascade.model()) else {
            return Next::Stop(Stop::ModelFailed {
                reason: "the daemon has no language model configured ([[llm.providers]])".into(),
            });
        };
        let mut agent = Agent::new(planner, model);
        agent.budget = super::budget(&self.rec.spawned.budget);
        agent.lane = self.rec.spawned.lane.clone();
        // Fair share between organisations; within one, the oldest agent's call goes first
        // (its id's top bits are its spawn time), so agents finish rather than all crawl.
        agent.route.client = Some(self.rec.view.org.clone());
        agent.route.task = self
            .id
            .to_string()
            .parse::<kernos_core::RawId>()
            .ok()
            .and_then(|r| u64::try_from(r.as_u128() >> 64).ok());
        let env = crate::scope::env_for(st, &self.rec.view.org, self.rec.spawned.cwd.as_deref());
        let ctx = PlanContext::new(
            env.home.display().to_string(),
            env.cwd.display().to_string(),
        );
        let elapsed = self.elapsed();
        let thought = agent.think(&mut self.mem, &ctx, elapsed);
        for a in &thought.attempts {
            let mut payload = kernos_planner::llm::call_payload(a, "agent", "not_used");
            payload["agent"] = json!(self.id.to_string());
            let ev = NewEvent::new(kind::LLM_CALL, self.rec.actor.clone())
                .org(&self.rec.view.org)
                .payload(payload);
            if let Err(e) = st.store.append_now(ev) {
                tracing::warn!(agent = %self.id, "cannot journal a model call: {e}");
            }
        }
        thought.next
    }

    /// Submits action `a` unless the journal has it, then waits for its end. `None`: the agent
    /// must stop working (killed, paused is not a reason: a running step is let finish).
    fn follow(
        &mut self,
        a: ActionId,
        after_restart: bool,
    ) -> Result<Option<super::observe::Observed>, String> {
        let st = self.st;
        let rx = st.agents.wait_for(a);
        let submitted = st
            .store
            .with_reader(|j| {
                j.query(&Query::action(a))
                    .map(|evs| evs.iter().any(|e| e.kind == kind::ACTION_SUBMITTED))
            })
            .map_err(|e| e.to_string())?;
        if !submitted {
            // An agent that worked under a lease does not fall back to asking a person for
            // every step when the lease lapses: it waits for a new one.
            let lapsed = self.lease_lapsed();
            let go_on = match lapsed {
                Some(why) => self.wait_for_lease(&why),
                None => true,
            };
            if !go_on || !self.submit(a)? {
                st.agents.stop_waiting(a);
                return Ok(None);
            }
        }
        let mut shown: Option<(AgentState, Option<Wait>)> = None;
        let result = loop {
            let done = st
                .store
                .with_reader(|j| observe(st, j, a, after_restart))
                .map_err(|e| e.to_string())?;
            if let Some(o) = done {
                break Some(o);
            }
            if self.ctl.kill.is_cancelled() || st.is_shutting_down() {
                break None;
            }
            let now = self.where_is(a);
            if shown != Some(now) {
                if !self.ctl.pause.load(Ordering::Acquire) && !self.become_(now.0, now.1) {
                    break None;
                }
                shown = Some(now);
            }
            match rx.recv_timeout(POLL) {
                Ok(()) | Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => std::thread::sleep(POLL),
            }
        };
        st.agents.stop_waiting(a);
        Ok(result)
    }

    /// Why the agent's lease lapsed, when it had one and none is active now.
    fn lease_lapsed(&self) -> Option<String> {
        let grantee = format!("agent:{}", self.id);
        let org = &self.rec.view.org;
        let t = self.st.leases.read().ok()?;
        if t.active_for(org, &grantee, crate::limits::now_ms())
            .is_some()
        {
            return None;
        }
        let last = t.list(org, Some(&grantee)).into_iter().last()?;
        Some(format!("lease {} is no longer active", last.id))
    }

    /// Waits (as `waiting (lease)`) until a lease for this agent is active again, then lets it
    /// think again with what it saw. False: it must stop working (killed, paused, shutdown).
    fn wait_for_lease(&self, why: &str) -> bool {
        let grantee = format!("agent:{}", self.id);
        let reason = Some(format!(
            "its lease ended ({why}); grant it a new one to go on"
        ));
        if self
            .mover()
            .to(
                self.id,
                AgentState::Waiting,
                Some(Wait::Lease),
                reason,
                None,
            )
            .is_err()
        {
            return false;
        }
        loop {
            let now = crate::limits::now_ms();
            let active = self
                .st
                .leases
                .read()
                .is_ok_and(|t| t.active_for(&self.rec.view.org, &grantee, now).is_some());
            if active {
                return true;
            }
            if self.should_stop() {
                return false;
            }
            std::thread::sleep(POLL);
        }
    }

    /// Where action `a` is: waiting for a person, running, or queued.
    fn where_is(&self, a: ActionId) -> (AgentState, Option<Wait>) {
        let asking = self
            .st
            .approvals
            .lock()
            .map(|m| m.values().any(|p| p.view.action == a.to_string()))
            .unwrap_or(false);
        let running = self
            .st
            .running
            .lock()
            .map(|m| m.contains_key(&a))
            .unwrap_or(false);
        match (asking, running) {
            (true, _) => (AgentState::Waiting, Some(Wait::Approval)),
            (false, true) => (AgentState::Running, None),
            (false, false) => (AgentState::Waiting, Some(Wait::Schedule)),
        }
    }

    /// Queues the newest plan as action `a`, as the agent's owner, through the same queue as
    /// the API. A full queue is retried; false: the agent must stop (killed, shutting down).
    fn submit(&self, a: ActionId) -> Result<bool, String> {
        let Some(plan) = self.mem.plans.last().cloned() else {
            return Err("the agent's memory has an action but no plan".into());
        };
        let spawned = &self.rec.spawned;
        let source = format!("agent:{}", self.id);
        let principal = Principal {
            actor: self.rec.actor.clone(),
            org: self.rec.view.org.clone(),
            role: spawned.role,
            key_id: spawned.key_id.clone(),
            source: source.clone(),
        };
        let req = SubmitRequest {
            plan: Some(plan),
            cwd: spawned.cwd.clone(),
            ..SubmitRequest::default()
        };
        let payload = json!({
            "plan": req.plan,
            "cwd": req.cwd,
            "dry_run": false,
            "auto_approve": false,
            "role": spawned.role,
            "source": source,
            "agent": self.id.to_string(),
        });
        loop {
            if self.ctl.kill.is_cancelled() || self.st.is_shutting_down() {
                return Ok(false);
            }
            let job = Job {
                action: a,
                principal: principal.clone(),
                req: req.clone(),
                agent: Some(self.id.to_string()),
                schedule: None,
                monitor: None,
                lease: None,
                max_risk: None,
                fleet: None,
            };
            match self
                .rt
                .block_on(crate::submit::enqueue(self.st, job, payload.clone()))
            {
                Ok(()) => return Ok(true),
                Err(e) if e.status.as_u16() == 429 => {
                    if !self.become_(AgentState::Waiting, Some(Wait::Schedule)) {
                        return Ok(false);
                    }
                    std::thread::sleep(Duration::from_secs(1));
                }
                Err(e) if e.status.as_u16() == 503 => return Ok(false),
                Err(e) => return Err(format!("cannot submit its plan: {}", e.detail)),
            }
        }
    }

    /// Writes the memory to the blob store and journals `agent.snapshot`.
    fn save(&mut self, pending: Option<ActionId>) -> Result<(), String> {
        self.mem.elapsed_ms = u64::try_from(self.elapsed().as_millis()).unwrap_or(u64::MAX);
        let bytes = serde_json::to_vec(&self.mem).map_err(|e| e.to_string())?;
        let blob = self
            .st
            .engine
            .blobs()
            .put(&bytes)
            .map_err(|e| format!("cannot store the agent's memory: {e}"))?;
        let snap = Snapshot {
            agent: self.id,
            blob: blob.to_hex(),
            used: used(&self.mem),
            pending,
        };
        let ev = NewEvent::new(AGENT_SNAPSHOT, self.rec.actor.clone())
            .org(&self.rec.view.org)
            .payload(serde_json::to_value(&snap).map_err(|e| e.to_string())?);
        self.st
            .store
            .append_now(ev)
            .map_err(|e| format!("cannot journal the agent's snapshot: {e}"))?;
        Ok(())
    }

    /// Ends the agent: finished with the model's answer, or failed with why.
    fn end(&mut self, stop: Stop) -> Result<(), String> {
        self.save(None)?;
        let (state, answer) = match &stop {
            Stop::Done { answer } => (AgentState::Finished, Some(answer.clone())),
            _ => (AgentState::Failed, None),
        };
        let reason = match &stop {
            Stop::Done { .. } => None,
            other => Some(other.to_string()),
        };
        let _ = self.mover().to(self.id, state, None, reason, answer);
        Ok(())
    }
}

/// The wire form of what a memory used.
pub(crate) fn used(m: &Memory) -> AgentUsed {
    AgentUsed {
        turns: m.turns,
        steps: m.steps,
        tokens: m.tokens,
        units: m.units,
        cost_usd: m.cost_usd,
        time_s: m.elapsed_ms as f64 / 1000.0,
    }
}

/// An agent's memory from its snapshot blob.
pub(crate) fn load(st: &State, blob: &str) -> Result<Memory, String> {
    let id: kernos_journal::BlobId = blob
        .parse()
        .map_err(|e| format!("snapshot blob {blob}: {e}"))?;
    let bytes = st
        .engine
        .blobs()
        .get(&id)
        .map_err(|e| format!("cannot read the agent's snapshot {blob}: {e}"))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| format!("the agent's snapshot {blob} is damaged: {e}"))
}
