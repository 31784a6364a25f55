//! One-shot requests: read, change, undo, follow-ups, `--json`, `--dry-run`, no TTY, Ctrl-C,
//! and the sandbox seen through `kernos` itself.

use serde_json::Value;

use crate::{World, json, text};

#[test]
fn a_read_runs_at_once_and_renders_a_table() {
    let w = World::new();
    w.file("logs/big.log", &"x".repeat(5000));
    w.file("logs/small.log", "x");
    let out = w.run(&["show the 2 largest files in logs"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    let first = s.lines().nth(1).unwrap();
    assert!(
        first.contains("big.log") && first.contains("4.9 KiB"),
        "{s}"
    );
    // --json gives the report with rows.
    let j = json(&w.run(&["--json", "show the 2 largest files in logs"]));
    assert_eq!(j["report"]["status"], "committed");
    let rows = j["report"]["steps"][0]["output"]["rows"]
        .as_array()
        .unwrap();
    assert_eq!(rows.len(), 2);
}

#[test]
fn without_a_tty_a_change_does_not_run() {
    let w = World::new();
    let f = w.file("old.log", "keep me");
    let out = w.run(&["delete old.log"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("--yes"), "{}", text(&out.stderr));
    assert!(f.exists(), "nothing may change without confirmation");
    assert!(
        text(&out.stdout).contains("delete"),
        "the preview is still shown"
    );
}

#[test]
fn dry_run_never_changes_anything() {
    let w = World::new();
    let f = w.file("old.log", "keep me");
    let out = w.run(&["--dry-run", "--yes", "delete old.log"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("dry run"),
        "{}",
        text(&out.stdout)
    );
    assert!(f.exists());
}

#[test]
fn change_then_undo_restores_the_tree() {
    let w = World::new();
    w.file("notes.txt", "hello");
    let before = kernos_tools::testing::tree_state(&w.cwd);
    std::thread::sleep(std::time::Duration::from_millis(20));
    let out = w.run(&[
        "--yes",
        "create a directory backups and copy notes.txt into it",
    ]);
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(w.cwd.join("backups/notes.txt")).unwrap(),
        "hello"
    );
    assert!(text(&out.stdout).contains("undo with: kernos undo"));

    let undo = w.run(&["--yes", "undo"]);
    assert!(
        undo.status.success(),
        "{}\n{}",
        text(&undo.stdout),
        text(&undo.stderr)
    );
    assert_eq!(
        kernos_tools::testing::tree_state(&w.cwd),
        before,
        "undo must restore the tree exactly"
    );
    let again = w.run(&["--yes", "undo"]);
    assert_eq!(again.status.code(), Some(1), "nothing left to undo");
}

#[test]
fn follow_ups_work_across_one_shot_calls_in_the_same_directory() {
    let w = World::new();
    w.file("cache/a.tmp", "1");
    w.file("cache/b.tmp", "2");
    w.file("cache/keep.txt", "3");
    let before = kernos_tools::testing::tree_state(&w.cwd);
    std::thread::sleep(std::time::Duration::from_millis(20));
    let find = w.run(&["find .tmp files in ./cache"]);
    assert!(find.status.success(), "{}", text(&find.stderr));
    let del = w.run(&["--yes", "delete them"]);
    assert!(
        del.status.success(),
        "{}\n{}",
        text(&del.stdout),
        text(&del.stderr)
    );
    assert!(!w.cwd.join("cache/a.tmp").exists() && w.cwd.join("cache/keep.txt").exists());
    let undo = w.run(&["--yes", "undo that"]);
    assert!(
        undo.status.success(),
        "{}\n{}",
        text(&undo.stdout),
        text(&undo.stderr)
    );
    assert_eq!(kernos_tools::testing::tree_state(&w.cwd), before);
}

#[test]
fn plan_json_has_the_documented_shape() {
    let w = World::new();
    let j = json(&w.run(&["plan", "--json", "show the 5 largest files in /var/log"]));
    assert_eq!(j["steps"][0]["tool"], "fs");
    assert_eq!(j["steps"][0]["action"], "largest");
    assert_eq!(j["steps"][0]["args"]["path"], "/var/log");
    assert_eq!(j["steps"][0]["args"]["count"], 5);
    let out = w.run(&["plan", "--json", "frobnicate the quux gently"]);
    assert_eq!(out.status.code(), Some(2));
    let j = json(&out);
    assert_eq!(j["steps"], Value::Array(vec![]));
    assert!(j["error"].as_str().is_some_and(|e| !e.is_empty()));
    assert_eq!(j["suggestions"].as_array().map(Vec::len), Some(3));
    assert!(!w.data.exists(), "planning alone writes nothing");
}

#[test]
fn not_understood_says_so_and_offers_three_things() {
    let w = World::new();
    let out = w.run(&["frobnicate the quux gently"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.lines().count() >= 4, "{err}");
    assert_eq!(err.matches("kernos \"").count(), 3, "{err}");
}

#[test]
fn a_step_cannot_write_a_path_it_did_not_declare() {
    // `sh -c '…'` hides its target from the classifier, so the step declares only its working
    // directory as writable; the sandbox must stop the write anyway.
    let w = World::new();
    let outside = w.root().join("outside");
    std::fs::create_dir(&outside).unwrap();
    let target = outside.join("escaped.txt");
    let cmd = format!("run sh -c 'touch {}'", target.display());
    let out = w.run(&["--yes", "--json", &cmd]);
    let j = json(&out);
    let writes: Vec<&Value> = j["preview"]["steps"][0]["effects"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "write")
        .collect();
    assert_eq!(writes.len(), 1, "{writes:?}");
    assert_eq!(
        writes[0]["target"]["path"],
        w.cwd.display().to_string(),
        "only the working directory is declared"
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(
        !target.exists(),
        "the sandbox let a step write outside its declared paths"
    );
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(
        all.contains("Read-only file system") || all.contains("Permission denied"),
        "{all}"
    );
    // The same command inside the working directory works.
    let ok = w.run(&["--yes", "run sh -c 'touch inside.txt'"]);
    assert!(
        ok.status.success(),
        "{}\n{}",
        text(&ok.stdout),
        text(&ok.stderr)
    );
    assert!(w.cwd.join("inside.txt").exists());
}

#[test]
fn the_journal_records_and_verifies_what_was_done() {
    let w = World::new();
    w.file("a.txt", "x");
    assert!(w.run(&["--yes", "delete a.txt"]).status.success());
    let v = w.run(&["journal", "verify"]);
    assert!(v.status.success(), "{}", text(&v.stdout));
    let hist = json(&w.run(&["--json", "history"]));
    let t = &hist.as_array().unwrap()[0];
    assert_eq!(t["status"], "committed");
    assert_eq!(t["undoable"], true);
    let show = w.run(&["show", t["tx"].as_str().unwrap()]);
    assert!(
        text(&show.stdout).contains("fs.delete"),
        "{}",
        text(&show.stdout)
    );
}

#[test]
fn ctrl_c_stops_the_step_and_records_it() {
    let w = World::new();
    let mut child = w
        .cmd(&["--yes", "run sleep 30"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the step is running (journaled), then interrupt.
    crate::wait_for_step(&w);
    let t0 = std::time::Instant::now();
    // SAFETY: kill(2) on the child this test started.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let status = child.wait().unwrap();
    assert!(
        t0.elapsed() < std::time::Duration::from_secs(10),
        "Ctrl-C did not stop the step promptly"
    );
    assert_eq!(status.code(), Some(1));
    let hist = json(&w.run(&["--json", "history"]));
    assert_eq!(hist[0]["status"], "cancelled", "{hist}");
}

#[test]
fn refused_targets_are_refused_even_with_yes() {
    let w = World::new();
    let journal = w.data.join("journal.db");
    // Create the journal first so there is something to protect.
    assert!(w.run(&["show the largest files here"]).status.success());
    for req in [
        "delete /".to_string(),
        "delete ~".to_string(),
        format!("delete {}", journal.display()),
        format!("delete {}", w.data.display()),
        "kill process 1".to_string(),
    ] {
        let out = w.run(&["--yes", &req]);
        let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
        assert_eq!(out.status.code(), Some(1), "{req}: {all}");
        assert!(all.contains("refused"), "{req} was not refused: {all}");
    }
    assert!(journal.exists() && w.home.exists());
    assert!(w.run(&["journal", "verify"]).status.success());
}

/// A word the plan does not account for is never dropped silently: `plan --json` lists it and a
/// read that runs anyway says so on stderr.
#[test]
fn words_the_plan_does_not_use_are_reported() {
    let w = crate::World::new();
    std::fs::create_dir_all(w.cwd.join("cache")).unwrap();
    let out = w.run(&["plan", "--json", "show the largest files in cache zorblax"]);
    assert!(out.status.success(), "{}", crate::text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["unused"], serde_json::json!(["zorblax"]), "{v}");
    assert_eq!(v["steps"][0]["args"]["path"], "cache", "{v}");
    let out = w.run(&["show the largest files in cache zorblax"]);
    assert!(out.status.success(), "{}", crate::text(&out.stderr));
    assert!(
        crate::text(&out.stderr).contains("does not use \u{201c}zorblax\u{201d}"),
        "{}",
        crate::text(&out.stderr)
    );
}

/// A copied or renamed `kernos` is still its own sandbox helper: steps that start a process
/// run confined, not refused for want of a helper called `kernos`.
#[test]
fn a_renamed_binary_keeps_its_sandbox() {
    let w = crate::World::new();
    let renamed = w.root().join("kos");
    std::fs::copy(env!("CARGO_BIN_EXE_kernos"), &renamed).unwrap();
    let out = w
        .program(renamed.to_str().unwrap())
        .args(["--yes", "run the command \"uname -s\""])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        crate::text(&out.stdout),
        crate::text(&out.stderr)
    );
    assert!(
        crate::text(&out.stdout).contains("Linux"),
        "{}",
        crate::text(&out.stdout)
    );
}

/// `kernos sandbox exec` end to end, in its one-shot form (the command tree is not built and
/// the helper is a fork of the CLI): output, exit code, `--json`, a global flag after `exec`,
/// a copied binary, and what the full parser still answers (help, a global flag before it).
#[test]
fn sandbox_exec_runs_one_confined_command() {
    let w = crate::World::new();
    let out = w.run(&[
        "sandbox",
        "exec",
        "--",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 4",
    ]);
    assert_eq!(out.status.code(), Some(4));
    assert_eq!(crate::text(&out.stdout), "out\n");
    assert_eq!(crate::text(&out.stderr), "err\n");

    // Confined: no writes outside --write, even under the world's own directory.
    let target = w.root().join("written");
    let script = format!("echo x > {}", target.display());
    let out = w.run(&["sandbox", "exec", "--", "sh", "-c", &script]);
    assert!(!out.status.success());
    assert!(!target.exists());
    let write = format!("--write={}", w.root().display());
    let out = w.run(&["sandbox", "exec", &write, "--", "sh", "-c", &script]);
    assert!(out.status.success(), "{}", crate::text(&out.stderr));
    assert!(target.exists());

    let data = w.root().join("elsewhere");
    let data = data.to_str().unwrap();
    for args in [
        &["sandbox", "exec", "--json", "--", "echo", "hi"][..],
        &["--json", "sandbox", "exec", "--", "echo", "hi"],
        &[
            "sandbox",
            "exec",
            "--data-dir",
            data,
            "--json",
            "--",
            "echo",
            "hi",
        ],
    ] {
        let out = w.run(args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            crate::text(&out.stderr)
        );
        let v = crate::json(&out);
        assert_eq!(v["stdout"], "hi\n", "{args:?}");
        assert_eq!(v["code"], 0, "{args:?}");
    }

    let out = w.run(&["sandbox", "exec", "--help"]);
    assert!(out.status.success());
    assert!(crate::text(&out.stdout).contains("--write"));

    let copied = w.root().join("kos");
    std::fs::copy(env!("CARGO_BIN_EXE_kernos"), &copied).unwrap();
    let out = w
        .program(copied.to_str().unwrap())
        .args(["sandbox", "exec", "--", "uname", "-s"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", crate::text(&out.stderr));
    assert_eq!(crate::text(&out.stdout), "Linux\n");
}

/// A pid that runs nowhere (above the kernel's largest possible pid) is planned as written and
/// refused by the preview, naming it, before anything is asked or signalled.
#[test]
fn a_pid_that_does_not_run_is_refused_in_the_preview_naming_it() {
    let w = crate::World::new();
    let pid = "4194305";
    let req = format!("kill process {pid}");
    let out = w.run(&["--dry-run", &req]);
    let all = format!("{}{}", crate::text(&out.stdout), crate::text(&out.stderr));
    assert!(
        all.contains(&format!("no process with pid {pid} is running")),
        "{all}"
    );
    let out = w.run(&["--yes", &req]);
    let all = format!("{}{}", crate::text(&out.stdout), crate::text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(all.contains(&format!("pid {pid}")), "{all}");
}
