//! `logs.*` on log files the tests write; the machine's /var/log is never needed.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use kernos_core::{EffectKind, Target};
use kernos_tools::ToolError;
use kernos_tools::logs::Errors;
use kernos_tools::testing::World;
use serde_json::json;

#[test]
fn tail_returns_the_last_lines() {
    let w = World::new();
    let lines: Vec<String> = (1..=5000).map(|i| format!("line {i}")).collect();
    w.file("app.log", (lines.join("\n") + "\n").as_bytes());
    let (out, _) = w
        .execute("logs.tail", json!({"path": "app.log", "lines": 3}))
        .unwrap();
    assert_eq!(out.text.unwrap(), "line 4998\nline 4999\nline 5000\n");
    assert!(out.summary.unwrap().starts_with("last 3 lines of"));
    let (out, _) = w
        .execute("logs.tail", json!({"path": "app.log", "lines": 10_000}))
        .unwrap();
    assert_eq!(out.text.unwrap().lines().count(), 5000);
    let eff = w.effects("logs.tail", json!({"path": "app.log"})).unwrap();
    assert_eq!(eff.len(), 1);
    assert_eq!(eff[0].kind, EffectKind::Read);
    assert_eq!(
        eff[0].target,
        Target::Path {
            path: w.root.join("app.log"),
            recursive: false
        }
    );
}

#[test]
fn tail_of_a_big_file_reads_only_its_end() {
    let w = World::new();
    // 64 MiB of zeros (sparse: costs no disk) followed by two lines. A tail that read the
    // whole file would take long and hit its byte cap; reading from the end finds them at once.
    let path = w.root.join("big.log");
    let f = std::fs::File::create(&path).unwrap();
    f.set_len(64 << 20).unwrap();
    drop(f);
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    f.write_all(b"\nfirst\nsecond\n").unwrap();
    let start = std::time::Instant::now();
    let (out, _) = w
        .execute("logs.tail", json!({"path": "big.log", "lines": 2}))
        .unwrap();
    assert_eq!(out.text.unwrap(), "first\nsecond\n");
    assert!(!out.truncated);
    assert!(start.elapsed().as_secs() < 2);
}

#[test]
fn tail_errors_are_clear() {
    let w = World::new();
    let missing = w
        .execute("logs.tail", json!({"path": "nope.log"}))
        .unwrap_err();
    assert!(matches!(missing, ToolError::NotFound(_)), "{missing}");
    std::fs::create_dir(w.root.join("dir")).unwrap();
    let dir = w.execute("logs.tail", json!({"path": "dir"})).unwrap_err();
    assert!(dir.to_string().contains("is a directory"), "{dir}");
    w.file("empty.log", b"");
    let (out, _) = w
        .execute("logs.tail", json!({"path": "empty.log"}))
        .unwrap();
    assert_eq!(out.text.unwrap(), "");
    assert!(out.summary.unwrap().contains("is empty"));
}

/// RFC 3339 in UTC, the way rsyslog's high-precision format writes it.
fn rfc3339(t: i64) -> String {
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.000000+00:00",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Local midnight through the C library, independently of the tool's own helper.
fn local_midnight(t: i64) -> i64 {
    let tt = t as libc::time_t;
    // SAFETY: zeroed tm is valid; localtime_r and mktime only touch the structs given.
    unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        libc::localtime_r(&tt, &mut tm);
        tm.tm_hour = 0;
        tm.tm_min = 0;
        tm.tm_sec = 0;
        tm.tm_isdst = -1;
        libc::mktime(&mut tm) as i64
    }
}

fn syslog(w: &World) -> PathBuf {
    let n = now();
    let lines = [
        (
            n - 7200,
            "vm systemd[1]: Failed to start old.service - Old thing.",
        ),
        (
            n - 7000,
            "vm CRON[42]: (root) CMD (run-parts /etc/cron.hourly)",
        ),
        (
            n - 600,
            "vm kernel: [ 12.345] EXT4-fs (vda): mounted filesystem with ordered data mode. Opts: errors=remount-ro",
        ),
        (
            n - 500,
            "vm nginx[100]: bind() to 0.0.0.0:80 failed (98: Address already in use)",
        ),
        (
            n - 400,
            "vm kernel: [ 99.001] Out of memory: Killed process 4242 (java)",
        ),
        (n - 300, "vm sshd[7]: Accepted publickey for ann"),
        (n - 200, "vm nginx[100]: still running fine"),
    ];
    let text: String = lines
        .iter()
        .map(|(t, l)| format!("{} {l}\n", rfc3339(*t)))
        .collect();
    w.file("log/syslog", text.as_bytes())
}

