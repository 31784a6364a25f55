//! The per-organisation, per-day usage read model behind GET /v1/state/usage/daily: actions
//! ended, run units, model tokens and cost by provider/model, plan-cache hits and misses, and
//! request latency (from `action.submitted` to `action.finished`).
//!
//! Built once at start from the journal (the last [`KEEP_DAYS`] days) and kept current from
//! the published stream on the writer thread, like `limits::Usage`, so a request never reads
//! the journal. Bounded: at most [`KEEP_DAYS`] days per organisation (the oldest dropped), at
//! most [`MAX_MODELS`] provider/model rows per day, at most [`MAX_OPEN`] submitted actions
//! waiting for their end, and latencies kept as a fixed-size histogram per day.

use std::collections::{BTreeMap, HashMap};

use kernos_core::Event;
use kernos_core::event::kind;
use kernos_journal::{Journal, JournalError, Query};
use serde::Deserialize;
use serde_json::Value;

use crate::Published;
use crate::limits::{DAY_MS, date_of_day};
use crate::wire::{ModelDay, UsageDay};

/// Days kept per organisation (the API answers at most 366).
pub(crate) const KEEP_DAYS: usize = 400;
/// Provider/model rows per day; further ones are added to an `other`/`other` row.
const MAX_MODELS: usize = 64;
/// Submitted actions remembered until they end; beyond it the oldest are forgotten (their
/// latency is then not counted). Actions queued or running at once are far fewer.
const MAX_OPEN: usize = 50_000;

/// Request latencies of one day as a log-linear histogram: one bucket per millisecond below
/// 64 ms, then 16 buckets per power of two (each at most 1/16 of its lower bound wide). A
/// percentile is answered as its bucket's midpoint, within about 3 % of the true value, and a
/// day holds at most a few hundred counters whatever its traffic — a histogram rather than a
/// sample, so it is exact in what it counts and needs no randomness.
#[derive(Debug, Default, Clone)]
struct Latencies {
    counts: BTreeMap<u16, u64>,
    n: u64,
}

/// The bucket of a latency.
fn bucket(ms: u64) -> u16 {
    if ms < 64 {
        return ms as u16;
    }
    let e = 63 - ms.leading_zeros(); // ⌊log2 ms⌋, 6..=63
    let sub = (ms >> (e - 4)) & 15;
    (64 + (e - 6) * 16 + sub as u32) as u16
}

/// The value a bucket stands for: itself below 64 ms, else the middle of its range.
fn bucket_value(b: u16) -> u64 {
    if b < 64 {
        return u64::from(b);
    }
    let e = u32::from(b - 64) / 16 + 6;
    let sub = u64::from(b - 64) % 16;
    let width = 1u64 << (e - 4);
    ((16 + sub) << (e - 4)) + width / 2
}

impl Latencies {
    fn add(&mut self, ms: u64) {
        *self.counts.entry(bucket(ms)).or_insert(0) += 1;
        self.n += 1;
    }

    /// The `q` quantile (nearest rank), if anything was counted.
    fn quantile(&self, q: f64) -> Option<u64> {
        if self.n == 0 {
            return None;
        }
        let rank = ((q * self.n as f64).ceil() as u64).clamp(1, self.n);
        let mut seen = 0;
        for (b, c) in &self.counts {
            seen += c;
            if seen >= rank {
                return Some(bucket_value(*b));
            }
        }
        self.counts.keys().next_back().map(|b| bucket_value(*b))
    }
}

/// One organisation's day.
#[derive(Debug, Default, Clone)]
struct Day {
    actions: u64,
    units: f64,
    tokens_in: u64,
    tokens_out: u64,
    cost_usd: f64,
    cache_hits: u64,
    cache_misses: u64,
    latency: Latencies,
    models: HashMap<(String, String), ModelDay>,
}

impl Day {
    fn view(&self, day: i64) -> UsageDay {
        let mut models: Vec<ModelDay> = self.models.values().cloned().collect();
        models.sort_by(|a, b| {
            b.cost_usd
                .total_cmp(&a.cost_usd)
                .then_with(|| (&a.provider, &a.model).cmp(&(&b.provider, &b.model)))
        });
        UsageDay {
            day: date_of_day(day),
            actions: self.actions,
            units: self.units,
            tokens_in: self.tokens_in,
            tokens_out: self.tokens_out,
            cost_usd: self.cost_usd,
            cache_hits: self.cache_hits,
            cache_misses: self.cache_misses,
            latency_p50_ms: self.latency.quantile(0.50),
            latency_p95_ms: self.latency.quantile(0.95),
            models,
        }
    }
}

