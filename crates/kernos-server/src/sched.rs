//! Run slots shared fairly between organisations.
//!
//! `server.workers` is the number of *slots*: actions planned or run at once. Each
//! organisation has its own FIFO queue; when a slot frees, the next organisation in turn (round
//! robin) whose running actions are under `server.max_running_per_org` gets it, so one busy
//! organisation cannot hold every slot while another waits. A step waiting for approval gives
//! its slot back while it waits (its thread parks, and a replacement thread serves the slot);
//! when the answer comes it takes a slot again, ahead of its organisation's queued work. The
//! number of parked actions is bounded (`server.max_waiting_per_org`, `server.max_waiting`):
//! beyond it a step that asks for approval is declined at once with the reason.
//!
//! Pure bookkeeping under one mutex; the threads themselves are started by `worker`.

use std::collections::{HashMap, VecDeque};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use kernos_core::ActionId;

use crate::auth::Principal;
use crate::wire::SubmitRequest;

/// A queued action.
#[derive(Debug)]
pub(crate) struct Job {
    pub(crate) action: ActionId,
    pub(crate) principal: Principal,
    pub(crate) req: SubmitRequest,
    /// The agent the action is a step of, if any: its capability lease (`agent:<id>`) is
    /// the one the steps run under. `None` for API submissions (the key's lease applies).
    pub(crate) agent: Option<String>,
    /// The schedule the action is a run of, if any: its lease (`schedule:<id>`) applies.
    pub(crate) schedule: Option<String>,
    /// The monitor whose remediation this is, if any: its lease (`monitor:<name>`) applies.
    pub(crate) monitor: Option<String>,
    /// A lease named for the steps (a monitor's remediation may name one), instead of the
    /// grantee's.
    pub(crate) lease: Option<String>,
    /// The highest risk the lease may approve for these steps, if lower than its own.
    pub(crate) max_risk: Option<kernos_core::Risk>,
    /// A plan a fleet controller sent this node: approved at home up to a risk.
    pub(crate) fleet: Option<FleetGrant>,
}

/// What home approved for a plan it fanned out to this node. Steps policy asks about are
/// approved up to `risk` (home's approval, capped by this node's `max_risk`) and declined
/// above it at once: a node never waits for a person of its own. Denials stand.
#[derive(Debug, Clone)]
pub(crate) struct FleetGrant {
    pub(crate) risk: kernos_core::Risk,
    pub(crate) by: String,
    pub(crate) fanout: String,
}

/// One organisation's share of the scheduler.
#[derive(Debug, Default)]
struct OrgState {
    /// Queued actions, oldest first.
    jobs: VecDeque<Job>,
    /// Parked actions whose answer came, waiting for a slot (tickets), oldest first.
    resumers: VecDeque<u64>,
    /// Slots it holds.
    running: usize,
    /// Actions parked on an approval (holding no slot).
    parked: usize,
}

impl OrgState {
    fn has_work(&self) -> bool {
        !self.jobs.is_empty() || !self.resumers.is_empty()
    }

    fn is_idle(&self) -> bool {
        !self.has_work() && self.running == 0 && self.parked == 0
    }
}

#[derive(Debug, Default)]
struct Inner {
    orgs: HashMap<String, OrgState>,
    /// Organisations with queued jobs or resumers, in turn order.
    ring: VecDeque<String>,
    /// Slots nobody holds.
    free: usize,
    /// Jobs in the org queues.
    queued: usize,
    /// Queue places promised to submissions being journaled (see [`Scheduler::reserve`]).
    reserved: usize,
    /// Jobs given a slot, waiting for an idle thread to take them.
    ready: VecDeque<Job>,
    /// Resumer tickets given a slot.
    granted: std::collections::HashSet<u64>,
    next_ticket: u64,
    /// Threads waiting for a job.
    idle: usize,
    /// Worker threads serving slots (not parked).
    serving: usize,
    /// Actions parked on an approval, every org.
    parked: usize,
    /// Worker threads alive, parked or not.
    live: usize,
    closed: bool,
}

