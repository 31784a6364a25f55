//! `svc.*` against a real init script the test writes into a temporary directory (the
//! init-script backend pointed at it), and the "no service manager" error on this machine.
//! The `sandboxed_*` tests drive the same scripts through the real sandbox runner (the
//! service lifetime); they need the `kernos-sandbox` helper binary next to the test binary
//! (`cargo nextest run --workspace` and `cargo build -p kernos-sandbox` build it) and say so
//! when it is missing.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use kernos_core::{EffectKind, Target};
use kernos_tools::Change;
use kernos_tools::testing::World;
use kernos_tools::undo::{Inverse, Record};
use serde_json::json;

const NAME: &str = "kernos-test";

/// A temporary init directory with one script that runs `sleep` with a pid file, and the
/// empty runlevel directories beside it. Kills its `sleep` when dropped.
struct Fixture {
    world: World,
    _dir: tempfile::TempDir,
    root: PathBuf,
}

/// Which init script the fixture writes.
#[derive(Clone, Copy)]
enum Script {
    /// Plain shell: `sleep &`, `kill $(cat pidfile)`.
    Plain,
    /// Debian style: `start-stop-daemon --start/--stop --pidfile … --exec DAEMON`, with
    /// DAEMON a copy of `sleep` under a name of its own.
    StartStopDaemon,
}

impl Fixture {
    fn new() -> Self {
        Self::in_world(World::new(), Script::Plain)
    }

    /// The fixture with the world's processes run by the real sandbox, or `None` (with the
    /// reason printed) when the helper binary has not been built.
    fn sandboxed(script: Script) -> Option<Self> {
        let helper = match kernos_sandbox::find_helper() {
            Ok(h) => h,
            Err(e) => {
                eprintln!("skipped: {e}");
                return None;
            }
        };
        let runner = kernos_sandbox::SandboxRunner::with_helper(helper);
        Some(Self::in_world(World::with_runner(Arc::new(runner)), script))
    }

    fn in_world(mut world: World, kind: Script) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        for d in [
            "init.d", "run", "log", "bin", "rc2.d", "rc3.d", "rc4.d", "rc5.d",
        ] {
            std::fs::create_dir(root.join(d)).unwrap();
        }
        let script = match kind {
            Script::Plain => Self::plain_script(&root),
            Script::StartStopDaemon => {
                let daemon = root.join("bin").join(format!("{NAME}d"));
                std::fs::copy("/bin/sleep", &daemon).unwrap();
                format!(
                    r#"#!/bin/sh
### BEGIN INIT INFO
# Provides:          {NAME}
# Short-Description: Kernos test service (start-stop-daemon)
### END INIT INFO
DAEMON={daemon}
PIDFILE={root}/run/{NAME}.pid
LOGFILE={root}/log/{NAME}.log
case "$1" in
  start)
    start-stop-daemon --start --quiet --background --make-pidfile --pidfile "$PIDFILE" \
      --exec "$DAEMON" -- 300 || exit 1
    echo "started" >> "$LOGFILE"
    ;;
  stop)
    start-stop-daemon --stop --quiet --retry=TERM/5/KILL/2 --remove-pidfile \
      --pidfile "$PIDFILE" --exec "$DAEMON"
    rc=$?
    echo "stop: start-stop-daemon said $rc" >> "$LOGFILE"
    # Debian's convention: 1 ("nothing to stop") is success too.
    case $rc in 0|1) exit 0 ;; *) exit 1 ;; esac
    ;;
  *)
    echo "Usage: $0 {{start|stop}}"; exit 2
    ;;
