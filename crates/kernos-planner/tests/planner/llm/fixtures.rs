//! Response bodies in the shapes the servers send (as documented by each API and recorded in
//! kernos-llm's fixtures): OpenAI chat completions (content and tool calls), llama-server,
//! Ollama's `/v1`, Anthropic Messages (text and tool_use), and error bodies.

fn esc(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

/// OpenAI chat completion with `content` (a json_schema answer is the JSON as text). Usage:
/// 1200 prompt + 300 completion tokens.
pub fn openai(content: &str) -> String {
    format!(
        r#"{{"id":"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT","object":"chat.completion","created":1741569952,"model":"gpt-4.1-mini-2025-04-14","choices":[{{"index":0,"message":{{"role":"assistant","content":{},"refusal":null,"annotations":[]}},"logprobs":null,"finish_reason":"stop"}}],"usage":{{"prompt_tokens":1200,"completion_tokens":300,"total_tokens":1500,"prompt_tokens_details":{{"cached_tokens":0,"audio_tokens":0}},"completion_tokens_details":{{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}}},"service_tier":"default","system_fingerprint":"fp_38647f5e19"}}"#,
        esc(content)
    )
}

/// OpenAI forced function call: `content: null`, arguments as a JSON string.
pub fn openai_tool(arguments: &str) -> String {
    format!(
        r#"{{"id":"chatcmpl-BNp3vPt7uL0h7hSs6ZTsOzN8X1aEw","object":"chat.completion","created":1745000000,"model":"gpt-4.1-mini-2025-04-14","choices":[{{"index":0,"message":{{"role":"assistant","content":null,"tool_calls":[{{"id":"call_DdmO9pD3xa9XTPNJ32zg2hcA","type":"function","function":{{"name":"kernos_plan","arguments":{}}}}}],"refusal":null,"annotations":[]}},"logprobs":null,"finish_reason":"stop"}}],"usage":{{"prompt_tokens":80,"completion_tokens":20,"total_tokens":100}}}}"#,
        esc(arguments)
    )
}

/// llama-server's non-streamed answer (with its `timings`).
pub fn llama(content: &str) -> String {
    format!(
        r#"{{"choices":[{{"finish_reason":"stop","index":0,"message":{{"role":"assistant","content":{}}}}}],"created":1736000000,"model":"qwen2.5-7b-instruct-q4_k_m.gguf","system_fingerprint":"b4400-a1b2c3d4","object":"chat.completion","usage":{{"completion_tokens":12,"prompt_tokens":30,"total_tokens":42}},"id":"chatcmpl-Xw3c1qMpL0kqVb2T","timings":{{"prompt_n":30,"prompt_ms":120.5,"predicted_n":12,"predicted_ms":300.2}}}}"#,
        esc(content)
    )
}

/// Ollama's `/v1` answer.
pub fn ollama(content: &str) -> String {
    format!(
        r#"{{"id":"chatcmpl-614","object":"chat.completion","created":1718000000,"model":"llama3.2","system_fingerprint":"fp_ollama","choices":[{{"index":0,"message":{{"role":"assistant","content":{}}},"finish_reason":"stop"}}],"usage":{{"prompt_tokens":26,"completion_tokens":8,"total_tokens":34}}}}"#,
        esc(content)
    )
}

/// Anthropic forced tool use: `input` is an object.
pub fn anthropic_tool(input: &str) -> String {
    format!(
        r#"{{"id":"msg_01Aq9w938a90dw8q","type":"message","role":"assistant","model":"claude-haiku-4-5-20251001","content":[{{"type":"tool_use","id":"toolu_01A09q90qw90lq917835lq9","name":"kernos_plan","input":{input}}}],"stop_reason":"tool_use","stop_sequence":null,"usage":{{"input_tokens":472,"output_tokens":57,"cache_creation_input_tokens":0,"cache_read_input_tokens":0}}}}"#
    )
}

/// Anthropic structured output (`output_config.format`): the JSON as text.
pub fn anthropic_text(text: &str) -> String {
    format!(
        r#"{{"id":"msg_013Zva2CMHLNnXjNJJKqJ2EF","type":"message","role":"assistant","model":"claude-haiku-4-5-20251001","content":[{{"type":"text","text":{}}}],"stop_reason":"end_turn","stop_sequence":null,"usage":{{"input_tokens":2095,"output_tokens":503,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"service_tier":"standard"}}}}"#,
        esc(text)
    )
}

/// OpenAI's refusal.
pub const OPENAI_REFUSAL: &str = r#"{"id":"chatcmpl-9nYAG9LPNonX8DAyrkwYfemr3C8HC","object":"chat.completion","created":1721596428,"model":"gpt-4o-2024-08-06","choices":[{"index":0,"message":{"role":"assistant","content":null,"refusal":"I'm sorry, I cannot assist with that request."},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":81,"completion_tokens":11,"total_tokens":92}}"#;

pub const OPENAI_429: &str = r#"{"error":{"message":"Rate limit reached for gpt-4.1-mini in organization org-abc on requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in 1s.","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#;

pub const OPENAI_500: &str = r#"{"error":{"message":"The server had an error while processing your request. Sorry about that!","type":"server_error","param":null,"code":null}}"#;

pub const OPENAI_400_RESPONSE_FORMAT: &str = r#"{"error":{"message":"Invalid parameter: 'response_format' of type 'json_schema' is not supported with this model.","type":"invalid_request_error","param":"response_format","code":null}}"#;
