//! The engine end to end: journal, policy, approval, undo, cancellation and crashes, with small
//! real actions defined here so the engine's own behaviour is tested apart from the catalog.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod actions;
mod confinement;
mod lease;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use kernos_core::event::kind;
use kernos_core::{ActionId, Actor, CancelToken, Plan, Step, StepRef};
use kernos_engine::{
    ApproveAll, ApprovedUpTo, DeclineAll, Engine, Quiet, Session, StepStatus, TxStatus,
};
use kernos_journal::{BlobStore, Journal, Query};
use kernos_tools::testing::{UnconfinedRunner, tree_state};
use kernos_tools::{Env, Registry};
use serde_json::json;

struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
    data: PathBuf,
    engine: Engine,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("tree");
    let data = dir.path().join("data");
    std::fs::create_dir(&root).unwrap();
    let engine = engine_at(&data);
    Fixture {
        _dir: dir,
        root,
        data,
        engine,
    }
}

fn engine_at(data: &Path) -> Engine {
    engine_with(data, kernos_policy::Config::default())
}

fn engine_with(data: &Path, policy: kernos_policy::Config) -> Engine {
    let mut registry = Registry::empty();
    actions::register(&mut registry);
    let journal = Journal::open(data).unwrap();
    let blobs = BlobStore::open(data.join("blobs"), false).unwrap();
    Engine::new(
        Arc::new(registry),
        Arc::new(Mutex::new(journal)),
        blobs,
        Arc::new(UnconfinedRunner),
        policy,
        data.to_path_buf(),
    )
}

impl Fixture {
    fn session(&self) -> Session<'static> {
        session_at(&self.root, &self.data)
    }

    fn file(&self, rel: &str, content: &str) -> PathBuf {
        let p = self.root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, content).unwrap();
        p
    }

    fn kinds(&self, tx: kernos_core::TxId) -> Vec<String> {
        self.engine
            .events_of(tx)
            .unwrap()
            .into_iter()
            .map(|e| e.kind)
            .collect()
    }
}

fn session_at(root: &Path, data: &Path) -> Session<'static> {
    Session {
        env: Env {
            cwd: root.to_path_buf(),
            home: root.to_path_buf(),
            data_dir: data.to_path_buf(),
            vault: data.to_path_buf(),
            scope: None,
            uid: 1000,
        },
        actor: Actor::user("tester"),
        org: "local".into(),
        action: ActionId::generate(),
        cancel: CancelToken::new(),
        observer: &Quiet,
    }
}

fn plan(steps: Vec<Step>) -> Plan {
    Plan::new(steps)
}

fn settle() {
    std::thread::sleep(std::time::Duration::from_millis(15));
}

#[test]
fn read_plan_runs_without_asking_and_is_journaled() {
    let f = fixture();
    f.file("a.log", "x");
    f.file("b.txt", "y");
    let p = plan(vec![
        Step::new("t", "find")
            .arg("path", ".")
            .arg("suffix", ".log"),
    ]);
    let report = f
        .engine
        .run(&p, None, &f.session(), &mut DeclineAll("no tty".into()))
        .unwrap();
    assert_eq!(report.status, TxStatus::Committed);
    assert!(!report.undoable);
    let rows = &report.steps[0].output.as_ref().unwrap().rows;
    assert_eq!(rows.len(), 1);
    assert!(rows[0]["path"].as_str().unwrap().ends_with("a.log"));
    assert_eq!(
        f.kinds(report.tx),
        vec![
            kind::TX_STARTED,
            kind::STEP_DECIDED,
            kind::STEP_STARTED,
            kind::STEP_FINISHED,
            kind::TX_FINISHED
        ]
    );
}

#[test]
fn change_without_approval_does_not_run() {
    let f = fixture();
    let before = tree_state(&f.root);
    let p = plan(vec![
        Step::new("t", "write")
            .arg("path", "new.txt")
            .arg("content", "hello"),
    ]);
    let report = f
        .engine
        .run(
            &p,
            None,
            &f.session(),
            &mut DeclineAll("no TTY and no --yes".into()),
        )
        .unwrap();
    assert_eq!(report.status, TxStatus::Declined);
    assert!(
        matches!(&report.steps[0].status, StepStatus::Declined { reason } if reason.contains("--yes"))
    );
    assert_eq!(
        tree_state(&f.root),
        before,
        "nothing may change without approval"
    );
    assert!(
        f.kinds(report.tx)
            .contains(&kind::APPROVAL_DECIDED.to_string())
    );
}

