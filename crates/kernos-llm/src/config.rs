//! The `[llm]` section of the Kernos config: providers, lanes, prices, retry and breaker
//! settings, `KERNOS_LLM_*` environment overrides, and validation that names the bad field.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Which wire protocol a provider speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum ProviderKind {
    /// OpenAI chat completions (`POST {base}/chat/completions`): OpenAI, vLLM, llama.cpp's
    /// llama-server, Ollama's `/v1`, DeepSeek, OpenRouter, LM Studio, …
    #[default]
    #[serde(rename = "openai")]
    OpenAi,
    /// Anthropic Messages (`POST {base}/v1/messages`).
    #[serde(rename = "anthropic")]
    Anthropic,
}

impl ProviderKind {
    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::OpenAi => "openai",
            ProviderKind::Anthropic => "anthropic",
        }
    }

    /// Where the vendor's own API lives, used when `base_url` is not set.
    pub fn default_base_url(self) -> &'static str {
        match self {
            ProviderKind::OpenAi => "https://api.openai.com/v1",
            ProviderKind::Anthropic => "https://api.anthropic.com",
        }
    }
}

/// How to ask a provider for structured (JSON) output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StructuredMode {
    /// Try `json_schema`; when the server rejects it (a 4xx naming `response_format` /
    /// `output_config`) use `tools`; when it rejects tools, `text`. The downgrade is remembered
    /// per provider for the life of the process.
    #[default]
    Auto,
    /// Constrained output only (`response_format: json_schema` / `output_config.format`).
    JsonSchema,
    /// A forced tool call.
    Tools,
    /// Ask in the prompt and extract JSON from the text.
    Text,
}

impl StructuredMode {
    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            StructuredMode::Auto => "auto",
            StructuredMode::JsonSchema => "json_schema",
            StructuredMode::Tools => "tools",
            StructuredMode::Text => "text",
        }
    }
}

/// How a provider's freed slot picks the next waiting call (`sched = "…"` in `[llm]` or a
/// provider's entry).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SchedPolicy {
    /// Fair share by tokens between clients: the waiting client served the fewest weighted
    /// tokens goes first (the virtual token counter of Sheng et al., OSDI 2024).
    #[default]
    Fair,
    /// First come, first served across all clients.
    Fifo,
    /// Clients in turn, one call each (each client's own calls in arrival order).
    RoundRobin,
    /// Highest [`crate::RouteOpts::priority`] first, with ageing: a waiting call gains one
    /// level for every [`SchedPolicy::AGING_DISPATCHES`] calls dispatched while it waits, so a
    /// stream of high-priority calls cannot starve a low one.
    Priority,
}

impl SchedPolicy {
    /// Calls dispatched past a waiting call that raise its priority by one level under
    /// [`SchedPolicy::Priority`]. Counted in dispatches rather than seconds so the bound on
    /// starvation holds whatever the speed of the model: a call of priority `p` waits for at
    /// most `AGING_DISPATCHES × (255 − p)` dispatches of calls that arrived after it.
    pub const AGING_DISPATCHES: u64 = 4;

    /// The name used in the config and in `/metrics`.
    pub fn as_str(self) -> &'static str {
        match self {
            SchedPolicy::Fair => "fair",
            SchedPolicy::Fifo => "fifo",
            SchedPolicy::RoundRobin => "round_robin",
            SchedPolicy::Priority => "priority",
        }
    }

    fn parse(v: &str) -> Option<SchedPolicy> {
        [
            SchedPolicy::Fair,
            SchedPolicy::Fifo,
            SchedPolicy::RoundRobin,
            SchedPolicy::Priority,
        ]
        .into_iter()
        .find(|p| p.as_str() == v)
    }
}

/// Price of a model in US dollars per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    /// Per million prompt tokens.
    pub input_per_mtok: f64,
    /// Per million completion tokens.
    pub output_per_mtok: f64,
}

impl Price {
    /// Cost of a call.
    pub fn cost(&self, input_tokens: u64, output_tokens: u64) -> f64 {
        (input_tokens as f64 * self.input_per_mtok + output_tokens as f64 * self.output_per_mtok)
            / 1_000_000.0
    }
}

