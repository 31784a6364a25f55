//! `fs.*`: every mutating action passes the round trip (dry run equals execute, undo restores
//! the tree exactly); reads give real results on trees built here; effects are truthful.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use kernos_core::{Effect, EffectKind};
use kernos_tools::testing::{World, tree_state};
use kernos_tools::undo::set_mtime;
use kernos_tools::{Change, Output, ToolError};
use serde_json::{Value, json};

fn world() -> World {
    World::new()
}

fn run(w: &World, name: &str, args: Value) -> Output {
    w.execute(name, args)
        .unwrap_or_else(|e| panic!("{name}: {e}"))
        .0
}

fn err(w: &World, name: &str, args: Value) -> ToolError {
    match w.execute(name, args) {
        Ok((o, _)) => panic!("{name} should have failed, gave {:?}", o.summary),
        Err(e) => e,
    }
}

fn col(o: &Output, name: &str) -> Vec<Value> {
    o.column_values(name)
}

fn paths(o: &Output) -> Vec<String> {
    col(o, "path")
        .into_iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

fn rel(w: &World, p: &str) -> String {
    Path::new(p)
        .strip_prefix(&w.root)
        .unwrap_or_else(|_| panic!("{p} outside the tree"))
        .display()
        .to_string()
}

fn read(p: impl AsRef<Path>) -> String {
    fs::read_to_string(p).unwrap()
}

fn mode(p: impl AsRef<Path>) -> u32 {
    fs::symlink_metadata(p).unwrap().mode() & 0o7777
}

fn set_mode(p: impl AsRef<Path>, m: u32) {
    fs::set_permissions(p, fs::Permissions::from_mode(m)).unwrap();
}

/// Sets a path's mtime to `secs` ago.
fn age(p: impl AsRef<Path>, secs: i64) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    set_mtime(p.as_ref(), (now - secs) * 1_000_000_000).unwrap();
}

/// A small project tree with a variety of modes and times.
fn project(w: &World) {
    w.file("proj/README.md", b"# Project\nhello world\n");
    w.file(
        "proj/src/main.rs",
        b"fn main() {\n    println!(\"hi\");\n}\n",
    );
    w.file("proj/src/lib.rs", b"pub fn f() {}\n");
    w.file("proj/bin/run.sh", b"#!/bin/sh\necho run\n");
    set_mode(w.root.join("proj/bin/run.sh"), 0o755);
    set_mode(w.root.join("proj/src/lib.rs"), 0o600);
    symlink("src/main.rs", w.root.join("proj/main-link")).unwrap();
    age(w.root.join("proj/README.md"), 86_400 * 30);
    age(w.root.join("proj/src"), 3600);
}

fn effect(kind: EffectKind, p: impl Into<PathBuf>, recursive: bool) -> Effect {
    Effect::path(kind, p, recursive)
}

// ================================================================================ write

#[test]
fn write_creates_a_file_and_missing_parents_and_undo_removes_them() {
    let w = world();
    let out = w.round_trip(
        "fs.write",
        json!({"path": "notes/2024/todo.txt", "content": "buy milk"}),
    );
    assert_eq!(
        out.changes,
        vec![
            Change::Create {
                path: w.root.join("notes"),
                bytes: None,
                dir: true
            },
            Change::Create {
                path: w.root.join("notes/2024"),
                bytes: None,
                dir: true
            },
            Change::Create {
                // "buy milk" and the final newline a text file ends with.
                path: w.root.join("notes/2024/todo.txt"),
                bytes: Some(9),
                dir: false
            },
        ]
    );
    assert_eq!(
        paths(&out),
        vec![w.root.join("notes/2024/todo.txt").display().to_string()]
    );
    assert!(
        !w.root.join("notes").exists(),
        "undo removed the new folders"
    );
}

#[test]
fn write_overwrites_and_undo_restores_content_mode_and_time() {
    let w = world();
    let p = w.file("a.txt", b"old content");
    set_mode(&p, 0o640);
    age(&p, 1000);
    let out = w.round_trip("fs.write", json!({"path": "a.txt", "content": "new"}));
    assert_eq!(
        out.changes,
        vec![Change::Overwrite {
            path: p.clone(),
            old_bytes: 11,
            new_bytes: 4
        }]
    );
    assert_eq!(read(&p), "old content");
    run(&w, "fs.write", json!({"path": "a.txt", "content": "new"}));
    assert_eq!(
        read(&p),
        "new\n",
        "a text file ends with a newline, as append leaves it"
    );
    run(
        &w,
        "fs.write",
        json!({"path": "a.txt", "content": "new", "exact": true}),
    );
    assert_eq!(read(&p), "new", "exact: byte for byte");
    run(&w, "fs.write", json!({"path": "a.txt", "content": "two\n"}));
    assert_eq!(read(&p), "two\n", "a newline already there is not doubled");
    assert_eq!(mode(&p), 0o640, "overwriting in place keeps the mode");
}

#[test]
fn write_refuses_directories_and_says_what_to_do() {
    let w = world();
    fs::create_dir(w.root.join("d")).unwrap();
    let e = err(&w, "fs.write", json!({"path": "d", "content": "x"})).to_string();
    assert!(
        e.contains("is a directory") && e.contains("d/notes.txt"),
        "{e}"
    );
    let e = err(&w, "fs.write", json!({"path": "d/", "content": "x"})).to_string();
    assert!(e.contains("names a directory"), "{e}");
    w.file("f", b"");
    let e = err(&w, "fs.write", json!({"path": "f/x.txt", "content": "x"})).to_string();
    assert!(e.contains("is a file, not a directory"), "{e}");
}

#[test]
fn write_through_a_symlink_changes_the_target_and_says_so() {
    let w = world();
    let target = w.file("real/t.txt", b"v1");
    symlink(&target, w.root.join("link.txt")).unwrap();
    let out = w.round_trip(
        "fs.write",
        json!({"path": "link.txt", "content": "v2", "exact": true}),
    );
    assert_eq!(
        out.changes,
        vec![Change::Overwrite {
            path: target.clone(),
            old_bytes: 2,
            new_bytes: 2
        }]
    );
}

// =============================================================================== append

#[test]
fn append_separates_lines_and_undo_restores() {
    let w = world();
    let p = w.file("log.txt", b"line one");
    let out = w.round_trip(
        "fs.append",
        json!({"path": "log.txt", "content": "line two"}),
    );
    assert_eq!(
        out.changes,
        vec![Change::Append {
            path: p.clone(),
            bytes: 10
        }]
    );
    assert_eq!(read(&p), "line one");
    run(
        &w,
        "fs.append",
        json!({"path": "log.txt", "content": "line two"}),
    );
    run(
        &w,
        "fs.append",
        json!({"path": "log.txt", "content": "three\n"}),
    );
    assert_eq!(read(&p), "line one\nline two\nthree\n");
}

#[test]
fn append_creates_a_missing_file() {
    let w = world();
    let out = w.round_trip("fs.append", json!({"path": "new.log", "content": "first"}));
    assert_eq!(
        out.changes,
        vec![Change::Create {
            path: w.root.join("new.log"),
            bytes: Some(6),
            dir: false
        }]
    );
    run(
        &w,
        "fs.append",
        json!({"path": "new.log", "content": "first"}),
    );
    assert_eq!(read(w.root.join("new.log")), "first\n");
}

#[test]
fn appending_nothing_creates_an_empty_file_and_leaves_an_existing_one_alone() {
    let w = world();
    let out = w.round_trip("fs.append", json!({"path": "empty.txt", "content": ""}));
    assert_eq!(
        out.changes,
        vec![Change::Create {
            path: w.root.join("empty.txt"),
            bytes: Some(0),
            dir: false
        }]
    );
    run(&w, "fs.append", json!({"path": "empty.txt", "content": ""}));
    assert_eq!(read(w.root.join("empty.txt")), "");
    let p = w.file("kept.txt", b"no newline at the end");
    let (again, records) = w
        .execute("fs.append", json!({"path": "kept.txt", "content": ""}))
        .unwrap();
    assert!(again.changes.is_empty() && records.records.is_empty());
    assert_eq!(read(&p), "no newline at the end");
}

// ================================================================================ mkdir

#[test]
fn mkdir_creates_parents_and_is_idempotent() {
    let w = world();
    let out = w.round_trip("fs.mkdir", json!({"path": "a/b/c"}));
    assert_eq!(out.changes.len(), 3);
    run(&w, "fs.mkdir", json!({"path": "a/b/c"}));
    let (again, records) = w.execute("fs.mkdir", json!({"path": "a/b/c"})).unwrap();
    assert!(again.changes.is_empty() && records.records.is_empty());
    assert!(again.summary.unwrap().contains("already exists"));
    w.file("f", b"");
    let e = err(&w, "fs.mkdir", json!({"path": "f"})).to_string();
    assert!(e.contains("not a directory"), "{e}");
}

// ================================================================================= copy

