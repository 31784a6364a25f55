//! The one-shot path (`SandboxRunner::one_shot`): `kernos-sandbox exec` forks itself as the
//! step's helper instead of exec'ing a fork server. These run the real binary as a process,
//! the way a user does, and hold it to the same confinement as the library path (attacks.rs),
//! plus what is new about a forked helper: the caller's environment must not reach the
//! namespace init (which is a copy of the caller), the caller's descriptors must not reach the
//! step, and killing the caller must stop the step.
//!
//! Safety: every file case works in a temp tree the test created; the only processes killed
//! are ones this test started.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const SECRET: &str = "KERNOS-ONE-SHOT-SECRET-5f4dcc3b";

/// `kernos-sandbox exec [flags] -- sh -c script`, with a secret in the caller's environment.
fn exec(flags: &[&str], script: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kernos-sandbox"))
        .arg("exec")
        .args(flags)
        .args(["--", "/bin/sh", "-c", script])
        .env("KERNOS_TEST_SECRET", SECRET)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn runs_the_command_and_passes_its_output_code_and_input_through() {
    let o = exec(&[], "echo out; echo err >&2; exit 7");
    assert_eq!(o.status.code(), Some(7));
    assert_eq!(text(&o.stdout), "out\n");
    assert_eq!(text(&o.stderr), "err\n");

    let mut child = Command::new(env!("CARGO_BIN_EXE_kernos-sandbox"))
        .args(["exec", "--", "/bin/cat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"through the sandbox\n")
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success());
    assert_eq!(text(&o.stdout), "through the sandbox\n");

    let o = exec(&["--json"], "echo hi");
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["code"], 0);
    assert_eq!(v["stdout"], "hi\n");
    assert_eq!(v["weakened"], serde_json::json!([]));
}

#[test]
fn the_callers_environment_reaches_neither_the_command_nor_the_namespace_init() {
    let o = exec(&[], "env");
    assert!(o.status.success());
    assert!(!text(&o.stdout).contains(SECRET), "{}", text(&o.stdout));
    // The init is a fork of the caller: its /proc environ area is wiped, and off limits.
    let o = exec(&[], "cat /proc/1/environ");
    assert!(!o.status.success(), "read the init's environ");
    assert!(!text(&o.stdout).contains(SECRET));
    let o = exec(&[], "cat /proc/1/cmdline; head -c 4096 /proc/1/mem");
    assert!(!text(&o.stdout).contains(SECRET));
}

#[test]
fn the_callers_descriptors_do_not_reach_the_step() {
    // A descriptor the caller holds without close-on-exec (as an inheriting parent would pass).
    let dir = tempfile::tempdir().unwrap();
    let f = std::fs::File::create(dir.path().join("held")).unwrap();
    let fd = std::os::fd::AsRawFd::as_raw_fd(&f);
    // SAFETY (test): clear FD_CLOEXEC on our own descriptor so the spawned exec inherits it.
    unsafe { libc_fcntl_clear_cloexec(fd) };
    let o = exec(&[], "ls /proc/self/fd");
    let fds: Vec<String> = text(&o.stdout).lines().map(str::to_owned).collect();
    assert!(o.status.success());
    // 0-2 and the descriptor `ls` itself opens on the directory.
    assert!(fds.len() <= 4, "descriptors in the command: {fds:?}");
}

#[test]
fn writes_outside_declared_paths_and_hidden_paths_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ok = dir.path().join("ok");
    let no = dir.path().join("no");
    let hidden = dir.path().join("hidden");
    std::fs::create_dir(&ok).unwrap();
    std::fs::create_dir(&no).unwrap();
    std::fs::create_dir(&hidden).unwrap();
    std::fs::write(hidden.join("key"), SECRET).unwrap();
    let w = format!("--write={}", ok.display());
    let d = format!("--deny-read={}", hidden.display());
    let o = exec(&[&w, &d], &format!("echo x > {}/f", ok.display()));
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(ok.join("f").exists());
    let o = exec(&[&w, &d], &format!("echo x > {}/f", no.display()));
    assert!(!o.status.success());
    assert!(!no.join("f").exists());
    let o = exec(&[&w, &d], &format!("cat {}/key", hidden.display()));
    assert!(!o.status.success());
    assert!(!text(&o.stdout).contains(SECRET));
    // Nothing outside the writable paths, not even as root in the user namespace.
    let o = exec(&[], &format!("chmod 777 {}", no.display()));
    assert!(!o.status.success());
}

