//! Plain-language timing ("every day at 03:00", "every 5 minutes", "weekly on monday at 9:30")
//! turned into a cron expression with seconds, or a fixed interval.
//!
//! The words are read as a bag of slots rather than a fixed sentence, so "at 03:00 every day",
//! "every day at 03:00" and "daily at 3am" mean the same. Every word must fill a slot or be one
//! of a few fillers ("every", "on", "the", "at", …); the first word that does neither is named in
//! the error, so nothing the user wrote is silently ignored.

use std::collections::BTreeSet;

use crate::error::{Result, ScheduleError};

/// What plain language compiles to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Plain {
    /// A fixed interval that does not divide the minute, hour or day evenly ("every 7 minutes"),
    /// counted from the Unix epoch.
    Every {
        /// The interval in seconds.
        secs: u64,
    },
    /// A six-field cron expression (seconds first).
    Cron {
        /// The expression.
        expr: String,
    },
}

/// The compiled timing and a plain-language summary of it, without zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Parsed {
    pub rule: Plain,
    pub summary: String,
}

/// Longest interval accepted: a year and a day.
const MAX_INTERVAL_SECS: u64 = 366 * 86_400;

const DAY_NAMES: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

/// Words that carry no timing of their own.
const FILLERS: &[&str] = &[
    "every", "each", "on", "the", "of", "at", "and", "once", "a", "per", "month's",
];

/// A calendar period named by a word ("daily", "every week").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Period {
    Hour,
    Day,
    Week,
    Month,
    Year,
}

/// A time of day: hour, minute, second.
type TimeOfDay = (u32, u32, u32);

/// Which day of the month.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MonthDay {
    Day(u8),
    Last,
}

/// Which occurrence of a weekday in the month: 1–5, or the last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Nth {
    Number(u8),
    Last,
}

/// The slots the words fill.
#[derive(Debug, Default)]
struct Slots {
    interval: Option<u64>,
    time: Option<TimeOfDay>,
    days: BTreeSet<u8>,
    days_phrase: Option<&'static str>,
    nth: Option<(Nth, u8)>,
    month_day: Option<MonthDay>,
    period: Option<Period>,
}

/// Parses plain-language timing (zone already split off).
pub(crate) fn parse(text: &str) -> Result<Parsed> {
    let lowered = text.to_lowercase().replace(',', " ");
    let words: Vec<&str> = lowered.split_whitespace().collect();
    if words.is_empty() {
        return Err(ScheduleError::Empty);
    }
    let slots = read_slots(text, &words)?;
    build(text, slots)
}

fn not_understood(text: &str, word: &str) -> ScheduleError {
    ScheduleError::NotUnderstood {
        text: text.to_string(),
        word: word.to_string(),
    }
}

fn conflict(text: &str, reason: impl Into<String>) -> ScheduleError {
    ScheduleError::Conflict {
        text: text.to_string(),
        reason: reason.into(),
    }
}

/// Fills the slots from the words, or names the first word that fits nowhere.
fn read_slots(text: &str, words: &[&str]) -> Result<Slots> {
    let mut s = Slots::default();
    let mut i = 0;
    while i < words.len() {
        let w = words[i];
        let next = words.get(i + 1).copied();
        let mut used = 1;
        if FILLERS.contains(&w) {
        } else if let Some(p) = period_word(w) {
            set_once(text, &mut s.period, p, w)?;
        } else if let Some(nth) = ordinal_word(w)
            && let Some(dow) = next.and_then(day_of_week)
        {
            // Before units: "second monday" is a weekday of the month, "every second" is not.
            set_once(text, &mut s.nth, (nth, dow), w)?;
            used = 2;
        } else if matches!(w, "second" | "sec" | "minute" | "min" | "hour" | "hr") {
            // "every minute": an interval of one unit.
            set_once(text, &mut s.interval, unit_secs(w).unwrap_or(1), w)?;
        } else if let Some((days, phrase)) = day_set(w) {
            s.days.extend(days);
            if phrase.is_some() {
                s.days_phrase = phrase;
            }
        } else if w == "last" && matches!(next, Some("day")) {
            set_once(text, &mut s.month_day, MonthDay::Last, w)?;
            used = 2;
        } else if let Some(n) = numeric_ordinal(w) {
            if let Some(dow) = next.and_then(day_of_week) {
                if !(1..=5).contains(&n) {
                    return Err(conflict(
                        text,
                        format!("a month has at most 5 of any weekday, not {n}"),
                    ));
                }
                set_once(text, &mut s.nth, (Nth::Number(n), dow), w)?;
                used = 2;
            } else {
                if !(1..=31).contains(&n) {
                    return Err(conflict(text, format!("day {n} of a month does not exist")));
                }
                set_once(text, &mut s.month_day, MonthDay::Day(n), w)?;
                if next == Some("day") {
                    used = 2;
                }
            }
        } else if let Some((time, took)) = time_at(words, i)? {
            set_once(text, &mut s.time, time, w)?;
            used = took;
        } else if let Ok(n) = w.parse::<u64>() {
            let Some(unit_word) = next else {
                return Err(not_understood(text, w));
            };
            if let Some(unit) = unit_secs(unit_word) {
                let secs = n
                    .checked_mul(unit)
                    .filter(|secs| (1..=MAX_INTERVAL_SECS).contains(secs))
                    .ok_or_else(|| ScheduleError::BadInterval(format!("{w} {unit_word}")))?;
                set_once(text, &mut s.interval, secs, w)?;
                used = 2;
            } else if matches!(unit_word, "day" | "days" | "week" | "weeks") {
                return Err(conflict(
                    text,
                    format!(
                        "\"every {n} {unit_word}\" is not supported (months do not divide evenly); \
                         name the days (\"every monday and thursday at 03:00\") or use a cron expression"
                    ),
                ));
            } else {
                return Err(not_understood(text, w));
            }
        } else {
            return Err(not_understood(text, w));
        }
        i += used;
    }
    Ok(s)
}