/// One `[[llm.providers]]` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProviderConfig {
    /// Unique name (`[a-z0-9_-]`), used in `--provider`, metrics and `KERNOS_LLM_<NAME>_*`.
    pub name: String,
    /// Wire protocol.
    pub kind: ProviderKind,
    /// API root. OpenAI-compatible: up to and including `/v1` (a bare `http://host:port` gets
    /// `/v1` added). Anthropic: with or without `/v1`. Default: the vendor's public API.
    pub base_url: Option<String>,
    /// Name of the environment variable holding the API key (never the key itself). `None`:
    /// no authentication (local servers).
    pub api_key_env: Option<String>,
    /// Model for lanes not listed in `lanes`.
    pub model: Option<String>,
    /// Lane name (`fast`, `strong`, …) → model.
    pub lanes: BTreeMap<String, String>,
    /// Model → price, for cost metering. Models without a price cost 0.
    pub prices: BTreeMap<String, Price>,
    /// Limit for one try, connection to last byte.
    pub timeout_ms: u64,
    /// How to ask for structured output.
    pub structured: StructuredMode,
    /// Extra HTTP headers sent with every request (e.g. OpenRouter's `HTTP-Referer`).
    pub headers: BTreeMap<String, String>,
    /// `max_tokens` when the request does not set one.
    pub max_tokens: u32,
    /// Calls sent at once: the server's parallel slots (llama.cpp `--parallel`, a hosted
    /// API's concurrency). More only queue inside the server, where Kernos cannot share them
    /// fairly. `None`: what llama.cpp's `GET /props` reports as `total_slots`, else
    /// [`ProviderConfig::DEFAULT_LOCAL_SLOTS`] for a plain-http server and
    /// [`ProviderConfig::DEFAULT_HOSTED_SLOTS`] for a hosted API.
    pub slots: Option<u32>,
    /// How a freed slot picks the next call; `None`: the `[llm]` section's `sched`.
    pub sched: Option<SchedPolicy>,
    /// Streamed plain-text generations are pre-empted after this many answer tokens when
    /// another client's call waits for a slot, and resumed later by re-sending the request with
    /// the partial answer as a trailing assistant message, which the server continues (time
    /// slicing). Only for OpenAI-compatible servers that continue a trailing assistant message
    /// (llama.cpp's `llama-server` does; vLLM needs `continue_final_message`); `None`: never
    /// pre-empted.
    pub time_slice_tokens: Option<u32>,
}

impl Default for ProviderConfig {
    fn default() -> Self {
        ProviderConfig {
            name: String::new(),
            kind: ProviderKind::OpenAi,
            base_url: None,
            api_key_env: None,
            model: None,
            lanes: BTreeMap::new(),
            prices: BTreeMap::new(),
            timeout_ms: 60_000,
            structured: StructuredMode::Auto,
            headers: BTreeMap::new(),
            max_tokens: 2048,
            slots: None,
            sched: None,
            time_slice_tokens: None,
        }
    }
}

impl ProviderConfig {
    /// Slots assumed for a server over plain http (usually local: llama.cpp's default is 4
    /// parallel slots when it picks them itself).
    pub const DEFAULT_LOCAL_SLOTS: u32 = 4;
    /// Slots assumed for a hosted API over https (concurrency there is bounded by rate limits,
    /// which the `Retry-After` feedback handles).
    pub const DEFAULT_HOSTED_SLOTS: u32 = 16;

    /// Slots in force before the server was asked: configured, else the default by kind.
    pub fn default_slots(&self) -> u32 {
        self.slots.unwrap_or_else(|| {
            if self.kind == ProviderKind::Anthropic
                || self.effective_base_url().starts_with("https://")
            {
                Self::DEFAULT_HOSTED_SLOTS
            } else {
                Self::DEFAULT_LOCAL_SLOTS
            }
        })
    }

    /// The scheduling discipline in force for this provider: its own, else `global`.
    pub fn sched_policy(&self, global: SchedPolicy) -> SchedPolicy {
        self.sched.unwrap_or(global)
    }

    /// The base URL in force (configured or the vendor default).
    pub fn effective_base_url(&self) -> &str {
        self.base_url
            .as_deref()
            .unwrap_or(self.kind.default_base_url())
    }

    /// The model for a lane: the lane's entry, else `model`.
    pub fn model_for(&self, lane: &str) -> Option<&str> {
        self.lanes
            .get(lane)
            .or(self.model.as_ref())
            .map(String::as_str)
    }

    /// Whether this provider knows `model` (in a lane, as `model`, or priced).
    pub fn lists_model(&self, model: &str) -> bool {
        self.model.as_deref() == Some(model)
            || self.lanes.values().any(|m| m == model)
            || self.prices.contains_key(model)
    }

    /// The full URL of the chat endpoint.
    pub fn endpoint(&self) -> String {
        let base = self.effective_base_url().trim_end_matches('/');
        match self.kind {
            ProviderKind::OpenAi => {
                // Ollama and llama-server users often paste the bare server address; the
                // OpenAI-compatible routes live under /v1 on both.
                if path_is_root(base) {
                    format!("{base}/v1/chat/completions")
                } else {
                    format!("{base}/chat/completions")
                }
            }
            ProviderKind::Anthropic => {
                if base.ends_with("/v1") {
                    format!("{base}/messages")
                } else {
                    format!("{base}/v1/messages")
                }
            }
        }
    }
}

/// True for `http://host[:port]` with no path.
fn path_is_root(base: &str) -> bool {
    let rest = base.split_once("://").map_or(base, |(_, r)| r);
    !rest.contains('/')
}

