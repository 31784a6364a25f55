//! Prometheus text exposition (written with [`kernos_core::prom`]): request latency histograms by route, actions by
//! outcome, queue depth, run units by organisation. A few maps behind mutexes; no metrics
//! stack.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use kernos_core::prom::{Kind, Writer};

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

    /// The exposition text. `queue_depth`, `running`, the pending approvals and the
    /// per-organisation scheduler gauges are read by the caller.
    pub(crate) fn render(
        &self,
        queue_depth: usize,
        running: usize,
        pending_approvals: usize,
        orgs: &[crate::sched::OrgGauges],
    ) -> String {
        let mut w = Writer::with_capacity(4096);
        self.render_latency(&mut w);
        w.family(
            "kernos_actions_total",
            Kind::Counter,
            "Actions finished, by outcome.",
        );
        if let Ok(m) = self.outcomes.lock() {
            for (k, v) in m.iter() {
                w.sample("kernos_actions_total", &[("outcome", k)], v);
            }
        }
        w.single(
            "kernos_actions_accepted_total",
            Kind::Counter,
            "Actions accepted (202) since start.",
            self.accepted.load(Ordering::Relaxed),
        );
        w.single(
            "kernos_queue_rejections_total",
            Kind::Counter,
            "Submissions refused because the action queue was full.",
            self.queue_full.load(Ordering::Relaxed),
        );
        w.single(
            "kernos_rate_limited_total",
            Kind::Counter,
            "Requests refused by the per-key rate limit.",
            self.rate_limited.load(Ordering::Relaxed),
        );
        w.single(
            "kernos_queue_depth",
            Kind::Gauge,
            "Actions waiting for a worker.",
            queue_depth,
        );
        w.single(
            "kernos_actions_running",
            Kind::Gauge,
            "Actions being planned or run.",
            running,
        );
        w.single(
            "kernos_approvals_pending",
            Kind::Gauge,
            "Steps waiting for approval.",
            pending_approvals,
        );
        for (name, help, get) in [
            (
                "kernos_org_queued",
                "Actions waiting for a run slot, by organisation.",
                (|g| g.queued) as fn(&crate::sched::OrgGauges) -> usize,
            ),
            (
                "kernos_org_running",
                "Run slots held, by organisation (at most server.max_running_per_org).",
                |g| g.running,
            ),
            (
                "kernos_org_waiting_approval",
                "Actions waiting for approval (holding no slot), by organisation.",
                |g| g.parked,
            ),
        ] {
            w.family(name, Kind::Gauge, help);
            for g in orgs {
                w.sample(name, &[("org", &g.org)], get(g));
            }
        }
        w.family(
            "kernos_run_units_total",
            Kind::Counter,
            "Run units used (CPU seconds of sandboxed children plus per-step overhead), by organisation.",
        );
        if let Ok(m) = self.units.lock() {
            for (k, v) in m.iter() {
                w.sample("kernos_run_units_total", &[("org", k)], v);
            }
        }
        w.finish()
    }

    /// The request latency histogram, by route and method.
    fn render_latency(&self, w: &mut Writer) {
        const NAME: &str = "kernos_http_request_duration_seconds";
        w.family(
            NAME,
            Kind::Histogram,
            "Time to answer a request (head of the response), by route.",
        );
        let Ok(m) = self.latency.lock() else {
            return;
        };
        for ((route, method), h) in m.iter() {
            let l = [("route", route.as_str()), ("method", method.as_str())];
            for (i, b) in BUCKETS.iter().enumerate() {
                let le = b.to_string();
                w.sample(
                    "kernos_http_request_duration_seconds_bucket",
                    &[l[0], l[1], ("le", &le)],
                    h.counts[i],
                );
            }
            w.sample(
                "kernos_http_request_duration_seconds_bucket",
                &[l[0], l[1], ("le", "+Inf")],
                h.count,
            );
            w.sample("kernos_http_request_duration_seconds_sum", &l, h.sum);
            w.sample("kernos_http_request_duration_seconds_count", &l, h.count);
        }
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
        let orgs = [crate::sched::OrgGauges {
            org: "acme".into(),
            queued: 2,
            running: 1,
            parked: 4,
        }];
        let t = m.render(3, 1, 0, &orgs);
        assert!(t.contains(
            "kernos_http_request_duration_seconds_bucket{route=\"/v1/state/actions\",method=\"GET\",le=\"0.001\"} 1"
        ));
        assert!(t.contains(
            "kernos_http_request_duration_seconds_bucket{route=\"/v1/state/actions\",method=\"GET\",le=\"+Inf\"} 2"
        ));
        assert!(t.contains("kernos_actions_total{outcome=\"committed\"} 1"));
        assert!(t.contains("kernos_queue_depth 3"));
        assert!(t.contains("kernos_run_units_total{org=\"acme\"} 1.5"));
        assert!(t.contains("kernos_org_queued{org=\"acme\"} 2"));
        assert!(t.contains("kernos_org_running{org=\"acme\"} 1"));
        assert!(t.contains("kernos_org_waiting_approval{org=\"acme\"} 4"));
    }
}
