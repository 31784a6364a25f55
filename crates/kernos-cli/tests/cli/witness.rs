//! Two real `kernos serve` processes on loopback: a log that pushes every checkpoint to a
//! witness over HTTP, and the witness that cosigns it — and refuses the log once it is rolled
//! back to an older copy of its data directory, and again once that copy outgrows what it saw.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use kernos_journal::{Journal, Query};
use kernos_tlog::{Alg, WitnessKey};
use serde_json::{Value, json};

use crate::daemon::{Daemon, new_key};
use crate::{World, text};

const ORIGIN: &str = "log.test/kernos/journal";
const KEY_VAR: &str = "KERNOS_TEST_WITNESS_KEY";

/// The payloads of every event of `kind` in the journal of `data`, oldest first.
fn events(data: &Path, kind: &str) -> Vec<Value> {
    let j = Journal::open_read_only(data).unwrap();
    j.query(&Query::kind(kind))
        .unwrap()
        .into_iter()
        .map(|e| e.payload)
        .collect()
}

/// Waits until the journal of `data` holds `n` events of `kind`; their payloads.
fn wait_for(data: &Path, kind: &str, n: usize) -> Vec<Value> {
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let got = events(data, kind);
        if got.len() >= n {
            return got;
        }
        assert!(
            Instant::now() < until,
            "{n} {kind} event(s) expected, got {got:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until the journal of `data` holds a `log.cosigned` event for a checkpoint of a size
/// `ok` accepts; its payload.
fn wait_cosigned(data: &Path, ok: impl Fn(u64) -> bool) -> Value {
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let got = events(data, "log.cosigned");
        if let Some(c) = got.iter().find(|c| c["size"].as_u64().is_some_and(&ok)) {
            return c.clone();
        }
        assert!(
            Instant::now() < until,
            "no such cosigned checkpoint: {got:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `kernos journal keys` lines: the log's vkeys, and the witness's (`witness …`).
fn keys(w: &World) -> (Vec<String>, Vec<String>) {
    let out = w.run(&["journal", "keys"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let (wit, log): (Vec<String>, Vec<String>) = text(&out.stdout)
        .lines()
        .map(str::to_string)
        .partition(|l| l.starts_with("witness "));
    let wit = wit
        .iter()
        .map(|l| l.trim_start_matches("witness ").to_string())
        .collect();
    (log, wit)
}

/// `kernos journal checkpoint` (through the daemon): the size signed.
fn checkpoint(w: &World) -> u64 {
    let out = w.run(&["journal", "checkpoint", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    crate::json(&out)["size"].as_u64().unwrap()
}

/// A copy of a stopped daemon's data directory, modes kept (the keys must stay private).
fn copy_dir(from: &Path, to: &Path) {
    let ok = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(ok.success());
}

/// Checks a `log.cosigned` note: the log's own two signatures with its keys, and one
/// Ed25519 `cosignature/v1` and one ML-DSA-44 cosignature by the witness's keys.
fn assert_cosigned(note: &str, log_vkeys: &[String], witness: &[WitnessKey]) {
    let trusted =
        kernos_tlog_journal::trusted_from_vkeys(log_vkeys).expect("the log's vkeys parse");
    kernos_tlog::verify_checkpoint(note, &trusted).expect("the log's signatures verify");
    let ok = kernos_tlog::verify_cosignatures(note, witness).expect("the cosignatures verify");
    let mut algs: Vec<Alg> = ok.iter().map(|c| c.key.alg).collect();
    algs.sort_by_key(|a| format!("{a:?}"));
    assert_eq!(algs, vec![Alg::Ed25519, Alg::MlDsa44], "{note}");
}

#[test]
fn a_log_daemon_gets_each_checkpoint_cosigned_by_a_witness_daemon_which_refuses_its_rollback_and_fork()
 {
    // The log's keys exist before anything runs: they go to the witness out of band.
    let log = World::new();
    let log_cfg = "[journal.checkpoints]\norigin = \"log.test/kernos/journal\"\nevery_events = 4\nevery_s = 0\n";
    log.config(log_cfg);
    let (log_vkeys, _) = keys(&log);
    assert_eq!(log_vkeys.len(), 2);

    // The witness: another daemon, its own home and data, witnessing that origin.
    let wit = World::new();
    let quoted = |v: &[String]| {
        v.iter()
            .map(|k| format!("{k:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    wit.config(&format!(
        "[witness]\nname = \"witness.test/kernos/witness\"\n[[witness.logs]]\norigin = \"{ORIGIN}\"\nvkeys = [{}]\n",
        quoted(&log_vkeys)
    ));
    let mut wd = Daemon::start(&wit, &[]);
    let push_key = new_key(&wit, "acme", "operator");
    let (_, witness_vkeys) = keys(&wit);
    assert_eq!(witness_vkeys.len(), 2, "{witness_vkeys:?}");
    let witness: Vec<WitnessKey> = witness_vkeys
        .iter()
        .map(|k| WitnessKey::from_vkey(k).unwrap())
        .collect();

    // The log, pushing to the witness with the witness's operator key.
    log.config(&format!(
        "{log_cfg}[journal.witness]\nurl = \"http://{}\"\nkey_env = \"{KEY_VAR}\"\nvkeys = [{}]\n",
        wd.addr,
        quoted(&witness_vkeys)
    ));
    let start_log = || Daemon::start_env(&log, &[], &[(KEY_VAR, push_key.as_str())]);
    let ld = start_log();

    // On demand: the checkpoint comes back cosigned, stored in the log's journal.
    let first = checkpoint(&log);
    let c = wait_cosigned(&log.data, |s| s == first);
    assert_cosigned(c["note"].as_str().unwrap(), &log_vkeys, &witness);

    // By count: four new events make the checkpoint thread sign and push one.
    for _ in 0..4 {
        new_key(&log, "acme", "viewer");
    }
    let c = wait_cosigned(&log.data, |s| s > first);
    let second = c["size"].as_u64().unwrap();
    assert_cosigned(c["note"].as_str().unwrap(), &log_vkeys, &witness);
    let seen: Vec<u64> = events(&wit.data, "witness.checkpoint")
        .iter()
        .map(|e| e["size"].as_u64().unwrap())
        .collect();
    assert!(
        seen.contains(&first) && seen.contains(&second),
        "the witness journals each larger tree: {seen:?}"
    );

    // A copy of the log as it is now; then it grows, and the witness sees the larger tree.
    ld.stop();
    let snapshot = log.root().join("snapshot");
    copy_dir(&log.data, &snapshot);
    let ld = start_log();
    for _ in 0..6 {
        new_key(&log, "acme", "viewer");
    }
    let newest = checkpoint(&log);
    wait_cosigned(&log.data, |s| s == newest);
    // What the witness saw survives its restart (it is in its journal).
    wd.restart(&wit);

    // The log's data directory is put back to the copy: a truncated log.
    ld.stop();
    std::fs::remove_dir_all(&log.data).unwrap();
    copy_dir(&snapshot, &log.data);
    let ld = start_log();
    let rolled_back = checkpoint(&log);
    assert!(rolled_back < newest, "{rolled_back} < {newest}");
    // The log reports the refusal in its journal; no cosignature is stored for it.
    let reported = wait_for(&log.data, "log.witness_refused", 1);
    let r = reported
        .iter()
        .find(|r| r["size"] == rolled_back)
        .unwrap_or_else(|| panic!("{reported:?}"));
    assert_eq!(r["status"], 409, "{r}");
    assert_eq!(r["rollback"], true, "{r}");
    assert_eq!(r["known_size"], newest, "{r}");
    assert!(
        events(&log.data, "log.cosigned")
            .iter()
            .all(|c| c["size"] != rolled_back)
    );
    // The witness journaled it, with the offending checkpoint as evidence.
    let refused = wait_for(&wit.data, "witness.refused", 1);
    assert_eq!(refused[0]["known_size"], newest, "{refused:?}");
    assert!(
        refused[0]["reason"].as_str().unwrap().contains("rollback"),
        "{refused:?}"
    );
    // And it answers the same to anyone who asks again: 409, rollback.
    let note = events(&log.data, "log.checkpoint").last().unwrap()["note"]
        .as_str()
        .unwrap()
        .to_string();
    let r = wd.http(
        "POST",
        "/v1/log/witness",
        Some(&push_key),
        Some(json!({"checkpoint": note, "old_size": newest, "consistency": []})),
    );
    assert_eq!(r.status, 409, "{}", text(&r.body));
    assert_eq!(r.json()["rollback"], true);

    // The restored log keeps running until it is larger than what the witness saw: now it is
    // a fork. The witness first asks for a proof from its own size, then refuses that proof.
    let head = || {
        Journal::open_read_only(&log.data)
            .unwrap()
            .head()
            .unwrap()
            .0
    };
    while head() <= newest {
        new_key(&log, "acme", "viewer");
    }
    let forked = checkpoint(&log);
    assert!(forked > newest, "{forked} > {newest}");
    let reported = wait_for(&log.data, "log.witness_refused", 2);
    let r = reported
        .iter()
        .find(|r| r["size"] == forked)
        .unwrap_or_else(|| panic!("{reported:?}"));
    assert_eq!(
        (r["status"].as_u64(), r["rollback"].as_bool()),
        (Some(409), Some(true)),
        "{r}"
    );
    let detail = r["detail"].as_str().unwrap();
    assert!(
        detail.contains(&format!(
            "the tree of size {forked} is not an append-only extension of the tree of size {newest}"
        )),
        "{detail}"
    );
    assert!(
        events(&wit.data, "witness.checkpoint")
            .iter()
            .all(|e| e["size"].as_u64().unwrap() <= newest),
        "the witness never took the forked tree"
    );
    ld.stop();
}

#[test]
fn keys_rotate_through_a_running_daemon_and_the_old_checkpoints_still_verify() {
    let w = World::new();
    w.config("[journal.checkpoints]\norigin = \"log.test/kernos/journal\"\nevery_events = 0\nevery_s = 0\n");
    let d = Daemon::start(&w, &[]);
    let (old, _) = keys(&w);
    checkpoint(&w);
    let r = w.run(&["journal", "keys", "--rotate", "--overlap", "3600"]);
    assert!(r.status.success(), "{}", text(&r.stderr));
    assert!(
        text(&r.stderr).contains("rotated (by the daemon)"),
        "{}",
        text(&r.stderr)
    );
    let new: Vec<String> = text(&r.stdout).lines().map(str::to_string).collect();
    assert_eq!(new.len(), 2);
    assert!(new.iter().all(|k| !old.contains(k)), "{new:?} vs {old:?}");
    assert_eq!(keys(&w).0, new, "the daemon signs with the new keys now");
    // The rotation is journaled, by the host operator who asked.
    let rotated = events(&w.data, "log.keys_rotated");
    assert_eq!(rotated.len(), 1);
    assert_eq!(rotated[0]["retired"], json!(old));
    assert_eq!(rotated[0]["vkeys"], json!(new));
    assert_eq!(
        rotated[0]["not_after"].as_u64().unwrap() - rotated[0]["retired_at"].as_u64().unwrap(),
        3600
    );
    // The next checkpoint is signed by the new keys only.
    checkpoint(&w);
    let notes: Vec<String> = events(&w.data, "log.checkpoint")
        .iter()
        .map(|e| e["note"].as_str().unwrap().to_string())
        .collect();
    let trust = |v: &[String]| kernos_tlog_journal::trusted_from_vkeys(v).unwrap();
    kernos_tlog::verify_checkpoint(&notes[1], &trust(&new)).expect("signed by the new keys");
    assert!(kernos_tlog::verify_checkpoint(&notes[1], &trust(&old)).is_err());
    kernos_tlog::verify_checkpoint(&notes[0], &trust(&old)).expect("the old one stands");
    // And the audit labels the old checkpoint with the retired key.
    let v = w.run(&["journal", "verify", "--checkpoints"]);
    let out = text(&v.stdout);
    assert!(v.status.success(), "{out}");
    let lines: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("checkpoint"))
        .collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(
        lines[0].ends_with("ok (signed by a retired key inside its overlap window)"),
        "{out}"
    );
    assert!(lines[1].ends_with("): ok"), "{out}");
    d.stop();
}
