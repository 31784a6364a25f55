//! Sizes and durations in the many ways people write them.
//!
//! Sizes use binary multiples (1 MB = 1,048,576 bytes), as `find -size` and `du` do.
//! Durations are seconds; a month is 30 days and a year 365 days.

/// What kind of quantity a unit measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dim {
    /// Bytes.
    Size,
    /// Seconds.
    Time,
    /// `m`/`M` alone: megabytes or minutes, decided by the words around it.
    SizeOrTime,
}

const KIB: u64 = 1024;

/// A unit word (lower case) → (dimension, multiplier).
pub(crate) fn unit(u: &str) -> Option<(Dim, u64)> {
    let size = |m: u64| Some((Dim::Size, m));
    let time = |m: u64| Some((Dim::Time, m));
    match u {
        "b" | "byte" | "bytes" => size(1),
        "k" | "kb" | "kib" | "kilobyte" | "kilobytes" | "kbs" | "kilo" | "kilos" => size(KIB),
        "mb" | "mib" | "megabyte" | "megabytes" | "meg" | "megs" | "mbs" | "mega" => {
            size(KIB * KIB)
        }
        "g" | "gb" | "gib" | "gigabyte" | "gigabytes" | "gig" | "gigs" | "gbs" | "giga" => {
            size(KIB * KIB * KIB)
        }
        "t" | "tb" | "tib" | "terabyte" | "terabytes" | "tera" => size(KIB * KIB * KIB * KIB),
        "m" => Some((Dim::SizeOrTime, 0)),
        "s" | "sec" | "secs" | "second" | "seconds" => time(1),
        "min" | "mins" | "minute" | "minutes" => time(60),
        "h" | "hr" | "hrs" | "hour" | "hours" => time(3600),
        "d" | "day" | "days" => time(86_400),
        "w" | "wk" | "wks" | "week" | "weeks" => time(604_800),
        "fortnight" | "fortnights" => time(1_209_600),
        "mo" | "mon" | "month" | "months" => time(2_592_000),
        "y" | "yr" | "yrs" | "year" | "years" => time(31_536_000),
        _ => None,
    }
}

/// Resolves an ambiguous `m`: megabytes when `as_size`, minutes otherwise.
pub(crate) fn resolve_m(as_size: bool) -> (Dim, u64) {
    if as_size {
        (Dim::Size, KIB * KIB)
    } else {
        (Dim::Time, 60)
    }
}

/// Number words people write instead of digits.
pub(crate) fn number_word(w: &str) -> Option<u64> {
    Some(match w {
        "one" => 1,
        "two" => 2,
        "three" => 3,
        "four" => 4,
        "five" => 5,
        "six" => 6,
        "seven" => 7,
        "eight" => 8,
        "nine" => 9,
        "ten" => 10,
        "eleven" => 11,
        "twelve" | "dozen" => 12,
        "fifteen" => 15,
        "twenty" => 20,
        "thirty" => 30,
        "forty" => 40,
        "fifty" => 50,
        "hundred" => 100,
        _ => return None,
    })
}

/// `value × multiplier`, rounded, saturating.
pub(crate) fn scale(value: f64, mult: u64) -> u64 {
    let v = value * mult as f64;
    if !v.is_finite() || v <= 0.0 {
        0
    } else if v >= u64::MAX as f64 {
        u64::MAX
    } else {
        v.round() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_binary() {
        assert_eq!(unit("MB"), None, "units are matched in lower case");
        assert_eq!(unit("mb"), Some((Dim::Size, 1_048_576)));
        assert_eq!(
            scale(1.5, unit("g").map(|u| u.1).unwrap_or(0)),
            1_610_612_736
        );
        assert_eq!(scale(100.0, 1_048_576), 104_857_600);
    }

    #[test]
    fn durations_are_seconds() {
        assert_eq!(unit("days").map(|u| u.1), Some(86_400));
        assert_eq!(unit("week").map(|u| u.1), Some(604_800));
        assert_eq!(resolve_m(false), (Dim::Time, 60));
        assert_eq!(number_word("five"), Some(5));
    }
}
