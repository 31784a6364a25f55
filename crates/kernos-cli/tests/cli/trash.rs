//! `kernos trash`: list, size and empty; emptying is journaled and undo then says why it
//! cannot put things back; undoing a copy does not fill the trash.

use serde_json::Value;

use crate::{World, text};

fn json(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}{}", text(&out.stdout), text(&out.stderr)))
}

fn ok(out: &std::process::Output) -> String {
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{all}");
    all
}

#[test]
fn trash_lists_what_deletes_kept_and_emptying_it_is_journaled_and_reported_by_undo() {
    let w = World::new();
    w.file("old.log", &"x".repeat(3000));
    w.file("data.bin", &"y".repeat(50_000));
    ok(&w.run(&["--yes", "delete old.log"]));
    ok(&w.run(&["--yes", "delete data.bin"]));
    let hist = json(&w.run(&["--json", "history"]));
    let big_tx = hist[0]["tx"].as_str().unwrap().to_owned();
    let log_tx = hist[1]["tx"].as_str().unwrap().to_owned();

    let list = json(&w.run(&["--json", "trash", "list"]));
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2, "{list:?}");
    assert_eq!(list[0]["path"], w.cwd.join("old.log").display().to_string());
    assert_eq!(list[0]["tx"], log_tx.as_str());
    assert_eq!(list[0]["bytes"], 3000);
    assert_eq!(list[1]["tx"], big_tx.as_str());
    let human = ok(&w.run(&["trash", "list"]));
    assert!(
        human.contains("old.log") && human.contains("2 items"),
        "{human}"
    );
    let size = json(&w.run(&["--json", "trash", "size"]));
    assert_eq!(size["bytes"], 53_000);

    // Without a terminal and without --yes nothing is removed.
    let refused = w.run(&["trash", "empty"]);
    assert!(!refused.status.success());
    assert_eq!(json(&w.run(&["--json", "trash", "size"]))["bytes"], 53_000);

    // Only what is larger than 10k: data.bin.
    let out = ok(&w.run(&["trash", "empty", "--larger-than", "10k", "--yes"]));
    assert!(out.contains("can no longer be undone"), "{out}");
    assert!(out.contains(&big_tx[big_tx.len() - 8..]), "{out}");
    assert_eq!(json(&w.run(&["--json", "trash", "size"]))["bytes"], 3000);

    // The journal says what went, on the transaction that put it there.
    let show = ok(&w.run(&["--json", "show", &big_tx]));
    assert!(show.contains("trash.emptied"), "{show}");

    // Undo of that transaction says plainly why it cannot put data.bin back.
    let undo = w.run(&["--yes", "undo", &big_tx]);
    let all = format!("{}{}", text(&undo.stdout), text(&undo.stderr));
    assert!(all.contains("emptied from Kernos's trash"), "{all}");
    assert!(!w.cwd.join("data.bin").exists());
    // The other one still comes back.
    ok(&w.run(&["--yes", "undo", &log_tx]));
    assert!(w.cwd.join("old.log").exists());
    let empty = ok(&w.run(&["trash", "list"]));
    assert!(empty.contains("the trash is empty"), "{empty}");
}

#[test]
fn undoing_a_copy_leaves_nothing_in_the_trash() {
    let w = World::new();
    w.file("src/a.txt", "hello");
    ok(&w.run(&["--yes", "copy src to dst"]));
    assert!(w.cwd.join("dst/a.txt").exists());
    ok(&w.run(&["--yes", "undo"]));
    assert!(!w.cwd.join("dst").exists());
    assert_eq!(json(&w.run(&["--json", "trash", "size"]))["items"], 0);
}

/// Runs `kernos args…` with the trash budget set to `max_bytes` (as the config's
/// `[trash] max_bytes`, through its environment override).
fn run_with_budget(w: &World, max_bytes: &str, args: &[&str]) -> std::process::Output {
    w.cmd(args)
        .env("KERNOS_TRASH_MAX_BYTES", max_bytes)
        .output()
        .unwrap()
}

