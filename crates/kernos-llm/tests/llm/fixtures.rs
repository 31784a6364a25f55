//! Response shapes replayed by the fake server. Each follows the documented wire format of its
//! API (field names, nesting, which fields are null or absent, event order); ids, timestamps
//! and texts are made up.

use serde_json::{Value, json};

/// The schema the tests ask for: a tiny plan.
pub fn plan_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "steps": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"tool": {"type": "string"}, "action": {"type": "string"}},
                    "required": ["tool", "action"],
                    "additionalProperties": false
                }
            }
        },
        "required": ["steps"],
        "additionalProperties": false
    })
}

pub const PLAN_JSON: &str = r#"{"steps":[{"tool":"fs","action":"largest"}]}"#;

pub fn plan_value() -> Value {
    serde_json::from_str(PLAN_JSON).unwrap()
}

/// JSON-escapes `s` for embedding in a fixture string.
pub fn esc(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

// ---------------------------------------------------------------------------------------------
// OpenAI chat completions — API reference, "The chat completion object": `choices[].message`
// with `content`, `refusal`, `annotations`; `finish_reason`; `usage` with the `*_details`
// objects; `service_tier`, `system_fingerprint`.

pub fn openai_text(content: &str) -> String {
    format!(
        r#"{{
  "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
  "object": "chat.completion",
  "created": 1741569952,
  "model": "gpt-4.1-mini-2025-04-14",
  "choices": [
    {{
      "index": 0,
      "message": {{
        "role": "assistant",
        "content": {},
        "refusal": null,
        "annotations": []
      }},
      "logprobs": null,
      "finish_reason": "stop"
    }}
  ],
  "usage": {{
    "prompt_tokens": 1200,
    "completion_tokens": 300,
    "total_tokens": 1500,
    "prompt_tokens_details": {{"cached_tokens": 0, "audio_tokens": 0}},
    "completion_tokens_details": {{"reasoning_tokens": 0, "audio_tokens": 0, "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}}
  }},
  "service_tier": "default",
  "system_fingerprint": "fp_38647f5e19"
}}"#,
        esc(content)
    )
}

/// Function calling guide: `content: null`, `tool_calls[]` with `arguments` as a JSON string.
/// With a named `tool_choice` OpenAI reports `finish_reason: "stop"`.
pub fn openai_tool_call(arguments: &str) -> String {
    format!(
        r#"{{
  "id": "chatcmpl-BNp3vPt7uL0h7hSs6ZTsOzN8X1aEw",
  "object": "chat.completion",
  "created": 1745000000,
  "model": "gpt-4.1-mini-2025-04-14",
  "choices": [{{
    "index": 0,
    "message": {{
      "role": "assistant",
      "content": null,
      "tool_calls": [{{
        "id": "call_DdmO9pD3xa9XTPNJ32zg2hcA",
        "type": "function",
        "function": {{"name": "plan", "arguments": {}}}
      }}],
      "refusal": null,
      "annotations": []
    }},
    "logprobs": null,
    "finish_reason": "stop"
  }}],
  "usage": {{"prompt_tokens": 80, "completion_tokens": 20, "total_tokens": 100}},
  "service_tier": "default",
  "system_fingerprint": "fp_38647f5e19"
}}"#,
        esc(arguments)
    )
}

/// Structured outputs guide, "Refusals": `content: null` and the reason in `refusal`.
pub const OPENAI_REFUSAL: &str = r#"{
  "id": "chatcmpl-9nYAG9LPNonX8DAyrkwYfemr3C8HC",
  "object": "chat.completion",
  "created": 1721596428,
  "model": "gpt-4o-2024-08-06",
  "choices": [{
    "index": 0,
    "message": {"role": "assistant", "content": null, "refusal": "I'm sorry, I cannot assist with that request."},
    "logprobs": null,
    "finish_reason": "stop"
  }],
  "usage": {"prompt_tokens": 81, "completion_tokens": 11, "total_tokens": 92}
}"#;

/// Error object of the API reference ("Error codes"): 400 for a model without json_schema.
pub const OPENAI_400_RESPONSE_FORMAT: &str = r#"{
  "error": {
    "message": "Invalid parameter: 'response_format' of type 'json_schema' is not supported with this model. Learn more about supported models at the Structured Outputs guide: https://platform.openai.com/docs/guides/structured-outputs",
    "type": "invalid_request_error",
    "param": "response_format",
    "code": null
  }
}"#;

/// 400 from reasoning models sent `max_tokens`.
pub const OPENAI_400_MAX_TOKENS: &str = r#"{
  "error": {
    "message": "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.",
    "type": "invalid_request_error",
    "param": "max_tokens",
    "code": "unsupported_parameter"
  }
}"#;

