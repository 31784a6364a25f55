//! `shell.run`: real commands in a temporary directory, and classification reflected in the
//! declared effects.

use std::time::Instant;

use kernos_core::{EffectKind, Target};
use kernos_tools::Change;
use kernos_tools::testing::World;
use serde_json::json;

#[test]
fn echo_is_a_read_with_output() {
    let w = World::new();
    let args = json!({ "command": "echo hello" });
    let e = w.effects("shell.run", args.clone()).unwrap();
    assert!(e.iter().all(|e| e.kind == EffectKind::Read), "{e:?}");
    assert!(w.dry_run("shell.run", args.clone()).unwrap().is_empty());
    let (out, records) = w.execute("shell.run", args).unwrap();
    assert_eq!(out.text.as_deref(), Some("hello\n"));
    assert_eq!(out.rows[0]["exit_code"], 0);
    assert_eq!(out.rows[0]["stdout_bytes"], 6);
    assert!(out.changes.is_empty() && records.is_empty());
}

#[test]
fn ls_and_cwd() {
    let w = World::new();
    w.file("a.txt", b"a");
    w.file("sub/b.txt", b"b");
    let (out, _) = w.execute("shell.run", json!({ "command": "ls" })).unwrap();
    assert_eq!(out.text.as_deref(), Some("a.txt\nsub\n"));
    let (out, _) = w
        .execute("shell.run", json!({ "command": "ls; pwd", "cwd": "sub" }))
        .unwrap();
    let expect = format!("b.txt\n{}\n", w.root.join("sub").display());
    assert_eq!(out.text.as_deref(), Some(expect.as_str()));
    let e = w
        .execute("shell.run", json!({ "command": "ls", "cwd": "nope" }))
        .unwrap_err();
    assert!(e.to_string().contains("does not exist"), "{e}");
}

#[test]
fn a_failing_command_reports_status_and_what_it_said() {
    let w = World::new();
    let e = w
        .execute(
            "shell.run",
            json!({ "command": "echo partial; echo 'no such thing' >&2; exit 3" }),
        )
        .unwrap_err();
    let m = e.to_string();
    assert!(m.contains("exited with status 3"), "{m}");
    assert!(m.contains("no such thing") && m.contains("partial"), "{m}");
}

#[test]
fn stderr_is_marked_and_stdin_is_empty() {
    let w = World::new();
    let (out, _) = w
        .execute("shell.run", json!({ "command": "echo out; echo err >&2" }))
        .unwrap();
    assert_eq!(out.text.as_deref(), Some("out\n[stderr]\nerr\n"));
    // No stdin: `cat` ends at once instead of waiting.
    let t = Instant::now();
    let (out, _) = w.execute("shell.run", json!({ "command": "cat" })).unwrap();
    assert_eq!(out.text.as_deref(), Some(""));
    assert!(t.elapsed().as_secs() < 5);
}

#[test]
fn timeout_stops_the_command() {
    let w = World::new();
    let t = Instant::now();
    // `exec`: the test runner kills only its direct child (the engine's sandbox kills the
    // whole process group), so the sleep must be that child.
    let e = w
        .execute(
            "shell.run",
            json!({ "command": "exec sleep 30", "timeout": 1 }),
        )
        .unwrap_err();
    assert!(t.elapsed().as_secs() < 10, "took {:?}", t.elapsed());
    assert!(e.to_string().contains("limit"), "{e}");
    assert!(
        w.execute("shell.run", json!({ "command": "true", "timeout": 0 }))
            .is_err()
    );
}

#[test]
fn a_write_declares_exec_and_writes_and_its_dry_run_is_exact() {
    let w = World::new();
    let args = json!({ "command": "echo hi > out.txt" });
    let e = w.effects("shell.run", args.clone()).unwrap();
    let line = Target::Command {
        line: "echo hi > out.txt".into(),
    };
    assert!(
        e.iter()
            .any(|e| e.kind == EffectKind::Exec && e.target == line)
    );
    assert!(e.iter().any(|e| e.kind == EffectKind::Write
        && e.target
            == Target::Path {
                path: w.root.clone(),
                recursive: true
            }));
    assert!(e.iter().any(|e| e.kind == EffectKind::Write
        && e.target
            == Target::Path {
                path: w.root.join("out.txt"),
                recursive: false
            }));
    let predicted = w.dry_run("shell.run", args.clone()).unwrap();
    assert_eq!(
        predicted,
        vec![Change::Exec {
            command: "echo hi > out.txt".into()
        }]
    );
    let (out, records) = w.execute("shell.run", args).unwrap();
    assert_eq!(out.changes, predicted);
    assert!(
        records.is_empty(),
        "shell.run is irreversible: no undo records"
    );
    assert_eq!(
        std::fs::read_to_string(w.root.join("out.txt")).unwrap(),
        "hi\n"
    );
}

#[test]
fn classification_shows_in_effects() {
    let w = World::new();
    let e = w
        .effects("shell.run", json!({ "command": "sudo ls /root" }))
        .unwrap();
    assert!(e.iter().any(|e| e.kind == EffectKind::Privileged));
    let e = w
        .effects(
            "shell.run",
            json!({ "command": "curl -s https://example.com/x" }),
        )
        .unwrap();
    assert!(e.iter().any(|e| e.kind == EffectKind::Network
        && e.target
            == Target::Host {
                host: "example.com".into(),
                port: None
            }));
    let e = w
        .effects(
            "shell.run",
            json!({ "command": "grep -r TODO . | wc -l 2>/dev/null" }),
        )
        .unwrap();
    assert!(e.iter().all(|e| e.kind == EffectKind::Read));
    let e = w
        .effects("shell.run", json!({ "command": "ls $(rm -rf x)" }))
        .unwrap();
    assert!(e.iter().any(|e| e.kind == EffectKind::Exec));
    assert!(w.effects("shell.run", json!({ "command": "  " })).is_err());
    let c = kernos_tools::shell::classify("echo 'unbalanced");
    assert!(c.unknown && !c.read_only);
}
