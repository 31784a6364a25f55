//! Per-provider circuit breaker: closed → (N consecutive failures) → open → (cool-down) →
//! half-open, where one probe call decides between closed and open again.
//!
//! A pure state machine: the caller passes the time, so tests drive it without sleeping.

use std::time::{Duration, Instant};

use serde::Serialize;

/// Where a breaker stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    /// Calls go through.
    Closed,
    /// Calls are skipped until the cool-down ends.
    Open,
    /// One probe call is in flight; others are skipped until it settles.
    HalfOpen,
}

#[derive(Debug, Clone, Copy)]
enum State {
    Closed,
    Open { until: Instant },
    HalfOpen { probe_started: Instant },
}

/// The breaker of one provider.
#[derive(Debug, Clone)]
pub struct Breaker {
    state: State,
    consecutive: u32,
    threshold: u32,
    cooldown: Duration,
}

impl Breaker {
    /// A closed breaker that opens after `threshold` consecutive failures and rests for
    /// `cooldown`.
    pub fn new(threshold: u32, cooldown: Duration) -> Self {
        Breaker {
            state: State::Closed,
            consecutive: 0,
            threshold: threshold.max(1),
            cooldown,
        }
    }

    /// May a call go through now? `Err` carries how long until a probe is allowed.
    pub fn allow(&mut self, now: Instant) -> Result<(), Duration> {
        match self.state {
            State::Closed => Ok(()),
            State::Open { until } if now >= until => {
                self.state = State::HalfOpen { probe_started: now };
                Ok(())
            }
            State::Open { until } => Err(until - now),
            // A probe whose caller vanished (its future was dropped) must not block the
            // provider forever: after another cool-down a new probe may go.
            State::HalfOpen { probe_started } if now >= probe_started + self.cooldown => {
                self.state = State::HalfOpen { probe_started: now };
                Ok(())
            }
            State::HalfOpen { probe_started } => Err(probe_started + self.cooldown - now),
        }
    }

    /// The provider answered (any answer that proves it is up).
    pub fn on_success(&mut self) {
        self.consecutive = 0;
        self.state = State::Closed;
    }

    /// The provider failed (timeout, connection, 429, 5xx).
    pub fn on_failure(&mut self, now: Instant) {
        self.consecutive = self.consecutive.saturating_add(1);
        match self.state {
            State::HalfOpen { .. } => {
                self.state = State::Open {
                    until: now + self.cooldown,
                }
            }
            State::Closed if self.consecutive >= self.threshold => {
                self.state = State::Open {
                    until: now + self.cooldown,
                }
            }
            _ => {}
        }
    }

    /// Current state (an open breaker whose cool-down has ended still reads `Open` until the
    /// next call turns it half-open).
    pub fn state(&self) -> BreakerState {
        match self.state {
            State::Closed => BreakerState::Closed,
            State::Open { .. } => BreakerState::Open,
            State::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }

    /// Consecutive failures so far.
    pub fn consecutive_failures(&self) -> u32 {
        self.consecutive
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_half_opens_and_closes() {
        let t0 = Instant::now();
        let cd = Duration::from_secs(10);
        let mut b = Breaker::new(3, cd);
        for _ in 0..2 {
            b.allow(t0).unwrap();
            b.on_failure(t0);
        }
        assert_eq!(b.state(), BreakerState::Closed);
        b.on_failure(t0);
        assert_eq!(b.state(), BreakerState::Open);
        assert_eq!(
            b.allow(t0 + Duration::from_secs(4)),
            Err(Duration::from_secs(6))
        );
        // cool-down over: one probe passes, a second concurrent caller does not
        b.allow(t0 + cd).unwrap();
        assert_eq!(b.state(), BreakerState::HalfOpen);
        assert!(b.allow(t0 + cd + Duration::from_secs(1)).is_err());
        // the probe fails: open again for a full cool-down
        b.on_failure(t0 + cd + Duration::from_secs(1));
        assert_eq!(b.state(), BreakerState::Open);
        assert!(b.allow(t0 + cd + Duration::from_secs(5)).is_err());
        // next probe succeeds: closed, counter reset
        b.allow(t0 + cd * 2 + Duration::from_secs(1)).unwrap();
        b.on_success();
        assert_eq!(b.state(), BreakerState::Closed);
        assert_eq!(b.consecutive_failures(), 0);
    }

    #[test]
    fn success_resets_the_count_and_lost_probes_expire() {
        let t0 = Instant::now();
        let cd = Duration::from_millis(100);
        let mut b = Breaker::new(2, cd);
        b.on_failure(t0);
        b.on_success();
        b.on_failure(t0);
        assert_eq!(b.state(), BreakerState::Closed);
        b.on_failure(t0);
        b.allow(t0 + cd).unwrap(); // a probe starts and its caller goes away
        assert!(b.allow(t0 + cd + Duration::from_millis(50)).is_err());
        b.allow(t0 + cd * 2).unwrap();
    }
}
