//! Nothing the user said is silently dropped or invented: folder names that are ordinary
//! words, the confidence bar for changes, grounded targets, and vague ages.

use kernos_core::Plan;
use kernos_planner::{Outcome, PlanContext};
use serde_json::Value;

use crate::common::{HOME, planner};

const MUTATING_TOOLS: &[&str] = &["fs.delete", "fs.move", "fs.copy", "fs.mkdir", "svc.enable"];

/// A scratch tree whose folders are ordinary words.
fn tree() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    for sub in [
        "cache", "logs", "big", "repo", "docs", "archive", "src", "old", "largest", "new", "files",
        "tmp",
    ] {
        std::fs::create_dir(d.path().join(sub)).unwrap();
    }
    d
}

fn ctx_in(d: &std::path::Path) -> PlanContext {
    PlanContext::new(HOME, d.to_string_lossy().to_string())
}

fn plan_in(req: &str, ctx: &PlanContext) -> Plan {
    match planner().plan(req, ctx) {
        Outcome::Plan { plan, .. } => plan,
        other => panic!("{req:?}: {other:?}"),
    }
}

fn is_change(plan: &Plan) -> bool {
    plan.steps.iter().any(|s| {
        let n = s.name();
        n.starts_with("svc.") && !matches!(n.as_str(), "svc.list" | "svc.status" | "svc.logs")
            || MUTATING_TOOLS.contains(&n.as_str())
            || matches!(
                n.as_str(),
                "fs.write" | "fs.append" | "fs.chmod" | "fs.archive" | "fs.extract" | "proc.kill"
            )
            || n.starts_with("pkg.") && matches!(n.as_str(), "pkg.install" | "pkg.remove")
            || n == "shell.run"
    })
}

#[test]
fn a_word_after_in_that_names_a_folder_here_is_that_folder() {
    let d = tree();
    let ctx = ctx_in(d.path());
    for (req, step, path) in [
        (
            "look for files under 10 bytes in cache, then remove them",
            0,
            "cache",
        ),
        ("what are the three biggest files inside big", 0, "big"),
        ("list what is in logs", 0, "logs"),
        ("git status of the repo in repo", 0, "repo"),
        ("show me everything under my docs", 0, "docs"),
        ("make a directory named q4 in archive", 0, "archive/q4"),
        ("list src recursively", 0, "src"),
    ] {
        let p = plan_in(req, &ctx);
        let got = p.steps[step]
            .args
            .get("path")
            .or_else(|| p.steps[step].args.get("repo"))
            .cloned()
            .unwrap_or(Value::Null);
        assert_eq!(got, path, "{req}: {:?}", p.steps);
    }
}

/// "called X in Y": Y is the place even when it is a keyword and not there yet (the
/// misspelt-trigger generator must not see this one, so it lives here, not in paraphrases).
#[test]
fn a_folder_called_x_in_a_keyword_is_made_there() {
    let ctx = ctx_in(std::path::Path::new("/nonexistent-kernos-test"));
    let p = plan_in("make a folder called q3 in archive", &ctx);
    assert_eq!(p.steps[0].name(), "fs.mkdir");
    assert_eq!(p.steps[0].args["path"], "archive/q3");
}

#[test]
fn a_place_word_that_is_not_there_never_becomes_a_change_in_the_current_directory() {
    let empty = tempfile::tempdir().unwrap();
    let ctx = ctx_in(empty.path());
    for req in [
        "find files below 10 bytes in cache and get rid of them",
        "delete the files smaller than 1kb in logs",
    ] {
        let u = planner().understand(req, &ctx);
        match &u.outcome {
            Outcome::NotUnderstood { message, .. } => {
                assert!(!u.unused.is_empty(), "{req}: nothing reported");
                assert!(
                    u.unused.iter().any(|w| message.contains(w.as_str())),
                    "{req}: {message} / {:?}",
                    u.unused
                );
            }
            Outcome::Plan { plan, .. } => {
                assert!(!is_change(plan), "{req}: planned a change {:?}", plan.steps)
            }
            other => panic!("{req}: {other:?}"),
        }
    }
}