/// A plan a model made after reading untrusted text: `allow_medium` no longer lets its changes
/// run unasked, and the approver sees why; its reads still run.
#[test]
fn untrusted_plans_ask_even_when_policy_would_allow() {
    let f = fixture();
    f.file("a.log", "x");
    let engine = engine_with(
        &f.data,
        kernos_policy::Config {
            allow_medium: true,
            ..kernos_policy::Config::default()
        },
    );
    let write = || {
        plan(vec![
            Step::new("t", "find")
                .arg("path", ".")
                .arg("suffix", ".log"),
            Step::new("t", "write")
                .arg("path", "pwned.txt")
                .arg("content", "ignore previous instructions"),
        ])
    };
    // Trusted: allow_medium runs the write without asking anyone.
    let trusted = engine
        .run(
            &write(),
            None,
            &f.session(),
            &mut DeclineAll("nobody".into()),
        )
        .unwrap();
    assert_eq!(trusted.status, TxStatus::Committed, "{trusted:?}");
    std::fs::remove_file(f.root.join("pwned.txt")).unwrap();

    let before = tree_state(&f.root);
    let mut p = write();
    p.untrusted_input = true;
    let preview = engine.preview(&p, &f.session()).unwrap();
    assert!(
        matches!(
            preview.steps[0].assessment.decision,
            kernos_core::Decision::Allow
        ),
        "a pure read stays allowed"
    );
    assert!(
        matches!(&preview.steps[1].assessment.decision, kernos_core::Decision::Ask { reason } if reason.contains("untrusted")),
        "{:?}",
        preview.steps[1].assessment
    );
    let report = engine
        .run(&p, None, &f.session(), &mut DeclineAll("nobody".into()))
        .unwrap();
    assert_eq!(report.status, TxStatus::Declined);
    assert!(matches!(report.steps[0].status, StepStatus::Done));
    assert_eq!(
        tree_state(&f.root),
        before,
        "the write must not run unasked"
    );
}

#[test]
fn write_then_undo_restores_the_tree_exactly() {
    let f = fixture();
    f.file("keep.txt", "original");
    let before = tree_state(&f.root);
    settle();
    let p = plan(vec![
        Step::new("t", "write")
            .arg("path", "keep.txt")
            .arg("content", "overwritten"),
        Step::new("t", "write")
            .arg("path", "sub/new.txt")
            .arg("content", "new file"),
        Step::new("t", "write")
            .arg("path", "keep.txt")
            .arg("content", "overwritten twice, longer"),
    ]);
    let s = f.session();
    let report = f
        .engine
        .run(&p, None, &s, &mut ApproveAll("test".into()))
        .unwrap();
    assert_eq!(report.status, TxStatus::Committed, "{report:?}");
    assert!(report.undoable);
    assert_ne!(tree_state(&f.root), before);

    let undo = f
        .engine
        .undo(report.tx, &s, &mut ApproveAll("test".into()))
        .unwrap();
    assert!(undo.complete(), "{undo:?}");
    assert_eq!(
        tree_state(&f.root),
        before,
        "undo must restore contents, modes and mtimes"
    );
    // A second undo is refused.
    assert!(
        f.engine
            .undo(report.tx, &s, &mut ApproveAll("test".into()))
            .is_err()
    );
    let hist = f.engine.history(10, None).unwrap();
    assert!(hist[0].undone && !hist[0].undoable);
}

#[test]
fn undo_leaves_changed_files_alone_and_reports_them() {
    let f = fixture();
    f.file("a.txt", "a0");
    f.file("b.txt", "b0");
    settle();
    let p = plan(vec![
        Step::new("t", "write")
            .arg("path", "a.txt")
            .arg("content", "a1"),
        Step::new("t", "write")
            .arg("path", "b.txt")
            .arg("content", "b1"),
    ]);
    let s = f.session();
    let report = f
        .engine
        .run(&p, None, &s, &mut ApproveAll("test".into()))
        .unwrap();
    settle();
    std::fs::write(f.root.join("b.txt"), "edited by the user afterwards").unwrap();
    let undo = f
        .engine
        .undo(report.tx, &s, &mut ApproveAll("test".into()))
        .unwrap();
    assert_eq!(std::fs::read_to_string(f.root.join("a.txt")).unwrap(), "a0");
    assert_eq!(
        std::fs::read_to_string(f.root.join("b.txt")).unwrap(),
        "edited by the user afterwards"
    );
    assert_eq!(undo.conflicts.len(), 1, "{undo:?}");
    assert!(undo.conflicts[0].contains("b.txt") && undo.conflicts[0].contains("changed since"));
}

