//! The timer: one thread that calls back when an armed time comes, woken by changes; with the
//! schedule logic on top it fires schedules headless, catches up once after a restart, and
//! keeps going when a callback fails. Times are driven by a manual clock where they can be;
//! nothing here asserts how fast anything happens.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kernos_schedule::{
    Clock, DateTime, Due, ManualClock, MissedRuns, ScheduleState, SystemClock, Timer, Transition,
    Tz, Utc, When,
};

/// Long enough that a loaded CI machine still delivers; only failures wait this long.
const PATIENCE: Duration = Duration::from_secs(10);

fn utc(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

/// Waits (up to [`PATIENCE`]) until `cond` holds.
fn eventually(cond: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + PATIENCE;
    while !cond() {
        assert!(std::time::Instant::now() < deadline, "never happened");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A timer on a manual clock that reports every fire on a channel and re-arms as told.
fn reporting_timer(
    clock: &Arc<ManualClock>,
    rearm: Option<Duration>,
) -> (Timer<String>, Receiver<(String, DateTime<Utc>)>) {
    let (tx, rx) = mpsc::channel();
    let clock_dyn: Arc<dyn Clock> = clock.clone();
    let timer = Timer::start(
        clock_dyn,
        Box::new(move |key: &String, at| {
            tx.send((key.clone(), at)).unwrap();
            rearm.map(|by| at + chrono::Duration::from_std(by).unwrap())
        }),
    )
    .unwrap();
    (timer, rx)
}

#[test]
fn fires_when_its_time_comes_and_not_before() {
    let clock = Arc::new(ManualClock::new(utc("2025-01-01T00:00:00Z")));
    let (timer, rx) = reporting_timer(&clock, None);
    timer.set("a".to_string(), Some(utc("2025-01-01T00:00:10Z")));
    assert_eq!(
        timer.armed_at(&"a".to_string()),
        Some(utc("2025-01-01T00:00:10Z"))
    );
    clock.advance(Duration::from_secs(9));
    timer.wake();
    assert_eq!(
        rx.recv_timeout(Duration::from_millis(200)),
        Err(RecvTimeoutError::Timeout),
        "a second early: nothing"
    );
    clock.advance(Duration::from_secs(1));
    timer.wake();
    assert_eq!(
        rx.recv_timeout(PATIENCE).unwrap(),
        ("a".to_string(), utc("2025-01-01T00:00:10Z"))
    );
    assert!(timer.is_empty(), "fired and not re-armed");
}

#[test]
fn the_callback_re_arms_and_an_earlier_time_set_later_fires_first() {
    let clock = Arc::new(ManualClock::new(utc("2025-01-01T00:00:00Z")));
    let (timer, rx) = reporting_timer(&clock, Some(Duration::from_secs(60)));
    timer.set("late".to_string(), Some(utc("2025-01-01T01:00:00Z")));
    timer.set("soon".to_string(), Some(utc("2025-01-01T00:00:05Z")));
    clock.advance(Duration::from_secs(5));
    timer.wake();
    assert_eq!(rx.recv_timeout(PATIENCE).unwrap().0, "soon");
    clock.advance(Duration::from_secs(60));
    timer.wake();
    assert_eq!(
        rx.recv_timeout(PATIENCE).unwrap(),
        ("soon".to_string(), utc("2025-01-01T00:01:05Z")),
        "re-armed by its callback"
    );
    // The re-arm lands just after the callback returns.
    eventually(|| timer.armed_at(&"soon".to_string()) == Some(utc("2025-01-01T00:02:05Z")));
    assert_eq!(timer.len(), 2);
    timer.remove(&"soon".to_string());
    clock.advance(Duration::from_secs(120));
    timer.wake();
    assert_eq!(
        rx.recv_timeout(Duration::from_millis(200)),
        Err(RecvTimeoutError::Timeout),
        "removed: silent"
    );
}

#[test]
fn a_panicking_callback_does_not_stop_the_other_schedules() {
    let clock = Arc::new(ManualClock::new(utc("2025-01-01T00:00:00Z")));
    let (tx, rx) = mpsc::channel();
    let clock_dyn: Arc<dyn Clock> = clock.clone();
    let timer = Timer::start(
        clock_dyn,
        Box::new(move |key: &&'static str, _at| {
            assert_ne!(*key, "boom", "this callback fails");
            tx.send(*key).unwrap();
            None
        }),
    )
    .unwrap();
    timer.set("boom", Some(utc("2025-01-01T00:00:01Z")));
    timer.set("fine", Some(utc("2025-01-01T00:00:02Z")));
    clock.advance(Duration::from_secs(3));
    timer.wake();
    assert_eq!(rx.recv_timeout(PATIENCE).unwrap(), "fine");
}

#[test]
fn a_real_clock_schedule_fires_headless_with_no_one_watching() {
    let fires = Arc::new(Mutex::new(0u32));
    let (tx, rx) = mpsc::channel();
    let when = When::every(Duration::from_millis(50)).unwrap();
    let counted = Arc::clone(&fires);
    let next_of = when.clone();
    let timer = Timer::start(
        Arc::new(SystemClock),
        Box::new(move |_key: &u32, at| {
            let mut n = counted.lock().unwrap();
            *n += 1;
            if *n == 5 {
                tx.send(()).unwrap();
            }
            next_of.next_after(at)
        }),
    )
    .unwrap();
    timer.set(1, when.next_after(SystemClock.now()));
    rx.recv_timeout(PATIENCE).expect("five fires");
    drop(timer);
    let after_stop = *fires.lock().unwrap();
    std::thread::sleep(Duration::from_millis(150));
    assert_eq!(
        *fires.lock().unwrap(),
        after_stop,
        "a dropped timer fires no more"
    );
}

/// The daemon's shape: shared schedule state and journal, the timer's callback deciding with
/// `due` and journaling before acting.
struct Shared {
    state: ScheduleState,
    journal: Vec<Transition>,
    runs: u32,
}

fn daemon_timer(clock: &Arc<ManualClock>, shared: &Arc<Mutex<Shared>>) -> Timer<String> {
    let clock_dyn: Arc<dyn Clock> = clock.clone();
    let inner = Arc::clone(shared);
    let clock_cb = Arc::clone(clock);
    let timer = Timer::start(
        clock_dyn,
        Box::new(move |_id: &String, _at| {
            let mut s = inner.lock().unwrap();
            let now = clock_cb.now();
            loop {
                match s.state.due(now) {
                    Due::Wait { until } => return until,
                    Due::Skip(t) => {
                        s.state.apply(&t);
                        s.journal.push(t);
                    }
                    Due::Run(plan) => {
                        s.runs += 1;
                        let t = plan.start(format!("run-{}", s.runs), now);
                        s.state.apply(&t);
                        s.journal.push(t);
                        // The run finishes at once in this test.
                        let end = Transition::Finished {
                            run: format!("run-{}", s.runs),
                            at: now,
                            status: "succeeded".into(),
                        };
                        s.state.apply(&end);
                        s.journal.push(end);
                    }
                }
            }
        }),
    )
    .unwrap();
    let wake = {
        let s = shared.lock().unwrap();
        s.state.wake_at(clock.now())
    };
    timer.set(shared.lock().unwrap().state.id.clone(), wake);
    timer
}

/// Waits until the timer has handled the schedule (it is re-armed for a time after `now`).
fn settle(timer: &Timer<String>, now: DateTime<Utc>) {
    eventually(|| {
        timer
            .armed_at(&"nightly".to_string())
            .is_some_and(|at| at > now)
    });
}

#[test]
fn after_downtime_the_restarted_timer_runs_a_missed_schedule_once() {
    let created = utc("2025-01-01T12:00:00Z");
    let clock = Arc::new(ManualClock::new(created));
    let when = When::parse("every day at 03:00", Tz::UTC).unwrap();
    let initial = ScheduleState::new(
        "nightly",
        when,
        MissedRuns::RunOnce,
        Duration::ZERO,
        created,
    );
    let shared = Arc::new(Mutex::new(Shared {
        state: initial.clone(),
        journal: Vec::new(),
        runs: 0,
    }));
    let timer = daemon_timer(&clock, &shared);
    assert_eq!(
        timer.armed_at(&"nightly".to_string()),
        Some(utc("2025-01-02T03:00:00Z"))
    );
    drop(timer); // the daemon stops
    clock.set(utc("2025-01-05T09:00:00Z")); // and is down through three fire times

    // Restart: rebuild from the journal alone.
    let journal = shared.lock().unwrap().journal.clone();
    shared.lock().unwrap().state = ScheduleState::replay(initial, &journal);
    let timer = daemon_timer(&clock, &shared);
    settle(&timer, clock.now());
    assert_eq!(shared.lock().unwrap().runs, 1, "once for all three");
    assert_eq!(
        timer.armed_at(&"nightly".to_string()),
        Some(utc("2025-01-06T03:00:00Z"))
    );
    // Another wake at the same moment (a second trigger) runs nothing more.
    timer.set("nightly".to_string(), Some(clock.now()));
    settle(&timer, clock.now());
    assert_eq!(shared.lock().unwrap().runs, 1);
}
