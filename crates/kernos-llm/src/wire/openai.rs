//! OpenAI chat completions, as documented in OpenAI's API reference ("Create chat completion",
//! "The chat completion object", "The chat completion chunk object") and implemented by vLLM,
//! llama.cpp's llama-server, Ollama's `/v1`, DeepSeek, OpenRouter and LM Studio.
//!
//! Quirks handled here: `content` as a string, `null` or an array of parts; `arguments` as a
//! JSON string (OpenAI) or an object (some servers); tool-call deltas without `index` (older
//! Ollama); usage absent, `null`, in the last content chunk (llama-server) or in a separate
//! chunk with empty `choices` (OpenAI `include_usage`); streams that end after the finish
//! chunk without `[DONE]` (older llama-server); `{"error": …}` objects inside a stream.

use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{Decoded, EncodeArgs, StreamFailure, clip, system_prompt};
use crate::types::Mechanism;

/// The request body.
pub fn request_body(a: &EncodeArgs<'_>) -> Value {
    let req = a.req;
    let mut messages = Vec::with_capacity(req.messages.len() + 1);
    let system = system_prompt(req, a.mechanism);
    if !system.is_empty() {
        messages.push(json!({"role": "system", "content": system}));
    }
    for m in &req.messages {
        messages.push(json!({"role": m.role.as_str(), "content": m.content}));
    }
    let mut body = Map::new();
    body.insert("model".into(), Value::from(a.model));
    body.insert("messages".into(), Value::Array(messages));
    let limit_key = if a.quirks.max_completion_tokens {
        "max_completion_tokens"
    } else {
        "max_tokens"
    };
    body.insert(limit_key.into(), Value::from(a.max_tokens));
    if let Some(t) = req.temperature
        && !a.quirks.no_temperature
    {
        body.insert("temperature".into(), Value::from(f64::from(t)));
    }
    body.insert("stream".into(), Value::Bool(req.stream));
    if req.stream && !a.quirks.no_stream_options {
        // Without this OpenAI (and Ollama, vLLM) send no usage in a stream.
        body.insert("stream_options".into(), json!({"include_usage": true}));
    }
    if let Some(s) = &req.schema {
        let strict_schema;
        let schema = if s.strict && a.quirks.strict_all_required {
            strict_schema = super::strict_form(&s.schema);
            &strict_schema
        } else {
            &s.schema
        };
        match a.mechanism {
            Mechanism::JsonSchema => {
                let mut js = Map::new();
                js.insert("name".into(), Value::from(s.name.as_str()));
                if !s.description.is_empty() {
                    js.insert("description".into(), Value::from(s.description.as_str()));
                }
                js.insert("schema".into(), schema.clone());
                js.insert("strict".into(), Value::Bool(s.strict));
                body.insert(
                    "response_format".into(),
                    json!({"type": "json_schema", "json_schema": js}),
                );
            }
            Mechanism::Tools => {
                let mut f = Map::new();
                f.insert("name".into(), Value::from(s.name.as_str()));
                f.insert("description".into(), Value::from(s.description.as_str()));
                f.insert("parameters".into(), schema.clone());
                if s.strict {
                    f.insert("strict".into(), Value::Bool(true));
                }
                body.insert("tools".into(), json!([{"type": "function", "function": f}]));
                body.insert(
                    "tool_choice".into(),
                    json!({"type": "function", "function": {"name": s.name}}),
                );
            }
            Mechanism::Text | Mechanism::None => {}
        }
    }
    Value::Object(body)
}

