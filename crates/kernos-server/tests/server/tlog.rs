//! The journal as a transparency log in the daemon: checkpoints signed as events arrive and on
//! demand, proofs a client checks itself, a tree that survives a restart, and this daemon as a
//! witness that remembers what it saw and refuses a rollback.

use axum::http::StatusCode;
use kernos_server::LogOptions;
use kernos_tlog::{TrustedKeys, VerifierKey, unb64_hash, verify_checkpoint};
use kernos_tlog_journal::{CheckpointConfig, JournalConfig, WitnessConfig, WitnessedLog};
use serde_json::{Value, json};

use crate::{Auth, T};

fn every(n: u64) -> LogOptions {
    LogOptions {
        journal: JournalConfig {
            checkpoints: CheckpointConfig {
                every_events: n,
                every_s: 0,
                origin: Some("daemon.test/kernos/journal".into()),
            },
            ..Default::default()
        },
        witness: WitnessConfig::default(),
    }
}

fn trusted(keys: &Value) -> TrustedKeys {
    TrustedKeys(
        keys["vkeys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| VerifierKey::from_vkey(v.as_str().unwrap()).unwrap())
            .collect(),
    )
}

fn hashes(v: &Value) -> Vec<[u8; 32]> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|h| unb64_hash(h.as_str().unwrap()).unwrap())
        .collect()
}

async fn sign(t: &T) -> Value {
    t.call("POST", "/v1/log/checkpoint", Auth::Local, None)
        .await
        .expect(StatusCode::OK)
        .json()
}