/// `[llm.retry]`: retries within one call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryConfig {
    /// Tries per provider per call, the first included (1 = no retry).
    pub max_attempts: u32,
    /// First back-off delay; doubles each retry, with jitter.
    pub base_delay_ms: u64,
    /// Largest back-off delay.
    pub max_delay_ms: u64,
    /// Wall-time budget for the whole call across every provider, tries and waits included.
    /// A `Retry-After` longer than what is left is not waited for: the cascade moves on.
    pub budget_ms: u64,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            max_attempts: 3,
            base_delay_ms: 250,
            max_delay_ms: 4_000,
            budget_ms: 120_000,
        }
    }
}

/// `[llm.breaker]`: per-provider circuit breaker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BreakerConfig {
    /// Consecutive failed tries (timeouts, connection errors, 429, 5xx) that open the circuit.
    pub failure_threshold: u32,
    /// How long an open circuit skips the provider before one probe call is let through.
    pub cooldown_ms: u64,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            failure_threshold: 3,
            cooldown_ms: 30_000,
        }
    }
}

/// The `[llm]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LlmConfig {
    /// Lane used when the caller passes an empty lane.
    pub default_lane: String,
    /// Cascade order by provider name; providers not listed follow in file order. Empty: file
    /// order.
    pub order: Vec<String>,
    /// The providers.
    pub providers: Vec<ProviderConfig>,
    /// Retry settings.
    pub retry: RetryConfig,
    /// Circuit-breaker settings.
    pub breaker: BreakerConfig,
    /// Whether a provider on this machine (loopback address, `localhost`, unix socket) is sent
    /// the prompt as it is. Secrets are always redacted for every other provider; `false`
    /// redacts for local models too.
    pub raw_for_loopback: bool,
    /// How every provider's freed slot picks the next call, unless the provider sets its own.
    pub sched: SchedPolicy,
}

impl Default for LlmConfig {
    fn default() -> Self {
        LlmConfig {
            default_lane: "fast".into(),
            order: Vec::new(),
            providers: Vec::new(),
            retry: RetryConfig::default(),
            breaker: BreakerConfig::default(),
            raw_for_loopback: true,
            sched: SchedPolicy::Fair,
        }
    }
}

/// A setting that is wrong, with the field's path (`llm.providers[1].base_url`) and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ConfigError {
    /// Dotted path of the field (or the environment variable) at fault.
    pub field: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl ConfigError {
    fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// One row of `kernos models`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelEntry {
    /// Provider name.
    pub provider: String,
    /// Wire protocol.
    pub kind: ProviderKind,
    /// Lane (`None` for the provider's catch-all `model`).
    pub lane: Option<String>,
    /// Model name.
    pub model: String,
    /// Price, when configured.
    pub price: Option<Price>,
    /// Endpoint URL.
    pub endpoint: String,
    /// Key variable name, if the provider needs a key.
    pub api_key_env: Option<String>,
    /// Whether that variable is set (non-empty) in this process.
    pub key_present: bool,
    /// Position in the cascade (0 = tried first).
    pub rank: usize,
}

const LIMIT_TIMEOUT_MS: u64 = 30 * 60 * 1000;

impl LlmConfig {
    /// Providers in cascade order (`order` first, then the rest in file order).
    pub fn ordered(&self) -> Vec<&ProviderConfig> {
        let mut out: Vec<&ProviderConfig> = self
            .order
            .iter()
            .filter_map(|n| self.providers.iter().find(|p| &p.name == n))
            .collect();
        for p in &self.providers {
            if !out.iter().any(|q| q.name == p.name) {
                out.push(p);
            }
        }
        out
    }

    /// The provider with this name.
    pub fn provider(&self, name: &str) -> Option<&ProviderConfig> {
        self.providers.iter().find(|p| p.name == name)
    }

    /// Puts `name` first in the cascade (what `kernos models use NAME` saves).
    pub fn prefer(&mut self, name: &str) -> Result<(), ConfigError> {
        if self.provider(name).is_none() {
            return Err(ConfigError::new(
                "llm.order",
                format!(
                    "no provider named {name:?}; configured: {}",
                    self.provider_names()
                ),
            ));
        }
        self.order = std::iter::once(name.to_owned())
            .chain(
                self.ordered()
                    .into_iter()
                    .map(|p| p.name.clone())
                    .filter(|n| n != name),
            )
            .collect();
        Ok(())
    }

