//! A small in-process aggregate of every try, per provider and model, for `/metrics` and
//! `kernos models`. The per-call figures the caller journals are in the response itself.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::Serialize;

use crate::types::Attempt;

/// Totals for one provider/model since the router was built.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct ModelStats {
    /// Provider name.
    pub provider: String,
    /// Model asked for.
    pub model: String,
    /// Tries made (successful or not).
    pub calls: u64,
    /// Tries that failed.
    pub errors: u64,
    /// Prompt tokens.
    pub input_tokens: u64,
    /// Completion tokens.
    pub output_tokens: u64,
    /// Cost in US dollars.
    pub cost_usd: f64,
    /// Sum of try latencies (divide by `calls` for the mean).
    pub latency_ms_total: u64,
    /// Secrets replaced in the text sent, summed over tries.
    pub redactions: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Meter {
    by_model: Mutex<BTreeMap<(String, String), ModelStats>>,
}

impl Meter {
    pub(crate) fn record(&self, a: &Attempt) {
        // A poisoned lock only means another thread panicked mid-update of plain counters;
        // the figures are still usable.
        let mut m = self
            .by_model
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let s = m
            .entry((a.provider.clone(), a.model.clone()))
            .or_insert_with(|| ModelStats {
                provider: a.provider.clone(),
                model: a.model.clone(),
                ..ModelStats::default()
            });
        s.calls += 1;
        s.errors += u64::from(a.error.is_some());
        s.input_tokens += a.usage.input_tokens;
        s.output_tokens += a.usage.output_tokens;
        s.cost_usd += a.cost_usd;
        s.latency_ms_total += a.latency_ms;
        s.redactions += u64::from(a.redactions);
    }

    pub(crate) fn snapshot(&self) -> Vec<ModelStats> {
        self.by_model
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values()
            .cloned()
            .collect()
    }
}
