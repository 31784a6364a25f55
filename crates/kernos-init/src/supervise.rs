//! PID 1's loop: start and supervise the daemon and the declared services (restart with
//! backoff, readiness and watchdog over the notify socket), reap every child and orphan,
//! forward SIGTERM, and carry out a reboot or power-off the daemon asked for through the API.
//!
//! One thread, no timers: signals arrive on a signalfd and readiness on the notify socket,
//! and poll(2) sleeps until one of them or the next due restart or watchdog deadline.

use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::config::{InitConfig, Service};
use crate::log::{boottime_ms, say};
use crate::notify::NotifySocket;

/// PID 1's run directory: `boot.json`, `status.json`, and `power`, which the daemon writes
/// (`reboot` or `poweroff`) before it stops to ask for one.
pub const RUN_DIR: &str = "/run/kernos-init";

/// What the machine does when PID 1 is done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Power {
    /// reboot(2) with RB_AUTOBOOT.
    Reboot,
    /// reboot(2) with RB_POWER_OFF.
    PowerOff,
}

struct Proc {
    svc: Service,
    is_daemon: bool,
    pid: Option<i32>,
    started: Option<Instant>,
    starts: u64,
    next_start: Option<Instant>,
    backoff: Duration,
    last_exit: String,
    /// Boot times (ms) of the latest starts, oldest first: the backoff as it happened.
    recent_starts_ms: Vec<u64>,
    /// When the current run said `READY=1` (boot time, ms).
    ready_ms: Option<u64>,
    /// Its last sign of life on the notify socket (READY=1 or WATCHDOG=1).
    last_ping: Option<Instant>,
    /// Why init killed the current run (not ready in time, watchdog), until it is reaped.
    killed_for: Option<String>,
}

/// How many start times a service's status keeps.
const RECENT_STARTS: usize = 8;

/// What `status.json` holds (read by the daemon for GET /v1/system/status).
#[derive(Debug, Serialize)]
struct Status<'a> {
    boot_id: &'a str,
    /// Processes reaped that PID 1 did not start: orphans the kernel reparented to it.
    reaped_orphans: u64,
    /// Its own children reaped (the daemon, services, their restarts).
    reaped_children: u64,
    services: Vec<ServiceStatus>,
    written_boottime_ms: u64,
}

#[derive(Debug, Serialize)]
struct ServiceStatus {
    name: String,
    pid: Option<i32>,
    starts: u64,
    last_exit: String,
    /// Boot times (ms) of its latest starts.
    recent_starts_ms: Vec<u64>,
    /// When its current run became ready (boot time, ms), for `notify` services.
    ready_ms: Option<u64>,
    /// Its next restart is this many ms away (while it waits out its backoff).
    restart_in_ms: Option<u64>,
}

fn sigset(sigs: &[i32]) -> libc::sigset_t {
    // SAFETY: sigemptyset initialises the set; sigaddset with valid signal numbers.
    unsafe {
        let mut s: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut s);
        for &g in sigs {
            libc::sigaddset(&mut s, g);
        }
        s
    }
}

const HANDLED: &[i32] = &[
    libc::SIGCHLD,
    libc::SIGTERM,
    libc::SIGINT,
    libc::SIGPWR,
    libc::SIGHUP,
];

/// The supervisor.
pub struct Supervisor {
    procs: Vec<Proc>,
    boot_id: String,
    data_dir: PathBuf,
    reaped_orphans: u64,
    reaped_children: u64,
    stopping: Option<(Power, Instant)>,
    /// The readiness socket (`None` if it could not be bound: then `notify` services are
    /// taken as ready when started, and have no watchdog).
    notify: Option<NotifySocket>,
    /// Boot work that may wait until the daemon is ready (see
    /// [`Supervisor::after_daemon_ready`]).
    deferred: Option<Box<dyn FnOnce()>>,
}

impl Supervisor {
    /// The daemon first, then the services.
    pub fn new(cfg: &InitConfig, boot_id: String) -> Supervisor {
        let mut procs = vec![proc(cfg.daemon.clone(), true)];
        procs.extend(cfg.services.iter().cloned().map(|s| proc(s, false)));
        let notify = match NotifySocket::bind(&Path::new(RUN_DIR).join("notify")) {
            Ok(n) => Some(n),
            Err(e) => {
                say(&format!(
                    "no readiness socket ({e:#}): services are taken as ready when started"
                ));
                None
            }
        };
        Supervisor {
            procs,
            boot_id,
            data_dir: cfg.data_dir.clone(),
            reaped_orphans: 0,
            reaped_children: 0,
            stopping: None,
            notify,
            deferred: None,
        }
    }

