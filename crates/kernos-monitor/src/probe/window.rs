//! A sliding count: how many things happened within the last `window`.
//!
//! Hits are kept in buckets of a fixed width, so memory stays bounded (at most one bucket per
//! width in the window) however fast lines or events come.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The smallest bucket: finer than any detection latency the monitors promise.
const MIN_BUCKET: Duration = Duration::from_millis(100);
/// At most this many buckets per window, however long the window.
const MAX_BUCKETS: u32 = 600;

/// Counts of hits in the last `window`.
#[derive(Debug, Clone)]
pub struct RateWindow {
    window: Duration,
    bucket: Duration,
    /// (bucket start, hits), oldest first.
    hits: VecDeque<(Instant, u64)>,
    total: u64,
}

impl RateWindow {
    /// An empty window of length `window`.
    pub fn new(window: Duration) -> Self {
        RateWindow {
            window,
            bucket: (window / MAX_BUCKETS).max(MIN_BUCKET),
            hits: VecDeque::new(),
            total: 0,
        }
    }

    /// Records `n` hits at `now`.
    pub fn add(&mut self, now: Instant, n: u64) {
        if n == 0 {
            return;
        }
        match self.hits.back_mut() {
            Some((start, count)) if now.saturating_duration_since(*start) < self.bucket => {
                *count += n;
            }
            _ => self.hits.push_back((now, n)),
        }
        self.total += n;
        self.expire(now);
    }

    /// How many hits fell within the window ending at `now`.
    pub fn count(&mut self, now: Instant) -> u64 {
        self.expire(now);
        self.total
    }

    fn expire(&mut self, now: Instant) {
        while let Some((start, n)) = self.hits.front() {
            if now.saturating_duration_since(*start) < self.window {
                break;
            }
            self.total -= n;
            self.hits.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hits_leave_the_window_when_it_passes() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut w = RateWindow::new(s(10));
        w.add(t0, 3);
        w.add(t0 + s(5), 2);
        assert_eq!(w.count(t0 + s(9)), 5);
        assert_eq!(w.count(t0 + s(10)), 2);
        assert_eq!(w.count(t0 + s(15)), 0);
    }

    #[test]
    fn a_flood_stays_in_few_buckets() {
        let t0 = Instant::now();
        let mut w = RateWindow::new(Duration::from_secs(60));
        for i in 0..100_000u64 {
            w.add(t0 + Duration::from_micros(i * 10), 1);
        }
        assert_eq!(w.count(t0 + Duration::from_secs(1)), 100_000);
        assert!(w.hits.len() <= 20, "{} buckets", w.hits.len());
    }
}
