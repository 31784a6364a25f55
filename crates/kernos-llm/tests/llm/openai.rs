//! OpenAI chat completions: plain, json_schema, tool calls, refusals, downgrades, streaming.

use kernos_llm::{LlmError, Mechanism, RouteOpts, StructuredMode};
use serde_json::json;

use crate::fixtures::*;
use crate::*;
use kernos_llm::testing::{FakeServer, Reply};

#[test]
fn plain_text_request_and_response() {
    let s = FakeServer::start(vec![Reply::json(openai_text("Hello! How can I help?"))]);
    let r = router(config(vec![openai("oai", &s.v1())]));
    let resp = r
        .complete("fast", &text_req(false), &RouteOpts::default())
        .unwrap();
    assert_eq!(resp.text, "Hello! How can I help?");
    assert_eq!(resp.json, None);
    assert_eq!(resp.mechanism_used, Mechanism::None);
    assert_eq!(resp.provider, "oai");
    assert_eq!(resp.model, "gpt-4.1-mini-2025-04-14", "the server's echo");
    assert_eq!(resp.finish_reason.as_deref(), Some("stop"));
    assert_eq!(
        (resp.usage.input_tokens, resp.usage.output_tokens),
        (1200, 300)
    );
    assert!(!resp.usage.estimated);
    // 1200 × $0.40/M + 300 × $1.60/M
    assert!((resp.cost_usd - 0.00096).abs() < 1e-12, "{}", resp.cost_usd);
    assert_eq!(resp.first_token_ms, None);
    assert_eq!(resp.attempts.len(), 1);
    assert!(resp.attempts[0].error.is_none());

    let req = &s.requests()[0];
    assert_eq!(req.path, "/v1/chat/completions");
    assert_eq!(
        req.header("authorization"),
        Some(format!("Bearer {OPENAI_KEY}").as_str())
    );
    assert_eq!(req.header("content-type"), Some("application/json"));
    let b = &req.body;
    assert_eq!(b["model"], "gpt-4.1-mini");
    assert_eq!(
        b["messages"],
        json!([
            {"role": "system", "content": "You are Kernos."},
            {"role": "user", "content": "say hello"}
        ])
    );
    assert_eq!(b["max_tokens"], 2048);
    assert_eq!(b["stream"], false);
    assert!(b.get("response_format").is_none() && b.get("tools").is_none());
    assert!(b.get("stream_options").is_none());
}

#[test]
fn json_schema_is_sent_strict_and_the_result_parsed() {
    let s = FakeServer::start(vec![Reply::json(openai_text(PLAN_JSON))]);
    let r = router(config(vec![openai("oai", &s.v1())]));
    let resp = r
        .complete("fast", &plan_req(false), &RouteOpts::default())
        .unwrap();
    assert_eq!(resp.json, Some(plan_value()));
    assert_eq!(resp.mechanism_used, Mechanism::JsonSchema);
    let rf = &s.requests()[0].body["response_format"];
    assert_eq!(rf["type"], "json_schema");
    assert_eq!(rf["json_schema"]["name"], "plan");
    assert_eq!(rf["json_schema"]["strict"], true);
    assert_eq!(rf["json_schema"]["schema"], plan_schema());
    // the caller's system prompt is not rewritten when the API carries the schema
    assert_eq!(
        s.requests()[0].body["messages"][0]["content"],
        "You turn requests into plans."
    );
}

#[test]
fn tool_calls_when_configured() {
    let s = FakeServer::start(vec![Reply::json(openai_tool_call(PLAN_JSON))]);
    let r = router(config(vec![with_mode(
        openai("oai", &s.v1()),
        StructuredMode::Tools,
    )]));
    let resp = r
        .complete("fast", &plan_req(false), &RouteOpts::default())
        .unwrap();
    assert_eq!(resp.json, Some(plan_value()));
    assert_eq!(resp.mechanism_used, Mechanism::Tools);
    assert_eq!(resp.text, PLAN_JSON, "text carries the arguments");
    let b = &s.requests()[0].body;
    assert_eq!(b["tools"][0]["type"], "function");
    assert_eq!(b["tools"][0]["function"]["name"], "plan");
    assert_eq!(b["tools"][0]["function"]["parameters"], plan_schema());
    assert_eq!(
        b["tool_choice"],
        json!({"type": "function", "function": {"name": "plan"}})
    );
    assert!(b.get("response_format").is_none());
}

