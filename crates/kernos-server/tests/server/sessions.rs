//! Browser sessions, as the dashboard uses them: an API key exchanged for a cookie that acts
//! as the key, mutations only with the session's CSRF token, sign-out, revocation, restart.

use axum::http::StatusCode;
use kernos_server::Role;
use serde_json::{Value, json};

use crate::{Auth, Resp, T};

/// A signed-in browser: its cookie header and CSRF token.
struct Browser {
    cookie: String,
    csrf: String,
}

async fn sign_in(t: &T, key: &str) -> (Resp, Browser) {
    let r = t
        .call("POST", "/v1/session", Auth::None, Some(json!({"key": key})))
        .await;
    r.expect(StatusCode::CREATED);
    let set = r.headers["set-cookie"].to_str().unwrap().to_owned();
    let cookie = set.split(';').next().unwrap().to_owned();
    let csrf = r.json()["csrf"].as_str().unwrap().to_owned();
    (r, Browser { cookie, csrf })
}

impl Browser {
    /// A request as the browser sends it: the cookie, and the CSRF token when `csrf`.
    async fn call(&self, t: &T, method: &str, path: &str, body: Option<Value>, csrf: bool) -> Resp {
        let mut headers = vec![("cookie", self.cookie.as_str())];
        if csrf {
            headers.push(("x-csrf-token", self.csrf.as_str()));
        }
        t.call_with(method, path, Auth::None, body, &headers).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_becomes_a_cookie_that_acts_as_the_key_and_changes_need_the_csrf_token() {
    let t = T::start();
    let key = t.key("acme", Role::Operator).await;
    let (r, b) = sign_in(&t, &key).await;
    let set = r.headers["set-cookie"].to_str().unwrap();
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"] {
        assert!(set.contains(attr), "{set}");
    }
    assert!(!set.contains("Secure"), "plain HTTP here: {set}");
    let body = r.json();
    assert_eq!(
        (body["org"].as_str(), body["role"].as_str()),
        (Some("acme"), Some("operator"))
    );
    assert!(!body.to_string().contains(&key), "the key is not echoed");
    assert!(!b.cookie.contains(&key), "the cookie is not the key");

    // Reads need no token; a reload finds the same token.
    let who = b.call(&t, "GET", "/v1/session", None, false).await;
    assert_eq!(who.status, StatusCode::OK);
    assert_eq!(who.json()["csrf"], b.csrf.as_str());
    assert_eq!(
        b.call(&t, "GET", "/v1/state/actions", None, false)
            .await
            .status,
        StatusCode::OK
    );

    // A change without the token, or with another's, is refused before anything is queued.
    let submit = json!({"request": "list files in .", "cwd": t.cwd(), "dry_run": true});
    let r = b
        .call(&t, "POST", "/v1/actions", Some(submit.clone()), false)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(String::from_utf8_lossy(&r.body).contains("X-CSRF-Token"));
    let (_, other) = sign_in(&t, &key).await;
    let forged = Browser {
        cookie: b.cookie.clone(),
        csrf: other.csrf.clone(),
    };
    let r = forged
        .call(&t, "POST", "/v1/actions", Some(submit.clone()), true)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let listed = b
        .call(&t, "GET", "/v1/state/actions", None, false)
        .await
        .json();
    assert_eq!(listed, json!([]), "nothing was submitted");
    // With it, the session acts as its key.
    let r = b.call(&t, "POST", "/v1/actions", Some(submit), true).await;
    r.expect(StatusCode::ACCEPTED);
    let a = r.json()["action"].as_str().unwrap().to_owned();
    let done = t.finished(Auth::Key(&key), &a).await;
    assert_eq!(done["status"], "previewed");

    // A bad key gets no session.
    let r = t
        .call(
            "POST",
            "/v1/session",
            Auth::None,
            Some(json!({"key": "kn_nope_00"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.headers.get("set-cookie").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_out_and_revocation_end_a_session_and_a_restart_keeps_it() {
    let mut t = T::start();
    let key = t.key("acme", Role::Viewer).await;
    let (_, b) = sign_in(&t, &key).await;
    // A viewer's session reads and cannot act, token or not.
    let r = b
        .call(
            &t,
            "POST",
            "/v1/actions",
            Some(json!({"request": "list files in ."})),
            true,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    // The session outlives a daemon restart (the journal keeps its hash).
    t.restart();
    assert_eq!(
        b.call(&t, "GET", "/v1/session", None, false).await.status,
        StatusCode::OK
    );

    // Sign-out needs the token too, then the cookie is dead and cleared.
    assert_eq!(
        b.call(&t, "DELETE", "/v1/session", None, false)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let r = b.call(&t, "DELETE", "/v1/session", None, true).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert!(
        r.headers["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    assert_eq!(
        b.call(&t, "GET", "/v1/session", None, false).await.status,
        StatusCode::UNAUTHORIZED
    );
    // An API key has no session to end.
    let r = t.call("DELETE", "/v1/session", Auth::Key(&key), None).await;
    assert_eq!(r.status, StatusCode::CONFLICT);

    // Revoking the key ends every session opened with it.
    let admin = t.key("acme", Role::Admin).await;
    let op = t.key("acme", Role::Operator).await;
    let (_, b2) = sign_in(&t, &op).await;
    let id = &op[3..29];
    let r = t
        .call("DELETE", &format!("/v1/keys/{id}"), Auth::Key(&admin), None)
        .await;
    r.expect(StatusCode::OK);
    let r = b2.call(&t, "GET", "/v1/session", None, false).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(String::from_utf8_lossy(&r.body).contains("revoked"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_sees_only_its_organisation() {
    let t = T::start();
    let acme = t.key("acme", Role::Owner).await;
    let a = t
        .submit(
            Auth::Key(&acme),
            json!({"request": "list files in .", "cwd": t.cwd()}),
        )
        .await;
    t.finished(Auth::Key(&acme), &a).await;
    let globex = t.key("globex", Role::Owner).await;
    let (_, b) = sign_in(&t, &globex).await;
    let listed = b
        .call(&t, "GET", "/v1/state/actions", None, false)
        .await
        .json();
    assert_eq!(listed, json!([]));
    let r = b
        .call(&t, "GET", &format!("/v1/state/actions/{a}"), None, false)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = b
        .call(&t, "POST", &format!("/v1/actions/{a}/cancel"), None, true)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}
