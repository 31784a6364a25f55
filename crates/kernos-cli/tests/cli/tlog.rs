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
    // The rotation is in the journal, with the keys it retired and the new ones.
    let rotated = j
        .query(&kernos_journal::Query::kind(
            kernos_tlog_journal::KEYS_ROTATED_KIND,
        ))
        .unwrap();
    assert_eq!(rotated.len(), 1, "one rotation journaled");
    assert_eq!(
        rotated[0].payload["retired"],
        serde_json::json!(stale.vkeys())
    );
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

/// `note` with one byte of the witness's Ed25519 cosignature flipped (its signature is a
/// timestamp and 64 bytes).
fn tamper_cosignature(note: &str, witness: &str) -> String {
    let mut n = kernos_tlog::SignedNote::parse(note).unwrap();
    let s = n
        .signatures
        .iter_mut()
        .find(|s| s.name == witness && s.sig.len() == 8 + 64)
        .expect("an Ed25519 cosignature");
    *s.sig.last_mut().unwrap() ^= 1;
    n.to_string()
}

fn verify_bundle_witness(
    py: &Path,
    bundle: &Path,
    keys: &[String],
    witness: &[String],
) -> (bool, String) {
    let mut c = Command::new(py);
    c.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/verify-bundle"))
        .arg(bundle);
    for k in keys {
        c.arg("--key").arg(k);
    }
    for k in witness {
        c.arg("--witness").arg(k);
    }
    let o = c.output().unwrap();
    (
        o.status.success(),
        format!("{}{}", text(&o.stdout), text(&o.stderr)),
    )
}

fn store_cosigned(data: &Path, note: &str, size: u64) {
    let mut j = Journal::open(data).unwrap();
    j.append(
        &NewEvent::new(kernos_tlog_journal::COSIGNED_KIND, Actor::system()).payload(
            serde_json::json!({"witness": "http://witness.test", "size": size, "note": note}),
        ),
    )
    .unwrap();
}

#[test]
fn an_auditor_checks_witness_cosignatures_with_the_cli_and_the_independent_script() {
    const WITNESS: &str = "witness.test/kernos/witness";
    let w = World::new();
    w.config("[journal.checkpoints]\norigin = \"cli.test/kernos/journal\"\n");
    append(&w.data, 10);
    let k = w.run(&["journal", "keys"]);
    let vkeys: Vec<String> = text(&k.stdout).lines().map(str::to_string).collect();
    assert!(w.run(&["journal", "checkpoint"]).status.success());
    // A witness cosigns the checkpoint with its keys, as a witness daemon answers; another
    // witness of the same name has keys the auditor was not given.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let witness_keys = |dir: &str| -> (kernos_tlog::KeySet, Vec<String>) {
        let ks = kernos_tlog::KeySet::open_or_create(w.root().join(dir), WITNESS, now).unwrap();
        let v = kernos_tlog::witness_keys(&ks)
            .iter()
            .map(|k| k.vkey())
            .collect();
        (ks, v)
    };
    let (wks, good) = witness_keys("witness-keys");
    let (_, stranger) = witness_keys("stranger-keys");
    let j = Journal::open_read_only(&w.data).unwrap();
    let cp = kernos_tlog_journal::read::stored_checkpoints(&j)
        .unwrap()
        .pop()
        .unwrap();
    drop(j);
    let sigs = kernos_tlog::cosign(&wks, &cp.note, now).unwrap();
    let cosigned = kernos_tlog::add_signatures(&cp.note, &sigs).unwrap();
    store_cosigned(&w.data, &cosigned, cp.size);
    // Another checkpoint, so the export's events carry the cosigned one.
    append(&w.data, 3);
    assert!(w.run(&["journal", "checkpoint"]).status.success());
    let verify = |witness: &[String]| {
        let mut args = vec!["journal", "verify", "--checkpoints"];
        for k in witness {
            args.extend(["--witness", k.as_str()]);
        }
        let o = w.run(&args);
        (
            o.status.code(),
            format!("{}{}", text(&o.stdout), text(&o.stderr)),
        )
    };

    // The CLI: the right keys pass, a stranger's keys do not.
    let (code, out) = verify(&good);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains(&format!(
            "cosigned size       10 (event 12): ok: cosigned by {WITNESS}"
        )),
        "{out}"
    );
    let (code, out) = verify(&stranger);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("NOT COSIGNED: no cosignature by the given witness key(s)"),
        "{out}"
    );

    // The independent script, on an export: the same three cases.
    let e = w.run(&["journal", "export"]);
    assert!(e.status.success(), "{}", text(&e.stderr));
    let bundle = w.root().join("bundle.json");
    std::fs::write(&bundle, &e.stdout).unwrap();
    let py = python();
    if let Some(py) = &py {
        let (ok, out) = verify_bundle_witness(py, &bundle, &vkeys, &good);
        assert!(ok, "{out}");
        assert!(
            out.contains(&format!(
                "1 checkpoint(s) cosigned by witness {WITNESS} (sizes 10)"
            )),
            "{out}"
        );
        let (ok, out) = verify_bundle_witness(py, &bundle, &vkeys, &stranger);
        assert!(!ok && out.contains("is not cosigned"), "{out}");
        let mut b: serde_json::Value = serde_json::from_slice(&e.stdout).unwrap();
        let ev = b["events"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .find(|e| e["kind"] == kernos_tlog_journal::COSIGNED_KIND)
            .unwrap();
        let mut payload: serde_json::Value =
            serde_json::from_str(ev["payload"].as_str().unwrap()).unwrap();
        payload["note"] = tamper_cosignature(payload["note"].as_str().unwrap(), WITNESS).into();
        ev["payload"] = payload.to_string().into();
        let tampered = w.root().join("tampered.json");
        std::fs::write(&tampered, b.to_string()).unwrap();
        let (ok, out) = verify_bundle_witness(py, &tampered, &vkeys, &good);
        assert!(!ok, "{out}");
        assert!(
            out.contains("cosignature/v1 cosignature by") && out.contains("does not verify"),
            "{out}"
        );
    }

    // A tampered cosignature stored in the journal fails the CLI, named per checkpoint.
    store_cosigned(&w.data, &tamper_cosignature(&cosigned, WITNESS), cp.size);
    let (code, out) = verify(&good);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("(event 12): ok"), "{out}");
    assert!(out.contains("BAD COSIGNATURE"), "{out}");
    assert!(
        out.contains("FAILED: 1 of 2 cosigned checkpoint(s)"),
        "{out}"
    );
}
