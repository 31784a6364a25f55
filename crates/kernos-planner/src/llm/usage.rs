//! Metering: what is journaled for each model try and each request that reached the model
//! tier, and the summaries `kernos usage` and the daemon's metrics show.

use std::collections::BTreeMap;

use kernos_core::Event;
use kernos_core::event::kind;
use kernos_core::prom::{Kind, Writer};
use kernos_llm::{Attempt, ModelStats};
use serde::Serialize;
use serde_json::{Value, json};

use super::cache::CacheStats;
use super::planned::{Planned, Source};

/// The `llm.call` payload for one try. `purpose`: `plan`, `agent`, `probe`.
pub fn call_payload(a: &Attempt, purpose: &str, cache: &str) -> Value {
    json!({
        "provider": a.provider,
        "model": a.model,
        "purpose": purpose,
        "mechanism": a.mechanism,
        "input_tokens": a.usage.input_tokens,
        "output_tokens": a.usage.output_tokens,
        "estimated": a.usage.estimated,
        "cost_usd": a.cost_usd,
        "latency_ms": a.latency_ms,
        "error": a.error,
        "cache": cache,
        "redactions": a.redactions,
    })
}

/// The `llm.plan` payload for a request that reached the model tier.
pub fn plan_payload(p: &Planned, request: &str) -> Value {
    let (source, provider, model) = match &p.source {
        Source::Offline => ("offline", None, None),
        Source::Cache => ("cache", None, None),
        Source::Model { provider, model } => ("model", Some(provider), Some(model)),
    };
    json!({
        "request": request,
        "source": source,
        "provider": provider,
        "model": model,
        "cache": p.cache.as_str(),
        "lane": p.lane,
        "calls": p.report.as_ref().map_or(0, |r| r.calls),
        "repairs": p.report.as_ref().map_or(0, |r| r.repairs),
        "tokens": p.report.as_ref().map_or(0, |r| r.tokens()),
        "cost_usd": p.report.as_ref().map_or(0.0, |r| r.cost_usd()),
        "notice": p.notice,
    })
}

/// The events to journal for a planned request: one `llm.call` per try, then `llm.plan`.
/// Empty when the model tier was not involved.
pub fn events_for(p: &Planned, request: &str) -> Vec<(&'static str, Value)> {
    if !p.used_llm_tier() {
        return Vec::new();
    }
    let mut out: Vec<(&'static str, Value)> = Vec::new();
    if let Some(r) = &p.report {
        for a in &r.attempts {
            out.push((kind::LLM_CALL, call_payload(a, "plan", p.cache.as_str())));
        }
    }
    out.push((kind::LLM_PLAN, plan_payload(p, request)));
    out
}

/// Totals for one provider/model.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct ModelUsage {
    /// Provider.
    pub provider: String,
    /// Model.
    pub model: String,
    /// Tries.
    pub calls: u64,
    /// Failed tries.
    pub errors: u64,
    /// Prompt tokens.
    pub input_tokens: u64,
    /// Completion tokens.
    pub output_tokens: u64,
    /// US dollars.
    pub cost_usd: f64,
    /// Mean latency of a try, ms.
    pub mean_latency_ms: u64,
}

/// Model tries charged to one organisation.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct OrgUsage {
    /// The organisation.
    pub org: String,
    /// Tries.
    pub calls: u64,
    /// Prompt tokens.
    pub input_tokens: u64,
    /// Completion tokens.
    pub output_tokens: u64,
    /// Cost, US dollars.
    pub cost_usd: f64,
}

/// What `kernos usage` shows.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct UsageSummary {
    /// Per provider/model, by cost then name.
    pub models: Vec<ModelUsage>,
    /// Per organisation, by name.
    pub orgs: Vec<OrgUsage>,
    /// Secrets redacted from prompts before they left the machine.
    pub redactions: u64,
    /// Requests that reached the model tier.
    pub requests: u64,
    /// Of those, answered from the cache.
    pub cache_hits: u64,
    /// Looked up and not found.
    pub cache_misses: u64,
    /// `hits / (hits + misses)`.
    pub cache_hit_rate: f64,
    /// Answered by a model.
    pub from_model: u64,
    /// Fell back to the offline planner.
    pub fell_back: u64,
    /// Total cost, US dollars.
    pub cost_usd: f64,
}