pub const OPENAI_429: &str = r#"{
  "error": {
    "message": "Rate limit reached for gpt-4.1-mini in organization org-abc on requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in 1s.",
    "type": "requests",
    "param": null,
    "code": "rate_limit_exceeded"
  }
}"#;

pub const OPENAI_500: &str = r#"{
  "error": {
    "message": "The server had an error while processing your request. Sorry about that!",
    "type": "server_error",
    "param": null,
    "code": null
  }
}"#;

pub const OPENAI_401: &str = r#"{
  "error": {
    "message": "Incorrect API key provided: sk-wrong. You can find your API key at https://platform.openai.com/account/api-keys.",
    "type": "invalid_request_error",
    "param": null,
    "code": "invalid_api_key"
  }
}"#;

/// "The chat completion chunk object", streamed with `stream_options.include_usage`: a first
/// chunk with the role, content deltas, a chunk with `finish_reason`, a last chunk with empty
/// `choices` and the usage, then `data: [DONE]`.
pub fn openai_stream(parts: &[&str]) -> Vec<String> {
    let head = r#""id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,"model":"gpt-4.1-mini-2025-04-14","system_fingerprint":"fp_44709d6fcb""#;
    let mut v = vec![format!(
        "data: {{{head},\"choices\":[{{\"index\":0,\"delta\":{{\"role\":\"assistant\",\"content\":\"\",\"refusal\":null}},\"logprobs\":null,\"finish_reason\":null}}],\"usage\":null}}\n\n"
    )];
    for p in parts {
        v.push(format!(
            "data: {{{head},\"choices\":[{{\"index\":0,\"delta\":{{\"content\":{}}},\"logprobs\":null,\"finish_reason\":null}}],\"usage\":null}}\n\n",
            esc(p)
        ));
    }
    v.push(format!(
        "data: {{{head},\"choices\":[{{\"index\":0,\"delta\":{{}},\"logprobs\":null,\"finish_reason\":\"stop\"}}],\"usage\":null}}\n\n"
    ));
    v.push(format!(
        "data: {{{head},\"choices\":[],\"usage\":{{\"prompt_tokens\":17,\"completion_tokens\":6,\"total_tokens\":23,\"prompt_tokens_details\":{{\"cached_tokens\":0}},\"completion_tokens_details\":{{\"reasoning_tokens\":0}}}}}}\n\n"
    ));
    v.push("data: [DONE]\n\n".to_owned());
    v
}

/// Streamed tool call: the first delta carries id, type and name with empty arguments; later
/// deltas carry only `index` and argument fragments.
pub fn openai_stream_tool(fragments: &[&str]) -> Vec<String> {
    let head = r#""id":"chatcmpl-456","object":"chat.completion.chunk","created":1694268190,"model":"gpt-4.1-mini-2025-04-14","system_fingerprint":"fp_44709d6fcb""#;
    let mut v = vec![format!(
        "data: {{{head},\"choices\":[{{\"index\":0,\"delta\":{{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{{\"index\":0,\"id\":\"call_DdmO9pD3xa9XTPNJ32zg2hcA\",\"type\":\"function\",\"function\":{{\"name\":\"plan\",\"arguments\":\"\"}}}}],\"refusal\":null}},\"logprobs\":null,\"finish_reason\":null}}],\"usage\":null}}\n\n"
    )];
    for f in fragments {
        v.push(format!(
            "data: {{{head},\"choices\":[{{\"index\":0,\"delta\":{{\"tool_calls\":[{{\"index\":0,\"function\":{{\"arguments\":{}}}}}]}},\"logprobs\":null,\"finish_reason\":null}}],\"usage\":null}}\n\n",
            esc(f)
        ));
    }
    v.push(format!(
        "data: {{{head},\"choices\":[{{\"index\":0,\"delta\":{{}},\"logprobs\":null,\"finish_reason\":\"stop\"}}],\"usage\":null}}\n\n"
    ));
    v.push(format!(
        "data: {{{head},\"choices\":[],\"usage\":{{\"prompt_tokens\":90,\"completion_tokens\":14,\"total_tokens\":104}}}}\n\n"
    ));
    v.push("data: [DONE]\n\n".to_owned());
    v
}

// ---------------------------------------------------------------------------------------------
// llama.cpp llama-server, OpenAI-compatible `/v1/chat/completions` (tools/server README): the
// model field is the GGUF file (or alias), `system_fingerprint` is the build, a top-level
// `timings` object; streamed chunks carry no `usage` until the final chunk, which has
// `finish_reason`, `usage` and `timings` together; first delta has `content: null`.

