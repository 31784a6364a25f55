//! The router: picks providers for a lane, walks the cascade with breakers, retries, timeouts
//! and a wall-time budget, adapts to what each server supports, and meters every try.

use std::borrow::Cow;
use std::fmt;
use std::sync::atomic::{AtomicU8, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;

use crate::breaker::{Breaker, BreakerState};
use crate::config::{LlmConfig, ProviderConfig, ProviderKind, StructuredMode};
use crate::error::{LlmError, ProviderFailure};
use crate::metrics::{Meter, ModelStats};
use crate::redact;
use crate::retry::{backoff, jitter_unit, parse_retry_after};
use crate::sched::{self, DEFAULT_CLIENT, Queue, SchedStats};
use crate::slice::Resumed;
use crate::types::{
    Attempt, ChatRequest, ChatResponse, Mechanism, Message, RouteOpts, StreamEvent, Usage,
};
use crate::wire::{
    self, Decoded, EncodeArgs, Quirks, ResolveError, SseParser, StreamDecoder, StreamFailure,
};

/// Largest response body read (a misbehaving server must not exhaust memory).
const MAX_BODY: usize = 16 << 20;
/// Longest a provider's `Retry-After` stops dispatch to it.
const MAX_PAUSE: Duration = Duration::from_secs(60);
/// Largest error body read.
const MAX_ERROR_BODY: usize = 64 << 10;

/// Where the API keys come from: a function from variable name to value.
type Secrets = dyn Fn(&str) -> Option<String> + Send + Sync;

/// Routes chat calls to the configured providers. Cheap to clone (shared state behind an
/// `Arc`); share one per process so breakers, learned server capabilities and metrics are
/// shared too. Its futures are `Send` and need a tokio runtime with the time and IO drivers.
#[derive(Clone)]
pub struct Router {
    inner: Arc<Inner>,
}

struct Inner {
    cfg: LlmConfig,
    http: reqwest::Client,
    /// Runtime state, index-aligned with `cfg.providers`.
    state: Vec<ProviderState>,
    secrets: Box<Secrets>,
    meter: Meter,
}

struct ProviderState {
    breaker: Mutex<Breaker>,
    /// For `structured = "auto"`: 0 json_schema, 1 tools, 2 text. Only ever increases.
    downgrade: AtomicU8,
    /// Learned [`Quirks`] as bits.
    quirks: AtomicU8,
    /// The server's context size in tokens, [`CTX_UNKNOWN`] until asked, [`CTX_NONE`] when it
    /// does not say (llama.cpp's `GET /props` reports it).
    n_ctx: AtomicU32,
    /// Slots and the fair queue in front of them: every try waits here.
    queue: Arc<Queue>,
}

const Q_MAX_COMPLETION: u8 = 1;
const Q_NO_TEMPERATURE: u8 = 2;
const Q_NO_STREAM_OPTIONS: u8 = 4;
const Q_STRICT_REQUIRED: u8 = 8;

/// `ProviderState::n_ctx` before the server was asked.
const CTX_UNKNOWN: u32 = 0;
/// `ProviderState::n_ctx` when the server does not say.
const CTX_NONE: u32 = u32::MAX;
/// Tokens kept free between the prompt estimate and the context size: the estimate is
/// rough and chat templates add their own tokens.
const CTX_MARGIN: u32 = 64;
/// Fewest answer tokens worth asking for; less room than this means the prompt is too long.
const MIN_ANSWER_TOKENS: u32 = 48;

impl fmt::Debug for Router {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Router")
            .field("config", &self.inner.cfg)
            .finish_non_exhaustive()
    }
}

/// A provider's live state, for `kernos models` and metrics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProviderHealth {
    /// Provider name.
    pub provider: String,
    /// Circuit state.
    pub breaker: BreakerState,
    /// Consecutive failed tries.
    pub consecutive_failures: u32,
    /// The structured-output mechanism a schema request would use now (after any downgrade).
    pub structured: Mechanism,
}

/// What `kernos models test NAME` shows: one tiny call.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProbeReport {
    /// Provider name.
    pub provider: String,
    /// Model asked for.
    pub model: String,
    /// Model the server says answered.
    pub model_echo: Option<String>,
    /// URL called.
    pub endpoint: String,
    /// Wall time of the call.
    pub latency_ms: u64,
    /// Tokens used.
    pub usage: Usage,
    /// Cost in US dollars.
    pub cost_usd: f64,
    /// The answer text (should be "ok").
    pub text: String,
    /// As the server said it.
    pub finish_reason: Option<String>,
}

/// Why one try did not produce an answer.
enum TryError {
    /// `structured = "auto"` and the server rejected this mechanism: use the next one.
    Downgrade(String),
    /// The server rejected a parameter that can be renamed or dropped (now remembered).
    Quirk(String),
    /// A real failure; the usage is what the try consumed (a bad answer still costs tokens).
    Fail(LlmError, Usage),
    /// A streamed generation was stopped at the end of its time slice because another
    /// client's call waits: `text` is what it said so far, `tokens` how many answer tokens
    /// (stream events) that took.
    Preempted {
        text: String,
        tokens: u32,
        first_token_ms: Option<u64>,
    },
}

/// Who a call is for and by when it must end.
struct Caller<'a> {
    client: &'a str,
    priority: u8,
    task: Option<u64>,
    deadline: Instant,
}

/// When a streamed try must stop at the end of its time slice: after `tokens` answer tokens,
/// if another client's call waits at `queue`.
struct Slice<'a> {
    tokens: u32,
    queue: &'a Queue,
    client: &'a str,
}

/// The limits of one try: its time, and its time slice when it may be pre-empted.
struct Bounds<'a> {
    limit: Duration,
    slice: Option<Slice<'a>>,
}

struct TryOk {
    text: String,
    json: Option<serde_json::Value>,
    usage: Usage,
    model_echo: Option<String>,
    finish_reason: Option<String>,
    first_token_ms: Option<u64>,
    mechanism_used: Mechanism,
}

/// What came back over HTTP, before interpretation.
enum Exchange {
    Status {
        status: u16,
        retry_after: Option<Duration>,
        body: Vec<u8>,
    },
    Connect(String),
    Truncated(String),
    Malformed(String),
    StreamServer {
        status: u16,
        message: String,
    },
    /// The stream was stopped on purpose at the end of a time slice.
    Preempted,
}

impl Router {
    /// A router reading API keys from the process environment. Validates the config.
    pub fn new(cfg: LlmConfig) -> Result<Router, LlmError> {
        Router::with_secrets(cfg, |name| std::env::var(name).ok())
    }

