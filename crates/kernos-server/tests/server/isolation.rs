//! Organisations are isolated: one never sees another's actions, events, approvals, usage,
//! transactions, audit records or keys, by any endpoint or filter.

use axum::http::StatusCode;
use kernos_server::Role;
use serde_json::json;

use crate::mcp::mcp;
use crate::sse::read_events;
use crate::{Auth, T};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_org_sees_nothing_of_the_first() {
    let t = T::start();
    t.file("work/old.log", "x");
    let acme_owner = t.key("acme", Role::Owner).await;
    let acme_op = t.key("acme", Role::Operator).await;
    // acme: a finished read (a transaction and usage), and a change waiting for approval.
    let read = t
        .submit(
            Auth::Key(&acme_op),
            json!({"request": "list files in .", "cwd": t.cwd()}),
        )
        .await;
    let done = t.finished(Auth::Key(&acme_op), &read).await;
    let acme_tx = done["tx"].as_str().unwrap().to_owned();
    let waiting = t
        .submit(
            Auth::Key(&acme_op),
            json!({"request": "delete old.log", "cwd": t.cwd()}),
        )
        .await;
    let approval = t.pending(Auth::Key(&acme_op), &waiting).await;
    let approval_id = approval["approval"].as_str().unwrap().to_owned();
    let acme_keys = t
        .call("GET", "/v1/keys", Auth::Key(&acme_owner), None)
        .await
        .json();
    let acme_key_id = acme_keys[0]["id"].as_str().unwrap().to_owned();
    // acme: a capability lease for its operator's key.
    let lease = t
        .call(
            "POST",
            "/v1/leases",
            Auth::Key(&acme_owner),
            Some(json!({
                "grantee": format!("key:{}", &acme_op[3..29]),
                "capabilities": {"actions": ["fs.*"]},
                "scope": {"paths": [t.home.join("work")]},
                "max_risk": "low",
                "ttl_s": 600,
            })),
        )
        .await;
    assert_eq!(lease.status, StatusCode::CREATED);
    let acme_lease = lease.json()["id"].as_str().unwrap().to_owned();

    // The transparency log spans every organisation: a checkpoint covers acme's events, and
    // acme (and the host operator) can prove them.
    t.call("POST", "/v1/log/checkpoint", Auth::Local, None)
        .await
        .expect(StatusCode::OK);
    let acme_events = t
        .call(
            "GET",
            "/v1/state/journal?limit=1000",
            Auth::Key(&acme_owner),
            None,
        )
        .await
        .json();
    let acme_seq = acme_events["events"].as_array().unwrap().last().unwrap()["seq"]
        .as_u64()
        .unwrap();
    let proof_path = format!("/v1/log/proof/inclusion?seq={acme_seq}");
    for who in [Auth::Key(&acme_owner), Auth::Local] {
        t.call("GET", &proof_path, who, None)
            .await
            .expect(StatusCode::OK);
    }

    for role in Role::ALL {
        let g = t.key("globex", role).await;
        let r = t.call("GET", &proof_path, Auth::Key(&g), None).await;
        assert!(
            [StatusCode::NOT_FOUND, StatusCode::FORBIDDEN].contains(&r.status),
            "{role} of globex proves acme's event {acme_seq}: {}",
            r.status
        );
        let k = Auth::Key(&g);
        let body = |p: &str| {
            let t = &t;
            let p = p.to_owned();
            async move { String::from_utf8_lossy(&t.call("GET", &p, k, None).await.body).to_string() }
        };
        for p in [
            "/v1/state/actions",
            "/v1/state/approvals",
            "/v1/state/transactions",
            "/v1/state/usage",
            "/v1/state/usage/daily",
            "/v1/state/journal",
            "/v1/state/journal?kind=action.&limit=1000",
            "/v1/state/journal/verify",
            "/v1/fleet/nodes",
            "/v1/log/checkpoint",
            "/v1/log/checkpoints",
            "/v1/log/keys",
            "/v1/keys",
            "/v1/leases",
            "/v1/audit",
            "/v1/audit.csv",
        ] {
            let b = body(p).await;
            for secret in [
                &read,
                &waiting,
                &acme_tx,
                &approval_id,
                &acme_key_id,
                &acme_lease,
            ] {
                assert!(
                    !b.contains(secret.as_str()),
                    "{role} of globex sees {secret} in {p}: {b}"
                );
            }
            assert!(
                !b.contains("\"acme\""),
                "{role} of globex sees acme in {p}: {b}"
            );
        }
        let r = t
            .call("GET", &format!("/v1/state/actions/{read}"), k, None)
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{role}");
        // A transaction of another org, by full id or by the short part `kernos show` takes,
        // answers exactly as one that does not exist.
        for id in [acme_tx.as_str(), &acme_tx[acme_tx.len() - 8..]] {
            let r = t
                .call("GET", &format!("/v1/state/transactions/{id}"), k, None)
                .await;
            assert_eq!(r.status, StatusCode::NOT_FOUND, "{role} reads {id}");
            assert!(!String::from_utf8_lossy(&r.body).contains("list files"));
        }
        let r = t
            .call("GET", &format!("/v1/leases/{acme_lease}"), k, None)
            .await;
        assert_eq!(
            r.status,
            StatusCode::NOT_FOUND,
            "{role} reads another's lease"
        );
        if role >= Role::Operator {
            let r = t
                .call(
                    "POST",
                    &format!("/v1/leases/{acme_lease}/renew"),
                    k,
                    Some(json!({"ttl_s": 60})),
                )
                .await;
            assert_eq!(r.status, StatusCode::NOT_FOUND, "{role} renews across orgs");
            let r = t
                .call("DELETE", &format!("/v1/leases/{acme_lease}"), k, None)
                .await;
            assert_eq!(
                r.status,
                StatusCode::NOT_FOUND,
                "{role} revokes across orgs"
            );
            // Nor can a grant attach a lease to another organisation's key.
            let r = t
                .call(
                    "POST",
                    "/v1/leases",
                    k,
                    Some(json!({
                        "grantee": format!("key:{}", &acme_op[3..29]),
                        "capabilities": {"actions": ["fs.*"]},
                        "max_risk": "low",
                        "ttl_s": 60,
                    })),
                )
                .await;
            assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{role}");
        }
        let usage = t.call("GET", "/v1/state/usage", k, None).await.json();
        assert_eq!(usage["units"], 0.0, "{role}: {usage}");
        if role >= Role::Operator {
            let r = t
                .call(
                    "POST",
                    &format!("/v1/approvals/{approval_id}"),
                    k,
                    Some(json!({"approve": true})),
                )
                .await;
            assert_eq!(
                r.status,
                StatusCode::NOT_FOUND,
                "{role} approves across orgs"
            );
            let r = t
                .call("POST", &format!("/v1/undo/{acme_tx}"), k, Some(json!({})))
                .await;
            assert_eq!(r.status, StatusCode::NOT_FOUND, "{role} undoes across orgs");
            let r = t
                .call("POST", &format!("/v1/actions/{waiting}/cancel"), k, None)
                .await;
            assert_eq!(
                r.status,
                StatusCode::NOT_FOUND,
                "{role} cancels across orgs"
            );
        }
        if role >= Role::Admin {
            let r = t.call("GET", "/v1/keys?org=acme", k, None).await;
            assert_eq!(r.status, StatusCode::FORBIDDEN);
            let r = t
                .call("DELETE", &format!("/v1/keys/{acme_key_id}"), k, None)
                .await;
            assert_eq!(r.status, StatusCode::NOT_FOUND);
            let r = t
                .call(
                    "POST",
                    "/v1/keys",
                    k,
                    Some(json!({"org": "acme", "role": "viewer"})),
                )
                .await;
            assert_eq!(r.status, StatusCode::FORBIDDEN);
        }
        // Events: from the start of the journal, by every filter.
        for q in [
            "after=0".to_owned(),
            format!("after=0&action={read}"),
            "after=0&prefix=action.".to_owned(),
            "after=0&prefix=audit.".to_owned(),
        ] {
            let evs = read_events(&t, &format!("/v1/events?{q}"), k, &[], usize::MAX, 300).await;
            assert!(
                evs.iter().all(|e| e.data["org"] == "globex"),
                "{role} with {q} sees another org: {:?}",
                evs.iter().map(|e| &e.data).collect::<Vec<_>>()
            );
        }
        let r = t.call("GET", "/v1/events?org=acme", k, None).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
    }
    // acme still sees its own approval and can decline it.
    let r = t
        .call(
            "POST",
            &format!("/v1/approvals/{approval_id}"),
            Auth::Key(&acme_op),
            Some(json!({"approve": false, "reason": "test over"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_org_sees_and_steers_none_of_an_orgs_agents() {
    let llm = kernos_llm::testing::FakeServer::always(crate::agents::turn(
        &[],
        true,
        "secret answer 7f3a",
    ));
    let t = crate::agents::with_model(&llm);
    let k = t.key("acme", Role::Owner).await;
    let id = crate::agents::spawn(&t, &k, json!({"goal": "acme private goal"})).await;
    crate::agents::ended(&t, &k, &id).await;
    for role in Role::ALL {
        let g = t.key("globex", role).await;
        let list = t.call("GET", "/v1/agents", Auth::Key(&g), None).await;
        assert_eq!(list.json(), json!([]), "{role}");
        for (m, p) in [
            ("GET", format!("/v1/agents/{id}")),
            ("GET", format!("/v1/agents/{id}/logs")),
            ("POST", format!("/v1/agents/{id}/pause")),
            ("POST", format!("/v1/agents/{id}/resume")),
            ("POST", format!("/v1/agents/{id}/kill")),
            ("POST", format!("/v1/agents/{id}/clone")),
        ] {
            let r = t.call(m, &p, Auth::Key(&g), None).await;
            let want = if m == "POST" && role < Role::Operator {
                StatusCode::FORBIDDEN
            } else {
                StatusCode::NOT_FOUND
            };
            assert_eq!(r.status, want, "{role} {m} {p}");
            let b = String::from_utf8_lossy(&r.body);
            assert!(!b.contains("acme private") && !b.contains("7f3a"), "{b}");
        }
        let evs = crate::sse::read_events(
            &t,
            "/v1/events?after=0&prefix=agent.",
            Auth::Key(&g),
            &[],
            usize::MAX,
            300,
        )
        .await;
        assert!(evs.is_empty(), "{role} sees acme's agent events");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_org_sees_and_steers_none_of_an_orgs_schedules() {
    let t = T::start();
    let k = t.key("acme", Role::Owner).await;
    let s = crate::schedules::create(
        &t,
        &k,
        json!({"when": "every day at 03:00", "request": "list files in .", "cwd": t.cwd()}),
    )
    .await;
    let id = s["schedule"].as_str().unwrap().to_owned();
    for role in Role::ALL {
        let g = t.key("globex", role).await;
        let list = t.call("GET", "/v1/schedules", Auth::Key(&g), None).await;
        assert_eq!(list.json(), json!([]), "{role}");
        for (m, p) in [
            ("GET", format!("/v1/schedules/{id}")),
            ("POST", format!("/v1/schedules/{id}/pause")),
            ("POST", format!("/v1/schedules/{id}/resume")),
            ("POST", format!("/v1/schedules/{id}/run")),
            ("DELETE", format!("/v1/schedules/{id}")),
        ] {
            let r = t.call(m, &p, Auth::Key(&g), None).await;
            let want = if m != "GET" && role < Role::Operator {
                StatusCode::FORBIDDEN
            } else {
                StatusCode::NOT_FOUND
            };
            assert_eq!(r.status, want, "{role} {m} {p}");
        }
    }
    let mine = t
        .call("GET", &format!("/v1/schedules/{id}"), Auth::Key(&k), None)
        .await;
    assert_eq!(mine.json()["paused"], false, "nobody else paused it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_org_reaches_nothing_of_an_org_over_mcp() {
    let t = T::start();
    t.file("work/old.log", "x");
    let acme = t.key("acme", Role::Operator).await;
    let read = t
        .submit(
            Auth::Key(&acme),
            json!({"request": "list files in .", "cwd": t.cwd()}),
        )
        .await;
    let acme_tx = t.finished(Auth::Key(&acme), &read).await["tx"]
        .as_str()
        .unwrap()
        .to_owned();
    let waiting = t
        .submit(
            Auth::Key(&acme),
            json!({"request": "delete old.log", "cwd": t.cwd()}),
        )
        .await;
    let approval = t.pending(Auth::Key(&acme), &waiting).await["approval"]
        .as_str()
        .unwrap()
        .to_owned();

    let globex = t.key("globex", Role::Owner).await;
    let g = Auth::Key(&globex);
    // Its transaction is not there, its history is empty.
    let r = mcp(
        &t,
        g,
        "resources/read",
        json!({"uri": format!("kernos://transactions/{acme_tx}")}),
    )
    .await;
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no transaction"),
        "{r}"
    );
    let r = mcp(
        &t,
        g,
        "tools/call",
        json!({"name": "kernos_history", "arguments": {}}),
    )
    .await;
    assert_eq!(
        r["result"]["structuredContent"]["transactions"],
        json!([]),
        "{r}"
    );
    let r = mcp(&t, g, "resources/read", json!({"uri": "kernos://history"})).await;
    assert!(!r.to_string().contains(&acme_tx), "{r}");
    // Its waiting step cannot be answered by replaying a request state.
    let r = mcp(
        &t,
        g,
        "tools/call",
        json!({
            "name": "fs.read", "arguments": {},
            "requestState": format!("{waiting}.{approval}"),
            "inputResponses": {"approve": {"action": "accept", "content": {"approve": true}}},
        }),
    )
    .await;
    assert!(r["error"].is_object(), "{r}");
    let still = t.pending(Auth::Key(&acme), &waiting).await;
    assert_eq!(still["approval"], approval.as_str());
    assert!(t.home.join("work/old.log").exists());
}

/// A validated generated skill `tidy` in `org`'s store, as `kernos skill new` leaves it.
fn validated_skill(t: &T, org: &str) {
    let bundle: kernos_skills::Bundle = serde_json::from_value(json!({
        "manifest": {"name": "tidy", "summary": "tidies", "kind": "generated",
                     "language": "sh", "params": [{"name": "dir"}],
                     "effects": ["write"], "write": ["{dir}"], "reversible": true,
                     "tests": [{"name": "runs", "args": {"dir": "{work}"}}]},
        "body": {"type": "script", "code": "true"},
    }))
    .unwrap();
    let store = kernos_skills::Store::new(&t.data_dir());
    let (v, _) = store.save_draft(org, bundle, "generated").unwrap();
    store
        .record_validation(org, "tidy", v, Vec::new(), true)
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_org_sees_and_changes_none_of_an_orgs_skills() {
    let t = T::start();
    validated_skill(&t, "acme");
    let admin = t.key("acme", Role::Admin).await;
    let viewer = t.key("acme", Role::Viewer).await;
    // acme's viewer sees it and may not approve it; its admin approves and installs it.
    let list = t.call("GET", "/v1/skills", Auth::Key(&viewer), None).await;
    assert_eq!(list.json()[0]["status"], "validated", "{}", list.json());
    let r = t
        .call("POST", "/v1/skills/tidy/approve", Auth::Key(&viewer), None)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = t
        .call("POST", "/v1/skills/tidy/install", Auth::Key(&admin), None)
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "not approved yet");
    let r = t
        .call("POST", "/v1/skills/tidy/approve", Auth::Key(&admin), None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let approved = r.json();
    assert_eq!(approved["event"], "skill.approved", "{approved}");
    assert!(
        approved["payload"]["by"]
            .as_str()
            .unwrap()
            .starts_with("key:"),
        "{approved}"
    );
    let r = t
        .call(
            "POST",
            "/v1/skills/tidy/install",
            Auth::Key(&admin),
            Some(json!({"version": 1})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json());

    // globex, whatever its role, neither sees nor changes it.
    for role in Role::ALL {
        let g = t.key("globex", role).await;
        let list = t.call("GET", "/v1/skills", Auth::Key(&g), None).await;
        assert_eq!(list.json(), json!([]), "{role}");
        for (m, p) in [
            ("GET", "/v1/skills/tidy"),
            ("POST", "/v1/skills/tidy/approve"),
            ("POST", "/v1/skills/tidy/install"),
            ("POST", "/v1/skills/tidy/rollback"),
            ("DELETE", "/v1/skills/tidy"),
        ] {
            let r = t.call(m, p, Auth::Key(&g), None).await;
            let want = if m != "GET" && role < Role::Admin {
                StatusCode::FORBIDDEN
            } else {
                StatusCode::NOT_FOUND
            };
            assert_eq!(r.status, want, "{role} {m} {p}");
        }
    }
    // Still installed in acme, and the journal holds acme's changes only under acme.
    let shown = t
        .call("GET", "/v1/skills/tidy", Auth::Key(&viewer), None)
        .await
        .json();
    assert_eq!(shown["installed"], true, "{shown}");
    let g = t.key("globex", Role::Owner).await;
    let theirs = t
        .call("GET", "/v1/state/journal?limit=1000", Auth::Key(&g), None)
        .await
        .json()
        .to_string();
    assert!(!theirs.contains("skill."), "{theirs}");
    let ours = t
        .call(
            "GET",
            "/v1/state/journal?limit=1000",
            Auth::Key(&admin),
            None,
        )
        .await
        .json()
        .to_string();
    for k in ["skill.approved", "skill.installed"] {
        assert!(ours.contains(k), "{k}: {ours}");
    }
}
