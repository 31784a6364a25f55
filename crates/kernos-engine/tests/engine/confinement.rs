//! A step's in-process work runs on a thread the kernel confines (issue 14 §1, §2; issue 12
//! §2): whatever a tool declared and policy allowed, it cannot read a credential store or
//! Kernos's data, an organisation cannot reach beyond its scope, nothing is written outside
//! what was declared, and a step that runs too long is stopped. Each attack asserts it failed
//! *and* that the tree is unchanged.

use std::path::Path;

use kernos_core::{FsScope, Step};
use kernos_engine::{ApproveAll, StepStatus, TxReport, TxStatus};

use crate::{Fixture, fixture, plan};

/// Runs one `t.stray` step: declares `path`, touches `actual`.
fn stray(
    f: &Fixture,
    s: &kernos_engine::Session<'_>,
    path: &str,
    actual: &Path,
    write: bool,
) -> TxReport {
    let p = plan(vec![
        Step::new("t", "stray")
            .arg("path", path)
            .arg("actual", actual.display().to_string())
            .arg("write", write),
    ]);
    f.engine
        .run(&p, None, s, &mut ApproveAll("test".into()))
        .unwrap()
}

fn failed(r: &TxReport) -> String {
    match &r.steps[0].status {
        StepStatus::Failed { error } => error.clone(),
        other => panic!("the step was not stopped: {other:?} {r:?}"),
    }
}

fn output_text(r: &TxReport) -> String {
    r.steps[0]
        .output
        .as_ref()
        .and_then(|o| o.text.clone())
        .unwrap_or_default()
}

#[test]
fn a_tool_that_reads_what_it_did_not_declare_cannot_read_credentials_or_the_journal() {
    let f = fixture();
    f.file("notes.txt", "plain");
    let key = f.file(".ssh/id_ed25519", "PRIVATE-KEY-MATERIAL");
    let s = f.session();

    // The control: an undeclared but ordinary file is readable (the step is not failing for
    // some unrelated reason).
    let ok = stray(&f, &s, "notes.txt", &f.root.join("notes.txt"), false);
    assert_eq!(ok.status, TxStatus::Committed, "{ok:?}");
    assert_eq!(output_text(&ok), "plain");

    for target in [key.clone(), f.data.join("journal.db")] {
        let r = stray(&f, &s, "notes.txt", &target, false);
        assert_eq!(r.status, TxStatus::Failed);
        let e = failed(&r);
        assert!(e.contains("permission denied"), "{}: {e}", target.display());
        assert!(!format!("{r:?}").contains("PRIVATE-KEY-MATERIAL"));
    }
    assert_eq!(
        std::fs::read_to_string(&key).unwrap(),
        "PRIVATE-KEY-MATERIAL"
    );
}

#[test]
fn a_tool_cannot_write_outside_what_it_declared() {
    let f = fixture();
    f.file("mine/a.txt", "a");
    let other = f.file("other/b.txt", "b");
    let s = f.session();
    let r = stray(&f, &s, "mine/a.txt", &other, true);
    assert_eq!(r.status, TxStatus::Failed);
    assert!(failed(&r).contains("permission denied"));
    assert_eq!(std::fs::read_to_string(&other).unwrap(), "b");
    // The declared place is writable: the same tool writing where it said it would works.
    let r = stray(&f, &s, "mine/a.txt", &f.root.join("mine/a.txt"), true);
    assert_eq!(r.status, TxStatus::Committed, "{r:?}");
}

#[test]
fn a_scoped_organisation_reaches_nothing_outside_its_scope_even_undeclared() {
    let f = fixture();
    f.file("mine/a.txt", "mine");
    let theirs = f.file("theirs/b.txt", "THEIRS-ONLY");
    let mut s = f.session();
    s.env.scope = Some(FsScope {
        read: vec![],
        write: vec![f.root.join("mine")],
    });
    s.env.vault = f.data.join("orgs/x");
    s.env.cwd = f.root.join("mine");

    let ok = stray(&f, &s, "a.txt", &f.root.join("mine/a.txt"), false);
    assert_eq!(ok.status, TxStatus::Committed, "{ok:?}");
    for write in [false, true] {
        let r = stray(&f, &s, "a.txt", &theirs, write);
        assert_eq!(r.status, TxStatus::Failed, "write={write}");
        assert!(!format!("{r:?}").contains("THEIRS-ONLY"));
    }
    assert_eq!(std::fs::read_to_string(&theirs).unwrap(), "THEIRS-ONLY");
}

#[test]
fn a_step_that_outlives_its_time_limit_is_stopped_and_what_it_did_stays_undoable() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("tree");
    let data = dir.path().join("data");
    std::fs::create_dir(&root).unwrap();
    let engine =
        crate::engine_at(&data).with_step_time_limit(std::time::Duration::from_millis(300));
    let s = crate::session_at(&root, &data);
    // 100,000 files at 2 ms each would take minutes.
    let p = plan(vec![
        Step::new("t", "slow")
            .arg("dir", "out")
            .arg("count", 100_000),
    ]);
    let r = engine
        .run(&p, None, &s, &mut ApproveAll("test".into()))
        .unwrap();
    assert_eq!(r.status, TxStatus::Failed, "{r:?}");
    let e = failed(&r);
    assert!(e.contains("time limit"), "{e}");
    assert!(
        !s.cancel.is_cancelled(),
        "only the step was stopped, not the session"
    );
    let written = std::fs::read_dir(root.join("out")).unwrap().count();
    assert!(written > 0 && written < 100_000, "{written}");
    let undo = engine
        .undo(r.tx, &s, &mut ApproveAll("test".into()))
        .unwrap();
    assert!(
        undo.failed.is_empty() && undo.conflicts.is_empty(),
        "{undo:?}"
    );
    assert!(!root.join("out").exists());
}