    /// A router reading API keys through `secrets` (variable name → value), e.g. from a
    /// daemon's secret store.
    pub fn with_secrets(
        cfg: LlmConfig,
        secrets: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
    ) -> Result<Router, LlmError> {
        cfg.validate()?;
        // reqwest is built without a default crypto provider (see the workspace Cargo.toml);
        // install ring once per process. Failing means one is already installed: fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .user_agent(concat!("kernos/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| LlmError::Setup(chain(&e)))?;
        let state = cfg
            .providers
            .iter()
            .map(|p| ProviderState {
                breaker: Mutex::new(Breaker::new(
                    cfg.breaker.failure_threshold,
                    Duration::from_millis(cfg.breaker.cooldown_ms),
                )),
                downgrade: AtomicU8::new(0),
                // OpenAI's own API is known to want strict schemas with every property
                // required; other servers teach it with a 400 if they want it too.
                quirks: AtomicU8::new(
                    if p.kind == ProviderKind::OpenAi
                        && p.endpoint().starts_with("https://api.openai.com/")
                    {
                        Q_STRICT_REQUIRED
                    } else {
                        0
                    },
                ),
                n_ctx: AtomicU32::new(CTX_UNKNOWN),
                queue: Queue::new(
                    &p.name,
                    p.default_slots() as usize,
                    p.sched_policy(cfg.sched),
                ),
            })
            .collect();
        Ok(Router {
            inner: Arc::new(Inner {
                cfg,
                http,
                state,
                secrets: Box::new(secrets),
                meter: Meter::default(),
            }),
        })
    }

    /// The config in force.
    pub fn config(&self) -> &LlmConfig {
        &self.inner.cfg
    }

    /// Whether any provider is configured (if not, every call fails with
    /// [`LlmError::NotConfigured`] and the planner should go straight to its offline path).
    pub fn is_configured(&self) -> bool {
        !self.inner.cfg.providers.is_empty()
    }

    /// Totals per provider/model since the router was built.
    pub fn metrics(&self) -> Vec<ModelStats> {
        self.inner.meter.snapshot()
    }

    /// Each provider's scheduler: slots, calls running and waiting, waits, and tokens served
    /// per client; in config order.
    pub fn scheduler(&self) -> Vec<SchedStats> {
        self.inner.state.iter().map(|s| s.queue.stats()).collect()
    }

    /// Breaker state and current structured mechanism of every provider, in cascade order.
    pub fn health(&self) -> Vec<ProviderHealth> {
        self.inner
            .cfg
            .ordered()
            .into_iter()
            .filter_map(|p| {
                let i = self.index(&p.name)?;
                let b = self.breaker(i);
                Some(ProviderHealth {
                    provider: p.name.clone(),
                    breaker: b.state(),
                    consecutive_failures: b.consecutive_failures(),
                    structured: self.mechanism(i, true),
                })
            })
            .collect()
    }

    /// Asks the model, walking the lane's cascade. See [`Router::complete_with`].
    pub async fn complete(
        &self,
        lane: &str,
        req: &ChatRequest,
        opts: &RouteOpts,
    ) -> Result<ChatResponse, LlmError> {
        self.complete_with(lane, req, opts, &mut |_| {}).await
    }

