//! A schedule's durable state, the transitions that change it, and the decision of what to do
//! now ([`ScheduleState::due`]).
//!
//! Everything here is pure: the daemon asks [`ScheduleState::due`] what to do at its clock's
//! "now", journals the [`Transition`] that records the choice, applies it with
//! [`ScheduleState::apply`], and only then acts. A restart rebuilds the state by applying the
//! journaled transitions in order ([`ScheduleState::replay`]) and so makes the same choices: a
//! fire time that a `Started` or `Skipped` already covers is never due again, and a run that
//! was `Started` but never `Finished` is closed by [`ScheduleState::recover`] as interrupted
//! instead of blocking the schedule forever.
//!
//! The semantics follow systemd timers: missed fire times after downtime run once
//! ([`MissedRuns::RunOnce`], `Persistent=true`) or are skipped ([`MissedRuns::Skip`]); a
//! randomized delay spreads fires; one copy of a schedule runs at a time, and fire times that
//! pass meanwhile fold into a single run after it.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::clock::{add, until};
use crate::delay::random_delay;
use crate::when::When;

/// How late a fire may start and still count as on time (not missed) under
/// [`MissedRuns::Skip`]: long enough for a busy daemon, short enough that "after downtime"
/// really means downtime.
pub const ON_TIME_GRACE: Duration = Duration::from_secs(60);

/// Fire times folded into one run are counted up to this many (then reported as this many).
pub const COUNT_CAP: u32 = 10_000;

/// What happens to fire times that passed while the schedule could not run (the daemon was
/// down, or the previous run was still going).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MissedRuns {
    /// Run once, as soon as possible, for all of them together (systemd's `Persistent=true`).
    #[default]
    RunOnce,
    /// Do not run them; wait for the next fire time. A fire time no more than
    /// [`ON_TIME_GRACE`] late still runs (and the earlier ones it folds in do not run again).
    Skip,
}

/// What a schedule remembers across restarts. The daemon journals the [`Transition`]s (or
/// snapshots of this state); nothing else needs saving.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleState {
    /// The schedule's id.
    pub id: String,
    /// When it fires.
    pub when: When,
    /// What happens to missed fire times.
    pub missed: MissedRuns,
    /// Upper bound of the randomized delay added to each fire time, in milliseconds (0: none).
    #[serde(default)]
    pub random_delay_ms: u64,
    /// Paused schedules do not fire on their own (a run-now still runs).
    #[serde(default)]
    pub paused: bool,
    /// The latest fire time a run has covered.
    #[serde(default)]
    pub last_fired: Option<DateTime<Utc>>,
    /// The next fire time not yet covered by a run or a skip (`None`: it never fires again).
    pub next_due: Option<DateTime<Utc>>,
    /// The run in progress, if any.
    #[serde(default)]
    pub running: Option<Running>,
    /// A run-now that has been asked for and not started yet.
    #[serde(default)]
    pub run_requested: Option<DateTime<Utc>>,
    /// How the latest run ended.
    #[serde(default)]
    pub last_run: Option<LastRun>,
    /// Fire times skipped so far under [`MissedRuns::Skip`] (capped counts added up).
    #[serde(default)]
    pub skipped: u64,
}

/// A run in progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Running {
    /// The run's id (the daemon's action id).
    pub run: String,
    /// When it started.
    pub started: DateTime<Utc>,
    /// Whether a person asked for it (run-now) rather than the timing.
    pub manual: bool,
    /// The latest fire time it stands for, if any.
    pub covers: Option<DateTime<Utc>>,
}

/// How the latest run ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastRun {
    /// The run's id.
    pub run: String,
    /// When it started.
    pub started: DateTime<Utc>,
    /// When it ended (or was found interrupted).
    pub ended: DateTime<Utc>,
    /// How.
    pub outcome: RunOutcome,
}

/// The end of a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum RunOutcome {
    /// It finished; `status` is the daemon's word for how (its action status).
    Finished {
        /// The action's status.
        status: String,
    },
    /// It never finished: the daemon stopped, crashed or lost it. The schedule goes on.
    Interrupted,
}

