//! Opt-in live call against a real server:
//!
//! ```sh
//! KERNOS_LIVE_LLM=1 KERNOS_LIVE_LLM_BASE_URL=http://127.0.0.1:11434/v1 \
//!   KERNOS_LIVE_LLM_MODEL=llama3.2 cargo test -p kernos-llm --test llm live -- --nocapture
//! ```
//!
//! Optional: `KERNOS_LIVE_LLM_KIND=anthropic`, `KERNOS_LIVE_LLM_KEY_ENV=OPENAI_API_KEY` (the
//! name of the variable holding the key). Without `KERNOS_LIVE_LLM=1` the test prints why it
//! is skipped and passes.

use kernos_llm::{
    BlockingRouter, ChatRequest, LlmConfig, Message, OutputSchema, ProviderConfig, ProviderKind,
    RouteOpts,
};
use serde_json::json;

#[test]
fn live_tiny_call() {
    if std::env::var("KERNOS_LIVE_LLM").as_deref() != Ok("1") {
        eprintln!(
            "live_tiny_call skipped: set KERNOS_LIVE_LLM=1, KERNOS_LIVE_LLM_BASE_URL and \
             KERNOS_LIVE_LLM_MODEL to call a real server"
        );
        return;
    }
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let (Some(base), Some(model)) = (
        var("KERNOS_LIVE_LLM_BASE_URL"),
        var("KERNOS_LIVE_LLM_MODEL"),
    ) else {
        panic!("KERNOS_LIVE_LLM=1 needs KERNOS_LIVE_LLM_BASE_URL and KERNOS_LIVE_LLM_MODEL");
    };
    let kind = match var("KERNOS_LIVE_LLM_KIND").as_deref() {
        Some("anthropic") => ProviderKind::Anthropic,
        _ => ProviderKind::OpenAi,
    };
    let cfg = LlmConfig {
        providers: vec![ProviderConfig {
            name: "live".into(),
            kind,
            base_url: Some(base),
            api_key_env: var("KERNOS_LIVE_LLM_KEY_ENV"),
            model: Some(model),
            timeout_ms: 120_000,
            ..ProviderConfig::default()
        }],
        ..LlmConfig::default()
    };
    let r = BlockingRouter::new(cfg).unwrap();

    let probe = r.probe("live", None).unwrap();
    eprintln!(
        "probe: {} ms, model {:?}, usage {:?}, answer {:?}",
        probe.latency_ms, probe.model_echo, probe.usage, probe.text
    );
    assert!(probe.latency_ms > 0);

    let req = ChatRequest {
        system: "You extract data.".into(),
        messages: vec![Message::user(
            "The file notes.txt is 120 bytes. Give its name and size.",
        )],
        schema: Some(OutputSchema::new(
            "file",
            json!({
                "type": "object",
                "properties": {"name": {"type": "string"}, "bytes": {"type": "integer"}},
                "required": ["name", "bytes"],
                "additionalProperties": false
            }),
        )),
        max_tokens: Some(200),
        stream: true,
        ..ChatRequest::default()
    };
    let resp = r.complete("", &req, &RouteOpts::default()).unwrap();
    eprintln!(
        "structured: {:?} via {:?} in {} ms (first token {:?} ms), usage {:?}",
        resp.json, resp.mechanism_used, resp.latency_ms, resp.first_token_ms, resp.usage
    );
    let v = resp.json.unwrap();
    assert!(v.get("name").is_some() && v.get("bytes").is_some(), "{v}");
}
