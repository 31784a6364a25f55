//! `kernos journal tail | show | verify`.

use std::path::Path;
use std::process::{Command, Output};

use kernos_core::{Actor, NewEvent};
use kernos_journal::Journal;

use crate::text;

fn kernos(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kernos"))
        .args(args)
        .env("KERNOS_DATA_DIR", data)
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

fn seeded(n: u64) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let mut j = Journal::open(d.path()).unwrap();
    for i in 1..=n {
        j.append(
            &NewEvent::new(
                if i % 2 == 0 {
                    "step.finished"
                } else {
                    "step.started"
                },
                Actor::user("cli"),
            )
            .payload(serde_json::json!({"i": i})),
        )
        .unwrap();
    }
    d
}

#[test]
fn verify_ok_then_tampered() {
    let d = seeded(30);
    let ok = kernos(d.path(), &["journal", "verify"]);
    assert!(ok.status.success(), "{}", text(&ok.stderr));
    assert!(text(&ok.stdout).contains("30 events"));

    let c = rusqlite::Connection::open(d.path().join("journal.db")).unwrap();
    c.execute_batch("DROP TRIGGER events_append_only_update; UPDATE events SET payload = '{\"i\":99}' WHERE seq = 17;")
        .unwrap();
    drop(c);
    let bad = kernos(d.path(), &["journal", "verify"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        text(&bad.stdout).contains("first bad event is 17"),
        "{}",
        text(&bad.stdout)
    );
    let j = kernos(d.path(), &["journal", "verify", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&j.stdout).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["first_bad"]["seq"], 17);
}

#[test]
fn tail_and_show() {
    let d = seeded(10);
    let t = kernos(d.path(), &["journal", "tail", "-n", "3", "--json"]);
    assert!(t.status.success());
    let seqs: Vec<u64> = text(&t.stdout)
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["seq"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(seqs, vec![8, 9, 10]);
    let t = kernos(
        d.path(),
        &["journal", "tail", "--kind", "step.fin", "-n", "2"],
    );
    let out = text(&t.stdout);
    assert_eq!(out.lines().count(), 2);
    assert!(out.lines().all(|l| l.contains("step.finished")), "{out}");

    let s = kernos(d.path(), &["journal", "show", "4"]);
    assert!(s.status.success());
    assert!(text(&s.stdout).contains("\"i\": 4"));
    let missing = kernos(d.path(), &["journal", "show", "99"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        text(&missing.stderr).contains("events 1 to 10"),
        "{}",
        text(&missing.stderr)
    );
}

#[test]
fn tail_follow_sees_new_events() {
    use std::io::{BufRead, BufReader};
    let d = seeded(2);
    let mut child = Command::new(env!("CARGO_BIN_EXE_kernos"))
        .args(["journal", "tail", "-f", "--json"])
        .env("KERNOS_DATA_DIR", d.path())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert!(lines.next().unwrap().unwrap().contains("\"seq\":1"));
    assert!(lines.next().unwrap().unwrap().contains("\"seq\":2"));
    Journal::open(d.path())
        .unwrap()
        .append(&NewEvent::new("late.event", Actor::system()))
        .unwrap();
    let line = lines.next().unwrap().unwrap();
    assert!(line.contains("late.event"), "{line}");
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn empty_journal_is_reported_not_created() {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("fresh");
    let v = kernos(&data, &["journal", "verify"]);
    assert!(v.status.success());
    assert!(text(&v.stdout).contains("empty"));
    assert!(!data.exists(), "reading must not create a data directory");
}

/// A full disk under the data directory: a private tmpfs of 300 KiB, mounted in a user and
/// mount namespace of the test's own (the host never sees it), filled by real requests.
#[test]
fn a_full_disk_stops_changes_cleanly_and_loses_nothing_recorded() {
    let w = crate::World::new();
    let small = w.root().join("small");
    let out_dir = w.root().join("files");
    std::fs::create_dir_all(&small).unwrap();
    std::fs::create_dir_all(&out_dir).unwrap();
    let script = r#"
set -u
mount -t tmpfs -o size=300k tmpfs "$SMALL" || exit 99
export KERNOS_DATA_DIR="$SMALL/data"
i=0
while [ $i -lt 1000 ]; do
  "$K" --yes "write 'hello' to $OUT/f$i.txt" >/dev/null 2>"$ERR" || break
  i=$((i+1))
done
echo "runs=$i"
"$K" journal verify || exit 3
"$K" --json history >"$HIST" || exit 4
"#;
    let err = w.root().join("err");
    let hist = w.root().join("history.json");
    let out = w
        .program("unshare")
        .args(["-Urm", "sh", "-c", script])
        .env("SMALL", &small)
        .env("OUT", &out_dir)
        .env("ERR", &err)
        .env("HIST", &hist)
        .env("K", env!("CARGO_BIN_EXE_kernos"))
        .output();
    let out = match out {
        Ok(o) if o.status.code() != Some(99) && !crate::text(&o.stderr).contains("unshare:") => o,
        other => {
            eprintln!("skipped: cannot mount a private tmpfs here (unshare -Urm): {other:?}");
            return;
        }
    };
    let stdout = crate::text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", crate::text(&out.stderr));
    let runs: usize = stdout
        .lines()
        .find_map(|l| l.strip_prefix("runs="))
        .unwrap()
        .parse()
        .unwrap();
    assert!(runs > 0 && runs < 1000, "the disk never filled: {runs}");
    // The refusal says what happened and what to do.
    let e = std::fs::read_to_string(&err).unwrap();
    assert!(
        e.contains("disk holding the journal is full") && e.contains("Free some space"),
        "{e}"
    );
    // Exactly the changes that were recorded happened: the refused one wrote nothing.
    let written = std::fs::read_dir(&out_dir).unwrap().count();
    assert_eq!(written, runs);
    assert!(stdout.contains("chain intact"), "{stdout}");
    let h: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&hist).unwrap()).unwrap();
    let committed = h
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["status"] == "committed")
        .count();
    assert_eq!(committed, runs, "{h}");
}

/// What Kernos keeps is private to its owner whatever the umask or a directory made earlier:
/// the journal (and SQLite's -wal/-shm beside it) 0600, the data directory and the trash 0700;
/// the daemon refuses a data directory other users can read, and says how to fix it.
#[test]
fn the_data_directory_is_private_and_the_daemon_refuses_a_shared_one() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let w = crate::World::new();
    let f = w.file("gone.txt", "x");
    let out = w.run(&["--yes", "delete gone.txt"]);
    assert!(out.status.success(), "{}", crate::text(&out.stderr));
    assert!(!f.exists());
    assert_eq!(mode(&w.data), 0o700);
    for name in ["journal.db", "journal.db-wal", "journal.db-shm"] {
        let p = w.data.join(name);
        if p.exists() {
            assert_eq!(mode(&p), 0o600, "{name}");
        }
    }
    assert_eq!(mode(&w.data.join("trash")), 0o700);

    // A journal made before, with a loose mode, is made private when opened for writing.
    std::fs::set_permissions(
        w.data.join("journal.db"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    assert!(w.run(&["--yes", "write 'x' to new.txt"]).status.success());
    assert_eq!(mode(&w.data.join("journal.db")), 0o600);

    // A data directory others can read: the daemon does not start, and says how to fix it.
    std::fs::set_permissions(&w.data, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = w.run(&["serve", "--listen", "127.0.0.1:0"]);
    assert_eq!(out.status.code(), Some(1));
    let err = crate::text(&out.stderr);
    assert!(err.contains("chmod 700"), "{err}");
    assert!(!w.data.join("kernos.sock").exists(), "nothing left behind");
}

/// A data directory mounted read-only (in a mount namespace of the test's own): a read still
/// shows its result, with a warning that it was not recorded; a change is refused and the
/// file stays.
#[test]
fn a_read_only_data_directory_still_shows_reads_and_refuses_changes() {
    let w = crate::World::new();
    let f = w.file("keep.txt", "k");
    assert!(w.run(&["how much memory is used"]).status.success());
    let script = r#"
mount --bind -o ro "$DATA" "$DATA" || exit 99
"$K" "how much memory is used" >"$OUT1" 2>"$ERR1"; echo "read=$?"
"$K" --yes "delete keep.txt" >/dev/null 2>"$ERR2"; echo "change=$?"
"#;
    let r = w.root().to_path_buf();
    let out = w
        .program("unshare")
        .args(["-Urm", "sh", "-c", script])
        .env("DATA", &w.data)
        .env("K", env!("CARGO_BIN_EXE_kernos"))
        .env("OUT1", r.join("out1"))
        .env("ERR1", r.join("err1"))
        .env("ERR2", r.join("err2"))
        .output();
    let out = match out {
        Ok(o) if o.status.code() != Some(99) && !crate::text(&o.stderr).contains("unshare:") => o,
        other => {
            eprintln!("skipped: cannot bind-mount read-only here (unshare -Urm): {other:?}");
            return;
        }
    };
    let stdout = crate::text(&out.stdout);
    assert!(stdout.contains("read=0"), "{stdout}");
    assert!(stdout.contains("change=1"), "{stdout}");
    let shown = std::fs::read_to_string(r.join("out1")).unwrap();
    assert!(shown.contains("memory"), "the result is shown: {shown}");
    let warned = std::fs::read_to_string(r.join("err1")).unwrap();
    assert!(warned.contains("not recorded"), "{warned}");
    let refused = std::fs::read_to_string(r.join("err2")).unwrap();
    assert!(
        refused.contains("make the data directory writable"),
        "{refused}"
    );
    assert!(f.exists(), "nothing was changed");
}
