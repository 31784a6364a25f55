//! How long things live: a read never hangs, a step dies with the `kernos` that started it,
//! and Ctrl-C stops a long copy between chunks, leaving only what undo can remove.

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::{World, text};

/// Waits for `child` at most `limit`; kills it (and fails) when it is still running.
fn wait_or_kill(child: &mut Child, limit: Duration, what: &str) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} was still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Pids of processes whose command line is exactly `argv`.
fn processes_running(argv: &[&str]) -> Vec<u32> {
    let want: Vec<u8> = argv
        .iter()
        .flat_map(|a| [a.as_bytes(), b"\0"].concat())
        .collect();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == want))
        .collect()
}

#[test]
fn a_search_in_a_blocking_kernel_file_returns_at_once() {
    let w = World::new();
    let mut child = w
        .cmd(&["--json", "search for foo in /proc/kmsg"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_or_kill(
        &mut child,
        Duration::from_secs(20),
        "a search in /proc/kmsg",
    );
    let out = child.wait_with_output().unwrap();
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(all.contains("blocks or never ends"), "{all}");
}

#[test]
fn a_steps_processes_die_with_the_kernos_that_started_them() {
    let w = World::new();
    // An odd duration, so the process is ours and nobody else's.
    let argv = ["sleep", "4711.5"];
    let mut child = w
        .cmd(&["--yes", "run sleep 4711.5"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    crate::wait_for_step(&w);
    let deadline = Instant::now() + Duration::from_secs(10);
    while processes_running(&argv).is_empty() {
        assert!(Instant::now() < deadline, "the step's sleep never ran");
        std::thread::sleep(Duration::from_millis(20));
    }
    // kill -9: no handler runs, nothing in kernos gets to clean up.
    child.kill().unwrap();
    child.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !processes_running(&argv).is_empty() {
        assert!(
            Instant::now() < deadline,
            "the step's process outlived kernos: {:?}",
            processes_running(&argv)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn ctrl_c_stops_a_directory_copy_and_undo_removes_the_part_copied() {
    let w = World::new();
    // In memory (tmpfs), sparse: 6 GiB to copy, of which only what is copied takes room.
    let shm = tempfile::tempdir_in("/dev/shm").unwrap();
    let src = shm.path().join("src");
    std::fs::create_dir(&src).unwrap();
    for name in ["a.bin", "b.bin", "c.bin"] {
        std::fs::File::create(src.join(name))
            .unwrap()
            .set_len(2 << 30)
            .unwrap();
    }
    let dst = shm.path().join("dst");
    let req = format!("copy {} to {}", src.display(), dst.display());
    let mut child = w
        .cmd(&["--yes", &req])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    crate::wait_for_step(&w);
    // Ctrl-C while bytes are being copied (the step has started: now the copy itself).
    let deadline = Instant::now() + Duration::from_secs(20);
    while !std::fs::read_dir(&dst).is_ok_and(|mut d| d.next().is_some()) {
        assert!(Instant::now() < deadline, "the copy never began");
        std::thread::sleep(Duration::from_millis(5));
    }
    let t0 = Instant::now();
    // SAFETY: kill(2) on the child this test started.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let status = wait_or_kill(&mut child, Duration::from_secs(20), "the copy");
    assert!(
        t0.elapsed() < Duration::from_secs(3),
        "Ctrl-C took {:?} to stop the copy",
        t0.elapsed()
    );
    assert_eq!(status.code(), Some(1));
    let hist: Value = serde_json::from_slice(&w.run(&["--json", "history"]).stdout).unwrap();
    assert_eq!(hist[0]["status"], "cancelled", "{hist}");
    // Whatever part was copied is recorded: undo takes it away, and nothing else.
    let undo = w.run(&["--yes", "undo"]);
    assert!(
        undo.status.success(),
        "{}{}",
        text(&undo.stdout),
        text(&undo.stderr)
    );
    assert!(!dst.exists(), "a partial copy was left behind");
    assert_eq!(std::fs::read_dir(&src).unwrap().count(), 3);
}
