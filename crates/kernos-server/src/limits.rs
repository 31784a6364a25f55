//! Small bounded structures for limits and metering: token buckets per key, the idempotency
//! cache, and per-organisation monthly usage.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use kernos_core::ActionId;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A token bucket.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Token buckets per API key. The map holds one entry per key that sent a request, and keys
/// are few (each was created by an admin), so it stays small; idle buckets are dropped anyway
/// when it grows.
#[derive(Debug)]
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    buckets: HashMap<String, Bucket>,
}

impl RateLimiter {
    /// `rate` tokens per second, at most `burst` saved up.
    pub fn new(rate: f64, burst: f64) -> Self {
        RateLimiter {
            rate,
            burst,
            buckets: HashMap::new(),
        }
    }

    /// Changes the rate and burst (a config reload). Saved-up tokens are kept, capped at the
    /// new burst, so lowering a limit takes effect at once and raising one is not a free burst.
    pub fn set(&mut self, rate: f64, burst: f64) {
        self.rate = rate;
        self.burst = burst;
        for b in self.buckets.values_mut() {
            b.tokens = b.tokens.min(burst);
        }
    }

    /// Takes a token for `key`; `Err(seconds to wait)` when there is none.
    pub fn check(&mut self, key: &str, now: Instant) -> Result<(), u64> {
        if self.buckets.len() > 10_000 {
            let full = Duration::from_secs_f64(self.burst / self.rate);
            self.buckets.retain(|_, b| now.duration_since(b.at) < full);
        }
        let b = self.buckets.entry(key.to_owned()).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        let elapsed = now.duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + elapsed * self.rate).min(self.burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - b.tokens) / self.rate).ceil().max(1.0) as u64)
        }
    }
}

/// What an idempotency key was first used for.
#[derive(Debug, Clone)]
pub struct IdemEntry {
    /// The action it created.
    pub action: ActionId,
    /// Hash of the request body, to refuse reuse with a different request.
    pub body: [u8; 32],
    at: Instant,
}

/// Idempotency keys, scoped per principal, bounded in count and age (oldest forgotten first).
#[derive(Debug)]
pub struct IdemCache {
    cap: usize,
    ttl: Duration,
    map: HashMap<String, IdemEntry>,
    order: VecDeque<(String, Instant)>,
}