async fn wait_checkpoints(t: &T, at_least: usize) -> Vec<Value> {
    for _ in 0..200 {
        let v = t
            .call("GET", "/v1/log/checkpoints", Auth::Local, None)
            .await
            .json();
        if v.as_array().unwrap().len() >= at_least {
            return v.as_array().unwrap().clone();
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("fewer than {at_least} checkpoints were signed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoints_are_signed_as_events_arrive_and_proofs_check_out() {
    let mut t = T::logged(every(5));
    let keys = t
        .call("GET", "/v1/log/keys", Auth::Local, None)
        .await
        .json();
    assert_eq!(keys["origin"], "daemon.test/kernos/journal");
    let trusted = trusted(&keys);
    for _ in 0..3 {
        let a = t
            .submit(
                Auth::Local,
                json!({"request": "list files in .", "cwd": t.cwd()}),
            )
            .await;
        t.finished(Auth::Local, &a).await;
    }
    let cps = wait_checkpoints(&t, 1).await;
    let newest = cps.last().unwrap();
    let v = verify_checkpoint(newest["note"].as_str().unwrap(), &trusted).unwrap();
    // An event proven in the newest checkpoint, checked here with the log's public keys.
    let p = t
        .call("GET", "/v1/log/proof/inclusion?seq=2", Auth::Local, None)
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(p["size"], v.checkpoint.size);
    kernos_tlog::verify_inclusion(
        &unb64_hash(p["leaf_hash"].as_str().unwrap()).unwrap(),
        1,
        v.checkpoint.size,
        &hashes(&p["hashes"]),
        &v.checkpoint.root,
    )
    .unwrap();
    // On demand, then across a restart: the new tree extends the old one.
    let on_demand = t
        .call("POST", "/v1/log/checkpoint", Auth::Local, None)
        .await
        .expect(StatusCode::OK)
        .json();
    let before = verify_checkpoint(on_demand["note"].as_str().unwrap(), &trusted).unwrap();
    t.restart_logged(every(5));
    let after = t
        .call("POST", "/v1/log/checkpoint", Auth::Local, None)
        .await
        .expect(StatusCode::OK)
        .json();
    let after = verify_checkpoint(after["note"].as_str().unwrap(), &trusted).unwrap();
    assert!(after.checkpoint.size > before.checkpoint.size);
    let c = t
        .call(
            "GET",
            &format!(
                "/v1/log/proof/consistency?from={}&to={}",
                before.checkpoint.size, after.checkpoint.size
            ),
            Auth::Local,
            None,
        )
        .await
        .expect(StatusCode::OK)
        .json();
    kernos_tlog::verify_consistency(
        before.checkpoint.size,
        after.checkpoint.size,
        &hashes(&c["hashes"]),
        &before.checkpoint.root,
        &after.checkpoint.root,
    )
    .unwrap();
    // The daemon's tree is the journal's: every stored checkpoint checks out against a
    // rebuild from the rows.
    t.stop();
    let j = kernos_journal::Journal::open_read_only(t.data_dir()).unwrap();
    let r = kernos_tlog_journal::read::verify_checkpoints(&j, &trusted, &[]).unwrap();
    assert!(r.is_ok() && r.checkpoints.len() >= 3, "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_witness_daemon_cosigns_remembers_across_restarts_and_refuses_a_rollback() {
    let log = T::logged(every(0));
    // The witness's name and config; its own log keeps the default origin.
    let keys = log
        .call("GET", "/v1/log/keys", Auth::Local, None)
        .await
        .json();
    let witnessed = LogOptions {
        witness: WitnessConfig {
            name: Some("witness.test/w".into()),
            logs: vec![WitnessedLog {
                origin: "daemon.test/kernos/journal".into(),
                vkeys: keys["vkeys"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_str().unwrap().to_string())
                    .collect(),
            }],
        },
        ..LogOptions::default()
    };
    let mut w = T::logged(witnessed.clone());
    let wkeys = w
        .call("GET", "/v1/log/keys", Auth::Local, None)
        .await
        .json();
    let wkeys: Vec<kernos_tlog::WitnessKey> = wkeys["witness_vkeys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| kernos_tlog::WitnessKey::from_vkey(v.as_str().unwrap()).unwrap())
        .collect();
    assert_eq!(wkeys.len(), 2);
    let op = w.key("local", kernos_server::Role::Operator).await;
    let c1 = sign(&log).await;
    let r = w
        .call(
            "POST",
            "/v1/log/witness",
            Auth::Key(&op),
            Some(json!({"checkpoint": c1["note"], "old_size": 0})),
        )
        .await
        .expect(StatusCode::OK)
        .json();
    let lines: Vec<String> = r["cosignatures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().to_string())
        .collect();
    let cosigned = format!("{}{}\n", c1["note"].as_str().unwrap(), lines.join("\n"));
    assert_eq!(
        kernos_tlog::verify_cosignatures(&cosigned, &wkeys)
            .unwrap()
            .len(),
        2
    );
    // The log grows; the witness restarts and still knows the size it saw.
    let c2 = sign(&log).await;
    w.restart_logged(witnessed);
    let op = w.key("local", kernos_server::Role::Operator).await;
    let (s1, s2) = (c1["size"].as_u64().unwrap(), c2["size"].as_u64().unwrap());
    let stale = w
        .call(
            "POST",
            "/v1/log/witness",
            Auth::Key(&op),
            Some(json!({"checkpoint": c2["note"], "old_size": 0})),
        )
        .await;
    assert_eq!(stale.status, StatusCode::CONFLICT);
    assert_eq!(stale.json()["known_size"], s1);
    let proof = log
        .call(
            "GET",
            &format!("/v1/log/proof/consistency?from={s1}&to={s2}"),
            Auth::Local,
            None,
        )
        .await
        .json();
    w.call(
        "POST",
        "/v1/log/witness",
        Auth::Key(&op),
        Some(json!({"checkpoint": c2["note"], "old_size": s1, "consistency": proof["hashes"]})),
    )
    .await
    .expect(StatusCode::OK);
    // Rolled back to the older checkpoint: refused, and journaled as evidence.
    let r = w
        .call(
            "POST",
            "/v1/log/witness",
            Auth::Key(&op),
            Some(json!({"checkpoint": c1["note"], "old_size": s2})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.json()["rollback"], true);
    let ev = w
        .call("GET", "/v1/state/journal?kind=witness.", Auth::Local, None)
        .await
        .json();
    let kinds: Vec<&str> = ev["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        vec![
            "witness.refused",
            "witness.checkpoint",
            "witness.checkpoint"
        ]
    );
    // A viewer may not push checkpoints.
    let viewer = w.key("local", kernos_server::Role::Viewer).await;
    let r = w
        .call(
            "POST",
            "/v1/log/witness",
            Auth::Key(&viewer),
            Some(json!({"checkpoint": c2["note"], "old_size": s2})),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}