esac
"#,
                    daemon = daemon.display(),
                    root = root.display()
                )
            }
        };
        let p = root.join("init.d").join(NAME);
        std::fs::write(&p, script).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        kernos_tools::svc::register_with_init_dir(&mut world.registry, root.join("init.d"));
        Fixture {
            world,
            _dir: dir,
            root,
        }
    }

    fn plain_script(root: &Path) -> String {
        format!(
            r#"#!/bin/sh
### BEGIN INIT INFO
# Provides:          {NAME}
# Short-Description: Kernos test service
### END INIT INFO
PIDFILE={root}/run/{NAME}.pid
LOGFILE={root}/log/{NAME}.log
running() {{ [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }}
case "$1" in
  start)
    if running; then exit 0; fi
    sleep 300 </dev/null >/dev/null 2>&1 &
    echo $! > "$PIDFILE"
    echo "started $!" >> "$LOGFILE"
    ;;
  stop)
    if running; then kill "$(cat "$PIDFILE")"; fi
    rm -f "$PIDFILE"
    echo "stopped" >> "$LOGFILE"
    ;;
  restart)
    "$0" stop; "$0" start
    ;;
  status)
    if running; then echo "{NAME} is running"; exit 0; fi
    if [ -f "$PIDFILE" ]; then echo "{NAME} is dead"; exit 1; fi
    echo "{NAME} is not running"; exit 3
    ;;
  *)
    echo "Usage: $0 {{start|stop|restart|status}}"; exit 2
    ;;
esac
"#,
            root = root.display()
        )
    }

    fn pid_file(&self) -> PathBuf {
        self.root.join("run").join(format!("{NAME}.pid"))
    }

    fn status(&self) -> serde_json::Map<String, serde_json::Value> {
        let (out, records) = self
            .world
            .execute("svc.status", json!({ "name": NAME }))
            .unwrap();
        assert!(records.is_empty());
        out.rows[0].clone()
    }

    fn state(&self) -> String {
        self.status()["state"].as_str().unwrap().to_owned()
    }

    /// Runs each recorded inverse step through the registry, last first, as the engine does.
    fn undo(&self, records: &[Record]) {
        for r in records.iter().rev() {
            match &r.inverse {
                Inverse::Step { tool, action, args } => {
                    self.world
                        .execute(&format!("{tool}.{action}"), args.clone())
                        .unwrap();
                }
                other => panic!("svc recorded a non-step inverse: {other:?}"),
            }
        }
    }

    fn step(records: &[Record]) -> Vec<(String, serde_json::Value)> {
        records
            .iter()
            .map(|r| match &r.inverse {
                Inverse::Step { tool, action, args } => (format!("{tool}.{action}"), args.clone()),
                other => panic!("{other:?}"),
            })
            .collect()
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        // Only ever the sleep this fixture's script started.
        if let Ok(s) = std::fs::read_to_string(self.pid_file()) {
            if let Ok(pid) = s.trim().parse::<i32>() {
                // SAFETY: plain kill(2) of a pid we started.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                }
            }
        }
    }
}

fn alive(pid: u64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            let st = s.rsplit_once(')').map(|x| x.1.trim_start()).unwrap_or("");
            !st.starts_with('Z')
        })
        .unwrap_or(false)
}

fn service_change(from: &str, to: &str) -> Change {
    Change::Service {
        name: NAME.into(),
        from: from.into(),
        to: to.into(),
    }
}

#[test]
fn start_stop_with_dry_run_and_undo() {
    let f = Fixture::new();
    let st = f.status();
    assert_eq!(st["state"], "inactive");
    assert_eq!(st["enabled"], "disabled");
    assert_eq!(st["description"], "Kernos test service");
    assert!(st["pid"].is_null());

    // start: dry run says exactly what execute does; undo is a recorded svc.stop.
    let args = json!({ "name": NAME });
    let predicted = f.world.dry_run("svc.start", args.clone()).unwrap();
    assert_eq!(predicted, vec![service_change("inactive", "active")]);
    let (out, start_records) = f.world.execute("svc.start", args.clone()).unwrap();
    assert_eq!(out.changes, predicted);
    assert_eq!(
        Fixture::step(&start_records),
        vec![("svc.stop".to_owned(), args.clone())]
    );
    let st = f.status();
    assert_eq!(st["state"], "active");
    let pid = st["pid"].as_u64().expect("a main pid from the pid file");
    assert!(alive(pid));
    assert!(st["since"].as_i64().is_some());

    // Starting a running service changes nothing and says so.
    assert!(
        f.world
            .dry_run("svc.start", args.clone())
            .unwrap()
            .is_empty()
    );
    let (out, records) = f.world.execute("svc.start", args.clone()).unwrap();
    assert!(out.changes.is_empty() && records.is_empty());
    assert!(out.summary.unwrap().contains("already running"));

    // Undo the start: the recorded inverse, run through the registry, stops it.
    f.undo(&start_records);
    assert_eq!(f.state(), "inactive");
    assert!(dies(pid), "the service's process is gone");

    // Stopping a stopped service is a no-op.
    assert!(
        f.world
            .dry_run("svc.stop", args.clone())
            .unwrap()
            .is_empty()
    );
}

