//! What a schedule does when its time comes: catch up once (or skip) after downtime, never run
//! two copies, fold overlapping triggers into one run, survive restarts by replaying what was
//! journaled, and never wedge on a run that was interrupted.
//!
//! A small stand-in for the daemon drives it here the way the daemon will: ask `due`, journal
//! the transition, apply it, act.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::time::Duration;

use kernos_schedule::{
    DateTime, Due, MissedRuns, ON_TIME_GRACE, RunNow, RunOutcome, ScheduleState, Transition, Tz,
    Utc, When, random_delay,
};

fn utc(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

/// The daemon's side: a journal of transitions and the runs it started.
struct Daemon {
    initial: ScheduleState,
    state: ScheduleState,
    journal: Vec<Transition>,
    started: Vec<String>,
}

impl Daemon {
    fn new(when: &str, missed: MissedRuns, created: &str) -> Self {
        let when = When::parse(when, Tz::UTC).unwrap();
        let state = ScheduleState::new("sched-1", when, missed, Duration::ZERO, utc(created));
        Daemon {
            initial: state.clone(),
            state,
            journal: Vec::new(),
            started: Vec::new(),
        }
    }

    fn record(&mut self, t: Transition) {
        assert!(
            self.state.apply(&t),
            "a transition the state chose applies: {t:?}"
        );
        self.journal.push(t);
    }

    /// What the timer callback does at `now`: act on everything due, return when to wake.
    fn tick(&mut self, now: &str) -> Option<DateTime<Utc>> {
        let now = utc(now);
        loop {
            match self.state.due(now) {
                Due::Wait { until } => return until,
                Due::Skip(t) => self.record(t),
                Due::Run(plan) => {
                    let run = format!("run-{}", self.started.len() + 1);
                    self.record(plan.start(run.clone(), now));
                    self.started.push(run);
                }
            }
        }
    }

    fn finish(&mut self, now: &str) {
        let run = self
            .state
            .running
            .as_ref()
            .expect("a run is going")
            .run
            .clone();
        self.record(Transition::Finished {
            run,
            at: utc(now),
            status: "succeeded".into(),
        });
    }

    /// The daemon stops (whatever was running dies with it) and starts again from its journal.
    fn restart(&mut self, now: &str) {
        self.state = ScheduleState::replay(self.initial.clone(), &self.journal);
        if let Some(t) = self.state.recover(utc(now)) {
            self.record(t);
        }
    }
}

#[test]
fn a_due_schedule_runs_at_its_time_and_waits_for_the_next() {
    let mut d = Daemon::new(
        "every day at 03:00",
        MissedRuns::RunOnce,
        "2025-01-01T12:00:00Z",
    );
    assert_eq!(d.state.next_due, Some(utc("2025-01-02T03:00:00Z")));
    assert_eq!(
        d.tick("2025-01-02T02:59:59Z"),
        Some(utc("2025-01-02T03:00:00Z")),
        "not yet: wake at the fire time"
    );
    assert!(d.started.is_empty());
    assert_eq!(
        d.tick("2025-01-02T03:00:00Z"),
        None,
        "running: its end wakes it"
    );
    assert_eq!(d.started, ["run-1"]);
    assert_eq!(d.state.last_fired, Some(utc("2025-01-02T03:00:00Z")));
    d.finish("2025-01-02T03:00:05Z");
    assert_eq!(
        d.tick("2025-01-02T03:00:05Z"),
        Some(utc("2025-01-03T03:00:00Z"))
    );
    assert_eq!(d.started.len(), 1);
}

#[test]
fn a_schedule_missed_during_downtime_runs_once_after_restart_never_twice() {
    let mut d = Daemon::new(
        "every day at 03:00",
        MissedRuns::RunOnce,
        "2025-01-01T12:00:00Z",
    );
    // The daemon is down from before 2025-01-02T03:00 until 2025-01-04T10:00: three fire times pass.
    d.restart("2025-01-04T10:00:00Z");
    let Due::Run(plan) = d.state.due(utc("2025-01-04T10:00:00Z")) else {
        panic!("missed fire times make it due");
    };
    assert_eq!(
        plan.covers,
        Some(utc("2025-01-04T03:00:00Z")),
        "stands for the latest"
    );
    assert_eq!(plan.coalesced, 2, "and folds the two before it in");
    assert_eq!(plan.late, Duration::from_secs(7 * 3600));
    d.tick("2025-01-04T10:00:00Z");
    assert_eq!(d.started, ["run-1"], "once, not three times");

    // It crashes mid-run and restarts twice more: the missed times are never run again.
    d.restart("2025-01-04T10:01:00Z");
    assert_eq!(
        d.state.last_run.as_ref().map(|r| &r.outcome),
        Some(&RunOutcome::Interrupted)
    );
    assert_eq!(
        d.tick("2025-01-04T10:01:00Z"),
        Some(utc("2025-01-05T03:00:00Z"))
    );
    d.restart("2025-01-04T10:02:00Z");
    assert_eq!(
        d.tick("2025-01-04T10:02:00Z"),
        Some(utc("2025-01-05T03:00:00Z"))
    );
    assert_eq!(d.started, ["run-1"]);
}

#[test]
fn skip_policy_drops_missed_times_but_runs_one_that_is_barely_late() {
    let mut d = Daemon::new(
        "every day at 03:00",
        MissedRuns::Skip,
        "2025-01-01T12:00:00Z",
    );
    d.restart("2025-01-04T10:00:00Z");
    assert_eq!(
        d.tick("2025-01-04T10:00:00Z"),
        Some(utc("2025-01-05T03:00:00Z"))
    );
    assert!(d.started.is_empty(), "nothing ran");
    assert_eq!(d.state.skipped, 3);
    assert!(matches!(
        d.journal.last(),
        Some(Transition::Skipped { count: 3, .. })
    ));

    // Back within the grace period of a fire time: that one still runs.
    let within = utc("2025-01-05T03:00:00Z") + chrono::Duration::from_std(ON_TIME_GRACE).unwrap();
    d.tick(&within.to_rfc3339());
    assert_eq!(d.started, ["run-1"]);
}

#[test]
fn fire_times_passing_during_a_run_fold_into_one_run_after_it() {
    let mut d = Daemon::new("every minute", MissedRuns::RunOnce, "2025-01-01T00:00:30Z");
    d.tick("2025-01-01T00:01:00Z");
    assert_eq!(d.started, ["run-1"]);
    // The run takes five minutes; the timer fires at every minute meanwhile.
    for t in ["00:02", "00:03", "00:04", "00:05"] {
        assert_eq!(d.tick(&format!("2025-01-01T{t}:00Z")), None);
    }
    assert_eq!(d.started, ["run-1"], "never two copies at once");
    d.finish("2025-01-01T00:05:30Z");
    d.tick("2025-01-01T00:05:30Z");
    assert_eq!(
        d.started,
        ["run-1", "run-2"],
        "one run for the four that passed"
    );
    match d.journal.last() {
        Some(Transition::Started {
            coalesced, covers, ..
        }) => {
            assert_eq!(*coalesced, 3);
            assert_eq!(*covers, Some(utc("2025-01-01T00:05:00Z")));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(d.state.next_due, Some(utc("2025-01-01T00:06:00Z")));
}

#[test]
fn two_overlapping_triggers_run_it_once() {
    let mut d = Daemon::new(
        "every day at 03:00",
        MissedRuns::RunOnce,
        "2025-01-01T12:00:00Z",
    );
    // Two run-nows at once (two clients), and the timer's own fire time, all at 03:00.
    let now = utc("2025-01-02T03:00:00Z");
    let RunNow::Requested(first) = d.state.request_run(now) else {
        panic!("the first is requested");
    };
    d.record(first);
    assert_eq!(
        d.state.request_run(now),
        RunNow::AlreadyRequested { at: now },
        "the second joins the first"
    );
    d.tick("2025-01-02T03:00:00Z");
    assert_eq!(d.started, ["run-1"]);
    match d.journal.last() {
        Some(Transition::Started { manual, covers, .. }) => {
            assert!(*manual);
            assert_eq!(
                *covers,
                Some(now),
                "the run-now also stands for the fire time"
            );
        }
        other => panic!("{other:?}"),
    }
    // A run-now while it runs joins the run in progress.
    assert_eq!(
        d.state.request_run(now),
        RunNow::AlreadyRunning {
            run: "run-1".into()
        }
    );
    d.finish("2025-01-02T03:01:00Z");
    assert_eq!(
        d.tick("2025-01-02T03:01:00Z"),
        Some(utc("2025-01-03T03:00:00Z"))
    );
    assert_eq!(d.started, ["run-1"]);
    // A stray second start recorded twice in a journal does not make two copies on replay.
    let dup = d.journal[1].clone();
    d.journal.push(dup.clone());
    let replayed = ScheduleState::replay(d.initial.clone(), &d.journal);
    assert!(replayed.running.is_none());
    // Nor does a second start, under another id, of a fire time a run already covered.
    let Transition::Started {
        at, covers, next, ..
    } = dup
    else {
        panic!()
    };
    d.journal.push(Transition::Started {
        run: "run-9".into(),
        at,
        manual: false,
        covers,
        coalesced: 0,
        next,
    });
    let replayed = ScheduleState::replay(d.initial.clone(), &d.journal);
    assert!(replayed.running.is_none());
}

#[test]
fn an_interrupted_run_now_never_wedges_the_schedule() {
    let mut d = Daemon::new(
        "every day at 03:00",
        MissedRuns::RunOnce,
        "2025-01-01T12:00:00Z",
    );
    let RunNow::Requested(t) = d.state.request_run(utc("2025-01-01T13:00:00Z")) else {
        panic!()
    };
    d.record(t);
    d.tick("2025-01-01T13:00:00Z");
    assert_eq!(d.started, ["run-1"]);
    assert_eq!(
        d.state.next_due,
        Some(utc("2025-01-02T03:00:00Z")),
        "a run-now moves nothing"
    );
    // The daemon dies mid-run and comes back after the next fire time.
    d.restart("2025-01-02T03:00:10Z");
    assert!(d.state.running.is_none(), "the dead run is closed");
    assert_eq!(
        d.state
            .last_run
            .as_ref()
            .map(|r| (r.run.as_str(), &r.outcome)),
        Some(("run-1", &RunOutcome::Interrupted))
    );
    d.tick("2025-01-02T03:00:10Z");
    assert_eq!(d.started, ["run-1", "run-2"], "the schedule goes on");
    // And a run-now works again.
    d.finish("2025-01-02T03:00:20Z");
    assert!(matches!(
        d.state.request_run(utc("2025-01-02T04:00:00Z")),
        RunNow::Requested(_)
    ));
}

#[test]
fn late_ends_of_other_runs_are_ignored() {
    let mut d = Daemon::new("every minute", MissedRuns::RunOnce, "2025-01-01T00:00:30Z");
    d.tick("2025-01-01T00:01:00Z");
    let stale = Transition::Finished {
        run: "run-0".into(),
        at: utc("2025-01-01T00:01:01Z"),
        status: "succeeded".into(),
    };
    assert!(!d.state.apply(&stale), "not the run in progress");
    assert!(d.state.running.is_some());
}

#[test]
fn pause_stops_fires_resume_does_not_make_them_up_and_run_now_still_works() {
    let mut d = Daemon::new("every hour", MissedRuns::RunOnce, "2025-01-01T00:30:00Z");
    let pause = d.state.pause(utc("2025-01-01T00:40:00Z")).unwrap();
    d.record(pause);
    assert_eq!(
        d.state.pause(utc("2025-01-01T00:41:00Z")),
        None,
        "already paused"
    );
    assert_eq!(
        d.tick("2025-01-01T05:00:00Z"),
        None,
        "paused: nothing to wake for"
    );
    assert!(d.started.is_empty());

    let RunNow::Requested(t) = d.state.request_run(utc("2025-01-01T05:00:00Z")) else {
        panic!()
    };
    d.record(t);
    d.tick("2025-01-01T05:00:00Z");
    assert_eq!(
        d.started,
        ["run-1"],
        "a person's run-now runs even while paused"
    );
    d.finish("2025-01-01T05:00:10Z");

    let resume = d.state.resume(utc("2025-01-01T05:10:00Z")).unwrap();
    d.record(resume);
    assert_eq!(
        d.tick("2025-01-01T05:10:00Z"),
        Some(utc("2025-01-01T06:00:00Z")),
        "the hours paused through are not made up"
    );
    assert_eq!(d.started, ["run-1"]);
}

#[test]
fn random_delay_is_deterministic_bounded_and_survives_restart() {
    let max = Duration::from_secs(300);
    let fire = utc("2025-01-02T03:00:00Z");
    let a = random_delay("sched-1", fire, max);
    assert_eq!(
        a,
        random_delay("sched-1", fire, max),
        "same id and time, same delay"
    );
    let mut distinct = std::collections::BTreeSet::new();
    for i in 0..500 {
        let d = random_delay(&format!("sched-{i}"), fire, max);
        assert!(d <= max);
        distinct.insert(d);
    }
    assert!(
        distinct.len() > 400,
        "schedules are spread: {}",
        distinct.len()
    );
    assert_eq!(
        random_delay("sched-1", fire, Duration::ZERO),
        Duration::ZERO
    );

    // A schedule with a delay starts at fire time + delay, before and after a restart.
    let when = When::parse("every day at 03:00", Tz::UTC).unwrap();
    let created = utc("2025-01-01T12:00:00Z");
    let state = ScheduleState::new("sched-1", when, MissedRuns::Skip, max, created);
    let start = state.start_of(fire);
    assert_eq!(start - fire, chrono::Duration::from_std(a).unwrap());
    let before = start - chrono::Duration::milliseconds(1);
    assert_eq!(state.due(before), Due::Wait { until: Some(start) });
    assert!(matches!(state.due(start), Due::Run(_)));
    let json = serde_json::to_string(&state).unwrap();
    let restarted: ScheduleState = serde_json::from_str(&json).unwrap();
    assert_eq!(restarted, state);
    assert_eq!(restarted.start_of(fire), start);
}

#[test]
fn state_and_transitions_are_plain_json_for_the_journal() {
    let mut d = Daemon::new(
        "every day at 03:00 in Europe/Paris",
        MissedRuns::Skip,
        "2025-01-01T12:00:00Z",
    );
    d.tick("2025-01-02T02:00:00Z");
    let json = serde_json::to_value(&d.state).unwrap();
    assert_eq!(json["missed"], "skip");
    assert_eq!(json["when"]["zone"], "Europe/Paris");
    assert_eq!(json["running"]["run"], "run-1");
    let t = serde_json::to_value(&d.journal[0]).unwrap();
    assert_eq!(t["event"], "started");
    let back: Vec<Transition> =
        serde_json::from_value(serde_json::to_value(&d.journal).unwrap()).unwrap();
    assert_eq!(back, d.journal);
}
