//! Behaviour of the journal as a whole: crash durability, tamper detection, blob atomicity,
//! several writers at once. Child processes are this test binary re-run with an ignored test
//! selected, so everything is real processes killed for real.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use kernos_core::{ActionId, Actor, NewEvent, TxId};
use kernos_journal::{BlobId, BlobStore, Journal, Query};
use rusqlite::Connection;
use serde_json::json;

const CHILD_DIR: &str = "KERNOS_TEST_CHILD_DIR";

/// Re-runs this test binary, selecting one ignored helper test.
fn spawn_child(test: &str, dir: &Path) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            test,
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DIR, dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn child_dir() -> Option<PathBuf> {
    std::env::var_os(CHILD_DIR).map(PathBuf::from)
}

fn sigkill(child: &mut Child) {
    // SIGKILL, not a polite stop: the writer gets no chance to finish anything.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGKILL);
    }
    let status = child.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        status.signal(),
        Some(libc::SIGKILL),
        "child was killed, not finished: {status:?}"
    );
}

/// Child: appends forever, printing `ack <seq> <i>` after each append returns.
#[test]
#[ignore = "helper process for crash_mid_stream_keeps_every_acknowledged_event"]
fn child_append_forever() {
    let Some(dir) = child_dir() else { return };
    let mut j = Journal::open(&dir).unwrap();
    let tx = TxId::generate();
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    for i in 0u64.. {
        let a = if i % 10 == 9 {
            // Mix in batches so both paths are killed mid-flight.
            let evs: Vec<_> = (0..5)
                .map(|k| {
                    NewEvent::new("crash.batch", Actor::system())
                        .tx(tx)
                        .payload(json!({"i": i, "k": k}))
                })
                .collect();
            let v = j.append_batch(&evs).unwrap();
            v[4]
        } else {
            j.append(
                &NewEvent::new("crash.single", Actor::system())
                    .tx(tx)
                    .payload(json!({"i": i})),
            )
            .unwrap()
        };
        writeln!(out, "ack {} {}", a.seq, i).unwrap();
        out.flush().unwrap();
    }
}

#[test]
fn crash_mid_stream_keeps_every_acknowledged_event() {
    let d = tempfile::tempdir().unwrap();
    let mut child = spawn_child("child_append_forever", d.path());
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut acked: Vec<(u64, u64)> = Vec::new();
    while acked.len() < 400 {
        let line = lines.next().expect("child stopped early").unwrap();
        // Skip the test harness's own chatter.
        if !line.starts_with("ack ") {
            continue;
        }
        let mut p = line
            .split_whitespace()
            .skip(1)
            .map(|x| x.parse::<u64>().unwrap());
        acked.push((p.next().unwrap(), p.next().unwrap()));
    }
    sigkill(&mut child);

    let j = Journal::open(d.path()).unwrap();
    let report = j.verify().unwrap();
    assert!(report.is_ok(), "chain broken after crash: {report:?}");
    let (head, _) = j.head().unwrap();
    let (last_acked, _) = *acked.last().unwrap();
    assert!(
        head >= last_acked,
        "head {head} lost acknowledged event {last_acked}"
    );
    for (seq, i) in &acked {
        let e = j
            .get(*seq)
            .unwrap()
            .unwrap_or_else(|| panic!("acknowledged event {seq} missing"));
        assert_eq!(
            e.payload["i"],
            json!(i),
            "event {seq} has the wrong content"
        );
    }
    // The journal stays writable after recovery and the chain continues.
    let mut j = j;
    let a = j
        .append(&NewEvent::new("after.crash", Actor::system()))
        .unwrap();
    assert_eq!(a.seq, head + 1);
    assert!(j.verify().unwrap().is_ok());
}

/// Builds a journal with `n` events and returns its directory.
fn journal_with(n: u64) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let mut j = Journal::open(d.path()).unwrap();
    let evs: Vec<_> = (1..=n)
        .map(|i| {
            NewEvent::new("t.e", Actor::user("alice"))
                .action(ActionId::generate())
                .payload(json!({"i": i, "text": format!("event number {i}")}))
        })
        .collect();
    j.append_batch(&evs).unwrap();
    assert!(j.verify().unwrap().is_ok());
    d
}