#[test]
fn refusal_is_its_own_error_and_ends_the_cascade() {
    let first = FakeServer::start(vec![Reply::json(OPENAI_REFUSAL)]);
    let second = FakeServer::always(Reply::json(openai_text(PLAN_JSON)));
    let r = router(config(vec![
        openai("first", &first.v1()),
        openai("second", &second.v1()),
    ]));
    let e = r
        .complete("fast", &plan_req(false), &RouteOpts::default())
        .unwrap_err();
    match &e {
        LlmError::Refused {
            provider, message, ..
        } => {
            assert_eq!(provider, "first");
            assert_eq!(message, "I'm sorry, I cannot assist with that request.");
        }
        other => panic!("expected a refusal, got {other}"),
    }
    assert!(e.to_string().contains("refused the request"));
    assert_eq!(second.count(), 0, "a refusal is not routed around");
    assert_eq!(first.count(), 1, "nor retried");
}

#[test]
fn rejected_response_format_downgrades_to_tools_and_is_remembered() {
    let s = FakeServer::start(vec![
        Reply::status_json(400, OPENAI_400_RESPONSE_FORMAT),
        Reply::json(openai_tool_call(PLAN_JSON)),
        Reply::json(openai_tool_call(PLAN_JSON)),
    ]);
    let r = router(config(vec![openai("oai", &s.v1())]));
    let resp = r
        .complete("fast", &plan_req(false), &RouteOpts::default())
        .unwrap();
    assert_eq!(resp.mechanism_used, Mechanism::Tools);
    assert_eq!(resp.json, Some(plan_value()));
    assert_eq!(resp.attempts.len(), 2);
    assert_eq!(resp.attempts[0].mechanism, Mechanism::JsonSchema);
    let why = resp.attempts[0].error.as_deref().unwrap();
    assert!(why.contains("switching to tools"), "{why}");
    // Later calls go straight to tools.
    let again = r
        .complete("fast", &plan_req(false), &RouteOpts::default())
        .unwrap();
    assert_eq!(again.attempts.len(), 1);
    let reqs = s.requests();
    assert!(reqs[0].body.get("response_format").is_some());
    assert!(reqs[1].body.get("response_format").is_none() && reqs[1].body.get("tools").is_some());
    assert!(reqs[2].body.get("response_format").is_none() && reqs[2].body.get("tools").is_some());
    assert_eq!(r.router().health()[0].structured, Mechanism::Tools);
}

#[test]
fn explicit_json_schema_mode_does_not_downgrade() {
    let s = FakeServer::start(vec![Reply::status_json(400, OPENAI_400_RESPONSE_FORMAT)]);
    let r = router(config(vec![with_mode(
        openai("oai", &s.v1()),
        StructuredMode::JsonSchema,
    )]));
    let e = r
        .complete("fast", &plan_req(false), &RouteOpts::default())
        .unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("request rejected (HTTP 400)") && msg.contains("'response_format'"),
        "{msg}"
    );
    assert_eq!(s.count(), 1, "a 400 is not retried");
}

#[test]
fn a_model_that_ignores_the_schema_gets_its_json_extracted() {
    let prose = format!(
        "Sure! Here's the plan you asked for:\n\n```json\n{PLAN_JSON}\n```\n\nLet me know if you need anything else."
    );
    let s = FakeServer::start(vec![Reply::json(openai_text(&prose))]);
    let r = router(config(vec![openai("oai", &s.v1())]));
    let resp = r
        .complete("fast", &plan_req(false), &RouteOpts::default())
        .unwrap();
    assert_eq!(resp.json, Some(plan_value()));
    assert_eq!(
        resp.mechanism_used,
        Mechanism::Text,
        "reported as text: the server did not enforce the schema"
    );
}

