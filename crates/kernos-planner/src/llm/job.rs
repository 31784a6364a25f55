//! One planning conversation with a model: ask, read the answer, validate it with the
//! catalog's validator, and repair at most a fixed number of times, feeding back the exact
//! problems — stopping early when the model makes the same mistake twice.
//!
//! [`PlanJob`] holds no I/O: the caller sends [`PlanJob::request`] wherever it likes
//! (the [`BlockingRouter`], an async [`kernos_llm::Router`], a test double) and hands the
//! result to [`PlanJob::answer`] until the job is finished. [`LlmPlanner::run`] is that loop
//! for any [`ChatModel`].

use std::sync::{Arc, OnceLock};

use kernos_core::{Plan, PlanIssue};
use kernos_llm::{
    Attempt, BlockingRouter, ChatRequest, ChatResponse, LlmError, Mechanism, Message, ModelStats,
    OutputSchema, RouteOpts,
};
use kernos_tools::Registry;
use serde_json::Value;

use super::answer::{clip_line, output_schema, output_schema_for, read_answer};
use super::prompt::{DataBlock, HostFacts, plan_message, sensitive_texts, system_prompt};
use super::select::{Selection, Selector};
use crate::{Outcome, PlanContext, Planner};

/// Repairs after the first answer, by default (so at most three model calls per plan).
pub const DEFAULT_MAX_REPAIRS: u32 = 2;

/// Answer tokens asked for a one-shot plan: a plan of a few steps is 30–200 tokens, so this
/// stops a model that runs on (and the router lowers it further to what the server's context
/// leaves).
pub const PLAN_MAX_TOKENS: u32 = 400;

/// Anything that answers chat requests through the lanes and the fallback cascade of
/// providers: the [`BlockingRouter`] in the CLI, a test double elsewhere.
pub trait ChatModel: Send + Sync {
    /// One call (the router tries providers, retries and falls back inside it).
    fn complete(
        &self,
        lane: &str,
        req: &ChatRequest,
        opts: &RouteOpts,
    ) -> Result<ChatResponse, LlmError>;

    /// Tries, tokens, cost and latency per provider/model since the model was built (the
    /// daemon's `/metrics`). A test double that does not count answers nothing.
    fn metrics(&self) -> Vec<ModelStats> {
        Vec::new()
    }

    /// What each provider's fair scheduler is doing: slots, queue, waits, tokens per client
    /// (the daemon's `/metrics`). A test double that schedules nothing answers nothing.
    fn scheduler(&self) -> Vec<kernos_llm::SchedStats> {
        Vec::new()
    }
}

impl std::fmt::Debug for dyn ChatModel + '_ {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChatModel")
    }
}

impl ChatModel for BlockingRouter {
    fn complete(
        &self,
        lane: &str,
        req: &ChatRequest,
        opts: &RouteOpts,
    ) -> Result<ChatResponse, LlmError> {
        BlockingRouter::complete(self, lane, req, opts)
    }

    fn metrics(&self) -> Vec<ModelStats> {
        self.router().metrics()
    }

    fn scheduler(&self) -> Vec<kernos_llm::SchedStats> {
        self.router().scheduler()
    }
}

/// A [`kernos_llm::Router`] for synchronous planning code that runs on an async runtime's
/// blocking threads — a daemon calling [`crate::llm::Cascade::plan`] inside
/// `tokio::task::spawn_blocking` — where [`BlockingRouter`] refuses to start a runtime of its
/// own. Each call is driven on `handle`; calling it from inside an async task (rather than a
/// blocking thread) would block that runtime's worker and is a mistake.
#[derive(Debug, Clone)]
pub struct HandleModel {
    router: kernos_llm::Router,
    handle: tokio::runtime::Handle,
}

impl HandleModel {
    /// Calls go through `router`, driven on `handle`.
    pub fn new(router: kernos_llm::Router, handle: tokio::runtime::Handle) -> Self {
        HandleModel { router, handle }
    }

