//! Fire accuracy and idle cost of the schedule timer.
//!
//! Fire accuracy: 50 schedules a second apart from one another's phase, 20 ms between
//! consecutive fires, 1,000 fires per run; lateness is the system clock at the callback minus
//! the armed time. Three runs; prints p50/p99/max of each and the median run (by p99).
//! Each fire also decides with `ScheduleState::due` and applies the start and finish, as the
//! daemon will, so the figure includes the decision.
//!
//! Idle cost: 100 schedules armed (daily, hourly and weekly ones, none due for the 10 s
//! measured), CPU from `/proc/self/stat` (utime + stime) over 10 s and RSS growth from
//! `/proc/self/status`. Then the same with 100 schedules firing every second, as an upper bound.
//!
//!     cargo run --release -p kernos-schedule --example fire_bench

#![allow(clippy::unwrap_used, clippy::expect_used)] // a bench: a panic is a failed run

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kernos_schedule::{
    Clock, DateTime, Due, MissedRuns, ScheduleState, SystemClock, Timer, Transition, Tz, Utc, When,
};

const SCHEDULES: u32 = 50;
const SPACING_MS: i64 = 20;
const FIRES: usize = 1_000;

fn main() {
    let mut runs: Vec<Vec<u64>> = (0..3).map(|_| accuracy_run()).collect();
    for (i, run) in runs.iter_mut().enumerate() {
        run.sort_unstable();
        println!("run {}: {}", i + 1, summary(run));
    }
    runs.sort_by_key(|r| pct(r, 99.0));
    println!("median run (by p99): {}", summary(&runs[1]));

    let (cpu, rss) = idle(&["every day at 03:00", "hourly", "weekly on monday at 9:30"]);
    println!("idle, 100 schedules not due: {cpu:.3} % of one core over 10 s, RSS +{rss} kB");
    let (cpu, rss) = idle(&["*/1 * * * * *"]);
    println!("busy, 100 schedules firing every second: {cpu:.3} % of one core, RSS +{rss} kB");
}

fn summary(sorted_us: &[u64]) -> String {
    format!(
        "{} fires, lateness p50 {} µs, p99 {} µs, max {} µs",
        sorted_us.len(),
        pct(sorted_us, 50.0),
        pct(sorted_us, 99.0),
        sorted_us.last().copied().unwrap_or(0)
    )
}

fn pct(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// One run of [`FIRES`] fires; returns each fire's lateness in µs.
fn accuracy_run() -> Vec<u64> {
    let clock = SystemClock;
    let states: Vec<ScheduleState> = (0..SCHEDULES)
        .map(|i| {
            let when = When::every(Duration::from_secs(1)).unwrap();
            ScheduleState::new(
                format!("s{i}"),
                when,
                MissedRuns::RunOnce,
                Duration::ZERO,
                clock.now(),
            )
        })
        .collect();
    let states = Arc::new(Mutex::new(states));
    let lateness = Arc::new(Mutex::new(Vec::with_capacity(FIRES)));
    let (done_tx, done_rx) = mpsc::channel();
    let period = chrono::Duration::milliseconds(SPACING_MS * i64::from(SCHEDULES));
    let (st, late) = (Arc::clone(&states), Arc::clone(&lateness));
    let timer = Timer::start(
        Arc::new(SystemClock),
        Box::new(move |key: &u32, at: DateTime<Utc>| {
            let now = SystemClock.now();
            let mut late = late.lock().unwrap();
            late.push((now - at).num_microseconds().unwrap_or(i64::MAX).max(0) as u64);
            decide(&mut st.lock().unwrap()[*key as usize], now);
            if late.len() == FIRES {
                done_tx.send(()).unwrap();
            }
            (late.len() < FIRES).then_some(at + period)
        }),
    )
    .unwrap();
    let base = clock.now() + chrono::Duration::milliseconds(200);
    for i in 0..SCHEDULES {
        timer.set(
            i,
            Some(base + chrono::Duration::milliseconds(SPACING_MS * i64::from(i))),
        );
    }
    done_rx.recv_timeout(Duration::from_secs(120)).unwrap();
    drop(timer);
    Arc::try_unwrap(lateness).unwrap().into_inner().unwrap()
}

/// What the daemon does on a fire: decide, record the start, and (here at once) the finish.
fn decide(state: &mut ScheduleState, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    loop {
        match state.due(now) {
            Due::Wait { until } => return until,
            Due::Skip(t) => {
                state.apply(&t);
            }
            Due::Run(plan) => {
                let run = format!("{}-{}", state.id, now.timestamp_millis());
                state.apply(&plan.start(run.clone(), now));
                state.apply(&Transition::Finished {
                    run,
                    at: now,
                    status: "succeeded".into(),
                });
            }
        }
    }
}

/// CPU % of one core over 10 s and RSS growth in kB with 100 schedules cycling `whens`.
fn idle(whens: &[&str]) -> (f64, i64) {
    let rss_before = rss_kb();
    let clock = SystemClock;
    let states: Vec<ScheduleState> = (0..100)
        .map(|i| {
            let when = When::parse(whens[i % whens.len()], Tz::Europe__Paris).unwrap();
            ScheduleState::new(
                format!("idle-{i}"),
                when,
                MissedRuns::RunOnce,
                Duration::ZERO,
                clock.now(),
            )
        })
        .collect();
    let wakes: Vec<_> = states.iter().map(|s| s.wake_at(clock.now())).collect();
    let states = Arc::new(Mutex::new(states));
    let st = Arc::clone(&states);
    let timer = Timer::start(
        Arc::new(SystemClock),
        Box::new(move |key: &usize, _at| decide(&mut st.lock().unwrap()[*key], SystemClock.now())),
    )
    .unwrap();
    for (i, wake) in wakes.into_iter().enumerate() {
        timer.set(i, wake);
    }
    std::thread::sleep(Duration::from_millis(200));
    let (cpu0, t0) = (cpu_ticks(), Instant::now());
    std::thread::sleep(Duration::from_secs(10));
    let (cpu1, elapsed) = (cpu_ticks(), t0.elapsed());
    let rss_after = rss_kb();
    drop(timer);
    let hz = clock_ticks_per_second();
    let cpu_secs = (cpu1 - cpu0) as f64 / hz;
    (
        100.0 * cpu_secs / elapsed.as_secs_f64(),
        rss_after - rss_before,
    )
}

/// utime + stime of this process, in clock ticks.
fn cpu_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after "pid (comm) ".
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if hz > 0 { hz as f64 } else { 100.0 }
}

/// Resident set size in kB.
fn rss_kb() -> i64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}
