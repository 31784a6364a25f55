//! llama.cpp's llama-server and Ollama's OpenAI-compatible `/v1`, with their quirks.

use kernos_llm::{LlmError, Mechanism, RouteOpts, StructuredMode};

use crate::fixtures::*;
use crate::*;
use kernos_llm::testing::{FakeServer, Reply};

fn sse(v: &[String]) -> Reply {
    Reply::sse(&v.iter().map(String::as_str).collect::<Vec<_>>())
}

#[test]
fn llama_server_plain_and_json_schema() {
    let s = FakeServer::start(vec![
        Reply::json(llama_text("Hello from llama.cpp")),
        Reply::json(llama_text(PLAN_JSON)),
    ]);
    let r = router(config(vec![local("llama", &s.v1(), "qwen2.5-7b")]));
    let resp = r
        .complete("fast", &text_req(false), &RouteOpts::default())
        .unwrap();
    assert_eq!(resp.text, "Hello from llama.cpp");
    assert_eq!(resp.model, "qwen2.5-7b-instruct-q4_k_m.gguf");
    assert_eq!(
        (resp.usage.input_tokens, resp.usage.output_tokens),
        (30, 12)
    );
    assert_eq!(resp.cost_usd, 0.0, "no price configured: free");
    let resp = r
        .complete("fast", &plan_req(false), &RouteOpts::default())
        .unwrap();
    assert_eq!(resp.json, Some(plan_value()));
    assert_eq!(resp.mechanism_used, Mechanism::JsonSchema);
    let reqs = s.requests();
    assert!(
        reqs[0].header("authorization").is_none(),
        "no key configured, none sent"
    );
    assert_eq!(reqs[1].body["response_format"]["type"], "json_schema");
}

#[test]
fn llama_server_streams_with_and_without_done() {
    for done in [true, false] {
        let s = FakeServer::start(vec![sse(&llama_stream(&["The ", "answer"], done))]);
        let r = router(config(vec![local("llama", &s.v1(), "qwen2.5-7b")]));
        let (resp, seen) = complete_collecting(&r, &text_req(true));
        let resp = resp.unwrap_or_else(|e| panic!("done={done}: {e}"));
        assert_eq!(resp.text, "The answer");
        assert_eq!(seen[1..], ["The ", "answer"]);
        // usage rides on the finish chunk, next to `timings`
        assert_eq!((resp.usage.input_tokens, resp.usage.output_tokens), (41, 9));
        assert_eq!(resp.finish_reason.as_deref(), Some("stop"));
    }
}

#[test]
fn llama_server_without_jinja_rejects_tools_with_its_message() {
    let s = FakeServer::start(vec![Reply::status_json(400, LLAMA_400_TOOLS)]);
    let r = router(config(vec![with_mode(
        local("llama", &s.v1(), "qwen2.5-7b"),
        StructuredMode::Tools,
    )]));
    let e = r
        .complete("fast", &plan_req(false), &RouteOpts::default())
        .unwrap_err();
    assert!(
        e.to_string().contains("tools param requires --jinja flag"),
        "{e}"
    );
}

#[test]
fn ollama_with_a_bare_base_url() {
    let s = FakeServer::start(vec![Reply::json(ollama_text("Hi there"))]);
    // pasted as http://host:11434, without /v1
    let r = router(config(vec![local("ollama", &s.root(), "llama3.2")]));
    let resp = r
        .complete("fast", &text_req(false), &RouteOpts::default())
        .unwrap();
    assert_eq!(resp.text, "Hi there");
    assert_eq!((resp.usage.input_tokens, resp.usage.output_tokens), (26, 8));
    assert_eq!(s.requests()[0].path, "/v1/chat/completions");
}

#[test]
fn ollama_stream_without_usage_is_estimated() {
    let s = FakeServer::start(vec![sse(&ollama_stream(&["Why ", "is the sky ", "blue?"]))]);
    let r = router(config(vec![local("ollama", &s.v1(), "llama3.2")]));
    let (resp, _) = complete_collecting(&r, &text_req(true));
    let resp = resp.unwrap();
    assert_eq!(resp.text, "Why is the sky blue?");
    assert!(resp.usage.estimated);
    assert_eq!(resp.usage.output_tokens, 5, "20 characters ≈ 5 tokens");
    assert!(resp.usage.input_tokens > 0);
}

#[test]
fn ollama_streamed_tool_call_without_index() {
    let s = FakeServer::start(vec![sse(&ollama_stream_tool(PLAN_JSON))]);
    let r = router(config(vec![with_mode(
        local("ollama", &s.v1(), "qwen2.5"),
        StructuredMode::Tools,
    )]));
    let (resp, _) = complete_collecting(&r, &plan_req(true));
    let resp = resp.unwrap();
    assert_eq!(resp.json, Some(plan_value()));
    assert_eq!(resp.finish_reason.as_deref(), Some("tool_calls"));
}

#[test]
fn ollama_model_without_tools_downgrades_to_text_in_auto_mode() {
    let answer = format!("Here is the plan:\n```json\n{PLAN_JSON}\n```");
    let s = FakeServer::start(vec![
        Reply::status_json(400, OPENAI_400_RESPONSE_FORMAT),
        Reply::status_json(400, OLLAMA_400_NO_TOOLS),
        Reply::json(ollama_text(&answer)),
    ]);
    let r = router(config(vec![local("ollama", &s.v1(), "gemma2:2b")]));
    let resp = r
        .complete("fast", &plan_req(false), &RouteOpts::default())
        .unwrap();
    assert_eq!(resp.json, Some(plan_value()));
    assert_eq!(resp.mechanism_used, Mechanism::Text);
    let reqs = s.requests();
    assert_eq!(reqs.len(), 3);
    let last = &reqs[2].body;
    assert!(last.get("tools").is_none() && last.get("response_format").is_none());
    let system = last["messages"][0]["content"].as_str().unwrap();
    assert!(
        system.starts_with("You turn requests into plans.")
            && system.contains("\"required\":[\"steps\"]"),
        "text mode puts the schema in the prompt: {system}"
    );
}

#[test]
fn ollama_unknown_model_is_rejected_with_a_hint() {
    let s = FakeServer::always(Reply::status_json(404, OLLAMA_404));
    let r = router(config(vec![local("ollama", &s.v1(), "llama9")]));
    let e = r
        .complete("fast", &text_req(false), &RouteOpts::default())
        .unwrap_err();
    let LlmError::AllFailed { failures, .. } = &e else {
        panic!("{e}")
    };
    assert!(matches!(
        failures[0].error,
        LlmError::Rejected { status: 404, .. }
    ));
    let msg = e.to_string();
    assert!(
        msg.contains("try pulling it first") && msg.contains("check base_url and the model name"),
        "{msg}"
    );
}
