//! [`When`]: a schedule's timing, from a cron expression or plain language, in a time zone.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds};
use serde::{Deserialize, Serialize};

use crate::error::{Result, ScheduleError};
use crate::plain::{self, Plain};
use crate::zone::{parse_zone, split_zone};

/// When a schedule fires.
///
/// Made by [`When::parse`] from what a person wrote: a cron expression (five fields, or six with
/// seconds first, or seven with a year; `L`, `W`, `#`, names and `@daily`-style nicknames as
/// croner reads them) or plain language ("every day at 03:00"), either one with a zone ("in
/// Europe/Paris", "UTC", or cronie's `CRON_TZ=Europe/Paris` prefix). Calendar times are wall
/// times in that zone, so "every day at 03:00 in Europe/Paris" stays at 03:00 across DST; a
/// wall time the spring change skips fires once at the first instant after the gap, and one the
/// autumn change repeats fires once (croner's rules, the ones cron users expect).
///
/// Serialised as what was written plus the compiled rule and zone, so a stored schedule means
/// the same after an upgrade even if the plain-language reader changes.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(try_from = "WhenRepr", into = "WhenRepr")]
pub struct When {
    text: String,
    rule: Rule,
    zone: Tz,
    summary: String,
}

/// The compiled timing.
#[derive(Clone, Debug)]
enum Rule {
    /// Every `period_ms` milliseconds, counted from the Unix epoch (zone plays no part).
    Every { period_ms: u64 },
    /// A cron expression, evaluated in the zone.
    Cron { expr: String, cron: Box<Cron> },
}

impl When {
    /// Reads a schedule's timing as a person wrote it. `default_zone` applies when the text names
    /// none (the daemon passes the host's zone, see [`crate::host_zone`]).
    pub fn parse(text: &str, default_zone: Tz) -> Result<When> {
        let (rest, zone) = split_zone(text)?;
        let zone = zone.unwrap_or(default_zone);
        if rest.is_empty() {
            return Err(ScheduleError::Empty);
        }
        let parsed = if looks_like_cron(&rest) {
            match When::cron(&rest, zone) {
                Ok(mut when) => {
                    when.text = text.trim().to_string();
                    return Ok(when);
                }
                // "3 pm every working day" has the shape of cron; if it reads as plain
                // language, that is what was meant, else the cron error says more.
                Err(cron_error) => plain::parse(&rest).map_err(|_| cron_error)?,
            }
        } else {
            plain::parse(&rest)?
        };
        let rule = match parsed.rule {
            Plain::Every { secs } => Rule::Every {
                period_ms: secs.saturating_mul(1000),
            },
            Plain::Cron { expr } => Rule::Cron {
                cron: Box::new(compile_cron(&expr)?),
                expr,
            },
        };
        Ok(When {
            text: text.trim().to_string(),
            rule,
            zone,
            summary: parsed.summary,
        })
    }

    /// A cron expression (seconds optional) in `zone`.
    pub fn cron(expr: &str, zone: Tz) -> Result<When> {
        let expr = expr.trim();
        let cron = compile_cron(expr)?;
        Ok(When {
            text: expr.to_string(),
            summary: cron_summary(&cron, expr),
            rule: Rule::Cron {
                expr: expr.to_string(),
                cron: Box::new(cron),
            },
            zone,
        })
    }

    /// A fixed interval counted from the Unix epoch, to the millisecond (at least 1 ms). Plain
    /// language goes down to seconds; this is for programs (and the fire-accuracy bench).
    pub fn every(period: Duration) -> Result<When> {
        let period_ms = u64::try_from(period.as_millis()).unwrap_or(u64::MAX);
        if period_ms == 0 {
            return Err(ScheduleError::BadInterval(format!("{period:?}")));
        }
        let summary = if period_ms % 1000 == 0 {
            plain::interval_text(period_ms / 1000)
        } else {
            format!("every {period_ms} ms")
        };
        Ok(When {
            text: summary.clone(),
            rule: Rule::Every { period_ms },
            zone: Tz::UTC,
            summary,
        })
    }

    /// What was written.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The zone calendar times are read in.
    pub fn zone(&self) -> Tz {
        self.zone
    }

    /// The cron expression this timing compiles to, if it is one (plain language usually is:
    /// "every day at 03:00" is `0 0 3 * * *`).
    pub fn cron_expr(&self) -> Option<&str> {
        match &self.rule {
            Rule::Cron { expr, .. } => Some(expr),
            Rule::Every { .. } => None,
        }
    }

    /// A plain-language summary with its zone: "every day at 03:00 (Europe/Paris)".
    pub fn describe(&self) -> String {
        match self.rule {
            Rule::Every { .. } => self.summary.clone(),
            Rule::Cron { .. } => format!("{} ({})", self.summary, self.zone.name()),
        }
    }