/// Sets a slot that may be given only once ("at 3:00 at 4:00" is a conflict, not the last wins).
fn set_once<T>(text: &str, slot: &mut Option<T>, value: T, word: &str) -> Result<()> {
    if slot.is_some() {
        return Err(conflict(
            text,
            format!("{word:?} repeats something already said"),
        ));
    }
    *slot = Some(value);
    Ok(())
}

fn period_word(w: &str) -> Option<Period> {
    Some(match w {
        "hourly" => Period::Hour,
        "daily" | "nightly" | "day" => Period::Day,
        "weekly" | "week" => Period::Week,
        "monthly" | "month" => Period::Month,
        "yearly" | "annually" | "year" => Period::Year,
        _ => return None,
    })
}

/// Seconds in one of a time unit, singular or plural.
fn unit_secs(w: &str) -> Option<u64> {
    Some(match w {
        "second" | "seconds" | "sec" | "secs" | "s" => 1,
        "minute" | "minutes" | "min" | "mins" | "m" => 60,
        "hour" | "hours" | "hr" | "hrs" | "h" => 3600,
        _ => return None,
    })
}

/// 0 = Sunday … 6 = Saturday, from a day's name, short name or plural.
fn day_of_week(w: &str) -> Option<u8> {
    let w = w.strip_suffix('s').filter(|s| s.len() >= 3).unwrap_or(w);
    let day = match w {
        "sunday" | "sun" => 0,
        "monday" | "mon" => 1,
        "tuesday" | "tue" | "tues" => 2,
        "wednesday" | "wed" => 3,
        "thursday" | "thu" | "thur" | "thurs" => 4,
        "friday" | "fri" => 5,
        "saturday" | "sat" => 6,
        _ => return None,
    };
    Some(day)
}

/// A day, or a named group of days, with the phrase the summary uses for a group.
fn day_set(w: &str) -> Option<(Vec<u8>, Option<&'static str>)> {
    match w {
        "weekday" | "weekdays" => Some((vec![1, 2, 3, 4, 5], Some("weekday (Monday to Friday)"))),
        "weekend" | "weekends" => Some((vec![6, 0], Some("weekend day (Saturday and Sunday)"))),
        _ => day_of_week(w).map(|d| (vec![d], None)),
    }
}

/// "first" … "fifth", "last" (only meaningful before a weekday).
fn ordinal_word(w: &str) -> Option<Nth> {
    Some(match w {
        "first" => Nth::Number(1),
        "second" => Nth::Number(2),
        "third" => Nth::Number(3),
        "fourth" => Nth::Number(4),
        "fifth" => Nth::Number(5),
        "last" => Nth::Last,
        _ => return None,
    })
}

