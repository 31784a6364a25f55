//! The public surface: async and blocking forms, routing options, probe, metrics, and the TOML
//! config as a user writes it.

use kernos_llm::{
    BlockingRouter, LlmConfig, LlmError, Mechanism, ProviderKind, RouteOpts, StructuredMode,
};

use crate::fixtures::*;
use crate::*;
use kernos_llm::testing::{FakeServer, Reply};

#[tokio::test]
async fn async_api_works_and_the_blocking_form_refuses_inside_a_runtime() {
    let s = FakeServer::always(Reply::json(openai_text(PLAN_JSON)));
    let cfg = config(vec![openai("oai", &s.v1())]);
    let r = async_router(cfg.clone());
    let resp = r
        .complete("fast", &plan_req(false), &RouteOpts::default())
        .await
        .unwrap();
    assert_eq!(resp.json, Some(plan_value()));

    let blocking = BlockingRouter::from_router(async_router(cfg)).unwrap();
    let e = blocking
        .complete("fast", &text_req(false), &RouteOpts::default())
        .unwrap_err();
    assert!(matches!(e, LlmError::BlockingInsideRuntime), "{e}");
    assert!(e.to_string().contains(".await"));
    assert_eq!(s.count(), 1, "the refused blocking call sent nothing");
}

#[test]
fn one_router_serves_many_threads() {
    let s = FakeServer::always(Reply::json(openai_text("hi")));
    let r = std::sync::Arc::new(router(config(vec![openai("oai", &s.v1())])));
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let r = r.clone();
            std::thread::spawn(move || {
                r.complete("fast", &text_req(false), &RouteOpts::default())
                    .unwrap()
                    .text
            })
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), "hi");
    }
    assert_eq!(s.count(), 4);
}

#[test]
fn route_opts_pin_a_provider_or_a_model() {
    let a = FakeServer::always(Reply::json(openai_text("from a")));
    let b = FakeServer::always(Reply::json(openai_text("from b")));
    let mut pb = openai("b", &b.v1());
    pb.lanes.insert("strong".into(), "gpt-4.1".into());
    let r = router(config(vec![openai("a", &a.v1()), pb]));

    let pinned = RouteOpts {
        provider: Some("b".into()),
        ..RouteOpts::default()
    };
    assert_eq!(
        r.complete("fast", &text_req(false), &pinned)
            .unwrap()
            .provider,
        "b"
    );
    assert_eq!(a.count(), 0);

    // a model listed only by b routes to b first
    let by_model = RouteOpts {
        model: Some("gpt-4.1".into()),
        ..RouteOpts::default()
    };
    let resp = r.complete("fast", &text_req(false), &by_model).unwrap();
    assert_eq!(resp.provider, "b");
    assert_eq!(b.requests()[1].body["model"], "gpt-4.1");

    // the lane picks the model; empty lane = default lane
    r.complete("", &text_req(false), &RouteOpts::default())
        .unwrap();
    assert_eq!(a.requests()[0].body["model"], "gpt-4.1-mini");

    let e = r
        .complete(
            "fast",
            &text_req(false),
            &RouteOpts {
                provider: Some("c".into()),
                ..RouteOpts::default()
            },
        )
        .unwrap_err();
    assert_eq!(e.to_string(), "no provider named \"c\"; configured: a, b");
    let e = r
        .complete("huge", &text_req(false), &RouteOpts::default())
        .unwrap_err();
    assert!(matches!(e, LlmError::NoModelForLane { .. }), "{e}");
}

#[test]
fn probe_reports_latency_usage_and_the_model_echo() {
    let s = FakeServer::start(vec![Reply::json(openai_text("ok"))]);
    let r = router(config(vec![openai("oai", &s.v1())]));
    let p = r.probe("oai", None).unwrap();
    assert_eq!(p.text, "ok");
    assert_eq!(p.model, "gpt-4.1-mini");
    assert_eq!(p.model_echo.as_deref(), Some("gpt-4.1-mini-2025-04-14"));
    assert_eq!(p.endpoint, format!("{}/chat/completions", s.v1()));
    assert_eq!(p.usage.input_tokens, 1200);
    assert!(p.cost_usd > 0.0);
    assert!(p.latency_ms < 5_000);
    let b = &s.requests()[0].body;
    assert_eq!(b["max_tokens"], 16);
    assert_eq!(b["stream"], false);
    // a failing probe reports the error directly, without retries
    let bad = FakeServer::always(Reply::status_json(500, OPENAI_500));
    let r = router(config(vec![openai("oai", &bad.v1())]));
    let e = r.probe("oai", Some("gpt-4o")).unwrap_err();
    assert!(matches!(e, LlmError::Server { status: 500, .. }), "{e}");
    assert_eq!(bad.count(), 1);
    assert_eq!(bad.requests()[0].body["model"], "gpt-4o");
}