/// Summarises `llm.call` and `llm.plan` events (other kinds are ignored).
pub fn summarise<'a>(events: impl IntoIterator<Item = &'a Event>) -> UsageSummary {
    let mut by: BTreeMap<(String, String), (ModelUsage, u64)> = BTreeMap::new();
    let mut orgs: BTreeMap<String, OrgUsage> = BTreeMap::new();
    let mut s = UsageSummary::default();
    for e in events {
        let p = &e.payload;
        let str_of = |k: &str| p.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
        let num = |k: &str| p.get(k).and_then(Value::as_u64).unwrap_or(0);
        match e.kind.as_str() {
            kind::LLM_CALL => {
                let key = (str_of("provider"), str_of("model"));
                let (m, lat) = by.entry(key.clone()).or_insert_with(|| {
                    (
                        ModelUsage {
                            provider: key.0.clone(),
                            model: key.1.clone(),
                            ..ModelUsage::default()
                        },
                        0,
                    )
                });
                m.calls += 1;
                m.errors += u64::from(p.get("error").is_some_and(|e| !e.is_null()));
                m.input_tokens += num("input_tokens");
                m.output_tokens += num("output_tokens");
                m.cost_usd += p.get("cost_usd").and_then(Value::as_f64).unwrap_or(0.0);
                *lat += num("latency_ms");
                let o = orgs.entry(e.org.clone()).or_insert_with(|| OrgUsage {
                    org: e.org.clone(),
                    ..OrgUsage::default()
                });
                o.calls += 1;
                o.input_tokens += num("input_tokens");
                o.output_tokens += num("output_tokens");
                o.cost_usd += p.get("cost_usd").and_then(Value::as_f64).unwrap_or(0.0);
                s.redactions += num("redactions");
            }
            kind::LLM_PLAN => {
                s.requests += 1;
                match p.get("cache").and_then(Value::as_str) {
                    Some("hit") => s.cache_hits += 1,
                    Some("miss") => s.cache_misses += 1,
                    _ => {}
                }
                match p.get("source").and_then(Value::as_str) {
                    Some("model") => s.from_model += 1,
                    Some("offline") => s.fell_back += 1,
                    _ => {}
                }
            }
            _ => {}
        }
    }
    s.orgs = orgs.into_values().collect();
    s.models = by
        .into_values()
        .map(|(mut m, lat)| {
            m.mean_latency_ms = lat.checked_div(m.calls).unwrap_or(0);
            m
        })
        .collect();
    s.models.sort_by(|a, b| {
        b.cost_usd
            .total_cmp(&a.cost_usd)
            .then(a.provider.cmp(&b.provider))
    });
    s.cost_usd = s.models.iter().map(|m| m.cost_usd).sum();
    let looked = s.cache_hits + s.cache_misses;
    s.cache_hit_rate = if looked == 0 {
        0.0
    } else {
        s.cache_hits as f64 / looked as f64
    };
    s
}

/// A metric family: name, type, help, value per provider/model.
type Family = (&'static str, Kind, &'static str, fn(&ModelStats) -> f64);

/// Prometheus text for the daemon's `/metrics`: per provider/model tries, errors, tokens,
/// cost and latency (from the router's in-process counters), the plan cache's hits, misses
/// and size, and each provider's fair scheduler (queue, waits, tokens per client).
pub fn prometheus(
    models: &[ModelStats],
    cache: Option<&CacheStats>,
    sched: &[kernos_llm::SchedStats],
) -> String {
    let mut w = Writer::new();
    let families: [Family; 7] = [
        (
            "kernos_llm_calls_total",
            Kind::Counter,
            "Language-model tries.",
            |m| m.calls as f64,
        ),
        (
            "kernos_llm_errors_total",
            Kind::Counter,
            "Language-model tries that failed.",
            |m| m.errors as f64,
        ),
        (
            "kernos_llm_input_tokens_total",
            Kind::Counter,
            "Prompt tokens.",
            |m| m.input_tokens as f64,
        ),
        (
            "kernos_llm_output_tokens_total",
            Kind::Counter,
            "Completion tokens.",
            |m| m.output_tokens as f64,
        ),
        (
            "kernos_llm_cost_usd_total",
            Kind::Counter,
            "Cost in US dollars from the configured prices.",
            |m| m.cost_usd,
        ),
        (
            "kernos_llm_latency_ms_total",
            Kind::Counter,
            "Sum of try latencies in milliseconds.",
            |m| m.latency_ms_total as f64,
        ),
        (
            "kernos_llm_redactions_total",
            Kind::Counter,
            "Secrets redacted from text sent to models.",
            |m| m.redactions as f64,
        ),
    ];
    for (name, kind, help, f) in families {
        w.family(name, kind, help);
        for m in models {
            w.sample(
                name,
                &[("provider", &m.provider), ("model", &m.model)],
                f(m),
            );
        }
    }
    if let Some(c) = cache {
        w.single(
            "kernos_plan_cache_hits_total",
            Kind::Counter,
            "Plan cache hits.",
            c.hits,
        );
        w.single(
            "kernos_plan_cache_misses_total",
            Kind::Counter,
            "Plan cache misses.",
            c.misses,
        );
        w.single(
            "kernos_plan_cache_entries",
            Kind::Gauge,
            "Plans in the cache.",
            c.entries,
        );
        w.single(
            "kernos_plan_cache_hit_ratio",
            Kind::Gauge,
            "Plan cache hits / lookups.",
            c.hit_rate(),
        );
    }
    scheduler_families(&mut w, sched);
    w.finish()
}

