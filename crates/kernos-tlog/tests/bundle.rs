//! Export bundles end to end, as a specification: what Rust writes, Rust and the independent
//! Python verifier (`scripts/verify-bundle`) both accept; every tampering is rejected by both;
//! a rewritten or truncated history cannot be made to match a checkpoint published earlier.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::path::{Path, PathBuf};
use std::process::Command;

use kernos_tlog::{
    Bundle, BundleEvent, Checkpoint, KeySet, MerkleTree, SignedNote, TlogError, TrustedKeys,
    verify_bundle, verify_checkpoint, verify_consistency, verify_inclusion,
};

const ORIGIN: &str = "kernos.test/host/journal";

/// Journal-like events: optional fields present and absent, non-ASCII and escaped payloads.
fn events(n: u64) -> Vec<BundleEvent> {
    (1..=n)
        .map(|seq| BundleEvent {
            seq,
            ts_ms: 1_760_000_000_000 + seq as i64 * 7,
            kind: ["action.finished", "step.finished", "plan.created"][seq as usize % 3].into(),
            actor: if seq % 5 == 0 {
                "agent:büro".into()
            } else {
                "user:alice".into()
            },
            org: "local".into(),
            action: (seq % 2 == 0).then(|| format!("a-{seq:04}")),
            tx: (seq % 3 == 0).then(String::new),
            payload: format!(r#"{{"i":{seq},"text":"line\nnext \"q\" é ✓","n":null}}"#),
        })
        .collect()
}

fn tree_of(evs: &[BundleEvent]) -> MerkleTree {
    let mut t = MerkleTree::new();
    for e in evs {
        t.append(e.leaf().leaf_hash());
    }
    t
}

fn checkpoint(t: &MerkleTree, size: u64, keys: &KeySet, ts: u64) -> String {
    Checkpoint {
        origin: ORIGIN.into(),
        size,
        root: t.root_at(size).unwrap(),
        extensions: vec![],
    }
    .sign(keys, ts)
    .unwrap()
}

struct Log {
    _dir: tempfile::TempDir,
    keys: KeySet,
    events: Vec<BundleEvent>,
    tree: MerkleTree,
    checkpoints: Vec<String>,
}

/// 300 events, checkpoints at 100, 256 and 300, with a key rotation after the second.
fn log() -> Log {
    let dir = tempfile::tempdir().unwrap();
    let mut keys = KeySet::open_or_create(dir.path().join("keys"), ORIGIN, 1_000).unwrap();
    let events = events(300);
    let tree = tree_of(&events);
    let mut checkpoints = vec![
        checkpoint(&tree, 100, &keys, 1_100),
        checkpoint(&tree, 256, &keys, 1_200),
    ];
    keys.rotate(1_300, 3_600).unwrap();
    checkpoints.push(checkpoint(&tree, 300, &keys, 1_400));
    Log {
        _dir: dir,
        keys,
        events,
        tree,
        checkpoints,
    }
}

fn bundle(l: &Log, events: std::ops::Range<usize>) -> Bundle {
    Bundle::build(
        ORIGIN,
        l.keys.public(),
        l.events[events].to_vec(),
        l.checkpoints.clone(),
        &l.tree,
    )
    .unwrap()
}

#[test]
fn a_bundle_verifies_and_round_trips_through_json() {
    let l = log();
    let b = bundle(&l, 0..300);
    assert!(
        b.range_proof.hashes.is_empty(),
        "the whole log needs no range proof"
    );
    let r = verify_bundle(&b, &l.keys.public()).unwrap();
    assert_eq!((r.events, r.seqs), (300, (1, 300)));
    assert_eq!(r.checkpoints.len(), 3);
    assert!(r.checkpoints[0].signed_by_retired_key() && !r.checkpoints[2].signed_by_retired_key());
    assert!(
        r.to_string().starts_with("OK: 300 events (seq 1..300)"),
        "{r}"
    );
    let back = Bundle::from_json(&b.to_json().unwrap()).unwrap();
    assert_eq!(back, b);

    // A stretch in the middle of the log, tied in by a range proof.
    let part = bundle(&l, 120..200);
    assert!(!part.range_proof.hashes.is_empty());
    let r = verify_bundle(&part, &l.keys.public()).unwrap();
    assert_eq!(r.seqs, (121, 200));
}

/// One tampered copy of a bundle and what it changes.
struct Variant {
    name: &'static str,
    /// What the Rust verifier's error says.
    expect: &'static str,
    bundle: Bundle,
}

fn resign_free_note(note: &str, f: impl FnOnce(&mut SignedNote)) -> String {
    let mut n = SignedNote::parse(note).unwrap();
    f(&mut n);
    n.to_string()
}

fn tampered(l: &Log) -> Vec<Variant> {
    let whole = bundle(l, 0..300);
    let part = bundle(l, 120..200);
    let mut out = Vec::new();
    let mut v = |name, expect, f: &dyn Fn(&mut Bundle), base: &Bundle| {
        let mut b = base.clone();
        f(&mut b);
        out.push(Variant {
            name,
            expect,
            bundle: b,
        });
    };
    v(
        "event payload byte",
        "leaves 0..300 are not the ones",
        &|b| b.events[41].payload = b.events[41].payload.replacen(r#""i""#, r#""j""#, 1),
        &whole,
    );
    v(
        "event field (actor)",
        "leaves 0..300 are not the ones",
        &|b| b.events[7].actor.push('x'),
        &whole,
    );
    v(
        "checkpoint root",
        "the Ed25519 signature by key kernos.test/host/journal+",
        &|b| {
            let root = SignedNote::parse(&b.checkpoints[2])
                .unwrap()
                .text
                .lines()
                .nth(2)
                .unwrap()
                .to_string();
            let mut other = root.clone().into_bytes();
            other[0] = if other[0] == b'A' { b'B' } else { b'A' };
            b.checkpoints[2] =
                b.checkpoints[2].replacen(&root, std::str::from_utf8(&other).unwrap(), 1);
        },
        &whole,
    );
    v(
        "Ed25519 signature",
        "the Ed25519 signature by key",
        &|b| {
            b.checkpoints[1] =
                resign_free_note(&b.checkpoints[1], |n| n.signatures[0].sig[10] ^= 1);
        },
        &whole,
    );
    v(
        "ML-DSA-44 signature",
        "the ML-DSA-44 signature by key",
        &|b| {
            b.checkpoints[2] =
                resign_free_note(&b.checkpoints[2], |n| n.signatures[1].sig[500] ^= 1);
        },
        &whole,
    );
    v(
        "consistency proof hash",
        "not an append-only extension of the tree of size 100",
        &|b| b.consistency[0].hashes[0][3] ^= 1,
        &whole,
    );
    v(
        "range proof hash",
        "leaves 120..200 are not the ones",
        &|b| b.range_proof.hashes[0][3] ^= 1,
        &part,
    );
    v(
        "dropped event",
        "event seq 151 is missing",
        &|b| {
            b.events.remove(150);
        },
        &whole,
    );
    v(
        "dropped last event",
        "leaves 120..199 are not the ones",
        &|b| {
            b.events.pop();
            b.range_proof.end -= 1;
        },
        &part,
    );
    v(
        "dropped checkpoint",
        "one consistency proof per pair",
        &|b| {
            b.checkpoints.remove(1);
        },
        &whole,
    );
    out
}

#[test]
fn every_tampered_bundle_is_rejected() {
    let l = log();
    for t in tampered(&l) {
        match verify_bundle(&t.bundle, &l.keys.public()) {
            Ok(_) => panic!("a bundle with a tampered {} verified", t.name),
            Err(e) => assert!(e.to_string().contains(t.expect), "{}: {e}", t.name),
        }
    }
}

#[test]
fn a_rewritten_history_fails_against_a_checkpoint_published_before() {
    let l = log();
    let published = l.checkpoints[2].clone(); // size 300
    let mut forged = l.events.clone();
    forged[9].payload = r#"{"i":10,"text":"nothing happened"}"#.into();
    let forged_tree = tree_of(&forged);
    assert_eq!(forged_tree.size(), 300, "same size, different event");

    // The forger cannot re-sign (no key), so they offer the old checkpoint with the new events.
    let b = Bundle::build(
        ORIGIN,
        l.keys.public(),
        forged.clone(),
        vec![published.clone()],
        &forged_tree,
    )
    .unwrap();
    assert!(matches!(
        verify_bundle(&b, &l.keys.public()),
        Err(TlogError::Range { .. })
    ));

    // Even holding the key, a new checkpoint over the forged tree is not consistent with the
    // published one.
    let v = verify_checkpoint(&published, &l.keys.public()).unwrap();
    let proof = forged_tree.consistency_proof(256, 300).unwrap();
    let forged_root = forged_tree.root_at(300).unwrap();
    let old_256 = l.tree.root_at(256).unwrap();
    assert!(verify_consistency(256, 300, &proof, &old_256, &forged_root).is_err());
    assert_ne!(forged_root, v.checkpoint.root);
}

#[test]
fn a_truncated_log_fails_consistency_with_what_was_published() {
    let l = log();
    // The log is cut back to 250 events and grows again with other events up to 300.
    let mut regrown = l.events[..250].to_vec();
    regrown.extend(events(300).into_iter().skip(250).map(|mut e| {
        e.kind = "replaced".into();
        e
    }));
    let t2 = tree_of(&regrown);
    let published_256 = l.tree.root_at(256).unwrap();
    let proof = t2.consistency_proof(256, 300).unwrap();
    let err = verify_consistency(256, 300, &proof, &published_256, &t2.root_at(300).unwrap())
        .unwrap_err();
    assert!(err.to_string().contains("truncated"), "{err}");
    // A log simply cut short cannot prove the bigger published size at all.
    let short = tree_of(&l.events[..250]);
    assert!(short.consistency_proof(256, 250).is_err());
}

#[test]
fn a_tampered_event_fails_inclusion() {
    let l = log();
    let root = l.tree.root_at(300).unwrap();
    let proof = l.tree.inclusion_proof(41, 300).unwrap();
    verify_inclusion(&l.events[41].leaf().leaf_hash(), 41, 300, &proof, &root).unwrap();
    let mut e = l.events[41].clone();
    e.payload.push(' ');
    let err = verify_inclusion(&e.leaf().leaf_hash(), 41, 300, &proof, &root).unwrap_err();
    assert!(
        matches!(
            err,
            TlogError::Inclusion {
                index: 41,
                size: 300
            }
        ),
        "{err}"
    );
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/verify-bundle")
}

/// The venv with `cryptography`, created on first use; `None` when there is no python3.
fn python() -> Option<PathBuf> {
    if Command::new("python3").arg("--version").output().is_err() {
        return None;
    }
    let home = std::env::var_os("HOME").expect("HOME");
    let venv = Path::new(&home).join(".cache/kernos-test/tlog-py");
    let py = venv.join("bin/python");
    let ready = |py: &Path| {
        Command::new(py)
            .args([
                "-c",
                "from cryptography.hazmat.primitives.asymmetric import mldsa",
            ])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !ready(&py) {
        let ok = Command::new("python3")
            .arg("-m")
            .arg("venv")
            .arg(&venv)
            .status()
            .unwrap();
        assert!(ok.success(), "python3 -m venv {}", venv.display());
        let ok = Command::new(venv.join("bin/pip"))
            .args(["install", "-q", "cryptography==51.0.1"])
            .status()
            .unwrap();
        assert!(
            ok.success(),
            "pip install cryptography==51.0.1 into {}",
            venv.display()
        );
    }
    Some(py)
}

fn run_python(py: &Path, bundle: &Bundle, keys: &[String]) -> (bool, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bundle.json");
    std::fs::write(&path, bundle.to_json().unwrap()).unwrap();
    let mut cmd = Command::new(py);
    cmd.arg(script()).arg(&path);
    for k in keys {
        cmd.arg("--key").arg(k);
    }
    let o = cmd.output().unwrap();
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// The keys as an operator hands them out of band: `vkey[@not_after]` for every generation.
fn cli_keys(keys: &TrustedKeys) -> Vec<String> {
    keys.0
        .iter()
        .map(|k| match k.not_after {
            Some(t) => format!("{}@{t}", k.vkey()),
            None => k.vkey(),
        })
        .collect()
}

#[test]
fn the_python_verifier_accepts_what_rust_writes_and_rejects_every_tampering() {
    let Some(py) = python() else {
        eprintln!("SKIPPED: python3 is not installed, so the independent verifier was not run");
        return;
    };
    let l = log();
    let keys = cli_keys(&l.keys.public());

    for b in [
        bundle(&l, 0..300),
        bundle(&l, 120..200),
        bundle(&l, 299..300),
    ] {
        let (ok, out, err) = run_python(&py, &b, &keys);
        assert!(ok, "python rejected a good bundle: {err}");
        let rust = verify_bundle(&b, &l.keys.public()).unwrap().to_string();
        assert_eq!(out.trim(), rust, "both verifiers print the same summary");
        assert_eq!(out.lines().count(), 1);
        assert!(!err.contains("WARNING"), "{err}");
    }

    // The ML-DSA-44 key Kernos derives from its stored seed ξ is the one FIPS 204 (as Python's
    // cryptography implements it) derives from the same seed.
    let secret = std::fs::read(l._dir.path().join("keys/active.secret")).unwrap();
    let o = Command::new(&py)
        .args([
            "-c",
            "import sys,base64; from cryptography.hazmat.primitives.asymmetric import mldsa; \
             k = mldsa.MLDSA44PrivateKey.from_seed_bytes(bytes.fromhex(sys.argv[1])); \
             print(base64.b64encode(bytes([6]) + k.public_key().public_bytes_raw()).decode())",
            &secret[32..]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>(),
        ])
        .output()
        .unwrap();
    let derived = String::from_utf8(o.stdout).unwrap();
    assert!(l.keys.vkeys()[1].ends_with(derived.trim()), "{derived}");

    // Without --key it trusts the bundle's keys, loudly.
    let (ok, _, err) = run_python(&py, &bundle(&l, 0..300), &[]);
    assert!(ok && err.contains("WARNING: no --key given"), "{err}");

    for t in tampered(&l) {
        assert!(
            verify_bundle(&t.bundle, &l.keys.public()).is_err(),
            "rust accepted {}",
            t.name
        );
        let (ok, _, err) = run_python(&py, &t.bundle, &keys);
        assert!(!ok, "python accepted a bundle with a tampered {}", t.name);
        assert!(err.starts_with("FAIL: "), "{}: {err}", t.name);
    }

    // Only the new keys given: the checkpoints signed before the rotation have no trusted
    // signature, and python says so.
    let (ok, _, err) = run_python(&py, &bundle(&l, 0..300), &l.keys.vkeys());
    assert!(
        !ok && err.contains("no ML-DSA-44 signature by a trusted key"),
        "{err}"
    );

    // The old key's end of validity moved before the old checkpoints: rotated out.
    let mut early = keys.clone();
    for k in early.iter_mut().filter(|k| k.contains('@')) {
        *k = format!("{}@1150", k.split('@').next().unwrap());
    }
    let (ok, _, err) = run_python(&py, &bundle(&l, 0..300), &early);
    assert!(!ok && err.contains("rotated-out key"), "{err}");
}