    /// Runs `f` once the daemon is ready: boot work the daemon does not need then does not
    /// compete with its start (under TCG every bit of work is CPU). It runs as soon as waiting
    /// makes no sense any more, too: the daemon's first run ended, it has no readiness
    /// protocol, or the machine is stopping.
    pub fn after_daemon_ready(mut self, f: impl FnOnce() + 'static) -> Supervisor {
        self.deferred = Some(Box::new(f));
        self
    }

    fn deferred_due(&self) -> bool {
        let Some(d) = self.procs.iter().find(|p| p.is_daemon) else {
            return true;
        };
        d.ready_ms.is_some()
            || !d.svc.notify
            || self.notify.is_none()
            || d.starts > 1
            || (d.starts == 1 && d.pid.is_none())
            || self.stopping.is_some()
    }

    /// Runs forever; returns only to reboot or power off.
    pub fn run(&mut self) -> Power {
        let set = sigset(HANDLED);
        // SAFETY: blocking signals in our own (single-threaded) process; they are read from
        // the signalfd below. Children get an empty mask back (`spawn`).
        unsafe { libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
        // SAFETY: a new signalfd for the blocked set; owned below.
        let sfd = unsafe { libc::signalfd(-1, &set, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC) };
        if sfd < 0 {
            // Without it, pending signals are still taken after each (at most 1 s) poll.
            say(&format!(
                "signalfd: {}; checking signals once a second",
                std::io::Error::last_os_error()
            ));
        }
        let now = Instant::now();
        for p in &mut self.procs {
            p.next_start = Some(now);
        }
        loop {
            self.start_due();
            self.check_liveness();
            self.write_status();
            let mut fds = vec![libc::pollfd {
                fd: sfd,
                events: libc::POLLIN,
                revents: 0,
            }];
            if let Some(n) = &self.notify {
                fds.push(libc::pollfd {
                    fd: n.raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                });
            }
            let wait = self.next_wake().as_millis().min(1000) as libc::c_int;
            // SAFETY: a valid array of pollfds of the stated length.
            unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, wait) };
            if sfd >= 0 {
                while let Some(sig) = read_signal(sfd) {
                    self.on_signal(sig);
                }
            } else {
                // SAFETY: a zero timeout: only what is already pending.
                let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
                let ts = libc::timespec {
                    tv_sec: 0,
                    tv_nsec: 0,
                };
                // SAFETY: valid set, writable info, valid timeout.
                let sig = unsafe { libc::sigtimedwait(&set, &mut info, &ts) };
                if sig > 0 {
                    self.on_signal(sig);
                }
            }
            self.read_notify();
            // Reap on every wake, not only on SIGCHLD: signals of one kind coalesce.
            self.reap();
            if self.deferred.is_some() && self.deferred_due() {
                if let Some(f) = self.deferred.take() {
                    f();
                }
            }
            if let Some((power, deadline)) = self.stopping {
                let alive = self.procs.iter().any(|p| p.pid.is_some());
                if !alive || Instant::now() >= deadline {
                    return power;
                }
            }
        }
    }

    /// SIGTERM and SIGPWR power off, SIGINT (ctrl-alt-del: init disabled the kernel's own
    /// reboot for it) reboots; either way SIGTERM goes to every service first.
    fn on_signal(&mut self, sig: i32) {
        let power = match sig {
            libc::SIGTERM | libc::SIGPWR => Power::PowerOff,
            libc::SIGINT => Power::Reboot,
            libc::SIGHUP => {
                say("SIGHUP ignored (PID 1)");
                return;
            }
            _ => return,
        };
        say(&format!(
            "signal {} ({}): forwarding SIGTERM to every service, then {power:?}",
            sig,
            signal_name(sig)
        ));
        self.stop(power);
    }

    /// Readiness and watchdog messages; each counts only for the service that sent it.
    fn read_notify(&mut self) {
        let Some(n) = &self.notify else {
            return;
        };
        while let Some(m) = n.recv() {
            let Some(p) = self.procs.iter_mut().find(|p| p.pid == Some(m.pid)) else {
                continue;
            };
            if m.has("READY=1") && p.ready_ms.is_none() {
                let at = boottime_ms();
                p.ready_ms = Some(at);
                let took = p.started.map(|s| s.elapsed().as_millis()).unwrap_or(0);
                say(&format!(
                    "{} is ready ({took} ms after its start)",
                    p.svc.name
                ));
            }
            if m.has("READY=1") || m.has("WATCHDOG=1") {
                p.last_ping = Some(Instant::now());
            }
        }
    }

    /// A `notify` service not ready in time, or silent past its watchdog, is killed; the
    /// reaper then restarts it with backoff.
    fn check_liveness(&mut self) {
        if self.notify.is_none() || self.stopping.is_some() {
            return;
        }
        for p in &mut self.procs {
            let (Some(pid), true, None) = (p.pid, p.svc.notify, &p.killed_for) else {
                continue;
            };
            let why = if p.ready_ms.is_none() {
                let limit = Duration::from_secs(p.svc.ready_timeout_s);
                p.started
                    .is_some_and(|s| s.elapsed() > limit)
                    .then(|| format!("not ready within {} s", limit.as_secs()))
            } else if p.svc.watchdog_s > 0 {
                let limit = Duration::from_secs(p.svc.watchdog_s);
                p.last_ping
                    .is_some_and(|t| t.elapsed() > limit)
                    .then(|| format!("no watchdog ping for {} s", limit.as_secs()))
            } else {
                None
            };
            if let Some(why) = why {
                say(&format!(
                    "{} (pid {pid}) is {why}: killing it to restart it",
                    p.svc.name
                ));
                // SAFETY: kill(2) on a child we started and have not reaped.
                unsafe { libc::kill(pid, libc::SIGKILL) };
                p.killed_for = Some(why);
            }
        }
    }

    /// How long poll may sleep: until the next due start or liveness deadline.
    fn next_wake(&self) -> Duration {
        let now = Instant::now();
        let mut next = Duration::from_secs(1);
        for p in &self.procs {
            if let Some(t) = p.next_start {
                next = next.min(t.saturating_duration_since(now));
            }
            if p.pid.is_some() && p.svc.notify && p.svc.watchdog_s > 0 {
                if let Some(t) = p.last_ping {
                    let due = t + Duration::from_secs(p.svc.watchdog_s) + Duration::from_millis(1);
                    next = next.min(due.saturating_duration_since(now));
                }
            }
        }
        next
    }

    fn stop(&mut self, power: Power) {
        if self.stopping.is_some() {
            return;
        }
        self.stopping = Some((power, Instant::now() + Duration::from_secs(20)));
        for p in &mut self.procs {
            p.next_start = None;
            if let Some(pid) = p.pid {
                // SAFETY: kill(2) on a child we started and have not reaped.
                unsafe { libc::kill(pid, libc::SIGTERM) };
            }
        }
    }

    fn start_due(&mut self) {
        let now = Instant::now();
        let run_dir = PathBuf::from(RUN_DIR);
        for p in &mut self.procs {
            if p.pid.is_some() || p.next_start.is_none_or(|t| t > now) {
                continue;
            }
            p.next_start = None;
            let notify = self.notify.as_ref().map(NotifySocket::path);
            match spawn(&p.svc, p.is_daemon, &run_dir, &self.data_dir, notify) {
                Ok(pid) => {
                    p.pid = Some(pid);
                    p.started = Some(now);
                    p.starts += 1;
                    p.ready_ms = None;
                    p.last_ping = None;
                    p.recent_starts_ms.push(boottime_ms());
                    if p.recent_starts_ms.len() > RECENT_STARTS {
                        p.recent_starts_ms.remove(0);
                    }
                    say(&format!(
                        "started {} (pid {pid}, start {})",
                        p.svc.name, p.starts
                    ));
                }
                Err(e) => {
                    say(&format!("cannot start {}: {e}", p.svc.name));
                    p.last_exit = format!("cannot start: {e}");
                    if p.svc.restart {
                        p.next_start = Some(now + p.backoff);
                        p.backoff = (p.backoff * 2).min(Duration::from_secs(30));
                    }
                }
            }
        }
    }

    /// waitpid(-1) until nothing is left to reap.
    fn reap(&mut self) {
        loop {
            let mut status = 0;
            // SAFETY: waitpid with a valid status pointer.
            let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
            if pid <= 0 {
                return;
            }
            let Some(i) = self.procs.iter().position(|p| p.pid == Some(pid)) else {
                self.reaped_orphans += 1;
                continue;
            };
            self.reaped_children += 1;
            let stopping = self.stopping.is_some();
            let p = &mut self.procs[i];
            p.pid = None;
            p.last_exit = match p.killed_for.take() {
                Some(why) => format!("killed by init: {why}"),
                None => describe(status),
            };
            let ran = p.started.map(|s| s.elapsed()).unwrap_or_default();
            p.ready_ms = None;
            say(&format!(
                "{} (pid {pid}) ended: {} after {:.1} s",
                p.svc.name,
                p.last_exit,
                ran.as_secs_f64()
            ));
            if p.is_daemon && !stopping {
                if let Some(power) = requested_power() {
                    say(&format!("the daemon asked for {power:?} through the API"));
                    self.stop(power);
                    continue;
                }
            }
            if stopping || !p.svc.restart {
                continue;
            }
            // A long run earns a fresh backoff; a crash loop slows down to one try per 30 s.
            if ran > Duration::from_secs(30) {
                p.backoff = Duration::from_secs(1);
            }
            say(&format!(
                "restarting {} in {} s",
                p.svc.name,
                p.backoff.as_secs()
            ));
            p.next_start = Some(Instant::now() + p.backoff);
            p.backoff = (p.backoff * 2).min(Duration::from_secs(30));
        }
    }

    fn write_status(&self) {
        let now = Instant::now();
        let s = Status {
            boot_id: &self.boot_id,
            reaped_orphans: self.reaped_orphans,
            reaped_children: self.reaped_children,
            services: self
                .procs
                .iter()
                .map(|p| ServiceStatus {
                    name: p.svc.name.clone(),
                    pid: p.pid,
                    starts: p.starts,
                    last_exit: p.last_exit.clone(),
                    recent_starts_ms: p.recent_starts_ms.clone(),
                    ready_ms: p.ready_ms,
                    restart_in_ms: p
                        .next_start
                        .map(|t| t.saturating_duration_since(now).as_millis() as u64),
                })
                .collect(),
            written_boottime_ms: boottime_ms(),
        };
        if let Ok(text) = serde_json::to_vec_pretty(&s) {
            let _ = write_atomic(&Path::new(RUN_DIR).join("status.json"), &text);
        }
    }
}