#[test]
fn stop_is_undone_by_start_and_restart_is_honest() {
    let f = Fixture::new();
    let args = json!({ "name": NAME });
    // restart of a stopped service starts it; its inverse stops it again.
    let predicted = f.world.dry_run("svc.restart", args.clone()).unwrap();
    assert_eq!(predicted, vec![service_change("inactive", "active")]);
    let (out, records) = f.world.execute("svc.restart", args.clone()).unwrap();
    assert_eq!(out.changes, predicted);
    assert_eq!(
        Fixture::step(&records),
        vec![("svc.stop".to_owned(), args.clone())]
    );
    let pid1 = f.status()["pid"].as_u64().unwrap();

    // restart of a running one: a new process, nothing to undo.
    let predicted = f.world.dry_run("svc.restart", args.clone()).unwrap();
    assert_eq!(predicted, vec![service_change("active", "restarted")]);
    let (out, records) = f.world.execute("svc.restart", args.clone()).unwrap();
    assert_eq!(out.changes, predicted);
    assert!(records.is_empty());
    let pid2 = f.status()["pid"].as_u64().unwrap();
    assert_ne!(pid1, pid2);
    assert!(alive(pid2) && dies(pid1));

    // stop, then undo: running again.
    let predicted = f.world.dry_run("svc.stop", args.clone()).unwrap();
    assert_eq!(predicted, vec![service_change("active", "inactive")]);
    let (out, records) = f.world.execute("svc.stop", args.clone()).unwrap();
    assert_eq!(out.changes, predicted);
    assert_eq!(f.state(), "inactive");
    assert!(!alive(pid2));
    assert_eq!(
        Fixture::step(&records),
        vec![("svc.start".to_owned(), args.clone())]
    );
    f.undo(&records);
    assert_eq!(f.state(), "active");

    // The log file the script names is what svc.logs shows.
    let (out, _) = f
        .world
        .execute("svc.logs", json!({ "name": NAME, "lines": 3 }))
        .unwrap();
    let msgs: Vec<_> = out.column_values("message");
    assert_eq!(msgs.len(), 3);
    assert!(msgs[2].as_str().unwrap().starts_with("started"), "{msgs:?}");
    assert_eq!(msgs[1], "stopped");
    f.world.execute("svc.stop", args).unwrap();
}

#[test]
fn enable_and_disable_with_undo() {
    let f = Fixture::new();
    let args = json!({ "name": NAME });
    let predicted = f.world.dry_run("svc.enable", args.clone()).unwrap();
    assert_eq!(
        predicted,
        vec![Change::Service {
            name: NAME.into(),
            from: "disabled".into(),
            to: "enabled".into()
        }]
    );
    let (out, records) = f.world.execute("svc.enable", args.clone()).unwrap();
    assert_eq!(out.changes, predicted);
    assert_eq!(f.status()["enabled"], "enabled");
    assert!(f.root.join("rc2.d/S01kernos-test").is_symlink());
    assert_eq!(
        Fixture::step(&records),
        vec![("svc.disable".to_owned(), args.clone())]
    );
    f.undo(&records);
    assert_eq!(f.status()["enabled"], "disabled");
    assert!(f.root.join("rc2.d/K99kernos-test").is_symlink());
    // Already disabled: nothing to do.
    assert!(f.world.dry_run("svc.disable", args).unwrap().is_empty());
}

