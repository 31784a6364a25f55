//! Kernos language-model providers: clients for OpenAI-compatible chat completions (OpenAI,
//! vLLM, llama.cpp's llama-server, Ollama's `/v1`, DeepSeek, OpenRouter, LM Studio, …) and
//! Anthropic Messages, with lanes, a fallback cascade, circuit breakers, bounded retries, and
//! token/cost metering.
//!
//! - [`LlmConfig`] / [`ProviderConfig`]: the `[llm]` config section (TOML via serde), with
//!   [`LlmConfig::apply_env`] for `KERNOS_LLM_*` overrides and [`LlmConfig::validate`] naming the
//!   bad field.
//! - [`Router`]: `complete(lane, &ChatRequest, &RouteOpts)` → [`ChatResponse`] (text, parsed
//!   JSON for a schema request, usage, cost, latency, the mechanism used, every try made).
//!   Async; [`BlockingRouter`] is the synchronous form for the CLI.
//! - Structured output: [`ChatRequest::schema`] asks for JSON of a shape through the strongest
//!   mechanism the server supports ([`StructuredMode`]); `auto` learns per provider.
//! - [`Router::probe`] and [`LlmConfig::models`] back `kernos models test` and `kernos models`.
//! - [`wire`]: the codecs, public for benchmarks and tools.
//! - [`redact`]: secrets are taken out of every request to a provider not on this machine
//!   (and, unless [`LlmConfig::raw_for_loopback`], to local ones too); [`Attempt::redactions`]
//!   counts them.
//!
//! Nothing here talks to the network except to the configured providers, and nothing at build
//! time.
//!
//! ```toml
//! [llm]
//! default_lane = "fast"
//! order = ["local", "claude"]
//!
//! [[llm.providers]]
//! name = "local"
//! kind = "openai"
//! base_url = "http://127.0.0.1:8080/v1"
//! lanes = { fast = "qwen2.5-7b-instruct" }
//!
//! [[llm.providers]]
//! name = "claude"
//! kind = "anthropic"
//! api_key_env = "ANTHROPIC_API_KEY"
//! lanes = { fast = "claude-haiku-4-5", strong = "claude-sonnet-4-5" }
//! prices = { "claude-haiku-4-5" = { input_per_mtok = 1.0, output_per_mtok = 5.0 } }
//! ```

mod breaker;
mod config;
mod error;
mod metrics;
pub mod redact;
mod retry;
mod router;
mod sched;
mod slice;
mod types;
pub mod wire;

#[cfg(feature = "testing")]
pub mod testing;

pub use breaker::{Breaker, BreakerState};
pub use config::{
    BreakerConfig, ConfigError, LlmConfig, ModelEntry, Price, ProviderConfig, ProviderKind,
    RetryConfig, SchedPolicy, StructuredMode,
};
pub use error::{LlmError, ProviderFailure};
pub use metrics::ModelStats;
pub use retry::{backoff, parse_retry_after};
pub use router::{BlockingRouter, ProbeReport, ProviderHealth, Router};
pub use sched::{ClientStats, DEFAULT_CLIENT, OrgStats, SchedStats, WAIT_BUCKETS_MS};
pub use types::{
    Attempt, ChatRequest, ChatResponse, Mechanism, Message, OutputSchema, Role, RouteOpts,
    StreamEvent, Usage, task_key,
};
