//! Prometheus text exposition, hand-rolled: request latency histograms by route, actions by
//! outcome, queue depth, run units by organisation. A few maps behind mutexes; no metrics
//! stack.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Upper bounds of the latency buckets, seconds.
const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Debug, Default, Clone)]
struct Hist {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// The daemon's metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    latency: Mutex<BTreeMap<(String, String), Hist>>,
    outcomes: Mutex<BTreeMap<String, u64>>,
    units: Mutex<BTreeMap<String, f64>>,
    /// Actions accepted since start.
    pub accepted: AtomicU64,
    /// Submissions refused because the queue was full.
    pub queue_full: AtomicU64,
    /// Requests refused by the rate limiter.
    pub rate_limited: AtomicU64,
}

fn esc(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Metrics {
    /// Records one request's latency.
    pub fn observe(&self, method: &str, route: &str, secs: f64) {
        let Ok(mut m) = self.latency.lock() else {
            return;
        };
        let h = m.entry((route.to_owned(), method.to_owned())).or_default();
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                h.counts[i] += 1;
            }
        }
        h.count += 1;
        h.sum += secs;
    }

    /// Counts a finished action.
    pub fn action_finished(&self, outcome: &str) {
        if let Ok(mut m) = self.outcomes.lock() {
            *m.entry(outcome.to_owned()).or_default() += 1;
        }
    }

    /// Adds run units for an organisation.
    pub fn units(&self, org: &str, units: f64) {
        if let Ok(mut m) = self.units.lock() {
            *m.entry(org.to_owned()).or_default() += units;
        }
    }

    /// The exposition text. `queue_depth` and `running` are read by the caller.
    pub fn render(&self, queue_depth: usize, running: usize, pending_approvals: usize) -> String {
        let mut o = String::with_capacity(4096);
        let _ = writeln!(
            o,
            "# HELP kernos_http_request_duration_seconds Time to answer a request (head of the response), by route.\n# TYPE kernos_http_request_duration_seconds histogram"
        );
        if let Ok(m) = self.latency.lock() {
            for ((route, method), h) in m.iter() {
                let l = format!("route=\"{}\",method=\"{}\"", esc(route), esc(method));
                for (i, b) in BUCKETS.iter().enumerate() {
                    let _ = writeln!(
                        o,
                        "kernos_http_request_duration_seconds_bucket{{{l},le=\"{b}\"}} {}",
                        h.counts[i]
                    );
                }
                let _ = writeln!(
                    o,
                    "kernos_http_request_duration_seconds_bucket{{{l},le=\"+Inf\"}} {}",
                    h.count
                );
                let _ = writeln!(
                    o,
                    "kernos_http_request_duration_seconds_sum{{{l}}} {}",
                    h.sum
                );
                let _ = writeln!(
                    o,
                    "kernos_http_request_duration_seconds_count{{{l}}} {}",
                    h.count
                );
            }
        }
        let _ = writeln!(
            o,
            "# HELP kernos_actions_total Actions finished, by outcome.\n# TYPE kernos_actions_total counter"
        );
        if let Ok(m) = self.outcomes.lock() {
            for (k, v) in m.iter() {
                let _ = writeln!(o, "kernos_actions_total{{outcome=\"{}\"}} {v}", esc(k));
            }
        }
        let _ = writeln!(
            o,
            "# HELP kernos_actions_accepted_total Actions accepted (202) since start.\n# TYPE kernos_actions_accepted_total counter\nkernos_actions_accepted_total {}",
            self.accepted.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            o,
            "# HELP kernos_queue_rejections_total Submissions refused because the action queue was full.\n# TYPE kernos_queue_rejections_total counter\nkernos_queue_rejections_total {}",
            self.queue_full.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            o,
            "# HELP kernos_rate_limited_total Requests refused by the per-key rate limit.\n# TYPE kernos_rate_limited_total counter\nkernos_rate_limited_total {}",
            self.rate_limited.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            o,
            "# HELP kernos_queue_depth Actions waiting for a worker.\n# TYPE kernos_queue_depth gauge\nkernos_queue_depth {queue_depth}"
        );
        let _ = writeln!(
            o,
            "# HELP kernos_actions_running Actions being planned or run.\n# TYPE kernos_actions_running gauge\nkernos_actions_running {running}"
        );
        let _ = writeln!(
            o,
            "# HELP kernos_approvals_pending Steps waiting for approval.\n# TYPE kernos_approvals_pending gauge\nkernos_approvals_pending {pending_approvals}"
        );
        let _ = writeln!(
            o,
            "# HELP kernos_run_units_total Run units used (CPU seconds of sandboxed children plus per-step overhead), by organisation.\n# TYPE kernos_run_units_total counter"
        );
        if let Ok(m) = self.units.lock() {
            for (k, v) in m.iter() {
                let _ = writeln!(o, "kernos_run_units_total{{org=\"{}\"}} {v}", esc(k));
            }
        }
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_has_cumulative_buckets() {
        let m = Metrics::default();
        m.observe("GET", "/v1/state/actions", 0.0007);
        m.observe("GET", "/v1/state/actions", 0.2);
        m.action_finished("committed");
        m.units("acme", 1.5);
        let t = m.render(3, 1, 0);
        assert!(t.contains(
            "kernos_http_request_duration_seconds_bucket{route=\"/v1/state/actions\",method=\"GET\",le=\"0.001\"} 1"
        ));
        assert!(t.contains(
            "kernos_http_request_duration_seconds_bucket{route=\"/v1/state/actions\",method=\"GET\",le=\"+Inf\"} 2"
        ));
        assert!(t.contains("kernos_actions_total{outcome=\"committed\"} 1"));
        assert!(t.contains("kernos_queue_depth 3"));
        assert!(t.contains("kernos_run_units_total{org=\"acme\"} 1.5"));
    }
}