#[test]
fn a_plan_with_a_change_is_never_below_the_confidence_bar() {
    let ctx = ctx_in(std::path::Path::new("/nonexistent-kernos-test"));
    for req in [
        "find tiny files in cache and delete them",
        "remove the blorp files in cache",
        "move the quux reports to ~/old-reports",
        "delete the files in logs that are smaller than 5 bytes",
    ] {
        if let Outcome::Plan { plan, confidence } = planner().plan(req, &ctx) {
            assert!(
                !is_change(&plan) || confidence >= kernos_planner::llm::DEFAULT_THRESHOLD,
                "{req}: change at {confidence}: {:?}",
                plan.steps
            );
        }
    }
}

#[test]
fn a_read_only_plan_with_words_left_over_reports_them() {
    let ctx = ctx_in(std::path::Path::new("/nonexistent-kernos-test"));
    let u = planner().understand("show the biggest files in flurble quickly zorp", &ctx);
    if let Outcome::Plan { .. } = u.outcome {
        assert!(
            u.unused.iter().any(|w| w == "zorp" || w == "flurble"),
            "{:?}",
            u.unused
        );
    }
}

#[test]
fn a_word_of_the_sentence_or_a_typo_never_becomes_a_service_package_or_process() {
    let ctx = ctx_in(std::path::Path::new("/nonexistent-kernos-test"));
    for req in [
        "enable largst",
        "please restart biggest",
        "stop the archive service",
        "disable the delete service",
        "kill the process called enable",
        "install largst",
    ] {
        match planner().plan(req, &ctx) {
            Outcome::Plan { plan, .. } => {
                assert!(!is_change(&plan), "{req}: {:?}", plan.steps)
            }
            Outcome::NotUnderstood { .. } => {}
            other => panic!("{req}: {other:?}"),
        }
    }
    // A name the vocabulary does not know is the user's word for it.
    let p = plan_in("enable frobnicatord at boot", &ctx);
    assert_eq!(p.steps[0].args["name"], "frobnicatord");
}

#[test]
fn a_vague_age_is_asked_about_not_ignored() {
    let ctx = ctx_in(std::path::Path::new("/nonexistent-kernos-test"));
    for req in [
        "get rid of the old log files",
        "remove stale tmp files in /var/tmp",
        "find old pdfs in ~/Downloads",
        "remove old backups from /var/backups",
        "which stale files are under /srv/cache",
    ] {
        match planner().plan(req, &ctx) {
            Outcome::NotUnderstood { message, .. } => {
                assert!(message.contains("older than"), "{req}: {message}")
            }
            other => panic!("{req}: {other:?}"),
        }
    }
    // A stated age is not vague.
    let p = plan_in("delete log files 30 days old in /var/tmp", &ctx);
    assert_eq!(p.steps[0].args["older_than"], 2_592_000);
}

#[test]
fn the_cascade_carries_the_unused_words() {
    let cascade = kernos_planner::llm::Cascade::offline();
    let ctx = ctx_in(std::path::Path::new("/nonexistent-kernos-test"));
    let planned = cascade.plan(
        "find tiny files in cache and delete them",
        &ctx,
        &kernos_planner::llm::PlanOptions::default(),
    );
    assert!(
        !planned.unused.is_empty(),
        "{:?} / {:?}",
        planned.outcome,
        planned.unused
    );
}

#[test]
fn duplicates_are_found_never_deleted_by_guess() {
    let ctx = ctx_in(std::path::Path::new("/nonexistent-kernos-test"));
    let p = plan_in("look for duplicate files in /srv/media", &ctx);
    assert_eq!(p.steps[0].name(), "fs.duplicates");
    for req in [
        "delete duplicate files in ~/Pictures",
        "remove the dupes under /srv/media",
    ] {
        if let Outcome::Plan { plan, .. } = planner().plan(req, &ctx) {
            assert!(!is_change(&plan), "{req}: {:?}", plan.steps);
        }
    }
}

#[test]
fn old_used_as_a_name_is_that_name_not_an_age() {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir(d.path().join("old")).unwrap();
    let ctx = ctx_in(d.path());
    for req in ["delete the folder old", "remove the directory called old"] {
        let p = plan_in(req, &ctx);
        assert_eq!(p.steps[0].name(), "fs.delete", "{req}");
        assert_eq!(p.steps[0].args["path"], Value::from("old"), "{req}");
    }
    // Where nothing is called that, "old" is still an age that must be said.
    let elsewhere = ctx_in(tempfile::tempdir().unwrap().path());
    assert!(matches!(
        planner().plan("get rid of the old log files", &elsewhere),
        Outcome::NotUnderstood { .. }
    ));
}

