//! What the cascade answers: the outcome, who answered, what the plan cache did and the model
//! job's report. Shared by the cascade, which builds it, and metering, which journals it.

use serde::Serialize;

use super::job::LlmReport;
use crate::Outcome;

/// Who answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "source", rename_all = "snake_case")]
pub enum Source {
    /// The offline planner (confident, or no model configured, or the model path failed).
    Offline,
    /// The plan cache (a model's plan from before).
    Cache,
    /// A model, just now.
    Model {
        /// Provider.
        provider: String,
        /// Model.
        model: String,
    },
}

/// What the plan cache did for this request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CacheUse {
    /// Not consulted (offline answered, no model configured, or untrusted data).
    NotUsed,
    /// Disabled (`--no-cache`, or no cache configured).
    Off,
    /// Found.
    Hit,
    /// Not found.
    Miss,
}

impl CacheUse {
    /// Lower-case name (journal).
    pub fn as_str(self) -> &'static str {
        match self {
            CacheUse::NotUsed => "not_used",
            CacheUse::Off => "off",
            CacheUse::Hit => "hit",
            CacheUse::Miss => "miss",
        }
    }
}

/// The cascade's answer.
#[derive(Debug)]
pub struct Planned {
    /// The outcome, in the offline planner's terms.
    pub outcome: Outcome,
    /// Who answered.
    pub source: Source,
    /// What the cache did.
    pub cache: CacheUse,
    /// The lane asked, when a model was asked.
    pub lane: Option<String>,
    /// The model job, when one ran (attempts, tokens, cost, repairs).
    pub report: Option<LlmReport>,
    /// One line for the person when the model path was tried and did not answer, e.g.
    /// "every language-model provider failed …; the offline planner answered".
    pub notice: Option<String>,
    /// The offline planner's confidence in its own plan, when it had one.
    pub offline_confidence: Option<f32>,
    /// Words of the request the offline plan did not explain (its answer only): a front end
    /// shows them with a read-only plan below the bar, and `kernos plan --json` reports them.
    pub unused: Vec<String>,
}

impl Planned {
    /// Whether the model tier was involved (cache or model): the cases worth journaling.
    pub fn used_llm_tier(&self) -> bool {
        self.cache != CacheUse::NotUsed || self.report.is_some()
    }
}
