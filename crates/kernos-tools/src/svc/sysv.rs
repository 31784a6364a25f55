//! The init-script backend (SysV style), for machines whose PID 1 is not systemd.
//!
//! State is read here, in-process, the way LSB's `status_of_proc` decides it: the pid file the
//! script names (`PIDFILE=…`, or `/run/NAME.pid` and friends) holding a live process means
//! running; otherwise a process running the script's `DAEMON=` executable; a pid file naming a
//! dead process means failed; a script that names a pid file or daemon and has neither running
//! is stopped; anything else is unknown. The script's own `status` action is not run: in a
//! sandbox it would answer for the sandbox's view of the processes, not the host's, and a
//! read-only query must not get the service sandbox, which may signal host processes.
//! Enabled comes from the `S` links in the runlevel directories next to the script directory
//! (`/etc/rc[2-5S].d`), which `update-rc.d` manages.
//!
//! `start`, `stop` and `restart` run the script in the service-lifetime sandbox (see
//! `kernos_core::Lifetime::Service`), so the daemon it starts keeps running after the step —
//! confined to what the step declared: the script's pid, log and run directories (plus
//! `/run`, `/var/log`, `/var/lib`, … for the system's scripts) and the network.

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::Duration;

use kernos_core::{Effect, EffectKind, Target};

use super::{Op, Status};
use crate::ctx::{Ctx, RunOpts};
use crate::error::{Result, ToolError};
use crate::probe::{is_executable, pid_alive, pids_running, process_start, which};

/// Files in an init directory that are not services.
const NOT_SERVICES: &[&str] = &[
    "README",
    "skeleton",
    "rc",
    "rcS",
    "functions",
    "halt",
    "killall",
    "single",
    "reboot",
    "sendsigs",
];

/// How long a daemon the script's stop left running gets between SIGTERM and SIGKILL.
const STOP_WAIT: Duration = Duration::from_secs(10);
/// How long after SIGKILL before giving up.
const KILL_WAIT: Duration = Duration::from_secs(2);

/// Runlevels whose `S` links mean "started at boot".
const BOOT_LEVELS: &[&str] = &["2", "3", "4", "5", "S"];

/// System directories a daemon started by an init script typically writes (its pid file,
/// logs, state). The daemon inherits the step's confinement, so they must be declared.
const DAEMON_DIRS: &[&str] = &[
    "/run",
    "/var/run",
    "/var/log",
    "/var/lib",
    "/var/cache",
    "/var/spool",
    "/var/tmp",
];

/// One init-script directory and the runlevel directories beside it.
pub(crate) struct SysV {
    init_dir: PathBuf,
    rc_root: PathBuf,
    /// The machine's own `/etc/init.d` (links are changed with `update-rc.d`), as opposed to
    /// a test directory (links are renamed directly).
    system: bool,
}