/// What the read model takes from an event's payload; every field is any JSON value, read
/// leniently (a missing or odd field counts as zero). Parsed from the published JSON without
/// building the rest of the payload.
#[derive(Debug, Default, Deserialize)]
struct Fields {
    #[serde(default)]
    units: Value,
    #[serde(default)]
    provider: Value,
    #[serde(default)]
    model: Value,
    #[serde(default)]
    input_tokens: Value,
    #[serde(default)]
    output_tokens: Value,
    #[serde(default)]
    cost_usd: Value,
    #[serde(default)]
    cache: Value,
}

impl Fields {
    /// The same fields of a stored event's payload.
    fn of(p: &Value) -> Self {
        let f = |k: &str| p.get(k).cloned().unwrap_or(Value::Null);
        Fields {
            units: f("units"),
            provider: f("provider"),
            model: f("model"),
            input_tokens: f("input_tokens"),
            output_tokens: f("output_tokens"),
            cost_usd: f("cost_usd"),
            cache: f("cache"),
        }
    }
}

/// A published event as the read model reads it.
#[derive(Deserialize)]
struct View {
    org: String,
    ts_ms: i64,
    #[serde(default)]
    action: Option<String>,
    #[serde(default)]
    payload: Fields,
}

/// Whether the read model reads events of this kind.
fn concerns(k: &str) -> bool {
    matches!(
        k,
        kind::ACTION_SUBMITTED | kind::ACTION_FINISHED | kind::LLM_CALL | kind::LLM_PLAN
    )
}

/// Per organisation and UTC day: actions, units, model use, cache, latency.
#[derive(Debug, Default)]
pub(crate) struct Daily {
    orgs: HashMap<String, BTreeMap<i64, Day>>,
    /// When each action not yet ended was submitted. Keyed by action id, which is a ULID:
    /// in key order is in submission order, so the first key is the oldest to forget.
    open: BTreeMap<String, i64>,
}

impl Daily {
    /// The last [`KEEP_DAYS`] days of the journal up to `head` (events after it are
    /// published to [`Daily::on_published`]).
    pub(crate) fn load(j: &Journal, head: u64, now_ms: i64) -> Result<Self, JournalError> {
        let mut d = Daily::default();
        let since = (now_ms.div_euclid(DAY_MS) - KEEP_DAYS as i64) * DAY_MS;
        // Submissions before their ends: each prefix is read in sequence order.
        for prefix in ["action.", "llm."] {
            let q = Query {
                kind_prefix: Some(prefix.into()),
                since_ms: Some(since),
                until: Some(head),
                ..Query::default()
            };
            j.for_each(&q, |e| {
                d.apply_event(&e);
                true
            })?;
        }
        Ok(d)
    }

    /// Applies a stored event (at start).
    fn apply_event(&mut self, e: &Event) {
        if concerns(&e.kind) {
            let action = e.action.map(|a| a.to_string());
            self.apply(
                &e.kind,
                &e.org,
                e.ts_ms,
                action.as_deref(),
                &Fields::of(&e.payload),
            );
        }
    }

    /// Applies a published submission or model event (on the writer thread: parses only the
    /// fields it reads). `action.finished` comes through [`Daily::finished`]: the worker
    /// parses that large event once for every read model.
    pub(crate) fn on_published(&mut self, p: &Published) {
        if !concerns(&p.kind) || p.kind == kind::ACTION_FINISHED {
            return;
        }
        if let Ok(v) = serde_json::from_str::<View>(&p.json) {
            self.apply(&p.kind, &v.org, v.ts_ms, v.action.as_deref(), &v.payload);
        }
    }

