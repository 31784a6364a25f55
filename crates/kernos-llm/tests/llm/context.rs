//! The model's context window: what llama.cpp's server reports (`GET /props`), the answer
//! room computed from it, and the "context exceeded" errors that must never be retried (the
//! same prompt fails the same way every time; retrying it spent the whole budget before).

use kernos_llm::testing::{FakeServer, Reply};
use kernos_llm::{ChatRequest, LlmError, Message, RouteOpts};

use crate::fixtures::*;
use crate::*;

/// llama-server's answers when prompt plus answer outgrow `-c` (older builds: 500 with the
/// first message; current ones: the typed error).
const LLAMA_CTX_500: &str =
    r#"{"error":{"code":500,"message":"Context size has been exceeded.","type":"server_error"}}"#;
const LLAMA_CTX_400: &str = r#"{"error":{"code":400,"message":"the request exceeds the available context size, try increasing it","type":"exceed_context_size_error","n_prompt_tokens":4150,"n_ctx":4096}}"#;
/// OpenAI's and vLLM's wording.
const OPENAI_CTX_400: &str = r#"{"error":{"message":"This model's maximum context length is 8192 tokens. However, you requested 9000 tokens (1000 in the messages, 8000 in the completion). Please reduce the length of the messages or completion.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}"#;

fn context_error(e: &LlmError) -> bool {
    match e {
        LlmError::ContextExceeded { .. } => true,
        LlmError::AllFailed { failures, .. } => failures
            .iter()
            .all(|f| matches!(f.error, LlmError::ContextExceeded { .. })),
        _ => false,
    }
}

#[test]
fn a_context_exceeded_error_is_never_retried() {
    for (status, body) in [
        (500, LLAMA_CTX_500),
        (400, LLAMA_CTX_400),
        (400, OPENAI_CTX_400),
    ] {
        let s = FakeServer::always(Reply::status_json(status, body));
        let r = router(config(vec![local("llama", &s.v1(), "qwen")]));
        let e = r
            .complete("fast", &text_req(false), &RouteOpts::default())
            .unwrap_err();
        assert!(context_error(&e), "{e}");
        assert!(e.to_string().contains("context window"), "{e}");
        assert_eq!(
            s.count(),
            1,
            "{body}: tried once, not until the budget ran out"
        );
    }
}

#[test]
fn the_answer_gets_what_the_servers_context_leaves() {
    let s = FakeServer::always(Reply::json(llama_text("hello"))).with_context(1024);
    let mut p = local("llama", &s.v1(), "qwen");
    p.max_tokens = 2048;
    let r = router(config(vec![p]));
    // ~300 tokens of prompt: the answer may use the rest, less a margin.
    let req = ChatRequest {
        system: "x".repeat(900),
        messages: vec![Message::user("say hello")],
        ..ChatRequest::default()
    };
    r.complete("fast", &req, &RouteOpts::default()).unwrap();
    let sent = s.requests()[0].body["max_tokens"].as_u64().unwrap();
    assert!((500..1024 - 300).contains(&sent), "max_tokens {sent}");
    // A smaller request keeps its own limit.
    let small = ChatRequest {
        max_tokens: Some(200),
        ..req.clone()
    };
    r.complete("fast", &small, &RouteOpts::default()).unwrap();
    assert_eq!(s.requests()[1].body["max_tokens"], 200);
    // A prompt that alone fills the context is not sent at all.
    let huge = ChatRequest {
        system: "x".repeat(4000),
        ..req
    };
    let e = r
        .complete("fast", &huge, &RouteOpts::default())
        .unwrap_err();
    assert!(context_error(&e), "{e}");
    assert!(e.to_string().contains("not sent"), "{e}");
    assert_eq!(s.count(), 2);
}

#[test]
fn without_props_the_limit_is_max_tokens() {
    let s = FakeServer::always(Reply::json(llama_text("hello")));
    let mut p = local("llama", &s.v1(), "qwen");
    p.max_tokens = 777;
    let r = router(config(vec![p]));
    r.complete("fast", &text_req(false), &RouteOpts::default())
        .unwrap();
    assert_eq!(s.requests()[0].body["max_tokens"], 777);
}

#[test]
fn a_server_wanting_every_property_required_gets_the_strict_form() {
    let s = FakeServer::start(vec![
        Reply::status_json(
            400,
            r#"{"error":{"message":"Invalid schema for response_format 'plan': In context=(), 'required' is required to be supplied and to be an array including every key in properties. Missing 'note'.","type":"invalid_request_error","param":"response_format","code":null}}"#,
        ),
        Reply::json(openai_text(r#"{"steps": [], "note": null}"#)),
    ]);
    let mut req = plan_req(false);
    if let Some(sc) = &mut req.schema {
        sc.schema["properties"]["note"] = serde_json::json!({"type": "string"});
    }
    let r = router(config(vec![openai("oai", &s.v1())]));
    r.complete("fast", &req, &RouteOpts::default()).unwrap();
    let sent = s.requests();
    assert_eq!(sent.len(), 2);
    let first = &sent[0].body["response_format"]["json_schema"]["schema"];
    let second = &sent[1].body["response_format"]["json_schema"]["schema"];
    assert!(
        !first["required"]
            .as_array()
            .unwrap()
            .contains(&"note".into())
    );
    assert!(
        second["required"]
            .as_array()
            .unwrap()
            .contains(&"note".into())
    );
    assert_eq!(
        second["properties"]["note"],
        serde_json::json!({"anyOf": [{"type": "string"}, {"type": "null"}]})
    );
    assert_eq!(
        sent[1].body["response_format"]["type"], "json_schema",
        "not downgraded"
    );
}
