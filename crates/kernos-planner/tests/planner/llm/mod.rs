//! The LLM tier end to end at the planner level: request → prompt → HTTP → answer → plan →
//! validation → repair → cascade → cache, against an in-process server replaying the response
//! shapes of OpenAI, Anthropic, llama.cpp's llama-server and Ollama. Client-level behaviour
//! (codecs, streaming, quirks) is kernos-llm's own test suite; these tests are about plans.

mod agent;
mod cache;
mod examples;
mod fixtures;
mod honest;
mod injection;
mod live;
mod offline;
mod replay;
mod wire;

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use kernos_llm::{
    BlockingRouter, LlmConfig, ProviderConfig, ProviderKind, RetryConfig, StructuredMode,
};
use kernos_planner::PlanContext;
use kernos_planner::llm::{Cascade, ChatModel, HostFacts, LlmPlanner};
use kernos_tools::Registry;
use serde_json::{Value, json};

/// The real v1 catalog, built once.
pub fn registry() -> Arc<Registry> {
    static R: OnceLock<Arc<Registry>> = OnceLock::new();
    R.get_or_init(|| Arc::new(Registry::builtin())).clone()
}

/// A fixed machine, so prompts and keys do not depend on the test host.
pub fn facts() -> HostFacts {
    HostFacts {
        distro: "Debian GNU/Linux 12 (bookworm)".into(),
        distro_id: "debian".into(),
        kernel: "6.1.0-test".into(),
        arch: "x86_64".into(),
        package_managers: vec!["apt".into()],
        service_manager: "systemd".into(),
    }
}

pub fn ctx() -> PlanContext {
    PlanContext::new("/home/u", "/home/u/work")
}

/// A keyless OpenAI-compatible provider (llama-server, Ollama, vLLM…) at `base`, lane `fast`.
pub fn provider(name: &str, base: &str, mode: StructuredMode) -> ProviderConfig {
    ProviderConfig {
        name: name.into(),
        kind: ProviderKind::OpenAi,
        base_url: Some(base.into()),
        lanes: BTreeMap::from([("fast".to_owned(), format!("{name}-model"))]),
        timeout_ms: 5_000,
        structured: mode,
        ..ProviderConfig::default()
    }
}

/// Providers with fast retries and a breaker that does not open by itself.
pub fn config(providers: Vec<ProviderConfig>) -> LlmConfig {
    let mut c = LlmConfig {
        providers,
        retry: RetryConfig {
            max_attempts: 2,
            base_delay_ms: 10,
            max_delay_ms: 40,
            budget_ms: 10_000,
        },
        ..LlmConfig::default()
    };
    c.breaker.failure_threshold = 100;
    c
}

/// A cascade over `cfg`, with a router built on first use.
pub fn cascade(cfg: LlmConfig) -> Cascade {
    let router_cfg = cfg.clone();
    Cascade::with_factory(registry(), cfg, facts(), move || {
        Ok(Box::new(BlockingRouter::new(router_cfg.clone())?) as Box<dyn ChatModel>)
    })
}

/// An LLM planner and a router over `cfg`, for job-level tests.
pub fn planner_and_router(cfg: LlmConfig) -> (LlmPlanner, BlockingRouter) {
    (
        LlmPlanner::new(registry(), facts()),
        BlockingRouter::new(cfg).unwrap(),
    )
}

/// One step of an answer: `(action, [(name, value)…], needs, why)`.
pub type StepSpec<'a> = (&'a str, Vec<(&'a str, Value)>, Vec<usize>, &'a str);

/// An answer in the strict format.
pub fn answer(steps: &[StepSpec<'_>], message: &str) -> Value {
    json!({
        "steps": steps.iter().map(|(a, args, needs, why)| json!({
            "action": a,
            "args": args.iter().map(|(n, v)| json!({"name": n, "value": v})).collect::<Vec<_>>(),
            "needs": needs,
            "why": why,
        })).collect::<Vec<_>>(),
        "message": message,
    })
}

/// The plan a good model makes for "why is nginx failing?".
pub fn nginx_answer() -> Value {
    answer(
        &[
            (
                "svc.status",
                vec![("name", json!("nginx"))],
                vec![],
                "See whether nginx is running and since when.",
            ),
            (
                "svc.logs",
                vec![("name", json!("nginx")), ("lines", json!(100))],
                vec![],
                "Its recent log lines usually say why it fails.",
            ),
        ],
        "",
    )
}

pub const NGINX: &str = "why is nginx failing?";

/// The plan of an outcome that must be one.
pub fn plan_of(o: &kernos_planner::Outcome) -> &kernos_core::Plan {
    match o {
        kernos_planner::Outcome::Plan { plan, .. } => plan,
        other => panic!("expected a plan, got {other:?}"),
    }
}
