//! Approvals, undo, idempotency, limits, quotas, audit, errors, shutdown and crash recovery.

use std::time::Duration;

use axum::http::StatusCode;
use kernos_core::{ActionId, Actor, NewEvent};
use kernos_journal::Journal;
use kernos_server::{Role, ServerConfig};
use serde_json::json;

use crate::{Auth, T};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_waits_for_approval_runs_when_approved_and_undo_puts_it_back() {
    let t = T::start();
    let f = t.file("work/old.log", "keep me");
    let viewer = t.key("acme", Role::Viewer).await;
    let op = t.key("acme", Role::Operator).await;
    let a = t
        .submit(
            Auth::Key(&op),
            json!({"request": "delete old.log", "cwd": t.cwd()}),
        )
        .await;
    let p = t.pending(Auth::Key(&op), &a).await;
    assert_eq!(p["name"], "fs.delete");
    assert_eq!(p["risk"], "medium");
    assert!(f.exists(), "nothing changes before the approval");
    let id = p["approval"].as_str().unwrap();
    // A viewer may not answer; an operator may approve a medium-risk step.
    let r = t
        .call(
            "POST",
            &format!("/v1/approvals/{id}"),
            Auth::Key(&viewer),
            Some(json!({"approve": true})),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = t
        .call(
            "POST",
            &format!("/v1/approvals/{id}"),
            Auth::Key(&op),
            Some(json!({"approve": true, "reason": "old"})),
        )
        .await;
    r.expect(StatusCode::OK);
    let d = t.finished(Auth::Key(&op), &a).await;
    assert_eq!(d["status"], "committed", "{d}");
    assert!(!f.exists(), "deleted once approved");
    let kinds: Vec<&str> = d["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    for k in [
        "action.previewed",
        "approval.requested",
        "approval.decided",
        "step.undo_recorded",
    ] {
        assert!(kinds.contains(&k), "{k} missing: {kinds:?}");
    }
    // Answering again: it is gone.
    let r = t
        .call(
            "POST",
            &format!("/v1/approvals/{id}"),
            Auth::Key(&op),
            Some(json!({"approve": true})),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // Undo through the API.
    let tx = d["tx"].as_str().unwrap();
    let r = t
        .call("POST", &format!("/v1/undo/{tx}"), Auth::Key(&op), None)
        .await;
    r.expect(StatusCode::ACCEPTED);
    let u = r.json()["action"].as_str().unwrap().to_owned();
    let d = t.finished(Auth::Key(&op), &u).await;
    assert_eq!(d["status"], "undone", "{d}");
    assert_eq!(std::fs::read_to_string(&f).unwrap(), "keep me");
    // Undoing twice is a conflict that says so.
    let r = t
        .call("POST", &format!("/v1/undo/{tx}"), Auth::Key(&op), None)
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(
        r.json()["detail"]
            .as_str()
            .unwrap()
            .contains("already undone")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn high_risk_needs_an_admin_and_auto_approve_stops_at_the_role() {
    let t = T::start();
    let f = t.file("sys/conf", "system file");
    let op = t.key("acme", Role::Operator).await;
    let admin = t.key("acme", Role::Admin).await;
    let path = f.display().to_string();
    // Even with auto_approve, an operator's high-risk step waits.
    let a = t
        .submit(
            Auth::Key(&op),
            json!({"request": format!("delete {path}"), "cwd": t.cwd(), "auto_approve": true}),
        )
        .await;
    let p = t.pending(Auth::Key(&op), &a).await;
    assert_eq!(p["risk"], "high");
    assert_eq!(p["min_role"], "admin");
    let id = p["approval"].as_str().unwrap();
    let r = t
        .call(
            "POST",
            &format!("/v1/approvals/{id}"),
            Auth::Key(&op),
            Some(json!({"approve": true})),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.json()["detail"].as_str().unwrap().contains("high risk"));
    let r = t
        .call(
            "POST",
            &format!("/v1/approvals/{id}"),
            Auth::Key(&admin),
            Some(json!({"approve": false, "reason": "not today"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let d = t.finished(Auth::Key(&op), &a).await;
    assert_eq!(d["status"], "declined");
    assert!(f.exists());
    // An operator's auto_approve covers a medium-risk step.
    let g = t.file("work/tmp.txt", "x");
    let a = t
        .submit(
            Auth::Key(&op),
            json!({"request": "delete tmp.txt", "cwd": t.cwd(), "auto_approve": true}),
        )
        .await;
    let d = t.finished(Auth::Key(&op), &a).await;
    assert_eq!(d["status"], "committed", "{d}");
    assert!(!g.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unanswered_approval_times_out_declined_and_journaled() {
    let t = T::with(ServerConfig {
        approval_timeout_s: 1,
        ..ServerConfig::default()
    });
    let f = t.file("work/x.log", "x");
    let op = t.key("acme", Role::Operator).await;
    let a = t
        .submit(
            Auth::Key(&op),
            json!({"request": "delete x.log", "cwd": t.cwd()}),
        )
        .await;
    let d = t.finished(Auth::Key(&op), &a).await;
    assert_eq!(d["status"], "declined");
    let decided = d["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "approval.decided")
        .unwrap()
        .clone();
    assert!(
        decided["payload"]["reason"]
            .as_str()
            .unwrap()
            .contains("no answer within 1 s")
    );
    assert!(f.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_key_answers_the_same_action_and_refuses_another_body() {
    let mut t = T::start();
    let op = t.key("acme", Role::Operator).await;
    let body = json!({"request": "list files in .", "cwd": t.cwd()});
    let h = [("idempotency-key", "abc-1")];
    let r1 = t
        .call_with(
            "POST",
            "/v1/actions",
            Auth::Key(&op),
            Some(body.clone()),
            &h,
        )
        .await;
    let r2 = t
        .call_with(
            "POST",
            "/v1/actions",
            Auth::Key(&op),
            Some(body.clone()),
            &h,
        )
        .await;
    assert_eq!(r1.status, StatusCode::ACCEPTED);
    assert_eq!(r2.status, StatusCode::ACCEPTED);
    assert_eq!(r1.json()["action"], r2.json()["action"]);
    assert_eq!(r2.json()["replayed"], true);
    let other = json!({"request": "list files in /", "cwd": t.cwd()});
    let r3 = t
        .call_with("POST", "/v1/actions", Auth::Key(&op), Some(other), &h)
        .await;
    assert_eq!(r3.status, StatusCode::UNPROCESSABLE_ENTITY);
    // Only one action was made.
    let list = t
        .call("GET", "/v1/state/actions", Auth::Key(&op), None)
        .await
        .json();
    assert_eq!(list.as_array().unwrap().len(), 1);

    // A client retrying because the daemon restarted gets its action back, not a second one;
    // the key is still bound to its body, and still scoped to whoever used it.
    t.restart();
    let r4 = t
        .call_with(
            "POST",
            "/v1/actions",
            Auth::Key(&op),
            Some(body.clone()),
            &h,
        )
        .await;
    r4.expect(StatusCode::ACCEPTED);
    assert_eq!(r4.json()["action"], r1.json()["action"]);
    assert_eq!(r4.json()["replayed"], true);
    let other = json!({"request": "list files in /", "cwd": t.cwd()});
    let r5 = t
        .call_with("POST", "/v1/actions", Auth::Key(&op), Some(other), &h)
        .await;
    assert_eq!(r5.status, StatusCode::UNPROCESSABLE_ENTITY);
    let op2 = t.key("acme", Role::Operator).await;
    let r6 = t
        .call_with("POST", "/v1/actions", Auth::Key(&op2), Some(body), &h)
        .await;
    assert_eq!(r6.status, StatusCode::ACCEPTED);
    assert_ne!(r6.json()["action"], r1.json()["action"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_answers_429_instead_of_growing() {
    let t = T::with(ServerConfig {
        workers: 1,
        queue: 1,
        ..ServerConfig::default()
    });
    let op = t.key("acme", Role::Operator).await;
    // The only slot is held; one more fits in the queue; the next does not.
    let blocker = t.hold(Auth::Key(&op)).await;
    let queued = t
        .submit(
            Auth::Key(&op),
            json!({"request": "list files in .", "cwd": t.cwd()}),
        )
        .await;
    let r = t
        .call(
            "POST",
            "/v1/actions",
            Auth::Key(&op),
            Some(json!({"request": "list files in .", "cwd": t.cwd()})),
        )
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.headers["retry-after"], "1");
    assert!(
        r.json()["detail"]
            .as_str()
            .unwrap()
            .contains("server.queue")
    );
    t.let_go();
    assert_eq!(
        t.finished(Auth::Key(&op), &blocker).await["status"],
        "committed"
    );
    assert_eq!(
        t.finished(Auth::Key(&op), &queued).await["status"],
        "committed"
    );
    let m = String::from_utf8_lossy(&t.call("GET", "/metrics", Auth::Local, None).await.body)
        .to_string();
    assert!(m.contains("kernos_queue_rejections_total 1"), "{m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rate_limit_is_per_key_with_retry_after() {
    let t = T::with(ServerConfig {
        rate_per_sec: 0.5,
        rate_burst: 3.0,
        ..ServerConfig::default()
    });
    let a = t.key("acme", Role::Viewer).await;
    let b = t.key("acme", Role::Viewer).await;
    for _ in 0..3 {
        assert_eq!(
            t.call("GET", "/v1/state/usage", Auth::Key(&a), None)
                .await
                .status,
            StatusCode::OK
        );
    }
    let r = t.call("GET", "/v1/state/usage", Auth::Key(&a), None).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.headers["retry-after"], "2");
    assert_eq!(r.headers["content-type"], "application/problem+json");
    assert_eq!(
        t.call("GET", "/v1/state/usage", Auth::Key(&b), None)
            .await
            .status,
        StatusCode::OK,
        "another key has its own bucket"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_org_over_its_monthly_quota_gets_402() {
    let mut quotas = std::collections::BTreeMap::new();
    // Room for two steps: each is admitted before it starts, so usage meets it exactly.
    quotas.insert("acme".to_owned(), 0.02);
    let t = T::with(ServerConfig {
        quotas,
        step_overhead_units: 0.01,
        ..ServerConfig::default()
    });
    let op = t.key("acme", Role::Operator).await;
    let other = t.key("globex", Role::Operator).await;
    let body = json!({"request": "list files in .", "cwd": t.cwd()});
    for _ in 0..2 {
        let a = t.submit(Auth::Key(&op), body.clone()).await;
        t.finished(Auth::Key(&op), &a).await;
    }
    let r = t
        .call("POST", "/v1/actions", Auth::Key(&op), Some(body.clone()))
        .await;
    assert_eq!(r.status, StatusCode::PAYMENT_REQUIRED);
    let detail = r.json()["detail"].as_str().unwrap().to_owned();
    assert!(
        detail.contains("server.quotas.acme") && detail.contains("0.02"),
        "{detail}"
    );
    let u = t
        .call("GET", "/v1/state/usage", Auth::Key(&op), None)
        .await
        .json();
    assert_eq!(u["quota"], 0.02);
    assert_eq!(u["remaining"], 0.0);
    assert!((u["units"].as_f64().unwrap() - 0.02).abs() < 1e-9, "{u}");
    // Another org is not affected.
    t.submit(Auth::Key(&other), body).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_records_every_mutation_and_filters_and_exports_csv() {
    let t = T::start();
    t.file("work/a.log", "x");
    let admin = t.key("acme", Role::Admin).await;
    let op = t.key("acme", Role::Operator).await;
    let a = t
        .submit(
            Auth::Key(&op),
            json!({"request": "delete a.log", "cwd": t.cwd()}),
        )
        .await;
    let p = t.pending(Auth::Key(&op), &a).await;
    let id = p["approval"].as_str().unwrap();
    t.call(
        "POST",
        &format!("/v1/approvals/{id}"),
        Auth::Key(&admin),
        Some(json!({"approve": true})),
    )
    .await;
    let d = t.finished(Auth::Key(&op), &a).await;
    t.call(
        "POST",
        &format!("/v1/undo/{}", d["tx"].as_str().unwrap()),
        Auth::Key(&op),
        None,
    )
    .await;
    let all = t
        .call("GET", "/v1/audit", Auth::Key(&admin), None)
        .await
        .json();
    let kinds: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    for k in [
        "audit.key.created",
        "action.submitted",
        "audit.approval.decided",
        "audit.undo.requested",
    ] {
        assert!(kinds.contains(&k), "{k} missing: {kinds:?}");
    }
    let dec = all
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["kind"] == "audit.approval.decided")
        .unwrap();
    assert_eq!(dec["role"], "admin");
    assert_eq!(dec["source"], "127.0.0.1:40000");
    assert_eq!(dec["before"]["state"], "pending");
    assert_eq!(dec["after"]["state"], "approved");
    // Filters.
    let actor = dec["actor"].as_str().unwrap();
    let by_actor = t
        .call(
            "GET",
            &format!("/v1/audit?actor={actor}"),
            Auth::Key(&admin),
            None,
        )
        .await
        .json();
    assert!(
        by_actor
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["actor"] == actor)
    );
    let keys_only = t
        .call(
            "GET",
            "/v1/audit?action=key.created",
            Auth::Key(&admin),
            None,
        )
        .await
        .json();
    assert_eq!(keys_only.as_array().unwrap().len(), 2);
    let future = t
        .call(
            "GET",
            "/v1/audit?since=2999-01-01T00:00:00Z",
            Auth::Key(&admin),
            None,
        )
        .await
        .json();
    assert!(future.as_array().unwrap().is_empty());
    let past = t
        .call("GET", "/v1/audit?until=1000", Auth::Key(&admin), None)
        .await
        .json();
    assert!(past.as_array().unwrap().is_empty());
    let bad = t
        .call("GET", "/v1/audit?since=yesterday", Auth::Key(&admin), None)
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    // CSV.
    let csv = t
        .call("GET", "/v1/audit.csv", Auth::Key(&admin), None)
        .await;
    assert_eq!(csv.headers["content-type"], "text/csv; charset=utf-8");
    let text = String::from_utf8_lossy(&csv.body).to_string();
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("seq,time,kind,actor,org,role,source,target,before,after")
    );
    assert_eq!(lines.count(), all.as_array().unwrap().len());
    assert!(text.contains("audit.approval.decided"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_problem_documents_that_say_what_to_do() {
    let t = T::with(ServerConfig {
        body_limit: 1024,
        ..ServerConfig::default()
    });
    let op = t.key("acme", Role::Operator).await;
    let cases: Vec<(&str, &str, Option<serde_json::Value>, StatusCode)> = vec![
        ("GET", "/v1/nope", None, StatusCode::NOT_FOUND),
        (
            "DELETE",
            "/v1/actions",
            None,
            StatusCode::METHOD_NOT_ALLOWED,
        ),
        (
            "POST",
            "/v1/actions",
            Some(json!({"request": 5})),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "POST",
            "/v1/actions",
            Some(json!({})),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "POST",
            "/v1/actions",
            Some(json!({"request": "x", "cwd": "rel"})),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "POST",
            "/v1/actions",
            Some(json!({"request": "y".repeat(2000)})),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
        (
            "GET",
            "/v1/state/actions/nonsense",
            None,
            StatusCode::NOT_FOUND,
        ),
        (
            "GET",
            "/v1/state/actions?limit=abc",
            None,
            StatusCode::BAD_REQUEST,
        ),
    ];
    for (m, p, b, want) in cases {
        let r = t.call(m, p, Auth::Key(&op), b).await;
        assert_eq!(
            r.status,
            want,
            "{m} {p}: {}",
            String::from_utf8_lossy(&r.body)
        );
        assert_eq!(
            r.headers["content-type"], "application/problem+json",
            "{m} {p}"
        );
        let j = r.json();
        assert_eq!(j["status"], want.as_u16());
        assert!(j["detail"].as_str().unwrap().len() > 10, "{j}");
        assert!(j["type"].as_str().unwrap().starts_with("https://"), "{j}");
    }
    // A body that is not JSON at all.
    let r = t
        .call_with(
            "POST",
            "/v1/actions",
            Auth::Key(&op),
            None,
            &[("content-type", "application/json")],
        )
        .await;
    assert_eq!(r.headers["content-type"], "application/problem+json");
    assert!(r.status.is_client_error());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_declines_waiting_steps_and_marks_queued_actions_aborted() {
    let mut t = T::with(ServerConfig {
        workers: 1,
        ..ServerConfig::default()
    });
    let f = t.file("work/keep.log", "x");
    let op = t.key("acme", Role::Operator).await;
    let (waiting, queued) = t.waiting_and_queued(&op, "keep.log").await;
    let started = std::time::Instant::now();
    tokio::task::block_in_place(|| t.stop());
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "stops within a few seconds"
    );
    assert!(f.exists());
    let j = Journal::open_read_only(t.data_dir()).unwrap();
    let status = |a: &str| {
        j.query(&kernos_journal::Query::action(a))
            .unwrap()
            .into_iter()
            .rev()
            .find(|e| e.kind == "action.finished")
            .map(|e| e.payload["status"].as_str().unwrap().to_owned())
    };
    assert_eq!(status(&waiting).as_deref(), Some("declined"));
    assert_eq!(status(&queued).as_deref(), Some("aborted"));
    let last = j.head().unwrap().0;
    assert_eq!(j.get(last).unwrap().unwrap().kind, "daemon.stopped");
    assert!(j.verify().unwrap().is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actions_left_running_by_a_crash_are_marked_interrupted_on_start() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // What a crashed daemon leaves: started, an action submitted and begun, no end.
    let a = ActionId::generate();
    {
        let mut j = Journal::open(&data).unwrap();
        j.append(&NewEvent::new("daemon.started", Actor::system()))
            .unwrap();
        j.append(
            &NewEvent::new("action.submitted", Actor("key:x".into()))
                .org("acme")
                .action(a)
                .payload(json!({"request": "list files in ."})),
        )
        .unwrap();
        j.append(
            &NewEvent::new("plan.created", Actor("key:x".into()))
                .org("acme")
                .action(a),
        )
        .unwrap();
    }
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let t = crate::T::open(dir, home, ServerConfig::default());
    let j = Journal::open_read_only(t.data_dir()).unwrap();
    let evs = j.query(&kernos_journal::Query::action(a)).unwrap();
    let kinds: Vec<&str> = evs.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "action.submitted",
            "plan.created",
            "action.interrupted",
            "action.finished"
        ]
    );
    assert_eq!(evs[3].payload["status"], "interrupted");
    assert_eq!(evs[3].org, "acme");
    // Reported through the API to its org.
    let k = t.key("acme", Role::Viewer).await;
    let d = t
        .call(
            "GET",
            &format!("/v1/state/actions/{a}"),
            Auth::Key(&k),
            None,
        )
        .await
        .json();
    assert_eq!(d["status"], "interrupted");
    assert!(d["error"].as_str().unwrap().contains("submit it again"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_stops_a_waiting_action_and_a_queued_one_never_starts() {
    let t = T::with(ServerConfig {
        workers: 1,
        ..ServerConfig::default()
    });
    let f = t.file("work/c.log", "x");
    let op = t.key("acme", Role::Operator).await;
    let (waiting, queued) = t.waiting_and_queued(&op, "c.log").await;
    let r = t
        .call(
            "POST",
            &format!("/v1/actions/{queued}/cancel"),
            Auth::Key(&op),
            None,
        )
        .await;
    assert_eq!(r.json()["status"], "cancelled");
    let r = t
        .call(
            "POST",
            &format!("/v1/actions/{waiting}/cancel"),
            Auth::Key(&op),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["status"], "cancelling");
    assert_eq!(
        t.finished(Auth::Key(&op), &waiting).await["status"],
        "declined"
    );
    let q = t.finished(Auth::Key(&op), &queued).await;
    assert_eq!(q["status"], "cancelled");
    assert!(q["tx"].is_null(), "it never ran");
    assert!(f.exists());
    let r = t
        .call(
            "POST",
            &format!("/v1/actions/{queued}/cancel"),
            Auth::Key(&op),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_that_takes_longer_than_the_timeout_gets_503() {
    let t = T::with(ServerConfig {
        request_timeout_ms: 2,
        ..ServerConfig::default()
    });
    // Reading and decoding 10,000 audit records takes far longer than 2 ms.
    let evs: Vec<NewEvent> = (0..10_000)
        .map(|i| {
            NewEvent::new("audit.test", Actor::system())
                .payload(json!({"n": i, "pad": "x".repeat(200)}))
        })
        .collect();
    Journal::open(t.data_dir())
        .unwrap()
        .append_batch(&evs)
        .unwrap();
    assert_eq!(
        t.call("GET", "/healthz", Auth::None, None).await.status,
        StatusCode::OK
    );
    let r = t
        .call("GET", "/v1/audit?limit=10000", Auth::Local, None)
        .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        r.json()["detail"]
            .as_str()
            .unwrap()
            .contains("no answer within 2 ms")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_the_concurrency_limit_requests_get_503_with_retry_after() {
    use axum::body::{Body, Bytes};
    use axum::extract::ConnectInfo;
    use http_body_util::Channel;
    use http_body_util::channel::Sender;
    use tower::ServiceExt;

    let t = T::with(ServerConfig {
        concurrency: 2,
        ..ServerConfig::default()
    });
    let op = t.key("acme", Role::Operator).await;
    // Two submissions whose bodies have not finished arriving hold both slots for as long
    // as the test keeps their senders.
    let mut held: Vec<(Sender<Bytes>, tokio::task::JoinHandle<StatusCode>)> = Vec::new();
    for _ in 0..2 {
        let (tx, body) = Channel::<Bytes>::new(1);
        let mut req = axum::http::Request::post("/v1/actions")
            .header("authorization", format!("Bearer {op}"))
            .header("content-type", "application/json")
            .body(Body::new(body))
            .unwrap();
        req.extensions_mut()
            .insert(ConnectInfo(kernos_server::Peer::Tcp {
                addr: "127.0.0.1:40000".parse().unwrap(),
                tls: false,
            }));
        let app = t.app.clone();
        held.push((
            tx,
            tokio::spawn(async move { app.oneshot(req).await.unwrap().status() }),
        ));
    }
    // Both are inside the daemon once the in-flight count says so.
    let until = std::time::Instant::now() + Duration::from_secs(10);
    while t.st.in_flight() < 2 {
        assert!(
            std::time::Instant::now() < until,
            "the held requests never arrived"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let r = t.call("GET", "/healthz", Auth::None, None).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.headers["retry-after"], "1");
    assert!(
        r.json()["detail"]
            .as_str()
            .unwrap()
            .contains("handling 2 requests already")
    );
    // Let them finish: both are accepted, and the slots are free again.
    let body = json!({"request": "list files in .", "cwd": t.cwd()}).to_string();
    for (mut tx, done) in held {
        tx.send_data(Bytes::from(body.clone())).await.unwrap();
        drop(tx);
        assert_eq!(done.await.unwrap(), StatusCode::ACCEPTED);
    }
    assert_eq!(
        t.call("GET", "/healthz", Auth::None, None).await.status,
        StatusCode::OK
    );
}