fn proc(svc: Service, is_daemon: bool) -> Proc {
    Proc {
        svc,
        is_daemon,
        pid: None,
        started: None,
        starts: 0,
        next_start: None,
        backoff: Duration::from_secs(1),
        last_exit: String::new(),
        recent_starts_ms: Vec::new(),
        ready_ms: None,
        last_ping: None,
        killed_for: None,
    }
}

/// The next signal waiting on the signalfd.
fn read_signal(sfd: i32) -> Option<i32> {
    // SAFETY: an all-zero signalfd_siginfo is valid storage for read(2) to fill.
    let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
    let size = std::mem::size_of::<libc::signalfd_siginfo>();
    // SAFETY: reading at most `size` bytes into `info`.
    let n = unsafe { libc::read(sfd, (&raw mut info).cast(), size) };
    (n == size as isize).then_some(info.ssi_signo as i32)
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGTERM => "SIGTERM",
        libc::SIGINT => "SIGINT, ctrl-alt-del",
        libc::SIGPWR => "SIGPWR",
        _ => "signal",
    }
}

/// Writes a file whole or not at all (readers never see half of it).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

/// The power request the daemon left, if any (consumed).
fn requested_power() -> Option<Power> {
    let path = Path::new(RUN_DIR).join("power");
    let text = std::fs::read_to_string(&path).ok()?;
    let _ = std::fs::remove_file(&path);
    match text.trim() {
        "reboot" => Some(Power::Reboot),
        "poweroff" => Some(Power::PowerOff),
        other => {
            say(&format!("ignoring an unknown power request {other:?}"));
            None
        }
    }
}

