//! Honest routing and a prompt that holds only what the request needs: `--provider`/`--model`
//! never run an offline plan in the model's place, the previous request reaches the prompt
//! only when the new one refers to it, and the actions offered are the request's.

use kernos_llm::StructuredMode;
use kernos_planner::llm::{PlanOptions, Source};
use kernos_planner::{Conversation, Outcome};
use serde_json::json;

use super::fixtures::*;
use super::*;
use kernos_llm::testing::{FakeServer, Reply};

fn forced() -> PlanOptions {
    PlanOptions {
        provider: Some("local".into()),
        no_cache: true,
        ..PlanOptions::default()
    }
}

#[test]
fn asking_for_a_model_never_runs_the_offline_plan_instead() {
    // The offline planner is sure of this one; the model is down.
    let request = "show the 5 largest files in /var/log";
    let srv = FakeServer::always(Reply::status_json(503, OPENAI_500));
    let c = cascade(config(vec![provider(
        "local",
        &srv.v1(),
        StructuredMode::Auto,
    )]));
    let p = c.plan(request, &ctx(), &forced());
    match &p.outcome {
        Outcome::NotUnderstood { message, .. } => {
            assert!(message.contains("did not plan this"), "{message}");
            assert!(message.contains("Nothing was run"), "{message}");
        }
        other => panic!("the offline plan was used: {other:?}"),
    }
    assert!(p.notice.as_deref().unwrap().contains("not falling back"));
    assert!(srv.count() >= 1);
    // Without the flag the same failure falls back, and says so.
    let p = c.plan(
        "make the logs folder smaller",
        &ctx(),
        &PlanOptions {
            no_cache: true,
            ..PlanOptions::default()
        },
    );
    assert_eq!(p.source, Source::Offline);
    assert!(
        p.notice
            .as_deref()
            .unwrap()
            .contains("offline planner answered")
    );
}

#[test]
fn an_invalid_answer_with_a_forced_model_is_an_error_not_an_offline_plan() {
    let bad = json!({"steps": [{"action": "fs.largest", "args": {"pth": "/var/log"}}]});
    let srv = FakeServer::always(Reply::json(llama(&bad.to_string())));
    let c = cascade(config(vec![provider(
        "local",
        &srv.v1(),
        StructuredMode::Auto,
    )]));
    let p = c.plan("show the 5 largest files in /var/log", &ctx(), &forced());
    assert!(
        matches!(p.outcome, Outcome::NotUnderstood { .. }),
        "{:?}",
        p.outcome
    );
    assert!(p.report.is_some());
}

#[test]
fn the_previous_request_is_in_the_prompt_only_for_a_follow_up() {
    let srv = FakeServer::always(Reply::json(llama(
        &json!({"steps": [{"action": "fs.read", "args": {"path": "/tmp/d/README.md"}}]})
            .to_string(),
    )));
    let c = cascade(config(vec![provider(
        "local",
        &srv.v1(),
        StructuredMode::Auto,
    )]));
    let before = Conversation {
        last_request: Some("list files in /tmp/d".into()),
        last_plan: Some(kernos_core::Plan::new(vec![
            kernos_core::Step::new("fs", "list").arg("path", "/tmp/d"),
        ])),
        paths: vec!["/tmp/d/README.md".into()],
        last_tx: None,
    };
    let with = ctx().with_conversation(before);
    // Unrelated: the reproduction, where a small model copied the old plan.
    c.plan(
        "Print the contents of \"/tmp/d/README.md\" in reverse order",
        &with,
        &forced(),
    );
    let user = srv.requests()[0].last_user();
    assert!(!user.contains("Previous request"), "{user}");
    assert!(!user.contains("list files in /tmp/d"), "{user}");
    // A follow-up: the pronoun refers to the earlier result.
    c.plan("show them", &with, &forced());
    let user = srv.requests()[1].last_user();
    assert!(
        user.contains("Previous request: list files in /tmp/d (planned as fs.list)"),
        "{user}"
    );
    // "them" of the request's own first clause is not a follow-up.
    c.plan("find big logs in /var/log and show them", &with, &forced());
    let user = srv.requests()[2].last_user();
    assert!(!user.contains("Previous request"), "{user}");
}

#[test]
fn the_prompt_offers_the_requests_actions_and_similar_examples() {
    let srv = FakeServer::always(Reply::json(llama(
        &json!({"steps": [{"action": "shell.run", "args": {"command": "sort a.txt | uniq | wc -l"}}]}).to_string(),
    )));
    let c = cascade(config(vec![provider(
        "local",
        &srv.v1(),
        StructuredMode::Auto,
    )]));
    let p = c.plan("count the distinct lines in a.txt", &ctx(), &forced());
    let plan = plan_of(&p.outcome);
    assert_eq!(plan.steps[0].name(), "shell.run");
    let sent = &srv.requests()[0];
    let user = sent.last_user();
    assert!(user.contains("fs.count("), "{user}");
    assert!(user.contains("shell.run("), "{user}");
    assert!(!user.contains("pkg.install("), "{user}");
    assert!(user.contains("Examples:\nRequest: "), "{user}");
    // About the size the issue asks for: a few hundred tokens beyond the fixed prefix.
    assert!(user.len() / 4 < 800, "{} chars", user.len());
    let system = &sent.texts()[0].1;
    assert!(system.len() / 4 < 800, "{} chars", system.len());
}