impl IdemCache {
    /// At most `cap` keys, each for `ttl`.
    pub fn new(cap: usize, ttl: Duration) -> Self {
        IdemCache {
            cap,
            ttl,
            map: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    fn expire(&mut self, now: Instant) {
        while let Some((k, at)) = self.order.front() {
            if self.order.len() > self.cap || now.duration_since(*at) > self.ttl {
                if self.map.get(k).is_some_and(|e| e.at == *at) {
                    self.map.remove(k);
                }
                self.order.pop_front();
            } else {
                break;
            }
        }
    }

    /// The entry for `key`, if remembered.
    pub fn get(&mut self, key: &str, now: Instant) -> Option<IdemEntry> {
        self.expire(now);
        self.map.get(key).cloned()
    }

    /// Remembers `key`.
    pub fn put(&mut self, key: String, action: ActionId, body: [u8; 32], now: Instant) {
        self.order.push_back((key.clone(), now));
        self.map.insert(
            key,
            IdemEntry {
                action,
                body,
                at: now,
            },
        );
        self.expire(now);
    }

    /// Forgets `key` (its request failed, so a retry must be able to go through).
    pub fn remove(&mut self, key: &str) {
        self.map.remove(key);
    }

    /// Keys remembered.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// Milliseconds in a day.
pub const DAY_MS: i64 = 86_400_000;

/// The UTC calendar date `(year, month, day)` of a day number (days since 1970-01-01).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// `YYYY-MM` (UTC) of a time in ms since the epoch.
pub fn month_of(ts_ms: i64) -> String {
    let (y, m, _) = civil_from_days(ts_ms.div_euclid(DAY_MS));
    format!("{y:04}-{m:02}")
}

/// `YYYY-MM-DD` of a day number (days since 1970-01-01, UTC).
pub fn date_of_day(day: i64) -> String {
    let (y, m, d) = civil_from_days(day);
    format!("{y:04}-{m:02}-{d:02}")
}

pub use kernos_core::time::now_ms;

/// One organisation's use in one month.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct UsageMonth {
    /// `YYYY-MM` (UTC).
    pub month: String,
    /// Run units used: CPU seconds of sandboxed children plus the per-step overhead.
    pub units: f64,
    /// Actions finished.
    pub actions: u64,
    /// Steps run.
    pub steps: u64,
    /// CPU time of sandboxed children, ms.
    pub cpu_ms: u64,
}

/// Run units per organisation and month, from `action.finished` events, and the units
/// reserved by actions still running (so concurrent actions of one organisation cannot
/// together overrun its quota).
#[derive(Debug, Default)]
pub struct Usage {
    by: HashMap<(String, String), UsageMonth>,
    /// Per running action: its organisation and the units it may use up to the end of the
    /// step it is on (what it has spent plus that step's estimate).
    reserved: HashMap<ActionId, (String, f64)>,
}

impl Usage {
    /// Adds one finished action.
    pub fn add(&mut self, org: &str, ts_ms: i64, units: f64, steps: u64, cpu_ms: u64) {
        let month = month_of(ts_ms);
        let e = self
            .by
            .entry((org.to_owned(), month.clone()))
            .or_insert_with(|| UsageMonth {
                month,
                ..UsageMonth::default()
            });
        e.units += units;
        e.actions += 1;
        e.steps += steps;
        e.cpu_ms += cpu_ms;
    }

    /// Units used by `org` in the month of `ts_ms`.
    pub fn units(&self, org: &str, ts_ms: i64) -> f64 {
        self.by
            .get(&(org.to_owned(), month_of(ts_ms)))
            .map(|u| u.units)
            .unwrap_or(0.0)
    }

    /// What the next step of `org` is expected to cost: the mean units per step it has run
    /// this month (CPU time varies by what it runs), and never less than `floor`, the
    /// overhead every step is charged. An estimate, not a bound: a step that burns more CPU
    /// than the mean overruns by the difference.
    pub fn step_estimate(&self, org: &str, ts_ms: i64, floor: f64) -> f64 {
        let mean = self
            .by
            .get(&(org.to_owned(), month_of(ts_ms)))
            .filter(|u| u.steps > 0)
            .map(|u| u.units / u.steps as f64)
            .unwrap_or(0.0);
        mean.max(floor)
    }

    /// Sets what running `action` of `org` may use (replacing its earlier reservation).
    pub fn reserve(&mut self, org: &str, action: ActionId, units: f64) {
        self.reserved.insert(action, (org.to_owned(), units));
    }

    /// Drops `action`'s reservation (it finished: its units are counted as used now).
    pub fn release(&mut self, action: ActionId) {
        self.reserved.remove(&action);
    }

    /// Units reserved by running actions of `org`, other than `except`.
    pub fn reserved(&self, org: &str, except: Option<ActionId>) -> f64 {
        self.reserved
            .iter()
            .filter(|(a, (o, _))| o == org && Some(**a) != except)
            .map(|(_, (_, u))| u)
            .sum()
    }

    /// Every month of `org`, newest first.
    pub fn months(&self, org: &str) -> Vec<UsageMonth> {
        let mut v: Vec<UsageMonth> = self
            .by
            .iter()
            .filter(|((o, _), _)| o == org)
            .map(|(_, u)| u.clone())
            .collect();
        v.sort_by(|a, b| b.month.cmp(&a.month));
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_refill_and_say_how_long_to_wait() {
        let mut r = RateLimiter::new(2.0, 3.0);
        let t = Instant::now();
        for _ in 0..3 {
            assert!(r.check("k", t).is_ok());
        }
        assert_eq!(r.check("k", t), Err(1));
        assert!(r.check("other", t).is_ok(), "buckets are per key");
        assert!(r.check("k", t + Duration::from_millis(600)).is_ok());
    }

    #[test]
    fn idempotency_cache_is_bounded() {
        let mut c = IdemCache::new(2, Duration::from_secs(60));
        let t = Instant::now();
        for k in ["a", "b", "c"] {
            c.put(k.into(), ActionId::generate(), [0; 32], t);
        }
        assert_eq!(c.len(), 2);
        assert!(c.get("a", t).is_none() && c.get("c", t).is_some());
        assert!(c.get("c", t + Duration::from_secs(61)).is_none(), "expires");
    }

    #[test]
    fn months_are_utc_calendar_months() {
        assert_eq!(month_of(0), "1970-01");
        assert_eq!(month_of(951_782_400_000), "2000-02-29".get(..7).unwrap());
        assert_eq!(month_of(1_709_251_199_000), "2024-02"); // 2024-02-29T23:59:59Z
        assert_eq!(month_of(1_709_251_200_000), "2024-03");
        let mut u = Usage::default();
        u.add("acme", 1_709_251_199_000, 1.5, 2, 10);
        u.add("acme", 1_709_251_200_000, 1.0, 1, 0);
        assert_eq!(u.units("acme", 1_709_251_000_000), 1.5);
        assert_eq!(u.months("acme").len(), 2);
        assert!(u.months("globex").is_empty());
    }

    #[test]
    fn days_are_utc_calendar_dates() {
        assert_eq!(date_of_day(0), "1970-01-01");
        assert_eq!(date_of_day(1_709_251_199_000 / DAY_MS), "2024-02-29");
        assert_eq!(date_of_day(1_709_251_200_000 / DAY_MS), "2024-03-01");
        assert_eq!(date_of_day(-1), "1969-12-31");
        assert_eq!(date_of_day(20_454), "2026-01-01");
    }

    #[test]
    fn reservations_count_for_others_and_estimates_follow_the_mean_step() {
        let now = 1_709_251_200_000;
        let mut u = Usage::default();
        assert_eq!(
            u.step_estimate("acme", now, 0.01),
            0.01,
            "no history: the overhead"
        );
        u.add("acme", now, 1.0, 4, 960);
        assert_eq!(u.step_estimate("acme", now, 0.01), 0.25);
        let (a, b) = (ActionId::generate(), ActionId::generate());
        u.reserve("acme", a, 0.5);
        u.reserve("acme", b, 0.25);
        u.reserve("acme", b, 0.3);
        u.reserve("globex", ActionId::generate(), 7.0);
        assert!((u.reserved("acme", Some(a)) - 0.3).abs() < 1e-9);
        assert!((u.reserved("acme", None) - 0.8).abs() < 1e-9);
        u.release(b);
        assert!((u.reserved("acme", None) - 0.5).abs() < 1e-9);
    }
}
