//! Everything that can go wrong, one clearly-worded variant per cause.

use std::fmt;
use std::time::Duration;

use crate::config::ConfigError;

/// An error from a language-model call.
#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    /// The `[llm]` config is invalid.
    #[error("invalid language-model config: {0}")]
    Config(#[from] ConfigError),

    /// No provider is configured at all.
    #[error(
        "no language-model provider is configured: add a [[llm.providers]] entry to config.toml \
         (or set KERNOS_LLM_<NAME>_BASE_URL and KERNOS_LLM_<NAME>_MODEL)"
    )]
    NotConfigured,

    /// `--provider NAME` names no configured provider.
    #[error("no provider named {name:?}; configured: {known}")]
    UnknownProvider {
        /// The name asked for.
        name: String,
        /// Comma-separated configured names.
        known: String,
    },

    /// No provider has a model for the lane.
    #[error(
        "no provider has a model for lane {lane:?}: add it to a provider's `lanes` or set its `model`"
    )]
    NoModelForLane {
        /// The lane asked for.
        lane: String,
    },

    /// The provider's key variable is unset or empty.
    #[error("{provider}: the API key variable {env} is not set; export it or change api_key_env")]
    MissingApiKey {
        /// Provider name.
        provider: String,
        /// The variable named by `api_key_env`.
        env: String,
    },

    /// The circuit breaker is open: the provider failed repeatedly and is being rested.
    #[error(
        "{provider}: skipped, circuit open after {failures} consecutive failures (next probe in {} ms)",
        retry_in.as_millis()
    )]
    CircuitOpen {
        /// Provider name.
        provider: String,
        /// Consecutive failures that opened it.
        failures: u32,
        /// Time until a probe is allowed.
        retry_in: Duration,
    },

    /// Could not connect or the connection broke before a response.
    #[error("{provider}: cannot reach {url}: {detail}")]
    Connect {
        /// Provider name.
        provider: String,
        /// Endpoint.
        url: String,
        /// Transport error.
        detail: String,
    },

    /// The try took longer than its limit.
    #[error("{provider}: no complete answer within {} ms (timeout_ms or the retry budget)", after.as_millis())]
    Timeout {
        /// Provider name.
        provider: String,
        /// The limit that ran out.
        after: Duration,
    },

    /// HTTP 429.
    #[error("{provider}: rate limited (HTTP 429{}): {message}", fmt_retry_after(*retry_after))]
    RateLimited {
        /// Provider name.
        provider: String,
        /// The server's `Retry-After`, if any.
        retry_after: Option<Duration>,
        /// The server's message.
        message: String,
    },

    /// HTTP 5xx (including Anthropic's 529 "overloaded"), or an error event inside a stream.
    #[error("{provider}: server error (HTTP {status}{}): {message}", fmt_retry_after(*retry_after))]
    Server {
        /// Provider name.
        provider: String,
        /// HTTP status (0 for an error event inside a 200 stream).
        status: u16,
        /// The server's `Retry-After`, if any (503 may carry one).
        retry_after: Option<Duration>,
        /// The server's message.
        message: String,
    },

    /// Any other non-2xx answer (400, 401, 403, 404, …): the request or the account is wrong,
    /// so the same request is not retried.
    #[error("{provider}: request rejected (HTTP {status}): {message}{}", hint_for(*status))]
    Rejected {
        /// Provider name.
        provider: String,
        /// HTTP status.
        status: u16,
        /// The server's message.
        message: String,
    },

    /// The body was not the API's response format (not JSON, or missing required parts).
    #[error("{provider}: malformed response (not the expected API format): {detail}")]
    MalformedResponse {
        /// Provider name.
        provider: String,
        /// What was wrong, with the start of the body.
        detail: String,
    },

    /// A streamed answer ended before the API's end marker (`[DONE]`/finish reason or
    /// `message_stop`), or the connection dropped mid-stream.
    #[error("{provider}: the answer stream was cut off before it finished: {detail}")]
    TruncatedStream {
        /// Provider name.
        provider: String,
        /// What was last seen.
        detail: String,
    },

    /// The prompt plus the answer do not fit the model's context window ("Context size has
    /// been exceeded", "maximum context length"). The same request fails the same way every
    /// time, so it is never retried.
    #[error(
        "{provider}: the request does not fit the model's context window{}: {message}",
        context.map(|n| format!(" ({n} tokens)")).unwrap_or_default()
    )]
    ContextExceeded {
        /// Provider name.
        provider: String,
        /// The server's context size, when known.
        context: Option<u32>,
        /// The server's message (or ours, when the prompt alone is too long to send).
        message: String,
    },

    /// The model stopped at `max_tokens` before the structured answer was complete.
    #[error(
        "{provider}: the answer hit max_tokens ({max_tokens}) before the JSON was complete; raise max_tokens"
    )]
    OutputTruncated {
        /// Provider name.
        provider: String,
        /// The limit in force.
        max_tokens: u32,
    },

    /// A schema was asked for but the answer held no usable JSON, or JSON of the wrong shape.
    #[error("{provider} ({model}): the answer is not valid JSON for schema {schema:?}: {detail}")]
    InvalidJson {
        /// Provider name.
        provider: String,
        /// Model.
        model: String,
        /// Schema name.
        schema: String,
        /// Parse or shape error.
        detail: String,
        /// The raw answer, for a repair prompt.
        text: String,
    },

    /// The model declined (OpenAI `refusal`, Anthropic `stop_reason: "refusal"`, or a content
    /// filter). The cascade stops here: asking another model to do what one refused is not a
    /// fallback.
    #[error("{provider} ({model}) refused the request: {message}")]
    Refused {
        /// Provider name.
        provider: String,
        /// Model.
        model: String,
        /// The refusal text (or the filter's reason).
        message: String,
    },

    /// The retry budget ran out while retrying this provider.
    #[error("gave up after {attempts} tries, the retry budget is spent; last error: {last}")]
    BudgetExhausted {
        /// Tries made.
        attempts: u32,
        /// The error of the last try.
        last: Box<LlmError>,
    },

    /// Every provider in the cascade failed.
    #[error("{}", AllFailedDisplay { lane, failures })]
    AllFailed {
        /// Lane asked for.
        lane: String,
        /// Each provider's reason, in cascade order.
        failures: Vec<ProviderFailure>,
        /// Every try made (for cost journaling).
        attempts: Vec<crate::Attempt>,
    },

    /// [`crate::BlockingRouter`] was called on a thread that is running an async runtime.
    #[error(
        "the blocking language-model API was called from inside an async runtime; use \
         Router::complete(...).await there"
    )]
    BlockingInsideRuntime,

    /// Setting up the HTTP client or runtime failed.
    #[error("cannot set up the HTTP client: {0}")]
    Setup(String),
}

