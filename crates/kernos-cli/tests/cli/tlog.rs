//! `kernos journal keys | checkpoint | prove | export | verify --checkpoints`, run for real
//! on a real journal, with the bundle checked by the independent Python verifier.

use std::path::{Path, PathBuf};
use std::process::Command;

use kernos_core::{Actor, NewEvent};
use kernos_journal::Journal;

use crate::{World, text};

/// The venv with `cryptography` the kernos-tlog tests use (created on first use); `None`
/// without python3.
fn python() -> Option<PathBuf> {
    Command::new("python3").arg("--version").output().ok()?;
    let home = std::env::var_os("HOME").expect("HOME");
    let venv = Path::new(&home).join(".cache/kernos-test/tlog-py");
    let py = venv.join("bin/python");
    let ready = Command::new(&py)
        .args([
            "-c",
            "from cryptography.hazmat.primitives.asymmetric import mldsa",
        ])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ready {
        assert!(
            Command::new("python3")
                .args(["-m", "venv"])
                .arg(&venv)
                .status()
                .unwrap()
                .success()
        );
        assert!(
            Command::new(venv.join("bin/pip"))
                .args(["install", "-q", "cryptography==51.0.1"])
                .status()
                .unwrap()
                .success()
        );
    }
    Some(py)
}

fn verify_bundle(py: &Path, bundle: &Path, keys: &[&str]) -> (bool, String) {
    let mut c = Command::new(py);
    c.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/verify-bundle"))
        .arg(bundle);
    for k in keys {
        c.arg("--key").arg(k);
    }
    let o = c.output().unwrap();
    (
        o.status.success(),
        format!("{}{}", text(&o.stdout), text(&o.stderr)),
    )
}

fn append(data: &Path, n: usize) {
    let mut j = Journal::open(data).unwrap();
    for i in 0..n {
        j.append(
            &NewEvent::new("step.finished", Actor::user("auditee"))
                .payload(serde_json::json!({"i": i, "out": "ok"})),
        )
        .unwrap();
    }
}

