//! Follow-ups that lean on the previous request: pronouns, "do the same for", "undo".

use kernos_core::{Plan, Step};
use kernos_planner::{Conversation, Outcome, PlanContext};
use serde_json::json;

use crate::common::{HOME, ctx, plan_with, planner, validate};

/// The context after `request` was planned and run, producing `paths`.
fn after(request: &str, paths: &[&str], tx: Option<&str>) -> PlanContext {
    let plan = plan_with(request, &ctx());
    let conv = Conversation::after_run(
        &plan,
        paths.iter().map(|p| p.to_string()).collect(),
        tx.map(str::to_owned),
    );
    ctx().with_conversation(conv)
}

fn only_step(req: &str, c: &PlanContext) -> Step {
    let plan = plan_with(req, c);
    assert!(validate(&plan).is_empty(), "{req}: {:?}", validate(&plan));
    assert_eq!(plan.steps.len(), 1, "{req}: {plan:?}");
    plan.steps.into_iter().next().unwrap()
}

#[test]
fn them_means_the_previous_results() {
    let c = after(
        "find files larger than 1GB in ~/Downloads",
        &["/home/u/Downloads/a.iso", "/home/u/Downloads/b.mkv"],
        None,
    );
    let s = only_step("delete them", &c);
    assert_eq!(s.name(), "fs.delete");
    assert_eq!(
        s.args["path"],
        json!(["/home/u/Downloads/a.iso", "/home/u/Downloads/b.mkv"])
    );

    let s = only_step("move those files to ~/archive", &c);
    assert_eq!(s.name(), "fs.move");
    assert_eq!(
        s.args["source"],
        json!(["/home/u/Downloads/a.iso", "/home/u/Downloads/b.mkv"])
    );
    assert_eq!(s.args["dest"], format!("{HOME}/archive"));

    let s = only_step("compress them into found.tar.gz", &c);
    assert_eq!(s.name(), "fs.archive");
    assert_eq!(s.args["dest"], "found.tar.gz");

    let s = only_step("copy the results to /mnt/backup", &c);
    assert_eq!(s.name(), "fs.copy");
    assert_eq!(s.args["dest"], "/mnt/backup");
}

#[test]
fn it_means_the_previous_target() {
    let c = after("status of nginx", &[], None);
    let s = only_step("restart it", &c);
    assert_eq!(
        (s.name().as_str(), s.args["name"].as_str()),
        ("svc.restart", Some("nginx"))
    );

    let c = after("cat notes.txt", &["notes.txt"], None);
    let s = only_step("append 'done' to it", &c);
    assert_eq!(s.name(), "fs.append");
    assert_eq!(
        (s.args["path"].as_str(), s.args["content"].as_str()),
        (Some("notes.txt"), Some("done"))
    );

    let c = after("install htop", &[], None);
    let s = only_step("uninstall it", &c);
    assert_eq!(s.name(), "pkg.remove");
    assert_eq!(s.args["packages"], "htop");
}

#[test]
fn the_same_for_another_path_or_name() {
    let c = after("list files in /etc", &[], None);
    let s = only_step("do the same for /opt", &c);
    assert_eq!(
        (s.name().as_str(), s.args["path"].as_str()),
        ("fs.list", Some("/opt"))
    );

    let c = after("show the 5 largest files in /var/log", &[], None);
    let s = only_step("same for ~/Downloads", &c);
    assert_eq!(s.name(), "fs.largest");
    assert_eq!(s.args["path"], format!("{HOME}/Downloads"));
    assert_eq!(s.args["count"], 5);

    let c = after("restart nginx", &[], None);
    let s = only_step("do the same for apache2", &c);
    assert_eq!(
        (s.name().as_str(), s.args["name"].as_str()),
        ("svc.restart", Some("apache2"))
    );

    let c = after("how much space does /var/cache use", &[], None);
    let s = only_step("what about /srv?", &c);
    assert_eq!(
        (s.name().as_str(), s.args["path"].as_str()),
        ("fs.usage", Some("/srv"))
    );

    let c = after("find log files older than 30 days in /var/log", &[], None);
    let plan = plan_with("now do the same thing in /srv/logs", &c);
    assert_eq!(plan.steps[0].args["path"], "/srv/logs");
    assert_eq!(plan.steps[0].args["older_than"], 2_592_000);

    let c = after("show memory usage", &[], None);
    let s = only_step("do it again", &c);
    assert_eq!(s.name(), "sys.memory");
}

#[test]
fn a_multi_step_plan_swaps_every_occurrence() {
    let c = after(
        "create a directory backups and copy notes.txt into it",
        &[],
        None,
    );
    let plan = plan_with("do the same for archive2", &c);
    assert_eq!(plan.steps[0].args["path"], "archive2");
    assert_eq!(plan.steps[1].args["dest"], "archive2");
}

#[test]
fn undo_forms() {
    let tx = "01J2ZK3M4N5P6Q7R8S9T0V1W2X";
    let c = after("delete old.log", &["old.log"], Some(tx));
    for req in [
        "undo",
        "undo that",
        "please undo it",
        "revert the last change",
        "roll it back",
        "undo what you just did",
    ] {
        assert_eq!(
            planner().plan(req, &c),
            Outcome::Undo {
                target: Some(tx.into())
            },
            "{req}"
        );
    }
    assert_eq!(
        planner().plan("undo 01J2ZK3M4N5P6Q7R8S9T0AAAAA", &ctx()),
        Outcome::Undo {
            target: Some("01J2ZK3M4N5P6Q7R8S9T0AAAAA".into())
        }
    );
    assert_eq!(
        planner().plan("undo that", &ctx()),
        Outcome::Undo { target: None }
    );
}

#[test]
fn pronouns_without_context_say_what_is_missing() {
    for req in [
        "delete them",
        "move it to /tmp",
        "restart it",
        "compress those files into x.tar.gz",
    ] {
        match planner().plan(req, &ctx()) {
            Outcome::NotUnderstood {
                message,
                suggestions,
            } => {
                assert!(
                    message.contains("refers to an earlier result"),
                    "{req}: {message}"
                );
                assert!(!message.contains('\n'));
                assert_eq!(suggestions.len(), 3);
            }
            other => panic!("{req}: {other:?}"),
        }
    }
    match planner().plan("do the same for /opt", &ctx()) {
        Outcome::NotUnderstood { message, .. } => {
            assert!(message.contains("no earlier request"), "{message}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn conversation_round_trips_through_json() {
    let plan: Plan = plan_with("find .tmp files in ./cache", &ctx());
    let conv = Conversation::after_run(
        &plan,
        vec!["./cache/a.tmp".into()],
        Some("01J2ZK3M4N5P6Q7R8S9T0V1W2X".into()),
    );
    let text = serde_json::to_string(&conv).unwrap();
    let back: Conversation = serde_json::from_str(&text).unwrap();
    assert_eq!(back, conv);
    let s = only_step("delete it", &ctx().with_conversation(back));
    assert_eq!(s.args["path"], "./cache/a.tmp");
    assert_eq!(
        Conversation::after_plan(&plan).last_request.as_deref(),
        Some("find .tmp files in ./cache")
    );
}
