//! The planner cascade: offline first, then the plan cache, then a model lane, then back to
//! the offline planner's own answer.
//!
//! 1. The offline planner answers when it is confident: an undo, or a plan whose confidence is
//!    at least [`DEFAULT_THRESHOLD`] (and no `--provider`/`--model` was given).
//! 2. Otherwise, with a provider configured: the plan cache; on a miss, the model lane picked
//!    by [`complexity`] (`--provider`/`--model` override), whose answer is validated and
//!    repaired by [`LlmPlanner`] and, when valid, cached.
//! 3. When no provider is configured, or every provider failed, or the model's plans stayed
//!    invalid, the result is exactly the offline planner's outcome — with a one-line notice
//!    saying why the model did not answer. Except with `--provider`/`--model`: the person
//!    asked for that model, so its failure is the answer (not understood, saying why), never
//!    an offline plan run in its place.

use std::sync::{Arc, OnceLock};

use kernos_llm::{LlmConfig, LlmError, RouteOpts};
use kernos_tools::Registry;

use super::cache::{CacheError, CacheKey, PlanCache, normalise};
use super::job::{ChatModel, Hints, LlmFailure, LlmPlanner};
use super::planned::{CacheUse, Planned, Source};
use super::prompt::{DataBlock, HostFacts, PROMPT_VERSION, recent_key};
use crate::{Outcome, PlanContext, Planner};

/// Offline plans at least this confident are used without asking a model.
///
/// Measured on the shared intents catalog (98 requests: every plan ≥ 0.93) and the 301
/// paraphrase and hold-out requests (281 at 1.0 or ≥ 0.8; the rest at 0.5–0.75). 0.8 keeps
/// the whole catalog and 93 % of the paraphrases offline, and sends the partly understood
/// requests — where the offline planner explains only half to three quarters of the words,
/// e.g. "make the logs folder smaller" → `fs.mkdir` at 0.75 — to a model when one is
/// configured (falling back to the same offline plan when none answers).
pub const DEFAULT_THRESHOLD: f32 = 0.8;

/// Requests scoring at least this in [`complexity`] go to the complex lane.
pub const COMPLEX_SCORE: u32 = 2;

/// Per-call options (`--provider`, `--model`, `--no-cache`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlanOptions {
    /// Use only this provider (skips the offline planner's confident answer).
    pub provider: Option<String>,
    /// Use this model (skips the offline planner's confident answer).
    pub model: Option<String>,
    /// Neither read nor write the plan cache.
    pub no_cache: bool,
    /// Untrusted text to show the model (file contents, command output). The plan is then
    /// [`kernos_core::Plan::untrusted_input`] and never cached.
    pub data: Vec<DataBlock>,
    /// Whose share of the model servers the call is charged to in the router's fair
    /// scheduler: the organisation asking (the engine fills it in from the session).
    pub client: Option<String>,
}

impl PlanOptions {
    fn forced(&self) -> bool {
        self.provider.is_some() || self.model.is_some()
    }
}

type Factory = dyn Fn() -> Result<Box<dyn ChatModel>, LlmError> + Send + Sync;
type Setup = dyn Fn() -> (Arc<Registry>, HostFacts) + Send + Sync;

struct Tier {
    cfg: LlmConfig,
    complex_lane: String,
    max_repairs: Option<u32>,
    setup: Box<Setup>,
    planner: OnceLock<LlmPlanner>,
    factory: Box<Factory>,
    model: OnceLock<Result<Box<dyn ChatModel>, String>>,
}

impl Tier {
    /// The LLM planner, set up on first use (the registry and the machine facts cost a
    /// millisecond or two that a confident offline answer should not pay).
    fn planner(&self) -> &LlmPlanner {
        self.planner.get_or_init(|| {
            let (registry, facts) = (self.setup)();
            let p = LlmPlanner::new(registry, facts);
            match self.max_repairs {
                Some(n) => p.with_max_repairs(n),
                None => p,
            }
        })
    }
}

type OpenCache = dyn Fn() -> Result<PlanCache, CacheError> + Send + Sync;

/// Where the plan cache comes from: given, or opened on first use.
enum CacheSlot {
    None,
    Ready(PlanCache),
    Lazy {
        open: Box<OpenCache>,
        cell: OnceLock<Result<PlanCache, String>>,
    },
}

