//! Capability leases (issue 15): granted within the granter's own authority, steps inside a
//! lease run without asking, one path outside asks, an expired or revoked lease stops the next
//! step, and no lease widens what policy or the organisation's scope allows.

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use kernos_server::Role;
use serde_json::{Value, json};

use crate::{Auth, HOLD, T};

/// The public id of a key (`kn_<id>_<secret>`).
fn key_id(key: &str) -> &str {
    &key[3..29]
}

fn step(action: &str, args: Value) -> Value {
    let (tool, action) = action.split_once('.').unwrap();
    json!({"tool": tool, "action": action, "args": args})
}

/// Grants a lease with `by` and returns the answer.
async fn grant(t: &T, by: &str, body: Value) -> crate::Resp {
    t.call("POST", "/v1/leases", Auth::Key(by), Some(body))
        .await
}

/// A lease for `key`'s steps: fs actions under `home/work/in`, up to medium risk.
fn fs_lease(t: &T, key: &str, ttl_s: u64) -> Value {
    json!({
        "grantee": format!("key:{}", key_id(key)),
        "capabilities": {"actions": ["fs.*"]},
        "scope": {"paths": [t.home.join("work/in")]},
        "max_risk": "medium",
        "ttl_s": ttl_s,
    })
}

/// Grants `body` with `by`, expecting 201; returns the lease.
async fn granted(t: &T, by: &str, body: Value) -> Value {
    let r = grant(t, by, body).await;
    r.expect(StatusCode::CREATED);
    r.json()
}

fn write(t: &T, rel: &str) -> Value {
    step(
        "fs.write",
        json!({"path": t.home.join("work").join(rel), "content": "x"}),
    )
}

fn events_of<'a>(d: &'a Value, kind: &str) -> Vec<&'a Value> {
    d["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == kind)
        .collect()
}

/// A lease as `key` sees it.
async fn show(t: &T, key: &str, id: &str) -> Value {
    t.call("GET", &format!("/v1/leases/{id}"), Auth::Key(key), None)
        .await
        .json()
}