/// A raw connection with the append-only guards dropped, as an attacker with file access would.
fn tamper(dir: &Path, sql: &str) {
    let c = Connection::open(dir.join("journal.db")).unwrap();
    c.execute_batch(
        "DROP TRIGGER events_append_only_update; DROP TRIGGER events_append_only_delete;",
    )
    .unwrap();
    c.execute_batch(sql).unwrap();
}

fn first_bad(dir: &Path) -> (u64, String) {
    let r = Journal::open(dir).unwrap().verify().unwrap();
    let t = r.first_bad.expect("tampering went unnoticed");
    (t.seq, t.problem)
}

#[test]
fn tamper_edit_is_caught_at_the_edited_row() {
    let d = journal_with(100);
    tamper(
        d.path(),
        r#"UPDATE events SET payload = '{"i":42,"text":"changed"}' WHERE seq = 42"#,
    );
    assert_eq!(first_bad(d.path()).0, 42);
}

#[test]
fn tamper_edit_of_metadata_is_caught() {
    let d = journal_with(50);
    tamper(
        d.path(),
        "UPDATE events SET actor = 'user:mallory' WHERE seq = 7",
    );
    assert_eq!(first_bad(d.path()).0, 7);
    let d = journal_with(50);
    tamper(
        d.path(),
        "UPDATE events SET ts_ms = ts_ms + 1 WHERE seq = 9",
    );
    assert_eq!(first_bad(d.path()).0, 9);
}

#[test]
fn tamper_delete_in_the_middle_is_caught() {
    let d = journal_with(100);
    tamper(d.path(), "DELETE FROM events WHERE seq = 60");
    let (seq, problem) = first_bad(d.path());
    assert_eq!(seq, 60);
    assert!(problem.contains("missing"), "{problem}");
}

#[test]
fn tamper_delete_at_the_end_is_caught() {
    let d = journal_with(100);
    tamper(d.path(), "DELETE FROM events WHERE seq > 97");
    let (seq, problem) = first_bad(d.path());
    assert_eq!(seq, 98);
    assert!(problem.contains("removed from the end"), "{problem}");
}

#[test]
fn tamper_delete_and_renumber_is_caught() {
    // Deleting a row and shifting the later ones down so the numbers look consecutive.
    let d = journal_with(100);
    tamper(
        d.path(),
        "DELETE FROM events WHERE seq = 30; UPDATE events SET seq = seq - 1 WHERE seq > 30;",
    );
    assert_eq!(first_bad(d.path()).0, 30);
}

#[test]
fn tamper_insert_is_caught() {
    // Make room at 51 by shifting everything up, then forge a row with a correctly chained hash
    // for its own position: the row after it no longer chains.
    let d = journal_with(100);
    let (prev_hash,): (Vec<u8>,) = {
        let c = Connection::open(d.path().join("journal.db")).unwrap();
        c.query_row("SELECT hash FROM events WHERE seq = 50", [], |r| {
            Ok((r.get(0)?,))
        })
        .unwrap()
    };
    let prev: [u8; 32] = prev_hash.try_into().unwrap();
    let payload = br#"{"forged":true}"#;
    let forged = kernos_journal::chain::hash_row(
        &prev,
        &kernos_journal::chain::RowRef {
            seq: 51,
            ts_ms: 1,
            kind: "t.e",
            actor: "user:mallory",
            org: "local",
            action: None,
            tx: None,
            payload,
        },
    );
    let hex: String = forged.iter().map(|b| format!("{b:02x}")).collect();
    tamper(
        d.path(),
        &format!(
            "UPDATE events SET seq = -seq WHERE seq >= 51; UPDATE events SET seq = 1 - seq WHERE seq < 0;
             INSERT INTO events (seq, ts_ms, kind, actor, org, action, tx, payload, hash)
             VALUES (51, 1, 't.e', 'user:mallory', 'local', NULL, NULL, '{{\"forged\":true}}', x'{hex}');"
        ),
    );
    let (seq, _) = first_bad(d.path());
    assert_eq!(seq, 52, "the forged row chains, the displaced one does not");
}