/// The cascade. `Send + Sync`; build one per process (or per request in a short-lived CLI —
/// nothing of the model tier is set up until a request is not confidently offline).
pub struct Cascade {
    offline: Planner,
    tier: Option<Tier>,
    cache: CacheSlot,
    threshold: f32,
}

impl std::fmt::Debug for Cascade {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cascade")
            .field("llm", &self.tier.as_ref().map(|t| &t.cfg))
            .field("cache", &!matches!(self.cache, CacheSlot::None))
            .field("threshold", &self.threshold)
            .finish()
    }
}

impl Default for Cascade {
    fn default() -> Self {
        Cascade::offline()
    }
}

impl Cascade {
    /// The offline planner alone: exactly [`Planner::plan`].
    pub fn offline() -> Cascade {
        Cascade {
            offline: Planner::new(),
            tier: None,
            cache: CacheSlot::None,
            threshold: DEFAULT_THRESHOLD,
        }
    }

    /// With the model tier for `cfg` (no providers: offline only). The HTTP client is built
    /// the first time a model is asked, reading API keys from the environment.
    pub fn new(registry: Arc<Registry>, cfg: LlmConfig, facts: HostFacts) -> Cascade {
        Self::lazy(cfg, move || (registry.clone(), facts.clone()))
    }

    /// [`Cascade::new`] with the registry and machine facts made by `setup` on first use, so
    /// a request the offline planner answers confidently never builds them.
    pub fn lazy(
        cfg: LlmConfig,
        setup: impl Fn() -> (Arc<Registry>, HostFacts) + Send + Sync + 'static,
    ) -> Cascade {
        let router_cfg = cfg.clone();
        Self::with_setup(cfg, setup, move || {
            let r = kernos_llm::BlockingRouter::new(router_cfg.clone())?;
            Ok(Box::new(r) as Box<dyn ChatModel>)
        })
    }

    /// With the model tier, building the model with `factory` on first use (tests, a daemon
    /// with its own secret store).
    pub fn with_factory(
        registry: Arc<Registry>,
        cfg: LlmConfig,
        facts: HostFacts,
        factory: impl Fn() -> Result<Box<dyn ChatModel>, LlmError> + Send + Sync + 'static,
    ) -> Cascade {
        Self::with_setup(cfg, move || (registry.clone(), facts.clone()), factory)
    }

    fn with_setup(
        cfg: LlmConfig,
        setup: impl Fn() -> (Arc<Registry>, HostFacts) + Send + Sync + 'static,
        factory: impl Fn() -> Result<Box<dyn ChatModel>, LlmError> + Send + Sync + 'static,
    ) -> Cascade {
        let tier = (!cfg.providers.is_empty()).then(|| Tier {
            cfg,
            complex_lane: "strong".into(),
            max_repairs: None,
            setup: Box::new(setup),
            planner: OnceLock::new(),
            factory: Box::new(factory),
            model: OnceLock::new(),
        });
        Cascade {
            offline: Planner::new(),
            tier,
            cache: CacheSlot::None,
            threshold: DEFAULT_THRESHOLD,
        }
    }

    /// Lets the offline planner plan requests that name an action of `catalog` directly
    /// ([`Planner::with_catalog`]); give it the catalog the engine runs plans against.
    pub fn with_catalog(mut self, catalog: Arc<Registry>) -> Self {
        // In place: `mem::take` would build a whole default planner (vocabulary and intents,
        // ~0.3 ms, at every CLI request) only to drop it.
        self.offline.catalog = Some(catalog);
        self
    }

    /// Lets the offline planner plan installed taught skills ([`Planner::with_taught`]).
    pub fn with_taught(mut self, taught: Arc<dyn crate::Taught>) -> Self {
        self.offline.taught = Some(taught); // in place, as above
        self
    }

    /// Uses this plan cache.
    pub fn with_cache(mut self, cache: PlanCache) -> Self {
        self.cache = CacheSlot::Ready(cache);
        self
    }

    /// Opens the plan cache with `open` the first time it is needed (if that fails, planning
    /// goes on without the cache and says why in the notice).
    pub fn with_cache_lazy(
        mut self,
        open: impl Fn() -> Result<PlanCache, CacheError> + Send + Sync + 'static,
    ) -> Self {
        self.cache = CacheSlot::Lazy {
            open: Box::new(open),
            cell: OnceLock::new(),
        };
        self
    }

