//! How long the daemon took to start, stage by stage, logged once when it is ready: start-up
//! is part of a machine's boot to API-ready (Kernos OS), and "slow to start" is otherwise
//! hard to tell apart from "stuck".

use std::sync::Mutex;
use std::time::Instant;

static MARKS: Mutex<Vec<(&'static str, Instant)>> = Mutex::new(Vec::new());

/// Records that `stage` just ended (the first mark is the reference point).
pub fn mark(stage: &'static str) {
    if let Ok(mut m) = MARKS.lock() {
        m.push((stage, Instant::now()));
    }
}

/// `ready N ms after exec: stage ms, …` from the marks so far; the time before the first mark
/// (exec, loading the binary, the command line and config) comes from the process's start
/// time in /proc, to the kernel's 10 ms clock tick.
pub(crate) fn summary() -> String {
    let Ok(m) = MARKS.lock() else {
        return String::new();
    };
    let mut parts = Vec::new();
    if let Some(before) = since_exec_ms() {
        let first = m.first().map_or(0, |(_, t)| t.elapsed().as_millis() as u64);
        parts.push(format!("exec to main {} ms", before.saturating_sub(first)));
    }
    for w in m.windows(2) {
        parts.push(format!("{} {} ms", w[1].0, (w[1].1 - w[0].1).as_millis()));
    }
    let total = m.first().map_or(0, |(_, t)| t.elapsed().as_millis());
    format!(
        "ready {total} ms after the daemon's start ({})",
        parts.join(", ")
    )
}

/// Milliseconds since this process was started, from /proc/self/stat and CLOCK_BOOTTIME.
fn since_exec_ms() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let start_ticks: u64 = stat
        .rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(19)?
        .parse()
        .ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid, writable timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
    let now_ms = ts.tv_sec as u64 * 1000 + ts.tv_nsec as u64 / 1_000_000;
    Some(now_ms.saturating_sub(start_ticks * 1000 / hz))
}
