//! The transparency log over real journals (SQLite in temporary directories): what an auditor
//! holding an earlier checkpoint, or a witness, catches.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::Path;

use kernos_core::{Actor, NewEvent};
use kernos_journal::Journal;
use kernos_tlog::{KeySet, verify_bundle, verify_consistency};
use kernos_tlog_journal::read::{self, CheckpointStatus};
use kernos_tlog_journal::witness::{Refusal, WitnessBook};
use kernos_tlog_journal::{Log, WitnessedLog, tlog_dir};
use serde_json::json;

const ORIGIN: &str = "test.example/kernos/journal";
const NOW: u64 = 1_760_000_000;

fn ev(i: usize, org: &str) -> NewEvent {
    NewEvent::new("step.finished", Actor::user("alice"))
        .org(org)
        .payload(json!({"i": i, "note": format!("event {i}")}))
}

/// A journal under `dir` with events `0..n` (event `changed`, if any, has another payload).
fn journal_with(dir: &Path, n: usize, changed: Option<usize>) -> Journal {
    let mut j = Journal::open(dir).unwrap();
    for i in 0..n {
        let mut e = ev(i, if i % 2 == 0 { "local" } else { "acme" });
        if Some(i) == changed {
            e = e.payload(json!({"i": i, "note": "rewritten"}));
        }
        j.append(&e).unwrap();
    }
    j
}

/// Signs a checkpoint of everything and stores it; returns its note.
fn checkpoint(log: &mut Log, j: &mut Journal, now: u64) -> String {
    log.catch_up(j).unwrap();
    let cp = log.checkpoint(now).unwrap();
    j.append(&cp.event(Actor::system())).unwrap();
    log.catch_up(j).unwrap();
    cp.note
}

fn copy_keys(from: &Path, to: &Path) {
    let (src, dst) = (tlog_dir(from).join("keys"), tlog_dir(to).join("keys"));
    kernos_journal::create_private_dir(&dst).unwrap();
    for f in ["keys.json", "active.secret"] {
        std::fs::copy(src.join(f), dst.join(f)).unwrap();
    }
}