/// Why a step waiting for approval may not park.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ParkError {
    /// The organisation has too many actions waiting.
    #[error(
        "org {org} already has {n} actions waiting for approval (server.max_waiting_per_org); answer or cancel some (GET /v1/state/approvals), then submit this again"
    )]
    Org { org: String, n: usize },
    /// The daemon has too many actions waiting.
    #[error(
        "the daemon already has {0} actions waiting for approval (server.max_waiting); answer some, or try again later"
    )]
    All(usize),
}

/// What parking decided: whether the caller must start a thread to serve the freed slot.
#[derive(Debug)]
#[must_use]
pub(crate) struct Parked {
    pub(crate) spawn: bool,
}

/// Per-organisation gauges for `/metrics`.
#[derive(Debug, Clone)]
pub(crate) struct OrgGauges {
    pub(crate) org: String,
    pub(crate) queued: usize,
    pub(crate) running: usize,
    pub(crate) parked: usize,
}

/// The run slots, the per-org queues and who waits for what.
#[derive(Debug)]
pub(crate) struct Scheduler {
    slots: usize,
    per_org: usize,
    capacity: usize,
    max_parked: usize,
    max_parked_per_org: usize,
    inner: Mutex<Inner>,
    /// Idle worker threads wait here for a job (woken one per job made ready).
    work: Condvar,
    /// Parked actions whose answer came wait here for a slot.
    grant: Condvar,
    /// Shutdown waits here for the worker threads to end.
    stopped: Condvar,
}