impl SysV {
    pub(crate) fn new(init_dir: &Path, system: bool) -> Self {
        SysV {
            init_dir: init_dir.to_path_buf(),
            rc_root: init_dir
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| PathBuf::from("/etc")),
            system,
        }
    }

    fn base(name: &str) -> &str {
        name.strip_suffix(".service").unwrap_or(name)
    }

    /// The script for service `name`, when there is one.
    pub(crate) fn script(&self, name: &str) -> Option<PathBuf> {
        let n = Self::base(name);
        if n.is_empty() || n.contains('/') || n.starts_with('.') || NOT_SERVICES.contains(&n) {
            return None;
        }
        let p = self.init_dir.join(n);
        is_executable(&p).then_some(p)
    }

    fn names(&self) -> Result<Vec<String>> {
        let rd = std::fs::read_dir(&self.init_dir)
            .map_err(|e| ToolError::io("cannot list", &self.init_dir, e))?;
        let mut v: Vec<String> = rd
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| !n.contains(".dpkg-") && !n.ends_with('~'))
            .filter(|n| self.script(n).is_some())
            .collect();
        v.sort();
        Ok(v)
    }

    fn text(&self, name: &str) -> String {
        self.script(name)
            .and_then(|p| std::fs::read(p).ok())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// Pid files the script may use, most specific first.
    fn pid_files(&self, name: &str, vars: &BTreeMap<String, String>) -> Vec<PathBuf> {
        let n = Self::base(name);
        let mut v: Vec<PathBuf> = vars
            .iter()
            .filter(|(k, val)| k.to_ascii_uppercase().contains("PID") && val.starts_with('/'))
            .map(|(_, val)| PathBuf::from(val))
            .collect();
        v.extend([
            PathBuf::from(format!("/run/{n}.pid")),
            PathBuf::from(format!("/run/{n}/{n}.pid")),
            PathBuf::from(format!("/run/{n}/pid")),
            PathBuf::from(format!("/var/run/{n}.pid")),
        ]);
        v
    }

    /// The state as `status_of_proc` would decide it, read from the pid files and `/proc`:
    /// (state, what it was decided from, main pid).
    fn probe_state(
        &self,
        name: &str,
        vars: &BTreeMap<String, String>,
    ) -> (&'static str, String, Option<u32>) {
        let mut stale = None;
        for p in self.pid_files(name, vars) {
            let Ok(s) = std::fs::read_to_string(&p) else {
                continue;
            };
            let Some(pid) = s
                .split_whitespace()
                .next()
                .and_then(|w| w.parse::<u32>().ok())
            else {
                continue;
            };
            if pid > 1 && pid_alive(pid) {
                return (
                    "active",
                    format!("pid {pid} from {}", p.display()),
                    Some(pid),
                );
            }
            stale.get_or_insert((p, pid));
        }
        let daemon = vars
            .get("DAEMON")
            .filter(|d| d.starts_with('/'))
            .map(PathBuf::from);
        if let Some(d) = &daemon {
            if let Some(pid) = pids_running(d).into_iter().min() {
                return ("active", format!("{} is running", d.display()), Some(pid));
            }
        }
        if let Some((p, pid)) = stale {
            return (
                "failed",
                format!("{} names pid {pid}, which is not running", p.display()),
                None,
            );
        }
        let names_pid_file = vars
            .iter()
            .any(|(k, v)| k.to_ascii_uppercase().contains("PID") && v.starts_with('/'));
        if names_pid_file || daemon.is_some() {
            return ("inactive", "not running".into(), None);
        }
        (
            "unknown",
            "the script names no pid file or DAEMON, and none was found".into(),
            None,
        )
    }

    /// `enabled` when an `S` link exists in a boot runlevel, `disabled` when only `K` links
    /// or none, `unknown` when there are no runlevel directories at all.
    pub(crate) fn enabled(&self, name: &str) -> String {
        let n = Self::base(name);
        let mut any_dir = false;
        for lv in BOOT_LEVELS {
            let dir = self.rc_root.join(format!("rc{lv}.d"));
            let Ok(rd) = std::fs::read_dir(&dir) else {
                continue;
            };
            any_dir = true;
            for e in rd.flatten() {
                if let Some((kind, _)) = e.file_name().to_str().and_then(|f| rc_link(f, n)) {
                    if kind == 'S' {
                        return "enabled".into();
                    }
                }
            }
        }
        if any_dir { "disabled" } else { "unknown" }.into()
    }

    pub(crate) fn status(&self, _ctx: &Ctx<'_>, name: &str) -> Result<Status> {
        self.script(name).ok_or_else(|| super::unavailable(name))?;
        let text = self.text(name);
        let vars = script_vars(&text);
        let (state, sub, pid) = self.probe_state(name, &vars);
        Ok(Status {
            name: name.to_owned(),
            state: state.to_owned(),
            sub: Some(sub),
            enabled: self.enabled(name),
            pid,
            since: pid.and_then(process_start),
            description: lsb_description(&text).or_else(|| vars.get("DESC").cloned()),
        })
    }

    pub(crate) fn list(&self, ctx: &Ctx<'_>) -> Result<Vec<Status>> {
        let mut out = Vec::new();
        for n in self.names()? {
            ctx.check_cancel()?;
            out.push(self.status(ctx, &n)?);
        }
        Ok(out)
    }

    pub(crate) fn act(&self, ctx: &Ctx<'_>, name: &str, op: Op) -> Result<()> {
        let script = self.script(name).ok_or_else(|| super::unavailable(name))?;
        match op {
            Op::Start => self.run_script(ctx, &script, "start"),
            Op::Stop => self.stop(ctx, name, &script),
            // Not the script's own restart: its stop half may not find the daemon from the
            // sandbox (see `stop`), and its start half would then start a second one.
            Op::Restart => {
                self.stop(ctx, name, &script)?;
                self.run_script(ctx, &script, "start")
            }
            Op::Enable | Op::Disable if self.system => {
                let n = Self::base(name);
                let no_links = !self.has_links(n);
                if op == Op::Enable && no_links {
                    self.update_rc_d(ctx, &[n, "defaults"])?;
                }
                self.update_rc_d(ctx, &[n, op.as_str()])
            }
            Op::Enable | Op::Disable => self.relink(Self::base(name), op == Op::Enable),
        }
    }

    /// Runs the script's `stop`, then makes sure the main process it had is gone. The script
    /// runs in the sandbox, where Landlock keeps other processes' `/proc/PID/exe` closed (the
    /// same rule keeps their `/proc/PID/root` closed, which must stay so), so scripts that
    /// identify their daemon by executable (`start-stop-daemon --exec`, `pidofproc`) do not
    /// find it there and leave it running. The pid file, or the `DAEMON=` executable, says
    /// which process is the service; when it outlives the script's stop, it is stopped from
    /// here: SIGTERM, then SIGKILL after [`STOP_WAIT`].
    fn stop(&self, ctx: &Ctx<'_>, name: &str, script: &Path) -> Result<()> {
        let vars = script_vars(&self.text(name));
        let main = self
            .probe_state(name, &vars)
            .2
            .filter(|pid| *pid != std::process::id())
            .and_then(|pid| Some((pid, process_start(pid)?)));
        let by_script = self.run_script(ctx, script, "stop");
        let Some((pid, started)) = main else {
            return by_script;
        };
        let same = || pid_alive(pid) && process_start(pid) == Some(started);
        if !same() {
            return by_script;
        }
        // Only what the script says is its daemon.
        if let Some(d) = vars.get("DAEMON").filter(|d| d.starts_with('/')) {
            if !pids_running(Path::new(d)).contains(&pid) {
                return by_script;
            }
        }
        for (signal, wait) in [(libc::SIGTERM, STOP_WAIT), (libc::SIGKILL, KILL_WAIT)] {
            // SAFETY: kill(2) of the service's main process, checked just above to be the
            // same process (pid and start time) that the pid file or DAEMON named.
            unsafe { libc::kill(pid as libc::pid_t, signal) };
            let until = std::time::Instant::now() + wait;
            while same() && std::time::Instant::now() < until {
                ctx.check_cancel()?;
                std::thread::sleep(Duration::from_millis(50));
            }
            if !same() {
                // A pid file still naming the dead process would read as "failed".
                for f in self.pid_files(name, &vars) {
                    let names_it = std::fs::read_to_string(&f).is_ok_and(|s| {
                        s.split_whitespace().next() == Some(pid.to_string().as_str())
                    });
                    if names_it {
                        let _ = std::fs::remove_file(&f);
                    }
                }
                return Ok(());
            }
        }
        Err(ToolError::Failed(format!(
            "{name}: process {pid} is still running after `{} stop`, SIGTERM and SIGKILL",
            script.display()
        )))
    }

    /// Runs `script action`. The script's output goes through a temporary file rather than
    /// straight to our pipe: a daemon it starts inherits the descriptors and would otherwise
    /// hold the pipe open for as long as it runs.
    fn run_script(&self, ctx: &Ctx<'_>, script: &Path, action: &str) -> Result<()> {
        const WRAP: &str = r#"t=$(mktemp) || exit 125
"$0" "$1" </dev/null >"$t" 2>&1
rc=$?
cat "$t"
rm -f "$t"
exit $rc"#;
        let s = script.to_string_lossy();
        let out = ctx.run(
            &["sh", "-c", WRAP, s.as_ref(), action],
            RunOpts {
                cwd: Some(PathBuf::from("/")),
                timeout: Some(Duration::from_secs(120)),
                ..RunOpts::default()
            },
        )?;
        if out.success() {
            return Ok(());
        }
        let said = out.stdout_text();
        let tail: Vec<&str> = said.lines().rev().take(10).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        Err(ToolError::Failed(format!(
            "`{} {action}` failed{}: {}",
            script.display(),
            out.code.map(|c| format!(" (exit {c})")).unwrap_or_default(),
            tail.join("\n").trim()
        )))
    }

    fn update_rc_d(&self, ctx: &Ctx<'_>, args: &[&str]) -> Result<()> {
        let mut argv = vec!["update-rc.d"];
        argv.extend_from_slice(args);
        if which("update-rc.d").is_none() {
            return Err(ToolError::Unavailable(
                "update-rc.d is not installed, so boot links cannot be changed".into(),
            ));
        }
        let out = ctx.run(&argv, RunOpts::default())?;
        if out.success() {
            Ok(())
        } else {
            Err(ToolError::Failed(format!(
                "`{}` failed: {}",
                argv.join(" "),
                out.stderr_text().trim()
            )))
        }
    }

    fn has_links(&self, n: &str) -> bool {
        BOOT_LEVELS.iter().any(|lv| {
            std::fs::read_dir(self.rc_root.join(format!("rc{lv}.d")))
                .map(|rd| {
                    rd.flatten()
                        .any(|e| e.file_name().to_str().and_then(|f| rc_link(f, n)).is_some())
                })
                .unwrap_or(false)
        })
    }

    /// What `update-rc.d NAME enable|disable` does, for a script directory that is not the
    /// system's: `SNNname` ↔ `K(100-NN)name` in runlevels 2–5 (links created as `S01name`
    /// when enabling a script that has none).
    fn relink(&self, n: &str, enable: bool) -> Result<()> {
        let create = enable && !self.has_links(n);
        for lv in ["2", "3", "4", "5"] {
            let dir = self.rc_root.join(format!("rc{lv}.d"));
            if create {
                std::fs::create_dir_all(&dir)
                    .map_err(|e| ToolError::io("cannot create", &dir, e))?;
                let link = dir.join(format!("S01{n}"));
                let target = Path::new("..")
                    .join(self.init_dir.file_name().unwrap_or_default())
                    .join(n);
                std::os::unix::fs::symlink(&target, &link)
                    .map_err(|e| ToolError::io("cannot create link", &link, e))?;
                continue;
            }
            let Ok(rd) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in rd.flatten() {
                let Some(f) = e.file_name().to_str().map(str::to_owned) else {
                    continue;
                };
                let Some((kind, seq)) = rc_link(&f, n) else {
                    continue;
                };
                let new = match (kind, enable) {
                    ('K', true) => format!("S{:02}{n}", 100 - seq.min(99)),
                    ('S', false) => format!("K{:02}{n}", 100 - seq.min(99)),
                    _ => continue,
                };
                let (from, to) = (dir.join(&f), dir.join(new));
                std::fs::rename(&from, &to)
                    .map_err(|e| ToolError::io("cannot rename", &from, e))?;
            }
        }
        Ok(())
    }

    /// Effects of `op` on service `name` beyond the service itself.
    pub(crate) fn effects(&self, name: &str, op: Op) -> Vec<Effect> {
        let n = Self::base(name);
        let script = self.init_dir.join(n);
        let mut v = Vec::new();
        let exec = |line: String| Effect {
            kind: EffectKind::Exec,
            target: Target::Command { line },
        };
        match op {
            Op::Start | Op::Stop | Op::Restart => {
                // A restart runs the script's stop, then its start (see `act`).
                let actions: &[&str] = match op {
                    Op::Restart => &["stop", "start"],
                    _ => &[op.as_str()],
                };
                for a in actions {
                    v.push(exec(format!("{} {a}", script.display())));
                }
                // Where this script keeps its pid and log files.
                let vars = script_vars(&self.text(name));
                let mut dirs: Vec<PathBuf> = vars
                    .iter()
                    .filter(|(k, val)| {
                        let k = k.to_ascii_uppercase();
                        (k.contains("PID") || k.contains("LOG") || k.contains("RUN"))
                            && val.starts_with('/')
                    })
                    .filter_map(|(_, val)| {
                        let p = PathBuf::from(val);
                        if p.is_dir() {
                            Some(p)
                        } else {
                            p.parent().map(Path::to_path_buf)
                        }
                    })
                    .collect();
                if self.system {
                    dirs.extend(DAEMON_DIRS.iter().map(PathBuf::from));
                }
                dirs.sort();
                dirs.dedup();
                v.extend(
                    dirs.into_iter()
                        .map(|d| Effect::path(EffectKind::Write, d, true)),
                );
                if self.system && op != Op::Stop {
                    v.push(Effect {
                        kind: EffectKind::Network,
                        target: Target::Host {
                            host: "*".into(),
                            port: None,
                        },
                    });
                }
            }
            Op::Enable | Op::Disable => {
                if self.system {
                    v.push(exec(format!("update-rc.d {n} {}", op.as_str())));
                    // insserv rewrites its dependency files next to the scripts.
                    v.push(Effect::path(EffectKind::Write, &self.init_dir, false));
                }
                for lv in ["0", "1", "2", "3", "4", "5", "6", "S"] {
                    let d = self.rc_root.join(format!("rc{lv}.d"));
                    if d.is_dir()
                        || (!self.system && lv.parse::<u8>().is_ok_and(|l| (2..=5).contains(&l)))
                    {
                        v.push(Effect::path(EffectKind::Write, d, true));
                    }
                }
            }
        }
        v
    }

    /// The service's log file: one the script names, else `/var/log/NAME.log` and friends.
    pub(crate) fn log_file(&self, name: &str) -> Option<PathBuf> {
        let n = Self::base(name);
        let vars = script_vars(&self.text(name));
        let mut c: Vec<PathBuf> = vars
            .iter()
            .filter(|(k, val)| k.to_ascii_uppercase().contains("LOG") && val.starts_with('/'))
            .map(|(_, v)| PathBuf::from(v))
            .collect();
        c.extend([
            PathBuf::from(format!("/var/log/{n}.log")),
            PathBuf::from(format!("/var/log/{n}/{n}.log")),
            PathBuf::from(format!("/var/log/{n}/current")),
            PathBuf::from(format!("/var/log/{n}")),
        ]);
        if let Some(p) = c.into_iter().find(|p| p.is_file()) {
            return Some(p);
        }
        // The newest *.log in /var/log/NAME/.
        let dir = PathBuf::from(format!("/var/log/{n}"));
        std::fs::read_dir(dir)
            .ok()?
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "log"))
            .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
            .max()
            .map(|(_, p)| p)
    }
}