#[test]
fn the_tree_follows_the_journal_across_restarts_and_stale_tiles_are_rebuilt() {
    let d = tempfile::tempdir().unwrap();
    let mut j = journal_with(d.path(), 300, None);
    let mut log = Log::open(d.path(), ORIGIN, &j, NOW).unwrap();
    assert_eq!(log.tree().size(), 300, "caught up on open");
    let note = checkpoint(&mut log, &mut j, NOW);
    let rebuilt = read::rebuild(&j).unwrap();
    assert_eq!(log.tree().root(), rebuilt.root());
    drop(log);
    // Reopened from the tiles: the same tree, and the stored checkpoint checks out.
    let log = Log::open(d.path(), ORIGIN, &j, NOW).unwrap();
    assert_eq!(log.tree().root(), rebuilt.root());
    let report = read::verify_checkpoints(&j, &log.keys().public(), &[note]).unwrap();
    assert!(report.is_ok(), "{report:?}");
    drop(log);
    // The newest leaf tile is damaged: the tiles are a cache, rebuilt from the journal.
    let tiles = tlog_dir(d.path()).join("tiles");
    let partial = std::fs::read_dir(tiles.join("tile/0/001.p"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut bytes = std::fs::read(&partial).unwrap();
    bytes[0] ^= 1;
    std::fs::write(&partial, bytes).unwrap();
    let log = Log::open(d.path(), ORIGIN, &j, NOW).unwrap();
    assert_eq!(log.tree().root(), rebuilt.root());
    // Another origin than the keys' is refused, naming the one to configure.
    let e = Log::open(d.path(), "other.example/log", &j, NOW).unwrap_err();
    assert!(e.to_string().contains(ORIGIN), "{e}");
}

#[test]
fn a_rewritten_history_fails_against_a_previously_published_checkpoint() {
    let real = tempfile::tempdir().unwrap();
    let mut j = journal_with(real.path(), 40, None);
    let mut log = Log::open(real.path(), ORIGIN, &j, NOW).unwrap();
    let published = checkpoint(&mut log, &mut j, NOW);
    // Someone with the keys rebuilds the journal from scratch with one event changed: a valid
    // chain, and fresh checkpoints signed by the real keys.
    let fake = tempfile::tempdir().unwrap();
    copy_keys(real.path(), fake.path());
    let mut fj = journal_with(fake.path(), 40, Some(17));
    assert!(
        fj.verify().unwrap().is_ok(),
        "the rewritten chain verifies on its own"
    );
    let mut flog = Log::open(fake.path(), ORIGIN, &fj, NOW).unwrap();
    checkpoint(&mut flog, &mut fj, NOW + 1);
    let keys = flog.keys().public();
    let own = read::verify_checkpoints(&fj, &keys, &[]).unwrap();
    assert!(own.is_ok(), "its own checkpoints match it: {own:?}");
    // The checkpoint published before the rewrite does not.
    let r = read::verify_checkpoints(&fj, &keys, &[published]).unwrap();
    assert!(!r.is_ok());
    let last = r.checkpoints.last().unwrap();
    assert_eq!(last.seq, None);
    assert!(
        matches!(last.status, CheckpointStatus::RootMismatch { .. }),
        "{last:?}"
    );
}

#[test]
fn a_truncated_log_fails_consistency_with_an_earlier_checkpoint() {
    let real = tempfile::tempdir().unwrap();
    let mut j = journal_with(real.path(), 30, None);
    let mut log = Log::open(real.path(), ORIGIN, &j, NOW).unwrap();
    let published = checkpoint(&mut log, &mut j, NOW);
    let old = read::stored_checkpoints(&j).unwrap().pop().unwrap();
    let old_root = kernos_tlog::Checkpoint::parse_body(
        &kernos_tlog::SignedNote::parse(&old.note).unwrap().text,
    )
    .unwrap()
    .root;
    // The journal is cut back to 20 events and grows again past the old size.
    let cut = tempfile::tempdir().unwrap();
    copy_keys(real.path(), cut.path());
    let mut cj = journal_with(cut.path(), 20, None);
    for i in 100..120 {
        cj.append(&ev(i, "local")).unwrap();
    }
    let mut clog = Log::open(cut.path(), ORIGIN, &cj, NOW).unwrap();
    checkpoint(&mut clog, &mut cj, NOW + 1);
    let t = clog.tree();
    let proof = t.consistency_proof(old.size, t.size()).unwrap();
    let e = verify_consistency(old.size, t.size(), &proof, &old_root, &t.root()).unwrap_err();
    assert!(e.to_string().contains("append-only"), "{e}");
    let r = read::verify_checkpoints(&cj, &clog.keys().public(), std::slice::from_ref(&published))
        .unwrap();
    assert!(!r.is_ok());
    // Cut and not grown back: the checkpoint is beyond the journal.
    let short = tempfile::tempdir().unwrap();
    let sj = journal_with(short.path(), 20, None);
    let r = read::verify_checkpoints(&sj, &log.keys().public(), &[published]).unwrap();
    assert!(
        matches!(
            r.checkpoints.last().unwrap().status,
            CheckpointStatus::BeyondJournal { journal_size: 20 }
        ),
        "{r:?}"
    );
}

#[test]
fn a_tampered_event_fails_inclusion() {
    let d = tempfile::tempdir().unwrap();
    let mut j = journal_with(d.path(), 50, None);
    let mut log = Log::open(d.path(), ORIGIN, &j, NOW).unwrap();
    let note = checkpoint(&mut log, &mut j, NOW);
    let keys = log.keys().public();
    let leaf = read::leaf_hash_of(&j, 7).unwrap();
    let p = read::prove(log.tree(), &keys, &note, 7, leaf).unwrap();
    assert_eq!((p.seq, p.index, p.size), (7, 6, 50));
    drop(j);
    // An edit in the database file, as an attacker with file access would make it (the
    // append-only guards dropped first).
    let c = rusqlite::Connection::open(d.path().join(kernos_journal::DB_FILE)).unwrap();
    c.execute_batch(
        "DROP TRIGGER events_append_only_update; DROP TRIGGER events_append_only_delete;",
    )
    .unwrap();
    c.execute(
        "UPDATE events SET payload = '{\"i\":6,\"note\":\"edited\"}' WHERE seq = 7",
        [],
    )
    .unwrap();
    drop(c);
    let j = Journal::open_read_only(d.path()).unwrap();
    let tampered = read::leaf_hash_of(&j, 7).unwrap();
    let e = read::prove(log.tree(), &keys, &note, 7, tampered).unwrap_err();
    assert!(e.to_string().contains("not included"), "{e}");
    let tree = read::rebuild(&j).unwrap();
    let e = read::prove(&tree, &keys, &note, 7, tampered).unwrap_err();
    assert!(e.to_string().contains("not included"), "{e}");
}

#[test]
fn a_checkpoint_signed_by_a_rotated_out_key_is_reported_as_such() {
    let d = tempfile::tempdir().unwrap();
    let mut j = journal_with(d.path(), 10, None);
    let mut log = Log::open(d.path(), ORIGIN, &j, NOW).unwrap();
    checkpoint(&mut log, &mut j, NOW);
    // A stale copy of the keys outlives a rotation with a one-hour overlap...
    let backup = tempfile::tempdir().unwrap();
    copy_keys(d.path(), backup.path());
    log.rotate(NOW + 10, 3600).unwrap();
    checkpoint(&mut log, &mut j, NOW + 20);
    // ...and signs a checkpoint a day later.
    let stale = KeySet::open(tlog_dir(backup.path()).join("keys")).unwrap();
    let cp = kernos_tlog::Checkpoint {
        origin: ORIGIN.into(),
        size: log.tree().size(),
        root: log.tree().root(),
        extensions: vec![],
    };
    let note = cp.sign(&stale, NOW + 86_400).unwrap();
    j.append(
        &kernos_tlog_journal::SignedCheckpoint {
            note,
            size: cp.size,
            root: cp.root,
        }
        .event(Actor::system()),
    )
    .unwrap();
    let r = read::verify_checkpoints(&j, &log.keys().public(), &[]).unwrap();
    let s: Vec<_> = r.checkpoints.iter().map(|c| &c.status).collect();
    assert_eq!(s.len(), 3);
    assert_eq!(
        *s[0],
        CheckpointStatus::Ok { retired_key: true },
        "inside the overlap"
    );
    assert_eq!(*s[1], CheckpointStatus::Ok { retired_key: false });
    match s[2] {
        CheckpointStatus::RotatedOut { detail } => {
            assert!(detail.contains("rotated-out key"), "{detail}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_export_verifies_without_the_database_and_a_tampered_copy_does_not() {
    let d = tempfile::tempdir().unwrap();
    let mut j = journal_with(d.path(), 25, None);
    let mut log = Log::open(d.path(), ORIGIN, &j, NOW).unwrap();
    checkpoint(&mut log, &mut j, NOW);
    for i in 25..60 {
        j.append(&ev(i, "local")).unwrap();
    }
    checkpoint(&mut log, &mut j, NOW + 5);
    let tree = read::load_tree(d.path(), &j).unwrap();
    let b = read::export(&j, &tree, log.keys().public(), ORIGIN, 10).unwrap();
    assert_eq!(b.checkpoints.len(), 2);
    let r = verify_bundle(&b, &log.keys().public()).unwrap();
    assert_eq!(r.seqs, (10, 61));
    let mut bad = b.clone();
    bad.events[3].payload = bad.events[3].payload.replace("event", "Event");
    assert!(verify_bundle(&bad, &log.keys().public()).is_err());
}

#[test]
fn a_witness_cosigns_growth_and_refuses_a_rollback_or_a_fork() {
    let d = tempfile::tempdir().unwrap();
    let mut j = journal_with(d.path(), 20, None);
    let mut log = Log::open(d.path(), ORIGIN, &j, NOW).unwrap();
    let logs = vec![WitnessedLog {
        origin: ORIGIN.into(),
        vkeys: log.keys().vkeys(),
    }];
    let wdir = tempfile::tempdir().unwrap();
    let wkeys = KeySet::open_or_create(wdir.path().join("k"), "witness.example/w", NOW).unwrap();
    let mut book = WitnessBook::default();
    let n1 = checkpoint(&mut log, &mut j, NOW);
    let a = book.check(&logs, &n1, 0, &[]).unwrap();
    assert!(a.grew);
    book.record(&a.origin, a.seen.clone());
    // Cosigned, and the cosignatures verify with the witness's published keys.
    let sigs = kernos_tlog::cosign(&wkeys, &n1, NOW).unwrap();
    let cosigned = kernos_tlog::add_signatures(&n1, &sigs).unwrap();
    let wk: Vec<_> = kernos_tlog::witness_keys(&wkeys)
        .iter()
        .map(|k| kernos_tlog::WitnessKey::from_vkey(&k.vkey()).unwrap())
        .collect();
    assert_eq!(
        kernos_tlog::verify_cosignatures(&cosigned, &wk)
            .unwrap()
            .len(),
        2
    );
    assert!(kernos_tlog::verify_checkpoint(&cosigned, &log.keys().public()).is_ok());
    // Growth with a consistency proof from the size it saw.
    for i in 20..30 {
        j.append(&ev(i, "local")).unwrap();
    }
    let n2 = checkpoint(&mut log, &mut j, NOW + 1);
    let proof: Vec<String> = log
        .tree()
        .consistency_proof(a.seen.size, log.last_checkpoint_size())
        .unwrap()
        .iter()
        .map(|h| kernos_tlog::b64(h))
        .collect();
    assert_eq!(
        book.check(&logs, &n2, 0, &[]),
        Err(Refusal::Stale {
            known_size: a.seen.size
        })
    );
    let b = book.check(&logs, &n2, a.seen.size, &proof).unwrap();
    book.record(&b.origin, b.seen.clone());
    // Rollback: the older checkpoint again.
    match book.check(&logs, &n1, 0, &[]) {
        Err(Refusal::Rollback { known_size, reason }) => {
            assert_eq!(known_size, b.seen.size);
            assert!(reason.contains("rollback"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    // Fork: a rewritten log, signed with the same keys, grown past what the witness saw.
    let fake = tempfile::tempdir().unwrap();
    copy_keys(d.path(), fake.path());
    let mut fj = journal_with(fake.path(), 40, Some(3));
    let mut flog = Log::open(fake.path(), ORIGIN, &fj, NOW).unwrap();
    let nf = checkpoint(&mut flog, &mut fj, NOW + 2);
    let fproof: Vec<String> = flog
        .tree()
        .consistency_proof(b.seen.size, flog.last_checkpoint_size())
        .unwrap()
        .iter()
        .map(|h| kernos_tlog::b64(h))
        .collect();
    assert!(matches!(
        book.check(&logs, &nf, b.seen.size, &fproof),
        Err(Refusal::Rollback { .. })
    ));
    // A checkpoint not signed by the configured keys (another key set of the same name).
    let other = WitnessedLog {
        origin: ORIGIN.into(),
        vkeys: KeySet::open_or_create(wdir.path().join("o"), ORIGIN, NOW)
            .unwrap()
            .vkeys(),
    };
    assert!(matches!(
        book.check(&[other], &n2, a.seen.size, &proof),
        Err(Refusal::BadSignature(_))
    ));
}

#[test]
fn a_live_log_fed_through_its_queue_ends_with_the_same_tree_as_reading_the_journal() {
    use kernos_tlog_journal::{CheckpointConfig, LiveLog};
    use std::sync::Arc;
    let d = tempfile::tempdir().unwrap();
    let mut j = Journal::open(d.path()).unwrap();
    let log = Log::open(d.path(), ORIGIN, &j, NOW).unwrap();
    let live = Arc::new(LiveLog::new(
        log,
        &CheckpointConfig {
            every_events: 0,
            every_s: 0,
            origin: None,
        },
    ));
    let feeder = {
        let live = live.clone();
        std::thread::spawn(move || live.feed())
    };
    // The writer's side: queue each committed event's leaf, as the daemon's hook does.
    for i in 0..2_000 {
        let a = j.append(&ev(i, "acme")).unwrap();
        let e = j.get(a.seq).unwrap().unwrap();
        let payload = serde_json::to_string(&e.payload).unwrap();
        live.enqueue_leaf(&kernos_tlog::EventLeaf {
            seq: e.seq,
            ts_ms: e.ts_ms,
            kind: &e.kind,
            actor: &e.actor.0,
            org: &e.org,
            action: None,
            tx: None,
            payload: payload.as_bytes(),
        });
    }
    assert!(
        live.flush(std::time::Duration::from_secs(10)),
        "the feeder caught up"
    );
    let fed = live.with(|l| (l.tree().size(), l.tree().root())).unwrap();
    // The same journal read back from its rows gives the same tree.
    let fresh = tempfile::tempdir().unwrap();
    let mut other = Log::open(fresh.path(), ORIGIN, &j, NOW).unwrap();
    other.catch_up(&j).unwrap();
    assert_eq!(fed, (other.tree().size(), other.tree().root()));
    assert_eq!(fed.0, 2_000);
    live.stop();
    feeder.join().unwrap();
    assert_eq!(live.failure(), None, "no leaf was refused");
}

#[test]
fn the_keys_can_live_outside_the_data_directory_and_are_made_private_there() {
    use std::os::unix::fs::PermissionsExt;
    let d = tempfile::tempdir().unwrap();
    let vault = tempfile::tempdir().unwrap();
    let keys_dir = vault.path().join("kernos-log-keys");
    let j = journal_with(d.path(), 10, None);
    let log = Log::open_in(d.path(), &keys_dir, ORIGIN, &j, NOW).unwrap();
    assert!(keys_dir.join("keys.json").exists(), "made where configured");
    assert!(
        !tlog_dir(d.path()).join("keys").exists(),
        "nothing in the data directory"
    );
    let mode = std::fs::metadata(&keys_dir).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
    // Provisioned keys are used as they are: a second log over them signs with the same keys.
    let again = Log::open_in(d.path(), &keys_dir, ORIGIN, &j, NOW).unwrap();
    assert_eq!(log.keys().vkeys(), again.keys().vkeys());
    // And readable-by-others keys are refused, with the chmod to run.
    std::fs::set_permissions(
        keys_dir.join("active.secret"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let err = Log::open_in(d.path(), &keys_dir, ORIGIN, &j, NOW)
        .unwrap_err()
        .to_string();
    assert!(err.contains("chmod"), "{err}");
}

#[test]
fn a_running_log_keeps_only_recent_leaves_in_memory_and_proves_old_ones_from_its_tiles() {
    let d = tempfile::tempdir().unwrap();
    let j = journal_with(d.path(), 0, None);
    let mut log = Log::open(d.path(), ORIGIN, &j, NOW).unwrap();
    let mut whole = kernos_tlog::MerkleTree::new();
    let n = kernos_tlog_journal::SPILL_EVERY * 2 + 100;
    for seq in 1..=n {
        let leaf = kernos_tlog::leaf_hash(&seq.to_be_bytes());
        log.push(seq, "step.finished", leaf).unwrap();
        whole.append(leaf);
    }
    let t = log.tree();
    assert!(
        t.level_offset(0) >= kernos_tlog_journal::SPILL_EVERY * 2 - 256,
        "full tiles written out and dropped: {}",
        t.level_offset(0)
    );
    assert!(t.level_hashes(0).len() < 1024);
    assert_eq!(t.root(), whole.root());
    for (i, size) in [(0, n), (5000, 20_000), (n - 1, n), (300, 301)] {
        assert_eq!(
            t.inclusion_proof(i, size).unwrap(),
            whole.inclusion_proof(i, size).unwrap()
        );
    }
    assert_eq!(
        t.consistency_proof(777, n).unwrap(),
        whole.consistency_proof(777, n).unwrap()
    );
    let cp = log.checkpoint(NOW).unwrap();
    assert_eq!((cp.size, cp.root), (n, whole.root()));
}
