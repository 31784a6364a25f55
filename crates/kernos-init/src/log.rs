//! Console lines and the boot record. PID 1 writes to the console (the serial port under
//! QEMU) and keeps each phase's timing; it never opens the journal itself: the daemon journals
//! the record it finds in `<run dir>/boot.json` (one writer for the journal).

use std::io::Write;

use serde::Serialize;

/// Seconds since the kernel started (CLOCK_BOOTTIME: counts from the kernel's own start, so
/// the first line's value is the kernel's share of the boot).
pub fn boottime_ms() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
    (ts.tv_sec as u64) * 1000 + (ts.tv_nsec as u64) / 1_000_000
}

/// One line on the console, stamped with the boot time.
pub fn say(msg: &str) {
    let t = boottime_ms();
    let line = format!("[kernos-init {}.{:03}] {msg}\n", t / 1000, t % 1000);
    let _ = std::io::stderr().write_all(line.as_bytes());
}

/// A loud warning: several lines, so nobody misses it on a busy console.
pub fn warn_loud(msg: &str) {
    say("!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!");
    say(&format!("!!! WARNING: {msg}"));
    say("!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!");
}

/// One boot phase as recorded.
#[derive(Debug, Clone, Serialize)]
pub struct Phase {
    /// Its name (`mount`, `modules`, `network`…).
    pub name: &'static str,
    /// When it started, ms since the kernel started.
    pub start_ms: u64,
    /// How long it took.
    pub ms: u64,
    /// `ok`, `warn` or `failed`.
    pub status: &'static str,
    /// What it did or why it failed.
    pub detail: String,
}

/// The boot record: every phase in order.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Boot {
    /// Random id of this boot (the daemon journals each boot once).
    pub boot_id: String,
    /// When PID 1 started, ms since the kernel started: the kernel's share of the boot.
    pub kernel_ms: u64,
    /// The phases.
    pub phases: Vec<Phase>,
}

impl Boot {
    /// Runs one phase: times it, logs it, records it. A failing phase is recorded and logged;
    /// whether the boot goes on is the caller's choice (the result is returned).
    pub fn phase<T>(
        &mut self,
        name: &'static str,
        f: impl FnOnce() -> anyhow::Result<(T, String)>,
    ) -> anyhow::Result<T> {
        let start = boottime_ms();
        let r = f();
        let ms = boottime_ms().saturating_sub(start);
        match r {
            Ok((v, detail)) => {
                let status = if detail.starts_with("WARNING") {
                    "warn"
                } else {
                    "ok"
                };
                say(&format!("phase {name}: {status} in {ms} ms: {detail}"));
                self.phases.push(Phase {
                    name,
                    start_ms: start,
                    ms,
                    status,
                    detail,
                });
                Ok(v)
            }
            Err(e) => {
                say(&format!("phase {name}: FAILED in {ms} ms: {e:#}"));
                self.phases.push(Phase {
                    name,
                    start_ms: start,
                    ms,
                    status: "failed",
                    detail: format!("{e:#}"),
                });
                Err(e)
            }
        }
    }
}