    /// The router (metrics, health).
    pub fn router(&self) -> &kernos_llm::Router {
        &self.router
    }
}

impl ChatModel for HandleModel {
    fn complete(
        &self,
        lane: &str,
        req: &ChatRequest,
        opts: &RouteOpts,
    ) -> Result<ChatResponse, LlmError> {
        self.handle.block_on(self.router.complete(lane, req, opts))
    }

    fn metrics(&self) -> Vec<ModelStats> {
        self.router.metrics()
    }

    fn scheduler(&self) -> Vec<kernos_llm::SchedStats> {
        self.router.scheduler()
    }
}

/// The LLM planner: prompts and answer formats built from the registry (once, on first
/// use — a process that only serves cached plans never renders them), and the
/// validate-and-repair loop. `Send + Sync`; build one per process.
#[derive(Debug)]
pub struct LlmPlanner {
    registry: Arc<Registry>,
    facts: HostFacts,
    catalog_version: OnceLock<String>,
    plan_system: OnceLock<String>,
    agent_system: OnceLock<String>,
    plan_schema: OnceLock<OutputSchema>,
    agent_schema: OnceLock<OutputSchema>,
    selector: OnceLock<Selector>,
    offline: OnceLock<Planner>,
    max_repairs: u32,
}

/// What to ask in one job.
#[derive(Debug, Clone, Default)]
pub struct JobSpec {
    /// The request as typed (becomes [`Plan::request`]).
    pub request: String,
    /// The user message (see [`super::prompt::user_message`]).
    pub user: String,
    /// Lane (empty: the default lane).
    pub lane: String,
    /// `--provider` / `--model`.
    pub route: RouteOpts,
    /// Agent mode: the agent prompt and the answer format with `done`.
    pub agent: bool,
    /// The user message carries untrusted data: the plan is marked
    /// [`Plan::untrusted_input`].
    pub untrusted: bool,
    /// Token limit per answer (`None`: the provider's `max_tokens`).
    pub max_tokens: Option<u32>,
    /// The actions the answer may use (the schema's union); empty: the whole catalog.
    pub actions: Vec<String>,
    /// Texts in `user` read from a credential store ([`super::prompt::sensitive_texts`]): a
    /// remote model is sent none of them ([`ChatRequest::sensitive`]).
    pub sensitive: Vec<String>,
}

/// What the offline planner tells the model tier about a request: the actions its candidates
/// name, and whether the request refers to the previous one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hints {
    /// Actions of the offline plan (even one below the confidence bar).
    pub actions: Vec<String>,
    /// The request refers to the previous one ("delete them", "do the same for /opt"): only
    /// then does the previous request go into the prompt.
    pub follow_up: bool,
}

impl Hints {
    /// Hints from the offline planner's outcome for the request, and its follow-up decision.
    pub fn from_outcome(outcome: &Outcome, follow_up: bool) -> Hints {
        let actions = match outcome {
            Outcome::Plan { plan, .. } => plan.steps.iter().map(kernos_core::Step::name).collect(),
            // Its suggestions are the closest things it can do, often unrelated to the
            // request: similarity chooses better than they do.
            Outcome::NotUnderstood { .. } | Outcome::Undo { .. } => Vec::new(),
        };
        Hints { actions, follow_up }
    }
}

/// A plan from a model, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelPlan {
    /// The plan: `planner` is `llm:<provider>/<model>`, every step's `why` is the model's.
    pub plan: Plan,
    /// The model's `message` (in agent mode: its answer when done).
    pub message: String,
    /// Agent mode: the model says the goal is reached (or cannot be).
    pub done: bool,
    /// Provider that answered.
    pub provider: String,
    /// Model asked for.
    pub model: String,
    /// How the JSON was obtained.
    pub mechanism: Mechanism,
}

