//! Wall-clock time as the journal records it.

/// Now, in milliseconds since the Unix epoch (0 if the clock is before it; saturating far in
/// the future), the unit of every event's `ts_ms`.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