    fn provider_names(&self) -> String {
        if self.providers.is_empty() {
            return "none".into();
        }
        self.providers
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Every configured model, for `kernos models` (lanes first, then the catch-all model).
    pub fn models(&self) -> Vec<ModelEntry> {
        let mut out = Vec::new();
        for (rank, p) in self.ordered().into_iter().enumerate() {
            let key_present = p
                .api_key_env
                .as_deref()
                .is_some_and(|k| std::env::var_os(k).is_some_and(|v| !v.is_empty()));
            let entry = |lane: Option<&String>, model: &String| ModelEntry {
                provider: p.name.clone(),
                kind: p.kind,
                lane: lane.cloned(),
                model: model.clone(),
                price: p.prices.get(model).copied(),
                endpoint: p.endpoint(),
                api_key_env: p.api_key_env.clone(),
                key_present,
                rank,
            };
            for (lane, model) in &p.lanes {
                out.push(entry(Some(lane), model));
            }
            if let Some(m) = &p.model {
                out.push(entry(None, m));
            }
        }
        out
    }

    /// Checks every setting; the error names the first bad field and says what is expected.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.default_lane.trim().is_empty() {
            return Err(ConfigError::new(
                "llm.default_lane",
                "must not be empty (e.g. \"fast\")",
            ));
        }
        let mut seen: Vec<String> = Vec::new();
        for (i, p) in self.providers.iter().enumerate() {
            let f = |k: &str| format!("llm.providers[{i}].{k}");
            if p.name.is_empty() {
                return Err(ConfigError::new(
                    f("name"),
                    "missing: every provider needs a name",
                ));
            }
            if !p
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
            {
                return Err(ConfigError::new(
                    f("name"),
                    format!(
                        "{:?} may use only a-z, 0-9, '-' and '_' (it names KERNOS_LLM_<NAME>_* variables)",
                        p.name
                    ),
                ));
            }
            let norm = env_name(&p.name);
            if let Some(other) = seen.iter().find(|s| env_name(s) == norm) {
                return Err(ConfigError::new(
                    f("name"),
                    format!(
                        "{:?} clashes with provider {other:?}: names must be unique",
                        p.name
                    ),
                ));
            }
            seen.push(p.name.clone());
            let url = p.effective_base_url();
            match reqwest::Url::parse(url) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
                Ok(_) => {
                    return Err(ConfigError::new(
                        f("base_url"),
                        format!("{url:?} must be an http:// or https:// URL with a host"),
                    ));
                }
                Err(e) => {
                    return Err(ConfigError::new(
                        f("base_url"),
                        format!("{url:?} is not a URL ({e}); e.g. \"http://127.0.0.1:8080/v1\""),
                    ));
                }
            }
            if let Some(k) = &p.api_key_env
                && (k.is_empty()
                    || k.as_bytes()[0].is_ascii_digit()
                    || !k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
            {
                return Err(ConfigError::new(
                    f("api_key_env"),
                    format!(
                        "{k:?} is not an environment variable name; give the variable's NAME \
                         (e.g. \"OPENAI_API_KEY\"), never the key itself"
                    ),
                ));
            }
            if p.lanes.is_empty() && p.model.is_none() {
                return Err(ConfigError::new(
                    f("lanes"),
                    "the provider has no model: set `model = \"…\"` or `lanes = { fast = \"…\" }`",
                ));
            }
            for (lane, m) in &p.lanes {
                if lane.trim().is_empty() || m.trim().is_empty() {
                    return Err(ConfigError::new(
                        f(&format!("lanes.{lane}")),
                        "lane names and models must not be empty",
                    ));
                }
            }
            if p.model.as_deref().is_some_and(|m| m.trim().is_empty()) {
                return Err(ConfigError::new(f("model"), "must not be empty"));
            }
            for (m, price) in &p.prices {
                for (k, v) in [
                    ("input_per_mtok", price.input_per_mtok),
                    ("output_per_mtok", price.output_per_mtok),
                ] {
                    if !v.is_finite() || v < 0.0 {
                        return Err(ConfigError::new(
                            f(&format!("prices.{m}.{k}")),
                            format!("{v} must be a price in US dollars ≥ 0"),
                        ));
                    }
                }
            }
            if p.timeout_ms == 0 || p.timeout_ms > LIMIT_TIMEOUT_MS {
                return Err(ConfigError::new(
                    f("timeout_ms"),
                    format!("{} must be between 1 and {LIMIT_TIMEOUT_MS}", p.timeout_ms),
                ));
            }
            if p.max_tokens == 0 {
                return Err(ConfigError::new(f("max_tokens"), "must be at least 1"));
            }
            if p.time_slice_tokens == Some(0) {
                return Err(ConfigError::new(
                    f("time_slice_tokens"),
                    "must be at least 1 (answer tokens before a streamed generation may be pre-empted)",
                ));
            }
            if p.time_slice_tokens.is_some() && p.kind == ProviderKind::Anthropic {
                return Err(ConfigError::new(
                    f("time_slice_tokens"),
                    "only for OpenAI-compatible servers that continue a trailing assistant message (llama-server)",
                ));
            }
            if p.slots == Some(0) {
                return Err(ConfigError::new(
                    f("slots"),
                    "must be at least 1 (the calls the server runs at once)",
                ));
            }
            for (k, v) in &p.headers {
                if reqwest::header::HeaderName::from_bytes(k.as_bytes()).is_err() {
                    return Err(ConfigError::new(
                        f(&format!("headers.{k}")),
                        "is not a valid HTTP header name",
                    ));
                }
                if reqwest::header::HeaderValue::from_str(v).is_err() {
                    return Err(ConfigError::new(
                        f(&format!("headers.{k}")),
                        "the value must be printable ASCII",
                    ));
                }
            }
        }
        for (i, n) in self.order.iter().enumerate() {
            if self.provider(n).is_none() {
                return Err(ConfigError::new(
                    format!("llm.order[{i}]"),
                    format!(
                        "no provider named {n:?}; configured: {}",
                        self.provider_names()
                    ),
                ));
            }
        }
        if !self.providers.is_empty()
            && !self
                .providers
                .iter()
                .any(|p| p.model_for(&self.default_lane).is_some())
        {
            return Err(ConfigError::new(
                "llm.default_lane",
                format!(
                    "no provider has a model for lane {:?}: add it to a provider's `lanes` or set its `model`",
                    self.default_lane
                ),
            ));
        }
        let r = &self.retry;
        if !(1..=10).contains(&r.max_attempts) {
            return Err(ConfigError::new(
                "llm.retry.max_attempts",
                format!("{} must be between 1 and 10", r.max_attempts),
            ));
        }
        if r.base_delay_ms > r.max_delay_ms {
            return Err(ConfigError::new(
                "llm.retry.base_delay_ms",
                format!(
                    "{} must not exceed max_delay_ms ({})",
                    r.base_delay_ms, r.max_delay_ms
                ),
            ));
        }
        if r.budget_ms == 0 || r.budget_ms > LIMIT_TIMEOUT_MS {
            return Err(ConfigError::new(
                "llm.retry.budget_ms",
                format!("{} must be between 1 and {LIMIT_TIMEOUT_MS}", r.budget_ms),
            ));
        }
        if self.breaker.failure_threshold == 0 {
            return Err(ConfigError::new(
                "llm.breaker.failure_threshold",
                "must be at least 1",
            ));
        }
        if self.breaker.cooldown_ms == 0 {
            return Err(ConfigError::new(
                "llm.breaker.cooldown_ms",
                "must be at least 1",
            ));
        }
        Ok(())
    }

    /// Applies `KERNOS_LLM_*` overrides, then validates. Returns the variables applied.
    ///
    /// - `KERNOS_LLM_DEFAULT_LANE`, `KERNOS_LLM_ORDER` (comma-separated names),
    ///   `KERNOS_LLM_RETRY_{MAX_ATTEMPTS,BASE_DELAY_MS,MAX_DELAY_MS,BUDGET_MS}`,
    ///   `KERNOS_LLM_BREAKER_{FAILURE_THRESHOLD,COOLDOWN_MS}`, `KERNOS_LLM_SCHED`;
    /// - per provider, `<NAME>` being its name upper-cased with `-` as `_`:
    ///   `KERNOS_LLM_<NAME>_{BASE_URL,KIND,MODEL,API_KEY_ENV,TIMEOUT_MS,STRUCTURED,MAX_TOKENS,SLOTS,SCHED,TIME_SLICE_TOKENS}`
    ///   and `KERNOS_LLM_<NAME>_LANE_<LANE>=model`. `BASE_URL`, `KIND` or `MODEL` for a name
    ///   not in the file adds that provider (so a config-less run can use a local server).
    ///
    /// Variables are applied in name order so the result does not depend on the environment's
    /// ordering. An unknown `KERNOS_LLM_*` variable is an error, not silently ignored.
    pub fn apply_env(
        &mut self,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Vec<String>, ConfigError> {
        let mut vars: Vec<(String, String)> = vars
            .into_iter()
            .filter(|(k, _)| k.starts_with("KERNOS_LLM_"))
            .collect();
        vars.sort();
        let mut applied = Vec::new();
        for (var, value) in vars {
            let rest = &var["KERNOS_LLM_".len()..];
            let num = |v: &str| -> Result<u64, ConfigError> {
                v.trim()
                    .parse::<u64>()
                    .map_err(|_| ConfigError::new(&var, format!("{v:?} is not a whole number")))
            };
            match rest {
                "DEFAULT_LANE" => self.default_lane = value.trim().to_owned(),
                "ORDER" => {
                    self.order = value
                        .split(',')
                        .map(|s| s.trim().to_owned())
                        .filter(|s| !s.is_empty())
                        .collect();
                }
                "RETRY_MAX_ATTEMPTS" => {
                    self.retry.max_attempts = u32::try_from(num(&value)?)
                        .map_err(|_| ConfigError::new(&var, "too large"))?;
                }
                "RETRY_BASE_DELAY_MS" => self.retry.base_delay_ms = num(&value)?,
                "RETRY_MAX_DELAY_MS" => self.retry.max_delay_ms = num(&value)?,
                "RETRY_BUDGET_MS" => self.retry.budget_ms = num(&value)?,
                "BREAKER_FAILURE_THRESHOLD" => {
                    self.breaker.failure_threshold = u32::try_from(num(&value)?)
                        .map_err(|_| ConfigError::new(&var, "too large"))?;
                }
                "BREAKER_COOLDOWN_MS" => self.breaker.cooldown_ms = num(&value)?,
                "SCHED" => {
                    self.sched = SchedPolicy::parse(value.trim()).ok_or_else(|| {
                        ConfigError::new(
                            &var,
                            format!("{value:?}: expected fair, fifo, round_robin or priority"),
                        )
                    })?;
                }
                _ => self.apply_provider_env(&var, rest, &value)?,
            }
            applied.push(var);
        }
        self.validate()?;
        Ok(applied)
    }

    fn apply_provider_env(
        &mut self,
        var: &str,
        rest: &str,
        value: &str,
    ) -> Result<(), ConfigError> {
        const KEYS: &[&str] = &[
            "BASE_URL",
            "KIND",
            "MODEL",
            "API_KEY_ENV",
            "TIMEOUT_MS",
            "STRUCTURED",
            "MAX_TOKENS",
            "SLOTS",
            "SCHED",
            "TIME_SLICE_TOKENS",
        ];
        let unknown = || {
            ConfigError::new(
                var,
                "unknown setting; expected KERNOS_LLM_<PROVIDER>_<BASE_URL|KIND|MODEL|API_KEY_ENV|\
                 TIMEOUT_MS|STRUCTURED|MAX_TOKENS|SLOTS|SCHED|TIME_SLICE_TOKENS|LANE_<LANE>>, KERNOS_LLM_DEFAULT_LANE, \
                 KERNOS_LLM_ORDER, KERNOS_LLM_SCHED, KERNOS_LLM_RETRY_* or KERNOS_LLM_BREAKER_*",
            )
        };
        // Split at the setting name: the provider part is everything before it. LANE_<X> is
        // matched first because a lane may itself be called e.g. "model".
        let (prov, key, lane) = if let Some(i) = rest.find("_LANE_") {
            (
                &rest[..i],
                "LANE",
                Some(rest[i + "_LANE_".len()..].to_ascii_lowercase()),
            )
        } else {
            let k = KEYS
                .iter()
                .find(|k| rest.len() > k.len() + 1 && rest.ends_with(&format!("_{k}")))
                .ok_or_else(unknown)?;
            (&rest[..rest.len() - k.len() - 1], *k, None)
        };
        if prov.is_empty() || lane.as_deref() == Some("") {
            return Err(unknown());
        }
        let idx = match self
            .providers
            .iter()
            .position(|p| env_name(&p.name) == prov)
        {
            Some(i) => i,
            None if matches!(key, "BASE_URL" | "KIND" | "MODEL") => {
                self.providers.push(ProviderConfig {
                    name: prov.to_ascii_lowercase(),
                    ..ProviderConfig::default()
                });
                self.providers.len() - 1
            }
            None => {
                return Err(ConfigError::new(
                    var,
                    format!(
                        "no provider named {:?}; configured: {} (set KERNOS_LLM_{prov}_BASE_URL to add one)",
                        prov.to_ascii_lowercase(),
                        self.provider_names()
                    ),
                ));
            }
        };
        let p = &mut self.providers[idx];
        let v = value.trim();
        let num = |v: &str| -> Result<u64, ConfigError> {
            v.parse::<u64>()
                .map_err(|_| ConfigError::new(var, format!("{v:?} is not a whole number")))
        };
        match key {
            "BASE_URL" => p.base_url = Some(v.to_owned()),
            "KIND" => {
                p.kind = match v {
                    "openai" => ProviderKind::OpenAi,
                    "anthropic" => ProviderKind::Anthropic,
                    _ => {
                        return Err(ConfigError::new(
                            var,
                            format!("{v:?}: expected \"openai\" or \"anthropic\""),
                        ));
                    }
                }
            }
            "MODEL" => p.model = Some(v.to_owned()),
            "API_KEY_ENV" => p.api_key_env = (!v.is_empty()).then(|| v.to_owned()),
            "TIMEOUT_MS" => p.timeout_ms = num(v)?,
            "MAX_TOKENS" => {
                p.max_tokens =
                    u32::try_from(num(v)?).map_err(|_| ConfigError::new(var, "too large"))?;
            }
            "SLOTS" => {
                p.slots =
                    Some(u32::try_from(num(v)?).map_err(|_| ConfigError::new(var, "too large"))?);
            }
            "SCHED" => {
                p.sched = Some(SchedPolicy::parse(v).ok_or_else(|| {
                    ConfigError::new(
                        var,
                        format!("{v:?}: expected fair, fifo, round_robin or priority"),
                    )
                })?);
            }
            "TIME_SLICE_TOKENS" => {
                p.time_slice_tokens =
                    Some(u32::try_from(num(v)?).map_err(|_| ConfigError::new(var, "too large"))?);
            }
            "STRUCTURED" => {
                p.structured = match v {
                    "auto" => StructuredMode::Auto,
                    "json_schema" => StructuredMode::JsonSchema,
                    "tools" => StructuredMode::Tools,
                    "text" => StructuredMode::Text,
                    _ => {
                        return Err(ConfigError::new(
                            var,
                            format!("{v:?}: expected auto, json_schema, tools or text"),
                        ));
                    }
                }
            }
            "LANE" => {
                if let Some(l) = lane {
                    p.lanes.insert(l, v.to_owned());
                }
            }
            _ => return Err(unknown()),
        }
        Ok(())
    }
}

