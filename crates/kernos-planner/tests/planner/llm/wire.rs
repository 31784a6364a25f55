//! request → prompt → model answer → validated plan; repair; early stop; garbage; the three
//! structured-output mechanisms; providers failing over, breakers and budgets.

use std::time::{Duration, Instant};

use kernos_llm::{Mechanism, ProviderKind, RouteOpts, StructuredMode};
use kernos_planner::llm::{CacheUse, LlmFailure, PlanOptions, Source};
use kernos_planner::{Outcome, Planner};
use serde_json::{Value, json};

use super::fixtures::*;
use super::*;
use kernos_llm::testing::{FakeServer, Reply, closed_port_url};

#[test]
fn a_long_tail_request_becomes_a_validated_plan_from_the_model() {
    let srv = FakeServer::start(vec![Reply::json(openai(&nginx_answer().to_string()))]);
    let c = cascade(config(vec![provider(
        "local",
        &srv.v1(),
        StructuredMode::Auto,
    )]));
    // The offline planner does not know it…
    assert!(matches!(
        Planner::new().plan(NGINX, &ctx()),
        Outcome::NotUnderstood { .. }
    ));
    // …the model does.
    let p = c.plan(NGINX, &ctx(), &PlanOptions::default());
    let plan = plan_of(&p.outcome);
    assert_eq!(
        plan.steps.iter().map(|s| s.name()).collect::<Vec<_>>(),
        ["svc.status", "svc.logs"]
    );
    assert_eq!(plan.steps[1].args["lines"], 100);
    assert_eq!(plan.planner.as_deref(), Some("llm:local/local-model"));
    assert_eq!(plan.request.as_deref(), Some(NGINX));
    assert!(plan.steps[1].why.as_deref().unwrap().contains("log lines"));
    assert!(!plan.untrusted_input);
    assert!(registry().validate(plan).is_empty());
    assert_eq!(
        p.source,
        Source::Model {
            provider: "local".into(),
            model: "local-model".into()
        }
    );
    assert_eq!(p.cache, CacheUse::Off, "no cache configured");
    let r = p.report.as_ref().unwrap();
    assert_eq!((r.calls, r.repairs, r.tokens()), (1, 0, 1500));
    assert_eq!(r.attempts[0].mechanism, Mechanism::JsonSchema);

    // What was sent: the schema (a union over the actions chosen for this request), the
    // rules and the machine in the fixed system prompt, the chosen actions, the context and the
    // request in the user message — and nothing about risk coming from the model.
    let sent = &srv.requests()[0];
    assert_eq!(sent.path, "/v1/chat/completions");
    let rf = &sent.body["response_format"];
    assert_eq!(rf["type"], "json_schema");
    assert_eq!(rf["json_schema"]["strict"], true);
    assert_eq!(rf["json_schema"]["schema"]["additionalProperties"], false);
    let arms: Vec<&str> = rf["json_schema"]["schema"]["properties"]["steps"]["items"]["anyOf"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["properties"]["action"]["enum"][0].as_str().unwrap())
        .collect();
    assert!(
        arms.contains(&"svc.logs") && arms.contains(&"shell.run"),
        "{arms:?}"
    );
    assert!(
        arms.len() <= 8,
        "only the actions the request needs: {arms:?}"
    );
    let texts = sent.texts();
    assert_eq!(texts[0].0, "system");
    assert!(texts[0].1.contains("You do not decide risk"));
    assert!(
        texts[0]
            .1
            .contains("Machine: Debian GNU/Linux 12 (bookworm)"),
        "{}",
        texts[0].1
    );
    assert!(texts[0].1.contains("services: systemd"));
    assert!(
        !texts[0].1.contains("svc.logs("),
        "no catalog in the fixed prefix"
    );
    let user = sent.last_user();
    assert!(
        user.contains("svc.logs(name: str, lines?: int = 50, since?: int)"),
        "{user}"
    );
    assert!(user.contains("Working directory: /home/u/work"));
    assert!(
        user.ends_with("Request: why is nginx failing?\nAnswer:"),
        "{user}"
    );
    assert_eq!(sent.body["temperature"], 0.0);
}

