//! Behaviour of kernos-llm against an in-process HTTP server replaying the documented wire
//! formats of OpenAI, llama.cpp's llama-server, Ollama's `/v1` and Anthropic (see
//! `fixtures.rs`), plus resilience (retries, Retry-After, timeouts, breakers, fallback) and an
//! opt-in live call (`live.rs`).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod anthropic;
mod api;
mod context;
mod fixtures;
mod live;
mod local_servers;
mod openai;
mod resilience;
mod sched;
mod sched_disciplines;
mod time_slice;

use std::collections::BTreeMap;

use kernos_llm::{
    BlockingRouter, ChatRequest, LlmConfig, Message, OutputSchema, Price, ProviderConfig,
    ProviderKind, RetryConfig, Router, StreamEvent, StructuredMode,
};

pub const OPENAI_KEY: &str = "sk-test-openai-0123456789";
pub const ANTHROPIC_KEY: &str = "sk-ant-test-0123456789";

/// An OpenAI-compatible provider at `base`, lane `fast` = `gpt-4.1-mini` at $0.40/$1.60.
pub fn openai(name: &str, base: &str) -> ProviderConfig {
    ProviderConfig {
        name: name.into(),
        kind: ProviderKind::OpenAi,
        base_url: Some(base.into()),
        api_key_env: Some("FAKE_OPENAI_KEY".into()),
        lanes: BTreeMap::from([("fast".to_owned(), "gpt-4.1-mini".to_owned())]),
        prices: BTreeMap::from([(
            "gpt-4.1-mini".to_owned(),
            Price {
                input_per_mtok: 0.40,
                output_per_mtok: 1.60,
            },
        )]),
        timeout_ms: 5_000,
        ..ProviderConfig::default()
    }
}

/// A local server without key or prices.
pub fn local(name: &str, base: &str, model: &str) -> ProviderConfig {
    ProviderConfig {
        name: name.into(),
        base_url: Some(base.into()),
        model: Some(model.into()),
        timeout_ms: 5_000,
        ..ProviderConfig::default()
    }
}

/// An Anthropic provider, lane `fast` = `claude-haiku-4-5` at $1/$5.
pub fn anthropic(name: &str, base: &str) -> ProviderConfig {
    ProviderConfig {
        name: name.into(),
        kind: ProviderKind::Anthropic,
        base_url: Some(base.into()),
        api_key_env: Some("FAKE_ANTHROPIC_KEY".into()),
        lanes: BTreeMap::from([("fast".to_owned(), "claude-haiku-4-5".to_owned())]),
        prices: BTreeMap::from([(
            "claude-haiku-4-5".to_owned(),
            Price {
                input_per_mtok: 1.0,
                output_per_mtok: 5.0,
            },
        )]),
        timeout_ms: 5_000,
        ..ProviderConfig::default()
    }
}

/// Providers with fast retries (10–50 ms back-off) and a breaker that will not open by itself.
pub fn config(providers: Vec<ProviderConfig>) -> LlmConfig {
    let mut c = LlmConfig {
        providers,
        retry: RetryConfig {
            max_attempts: 3,
            base_delay_ms: 10,
            max_delay_ms: 50,
            budget_ms: 20_000,
        },
        ..LlmConfig::default()
    };
    c.breaker.failure_threshold = 100;
    c
}

fn secrets(name: &str) -> Option<String> {
    match name {
        "FAKE_OPENAI_KEY" => Some(OPENAI_KEY.into()),
        "FAKE_ANTHROPIC_KEY" => Some(ANTHROPIC_KEY.into()),
        _ => None,
    }
}

/// An async router whose keys come from the test's fake secret store.
pub fn async_router(cfg: LlmConfig) -> Router {
    Router::with_secrets(cfg, secrets).unwrap()
}

pub fn router(cfg: LlmConfig) -> BlockingRouter {
    BlockingRouter::from_router(async_router(cfg)).unwrap()
}

pub fn with_mode(mut p: ProviderConfig, mode: StructuredMode) -> ProviderConfig {
    p.structured = mode;
    p
}

pub fn text_req(stream: bool) -> ChatRequest {
    ChatRequest {
        system: "You are Kernos.".into(),
        messages: vec![Message::user("say hello")],
        stream,
        ..ChatRequest::default()
    }
}

pub fn plan_req(stream: bool) -> ChatRequest {
    ChatRequest {
        system: "You turn requests into plans.".into(),
        messages: vec![Message::user("show me the largest files here")],
        schema: Some(OutputSchema {
            name: "plan".into(),
            description: "A Kernos plan".into(),
            schema: fixtures::plan_schema(),
            strict: true,
        }),
        stream,
        ..ChatRequest::default()
    }
}

/// Runs `complete_with` on lane `fast` and returns the response and what the callback saw:
/// `started:provider/model` for each try, then the deltas.
pub fn complete_collecting(
    r: &BlockingRouter,
    req: &ChatRequest,
) -> (
    Result<kernos_llm::ChatResponse, kernos_llm::LlmError>,
    Vec<String>,
) {
    let mut seen = Vec::new();
    let res = r.complete_with("fast", req, &Default::default(), &mut |e| match e {
        StreamEvent::Started { provider, model } => {
            seen.push(format!("started:{provider}/{model}"))
        }
        StreamEvent::Delta(d) => seen.push(d.to_owned()),
    });
    (res, seen)
}