    /// The cache, opening it if needed; `Err` says why it cannot be used.
    fn cache_slot(&self) -> Result<Option<&PlanCache>, String> {
        match &self.cache {
            CacheSlot::None => Ok(None),
            CacheSlot::Ready(c) => Ok(Some(c)),
            CacheSlot::Lazy { open, cell } => {
                match cell.get_or_init(|| open().map_err(|e| e.to_string())) {
                    Ok(c) => Ok(Some(c)),
                    Err(e) => Err(e.clone()),
                }
            }
        }
    }

    /// Offline plans at least this confident skip the model (default [`DEFAULT_THRESHOLD`]).
    pub fn with_threshold(mut self, t: f32) -> Self {
        self.threshold = t;
        self
    }

    /// The lane for complex requests (default `strong`; used only when a provider has it).
    pub fn with_complex_lane(mut self, lane: impl Into<String>) -> Self {
        if let Some(t) = &mut self.tier {
            t.complex_lane = lane.into();
        }
        self
    }

    /// At most `n` repairs per plan.
    pub fn with_max_repairs(mut self, n: u32) -> Self {
        if let Some(t) = &mut self.tier {
            t.max_repairs = Some(n);
        }
        self
    }

    /// The offline planner.
    pub fn offline_planner(&self) -> &Planner {
        &self.offline
    }

    /// The LLM planner, when a provider is configured.
    pub fn llm(&self) -> Option<&LlmPlanner> {
        self.tier.as_ref().map(Tier::planner)
    }

    /// The plan cache, when there is one (opening it if it is opened lazily).
    pub fn cache(&self) -> Option<&PlanCache> {
        self.cache_slot().ok().flatten()
    }

    /// Prometheus text for the model tier: per provider/model tries, errors, tokens, cost and
    /// latency since this cascade's model was built, and the plan cache's hits, misses,
    /// hit ratio and size. Empty with no model configured. Builds nothing: a model never
    /// asked contributes no series; the cache is opened (it is a small SQLite file) so its
    /// persisted counters show from the first scrape. Blocking: call it off async threads.
    pub fn prometheus(&self) -> String {
        let Some(t) = &self.tier else {
            return String::new();
        };
        let (models, sched) = match t.model.get() {
            Some(Ok(m)) => (m.metrics(), m.scheduler()),
            _ => (Vec::new(), Vec::new()),
        };
        let cache = self.cache().and_then(|c| c.stats().ok());
        super::usage::prometheus(&models, cache.as_ref(), &sched)
    }

    /// Whether a model can be asked at all.
    pub fn has_model(&self) -> bool {
        self.tier.is_some()
    }

    /// The model, built on first use.
    pub fn model(&self) -> Result<&dyn ChatModel, String> {
        let t = self
            .tier
            .as_ref()
            .ok_or_else(|| LlmError::NotConfigured.to_string())?;
        match t
            .model
            .get_or_init(|| (t.factory)().map_err(|e| e.to_string()))
        {
            Ok(m) => Ok(m.as_ref()),
            Err(e) => Err(e.clone()),
        }
    }

    /// The lane a request goes to: the complex lane when [`complexity`] says so and some
    /// provider serves that lane, else the default lane.
    pub fn lane_for(&self, request: &str) -> String {
        let Some(t) = &self.tier else {
            return String::new();
        };
        let complex = complexity(request) >= COMPLEX_SCORE
            && t.cfg
                .providers
                .iter()
                .any(|p| p.lanes.contains_key(&t.complex_lane));
        if complex {
            t.complex_lane.clone()
        } else {
            t.cfg.default_lane.clone()
        }
    }

    /// The cache key for a request in a context (see [`super::cache`] for what goes in).
    pub fn cache_key(&self, request: &str, ctx: &PlanContext, opts: &PlanOptions) -> CacheKey {
        let (version, facts) = match &self.tier {
            Some(t) => (
                t.planner().catalog_version(),
                t.planner().facts().key_material(),
            ),
            None => ("", String::new()),
        };
        let recent = recent_key(ctx, self.offline.refers_back(request, ctx));
        let norm = normalise(request);
        CacheKey::from_parts(&[
            PROMPT_VERSION,
            version,
            &norm,
            &facts,
            &ctx.home,
            &ctx.cwd,
            &recent,
            opts.provider.as_deref().unwrap_or(""),
            opts.model.as_deref().unwrap_or(""),
        ])
    }