#[test]
fn an_auditor_exports_proves_and_verifies_and_a_rotated_out_key_is_named() {
    let w = World::new();
    w.config("[journal.checkpoints]\norigin = \"cli.test/kernos/journal\"\n");
    append(&w.data, 30);
    // The public keys, out of band.
    let k = w.run(&["journal", "keys"]);
    assert!(k.status.success(), "{}", text(&k.stderr));
    let vkeys: Vec<String> = text(&k.stdout).lines().map(str::to_string).collect();
    assert_eq!(vkeys.len(), 2);
    assert!(
        vkeys
            .iter()
            .all(|v| v.starts_with("cli.test/kernos/journal+"))
    );
    // Two checkpoints with events between.
    let c = w.run(&["journal", "checkpoint"]);
    assert!(c.status.success(), "{}", text(&c.stderr));
    assert!(text(&c.stdout).starts_with("cli.test/kernos/journal\n30\n"));
    append(&w.data, 10);
    assert!(w.run(&["journal", "checkpoint"]).status.success());
    // One event proven in the newest checkpoint, and in the older one by size.
    let p = w.run(&["journal", "prove", "12"]);
    assert!(p.status.success(), "{}", text(&p.stderr));
    assert!(text(&p.stdout).contains("event 12 is leaf 11 of the checkpoint of size 41"));
    let p = w.run(&["journal", "prove", "12", "--size", "30", "--json"]);
    assert_eq!(crate::json(&p)["size"], 30);
    let p = w.run(&["journal", "prove", "35", "--size", "30"]);
    assert!(!p.status.success());
    assert!(
        text(&p.stderr).contains("not in the checkpoint of size 30"),
        "{}",
        text(&p.stderr)
    );
    // The whole log's checkpoints check out.
    let v = w.run(&["journal", "verify", "--checkpoints"]);
    assert!(v.status.success(), "{}{}", text(&v.stdout), text(&v.stderr));
    // Export, verified by the independent script; a tampered copy is rejected.
    let e = w.run(&["journal", "export", "--since", "5"]);
    assert!(e.status.success(), "{}", text(&e.stderr));
    let bundle = w.root().join("bundle.json");
    std::fs::write(&bundle, &e.stdout).unwrap();
    if let Some(py) = python() {
        let keys: Vec<&str> = vkeys.iter().map(String::as_str).collect();
        let (ok, out) = verify_bundle(&py, &bundle, &keys);
        assert!(ok, "{out}");
        assert!(out.contains("OK: 37 events (seq 5..41)"), "{out}");
        let tampered = w.root().join("tampered.json");
        let s = text(&e.stdout).replacen("\\\"out\\\":\\\"ok\\\"", "\\\"out\\\":\\\"OK\\\"", 1);
        assert_ne!(s, text(&e.stdout), "the payload text is in the bundle");
        std::fs::write(&tampered, s).unwrap();
        let (ok, out) = verify_bundle(&py, &tampered, &keys);
        assert!(!ok && out.contains("FAIL"), "{out}");
    }
    // A stale copy of the keys outlives a rotation with no overlap, and signs later.
    let keys_dir = w.data.join("tlog/keys");
    let backup = w.root().join("stale-keys");
    kernos_journal::create_private_dir(&backup).unwrap();
    for f in ["keys.json", "active.secret"] {
        std::fs::copy(keys_dir.join(f), backup.join(f)).unwrap();
    }
    let r = w.run(&["journal", "keys", "--rotate", "--overlap", "0"]);
    assert!(r.status.success(), "{}", text(&r.stderr));
    let stale = kernos_tlog::KeySet::open(&backup).unwrap();
    let mut j = Journal::open(&w.data).unwrap();
    let tree = kernos_tlog_journal::read::rebuild(&j).unwrap();
    let cp = kernos_tlog::Checkpoint {
        origin: "cli.test/kernos/journal".into(),
        size: tree.size(),
        root: tree.root(),
        extensions: vec![],
    };
    let later = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    let note = cp.sign(&stale, later).unwrap();
    j.append(
        &kernos_tlog_journal::SignedCheckpoint {
            note,
            size: cp.size,
            root: cp.root,
        }
        .event(Actor::system()),
    )
    .unwrap();
    drop(j);
    let v = w.run(&["journal", "verify", "--checkpoints"]);
    let out = text(&v.stdout);
    assert_eq!(v.status.code(), Some(1), "{out}");
    assert!(out.contains("SIGNED BY A ROTATED-OUT KEY"), "{out}");
    assert!(out.contains("FAILED: 1 of 3"), "{out}");
}

#[test]
fn a_rewritten_journal_fails_against_a_published_checkpoint() {
    let w = World::new();
    append(&w.data, 20);
    let c = w.run(&["journal", "checkpoint"]);
    assert!(c.status.success(), "{}", text(&c.stderr));
    let published = w.root().join("published.note");
    std::fs::write(&published, &c.stdout).unwrap();
    // The same keys over a journal rebuilt from scratch with one event changed.
    let keys = w.data.join("tlog/keys");
    let saved = w.root().join("keys");
    std::fs::rename(&keys, &saved).unwrap();
    std::fs::remove_dir_all(&w.data).unwrap();
    let mut j = Journal::open(&w.data).unwrap();
    for i in 0..20 {
        let out = if i == 7 { "forged" } else { "ok" };
        j.append(
            &NewEvent::new("step.finished", Actor::user("auditee"))
                .payload(serde_json::json!({"i": i, "out": out})),
        )
        .unwrap();
    }
    drop(j);
    std::fs::create_dir_all(w.data.join("tlog")).unwrap();
    std::fs::rename(&saved, &keys).unwrap();
    assert!(w.run(&["journal", "checkpoint"]).status.success());
    let own = w.run(&["journal", "verify", "--checkpoints"]);
    assert!(
        own.status.success(),
        "its own checkpoints match: {}",
        text(&own.stdout)
    );
    let v = w.run(&[
        "journal",
        "verify",
        "--checkpoints",
        "--against",
        published.to_str().unwrap(),
    ]);
    let out = text(&v.stdout);
    assert_eq!(v.status.code(), Some(1), "{out}");
    assert!(out.contains("(supplied): REWRITTEN"), "{out}");
}