/// Why a job produced no plan.
#[derive(Debug, thiserror::Error)]
pub enum LlmFailure {
    /// No usable answer: nothing configured, every provider down, out of budget…
    #[error("{0}")]
    Unavailable(LlmError),
    /// The answers stayed invalid.
    #[error(
        "the model's plan was still not valid after {repairs} repair{}{}: {}",
        if *repairs == 1 { "" } else { "s" },
        if *repeated { " (it repeated the same mistake)" } else { "" },
        issues.iter().take(3).map(ToString::to_string).collect::<Vec<_>>().join("; ")
    )]
    Invalid {
        /// The last answer's problems.
        issues: Vec<PlanIssue>,
        /// Repairs asked for.
        repairs: u32,
        /// Stopped early because the same problems came back.
        repeated: bool,
    },
    /// The model answered that the catalog cannot do this (no steps, a reason).
    #[error("the model says it cannot be done with Kernos's actions: {0}")]
    Declined(String),
}

/// Everything a job did: the result and what it cost.
#[derive(Debug)]
pub struct LlmReport {
    /// The plan, or why there is none.
    pub result: Result<ModelPlan, LlmFailure>,
    /// Every try of every call, in order (for metering and the journal).
    pub attempts: Vec<Attempt>,
    /// Model calls made (each may hold several tries).
    pub calls: u32,
    /// Repair requests among them.
    pub repairs: u32,
}

impl LlmReport {
    /// Prompt plus completion tokens of every try.
    pub fn tokens(&self) -> u64 {
        self.attempts
            .iter()
            .map(|a| a.usage.input_tokens + a.usage.output_tokens)
            .sum()
    }

    /// Cost of every try, US dollars.
    pub fn cost_usd(&self) -> f64 {
        self.attempts.iter().map(|a| a.cost_usd).sum()
    }
}

impl LlmPlanner {
    /// A planner for this registry and machine (cheap: prompts are built on first use).
    pub fn new(registry: Arc<Registry>, facts: HostFacts) -> LlmPlanner {
        LlmPlanner {
            registry,
            facts,
            catalog_version: OnceLock::new(),
            plan_system: OnceLock::new(),
            agent_system: OnceLock::new(),
            plan_schema: OnceLock::new(),
            agent_schema: OnceLock::new(),
            selector: OnceLock::new(),
            offline: OnceLock::new(),
            max_repairs: DEFAULT_MAX_REPAIRS,
        }
    }

    /// At most `n` repair requests per plan (0: none).
    pub fn with_max_repairs(mut self, n: u32) -> Self {
        self.max_repairs = n;
        self
    }

    /// The registry plans are validated against.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The machine, as the model is told about it.
    pub fn facts(&self) -> &HostFacts {
        &self.facts
    }

    /// [`Registry::catalog_version`], computed once.
    pub fn catalog_version(&self) -> &str {
        self.catalog_version
            .get_or_init(|| self.registry.catalog_version())
    }

    /// The system prompt (`agent`: agent mode's). The one-shot prompt is the rules and the
    /// machine: fixed, so a server's prompt cache holds it.
    pub fn system_prompt(&self, agent: bool) -> &str {
        if agent {
            return self
                .agent_system
                .get_or_init(|| system_prompt(&self.registry, true));
        }
        self.plan_system.get_or_init(|| {
            format!(
                "{}\n{}\n",
                system_prompt(&self.registry, false),
                super::prompt::machine_line(&self.facts)
            )
        })
    }

    /// The answer format over the whole catalog (`agent`: agent mode's).
    pub fn schema(&self, agent: bool) -> &OutputSchema {
        let cell = if agent {
            &self.agent_schema
        } else {
            &self.plan_schema
        };
        cell.get_or_init(|| output_schema(&self.registry, agent))
    }

    /// The index that picks a request's actions and examples, built on first use.
    pub fn selector(&self) -> &Selector {
        self.selector.get_or_init(|| {
            let extra: Vec<(String, String)> = self
                .offline()
                .capabilities()
                .into_iter()
                .map(|s| (s.action, s.example))
                .collect();
            Selector::new(&self.registry, &extra)
        })
    }

    fn offline(&self) -> &Planner {
        self.offline.get_or_init(Planner::new)
    }