/// A provider name as it appears in environment variables.
pub(crate) fn env_name(name: &str) -> String {
    name.to_ascii_uppercase().replace('-', "_")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two() -> LlmConfig {
        LlmConfig {
            providers: vec![
                ProviderConfig {
                    name: "local".into(),
                    base_url: Some("http://127.0.0.1:8080/v1".into()),
                    lanes: [("fast".to_owned(), "qwen".to_owned())].into(),
                    ..ProviderConfig::default()
                },
                ProviderConfig {
                    name: "claude".into(),
                    kind: ProviderKind::Anthropic,
                    api_key_env: Some("ANTHROPIC_API_KEY".into()),
                    model: Some("claude-haiku-4-5".into()),
                    ..ProviderConfig::default()
                },
            ],
            ..LlmConfig::default()
        }
    }

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn endpoints_follow_each_api_convention() {
        let mut p = ProviderConfig {
            base_url: Some("http://localhost:11434".into()),
            ..ProviderConfig::default()
        };
        assert_eq!(p.endpoint(), "http://localhost:11434/v1/chat/completions");
        p.base_url = Some("http://h:8080/v1/".into());
        assert_eq!(p.endpoint(), "http://h:8080/v1/chat/completions");
        p.base_url = Some("https://openrouter.ai/api/v1".into());
        assert_eq!(
            p.endpoint(),
            "https://openrouter.ai/api/v1/chat/completions"
        );
        p.kind = ProviderKind::Anthropic;
        p.base_url = None;
        assert_eq!(p.endpoint(), "https://api.anthropic.com/v1/messages");
        p.base_url = Some("https://proxy.example/v1".into());
        assert_eq!(p.endpoint(), "https://proxy.example/v1/messages");
    }

    #[test]
    fn validation_names_the_field() {
        two().validate().unwrap();
        type Change = Box<dyn Fn(&mut LlmConfig)>;
        let cases: Vec<(Change, &str)> = vec![
            (
                Box::new(|c| c.providers[1].name = "Claude".into()),
                "llm.providers[1].name",
            ),
            (
                Box::new(|c| c.providers[1].name = "local".into()),
                "llm.providers[1].name",
            ),
            (
                Box::new(|c| c.providers[0].base_url = Some("127.0.0.1:8080".into())),
                "llm.providers[0].base_url",
            ),
            (
                Box::new(|c| c.providers[1].api_key_env = Some("sk-abc123".into())),
                "llm.providers[1].api_key_env",
            ),
            (
                Box::new(|c| {
                    c.providers[0].prices.insert(
                        "qwen".into(),
                        Price {
                            input_per_mtok: -1.0,
                            output_per_mtok: 0.0,
                        },
                    );
                }),
                "llm.providers[0].prices.qwen.input_per_mtok",
            ),
            (
                Box::new(|c| c.providers[0].timeout_ms = 0),
                "llm.providers[0].timeout_ms",
            ),
            (
                Box::new(|c| {
                    c.providers[0]
                        .headers
                        .insert("bad header".into(), "x".into());
                }),
                "llm.providers[0].headers.bad header",
            ),
            (Box::new(|c| c.order = vec!["nope".into()]), "llm.order[0]"),
            (
                Box::new(|c| {
                    c.default_lane = "huge".into();
                    c.providers[1].model = None;
                    c.providers[1]
                        .lanes
                        .insert("fast".into(), "claude-haiku-4-5".into());
                }),
                "llm.default_lane",
            ),
            (
                Box::new(|c| c.retry.max_attempts = 0),
                "llm.retry.max_attempts",
            ),
            (
                Box::new(|c| c.retry.base_delay_ms = 10_000),
                "llm.retry.base_delay_ms",
            ),
            (
                Box::new(|c| c.breaker.failure_threshold = 0),
                "llm.breaker.failure_threshold",
            ),
            (
                Box::new(|c| {
                    c.providers[0].lanes.clear();
                }),
                "llm.providers[0].lanes",
            ),
        ];
        for (change, field) in cases {
            let mut c = two();
            change(&mut c);
            let e = c.validate().unwrap_err();
            assert_eq!(e.field, field, "{e}");
            assert!(!e.message.is_empty());
        }
    }

    #[test]
    fn default_lane_falls_back_to_model() {
        let mut c = two();
        c.default_lane = "strong".into();
        // "claude" has a catch-all model, so the lane is served.
        c.validate().unwrap();
        assert_eq!(c.providers[1].model_for("strong"), Some("claude-haiku-4-5"));
        assert_eq!(c.providers[0].model_for("strong"), None);
    }

    #[test]
    fn order_and_prefer() {
        let mut c = two();
        assert_eq!(names(&c), ["local", "claude"]);
        c.prefer("claude").unwrap();
        assert_eq!(names(&c), ["claude", "local"]);
        assert_eq!(c.prefer("x").unwrap_err().field, "llm.order");
    }

    fn names(c: &LlmConfig) -> Vec<&str> {
        c.ordered().iter().map(|p| p.name.as_str()).collect()
    }

    #[test]
    fn env_overrides_existing_and_new_providers() {
        let mut c = two();
        let applied = c
            .apply_env(env(&[
                ("KERNOS_LLM_LOCAL_BASE_URL", "http://127.0.0.1:9999/v1"),
                ("KERNOS_LLM_LOCAL_LANE_STRONG", "qwen-32b"),
                ("KERNOS_LLM_CLAUDE_STRUCTURED", "tools"),
                ("KERNOS_LLM_MY_BOX_BASE_URL", "http://10.0.0.2:11434"),
                ("KERNOS_LLM_MY_BOX_MODEL", "llama3.2"),
                ("KERNOS_LLM_ORDER", "my_box, claude"),
                ("KERNOS_LLM_RETRY_BUDGET_MS", "5000"),
                ("KERNOS_CLI_COLOR", "never"),
            ]))
            .unwrap();
        assert_eq!(applied.len(), 7);
        assert_eq!(
            c.providers[0].base_url.as_deref(),
            Some("http://127.0.0.1:9999/v1")
        );
        assert_eq!(c.providers[0].lanes["strong"], "qwen-32b");
        assert_eq!(c.providers[1].structured, StructuredMode::Tools);
        assert_eq!(c.providers[2].name, "my_box");
        assert_eq!(c.providers[2].model.as_deref(), Some("llama3.2"));
        assert_eq!(names(&c), ["my_box", "claude", "local"]);
        assert_eq!(c.retry.budget_ms, 5000);
    }

    #[test]
    fn env_errors_name_the_variable() {
        for (k, v, needle) in [
            ("KERNOS_LLM_LOCAL_TIMEOUT_MS", "soon", "not a whole number"),
            ("KERNOS_LLM_LOCAL_FLAVOUR", "x", "unknown setting"),
            (
                "KERNOS_LLM_GHOST_TIMEOUT_MS",
                "5",
                "no provider named \"ghost\"",
            ),
            ("KERNOS_LLM_CLAUDE_KIND", "gemini", "expected \"openai\""),
            ("KERNOS_LLM_CLAUDE_STRUCTURED", "grammar", "expected auto"),
            ("KERNOS_LLM_LOCAL_BASE_URL", "ftp://x", "http://"),
        ] {
            let mut c = two();
            let e = c.apply_env(env(&[(k, v)])).unwrap_err();
            assert!(
                (e.field == k || e.field.starts_with("llm.")) && e.to_string().contains(needle),
                "{k}: {e}"
            );
        }
    }

    #[test]
    fn models_lists_lanes_with_prices_in_cascade_order() {
        let mut c = two();
        c.providers[1].prices.insert(
            "claude-haiku-4-5".into(),
            Price {
                input_per_mtok: 1.0,
                output_per_mtok: 5.0,
            },
        );
        c.order = vec!["claude".into()];
        let m = c.models();
        assert_eq!(m.len(), 2);
        assert_eq!((m[0].provider.as_str(), m[0].rank), ("claude", 0));
        assert_eq!(m[0].lane, None);
        assert_eq!(m[0].price.map(|p| p.output_per_mtok), Some(5.0));
        assert_eq!(m[1].lane.as_deref(), Some("fast"));
        assert_eq!(m[1].endpoint, "http://127.0.0.1:8080/v1/chat/completions");
    }

    #[test]
    fn price_per_million() {
        let p = Price {
            input_per_mtok: 0.15,
            output_per_mtok: 0.60,
        };
        assert!((p.cost(1_000_000, 500_000) - 0.45).abs() < 1e-12);
    }
}
