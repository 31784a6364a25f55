//! The permission matrix, walked whole: every role (and no key) against every route of the
//! route table, and the router against the table.

use std::collections::BTreeSet;

use axum::http::StatusCode;
use kernos_server::routes::{Route, Verb};
use kernos_server::{Access, ROUTES, Role};
use serde_json::{Value, json};

use crate::{Auth, T};

/// Real targets for the routes' path parameters, so allowed calls reach the handler's logic.
struct Targets {
    action: String,
    tx: String,
    approval: String,
    cwd: String,
    /// A key to sign in with.
    key: String,
}

/// A request for a route of the table: its path with real ids, and a body where it takes one.
/// A new route with parameters or a body needs a line here (the test says so).
fn sample(r: &Route, t: &Targets) -> (String, Option<Value>) {
    match (r.verb, r.path) {
        (Verb::Post, "/v1/actions") => (
            r.path.into(),
            Some(json!({"request": "list files in .", "cwd": t.cwd, "dry_run": true})),
        ),
        // The action has finished: allowed callers get 409.
        (Verb::Post, "/v1/actions/{id}/cancel") => {
            (format!("/v1/actions/{}/cancel", t.action), None)
        }
        (Verb::Get, "/v1/events") => ("/v1/events?after=0&prefix=zzz".into(), None),
        (Verb::Get, "/v1/state/actions/{id}") => (format!("/v1/state/actions/{}", t.action), None),
        // Unknown approval ids answer 404, which also counts as "allowed".
        (Verb::Post, "/v1/approvals/{id}") => (
            format!("/v1/approvals/{}", t.approval),
            Some(json!({"approve": false})),
        ),
        (Verb::Get, "/v1/state/transactions/{tx}") => {
            (format!("/v1/state/transactions/{}", t.tx), None)
        }
        (Verb::Post, "/v1/undo/{tx}") => (format!("/v1/undo/{}", t.tx), Some(json!({}))),
        (Verb::Post, "/v1/keys") => (
            r.path.into(),
            Some(json!({"role": "viewer", "label": "matrix"})),
        ),
        // Without a model the daemon answers 409, which counts as "allowed".
        (Verb::Post, "/v1/agents") => (r.path.into(), Some(json!({"goal": "check the disk"}))),
        // Only the host operator: everyone here gets 403 before the body is read.
        (Verb::Post, "/v1/monitors") => (r.path.into(), Some(json!({"name": "m"}))),
        (Verb::Delete, "/v1/monitors/{name}") => ("/v1/monitors/none".into(), None),
        // A dry run: planned and described, nothing stored.
        (Verb::Post, "/v1/schedules") => (
            r.path.into(),
            Some(
                json!({"when": "every day at 03:00", "request": "list files in .", "dry_run": true}),
            ),
        ),
        // A schedule that does not exist: 404 for those allowed.
        (_, p) if p.starts_with("/v1/schedules/{id}") => {
            (p.replace("{id}", "01j0000000000000000000000a"), None)
        }
        // An agent that does not exist: 404 for those allowed.
        (_, p) if p.starts_with("/v1/agents/{id}") => {
            (p.replace("{id}", "01j0000000000000000000000a"), None)
        }
        (Verb::Delete, "/v1/keys/{id}") => ("/v1/keys/01j0000000000000000000000a".into(), None),
        (Verb::Post, "/v1/leases") => (
            r.path.into(),
            Some(json!({
                "grantee": "agent:matrix",
                "capabilities": {"actions": ["fs.list"]},
                "max_risk": "low",
                "ttl_s": 60,
            })),
        ),
        // Unknown lease ids answer 404, which also counts as "allowed".
        (Verb::Get, "/v1/leases/{id}") => ("/v1/leases/ls_nothing".into(), None),
        (Verb::Post, "/v1/leases/{id}/renew") => (
            "/v1/leases/ls_nothing/renew".into(),
            Some(json!({"ttl_s": 60})),
        ),
        (Verb::Delete, "/v1/leases/{id}") => ("/v1/leases/ls_nothing".into(), None),
        // A skill org acme does not have: 404 for those allowed, nothing changes.
        (_, p) if p.starts_with("/v1/skills/{name}") => (p.replace("{name}", "none"), None),
        // Signing in with a real key: 201 with a cookie, for anyone (the body is the credential).
        (Verb::Post, "/v1/session") => (r.path.into(), Some(json!({"key": t.key}))),
        // MCP's opening message; GET and DELETE without a session are refused by MCP (4xx),
        // which also counts as "allowed".
        (Verb::Post, "/mcp") => (
            r.path.into(),
            Some(
                json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2025-11-25", "capabilities": {},
                "clientInfo": {"name": "matrix", "version": "1"}}}),
            ),
        ),
        // Event 1 exists (daemon.started); before any checkpoint the proof answers 404, which
        // counts as "allowed".
        (Verb::Get, "/v1/log/proof/inclusion") => ("/v1/log/proof/inclusion?seq=1".into(), None),
        (Verb::Get, "/v1/log/proof/consistency") => {
            ("/v1/log/proof/consistency?from=0&to=1".into(), None)
        }
        // Host operator only: every key of org acme is refused, so nothing rotates here.
        (Verb::Post, "/v1/log/keys/rotate") => (r.path.into(), Some(json!({"overlap_s": 60}))),
        // This daemon witnesses no log: 404 for those allowed.
        (Verb::Post, "/v1/log/witness") => (
            r.path.into(),
            Some(json!({"checkpoint": "x\n1\nAA==\n\n— x AAAAAAA=\n", "old_size": 0})),
        ),
        // Host operator only: every key of org acme is refused (403), so nothing reboots or
        // powers off; on this host even the host operator gets 409 (tests/server/os.rs).
        (Verb::Post, "/v1/system/reboot") | (Verb::Post, "/v1/system/poweroff") => {
            (r.path.into(), None)
        }
        _ => {
            assert!(
                !r.path.contains('{') && r.body.is_none(),
                "no sample request for {r:?}: add one to `sample`"
            );
            (r.path.into(), None)
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_role_against_every_endpoint() {
    let t = T::start();
    t.file("work/a.txt", "a");
    let keys: Vec<(Role, String)> = {
        let mut v = Vec::new();
        for r in Role::ALL {
            v.push((r, t.key("acme", r).await));
        }
        v
    };
    let owner = keys[3].1.clone();
    // An action, its transaction, and an approval id.
    let a = t
        .submit(
            Auth::Key(&owner),
            json!({"request": "list files in .", "cwd": t.cwd()}),
        )
        .await;
    let d = t.finished(Auth::Key(&owner), &a).await;
    let targets = Targets {
        action: a,
        tx: d["tx"].as_str().unwrap().to_owned(),
        approval: kernos_core::ApprovalId::generate().to_string(),
        cwd: t.cwd(),
        key: owner.clone(),
    };

    let mut walked = 0;
    for route in ROUTES {
        let method = route.verb.as_str();
        let need = route.access;
        let (path, body) = sample(route, &targets);
        // No key at all.
        let r = if path.starts_with("/v1/events") {
            None
        } else {
            Some(t.call(method, &path, Auth::None, body.clone()).await)
        };
        if let Some(r) = r {
            match need {
                Access::Public => assert!(
                    r.status.is_success(),
                    "{method} {path} public: {}",
                    r.status
                ),
                _ => assert_eq!(
                    r.status,
                    StatusCode::UNAUTHORIZED,
                    "{method} {path} without a key"
                ),
            }
        }
        for (role, key) in &keys {
            let allowed = match need {
                Access::Public => true,
                Access::Perm(p) => *role >= p.min_role(),
                Access::HostOperator => false, // acme is not the local org
            };
            let status = if path.starts_with("/v1/events") {
                sse_status(&t, &path, key).await
            } else {
                t.call(method, &path, Auth::Key(key), body.clone())
                    .await
                    .status
            };
            if allowed {
                assert!(
                    status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN,
                    "{role} must be allowed {method} {path}, got {status}"
                );
                assert!(
                    !status.is_server_error(),
                    "{method} {path} as {role}: {status}"
                );
            } else {
                assert_eq!(
                    status,
                    StatusCode::FORBIDDEN,
                    "{role} must not {method} {path}"
                );
            }
            walked += 1;
        }
    }
    assert_eq!(walked, ROUTES.len() * 4);

    // The host operator (the socket's user, or an owner key of org `local`) reads metrics;
    // an admin key of `local` does not.
    let m = t.call("GET", "/metrics", Auth::Local, None).await;
    assert_eq!(m.status, StatusCode::OK);
    let text = String::from_utf8_lossy(&m.body).to_string();
    assert!(
        text.contains("kernos_http_request_duration_seconds_bucket"),
        "{text}"
    );
    assert!(
        text.contains("kernos_run_units_total{org=\"acme\"}"),
        "{text}"
    );
    let local_owner = t.key("local", Role::Owner).await;
    let local_admin = t.key("local", Role::Admin).await;
    assert_eq!(
        t.call("GET", "/metrics", Auth::Key(&local_owner), None)
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        t.call("GET", "/metrics", Auth::Key(&local_admin), None)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
}

/// The router serves the table's routes and nothing else on their paths: each entry answers
/// through its access check (401 without a key, 200 when public), every other method on the
/// same path is refused with 405, and a path outside the table is 404.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_router_serves_exactly_the_route_table() {
    let t = T::start();
    let paths: BTreeSet<&str> = ROUTES.iter().map(|r| r.path).collect();
    for path in paths {
        let concrete: String = path
            .split('/')
            .map(|s| if s.starts_with('{') { "x" } else { s })
            .collect::<Vec<_>>()
            .join("/");
        for method in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
            let route = ROUTES
                .iter()
                .find(|r| r.path == path && r.verb.as_str() == method);
            let status = t.call(method, &concrete, Auth::None, None).await.status;
            match route.map(|r| (r.access, r.body.is_some())) {
                None => assert_eq!(
                    status,
                    StatusCode::METHOD_NOT_ALLOWED,
                    "{method} {concrete}"
                ),
                // A public route whose body is required (signing in) reaches its handler,
                // which refuses the missing body.
                Some((Access::Public, true)) => assert!(
                    status.is_client_error()
                        && status != StatusCode::UNAUTHORIZED
                        && status != StatusCode::METHOD_NOT_ALLOWED,
                    "{method} {concrete}: {status}"
                ),
                Some((Access::Public, false)) => {
                    assert_eq!(status, StatusCode::OK, "{method} {concrete}")
                }
                Some(_) => assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {concrete}"),
            }
        }
    }
    let r = t.call("GET", "/v1/nothing", Auth::None, None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

/// The status of an SSE request (the body never ends, so only the head is read).
async fn sse_status(t: &T, path: &str, key: &str) -> StatusCode {
    use axum::body::Body;
    use axum::extract::ConnectInfo;
    use tower::ServiceExt;
    let mut req = axum::http::Request::get(path)
        .header("authorization", format!("Bearer {key}"))
        .body(Body::empty())
        .unwrap();
    req.extensions_mut()
        .insert(ConnectInfo(kernos_server::Peer::Tcp {
            addr: "127.0.0.1:40000".parse().unwrap(),
            tls: false,
        }));
    t.app.clone().oneshot(req).await.unwrap().status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_cannot_be_made_above_the_makers_role_and_revocation_is_immediate() {
    let t = T::start();
    let admin = t.key("acme", Role::Admin).await;
    let owner = t.key("acme", Role::Owner).await;
    let r = t
        .call(
            "POST",
            "/v1/keys",
            Auth::Key(&admin),
            Some(json!({"role": "owner"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(
        r.headers["content-type"], "application/problem+json",
        "errors are problem documents"
    );
    assert!(r.json()["detail"].as_str().unwrap().contains("up to admin"));
    let r = t
        .call(
            "POST",
            "/v1/keys",
            Auth::Key(&owner),
            Some(json!({"role": "owner"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let made = r.json();
    let new_key = made["key"].as_str().unwrap().to_owned();
    assert_eq!(made["org"], "acme", "a key is made in the maker's org");
    // Listing never shows secrets.
    let l = t.call("GET", "/v1/keys", Auth::Key(&owner), None).await;
    assert!(!String::from_utf8_lossy(&l.body).contains(&new_key[30..]));
    // An admin may not revoke an owner key; the owner may, and it stops working at once.
    let id = made["id"].as_str().unwrap();
    let r = t
        .call("DELETE", &format!("/v1/keys/{id}"), Auth::Key(&admin), None)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(
        t.call("GET", "/v1/state/usage", Auth::Key(&new_key), None)
            .await
            .status,
        StatusCode::OK
    );
    let r = t
        .call("DELETE", &format!("/v1/keys/{id}"), Auth::Key(&owner), None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        t.call("GET", "/v1/state/usage", Auth::Key(&new_key), None)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    // A made-up key and a tampered one are refused alike.
    let mut tampered = admin.clone();
    tampered.pop();
    tampered.push('z');
    for k in [tampered.as_str(), "kn_nothing_here", "garbage"] {
        assert_eq!(
            t.call("GET", "/v1/state/usage", Auth::Key(k), None)
                .await
                .status,
            StatusCode::UNAUTHORIZED
        );
    }
}