fn world_with(files: Vec<PathBuf>) -> World {
    let mut w = World::new();
    w.registry.register(Errors::with_files(files));
    w
}

#[test]
fn errors_from_a_text_log() {
    let w0 = World::new();
    let path = syslog(&w0);
    let w = world_with(vec![path.clone()]);
    let (out, _) = w.execute("logs.errors", json!({})).unwrap();
    let msgs: Vec<&str> = out
        .rows
        .iter()
        .map(|r| r["message"].as_str().unwrap())
        .collect();
    assert_eq!(
        msgs,
        [
            "Failed to start old.service - Old thing.",
            "bind() to 0.0.0.0:80 failed (98: Address already in use)",
            "[ 99.001] Out of memory: Killed process 4242 (java)",
        ]
    );
    assert_eq!(out.rows[1]["unit"], "nginx");
    assert_eq!(out.rows[1]["level"], "err");
    assert_eq!(out.rows[2]["level"], "crit");
    assert_eq!(out.rows[0]["source"], json!(path.display().to_string()));
    let times: Vec<i64> = out
        .rows
        .iter()
        .map(|r| r["time"].as_i64().unwrap())
        .collect();
    assert!(times.windows(2).all(|t| t[0] <= t[1]), "oldest first");
    let summary = out.summary.unwrap();
    assert!(summary.contains(&path.display().to_string()), "{summary}");
    assert!(summary.contains("no priority"), "{summary}");
    let eff = w.effects("logs.errors", json!({})).unwrap();
    assert_eq!(
        eff.iter().map(|e| (e.kind, &e.target)).collect::<Vec<_>>(),
        vec![(
            EffectKind::Read,
            &Target::Path {
                path: path.clone(),
                recursive: false
            }
        )]
    );
}

#[test]
fn errors_honour_since_unit_and_limit() {
    let w0 = World::new();
    let path = syslog(&w0);
    let w = world_with(vec![path]);
    let recent = w.execute("logs.errors", json!({"since": 3600})).unwrap().0;
    assert_eq!(recent.rows.len(), 2);
    assert!(recent.summary.unwrap().contains("since"));
    let nginx = w
        .execute("logs.errors", json!({"unit": "nginx.service"}))
        .unwrap()
        .0;
    assert_eq!(nginx.rows.len(), 1);
    assert_eq!(nginx.rows[0]["unit"], "nginx");
    let last = w.execute("logs.errors", json!({"limit": 1})).unwrap().0;
    assert_eq!(last.rows.len(), 1);
    assert!(
        last.rows[0]["message"]
            .as_str()
            .unwrap()
            .contains("Out of memory")
    );
    assert!(last.truncated);
    let none = w.execute("logs.errors", json!({"since": 60})).unwrap().0;
    assert!(none.rows.is_empty());
    assert!(none.summary.unwrap().starts_with("no errors since"));
    let today = w.execute("logs.errors", json!({"today": true})).unwrap().0;
    let midnight = local_midnight(now());
    let expected = [7200, 500, 400]
        .iter()
        .filter(|ago| now() - **ago >= midnight)
        .count();
    assert_eq!(today.rows.len(), expected);
    assert!(w.execute("logs.errors", json!({"limit": 0})).is_err());
}

#[test]
fn errors_on_this_machine_name_their_source_or_say_there_is_none() {
    let w = World::new();
    let has_journal = Path::new("/run/systemd/system").is_dir();
    let has_files = [
        "/var/log/syslog",
        "/var/log/messages",
        "/var/log/kern.log",
        "/var/log/daemon.log",
        "/var/log/user.log",
        "/var/log/boot.log",
    ]
    .iter()
    .any(|p| Path::new(p).is_file());
    match w.execute("logs.errors", json!({"limit": 5})) {
        Ok((out, _)) => {
            assert!(has_journal || has_files);
            let s = out.summary.unwrap();
            assert!(s.contains("journal") || s.contains("/var/log/"), "{s}");
        }
        Err(e) => {
            if has_journal {
                // journalctl may refuse an unprivileged user; the message says why.
                assert!(e.to_string().contains("journal"), "{e}");
            } else {
                assert!(!has_files, "{e}");
                assert!(matches!(e, ToolError::Unavailable(_)), "{e}");
                assert!(e.to_string().contains("no system log"), "{e}");
            }
        }
    }
}
