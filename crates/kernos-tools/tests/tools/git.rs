//! `git.*` on repositories the tests build with the git CLI in their own temporary trees.

use std::path::{Path, PathBuf};
use std::process::Command;

use kernos_core::{EffectKind, Target};
use kernos_tools::ToolError;
use kernos_tools::testing::World;
use serde_json::json;

/// Runs git in `dir` with a fixed identity and no dependence on the user's configuration.
fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_DATE", "2026-01-02T03:04:05Z")
        .env("GIT_COMMITTER_DATE", "2026-01-02T03:04:05Z")
        .args([
            "-c",
            "user.name=Ann Example",
            "-c",
            "user.email=ann@example.org",
            "-c",
            "init.defaultBranch=main",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .output()
        .expect("git is installed");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn write(path: PathBuf, s: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, s).unwrap();
}

/// A repository with three commits on main and a feature branch.
fn repo(w: &World) -> PathBuf {
    let r = w.root.join("repo");
    std::fs::create_dir(&r).unwrap();
    git(&r, &["init", "-q"]);
    write(r.join("a.txt"), "one\n");
    write(r.join("docs/guide.md"), "# Guide\n");
    git(&r, &["add", "."]);
    git(&r, &["commit", "-qm", "first commit"]);
    write(r.join("a.txt"), "one\ntwo\n");
    git(&r, &["commit", "-qam", "second: more a"]);
    write(r.join("docs/guide.md"), "# Guide\n\nRead me.\n");
    git(&r, &["commit", "-qam", "docs: explain"]);
    git(&r, &["branch", "feature"]);
    r
}

#[test]
fn status_reports_each_change_and_the_branch() {
    let w = World::new();
    let r = repo(&w);
    write(r.join("a.txt"), "one\ntwo\nthree\n");
    write(r.join("b.txt"), "new\n");
    git(&r, &["add", "b.txt"]);
    git(&r, &["mv", "docs/guide.md", "docs/manual.md"]);
    write(r.join("c.txt"), "untracked\n");
    let (out, _) = w
        .execute("git.status", json!({"repo": "repo/docs"}))
        .unwrap();
    let row = |p: &str| {
        out.rows
            .iter()
            .find(|x| x["path"] == json!(r.join(p)))
            .unwrap_or_else(|| panic!("{p} missing from {:?}", out.rows))
    };
    assert_eq!(out.rows.len(), 4, "{:?}", out.rows);
    assert_eq!(
        (&row("a.txt")["index"], &row("a.txt")["worktree"]),
        (&json!(null), &json!("modified"))
    );
    assert_eq!(row("b.txt")["index"], "added");
    assert_eq!(row("docs/manual.md")["index"], "renamed");
    assert_eq!(
        row("docs/manual.md")["orig_path"],
        json!(r.join("docs/guide.md"))
    );
    assert_eq!(row("c.txt")["worktree"], "untracked");
    let summary = out.summary.unwrap();
    assert!(summary.starts_with("on branch main"), "{summary}");
    assert!(
        summary.contains("2 staged, 1 modified, 1 untracked"),
        "{summary}"
    );
    // A subdirectory names the whole repository in the effects.
    let eff = w
        .effects("git.status", json!({"repo": "repo/docs"}))
        .unwrap();
    assert_eq!(
        eff.iter().map(|e| (e.kind, &e.target)).collect::<Vec<_>>(),
        vec![(
            EffectKind::Read,
            &Target::Path {
                path: r.clone(),
                recursive: true
            }
        )]
    );
    // Reading did not touch the repository (no index refresh, no lock left behind).
    assert!(!r.join(".git/index.lock").exists());
}

#[test]
fn status_of_a_clone_knows_ahead_and_behind() {
    let w = World::new();
    let r = repo(&w);
    git(&w.root, &["clone", "-q", "repo", "clone"]);
    let c = w.root.join("clone");
    write(c.join("a.txt"), "changed in clone\n");
    git(&c, &["commit", "-qam", "clone work"]);
    write(r.join("z.txt"), "upstream\n");
    git(&r, &["add", "z.txt"]);
    git(&r, &["commit", "-qm", "upstream work"]);
    git(&c, &["fetch", "-q"]);
    let (out, _) = w.execute("git.status", json!({"repo": "clone"})).unwrap();
    assert!(out.rows.is_empty());
    let s = out.summary.unwrap();
    assert!(s.contains("1 ahead and 1 behind origin/main"), "{s}");
    assert!(s.ends_with("working tree clean"), "{s}");
    let (b, _) = w.execute("git.branches", json!({"repo": "clone"})).unwrap();
    let main = b.rows.iter().find(|x| x["name"] == "main").unwrap();
    assert_eq!(main["upstream"], "origin/main");
    assert_eq!(
        (main["ahead"].clone(), main["behind"].clone()),
        (json!(1), json!(1))
    );
    assert_eq!(main["current"], true);
}

#[test]
fn log_lists_recent_commits_and_filters_by_path() {
    let w = World::new();
    repo(&w);
    let (out, _) = w
        .execute("git.log", json!({"repo": "repo", "count": 2}))
        .unwrap();
    let subjects: Vec<&str> = out
        .rows
        .iter()
        .map(|r| r["subject"].as_str().unwrap())
        .collect();
    assert_eq!(subjects, ["docs: explain", "second: more a"]);
    let r = &out.rows[0];
    assert_eq!(r["author"], "Ann Example");
    assert_eq!(r["email"], "ann@example.org");
    assert_eq!(r["date"], 1_767_323_045);
    let full = git(&w.root.join("repo"), &["rev-parse", "HEAD"]);
    assert!(full.starts_with(r["hash"].as_str().unwrap()));
    let (docs, _) = w
        .execute("git.log", json!({"repo": "repo", "path": "repo/docs"}))
        .unwrap();
    let subjects: Vec<&str> = docs
        .rows
        .iter()
        .map(|r| r["subject"].as_str().unwrap())
        .collect();
    assert_eq!(subjects, ["docs: explain", "first commit"]);
}

#[test]
fn diff_shows_unstaged_and_staged_changes() {
    let w = World::new();
    let r = repo(&w);
    write(r.join("a.txt"), "one\nTWO\nthree\n");
    write(r.join("docs/guide.md"), "# Guide\n");
    git(&r, &["add", "docs/guide.md"]);
    let (out, _) = w.execute("git.diff", json!({"repo": "repo"})).unwrap();
    assert_eq!(out.rows.len(), 1, "{:?}", out.rows);
    assert_eq!(out.rows[0]["path"], json!(r.join("a.txt")));
    assert_eq!(
        (out.rows[0]["added"].clone(), out.rows[0]["removed"].clone()),
        (json!(2), json!(1))
    );
    let text = out.text.unwrap();
    assert!(text.contains("+TWO") && text.contains("-two"), "{text}");
    assert!(
        out.summary
            .unwrap()
            .contains("1 file changed (unstaged), +2 −1")
    );
    let (staged, _) = w
        .execute("git.diff", json!({"repo": "repo", "staged": true}))
        .unwrap();
    assert_eq!(staged.rows[0]["path"], json!(r.join("docs/guide.md")));
    assert_eq!(staged.rows[0]["removed"], 2);
    let (only, _) = w
        .execute("git.diff", json!({"repo": "repo", "path": "repo/docs"}))
        .unwrap();
    assert!(only.rows.is_empty());
    assert!(only.summary.unwrap().starts_with("no unstaged changes"));
}

#[test]
fn branches_list_current_and_others() {
    let w = World::new();
    let r = repo(&w);
    git(&r, &["checkout", "-q", "feature"]);
    let (out, _) = w.execute("git.branches", json!({"repo": "repo"})).unwrap();
    let names: Vec<(&str, bool)> = out
        .rows
        .iter()
        .map(|b| (b["name"].as_str().unwrap(), b["current"].as_bool().unwrap()))
        .collect();
    assert_eq!(names.len(), 2);
    assert!(names.contains(&("feature", true)) && names.contains(&("main", false)));
    assert!(out.rows.iter().all(|b| b["subject"] == "docs: explain"));
    assert!(out.summary.unwrap().contains("current: feature"));
}

#[test]
fn empty_repositories_and_non_repositories() {
    let w = World::new();
    let e = w.root.join("empty");
    std::fs::create_dir(&e).unwrap();
    git(&e, &["init", "-q"]);
    let (log, _) = w.execute("git.log", json!({"repo": "empty"})).unwrap();
    assert!(log.rows.is_empty());
    assert_eq!(log.summary.unwrap(), "no commits yet");
    let (st, _) = w.execute("git.status", json!({"repo": "empty"})).unwrap();
    assert!(st.summary.unwrap().contains("no commits yet"));
    let (br, _) = w.execute("git.branches", json!({"repo": "empty"})).unwrap();
    assert!(br.rows.is_empty());
    std::fs::create_dir(w.root.join("plain")).unwrap();
    let err = w.effects("git.status", json!({"repo": "plain"}));
    // The temporary tree could only be inside a repository if /tmp itself were one.
    if let Err(e) = err {
        assert!(e.to_string().contains("not inside a git repository"), "{e}");
    }
    let missing = w
        .effects("git.log", json!({"repo": "nowhere"}))
        .unwrap_err();
    assert!(matches!(missing, ToolError::NotFound(_)), "{missing}");
}

#[test]
fn programs_named_in_the_repository_config_are_not_run() {
    let w = World::new();
    let r = repo(&w);
    let marker = w.root.join("ran");
    let script = w.root.join("hook.sh");
    write(
        script.clone(),
        &format!("#!/bin/sh\ntouch {}\nexit 0\n", marker.display()),
    );
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let s = script.to_str().unwrap();
    git(&r, &["config", "core.fsmonitor", s]);
    git(&r, &["config", "diff.external", s]);
    write(r.join(".gitattributes"), "*.txt diff=conv filter=clean\n");
    git(&r, &["config", "diff.conv.textconv", s]);
    git(&r, &["config", "filter.clean.clean", s]);
    git(&r, &["config", "filter.clean.process", s]);
    write(r.join("a.txt"), "changed\n");
    // Make the index stale so git has to look at the content (through the clean filter,
    // were it not blanked).
    std::thread::sleep(std::time::Duration::from_millis(1100));
    write(r.join("docs/guide.md"), "# Guide\n\nRead me.\n");
    w.execute("git.status", json!({"repo": "repo"})).unwrap();
    w.execute("git.diff", json!({"repo": "repo"})).unwrap();
    w.execute("git.log", json!({"repo": "repo"})).unwrap();
    assert!(
        !marker.exists(),
        "a program from the repository's config ran"
    );
}