/// Why one provider of the cascade failed.
#[derive(Debug)]
pub struct ProviderFailure {
    /// Provider name.
    pub provider: String,
    /// Model tried (empty when the provider was skipped before a model was chosen).
    pub model: String,
    /// The reason.
    pub error: LlmError,
}

struct AllFailedDisplay<'a> {
    lane: &'a str,
    failures: &'a [ProviderFailure],
}

impl fmt::Display for AllFailedDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "every language-model provider failed for lane {:?}:",
            self.lane
        )?;
        for p in self.failures {
            // Each error names its provider for when it stands alone; here the line already
            // does.
            let e = p.error.to_string();
            let e = e
                .strip_prefix(p.provider.as_str())
                .and_then(|r| r.strip_prefix(": "))
                .unwrap_or(&e);
            if p.model.is_empty() {
                write!(f, "\n  - {}: {e}", p.provider)?;
            } else {
                write!(f, "\n  - {} ({}): {e}", p.provider, p.model)?;
            }
        }
        write!(f, "\n  (try `kernos models test NAME` to check a provider)")
    }
}

fn fmt_retry_after(d: Option<Duration>) -> String {
    match d {
        Some(d) => format!(", retry after {} s", d.as_secs_f64().ceil() as u64),
        None => String::new(),
    }
}

fn hint_for(status: u16) -> &'static str {
    match status {
        401 => " (check the API key)",
        403 => " (the key lacks access to this model or endpoint)",
        404 => " (check base_url and the model name)",
        _ => "",
    }
}

impl LlmError {
    /// Worth another try at the same provider after a wait: rate limits, server errors,
    /// timeouts, broken connections and cut-off streams.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            LlmError::Connect { .. }
                | LlmError::Timeout { .. }
                | LlmError::RateLimited { .. }
                | LlmError::Server { .. }
                | LlmError::TruncatedStream { .. }
        )
    }

    /// A sign the provider itself is unhealthy (counts towards opening its breaker). Client
    /// errors and bad answers prove the server is up, so they do not.
    pub fn is_provider_fault(&self) -> bool {
        self.is_retryable()
    }

    /// Ends the whole cascade instead of moving to the next provider.
    pub fn stops_cascade(&self) -> bool {
        matches!(self, LlmError::Refused { .. })
    }

    /// The server's requested wait, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            LlmError::RateLimited { retry_after, .. } | LlmError::Server { retry_after, .. } => {
                *retry_after
            }
            _ => None,
        }
    }

    /// A short machine-friendly name for metrics and journals (`timeout`, `rate_limited`, …).
    pub fn kind(&self) -> &'static str {
        match self {
            LlmError::Config(_) => "config",
            LlmError::NotConfigured => "not_configured",
            LlmError::UnknownProvider { .. } => "unknown_provider",
            LlmError::NoModelForLane { .. } => "no_model_for_lane",
            LlmError::MissingApiKey { .. } => "missing_api_key",
            LlmError::CircuitOpen { .. } => "circuit_open",
            LlmError::Connect { .. } => "connect",
            LlmError::Timeout { .. } => "timeout",
            LlmError::RateLimited { .. } => "rate_limited",
            LlmError::Server { .. } => "server_error",
            LlmError::Rejected { .. } => "rejected",
            LlmError::MalformedResponse { .. } => "malformed_response",
            LlmError::TruncatedStream { .. } => "truncated_stream",
            LlmError::OutputTruncated { .. } => "output_truncated",
            LlmError::ContextExceeded { .. } => "context_exceeded",
            LlmError::InvalidJson { .. } => "invalid_json",
            LlmError::Refused { .. } => "refused",
            LlmError::BudgetExhausted { .. } => "budget_exhausted",
            LlmError::AllFailed { .. } => "all_failed",
            LlmError::BlockingInsideRuntime => "blocking_inside_runtime",
            LlmError::Setup(_) => "setup",
        }
    }
}
