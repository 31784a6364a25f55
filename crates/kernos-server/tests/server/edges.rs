//! The HTTP layer's edges, as an attacker or a careless client meets them: revoked keys,
//! resume points from the future, huge declared bodies, the authentication scheme's spelling,
//! and what a viewer may see of an action.

use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use kernos_server::{Peer, Role};
use serde_json::json;
use tower::ServiceExt;

use crate::sse::Stream;
use crate::{Auth, T};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_a_key_ends_its_open_event_stream_at_once() {
    let t = T::start();
    let viewer = t.key("acme", Role::Viewer).await;
    let op = t.key("acme", Role::Operator).await;
    let mut s = Stream::open(&t, "/v1/events", Auth::Key(&viewer), &[]).await;
    // The stream works before the revocation: it carries a whole action.
    let first = t
        .submit(
            Auth::Key(&op),
            json!({"request": "list files in .", "cwd": t.cwd()}),
        )
        .await;
    t.finished(Auth::Key(&op), &first).await;
    loop {
        let e = s
            .next(Duration::from_secs(10))
            .await
            .expect("the first action's events");
        if e.event == "action.finished" {
            break;
        }
    }
    let keys = t
        .call("GET", "/v1/keys?org=acme", Auth::Local, None)
        .await
        .json();
    let id = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["role"] == "viewer")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = t
        .call("DELETE", &format!("/v1/keys/{id}"), Auth::Local, None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    // Events keep coming for the org; none reaches the revoked key's stream, which ends.
    for _ in 0..3 {
        let a = t
            .submit(
                Auth::Key(&op),
                json!({"request": "list files in .", "cwd": t.cwd()}),
            )
            .await;
        t.finished(Auth::Key(&op), &a).await;
    }
    let mut after = Vec::new();
    while let Some(e) = s.next(Duration::from_secs(2)).await {
        after.push(e.event);
    }
    let leaked: Vec<&String> = after.iter().filter(|k| !k.starts_with("audit.")).collect();
    assert!(leaked.is_empty(), "events after the revocation: {after:?}");
    // And a new stream with the key is refused.
    assert!(
        Stream::try_open(&t, "/v1/events", Auth::Key(&viewer))
            .await
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_point_beyond_the_newest_event_is_refused() {
    let t = T::start();
    let k = t.key("acme", Role::Viewer).await;
    let head = t.call("GET", "/healthz", Auth::None, None).await.json()["head"]
        .as_u64()
        .unwrap();
    for (path, headers) in [
        (
            "/v1/events".to_owned(),
            vec![("last-event-id", u64::MAX.to_string())],
        ),
        (format!("/v1/events?after={}", head + 1000), vec![]),
    ] {
        let h: Vec<(&str, &str)> = headers.iter().map(|(a, b)| (*a, b.as_str())).collect();
        let r = t.call_with("GET", &path, Auth::Key(&k), None, &h).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{path} {h:?}");
        assert!(
            String::from_utf8_lossy(&r.body).contains("beyond the newest event"),
            "{}",
            String::from_utf8_lossy(&r.body)
        );
    }
    // The head itself is a fine resume point.
    assert!(
        Stream::try_open(&t, &format!("/v1/events?after={head}"), Auth::Key(&k))
            .await
            .is_some()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_declared_body_gets_413_at_once_and_the_connection_closes() {
    let t = T::start();
    let k = t.key("acme", Role::Operator).await;
    let mut req = Request::post("/v1/actions")
        .header("authorization", format!("Bearer {k}"))
        .header("content-type", "application/json")
        .header("content-length", "1000000000000")
        .body(Body::empty())
        .unwrap();
    req.extensions_mut().insert(ConnectInfo(Peer::Tcp {
        addr: "127.0.0.1:40000".parse().unwrap(),
        tls: false,
    }));
    let started = std::time::Instant::now();
    let r = tokio::time::timeout(Duration::from_secs(5), t.app.clone().oneshot(req))
        .await
        .expect("answered at once, not after the request timeout")
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(r.headers()["connection"], "close");
    assert_eq!(r.headers()["content-type"], kernos_server::PROBLEM_JSON);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_request_target_or_huge_headers_get_problem_documents() {
    let t = T::start();
    let k = t.key("acme", Role::Viewer).await;
    let long = format!("/v1/state/actions?limit=1&x={}", "a".repeat(9000));
    let r = t.call("GET", &long, Auth::Key(&k), None).await;
    assert_eq!(r.status, StatusCode::URI_TOO_LONG);
    assert_eq!(r.headers["content-type"], kernos_server::PROBLEM_JSON);
    assert!(r.json()["detail"].as_str().unwrap().contains("JSON body"));
    let big = "b".repeat(70 * 1024);
    let r = t
        .call_with(
            "GET",
            "/v1/state/actions",
            Auth::Key(&k),
            None,
            &[("x-padding", big.as_str())],
        )
        .await;
    assert_eq!(r.status, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    assert_eq!(r.headers["content-type"], kernos_server::PROBLEM_JSON);
    // Ordinary requests are untouched.
    let r = t
        .call("GET", "/v1/state/actions?limit=1", Auth::Key(&k), None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_401_names_its_scheme_and_the_scheme_is_case_insensitive() {
    let t = T::start();
    let r = t.call("GET", "/v1/state/actions", Auth::None, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.headers["www-authenticate"], "Bearer realm=\"kernos\"");
    let k = t.key("acme", Role::Viewer).await;
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let auth = format!("{scheme} {k}");
        let r = t
            .call_with(
                "GET",
                "/v1/state/actions",
                Auth::None,
                None,
                &[("authorization", auth.as_str())],
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{scheme}");
    }
    let r = t
        .call_with(
            "GET",
            "/v1/state/actions",
            Auth::None,
            None,
            &[("authorization", &format!("Basic {k}"))],
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::UNAUTHORIZED,
        "another scheme is not a key"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_sees_an_action_without_its_audit_records() {
    let t = T::start();
    t.file("work/old.log", "x");
    let op = t.key("acme", Role::Operator).await;
    let viewer = t.key("acme", Role::Viewer).await;
    let admin = t.key("acme", Role::Admin).await;
    let a = t
        .submit(
            Auth::Key(&op),
            json!({"request": "delete old.log", "cwd": t.cwd()}),
        )
        .await;
    let approval = t.pending(Auth::Key(&op), &a).await;
    let id = approval["approval"].as_str().unwrap();
    let r = t.answer(&admin, id, true).await;
    assert_eq!(r.status, StatusCode::OK);
    t.finished(Auth::Key(&op), &a).await;
    let kinds = |key: &str| {
        let t = &t;
        let path = format!("/v1/state/actions/{a}");
        let key = key.to_owned();
        async move {
            t.call("GET", &path, Auth::Key(&key), None).await.json()["events"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["kind"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    let seen_by_admin = kinds(&admin).await;
    assert!(
        seen_by_admin.iter().any(|k| k.starts_with("audit.")),
        "{seen_by_admin:?}"
    );
    let seen_by_viewer = kinds(&viewer).await;
    assert!(
        !seen_by_viewer.iter().any(|k| k.starts_with("audit.")),
        "{seen_by_viewer:?}"
    );
    assert!(seen_by_viewer.contains(&"action.finished".to_owned()));
}

/// Undo's risk comes from what it touches and is never below what the undone change was judged:
/// an operator cannot put back an admin-approved high-risk recursive delete on its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undoing_a_high_risk_change_needs_whoever_could_approve_it() {
    let t = T::start();
    t.file("work/olddir/a.txt", "a");
    t.file("work/olddir/sub/b.txt", "b");
    let op = t.key("acme", Role::Operator).await;
    let admin = t.key("acme", Role::Admin).await;
    let a = t
        .submit(
            Auth::Key(&op),
            json!({"request": "delete the folder olddir", "cwd": t.cwd(), "auto_approve": true}),
        )
        .await;
    let p = t.pending(Auth::Key(&op), &a).await;
    assert_eq!(p["risk"], "high", "{p}");
    let id = p["approval"].as_str().unwrap().to_owned();
    let r = t.answer(&admin, &id, true).await;
    assert_eq!(r.status, StatusCode::OK);
    let done = t.finished(Auth::Key(&op), &a).await;
    assert_eq!(done["status"], "committed", "{done}");
    let dir = std::path::Path::new(&t.cwd()).join("olddir");
    assert!(!dir.exists());
    let tx = done["tx"].as_str().unwrap();

    // The operator's undo (auto-approving what an operator may) waits for an admin.
    let r = t
        .call(
            "POST",
            &format!("/v1/undo/{tx}"),
            Auth::Key(&op),
            Some(json!({})),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let u = r.json()["action"].as_str().unwrap().to_owned();
    let p = t.pending(Auth::Key(&op), &u).await;
    assert_eq!(p["name"], "undo");
    assert_eq!(p["risk"], "high", "{p}");
    assert_eq!(p["min_role"], "admin");
    let uid = p["approval"].as_str().unwrap().to_owned();
    let r = t.answer(&op, &uid, true).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(!dir.exists(), "nothing was put back without an admin");
    let r = t.answer(&admin, &uid, true).await;
    assert_eq!(r.status, StatusCode::OK);
    let d = t.finished(Auth::Key(&op), &u).await;
    assert_eq!(d["status"], "undone", "{d}");
    assert_eq!(std::fs::read_to_string(dir.join("sub/b.txt")).unwrap(), "b");
}