/// "1st", "2nd", "23rd", "15th".
fn numeric_ordinal(w: &str) -> Option<u8> {
    let digits = w
        .strip_suffix("st")
        .or_else(|| w.strip_suffix("nd"))
        .or_else(|| w.strip_suffix("rd"))
        .or_else(|| w.strip_suffix("th"))?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// A time of day starting at word `i`: "03:00", "3:00:30", "3am", "3:30 pm", "noon",
/// "midnight", or a bare hour right after "at" ("at 3"). Returns the time and how many words it
/// took, `None` when word `i` is no time at all.
fn time_at(words: &[&str], i: usize) -> Result<Option<(TimeOfDay, usize)>> {
    let w = words[i];
    match w {
        "noon" | "midday" => return Ok(Some(((12, 0, 0), 1))),
        "midnight" => return Ok(Some(((0, 0, 0), 1))),
        _ => {}
    }
    let (body, mut meridiem) = match w.strip_suffix("am").or_else(|| w.strip_suffix("a.m.")) {
        Some(b) => (b, Some(false)),
        None => match w.strip_suffix("pm").or_else(|| w.strip_suffix("p.m.")) {
            Some(b) => (b, Some(true)),
            None => (w, None),
        },
    };
    if body.is_empty() || !body.bytes().all(|b| b.is_ascii_digit() || b == b':') {
        return Ok(None);
    }
    let mut took = 1;
    if meridiem.is_none() {
        match words.get(i + 1).copied() {
            Some("am" | "a.m.") => (meridiem, took) = (Some(false), 2),
            Some("pm" | "p.m.") => (meridiem, took) = (Some(true), 2),
            Some("o'clock" | "oclock") => took = 2,
            _ => {}
        }
    }
    let bare_hour = !body.contains(':');
    let after_at = i > 0 && words[i - 1] == "at";
    if bare_hour && meridiem.is_none() && took == 1 && !after_at {
        // A lone number is an interval count ("every 5 minutes"), not a time.
        return Ok(None);
    }
    let bad = || ScheduleError::BadTime {
        time: w.to_string(),
    };
    let parts: Vec<&str> = body.split(':').collect();
    if parts.len() > 3 || parts.iter().any(|p| p.is_empty() || p.len() > 2) {
        return Err(bad());
    }
    let num = |k: usize| {
        parts
            .get(k)
            .map_or(Ok(0), |p| p.parse::<u32>().map_err(|_| bad()))
    };
    let (mut h, m, s) = (num(0)?, num(1)?, num(2)?);
    if let Some(pm) = meridiem {
        if !(1..=12).contains(&h) {
            return Err(bad());
        }
        h = match (h, pm) {
            (12, false) => 0,
            (12, true) => 12,
            (h, true) => h + 12,
            (h, false) => h,
        };
    }
    if h > 23 || m > 59 || s > 59 {
        return Err(bad());
    }
    Ok(Some(((h, m, s), took)))
}

/// Turns filled slots into one rule, or says what does not fit together.
fn build(text: &str, s: Slots) -> Result<Parsed> {
    let has_calendar = s.time.is_some()
        || !s.days.is_empty()
        || s.nth.is_some()
        || s.month_day.is_some()
        || s.period.is_some();
    if let Some(secs) = s.interval {
        if has_calendar {
            return Err(conflict(
                text,
                "an interval (\"every 5 minutes\") cannot also name a time of day, days or a period",
            ));
        }
        return Ok(interval(secs));
    }
    if !has_calendar {
        return Err(conflict(text, "it says nothing about when"));
    }
    let (h, m, sec) = s.time.unwrap_or((0, 0, 0));
    let at = time_text(h, m, sec);
    let calendar = |dom: &str, month: &str, dow: &str| format!("{sec} {m} {h} {dom} {month} {dow}");
    let several_kinds = [!s.days.is_empty(), s.nth.is_some(), s.month_day.is_some()]
        .iter()
        .filter(|b| **b)
        .count()
        > 1;
    if several_kinds {
        return Err(conflict(
            text,
            "give either weekdays, a weekday of the month, or a day of the month, not several",
        ));
    }
    if s.period == Some(Period::Hour) {
        if s.time.is_some() || has_days(&s) {
            return Err(conflict(
                text,
                "\"hourly\" cannot also name a time of day or days",
            ));
        }
        return Ok(interval(3600));
    }
    if let Some((nth, dow)) = s.nth {
        require_period(text, s.period, &[Period::Month], "a weekday of the month")?;
        let (field, which) = match nth {
            Nth::Number(n) => (
                format!("{dow}#{n}"),
                ["first", "second", "third", "fourth", "fifth"][usize::from(n - 1)],
            ),
            Nth::Last => (format!("{dow}L"), "last"),
        };
        let day = DAY_NAMES[usize::from(dow)];
        return Ok(cron(
            calendar("*", "*", &field),
            format!("on the {which} {day} of every month at {at}"),
        ));
    }
    if let Some(md) = s.month_day {
        let year = s.period == Some(Period::Year);
        require_period(
            text,
            s.period,
            &[Period::Month, Period::Year],
            "a day of the month",
        )?;
        let (field, what) = match md {
            MonthDay::Day(n) => (n.to_string(), format!("day {n}")),
            MonthDay::Last => ("L".to_string(), "the last day".to_string()),
        };
        if year {
            return Ok(cron(
                calendar(&field, "1", "*"),
                format!("every year on {what} of January at {at}"),
            ));
        }
        return Ok(cron(
            calendar(&field, "*", "*"),
            format!("on {what} of every month at {at}"),
        ));
    }
    if !s.days.is_empty() {
        require_period(text, s.period, &[Period::Week], "weekdays")?;
        let field = s
            .days
            .iter()
            .map(u8::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let named = match s.days_phrase.filter(|_| is_group(&s.days)) {
            Some(phrase) => phrase.to_string(),
            None => join_and(s.days.iter().map(|d| DAY_NAMES[usize::from(*d)])),
        };
        return Ok(cron(
            calendar("*", "*", &field),
            format!("every {named} at {at}"),
        ));
    }
    Ok(match s.period {
        Some(Period::Week) => cron(calendar("*", "*", "1"), format!("every Monday at {at}")),
        Some(Period::Month) => cron(
            calendar("1", "*", "*"),
            format!("on day 1 of every month at {at}"),
        ),
        Some(Period::Year) => cron(
            calendar("1", "1", "*"),
            format!("every year on 1 January at {at}"),
        ),
        _ => cron(calendar("*", "*", "*"), format!("every day at {at}")),
    })
}

fn has_days(s: &Slots) -> bool {
    !s.days.is_empty() || s.nth.is_some() || s.month_day.is_some()
}

/// Whether `days` is exactly the weekdays or exactly the weekend (so the group's name applies).
fn is_group(days: &BTreeSet<u8>) -> bool {
    let v: Vec<u8> = days.iter().copied().collect();
    v == [1, 2, 3, 4, 5] || v == [0, 6]
}

/// The period word, if any, must be one of `allowed` ("every day on monday" says two things).
fn require_period(
    text: &str,
    period: Option<Period>,
    allowed: &[Period],
    what: &str,
) -> Result<()> {
    match period {
        Some(p) if !allowed.contains(&p) => Err(conflict(
            text,
            format!("{what} does not fit with {}", period_name(p)),
        )),
        _ => Ok(()),
    }
}

fn period_name(p: Period) -> &'static str {
    match p {
        Period::Hour => "every hour",
        Period::Day => "every day",
        Period::Week => "every week",
        Period::Month => "every month",
        Period::Year => "every year",
    }
}

fn cron(expr: String, summary: String) -> Parsed {
    Parsed {
        rule: Plain::Cron { expr },
        summary,
    }
}

/// An interval: a cron expression when it divides the minute, hour or day evenly (so it stays
/// on round clock times in the schedule's zone), a fixed interval otherwise.
fn interval(secs: u64) -> Parsed {
    let summary = interval_text(secs);
    let step = |n: u64| {
        if n == 1 {
            "*".to_string()
        } else {
            format!("*/{n}")
        }
    };
    let expr = if secs < 60 && 60 % secs == 0 {
        Some(format!("{} * * * * *", step(secs)))
    } else if secs % 60 == 0 && secs < 3600 && 60 % (secs / 60) == 0 {
        Some(format!("0 {} * * * *", step(secs / 60)))
    } else if secs % 3600 == 0 && secs < 86_400 && 24 % (secs / 3600) == 0 {
        Some(format!("0 0 {} * * *", step(secs / 3600)))
    } else if secs == 86_400 {
        Some("0 0 0 * * *".to_string())
    } else {
        None
    };
    Parsed {
        rule: match expr {
            Some(expr) => Plain::Cron { expr },
            None => Plain::Every { secs },
        },
        summary,
    }
}

/// "every 5 minutes", "every hour", "every 90 seconds".
pub(crate) fn interval_text(secs: u64) -> String {
    let (n, unit) = if secs % 3600 == 0 {
        (secs / 3600, "hour")
    } else if secs % 60 == 0 {
        (secs / 60, "minute")
    } else {
        (secs, "second")
    };
    if n == 1 {
        format!("every {unit}")
    } else {
        format!("every {n} {unit}s")
    }
}

/// "03:00", or "03:00:30" when there are seconds.
fn time_text(h: u32, m: u32, s: u32) -> String {
    if s == 0 {
        format!("{h:02}:{m:02}")
    } else {
        format!("{h:02}:{m:02}:{s:02}")
    }
}

/// "Monday", "Monday and Friday", "Monday, Wednesday and Friday".
fn join_and<'a>(items: impl Iterator<Item = &'a str>) -> String {
    let items: Vec<&str> = items.collect();
    match items.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        Some((last, _)) => (*last).to_string(),
        None => String::new(),
    }
}
