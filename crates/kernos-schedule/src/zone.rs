//! Time zones: parsing the names people write, and finding the host's own zone.

use chrono_tz::Tz;

use crate::error::{Result, ScheduleError};

/// The zone named `name`: an IANA name in any letter case ("Europe/Paris", "europe/paris"),
/// or "UTC" / "GMT" / "Z".
pub fn parse_zone(name: &str) -> Result<Tz> {
    let name = name.trim();
    if ["utc", "gmt", "z", "etc/utc"].contains(&name.to_ascii_lowercase().as_str()) {
        return Ok(Tz::UTC);
    }
    if let Ok(tz) = name.parse::<Tz>() {
        return Ok(tz);
    }
    // The database spells names in title case per segment ("America/New_York", "America/Port-au-Prince"
    // being the rare exception); lower-case input is the common slip, so try that spelling.
    let titled = title_case(name);
    titled
        .parse::<Tz>()
        .map_err(|_| ScheduleError::UnknownZone(name.to_string()))
}

/// Whether `word` looks like it is meant as a zone (so an unknown one gets the zone error, not
/// the generic "not understood").
pub(crate) fn looks_like_zone(word: &str) -> bool {
    let starts_with_letter = word.chars().next().is_some_and(|c| c.is_ascii_alphabetic());
    starts_with_letter
        && (word.contains('/') || ["utc", "gmt", "z"].contains(&word.to_ascii_lowercase().as_str()))
}

/// Splits a zone off `text`: a trailing "[in] <zone>" or a leading "CRON_TZ=<zone>" /
/// "TZ=<zone>" (cronie's spelling). Returns the rest and the zone, if one was written.
pub(crate) fn split_zone(text: &str) -> Result<(String, Option<Tz>)> {
    let mut words: Vec<&str> = text.split_whitespace().collect();
    let mut zone = None;
    if let Some(first) = words.first()
        && let Some((key, name)) = first.split_once('=')
        && (key.eq_ignore_ascii_case("cron_tz") || key.eq_ignore_ascii_case("tz"))
    {
        zone = Some(parse_zone(name)?);
        words.remove(0);
    }
    if zone.is_none()
        && let Some(last) = words.last()
        && looks_like_zone(last)
    {
        zone = Some(parse_zone(last)?);
        words.pop();
        if words
            .last()
            .is_some_and(|w| w.eq_ignore_ascii_case("in") || w.eq_ignore_ascii_case("tz"))
        {
            words.pop();
        }
    }
    Ok((words.join(" "), zone))
}

/// The zone this host runs in: `$TZ` if set, else the target of `/etc/localtime`, else
/// `/etc/timezone`, else UTC. Plain-language schedules without "in <zone>" use the zone the
/// daemon passes, normally this one.
pub fn host_zone() -> Tz {
    if let Ok(tz) = std::env::var("TZ")
        && let Ok(zone) = parse_zone(tz.trim_start_matches(':'))
    {
        return zone;
    }
    if let Ok(target) = std::fs::read_link("/etc/localtime")
        && let Some((_, name)) = target.to_string_lossy().split_once("zoneinfo/")
        && let Ok(zone) = parse_zone(name)
    {
        return zone;
    }
    if let Ok(text) = std::fs::read_to_string("/etc/timezone")
        && let Ok(zone) = parse_zone(text.trim())
    {
        return zone;
    }
    Tz::UTC
}

/// "europe/paris" → "Europe/Paris", "america/new_york" → "America/New_York".
fn title_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut start = true;
    for c in name.chars() {
        if start {
            out.extend(c.to_uppercase());
        } else {
            out.extend(c.to_lowercase());
        }
        start = matches!(c, '/' | '_' | '-');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_in_any_case() {
        assert_eq!(parse_zone("Europe/Paris"), Ok(Tz::Europe__Paris));
        assert_eq!(parse_zone("europe/paris"), Ok(Tz::Europe__Paris));
        assert_eq!(parse_zone("america/new_york"), Ok(Tz::America__New_York));
        assert_eq!(parse_zone("utc"), Ok(Tz::UTC));
        assert!(parse_zone("Mars/Olympus").is_err());
    }

    #[test]
    fn zones_split_off_either_end() {
        let (rest, zone) = split_zone("every day at 03:00 in Europe/Paris").unwrap();
        assert_eq!(
            (rest.as_str(), zone),
            ("every day at 03:00", Some(Tz::Europe__Paris))
        );
        let (rest, zone) = split_zone("CRON_TZ=Asia/Tokyo 0 3 * * *").unwrap();
        assert_eq!((rest.as_str(), zone), ("0 3 * * *", Some(Tz::Asia__Tokyo)));
        let (rest, zone) = split_zone("*/5 * * * *").unwrap();
        assert_eq!((rest.as_str(), zone), ("*/5 * * * *", None));
        assert!(split_zone("daily in Mars/Olympus").is_err());
    }
}