    /// Plans a request (see the module docs).
    pub fn plan(&self, request: &str, ctx: &PlanContext, opts: &PlanOptions) -> Planned {
        let understood = self.offline.understand(request, ctx);
        let offline = understood.outcome;
        let unused = understood.unused;
        let offline_confidence = match &offline {
            Outcome::Plan { confidence, .. } => Some(*confidence),
            _ => None,
        };
        let answer_offline = |outcome: Outcome, cache, notice, unused| Planned {
            unused,
            outcome,
            source: Source::Offline,
            cache,
            lane: None,
            report: None,
            notice,
            offline_confidence,
        };
        let confident = match &offline {
            Outcome::Undo { .. } => true,
            Outcome::Plan { confidence, .. } => {
                *confidence >= self.threshold && !opts.forced() && opts.data.is_empty()
            }
            Outcome::NotUnderstood { .. } => false,
        };
        let Some(tier) = &self.tier else {
            return answer_offline(offline, CacheUse::NotUsed, None, unused);
        };
        if confident {
            return answer_offline(offline, CacheUse::NotUsed, None, unused);
        }

        // The cache: only for requests without untrusted data.
        let cacheable = opts.data.is_empty();
        let mut cache_use = CacheUse::NotUsed;
        let mut key = None;
        let mut notice = None;
        if cacheable {
            let slot = if opts.no_cache {
                Ok(None)
            } else {
                self.cache_slot()
            };
            match slot {
                Err(e) => {
                    notice = Some(format!("{e}; planning without the cache"));
                    cache_use = CacheUse::Off;
                }
                Ok(Some(c)) => {
                    let k = self.cache_key(request, ctx, opts);
                    match c.get(&k) {
                        Ok(Some(hit)) => {
                            // The key holds the catalog version, so this only fails if the
                            // file was tampered with; then the model is asked again.
                            if tier.planner().registry().validate(&hit.plan).is_empty() {
                                let mut plan = hit.plan;
                                plan.request = Some(request.to_owned());
                                return Planned {
                                    outcome: Outcome::Plan {
                                        plan,
                                        confidence: 1.0,
                                    },
                                    source: Source::Cache,
                                    cache: CacheUse::Hit,
                                    lane: None,
                                    report: None,
                                    notice: None,
                                    offline_confidence,
                                    unused: Vec::new(),
                                };
                            }
                            cache_use = CacheUse::Miss;
                        }
                        Ok(None) => cache_use = CacheUse::Miss,
                        Err(e) => {
                            notice = Some(format!("{e}; planning without the cache"));
                            cache_use = CacheUse::Off;
                        }
                    }
                    key = Some(k);
                }
                Ok(None) => cache_use = CacheUse::Off,
            }
        }

        let model = match self.model() {
            Ok(m) => m,
            Err(e) if opts.forced() => {
                return forced_failure(&e, cache_use, offline_confidence);
            }
            Err(e) => {
                return answer_offline(
                    offline,
                    cache_use,
                    Some(format!(
                        "language model unavailable ({e}); the offline planner answered"
                    )),
                    unused,
                );
            }
        };
        let lane = self.lane_for(request);
        let route = RouteOpts {
            provider: opts.provider.clone(),
            model: opts.model.clone(),
            client: opts.client.clone(),
            ..RouteOpts::default()
        };
        let hints = Hints::from_outcome(&offline, self.offline.refers_back(request, ctx));
        let spec = tier
            .planner()
            .plan_spec(request, ctx, &opts.data, &lane, &route, &hints);
        let report = tier.planner().run(model, spec);
        let result = match &report.result {
            Ok(mp) => Ok(mp.clone()),
            Err(LlmFailure::Declined(m)) => Err((true, m.clone())),
            Err(e) => Err((false, e.to_string())),
        };
        match result {
            Ok(mp) => {
                if let (Some(c), Some(k)) = (self.cache(), &key) {
                    if let Err(e) = c.put(k, request, &mp.plan) {
                        notice = Some(format!("{e}; the plan was not cached"));
                    }
                }
                Planned {
                    outcome: Outcome::Plan {
                        plan: mp.plan,
                        confidence: 1.0,
                    },
                    source: Source::Model {
                        provider: mp.provider,
                        model: mp.model,
                    },
                    cache: cache_use,
                    lane: Some(lane),
                    report: Some(report),
                    notice,
                    offline_confidence,
                    unused: Vec::new(),
                }
            }
            Err((_, why)) if opts.forced() => {
                let mut p = forced_failure(&why, cache_use, offline_confidence);
                p.lane = Some(lane);
                p.report = Some(report);
                p
            }
            Err((declined, why)) => {
                let outcome = match offline {
                    // The model says the catalog cannot do it: say so alongside the offline
                    // planner's suggestions.
                    Outcome::NotUnderstood {
                        message,
                        suggestions,
                    } if declined => Outcome::NotUnderstood {
                        message: format!("{message} The language model says: {why}"),
                        suggestions,
                    },
                    other => other,
                };
                let notice = if declined {
                    None
                } else {
                    Some(format!(
                        "language model did not plan this ({}); the offline planner answered",
                        why.replace('\n', " ")
                    ))
                };
                Planned {
                    outcome,
                    source: Source::Offline,
                    cache: cache_use,
                    lane: Some(lane),
                    report: Some(report),
                    notice,
                    offline_confidence,
                    unused,
                }
            }
        }
    }
}