#[test]
fn metrics_add_up_per_provider_and_model() {
    let s = FakeServer::start(vec![
        Reply::status_json(500, OPENAI_500),
        Reply::json(openai_text("one")),
        Reply::json(openai_text("two")),
    ]);
    let r = router(config(vec![openai("oai", &s.v1())]));
    for _ in 0..2 {
        r.complete("fast", &text_req(false), &RouteOpts::default())
            .unwrap();
    }
    let m = r.router().metrics();
    assert_eq!(m.len(), 1);
    let m = &m[0];
    assert_eq!(
        (m.provider.as_str(), m.model.as_str()),
        ("oai", "gpt-4.1-mini")
    );
    assert_eq!((m.calls, m.errors), (3, 1));
    assert_eq!((m.input_tokens, m.output_tokens), (2400, 600));
    assert!((m.cost_usd - 2.0 * 0.00096).abs() < 1e-12);
}

/// The config as a user writes it in `config.toml`.
const TOML: &str = r#"
[llm]
default_lane = "fast"
order = ["claude", "local"]

[llm.retry]
max_attempts = 2
budget_ms = 30000

[llm.breaker]
failure_threshold = 5
cooldown_ms = 60000

[[llm.providers]]
name = "local"
kind = "openai"
base_url = "http://127.0.0.1:8080/v1"
lanes = { fast = "qwen2.5-7b-instruct", strong = "qwen2.5-32b-instruct" }
timeout_ms = 120000
structured = "json_schema"

[[llm.providers]]
name = "claude"
kind = "anthropic"
api_key_env = "ANTHROPIC_API_KEY"
lanes = { fast = "claude-haiku-4-5", strong = "claude-sonnet-4-5" }
max_tokens = 4096
headers = { "anthropic-beta" = "token-efficient-tools-2025-02-19" }

[llm.providers.prices]
"claude-haiku-4-5" = { input_per_mtok = 1.0, output_per_mtok = 5.0 }
"claude-sonnet-4-5" = { input_per_mtok = 3.0, output_per_mtok = 15.0 }
"#;

#[derive(serde::Deserialize)]
struct File {
    llm: LlmConfig,
}

#[test]
fn toml_config_parses_validates_and_lists_models() {
    let c = toml::from_str::<File>(TOML).unwrap().llm;
    c.validate().unwrap();
    assert_eq!(c.retry.max_attempts, 2);
    assert_eq!(
        c.retry.base_delay_ms, 250,
        "unset fields keep their defaults"
    );
    let local = c.provider("local").unwrap();
    assert_eq!(local.structured, StructuredMode::JsonSchema);
    assert_eq!(local.max_tokens, 2048);
    let claude = c.provider("claude").unwrap();
    assert_eq!(claude.kind, ProviderKind::Anthropic);
    assert_eq!(claude.endpoint(), "https://api.anthropic.com/v1/messages");
    assert_eq!(claude.prices["claude-sonnet-4-5"].output_per_mtok, 15.0);
    let models = c.models();
    let rows: Vec<(usize, &str, Option<&str>, &str)> = models
        .iter()
        .map(|m| {
            (
                m.rank,
                m.provider.as_str(),
                m.lane.as_deref(),
                m.model.as_str(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            (0, "claude", Some("fast"), "claude-haiku-4-5"),
            (0, "claude", Some("strong"), "claude-sonnet-4-5"),
            (1, "local", Some("fast"), "qwen2.5-7b-instruct"),
            (1, "local", Some("strong"), "qwen2.5-32b-instruct"),
        ]
    );
    // the health view starts clean and reflects the configured mode
    let r = router(c);
    let h = r.router().health();
    assert_eq!(h[1].structured, Mechanism::JsonSchema);
}

#[test]
fn toml_mistakes_are_named() {
    let typo = TOML.replace("timeout_ms = 120000", "timeout = 120000");
    let e = toml::from_str::<File>(&typo).err().unwrap().to_string();
    assert!(e.contains("unknown field `timeout`"), "{e}");
    assert!(e.contains("line 19"), "{e}");
    let bad_mode = TOML.replace("\"json_schema\"", "\"grammar\"");
    let e = toml::from_str::<File>(&bad_mode).err().unwrap().to_string();
    assert!(e.contains("unknown variant `grammar`"), "{e}");
    let bad_url =
        toml::from_str::<File>(&TOML.replace("http://127.0.0.1:8080/v1", "localhost:8080"))
            .unwrap()
            .llm;
    let e = bad_url.validate().unwrap_err();
    assert_eq!(e.field, "llm.providers[0].base_url");
    assert!(matches!(
        kernos_llm::Router::new(bad_url),
        Err(LlmError::Config(_))
    ));
}
