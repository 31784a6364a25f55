//! Anthropic Messages, as documented in Anthropic's API reference ("Messages", "Streaming
//! Messages", "Structured outputs", "Tool use"): content blocks (`text`, `tool_use`,
//! `thinking`), `stop_reason` (`end_turn`, `max_tokens`, `stop_sequence`, `tool_use`,
//! `refusal`, `pause_turn`), and the event stream `message_start` → (`content_block_start` →
//! `content_block_delta`* → `content_block_stop`)* → `message_delta` → `message_stop`, with
//! `ping` and `error` events interleaved.

use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{Decoded, EncodeArgs, StreamFailure, clip, system_prompt};
use crate::types::Mechanism;

/// The API version header value this codec speaks.
pub const API_VERSION: &str = "2023-06-01";

/// The request body.
pub fn request_body(a: &EncodeArgs<'_>) -> Value {
    let req = a.req;
    let mut body = Map::new();
    body.insert("model".into(), Value::from(a.model));
    body.insert("max_tokens".into(), Value::from(a.max_tokens));
    let system = system_prompt(req, a.mechanism);
    if !system.is_empty() {
        body.insert("system".into(), Value::from(system.as_ref()));
    }
    body.insert(
        "messages".into(),
        Value::Array(
            req.messages
                .iter()
                .map(|m| json!({"role": m.role.as_str(), "content": m.content}))
                .collect(),
        ),
    );
    if let Some(t) = req.temperature
        && !a.quirks.no_temperature
    {
        body.insert("temperature".into(), Value::from(f64::from(t)));
    }
    if req.stream {
        body.insert("stream".into(), Value::Bool(true));
    }
    if let Some(s) = &req.schema {
        match a.mechanism {
            Mechanism::JsonSchema => {
                body.insert(
                    "output_config".into(),
                    json!({"format": {"type": "json_schema", "schema": s.schema}}),
                );
            }
            Mechanism::Tools => {
                body.insert(
                    "tools".into(),
                    json!([{
                        "name": s.name,
                        "description": s.description,
                        "input_schema": s.schema,
                    }]),
                );
                body.insert(
                    "tool_choice".into(),
                    json!({"type": "tool", "name": s.name}),
                );
            }
            Mechanism::Text | Mechanism::None => {}
        }
    }
    Value::Object(body)
}