impl Scheduler {
    /// `slots` actions at once, at most `per_org` of one organisation; `capacity` queued in all;
    /// at most `max_parked` parked (`max_parked_per_org` of one organisation).
    pub(crate) fn new(
        slots: usize,
        per_org: usize,
        capacity: usize,
        max_parked: usize,
        max_parked_per_org: usize,
    ) -> Self {
        Scheduler {
            slots,
            per_org: per_org.max(1),
            capacity,
            max_parked,
            max_parked_per_org,
            inner: Mutex::new(Inner {
                free: slots,
                ..Inner::default()
            }),
            work: Condvar::new(),
            grant: Condvar::new(),
            stopped: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every section below leaves the state consistent before anything can panic, so a
        // poisoned lock still holds usable state.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Promises a queue place to a submission about to be journaled, so a full queue answers
    /// 429 before anything is written. `Err(depth)` when full.
    pub(crate) fn reserve(&self) -> Result<(), usize> {
        let mut g = self.lock();
        let depth = g.queued + g.reserved;
        if depth >= self.capacity {
            return Err(depth);
        }
        g.reserved += 1;
        Ok(())
    }

    /// Gives back a place promised by [`Scheduler::reserve`] that will not be used.
    pub(crate) fn unreserve(&self) {
        let mut g = self.lock();
        g.reserved = g.reserved.saturating_sub(1);
    }

    /// Queues a job on a place promised by [`Scheduler::reserve`]; hands it back when the
    /// scheduler is closed (shutdown).
    pub(crate) fn push(&self, job: Job) -> Result<(), Box<Job>> {
        let mut g = self.lock();
        g.reserved = g.reserved.saturating_sub(1);
        if g.closed {
            return Err(Box::new(job));
        }
        let org = job.principal.org.clone();
        let o = g.orgs.entry(org.clone()).or_default();
        let was_waiting = o.has_work();
        o.jobs.push_back(job);
        g.queued += 1;
        if !was_waiting {
            g.ring.push_back(org);
        }
        self.dispatch(&mut g, false);
        Ok(())
    }

    /// Takes a queued action out (it was cancelled before it started).
    pub(crate) fn remove(&self, action: ActionId) -> Option<Job> {
        let mut g = self.lock();
        let (org, i) = g.orgs.iter().find_map(|(org, o)| {
            o.jobs
                .iter()
                .position(|j| j.action == action)
                .map(|i| (org.clone(), i))
        })?;
        let o = g.orgs.get_mut(&org)?;
        let job = o.jobs.remove(i)?;
        if !o.has_work() {
            g.ring.retain(|r| *r != org);
        }
        g.queued -= 1;
        self.tidy(&mut g, &org);
        Some(job)
    }

    /// Called by a worker thread: ends its previous job (`finished`: the job's org and whether
    /// it still held its slot) and returns the next job it runs, holding a slot, or `None`
    /// when the thread should end (the daemon shuts down, or it is one too many after a parked
    /// action came back). One lock for both, and a thread that frees a slot takes the next job
    /// itself rather than waking another.
    pub(crate) fn next_job(&self, finished: Option<(&str, bool)>) -> Option<Job> {
        let mut g = self.lock();
        if let Some((org, holds_slot)) = finished {
            if holds_slot {
                self.release(&mut g, org);
            }
            if g.serving > self.slots {
                g.serving -= 1;
                g.live -= 1;
                self.dispatch(&mut g, false);
                self.stopped.notify_all();
                return None;
            }
        }
        g.idle += 1;
        self.dispatch(&mut g, true);
        loop {
            if let Some(job) = g.ready.pop_front() {
                g.idle -= 1;
                return Some(job);
            }
            if g.closed {
                g.idle -= 1;
                g.serving -= 1;
                g.live -= 1;
                self.stopped.notify_all();
                return None;
            }
            g = self.work.wait(g).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// A step of `org` starts waiting for approval: its slot (when it holds one) goes to other
    /// work while it waits. Refused when too many actions wait already.
    pub(crate) fn park(&self, org: &str, holds_slot: bool) -> Result<Parked, ParkError> {
        let mut g = self.lock();
        if g.parked >= self.max_parked {
            return Err(ParkError::All(g.parked));
        }
        let n = g.orgs.get(org).map(|o| o.parked).unwrap_or(0);
        if n >= self.max_parked_per_org {
            return Err(ParkError::Org {
                org: org.to_owned(),
                n,
            });
        }
        // Counted first, so giving the slot back does not forget the organisation.
        g.orgs.entry(org.to_owned()).or_default().parked += 1;
        if holds_slot {
            self.release(&mut g, org);
        }
        g.parked += 1;
        g.serving -= 1;
        // A thread stands in for the parked one, unless enough already serve.
        let spawn = g.serving < self.slots;
        if spawn {
            g.serving += 1;
            g.live += 1;
        }
        self.dispatch(&mut g, false);
        Ok(Parked { spawn })
    }

    /// The replacement thread [`Scheduler::park`] asked for could not be started.
    pub(crate) fn spawn_failed(&self) {
        let mut g = self.lock();
        g.serving -= 1;
        g.live -= 1;
        self.stopped.notify_all();
    }

    /// The answer came. With `take_slot` (the step will run) waits for a slot, ahead of the
    /// org's queued work and within its cap; without (a decline: only the end is journaled)
    /// goes on at once, holding none.
    pub(crate) fn unpark(&self, org: &str, take_slot: bool) {
        let mut g = self.lock();
        let o = g.orgs.entry(org.to_owned()).or_default();
        o.parked = o.parked.saturating_sub(1);
        g.parked = g.parked.saturating_sub(1);
        g.serving += 1;
        if !take_slot {
            self.tidy(&mut g, org);
            return;
        }
        let ticket = g.next_ticket;
        g.next_ticket += 1;
        let o = g.orgs.entry(org.to_owned()).or_default();
        let was_waiting = o.has_work();
        o.resumers.push_back(ticket);
        if !was_waiting {
            g.ring.push_back(org.to_owned());
        }
        self.dispatch(&mut g, false);
        while !g.granted.remove(&ticket) {
            g = self.grant.wait(g).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Shutdown: no job starts any more; the queued ones are handed back (to be journaled as
    /// aborted). Parked actions still get slots to end.
    pub(crate) fn close(&self) -> Vec<Job> {
        let mut g = self.lock();
        g.closed = true;
        let mut out: Vec<Job> = g.ready.drain(..).collect();
        // Jobs that were given a slot but not taken give it back.
        for j in &out {
            let org = j.principal.org.clone();
            self.release(&mut g, &org);
        }
        let orgs: Vec<String> = g.orgs.keys().cloned().collect();
        for org in orgs {
            if let Some(o) = g.orgs.get_mut(&org) {
                out.extend(o.jobs.drain(..));
            }
        }
        g.queued = 0;
        self.dispatch(&mut g, false);
        out
    }

    /// Counts a worker thread that is starting.
    pub(crate) fn thread_started(&self) {
        let mut g = self.lock();
        g.serving += 1;
        g.live += 1;
    }

    /// Waits until every worker thread has ended, or `deadline`. `true` when they all did.
    pub(crate) fn wait_stopped(&self, deadline: Instant) -> bool {
        let mut g = self.lock();
        while g.live > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            g = self
                .stopped
                .wait_timeout(g, left.min(Duration::from_millis(50)))
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
        }
        true
    }

    /// Actions queued (not yet given a slot).
    pub(crate) fn queued(&self) -> usize {
        let g = self.lock();
        g.queued + g.ready.len()
    }

    /// Per-org queued, running (slot held) and parked counts, by org name.
    pub(crate) fn gauges(&self) -> Vec<OrgGauges> {
        let g = self.lock();
        let mut v: Vec<OrgGauges> = g
            .orgs
            .iter()
            .map(|(org, o)| OrgGauges {
                org: org.clone(),
                queued: o.jobs.len() + g.ready.iter().filter(|j| j.principal.org == *org).count(),
                running: o.running,
                parked: o.parked,
            })
            .collect();
        v.sort_by(|a, b| a.org.cmp(&b.org));
        v
    }

    /// Gives `org`'s slot back.
    fn release(&self, g: &mut Inner, org: &str) {
        if let Some(o) = g.orgs.get_mut(org) {
            o.running = o.running.saturating_sub(1);
        }
        g.free = (g.free + 1).min(self.slots);
        self.tidy(g, org);
    }

    /// Forgets an organisation that has nothing queued, running or parked (the map stays as
    /// small as the set of active organisations).
    fn tidy(&self, g: &mut Inner, org: &str) {
        if g.orgs.get(org).is_some_and(OrgState::is_idle) {
            g.orgs.remove(org);
        }
    }

    /// Hands free slots out, one org at a time in turn: a waiting resumer first, else the
    /// oldest queued job (only while an idle thread can take it). Orgs at their cap wait.
    /// `caller_takes`: the calling thread is idle and takes the first job itself (no wake-up).
    fn dispatch(&self, g: &mut Inner, caller_takes: bool) {
        let mut granted = false;
        let mut wake = !(caller_takes && g.ready.is_empty());
        while g.free > 0 {
            let mut served = false;
            for _ in 0..g.ring.len() {
                let Some(org) = g.ring.pop_front() else { break };
                let can_take_job = g.idle > g.ready.len();
                let Some(o) = g.orgs.get_mut(&org) else {
                    continue;
                };
                let mut job = None;
                let mut ticket = None;
                if o.running < self.per_org {
                    if let Some(t) = o.resumers.pop_front() {
                        ticket = Some(t);
                    } else if can_take_job {
                        job = o.jobs.pop_front();
                    }
                }
                served = ticket.is_some() || job.is_some();
                if served {
                    o.running += 1;
                }
                let more = o.has_work();
                if more {
                    g.ring.push_back(org);
                }
                if let Some(t) = ticket {
                    g.granted.insert(t);
                    granted = true;
                }
                if let Some(j) = job {
                    g.queued -= 1;
                    g.ready.push_back(j);
                    if wake {
                        self.work.notify_one();
                    }
                    wake = true;
                }
                if served {
                    g.free -= 1;
                    break;
                }
            }
            if !served {
                break;
            }
        }
        if granted {
            self.grant.notify_all();
        }
        if g.closed {
            self.work.notify_all();
        }
    }
}
