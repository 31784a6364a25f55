//! Monitors in the daemon: a disk monitor over a directory fires, journals it, and proposes its
//! cleanup plan as an ordinary action of `monitor:<name>`. Without a lease the plan waits in
//! the approval queue and a loopback webhook receiver gets signed notifications; with the
//! lease granted to the monitor, the cleanup runs unasked and can be undone.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use axum::http::{HeaderMap, StatusCode};
use kernos_server::ServerConfig;
use serde_json::{Value, json};

use crate::{Auth, T};

const SECRET: &str = "a-shared-secret-of-some-length";

/// What the receiver got: each body whose signature checked out (others are refused, 401).
type Got = Arc<Mutex<Vec<Value>>>;

/// A loopback webhook receiver that checks every signature; returns its URL.
async fn receiver() -> (String, Got) {
    let got: Got = Arc::default();
    let keep = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |h: HeaderMap, body: axum::body::Bytes| {
            let keep = keep.clone();
            async move {
                let header = |n: &str| {
                    h.get(n)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_owned()
                };
                let ok = kernos_monitor::webhook::verify(
                    SECRET.as_bytes(),
                    &header("x-kernos-timestamp"),
                    &body,
                    &header("x-kernos-signature"),
                    SystemTime::now(),
                    Duration::from_secs(300),
                );
                if !ok {
                    return StatusCode::UNAUTHORIZED;
                }
                keep.lock()
                    .unwrap()
                    .push(serde_json::from_slice(&body).unwrap());
                StatusCode::OK
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await });
    (url, got)
}

/// A disk monitor over `dir` that always fires (any disk is more than 0.1 % used), proposing
/// to delete `dir/fill`.
fn config(dir: &std::path::Path, hook: &str) -> ServerConfig {
    let spec = json!({
        "name": "full",
        "kind": "disk",
        "mount": dir,
        "threshold": 0.1,
        "clear_below": 0.05,
        "interval": "200ms",
        "remediation": {"plan": {"steps": [{"tool": "fs", "action": "delete", "args": {"path": "{mount}/fill"}}]}},
    });
    ServerConfig {
        monitors: vec![serde_json::from_value(spec).unwrap()],
        webhooks: vec![
            serde_json::from_value(json!({"url": hook, "secret": SECRET, "backoff_ms": 50}))
                .unwrap(),
        ],
        ..ServerConfig::default()
    }
}

async fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ok() {
        assert!(Instant::now() < deadline, "{what} never happened");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fired_monitor_proposes_its_cleanup_which_waits_for_approval_or_runs_under_its_lease() {
    let (hook, got) = receiver().await;
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let watched = home.join("work/in");
    std::fs::create_dir_all(&watched).unwrap();
    std::fs::create_dir_all(home.join("sys")).unwrap();
    let fill = watched.join("fill");
    std::fs::write(&fill, vec![7u8; 4096]).unwrap();
    let mut t = T::open_with(
        dir,
        home,
        config(&watched, &hook),
        kernos_planner::llm::Cascade::offline(),
    );

    // No lease: the cleanup is an action of monitor:full waiting for a person.
    let approvals = t
        .until(
            "/v1/state/approvals",
            Auth::Local,
            "the cleanup asking",
            |v| !v.as_array().unwrap().is_empty(),
        )
        .await;
    let a = &approvals[0];
    assert_eq!(a["name"], "fs.delete", "{a}");
    assert_eq!(a["requested_by"], "monitor:full");
    assert!(fill.exists(), "nothing ran unasked");
    let m = t
        .call("GET", "/v1/monitors", Auth::Local, None)
        .await
        .json();
    assert_eq!(m[0]["state"], "fired", "{m}");
    assert_eq!(m[0]["remediation"], a["action"]);
    // The receiver got the firing and the waiting approval, both signed.
    wait_for("two signed notifications", || {
        got.lock().unwrap().len() >= 2
    })
    .await;
    let events: Vec<String> = got
        .lock()
        .unwrap()
        .iter()
        .map(|n| n["event"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        events.contains(&"monitor.fired".to_owned())
            && events.contains(&"approval.waiting".to_owned()),
        "{events:?}"
    );

    // With a lease for the monitor, the same cleanup runs without asking.
    let grant = json!({
        "grantee": "monitor:full",
        "capabilities": {"actions": ["fs.delete"]},
        "scope": {"paths": [watched]},
        "max_risk": "medium",
        "ttl_s": 3600,
    });
    let r = t.call("POST", "/v1/leases", Auth::Local, Some(grant)).await;
    r.expect(StatusCode::CREATED);
    let cfg = config(&watched, &hook);
    t.restart_configured(cfg, kernos_planner::llm::Cascade::offline());
    wait_for("the leased cleanup", || !fill.exists()).await;
    let m = t
        .call("GET", "/v1/monitors", Auth::Local, None)
        .await
        .json();
    let action = m[0]["remediation"].as_str().unwrap().to_owned();
    let d = t.finished(Auth::Local, &action).await;
    assert_eq!(d["status"], "committed", "{d}");
    assert!(
        d.to_string().contains("within lease"),
        "the lease approved it: {d}"
    );
    // Journaled and undoable: the file comes back.
    let tx = d["tx"].as_str().unwrap();
    let u = t
        .submit(Auth::Local, json!({"undo": tx, "auto_approve": true}))
        .await;
    assert_eq!(t.finished(Auth::Local, &u).await["status"], "undone");
    assert_eq!(std::fs::read(&fill).unwrap().len(), 4096);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_host_operator_adds_and_removes_monitors_through_the_api_and_they_survive_a_restart() {
    let mut t = T::start();
    let watched = t.home.join("work");
    let spec = json!({
        "name": "work-disk",
        "kind": "disk",
        "mount": watched,
        "threshold": 0.1,
        "clear_below": 0.05,
        "interval": "200ms",
    });
    let r = t
        .call("POST", "/v1/monitors", Auth::Local, Some(spec.clone()))
        .await;
    r.expect(StatusCode::CREATED);
    t.until(
        "/v1/monitors",
        Auth::Local,
        "the added monitor firing",
        |v| v[0]["name"] == "work-disk" && v[0]["state"] == "fired",
    )
    .await;
    // Bad input gets a clear answer and changes nothing.
    let dup = t
        .call("POST", "/v1/monitors", Auth::Local, Some(spec.clone()))
        .await;
    assert_eq!(dup.status, StatusCode::CONFLICT);
    let bad = t
        .call(
            "POST",
            "/v1/monitors",
            Auth::Local,
            Some(json!({"name": "x", "kind": "disk", "mount": "relative", "threshold": 1})),
        )
        .await;
    bad.expect(StatusCode::UNPROCESSABLE_ENTITY);
    // Other organisations do not watch the host.
    let owner = t.key("acme", kernos_server::Role::Owner).await;
    let r = t
        .call("POST", "/v1/monitors", Auth::Key(&owner), Some(spec))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // Kept across a restart, then removed for good.
    t.restart();
    t.until(
        "/v1/monitors",
        Auth::Local,
        "the monitor back after the restart",
        |v| v[0]["name"] == "work-disk" && v[0]["state"] == "fired",
    )
    .await;
    let r = t
        .call("DELETE", "/v1/monitors/work-disk", Auth::Local, None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        t.call("GET", "/v1/monitors", Auth::Local, None)
            .await
            .json(),
        json!([])
    );
    t.restart();
    assert_eq!(
        t.call("GET", "/v1/monitors", Auth::Local, None)
            .await
            .json(),
        json!([])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_monitor_whose_remediation_is_a_goal_starts_an_agent_on_it() {
    let llm = kernos_llm::testing::FakeServer::always(crate::agents::turn(&[], true, "looked"));
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let watched = home.join("work");
    std::fs::create_dir_all(&watched).unwrap();
    let spec = json!({
        "name": "full",
        "kind": "disk",
        "mount": watched,
        "threshold": 0.1,
        "clear_below": 0.05,
        "interval": "200ms",
        "remediation": {"agent": "find out what fills {mount} ({used_pct}% used)"},
    });
    let config = ServerConfig {
        monitors: vec![serde_json::from_value(spec).unwrap()],
        ..ServerConfig::default()
    };
    let t = T::open_with(dir, home, config, crate::agents::cascade(&llm.v1()));
    let agents = t
        .until("/v1/agents", Auth::Local, "the monitor's agent", |v| {
            v.as_array()
                .unwrap()
                .iter()
                .any(|a| a["state"] == "finished")
        })
        .await;
    let a = &agents[0];
    assert_eq!(a["owner"], "monitor:full", "{a}");
    let goal = a["goal"].as_str().unwrap();
    assert!(
        goal.starts_with(&format!("find out what fills {}", watched.display())),
        "{goal}"
    );
    let m = t
        .call("GET", "/v1/monitors", Auth::Local, None)
        .await
        .json();
    assert_eq!(m[0]["remediation"], a["agent"], "{m}");
}
