//! Use by day: what the dashboard's charts read. An action is counted on the day it ended
//! with its units and latency, days without use are there as zeros, the numbers survive a
//! restart (rebuilt from the journal), and out-of-range windows are refused.

use axum::http::StatusCode;
use kernos_server::Role;
use kernos_server::limits::{DAY_MS, date_of_day};
use serde_json::{Value, json};

use crate::{Auth, T};

/// The request latency of an action from its events: submission to end.
fn latency_ms(detail: &Value) -> (u64, i64) {
    let ts = |k: &str| {
        detail["events"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["kind"] == k)
            .unwrap()["ts_ms"]
            .as_i64()
            .unwrap()
    };
    let ended = ts("action.finished");
    ((ended - ts("action.submitted")) as u64, ended)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_day_counts_its_actions_and_quiet_days_are_zeros() {
    let mut t = T::start();
    t.file("work/a.txt", "a");
    let op = t.key("acme", Role::Operator).await;
    let viewer = t.key("acme", Role::Viewer).await;
    let a = t
        .submit(
            Auth::Key(&op),
            json!({"request": "list files in .", "cwd": t.cwd()}),
        )
        .await;
    let detail = t.finished(Auth::Key(&op), &a).await;
    let (latency, ended) = latency_ms(&detail);
    let units = detail["units"].as_f64().unwrap();
    assert!(units > 0.0);

    let path = "/v1/state/usage/daily?days=3";
    let v = t.call("GET", path, Auth::Key(&viewer), None).await;
    let v = v.expect(StatusCode::OK).json();
    assert_eq!(v["org"], "acme");
    let days = v["days"].as_array().unwrap();
    assert_eq!(days.len(), 3);
    let names: Vec<&str> = days.iter().map(|d| d["day"].as_str().unwrap()).collect();
    assert!(
        names.windows(2).all(|w| w[0] < w[1]),
        "oldest first: {names:?}"
    );
    let day_of_end = date_of_day(ended.div_euclid(DAY_MS));
    for d in days {
        if d["day"] == day_of_end.as_str() {
            assert_eq!(d["actions"], 1, "{d}");
            assert!((d["units"].as_f64().unwrap() - units).abs() < 1e-9, "{d}");
            // A histogram: within 1/32 of the measured latency (exact below 64 ms).
            for q in ["latency_p50_ms", "latency_p95_ms"] {
                let got = d[q].as_u64().unwrap();
                assert!(
                    got.abs_diff(latency) <= latency / 32 + 1,
                    "{q} {got} vs {latency}"
                );
            }
            // The offline planner answered: no model, no cache.
            assert_eq!(
                (d["tokens_in"].as_u64(), d["cache_misses"].as_u64()),
                (Some(0), Some(0))
            );
            assert_eq!(d["models"], json!([]));
        } else {
            // A day without use is there, with zeros and no latency.
            assert_eq!(
                *d,
                json!({"day": d["day"], "actions": 0, "units": 0.0, "tokens_in": 0, "tokens_out": 0,
                       "cost_usd": 0.0, "cache_hits": 0, "cache_misses": 0,
                       "latency_p50_ms": null, "latency_p95_ms": null, "models": []})
            );
        }
    }
    assert!(names.contains(&day_of_end.as_str()), "{names:?}");

    // Rebuilt from the journal at start: the same numbers after a restart.
    t.restart();
    let after = t.call("GET", path, Auth::Key(&viewer), None).await.json();
    let same = |v: &Value| {
        v["days"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["day"] == day_of_end.as_str())
            .cloned()
    };
    assert_eq!(same(&after), same(&v));

    // Another organisation's days are its own (zeros here).
    let g = t.key("globex", Role::Viewer).await;
    let theirs = t.call("GET", path, Auth::Key(&g), None).await.json();
    assert_eq!(theirs["org"], "globex");
    assert!(
        theirs["days"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["actions"] == 0),
        "{theirs}"
    );

    // 30 days unless asked; 1 to 366 only.
    let v = t
        .call("GET", "/v1/state/usage/daily", Auth::Key(&viewer), None)
        .await;
    assert_eq!(
        v.expect(StatusCode::OK).json()["days"]
            .as_array()
            .unwrap()
            .len(),
        30
    );
    for bad in ["0", "9999", "-1", "many"] {
        let r = t
            .call(
                "GET",
                &format!("/v1/state/usage/daily?days={bad}"),
                Auth::Key(&viewer),
                None,
            )
            .await;
        r.expect(StatusCode::BAD_REQUEST);
        if bad != "many" {
            let detail = r.json()["detail"].as_str().unwrap().to_owned();
            assert!(detail.contains("1 to 366"), "{detail}");
        }
    }
}