#[test]
fn copy_file_to_a_new_name_keeps_mode_and_time() {
    let w = world();
    project(&w);
    let out = w.round_trip(
        "fs.copy",
        json!({"source": "proj/bin/run.sh", "dest": "run-copy.sh"}),
    );
    let to = w.root.join("run-copy.sh");
    assert_eq!(
        out.changes,
        vec![Change::Create {
            path: to.clone(),
            bytes: Some(19),
            dir: false
        }]
    );
    run(
        &w,
        "fs.copy",
        json!({"source": "proj/bin/run.sh", "dest": "run-copy.sh"}),
    );
    let (a, b) = (
        fs::metadata(w.root.join("proj/bin/run.sh")).unwrap(),
        fs::metadata(&to).unwrap(),
    );
    assert_eq!((b.mode() & 0o777, b.mtime()), (0o755, a.mtime()));
    assert_eq!(read(&to), "#!/bin/sh\necho run\n");
}

#[test]
fn copy_file_into_an_existing_directory() {
    let w = world();
    project(&w);
    fs::create_dir(w.root.join("backup")).unwrap();
    let out = w.round_trip(
        "fs.copy",
        json!({"source": "proj/README.md", "dest": "backup"}),
    );
    assert_eq!(
        paths(&out),
        vec![w.root.join("backup/README.md").display().to_string()]
    );
    assert_eq!(
        col(&out, "source"),
        vec![json!(w.root.join("proj/README.md").display().to_string())]
    );
}

#[test]
fn copy_file_over_an_existing_file_snapshots_it() {
    let w = world();
    project(&w);
    let dst = w.file("old-readme.md", b"previous");
    let out = w.round_trip(
        "fs.copy",
        json!({"source": "proj/README.md", "dest": "old-readme.md"}),
    );
    assert_eq!(
        out.changes,
        vec![Change::Overwrite {
            path: dst.clone(),
            old_bytes: 8,
            new_bytes: 22
        }]
    );
    assert_eq!(read(&dst), "previous");
}

#[test]
fn copy_tree_recursively_with_modes_times_and_links() {
    let w = world();
    project(&w);
    let out = w.round_trip("fs.copy", json!({"source": "proj", "dest": "proj2"}));
    assert_eq!(
        out.changes.len(),
        1,
        "one tree, one change: {:?}",
        out.changes
    );
    assert!(matches!(&out.changes[0], Change::Create { dir: true, bytes: Some(b), .. } if *b > 0));
    run(&w, "fs.copy", json!({"source": "proj", "dest": "proj2"}));
    let strip = |root: &str| -> BTreeMap<PathBuf, String> {
        tree_state(&w.root.join(root)).into_iter().collect()
    };
    assert_eq!(
        strip("proj"),
        strip("proj2"),
        "identical tree, modes and mtimes included"
    );
    assert_eq!(
        fs::read_link(w.root.join("proj2/main-link")).unwrap(),
        PathBuf::from("src/main.rs")
    );
}

#[test]
fn copy_tree_into_a_directory_that_already_has_it_merges() {
    let w = world();
    project(&w);
    w.file("backup/proj/README.md", b"stale readme");
    w.file("backup/proj/keep.txt", b"mine");
    let out = w.round_trip("fs.copy", json!({"source": "proj", "dest": "backup"}));
    let b = w.root.join("backup/proj");
    let overwrote: Vec<_> = out
        .changes
        .iter()
        .filter(|c| matches!(c, Change::Overwrite { .. }))
        .collect();
    assert_eq!(
        overwrote,
        vec![&Change::Overwrite {
            path: b.join("README.md"),
            old_bytes: 12,
            new_bytes: 22
        }]
    );
    assert!(out.changes.contains(&Change::Create {
        path: b.join("src"),
        bytes: Some(48),
        dir: true
    }));
    run(&w, "fs.copy", json!({"source": "proj", "dest": "backup"}));
    assert_eq!(read(b.join("README.md")), "# Project\nhello world\n");
    assert_eq!(
        read(b.join("keep.txt")),
        "mine",
        "merge leaves other files alone"
    );
}

#[test]
fn copy_never_replaces_a_directory_with_a_file_and_refuses_copying_into_itself() {
    let w = world();
    project(&w);
    fs::create_dir_all(w.root.join("out/README.md")).unwrap();
    let before = tree_state(&w.root);
    let e = err(
        &w,
        "fs.copy",
        json!({"source": "proj/README.md", "dest": "out"}),
    )
    .to_string();
    assert!(e.contains("already exists and is a dir"), "{e}");
    let e = err(&w, "fs.copy", json!({"source": "proj", "dest": "proj/sub"})).to_string();
    assert!(e.contains("into itself"), "{e}");
    assert_eq!(tree_state(&w.root), before, "nothing written");
}

#[test]
fn copy_a_list_goes_into_a_new_directory() {
    let w = world();
    project(&w);
    let out = w.round_trip(
        "fs.copy",
        json!({"source": ["proj/README.md", "proj/src/lib.rs"], "dest": "picked"}),
    );
    assert_eq!(
        out.changes[0],
        Change::Create {
            path: w.root.join("picked"),
            bytes: None,
            dir: true
        }
    );
    let got: Vec<String> = paths(&out).iter().map(|p| rel(&w, p)).collect();
    assert_eq!(got, vec!["picked/README.md", "picked/lib.rs"]);
}

// ================================================================================= move

#[test]
fn move_renames_a_file() {
    let w = world();
    project(&w);
    let out = w.round_trip(
        "fs.move",
        json!({"source": "proj/README.md", "dest": "proj/READ.md"}),
    );
    assert_eq!(
        out.changes,
        vec![Change::Move {
            from: w.root.join("proj/README.md"),
            to: w.root.join("proj/READ.md"),
            bytes: 22
        }]
    );
}

#[test]
fn move_a_tree_into_a_directory() {
    let w = world();
    project(&w);
    fs::create_dir(w.root.join("archive")).unwrap();
    let out = w.round_trip("fs.move", json!({"source": "proj/src", "dest": "archive"}));
    assert_eq!(
        out.changes,
        vec![Change::Move {
            from: w.root.join("proj/src"),
            to: w.root.join("archive/src"),
            bytes: 48
        }]
    );
    assert_eq!(
        paths(&out),
        vec![w.root.join("archive/src").display().to_string()]
    );
}

#[test]
fn move_onto_an_existing_file_keeps_it_for_undo() {
    let w = world();
    let a = w.file("a.txt", b"new version");
    let b = w.file("b.txt", b"old version");
    let out = w.round_trip("fs.move", json!({"source": "a.txt", "dest": "b.txt"}));
    assert_eq!(
        out.changes,
        vec![
            Change::Overwrite {
                path: b.clone(),
                old_bytes: 11,
                new_bytes: 11
            },
            Change::Move {
                from: a.clone(),
                to: b.clone(),
                bytes: 11
            },
        ]
    );
    assert_eq!(
        (read(&a), read(&b)),
        ("new version".into(), "old version".into())
    );
}

#[test]
fn move_a_list_into_a_missing_directory_creates_it() {
    let w = world();
    w.file("x.log", b"x");
    w.file("y.log", b"yy");
    let out = w.round_trip(
        "fs.move",
        json!({"source": ["x.log", "y.log"], "dest": "old-logs"}),
    );
    assert_eq!(out.changes.len(), 3);
    assert_eq!(
        out.changes[0],
        Change::Create {
            path: w.root.join("old-logs"),
            bytes: None,
            dir: true
        }
    );
}

#[test]
fn move_refuses_clashes_before_changing_anything() {
    let w = world();
    w.file("a/x.log", b"1");
    w.file("b/x.log", b"2");
    fs::create_dir(w.root.join("dest")).unwrap();
    let before = tree_state(&w.root);
    let e = err(
        &w,
        "fs.move",
        json!({"source": ["a/x.log", "b/x.log"], "dest": "dest"}),
    )
    .to_string();
    assert!(e.contains("two sources"), "{e}");
    let e = err(&w, "fs.move", json!({"source": "a", "dest": "a/inner"})).to_string();
    assert!(e.contains("into itself"), "{e}");
    fs::create_dir(w.root.join("dest/a")).unwrap();
    let before2 = tree_state(&w.root);
    let e = err(&w, "fs.move", json!({"source": "a", "dest": "dest"})).to_string();
    assert!(e.contains("already exists and is a dir"), "{e}");
    assert_eq!(tree_state(&w.root), before2);
    assert_ne!(before, before2);
}