#[test]
fn a_pid_is_read_as_one_and_a_number_said_otherwise_is_never_signalled() {
    let mut child = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    let pid = child.id();
    let ctx = ctx_in(std::path::Path::new("/nonexistent-kernos-test"));
    for req in [
        format!("kill process {pid}"),
        format!("stop process id {pid}"),
        format!("terminate process number {pid}"),
        format!("kill the process whose id is {pid}"),
        format!("kill pid #{pid}"),
        format!("kill -9 {pid}"),
    ] {
        let p = plan_in(&req, &ctx);
        assert_eq!(p.steps[0].name(), "proc.kill", "{req}");
        assert_eq!(p.steps[0].args["pid"], pid, "{req}");
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // A count is no pid: nothing may signal pid 3 or pid 2.
    for req in ["kill the top 3 processes", "kill 2 nginx processes"] {
        if let Outcome::Plan { plan, .. } = planner().plan(req, &ctx) {
            assert!(
                plan.steps.iter().all(|s| s.args.get("pid").is_none()),
                "{req}: {:?}",
                plan.steps
            );
        }
    }
}

/// A folder whose name is a word of the vocabulary ("big", "archive", "largest", "files"),
/// named as a place — beside "folder"/"directory", after in/to/into/from, or as the bare object
/// of a change — is that folder, whatever the verb; the word's usual meaning does not also
/// apply ("count files in the folder big" counts files, not directories).
#[test]
fn a_folder_named_by_a_vocabulary_word_is_that_folder_across_verbs() {
    let d = tree();
    std::fs::write(d.path().join("notes.txt"), "n").unwrap();
    let ctx = ctx_in(d.path());
    let cases: &[(&str, &str, &str, Value)] = &[
        ("delete the folder big", "fs.delete", "path", "big".into()),
        (
            "remove the directory largest",
            "fs.delete",
            "path",
            "largest".into(),
        ),
        (
            "trash the directory named new",
            "fs.delete",
            "path",
            "new".into(),
        ),
        ("delete logs", "fs.delete", "path", "logs".into()),
        (
            "erase the files folder",
            "fs.delete",
            "path",
            "files".into(),
        ),
        ("list the folder cache", "fs.list", "path", "cache".into()),
        (
            "what is inside the tmp directory",
            "fs.list",
            "path",
            "tmp".into(),
        ),
        (
            "look for pdf files in the folder archive",
            "fs.find",
            "type",
            "file".into(),
        ),
        ("search old for TODO", "fs.search", "path", "old".into()),
        (
            "count the files in the folder big",
            "fs.count",
            "what",
            "files".into(),
        ),
        (
            "how many files does the folder largest hold",
            "fs.count",
            "path",
            "largest".into(),
        ),
        (
            "create a folder q2 in the folder archive",
            "fs.mkdir",
            "path",
            "archive/q2".into(),
        ),
        (
            "make a new directory drafts inside new",
            "fs.mkdir",
            "path",
            "new/drafts".into(),
        ),
        (
            "copy notes.txt to archive",
            "fs.copy",
            "dest",
            "archive".into(),
        ),
        (
            "copy notes.txt into the folder big",
            "fs.copy",
            "dest",
            "big".into(),
        ),
        (
            "move notes.txt into the cache folder",
            "fs.move",
            "dest",
            "cache".into(),
        ),
        (
            "copy the folder files to tmp",
            "fs.copy",
            "source",
            "files".into(),
        ),
    ];
    for (req, action, arg, want) in cases {
        let p = plan_in(req, &ctx);
        assert_eq!(p.steps.len(), 1, "{req}: {:?}", p.steps);
        assert_eq!(p.steps[0].name(), *action, "{req}: {:?}", p.steps);
        assert_eq!(p.steps[0].args[*arg], *want, "{req}: {:?}", p.steps);
    }
    // A folder named as a folder is deleted as one.
    let p = plan_in("delete the folder big", &ctx);
    assert_eq!(p.steps[0].args["recursive"], true);
    // Where no such folder exists, the word keeps its meaning.
    let elsewhere = ctx_in(tempfile::tempdir().unwrap().path());
    let p = plan_in("show the big files in /srv", &elsewhere);
    assert_eq!(p.steps[0].name(), "fs.largest");
}
