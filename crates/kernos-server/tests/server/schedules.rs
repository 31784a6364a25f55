//! Schedules in the daemon: an approved plan runs at its times with nobody connected, as an
//! ordinary action of its creator; a fire time missed while the daemon was down runs once after
//! the restart, never twice; a run that needs a person waits in the approval queue and ends
//! with a clear outcome; pause, run now and remove do what they say.

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use kernos_server::{Role, ServerConfig};
use serde_json::{Value, json};

use crate::{Auth, T};

/// Creates a schedule with `key`; returns it.
pub(crate) async fn create(t: &T, key: &str, body: Value) -> Value {
    let r = t
        .call("POST", "/v1/schedules", Auth::Key(key), Some(body))
        .await;
    r.expect(StatusCode::CREATED);
    r.json()
}

/// The organisation's actions, oldest first (in these tests: the schedule's runs).
async fn runs(t: &T, key: &str) -> Vec<Value> {
    let mut v = t
        .call("GET", "/v1/state/actions", Auth::Key(key), None)
        .await
        .json()
        .as_array()
        .unwrap()
        .clone();
    v.reverse();
    v
}

async fn schedule_op(t: &T, key: &str, id: &str, op: &str) -> crate::Resp {
    t.call(
        "POST",
        &format!("/v1/schedules/{id}/{op}"),
        Auth::Key(key),
        None,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedule_runs_its_approved_plan_with_nobody_connected() {
    let t = T::start();
    t.file("work/a.txt", "a");
    let k = t.key("acme", Role::Operator).await;
    let s = create(
        &t,
        &k,
        json!({"when": "every 1 seconds", "request": "list files in .", "cwd": t.cwd()}),
    )
    .await;
    let id = s["schedule"].as_str().unwrap().to_owned();
    assert_eq!(
        s["plan"]["steps"][0]["action"], "list",
        "the stored, approved plan: {s}"
    );
    assert!(
        s["describe"].as_str().unwrap().starts_with("every second"),
        "{s}"
    );
    // Two runs come by themselves, each an ordinary action of the creator, one at a time.
    let deadline = Instant::now() + Duration::from_secs(20);
    while runs(&t, &k).await.len() < 2 {
        assert!(Instant::now() < deadline, "the schedule did not run twice");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for a in runs(&t, &k).await.iter().take(2) {
        let d = t
            .finished(Auth::Key(&k), a["action"].as_str().unwrap())
            .await;
        assert_eq!(d["status"], "committed", "{d}");
        assert!(d["actor"].as_str().unwrap().starts_with("key:"));
    }
    // Paused, it stops firing; run now still runs it, and a second run now joins the first.
    let r = schedule_op(&t, &k, &id, "pause").await;
    assert_eq!(r.json()["paused"], true);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = runs(&t, &k).await.len();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(runs(&t, &k).await.len(), before, "a paused schedule fired");
    let first = schedule_op(&t, &k, &id, "run").await.json();
    assert_eq!(first["status"], "requested", "{first}");
    let again = schedule_op(&t, &k, &id, "run").await.json();
    assert!(
        again["status"] == "already_running" || again["status"] == "already_requested",
        "{again}"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while runs(&t, &k).await.len() != before + 1 {
        assert!(
            Instant::now() < deadline,
            "run now did not run exactly once"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        runs(&t, &k).await.len(),
        before + 1,
        "two copies of one schedule ran"
    );
    // Removed: gone, and never fires again.
    let r = t
        .call(
            "DELETE",
            &format!("/v1/schedules/{id}"),
            Auth::Key(&k),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = t
        .call("GET", &format!("/v1/schedules/{id}"), Auth::Key(&k), None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fire_time_missed_while_the_daemon_was_down_runs_once_after_the_restart() {
    let mut t = T::start();
    let k = t.key("acme", Role::Operator).await;
    // Daily, at a second two seconds from now (UTC): it falls while the daemon is down.
    let at = chrono_like_utc_in(2);
    let s = create(
        &t,
        &k,
        json!({"when": format!("{at} * * * UTC"), "request": "list files in .", "cwd": t.cwd()}),
    )
    .await;
    let id = s["schedule"].as_str().unwrap().to_owned();
    t.stop();
    std::thread::sleep(Duration::from_secs(3));
    t.restart();
    let v = t
        .until(
            &format!("/v1/schedules/{id}"),
            Auth::Key(&k),
            "the catch-up run",
            |v| v["last_run"].is_object(),
        )
        .await;
    assert_eq!(v["last_run"]["outcome"]["status"], "committed", "{v}");
    assert_eq!(runs(&t, &k).await.len(), 1);
    // Another restart does not run it again: the journal says it ran.
    t.restart();
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(runs(&t, &k).await.len(), 1, "a missed fire time ran twice");
    let v = t
        .call("GET", &format!("/v1/schedules/{id}"), Auth::Key(&k), None)
        .await
        .json();
    assert!(v["next_due"].is_string() && v["running"].is_null(), "{v}");
}

/// `S M H` of the UTC time `secs` seconds from now (a daily cron's first three fields).
fn chrono_like_utc_in(secs: u64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + secs;
    let day = now % 86_400;
    format!("{} {} {}", day % 60, (day / 60) % 60, day / 3600)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unattended_run_that_needs_approval_waits_then_ends_declined_and_a_lease_lets_it_run() {
    let t = T::with(ServerConfig {
        approval_timeout_s: 1,
        ..ServerConfig::default()
    });
    let k = t.key("acme", Role::Operator).await;
    let dir = t.home.join("work/in");
    std::fs::create_dir_all(&dir).unwrap();
    let plan = |name: &str| json!({"steps": [{"tool": "fs", "action": "write", "args": {"path": dir.join(name), "content": "x"}}]});
    let s = create(
        &t,
        &k,
        json!({"when": "every day at 03:00", "plan": plan("a.txt"), "cwd": t.cwd()}),
    )
    .await;
    let id = s["schedule"].as_str().unwrap().to_owned();
    schedule_op(&t, &k, &id, "run").await;
    // Nobody answers: the step waits in the approval queue, then the run ends declined.
    let v = t
        .until(
            &format!("/v1/schedules/{id}"),
            Auth::Key(&k),
            "the run's end",
            |v| v["last_run"].is_object(),
        )
        .await;
    assert_eq!(v["last_run"]["outcome"]["status"], "declined", "{v}");
    assert!(!dir.join("a.txt").exists());
    assert!(v["next_due"].is_string(), "the schedule goes on: {v}");
    // With a lease for the schedule, the same run needs nobody.
    let grant = json!({
        "grantee": format!("schedule:{id}"),
        "capabilities": {"actions": ["fs.*"]},
        "scope": {"paths": [dir]},
        "max_risk": "medium",
        "ttl_s": 3600,
    });
    let r = t
        .call("POST", "/v1/leases", Auth::Key(&k), Some(grant))
        .await;
    r.expect(StatusCode::CREATED);
    schedule_op(&t, &k, &id, "run").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !dir.join("a.txt").exists() {
        assert!(Instant::now() < deadline, "the leased run did not write");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let v = t
        .call("GET", &format!("/v1/schedules/{id}"), Auth::Key(&k), None)
        .await
        .json();
    assert!(v["lease"].is_string(), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_schedules_get_clear_errors_and_nothing_is_stored() {
    let t = T::start();
    let k = t.key("acme", Role::Operator).await;
    for (body, want) in [
        (
            json!({"when": "every blue moon", "request": "list files in ."}),
            "blue",
        ),
        (json!({"when": "every day at 03:00"}), "`request`"),
        (
            json!({"when": "every day at 03:00", "request": "list files", "missed": "twice"}),
            "run_once",
        ),
        (
            json!({"when": "every day at 03:00", "request": "frobnicate the zorblax"}),
            "could not plan",
        ),
    ] {
        let r = t
            .call("POST", "/v1/schedules", Auth::Key(&k), Some(body.clone()))
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        let b = String::from_utf8_lossy(&r.body).to_string();
        assert!(b.contains(want), "{body}: {b}");
    }
    // A dry run shows the plan and the timing and stores nothing.
    let r = t
        .call("POST", "/v1/schedules", Auth::Key(&k), Some(json!({"when": "every day at 03:00", "request": "list files in .", "dry_run": true})))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let v = r.json();
    assert!(
        v["describe"]
            .as_str()
            .unwrap()
            .starts_with("every day at 03:00"),
        "{v}"
    );
    assert_eq!(v["plan"]["steps"][0]["action"], "list", "{v}");
    assert_eq!(
        t.call("GET", "/v1/schedules", Auth::Key(&k), None)
            .await
            .json(),
        json!([])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_cut_off_by_a_restart_never_wedges_its_schedule() {
    let mut t = T::start();
    let k = t.key("acme", Role::Operator).await;
    let held = json!({"steps": [{"tool": "shell", "action": "run", "args": {"command": format!("echo {}", crate::HOLD)}}]});
    let s = create(
        &t,
        &k,
        json!({"when": "every day at 03:00", "plan": held, "cwd": t.cwd()}),
    )
    .await;
    let id = s["schedule"].as_str().unwrap().to_owned();
    assert_eq!(
        schedule_op(&t, &k, &id, "run").await.json()["status"],
        "requested"
    );
    t.until_held().await;
    // The daemon stops mid-run; after the restart the run is closed and the schedule goes on.
    t.restart();
    let v = t
        .until(
            &format!("/v1/schedules/{id}"),
            Auth::Key(&k),
            "the cut-off run closed",
            |v| v["running"].is_null() && v["last_run"].is_object(),
        )
        .await;
    assert!(v["next_due"].is_string(), "{v}");
    t.let_go();
    assert_eq!(
        schedule_op(&t, &k, &id, "run").await.json()["status"],
        "requested",
        "not wedged"
    );
    t.until(
        &format!("/v1/schedules/{id}"),
        Auth::Key(&k),
        "the second run",
        |v| v["last_run"]["outcome"]["status"] == "committed",
    )
    .await;
}

/// A schedule is one more way to act: its runs meet the same walls as a request. An
/// organisation's schedule that names another organisation's file is refused at every run,
/// and the file is untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedules_runs_cannot_reach_beyond_its_organisations_scope() {
    let t = T::start();
    let red = t.key("red", Role::Owner).await;
    let blue = t.key("blue", Role::Owner).await;
    let a = t
        .submit(
            Auth::Key(&blue),
            json!({"auto_approve": true, "plan": {"steps": [{"tool": "fs", "action": "write", "args": {"path": "keep.txt", "content": "blue"}}]}}),
        )
        .await;
    t.finished(Auth::Key(&blue), &a).await;
    let target = t.data_dir().join("orgs/blue/work/keep.txt");
    assert!(target.exists());
    for (action, args) in [
        ("fs.delete", json!({"path": target})),
        ("fs.read", json!({"path": target})),
    ] {
        let (tool, act) = action.split_once('.').unwrap();
        let plan = json!({"steps": [{"tool": tool, "action": act, "args": args}]});
        let s = create(
            &t,
            &red,
            json!({"when": "every day at 03:00", "plan": plan}),
        )
        .await;
        let id = s["schedule"].as_str().unwrap().to_owned();
        schedule_op(&t, &red, &id, "run").await;
        let v = t
            .until(
                &format!("/v1/schedules/{id}"),
                Auth::Key(&red),
                "the refused run",
                |v| v["last_run"].is_object(),
            )
            .await;
        assert_eq!(
            v["last_run"]["outcome"]["status"], "denied",
            "{action}: {v}"
        );
    }
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "blue\n");
}