/// One recorded change of a schedule's state. Each carries everything [`ScheduleState::apply`]
/// needs (next fire times included), so replaying them never recomputes a choice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Transition {
    /// A run started.
    Started {
        /// The run's id.
        run: String,
        /// When.
        at: DateTime<Utc>,
        /// Whether it is a run-now.
        manual: bool,
        /// The latest fire time it stands for (none for a run-now with nothing due).
        covers: Option<DateTime<Utc>>,
        /// Earlier fire times folded into it.
        coalesced: u32,
        /// The next fire time after it.
        next: Option<DateTime<Utc>>,
    },
    /// Missed fire times were skipped ([`MissedRuns::Skip`]).
    Skipped {
        /// The first skipped fire time.
        from: DateTime<Utc>,
        /// The last skipped fire time.
        to: DateTime<Utc>,
        /// How many (up to [`COUNT_CAP`]).
        count: u32,
        /// The next fire time after them.
        next: Option<DateTime<Utc>>,
    },
    /// Someone asked to run it now.
    RunRequested {
        /// When.
        at: DateTime<Utc>,
    },
    /// A run finished.
    Finished {
        /// The run's id.
        run: String,
        /// When.
        at: DateTime<Utc>,
        /// The daemon's status of the run.
        status: String,
    },
    /// A run was found never to have finished (after a restart, or lost).
    Interrupted {
        /// The run's id.
        run: String,
        /// When this was noticed.
        at: DateTime<Utc>,
    },
    /// Paused: no fires on its own until resumed.
    Paused {
        /// When.
        at: DateTime<Utc>,
    },
    /// Resumed; fire times during the pause are not made up.
    Resumed {
        /// When.
        at: DateTime<Utc>,
        /// The next fire time after `at`.
        next: Option<DateTime<Utc>>,
    },
}

/// What a schedule should do now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Due {
    /// Nothing yet. Wake at `until` (a fire time plus its delay) and ask again; `None`: nothing
    /// is coming on its own (paused, no more fire times, or a run in progress whose end will
    /// wake it).
    Wait {
        /// When to ask again.
        until: Option<DateTime<Utc>>,
    },
    /// Start a run: journal and apply [`RunPlan::start`] with a new run id, then run it.
    Run(RunPlan),
    /// Journal and apply this [`Transition::Skipped`], then ask again.
    Skip(Transition),
}

/// A run that is due, before it has an id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunPlan {
    /// Whether a person asked for it.
    pub manual: bool,
    /// The latest fire time it stands for.
    pub covers: Option<DateTime<Utc>>,
    /// Earlier fire times folded into it (missed during downtime, or passed during a run).
    pub coalesced: u32,
    /// How late it starts: now minus the fire time plus its delay (zero for a run-now).
    pub late: Duration,
    /// The fire time after it.
    pub next: Option<DateTime<Utc>>,
}

impl RunPlan {
    /// The transition that records this run starting as `run` at `at`.
    pub fn start(&self, run: impl Into<String>, at: DateTime<Utc>) -> Transition {
        Transition::Started {
            run: run.into(),
            at,
            manual: self.manual,
            covers: self.covers,
            coalesced: self.coalesced,
            next: self.next,
        }
    }
}

/// The answer to a run-now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunNow {
    /// Journal and apply this [`Transition::RunRequested`]; [`ScheduleState::due`] then runs it.
    Requested(Transition),
    /// A run is in progress; the request joins it (never two copies at once).
    AlreadyRunning {
        /// The run in progress.
        run: String,
    },
    /// A run-now is already waiting to start; this one joins it.
    AlreadyRequested {
        /// When that one was asked for.
        at: DateTime<Utc>,
    },
}

/// Scheduled fire times that are due now, folded into one.
struct Folded {
    first: DateTime<Utc>,
    latest: DateTime<Utc>,
    coalesced: u32,
    late: Duration,
    next: Option<DateTime<Utc>>,
}