#[derive(Deserialize)]
struct Message {
    model: Option<String>,
    #[serde(default)]
    content: Vec<Block>,
    stop_reason: Option<String>,
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct Block {
    #[serde(rename = "type")]
    kind: String,
    text: Option<String>,
    input: Option<Value>,
}

#[derive(Deserialize, Default, Clone, Copy)]
struct WireUsage {
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    cache_creation_input_tokens: Option<u64>,
    cache_read_input_tokens: Option<u64>,
}

impl WireUsage {
    /// All prompt tokens, cached ones included (they are billed too, at other rates).
    fn input(&self) -> u64 {
        self.input_tokens.unwrap_or(0)
            + self.cache_creation_input_tokens.unwrap_or(0)
            + self.cache_read_input_tokens.unwrap_or(0)
    }
}

/// Decodes a non-streamed message.
pub fn decode(body: &[u8]) -> Result<Decoded, String> {
    let m: Message = serde_json::from_slice(body).map_err(|e| {
        format!(
            "{e}; body starts: {}",
            clip(&String::from_utf8_lossy(body), 200)
        )
    })?;
    let mut d = Decoded {
        finish_reason: m.stop_reason,
        usage: m.usage.map(|u| (u.input(), u.output_tokens.unwrap_or(0))),
        model: m.model,
        ..Decoded::default()
    };
    for b in m.content {
        match b.kind.as_str() {
            "text" => d.text.push_str(b.text.as_deref().unwrap_or("")),
            "tool_use" if d.tool_args.is_none() => {
                d.tool_args = Some(b.input.unwrap_or(Value::Null).to_string());
            }
            // thinking, redacted_thinking, server tool blocks: not part of the answer.
            _ => {}
        }
    }
    Ok(d)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BlockKind {
    Text,
    Tool,
    Other,
}

/// Streaming accumulator.
#[derive(Debug, Default)]
pub struct StreamState {
    blocks: Vec<BlockKind>,
    text: String,
    tool_args: Option<String>,
    /// Index of the tool block whose input we keep (the first).
    tool_index: Option<usize>,
    stop_reason: Option<String>,
    input_tokens: u64,
    output_tokens: u64,
    have_usage: bool,
    model: Option<String>,
    last_event: String,
    /// `message_stop` seen.
    pub(super) done: bool,
}

fn index_of(v: &Value) -> usize {
    v.get("index")
        .and_then(Value::as_u64)
        .and_then(|i| usize::try_from(i).ok())
        .unwrap_or(0)
}

/// HTTP status Anthropic uses for an error type, so in-stream errors classify like HTTP ones.
fn status_for(error_type: &str) -> u16 {
    match error_type {
        "overloaded_error" => 529,
        "rate_limit_error" => 429,
        "api_error" => 500,
        "invalid_request_error" => 400,
        "authentication_error" => 401,
        "permission_error" => 403,
        "not_found_error" => 404,
        "request_too_large" => 413,
        _ => 0,
    }
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
        let v: Value = serde_json::from_str(data).map_err(|e| {
            StreamFailure::Malformed(format!("event data is not JSON ({e}): {}", clip(data, 200)))
        })?;
        let kind = v
            .get("type")
            .and_then(Value::as_str)
            .or(ev.event.as_deref())
            .unwrap_or("")
            .to_owned();
        match kind.as_str() {
            "message_start" => {
                let m = v.get("message").unwrap_or(&Value::Null);
                self.model = m.get("model").and_then(Value::as_str).map(str::to_owned);
                if let Some(u) = m.get("usage") {
                    let u: WireUsage = serde_json::from_value(u.clone()).unwrap_or_default();
                    self.input_tokens = u.input();
                    self.output_tokens = u.output_tokens.unwrap_or(0);
                    self.have_usage = true;
                }
            }
            "content_block_start" => {
                let i = index_of(&v);
                let block = v.get("content_block").unwrap_or(&Value::Null);
                let bk = match block.get("type").and_then(Value::as_str) {
                    Some("text") => BlockKind::Text,
                    Some("tool_use") => BlockKind::Tool,
                    _ => BlockKind::Other,
                };
                if self.blocks.len() <= i {
                    self.blocks.resize(i + 1, BlockKind::Other);
                }
                self.blocks[i] = bk;
                match bk {
                    BlockKind::Text => {
                        if let Some(t) = block.get("text").and_then(Value::as_str)
                            && !t.is_empty()
                        {
                            self.text.push_str(t);
                            sink(t);
                        }
                    }
                    BlockKind::Tool if self.tool_index.is_none() => {
                        self.tool_index = Some(i);
                        self.tool_args = Some(String::new());
                    }
                    _ => {}
                }
            }
            "content_block_delta" => {
                let i = index_of(&v);
                let d = v.get("delta").unwrap_or(&Value::Null);
                match d.get("type").and_then(Value::as_str) {
                    Some("text_delta") => {
                        if let Some(t) = d.get("text").and_then(Value::as_str) {
                            self.text.push_str(t);
                            sink(t);
                        }
                    }
                    Some("input_json_delta") if self.tool_index == Some(i) => {
                        if let (Some(p), Some(args)) = (
                            d.get("partial_json").and_then(Value::as_str),
                            &mut self.tool_args,
                        ) {
                            args.push_str(p);
                            sink(p);
                        }
                    }
                    // thinking_delta, signature_delta, citations: not part of the answer.
                    _ => {}
                }
            }
            "message_delta" => {
                if let Some(r) = v
                    .get("delta")
                    .and_then(|d| d.get("stop_reason"))
                    .and_then(Value::as_str)
                {
                    self.stop_reason = Some(r.to_owned());
                }
                // output_tokens here is cumulative for the message.
                if let Some(o) = v
                    .get("usage")
                    .and_then(|u| u.get("output_tokens"))
                    .and_then(Value::as_u64)
                {
                    self.output_tokens = o;
                    self.have_usage = true;
                }
            }
            "message_stop" => self.done = true,
            "error" => {
                let e = v.get("error").unwrap_or(&Value::Null);
                let et = e.get("type").and_then(Value::as_str).unwrap_or("");
                let message = e
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("error event without a message");
                return Err(StreamFailure::Server {
                    status: status_for(et),
                    message: format!("{et}: {message}"),
                });
            }
            // ping, content_block_stop and event types added later carry nothing we need.
            _ => {}
        }
        self.last_event = kind;
        Ok(())
    }

    pub(super) fn finish(self) -> Result<Decoded, StreamFailure> {
        // A stop_reason without message_stop means the content is complete and only the final
        // marker was lost; anything less is a cut-off answer.
        if !self.done && self.stop_reason.is_none() {
            return Err(StreamFailure::Truncated(if self.last_event.is_empty() {
                "no events received".to_owned()
            } else {
                format!(
                    "the stream ended after {:?} without message_stop",
                    self.last_event
                )
            }));
        }
        let tool_args = self.tool_args.map(|a| {
            if a.trim().is_empty() {
                "{}".to_owned()
            } else {
                a
            }
        });
        Ok(Decoded {
            text: self.text,
            tool_args,
            refusal: None,
            finish_reason: self.stop_reason,
            usage: self
                .have_usage
                .then_some((self.input_tokens, self.output_tokens)),
            model: self.model,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Quirks, SseEvent};
    use super::*;
    use crate::types::{ChatRequest, Message as Msg, OutputSchema};

    #[test]
    fn body_for_each_mechanism() {
        let req = ChatRequest {
            system: String::new(),
            messages: vec![Msg::user("hi"), Msg::assistant("{"), Msg::user("fix it")],
            schema: Some(OutputSchema::new("plan", json!({"type": "object"}))),
            ..ChatRequest::default()
        };
        let mut a = EncodeArgs {
            model: "claude",
            req: &req,
            mechanism: Mechanism::Tools,
            max_tokens: 64,
            quirks: Quirks::default(),
        };
        let b = request_body(&a);
        assert!(b.get("system").is_none() && b.get("stream").is_none());
        assert_eq!(b["messages"][1]["role"], "assistant");
        assert_eq!(b["tool_choice"], json!({"type": "tool", "name": "plan"}));
        assert_eq!(b["tools"][0]["input_schema"], json!({"type": "object"}));
        a.mechanism = Mechanism::JsonSchema;
        let b = request_body(&a);
        assert_eq!(b["output_config"]["format"]["type"], "json_schema");
        assert!(b.get("tools").is_none());
        a.mechanism = Mechanism::Text;
        let b = request_body(&a);
        assert!(b["system"].as_str().unwrap().contains("JSON schema"));
    }

    #[test]
    fn in_stream_errors_map_to_statuses() {
        let mut s = StreamState::default();
        let e = s
            .on_event(
                &SseEvent {
                    event: Some("error".into()),
                    data: r#"{"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}"#.into(),
                },
                &mut |_| {},
            )
            .unwrap_err();
        assert_eq!(
            e,
            StreamFailure::Server {
                status: 529,
                message: "overloaded_error: Overloaded".into()
            }
        );
        assert!(
            matches!(StreamState::default().finish(), Err(StreamFailure::Truncated(m)) if m == "no events received")
        );
    }
}