#[test]
fn a_delete_over_the_trash_budget_names_what_goes_before_it_runs_and_undo_says_why() {
    let w = World::new();
    w.file("a.bin", &"a".repeat(4000));
    w.file("b.bin", &"b".repeat(5000));
    w.file("c.bin", &"c".repeat(3000));
    ok(&run_with_budget(&w, "10000", &["--yes", "delete a.bin"]));
    ok(&run_with_budget(&w, "10000", &["--yes", "delete b.bin"]));
    let hist = json(&w.run(&["--json", "history"]));
    let a_tx = hist[1]["tx"].as_str().unwrap().to_owned();
    let b_tx = hist[0]["tx"].as_str().unwrap().to_owned();
    let a_path = w.cwd.join("a.bin").display().to_string();

    // The preview names the oldest item that must go, in text and in JSON; a dry run
    // removes nothing.
    let text_preview = ok(&run_with_budget(
        &w,
        "10000",
        &["--dry-run", "delete c.bin"],
    ));
    assert!(
        text_preview.contains("permanently removes older trash item")
            && text_preview.contains(&a_path)
            && text_preview.contains("can no longer be undone"),
        "{text_preview}"
    );
    assert!(!text_preview.contains("b.bin ("), "{text_preview}");
    let v = json(&run_with_budget(
        &w,
        "10000",
        &["--json", "--dry-run", "delete c.bin"],
    ));
    let purge = &v["preview"]["trash"];
    assert_eq!(purge["items"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(purge["items"][0]["path"], a_path.as_str());
    assert_eq!(purge["items"][0]["tx"], a_tx.as_str());
    assert_eq!(purge["bytes"], 4000);
    assert_eq!(purge["incoming"], 3000);
    assert_eq!(json(&w.run(&["--json", "trash", "size"]))["bytes"], 9000);

    // The real delete purges exactly that, journaled on a's transaction.
    let out = ok(&run_with_budget(&w, "10000", &["--yes", "delete c.bin"]));
    assert!(out.contains(&a_path), "{out}");
    let list = json(&w.run(&["--json", "trash", "list"]));
    let paths: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert!(!paths.contains(&a_path.as_str()), "{paths:?}");
    assert_eq!(paths.len(), 2, "{paths:?}");
    assert!(ok(&w.run(&["--json", "show", &a_tx])).contains("trash budget"));

    // Undo of the purged one says what removed it and when; the others still come back.
    let undo = w.run(&["--yes", "undo", &a_tx]);
    let all = format!("{}{}", text(&undo.stdout), text(&undo.stderr));
    assert!(
        all.contains("emptied from Kernos's trash by the trash budget") && all.contains(" at 20"),
        "{all}"
    );
    assert!(!w.cwd.join("a.bin").exists());
    ok(&w.run(&["--yes", "undo", &b_tx]));
    assert_eq!(std::fs::read(w.cwd.join("b.bin")).unwrap().len(), 5000);
}

/// A delete larger than the whole budget is still put in the trash (its undo works) and says
/// so; it is what the next delete pushes out.
#[test]
fn a_delete_larger_than_the_whole_budget_is_kept_undoable_with_a_warning() {
    let w = World::new();
    w.file("small.bin", &"s".repeat(100));
    w.file("huge.bin", &"h".repeat(20_000));
    ok(&run_with_budget(&w, "10k", &["--yes", "delete small.bin"]));
    let preview = ok(&run_with_budget(
        &w,
        "10k",
        &["--dry-run", "delete huge.bin"],
    ));
    assert!(
        preview.contains("larger than the whole trash budget") && preview.contains("small.bin"),
        "{preview}"
    );
    ok(&run_with_budget(&w, "10k", &["--yes", "delete huge.bin"]));
    let size = json(&w.run(&["--json", "trash", "size"]));
    assert_eq!(size["bytes"], 20_000, "{size}");
    ok(&w.run(&["--yes", "undo"]));
    assert_eq!(std::fs::read(w.cwd.join("huge.bin")).unwrap().len(), 20_000);
}