    /// Asks the model, walking the lane's cascade (empty `lane`: the default lane).
    ///
    /// For each provider in order: skipped while its breaker is open; otherwise up to
    /// `retry.max_attempts` tries, each limited by the provider's `timeout_ms` and what is left
    /// of `retry.budget_ms`, with jittered exponential back-off (or the server's `Retry-After`
    /// when it fits in the budget) between retryable failures (429, 5xx, timeouts, broken
    /// connections, cut-off streams). Non-retryable failures (other 4xx, bad answers, a
    /// missing key) move straight to the next provider; a refusal ends the cascade. When all
    /// fail, [`LlmError::AllFailed`] lists each provider's reason — the caller then uses its
    /// offline path.
    ///
    /// `sink` sees [`StreamEvent::Started`] before every try and, for streamed requests, the
    /// text as it arrives. A generation pre-empted at the end of its time slice (the provider's
    /// `time_slice_tokens`) goes on streaming when it resumes, with no new `Started`; if a try
    /// after such a resumption fails, the next one starts with `Started` and the answer so far
    /// as one delta.
    pub async fn complete_with(
        &self,
        lane: &str,
        req: &ChatRequest,
        opts: &RouteOpts,
        sink: &mut (dyn FnMut(StreamEvent<'_>) + Send),
    ) -> Result<ChatResponse, LlmError> {
        let lane = if lane.is_empty() {
            self.inner.cfg.default_lane.as_str()
        } else {
            lane
        };
        let candidates = self.candidates(lane, opts)?;
        let caller = Caller {
            client: opts.client.as_deref().unwrap_or(DEFAULT_CLIENT),
            priority: opts.priority,
            task: opts.task,
            deadline: Instant::now() + Duration::from_millis(self.inner.cfg.retry.budget_ms),
        };
        let mut attempts = Vec::new();
        let mut failures = Vec::new();
        for (i, model) in candidates {
            match self
                .run_provider(i, &model, req, &caller, &mut attempts, sink)
                .await
            {
                Ok(mut resp) => {
                    resp.attempts = attempts;
                    return Ok(resp);
                }
                Err(e) if e.stops_cascade() => return Err(e),
                Err(e) => failures.push(ProviderFailure {
                    provider: self.inner.cfg.providers[i].name.clone(),
                    model,
                    error: e,
                }),
            }
        }
        Err(LlmError::AllFailed {
            lane: lane.to_owned(),
            failures,
            attempts,
        })
    }

    /// One tiny call to one provider ("Reply with the single word ok"), no retries and no
    /// breaker, for `kernos models test NAME`. `model`: default the provider's model for the
    /// default lane, else its first lane.
    pub async fn probe(
        &self,
        provider: &str,
        model: Option<&str>,
    ) -> Result<ProbeReport, LlmError> {
        let cfg = &self.inner.cfg;
        let i = self.index(provider).ok_or_else(|| self.unknown(provider))?;
        let p = &cfg.providers[i];
        let model = model
            .map(str::to_owned)
            .or_else(|| p.model_for(&cfg.default_lane).map(str::to_owned))
            .or_else(|| p.lanes.values().next().cloned())
            .ok_or_else(|| LlmError::NoModelForLane {
                lane: cfg.default_lane.clone(),
            })?;
        let req = ChatRequest {
            system: "This is a connectivity check.".into(),
            messages: vec![Message::user("Reply with the single word: ok")],
            max_tokens: Some(16),
            temperature: Some(0.0),
            ..ChatRequest::default()
        };
        // A quirk (e.g. max_completion_tokens) is learned and retried at once; bounded by the
        // number of quirk bits.
        for _ in 0..4 {
            let start = Instant::now();
            let limit = Duration::from_millis(p.timeout_ms);
            let r = self
                .try_once(
                    i,
                    &model,
                    &req,
                    Mechanism::None,
                    Bounds { limit, slice: None },
                    &mut |_| {},
                )
                .await;
            let latency_ms = ms(start.elapsed());
            match r {
                Ok(ok) => {
                    let cost = self.cost(i, &model, ok.usage);
                    self.inner.meter.record(&Attempt {
                        provider: p.name.clone(),
                        model: model.clone(),
                        mechanism: Mechanism::None,
                        latency_ms,
                        usage: ok.usage,
                        cost_usd: cost,
                        error: None,
                        redactions: 0,
                    });
                    return Ok(ProbeReport {
                        provider: p.name.clone(),
                        model,
                        model_echo: ok.model_echo,
                        endpoint: p.endpoint(),
                        latency_ms,
                        usage: ok.usage,
                        cost_usd: cost,
                        text: ok.text,
                        finish_reason: ok.finish_reason,
                    });
                }
                Err(TryError::Quirk(_)) => continue,
                Err(TryError::Preempted { .. }) => {
                    // Unreachable: a probe has no time slice.
                    return Err(LlmError::Setup("the probe was pre-empted".into()));
                }
                Err(TryError::Downgrade(m)) => {
                    // Unreachable without a schema; report it rather than loop.
                    return Err(LlmError::Rejected {
                        provider: p.name.clone(),
                        status: 400,
                        message: m,
                    });
                }
                Err(TryError::Fail(e, usage)) => {
                    self.inner.meter.record(&Attempt {
                        provider: p.name.clone(),
                        model: model.clone(),
                        mechanism: Mechanism::None,
                        latency_ms,
                        usage,
                        cost_usd: self.cost(i, &model, usage),
                        error: Some(e.to_string()),
                        redactions: 0,
                    });
                    return Err(e);
                }
            }
        }
        Err(LlmError::Rejected {
            provider: p.name.clone(),
            status: 400,
            message: "the server kept rejecting request parameters".into(),
        })
    }

    /// The context size provider `i` reported, if it was asked and said.
    fn known_context(&self, i: usize) -> Option<u32> {
        match self.inner.state[i].n_ctx.load(Ordering::Relaxed) {
            CTX_UNKNOWN | CTX_NONE => None,
            n => Some(n),
        }
    }

    /// The server's context size in tokens, asked once per provider: llama.cpp's
    /// `GET /props` reports `n_ctx` (under `default_generation_settings` in current versions).
    /// Only OpenAI-compatible servers that are not OpenAI's own are asked; any failure means
    /// "unknown" and the answer is then limited by `max_tokens` alone.
    async fn context_size(&self, i: usize, deadline: Instant) -> Option<u32> {
        let st = &self.inner.state[i];
        match st.n_ctx.load(Ordering::Relaxed) {
            CTX_UNKNOWN => {}
            CTX_NONE => return None,
            n => return Some(n),
        }
        let p = &self.inner.cfg.providers[i];
        let base = p.effective_base_url().trim_end_matches('/');
        if p.kind != ProviderKind::OpenAi || base.starts_with("https://api.openai.com") {
            st.n_ctx.store(CTX_NONE, Ordering::Relaxed);
            return None;
        }
        let root = base.strip_suffix("/v1").unwrap_or(base);
        let limit = Duration::from_secs(3).min(deadline.saturating_duration_since(Instant::now()));
        let mut rb = self.inner.http.get(format!("{root}/props"));
        for (k, v) in &p.headers {
            rb = rb.header(k.as_str(), v.as_str());
        }
        let got = tokio::time::timeout(limit, async {
            let resp = rb.send().await.ok()?;
            if !resp.status().is_success() {
                return None;
            }
            let body = resp.bytes().await.ok()?;
            let v: serde_json::Value = serde_json::from_slice(&body).ok()?;
            if p.slots.is_none()
                && let Some(n) = v
                    .get("total_slots")
                    .and_then(serde_json::Value::as_u64)
                    .filter(|n| (1..=4096).contains(n))
            {
                st.queue.set_slots(usize::try_from(n).unwrap_or(1));
            }
            v.pointer("/default_generation_settings/n_ctx")
                .or_else(|| v.get("n_ctx"))
                .and_then(serde_json::Value::as_u64)
                .and_then(|n| u32::try_from(n).ok())
                .filter(|n| *n > 0 && *n != CTX_NONE)
        })
        .await
        .ok()
        .flatten();
        st.n_ctx.store(got.unwrap_or(CTX_NONE), Ordering::Relaxed);
        got
    }

    fn index(&self, name: &str) -> Option<usize> {
        self.inner.cfg.providers.iter().position(|p| p.name == name)
    }

    fn unknown(&self, name: &str) -> LlmError {
        LlmError::UnknownProvider {
            name: name.to_owned(),
            known: self
                .inner
                .cfg
                .providers
                .iter()
                .map(|p| p.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        }
    }

    fn breaker(&self, i: usize) -> std::sync::MutexGuard<'_, Breaker> {
        // The breaker holds plain counters; a panic elsewhere cannot leave it inconsistent.
        self.inner.state[i]
            .breaker
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// (provider index, model) in the order to try.
    fn candidates(&self, lane: &str, opts: &RouteOpts) -> Result<Vec<(usize, String)>, LlmError> {
        let cfg = &self.inner.cfg;
        if cfg.providers.is_empty() {
            return Err(LlmError::NotConfigured);
        }
        let no_model = || LlmError::NoModelForLane {
            lane: lane.to_owned(),
        };
        if let Some(name) = &opts.provider {
            let i = self.index(name).ok_or_else(|| self.unknown(name))?;
            let model = opts
                .model
                .clone()
                .or_else(|| cfg.providers[i].model_for(lane).map(str::to_owned))
                .ok_or_else(no_model)?;
            return Ok(vec![(i, model)]);
        }
        let ordered: Vec<usize> = cfg
            .ordered()
            .into_iter()
            .filter_map(|p| self.index(&p.name))
            .collect();
        let mut out = Vec::new();
        let mut pinned = None;
        if let Some(m) = &opts.model {
            let target = ordered
                .iter()
                .copied()
                .find(|&i| cfg.providers[i].lists_model(m))
                .or_else(|| ordered.first().copied());
            if let Some(t) = target {
                out.push((t, m.clone()));
                pinned = Some(t);
            }
        }
        for i in ordered {
            if Some(i) == pinned {
                continue;
            }
            if let Some(m) = cfg.providers[i].model_for(lane) {
                out.push((i, m.to_owned()));
            }
        }
        if out.is_empty() {
            return Err(no_model());
        }
        Ok(out)
    }

    /// The mechanism a request (with a schema, if `has_schema`) would use at provider `i`.
    fn mechanism(&self, i: usize, has_schema: bool) -> Mechanism {
        if !has_schema {
            return Mechanism::None;
        }
        match self.inner.cfg.providers[i].structured {
            StructuredMode::JsonSchema => Mechanism::JsonSchema,
            StructuredMode::Tools => Mechanism::Tools,
            StructuredMode::Text => Mechanism::Text,
            StructuredMode::Auto => match self.inner.state[i].downgrade.load(Ordering::Relaxed) {
                0 => Mechanism::JsonSchema,
                1 => Mechanism::Tools,
                _ => Mechanism::Text,
            },
        }
    }

    fn quirks(&self, i: usize) -> Quirks {
        let q = self.inner.state[i].quirks.load(Ordering::Relaxed);
        Quirks {
            max_completion_tokens: q & Q_MAX_COMPLETION != 0,
            no_temperature: q & Q_NO_TEMPERATURE != 0,
            no_stream_options: q & Q_NO_STREAM_OPTIONS != 0,
            strict_all_required: q & Q_STRICT_REQUIRED != 0,
        }
    }

    fn cost(&self, i: usize, model: &str, usage: Usage) -> f64 {
        self.inner.cfg.providers[i]
            .prices
            .get(model)
            .map_or(0.0, |p| p.cost(usage.input_tokens, usage.output_tokens))
    }

    /// The request as provider `i` may see it: with its secrets redacted unless the provider
    /// is on this machine and configured to see raw text, and how many were redacted.
    fn outbound<'r>(&self, i: usize, req: &'r ChatRequest) -> (Cow<'r, ChatRequest>, u32) {
        let p = &self.inner.cfg.providers[i];
        if self.inner.cfg.raw_for_loopback && redact::is_loopback(p.effective_base_url()) {
            return (Cow::Borrowed(req), 0);
        }
        redact::redact_request(req)
    }

    /// All tries at one provider for one call on behalf of `caller`, ending by its deadline;
    /// each try first waits for a slot of the provider. A streamed plain-text generation
    /// longer than the provider's `time_slice_tokens` gives its slot up when another client
    /// waits and is resumed (see [`Resumed`]); its slices count as tries without error.
    async fn run_provider(
        &self,
        i: usize,
        model: &str,
        req: &ChatRequest,
        caller: &Caller<'_>,
        attempts: &mut Vec<Attempt>,
        sink: &mut (dyn FnMut(StreamEvent<'_>) + Send),
    ) -> Result<ChatResponse, LlmError> {
        let p = &self.inner.cfg.providers[i];
        let queue = &self.inner.state[i].queue;
        let retry = &self.inner.cfg.retry;
        let deadline = caller.deadline;
        let mut tries: u32 = 0;
        // Downgrades and quirks re-send at once without counting as a try; each can happen only
        // a bounded number of times (the mode only moves forward, each quirk bit is set once),
        // so this bound is never the one that stops us.
        let mut adaptations = 0;
        // Asked once per provider; `try_once` reads what it said.
        self.context_size(i, deadline).await;
        // Decided here, per provider, since only the provider says where the text goes.
        let (req, redactions) = self.outbound(i, req);
        let mut resumed = Resumed::new(
            req.as_ref(),
            req.max_tokens.unwrap_or(p.max_tokens),
            p.time_slice_tokens
                .filter(|_| req.stream && req.schema.is_none() && p.kind == ProviderKind::OpenAi),
        );
        // Whether the caller's text so far is exactly `resumed.text` (true after a slice ended
        // on purpose): then the next try continues it without a `Started` event.
        let mut in_step = false;
        loop {
            let now = Instant::now();
            let allowed = self.breaker(i).allow(now);
            if let Err(retry_in) = allowed {
                let failures = self.breaker(i).consecutive_failures();
                return Err(LlmError::CircuitOpen {
                    provider: p.name.clone(),
                    failures,
                    retry_in,
                });
            }
            let left = deadline.saturating_duration_since(now);
            if left.is_zero() {
                return Err(LlmError::BudgetExhausted {
                    attempts: tries,
                    last: Box::new(LlmError::Timeout {
                        provider: p.name.clone(),
                        after: Duration::from_millis(retry.budget_ms),
                    }),
                });
            }
            let req = resumed.request();
            let req = req.as_ref();
            let cost = sched::weigh(
                prompt_estimate(req),
                u64::from(req.max_tokens.unwrap_or(p.max_tokens)),
            );
            let acquired = queue.acquire(caller.client, cost, caller.priority, caller.task);
            let permit = match tokio::time::timeout(left, acquired).await {
                Ok(Some(permit)) => permit,
                Ok(None) => return Err(LlmError::Setup("the model scheduler stopped".into())),
                Err(_elapsed) => {
                    return Err(LlmError::BudgetExhausted {
                        attempts: tries,
                        last: Box::new(LlmError::Timeout {
                            provider: p.name.clone(),
                            after: left,
                        }),
                    });
                }
            };
            // The wait for a slot is not the server's time: the try's own limit starts now.
            let left = deadline.saturating_duration_since(Instant::now());
            let bounds = Bounds {
                limit: Duration::from_millis(p.timeout_ms).min(left),
                slice: resumed.slice.map(|tokens| Slice {
                    tokens,
                    queue,
                    client: caller.client,
                }),
            };
            let mechanism = self.mechanism(i, req.schema.is_some());
            if !in_step {
                sink(StreamEvent::Started {
                    provider: &p.name,
                    model,
                });
                if !resumed.text.is_empty() {
                    sink(StreamEvent::Delta(&resumed.text));
                }
            }
            in_step = false;
            let start = Instant::now();
            let r = self.try_once(i, model, req, mechanism, bounds, sink).await;
            let latency_ms = ms(start.elapsed());
            match &r {
                Ok(ok) => permit.finish(ok.usage),
                Err(TryError::Fail(e, usage)) => {
                    if let Some(ra) = e.retry_after() {
                        // The server is full or rate-limited: no try of anyone's starts
                        // before it said to come back; the waiting calls stay queued.
                        // Capped: a bogus header must not stall every caller for hours.
                        queue.pause(ra.min(MAX_PAUSE));
                    }
                    permit.finish(*usage);
                }
                Err(TryError::Preempted { tokens, .. }) => {
                    queue.note_preempted();
                    permit.finish(Usage {
                        input_tokens: prompt_estimate(req),
                        output_tokens: u64::from(*tokens),
                        estimated: true,
                    });
                }
                Err(_) => permit.finish(Usage::default()),
            }
            let mut record = |usage: Usage, error: Option<String>| {
                let a = Attempt {
                    provider: p.name.clone(),
                    model: model.to_owned(),
                    mechanism,
                    latency_ms,
                    usage,
                    cost_usd: self.cost(i, model, usage),
                    error,
                    redactions,
                };
                self.inner.meter.record(&a);
                attempts.push(a);
            };
            match r {
                Ok(ok) => {
                    self.breaker(i).on_success();
                    record(ok.usage, None);
                    let usage = resumed.total(ok.usage);
                    return Ok(ChatResponse {
                        text: resumed.text + &ok.text,
                        json: ok.json,
                        usage,
                        cost_usd: self.cost(i, model, usage),
                        model: ok.model_echo.unwrap_or_else(|| model.to_owned()),
                        provider: p.name.clone(),
                        latency_ms,
                        first_token_ms: resumed.first_token_ms.or(ok.first_token_ms),
                        finish_reason: ok.finish_reason,
                        mechanism_used: ok.mechanism_used,
                        attempts: Vec::new(),
                        redactions,
                    });
                }
                Err(TryError::Preempted {
                    text,
                    tokens,
                    first_token_ms,
                }) => {
                    self.breaker(i).on_success();
                    let usage = Usage {
                        input_tokens: prompt_estimate(req),
                        output_tokens: u64::from(tokens),
                        estimated: true,
                    };
                    record(usage, None);
                    resumed.step(&text, tokens, usage, first_token_ms);
                    in_step = true;
                }
                Err(TryError::Downgrade(msg)) | Err(TryError::Quirk(msg)) if adaptations < 8 => {
                    self.breaker(i).on_success();
                    adaptations += 1;
                    record(Usage::default(), Some(msg));
                }
                Err(TryError::Downgrade(msg)) | Err(TryError::Quirk(msg)) => {
                    return Err(LlmError::Rejected {
                        provider: p.name.clone(),
                        status: 400,
                        message: msg,
                    });
                }
                Err(TryError::Fail(e, usage)) => {
                    tries += 1;
                    if e.is_provider_fault() {
                        self.breaker(i).on_failure(Instant::now());
                    } else if !matches!(e, LlmError::MissingApiKey { .. }) {
                        // The server answered, so it is up. (A missing key never reached it and
                        // says nothing about its health.)
                        self.breaker(i).on_success();
                    }
                    record(usage, Some(e.to_string()));
                    if !e.is_retryable() || tries >= retry.max_attempts {
                        return Err(e);
                    }
                    let delay = e.retry_after().unwrap_or_else(|| {
                        backoff(
                            Duration::from_millis(retry.base_delay_ms),
                            Duration::from_millis(retry.max_delay_ms),
                            tries,
                            jitter_unit(),
                        )
                    });
                    // Waiting past the deadline would only end in a timeout: move on now.
                    if Instant::now() + delay >= deadline {
                        return Err(LlmError::BudgetExhausted {
                            attempts: tries,
                            last: Box::new(e),
                        });
                    }
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }

    /// One HTTP exchange and its interpretation.
    async fn try_once(
        &self,
        i: usize,
        model: &str,
        req: &ChatRequest,
        mechanism: Mechanism,
        Bounds { limit, slice }: Bounds<'_>,
        sink: &mut (dyn FnMut(StreamEvent<'_>) + Send),
    ) -> Result<TryOk, TryError> {
        let n_ctx = self.known_context(i);
        let p = &self.inner.cfg.providers[i];
        let fail = |e: LlmError| TryError::Fail(e, Usage::default());
        let key = match &p.api_key_env {
            Some(env) => match (self.inner.secrets)(env).filter(|k| !k.is_empty()) {
                Some(k) => Some(k),
                None => {
                    return Err(fail(LlmError::MissingApiKey {
                        provider: p.name.clone(),
                        env: env.clone(),
                    }));
                }
            },
            None => None,
        };
        let max_tokens = match answer_room(
            req,
            mechanism,
            req.max_tokens.unwrap_or(p.max_tokens),
            n_ctx,
        ) {
            Ok(n) => n,
            Err(message) => {
                return Err(fail(LlmError::ContextExceeded {
                    provider: p.name.clone(),
                    context: n_ctx,
                    message,
                }));
            }
        };
        let body = wire::encode(
            p.kind,
            &EncodeArgs {
                model,
                req,
                mechanism,
                max_tokens,
                quirks: self.quirks(i),
            },
        );
        let start = Instant::now();
        let mut first_token_ms = None;
        // Stream events seen (one token each from llama.cpp and vLLM) and their text, kept
        // only when the try may be pre-empted.
        let tokens = AtomicU32::new(0);
        let mut said = String::new();
        let mut on_text = |s: &str| {
            if first_token_ms.is_none() {
                first_token_ms = Some(ms(start.elapsed()));
            }
            if slice.is_some() {
                tokens.fetch_add(1, Ordering::Relaxed);
                said.push_str(s);
            }
            sink(StreamEvent::Delta(s));
        };
        let stop = || {
            slice.as_ref().is_some_and(|sl| {
                tokens.load(Ordering::Relaxed) >= sl.tokens && sl.queue.others_wait(sl.client)
            })
        };
        let exchanged = tokio::time::timeout(
            limit,
            self.exchange(p, key.as_deref(), body, req.stream, &mut on_text, &stop),
        )
        .await;
        let decoded = match exchanged {
            Err(_elapsed) => {
                return Err(fail(LlmError::Timeout {
                    provider: p.name.clone(),
                    after: limit,
                }));
            }
            Ok(Ok(d)) => d,
            Ok(Err(Exchange::Preempted)) => {
                return Err(TryError::Preempted {
                    text: said,
                    tokens: tokens.into_inner(),
                    first_token_ms,
                });
            }
            Ok(Err(x)) => return Err(self.classify(i, x, mechanism, req.schema.is_some())),
        };
        let usage = match decoded.usage {
            Some((input_tokens, output_tokens)) => Usage {
                input_tokens,
                output_tokens,
                estimated: false,
            },
            None => estimate_usage(req, &decoded),
        };
        match wire::resolve(&decoded, req.schema.as_ref(), mechanism) {
            Ok((json, used)) => Ok(TryOk {
                text: decoded.tool_args.clone().unwrap_or(decoded.text),
                json,
                usage,
                model_echo: decoded.model,
                finish_reason: decoded.finish_reason,
                first_token_ms: if req.stream { first_token_ms } else { None },
                mechanism_used: used,
            }),
            Err(ResolveError::Refused(message)) => Err(TryError::Fail(
                LlmError::Refused {
                    provider: p.name.clone(),
                    model: model.to_owned(),
                    message,
                },
                usage,
            )),
            Err(ResolveError::OutputTruncated) => Err(TryError::Fail(
                LlmError::OutputTruncated {
                    provider: p.name.clone(),
                    max_tokens,
                },
                usage,
            )),
            Err(ResolveError::Invalid(detail)) => Err(TryError::Fail(
                LlmError::InvalidJson {
                    provider: p.name.clone(),
                    model: model.to_owned(),
                    schema: req
                        .schema
                        .as_ref()
                        .map(|s| s.name.clone())
                        .unwrap_or_default(),
                    detail,
                    text: decoded.tool_args.unwrap_or(decoded.text),
                },
                usage,
            )),
        }
    }

    /// Sends the request and reads the answer (whole or streamed).
    async fn exchange(
        &self,
        p: &ProviderConfig,
        key: Option<&str>,
        body: Vec<u8>,
        stream: bool,
        on_text: &mut (dyn FnMut(&str) + Send),
        stop: &(dyn Fn() -> bool + Sync),
    ) -> Result<Decoded, Exchange> {
        let mut rb = self
            .inner
            .http
            .post(p.endpoint())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        match p.kind {
            ProviderKind::OpenAi => {
                if let Some(k) = key {
                    rb = rb.bearer_auth(k);
                }
            }
            ProviderKind::Anthropic => {
                rb = rb.header("anthropic-version", wire::anthropic::API_VERSION);
                if let Some(k) = key {
                    rb = rb.header("x-api-key", k);
                }
            }
        }
        if stream {
            rb = rb.header(reqwest::header::ACCEPT, "text/event-stream");
        }
        for (k, v) in &p.headers {
            rb = rb.header(k.as_str(), v.as_str());
        }
        let mut resp = rb.send().await.map_err(|e| Exchange::Connect(chain(&e)))?;
        let status = resp.status().as_u16();
        if !resp.status().is_success() {
            let retry_after = retry_after(resp.headers());
            let mut body = Vec::new();
            // An error body that breaks off still has its status; keep what arrived.
            while let Ok(Some(c)) = resp.chunk().await {
                body.extend_from_slice(&c);
                if body.len() >= MAX_ERROR_BODY {
                    break;
                }
            }
            return Err(Exchange::Status {
                status,
                retry_after,
                body,
            });
        }
        let is_sse = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        if !(stream && is_sse) {
            // Also the path for servers that answer a streaming request with one JSON body.
            let mut body = Vec::new();
            loop {
                match resp.chunk().await {
                    Ok(Some(c)) => {
                        body.extend_from_slice(&c);
                        if body.len() > MAX_BODY {
                            return Err(Exchange::Malformed(format!(
                                "the response body exceeds {MAX_BODY} bytes"
                            )));
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        return Err(Exchange::Truncated(format!(
                            "the response body broke off after {} bytes: {}",
                            body.len(),
                            chain(&e)
                        )));
                    }
                }
            }
            return wire::decode(p.kind, &body).map_err(Exchange::Malformed);
        }
        let mut parser = SseParser::new();
        let mut dec = StreamDecoder::new(p.kind);
        let mut events = Vec::new();
        let mut received = 0usize;
        loop {
            match resp.chunk().await {
                Ok(Some(c)) => {
                    received += c.len();
                    if received > MAX_BODY {
                        return Err(Exchange::Malformed(format!(
                            "the stream exceeds {MAX_BODY} bytes"
                        )));
                    }
                    parser.push(&c, &mut events);
                    for ev in events.drain(..) {
                        dec.on_event(&ev, on_text).map_err(stream_failure)?;
                    }
                    if dec.is_done() {
                        break;
                    }
                    if stop() {
                        // Dropping the response closes the connection, and llama-server
                        // stops a generation whose client went away, freeing its slot.
                        return Err(Exchange::Preempted);
                    }
                }
                Ok(None) => {
                    if let Some(ev) = parser.finish() {
                        dec.on_event(&ev, on_text).map_err(stream_failure)?;
                    }
                    break;
                }
                Err(e) => {
                    return Err(Exchange::Truncated(format!(
                        "the connection broke after {received} bytes: {}",
                        chain(&e)
                    )));
                }
            }
        }
        dec.finish().map_err(stream_failure)
    }

    /// Turns an HTTP-level failure into a try error, spotting the 400s that mean "this server
    /// does not support that parameter" so the request can be adapted instead of failed.
    fn classify(&self, i: usize, x: Exchange, mechanism: Mechanism, has_schema: bool) -> TryError {
        let p = &self.inner.cfg.providers[i];
        let provider = p.name.clone();
        let e = match x {
            Exchange::Connect(detail) => LlmError::Connect {
                provider,
                url: p.endpoint(),
                detail,
            },
            Exchange::Truncated(detail) => LlmError::TruncatedStream { provider, detail },
            Exchange::Malformed(detail) => LlmError::MalformedResponse { provider, detail },
            Exchange::StreamServer { message, .. } if context_exceeded(&message) => {
                LlmError::ContextExceeded {
                    provider,
                    context: self.known_context(i),
                    message,
                }
            }
            Exchange::StreamServer {
                status: 429,
                message,
            } => LlmError::RateLimited {
                provider,
                retry_after: None,
                message,
            },
            Exchange::StreamServer { status, message } if status == 0 || status >= 500 => {
                LlmError::Server {
                    provider,
                    status,
                    retry_after: None,
                    message,
                }
            }
            Exchange::StreamServer { status, message } => LlmError::Rejected {
                provider,
                status,
                message,
            },
            // `try_once` turns a pre-emption into a slice before it gets here.
            Exchange::Preempted => LlmError::TruncatedStream {
                provider,
                detail: "stopped at the end of its time slice".into(),
            },
            Exchange::Status {
                status,
                retry_after,
                body,
            } => {
                let (message, param) = wire::error_message(&body);
                if status >= 400 && context_exceeded(&message) {
                    return TryError::Fail(
                        LlmError::ContextExceeded {
                            provider,
                            context: self.known_context(i),
                            message,
                        },
                        Usage::default(),
                    );
                }
                if status >= 500 && bad_schema(&message) {
                    // The server cannot use the schema: the same request fails the same way.
                    return TryError::Fail(
                        LlmError::Rejected {
                            provider,
                            status,
                            message,
                        },
                        Usage::default(),
                    );
                }
                match status {
                    429 => LlmError::RateLimited {
                        provider,
                        retry_after,
                        message,
                    },
                    // 529: Anthropic "overloaded"; 408: the server's own request timeout.
                    408 | 500..=599 => LlmError::Server {
                        provider,
                        status,
                        retry_after,
                        message,
                    },
                    _ => {
                        if (400..500).contains(&status) {
                            if let Some(t) =
                                self.adapt(i, &message, param.as_deref(), mechanism, has_schema)
                            {
                                return t;
                            }
                        }
                        LlmError::Rejected {
                            provider,
                            status,
                            message,
                        }
                    }
                }
            }
        };
        TryError::Fail(e, Usage::default())
    }

    /// Learns from a 4xx that names a parameter we can do without.
    fn adapt(
        &self,
        i: usize,
        message: &str,
        param: Option<&str>,
        mechanism: Mechanism,
        has_schema: bool,
    ) -> Option<TryError> {
        let p = &self.inner.cfg.providers[i];
        let st = &self.inner.state[i];
        let m = message.to_ascii_lowercase();
        let param = param.unwrap_or("").to_ascii_lowercase();
        let mentions = |words: &[&str]| words.iter().any(|w| m.contains(w) || param.contains(w));
        let q = st.quirks.load(Ordering::Relaxed);
        if has_schema
            && p.kind == ProviderKind::OpenAi
            && q & Q_STRICT_REQUIRED == 0
            && m.contains("required")
            && mentions(&["schema", "response_format", "strict"])
        {
            st.quirks.fetch_or(Q_STRICT_REQUIRED, Ordering::Relaxed);
            return Some(TryError::Quirk(format!(
                "{}: the server wants every schema property required ({message}); re-sending the strict form",
                p.name
            )));
        }
        if has_schema && p.structured == StructuredMode::Auto {
            let next = match mechanism {
                Mechanism::JsonSchema
                    if mentions(&[
                        "response_format",
                        "json_schema",
                        "output_config",
                        "output_format",
                        "output format",
                        "structured output",
                    ]) =>
                {
                    Some((1, "tools"))
                }
                Mechanism::Tools if mentions(&["tool", "function"]) => Some((2, "text")),
                _ => None,
            };
            if let Some((level, name)) = next {
                st.downgrade.fetch_max(level, Ordering::Relaxed);
                return Some(TryError::Downgrade(format!(
                    "{}: the server rejected {} output ({message}); switching to {name} for this provider",
                    p.name,
                    match mechanism {
                        Mechanism::JsonSchema => "json_schema",
                        _ => "tool-call",
                    }
                )));
            }
        }
        let bit = if p.kind == ProviderKind::OpenAi
            && mentions(&["max_completion_tokens"])
            && q & Q_MAX_COMPLETION == 0
        {
            Q_MAX_COMPLETION
        } else if mentions(&["temperature"])
            && (m.contains("support") || m.contains("unsupported"))
            && q & Q_NO_TEMPERATURE == 0
        {
            Q_NO_TEMPERATURE
        } else if p.kind == ProviderKind::OpenAi
            && mentions(&["stream_options"])
            && q & Q_NO_STREAM_OPTIONS == 0
        {
            Q_NO_STREAM_OPTIONS
        } else {
            return None;
        };
        st.quirks.fetch_or(bit, Ordering::Relaxed);
        Some(TryError::Quirk(format!(
            "{}: the server rejected a parameter ({message}); adjusting and re-sending",
            p.name
        )))
    }
}

/// An error message saying the prompt and answer do not fit the context window: llama.cpp
/// ("Context size has been exceeded", "the request exceeds the available context size"),
/// OpenAI and vLLM ("maximum context length is … tokens"), Ollama, Anthropic ("prompt is too
/// long").
fn context_exceeded(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("context size")
        || m.contains("context length")
        || m.contains("context window")
        || (m.contains("exceed") && m.contains("context"))
        || m.contains("prompt is too long")
        || m.contains("too many tokens")
}

/// A server error caused by the schema itself (llama.cpp turning it into a grammar).
fn bad_schema(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    (m.contains("grammar") || m.contains("schema"))
        && (m.contains("invalid")
            || m.contains("failed")
            || m.contains("unsupported")
            || m.contains("parse"))
}

/// Tokens the answer may use: `want`, less when the server's context (`n_ctx`) minus the
/// prompt leaves less room; `Err` when the prompt alone leaves too little. The prompt is
/// estimated at 3 characters a token (JSON and code run denser than prose's 4).
fn answer_room(
    req: &ChatRequest,
    mechanism: Mechanism,
    want: u32,
    n_ctx: Option<u32>,
) -> Result<u32, String> {
    let Some(n_ctx) = n_ctx else {
        return Ok(want);
    };
    let mut chars = wire::system_prompt(req, mechanism).chars().count()
        + req
            .messages
            .iter()
            .map(|m| m.content.chars().count() + 16)
            .sum::<usize>();
    if matches!(mechanism, Mechanism::Tools) {
        // A tool's parameters are shown to the model through the chat template.
        chars += req
            .schema
            .as_ref()
            .map_or(0, |s| s.schema.to_string().len());
    }
    let prompt = u32::try_from(chars.div_ceil(3)).unwrap_or(u32::MAX);
    let room = n_ctx.saturating_sub(prompt).saturating_sub(CTX_MARGIN);
    if room < MIN_ANSWER_TOKENS {
        return Err(format!(
            "the prompt is about {prompt} tokens and the context holds {n_ctx}; not sent"
        ));
    }
    Ok(want.min(room))
}

fn stream_failure(f: StreamFailure) -> Exchange {
    match f {
        StreamFailure::Truncated(d) => Exchange::Truncated(d),
        StreamFailure::Malformed(d) => Exchange::Malformed(d),
        StreamFailure::Server { status, message } => Exchange::StreamServer { status, message },
    }
}

/// `retry-after-ms` (OpenAI) or `Retry-After` (seconds or HTTP-date).
fn retry_after(h: &reqwest::header::HeaderMap) -> Option<Duration> {
    if let Some(ms) = h
        .get("retry-after-ms")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|v| v.is_finite() && *v >= 0.0)
    {
        return Some(Duration::from_secs_f64(ms.min(1e12) / 1000.0));
    }
    h.get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, SystemTime::now()))
}

/// An error with its causes ("error sending request: … : connection refused").
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        src = c.source();
    }
    s
}

/// Prompt tokens of a request, estimated from its text.
fn prompt_estimate(req: &ChatRequest) -> u64 {
    wire::estimate_tokens(&req.system)
        + req
            .messages
            .iter()
            .map(|m| wire::estimate_tokens(&m.content))
            .sum::<u64>()
}

fn estimate_usage(req: &ChatRequest, d: &Decoded) -> Usage {
    let input = prompt_estimate(req);
    let output =
        wire::estimate_tokens(&d.text) + d.tool_args.as_deref().map_or(0, wire::estimate_tokens);
    Usage {
        input_tokens: input,
        output_tokens: output,
        estimated: true,
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The synchronous face of [`Router`] for the CLI: owns a small current-thread runtime and
/// blocks on it. Calling it from a thread that is already inside a tokio runtime returns
/// [`LlmError::BlockingInsideRuntime`] instead of panicking or deadlocking; async code uses
/// [`Router`] directly.
#[derive(Debug)]
pub struct BlockingRouter {
    router: Router,
    /// Always `Some` until dropped (taken in `Drop`).
    rt: Option<tokio::runtime::Runtime>,
}

impl Drop for BlockingRouter {
    fn drop(&mut self) {
        // Dropping a runtime blocks until its tasks stop, which tokio forbids (panics) inside
        // another runtime; a blocking router may well be dropped there, e.g. by a test or a
        // daemon that built one for a CLI-style helper. Nothing of ours runs between calls, so
        // shutting down in the background loses nothing.
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

impl BlockingRouter {
    /// A blocking router reading API keys from the environment.
    pub fn new(cfg: LlmConfig) -> Result<Self, LlmError> {
        Self::from_router(Router::new(cfg)?)
    }

    /// Wraps a router. Its connections will live on this wrapper's runtime, so give it a router
    /// that async code does not also use.
    pub fn from_router(router: Router) -> Result<Self, LlmError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| LlmError::Setup(format!("cannot start the I/O runtime: {e}")))?;
        Ok(BlockingRouter {
            router,
            rt: Some(rt),
        })
    }

    /// The underlying router (metrics, health, config).
    pub fn router(&self) -> &Router {
        &self.router
    }

    /// Blocking [`Router::complete`].
    pub fn complete(
        &self,
        lane: &str,
        req: &ChatRequest,
        opts: &RouteOpts,
    ) -> Result<ChatResponse, LlmError> {
        self.block(self.router.complete(lane, req, opts))?
    }

    /// Blocking [`Router::complete_with`].
    pub fn complete_with(
        &self,
        lane: &str,
        req: &ChatRequest,
        opts: &RouteOpts,
        sink: &mut (dyn FnMut(StreamEvent<'_>) + Send),
    ) -> Result<ChatResponse, LlmError> {
        self.block(self.router.complete_with(lane, req, opts, sink))?
    }

    /// Blocking [`Router::probe`].
    pub fn probe(&self, provider: &str, model: Option<&str>) -> Result<ProbeReport, LlmError> {
        self.block(self.router.probe(provider, model))?
    }

    fn block<F: std::future::Future>(&self, f: F) -> Result<F::Output, LlmError> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(LlmError::BlockingInsideRuntime);
        }
        match &self.rt {
            Some(rt) => Ok(rt.block_on(f)),
            None => Err(LlmError::Setup("the runtime is shut down".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ProviderConfig;

    /// (name, lanes, catch-all model)
    type Spec<'a> = (&'a str, &'a [(&'a str, &'a str)], Option<&'a str>);

    fn router(providers: &[Spec<'_>]) -> Router {
        let cfg = LlmConfig {
            providers: providers
                .iter()
                .map(|(n, lanes, model)| ProviderConfig {
                    name: (*n).into(),
                    base_url: Some("http://127.0.0.1:1/v1".into()),
                    lanes: lanes
                        .iter()
                        .map(|(l, m)| ((*l).to_owned(), (*m).to_owned()))
                        .collect(),
                    model: model.map(str::to_owned),
                    ..ProviderConfig::default()
                })
                .collect(),
            ..LlmConfig::default()
        };
        Router::with_secrets(cfg, |_| None).unwrap()
    }

    #[test]
    fn candidates_follow_lanes_pins_and_models() {
        let r = router(&[
            ("a", &[("fast", "a-small")], None),
            ("b", &[("fast", "b-small"), ("strong", "b-big")], None),
            ("c", &[], Some("c-any")),
        ]);
        let names = |v: Vec<(usize, String)>| v.into_iter().map(|(_, m)| m).collect::<Vec<_>>();
        let none = RouteOpts::default();
        assert_eq!(
            names(r.candidates("fast", &none).unwrap()),
            ["a-small", "b-small", "c-any"]
        );
        assert_eq!(
            names(r.candidates("strong", &none).unwrap()),
            ["b-big", "c-any"]
        );
        let pin = RouteOpts {
            provider: Some("b".into()),
            ..RouteOpts::default()
        };
        assert_eq!(names(r.candidates("strong", &pin).unwrap()), ["b-big"]);
        let by_model = RouteOpts {
            model: Some("b-big".into()),
            ..RouteOpts::default()
        };
        let c = r.candidates("fast", &by_model).unwrap();
        assert_eq!(c[0], (1, "b-big".to_owned()));
        assert_eq!(names(c), ["b-big", "a-small", "c-any"]);
        let unknown = RouteOpts {
            provider: Some("zz".into()),
            ..RouteOpts::default()
        };
        assert!(matches!(
            r.candidates("fast", &unknown),
            Err(LlmError::UnknownProvider { known, .. }) if known == "a, b, c"
        ));
        let r = router(&[("a", &[("fast", "x")], None)]);
        assert!(matches!(
            r.candidates("strong", &none),
            Err(LlmError::NoModelForLane { .. })
        ));
    }

    #[test]
    fn complete_future_is_send() {
        fn assert_send<T: Send>(_: &T) {}
        let r = router(&[("a", &[("fast", "x")], None)]);
        let req = ChatRequest::default();
        let opts = RouteOpts::default();
        let f = r.complete("fast", &req, &opts);
        assert_send(&f);
        let p = r.probe("a", None);
        assert_send(&p);
    }

    #[test]
    fn unconfigured_router_says_so() {
        let r = Router::new(LlmConfig::default()).unwrap();
        assert!(!r.is_configured());
        let b = BlockingRouter::from_router(r).unwrap();
        let e = b
            .complete("", &ChatRequest::default(), &RouteOpts::default())
            .unwrap_err();
        assert!(matches!(e, LlmError::NotConfigured), "{e}");
    }
}
