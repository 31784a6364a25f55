//! PID 1's loop: start and supervise the daemon and the declared services (restart with
//! backoff), reap every child and orphan, forward SIGTERM, and carry out a reboot or
//! power-off the daemon asked for through the API.

use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::config::{InitConfig, Service};
use crate::log::say;

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
}

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
}

impl Supervisor {
    /// The daemon first, then the services.
    pub fn new(cfg: &InitConfig, boot_id: String) -> Supervisor {
        let mut procs = vec![proc(cfg.daemon.clone(), true)];
        procs.extend(cfg.services.iter().cloned().map(|s| proc(s, false)));
        Supervisor {
            procs,
            boot_id,
            data_dir: cfg.data_dir.clone(),
            reaped_orphans: 0,
            reaped_children: 0,
            stopping: None,
        }
    }

    /// Runs forever; returns only to reboot or power off.
    pub fn run(&mut self) -> Power {
        let set = sigset(HANDLED);
        // SAFETY: blocking signals in our own (single-threaded) process; they are taken
        // synchronously with sigtimedwait below. Children get an empty mask back (`spawn`).
        unsafe { libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
        let now = Instant::now();
        for p in &mut self.procs {
            p.next_start = Some(now);
        }
        loop {
            self.start_due();
            self.write_status();
            // SAFETY: an all-zero siginfo_t is valid storage for the kernel to fill.
            let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
            let ts = libc::timespec {
                tv_sec: 1,
                tv_nsec: 0,
            };
            // SAFETY: valid set, writable info, valid timeout.
            let sig = unsafe { libc::sigtimedwait(&set, &mut info, &ts) };
            match sig {
                libc::SIGTERM | libc::SIGINT | libc::SIGPWR => {
                    say(&format!(
                        "signal {sig}: forwarding SIGTERM, then powering off"
                    ));
                    self.stop(Power::PowerOff);
                }
                libc::SIGHUP => say("SIGHUP ignored (PID 1)"),
                _ => {}
            }
            // Reap on every wake, not only on SIGCHLD: signals of one kind coalesce.
            self.reap();
            if let Some((power, deadline)) = self.stopping {
                let alive = self.procs.iter().any(|p| p.pid.is_some());
                if !alive || Instant::now() >= deadline {
                    return power;
                }
            }
        }
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
            match spawn(&p.svc, p.is_daemon, &run_dir, &self.data_dir) {
                Ok(pid) => {
                    p.pid = Some(pid);
                    p.started = Some(now);
                    p.starts += 1;
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
            p.last_exit = describe(status);
            let ran = p.started.map(|s| s.elapsed()).unwrap_or_default();
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
                })
                .collect(),
            written_boottime_ms: crate::log::boottime_ms(),
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

fn spawn(svc: &Service, is_daemon: bool, run_dir: &Path, data_dir: &Path) -> std::io::Result<i32> {
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
