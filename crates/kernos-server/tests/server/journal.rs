//! The journal as the dashboard reads it: the organisation's events a page at a time, newest
//! first, and the chain check — intact on a good journal, and naming the event an attacker
//! edited in the file of a stopped daemon.

use std::collections::HashSet;

use axum::http::StatusCode;
use kernos_server::Role;
use serde_json::{Value, json};

use crate::{Auth, T};

/// Runs `n` reads as `key`; returns their action ids.
async fn reads(t: &T, key: &str, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for _ in 0..n {
        let a = t
            .submit(
                Auth::Key(key),
                json!({"request": "list files in .", "cwd": t.cwd()}),
            )
            .await;
        t.finished(Auth::Key(key), &a).await;
        ids.push(a);
    }
    ids
}

fn seqs(page: &Value) -> Vec<u64> {
    page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn journal_pages_go_newest_first_and_never_overlap() {
    let t = T::start();
    let op = t.key("acme", Role::Operator).await;
    let viewer = t.key("acme", Role::Viewer).await;
    let actions = reads(&t, &op, 3).await;

    let all = t
        .call(
            "GET",
            "/v1/state/journal?limit=1000",
            Auth::Key(&viewer),
            None,
        )
        .await;
    let all = all.expect(StatusCode::OK).json();
    assert_eq!(all["org"], "acme");
    assert_eq!(all["next_before"], Value::Null, "everything fits one page");
    let every = seqs(&all);
    assert!(
        every.windows(2).all(|w| w[0] > w[1]),
        "newest first: {every:?}"
    );
    assert!(
        all["events"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["org"] == "acme"),
        "{all}"
    );

    // Pages of 5 walk the same events in the same order, each page older than the last.
    let mut walked = Vec::new();
    let mut path = "/v1/state/journal?limit=5".to_owned();
    loop {
        let page = t.call("GET", &path, Auth::Key(&viewer), None).await;
        let page = page.expect(StatusCode::OK).json();
        let s = seqs(&page);
        assert!(s.len() <= 5);
        if let Some(last) = walked.last() {
            assert!(s.iter().all(|x| x < last), "overlap: {s:?} after {last}");
        }
        walked.extend(s.iter().copied());
        match page["next_before"].as_u64() {
            Some(b) => {
                assert_eq!(Some(&b), s.last(), "next_before is the page's oldest");
                path = format!("/v1/state/journal?limit=5&before={b}");
            }
            None => break,
        }
    }
    assert_eq!(walked, every);
    assert_eq!(
        walked.iter().collect::<HashSet<_>>().len(),
        walked.len(),
        "no event twice"
    );

    // Each event is the stored event with its chain hash, as GET /v1/state/actions/{id} has it.
    let detail = t
        .call(
            "GET",
            &format!("/v1/state/actions/{}", actions[0]),
            Auth::Key(&viewer),
            None,
        )
        .await
        .json();
    for e in detail["events"].as_array().unwrap() {
        let found = all["events"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["seq"] == e["seq"]);
        assert_eq!(found, Some(e));
        assert_eq!(e["hash"].as_str().unwrap().len(), 64);
    }

    // A kind prefix keeps those kinds.
    let ends = t
        .call(
            "GET",
            "/v1/state/journal?kind=action.finished",
            Auth::Key(&viewer),
            None,
        )
        .await
        .json();
    let ended: Vec<&str> = ends["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    let newest_first: Vec<&str> = actions.iter().rev().map(String::as_str).collect();
    assert_eq!(ended, newest_first);

    // Another organisation's journal holds none of it.
    let g = t.key("globex", Role::Owner).await;
    let theirs = t
        .call("GET", "/v1/state/journal?limit=1000", Auth::Key(&g), None)
        .await
        .json();
    let theirs_seqs: HashSet<u64> = seqs(&theirs).into_iter().collect();
    assert!(every.iter().all(|s| !theirs_seqs.contains(s)), "{theirs}");

    let r = t
        .call(
            "GET",
            "/v1/state/journal?before=0",
            Auth::Key(&viewer),
            None,
        )
        .await;
    r.expect(StatusCode::BAD_REQUEST);
    let r = t
        .call(
            "GET",
            "/v1/state/journal?before=x",
            Auth::Key(&viewer),
            None,
        )
        .await;
    r.expect(StatusCode::BAD_REQUEST);
}

/// A raw connection to the stopped daemon's journal with the append-only guards dropped, as
/// an attacker with file access would have.
fn tamper(t: &T, sql: &str) {
    let c = rusqlite::Connection::open(t.data_dir().join("journal.db")).unwrap();
    c.execute_batch(
        "DROP TRIGGER events_append_only_update; DROP TRIGGER events_append_only_delete;",
    )
    .unwrap();
    c.execute_batch(sql).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_says_intact_then_names_the_event_edited_while_stopped() {
    let mut t = T::start();
    let op = t.key("acme", Role::Operator).await;
    let viewer = t.key("acme", Role::Viewer).await;
    let admin = t.key("acme", Role::Admin).await;
    let action = reads(&t, &op, 1).await.remove(0);

    let path = "/v1/state/journal/verify";
    let r = t.call("GET", path, Auth::Key(&viewer), None).await;
    let v = r.expect(StatusCode::OK).json();
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["problem"], Value::Null);
    assert_eq!(v["bad_seq"], Value::Null);
    assert!(v["head_seq"].as_u64().unwrap() > 0);
    assert_eq!(v["events"], v["head_seq"], "every event walked");
    assert_eq!(v["head_hash"].as_str().unwrap().len(), 64, "{v}");

    // Within 30 s the result is answered again; callers at once share one walk.
    let again = t.call("GET", path, Auth::Key(&viewer), None).await.json();
    assert_eq!(again["checked_ms"], v["checked_ms"]);
    let (a, b) = tokio::join!(
        t.call("GET", path, Auth::Key(&viewer), None),
        t.call("GET", path, Auth::Key(&op), None),
    );
    assert_eq!(a.json()["checked_ms"], b.json()["checked_ms"]);
    // Only an admin may force a new walk.
    let r = t
        .call(
            "GET",
            &format!("{path}?fresh=true"),
            Auth::Key(&viewer),
            None,
        )
        .await;
    r.expect(StatusCode::FORBIDDEN);
    let r = t
        .call(
            "GET",
            &format!("{path}?fresh=true"),
            Auth::Key(&admin),
            None,
        )
        .await;
    assert_eq!(r.expect(StatusCode::OK).json()["ok"], true);

    // Edit the request of the action's submission in the file, then start again.
    let submitted = t
        .call(
            "GET",
            "/v1/state/journal?kind=action.submitted&limit=1",
            Auth::Key(&viewer),
            None,
        )
        .await
        .json();
    let ev = &submitted["events"][0];
    assert_eq!(ev["action"], action.as_str());
    let seq = ev["seq"].as_u64().unwrap();
    t.stop();
    tamper(
        &t,
        &format!(
            r#"UPDATE events SET payload = json_set(payload, '$.request', 'delete everything') WHERE seq = {seq}"#
        ),
    );
    t.restart();
    let r = t.call("GET", path, Auth::Key(&viewer), None).await;
    let v = r.expect(StatusCode::OK).json();
    assert_eq!(v["ok"], false, "{v}");
    assert_eq!(v["bad_seq"], seq);
    assert_eq!(v["events"], seq - 1, "the events before it verified");
    let problem = v["problem"].as_str().unwrap();
    assert!(
        problem.contains(&seq.to_string()) && problem.contains("does not match its hash"),
        "{problem}"
    );
}