/// The scheduler's series: per provider (slots, running, queued, wait) and per client of it
/// (queued, tokens served, wait).
fn scheduler_families(w: &mut Writer, sched: &[kernos_llm::SchedStats]) {
    type P = fn(&kernos_llm::SchedStats) -> f64;
    let providers: [(&str, Kind, &str, P); 7] = [
        (
            "kernos_llm_sched_slots",
            Kind::Gauge,
            "Calls a provider runs at once.",
            |p| p.slots as f64,
        ),
        (
            "kernos_llm_sched_running",
            Kind::Gauge,
            "Calls running at a provider.",
            |p| p.in_flight as f64,
        ),
        (
            "kernos_llm_sched_queued",
            Kind::Gauge,
            "Calls waiting for a slot of a provider.",
            |p| p.queued as f64,
        ),
        (
            "kernos_llm_sched_wait_seconds_total",
            Kind::Counter,
            "Time calls waited for a slot.",
            |p| p.wait_ms_total as f64 / 1000.0,
        ),
        (
            "kernos_llm_sched_dispatched_total",
            Kind::Counter,
            "Tries given a slot.",
            |p| p.dispatched as f64,
        ),
        (
            "kernos_llm_sched_paused_total",
            Kind::Counter,
            "Times a provider's Retry-After or 429 paused its dispatch.",
            |p| p.paused as f64,
        ),
        (
            "kernos_llm_sched_preempted_total",
            Kind::Counter,
            "Streamed answers stopped at the end of a time slice so another client could go.",
            |p| p.preempted as f64,
        ),
    ];
    for (name, kind, help, f) in providers {
        w.family(name, kind, help);
        for p in sched {
            w.sample(name, &[("provider", &p.provider)], f(p));
        }
    }
    wait_histogram(w, sched);
    type C = fn(&kernos_llm::ClientStats) -> f64;
    let clients: [(&str, Kind, &str, C); 4] = [
        (
            "kernos_llm_client_queued",
            Kind::Gauge,
            "A client's calls waiting for a slot.",
            |c| c.queued as f64,
        ),
        (
            "kernos_llm_client_input_tokens_total",
            Kind::Counter,
            "Prompt tokens served to a client.",
            |c| c.input_tokens as f64,
        ),
        (
            "kernos_llm_client_output_tokens_total",
            Kind::Counter,
            "Answer tokens served to a client.",
            |c| c.output_tokens as f64,
        ),
        (
            "kernos_llm_client_wait_seconds_total",
            Kind::Counter,
            "Time a client's calls waited for a slot.",
            |c| c.wait_ms_total as f64 / 1000.0,
        ),
    ];
    for (name, kind, help, f) in clients {
        w.family(name, kind, help);
        for p in sched {
            for c in &p.clients {
                w.sample(
                    name,
                    &[("provider", &p.provider), ("client", &c.client)],
                    f(c),
                );
            }
        }
    }
}

