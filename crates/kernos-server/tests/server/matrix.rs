//! The permission matrix, walked whole: every role (and no key) against every endpoint.

use axum::http::StatusCode;
use kernos_server::Role;
use serde_json::{Value, json};

use crate::{Auth, T};

/// Who may call an endpoint.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Need {
    Public,
    Role(Role),
    HostOperator,
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
    // Real targets so allowed calls reach the handler's logic: an action, a transaction, a
    // key, and an approval id (unknown ids answer 404, which also counts as "allowed").
    let a = t
        .submit(
            Auth::Key(&owner),
            json!({"request": "list files in .", "cwd": t.cwd()}),
        )
        .await;
    let d = t.finished(Auth::Key(&owner), &a).await;
    let tx = d["tx"].as_str().unwrap().to_owned();
    let fake_approval = kernos_core::ApprovalId::generate().to_string();

    let submit = json!({"request": "list files in .", "cwd": t.cwd(), "dry_run": true});
    let endpoints: Vec<(&str, String, Option<Value>, Need)> = vec![
        ("GET", "/healthz".into(), None, Need::Public),
        ("GET", "/readyz".into(), None, Need::Public),
        ("GET", "/v1/openapi.json".into(), None, Need::Public),
        ("GET", "/metrics".into(), None, Need::HostOperator),
        (
            "POST",
            "/v1/actions".into(),
            Some(submit),
            Need::Role(Role::Operator),
        ),
        (
            "GET",
            "/v1/events?after=0&prefix=zzz".into(),
            None,
            Need::Role(Role::Viewer),
        ),
        (
            "GET",
            "/v1/state/actions".into(),
            None,
            Need::Role(Role::Viewer),
        ),
        (
            "GET",
            format!("/v1/state/actions/{a}"),
            None,
            Need::Role(Role::Viewer),
        ),
        (
            "GET",
            "/v1/state/approvals".into(),
            None,
            Need::Role(Role::Viewer),
        ),
        (
            "GET",
            "/v1/state/transactions".into(),
            None,
            Need::Role(Role::Viewer),
        ),
        (
            "GET",
            "/v1/state/usage".into(),
            None,
            Need::Role(Role::Viewer),
        ),
        (
            "GET",
            "/v1/state/tools".into(),
            None,
            Need::Role(Role::Viewer),
        ),
        (
            "POST",
            format!("/v1/approvals/{fake_approval}"),
            Some(json!({"approve": false})),
            Need::Role(Role::Operator),
        ),
        (
            "POST",
            format!("/v1/undo/{tx}"),
            Some(json!({})),
            Need::Role(Role::Operator),
        ),
        ("GET", "/v1/keys".into(), None, Need::Role(Role::Admin)),
        (
            "POST",
            "/v1/keys".into(),
            Some(json!({"role": "viewer", "label": "matrix"})),
            Need::Role(Role::Admin),
        ),
        (
            "DELETE",
            "/v1/keys/01j0000000000000000000000a".into(),
            None,
            Need::Role(Role::Admin),
        ),
        ("GET", "/v1/audit".into(), None, Need::Role(Role::Admin)),
        ("GET", "/v1/audit.csv".into(), None, Need::Role(Role::Admin)),
    ];
    let mut walked = 0;
    for (method, path, body, need) in &endpoints {
        // No key at all.
        let r = if path.starts_with("/v1/events") {
            None
        } else {
            Some(t.call(method, path, Auth::None, body.clone()).await)
        };
        if let Some(r) = r {
            match need {
                Need::Public => assert_eq!(r.status, StatusCode::OK, "{method} {path} public"),
                _ => assert_eq!(
                    r.status,
                    StatusCode::UNAUTHORIZED,
                    "{method} {path} without a key"
                ),
            }
        }
        for (role, key) in &keys {
            let allowed = match need {
                Need::Public => true,
                Need::Role(min) => role >= min,
                Need::HostOperator => false, // acme is not the local org
            };
            let status = if path.starts_with("/v1/events") {
                sse_status(&t, path, key).await
            } else {
                t.call(method, path, Auth::Key(key), body.clone())
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
    assert_eq!(walked, endpoints.len() * 4);

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