#[test]
fn move_across_filesystems_round_trips() {
    // /dev/shm is a tmpfs on Linux; the test tree is usually not. Use our own directory there.
    let Ok(other) = tempfile::tempdir_in("/dev/shm") else {
        eprintln!("no /dev/shm here; cross-filesystem move not exercised");
        return;
    };
    let w = world();
    project(&w);
    let dev = |p: &Path| fs::metadata(p).unwrap().dev();
    if dev(other.path()) == dev(&w.root) {
        eprintln!("/dev/shm is on the same filesystem as the test tree; not exercised");
        return;
    }
    let dest = other.path().join("moved");
    let out = w.round_trip("fs.move", json!({"source": "proj", "dest": dest}));
    assert_eq!(out.changes.len(), 1);
    assert!(!dest.exists(), "undo moved it back across");
    // And for real: content, modes, times survive the copy.
    let before = tree_state(&w.root.join("proj"));
    run(&w, "fs.move", json!({"source": "proj", "dest": dest}));
    assert!(!w.root.join("proj").exists());
    assert_eq!(tree_state(&dest), before);
}

// =============================================================================== delete

#[test]
fn delete_a_file_goes_to_trash_and_undo_restores() {
    let w = world();
    project(&w);
    let out = w.round_trip("fs.delete", json!({"path": "proj/README.md"}));
    assert_eq!(
        out.changes,
        vec![Change::Delete {
            path: w.root.join("proj/README.md"),
            bytes: 22,
            entries: 1
        }]
    );
}

#[test]
fn delete_a_tree_needs_recursive() {
    let w = world();
    project(&w);
    let before = tree_state(&w.root);
    let e = err(&w, "fs.delete", json!({"path": "proj"})).to_string();
    assert!(e.contains("recursive") && e.contains("entries"), "{e}");
    assert_eq!(tree_state(&w.root), before, "nothing deleted");
    let out = w.round_trip("fs.delete", json!({"path": "proj", "recursive": true}));
    assert_eq!(
        out.changes,
        vec![Change::Delete {
            path: w.root.join("proj"),
            bytes: 22 + 34 + 14 + 19,
            entries: 8
        }]
    );
    // An empty directory needs no flag.
    fs::create_dir(w.root.join("empty")).unwrap();
    w.round_trip("fs.delete", json!({"path": "empty"}));
}

#[test]
fn delete_a_symlink_deletes_the_link_not_its_target() {
    let w = world();
    let t = w.file("target.txt", b"keep me");
    symlink(&t, w.root.join("l")).unwrap();
    let eff = w.effects("fs.delete", json!({"path": "l"})).unwrap();
    assert_eq!(
        eff,
        vec![effect(EffectKind::Delete, w.root.join("l"), false)]
    );
    run(&w, "fs.delete", json!({"path": "l"}));
    assert_eq!(read(&t), "keep me");
}

#[test]
fn delete_reports_missing_paths_clearly() {
    let w = world();
    let e = err(&w, "fs.delete", json!({"path": "nope.txt"}));
    assert!(matches!(e, ToolError::NotFound(_)), "{e}");
}

// ================================================================================ chmod

#[test]
fn chmod_octal() {
    let w = world();
    let p = w.file("secret.txt", b"s");
    set_mode(&p, 0o644);
    let out = w.round_trip("fs.chmod", json!({"path": "secret.txt", "mode": "600"}));
    assert_eq!(
        out.changes,
        vec![Change::Chmod {
            path: p.clone(),
            from: "0644".into(),
            to: "0600".into()
        }]
    );
    run(
        &w,
        "fs.chmod",
        json!({"path": "secret.txt", "mode": "0600"}),
    );
    assert_eq!(mode(&p), 0o600);
}

#[test]
fn chmod_symbolic() {
    let w = world();
    let p = w.file("script.sh", b"#!/bin/sh\n");
    set_mode(&p, 0o664);
    w.round_trip("fs.chmod", json!({"path": "script.sh", "mode": "u+x,go-w"}));
    run(
        &w,
        "fs.chmod",
        json!({"path": "script.sh", "mode": "u+x,go-w"}),
    );
    assert_eq!(mode(&p), 0o744);
    run(&w, "fs.chmod", json!({"path": "script.sh", "mode": "a=r"}));
    assert_eq!(mode(&p), 0o444);
}