/// `S20name` / `K01name` for service `n`: (kind, sequence).
fn rc_link(f: &str, n: &str) -> Option<(char, u32)> {
    let kind = f.chars().next().filter(|c| *c == 'S' || *c == 'K')?;
    let digits = f.get(1..3)?;
    let seq: u32 = digits.parse().ok()?;
    (f.get(3..)? == n).then_some((kind, seq))
}

/// `# Short-Description: …` from the LSB header.
pub(crate) fn lsb_description(text: &str) -> Option<String> {
    text.lines()
        .find_map(|l| {
            l.trim_start_matches(['#', ' '])
                .strip_prefix("Short-Description:")
        })
        .map(|d| d.trim().to_owned())
        .filter(|d| !d.is_empty())
}

/// Plain `NAME=value` assignments in a script (the first of each name), with `$X` / `${X}`
/// of earlier ones expanded. Values computed by commands are skipped.
pub(crate) fn script_vars(text: &str) -> BTreeMap<String, String> {
    let mut vars: BTreeMap<String, String> = BTreeMap::new();
    for line in text.lines() {
        let l = line.trim_start();
        let l = l
            .strip_prefix("export ")
            .or_else(|| l.strip_prefix("readonly "))
            .unwrap_or(l);
        let Some((name, rest)) = l.split_once('=') else {
            continue;
        };
        if !crate::shell::parse::is_name(name) || vars.contains_key(name) {
            continue;
        }
        let raw = match rest.chars().next() {
            Some(q @ ('"' | '\'')) => match rest[1..].find(q) {
                Some(end) => &rest[1..1 + end],
                None => continue,
            },
            _ => rest.split([' ', '\t', ';']).next().unwrap_or(""),
        };
        if raw.contains("$(") || raw.contains('`') {
            continue;
        }
        if let Some(v) = expand(raw, &vars) {
            vars.insert(name.to_owned(), v);
        }
    }
    vars
}