    /// The first fire time strictly after `t`; `None` if there is none (a cron expression whose
    /// years are past).
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match &self.rule {
            Rule::Every { period_ms } => {
                let p = i64::try_from(*period_ms).ok()?;
                let next = t
                    .timestamp_millis()
                    .div_euclid(p)
                    .checked_add(1)?
                    .checked_mul(p)?;
                DateTime::from_timestamp_millis(next)
            }
            Rule::Cron { cron, .. } => cron
                .find_next_occurrence(&t.with_timezone(&self.zone), false)
                .ok()
                .map(|d| d.with_timezone(&Utc)),
        }
    }

    /// The last fire time at or before `t`, if any.
    pub fn latest_at_or_before(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match &self.rule {
            Rule::Every { period_ms } => {
                let p = i64::try_from(*period_ms).ok()?;
                DateTime::from_timestamp_millis(t.timestamp_millis().div_euclid(p).checked_mul(p)?)
            }
            Rule::Cron { cron, .. } => cron
                .find_previous_occurrence(&t.with_timezone(&self.zone), true)
                .ok()
                .map(|d| d.with_timezone(&Utc)),
        }
    }

    /// How many fire times fall in `[from, to)`, counting no further than `cap` (a daemon down
    /// for a month under "every second" need not count them all to know it missed many).
    pub fn count_between(&self, from: DateTime<Utc>, to: DateTime<Utc>, cap: u32) -> u32 {
        if to <= from {
            return 0;
        }
        if let Rule::Every { period_ms } = self.rule {
            let p = i64::try_from(period_ms).unwrap_or(i64::MAX);
            let first = from.timestamp_millis().div_euclid(p)
                + i64::from(from.timestamp_millis().rem_euclid(p) != 0);
            let last = (to.timestamp_millis() - 1).div_euclid(p);
            let n = (last - first + 1).max(0);
            return u32::try_from(n).unwrap_or(u32::MAX).min(cap);
        }
        let mut n = 0;
        let mut at = self
            .latest_at_or_before(from)
            .filter(|t| *t == from)
            .or_else(|| self.next_after(from));
        while let Some(t) = at {
            if t >= to || n >= cap {
                break;
            }
            n += 1;
            at = self.next_after(t);
        }
        n
    }
}

impl PartialEq for When {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
            && self.zone == other.zone
            && self.summary == other.summary
            && match (&self.rule, &other.rule) {
                (Rule::Every { period_ms: a }, Rule::Every { period_ms: b }) => a == b,
                (Rule::Cron { expr: a, .. }, Rule::Cron { expr: b, .. }) => a == b,
                _ => false,
            }
    }
}

impl Eq for When {}

impl fmt::Display for When {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

/// Croner's English description as a phrase ("at 09:30, on Monday…"), with the expression.
fn cron_summary(cron: &Cron, expr: &str) -> String {
    let described = cron.describe();
    let described = described.trim().trim_end_matches('.');
    let mut chars = described.chars();
    let phrase: String = match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    };
    format!("{phrase}; cron \"{expr}\"")
}

/// Cron if it has five to seven fields and starts like one (a digit, `*`, `?`) or is a
/// `@nickname`; plain language starts with a word.
fn looks_like_cron(text: &str) -> bool {
    let fields: Vec<&str> = text.split_whitespace().collect();
    if fields.len() == 1 && fields[0].starts_with('@') {
        return true;
    }
    let cron_chars = |f: &str| {
        f.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '*' | '?' | '/' | ',' | '-' | '#'))
    };
    (5..=7).contains(&fields.len())
        && fields[0].starts_with(|c: char| c.is_ascii_digit() || c == '*' || c == '?')
        && fields.iter().all(|f| cron_chars(f))
        && !fields.iter().any(|f| f.contains(':'))
}

/// Croner with seconds optional and the year field allowed; day-of-month and day-of-week
/// combine with OR as in Vixie cron.
fn compile_cron(expr: &str) -> Result<Cron> {
    CronParser::builder()
        .seconds(Seconds::Optional)
        .build()
        .parse(expr)
        .map_err(|e| ScheduleError::BadCron {
            expr: expr.to_string(),
            reason: e.to_string(),
        })
}

/// The stored form of a [`When`].
#[derive(Serialize, Deserialize)]
struct WhenRepr {
    /// What was written.
    text: String,
    /// The compiled cron expression, for cron rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cron: Option<String>,
    /// The interval in ms, for interval rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    every_ms: Option<u64>,
    /// The IANA zone name.
    zone: String,
    /// The plain-language summary, without zone.
    summary: String,
}

impl From<When> for WhenRepr {
    fn from(w: When) -> Self {
        let (cron, every_ms) = match w.rule {
            Rule::Cron { expr, .. } => (Some(expr), None),
            Rule::Every { period_ms } => (None, Some(period_ms)),
        };
        WhenRepr {
            text: w.text,
            cron,
            every_ms,
            zone: w.zone.name().to_string(),
            summary: w.summary,
        }
    }
}

impl TryFrom<WhenRepr> for When {
    type Error = ScheduleError;

    fn try_from(r: WhenRepr) -> Result<When> {
        let rule = match (r.cron, r.every_ms) {
            (Some(expr), _) => Rule::Cron {
                cron: Box::new(compile_cron(&expr)?),
                expr,
            },
            (None, Some(period_ms)) if period_ms > 0 => Rule::Every { period_ms },
            (None, other) => {
                return Err(ScheduleError::BadInterval(format!("{other:?} ms")));
            }
        };
        Ok(When {
            text: r.text,
            rule,
            zone: parse_zone(&r.zone)?,
            summary: r.summary,
        })
    }
}
