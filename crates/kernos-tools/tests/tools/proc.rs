//! `proc.*` against processes the tests start themselves: a copy of `sleep` under a name no
//! other process on the machine can have, so a kill by name can only ever hit our own children.

use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use kernos_core::{CancelToken, Effect, EffectKind, Target};
use kernos_tools::output::Change;
use kernos_tools::testing::{UnconfinedRunner, World};
use kernos_tools::undo::MemorySink;
use kernos_tools::{Ctx, NoProgress, Recorder, ToolError};
use serde_json::json;

static SEQ: AtomicUsize = AtomicUsize::new(0);

/// A uniquely named copy of `sleep`, longer than the kernel's 15-byte command name so the
/// full-name matching is exercised too.
struct Sleeper {
    _dir: tempfile::TempDir,
    path: PathBuf,
    name: String,
}

impl Sleeper {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let name = format!(
            "kernos-sleeper-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::SeqCst)
        );
        let sleep = ["/bin/sleep", "/usr/bin/sleep"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .expect("sleep(1) is installed");
        let path = dir.path().join(&name);
        std::fs::copy(sleep, &path).unwrap();
        Sleeper {
            _dir: dir,
            path,
            name,
        }
    }

    fn spawn(&self) -> Guard {
        let child = Command::new(&self.path).arg("120").spawn().unwrap();
        // Wait until the exec is visible in /proc, so the name is the copy's, not ours.
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            let cmd = std::fs::read(format!("/proc/{}/cmdline", child.id())).unwrap_or_default();
            if String::from_utf8_lossy(&cmd).contains(&self.name) {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Guard(child)
    }
}

/// Our child; killed and reaped on drop if a test left it running.
struct Guard(Child);

impl Guard {
    fn pid(&self) -> u32 {
        self.0.id()
    }

