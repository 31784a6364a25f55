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
