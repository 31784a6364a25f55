//! Wall-clock helpers shared by the system tools: epoch seconds, local midnight, civil dates.
//!
//! Local time goes through libc (`localtime_r`, `mktime`) so it follows the system's time zone
//! database and `TZ` exactly as every other program on the machine does.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch, now.
pub(crate) fn now() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    }
}

/// The broken-down local time of `t`.
fn local_tm(t: i64) -> Option<libc::tm> {
    let tt = t as libc::time_t;
    // SAFETY: an all-zero `tm` is a valid value of this plain C struct.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are valid for the call; localtime_r writes only into `tm`.
    let r = unsafe { libc::localtime_r(&tt, &mut tm) };
    (!r.is_null()).then_some(tm)
}

/// Epoch seconds of a local civil time (DST resolved by the C library).
pub(crate) fn local_to_epoch(
    year: i32,
    month: u32,
    day: u32,
    h: u32,
    m: u32,
    s: u32,
) -> Option<i64> {
    // SAFETY: an all-zero `tm` is a valid value of this plain C struct.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    tm.tm_year = year - 1900;
    tm.tm_mon = month as i32 - 1;
    tm.tm_mday = day as i32;
    tm.tm_hour = h as i32;
    tm.tm_min = m as i32;
    tm.tm_sec = s as i32;
    tm.tm_isdst = -1;
    // SAFETY: `tm` is a valid, initialised struct; mktime only normalises it.
    let t = unsafe { libc::mktime(&mut tm) };
    (t != -1).then_some(t as i64)
}

/// Epoch seconds of the most recent local midnight at or before `t`.
pub(crate) fn local_midnight(t: i64) -> i64 {
    match local_tm(t) {
        Some(tm) => local_to_epoch(
            tm.tm_year + 1900,
            (tm.tm_mon + 1) as u32,
            tm.tm_mday as u32,
            0,
            0,
            0,
        )
        .unwrap_or(t - t.rem_euclid(86_400)),
        None => t - t.rem_euclid(86_400),
    }
}

/// The local year of `t`.
pub(crate) fn local_year(t: i64) -> i32 {
    local_tm(t).map(|tm| tm.tm_year + 1900).unwrap_or(1970)
}

/// `2026-11-22 14:10` in local time, for summaries.
pub(crate) fn format_local(t: i64) -> String {
    match local_tm(t) {
        Some(tm) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02}",
            tm.tm_year + 1900,
            tm.tm_mon + 1,
            tm.tm_mday,
            tm.tm_hour,
            tm.tm_min
        ),
        None => format!("@{t}"),
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm), so UTC
/// timestamps can be computed without the C library's time zone state.
pub(crate) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parses an RFC 3339 timestamp (`2026-11-22T14:10:05.123+01:00`, `…Z`) to epoch seconds.
/// Returns the seconds and the number of bytes the timestamp took.
pub(crate) fn parse_rfc3339(s: &str) -> Option<(i64, usize)> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let part = s.get(r)?;
        if part.bytes().all(|c| c.is_ascii_digit()) {
            part.parse().ok()
        } else {
            None
        }
    };
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let mut i = 19;
    if b.get(i) == Some(&b'.') {
        i += 1;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
    }
    let offset = match b.get(i) {
        Some(b'Z') | Some(b'z') => {
            i += 1;
            0
        }
        Some(&sign @ (b'+' | b'-')) => {
            let oh = num(i + 1..i + 3)?;
            if b.get(i + 3) != Some(&b':') {
                return None;
            }
            let om = num(i + 4..i + 6)?;
            i += 6;
            let o = i64::from(oh * 3600 + om * 60);
            if sign == b'-' { -o } else { o }
        }
        _ => return None,
    };
    let days = days_from_civil(i64::from(y), mo, d);
    let t = days * 86_400 + i64::from(h * 3600 + mi * 60 + se) - offset;
    Some((t, i))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_days() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
    }

    #[test]
    fn rfc3339_with_offsets_and_fractions() {
        assert_eq!(
            parse_rfc3339("2026-11-22T14:10:05Z rest"),
            Some((1_795_356_605, 20))
        );
        let (t, n) = parse_rfc3339("2026-11-22T15:10:05.123456+01:00 host").unwrap();
        assert_eq!((t, n), (1_795_356_605, 32));
        assert_eq!(
            parse_rfc3339("2026-11-22T09:10:05-05:00").map(|p| p.0),
            Some(1_795_356_605)
        );
        assert_eq!(parse_rfc3339("2026-13-22T09:10:05Z"), None);
        assert_eq!(parse_rfc3339("Nov 22 14:10:05 host"), None);
    }

    #[test]
    fn local_round_trip() {
        let t = 1_795_356_605;
        let mid = local_midnight(t);
        assert!(mid <= t && t - mid < 25 * 3600, "{mid} {t}");
        assert!(format_local(t).starts_with("2026-11-2"));
        assert!(local_year(t) == 2026);
    }
}
