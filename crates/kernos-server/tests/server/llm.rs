//! The daemon plans with the same cascade as the CLI: a request the offline planner does not
//! know goes to the configured model (here a local OpenAI-compatible server on a real socket,
//! answering in the real wire format), the plan is cached, and `/metrics` exports the model
//! tier's calls, tokens, cost and cache hit ratio.

use std::sync::Arc;

use kernos_llm::testing::{FakeServer, Reply};
use kernos_llm::{LlmConfig, Price, ProviderConfig, ProviderKind};
use kernos_planner::llm::{Cascade, HostFacts, PlanCache};
use kernos_server::{Role, ServerConfig};
use serde_json::{Value, json};

use super::{Auth, T};

/// An OpenAI chat completion whose content is a one-step plan (`sys.uptime`, read in process).
fn completion() -> String {
    let plan = json!({
        "steps": [{"action": "sys.uptime", "args": [], "needs": [], "why": "How long the box has been up."}],
        "message": "",
    });
    json!({
        "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
        "object": "chat.completion",
        "created": 1741569952,
        "model": "gpt-4.1-mini-2025-04-14",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": plan.to_string(), "refusal": null, "annotations": []}, "logprobs": null, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1200, "completion_tokens": 300, "total_tokens": 1500},
        "service_tier": "default",
        "system_fingerprint": "fp_38647f5e19",
    })
    .to_string()
}

/// A daemon whose planner asks a local fake model (`local`/`small-model`, $1 and $2 per
/// million tokens in and out) and caches plans; the server answers every request with the
/// one-step plan and counts them.
fn with_model() -> (T, FakeServer) {
    let llm = FakeServer::always(Reply::json(completion()));
    let cfg = LlmConfig {
        providers: vec![ProviderConfig {
            name: "local".into(),
            kind: ProviderKind::OpenAi,
            base_url: Some(llm.v1()),
            lanes: [("fast".to_owned(), "small-model".to_owned())].into(),
            prices: [(
                "small-model".to_owned(),
                Price {
                    input_per_mtok: 1.0,
                    output_per_mtok: 2.0,
                },
            )]
            .into(),
            timeout_ms: 5_000,
            ..ProviderConfig::default()
        }],
        ..LlmConfig::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir_all(home.join("work")).unwrap();
    let cache = PlanCache::open(dir.path().join("plan-cache.db")).unwrap();
    let planner = Cascade::lazy(cfg, || {
        (
            Arc::new(kernos_tools::Registry::builtin()),
            HostFacts::detect(),
        )
    })
    .with_cache(cache);
    (
        T::open_with(dir, home, ServerConfig::default(), planner),
        llm,
    )
}

/// A request the offline planner does not know.
const LONG_TAIL: &str = "how is the zorblax of this box doing";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_tail_requests_go_to_the_model_and_metrics_show_tokens_cost_and_cache() {
    let (t, llm) = with_model();

    // Nothing asked yet: the cache is there, no model series.
    let m = metrics(&t).await;
    assert!(m.contains("kernos_plan_cache_misses_total 0"), "{m}");
    assert!(!m.contains("kernos_llm_calls_total{"), "{m}");

    let k = t.key("acme", Role::Operator).await;
    let request = LONG_TAIL;
    for round in 0..2 {
        let a = t
            .submit(Auth::Key(&k), json!({"request": request, "cwd": t.cwd()}))
            .await;
        let d = t.finished(Auth::Key(&k), &a).await;
        assert_eq!(d["status"], "committed", "round {round}: {d}");
        let kinds: Vec<&str> = d["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["kind"].as_str().unwrap())
            .collect();
        assert!(kinds.contains(&"llm.plan"), "{kinds:?}");
        assert_eq!(
            kinds.contains(&"llm.call"),
            round == 0,
            "only the first round asks the model: {kinds:?}"
        );
    }
    assert_eq!(llm.count(), 1, "the second plan came from the cache");

    let m = metrics(&t).await;
    for line in [
        "kernos_llm_calls_total{provider=\"local\",model=\"small-model\"} 1",
        "kernos_llm_errors_total{provider=\"local\",model=\"small-model\"} 0",
        "kernos_llm_input_tokens_total{provider=\"local\",model=\"small-model\"} 1200",
        "kernos_llm_output_tokens_total{provider=\"local\",model=\"small-model\"} 300",
        "kernos_plan_cache_hits_total 1",
        "kernos_plan_cache_misses_total 1",
        "kernos_plan_cache_hit_ratio 0.5",
        // The model's time was charged to the organisation that asked.
        "kernos_llm_client_input_tokens_total{provider=\"local\",client=\"acme\"} 1200",
        "kernos_llm_client_output_tokens_total{provider=\"local\",client=\"acme\"} 300",
        "kernos_llm_sched_queued{provider=\"local\"} 0",
    ] {
        assert!(m.contains(line), "missing {line}:\n{m}");
    }
    // 1200 × $1/M + 300 × $2/M.
    let cost: f64 = m
        .lines()
        .find_map(|l| {
            l.strip_prefix("kernos_llm_cost_usd_total{provider=\"local\",model=\"small-model\"} ")
        })
        .unwrap()
        .parse()
        .unwrap();
    assert!((cost - 0.0018).abs() < 1e-9, "{cost}");
}

/// The day's model use, by provider and model, from the daily read model: the first request
/// missed the plan cache and called the model, the second was a cache hit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_by_day_shows_model_tokens_cost_and_the_cache() {
    let (t, llm) = with_model();
    let k = t.key("acme", Role::Operator).await;
    for _ in 0..2 {
        let a = t
            .submit(Auth::Key(&k), json!({"request": LONG_TAIL, "cwd": t.cwd()}))
            .await;
        t.finished(Auth::Key(&k), &a).await;
    }
    assert_eq!(llm.count(), 1);
    let v = t
        .call("GET", "/v1/state/usage/daily?days=2", Auth::Key(&k), None)
        .await;
    let v = v.expect(axum::http::StatusCode::OK).json();
    let days = v["days"].as_array().unwrap();
    let sum = |k: &str| days.iter().map(|d| d[k].as_f64().unwrap()).sum::<f64>();
    assert_eq!(sum("actions"), 2.0, "{v}");
    assert_eq!((sum("tokens_in"), sum("tokens_out")), (1200.0, 300.0));
    // 1200 × $1/M + 300 × $2/M.
    assert!((sum("cost_usd") - 0.0018).abs() < 1e-9, "{v}");
    assert_eq!((sum("cache_hits"), sum("cache_misses")), (1.0, 1.0));
    let models: Vec<&Value> = days
        .iter()
        .flat_map(|d| d["models"].as_array().unwrap())
        .collect();
    assert_eq!(models.len(), 1, "{v}");
    let m = models[0];
    assert_eq!(
        (&m["provider"], &m["model"]),
        (&json!("local"), &json!("small-model"))
    );
    assert_eq!(
        (&m["calls"], &m["tokens_in"], &m["tokens_out"]),
        (&json!(1), &json!(1200), &json!(300))
    );
    assert!((m["cost_usd"].as_f64().unwrap() - 0.0018).abs() < 1e-9);
}

async fn metrics(t: &T) -> String {
    let r = t.call("GET", "/metrics", Auth::Local, None).await;
    assert_eq!(r.status, axum::http::StatusCode::OK);
    String::from_utf8(r.body).unwrap()
}