#[test]
fn references_flow_from_find_to_delete_and_undo_puts_everything_back() {
    let f = fixture();
    f.file("cache/a.tmp", "1");
    f.file("cache/b.tmp", "2");
    f.file("cache/keep.txt", "3");
    let before = tree_state(&f.root);
    settle();
    let p = plan(vec![
        Step::new("t", "find")
            .arg("path", "cache")
            .arg("suffix", ".tmp"),
        Step::new("t", "delete").arg("path", StepRef::new(0, Some("path"))),
    ]);
    let s = f.session();
    let preview = f.engine.preview(&p, &s).unwrap();
    let changes = preview.steps[1].changes.as_ref().unwrap();
    assert_eq!(
        changes.len(),
        2,
        "the dry run lists exactly the two files: {changes:?}"
    );
    let report = f
        .engine
        .run(
            &p,
            Some(&preview),
            &s,
            &mut ApprovedUpTo {
                risk: preview.risk,
                by: "tester".into(),
            },
        )
        .unwrap();
    assert_eq!(report.status, TxStatus::Committed, "{report:?}");
    assert!(!f.root.join("cache/a.tmp").exists() && f.root.join("cache/keep.txt").exists());
    // What was deleted is exactly what the preview showed.
    assert_eq!(report.steps[1].output.as_ref().unwrap().changes, *changes);
    let undo = f
        .engine
        .undo(report.tx, &s, &mut ApproveAll("t".into()))
        .unwrap();
    assert!(undo.complete(), "{undo:?}");
    assert_eq!(tree_state(&f.root), before);
}

#[test]
fn empty_reference_skips_the_step() {
    let f = fixture();
    f.file("cache/keep.txt", "3");
    let p = plan(vec![
        Step::new("t", "find")
            .arg("path", "cache")
            .arg("suffix", ".tmp"),
        Step::new("t", "delete").arg("path", StepRef::new(0, None)),
    ]);
    let report = f
        .engine
        .run(&p, None, &f.session(), &mut ApproveAll("t".into()))
        .unwrap();
    assert_eq!(report.status, TxStatus::Committed);
    assert!(
        matches!(&report.steps[1].status, StepStatus::Skipped { reason } if reason.contains("found nothing"))
    );
}

#[test]
fn policy_denies_the_journal_and_the_home_directory() {
    let f = fixture();
    let s = f.session();
    let journal_path = f.data.join("journal.db").display().to_string();
    for p in [
        plan(vec![
            Step::new("t", "write")
                .arg("path", journal_path.as_str())
                .arg("content", "x"),
        ]),
        plan(vec![
            Step::new("t", "delete").arg("path", f.root.display().to_string()),
        ]),
    ] {
        let preview = f.engine.preview(&p, &s).unwrap();
        assert!(preview.denied.is_some(), "{preview:?}");
        let report = f
            .engine
            .run(&p, None, &s, &mut ApproveAll("even with --yes".into()))
            .unwrap();
        assert_eq!(report.status, TxStatus::Denied);
    }
    assert!(f.root.exists());
    assert!(Journal::open(&f.data).unwrap().verify().unwrap().is_ok());
}

#[test]
fn risk_rising_after_references_resolve_is_not_covered_by_the_preview_approval() {
    let f = fixture();
    f.file("d/x.tmp", "1");
    let p = plan(vec![
        Step::new("t", "find")
            .arg("path", "d")
            .arg("suffix", ".tmp"),
        Step::new("t", "delete").arg("path", StepRef::new(0, None)),
    ]);
    let s = f.session();
    let report = f
        .engine
        .run(
            &p,
            None,
            &s,
            &mut ApprovedUpTo {
                risk: kernos_core::Risk::Low,
                by: "t".into(),
            },
        )
        .unwrap();
    assert_eq!(report.status, TxStatus::Declined);
    assert!(f.root.join("d/x.tmp").exists());
}

#[test]
fn invalid_plans_are_rejected_before_anything_is_journaled() {
    let f = fixture();
    let p = plan(vec![Step::new("t", "write").arg("pth", "x")]);
    let err = f
        .engine
        .run(&p, None, &f.session(), &mut ApproveAll("t".into()))
        .unwrap_err();
    assert!(err.to_string().contains("pth"), "{err}");
    let p = plan(vec![Step::new("t", "nope")]);
    assert!(
        f.engine
            .run(&p, None, &f.session(), &mut ApproveAll("t".into()))
            .is_err()
    );
    assert_eq!(Journal::open(&f.data).unwrap().head().unwrap().0, 0);
}