#[test]
fn an_answer_without_usable_json_is_a_clear_error_that_still_costs() {
    let s = FakeServer::start(vec![
        Reply::json(openai_text(
            "I would list the largest files in the current directory for you.",
        )),
        Reply::json(openai_text(r#"{"answer": "use du -sh *"}"#)),
    ]);
    let r = router(config(vec![openai("oai", &s.v1())]));
    for expected in ["no JSON object found", "missing required field \"steps\""] {
        let e = r
            .complete("fast", &plan_req(false), &RouteOpts::default())
            .unwrap_err();
        let LlmError::AllFailed {
            failures, attempts, ..
        } = &e
        else {
            panic!("{e}")
        };
        match &failures[0].error {
            LlmError::InvalidJson {
                detail,
                text,
                schema,
                ..
            } => {
                assert!(detail.contains(expected), "{detail}");
                assert_eq!(schema, "plan");
                assert!(!text.is_empty(), "raw answer kept for a repair prompt");
            }
            other => panic!("{other}"),
        }
        assert!(e.to_string().contains("not valid JSON for schema \"plan\""));
        assert!(
            attempts[0].cost_usd > 0.0,
            "the bad answer's tokens are metered"
        );
    }
    assert_eq!(
        s.count(),
        2,
        "bad answers are not retried at the same model"
    );
}

#[test]
fn max_completion_tokens_quirk_is_learned() {
    let s = FakeServer::start(vec![
        Reply::status_json(400, OPENAI_400_MAX_TOKENS),
        Reply::json(openai_text("hi")),
        Reply::json(openai_text("hi")),
    ]);
    let r = router(config(vec![openai("oai", &s.v1())]));
    r.complete("fast", &text_req(false), &RouteOpts::default())
        .unwrap();
    r.complete("fast", &text_req(false), &RouteOpts::default())
        .unwrap();
    let reqs = s.requests();
    assert_eq!(reqs[0].body["max_tokens"], 2048);
    for later in &reqs[1..] {
        assert!(later.body.get("max_tokens").is_none());
        assert_eq!(later.body["max_completion_tokens"], 2048);
    }
}

#[test]
fn streaming_text_usage_and_first_token() {
    let s = FakeServer::start(vec![Reply::sse(
        &openai_stream(&["Hel", "lo", " world"])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    )]);
    let r = router(config(vec![openai("oai", &s.v1())]));
    let (resp, seen) = complete_collecting(&r, &text_req(true));
    let resp = resp.unwrap();
    assert_eq!(resp.text, "Hello world");
    assert_eq!(seen, ["started:oai/gpt-4.1-mini", "Hel", "lo", " world"]);
    assert_eq!((resp.usage.input_tokens, resp.usage.output_tokens), (17, 6));
    assert!(!resp.usage.estimated);
    assert_eq!(resp.finish_reason.as_deref(), Some("stop"));
    assert!(resp.first_token_ms.is_some());
    let req = &s.requests()[0];
    assert_eq!(req.body["stream"], true);
    assert_eq!(req.body["stream_options"], json!({"include_usage": true}));
    assert_eq!(req.header("accept"), Some("text/event-stream"));
}

#[test]
fn streaming_tool_call_fragments_assemble() {
    let (a, rest) = PLAN_JSON.split_at(7);
    let (b, c) = rest.split_at(15);
    let s = FakeServer::start(vec![Reply::sse(
        &openai_stream_tool(&[a, b, c])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    )]);
    let r = router(config(vec![with_mode(
        openai("oai", &s.v1()),
        StructuredMode::Tools,
    )]));
    let (resp, seen) = complete_collecting(&r, &plan_req(true));
    let resp = resp.unwrap();
    assert_eq!(resp.json, Some(plan_value()));
    assert_eq!(resp.mechanism_used, Mechanism::Tools);
    assert_eq!(seen[1..].concat(), PLAN_JSON);
    assert_eq!(resp.usage.input_tokens, 90);
}

#[test]
fn a_wrong_key_is_rejected_with_a_hint_and_not_retried() {
    let s = FakeServer::always(Reply::status_json(401, OPENAI_401));
    let r = router(config(vec![openai("oai", &s.v1())]));
    let e = r
        .complete("fast", &text_req(false), &RouteOpts::default())
        .unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("HTTP 401") && msg.contains("check the API key"),
        "{msg}"
    );
    assert_eq!(s.count(), 1);
}