#[derive(Deserialize)]
struct Completion {
    model: Option<String>,
    choices: Vec<Choice>,
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct Choice {
    message: Option<WireMessage>,
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct WireMessage {
    #[serde(default)]
    content: Value,
    refusal: Option<String>,
    tool_calls: Option<Vec<ToolCall>>,
}

#[derive(Deserialize)]
struct ToolCall {
    index: Option<usize>,
    function: Option<FunctionCall>,
}

#[derive(Deserialize)]
struct FunctionCall {
    #[serde(default)]
    arguments: Value,
}

#[derive(Deserialize)]
struct WireUsage {
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
}

impl WireUsage {
    fn pair(&self) -> Option<(u64, u64)> {
        match (self.prompt_tokens, self.completion_tokens) {
            (None, None) => None,
            (p, c) => Some((p.unwrap_or(0), c.unwrap_or(0))),
        }
    }
}

/// Text of a `content` value: a string, `null`, or `[{"type": "text", "text": …}, …]`.
fn content_text(v: &Value, out: &mut String) {
    match v {
        Value::String(s) => out.push_str(s),
        Value::Array(parts) => {
            for p in parts {
                if let Some(t) = p.get("text").and_then(Value::as_str) {
                    out.push_str(t);
                }
            }
        }
        _ => {}
    }
}

/// Arguments as JSON text: a string as-is, an object serialised.
fn arguments_text(v: &Value, out: &mut String) {
    match v {
        Value::String(s) => out.push_str(s),
        Value::Null => {}
        other => out.push_str(&other.to_string()),
    }
}

/// Decodes a non-streamed completion.
pub fn decode(body: &[u8]) -> Result<Decoded, String> {
    let c: Completion = serde_json::from_slice(body).map_err(|e| {
        format!(
            "{e}; body starts: {}",
            clip(&String::from_utf8_lossy(body), 200)
        )
    })?;
    let choice = c
        .choices
        .into_iter()
        .next()
        .ok_or_else(|| "the completion has no choices".to_owned())?;
    let mut d = Decoded {
        finish_reason: choice.finish_reason,
        usage: c.usage.as_ref().and_then(WireUsage::pair),
        model: c.model,
        ..Decoded::default()
    };
    if let Some(m) = choice.message {
        content_text(&m.content, &mut d.text);
        d.refusal = m.refusal;
        if let Some(call) = m.tool_calls.into_iter().flatten().find_map(|t| t.function) {
            let mut args = String::new();
            arguments_text(&call.arguments, &mut args);
            d.tool_args = Some(args);
        }
    }
    Ok(d)
}

#[derive(Deserialize)]
struct Chunk {
    model: Option<String>,
    #[serde(default)]
    choices: Vec<ChunkChoice>,
    usage: Option<WireUsage>,
    error: Option<Value>,
}

#[derive(Deserialize)]
struct ChunkChoice {
    delta: Option<Delta>,
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct Delta {
    #[serde(default)]
    content: Value,
    refusal: Option<String>,
    tool_calls: Option<Vec<ToolCall>>,
}

/// Streaming accumulator.
#[derive(Debug, Default)]
pub struct StreamState {
    text: String,
    refusal: String,
    /// Argument text per tool-call index.
    tools: Vec<String>,
    finish_reason: Option<String>,
    usage: Option<(u64, u64)>,
    model: Option<String>,
    chunks: usize,
    /// `[DONE]` seen.
    pub(super) done: bool,
}

impl StreamState {
    pub(super) fn on_event(
        &mut self,
        ev: &super::SseEvent,
        sink: &mut dyn FnMut(&str),
    ) -> Result<(), StreamFailure> {
        let data = ev.data.trim();
        if data.is_empty() {
            return Ok(());
        }
        if data == "[DONE]" {
            self.done = true;
            return Ok(());
        }
        let c: Chunk = serde_json::from_str(data).map_err(|e| {
            StreamFailure::Malformed(format!(
                "chunk is not a completion chunk ({e}): {}",
                clip(data, 200)
            ))
        })?;
        if let Some(err) = c.error {
            let message = err
                .get("message")
                .and_then(Value::as_str)
                .map_or_else(|| err.to_string(), str::to_owned);
            let status = err
                .get("code")
                .and_then(Value::as_u64)
                .and_then(|c| u16::try_from(c).ok())
                .unwrap_or(0);
            return Err(StreamFailure::Server { status, message });
        }
        self.chunks += 1;
        if self.model.is_none() {
            self.model = c.model;
        }
        if let Some(u) = c.usage.as_ref().and_then(WireUsage::pair) {
            self.usage = Some(u);
        }
        let Some(choice) = c.choices.into_iter().next() else {
            return Ok(());
        };
        if let Some(delta) = choice.delta {
            let before = self.text.len();
            content_text(&delta.content, &mut self.text);
            if self.text.len() > before {
                sink(&self.text[before..]);
            }
            if let Some(r) = delta.refusal {
                self.refusal.push_str(&r);
            }
            for (pos, tc) in delta.tool_calls.into_iter().flatten().enumerate() {
                let i = tc.index.unwrap_or(pos);
                if self.tools.len() <= i {
                    self.tools.resize(i + 1, String::new());
                }
                if let Some(f) = tc.function {
                    let before = self.tools[i].len();
                    arguments_text(&f.arguments, &mut self.tools[i]);
                    if self.tools[i].len() > before {
                        sink(&self.tools[i][before..]);
                    }
                }
            }
        }
        if choice.finish_reason.is_some() {
            self.finish_reason = choice.finish_reason;
        }
        Ok(())
    }

    pub(super) fn finish(self) -> Result<Decoded, StreamFailure> {
        if !self.done && self.finish_reason.is_none() {
            return Err(StreamFailure::Truncated(format!(
                "{} chunks received, then the stream ended with neither a finish_reason nor [DONE]",
                self.chunks
            )));
        }
        Ok(Decoded {
            text: self.text,
            tool_args: self.tools.into_iter().find(|t| !t.is_empty()),
            refusal: (!self.refusal.is_empty()).then_some(self.refusal),
            finish_reason: self.finish_reason,
            usage: self.usage,
            model: self.model,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Quirks, SseEvent};
    use super::*;
    use crate::types::{ChatRequest, Message, OutputSchema};

    #[test]
    fn body_for_each_mechanism_and_quirk() {
        let req = ChatRequest {
            system: "sys".into(),
            messages: vec![Message::user("hi")],
            schema: Some(OutputSchema::new("plan", json!({"type": "object"}))),
            temperature: Some(0.5),
            stream: true,
            ..ChatRequest::default()
        };
        let mut a = EncodeArgs {
            model: "m",
            req: &req,
            mechanism: Mechanism::JsonSchema,
            max_tokens: 100,
            quirks: Quirks::default(),
        };
        let b = request_body(&a);
        assert_eq!(
            b["messages"][0],
            json!({"role": "system", "content": "sys"})
        );
        assert_eq!(b["response_format"]["json_schema"]["name"], "plan");
        assert_eq!(b["response_format"]["json_schema"]["strict"], true);
        assert_eq!(b["stream_options"]["include_usage"], true);
        assert_eq!(b["max_tokens"], 100);
        assert!(b.get("tools").is_none());
        a.mechanism = Mechanism::Tools;
        a.quirks = Quirks {
            max_completion_tokens: true,
            no_temperature: true,
            no_stream_options: true,
            strict_all_required: false,
        };
        let b = request_body(&a);
        assert_eq!(b["tool_choice"]["function"]["name"], "plan");
        assert_eq!(
            b["tools"][0]["function"]["parameters"],
            json!({"type": "object"})
        );
        assert!(b.get("response_format").is_none());
        assert!(b.get("max_tokens").is_none() && b["max_completion_tokens"] == 100);
        assert!(b.get("temperature").is_none() && b.get("stream_options").is_none());
    }

    #[test]
    fn content_parts_and_object_arguments() {
        let d = decode(
            br#"{"choices":[{"message":{"role":"assistant","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}],
            "tool_calls":[{"id":"c","type":"function","function":{"name":"plan","arguments":{"steps":[]}}}]},"finish_reason":"tool_calls"}]}"#,
        )
        .unwrap();
        assert_eq!(d.text, "ab");
        assert_eq!(d.tool_args.as_deref(), Some("{\"steps\":[]}"));
        assert!(
            decode(b"{\"choices\": []}")
                .unwrap_err()
                .contains("no choices")
        );
        assert!(
            decode(b"<html>")
                .unwrap_err()
                .contains("body starts: <html>")
        );
    }

    #[test]
    fn stream_error_object_and_truncation() {
        let mut s = StreamState::default();
        let ev = |d: &str| SseEvent {
            event: None,
            data: d.into(),
        };
        s.on_event(
            &ev(r#"{"choices":[{"delta":{"content":"x"},"finish_reason":null}]}"#),
            &mut |_| {},
        )
        .unwrap();
        let e = s
            .on_event(
                &ev(r#"{"error":{"message":"upstream overloaded","code":503}}"#),
                &mut |_| {},
            )
            .unwrap_err();
        assert_eq!(
            e,
            StreamFailure::Server {
                status: 503,
                message: "upstream overloaded".into()
            }
        );
        assert!(
            matches!(s.finish(), Err(StreamFailure::Truncated(m)) if m.starts_with("1 chunks"))
        );
    }
}
