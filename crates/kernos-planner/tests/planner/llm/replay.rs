//! Replays of real answers of a small local model — Qwen2.5-Coder-0.5B-Instruct (Q4_K_M) on
//! llama.cpp's `llama-server`, 2 CPU cores, 4096-token context — recorded byte for byte
//! (`qwen05b.jsonl`: the request, the HTTP status and the body the server sent). They include
//! the failure shapes small models produce: argument names made up when the format lets them
//! (the `{name, value}` pairs of the format before the per-action union), an answer cut off
//! at `max_tokens`, and the server refusing a prompt longer than its context.

use kernos_llm::StructuredMode;
use kernos_planner::Outcome;
use kernos_planner::llm::{LlmFailure, PlanOptions, Source};
use serde_json::Value;

use super::*;
use kernos_llm::testing::{FakeServer, Reply};

const RECORDED: &str = include_str!("qwen05b.jsonl");

/// (request, status, body) of a recorded answer.
fn recorded(name: &str) -> (String, u16, String) {
    for line in RECORDED.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        if v["name"] == name {
            return (
                v["request"].as_str().unwrap().to_owned(),
                u16::try_from(v["status"].as_u64().unwrap()).unwrap(),
                v["body"].as_str().unwrap().to_owned(),
            );
        }
    }
    panic!("no recording {name}");
}

fn forced() -> PlanOptions {
    PlanOptions {
        provider: Some("local".into()),
        no_cache: true,
        ..PlanOptions::default()
    }
}

/// Plans `name`'s request with the server answering every call with the recording.
fn replay(name: &str) -> (kernos_planner::llm::Planned, FakeServer) {
    let (request, status, body) = recorded(name);
    let srv = FakeServer::always(Reply::status_json(status, body)).with_context(4096);
    let c = cascade(config(vec![provider(
        "local",
        &srv.v1(),
        StructuredMode::Auto,
    )]));
    let p = c.plan(&request, &ctx(), &forced());
    (p, srv)
}

#[test]
fn the_small_models_constrained_answers_are_valid_plans() {
    for (name, action, arg, value) in [
        (
            "md5_of_sorted_listing",
            "shell.run",
            "command",
            "ls /etc/apt | sort | md5sum",
        ),
        ("largest_three", "fs.largest", "path", "/var/log"),
        ("count_c_lines", "fs.count", "path", "/usr/src"),
        ("unconstrained_answer", "fs.largest", "path", "/var/log"),
    ] {
        let (p, srv) = replay(name);
        let plan = plan_of(&p.outcome);
        assert!(registry().validate(plan).is_empty(), "{name}");
        assert_eq!(plan.steps[0].name(), action, "{name}");
        assert_eq!(plan.steps[0].args[arg], value, "{name}");
        assert!(matches!(p.source, Source::Model { .. }), "{name}");
        assert_eq!(p.report.as_ref().unwrap().calls, 1, "{name}: first try");
        assert_eq!(srv.count(), 1, "{name}");
        assert_eq!(
            plan.planner.as_deref(),
            Some("llm:local/local-model"),
            "{name}: the plan says who wrote it"
        );
    }
}

#[test]
fn made_up_argument_names_are_caught_and_sent_back() {
    for (name, bad) in [
        ("old_pairs_wrong_names_largest", "log"),
        ("old_pairs_wrong_names_count", "*.c"),
    ] {
        let (p, srv) = replay(name);
        // The same wrong answer twice: one repair, then it stops, and nothing else runs.
        assert!(matches!(p.outcome, Outcome::NotUnderstood { .. }), "{name}");
        let report = p.report.as_ref().unwrap();
        match &report.result {
            Err(LlmFailure::Invalid {
                issues, repeated, ..
            }) => {
                assert!(*repeated, "{name}");
                assert!(
                    issues.iter().any(|i| i.message.contains(bad)),
                    "{name}: {issues:?}"
                );
            }
            other => panic!("{name}: {other:?}"),
        }
        assert_eq!(srv.count(), 2, "{name}");
        let repair = srv.requests()[1].last_user();
        assert!(repair.contains("not a valid plan"), "{repair}");
        assert!(repair.contains(bad), "{repair}");
    }
}

#[test]
fn an_answer_cut_off_at_max_tokens_asks_for_a_shorter_one() {
    let (p, srv) = replay("cut_off_at_max_tokens");
    assert!(matches!(p.outcome, Outcome::NotUnderstood { .. }));
    assert_eq!(srv.count(), 2, "one repair, then the same failure stops it");
    let repair = srv.requests()[1].last_user();
    assert!(repair.contains("cut off"), "{repair}");
}

#[test]
fn the_servers_context_exceeded_error_is_reported_once_not_retried() {
    let (p, srv) = replay("context_exceeded");
    assert_eq!(srv.count(), 1, "a deterministic error is not retried");
    match &p.outcome {
        Outcome::NotUnderstood { message, .. } => {
            assert!(message.contains("context"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    // The planner's prompt fits the small context: the request asked for little.
    let (_, srv) = replay("largest_three");
    let sent = &srv.requests()[0].body;
    assert!(
        sent["max_tokens"].as_u64().unwrap() <= 400,
        "{}",
        sent["max_tokens"]
    );
}