#[test]
fn list_and_effects() {
    let f = Fixture::new();
    let (out, _) = f.world.execute("svc.list", json!({})).unwrap();
    let names = out.column_values("name");
    assert_eq!(names, vec![json!(NAME)]);
    let (out, _) = f
        .world
        .execute("svc.list", json!({ "state": "running" }))
        .unwrap();
    assert!(out.rows.is_empty());
    assert!(
        f.world
            .effects("svc.list", json!({ "state": "asleep" }))
            .is_err()
    );

    let e = f
        .world
        .effects("svc.start", json!({ "name": NAME }))
        .unwrap();
    let service = Target::Service { name: NAME.into() };
    assert!(
        e.iter()
            .any(|e| e.kind == EffectKind::Privileged && e.target == service)
    );
    assert!(
        e.iter()
            .any(|e| e.kind == EffectKind::Write && e.target == service)
    );
    // The pid and log directories the script names are declared writable.
    let run = f.root.join("run");
    assert!(
        e.iter().any(|e| e.kind == EffectKind::Write
            && e.target
                == Target::Path {
                    path: run.clone(),
                    recursive: true
                }),
        "{e:?}"
    );
    let e = f
        .world
        .effects("svc.status", json!({ "name": NAME }))
        .unwrap();
    assert!(e.iter().all(|e| e.kind == EffectKind::Read));
}

#[test]
fn bad_names_and_missing_scripts() {
    let f = Fixture::new();
    let e = f
        .world
        .execute("svc.status", json!({ "name": "-rf" }))
        .unwrap_err();
    assert!(e.to_string().contains("not a service name"), "{e}");
    let e = f
        .world
        .execute("svc.start", json!({ "name": "no-such-service" }))
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "no systemd on this machine and no init script for no-such-service: svc.* is unavailable"
    );
}

/// On this machine (no systemd as PID 1), the real backend: an unknown service gets the
/// clear error, not a stack of tool output.
#[test]
fn no_service_manager_for_a_service_says_so() {
    if Path::new("/run/systemd/system").is_dir() {
        eprintln!("skipped: this machine runs systemd, so the no-systemd message cannot be seen");
        return;
    }
    let w = World::new();
    let name = "kernos-no-such-service-xyz";
    for action in ["svc.status", "svc.start", "svc.logs"] {
        let e = w.execute(action, json!({ "name": name })).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "no systemd on this machine and no init script for {name}: svc.* is unavailable"
            ),
            "{action}"
        );
    }
}

/// Whether `cond` holds within a few seconds.
fn eventually(cond: impl Fn() -> bool) -> bool {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !cond() {
        if std::time::Instant::now() > until {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    true
}

/// Whether `pid` is gone within a few seconds (signals are delivered asynchronously).
fn dies(pid: u64) -> bool {
    eventually(|| !alive(pid))
}

/// `(NoNewPrivs, Seccomp)` of a process, from /proc/PID/status.
fn confinement(pid: u64) -> (String, String) {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |k: &str| {
        s.lines()
            .find_map(|l| l.strip_prefix(k))
            .map(|v| v.trim().to_owned())
            .unwrap_or_default()
    };
    (field("NoNewPrivs:"), field("Seccomp:"))
}

/// Live processes running `exe`.
fn running(exe: &Path) -> Vec<u64> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u64>().ok())
        .filter(|pid| std::fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|l| l == exe))
        .filter(|pid| alive(*pid))
        .collect()
}