#[test]
fn an_invalid_plan_is_repaired_with_the_exact_errors() {
    let bad = answer(
        &[(
            "fs.largest",
            vec![("pth", json!("/var/log"))],
            vec![],
            "biggest",
        )],
        "",
    );
    let good = answer(
        &[(
            "fs.largest",
            vec![("path", json!("/var/log"))],
            vec![],
            "biggest",
        )],
        "",
    );
    let srv = FakeServer::start(vec![
        Reply::json(openai(&bad.to_string())),
        Reply::json(openai(&good.to_string())),
    ]);
    let (planner, router) = planner_and_router(config(vec![provider(
        "local",
        &srv.v1(),
        StructuredMode::Auto,
    )]));
    let r = planner.plan(
        &router,
        "what eats the space in /var/log",
        &ctx(),
        &[],
        "fast",
        &RouteOpts::default(),
    );
    let mp = r.result.unwrap();
    assert_eq!(mp.plan.steps[0].args["path"], "/var/log");
    assert_eq!((r.calls, r.repairs), (2, 1));
    assert_eq!(r.attempts.len(), 2, "both calls are metered");
    let second = &srv.requests()[1];
    let texts = second.texts();
    // user, assistant (the bad answer), user (the problems)
    assert_eq!(
        texts.iter().map(|(r, _)| r.as_str()).collect::<Vec<_>>(),
        ["system", "user", "assistant", "user"]
    );
    assert!(texts[2].1.contains("\"pth\""), "the bad answer is replayed");
    let repair = &texts[3].1;
    assert!(
        repair.contains("/steps/0/args: unknown field `pth`"),
        "{repair}"
    );
    assert!(repair.contains("expected one of"), "{repair}");
}