pub fn llama_text(content: &str) -> String {
    format!(
        r#"{{"choices":[{{"finish_reason":"stop","index":0,"message":{{"role":"assistant","content":{}}}}}],"created":1736000000,"model":"qwen2.5-7b-instruct-q4_k_m.gguf","system_fingerprint":"b4400-a1b2c3d4","object":"chat.completion","usage":{{"completion_tokens":12,"prompt_tokens":30,"total_tokens":42}},"id":"chatcmpl-Xw3c1qMpL0kqVb2T","timings":{{"prompt_n":30,"prompt_ms":120.5,"prompt_per_token_ms":4.01,"prompt_per_second":248.9,"predicted_n":12,"predicted_ms":300.2,"predicted_per_token_ms":25.01,"predicted_per_second":39.97}}}}"#,
        esc(content)
    )
}

/// With `done: false`, the stream ends after the final chunk without `data: [DONE]`, as
/// llama-server builds before the end of 2024 did.
pub fn llama_stream(parts: &[&str], done: bool) -> Vec<String> {
    let tail = r#""created":1736000000,"id":"chatcmpl-Xw3c1qMpL0kqVb2T","model":"qwen2.5-7b-instruct-q4_k_m.gguf","system_fingerprint":"b4400-a1b2c3d4","object":"chat.completion.chunk""#;
    let mut v = vec![format!(
        "data: {{\"choices\":[{{\"finish_reason\":null,\"index\":0,\"delta\":{{\"role\":\"assistant\",\"content\":null}}}}],{tail}}}\n\n"
    )];
    for p in parts {
        v.push(format!(
            "data: {{\"choices\":[{{\"finish_reason\":null,\"index\":0,\"delta\":{{\"content\":{}}}}}],{tail}}}\n\n",
            esc(p)
        ));
    }
    v.push(format!(
        "data: {{\"choices\":[{{\"finish_reason\":\"stop\",\"index\":0,\"delta\":{{}}}}],{tail},\"usage\":{{\"completion_tokens\":9,\"prompt_tokens\":41,\"total_tokens\":50}},\"timings\":{{\"prompt_n\":41,\"prompt_ms\":98.1,\"predicted_n\":9,\"predicted_ms\":210.7,\"predicted_per_second\":42.7}}}}\n\n"
    ));
    if done {
        v.push("data: [DONE]\n\n".to_owned());
    }
    v
}

/// llama-server error body (`format_error_response`): `code`, `message`, `type`.
pub const LLAMA_400_TOOLS: &str = r#"{"error":{"code":400,"message":"tools param requires --jinja flag","type":"invalid_request_error"}}"#;

// ---------------------------------------------------------------------------------------------
// Ollama's OpenAI compatibility (`docs/openai.md`): `system_fingerprint: "fp_ollama"`, usage
// without the `*_details`; streamed chunks repeat `role` in every delta, the finish chunk has
// an empty content delta, and without `include_usage` support there is no usage chunk;
// tool-call deltas come whole, without `index`; errors as `{"error": {"message", "type":
// "api_error", …}}`.

pub fn ollama_text(content: &str) -> String {
    format!(
        r#"{{"id":"chatcmpl-614","object":"chat.completion","created":1718000000,"model":"llama3.2","system_fingerprint":"fp_ollama","choices":[{{"index":0,"message":{{"role":"assistant","content":{}}},"finish_reason":"stop"}}],"usage":{{"prompt_tokens":26,"completion_tokens":8,"total_tokens":34}}}}"#,
        esc(content)
    )
}

pub fn ollama_stream(parts: &[&str]) -> Vec<String> {
    let head = r#""id":"chatcmpl-905","object":"chat.completion.chunk","created":1718000000,"model":"llama3.2","system_fingerprint":"fp_ollama""#;
    let mut v: Vec<String> = parts
        .iter()
        .map(|p| {
            format!(
                "data: {{{head},\"choices\":[{{\"index\":0,\"delta\":{{\"role\":\"assistant\",\"content\":{}}},\"finish_reason\":null}}]}}\n\n",
                esc(p)
            )
        })
        .collect();
    v.push(format!(
        "data: {{{head},\"choices\":[{{\"index\":0,\"delta\":{{\"role\":\"assistant\",\"content\":\"\"}},\"finish_reason\":\"stop\"}}]}}\n\n"
    ));
    v.push("data: [DONE]\n\n".to_owned());
    v
}

pub fn ollama_stream_tool(arguments: &str) -> Vec<String> {
    let head = r#""id":"chatcmpl-77","object":"chat.completion.chunk","created":1718000000,"model":"qwen2.5","system_fingerprint":"fp_ollama""#;
    vec![
        format!(
            "data: {{{head},\"choices\":[{{\"index\":0,\"delta\":{{\"role\":\"assistant\",\"content\":\"\",\"tool_calls\":[{{\"id\":\"call_9x8b7c6d\",\"type\":\"function\",\"function\":{{\"name\":\"plan\",\"arguments\":{}}}}}]}},\"finish_reason\":null}}]}}\n\n",
            esc(arguments)
        ),
        format!(
            "data: {{{head},\"choices\":[{{\"index\":0,\"delta\":{{\"role\":\"assistant\",\"content\":\"\"}},\"finish_reason\":\"tool_calls\"}}]}}\n\n"
        ),
        "data: [DONE]\n\n".to_owned(),
    ]
}