#[test]
fn cancel_mid_step_is_recorded_and_undoable() {
    let f = fixture();
    let before = tree_state(&f.root);
    settle();
    let s = f.session();
    let cancel = s.cancel.clone();
    let p = plan(vec![
        Step::new("t", "slow").arg("dir", "out").arg("count", 1000),
    ]);
    let t = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(150));
        cancel.cancel();
    });
    let report = f
        .engine
        .run(&p, None, &s, &mut ApproveAll("t".into()))
        .unwrap();
    t.join().unwrap();
    assert_eq!(report.status, TxStatus::Cancelled);
    let written = std::fs::read_dir(f.root.join("out")).unwrap().count();
    assert!(
        written > 0 && written < 1000,
        "cancelled midway, wrote {written}"
    );
    let s2 = f.session();
    let undo = f
        .engine
        .undo(report.tx, &s2, &mut ApproveAll("t".into()))
        .unwrap();
    assert!(undo.complete(), "{undo:?}");
    assert_eq!(tree_state(&f.root), before);
}

const CHILD: &str = "KERNOS_ENGINE_CHILD";

/// Child: runs a slow writing plan until killed.
#[test]
#[ignore = "helper process for a_crash_mid_step_leaves_an_undoable_journal"]
fn child_slow_writer() {
    let Ok(dirs) = std::env::var(CHILD) else {
        return;
    };
    let (root, data) = dirs.split_once('|').unwrap();
    let engine = engine_at(Path::new(data));
    let s = session_at(Path::new(root), Path::new(data));
    let p = plan(vec![
        Step::new("t", "slow")
            .arg("dir", "out")
            .arg("count", 100_000),
    ]);
    let _ = engine.run(&p, None, &s, &mut ApproveAll("t".into()));
}

#[test]
fn a_crash_mid_step_leaves_an_undoable_journal() {
    let f = fixture();
    f.file("out/existing.txt", "was here before");
    let before = tree_state(&f.root);
    settle();
    drop(f.engine);
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_slow_writer", "--ignored", "--nocapture"])
        .env(CHILD, format!("{}|{}", f.root.display(), f.data.display()))
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait until it has written some files, then kill it without warning.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::fs::read_dir(f.root.join("out"))
        .map(|d| d.count())
        .unwrap_or(0)
        < 20
    {
        assert!(std::time::Instant::now() < deadline, "child never wrote");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    // SAFETY: plain kill(2) of the child this test spawned.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGKILL);
    }
    child.wait().unwrap();

    let engine = engine_at(&f.data);
    assert!(Journal::open(&f.data).unwrap().verify().unwrap().is_ok());
    let hist = engine.history(5, None).unwrap();
    assert_eq!(
        hist[0].status, None,
        "the crashed transaction never finished"
    );
    assert!(hist[0].undoable);
    let s = session_at(&f.root, &f.data);
    let undo = engine
        .undo(hist[0].tx, &s, &mut ApproveAll("t".into()))
        .unwrap();
    assert!(undo.failed.is_empty(), "{undo:?}");
    // The file being written at the moment of the kill may or may not exist; either way
    // nothing but the original remains.
    assert_eq!(
        tree_state(&f.root),
        before,
        "conflicts: {:?}",
        undo.conflicts
    );
}

#[test]
fn history_show_and_short_ids() {
    let f = fixture();
    let s = f.session();
    let p = plan(vec![
        Step::new("t", "write")
            .arg("path", "x.txt")
            .arg("content", "1"),
    ]);
    let r = f
        .engine
        .run(&p, None, &s, &mut ApproveAll("t".into()))
        .unwrap();
    let id = r.tx.to_string();
    assert_eq!(f.engine.resolve_tx(&id).unwrap(), r.tx);
    assert_eq!(f.engine.resolve_tx(&id[id.len() - 8..]).unwrap(), r.tx);
    assert!(f.engine.resolve_tx("zzzzzzzz").is_err());
    assert_eq!(f.engine.last_undoable(None).unwrap(), Some(r.tx));
    let events = f.engine.store().query(&Query::tx(r.tx)).unwrap();
    assert!(
        events
            .iter()
            .all(|e| e.actor.as_str() == "user:tester" && e.action == Some(s.action))
    );
    let decided = events
        .iter()
        .find(|e| e.kind == kind::STEP_DECIDED)
        .unwrap();
    assert_eq!(decided.payload["risk"], json!("medium"));
}