    fn apply(&mut self, k: &str, org: &str, ts_ms: i64, action: Option<&str>, f: &Fields) {
        match k {
            kind::ACTION_SUBMITTED => {
                if let Some(a) = action {
                    self.open.insert(a.to_owned(), ts_ms);
                    while self.open.len() > MAX_OPEN {
                        self.open.pop_first();
                    }
                }
            }
            kind::ACTION_FINISHED => {
                self.finished(org, ts_ms, action, f.units.as_f64().unwrap_or(0.0));
            }
            kind::LLM_CALL => {
                let Some(day) = self.day(org, ts_ms) else {
                    return;
                };
                let tin = f.input_tokens.as_u64().unwrap_or(0);
                let tout = f.output_tokens.as_u64().unwrap_or(0);
                let cost = f.cost_usd.as_f64().unwrap_or(0.0);
                day.tokens_in += tin;
                day.tokens_out += tout;
                day.cost_usd += cost;
                let name = |v: &Value| v.as_str().unwrap_or("").to_owned();
                let mut key = (name(&f.provider), name(&f.model));
                if !day.models.contains_key(&key) && day.models.len() >= MAX_MODELS {
                    key = ("other".into(), "other".into());
                }
                let m = day.models.entry(key).or_insert_with_key(|(p, m)| ModelDay {
                    provider: p.clone(),
                    model: m.clone(),
                    ..ModelDay::default()
                });
                m.calls += 1;
                m.tokens_in += tin;
                m.tokens_out += tout;
                m.cost_usd += cost;
            }
            kind::LLM_PLAN => {
                let Some(day) = self.day(org, ts_ms) else {
                    return;
                };
                match f.cache.as_str() {
                    Some("hit") => day.cache_hits += 1,
                    Some("miss") => day.cache_misses += 1,
                    _ => {}
                }
            }
            _ => {}
        }
    }

    /// Counts an action of `org` that ended at `ts_ms` (`action.finished`), charged `units`;
    /// its latency if its submission was seen.
    pub(crate) fn finished(&mut self, org: &str, ts_ms: i64, action: Option<&str>, units: f64) {
        let latency = action
            .and_then(|a| self.open.remove(a))
            .map(|at| (ts_ms - at).max(0) as u64);
        if let Some(day) = self.day(org, ts_ms) {
            day.actions += 1;
            day.units += units;
            if let Some(ms) = latency {
                day.latency.add(ms);
            }
        }
    }

    /// The day of `ts_ms` for `org`, made if needed; `None` when it is older than every day
    /// kept (the table is full of newer ones).
    fn day(&mut self, org: &str, ts_ms: i64) -> Option<&mut Day> {
        let key = ts_ms.div_euclid(DAY_MS);
        if !self.orgs.contains_key(org) {
            self.orgs.insert(org.to_owned(), BTreeMap::new());
        }
        let days = self.orgs.get_mut(org)?;
        if !days.contains_key(&key) {
            if days.len() >= KEEP_DAYS && days.keys().next().is_some_and(|first| key < *first) {
                return None;
            }
            days.insert(key, Day::default());
            while days.len() > KEEP_DAYS {
                days.pop_first();
            }
        }
        days.get_mut(&key)
    }

