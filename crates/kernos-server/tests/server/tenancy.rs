//! Organisations are isolated on the machine too (issue 14 §1, §2): on one daemon, an
//! organisation's steps reach its own workspace and nothing another organisation owns — not
//! its workspace, its trash, the undo snapshots, nor the journal — by any read tool, even with
//! every step approved by an owner; and a walk of a tree holding credentials never reads them.

use std::path::{Path, PathBuf};

use kernos_server::Role;
use serde_json::{Value, json};

use crate::{Auth, T};

/// What red writes; it must never appear in anything blue gets back.
const RED_SECRET: &str = "RED-ONLY-7f3a9c";

/// An owner of `org` submits `plan` approved up to its role and waits for the end.
async fn run(t: &T, key: &str, steps: Value) -> Value {
    let a = t
        .submit(
            Auth::Key(key),
            json!({"plan": {"steps": steps}, "auto_approve": true}),
        )
        .await;
    t.finished(Auth::Key(key), &a).await
}

fn step(action: &str, args: Value) -> Value {
    let (tool, action) = action.split_once('.').unwrap();
    json!({"tool": tool, "action": action, "args": args})
}

/// Every read tool pointed at `target`.
fn reads_of(target: &Path) -> Vec<Value> {
    let p = target.display().to_string();
    vec![
        step("fs.read", json!({"path": p})),
        step("fs.list", json!({"path": p})),
        step("fs.find", json!({"path": p})),
        step("fs.search", json!({"path": p, "pattern": "RED"})),
        step("fs.largest", json!({"path": p})),
        step("fs.usage", json!({"path": p})),
        step("fs.count", json!({"path": p})),
        step("fs.checksum", json!({"path": p})),
        step("fs.duplicates", json!({"path": p})),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_read_tool_of_one_org_reaches_another_orgs_workspace_trash_blobs_or_journal() {
    let t = T::start();
    let red = t.key("red", Role::Owner).await;
    let blue = t.key("blue", Role::Owner).await;

    // Red writes two files in its workspace (no cwd: the workspace is where it works), then
    // deletes one: it goes to red's trash, and the overwritten content to its snapshots.
    let wrote = run(
        &t,
        &red,
        json!([
            step(
                "fs.write",
                json!({"path": "notes.txt", "content": RED_SECRET})
            ),
            step(
                "fs.write",
                json!({"path": "gone.txt", "content": RED_SECRET})
            ),
            step(
                "fs.write",
                json!({"path": "notes.txt", "content": format!("{RED_SECRET} v2")})
            ),
            step("fs.delete", json!({"path": "gone.txt"})),
        ]),
    )
    .await;
    assert_eq!(wrote["status"], "committed", "{wrote}");
    let data = t.data_dir();
    let red_dir = data.join("orgs/red");
    let red_file = red_dir.join("work/notes.txt");
    // (fs.write ends a text file with a newline.)
    let red_content = format!("{RED_SECRET} v2\n");
    assert_eq!(std::fs::read_to_string(&red_file).unwrap(), red_content);
    let red_trash = red_dir.join("trash");
    assert!(
        std::fs::read_dir(&red_trash).unwrap().next().is_some(),
        "red's delete went to red's own trash"
    );

    // Blue's own workspace holds a symlink to red's (as an extracted archive could): the
    // path is blue's, so only the kernel's confinement stands between blue and red's file.
    let blue_work = data.join("orgs/blue/work");
    run(&t, &blue, json!([step("fs.list", json!({"path": "."}))])).await;
    std::os::unix::fs::symlink(red_dir.join("work"), blue_work.join("via-link")).unwrap();

    let targets: Vec<PathBuf> = vec![
        red_file.clone(),
        red_dir.join("work"),
        red_trash.clone(),
        red_dir.join("blobs"),
        red_dir.clone(),
        data.join("orgs"),
        data.join("blobs"),
        data.join("journal.db"),
        data.clone(),
        data.parent().unwrap().to_path_buf(),
        blue_work.join("../../red/work/notes.txt"),
        blue_work.join("via-link"),
        blue_work.join("via-link/notes.txt"),
    ];
    for target in &targets {
        for s in reads_of(target) {
            let name = format!("{}.{}", s["tool"], s["action"]).replace('"', "");
            let done = run(&t, &blue, json!([s])).await;
            let text = done.to_string();
            assert!(
                !text.contains(RED_SECRET),
                "{name} of {} leaked red's content: {text}",
                target.display()
            );
            assert_ne!(
                done["status"],
                "committed",
                "{name} of {} ran to completion for another org: {text}",
                target.display()
            );
        }
    }
    // A copy out of red's workspace into blue's is refused too, and nothing was written.
    let copy = run(
        &t,
        &blue,
        json!([step(
            "fs.copy",
            json!({"source": red_file.display().to_string(), "dest": "stolen.txt"})
        )]),
    )
    .await;
    assert_ne!(copy["status"], "committed", "{copy}");
    assert!(!blue_work.join("stolen.txt").exists());

    // Red's things are as red left them.
    assert_eq!(std::fs::read_to_string(&red_file).unwrap(), red_content);
    // And red still reaches its own: its own read works.
    let own = run(
        &t,
        &red,
        json!([step("fs.read", json!({"path": "notes.txt"}))]),
    )
    .await;
    assert_eq!(own["status"], "committed", "{own}");
    assert!(own.to_string().contains(RED_SECRET));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_search_of_etc_never_returns_credential_lines_and_reading_a_backup_asks_an_admin() {
    let t = T::start();
    // The host operator's organisation: the whole machine.
    let op = t.key("local", Role::Operator).await;
    let search = t
        .submit(
            Auth::Key(&op),
            json!({"plan": {"steps": [step("fs.search", json!({
                "path": "/etc", "pattern": "^root:", "regex": true, "glob": "*shadow*"
            }))]}, "auto_approve": true}),
        )
        .await;
    let done = t.finished(Auth::Key(&op), &search).await;
    let text = done.to_string();
    // A password-hash line starts "root:" followed by a hash or `*`/`!`; /etc/passwd's
    // "root:x:" is not a credential, and it does not match "*shadow*" anyway.
    for hidden in ["/etc/shadow", "/etc/gshadow"] {
        if let Ok(content) = std::fs::read_to_string(hidden) {
            for line in content.lines().filter(|l| l.starts_with("root:")) {
                assert!(!text.contains(line), "{hidden} leaked: {text}");
            }
        }
    }
    assert!(
        text.contains("credential store"),
        "the summary says what was skipped: {text}"
    );

    // Reading a backup of the password hashes by name is high risk: an operator's standing
    // approval does not cover it, so it waits for someone who may approve it.
    let read = t
        .submit(
            Auth::Key(&op),
            json!({"plan": {"steps": [step("fs.read", json!({"path": "/etc/shadow-"}))]},
                   "auto_approve": true}),
        )
        .await;
    let pending = t.pending(Auth::Key(&op), &read).await;
    assert_eq!(pending["risk"], "high", "{pending}");
    assert_eq!(pending["min_role"], "admin", "{pending}");
}
