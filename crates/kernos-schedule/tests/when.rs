//! What a schedule's timing means: plain language and cron expressions, read the way a person
//! means them, in their time zone, across daylight-saving changes.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use kernos_schedule::{DateTime, ScheduleError, Tz, Utc, When};

fn utc(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

/// The next `n` fire times after `from`, as wall times in the schedule's zone.
fn next_n(when: &When, from: &str, n: usize) -> Vec<String> {
    let mut at = utc(from);
    (0..n)
        .map(|_| {
            at = when.next_after(at).unwrap();
            at.with_timezone(&when.zone()).to_rfc3339()
        })
        .collect()
}

#[test]
fn plain_language_reads_as_people_write_it() {
    // (what a person writes, the cron expression it means, how Kernos says it back)
    let table = [
        (
            "every day at 03:00",
            "0 0 3 * * *",
            "every day at 03:00 (UTC)",
        ),
        ("daily at 3am", "0 0 3 * * *", "every day at 03:00 (UTC)"),
        (
            "at 03:00 every day",
            "0 0 3 * * *",
            "every day at 03:00 (UTC)",
        ),
        (
            "Every Day At 3:00 PM",
            "0 0 15 * * *",
            "every day at 15:00 (UTC)",
        ),
        ("every 5 minutes", "0 */5 * * * *", "every 5 minutes (UTC)"),
        (
            "every 30 seconds",
            "*/30 * * * * *",
            "every 30 seconds (UTC)",
        ),
        ("every minute", "0 * * * * *", "every minute (UTC)"),
        ("every 2 hours", "0 0 */2 * * *", "every 2 hours (UTC)"),
        ("hourly", "0 0 * * * *", "every hour (UTC)"),
        ("daily", "0 0 0 * * *", "every day at 00:00 (UTC)"),
        ("weekly", "0 0 0 * * 1", "every Monday at 00:00 (UTC)"),
        (
            "monthly",
            "0 0 0 1 * *",
            "on day 1 of every month at 00:00 (UTC)",
        ),
        (
            "yearly",
            "0 0 0 1 1 *",
            "every year on 1 January at 00:00 (UTC)",
        ),
        (
            "weekly on monday at 9:30",
            "0 30 9 * * 1",
            "every Monday at 09:30 (UTC)",
        ),
        (
            "every weekday at 18:00",
            "0 0 18 * * 1,2,3,4,5",
            "every weekday (Monday to Friday) at 18:00 (UTC)",
        ),
        (
            "every monday, wednesday and friday at noon",
            "0 0 12 * * 1,3,5",
            "every Monday, Wednesday and Friday at 12:00 (UTC)",
        ),
        (
            "on the 1st of every month at 02:00",
            "0 0 2 1 * *",
            "on day 1 of every month at 02:00 (UTC)",
        ),
        (
            "on the last day of every month at 23:30",
            "0 30 23 L * *",
            "on the last day of every month at 23:30 (UTC)",
        ),
        (
            "on the first monday of every month at 9am",
            "0 0 9 * * 1#1",
            "on the first Monday of every month at 09:00 (UTC)",
        ),
        (
            "last friday of the month at 17:00",
            "0 0 17 * * 5L",
            "on the last Friday of every month at 17:00 (UTC)",
        ),
        ("every sunday", "0 0 0 * * 0", "every Sunday at 00:00 (UTC)"),
        (
            "every day at 03:00:30",
            "30 0 3 * * *",
            "every day at 03:00:30 (UTC)",
        ),
        (
            "every day at midnight",
            "0 0 0 * * *",
            "every day at 00:00 (UTC)",
        ),
        (
            "every day at 03:00 in Europe/Paris",
            "0 0 3 * * *",
            "every day at 03:00 (Europe/Paris)",
        ),
        ("hourly UTC", "0 0 * * * *", "every hour (UTC)"),
        (
            "daily at 7 in america/new_york",
            "0 0 7 * * *",
            "every day at 07:00 (America/New_York)",
        ),
        // Five words starting with a number look like cron but read as plain language.
        (
            "3 pm every monday friday",
            "0 0 15 * * 1,5",
            "every Monday and Friday at 15:00 (UTC)",
        ),
    ];
    for (text, cron, said) in table {
        let when = When::parse(text, Tz::UTC).unwrap_or_else(|e| panic!("{text:?}: {e}"));
        assert_eq!(when.cron_expr(), Some(cron), "{text:?}");
        assert_eq!(when.describe(), said, "{text:?}");
        assert_eq!(when.text(), text);
    }
}

#[test]
fn intervals_that_do_not_divide_the_clock_count_from_the_epoch() {
    let when = When::parse("every 7 minutes", Tz::UTC).unwrap();
    assert_eq!(when.cron_expr(), None);
    assert_eq!(when.describe(), "every 7 minutes");
    let times = next_n(&when, "1970-01-01T00:00:00Z", 2);
    assert_eq!(
        times,
        ["1970-01-01T00:07:00+00:00", "1970-01-01T00:14:00+00:00"]
    );
    let ninety = When::parse("every 90 seconds", Tz::UTC).unwrap();
    assert_eq!(ninety.describe(), "every 90 seconds");
}

#[test]
fn the_default_zone_applies_when_none_is_written() {
    let paris = When::parse("every day at 03:00", Tz::Europe__Paris).unwrap();
    assert_eq!(paris.zone(), Tz::Europe__Paris);
    let tokyo = When::parse("every day at 03:00 in Asia/Tokyo", Tz::Europe__Paris).unwrap();
    assert_eq!(tokyo.zone(), Tz::Asia__Tokyo);
    assert_eq!(
        next_n(&tokyo, "2025-06-01T00:00:00Z", 1),
        ["2025-06-02T03:00:00+09:00"]
    );
}

#[test]
fn unknown_wording_names_the_word_and_shows_examples() {
    let not_understood = |text: &str, word: &str| match When::parse(text, Tz::UTC) {
        Err(e @ ScheduleError::NotUnderstood { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains(&format!("{word:?}")), "{text:?}: {msg}");
            assert!(
                msg.contains("every day at 03:00"),
                "an example is shown: {msg}"
            );
        }
        other => panic!("{text:?}: expected not understood, got {other:?}"),
    };
    not_understood("every fortnight", "fortnight");
    not_understood("every 5", "5");
    not_understood("daily at 03:00 please", "please");
    not_understood("every blue moon", "blue");

    let conflict = |text: &str, says: &str| match When::parse(text, Tz::UTC) {
        Err(e @ ScheduleError::Conflict { .. }) => {
            assert!(e.to_string().contains(says), "{text:?}: {e}")
        }
        other => panic!("{text:?}: expected a conflict, got {other:?}"),
    };
    conflict("every 5 minutes at 03:00", "interval");
    conflict("every day on monday", "does not fit");
    conflict("every 2 days", "not supported");
    conflict("at 3:00 at 4:00", "repeats");
    conflict("on the 32nd of every month", "does not exist");
    conflict("every", "nothing about when");

    assert!(matches!(
        When::parse("daily at 25:00", Tz::UTC),
        Err(ScheduleError::BadTime { .. })
    ));
    assert!(matches!(
        When::parse("daily at 13pm", Tz::UTC),
        Err(ScheduleError::BadTime { .. })
    ));
    assert!(matches!(
        When::parse("daily in Mars/Olympus_Mons", Tz::UTC),
        Err(ScheduleError::UnknownZone(_))
    ));
    assert_eq!(When::parse("   ", Tz::UTC), Err(ScheduleError::Empty));
    assert!(matches!(
        When::parse("0 0 99 * * *", Tz::UTC),
        Err(ScheduleError::BadCron { .. })
    ));
}

#[test]
fn cron_expressions_with_seconds_l_hash_and_w() {
    let cases = [
        // seconds first, six fields
        (
            "*/15 * * * * *",
            "2025-01-01T00:00:00Z",
            vec![
                "2025-01-01T00:00:15+00:00",
                "2025-01-01T00:00:30+00:00",
                "2025-01-01T00:00:45+00:00",
            ],
        ),
        // five fields: seconds are 0
        (
            "30 2 * * *",
            "2025-01-01T00:00:00Z",
            vec!["2025-01-01T02:30:00+00:00", "2025-01-02T02:30:00+00:00"],
        ),
        // L: the last day of the month, leap year included
        (
            "0 0 12 L * *",
            "2024-01-31T13:00:00Z",
            vec!["2024-02-29T12:00:00+00:00", "2024-03-31T12:00:00+00:00"],
        ),
        // #: the second Monday
        (
            "0 0 9 * * MON#2",
            "2025-01-01T00:00:00Z",
            vec!["2025-01-13T09:00:00+00:00", "2025-02-10T09:00:00+00:00"],
        ),
        // 5L: the last Friday
        (
            "0 0 17 * * 5L",
            "2025-01-01T00:00:00Z",
            vec!["2025-01-31T17:00:00+00:00", "2025-02-28T17:00:00+00:00"],
        ),
        // W: the weekday nearest the 15th (2025-03-15 is a Saturday, 2025-06-15 a Sunday)
        (
            "0 0 8 15W 3,6 *",
            "2025-01-01T00:00:00Z",
            vec!["2025-03-14T08:00:00+00:00", "2025-06-16T08:00:00+00:00"],
        ),
        // a nickname
        (
            "@hourly",
            "2025-01-01T00:30:00Z",
            vec!["2025-01-01T01:00:00+00:00"],
        ),
    ];
    for (expr, from, want) in cases {
        let when = When::parse(expr, Tz::UTC).unwrap_or_else(|e| panic!("{expr:?}: {e}"));
        assert_eq!(when.cron_expr(), Some(expr));
        assert_eq!(next_n(&when, from, want.len()), want, "{expr:?}");
    }
    let described = When::parse("0 30 9 * * MON-FRI", Tz::UTC)
        .unwrap()
        .describe();
    assert!(
        described.contains("09:30") && described.contains("cron \"0 30 9 * * MON-FRI\""),
        "{described}"
    );
}

#[test]
fn cron_zones_written_either_way() {
    let trailing = When::parse("0 0 3 * * * Europe/Paris", Tz::UTC).unwrap();
    let prefixed = When::parse("CRON_TZ=Europe/Paris 0 0 3 * * *", Tz::UTC).unwrap();
    let with_in = When::parse("0 3 * * * in Europe/Paris", Tz::UTC).unwrap();
    for when in [&trailing, &prefixed, &with_in] {
        assert_eq!(when.zone(), Tz::Europe__Paris);
        assert_eq!(
            next_n(when, "2025-01-01T00:00:00Z", 1),
            ["2025-01-01T03:00:00+01:00"]
        );
    }
}

#[test]
fn daylight_saving_in_paris() {
    // 2025-03-30: 02:00 → 03:00 (02:30 does not exist). 2025-10-26: 03:00 → 02:00 (02:30 twice).
    let when = When::parse("every day at 02:30 in Europe/Paris", Tz::UTC).unwrap();
    assert_eq!(
        next_n(&when, "2025-03-28T12:00:00Z", 3),
        [
            "2025-03-29T02:30:00+01:00",
            "2025-03-30T03:00:00+02:00", // the skipped wall time fires once, right after the gap
            "2025-03-31T02:30:00+02:00",
        ]
    );
    assert_eq!(
        next_n(&when, "2025-10-24T12:00:00Z", 3),
        [
            "2025-10-25T02:30:00+02:00",
            "2025-10-26T02:30:00+02:00", // the repeated wall time fires once, not twice
            "2025-10-27T02:30:00+01:00",
        ]
    );
    // Calendar times stay on the wall clock: 03:00 local is 01:00 UTC in summer, 02:00 in winter.
    let three = When::parse("every day at 03:00 in Europe/Paris", Tz::UTC).unwrap();
    assert_eq!(
        three.next_after(utc("2025-07-01T00:00:00Z")),
        Some(utc("2025-07-01T01:00:00Z"))
    );
    assert_eq!(
        three.next_after(utc("2025-12-01T00:00:00Z")),
        Some(utc("2025-12-01T02:00:00Z"))
    );
    // Hourly keeps firing once an hour in absolute time through both changes.
    let hourly = When::parse("hourly in Europe/Paris", Tz::UTC).unwrap();
    let mut at = utc("2025-10-25T23:30:00Z");
    for _ in 0..5 {
        let next = hourly.next_after(at).unwrap();
        assert!(next - at <= chrono::Duration::hours(1), "{at} → {next}");
        at = next;
    }
}

#[test]
fn latest_and_counting_fire_times() {
    let when = When::parse("every 5 minutes", Tz::UTC).unwrap();
    let at = utc("2025-01-01T00:12:00Z");
    assert_eq!(
        when.latest_at_or_before(at),
        Some(utc("2025-01-01T00:10:00Z"))
    );
    assert_eq!(
        when.latest_at_or_before(utc("2025-01-01T00:10:00Z")),
        Some(utc("2025-01-01T00:10:00Z")),
        "a fire time is at-or-before itself"
    );
    // [00:00, 01:00) holds 12 five-minute marks.
    let (from, to) = (utc("2025-01-01T00:00:00Z"), utc("2025-01-01T01:00:00Z"));
    assert_eq!(when.count_between(from, to, 1000), 12);
    assert_eq!(when.count_between(from, to, 5), 5, "capped");
    let seven = When::parse("every 7 minutes", Tz::UTC).unwrap();
    let epoch = utc("1970-01-01T00:00:00Z");
    assert_eq!(
        seven.count_between(epoch, utc("1970-01-01T01:00:00Z"), 1000),
        9
    );
    assert_eq!(seven.count_between(to, from, 1000), 0);
}

#[test]
fn stored_form_round_trips_and_keeps_its_meaning() {
    for text in [
        "every day at 03:00 in Europe/Paris",
        "every 7 minutes",
        "0 0 9 * * MON#2 UTC",
    ] {
        let when = When::parse(text, Tz::UTC).unwrap();
        let json = serde_json::to_string(&when).unwrap();
        let back: When = serde_json::from_str(&json).unwrap();
        assert_eq!(back, when, "{json}");
        assert_eq!(back.describe(), when.describe());
        let at = utc("2025-05-05T05:05:05Z");
        assert_eq!(back.next_after(at), when.next_after(at));
    }
    // The compiled rule, not the words, is what a stored schedule runs by.
    let stored = r#"{"text":"some wording a later reader may not know","cron":"0 0 3 * * *","zone":"Europe/Paris","summary":"every day at 03:00"}"#;
    let when: When = serde_json::from_str(stored).unwrap();
    assert_eq!(when.describe(), "every day at 03:00 (Europe/Paris)");
    let broken = r#"{"text":"x","cron":"not cron","zone":"UTC","summary":"x"}"#;
    assert!(serde_json::from_str::<When>(broken).is_err());
}

#[test]
fn programs_can_ask_for_sub_second_intervals() {
    let when = When::every(std::time::Duration::from_millis(250)).unwrap();
    assert_eq!(when.describe(), "every 250 ms");
    assert_eq!(
        when.next_after(utc("2025-01-01T00:00:00.100Z")),
        Some(utc("2025-01-01T00:00:00.250Z"))
    );
    assert!(When::every(std::time::Duration::ZERO).is_err());
}
