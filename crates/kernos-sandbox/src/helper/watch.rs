//! Supervising a running step: waiting for the init, reading what it reports, and stopping
//! the tree on the wall clock, the total CPU limit, a cancel from the caller or a signal.

use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use super::fail::{Failure, helper_err};
use super::launch::Launched;
use crate::cgroup::StepCgroup;
use crate::protocol::{CONTROL_FD, FailKind};
use crate::sys;

/// How often total CPU of the tree is checked against the limit when a cgroup accounts it.
const CPU_POLL: Duration = Duration::from_millis(100);
/// How long the namespace init gets to kill and reap the step before it is SIGKILLed.
const STOP_GRACE: Duration = Duration::from_millis(1000);

/// Why the helper killed the tree, if it did.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Kill {
    Timeout,
    Cancel,
    CpuTotal,
}

/// What supervision watches and enforces.
pub(super) struct Watch<'a> {
    pub init: &'a Launched,
    /// Termination signals sent to the helper (see `control::signal_fd`).
    pub signals: &'a OwnedFd,
    /// The wall-clock limit.
    pub deadline: Option<Instant>,
    /// The total CPU limit of the tree, µs, checked through `cgroup`.
    pub cpu_limit_us: Option<u64>,
    pub cgroup: Option<&'a StepCgroup>,
    /// The init leaves the step cgroup by itself: its report that the tree is dead ends the
    /// step, not its own exit (its namespaces' teardown is not our business).
    pub self_moving: bool,
}

/// How the step ended, as supervision saw it.
pub(super) struct Ended {
    pub killed: Option<Kill>,
    pub status: ChildStatus,
    /// The init has exited (so it is reaped now); otherwise only its report is in.
    pub exited: bool,
}

/// Runs the step to its end: until the init has exited, or (when it leaves the cgroup by
/// itself) has reported that everything in the namespace is dead.
pub(super) fn supervise(watch: Watch<'_>) -> Result<Ended, Failure> {
    let mut s = Supervisor {
        w: watch,
        killed: None,
        status: ChildStatus::default(),
        pending: Vec::new(),
        status_open: true,
        caller_open: true,
        exited: false,
        stop_asked: None,
    };
    while !(s.exited || (s.w.self_moving && s.status.done.is_some())) {
        let Some(timeout) = s.poll_timeout(Instant::now()) else {
            continue;
        };
        let mut fds = s.poll_fds();
        sys::poll(&mut fds, timeout).map_err(helper_err("poll"))?;
        s.handle(&fds);
    }
    Ok(Ended {
        killed: s.killed,
        status: s.status,
        exited: s.exited,
    })
}

/// The state of the supervision loop.
struct Supervisor<'a> {
    w: Watch<'a>,
    killed: Option<Kill>,
    status: ChildStatus,
    /// An incomplete status line.
    pending: Vec<u8>,
    status_open: bool,
    caller_open: bool,
    exited: bool,
    /// When the init was asked to stop the step.
    stop_asked: Option<Instant>,
}

