//! Back-off delays and `Retry-After`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Delay before retry number `retry` (1 = the first retry): `base · 2^(retry-1)`, capped at
/// `max`, then "equal jitter" — uniformly in `[d/2, d]` — so many clients that failed together
/// do not retry together, while each still waits at least half the nominal delay.
pub fn backoff(base: Duration, max: Duration, retry: u32, unit: f64) -> Duration {
    let exp = retry.saturating_sub(1).min(30);
    let nominal = base.saturating_mul(1u32 << exp).min(max);
    let unit = unit.clamp(0.0, 1.0);
    nominal / 2 + nominal.mul_f64(unit / 2.0)
}

/// A uniform number in `[0, 1)` from the OS; 0.5 if the OS has none to give.
pub fn jitter_unit() -> f64 {
    getrandom::u64().map_or(0.5, |r| (r >> 11) as f64 / (1u64 << 53) as f64)
}

/// Parses `Retry-After`: delay-seconds (`"120"`, also `"1.5"` as some servers send) or an
/// HTTP-date (`"Wed, 21 Oct 2015 07:28:00 GMT"`, RFC 9110 IMF-fixdate), relative to `now`.
/// A date in the past means "now".
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(1e9)));
    }
    let at = parse_http_date(v)?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// IMF-fixdate only (the form RFC 9110 requires senders to use).
fn parse_http_date(s: &str) -> Option<SystemTime> {
    // "Wed, 21 Oct 2015 07:28:00 GMT"
    let rest = s.split_once(", ")?.1;
    let mut parts = rest.split(' ');
    let day: u32 = parts.next()?.parse().ok()?;
    let month = match parts.next()? {
        "Jan" => 1,
        "Feb" => 2,
        "Mar" => 3,
        "Apr" => 4,
        "May" => 5,
        "Jun" => 6,
        "Jul" => 7,
        "Aug" => 8,
        "Sep" => 9,
        "Oct" => 10,
        "Nov" => 11,
        "Dec" => 12,
        _ => return None,
    };
    let year: i64 = parts.next()?.parse().ok()?;
    let mut hms = parts.next()?.split(':');
    let h: u64 = hms.next()?.parse().ok()?;
    let m: u64 = hms.next()?.parse().ok()?;
    let sec: u64 = hms.next()?.parse().ok()?;
    if parts.next()? != "GMT" || !(1..=31).contains(&day) || h > 23 || m > 59 || sec > 60 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let secs = u64::try_from(days).ok()? * 86_400 + h * 3600 + m * 60 + sec;
    Some(UNIX_EPOCH + Duration::from_secs(secs))
}

/// Days since 1970-01-01 (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_caps_and_jitters_within_bounds() {
        let base = Duration::from_millis(100);
        let max = Duration::from_millis(1000);
        assert_eq!(backoff(base, max, 1, 1.0), Duration::from_millis(100));
        assert_eq!(backoff(base, max, 1, 0.0), Duration::from_millis(50));
        assert_eq!(backoff(base, max, 3, 1.0), Duration::from_millis(400));
        assert_eq!(backoff(base, max, 10, 1.0), max);
        assert_eq!(backoff(base, max, u32::MAX, 0.0), max / 2);
        for retry in 1..8 {
            let nominal = (base * (1 << (retry - 1))).min(max);
            for _ in 0..200 {
                let d = backoff(base, max, retry, jitter_unit());
                assert!(d >= nominal / 2 && d <= nominal, "{d:?} for {nominal:?}");
            }
        }
        let samples: Vec<f64> = (0..64).map(|_| jitter_unit()).collect();
        assert!(samples.iter().all(|u| (0.0..1.0).contains(u)));
        assert!(
            samples.iter().any(|u| (u - samples[0]).abs() > 1e-9),
            "jitter is random"
        );
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = UNIX_EPOCH + Duration::from_secs(1_445_412_470); // 2015-10-21 07:27:50 GMT
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after(" 1.5 ", now),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-3", now), None);
        assert_eq!(
            parse_retry_after("Wed, 21 Foo 2015 07:28:00 GMT", now),
            None
        );
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    }
}