    /// What the offline planner says about `request` (see [`Hints`]).
    pub fn hints(&self, request: &str, ctx: &PlanContext) -> Hints {
        let offline = self.offline();
        Hints::from_outcome(
            &offline.plan(request, ctx),
            offline.refers_back(request, ctx),
        )
    }

    /// The actions and examples `request` gets.
    pub fn select(&self, request: &str, hints: &Hints) -> Selection {
        self.selector().select(request, &hints.actions)
    }

    /// What to ask for a one-shot request. `data` is untrusted text to show the model (it
    /// makes the plan [`Plan::untrusted_input`]). The offline planner is asked for
    /// [`Hints`]; [`LlmPlanner::plan_spec`] takes them from a caller that already has them.
    pub fn request_spec(
        &self,
        request: &str,
        ctx: &PlanContext,
        data: &[DataBlock],
        lane: &str,
        route: &RouteOpts,
    ) -> JobSpec {
        let hints = self.hints(request, ctx);
        self.plan_spec(request, ctx, data, lane, route, &hints)
    }

    /// [`LlmPlanner::request_spec`] with the offline planner's hints given.
    pub fn plan_spec(
        &self,
        request: &str,
        ctx: &PlanContext,
        data: &[DataBlock],
        lane: &str,
        route: &RouteOpts,
        hints: &Hints,
    ) -> JobSpec {
        let selection = self.select(request, hints);
        JobSpec {
            request: request.to_owned(),
            user: plan_message(
                request,
                ctx,
                data,
                &self.registry,
                &selection,
                hints.follow_up,
            ),
            lane: lane.to_owned(),
            route: route.clone(),
            agent: false,
            untrusted: !data.is_empty(),
            max_tokens: Some(PLAN_MAX_TOKENS),
            actions: selection.actions,
            sensitive: sensitive_texts(data, &ctx.home),
        }
    }

    /// Starts a job.
    pub fn start(&self, spec: JobSpec) -> PlanJob<'_> {
        let messages = vec![Message::user(spec.user.clone())];
        let schema = if spec.actions.is_empty() {
            self.schema(spec.agent).clone()
        } else {
            output_schema_for(&self.registry, &spec.actions, spec.agent)
        };
        PlanJob {
            planner: self,
            schema,
            spec,
            messages,
            repairs: 0,
            calls: 0,
            last_fingerprint: None,
            attempts: Vec::new(),
            outcome: None,
        }
    }

    /// Runs a job to the end against `model`.
    pub fn run(&self, model: &dyn ChatModel, spec: JobSpec) -> LlmReport {
        let mut job = self.start(spec);
        while let Some(req) = job.request() {
            let r = model.complete(job.lane(), &req, job.route());
            job.answer(r);
        }
        job.finish()
    }

    /// Plans one request against `model` (see [`LlmPlanner::request_spec`]).
    pub fn plan(
        &self,
        model: &dyn ChatModel,
        request: &str,
        ctx: &PlanContext,
        data: &[DataBlock],
        lane: &str,
        route: &RouteOpts,
    ) -> LlmReport {
        self.run(model, self.request_spec(request, ctx, data, lane, route))
    }

    /// Reads and validates one answer value: the plan (signed by `provider`/`model`), or the
    /// problems worded for a repair request.
    pub fn check_answer(
        &self,
        value: &Value,
        agent: bool,
    ) -> Result<super::answer::Answer, Vec<PlanIssue>> {
        let answer = read_answer(value, &self.registry)?;
        if answer.plan.steps.is_empty() {
            if agent && !answer.done {
                return Err(vec![PlanIssue {
                    pointer: "/steps".into(),
                    message: "no steps and not done: propose the next steps, or set done to true with your answer in message".into(),
                }]);
            }
            if !agent && answer.message.is_empty() {
                return Err(vec![PlanIssue {
                    pointer: "/steps".into(),
                    message: "no steps and no message: give the steps, or say in message why none of the actions fit".into(),
                }]);
            }
            return Ok(answer);
        }
        let issues = self.registry.validate(&answer.plan);
        if issues.is_empty() {
            Ok(answer)
        } else {
            Err(issues)
        }
    }
}