/// `--provider`/`--model` asked for a model, and it did not plan: say why and stop. Running
/// the offline planner's plan instead would act on a plan nobody asked for.
fn forced_failure(why: &str, cache: CacheUse, offline_confidence: Option<f32>) -> Planned {
    let why = why.replace('\n', " ");
    Planned {
        outcome: Outcome::NotUnderstood {
            message: format!(
                "The language model asked for (--provider/--model) did not plan this: {why}. \
                 Nothing was run; try again without --provider/--model to let the offline \
                 planner answer."
            ),
            suggestions: Vec::new(),
        },
        source: Source::Offline,
        cache,
        lane: None,
        report: None,
        notice: Some(format!(
            "language model did not plan this ({why}); --provider/--model: not falling back to the offline planner"
        )),
        offline_confidence,
        unused: Vec::new(),
    }
}

/// Words that mark an open-ended or diagnostic request (a stronger model plans these better).
const OPEN_ENDED: &[&str] = &[
    "why",
    "diagnose",
    "troubleshoot",
    "investigate",
    "debug",
    "fix",
    "failing",
    "fails",
    "failed",
    "broken",
    "slow",
    "optimise",
    "optimize",
    "explain",
    "figure",
    "wrong",
    "secure",
    "harden",
    "free",
    "clean",
    "cleanup",
    "tidy",
    "audit",
    "recommend",
    "should",
];

/// A simple complexity estimate for routing: +1 for a long request (over 12 words) and +1
/// more over 25, +1 per joining word or separator (up to 2), +2 for an open-ended or
/// diagnostic word ("why", "fix", "slow", "free up", …). At [`COMPLEX_SCORE`] or more the
/// request goes to the complex lane. Cheap, explainable, and wrong only in the cheap
/// direction: a simple request sent to the strong lane costs more but plans as well.
pub fn complexity(request: &str) -> u32 {
    let lower = request.to_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_alphanumeric() && c != '\'')
        .filter(|w| !w.is_empty())
        .collect();
    let mut score = 0;
    if words.len() > 12 {
        score += 1;
    }
    if words.len() > 25 {
        score += 1;
    }
    let joins = words
        .iter()
        .filter(|w| matches!(**w, "and" | "then" | "also" | "after" | "before" | "if"))
        .count()
        + lower.matches([';', ',']).count();
    score += u32::try_from(joins.min(2)).unwrap_or(2);
    if words.iter().any(|w| OPEN_ENDED.contains(w)) {
        score += 2;
    }
    score
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn complexity_routes_open_ended_requests() {
        for simple in [
            "show my ip address",
            "list files in /etc",
            "what is using port 8080",
        ] {
            assert!(complexity(simple) < COMPLEX_SCORE, "{simple}");
        }
        for complex in [
            "why is nginx failing?",
            "free up space on this box",
            "find the biggest logs, compress them, then delete the originals if they are older than a week",
            "my laptop is slow",
        ] {
            assert!(complexity(complex) >= COMPLEX_SCORE, "{complex}");
        }
    }

    #[test]
    fn without_providers_it_is_the_offline_planner() {
        let c = Cascade::new(
            Arc::new(Registry::empty()),
            LlmConfig::default(),
            HostFacts::default(),
        );
        assert!(!c.has_model());
        let ctx = PlanContext::new("/home/u", "/home/u");
        for r in [
            "show the 5 largest files in /var/log",
            "why is nginx failing?",
            "undo",
        ] {
            let p = c.plan(r, &ctx, &PlanOptions::default());
            assert_eq!(p.outcome, Planner::new().plan(r, &ctx), "{r}");
            assert_eq!(p.source, Source::Offline);
            assert!(p.notice.is_none() && !p.used_llm_tier());
        }
    }
}