#[test]
fn tamper_insert_at_the_end_is_caught() {
    let d = journal_with(10);
    tamper(
        d.path(),
        "INSERT INTO events (seq, ts_ms, kind, actor, org, payload, hash) VALUES (11, 1, 'x', 'a', 'local', 'null', x'00')",
    );
    assert_eq!(first_bad(d.path()).0, 11);
}

#[test]
fn tamper_reorder_is_caught() {
    let d = journal_with(100);
    tamper(
        d.path(),
        "UPDATE events SET seq = -1 WHERE seq = 20; UPDATE events SET seq = 20 WHERE seq = 21; UPDATE events SET seq = 21 WHERE seq = -1;",
    );
    assert_eq!(first_bad(d.path()).0, 20);
}

#[test]
fn tamper_hash_rewrite_without_head_is_caught() {
    // The recorded head must match the newest row; changing it alone is noticed too.
    let d = journal_with(5);
    tamper(d.path(), "UPDATE chain_head SET hash = zeroblob(32)");
    let (seq, problem) = first_bad(d.path());
    assert_eq!(seq, 5);
    assert!(problem.contains("head"), "{problem}");
}

/// Verifying a journal that is being written: what is appended during the walk is neither
/// walked nor taken for rows added behind the head, so a live, intact chain always verifies.
#[test]
fn verify_during_appends_sees_one_consistent_chain() {
    let d = journal_with(50);
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (dir, done) = (d.path().to_path_buf(), done.clone());
        std::thread::spawn(move || {
            let mut j = Journal::open(&dir).unwrap();
            let mut n = 0;
            while !done.load(std::sync::atomic::Ordering::Acquire) && n < 20_000 {
                j.append(&NewEvent::new("t.live", Actor::user("w")).payload(json!({"n": n})))
                    .unwrap();
                n += 1;
            }
            n
        })
    };
    let r = Journal::open_read_only(d.path()).unwrap();
    let mut walks = 0;
    let until = std::time::Instant::now() + std::time::Duration::from_secs(2);
    while std::time::Instant::now() < until {
        let report = r.verify().unwrap();
        assert!(report.is_ok(), "{report:?}");
        assert_eq!(report.checked, report.head_seq);
        walks += 1;
    }
    done.store(true, std::sync::atomic::Ordering::Release);
    let appended = writer.join().unwrap();
    assert!(
        walks > 1 && appended > 0,
        "{walks} walks, {appended} appends"
    );
    assert!(r.verify().unwrap().is_ok());
}

#[test]
fn reads_by_every_model_after_reopen() {
    let d = tempfile::tempdir().unwrap();
    let (a, t) = (ActionId::generate(), TxId::generate());
    {
        let mut j = Journal::open(d.path()).unwrap();
        j.append(&NewEvent::new("action.submitted", Actor::user("bob")).action(a))
            .unwrap();
        j.append(
            &NewEvent::new("step.started", Actor::user("bob"))
                .action(a)
                .tx(t),
        )
        .unwrap();
        j.append(
            &NewEvent::new("step.finished", Actor::user("bob"))
                .action(a)
                .tx(t),
        )
        .unwrap();
        j.append(&NewEvent::new("other", Actor::user("eve")))
            .unwrap();
    }
    let j = Journal::open_read_only(d.path()).unwrap();
    assert_eq!(j.query(&Query::tx(t)).unwrap().len(), 2);
    assert_eq!(j.query(&Query::action(a)).unwrap().len(), 3);
    assert_eq!(j.query(&Query::actor("user:eve")).unwrap()[0].seq, 4);
    let e = j.query(&Query::kind("step.finished")).unwrap();
    assert_eq!((e[0].action, e[0].tx), (Some(a), Some(t)));
}