#[test]
fn chmod_recursive_skips_symlinks_and_unchanged_entries() {
    let w = world();
    project(&w);
    let out = w.round_trip(
        "fs.chmod",
        json!({"path": "proj", "mode": "go-rwx", "recursive": true}),
    );
    // lib.rs is 0600 already: not listed. The symlink is not followed or changed.
    let changed: Vec<String> = out
        .changes
        .iter()
        .map(|c| match c {
            Change::Chmod { path, .. } => rel(&w, &path.display().to_string()),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        changed,
        vec![
            "proj",
            "proj/README.md",
            "proj/bin",
            "proj/bin/run.sh",
            "proj/src",
            "proj/src/main.rs"
        ]
    );
    let e = err(&w, "fs.chmod", json!({"path": "proj", "mode": "u+q"})).to_string();
    assert!(e.contains("octal like 644"), "{e}");
}

// ============================================================================== archive

/// A tree state with modification times cut to whole seconds: all tar and zip keep.
fn to_seconds(state: BTreeMap<PathBuf, String>) -> BTreeMap<PathBuf, String> {
    state
        .into_iter()
        .map(|(p, v)| {
            let mut f: Vec<String> = v.split(' ').map(str::to_owned).collect();
            let ns: i64 = f[2].parse().unwrap();
            f[2] = ns.div_euclid(1_000_000_000).to_string();
            (p, f.join(" "))
        })
        .collect()
}

fn archive_round_trip(dest: &str, format: &str) {
    let w = world();
    project(&w);
    let out = w.round_trip("fs.archive", json!({"source": "proj", "dest": dest}));
    let archive = w.root.join(dest);
    assert_eq!(out.changes.len(), 1);
    let Change::Create {
        path,
        bytes: Some(size),
        dir: false,
    } = &out.changes[0]
    else {
        panic!("{:?}", out.changes)
    };
    assert_eq!(path, &archive);
    assert!(*size > 0);
    assert!(!archive.exists(), "undo removed the archive");
    // For real, then unpack elsewhere: identical content, modes, times and links.
    let out = run(&w, "fs.archive", json!({"source": "proj", "dest": dest}));
    assert_eq!(col(&out, "format"), vec![json!(format)]);
    assert_eq!(col(&out, "entries"), vec![json!(8)]);
    assert_eq!(
        fs::metadata(&archive).unwrap().len(),
        *size,
        "dry-run size is exact"
    );
    let out = run(
        &w,
        "fs.extract",
        json!({"archive": dest, "dest": "unpacked"}),
    );
    assert_eq!(
        paths(&out),
        vec![w.root.join("unpacked/proj").display().to_string()]
    );
    let a = to_seconds(tree_state(&w.root.join("proj")));
    let b = to_seconds(tree_state(&w.root.join("unpacked/proj")));
    assert_eq!(a, b, "{format}: archive then extract gives the same tree");
}

#[test]
fn archive_tar_gz_round_trips() {
    archive_round_trip("proj.tar.gz", "tar.gz");
}

#[test]
fn archive_tgz_round_trips() {
    archive_round_trip("proj.tgz", "tar.gz");
}

#[test]
fn archive_tar_round_trips() {
    archive_round_trip("proj.tar", "tar");
}

#[test]
fn archive_zip_round_trips() {
    archive_round_trip("proj.zip", "zip");
}

#[test]
fn archive_several_sources_and_overwrite_an_existing_archive() {
    let w = world();
    project(&w);
    w.file("notes.txt", b"n");
    let old = w.file("out/bundle.zip", b"not really a zip");
    set_mode(&old, 0o600);
    let out = w.round_trip(
        "fs.archive",
        json!({"source": ["proj/src", "notes.txt"], "dest": "out/bundle.zip"}),
    );
    assert!(matches!(
        out.changes.as_slice(),
        [Change::Overwrite { old_bytes: 16, .. }]
    ));
    assert_eq!(read(&old), "not really a zip");
    run(
        &w,
        "fs.archive",
        json!({"source": ["proj/src", "notes.txt"], "dest": "out/bundle.zip"}),
    );
    assert_eq!(mode(&old), 0o600, "a replaced archive keeps its mode");
    let out = run(
        &w,
        "fs.extract",
        json!({"archive": "out/bundle.zip", "dest": "x"}),
    );
    let got: Vec<String> = paths(&out).iter().map(|p| rel(&w, p)).collect();
    assert_eq!(
        got,
        vec!["x/src", "x/notes.txt"],
        "entries relative to each source's parent"
    );
    assert_eq!(read(w.root.join("x/src/lib.rs")), "pub fn f() {}\n");
}

#[test]
fn archive_refuses_bad_destinations() {
    let w = world();
    project(&w);
    let before = tree_state(&w.root);
    let before_proj = tree_state(&w.root.join("proj"));
    let e = err(
        &w,
        "fs.archive",
        json!({"source": "proj", "dest": "proj/self.tar.gz"}),
    )
    .to_string();
    assert!(e.contains("would be inside"), "{e}");
    let e = err(
        &w,
        "fs.archive",
        json!({"source": "proj", "dest": "proj.rar"}),
    )
    .to_string();
    assert!(e.contains(".tar.gz, .tgz, .tar or .zip"), "{e}");
    assert_eq!(tree_state(&w.root), before, "refusals write nothing");
    fs::create_dir(w.root.join("d.tar")).unwrap();
    let e = err(&w, "fs.archive", json!({"source": "proj", "dest": "d.tar"})).to_string();
    assert!(e.contains("is a directory"), "{e}");
    fs::remove_dir(w.root.join("d.tar")).unwrap();
    assert_eq!(tree_state(&w.root.join("proj")), before_proj);
    // An explicit format wins over the name.
    let out = run(
        &w,
        "fs.archive",
        json!({"source": "proj", "dest": "p.bin", "format": "tar"}),
    );
    assert_eq!(col(&out, "format"), vec![json!("tar")]);
    let head = fs::read(w.root.join("p.bin")).unwrap();
    assert_eq!(&head[257..262], b"ustar");
}

// ============================================================================== extract

/// Archives `proj` in a world of its own and returns the archive's bytes.
fn archive_bytes(name: &str) -> Vec<u8> {
    let w = world();
    project(&w);
    run(&w, "fs.archive", json!({"source": "proj", "dest": name}));
    fs::read(w.root.join(name)).unwrap()
}

fn extract_round_trip(name: &str) {
    let w = world();
    fs::write(w.root.join(name), archive_bytes(name)).unwrap();
    // Into the working directory (the default), which already has one of the files.
    let existing = w.file("proj/README.md", b"local edits");
    let out = w.round_trip("fs.extract", json!({"archive": name}));
    assert!(
        out.changes.contains(&Change::Overwrite {
            path: existing.clone(),
            old_bytes: 11,
            new_bytes: 22
        }),
        "{:?}",
        out.changes
    );
    assert!(out.changes.contains(&Change::Create {
        path: w.root.join("proj/src/main.rs"),
        bytes: Some(34),
        dir: false
    }));
    assert_eq!(
        read(&existing),
        "local edits",
        "undo restored the overwritten file"
    );
    assert!(
        !w.root.join("proj/src").exists(),
        "undo removed what was extracted"
    );
    run(&w, "fs.extract", json!({"archive": name}));
    assert_eq!(read(&existing), "# Project\nhello world\n");
    assert_eq!(mode(w.root.join("proj/bin/run.sh")), 0o755);
    assert_eq!(mode(w.root.join("proj/src/lib.rs")), 0o600);
}

#[test]
fn extract_tar_gz_over_existing_files() {
    extract_round_trip("p.tar.gz");
}

#[test]
fn extract_tar_over_existing_files() {
    extract_round_trip("p.tar");
}

#[test]
fn extract_zip_over_existing_files() {
    extract_round_trip("p.zip");
}

#[test]
fn extract_sniffs_the_format_whatever_the_name() {
    let w = world();
    fs::write(w.root.join("download.bin"), archive_bytes("x.zip")).unwrap();
    run(
        &w,
        "fs.extract",
        json!({"archive": "download.bin", "dest": "out"}),
    );
    assert_eq!(
        read(w.root.join("out/proj/README.md")),
        "# Project\nhello world\n"
    );
    w.file("plain.txt", b"just text");
    let e = err(&w, "fs.extract", json!({"archive": "plain.txt"})).to_string();
    assert!(e.contains("not an archive"), "{e}");
}

/// A tar entry with a raw name (bypassing the tar crate's own checks, as an attacker would).
fn raw_tar(entries: &[(&str, tar::EntryType, &str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, kind, link, data) in entries {
        let mut h = tar::Header::new_old();
        let n = &mut h.as_old_mut().name;
        n[..name.len()].copy_from_slice(name.as_bytes());
        let l = &mut h.as_old_mut().linkname;
        l[..link.len()].copy_from_slice(link.as_bytes());
        h.set_entry_type(*kind);
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append(&h, *data).unwrap();
    }
    b.into_inner().unwrap()
}

fn assert_refused_and_nothing_written(w: &World, archive: &str, data: &[u8], why: &str) {
    fs::write(w.root.join(archive), data).unwrap();
    let before = tree_state(&w.root);
    let outside_before = tree_state(w.root.parent().unwrap());
    let e = err(w, "fs.extract", json!({"archive": archive, "dest": "out"})).to_string();
    assert!(
        e.contains("unsafe to unpack") && e.contains(why),
        "{archive}: {e}"
    );
    assert!(e.contains("Nothing was extracted"), "{e}");
    assert_eq!(tree_state(&w.root), before, "{archive}: nothing written");
    assert_eq!(tree_state(w.root.parent().unwrap()), outside_before);
    // The dry run refuses too.
    assert!(
        w.dry_run("fs.extract", json!({"archive": archive, "dest": "out"}))
            .is_err()
    );
}

#[test]
fn extract_rejects_path_traversal() {
    let w = world();
    use tar::EntryType as T;
    let ok: &[u8] = b"fine";
    assert_refused_and_nothing_written(
        &w,
        "dotdot.tar",
        &raw_tar(&[
            ("good.txt", T::Regular, "", ok),
            ("../evil.txt", T::Regular, "", b"x"),
        ]),
        "'..'",
    );
    assert_refused_and_nothing_written(
        &w,
        "abs.tar",
        &raw_tar(&[("/tmp/kernos-evil.txt", T::Regular, "", b"x")]),
        "absolute",
    );
    assert_refused_and_nothing_written(
        &w,
        "link-out.tar",
        &raw_tar(&[("etc", T::Symlink, "../../../etc", b"")]),
        "points outside",
    );
    assert_refused_and_nothing_written(
        &w,
        "link-abs.tar",
        &raw_tar(&[("passwd", T::Symlink, "/etc/passwd", b"")]),
        "points outside",
    );
    assert_refused_and_nothing_written(
        &w,
        "through-link.tar",
        &raw_tar(&[
            ("d", T::Symlink, ".", b""),
            ("d/x.txt", T::Regular, "", b"x"),
        ]),
        "symbolic link the archive itself creates",
    );
    assert_refused_and_nothing_written(
        &w,
        "hardlink-out.tar",
        &raw_tar(&[("h", T::Link, "../../etc/shadow", b"")]),
        "hard link",
    );
    assert_refused_and_nothing_written(
        &w,
        "hardlink-missing.tar",
        &raw_tar(&[("h", T::Link, "not-in-archive", b"")]),
        "not a file unpacked before it",
    );
    // A zip with a climbing name.
    let mut z = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    z.start_file("ok.txt", zip::write::SimpleFileOptions::default())
        .unwrap();
    z.write_all(b"ok").unwrap();
    z.start_file("../../evil.txt", zip::write::SimpleFileOptions::default())
        .unwrap();
    z.write_all(b"evil").unwrap();
    let bytes = z.finish().unwrap().into_inner();
    assert_refused_and_nothing_written(&w, "slip.zip", &bytes, "'..'");
}

#[test]
fn extract_refuses_to_write_through_an_existing_link_leading_outside() {
    let w = world();
    let outside = tempfile::tempdir().unwrap();
    fs::create_dir(w.root.join("out")).unwrap();
    symlink(outside.path(), w.root.join("out/cfg")).unwrap();
    let data = raw_tar(&[("cfg/x.conf", tar::EntryType::Regular, "", b"x")]);
    assert_refused_and_nothing_written(&w, "cfg.tar", &data, "leads to");
    assert_eq!(fs::read_dir(outside.path()).unwrap().count(), 0);
}

#[test]
fn extract_keeps_links_and_hard_links_that_stay_inside() {
    let w = world();
    use tar::EntryType as T;
    let data = raw_tar(&[
        ("d/", T::Directory, "", b""),
        ("d/a.txt", T::Regular, "", b"alpha"),
        ("d/l", T::Symlink, "a.txt", b""),
        ("up", T::Symlink, "d/a.txt", b""),
        ("d/h", T::Link, "d/a.txt", b""),
    ]);
    fs::write(w.root.join("links.tar"), data).unwrap();
    w.round_trip("fs.extract", json!({"archive": "links.tar", "dest": "out"}));
    run(
        &w,
        "fs.extract",
        json!({"archive": "links.tar", "dest": "out"}),
    );
    assert_eq!(read(w.root.join("out/d/l")), "alpha");
    assert_eq!(read(w.root.join("out/up")), "alpha");
    let (a, h) = (
        fs::metadata(w.root.join("out/d/a.txt")).unwrap(),
        fs::metadata(w.root.join("out/d/h")).unwrap(),
    );
    assert_eq!(a.ino(), h.ino(), "a hard link");
}

// ================================================================================ reads

#[test]
fn list_shows_entries_sorted_hidden_only_when_asked() {
    let w = world();
    project(&w);
    w.file("proj/.env", b"SECRET=1");
    let out = run(&w, "fs.list", json!({"path": "proj"}));
    assert_eq!(
        col(&out, "name"),
        vec![
            json!("README.md"),
            json!("bin"),
            json!("main-link"),
            json!("src")
        ]
    );
    assert_eq!(
        col(&out, "type"),
        vec![json!("file"), json!("dir"), json!("symlink"), json!("dir")]
    );
    assert_eq!(col(&out, "size")[0], json!(22));
    assert_eq!(
        col(&out, "mode")[0],
        json!(format!("{:04o}", mode(w.root.join("proj/README.md"))))
    );
    let names: Vec<String> = out.columns.iter().map(|c| c.name.clone()).collect();
    assert_eq!(names, ["path", "name", "type", "size", "modified", "mode"]);
    let all = run(&w, "fs.list", json!({"path": "proj", "all": true}));
    assert_eq!(col(&all, "name")[0], json!(".env"));
    let e = err(&w, "fs.list", json!({"path": "missing"}));
    assert!(matches!(e, ToolError::NotFound(_)));
}

#[test]
fn find_filters_by_name_type_size_age_emptiness_depth_and_limit() {
    let w = world();
    project(&w);
    w.file("proj/.git/config", b"[core]");
    w.file("proj/src/empty.rs", b"");
    fs::create_dir(w.root.join("proj/emptydir")).unwrap();
    w.file("big.bin", &vec![7u8; 5000]);
    age(w.root.join("proj/src"), 3600);
    let names = |o: &Output| -> Vec<String> { paths(o).iter().map(|p| rel(&w, p)).collect() };

    let o = run(&w, "fs.find", json!({"path": "proj", "name": "*.RS"}));
    assert_eq!(
        names(&o),
        ["proj/src/empty.rs", "proj/src/lib.rs", "proj/src/main.rs"]
    );
    let o = run(&w, "fs.find", json!({"name": "config"}));
    assert!(
        names(&o).is_empty(),
        "hidden directories are skipped by default"
    );
    let o = run(&w, "fs.find", json!({"name": "config", "hidden": true}));
    assert_eq!(names(&o), ["proj/.git/config"]);
    let o = run(&w, "fs.find", json!({"path": "proj", "type": "dir"}));
    assert_eq!(names(&o), ["proj/bin", "proj/emptydir", "proj/src"]);
    let o = run(&w, "fs.find", json!({"path": "proj", "type": "symlink"}));
    assert_eq!(names(&o), ["proj/main-link"]);
    let o = run(&w, "fs.find", json!({"min_size": 1000}));
    assert_eq!(names(&o), ["big.bin"]);
    assert_eq!(col(&o, "size"), vec![json!(5000)]);
    let o = run(
        &w,
        "fs.find",
        json!({"path": "proj", "max_size": 14, "type": "file"}),
    );
    assert_eq!(names(&o), ["proj/src/empty.rs", "proj/src/lib.rs"]);
    let o = run(&w, "fs.find", json!({"path": "proj", "older_than": 86_400}));
    assert_eq!(names(&o), ["proj/README.md"]);
    let o = run(
        &w,
        "fs.find",
        json!({"path": "proj", "newer_than": 600, "type": "dir"}),
    );
    assert_eq!(
        names(&o),
        ["proj/bin", "proj/emptydir"],
        "src was aged an hour"
    );
    let o = run(&w, "fs.find", json!({"path": "proj", "empty": true}));
    assert_eq!(names(&o), ["proj/emptydir", "proj/src/empty.rs"]);
    let o = run(&w, "fs.find", json!({"path": "proj", "max_depth": 1}));
    assert_eq!(
        names(&o),
        [
            "proj/README.md",
            "proj/bin",
            "proj/emptydir",
            "proj/main-link",
            "proj/src"
        ]
    );
    let o = run(&w, "fs.find", json!({"path": "proj", "limit": 2}));
    assert_eq!(o.rows.len(), 2);
    assert!(o.truncated);
    assert!(col(&o, "modified")[0].as_i64().unwrap() > 1_600_000_000);
}

#[test]
fn largest_files_and_directories() {
    let w = world();
    w.file("a/small.txt", &[1; 10]);
    w.file("a/b/big.dat", &[1; 3000]);
    w.file("a/b/mid.dat", &[1; 2000]);
    w.file("c/other.dat", &[1; 2500]);
    w.file(".cache/huge", &[1; 9000]);
    let o = run(&w, "fs.largest", json!({"count": 3}));
    let got: Vec<String> = paths(&o).iter().map(|p| rel(&w, p)).collect();
    assert_eq!(got, [".cache/huge", "a/b/big.dat", "c/other.dat"]);
    assert_eq!(col(&o, "size"), vec![json!(9000), json!(3000), json!(2500)]);
    let o = run(&w, "fs.largest", json!({"kind": "dirs", "count": 3}));
    let got: Vec<String> = paths(&o).iter().map(|p| rel(&w, p)).collect();
    assert_eq!(got, [".cache", "a", "a/b"]);
    assert_eq!(col(&o, "size"), vec![json!(9000), json!(5010), json!(5000)]);
}

#[test]
fn usage_totals_a_tree_and_its_children() {
    let w = world();
    w.file("d/one/x", &[0; 100]);
    w.file("d/one/y", &[0; 50]);
    w.file("d/two/z", &[0; 300]);
    w.file("d/top.txt", &[0; 25]);
    // A hard link is counted once.
    fs::hard_link(w.root.join("d/two/z"), w.root.join("d/two/z-link")).unwrap();
    let o = run(&w, "fs.usage", json!({"path": "d"}));
    let got: Vec<String> = paths(&o).iter().map(|p| rel(&w, p)).collect();
    assert_eq!(got, ["d/two", "d/one", "d/top.txt"]);
    assert_eq!(col(&o, "size"), vec![json!(300), json!(150), json!(25)]);
    assert_eq!(col(&o, "files"), vec![json!(1), json!(2), json!(1)]);
    assert_eq!(col(&o, "percent")[0], json!(63.2));
    assert!(o.summary.unwrap().starts_with("475 B in 4 files"));
}

#[test]
fn read_whole_head_tail_and_refuses_binary() {
    let w = world();
    let lines: String = (1..=100).map(|i| format!("line {i}\n")).collect();
    w.file("log.txt", lines.as_bytes());
    let o = run(&w, "fs.read", json!({"path": "log.txt"}));
    assert_eq!(o.text.as_deref(), Some(lines.as_str()));
    assert!(!o.truncated);
    let o = run(&w, "fs.read", json!({"path": "log.txt", "head": 2}));
    assert_eq!(o.text.as_deref(), Some("line 1\nline 2\n"));
    let o = run(&w, "fs.read", json!({"path": "log.txt", "tail": 3}));
    assert_eq!(o.text.as_deref(), Some("line 98\nline 99\nline 100\n"));
    w.file("img.png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR");
    let e = err(&w, "fs.read", json!({"path": "img.png"})).to_string();
    assert!(e.contains("binary"), "{e}");
    let e = err(&w, "fs.read", json!({"path": "."})).to_string();
    assert!(e.contains("fs.list"), "{e}");
}

#[test]
fn read_caps_huge_files() {
    let w = world();
    let line = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\n";
    let big = line.repeat(40_000); // 2.5 MiB
    w.file("big.log", big.as_bytes());
    let o = run(&w, "fs.read", json!({"path": "big.log"}));
    assert!(o.truncated);
    assert_eq!(o.text.as_ref().unwrap().len(), 1 << 20);
    assert!(o.summary.unwrap().contains("cut at"));
    let o = run(&w, "fs.read", json!({"path": "big.log", "tail": 1}));
    assert_eq!(o.text.as_deref(), Some(line));
    assert!(!o.truncated);
}

#[test]
fn search_literal_regex_case_glob_binary_and_limit() {
    let w = world();
    project(&w);
    w.file(
        "proj/notes.txt",
        b"TODO: hello again\nnothing here\nHello (world)\n",
    );
    w.file("proj/blob.bin", b"hello\x00\x01\x02");
    w.file("proj/.hidden/h.txt", b"hello hidden");
    let o = run(&w, "fs.search", json!({"path": "proj", "pattern": "hello"}));
    let hits: Vec<(String, i64)> = paths(&o)
        .iter()
        .zip(col(&o, "line"))
        .map(|(p, l)| (rel(&w, p), l.as_i64().unwrap()))
        .collect();
    assert_eq!(
        hits,
        [("proj/README.md".into(), 2), ("proj/notes.txt".into(), 1)]
    );
    assert!(o.summary.unwrap().contains("1 binary"));
    let o = run(
        &w,
        "fs.search",
        json!({"path": "proj", "pattern": "hello", "ignore_case": true}),
    );
    assert_eq!(o.rows.len(), 3);
    assert_eq!(col(&o, "text")[2], json!("Hello (world)"));
    let o = run(
        &w,
        "fs.search",
        json!({"path": "proj", "pattern": "(world)"}),
    );
    assert_eq!(o.rows.len(), 1, "literal by default: parentheses are text");
    let o = run(
        &w,
        "fs.search",
        json!({"path": "proj", "pattern": r"fn \w+\(", "regex": true}),
    );
    assert_eq!(o.rows.len(), 2);
    let o = run(
        &w,
        "fs.search",
        json!({"path": "proj", "pattern": "fn", "glob": "lib.*"}),
    );
    let got: Vec<String> = paths(&o).iter().map(|p| rel(&w, p)).collect();
    assert_eq!(got, ["proj/src/lib.rs"]);
    let o = run(
        &w,
        "fs.search",
        json!({"path": "proj", "pattern": "e", "limit": 2}),
    );
    assert_eq!(o.rows.len(), 2);
    assert!(o.truncated);
    let o = run(
        &w,
        "fs.search",
        json!({"path": "proj/notes.txt", "pattern": "nothing"}),
    );
    assert_eq!(col(&o, "line"), vec![json!(2)]);
    let e = err(&w, "fs.search", json!({"pattern": "(", "regex": true})).to_string();
    assert!(e.contains("not a valid regular expression"), "{e}");
}

#[test]
fn checksum_every_algorithm_with_known_answers() {
    let w = world();
    w.file("abc.txt", b"abc");
    let sum = |algo: &str| -> String {
        let o = run(
            &w,
            "fs.checksum",
            json!({"path": "abc.txt", "algorithm": algo}),
        );
        o.rows[0]["checksum"].as_str().unwrap().to_owned()
    };
    assert_eq!(
        sum("sha256"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    assert_eq!(sum("sha1"), "a9993e364706816aba3e25717850c26c9cd0d89d");
    assert_eq!(sum("md5"), "900150983cd24fb0d6963f7d28e17f72");
    assert_eq!(
        sum("sha512"),
        "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"
    );
    assert_eq!(sum("blake3"), blake3::hash(b"abc").to_hex().to_string());
    let o = run(&w, "fs.checksum", json!({"path": "abc.txt"}));
    assert_eq!(col(&o, "algorithm"), vec![json!("sha256")]);
    // A directory: every file in it, hidden ones too.
    w.file("d/.x", b"1");
    w.file("d/y", b"2");
    let o = run(&w, "fs.checksum", json!({"path": ["d", "abc.txt"]}));
    let got: Vec<String> = paths(&o).iter().map(|p| rel(&w, p)).collect();
    assert_eq!(got, ["d/.x", "d/y", "abc.txt"]);
}

#[test]
fn count_files_dirs_lines_words_bytes() {
    let w = world();
    project(&w);
    let count =
        |args: Value| -> i64 { run(&w, "fs.count", args).rows[0]["count"].as_i64().unwrap() };
    assert_eq!(
        count(json!({"path": "proj"})),
        5,
        "files (links included) by default for a dir"
    );
    assert_eq!(count(json!({"path": "proj", "what": "dirs"})), 2);
    assert_eq!(
        count(json!({"path": "proj/src/main.rs"})),
        3,
        "lines by default for a file"
    );
    assert_eq!(count(json!({"path": "proj/README.md", "what": "words"})), 4);
    assert_eq!(
        count(json!({"path": "proj/README.md", "what": "bytes"})),
        22
    );
    assert_eq!(count(json!({"path": "proj/src", "what": "lines"})), 4);
    let e = err(
        &w,
        "fs.count",
        json!({"path": "proj/README.md", "what": "files"}),
    )
    .to_string();
    assert!(e.contains("is a file"), "{e}");
}

// ============================================================================== effects

#[test]
fn effects_follow_symlinks_to_their_real_targets() {
    let w = world();
    let outside = tempfile::tempdir().unwrap();
    let real_outside = fs::canonicalize(outside.path()).unwrap();
    symlink(outside.path(), w.root.join("etc-link")).unwrap();
    assert_eq!(
        w.effects(
            "fs.write",
            json!({"path": "etc-link/passwd", "content": "x"})
        )
        .unwrap(),
        vec![effect(
            EffectKind::Write,
            real_outside.join("passwd"),
            false
        )]
    );
    assert_eq!(
        w.effects("fs.list", json!({"path": "etc-link"})).unwrap(),
        vec![effect(EffectKind::Read, real_outside.clone(), false)]
    );
    assert_eq!(
        w.effects(
            "fs.chmod",
            json!({"path": "etc-link", "mode": "777", "recursive": true})
        )
        .unwrap(),
        vec![effect(EffectKind::Write, real_outside.clone(), true)]
    );
    // The dry run and the change name the real target too.
    let changes = w
        .dry_run(
            "fs.write",
            json!({"path": "etc-link/passwd", "content": "x"}),
        )
        .unwrap();
    assert_eq!(
        changes,
        vec![Change::Create {
            path: real_outside.join("passwd"),
            bytes: Some(2),
            dir: false
        }]
    );
    // Deleting the link itself touches only the link.
    assert_eq!(
        w.effects("fs.delete", json!({"path": "etc-link", "recursive": true}))
            .unwrap(),
        vec![effect(EffectKind::Delete, w.root.join("etc-link"), false)]
    );
}

#[test]
fn effects_are_recursive_exactly_when_they_reach_into_a_tree() {
    let w = world();
    project(&w);
    fs::create_dir(w.root.join("empty")).unwrap();
    let r = |p: &str| w.root.join(p);
    assert_eq!(
        w.effects(
            "fs.delete",
            json!({"path": ["proj", "empty", "proj/README.md"], "recursive": true})
        )
        .unwrap(),
        vec![
            effect(EffectKind::Delete, r("proj"), true),
            effect(EffectKind::Delete, r("empty"), false),
            effect(EffectKind::Delete, r("proj/README.md"), false),
        ]
    );
    assert_eq!(
        w.effects("fs.move", json!({"source": "proj", "dest": "moved"}))
            .unwrap(),
        vec![
            effect(EffectKind::Delete, r("proj"), true),
            effect(EffectKind::Write, r("moved"), true)
        ]
    );
    w.file("b.txt", b"b");
    assert_eq!(
        w.effects(
            "fs.move",
            json!({"source": "proj/README.md", "dest": "b.txt"})
        )
        .unwrap(),
        vec![
            effect(EffectKind::Delete, r("proj/README.md"), false),
            effect(EffectKind::Write, r("b.txt"), false),
            effect(EffectKind::Delete, r("b.txt"), false),
        ],
        "the file a move replaces is declared as deleted"
    );
    assert_eq!(
        w.effects(
            "fs.copy",
            json!({"source": "proj", "dest": "new/deep/copy"})
        )
        .unwrap(),
        vec![
            effect(EffectKind::Read, r("proj"), true),
            effect(EffectKind::Write, r("new/deep/copy"), true),
            effect(EffectKind::Write, r("new"), false),
        ],
        "the outermost directory to be created is declared so the sandbox can allow it"
    );
    assert_eq!(
        w.effects("fs.chmod", json!({"path": "proj", "mode": "700"}))
            .unwrap(),
        vec![effect(EffectKind::Write, r("proj"), false)]
    );
    assert_eq!(
        w.effects(
            "fs.archive",
            json!({"source": ["proj", "b.txt"], "dest": "a.zip"})
        )
        .unwrap(),
        vec![
            effect(EffectKind::Read, r("proj"), true),
            effect(EffectKind::Read, r("b.txt"), false),
            effect(EffectKind::Write, r("a.zip"), false),
        ]
    );
    assert_eq!(
        w.effects("fs.extract", json!({"archive": "a.zip", "dest": "x"}))
            .unwrap(),
        vec![
            effect(EffectKind::Read, r("a.zip"), false),
            effect(EffectKind::Write, r("x"), true)
        ]
    );
    assert_eq!(
        w.effects("fs.find", json!({"path": "proj"})).unwrap(),
        vec![effect(EffectKind::Read, r("proj"), true)]
    );
    assert_eq!(
        w.effects("fs.read", json!({"path": "~/proj/README.md"}))
            .unwrap(),
        vec![effect(EffectKind::Read, r("proj/README.md"), false)]
    );
}

#[test]
fn kernos_data_directory_is_never_a_target() {
    let mut w = world();
    w.env.data_dir = w.root.join("home/.local/share/kernos");
    w.file("home/.local/share/kernos/journal.db", b"precious");
    w.file("home/notes.txt", b"n");
    let before = tree_state(&w.root);
    for (name, args) in [
        (
            "fs.write",
            json!({"path": "home/.local/share/kernos/journal.db", "content": "x"}),
        ),
        (
            "fs.delete",
            json!({"path": "home/.local/share/kernos", "recursive": true}),
        ),
        ("fs.delete", json!({"path": "home", "recursive": true})),
        ("fs.move", json!({"source": "home", "dest": "elsewhere"})),
        (
            "fs.copy",
            json!({"source": "home/notes.txt", "dest": "home/.local/share/kernos/"}),
        ),
        (
            "fs.extract",
            json!({"archive": "x.tar", "dest": "home/.local/share/kernos"}),
        ),
    ] {
        let e = w
            .effects(name, args.clone())
            .err()
            .or_else(|| w.execute(name, args).err());
        let e = e
            .unwrap_or_else(|| panic!("{name} was not refused"))
            .to_string();
        assert!(e.contains("data directory"), "{name}: {e}");
    }
    // A recursive chmod of home leaves Kernos's data alone.
    let db = w.root.join("home/.local/share/kernos/journal.db");
    let m = mode(&db);
    run(
        &w,
        "fs.chmod",
        json!({"path": "home", "mode": "a+w", "recursive": true}),
    );
    assert_eq!(mode(&db), m);
    assert_eq!(read(&db), "precious");
    assert_ne!(tree_state(&w.root), before, "chmod changed home itself");
}

#[test]
fn unresolved_step_references_are_an_error_not_a_guess() {
    let w = world();
    let e = err(
        &w,
        "fs.delete",
        json!({"path": {"$step": 0, "$field": "path"}}),
    )
    .to_string();
    assert!(e.contains("step 0"), "{e}");
}

#[test]
fn cancelled_before_a_change_changes_nothing() {
    let w = world();
    project(&w);
    let before = tree_state(&w.root);
    w.cancel.cancel();
    let e = err(&w, "fs.delete", json!({"path": "proj", "recursive": true}));
    assert!(matches!(e, ToolError::Cancelled), "{e}");
    assert_eq!(tree_state(&w.root), before);
}

#[test]
fn every_catalog_action_is_registered_with_a_path_column_where_it_returns_rows() {
    let w = world();
    let fs_actions: Vec<&str> = w
        .registry
        .names()
        .filter(|n| n.starts_with("fs."))
        .collect();
    assert_eq!(
        fs_actions,
        [
            "fs.append",
            "fs.archive",
            "fs.checksum",
            "fs.chmod",
            "fs.copy",
            "fs.count",
            "fs.delete",
            "fs.duplicates",
            "fs.extract",
            "fs.find",
            "fs.largest",
            "fs.list",
            "fs.mkdir",
            "fs.move",
            "fs.read",
            "fs.search",
            "fs.usage",
            "fs.write"
        ]
    );
    for tool in w.registry.tools().into_iter().filter(|t| t.name == "fs") {
        for a in tool.actions {
            if a.name != "read" {
                assert_eq!(a.output[0].name, "path", "fs.{}", a.name);
            }
        }
    }
}

fn mkfifo(p: &Path) {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(p.as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
}

#[test]
fn special_files_are_refused_by_reads_and_left_out_of_archives() {
    let w = world();
    project(&w);
    mkfifo(&w.root.join("proj/pipe"));
    // Each of these would block forever on a FIFO if it tried to open it.
    for (name, args) in [
        ("fs.read", json!({"path": "proj/pipe"})),
        ("fs.checksum", json!({"path": "proj/pipe"})),
        ("fs.count", json!({"path": "proj/pipe"})),
        ("fs.search", json!({"path": "proj/pipe", "pattern": "x"})),
    ] {
        let e = err(&w, name, args).to_string();
        assert!(e.contains("not a regular file"), "{name}: {e}");
    }
    // Walks skip it.
    assert_eq!(
        run(&w, "fs.search", json!({"path": "proj", "pattern": "hello"}))
            .rows
            .len(),
        1
    );
    let out = run(
        &w,
        "fs.archive",
        json!({"source": "proj", "dest": "p.tar.gz"}),
    );
    assert_eq!(col(&out, "entries"), vec![json!(8)]);
    assert!(out.summary.unwrap().contains("left out 1"));
}

#[test]
fn summaries_count_one_thing_in_the_singular() {
    let w = world();
    w.file("one/only.txt", b"a\nb\nc\n");
    fs::create_dir(w.root.join("empty")).unwrap();
    let summary = |name: &str, args: Value| run(&w, name, args).summary.unwrap();
    let s = summary("fs.list", json!({"path": "one"}));
    assert!(s.starts_with("1 entry ("), "{s}");
    let s = summary("fs.largest", json!({"path": "one", "count": 5}));
    assert!(s.starts_with("the largest file under"), "{s}");
    let s = summary("fs.largest", json!({"path": "empty", "count": 5}));
    assert!(s.starts_with("no files under"), "{s}");
    let s = summary("fs.read", json!({"path": "one/only.txt", "head": 1}));
    assert!(s.starts_with("first line of"), "{s}");
    let s = summary("fs.read", json!({"path": "one/only.txt", "tail": 2}));
    assert!(s.starts_with("last 2 lines of"), "{s}");
    let s = summary("fs.count", json!({"path": "one", "what": "files"}));
    assert!(s.starts_with("1 file in"), "{s}");
    let s = summary("fs.count", json!({"path": "one", "what": "lines"}));
    assert!(s.contains("(over 1 file)"), "{s}");
}

#[test]
fn find_sorted_by_modification_time_keeps_the_newest_or_oldest_after_sorting() {
    let w = world();
    for (name, secs) in [("a.txt", 50), ("b.txt", 10), ("c.txt", 30), ("d.txt", 90)] {
        w.file(&format!("t/{name}"), b"x");
        age(w.root.join("t").join(name), secs * 3600);
    }
    let names = |o: &Output| -> Vec<String> {
        paths(o)
            .iter()
            .map(|p| p.rsplit('/').next().unwrap().to_owned())
            .collect()
    };
    let o = run(
        &w,
        "fs.find",
        json!({"path": "t", "type": "file", "sort": "newest", "limit": 2}),
    );
    assert_eq!(names(&o), ["b.txt", "c.txt"]);
    assert!(o.truncated);
    let o = run(
        &w,
        "fs.find",
        json!({"path": "t", "type": "file", "sort": "oldest", "limit": 3}),
    );
    assert_eq!(names(&o), ["d.txt", "a.txt", "c.txt"]);
    let o = run(&w, "fs.find", json!({"path": "t", "sort": "oldest"}));
    assert_eq!(names(&o).len(), 4);
    assert!(!o.truncated);
    let e = err(&w, "fs.find", json!({"path": "t", "sort": "biggest"}));
    assert!(e.to_string().contains("newest"), "{e}");
}

#[test]
fn list_recursive_names_every_entry_below_relative_to_the_directory() {
    let w = world();
    project(&w);
    let o = run(&w, "fs.list", json!({"path": "proj", "recursive": true}));
    let names: Vec<String> = col(&o, "name")
        .into_iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    for want in [
        "README.md",
        "src",
        "src/main.rs",
        "src/lib.rs",
        "bin/run.sh",
    ] {
        assert!(names.iter().any(|n| n == want), "{want} missing: {names:?}");
    }
    assert!(o.summary.as_deref().unwrap_or("").contains("and below"));
    // Without it, only the directory's own entries.
    let o = run(&w, "fs.list", json!({"path": "proj"}));
    assert!(
        col(&o, "name")
            .iter()
            .all(|n| !n.as_str().unwrap().contains('/'))
    );
}

#[test]
fn walks_skip_special_files_and_say_how_many() {
    let w = world();
    project(&w);
    mkfifo(&w.root.join("proj/pipe"));
    mkfifo(&w.root.join("proj/src/pipe2"));
    for (name, args) in [
        ("fs.search", json!({"path": "proj", "pattern": "hello"})),
        ("fs.find", json!({"path": "proj"})),
        ("fs.count", json!({"path": "proj", "what": "lines"})),
        ("fs.checksum", json!({"path": "proj"})),
        ("fs.largest", json!({"path": "proj", "count": 3})),
        ("fs.usage", json!({"path": "proj"})),
    ] {
        let out = run(&w, name, args);
        let s = out.summary.clone().unwrap();
        assert!(s.contains("skipped 2 special files"), "{name}: {s}");
        assert!(
            !paths(&out).iter().any(|p| p.contains("pipe")),
            "{name} listed a FIFO"
        );
    }
}

#[test]
fn a_blocking_kernel_file_is_refused_at_once_and_kernel_file_systems_are_not_walked() {
    let w = world();
    // /proc/kmsg waits for the next kernel message (and takes it from the system log).
    let t0 = std::time::Instant::now();
    for (name, args) in [
        ("fs.search", json!({"path": "/proc/kmsg", "pattern": "foo"})),
        ("fs.read", json!({"path": "/proc/kmsg"})),
        ("fs.count", json!({"path": "/proc/kmsg"})),
        ("fs.checksum", json!({"path": "/proc/kmsg"})),
    ] {
        let e = err(&w, name, args).to_string();
        assert!(e.contains("blocks or never ends"), "{name}: {e}");
    }
    assert!(t0.elapsed() < std::time::Duration::from_secs(5));
    // An ordinary kernel file named directly is still read.
    let out = run(
        &w,
        "fs.search",
        json!({"path": "/proc/self/status", "pattern": "Pid"}),
    );
    assert!(!out.rows.is_empty());
    // A walk that reaches a kernel file system does not go in, and says so.
    fs::create_dir(w.root.join("mnt")).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "proc", "proc"])
        .arg(w.root.join("mnt"))
        .status()
        .is_ok_and(|s| s.success());
    if mounted {
        w.file("mnt2/notes.txt", b"foo here\n");
        let out = w.execute("fs.search", json!({"path": ".", "pattern": "foo"}));
        let _ = std::process::Command::new("umount")
            .arg(w.root.join("mnt"))
            .status();
        let out = out.unwrap().0;
        let s = out.summary.unwrap();
        assert!(s.contains("the kernel's file systems"), "{s}");
        assert!(s.contains("/mnt"), "{s}");
        assert_eq!(out.rows.len(), 1, "only the user's file matched");
    }
    // Searching /proc itself (the user asked for it) walks it but never opens kmsg.
    let t0 = std::time::Instant::now();
    let out = run(
        &w,
        "fs.search",
        json!({"path": "/proc/sys/kernel", "pattern": "zzzz-no-such", "glob": "ostype"}),
    );
    assert!(out.rows.is_empty());
    assert!(t0.elapsed() < std::time::Duration::from_secs(10));
}

#[test]
fn walks_skip_kernos_data_directory_and_say_so() {
    let mut w = world();
    w.env.data_dir = w.root.join("kdata");
    w.file("kdata/trash/01/old.log", b"needle in the trash\n");
    w.file("kdata/journal.db", b"needle");
    w.file("notes/a.log", b"needle here\n");
    let out = run(&w, "fs.search", json!({"path": ".", "pattern": "needle"}));
    assert_eq!(out.rows.len(), 1);
    let s = out.summary.unwrap();
    assert!(s.contains("Kernos's data directory"), "{s}");
    let out = run(&w, "fs.find", json!({"path": ".", "name": "*.log"}));
    assert_eq!(paths(&out).len(), 1, "{:?}", paths(&out));
    // Asked about the data directory itself, a walk looks inside.
    let out = run(&w, "fs.find", json!({"path": "kdata", "name": "*.log"}));
    assert_eq!(paths(&out).len(), 1);
}

/// Cancels the world's token once a copy has reported `after` bytes.
struct StopAfter {
    cancel: kernos_core::CancelToken,
    after: u64,
    seen: std::sync::Mutex<Vec<(u64, String)>>,
}

impl kernos_tools::Progress for StopAfter {
    fn update(&self, done: u64, _: Option<u64>, what: &str) {
        self.seen.lock().unwrap().push((done, what.to_owned()));
        if done >= self.after {
            self.cancel.cancel();
        }
    }
}

#[test]
fn a_stop_request_ends_a_copy_between_chunks_and_undo_removes_what_was_copied() {
    for source in ["big/a.bin", "big"] {
        let mut w = world();
        let chunk = kernos_tools::undo::COPY_CHUNK;
        w.file("big/a.bin", &vec![7u8; 8 * chunk]);
        w.file("big/b.bin", &vec![8u8; 8 * chunk]);
        w.file("big/sub/c.bin", &vec![9u8; 8 * chunk]);
        let before = tree_state(&w.root);
        w.progress = Box::new(StopAfter {
            cancel: w.cancel.clone(),
            after: 2 * chunk as u64,
            seen: Default::default(),
        });
        let (out, records) =
            w.execute_recorded("fs.copy", json!({"source": source, "dest": "copy"}));
        assert!(
            matches!(out, Err(ToolError::Cancelled)),
            "{source}: the copy ran on: {:?}",
            out.map(|o| o.summary)
        );
        // It stopped within a chunk of the request: far from the 8 or 24 chunks asked for.
        let copied: u64 = bytes_beneath(&w.root.join("copy"));
        assert!(
            copied <= 3 * chunk as u64,
            "{source}: {copied} bytes copied after the stop request"
        );
        // What was copied is recorded: undo leaves the tree as it was.
        assert!(!records.records.is_empty(), "{source}: nothing recorded");
        let problems = w.undo(&records.records, &records.after);
        assert!(problems.is_empty(), "{source}: {problems:?}");
        assert_eq!(tree_state(&w.root), before, "{source}");
    }
}

/// Bytes of the regular files at or beneath `p` (0 when it does not exist).
fn bytes_beneath(p: &Path) -> u64 {
    let Ok(m) = fs::symlink_metadata(p) else {
        return 0;
    };
    if m.is_file() {
        return m.len();
    }
    fs::read_dir(p)
        .map(|rd| rd.flatten().map(|e| bytes_beneath(&e.path())).sum())
        .unwrap_or(0)
}

#[test]
fn undoing_a_copy_frees_its_space_instead_of_filling_the_trash() {
    let w = world();
    w.file("src/a.bin", &[1u8; 4096]);
    w.file("src/sub/b.bin", &[2u8; 4096]);
    w.file("one.txt", b"one");
    w.round_trip("fs.copy", json!({"source": "src", "dest": "copy"}));
    w.round_trip("fs.copy", json!({"source": "one.txt", "dest": "two.txt"}));
    assert!(
        kernos_tools::trash::list(&w.env).unwrap().is_empty(),
        "undo of a copy put the copy in the trash"
    );
    // A delete still goes to the trash, so undo can put it back.
    let (_, recs) = w
        .execute("fs.delete", json!({"path": "src", "recursive": true}))
        .unwrap();
    let items = kernos_tools::trash::list(&w.env).unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].bytes, 8192);
    assert!(w.undo(&recs.records, &recs.after).is_empty());
    kernos_tools::trash::tidy(&w.env);
    assert!(kernos_tools::trash::list(&w.env).unwrap().is_empty());
}

#[test]
fn a_delete_that_cannot_happen_records_nothing_to_undo() {
    let w = world();
    let ro = w.root.join("ro");
    fs::create_dir(&ro).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "tmpfs"])
        .arg(&ro)
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        return; // needs root; the CI runs as root
    }
    fs::write(ro.join("f.txt"), b"x").unwrap();
    let remounted = std::process::Command::new("mount")
        .args(["-o", "remount,ro"])
        .arg(&ro)
        .status()
        .is_ok_and(|s| s.success());
    let (out, records) = w.execute_recorded("fs.delete", json!({"path": "ro/f.txt"}));
    let _ = std::process::Command::new("umount").arg(&ro).status();
    assert!(remounted);
    let Err(e) = out else {
        panic!("deleting from a read-only file system did not fail");
    };
    assert!(e.to_string().contains("cannot delete"), "{e}");
    assert!(
        records.records.is_empty(),
        "a failed delete left an undo record: {:?}",
        records.records
    );
}