    /// Waits for the child to end and returns the signal that ended it.
    fn wait_signal(&mut self) -> Option<i32> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(st) = self.0.try_wait().unwrap() {
                return st.signal();
            }
            assert!(
                Instant::now() < deadline,
                "child {} did not die",
                self.pid()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn alive(&mut self) -> bool {
        self.0.try_wait().unwrap().is_none()
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn my_user() -> String {
    // SAFETY: geteuid has no preconditions.
    let uid = unsafe { libc::geteuid() };
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    passwd
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.get(2) == Some(&uid.to_string().as_str())).then(|| f[0].to_owned())
        })
        .unwrap_or_else(|| uid.to_string())
}

#[test]
fn find_finds_our_child_by_part_of_its_name() {
    let s = Sleeper::new();
    let child = s.spawn();
    let w = World::new();
    let (out, _) = w
        .execute("proc.find", json!({"name": s.name.to_uppercase()}))
        .unwrap();
    assert_eq!(out.rows.len(), 1, "{:?}", out.rows);
    let r = &out.rows[0];
    assert_eq!(r["pid"], child.pid());
    assert_eq!(r["ppid"], std::process::id());
    assert_eq!(r["name"], json!(s.name));
    assert_eq!(r["user"], json!(my_user()));
    assert_eq!(r["state"], "sleeping");
    assert!(r["command"].as_str().unwrap().ends_with(" 120"));
    assert!(r["memory"].as_u64().unwrap() > 0);
    assert!(r["cpu_percent"].as_f64().unwrap() >= 0.0);
    assert!(out.summary.unwrap().contains(&child.pid().to_string()));
    let none = w
        .execute("proc.find", json!({"name": format!("{}-nobody", s.name)}))
        .unwrap()
        .0;
    assert!(none.rows.is_empty());
    assert!(w.execute("proc.find", json!({"name": " "})).is_err());
}

#[test]
fn list_sorts_filters_and_limits() {
    let s = Sleeper::new();
    let child = s.spawn();
    let w = World::new();
    let me = my_user();
    let by_pid = w
        .execute("proc.list", json!({"sort": "pid", "user": me}))
        .unwrap()
        .0;
    let pids: Vec<u64> = by_pid
        .rows
        .iter()
        .map(|r| r["pid"].as_u64().unwrap())
        .collect();
    assert!(pids.windows(2).all(|p| p[0] < p[1]));
    assert!(pids.contains(&u64::from(child.pid())));
    assert!(by_pid.rows.iter().all(|r| r["user"] == json!(me)));
    let by_mem = w.execute("proc.list", json!({"sort": "memory"})).unwrap().0;
    let mem: Vec<u64> = by_mem
        .rows
        .iter()
        .map(|r| r["memory"].as_u64().unwrap())
        .collect();
    assert!(mem.windows(2).all(|m| m[0] >= m[1]));
    let top = w.execute("proc.list", json!({"limit": 3})).unwrap().0;
    assert_eq!(top.rows.len(), 3);
    assert!(top.truncated);
    let cpu: Vec<f64> = top
        .rows
        .iter()
        .map(|r| r["cpu_percent"].as_f64().unwrap())
        .collect();
    assert!(cpu.windows(2).all(|c| c[0] >= c[1]));
    let err = w
        .execute("proc.list", json!({"user": "no-such-user-kernos"}))
        .unwrap_err();
    assert!(matches!(err, ToolError::InvalidArgs(_)), "{err}");
}

#[test]
fn kill_by_pid_sends_exactly_what_the_dry_run_said() {
    let s = Sleeper::new();
    let mut child = s.spawn();
    let w = World::new();
    let args = json!({"pid": child.pid()});
    let effects = w.effects("proc.kill", args.clone()).unwrap();
    let target = Target::Process {
        pid: child.pid(),
        name: Some(s.name.clone()),
        // SAFETY: geteuid has no preconditions.
        uid: Some(unsafe { libc::geteuid() }),
    };
    assert_eq!(effects[0].kind, EffectKind::Write);
    assert_eq!(effects[0].target, target);
    // The test world acts as uid 0: a root process is a system one, another user's is not
    // ours; either way signalling it is privileged.
    assert!(
        effects
            .iter()
            .any(|e| e.kind == EffectKind::Privileged && e.target == target)
    );
    let predicted = w.dry_run("proc.kill", args.clone()).unwrap();
    assert_eq!(
        predicted,
        vec![Change::Signal {
            pid: child.pid(),
            name: s.name.clone(),
            signal: "TERM".into()
        }]
    );
    assert!(child.alive(), "a dry run signals nothing");
    let (out, undo) = w.execute("proc.kill", args).unwrap();
    assert_eq!(out.changes, predicted);
    assert!(undo.records.is_empty(), "a signal cannot be undone");
    assert_eq!(child.wait_signal(), Some(libc::SIGTERM));
    assert_eq!(out.rows[0]["signal"], "TERM");
    assert!(out.rows[0]["result"].as_str().unwrap().starts_with("sent"));
}

#[test]
fn kill_by_name_signals_every_process_of_that_name_and_only_those() {
    let s = Sleeper::new();
    let other = Sleeper::new();
    let mut a = s.spawn();
    let mut b = s.spawn();
    let mut bystander = other.spawn();
    let w = World::new();
    let args = json!({"name": s.name, "signal": "SIGKILL"});
    let predicted = w.dry_run("proc.kill", args.clone()).unwrap();
    let mut pids = [a.pid(), b.pid()];
    pids.sort_unstable();
    assert_eq!(
        predicted,
        pids.iter()
            .map(|p| Change::Signal {
                pid: *p,
                name: s.name.clone(),
                signal: "KILL".into()
            })
            .collect::<Vec<_>>()
    );
    let (out, _) = w.execute("proc.kill", args).unwrap();
    assert_eq!(out.changes, predicted);
    assert_eq!(a.wait_signal(), Some(libc::SIGKILL));
    assert_eq!(b.wait_signal(), Some(libc::SIGKILL));
    assert!(bystander.alive());
    assert!(out.summary.unwrap().contains("SIGKILL to 2 processes"));
}

#[test]
fn execute_signals_only_the_approved_processes() {
    let s = Sleeper::new();
    let mut approved = s.spawn();
    let w = World::new();
    let args = json!({"name": s.name});
    let effects = w.effects("proc.kill", args.clone()).unwrap();
    // Another process with the same name starts after approval: it must be left alone.
    let mut late = s.spawn();
    let action = w.registry.get("proc", "kill").unwrap();
    let run = |effects: &[Effect]| {
        let cancel = CancelToken::new();
        let ctx = Ctx {
            env: &w.env,
            runner: &UnconfinedRunner,
            cancel: &cancel,
            blobs: &w.blobs,
            progress: &NoProgress,
            effects,
        };
        let mut sink = MemorySink::default();
        let mut rec = Recorder::new(&mut sink, &w.env, &w.blobs);
        action.execute(&args, &ctx, &mut rec)
    };
    let out = run(&effects).unwrap();
    assert_eq!(out.changes.len(), 1);
    assert_eq!(approved.wait_signal(), Some(libc::SIGTERM));
    assert!(
        late.alive(),
        "a process that was not approved was signalled"
    );
    assert!(out.summary.unwrap().contains("left alone"));
    // No approved targets at all: refused, nothing signalled.
    let err = run(&[]).unwrap_err();
    assert!(matches!(err, ToolError::Refused(_)), "{err}");
    assert!(late.alive());
    // An approved pid that now belongs to a different program is not signalled.
    let forged = vec![Effect {
        kind: EffectKind::Write,
        target: Target::Process {
            pid: late.pid(),
            name: Some("something-else".into()),
            uid: None,
        },
    }];
    let out = run(&forged).unwrap();
    assert!(out.changes.is_empty());
    assert!(late.alive());
}

#[test]
fn kill_mistakes_are_caught_before_anything_is_sent() {
    let s = Sleeper::new();
    let mut child = s.spawn();
    let w = World::new();
    let wrong_name = w
        .execute("proc.kill", json!({"pid": child.pid(), "name": "sshd"}))
        .unwrap_err();
    assert!(
        wrong_name.to_string().contains("not \"sshd\""),
        "{wrong_name}"
    );
    let bad_signal = w
        .effects("proc.kill", json!({"pid": child.pid(), "signal": "SIGFOO"}))
        .unwrap_err();
    assert!(matches!(bad_signal, ToolError::InvalidArgs(_)));
    let nobody = w
        .effects("proc.kill", json!({"name": format!("{}-x", s.name)}))
        .unwrap_err();
    assert!(
        nobody.to_string().contains("no running process"),
        "{nobody}"
    );
    let neither = w.effects("proc.kill", json!({})).unwrap_err();
    assert!(matches!(neither, ToolError::InvalidArgs(_)));
    let me = w
        .effects("proc.kill", json!({"pid": std::process::id()}))
        .unwrap_err();
    assert!(matches!(me, ToolError::Refused(_)));
    assert!(child.alive());
    // STOP and CONT: real signals with visible effects, and the process lives on.
    w.execute("proc.kill", json!({"pid": child.pid(), "signal": "STOP"}))
        .unwrap();
    let state = |pid: u32| {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap()
            .rsplit(") ")
            .next()
            .unwrap()
            .chars()
            .next()
            .unwrap()
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while state(child.pid()) != 'T' {
        assert!(Instant::now() < deadline, "SIGSTOP did not stop the child");
        std::thread::sleep(Duration::from_millis(10));
    }
    w.execute("proc.kill", json!({"pid": child.pid(), "signal": "cont"}))
        .unwrap();
    assert!(child.alive());
}