#[test]
fn no_network_no_host_processes_and_no_namespace_escape() {
    let inet = "python3 -c 'import socket; socket.socket(socket.AF_INET, socket.SOCK_STREAM)'";
    let o = exec(&[], inet);
    assert!(!o.status.success(), "an AF_INET socket without --net");
    let o = exec(&["--net"], inet);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let o = exec(&[], "ls /proc | grep -cE '^[0-9]+$'");
    let n: u32 = text(&o.stdout).trim().parse().unwrap();
    assert!(n < 10, "saw {n} processes");
    let o = exec(&[], "unshare -U true");
    assert!(!o.status.success());
}

#[test]
fn each_step_without_network_gets_an_empty_network_namespace_of_its_own() {
    // The namespace is made ahead of the clone (as root, on a helper thread): it must still be
    // empty, not the host's, and not shared with the next step.
    let netns = |o: &Output| {
        assert!(o.status.success(), "{}", text(&o.stderr));
        text(&o.stdout).trim().to_owned()
    };
    let script = "readlink /proc/self/ns/net; cat /proc/net/dev | tail -n +3 | cut -d: -f1";
    let first = netns(&exec(&[], script));
    let second = netns(&exec(&[], script));
    let host = std::fs::read_link("/proc/self/ns/net").unwrap();
    let (ns1, ifaces) = first.split_once('\n').unwrap_or((&first, ""));
    let (ns2, _) = second.split_once('\n').unwrap_or((&second, ""));
    assert_ne!(
        ns1,
        host.to_string_lossy(),
        "the step ran in the host's network namespace"
    );
    assert_ne!(ns1, ns2, "two steps shared a network namespace");
    let ifaces: Vec<&str> = ifaces.split_whitespace().collect();
    assert_eq!(
        ifaces,
        ["lo"],
        "the step's namespace has interfaces besides lo"
    );
    // Nothing can be reconfigured in it: no netlink socket to ask with.
    let netlink =
        "python3 -c 'import socket; socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)'";
    let o = exec(&[], netlink);
    assert!(!o.status.success(), "the step opened a netlink socket");
}

#[test]
fn killing_the_caller_stops_the_step_and_leaves_nothing_behind() {
    let marker = format!("kernos-one-shot-{}", std::process::id());
    let mut caller = Command::new(env!("CARGO_BIN_EXE_kernos-sandbox"))
        .args(["exec", "--", "/bin/sh", "-c"])
        .arg(format!("sleep 60; : {marker}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The caller, its forked helper, the namespace init and the sandboxed shell all carry the
    // marker on their command line.
    let deadline = Instant::now() + Duration::from_secs(10);
    while processes_with(&marker).len() < 4 {
        assert!(Instant::now() < deadline, "the step never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    caller.kill().unwrap();
    let status = caller.wait().unwrap();
    assert_eq!(status.signal(), Some(9));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !processes_with(&marker).is_empty() {
        assert!(
            Instant::now() < deadline,
            "the step outlived its caller: {:?}",
            processes_with(&marker)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Processes whose command line contains `marker`.
fn processes_with(marker: &str) -> Vec<i32> {
    let mut v = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if let Ok(c) = std::fs::read(Path::new("/proc").join(pid.to_string()).join("cmdline")) {
            if String::from_utf8_lossy(&c).contains(marker) {
                v.push(pid);
            }
        }
    }
    v
}

/// Clears FD_CLOEXEC on `fd`.
unsafe fn libc_fcntl_clear_cloexec(fd: i32) {
    // SAFETY: plain fcntl on a descriptor the caller owns.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFD);
        libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC);
    }
}