impl Supervisor<'_> {
    /// SIGKILLs the init, which takes its namespace (and so the step) with it.
    fn kill_tree(&self) {
        let _ = sys::pidfd_kill(&self.w.init.pidfd, libc::SIGKILL);
    }

    /// Stopping a running step: ask the init to kill and reap everything (so CPU time stays
    /// accounted), and SIGKILL it if it has not reported within STOP_GRACE.
    fn stop_tree(&mut self) {
        if self.stop_asked.is_none() {
            let _ = sys::pidfd_kill(&self.w.init.pidfd, libc::SIGUSR1);
            self.stop_asked = Some(Instant::now());
        }
    }

    /// Whether nothing has ended the step yet (it may still be stopped for a limit).
    fn running(&self) -> bool {
        self.killed.is_none() && self.status.done.is_none()
    }

    /// The poll timeout (ms, -1 for none) until the next thing to enforce. `None` when the
    /// wall clock just ran out and the loop must look again.
    fn poll_timeout(&mut self, now: Instant) -> Option<i32> {
        let mut timeout: i32 = -1;
        if let Some(t) = self.stop_asked {
            if now.duration_since(t) >= STOP_GRACE {
                self.kill_tree();
            } else {
                timeout = ms_until(t + STOP_GRACE, now);
            }
        }
        if self.running() {
            if let Some(d) = self.w.deadline {
                if now >= d {
                    self.killed = Some(Kill::Timeout);
                    self.stop_tree();
                    return None;
                }
                timeout = earliest(timeout, ms_until(d, now));
            }
            if self.w.cpu_limit_us.is_some() {
                timeout = earliest(timeout, CPU_POLL.as_millis() as i32);
            }
        }
        Some(timeout)
    }

    /// The init's exit, the status pipe, the signals and the caller's socket.
    fn poll_fds(&self) -> [libc::pollfd; 4] {
        let poll = |fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        [
            poll(self.w.init.pidfd.as_raw_fd()),
            poll(if self.status_open {
                self.w.init.status.as_raw_fd()
            } else {
                -1
            }),
            poll(self.w.signals.as_raw_fd()),
            poll(if self.caller_open { CONTROL_FD } else { -1 }),
        ]
    }

    fn handle(&mut self, fds: &[libc::pollfd; 4]) {
        if fds[3].revents != 0 {
            self.on_caller();
        }
        if fds[1].revents != 0 {
            self.read_status();
        }
        if fds[2].revents != 0 {
            self.on_signal();
        }
        if fds[0].revents != 0 {
            self.exited = true;
            // The init has fully exited, so every writer of the status pipe is gone (the
            // command's copy was close-on-exec and the namespace is empty): drain to EOF.
            while self.status_open {
                self.read_status();
            }
            self.status.feed(&mut self.pending, b"\n");
        }
        if self.running() && !self.exited {
            self.check_cpu();
        }
    }

    /// A byte from the caller asks to cancel; end of file means it died. Either way the
    /// step must stop.
    fn on_caller(&mut self) {
        let mut b = [0u8; 16];
        if !matches!(sys::read(CONTROL_FD, &mut b), Ok(n) if n > 0) {
            self.caller_open = false;
        }
        if self.running() {
            self.killed = Some(Kill::Cancel);
            self.stop_tree();
        }
    }

    /// TERM/INT/HUP to the helper cancel the step.
    fn on_signal(&mut self) {
        // SAFETY: signalfd_siginfo is plain data; we only drain the descriptor.
        let mut si: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
        // SAFETY: the slice covers exactly `si`.
        let _ = sys::read(self.w.signals.as_raw_fd(), unsafe {
            std::slice::from_raw_parts_mut(
                (&mut si as *mut libc::signalfd_siginfo).cast::<u8>(),
                std::mem::size_of::<libc::signalfd_siginfo>(),
            )
        });
        if self.running() {
            self.killed = Some(Kill::Cancel);
        }
        self.stop_tree();
    }

    /// One read from the status pipe; end of file (or an error) closes it.
    fn read_status(&mut self) {
        let mut buf = [0u8; 4096];
        match sys::read(self.w.init.status.as_raw_fd(), &mut buf) {
            Ok(0) | Err(_) => self.status_open = false,
            Ok(n) => self.status.feed(&mut self.pending, &buf[..n]),
        }
    }

    /// Stops the step once the tree has used up its total CPU.
    fn check_cpu(&mut self) {
        if let (Some(limit), Some(cg)) = (self.w.cpu_limit_us, self.w.cgroup) {
            if cg.cpu_usage_us().is_some_and(|u| u >= limit) {
                self.killed = Some(Kill::CpuTotal);
                self.stop_tree();
            }
        }
    }
}

/// The shorter of two poll timeouts, where -1 means none.
fn earliest(timeout: i32, other: i32) -> i32 {
    if timeout < 0 {
        other
    } else {
        timeout.min(other)
    }
}

fn ms_until(d: Instant, now: Instant) -> i32 {
    let ms = d.saturating_duration_since(now).as_millis() + 1;
    ms.min(i32::MAX as u128) as i32
}

/// What the init and the command said on the status pipe.
#[derive(Default)]
pub(super) struct ChildStatus {
    /// `(wait status, command cpu ms, tree cpu ms)` once everything in the namespace is dead.
    pub done: Option<(i32, u64, u64)>,
    pub failure: Option<Failure>,
    pub weakened: Vec<String>,
    pub trace: Vec<(String, u64)>,
}

impl ChildStatus {
    /// Consumes complete lines from `pending` + `data`.
    fn feed(&mut self, pending: &mut Vec<u8>, data: &[u8]) {
        pending.extend_from_slice(data);
        while let Some(i) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=i).collect();
            let line = String::from_utf8_lossy(&line[..line.len() - 1]).into_owned();
            let mut it = line.splitn(3, ' ');
            match it.next() {
                Some("E") if self.failure.is_none() => {
                    let kind = FailKind::from_word(it.next().unwrap_or(""));
                    self.failure = Some((kind, it.next().unwrap_or("").to_owned()));
                }
                Some("W") => self.weakened.push(line[2..].to_owned()),
                Some("T") => {
                    if let Some((name, t)) = line[2..].rsplit_once(' ') {
                        if let Ok(t) = t.parse() {
                            self.trace.push((name.to_owned(), t));
                        }
                    }
                }
                Some("X") => {
                    let nums: Vec<i64> = line[2..]
                        .split(' ')
                        .filter_map(|s| s.parse().ok())
                        .collect();
                    if let [st, cmd, tree] = nums[..] {
                        self.done = Some((st as i32, cmd as u64, tree as u64));
                    }
                }
                _ => {}
            }
        }
    }
}
