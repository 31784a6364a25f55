//! Keys and checkpoints, as a specification: keys are private files or refused, a checkpoint
//! needs both an Ed25519 and an ML-DSA-44 signature by trusted keys, every failure names the
//! key and algorithm, and rotation keeps old checkpoints valid while refusing what a
//! rotated-out key signs after its overlap window.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use kernos_tlog::{
    Alg, Checkpoint, KeySet, SignedNote, TlogError, TrustedKeys, VerifierKey, verify_checkpoint,
};

const NAME: &str = "kernos.test/journal";

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn cp(size: u64) -> Checkpoint {
    Checkpoint {
        origin: NAME.into(),
        size,
        root: [size as u8; 32],
        extensions: vec![],
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o700)).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

#[test]
fn keys_are_made_private_on_first_use_and_reload_the_same() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("keys");
    let ks = KeySet::open_or_create(&dir, NAME, 1000).unwrap();
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join("active.secret")), 0o600);
    assert_eq!(mode(&dir.join("keys.json")), 0o600);
    assert_eq!(std::fs::read(dir.join("active.secret")).unwrap().len(), 64);

    let vkeys = ks.vkeys();
    assert_eq!(vkeys.len(), 2);
    let ed = VerifierKey::from_vkey(&vkeys[0]).unwrap();
    let ml = VerifierKey::from_vkey(&vkeys[1]).unwrap();
    assert_eq!((ed.alg, ed.public.len()), (Alg::Ed25519, 32));
    assert_eq!((ml.alg, ml.public.len()), (Alg::MlDsa44, 1312));
    assert!(vkeys[0].starts_with(&format!("{NAME}+")));

    let again = KeySet::open_or_create(&dir, NAME, 2000).unwrap();
    assert_eq!(
        again.public(),
        ks.public(),
        "the second use loads, it does not regenerate"
    );
    let err = KeySet::open_or_create(&dir, "other.log", 2000).unwrap_err();
    assert!(err.to_string().contains("another key directory"), "{err}");
}

#[test]
fn key_files_others_can_read_are_refused_with_the_chmod_to_run() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("keys");
    KeySet::open_or_create(&dir, NAME, 1000).unwrap();
    let secret = dir.join("active.secret");
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = KeySet::open(&dir).unwrap_err();
    assert!(
        matches!(err, TlogError::InsecurePermissions { .. }),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains(&format!("chmod 600 {}", secret.display())),
        "{err}"
    );
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o750)).unwrap();
    let err = KeySet::open(&dir).unwrap_err();
    assert!(err.to_string().contains("chmod 700"), "{err}");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    KeySet::open(&dir).unwrap();
}

#[test]
fn a_signed_checkpoint_verifies_and_says_which_keys_signed() {
    let d = tempfile::tempdir().unwrap();
    let ks = KeySet::open_or_create(d.path().join("k"), NAME, 1000).unwrap();
    let note = cp(42).sign(&ks, 1234).unwrap();
    // The note is a C2SP checkpoint: the body, a blank line, two signature lines.
    let lines: Vec<&str> = note.lines().collect();
    assert_eq!(lines[..2], [NAME, "42"]);
    assert_eq!(lines[3], "");
    assert!(lines[4].starts_with(&format!("— {NAME} ")) && lines.len() == 6);

    let v = verify_checkpoint(&note, &ks.public()).unwrap();
    assert_eq!(v.checkpoint, cp(42));
    assert_eq!(v.timestamp, 1234);
    assert_eq!((v.ed25519.alg, v.mldsa44.alg), (Alg::Ed25519, Alg::MlDsa44));
    assert!(!v.signed_by_retired_key());

    // Keys passed as vkey text (out of band) work the same.
    let trusted = TrustedKeys(
        ks.vkeys()
            .iter()
            .map(|k| VerifierKey::from_vkey(k).unwrap())
            .collect(),
    );
    verify_checkpoint(&note, &trusted).unwrap();
}