/// Expands `$X` and `${X}` from `vars`; `None` when one is unknown.
fn expand(s: &str, vars: &BTreeMap<String, String>) -> Option<String> {
    let mut out = String::new();
    let c: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < c.len() {
        if c[i] != '$' {
            out.push(c[i]);
            i += 1;
            continue;
        }
        let (name, next) = if c.get(i + 1) == Some(&'{') {
            let end = c[i + 2..].iter().position(|x| *x == '}')? + i + 2;
            (c[i + 2..end].iter().collect::<String>(), end + 1)
        } else {
            let mut j = i + 1;
            while j < c.len() && (c[j].is_ascii_alphanumeric() || c[j] == '_') {
                j += 1;
            }
            (c[i + 1..j].iter().collect::<String>(), j)
        };
        out.push_str(vars.get(&name)?);
        i = next;
    }
    Some(out)
}

/// The last `n` lines of a file (reading at most its last 4 MiB).
pub(crate) fn tail_file(p: &Path, n: usize) -> Result<Vec<String>> {
    const WINDOW: u64 = 4 << 20;
    let mut f = std::fs::File::open(p).map_err(|e| ToolError::io("cannot open", p, e))?;
    let len = f
        .metadata()
        .map_err(|e| ToolError::io("cannot stat", p, e))?
        .len();
    let start = len.saturating_sub(WINDOW);
    f.seek(SeekFrom::Start(start))
        .map_err(|e| ToolError::io("cannot read", p, e))?;
    let mut buf = Vec::new();
    f.read_to_end(&mut buf)
        .map_err(|e| ToolError::io("cannot read", p, e))?;
    let text = String::from_utf8_lossy(&buf);
    let mut lines: Vec<&str> = text.lines().collect();
    if start > 0 && !lines.is_empty() {
        // The first line of the window is probably cut.
        lines.remove(0);
    }
    let from = lines.len().saturating_sub(n);
    Ok(lines[from..].iter().map(|s| (*s).to_owned()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    // The head of /etc/init.d/dbus on Debian 12.
    const DBUS: &str = r#"#!/bin/sh
### BEGIN INIT INFO
# Provides:          dbus
# Required-Start:    $remote_fs $syslog
# Required-Stop:     $remote_fs $syslog
# Default-Start:     2 3 4 5
# Default-Stop:
# Short-Description: D-Bus systemwide message bus
# Description:       D-Bus is a simple interprocess messaging system, used
#                    for sending messages between applications.
### END INIT INFO
# -*- coding: utf-8 -*-
set -e

DAEMON=/usr/bin/dbus-daemon
UUIDGEN=/usr/bin/dbus-uuidgen
UUIDGEN_OPTS=--ensure
NAME=dbus
DAEMONUSER=messagebus
PIDDIR=/var/run/dbus
PIDFILE=$PIDDIR/pid
DESC="system message bus"
"#;

    #[test]
    fn variables_of_a_real_script() {
        let v = script_vars(DBUS);
        assert_eq!(v["PIDFILE"], "/var/run/dbus/pid");
        assert_eq!(v["DESC"], "system message bus");
        assert_eq!(v["DAEMON"], "/usr/bin/dbus-daemon");
        assert_eq!(
            lsb_description(DBUS).as_deref(),
            Some("D-Bus systemwide message bus")
        );
    }

    #[test]
    fn computed_and_unknown_values_are_skipped() {
        let v = script_vars("A=$(hostname)\nB=`date`\nC=$UNDEFINED/x\nD='q v' # c\nE=x;F=y\n");
        assert!(!v.contains_key("A") && !v.contains_key("B") && !v.contains_key("C"));
        assert_eq!(v["D"], "q v");
        assert_eq!(v["E"], "x");
    }

    #[test]
    fn state_is_read_from_pid_files_and_proc() {
        let d = tempfile::tempdir().unwrap();
        let init = d.path().join("init.d");
        std::fs::create_dir(&init).unwrap();
        let s = SysV::new(&init, false);
        let pidfile = d.path().join("web.pid");
        let vars = |extra: &str| script_vars(&format!("PIDFILE={}\n{extra}", pidfile.display()));

        // Names a pid file that is not there: not running.
        let (state, _, pid) = s.probe_state("web", &vars(""));
        assert_eq!((state, pid), ("inactive", None));

        // A pid file naming a live process: running, with that pid.
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        std::fs::write(&pidfile, format!("{}\n", child.id())).unwrap();
        let (state, sub, pid) = s.probe_state("web", &vars(""));
        assert_eq!((state, pid), ("active", Some(child.id())), "{sub}");
        child.kill().unwrap();
        child.wait().unwrap();

        // Naming a dead one: failed (LSB's "dead, pid file exists").
        let (state, sub, pid) = s.probe_state("web", &vars(""));
        assert_eq!((state, pid), ("failed", None));
        assert!(sub.contains("not running"), "{sub}");

        // No pid file but a DAEMON that runs: running (this test binary stands in for it).
        std::fs::remove_file(&pidfile).unwrap();
        let me = std::fs::read_link("/proc/self/exe").unwrap();
        let (state, _, pid) = s.probe_state("web", &vars(&format!("DAEMON={}", me.display())));
        assert_eq!(state, "active");
        assert!(pid.is_some());

        // Nothing to go by: unknown.
        let (state, _, _) = s.probe_state("kernos-none", &BTreeMap::new());
        assert_eq!(state, "unknown");
    }

    #[test]
    fn rc_links() {
        assert_eq!(rc_link("S01dbus", "dbus"), Some(('S', 1)));
        assert_eq!(rc_link("K80dbus", "dbus"), Some(('K', 80)));
        assert_eq!(rc_link("S01dbus-x", "dbus"), None);
        assert_eq!(rc_link("README", "dbus"), None);
    }

    #[test]
    fn enabled_and_relinking() {
        let d = tempfile::tempdir().unwrap();
        let init = d.path().join("init.d");
        std::fs::create_dir(&init).unwrap();
        let s = SysV::new(&init, false);
        assert_eq!(s.enabled("web"), "unknown");
        s.relink("web", true).unwrap();
        assert_eq!(s.enabled("web"), "enabled");
        assert!(d.path().join("rc2.d/S01web").is_symlink());
        s.relink("web", false).unwrap();
        assert_eq!(s.enabled("web"), "disabled");
        assert!(d.path().join("rc3.d/K99web").is_symlink());
        s.relink("web", true).unwrap();
        assert!(d.path().join("rc5.d/S01web").is_symlink());
    }

    #[test]
    fn tail_of_a_file() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x.log");
        std::fs::write(&p, "a\nb\nc\nd\n").unwrap();
        assert_eq!(tail_file(&p, 2).unwrap(), vec!["c", "d"]);
        assert_eq!(tail_file(&p, 10).unwrap().len(), 4);
    }
}