#[test]
fn the_same_failure_twice_stops_the_repairs_early() {
    let bad = answer(&[("fs.shred", vec![("path", json!("x"))], vec![], "")], "");
    let srv = FakeServer::always(Reply::json(openai(&bad.to_string())));
    let (planner, router) = planner_and_router(config(vec![provider(
        "local",
        &srv.v1(),
        StructuredMode::Text,
    )]));
    let r = planner.plan(
        &router,
        "shred x",
        &ctx(),
        &[],
        "fast",
        &RouteOpts::default(),
    );
    match r.result {
        Err(LlmFailure::Invalid {
            repeated: true,
            repairs: 1,
            issues,
        }) => assert!(
            issues[0].message.contains("unknown action fs.shred"),
            "{issues:?}"
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(srv.count(), 2, "no third call once the mistake repeats");
}

#[test]
fn different_failures_get_at_most_two_repairs() {
    let bads = [
        answer(&[("fs.find", vec![("size", json!(1))], vec![], "")], ""),
        answer(&[("fs.find", vec![("colour", json!(1))], vec![], "")], ""),
        answer(&[("fs.find", vec![("shape", json!(1))], vec![], "")], ""),
    ];
    let srv = FakeServer::start(
        bads.iter()
            .map(|b| Reply::json(openai(&b.to_string())))
            .collect(),
    );
    let (planner, router) = planner_and_router(config(vec![provider(
        "local",
        &srv.v1(),
        StructuredMode::Auto,
    )]));
    let r = planner.plan(
        &router,
        "find stuff",
        &ctx(),
        &[],
        "fast",
        &RouteOpts::default(),
    );
    assert!(
        matches!(
            r.result,
            Err(LlmFailure::Invalid {
                repairs: 2,
                repeated: false,
                ..
            })
        ),
        "{:?}",
        r.result
    );
    assert_eq!(srv.count(), 3);
}

#[test]
fn garbage_falls_back_to_exactly_the_offline_answer() {
    // Prose without JSON, every time: not JSON → repair → same failure → give up → offline.
    let srv = FakeServer::always(Reply::json(ollama(
        "I think you should check the logs with journalctl, that usually helps!",
    )));
    let c = cascade(config(vec![provider(
        "ollama",
        &srv.v1(),
        StructuredMode::Text,
    )]));
    for req in [NGINX, "make the logs folder smaller"] {
        let p = c.plan(req, &ctx(), &PlanOptions::default());
        assert_eq!(p.outcome, Planner::new().plan(req, &ctx()), "{req}");
        assert_eq!(p.source, Source::Offline);
        let notice = p.notice.unwrap();
        assert!(
            notice.contains("not the JSON asked for")
                && notice.contains("offline planner answered"),
            "{notice}"
        );
    }
    assert_eq!(
        srv.count(),
        4,
        "two calls per request: the answer and one repair"
    );
}

#[test]
fn a_model_that_ignores_the_schema_is_repaired() {
    // Ollama without grammar support answers in its own shape first.
    let srv = FakeServer::start(vec![
        Reply::json(ollama(r#"{"answer": "run systemctl status nginx"}"#)),
        Reply::json(ollama(&format!(
            "Here you go:\n```json\n{}\n```",
            nginx_answer()
        ))),
    ]);
    let c = cascade(config(vec![provider(
        "ollama",
        &srv.root(),
        StructuredMode::Auto,
    )]));
    let p = c.plan(NGINX, &ctx(), &PlanOptions::default());
    assert_eq!(plan_of(&p.outcome).steps.len(), 2);
    let r = p.report.unwrap();
    assert_eq!(r.repairs, 1);
    assert!(
        srv.requests()[1]
            .last_user()
            .contains("missing required field"),
        "{}",
        srv.requests()[1].last_user()
    );
}

#[test]
fn json_schema_tools_and_text_servers_all_give_the_same_plan() {
    let a = nginx_answer().to_string();
    let cases: Vec<(StructuredMode, ProviderKind, String, &str)> = vec![
        (
            StructuredMode::JsonSchema,
            ProviderKind::OpenAi,
            openai(&a),
            "response_format",
        ),
        (
            StructuredMode::Tools,
            ProviderKind::OpenAi,
            openai_tool(&a),
            "tools",
        ),
        (
            StructuredMode::Text,
            ProviderKind::OpenAi,
            llama(&format!("<think>hmm</think>\n{a}")),
            "",
        ),
        (
            StructuredMode::Tools,
            ProviderKind::Anthropic,
            anthropic_tool(&a),
            "tools",
        ),
        (
            StructuredMode::JsonSchema,
            ProviderKind::Anthropic,
            anthropic_text(&a),
            "output_config",
        ),
    ];
    let mut plans = Vec::new();
    for (mode, kind, body, field) in cases {
        let srv = FakeServer::start(vec![Reply::json(body)]);
        let mut p = provider("p", &srv.root(), mode);
        p.kind = kind;
        let c = cascade(config(vec![p]));
        let planned = c.plan(NGINX, &ctx(), &PlanOptions::default());
        let plan = plan_of(&planned.outcome).clone();
        let sent = &srv.requests()[0];
        if field.is_empty() {
            // Text mode: the schema travels in the system prompt.
            assert!(
                sent.texts()[0].1.contains("\"additionalProperties\":false"),
                "{mode:?}"
            );
            assert!(sent.body.get("response_format").is_none() && sent.body.get("tools").is_none());
        } else {
            assert!(
                sent.body.get(field).is_some(),
                "{mode:?} {kind:?}: {}",
                sent.body
            );
        }
        plans.push((mode, kind, plan.steps));
    }
    for (mode, kind, steps) in &plans {
        assert_eq!(steps, &plans[0].2, "{mode:?} {kind:?}");
    }
}

#[test]
fn a_server_without_json_schema_is_downgraded_and_still_plans() {
    let srv = FakeServer::start(vec![
        Reply::status_json(400, OPENAI_400_RESPONSE_FORMAT),
        Reply::json(openai_tool(&nginx_answer().to_string())),
    ]);
    let c = cascade(config(vec![provider(
        "old",
        &srv.v1(),
        StructuredMode::Auto,
    )]));
    let p = c.plan(NGINX, &ctx(), &PlanOptions::default());
    assert_eq!(plan_of(&p.outcome).steps.len(), 2);
    assert_eq!(
        p.report.unwrap().result.unwrap().mechanism,
        Mechanism::Tools
    );
}

#[test]
fn a_refusal_falls_back_to_offline() {
    let srv = FakeServer::start(vec![Reply::json(OPENAI_REFUSAL)]);
    let c = cascade(config(vec![provider(
        "local",
        &srv.v1(),
        StructuredMode::Auto,
    )]));
    let p = c.plan(NGINX, &ctx(), &PlanOptions::default());
    assert_eq!(p.outcome, Planner::new().plan(NGINX, &ctx()));
    assert!(p.notice.unwrap().contains("refused"));
    assert_eq!(srv.count(), 1, "a refusal is not repaired");
}

#[test]
fn a_model_that_says_it_cannot_is_reported_with_the_offline_suggestions() {
    let srv = FakeServer::start(vec![Reply::json(openai(
        &answer(&[], "Kernos has no action to configure a firewall.").to_string(),
    ))]);
    let c = cascade(config(vec![provider(
        "local",
        &srv.v1(),
        StructuredMode::Auto,
    )]));
    let req = "configure the firewall to allow ssh";
    let p = c.plan(req, &ctx(), &PlanOptions::default());
    match (&p.outcome, Planner::new().plan(req, &ctx())) {
        (
            Outcome::NotUnderstood {
                message,
                suggestions,
            },
            Outcome::NotUnderstood {
                message: m0,
                suggestions: s0,
            },
        ) => {
            assert!(
                message.starts_with(&m0) && message.contains("no action to configure a firewall"),
                "{message}"
            );
            assert_eq!(suggestions, &s0);
        }
        other => panic!("{other:?}"),
    }
    assert!(p.notice.is_none());
}

#[test]
fn primary_down_secondary_answers_and_the_breaker_skips_the_primary() {
    let good = FakeServer::always(Reply::json(openai(&nginx_answer().to_string())));
    let mut cfg = config(vec![
        provider("primary", &closed_port_url(), StructuredMode::Auto),
        provider("secondary", &good.v1(), StructuredMode::Auto),
    ]);
    cfg.retry.max_attempts = 1;
    cfg.breaker.failure_threshold = 1;
    cfg.breaker.cooldown_ms = 60_000;
    let c = cascade(cfg);
    let opts = PlanOptions::default();
    let first = c.plan(NGINX, &ctx(), &opts);
    assert_eq!(
        plan_of(&first.outcome).planner.as_deref(),
        Some("llm:secondary/secondary-model")
    );
    let tried: Vec<_> = first
        .report
        .as_ref()
        .unwrap()
        .attempts
        .iter()
        .map(|a| (a.provider.clone(), a.error.is_some()))
        .collect();
    assert_eq!(
        tried,
        [
            ("primary".to_owned(), true),
            ("secondary".to_owned(), false)
        ]
    );
    // The primary's circuit is now open: it is not even tried.
    let second = c.plan("why is redis failing?", &ctx(), &opts);
    let tried: Vec<_> = second
        .report
        .as_ref()
        .unwrap()
        .attempts
        .iter()
        .map(|a| a.provider.clone())
        .collect();
    assert_eq!(tried, ["secondary"]);
}

#[test]
fn rate_limits_are_retried_within_the_budget() {
    let srv = FakeServer::start(vec![
        Reply::status_json(429, OPENAI_429).with_header("retry-after-ms", "30"),
        Reply::status_json(500, OPENAI_500),
        Reply::json(openai(&nginx_answer().to_string())),
    ]);
    let mut cfg = config(vec![provider("local", &srv.v1(), StructuredMode::Auto)]);
    cfg.retry.max_attempts = 3;
    let c = cascade(cfg);
    let p = c.plan(NGINX, &ctx(), &PlanOptions::default());
    assert_eq!(plan_of(&p.outcome).steps.len(), 2);
    let errs: Vec<bool> = p
        .report
        .unwrap()
        .attempts
        .iter()
        .map(|a| a.error.is_some())
        .collect();
    assert_eq!(errs, [true, true, false]);
}

#[test]
fn a_hanging_server_is_bounded_by_the_retry_budget_then_offline_answers() {
    let srv = FakeServer::always(Reply::Hang);
    let mut cfg = config(vec![provider("slow", &srv.v1(), StructuredMode::Auto)]);
    cfg.retry.budget_ms = 600;
    cfg.retry.max_attempts = 5;
    let c = cascade(cfg);
    let t = Instant::now();
    let req = "make the logs folder smaller";
    let p = c.plan(req, &ctx(), &PlanOptions::default());
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    assert_eq!(p.outcome, Planner::new().plan(req, &ctx()));
    let notice = p.notice.unwrap();
    assert!(notice.contains("offline planner answered"), "{notice}");
}

#[test]
fn provider_and_model_flags_go_to_the_model_even_for_confident_requests() {
    let srv = FakeServer::always(Reply::json(openai(
        &answer(&[("sys.disk", vec![], vec![], "disk usage")], "").to_string(),
    )));
    let c = cascade(config(vec![provider(
        "local",
        &srv.v1(),
        StructuredMode::Auto,
    )]));
    let confident = "show disk usage";
    let p = c.plan(confident, &ctx(), &PlanOptions::default());
    assert_eq!(p.source, Source::Offline, "confident: no model call");
    assert_eq!(srv.count(), 0);
    let p = c.plan(
        confident,
        &ctx(),
        &PlanOptions {
            model: Some("big-model".into()),
            ..PlanOptions::default()
        },
    );
    assert!(matches!(p.source, Source::Model { .. }));
    assert_eq!(srv.requests()[0].body["model"], "big-model");
    let p = c.plan(
        confident,
        &ctx(),
        &PlanOptions {
            provider: Some("nope".into()),
            ..PlanOptions::default()
        },
    );
    assert_eq!(p.source, Source::Offline);
    assert!(p.notice.unwrap().contains("no provider named \"nope\""));
}

#[test]
fn complex_requests_take_the_strong_lane_when_one_exists() {
    let srv = FakeServer::always(Reply::json(openai(&nginx_answer().to_string())));
    let mut p = provider("local", &srv.v1(), StructuredMode::Auto);
    p.lanes.insert("strong".into(), "big-model".into());
    let c = cascade(config(vec![p]));
    c.plan(NGINX, &ctx(), &PlanOptions::default());
    c.plan(
        "show me the jq package details",
        &ctx(),
        &PlanOptions::default(),
    );
    let models: Vec<Value> = srv
        .requests()
        .iter()
        .map(|r| r.body["model"].clone())
        .collect();
    assert_eq!(models[0], "big-model", "why … failing → strong");
    assert_eq!(c.lane_for("show me the jq package details"), "fast");
}

#[test]
fn an_async_host_plans_on_a_blocking_thread() {
    use kernos_planner::llm::{Cascade, ChatModel, HandleModel};
    let srv = FakeServer::always(Reply::json(openai(&nginx_answer().to_string())));
    let cfg = config(vec![provider("local", &srv.v1(), StructuredMode::Auto)]);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let handle = rt.handle().clone();
    let router = kernos_llm::Router::new(cfg.clone()).unwrap();
    let c = Cascade::with_factory(registry(), cfg, facts(), move || {
        Ok(Box::new(HandleModel::new(router.clone(), handle.clone())) as Box<dyn ChatModel>)
    });
    let planned = rt
        .block_on(async move {
            tokio::task::spawn_blocking(move || c.plan(NGINX, &ctx(), &PlanOptions::default()))
                .await
        })
        .unwrap();
    assert_eq!(plan_of(&planned.outcome).steps.len(), 2);
}
