//! Opt-in: plans a handful of requests against a real server.
//!
//! ```sh
//! KERNOS_LIVE_LLM=1 KERNOS_LIVE_LLM_BASE_URL=http://127.0.0.1:8080/v1 \
//!   KERNOS_LIVE_LLM_MODEL=qwen2.5-7b-instruct \
//!   cargo test -p kernos-planner --test planner live -- --nocapture
//! ```
//!
//! Optional: `KERNOS_LIVE_LLM_KIND=anthropic`, `KERNOS_LIVE_LLM_KEY_ENV=OPENAI_API_KEY` (the
//! name of the variable holding the key). Without `KERNOS_LIVE_LLM=1` it says why it is
//! skipped and passes.

use std::collections::BTreeMap;

use kernos_llm::{LlmConfig, ProviderConfig, ProviderKind};
use kernos_planner::Outcome;
use kernos_planner::llm::{HostFacts, PlanOptions, Source};

use super::*;

#[test]
fn live_plans_against_a_real_server() {
    if std::env::var("KERNOS_LIVE_LLM").as_deref() != Ok("1") {
        eprintln!(
            "live_plans_against_a_real_server skipped: set KERNOS_LIVE_LLM=1, \
             KERNOS_LIVE_LLM_BASE_URL and KERNOS_LIVE_LLM_MODEL"
        );
        return;
    }
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let base = var("KERNOS_LIVE_LLM_BASE_URL").expect("KERNOS_LIVE_LLM_BASE_URL");
    let model = var("KERNOS_LIVE_LLM_MODEL").expect("KERNOS_LIVE_LLM_MODEL");
    let kind = match var("KERNOS_LIVE_LLM_KIND").as_deref() {
        Some("anthropic") => ProviderKind::Anthropic,
        _ => ProviderKind::OpenAi,
    };
    let cfg = LlmConfig {
        providers: vec![ProviderConfig {
            name: "live".into(),
            kind,
            base_url: Some(base),
            api_key_env: var("KERNOS_LIVE_LLM_KEY_ENV"),
            lanes: BTreeMap::from([("fast".to_owned(), model)]),
            timeout_ms: 180_000,
            ..ProviderConfig::default()
        }],
        ..LlmConfig::default()
    };
    let c = kernos_planner::llm::Cascade::new(registry(), cfg, HostFacts::detect());
    let requests = [
        "why is nginx failing?",
        "free up space in ~/Downloads by finding files bigger than 500MB",
        "which process is listening on port 5432 and how much memory does it use",
        "show me the git history of this repo for the last week",
        "what changed in /etc recently",
    ];
    let mut planned = 0;
    for r in requests {
        let p = c.plan(
            r,
            &ctx(),
            &PlanOptions {
                no_cache: true,
                model: None,
                provider: Some("live".into()),
                data: Vec::new(),
            },
        );
        let report = p.report.as_ref();
        eprintln!(
            "{r:?}\n  source {:?}, calls {:?}, repairs {:?}, tokens {:?}, notice {:?}",
            p.source,
            report.map(|r| r.calls),
            report.map(|r| r.repairs),
            report.map(|r| r.tokens()),
            p.notice
        );
        if let Outcome::Plan { plan, .. } = &p.outcome {
            for s in &plan.steps {
                eprintln!(
                    "    {} {} — {}",
                    s.name(),
                    serde_json::Value::Object(s.args.clone()),
                    s.why.as_deref().unwrap_or("")
                );
            }
            assert!(registry().validate(plan).is_empty(), "validated");
        }
        if matches!(p.source, Source::Model { .. }) {
            planned += 1;
        }
    }
    assert!(
        planned >= 3,
        "the model planned only {planned} of {}",
        requests.len()
    );
}