#[test]
fn each_tampering_is_reported_with_its_key_and_algorithm() {
    let d = tempfile::tempdir().unwrap();
    let ks = KeySet::open_or_create(d.path().join("k"), NAME, 1000).unwrap();
    let trusted = ks.public();
    let note = cp(42).sign(&ks, 1234).unwrap();
    let parsed = SignedNote::parse(&note).unwrap();

    // A different size in the body: the Ed25519 signature over the text fails first.
    let err = verify_checkpoint(&note.replacen("\n42\n", "\n43\n", 1), &trusted).unwrap_err();
    match &err {
        TlogError::BadSignature { alg, key, .. } => {
            assert_eq!(*alg, Alg::Ed25519);
            assert!(key.starts_with(NAME));
        }
        other => panic!("{other}"),
    }

    // A flipped byte in the ML-DSA-44 signature.
    let mut n = parsed.clone();
    n.signatures[1].sig[100] ^= 1;
    let err = verify_checkpoint(&n.to_string(), &trusted).unwrap_err();
    assert!(
        matches!(
            err,
            TlogError::BadSignature {
                alg: Alg::MlDsa44,
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains("ML-DSA-44 signature by key"),
        "{err}"
    );

    // The ML-DSA-44 timestamp is signed too.
    let mut n = parsed.clone();
    n.signatures[1].sig[7] ^= 1;
    assert!(matches!(
        verify_checkpoint(&n.to_string(), &trusted).unwrap_err(),
        TlogError::BadSignature {
            alg: Alg::MlDsa44,
            ..
        }
    ));

    // Either signature missing.
    for (drop, alg) in [(1, Alg::MlDsa44), (0, Alg::Ed25519)] {
        let mut n = parsed.clone();
        n.signatures.remove(drop);
        let err = verify_checkpoint(&n.to_string(), &trusted).unwrap_err();
        assert!(
            matches!(err, TlogError::MissingSignature { alg: a, size: 42 } if a == alg),
            "{err}"
        );
    }

    // Keys of another log: nothing is trusted, so nothing verifies.
    let other = KeySet::open_or_create(d.path().join("o"), NAME, 1000).unwrap();
    assert!(matches!(
        verify_checkpoint(&note, &other.public()).unwrap_err(),
        TlogError::MissingSignature { .. }
    ));
}

#[test]
fn signatures_by_unknown_keys_are_ignored() {
    let d = tempfile::tempdir().unwrap();
    let ks = KeySet::open_or_create(d.path().join("k"), NAME, 1000).unwrap();
    let witness = KeySet::open_or_create(d.path().join("w"), "witness.test/w1", 1000).unwrap();
    let mut n = SignedNote::parse(&cp(9).sign(&ks, 5).unwrap()).unwrap();
    let w = SignedNote::parse(
        &Checkpoint {
            origin: NAME.into(),
            ..cp(9)
        }
        .sign(&witness, 5)
        .unwrap(),
    )
    .unwrap();
    n.signatures.extend(w.signatures);
    assert_eq!(n.signatures.len(), 4);
    verify_checkpoint(&n.to_string(), &ks.public()).unwrap();
}

#[test]
fn rotation_keeps_old_checkpoints_and_refuses_a_rotated_out_key_after_the_overlap() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("k");
    let mut ks = KeySet::open_or_create(&dir, NAME, 1000).unwrap();
    let before = cp(10).sign(&ks, 1500).unwrap();
    // Someone keeps a copy of the old secret (a backup, a leak).
    copy_dir(&dir, &d.path().join("leaked"));
    let leaked = KeySet::open(d.path().join("leaked")).unwrap();

    ks.rotate(2000, 100).unwrap();
    let trusted = ks.public();
    assert_eq!(trusted.0.len(), 4, "old public keys are kept");
    assert_eq!(ks.vkeys().len(), 2);

    // Signed before the rotation: still valid, and labelled as signed by a retired key.
    let v = verify_checkpoint(&before, &trusted).unwrap();
    assert!(v.signed_by_retired_key());
    assert_eq!(v.ed25519.retired_at, Some(2000));
    assert_eq!(v.mldsa44.not_after, Some(2100));

    // New checkpoints are signed by the new keys.
    let after = cp(20).sign(&ks, 2050).unwrap();
    assert!(
        !verify_checkpoint(&after, &trusted)
            .unwrap()
            .signed_by_retired_key()
    );

    // The old key inside the overlap window: accepted, labelled.
    let overlap = cp(15).sign(&leaked, 2090).unwrap();
    assert!(
        verify_checkpoint(&overlap, &trusted)
            .unwrap()
            .signed_by_retired_key()
    );

    // The old key after the overlap window: refused as rotated out, not as a bad signature.
    let late = cp(30).sign(&leaked, 3000).unwrap();
    let err = verify_checkpoint(&late, &trusted).unwrap_err();
    match &err {
        TlogError::RotatedOutKey {
            alg,
            signed_at,
            not_after,
            ..
        } => {
            assert_eq!(*alg, Alg::MlDsa44);
            assert_eq!((*signed_at, *not_after), (3000, 2100));
        }
        other => panic!("{other}"),
    }
    assert!(err.to_string().contains("rotated-out key"), "{err}");

    // The rotated key set reloads as it was; the old secret is gone from the key directory.
    let back = KeySet::open(&dir).unwrap();
    assert_eq!(back.public(), trusted);
    let secret = std::fs::read(dir.join("active.secret")).unwrap();
    assert_ne!(
        secret,
        std::fs::read(d.path().join("leaked/active.secret")).unwrap()
    );
}

#[test]
fn a_rotation_interrupted_before_the_secret_moved_is_finished_on_open() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("k");
    let mut ks = KeySet::open_or_create(&dir, NAME, 1000).unwrap();
    let old_secret = std::fs::read(dir.join("active.secret")).unwrap();
    ks.rotate(2000, 100).unwrap();
    // Put the directory back in the state between writing keys.json and the rename.
    std::fs::rename(dir.join("active.secret"), dir.join("active.secret.new")).unwrap();
    std::fs::write(dir.join("active.secret"), &old_secret).unwrap();
    std::fs::set_permissions(
        dir.join("active.secret"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let back = KeySet::open(&dir).unwrap();
    assert_eq!(back.vkeys(), ks.vkeys());
    assert!(!dir.join("active.secret.new").exists());
}