#[test]
fn closing_keeps_the_wal_files_emptied_and_everything_in_the_database() {
    let d = journal_with(50);
    let (wal, shm) = (
        d.path().join("journal.db-wal"),
        d.path().join("journal.db-shm"),
    );
    // Closed: the WAL is kept (the next command need not re-create it), but empty: all 50
    // events were checkpointed into the database file itself.
    assert_eq!(std::fs::metadata(&wal).unwrap().len(), 0);
    assert!(shm.exists());
    let raw = Connection::open_with_flags(
        d.path().join("journal.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let n: i64 = raw
        .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 50);
    drop(raw);
    // Reopened for writing and closed again: the chain continues and verifies.
    {
        let mut j = Journal::open(d.path()).unwrap();
        j.append(&NewEvent::new("t.after", Actor::user("alice")))
            .unwrap();
    }
    assert_eq!(std::fs::metadata(&wal).unwrap().len(), 0);
    let j = Journal::open_read_only(d.path()).unwrap();
    assert!(j.verify().unwrap().is_ok());
    assert_eq!(j.query(&Query::kind("t.after")).unwrap()[0].seq, 51);
}

/// Child: appends 500 events tagged with its name.
#[test]
#[ignore = "helper process for two_processes_append_to_one_chain"]
fn child_append_500() {
    let Some(dir) = child_dir() else { return };
    let me = std::process::id();
    let mut j = Journal::open(&dir).unwrap();
    for i in 0..500 {
        j.append(&NewEvent::new("multi", Actor::system()).payload(json!({"pid": me, "i": i})))
            .unwrap();
    }
}

#[test]
fn two_processes_append_to_one_chain() {
    let d = tempfile::tempdir().unwrap();
    Journal::open(d.path()).unwrap();
    let mut a = spawn_child("child_append_500", d.path());
    let mut b = spawn_child("child_append_500", d.path());
    assert!(a.wait().unwrap().success());
    assert!(b.wait().unwrap().success());
    let j = Journal::open(d.path()).unwrap();
    let r = j.verify().unwrap();
    assert!(r.is_ok(), "{r:?}");
    assert_eq!(r.checked, 1000);
    for pid in [a.id(), b.id()] {
        let mine: Vec<i64> = j
            .query(&Query::kind("multi"))
            .unwrap()
            .iter()
            .filter(|e| e.payload["pid"] == json!(pid))
            .map(|e| e.payload["i"].as_i64().unwrap())
            .collect();
        assert_eq!(
            mine,
            (0..500).collect::<Vec<_>>(),
            "process {pid} lost or reordered events"
        );
    }
}

/// A reader that yields a fixed pattern forever, announcing when it has started.
struct Endless {
    n: u64,
}

impl Read for Endless {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.n == 1 {
            println!("started");
        }
        self.n += 1;
        buf.fill((self.n % 251) as u8);
        Ok(buf.len())
    }
}

/// Child: writes a blob that never ends.
#[test]
#[ignore = "helper process for blob_write_killed_midway_leaves_no_blob"]
fn child_endless_blob() {
    let Some(dir) = child_dir() else { return };
    let s = BlobStore::open(dir.join("blobs"), false).unwrap();
    s.put(b"complete blob").unwrap();
    let _ = s.put_reader(Endless { n: 0 });
}

#[test]
fn blob_write_killed_midway_leaves_no_blob() {
    let d = tempfile::tempdir().unwrap();
    let mut child = spawn_child("child_endless_blob", d.path());
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while !line.contains("started") {
        line.clear();
        assert!(
            out.read_line(&mut line).unwrap() > 0,
            "child ended before writing"
        );
    }
    std::thread::sleep(std::time::Duration::from_millis(50));
    sigkill(&mut child);

    let store = BlobStore::open(d.path().join("blobs"), false).unwrap();
    // Every file under a blob name is complete and matches its name.
    let mut names = 0;
    for shard in std::fs::read_dir(store.root()).unwrap().flatten() {
        if shard.file_name() == "tmp" {
            continue;
        }
        for f in std::fs::read_dir(shard.path()).unwrap().flatten() {
            let id: BlobId = f.file_name().to_str().unwrap().parse().unwrap();
            assert_eq!(store.get(&id).unwrap(), b"complete blob");
            names += 1;
        }
    }
    assert_eq!(names, 1, "only the finished blob has a real name");
    // The partial write sits in tmp/ and is cleaned up.
    let tmp = store.root().join("tmp");
    let partial = std::fs::read_dir(&tmp).unwrap().count();
    assert_eq!(partial, 1, "the interrupted write left its temporary");
    assert_eq!(store.clean_temp(std::time::Duration::ZERO).unwrap(), 1);
    assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 0);
}