/// One planning conversation (see the module docs).
#[derive(Debug)]
pub struct PlanJob<'p> {
    planner: &'p LlmPlanner,
    /// The answer format for this job's actions.
    schema: OutputSchema,
    spec: JobSpec,
    messages: Vec<Message>,
    repairs: u32,
    calls: u32,
    last_fingerprint: Option<String>,
    attempts: Vec<Attempt>,
    outcome: Option<Result<ModelPlan, LlmFailure>>,
}

impl PlanJob<'_> {
    /// The next request to send, or `None` when the job is finished.
    pub fn request(&self) -> Option<ChatRequest> {
        if self.outcome.is_some() {
            return None;
        }
        Some(ChatRequest {
            system: self.planner.system_prompt(self.spec.agent).to_owned(),
            messages: self.messages.clone(),
            schema: Some(self.schema.clone()),
            max_tokens: self.spec.max_tokens,
            // Plans should be the same every time for the same request (and the cache relies
            // on nothing better being one call away).
            temperature: Some(0.0),
            stream: false,
            sensitive: self.spec.sensitive.clone(),
        })
    }

    /// The lane to send it on.
    pub fn lane(&self) -> &str {
        &self.spec.lane
    }

    /// Provider/model overrides.
    pub fn route(&self) -> &RouteOpts {
        &self.spec.route
    }

    /// Takes the result of sending [`PlanJob::request`].
    pub fn answer(&mut self, r: Result<ChatResponse, LlmError>) {
        if self.outcome.is_some() {
            return;
        }
        self.calls += 1;
        match r {
            Ok(resp) => self.on_response(resp),
            Err(e) => self.on_error(e),
        }
    }

    fn on_response(&mut self, resp: ChatResponse) {
        self.attempts.extend(resp.attempts.iter().cloned());
        let value = match resp.json.clone() {
            Some(v) => v,
            // A schema request always carries `json`; be forgiving with test doubles.
            None => match kernos_llm::wire::extract_json(&resp.text) {
                Some((v, _)) => v,
                None => {
                    let issues = vec![PlanIssue {
                        pointer: String::new(),
                        message: "the answer holds no JSON object".into(),
                    }];
                    return self.repair_or_fail(issues, &resp.text);
                }
            },
        };
        match self.planner.check_answer(&value, self.spec.agent) {
            Ok(answer) => {
                if !self.spec.agent && answer.plan.steps.is_empty() {
                    self.outcome = Some(Err(LlmFailure::Declined(answer.message)));
                    return;
                }
                let model = self
                    .attempts
                    .last()
                    .map(|a| a.model.clone())
                    .unwrap_or_else(|| resp.model.clone());
                let mut plan = answer.plan;
                plan.request = Some(self.spec.request.clone());
                plan.planner = Some(format!("llm:{}/{}", resp.provider, model));
                plan.untrusted_input = self.spec.untrusted;
                self.outcome = Some(Ok(ModelPlan {
                    plan,
                    message: answer.message,
                    done: answer.done,
                    provider: resp.provider,
                    model,
                    mechanism: resp.mechanism_used,
                }));
            }
            Err(issues) => self.repair_or_fail(issues, &resp.text),
        }
    }

    fn on_error(&mut self, e: LlmError) {
        let (attempts, bad) = match &e {
            LlmError::AllFailed {
                attempts, failures, ..
            } => (
                attempts.clone(),
                failures.iter().find_map(|f| bad_output(&f.error)),
            ),
            other => (Vec::new(), bad_output(other)),
        };
        self.attempts.extend(attempts);
        match bad {
            Some((issue, text)) => self.repair_or_fail(vec![issue], &text),
            None => self.outcome = Some(Err(LlmFailure::Unavailable(e))),
        }
    }

    /// Asks again with the problems, unless out of repairs or the same problems came back.
    fn repair_or_fail(&mut self, issues: Vec<PlanIssue>, answer_text: &str) {
        let fp = fingerprint(&issues);
        let repeated = self.last_fingerprint.as_deref() == Some(fp.as_str());
        if repeated || self.repairs >= self.planner.max_repairs {
            self.outcome = Some(Err(LlmFailure::Invalid {
                issues,
                repairs: self.repairs,
                repeated,
            }));
            return;
        }
        self.last_fingerprint = Some(fp);
        self.repairs += 1;
        let shown = if answer_text.trim().is_empty() {
            "(empty answer)".to_owned()
        } else {
            clip_chars(answer_text, 4_000)
        };
        self.messages.push(Message::assistant(shown));
        self.messages.push(Message::user(repair_text(&issues)));
    }

    /// The result and its cost.
    pub fn finish(self) -> LlmReport {
        LlmReport {
            result: self.outcome.unwrap_or_else(|| {
                Err(LlmFailure::Unavailable(LlmError::Setup(
                    "the planning job was never sent".into(),
                )))
            }),
            attempts: self.attempts,
            calls: self.calls,
            repairs: self.repairs,
        }
    }
}