#[test]
fn duplicates_groups_identical_content_and_ignores_hard_links_and_empty_files() {
    let w = world();
    w.file("d/a.txt", b"same content\n");
    w.file("d/sub/b.txt", b"same content\n");
    w.file("d/c.txt", b"other content\n"); // same size as nothing else
    w.file("d/d.txt", b"same-size-diff\n");
    w.file("d/e.txt", b"same-size-DIFF\n"); // same size as d.txt, different bytes
    w.file("d/empty1", b"");
    w.file("d/empty2", b"");
    fs::hard_link(w.root.join("d/a.txt"), w.root.join("d/link.txt")).unwrap();
    let o = run(&w, "fs.duplicates", json!({"path": "d"}));
    let got: Vec<String> = paths(&o).iter().map(|p| rel(&w, p)).collect();
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(got.iter().any(|p| p == "d/sub/b.txt"), "{got:?}");
    assert!(
        got.iter().any(|p| p == "d/a.txt" || p == "d/link.txt"),
        "{got:?}"
    );
    assert_eq!(col(&o, "group"), [json!(1), json!(1)]);
    assert_eq!(col(&o, "size")[0], json!(13));
    assert!(
        o.summary.as_deref().unwrap_or("").contains("1 group"),
        "{:?}",
        o.summary
    );
    // A size floor leaves small files out.
    let o = run(&w, "fs.duplicates", json!({"path": "d", "min_size": 100}));
    assert!(paths(&o).is_empty());
    let e = err(&w, "fs.duplicates", json!({"path": "d", "min": 1}));
    assert!(e.to_string().contains("min"), "{e}");
}

#[test]
fn a_directory_copy_previews_its_size() {
    let w = world();
    w.file("src/a.bin", &[1u8; 3000]);
    w.file("src/sub/b.bin", &[2u8; 2000]);
    let changes = w
        .dry_run("fs.copy", json!({"source": "src", "dest": "dst"}))
        .unwrap();
    let said: Vec<String> = changes.iter().map(Change::describe).collect();
    assert!(
        said.iter()
            .any(|d| d.contains("create directory") && d.contains("(4.9 KiB)")),
        "{said:?}"
    );
    let mk = w.dry_run("fs.mkdir", json!({"path": "new"})).unwrap();
    assert!(!mk[0].describe().contains('('), "{}", mk[0].describe());
}
