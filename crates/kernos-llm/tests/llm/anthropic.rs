//! Anthropic Messages: text, output_config, tool_use, refusal, max_tokens, streaming, errors.

use kernos_llm::{LlmError, Mechanism, RouteOpts, StructuredMode};
use serde_json::json;

use crate::fixtures::*;
use crate::*;
use kernos_llm::testing::{FakeServer, Reply};

fn sse(v: &[String]) -> Reply {
    Reply::sse(&v.iter().map(String::as_str).collect::<Vec<_>>())
}

#[test]
fn text_request_headers_and_usage() {
    let s = FakeServer::start(vec![Reply::json(anthropic_text(
        "Hi! My name is Claude.",
        "end_turn",
    ))]);
    let r = router(config(vec![anthropic("claude", &s.root())]));
    let resp = r
        .complete("fast", &text_req(false), &RouteOpts::default())
        .unwrap();
    assert_eq!(resp.text, "Hi! My name is Claude.");
    assert_eq!(resp.model, "claude-haiku-4-5-20251001");
    assert_eq!(resp.finish_reason.as_deref(), Some("end_turn"));
    assert_eq!(
        (resp.usage.input_tokens, resp.usage.output_tokens),
        (2095, 503)
    );
    // 2095 × $1/M + 503 × $5/M
    assert!((resp.cost_usd - 0.00461).abs() < 1e-12, "{}", resp.cost_usd);
    let req = &s.requests()[0];
    assert_eq!(req.path, "/v1/messages");
    assert_eq!(req.header("x-api-key"), Some(ANTHROPIC_KEY));
    assert_eq!(req.header("anthropic-version"), Some("2023-06-01"));
    assert!(req.header("authorization").is_none());
    assert_eq!(req.body["system"], "You are Kernos.");
    assert_eq!(
        req.body["messages"],
        json!([{"role": "user", "content": "say hello"}])
    );
    assert_eq!(req.body["max_tokens"], 2048);
}

#[test]
fn json_schema_through_output_config() {
    let s = FakeServer::start(vec![Reply::json(anthropic_text(PLAN_JSON, "end_turn"))]);
    let r = router(config(vec![anthropic(
        "claude",
        &format!("{}/v1", s.root()),
    )]));
    let resp = r
        .complete("fast", &plan_req(false), &RouteOpts::default())
        .unwrap();
    assert_eq!(resp.json, Some(plan_value()));
    assert_eq!(resp.mechanism_used, Mechanism::JsonSchema);
    let req = &s.requests()[0];
    assert_eq!(
        req.path, "/v1/messages",
        "a base ending in /v1 is not doubled"
    );
    assert_eq!(
        req.body["output_config"],
        json!({"format": {"type": "json_schema", "schema": plan_schema()}})
    );
}

#[test]
fn rejected_output_config_falls_back_to_forced_tool_use() {
    let s = FakeServer::start(vec![
        Reply::status_json(400, ANTHROPIC_400_OUTPUT_CONFIG),
        Reply::json(anthropic_tool_use(PLAN_JSON)),
    ]);
    let r = router(config(vec![anthropic("claude", &s.root())]));
    let resp = r
        .complete("fast", &plan_req(false), &RouteOpts::default())
        .unwrap();
    assert_eq!(resp.json, Some(plan_value()));
    assert_eq!(resp.mechanism_used, Mechanism::Tools);
    assert_eq!(resp.finish_reason.as_deref(), Some("tool_use"));
    let b = &s.requests()[1].body;
    assert!(b.get("output_config").is_none());
    assert_eq!(b["tool_choice"], json!({"type": "tool", "name": "plan"}));
    assert_eq!(b["tools"][0]["input_schema"], plan_schema());
    assert_eq!(b["tools"][0]["description"], "A Kernos plan");
}

#[test]
fn refusal_stop_reason() {
    let s = FakeServer::start(vec![Reply::json(anthropic_text(
        "I can't help with deleting other users' files.",
        "refusal",
    ))]);
    let r = router(config(vec![anthropic("claude", &s.root())]));
    let e = r
        .complete("fast", &plan_req(false), &RouteOpts::default())
        .unwrap_err();
    assert!(
        matches!(&e, LlmError::Refused { message, .. } if message.contains("can't help")),
        "{e}"
    );
}