    /// `days` UTC days of `org` ending with the day of `now_ms`, oldest first, every day
    /// present (zeros where nothing happened).
    pub(crate) fn window(&self, org: &str, now_ms: i64, days: usize) -> Vec<UsageDay> {
        let today = now_ms.div_euclid(DAY_MS);
        let table = self.orgs.get(org);
        (0..days as i64)
            .rev()
            .map(|back| {
                let d = today - back;
                match table.and_then(|t| t.get(&d)) {
                    Some(day) => day.view(d),
                    None => Day::default().view(d),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_709_251_200_000; // 2024-03-01T00:00:00Z

    fn fields(v: serde_json::Value) -> Fields {
        Fields::of(&v)
    }

    #[test]
    fn buckets_are_exact_below_64_ms_and_within_3_percent_above() {
        for ms in 0..64 {
            assert_eq!(bucket_value(bucket(ms)), ms);
        }
        let mut last = 0;
        for ms in (64..10_000_000u64)
            .step_by(997)
            .chain([u64::MAX / 2, u64::MAX])
        {
            let b = bucket(ms);
            assert!(b >= last, "buckets grow with the value");
            last = b;
            let v = bucket_value(b) as f64;
            assert!(
                (v - ms as f64).abs() <= ms as f64 / 32.0 + 1.0,
                "{ms} → {v}"
            );
        }
    }

    #[test]
    fn quantiles_take_the_nearest_rank() {
        let mut l = Latencies::default();
        assert_eq!(l.quantile(0.5), None);
        for ms in 1..=100 {
            l.add(ms.min(60));
        }
        assert_eq!(l.quantile(0.5), Some(50));
        assert_eq!(l.quantile(0.95), Some(60));
        let mut one = Latencies::default();
        one.add(1234);
        let v = one.quantile(0.5).unwrap();
        assert_eq!(one.quantile(0.95), Some(v));
        assert!((1200..=1270).contains(&v), "{v}");
    }

    #[test]
    fn a_day_counts_actions_latency_models_and_cache_per_org() {
        let mut d = Daily::default();
        d.apply(
            kind::ACTION_SUBMITTED,
            "acme",
            T0 + 1_000,
            Some("01a"),
            &Fields::default(),
        );
        d.apply(
            kind::ACTION_FINISHED,
            "acme",
            T0 + 1_040,
            Some("01a"),
            &fields(serde_json::json!({"units": 0.5})),
        );
        let call = fields(serde_json::json!({
            "provider": "local", "model": "m", "input_tokens": 100, "output_tokens": 20, "cost_usd": 0.25
        }));
        d.apply(kind::LLM_CALL, "acme", T0 + 5, None, &call);
        d.apply(kind::LLM_CALL, "acme", T0 + 6, None, &call);
        let hit = fields(serde_json::json!({"cache": "hit"}));
        d.apply(kind::LLM_PLAN, "acme", T0 + 7, None, &hit);
        d.apply(kind::LLM_CALL, "globex", T0 + 8, None, &call);

        let w = d.window("acme", T0 + DAY_MS + 1, 3);
        let days: Vec<&str> = w.iter().map(|x| x.day.as_str()).collect();
        assert_eq!(days, ["2024-02-29", "2024-03-01", "2024-03-02"]);
        let day = &w[1];
        assert_eq!((day.actions, day.units), (1, 0.5));
        assert_eq!(
            (day.latency_p50_ms, day.latency_p95_ms),
            (Some(40), Some(40))
        );
        assert_eq!(
            (day.tokens_in, day.tokens_out, day.cost_usd),
            (200, 40, 0.5)
        );
        assert_eq!((day.cache_hits, day.cache_misses), (1, 0));
        assert_eq!(day.models.len(), 1);
        assert_eq!(day.models[0].calls, 2);
        for empty in [&w[0], &w[2]] {
            assert_eq!(empty.actions, 0);
            assert_eq!(empty.latency_p50_ms, None);
            assert!(empty.models.is_empty());
        }
        assert_eq!(d.window("globex", T0, 1)[0].tokens_in, 100);
        assert_eq!(d.window("initech", T0, 1)[0].tokens_in, 0);
    }

    #[test]
    fn the_table_is_bounded() {
        let mut d = Daily::default();
        for i in 0..(KEEP_DAYS as i64 + 50) {
            d.apply(
                kind::LLM_PLAN,
                "acme",
                T0 + i * DAY_MS,
                None,
                &Fields::default(),
            );
        }
        assert_eq!(d.orgs["acme"].len(), KEEP_DAYS);
        // A day older than all kept is not brought back.
        d.apply(kind::LLM_PLAN, "acme", T0, None, &Fields::default());
        assert_eq!(d.orgs["acme"].len(), KEEP_DAYS);
        assert!(!d.orgs["acme"].contains_key(&(T0 / DAY_MS)));
        for i in 0..(MAX_MODELS + 5) {
            let f = fields(serde_json::json!({"provider": "p", "model": format!("m{i}")}));
            d.apply(kind::LLM_CALL, "acme", T0 + 449 * DAY_MS, None, &f);
        }
        let day = &d.window("acme", T0 + 449 * DAY_MS, 1)[0];
        assert_eq!(day.models.len(), MAX_MODELS + 1);
        assert!(
            day.models
                .iter()
                .any(|m| m.model == "other" && m.calls == 5)
        );
        for i in 0..(MAX_OPEN + 10) {
            d.apply(
                kind::ACTION_SUBMITTED,
                "acme",
                T0,
                Some(&format!("{i:08}")),
                &Fields::default(),
            );
        }
        assert_eq!(d.open.len(), MAX_OPEN);
        assert!(!d.open.contains_key("00000000"), "the oldest is forgotten");
    }
}