pub const OLLAMA_400_NO_TOOLS: &str = r#"{"error":{"message":"registry.ollama.ai/library/gemma2:2b does not support tools","type":"api_error","param":null,"code":null}}"#;

pub const OLLAMA_404: &str = r#"{"error":{"message":"model \"llama9\" not found, try pulling it first","type":"api_error","param":null,"code":null}}"#;

// ---------------------------------------------------------------------------------------------
// Anthropic Messages — API reference "Messages": `content` blocks, `stop_reason`,
// `stop_sequence`, `usage` with the cache counters; errors `{"type":"error","error":{…}}`.

pub fn anthropic_text(text: &str, stop_reason: &str) -> String {
    format!(
        r#"{{
  "id": "msg_013Zva2CMHLNnXjNJJKqJ2EF",
  "type": "message",
  "role": "assistant",
  "model": "claude-haiku-4-5-20251001",
  "content": [{{"type": "text", "text": {}}}],
  "stop_reason": {},
  "stop_sequence": null,
  "usage": {{"input_tokens": 2095, "output_tokens": 503, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "service_tier": "standard"}}
}}"#,
        esc(text),
        esc(stop_reason)
    )
}

/// Tool use guide: a forced `tool_choice` yields only the `tool_use` block, with `input` as
/// an object, and `stop_reason: "tool_use"`.
pub fn anthropic_tool_use(input: &str) -> String {
    format!(
        r#"{{
  "id": "msg_01Aq9w938a90dw8q",
  "type": "message",
  "role": "assistant",
  "model": "claude-haiku-4-5-20251001",
  "content": [{{"type": "tool_use", "id": "toolu_01A09q90qw90lq917835lq9", "name": "plan", "input": {input}}}],
  "stop_reason": "tool_use",
  "stop_sequence": null,
  "usage": {{"input_tokens": 472, "output_tokens": 57, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}}
}}"#
    )
}

pub const ANTHROPIC_529: &str = r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"req_011CSHoEeqs5C35K2UUqR7Fy"}"#;

pub const ANTHROPIC_429: &str = r#"{"type":"error","error":{"type":"rate_limit_error","message":"This request would exceed the rate limit for your organization of 50 requests per minute."}}"#;

pub const ANTHROPIC_400_OUTPUT_CONFIG: &str = r#"{"type":"error","error":{"type":"invalid_request_error","message":"output_config.format: structured outputs are not supported for model claude-3-haiku-20240307"}}"#;

/// "Streaming Messages", basic example: named events, a `ping`, text deltas, `message_delta`
/// with the stop reason and cumulative output tokens, `message_stop`.
pub fn anthropic_stream(parts: &[&str]) -> Vec<String> {
    let mut v = vec![
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"claude-haiku-4-5-20251001\",\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":25,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0,\"output_tokens\":1}}}\n\n".to_owned(),
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n".to_owned(),
        "event: ping\ndata: {\"type\": \"ping\"}\n\n".to_owned(),
    ];
    for p in parts {
        v.push(format!(
            "event: content_block_delta\ndata: {{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{{\"type\":\"text_delta\",\"text\":{}}}}}\n\n",
            esc(p)
        ));
    }
    v.push(
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
            .to_owned(),
    );
    v.push("event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":15}}\n\n".to_owned());
    v.push("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n".to_owned());
    v
}

/// "Streaming Messages", tool use: a `tool_use` block start with empty `input`, then
/// `input_json_delta` fragments of `partial_json`.
pub fn anthropic_stream_tool(fragments: &[&str]) -> Vec<String> {
    let mut v = vec![
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_014p7gG3wDgGV9EUtLvnow3U\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-haiku-4-5-20251001\",\"stop_sequence\":null,\"usage\":{\"input_tokens\":472,\"output_tokens\":2},\"content\":[],\"stop_reason\":null}}\n\n".to_owned(),
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_01T1x1fJ34qAmk2tNTrN7Up6\",\"name\":\"plan\",\"input\":{}}}\n\n".to_owned(),
    ];
    for f in fragments {
        v.push(format!(
            "event: content_block_delta\ndata: {{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{{\"type\":\"input_json_delta\",\"partial_json\":{}}}}}\n\n",
            esc(f)
        ));
    }
    v.push(
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
            .to_owned(),
    );
    v.push("event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":89}}\n\n".to_owned());
    v.push("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n".to_owned());
    v
}