/// How long tries waited for a slot, per provider, as a Prometheus histogram.
fn wait_histogram(w: &mut Writer, sched: &[kernos_llm::SchedStats]) {
    const NAME: &str = "kernos_llm_sched_wait_seconds";
    w.family(NAME, Kind::Histogram, "How long tries waited for a slot.");
    for p in sched {
        for (bound, count) in &p.wait_buckets {
            let le = if *bound == u64::MAX {
                "+Inf".to_owned()
            } else {
                (*bound as f64 / 1000.0).to_string()
            };
            w.sample(
                "kernos_llm_sched_wait_seconds_bucket",
                &[("provider", &p.provider), ("le", &le)],
                count,
            );
        }
        let l = [("provider", p.provider.as_str())];
        w.sample(
            "kernos_llm_sched_wait_seconds_sum",
            &l,
            p.wait_ms_total as f64 / 1000.0,
        );
        w.sample("kernos_llm_sched_wait_seconds_count", &l, p.dispatched);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kernos_core::Actor;

    fn ev(kind: &str, payload: Value) -> Event {
        Event {
            seq: 1,
            ts_ms: 0,
            kind: kind.into(),
            actor: Actor::user("t"),
            org: "local".into(),
            action: None,
            tx: None,
            payload,
            hash: String::new(),
        }
    }

    #[test]
    fn summary_and_metrics() {
        let evs = vec![
            ev(
                kind::LLM_CALL,
                json!({"provider": "a", "model": "m", "input_tokens": 100, "output_tokens": 20, "cost_usd": 0.5, "latency_ms": 30, "error": null}),
            ),
            ev(
                kind::LLM_CALL,
                json!({"provider": "a", "model": "m", "input_tokens": 50, "output_tokens": 0, "cost_usd": 0.25, "latency_ms": 10, "error": "boom"}),
            ),
            Event {
                org: "acme".into(),
                ..ev(
                    kind::LLM_CALL,
                    json!({"provider": "b", "model": "n", "input_tokens": 7, "output_tokens": 3, "cost_usd": 0.0, "latency_ms": 5, "error": null, "redactions": 2}),
                )
            },
            ev(kind::LLM_PLAN, json!({"source": "model", "cache": "miss"})),
            ev(kind::LLM_PLAN, json!({"source": "cache", "cache": "hit"})),
            ev(kind::LLM_PLAN, json!({"source": "cache", "cache": "hit"})),
            ev(kind::LLM_PLAN, json!({"source": "offline", "cache": "off"})),
            ev("step.started", json!({})),
        ];
        let s = summarise(&evs);
        assert_eq!(s.models.len(), 2);
        let m = s.models.iter().find(|m| m.provider == "a").unwrap();
        assert_eq!(
            (m.calls, m.errors, m.input_tokens, m.output_tokens),
            (2, 1, 150, 20)
        );
        assert_eq!(m.mean_latency_ms, 20);
        assert!((s.cost_usd - 0.75).abs() < 1e-12);
        assert_eq!(
            (
                s.requests,
                s.cache_hits,
                s.cache_misses,
                s.from_model,
                s.fell_back
            ),
            (4, 2, 1, 1, 1)
        );
        assert!((s.cache_hit_rate - 2.0 / 3.0).abs() < 1e-12);
        let by_org: Vec<(&str, u64, u64, u64)> = s
            .orgs
            .iter()
            .map(|o| (o.org.as_str(), o.calls, o.input_tokens, o.output_tokens))
            .collect();
        assert_eq!(by_org, [("acme", 1, 7, 3), ("local", 2, 150, 20)]);
        assert_eq!(s.redactions, 2);

        let text = prometheus(
            &[ModelStats {
                provider: "a\"b".into(),
                model: "m".into(),
                calls: 3,
                ..ModelStats::default()
            }],
            Some(&CacheStats {
                entries: 4,
                hits: 1,
                misses: 3,
            }),
            &[kernos_llm::SchedStats {
                provider: "local".into(),
                slots: 4,
                in_flight: 1,
                queued: 2,
                max_in_flight: 4,
                dispatched: 9,
                wait_ms_total: 1500,
                wait_ms_max: 700,
                paused: 0,
                preempted: 2,
                wait_buckets: vec![(10, 5), (50, 8), (u64::MAX, 9)],
                clients: vec![kernos_llm::ClientStats {
                    client: "acme".into(),
                    queued: 2,
                    in_flight: 1,
                    calls: 9,
                    input_tokens: 900,
                    output_tokens: 120,
                    wait_ms_total: 1500,
                    counter: 1140,
                }],
                ..Default::default()
            }],
        );
        assert!(
            text.contains("kernos_llm_calls_total{provider=\"a\\\"b\",model=\"m\"} 3"),
            "{text}"
        );
        assert!(text.contains("kernos_plan_cache_hit_ratio 0.25"), "{text}");
        assert!(
            text.contains("kernos_llm_sched_queued{provider=\"local\"} 2"),
            "{text}"
        );
        assert!(
            text.contains(
                "kernos_llm_client_output_tokens_total{provider=\"local\",client=\"acme\"} 120"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "kernos_llm_client_wait_seconds_total{provider=\"local\",client=\"acme\"} 1.5"
            ),
            "{text}"
        );
        for line in [
            "kernos_llm_sched_preempted_total{provider=\"local\"} 2",
            "kernos_llm_sched_wait_seconds_bucket{provider=\"local\",le=\"0.05\"} 8",
            "kernos_llm_sched_wait_seconds_bucket{provider=\"local\",le=\"+Inf\"} 9",
            "kernos_llm_sched_wait_seconds_count{provider=\"local\"} 9",
        ] {
            assert!(text.contains(line), "no {line} in {text}");
        }
    }
}