impl ScheduleState {
    /// A new schedule, created at `now`: its first fire time is the first after `now`.
    pub fn new(
        id: impl Into<String>,
        when: When,
        missed: MissedRuns,
        random_delay: Duration,
        now: DateTime<Utc>,
    ) -> Self {
        ScheduleState {
            id: id.into(),
            next_due: when.next_after(now),
            when,
            missed,
            random_delay_ms: u64::try_from(random_delay.as_millis()).unwrap_or(u64::MAX),
            paused: false,
            last_fired: None,
            running: None,
            run_requested: None,
            last_run: None,
            skipped: 0,
        }
    }

    /// Rebuilds a schedule from its initial state and its journaled transitions, in order.
    pub fn replay<'a>(
        initial: ScheduleState,
        transitions: impl IntoIterator<Item = &'a Transition>,
    ) -> Self {
        let mut state = initial;
        for t in transitions {
            state.apply(t);
        }
        state
    }

    /// The randomized delay of fire time `fire` (the same on every call and after a restart).
    pub fn delay_of(&self, fire: DateTime<Utc>) -> Duration {
        random_delay(&self.id, fire, Duration::from_millis(self.random_delay_ms))
    }

    /// When fire time `fire` actually starts: plus its randomized delay.
    pub fn start_of(&self, fire: DateTime<Utc>) -> DateTime<Utc> {
        add(fire, self.delay_of(fire))
    }

    /// What to do at `now`.
    pub fn due(&self, now: DateTime<Utc>) -> Due {
        if self.running.is_some() {
            // One copy at a time: fire times passing now stay due and fold into one run when
            // this one ends (its Finished/Interrupted is what wakes the schedule again).
            return Due::Wait { until: None };
        }
        let scheduled = if self.paused {
            Err(None)
        } else {
            self.fold(now)
        };
        if self.run_requested.is_some() {
            return Due::Run(match scheduled {
                Ok(f) => RunPlan {
                    manual: true,
                    covers: Some(f.latest),
                    coalesced: f.coalesced.saturating_add(1),
                    late: Duration::ZERO,
                    next: f.next,
                },
                Err(_) => RunPlan {
                    manual: true,
                    covers: None,
                    coalesced: 0,
                    late: Duration::ZERO,
                    next: self.next_due,
                },
            });
        }
        let f = match scheduled {
            Ok(f) => f,
            Err(until) => return Due::Wait { until },
        };
        if self.missed == MissedRuns::Skip && f.late > ON_TIME_GRACE {
            return Due::Skip(Transition::Skipped {
                from: f.first,
                to: f.latest,
                count: f.coalesced.saturating_add(1),
                next: f.next,
            });
        }
        Due::Run(RunPlan {
            manual: false,
            covers: Some(f.latest),
            coalesced: f.coalesced,
            late: f.late,
            next: f.next,
        })
    }

    /// When the timer should next ask [`ScheduleState::due`]: now if something is due, else
    /// the `until` of [`Due::Wait`].
    pub fn wake_at(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self.due(now) {
            Due::Wait { until } => until,
            Due::Run(_) | Due::Skip(_) => Some(now),
        }
    }

    /// The scheduled fire times due at `now`, folded: the latest whose start (fire time plus
    /// delay) has come, and how many earlier ones it stands for. `Err(until)` when none is due.
    fn fold(&self, now: DateTime<Utc>) -> Result<Folded, Option<DateTime<Utc>>> {
        let first = self.next_due.ok_or(None)?;
        let first_start = self.start_of(first);
        if now < first_start {
            return Err(Some(first_start));
        }
        let mut latest = first;
        if let Some(last) = self.when.latest_at_or_before(now).filter(|t| *t > first) {
            if self.start_of(last) <= now {
                latest = last;
            } else if let Some(before) = last
                .checked_sub_signed(chrono::Duration::milliseconds(1))
                .and_then(|t| self.when.latest_at_or_before(t))
                .filter(|t| *t > first && self.start_of(*t) <= now)
            {
                // The latest fire time is still inside its randomized delay: run the one before.
                latest = before;
            }
        }
        Ok(Folded {
            first,
            latest,
            coalesced: self.when.count_between(first, latest, COUNT_CAP),
            late: until(self.start_of(latest), now),
            next: self.when.next_after(latest),
        })
    }

    /// Applies a recorded transition. Returns false (and changes nothing) for one that does not
    /// fit the state — a start while a run is in progress, a start of a run that already ended
    /// or of fire times already covered, the end of a run that is not the current one, pausing a
    /// paused schedule — so replaying a journal that recorded a transition twice is harmless.
    pub fn apply(&mut self, t: &Transition) -> bool {
        match t {
            Transition::Started {
                run,
                at,
                manual,
                covers,
                next,
                ..
            } => {
                let ended = self.last_run.as_ref().is_some_and(|r| r.run == *run);
                let already_covered = !*manual
                    && covers.is_some()
                    && self.last_fired.is_some()
                    && *covers <= self.last_fired;
                if self.running.is_some() || ended || already_covered {
                    return false;
                }
                self.running = Some(Running {
                    run: run.clone(),
                    started: *at,
                    manual: *manual,
                    covers: *covers,
                });
                if covers.is_some() {
                    self.last_fired = *covers;
                    self.next_due = *next;
                }
                if *manual {
                    self.run_requested = None;
                }
            }
            Transition::Skipped { count, next, .. } => {
                self.skipped = self.skipped.saturating_add(u64::from(*count));
                self.next_due = *next;
            }
            Transition::RunRequested { at } => {
                if self.running.is_some() || self.run_requested.is_some() {
                    return false;
                }
                self.run_requested = Some(*at);
            }
            Transition::Finished { run, at, status } => {
                return self.end(
                    run,
                    *at,
                    RunOutcome::Finished {
                        status: status.clone(),
                    },
                );
            }
            Transition::Interrupted { run, at } => {
                return self.end(run, *at, RunOutcome::Interrupted);
            }
            Transition::Paused { .. } => {
                if self.paused {
                    return false;
                }
                self.paused = true;
            }
            Transition::Resumed { next, .. } => {
                if !self.paused {
                    return false;
                }
                self.paused = false;
                self.next_due = *next;
            }
        }
        true
    }

    fn end(&mut self, run: &str, at: DateTime<Utc>, outcome: RunOutcome) -> bool {
        let Some(current) = self.running.take_if(|r| r.run == run) else {
            return false;
        };
        self.last_run = Some(LastRun {
            run: current.run,
            started: current.started,
            ended: at,
            outcome,
        });
        true
    }

    /// After a restart: a run recorded as started and never finished cannot still be going (the
    /// process that ran it is gone), so it is closed as interrupted and the schedule goes on.
    pub fn recover(&self, now: DateTime<Utc>) -> Option<Transition> {
        self.running.as_ref().map(|r| Transition::Interrupted {
            run: r.run.clone(),
            at: now,
        })
    }

    /// A run-now at `now`: requested, or joined to the run in progress or already requested.
    pub fn request_run(&self, now: DateTime<Utc>) -> RunNow {
        if let Some(r) = &self.running {
            return RunNow::AlreadyRunning { run: r.run.clone() };
        }
        if let Some(at) = self.run_requested {
            return RunNow::AlreadyRequested { at };
        }
        RunNow::Requested(Transition::RunRequested { at: now })
    }

    /// Pausing at `now` (`None` if already paused).
    pub fn pause(&self, now: DateTime<Utc>) -> Option<Transition> {
        (!self.paused).then_some(Transition::Paused { at: now })
    }

    /// Resuming at `now` (`None` if not paused): fire times during the pause are not made up.
    pub fn resume(&self, now: DateTime<Utc>) -> Option<Transition> {
        self.paused.then(|| Transition::Resumed {
            at: now,
            next: self.when.next_after(now),
        })
    }
}
