//! Shared capacity between organisations (issue 14, findings 3 and 4): a step waiting for
//! approval holds no run slot, one organisation cannot hold every slot, slots go round the
//! organisations in turn, and a quota is checked and reserved before each step, not only at
//! submission.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use kernos_server::{Role, ServerConfig};
use serde_json::{Value, json};

use super::{Auth, T};

/// `GET /metrics` as text (host operator).
async fn metrics(t: &T) -> String {
    let r = t.call("GET", "/metrics", Auth::Local, None).await;
    assert_eq!(r.status, StatusCode::OK);
    String::from_utf8(r.body).unwrap()
}

/// An action's detail as it is now, without waiting for it to end.
async fn detail(t: &T, key: &str, action: &str) -> Value {
    t.call(
        "GET",
        &format!("/v1/state/actions/{action}"),
        Auth::Key(key),
        None,
    )
    .await
    .json()
}

/// The status of an action, without waiting for it to end.
async fn status(t: &T, key: &str, action: &str) -> String {
    detail(t, key, action).await["status"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The ids of `key`'s org's pending approvals.
async fn approvals(t: &T, key: &str) -> Vec<Value> {
    let r = t
        .call("GET", "/v1/state/approvals", Auth::Key(key), None)
        .await;
    r.json().as_array().unwrap().clone()
}

/// Waits until `action` has ended (its detail) or asks for approval (`None`).
async fn finished_or_pending(t: &T, key: &str, action: &str) -> Option<Value> {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let d = detail(t, key, action).await;
        if !matches!(d["status"].as_str(), Some("queued" | "running")) {
            return Some(d);
        }
        if approvals(t, key)
            .await
            .iter()
            .any(|p| p["action"] == action)
        {
            return None;
        }
        assert!(
            std::time::Instant::now() < until,
            "{action} neither ended nor asked"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// A daemon with `workers` run slots and an operator key of each of two organisations.
async fn two_orgs(workers: usize) -> (T, String, String) {
    let t = T::with(ServerConfig {
        workers,
        ..ServerConfig::default()
    });
    let a = t.key("acme", Role::Operator).await;
    let b = t.key("globex", Role::Operator).await;
    (t, a, b)
}

/// Submits a read of the work directory with `key` and waits for how it ended.
async fn read_runs(t: &T, key: &str) -> String {
    let read = t
        .submit(
            Auth::Key(key),
            json!({"request": "list files in .", "cwd": t.cwd()}),
        )
        .await;
    t.finished(Auth::Key(key), &read).await["status"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// A delete of `file` (in the work directory): medium risk, so it waits for approval.
fn delete(t: &T, file: &str) -> Value {
    json!({"request": format!("delete {file}"), "cwd": t.cwd()})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actions_waiting_for_approval_hold_no_slot_so_another_orgs_read_runs_at_once() {
    let (t, a, b) = two_orgs(2).await;
    // Three times as many waiting actions as there are slots: all of them get as far as
    // asking (each once held a worker until answered, so only two could).
    let mut waiting = Vec::new();
    for i in 0..6 {
        t.file(&format!("work/w{i}.log"), "x");
        let id = t
            .submit(Auth::Key(&a), delete(&t, &format!("w{i}.log")))
            .await;
        t.pending(Auth::Key(&a), &id).await;
        waiting.push(id);
    }
    let m = metrics(&t).await;
    assert!(
        m.contains("kernos_org_waiting_approval{org=\"acme\"} 6"),
        "{m}"
    );
    assert!(m.contains("kernos_org_running{org=\"acme\"} 0"), "{m}");
    // Another organisation's read runs while every one of them still waits.
    assert_eq!(read_runs(&t, &b).await, "committed");
    assert_eq!(approvals(&t, &a).await.len(), 6, "still waiting");
    for id in &waiting {
        assert_eq!(status(&t, &a, id).await, "running");
    }
    // Answered, each takes a slot again and ends.
    for (i, id) in waiting.iter().enumerate() {
        let p = t.pending(Auth::Key(&a), id).await;
        let ans = t
            .answer(&a, p["approval"].as_str().unwrap(), i % 2 == 0)
            .await;
        assert_eq!(ans.status, StatusCode::OK);
    }
    for (i, id) in waiting.iter().enumerate() {
        let want = if i % 2 == 0 { "committed" } else { "declined" };
        assert_eq!(t.finished(Auth::Key(&a), id).await["status"], want);
        assert_eq!(t.home.join(format!("work/w{i}.log")).exists(), i % 2 == 1);
    }
    let m = metrics(&t).await;
    assert!(
        !m.contains("kernos_org_waiting_approval{org=\"acme\"}"),
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_waiting_actions_are_declined_at_once_saying_why() {
    let t = T::with(ServerConfig {
        workers: 1,
        max_waiting_per_org: 2,
        ..ServerConfig::default()
    });
    let a = t.key("acme", Role::Operator).await;
    for i in 0..2 {
        t.file(&format!("work/w{i}.log"), "x");
        let id = t
            .submit(Auth::Key(&a), delete(&t, &format!("w{i}.log")))
            .await;
        t.pending(Auth::Key(&a), &id).await;
    }
    t.file("work/w2.log", "x");
    let third = t.submit(Auth::Key(&a), delete(&t, "w2.log")).await;
    let d = t.finished(Auth::Key(&a), &third).await;
    assert_eq!(d["status"], "declined", "{d}");
    assert!(
        d["error"]
            .as_str()
            .unwrap()
            .contains("server.max_waiting_per_org"),
        "{d}"
    );
    assert!(t.home.join("work/w2.log").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_org_cannot_hold_every_slot() {
    // Four slots: one organisation may hold three (all but a quarter).
    let (t, a, b) = two_orgs(4).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(t.hold(Auth::Key(&a)).await);
    }
    // A fourth of acme's waits for one of its own to end, with a slot free.
    let fourth = t.submit(Auth::Key(&a), T::held_plan()).await;
    let m = metrics(&t).await;
    assert!(m.contains("kernos_org_running{org=\"acme\"} 3"), "{m}");
    assert!(m.contains("kernos_org_queued{org=\"acme\"} 1"), "{m}");
    assert!(m.contains("kernos_queue_depth 1"), "{m}");
    // globex's read takes the free slot while acme's three still run.
    assert_eq!(read_runs(&t, &b).await, "committed");
    assert_eq!(t.held(), 3);
    assert_eq!(status(&t, &a, &fourth).await, "queued");
    t.let_go();
    for id in held.iter().chain([&fourth]) {
        assert_eq!(t.finished(Auth::Key(&a), id).await["status"], "committed");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn freed_slots_go_round_the_organisations_in_turn() {
    let (t, a, b) = two_orgs(1).await;
    let read = || json!({"request": "list files in .", "cwd": t.cwd()});
    let blocker = t.hold(Auth::Key(&a)).await;
    let mut acme = Vec::new();
    for _ in 0..3 {
        acme.push(t.submit(Auth::Key(&a), read()).await);
    }
    let globex = t.submit(Auth::Key(&b), read()).await;
    t.let_go();
    t.finished(Auth::Key(&a), &blocker).await;
    let finished_seq = |d: &Value| {
        d["events"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["kind"] == "action.finished")
            .unwrap()["seq"]
            .as_u64()
            .unwrap()
    };
    let mut seqs = Vec::new();
    for id in &acme {
        seqs.push(finished_seq(&t.finished(Auth::Key(&a), id).await));
    }
    let g = finished_seq(&t.finished(Auth::Key(&b), &globex).await);
    // Submitted last, globex's read is served second: one of acme's, then globex's turn.
    assert!(seqs[0] < g && g < seqs[1], "acme {seqs:?}, globex {g}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_action_cancelled_ends_at_once_without_waiting_for_its_turn() {
    let t = T::with(ServerConfig {
        workers: 1,
        ..ServerConfig::default()
    });
    let a = t.key("acme", Role::Operator).await;
    t.hold(Auth::Key(&a)).await;
    let queued = t
        .submit(
            Auth::Key(&a),
            json!({"request": "list files in .", "cwd": t.cwd()}),
        )
        .await;
    let r = t
        .call(
            "POST",
            &format!("/v1/actions/{queued}/cancel"),
            Auth::Key(&a),
            None,
        )
        .await;
    assert_eq!(r.json()["status"], "cancelled");
    // Ended while the only slot is still held.
    let d = t.finished(Auth::Key(&a), &queued).await;
    assert_eq!(d["status"], "cancelled");
    assert_eq!(t.held(), 1);
    assert!(metrics(&t).await.contains("kernos_queue_depth 0"));
    t.let_go();
}

/// A daemon where `acme` may use `quota` run units (each step costs 0.01: no child runs).
fn with_quota(workers: usize, org: &str, quota: f64) -> T {
    T::with(ServerConfig {
        workers,
        quotas: BTreeMap::from([(org.to_owned(), quota)]),
        ..ServerConfig::default()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quota_is_reserved_before_each_step_so_waiting_plans_cannot_overrun_it() {
    // Room for five steps; eight plans of one step each are accepted at submission.
    let t = with_quota(2, "acme", 0.05);
    let a = t.key("acme", Role::Operator).await;
    let b = t.key("globex", Role::Operator).await;
    let mut ids = Vec::new();
    for i in 0..8 {
        t.file(&format!("work/q{i}.log"), "x");
        ids.push(
            t.submit(Auth::Key(&a), delete(&t, &format!("q{i}.log")))
                .await,
        );
    }
    // Five reserve their step and ask; the other three are refused before anyone is asked.
    let mut refused = 0;
    for id in &ids {
        let d = finished_or_pending(&t, &a, id).await;
        if let Some(d) = d {
            assert_eq!(d["status"], "denied", "{d}");
            let e = d["error"].as_str().unwrap();
            assert!(
                e.contains("not started")
                    && e.contains("of its 0.05 run units")
                    && e.contains("server.quotas.acme"),
                "{e}"
            );
            refused += 1;
        }
    }
    assert_eq!(refused, 3);
    let pending = approvals(&t, &a).await;
    assert_eq!(pending.len(), 5);
    for p in &pending {
        t.answer(&a, p["approval"].as_str().unwrap(), true).await;
    }
    let mut units = 0.0;
    let mut committed = 0;
    for id in &ids {
        let d = t.finished(Auth::Key(&a), id).await;
        units += d["units"].as_f64().unwrap();
        committed += usize::from(d["status"] == "committed");
    }
    assert_eq!(committed, 5);
    assert!(units <= 0.05 + 1e-9, "used {units} of 0.05");
    let u = t
        .call("GET", "/v1/state/usage", Auth::Key(&a), None)
        .await
        .json();
    assert!(u["units"].as_f64().unwrap() <= 0.05 + 1e-9, "{u}");
    // Now used up: refused at submission; an org without a quota is not affected.
    let r = t
        .call("POST", "/v1/actions", Auth::Key(&a), Some(delete(&t, "x")))
        .await;
    assert_eq!(r.status, StatusCode::PAYMENT_REQUIRED);
    assert_eq!(read_runs(&t, &b).await, "committed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_that_runs_out_of_quota_stops_and_keeps_what_it_did_undoable() {
    let t = with_quota(1, "acme", 0.02);
    let a = t.key("acme", Role::Operator).await;
    let step =
        |f: &str| json!({"tool": "fs", "action": "write", "args": {"path": f, "content": "x"}});
    let id = t
        .submit(
            Auth::Key(&a),
            json!({
                "plan": {"steps": [step("a.txt"), step("b.txt"), step("c.txt")]},
                "cwd": t.cwd(),
                "auto_approve": true,
            }),
        )
        .await;
    let d = t.finished(Auth::Key(&a), &id).await;
    assert_eq!(d["status"], "denied", "{d}");
    let e = d["error"].as_str().unwrap();
    assert!(e.starts_with("step 3 (fs.write): not started"), "{e}");
    assert!((d["units"].as_f64().unwrap() - 0.02).abs() < 1e-9, "{d}");
    let work = t.home.join("work");
    assert!(work.join("a.txt").exists() && work.join("b.txt").exists());
    assert!(!work.join("c.txt").exists());
    // The refusal is journaled as policy's verdict on the step, like any refusal.
    let decided: Vec<&Value> = d["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "step.decided")
        .collect();
    assert_eq!(decided.len(), 3);
    assert_eq!(decided[2]["payload"]["decision"], "deny");
    // What the first two steps did can be undone, quota or not (undo is not charged).
    let tx = d["tx"].as_str().unwrap();
    let u = t
        .submit(Auth::Key(&a), json!({"undo": tx, "auto_approve": true}))
        .await;
    assert_eq!(t.finished(Auth::Key(&a), &u).await["status"], "undone");
    assert!(!work.join("a.txt").exists() && !work.join("b.txt").exists());
}
