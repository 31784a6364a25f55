//! Randomized delay (systemd's `RandomizedDelaySec`): spreads schedules that share a fire time
//! so they do not all start in the same instant.
//!
//! The delay is not random at run time: it is a hash of the schedule's id and the fire time, so
//! a restarted daemon computes the same delay for the same fire and neither runs it early nor
//! twice, and tests can predict it.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// Domain separation for the hash.
const DOMAIN: &[u8] = b"kernos-schedule-delay-v1\0";

/// The delay, between zero and `max` inclusive (to the millisecond), of schedule `id`'s fire at
/// `fire`.
pub fn random_delay(id: &str, fire: DateTime<Utc>, max: Duration) -> Duration {
    let max_ms = u64::try_from(max.as_millis()).unwrap_or(u64::MAX);
    if max_ms == 0 {
        return Duration::ZERO;
    }
    let mut h = blake3::Hasher::new();
    h.update(DOMAIN);
    h.update(&(id.len() as u64).to_le_bytes());
    h.update(id.as_bytes());
    h.update(&fire.timestamp_millis().to_le_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&h.finalize().as_bytes()[..8]);
    let span = max_ms.saturating_add(1);
    // 64 random bits over at most ~2^44 ms of range: the modulo bias is far below one in a million.
    Duration::from_millis(u64::from_le_bytes(first) % span)
}