/// An answer that arrived but is unusable as output (not JSON, cut off): something a repair
/// can fix, as opposed to a provider being down.
fn bad_output(e: &LlmError) -> Option<(PlanIssue, String)> {
    match e {
        LlmError::InvalidJson { detail, text, .. } => Some((
            PlanIssue {
                pointer: String::new(),
                message: format!(
                    "the answer is not the JSON asked for ({detail}); answer with one JSON object only"
                ),
            },
            text.clone(),
        )),
        LlmError::OutputTruncated { .. } => Some((
            PlanIssue {
                pointer: String::new(),
                message: "the answer was cut off at the token limit: give a shorter plan (fewer steps, shorter why)".into(),
            },
            String::new(),
        )),
        LlmError::BudgetExhausted { last, .. } => bad_output(last),
        _ => None,
    }
}

/// The repair request: the exact problems, then what to do.
pub fn repair_text(issues: &[PlanIssue]) -> String {
    let mut s = String::from("That answer is not a valid plan:\n");
    for i in issues.iter().take(12) {
        let at = if i.pointer.is_empty() {
            "/"
        } else {
            &i.pointer
        };
        s.push_str(&format!("- {at}: {}\n", clip_line(&i.message, 300)));
    }
    if issues.len() > 12 {
        s.push_str(&format!("- … and {} more\n", issues.len() - 12));
    }
    s.push_str(
        "Answer again with the whole corrected plan in the same JSON format, using only the \
         listed actions and argument names.",
    );
    s
}

/// Identifies a set of problems regardless of order, to notice a model repeating itself.
pub fn fingerprint(issues: &[PlanIssue]) -> String {
    let mut lines: Vec<String> = issues.iter().map(ToString::to_string).collect();
    lines.sort();
    let h = blake3::hash(lines.join("\n").as_bytes());
    h.to_hex()[..16].to_owned()
}

fn clip_chars(s: &str, n: usize) -> String {
    match s.char_indices().nth(n) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_ignores_order() {
        let a = PlanIssue {
            pointer: "/steps/0".into(),
            message: "x".into(),
        };
        let b = PlanIssue {
            pointer: "/steps/1".into(),
            message: "y".into(),
        };
        assert_eq!(
            fingerprint(&[a.clone(), b.clone()]),
            fingerprint(&[b.clone(), a.clone()])
        );
        assert_ne!(fingerprint(std::slice::from_ref(&a)), fingerprint(&[a, b]));
    }

    #[test]
    fn repair_text_lists_problems() {
        let t = repair_text(&[PlanIssue {
            pointer: "/steps/0/args".into(),
            message: "unknown field `pth`, expected one of `path`".into(),
        }]);
        assert!(t.contains("- /steps/0/args: unknown field `pth`"), "{t}");
        assert!(t.ends_with("argument names."));
    }
}