fn describe(status: i32) -> String {
    if libc::WIFEXITED(status) {
        format!("exit {}", libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        format!("killed by signal {}", libc::WTERMSIG(status))
    } else {
        format!("status {status}")
    }
}

fn spawn(
    svc: &Service,
    is_daemon: bool,
    run_dir: &Path,
    data_dir: &Path,
    notify: Option<&Path>,
) -> std::io::Result<i32> {
    let Some((prog, args)) = svc.argv.split_first() else {
        return Err(std::io::Error::other("empty argv"));
    };
    let mut env: BTreeMap<String, String> = BTreeMap::new();
    env.insert("PATH".into(), "/usr/bin:/bin:/usr/sbin:/sbin".into());
    env.insert("HOME".into(), "/root".into());
    if is_daemon {
        // The daemon's sign that PID 1 is kernos-init (with /proc/1/comm and its parent's
        // pid): only then do the reboot and power-off endpoints act.
        env.insert(
            "KERNOS_INIT_DIR".into(),
            run_dir.to_string_lossy().into_owned(),
        );
        env.insert(
            "KERNOS_DATA_DIR".into(),
            data_dir.to_string_lossy().into_owned(),
        );
    }
    if let (true, Some(sock)) = (svc.notify, notify) {
        env.insert("NOTIFY_SOCKET".into(), sock.to_string_lossy().into_owned());
        if svc.watchdog_s > 0 {
            env.insert(
                "WATCHDOG_USEC".into(),
                (svc.watchdog_s * 1_000_000).to_string(),
            );
        }
    }
    env.extend(svc.env.clone());
    let mut cmd = std::process::Command::new(prog);
    cmd.args(args).env_clear().envs(env).current_dir("/");
    // SAFETY: only async-signal-safe calls between fork and exec: unblock every signal PID 1
    // blocked, so the child sees SIGTERM and SIGCHLD as usual.
    unsafe {
        cmd.pre_exec(|| {
            let mut empty: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut empty);
            libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
            Ok(())
        });
    }
    let child = cmd.spawn()?;
    Ok(child.id() as i32)
}