/// Submits a plan whose first step is held (see `NoChildren`) and waits until it runs.
async fn submit_held(t: &T, key: &str, then: Value) -> String {
    let before = t.held();
    let steps = json!([
        step(
            "shell.run",
            json!({"command": format!("echo {HOLD}"), "cwd": t.cwd()})
        ),
        then
    ]);
    let a = t
        .submit(
            Auth::Key(key),
            json!({"plan": {"steps": steps}, "cwd": t.cwd()}),
        )
        .await;
    let until = Instant::now() + Duration::from_secs(30);
    while t.held() == before {
        assert!(Instant::now() < until, "the held step never started");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    a
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_inside_the_lease_runs_unasked_and_one_path_outside_asks() {
    let mut t = T::start();
    std::fs::create_dir_all(t.home.join("work/in")).unwrap();
    std::fs::create_dir_all(t.home.join("work/inside")).unwrap();
    let op = t.key("acme", Role::Operator).await;
    let lease = granted(&t, &op, fs_lease(&t, &op, 600)).await;
    let id = lease["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("ls_"), "{lease}");
    assert_eq!(lease["state"], "active");
    assert_eq!(lease["granted_by"], format!("key:{}", key_id(&op)));

    // Inside: a medium-risk change, no auto-approval, nobody asked.
    let a = t
        .submit(
            Auth::Key(&op),
            json!({"plan": {"steps": [write(&t, "in/a.txt")]}}),
        )
        .await;
    let d = t.finished(Auth::Key(&op), &a).await;
    assert_eq!(d["status"], "committed", "{d}");
    assert!(t.home.join("work/in/a.txt").exists());
    assert!(events_of(&d, "approval.requested").is_empty(), "{d}");
    assert_eq!(events_of(&d, "step.decided")[0]["payload"]["lease"], id);
    let approved = events_of(&d, "approval.decided")[0]["payload"]["reason"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        approved.contains(&format!("within lease {id}")),
        "{approved}"
    );

    // One path outside (`inside` is not under `in`): asked through the approval queue.
    let b = t
        .submit(
            Auth::Key(&op),
            json!({"plan": {"steps": [write(&t, "inside/b.txt")]}}),
        )
        .await;
    let pending = t.pending(Auth::Key(&op), &b).await;
    let why = pending["reasons"][0].as_str().unwrap();
    assert!(
        why.starts_with(&format!("outside lease {id}: ")),
        "{pending}"
    );
    assert!(why.contains("inside/b.txt"), "{why}");
    let r = t
        .answer(&op, pending["approval"].as_str().unwrap(), false)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(t.finished(Auth::Key(&op), &b).await["status"], "declined");
    assert!(!t.home.join("work/inside/b.txt").exists());

    // Usage is counted, listed by grantee, and rebuilt from the journal after a restart.
    assert_eq!(show(&t, &op, &id).await["used"]["steps"], 1);
    let listed = t
        .call(
            "GET",
            &format!("/v1/leases?grantee=key:{}", key_id(&op)),
            Auth::Key(&op),
            None,
        )
        .await
        .json();
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    let none = t
        .call("GET", "/v1/leases?grantee=agent:x", Auth::Key(&op), None)
        .await
        .json();
    assert_eq!(none, json!([]));
    let m = t.call("GET", "/metrics", Auth::Local, None).await;
    let metrics = String::from_utf8_lossy(&m.body).to_string();
    assert!(
        metrics.contains("kernos_leases_active{org=\"acme\"} 1"),
        "{metrics}"
    );
    t.restart();
    let after = show(&t, &op, &id).await;
    assert_eq!(after["used"]["steps"], 1, "{after}");
    assert_eq!(after["state"], "active");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_that_expires_between_two_steps_stops_the_second() {
    let t = T::start();
    std::fs::create_dir_all(t.home.join("work/in")).unwrap();
    let op = t.key("acme", Role::Operator).await;
    let admin = t.key("acme", Role::Admin).await;
    // Granted by an admin: the held step runs a program (high risk).
    let lease = granted(
        &t,
        &admin,
        json!({
            "grantee": format!("key:{}", key_id(&op)),
            "capabilities": {"actions": ["shell.run", "fs.*"]},
            "scope": {"paths": [t.home.join("work")]},
            "max_risk": "high",
            "ttl_s": 3,
        }),
    )
    .await;
    let a = submit_held(&t, &op, write(&t, "in/late.txt")).await;
    // Let the running step finish only once the lease has expired.
    let expires = lease["expires_ms"].as_i64().unwrap();
    while kernos_core::time::now_ms() <= expires + 50 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    t.let_go();
    let d = t.finished(Auth::Key(&op), &a).await;
    assert_eq!(d["status"], "declined", "{d}");
    assert!(
        events_of(&d, "approval.requested").is_empty(),
        "nobody asked"
    );
    let declined = events_of(&d, "approval.decided");
    let why = declined.last().unwrap()["payload"]["reason"]
        .as_str()
        .unwrap();
    assert!(
        why.contains(&format!("lease {} expired", lease["id"].as_str().unwrap())),
        "{why}"
    );
    assert!(!t.home.join("work/in/late.txt").exists());
    assert_eq!(
        events_of(&d, "step.finished").len(),
        1,
        "the first step ran"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_is_immediate_mid_run_and_for_the_next_action() {
    let t = T::start();
    std::fs::create_dir_all(t.home.join("work/in")).unwrap();
    let op = t.key("acme", Role::Operator).await;
    let admin = t.key("acme", Role::Admin).await;
    let lease = granted(
        &t,
        &admin,
        json!({
            "grantee": format!("key:{}", key_id(&op)),
            "capabilities": {"actions": ["shell.run", "fs.*"]},
            "scope": {"paths": [t.home.join("work")]},
            "max_risk": "high",
            "ttl_s": 600,
        }),
    )
    .await;
    let id = lease["id"].as_str().unwrap().to_owned();

    // Mid-run: revoked while step 1 runs; step 1 finishes, step 2 never starts.
    let a = submit_held(&t, &op, write(&t, "in/after.txt")).await;
    let r = t
        .call("DELETE", &format!("/v1/leases/{id}"), Auth::Key(&op), None)
        .await;
    r.expect(StatusCode::OK);
    assert_eq!(r.json()["state"], "revoked");
    t.let_go();
    let d = t.finished(Auth::Key(&op), &a).await;
    assert_eq!(d["status"], "declined", "{d}");
    let why = events_of(&d, "approval.decided").last().unwrap()["payload"]["reason"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(why.contains(&format!("lease {id} was revoked")), "{why}");
    assert!(!t.home.join("work/in/after.txt").exists());

    // The next action under the key has no lease: its change waits for a person.
    let b = t
        .submit(
            Auth::Key(&op),
            json!({"plan": {"steps": [write(&t, "in/next.txt")]}}),
        )
        .await;
    let pending = t.pending(Auth::Key(&op), &b).await;
    t.answer(&op, pending["approval"].as_str().unwrap(), false)
        .await;
    assert_eq!(t.finished(Auth::Key(&op), &b).await["status"], "declined");

    // Revoked is final: not again, not renewed.
    let again = t
        .call("DELETE", &format!("/v1/leases/{id}"), Auth::Key(&op), None)
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    let renew = t
        .call(
            "POST",
            &format!("/v1/leases/{id}/renew"),
            Auth::Key(&admin),
            Some(json!({"ttl_s": 60})),
        )
        .await;
    assert_eq!(renew.status, StatusCode::CONFLICT);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nobody_grants_more_than_they_may_approve_and_bad_grants_say_why() {
    let t = T::start();
    let op = t.key("acme", Role::Operator).await;
    let admin = t.key("acme", Role::Admin).await;
    let mut high = fs_lease(&t, &op, 60);
    high["max_risk"] = json!("high");
    let r = grant(&t, &op, high.clone()).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(
        r.json()["detail"]
            .as_str()
            .unwrap()
            .contains("up to medium risk, not high"),
        "{}",
        r.json()
    );
    let by_admin = granted(&t, &admin, high).await;
    // An operator may not renew what it could not have granted.
    let r = t
        .call(
            "POST",
            &format!("/v1/leases/{}/renew", by_admin["id"].as_str().unwrap()),
            Auth::Key(&op),
            Some(json!({"ttl_s": 60})),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = t
        .call(
            "POST",
            &format!("/v1/leases/{}/renew", by_admin["id"].as_str().unwrap()),
            Auth::Key(&admin),
            Some(json!({"ttl_s": 7200})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.json()["expires_ms"].as_i64().unwrap() > by_admin["expires_ms"].as_i64().unwrap());

    let globex = t.key("globex", Role::Operator).await;
    for (change, needle) in [
        (json!({"grantee": "nobody"}), "is not `agent:<id>`"),
        (json!({"grantee": "key:../x"}), "is not `agent:<id>`"),
        (
            json!({"grantee": format!("key:{}", key_id(&globex))}),
            "no active key",
        ),
        (json!({"scope": {"paths": ["work/in"]}}), "must be absolute"),
        (json!({"scope": {"paths": ["/srv/../etc"]}}), "without `..`"),
        (json!({"capabilities": {"actions": []}}), "cover nothing"),
        (
            json!({"capabilities": {"actions": ["rm -rf"]}}),
            "not `tool.action`",
        ),
        (json!({"ttl_s": 0}), "ttl_s must be between"),
        (json!({"budget": {"max_steps": 0}}), "max_steps"),
    ] {
        let mut body = fs_lease(&t, &op, 60);
        for (k, v) in change.as_object().unwrap() {
            body[k] = v.clone();
        }
        let r = grant(&t, &op, body).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{change}");
        let detail = r.json()["detail"].as_str().unwrap().to_owned();
        assert!(detail.contains(needle), "{change}: {detail}");
    }

    // Every change is in the audit log, with who made it and which lease.
    let audit = t
        .call(
            "GET",
            "/v1/audit?action=lease.granted",
            Auth::Key(&admin),
            None,
        )
        .await
        .json();
    let recs = audit.as_array().unwrap();
    assert_eq!(recs.len(), 1, "{audit}");
    assert_eq!(recs[0]["target"], by_admin["id"]);
    assert_eq!(recs[0]["role"], "admin");
    let renewed = t
        .call(
            "GET",
            "/v1/audit?action=lease.renewed",
            Auth::Key(&admin),
            None,
        )
        .await
        .json();
    assert_eq!(renewed.as_array().unwrap().len(), 1, "{renewed}");
}

/// A lease spares asking; it never reaches past policy. A path outside the organisation's
/// filesystem scope stays denied even when the lease names it and its owner granted it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_cannot_widen_the_organisations_scope() {
    let t = T::start();
    let outside = t.file("work/acme-only.txt", "not red's");
    let red = t.key("red", Role::Owner).await;
    granted(
        &t,
        &red,
        json!({
            "grantee": format!("key:{}", key_id(&red)),
            "capabilities": {"actions": ["*"], "effects": ["read", "write", "delete"]},
            "scope": {"paths": ["/"]},
            "max_risk": "high",
            "ttl_s": 600,
        }),
    )
    .await;
    for s in [
        step("fs.read", json!({"path": outside})),
        step("fs.delete", json!({"path": outside})),
    ] {
        let a = t
            .submit(Auth::Key(&red), json!({"plan": {"steps": [s]}}))
            .await;
        let d = t.finished(Auth::Key(&red), &a).await;
        assert_eq!(d["status"], "denied", "{d}");
        assert!(
            d.to_string()
                .contains("outside this organisation's filesystem scope")
        );
    }
    assert_eq!(std::fs::read_to_string(&outside).unwrap(), "not red's");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spent_step_budget_stops_the_next_step() {
    let t = T::start();
    std::fs::create_dir_all(t.home.join("work/in")).unwrap();
    let op = t.key("acme", Role::Operator).await;
    let mut body = fs_lease(&t, &op, 600);
    body["budget"] = json!({"max_steps": 1});
    let lease = granted(&t, &op, body).await;
    let a = t
        .submit(
            Auth::Key(&op),
            json!({"plan": {"steps": [write(&t, "in/one.txt"), write(&t, "in/two.txt")]}}),
        )
        .await;
    let d = t.finished(Auth::Key(&op), &a).await;
    assert_eq!(d["status"], "declined", "{d}");
    let why = events_of(&d, "approval.decided").last().unwrap()["payload"]["reason"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(why.contains("has run its 1 steps"), "{why}");
    assert!(t.home.join("work/in/one.txt").exists());
    assert!(!t.home.join("work/in/two.txt").exists());
    let shown = show(&t, &op, lease["id"].as_str().unwrap()).await;
    assert_eq!(shown["state"], "spent", "{shown}");
}