#[test]
fn max_tokens_before_the_json_closed() {
    let s = FakeServer::start(vec![Reply::json(anthropic_text(
        r#"{"steps": [{"tool": "fs", "act"#,
        "max_tokens",
    ))]);
    let r = router(config(vec![with_mode(
        anthropic("claude", &s.root()),
        StructuredMode::Text,
    )]));
    let mut req = plan_req(false);
    req.max_tokens = Some(12);
    let e = r.complete("fast", &req, &RouteOpts::default()).unwrap_err();
    let LlmError::AllFailed { failures, .. } = &e else {
        panic!("{e}")
    };
    assert!(matches!(
        failures[0].error,
        LlmError::OutputTruncated { max_tokens: 12, .. }
    ));
    assert!(e.to_string().contains("raise max_tokens"));
    assert_eq!(s.requests()[0].body["max_tokens"], 12);
}

#[test]
fn streamed_text_with_ping_and_usage() {
    let s = FakeServer::start(vec![sse(&anthropic_stream(&[
        "Hello",
        "!",
        " How can I help?",
    ]))]);
    let r = router(config(vec![anthropic("claude", &s.root())]));
    let (resp, seen) = complete_collecting(&r, &text_req(true));
    let resp = resp.unwrap();
    assert_eq!(resp.text, "Hello! How can I help?");
    assert_eq!(
        seen,
        [
            "started:claude/claude-haiku-4-5",
            "Hello",
            "!",
            " How can I help?"
        ]
    );
    assert_eq!(
        (resp.usage.input_tokens, resp.usage.output_tokens),
        (25, 15)
    );
    assert_eq!(resp.finish_reason.as_deref(), Some("end_turn"));
    assert!(resp.first_token_ms.is_some());
    assert_eq!(s.requests()[0].body["stream"], true);
}

#[test]
fn streamed_tool_use_input_json_delta() {
    let s = FakeServer::start(vec![sse(&anthropic_stream_tool(&[
        "",
        "{\"steps\": [{\"tool\"",
        ": \"fs\", \"action\": \"largest\"}]}",
    ]))]);
    let r = router(config(vec![with_mode(
        anthropic("claude", &s.root()),
        StructuredMode::Tools,
    )]));
    let (resp, _) = complete_collecting(&r, &plan_req(true));
    let resp = resp.unwrap();
    assert_eq!(resp.json, Some(plan_value()));
    assert_eq!(resp.mechanism_used, Mechanism::Tools);
    assert_eq!(
        (resp.usage.input_tokens, resp.usage.output_tokens),
        (472, 89)
    );
}

#[test]
fn overloaded_error_event_mid_stream_is_retried() {
    let mut broken = anthropic_stream(&["Hel"]);
    broken.truncate(4); // message_start, block start, ping, one delta
    broken.push(
        "event: error\ndata: {\"type\": \"error\", \"error\": {\"type\": \"overloaded_error\", \"message\": \"Overloaded\"}}\n\n"
            .to_owned(),
    );
    let s = FakeServer::start(vec![sse(&broken), sse(&anthropic_stream(&["Hello"]))]);
    let r = router(config(vec![anthropic("claude", &s.root())]));
    let (resp, seen) = complete_collecting(&r, &text_req(true));
    let resp = resp.unwrap();
    assert_eq!(resp.text, "Hello");
    assert_eq!(resp.attempts.len(), 2);
    let first = resp.attempts[0].error.as_deref().unwrap();
    assert!(
        first.contains("server error (HTTP 529)") && first.contains("Overloaded"),
        "{first}"
    );
    // the consumer is told to discard the partial text of the failed try
    assert_eq!(
        seen,
        [
            "started:claude/claude-haiku-4-5",
            "Hel",
            "started:claude/claude-haiku-4-5",
            "Hello"
        ]
    );
}

#[test]
fn http_529_and_429_are_retried() {
    let s = FakeServer::start(vec![
        Reply::status_json(529, ANTHROPIC_529),
        Reply::status_json(429, ANTHROPIC_429).with_header("retry-after", "0"),
        Reply::json(anthropic_text("ok", "end_turn")),
    ]);
    let r = router(config(vec![anthropic("claude", &s.root())]));
    let resp = r
        .complete("fast", &text_req(false), &RouteOpts::default())
        .unwrap();
    assert_eq!(resp.text, "ok");
    let errs: Vec<&str> = resp
        .attempts
        .iter()
        .filter_map(|a| a.error.as_deref())
        .collect();
    assert_eq!(errs.len(), 2);
    assert!(errs[0].contains("HTTP 529") && errs[0].contains("Overloaded"));
    assert!(
        errs[1].contains("rate limited (HTTP 429, retry after 0 s)"),
        "{}",
        errs[1]
    );
}