/// Through the real sandbox: start runs the script with the service lifetime, so its daemon
/// outlives the step, with its real pid in the pid file, still confined; status reads that
/// pid file in-process; stop signals the daemon from a later step; undo replays the recorded
/// inverse steps.
#[test]
fn sandboxed_start_status_stop_and_undo() {
    let Some(f) = Fixture::sandboxed(Script::Plain) else {
        return;
    };
    let args = json!({ "name": NAME });
    assert_eq!(f.state(), "inactive");
    let (out, start_records) = f.world.execute("svc.start", args.clone()).unwrap();
    assert_eq!(out.changes, vec![service_change("inactive", "active")]);
    assert_eq!(
        Fixture::step(&start_records),
        vec![("svc.stop".to_owned(), args.clone())]
    );
    let st = f.status();
    assert_eq!(st["state"], "active", "{st:?}");
    let pid = st["pid"].as_u64().expect("a main pid from the pid file");
    // The pid file holds a host pid (no PID namespace), and that process is the daemon the
    // script started: alive after the step, and still under the step's confinement.
    assert!(alive(pid));
    // The script writes `$!` right after forking: the child may not have exec'd sleep yet.
    let until = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
        let cmdline = String::from_utf8_lossy(&cmdline).into_owned();
        if cmdline.starts_with("sleep\x00300") {
            break;
        }
        assert!(
            std::time::Instant::now() < until,
            "pid {pid} is not the daemon: {cmdline:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert_eq!(confinement(pid), ("1".to_owned(), "2".to_owned()));

    // Stop from another step (another sandbox): the signal reaches it.
    let (out, stop_records) = f.world.execute("svc.stop", args.clone()).unwrap();
    assert_eq!(out.changes, vec![service_change("active", "inactive")]);
    assert_eq!(f.state(), "inactive");
    assert!(dies(pid), "the daemon survived svc.stop");

    // Undo the stop (start again), then undo the start (stop again).
    f.undo(&stop_records);
    let st = f.status();
    assert_eq!(st["state"], "active");
    let pid2 = st["pid"].as_u64().unwrap();
    assert_ne!(pid, pid2);
    f.undo(&start_records);
    assert_eq!(f.state(), "inactive");
    assert!(dies(pid2), "the daemon survived the undo of svc.start");
}

/// A Debian-style script: `start-stop-daemon --stop --exec DAEMON` cannot recognise a daemon
/// from inside the sandbox (Landlock keeps other processes' /proc/PID/exe closed), so svc
/// stops the pid-file process itself afterwards; restart must not leave two daemons.
#[test]
fn sandboxed_start_stop_daemon_script() {
    if !Path::new("/sbin/start-stop-daemon").exists()
        && !Path::new("/usr/sbin/start-stop-daemon").exists()
    {
        eprintln!("skipped: start-stop-daemon (dpkg) is not installed");
        return;
    }
    let Some(f) = Fixture::sandboxed(Script::StartStopDaemon) else {
        return;
    };
    let daemon = f.root.join("bin").join(format!("{NAME}d"));
    let args = json!({ "name": NAME });
    assert_eq!(f.state(), "inactive");
    f.world.execute("svc.start", args.clone()).unwrap();
    let st = f.status();
    assert_eq!(st["state"], "active", "{st:?}");
    let pid = st["pid"].as_u64().unwrap();
    // start-stop-daemon writes the pid file in its forked child just before that execs the
    // daemon, so the step may end a moment before the exec.
    assert!(eventually(|| running(&daemon) == vec![pid]));

    // Restart: exactly one daemon afterwards, a new one.
    f.world.execute("svc.restart", args.clone()).unwrap();
    let pid2 = f.status()["pid"].as_u64().unwrap();
    assert_ne!(pid, pid2);
    assert!(dies(pid));
    assert!(eventually(|| running(&daemon) == vec![pid2]));

    let (out, _) = f.world.execute("svc.stop", args.clone()).unwrap();
    assert_eq!(out.changes, vec![service_change("active", "inactive")]);
    assert!(dies(pid2), "the daemon survived svc.stop");
    assert!(running(&daemon).is_empty());
    assert_eq!(f.state(), "inactive");
    let log = std::fs::read_to_string(f.root.join(format!("log/{NAME}.log"))).unwrap();
    eprintln!("script log:\n{log}");
    assert!(log.contains("stop: start-stop-daemon said"), "{log}");
}
