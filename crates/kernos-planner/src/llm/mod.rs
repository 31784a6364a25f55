//! The language-model tier of the planner: prompts from the tool registry, a strict answer
//! format, validation with the catalog's own validator, a bounded repair loop, the
//! offline → cache → model → offline cascade, the plan cache, agent mode and metering.
//!
//! ```no_run
//! use std::sync::Arc;
//! use kernos_planner::llm::{Cascade, HostFacts, PlanCache, PlanOptions};
//! use kernos_planner::PlanContext;
//!
//! let cfg: kernos_llm::LlmConfig = toml::from_str(r#"
//!     [[providers]]
//!     name = "local"
//!     base_url = "http://127.0.0.1:8080/v1"
//!     model = "qwen2.5-7b-instruct"
//! "#).unwrap();
//! let registry = Arc::new(kernos_tools::Registry::builtin());
//! let cascade = Cascade::new(registry, cfg, HostFacts::detect())
//!     .with_cache(PlanCache::open("/tmp/plan-cache.db").unwrap());
//! let planned = cascade.plan(
//!     "why is nginx failing?",
//!     &PlanContext::new("/home/u", "/home/u"),
//!     &PlanOptions::default(),
//! );
//! println!("{:?} from {:?}", planned.outcome, planned.source);
//! ```
//!
//! The model never sets risk, approval or sandboxing: a plan from here is an ordinary
//! [`kernos_core::Plan`] that the engine assesses like any other. Untrusted text shown to a
//! model (see [`DataBlock`]) is wrapped as data, and the plan is marked
//! [`kernos_core::Plan::untrusted_input`] so its changes always need a person's approval.

mod agent;
mod answer;
mod cache;
mod cascade;
mod job;
mod planned;
mod prompt;
mod select;
mod usage;

pub use agent::{
    Agent, AgentHost, AgentReport, AgentStatus, Budget, HostOutcome, MAX_STEP_OBSERVATION, Memory,
    Next, Observation, Stop, Thought,
};
pub use answer::{Answer, output_schema, output_schema_for, read_answer};
pub use cache::{
    CacheError, CacheKey, CacheStats, Cached, DEFAULT_CAPACITY, DEFAULT_TTL, PlanCache, normalise,
};
pub use cascade::{COMPLEX_SCORE, Cascade, DEFAULT_THRESHOLD, PlanOptions, complexity};
pub use job::{
    ChatModel, DEFAULT_MAX_REPAIRS, HandleModel, Hints, JobSpec, LlmFailure, LlmPlanner, LlmReport,
    ModelPlan, PLAN_MAX_TOKENS, PlanJob, fingerprint, repair_text,
};
pub use planned::{CacheUse, Planned, Source};
pub use prompt::{
    DataBlock, HostFacts, MAX_DATA_CHARS, PROMPT_VERSION, action_line, machine_line, plan_message,
    sensitive_texts, system_prompt, user_message, wrap_data,
};
pub use select::{EXAMPLES, Example, Selection, Selector};
pub use usage::{
    ModelUsage, UsageSummary, call_payload, events_for, plan_payload, prometheus, summarise,
};
