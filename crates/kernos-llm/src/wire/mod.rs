//! Wire codecs: request bodies, response and stream decoding, JSON extraction. No I/O here, so
//! the router's overhead outside the model is this module plus one HTTP round trip (and the
//! benchmark measures exactly this module).

pub mod anthropic;
pub mod extract;
pub mod openai;
pub mod sse;

use serde_json::Value;

use crate::config::ProviderKind;
use crate::types::{ChatRequest, Mechanism, OutputSchema};

pub use extract::{Found, check_shape, extract_json};
pub use sse::{SseEvent, SseParser};

/// Server-specific adjustments learned from 400 answers (and then remembered per provider).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Quirks {
    /// Send `max_completion_tokens` instead of `max_tokens` (OpenAI's o-series and later
    /// reject the old name).
    pub max_completion_tokens: bool,
    /// Do not send `temperature` (models that accept only the default).
    pub no_temperature: bool,
    /// Do not send `stream_options` (servers that reject unknown fields).
    pub no_stream_options: bool,
    /// Send a strict schema in [`strict_form`]: OpenAI's strict structured outputs require
    /// every property of every object to be listed in `required` (llama.cpp and others take
    /// optional properties as they are, and a grammar lets the model skip them).
    pub strict_all_required: bool,
}

/// `schema` as OpenAI's strict mode wants it: every object lists all its properties in
/// `required`, and a property that was optional becomes nullable (`null` = not given), so
/// the meaning is unchanged.
pub fn strict_form(schema: &Value) -> Value {
    match schema {
        Value::Object(o) => {
            let mut out: serde_json::Map<String, Value> = o
                .iter()
                .map(|(k, v)| {
                    let v = if k == "properties" {
                        v.clone()
                    } else {
                        strict_form(v)
                    };
                    (k.clone(), v)
                })
                .collect();
            if let Some(props) = o.get("properties").and_then(Value::as_object) {
                let required: Vec<&str> = o
                    .get("required")
                    .and_then(Value::as_array)
                    .map(|r| r.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                let mut new_props = serde_json::Map::new();
                for (k, v) in props {
                    let v = strict_form(v);
                    let v = if required.contains(&k.as_str()) {
                        v
                    } else {
                        nullable(v)
                    };
                    new_props.insert(k.clone(), v);
                }
                out.insert(
                    "required".into(),
                    Value::Array(props.keys().map(|k| Value::from(k.as_str())).collect()),
                );
                out.insert("properties".into(), Value::Object(new_props));
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(strict_form).collect()),
        other => other.clone(),
    }
}

/// `{"anyOf": [schema, {"type": "null"}]}`, flattened when `schema` is already a union.
fn nullable(schema: Value) -> Value {
    let null_type = serde_json::json!({"type": "null"});
    match schema {
        Value::Object(mut o) if o.len() == 1 && o.contains_key("anyOf") => {
            if let Some(Value::Array(alts)) = o.get_mut("anyOf") {
                alts.push(null_type);
            }
            Value::Object(o)
        }
        other => Value::Object(serde_json::Map::from_iter([(
            "anyOf".to_owned(),
            Value::Array(vec![other, null_type]),
        )])),
    }
}

/// Everything a request body needs.
#[derive(Debug, Clone, Copy)]
pub struct EncodeArgs<'a> {
    /// Model name.
    pub model: &'a str,
    /// The request.
    pub req: &'a ChatRequest,
    /// How to ask for the schema (ignored when the request has none).
    pub mechanism: Mechanism,
    /// Token limit.
    pub max_tokens: u32,
    /// Learned adjustments.
    pub quirks: Quirks,
}

/// The request body for `kind`, serialised.
pub fn encode(kind: ProviderKind, args: &EncodeArgs<'_>) -> Vec<u8> {
    let v = match kind {
        ProviderKind::OpenAi => openai::request_body(args),
        ProviderKind::Anthropic => anthropic::request_body(args),
    };
    // Serialising a Value built from strings and numbers cannot fail.
    serde_json::to_vec(&v).unwrap_or_default()
}

/// The system prompt to send: the caller's, plus (for [`Mechanism::Text`]) the schema, since
/// nothing else carries it to the model. Other mechanisms send the schema in the API's own
/// field and leave the caller's prompt untouched.
pub(crate) fn system_prompt(req: &ChatRequest, mechanism: Mechanism) -> std::borrow::Cow<'_, str> {
    match (&req.schema, mechanism) {
        (Some(s), Mechanism::Text) => {
            let mut out = req.system.clone();
            if !out.is_empty() {
                out.push_str("\n\n");
            }
            out.push_str(
                "Answer with one JSON value only (no prose, no code fences) that matches this \
                 JSON schema",
            );
            if !s.description.is_empty() {
                out.push_str(" (");
                out.push_str(&s.description);
                out.push(')');
            }
            out.push_str(":\n");
            out.push_str(&s.schema.to_string());
            std::borrow::Cow::Owned(out)
        }
        _ => std::borrow::Cow::Borrowed(&req.system),
    }
}

/// A decoded answer, before the structured result is resolved.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Decoded {
    /// Text content, concatenated.
    pub text: String,
    /// Arguments of the first tool call, as JSON text.
    pub tool_args: Option<String>,
    /// An explicit refusal (OpenAI `refusal`).
    pub refusal: Option<String>,
    /// As the server said it.
    pub finish_reason: Option<String>,
    /// (input, output) tokens, when reported.
    pub usage: Option<(u64, u64)>,
    /// The model the server says answered.
    pub model: Option<String>,
}

/// Decodes a complete (non-streamed) response body.
pub fn decode(kind: ProviderKind, body: &[u8]) -> Result<Decoded, String> {
    match kind {
        ProviderKind::OpenAi => openai::decode(body),
        ProviderKind::Anthropic => anthropic::decode(body),
    }
}

/// Why a stream did not yield an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamFailure {
    /// It ended before the API's end marker.
    Truncated(String),
    /// The server sent an error inside the stream (status: Anthropic's equivalent HTTP code
    /// where known, else 0).
    Server {
        /// Equivalent HTTP status, or 0.
        status: u16,
        /// The message.
        message: String,
    },
    /// An event that is not the API's format.
    Malformed(String),
}

/// Accumulates a streamed answer event by event.
#[derive(Debug)]
pub enum StreamDecoder {
    /// OpenAI chat completion chunks.
    OpenAi(openai::StreamState),
    /// Anthropic message events.
    Anthropic(anthropic::StreamState),
}

impl StreamDecoder {
    /// A decoder for `kind`.
    pub fn new(kind: ProviderKind) -> Self {
        match kind {
            ProviderKind::OpenAi => StreamDecoder::OpenAi(openai::StreamState::default()),
            ProviderKind::Anthropic => StreamDecoder::Anthropic(anthropic::StreamState::default()),
        }
    }

    /// Takes one event; new text (or tool-argument text) goes to `sink`.
    pub fn on_event(
        &mut self,
        ev: &SseEvent,
        sink: &mut dyn FnMut(&str),
    ) -> Result<(), StreamFailure> {
        match self {
            StreamDecoder::OpenAi(s) => s.on_event(ev, sink),
            StreamDecoder::Anthropic(s) => s.on_event(ev, sink),
        }
    }

    /// The end marker has been seen; nothing after it matters.
    pub fn is_done(&self) -> bool {
        match self {
            StreamDecoder::OpenAi(s) => s.done,
            StreamDecoder::Anthropic(s) => s.done,
        }
    }

    /// The answer, or [`StreamFailure::Truncated`] when the stream did not finish.
    pub fn finish(self) -> Result<Decoded, StreamFailure> {
        match self {
            StreamDecoder::OpenAi(s) => s.finish(),
            StreamDecoder::Anthropic(s) => s.finish(),
        }
    }
}

/// Why a decoded answer is not a usable result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResolveError {
    /// The model declined.
    Refused(String),
    /// It stopped at the token limit with incomplete JSON.
    OutputTruncated,
    /// No JSON, or JSON of the wrong shape.
    Invalid(String),
}

/// Finish reasons meaning "stopped at the token limit" in either API.
fn is_length(reason: Option<&str>) -> bool {
    matches!(reason, Some("length" | "max_tokens"))
}

/// Turns a decoded answer into the caller's result: the parsed JSON (when a schema was asked
/// for) and the mechanism that actually produced it.
pub fn resolve(
    d: &Decoded,
    schema: Option<&OutputSchema>,
    requested: Mechanism,
) -> Result<(Option<Value>, Mechanism), ResolveError> {
    if let Some(r) = d.refusal.as_deref().filter(|r| !r.trim().is_empty()) {
        return Err(ResolveError::Refused(r.trim().to_owned()));
    }
    match d.finish_reason.as_deref() {
        Some("refusal") => {
            let t = d.text.trim();
            return Err(ResolveError::Refused(if t.is_empty() {
                "the model stopped with stop_reason \"refusal\"".to_owned()
            } else {
                t.to_owned()
            }));
        }
        Some("content_filter") => {
            return Err(ResolveError::Refused(
                "the provider's content filter withheld the answer (finish_reason \"content_filter\")"
                    .to_owned(),
            ));
        }
        _ => {}
    }
    let Some(schema) = schema else {
        return Ok((None, Mechanism::None));
    };
    let (source, from_tool) = match &d.tool_args {
        Some(a) => (a.as_str(), true),
        None => (d.text.as_str(), false),
    };
    let Some((value, found)) = extract_json(source) else {
        if is_length(d.finish_reason.as_deref()) {
            return Err(ResolveError::OutputTruncated);
        }
        let what = if from_tool {
            "the tool-call arguments are not JSON"
        } else if source.trim().is_empty() {
            "the answer is empty"
        } else {
            "no JSON object found in the answer"
        };
        return Err(ResolveError::Invalid(what.to_owned()));
    };
    check_shape(&schema.schema, &value).map_err(ResolveError::Invalid)?;
    let used = if from_tool {
        Mechanism::Tools
    } else if found == Found::Embedded || requested == Mechanism::Tools {
        // Prose around the JSON, or a tool was forced and the model answered in text: the
        // server did not enforce the requested mechanism.
        Mechanism::Text
    } else {
        requested
    };
    Ok((Some(value), used))
}

/// The server's error message from an error body, for any of the shapes in use:
/// `{"error": {"message", "param"}}` (OpenAI, llama.cpp, Ollama /v1, DeepSeek, OpenRouter),
/// `{"type": "error", "error": {"type", "message"}}` (Anthropic), `{"object": "error",
/// "message"}` (vLLM), `{"error": "text"}` (Ollama native), `{"detail": …}` (FastAPI servers).
/// Returns the message and the offending parameter when the server named one.
pub fn error_message(body: &[u8]) -> (String, Option<String>) {
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        let err = v.get("error");
        let msg = err
            .and_then(|e| e.get("message"))
            .and_then(Value::as_str)
            .or_else(|| err.and_then(Value::as_str))
            .or_else(|| v.get("message").and_then(Value::as_str))
            .or_else(|| v.get("detail").and_then(Value::as_str))
            .map(str::to_owned)
            .or_else(|| v.get("detail").map(Value::to_string));
        let param = err
            .and_then(|e| e.get("param"))
            .or_else(|| v.get("param"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        if let Some(m) = msg {
            return (clip(&m, 500), param);
        }
    }
    let text = String::from_utf8_lossy(body);
    let t = text.trim();
    if t.is_empty() {
        ("(empty body)".to_owned(), None)
    } else {
        (clip(t, 300), None)
    }
}

/// At most `n` characters, with an ellipsis when cut.
pub(crate) fn clip(s: &str, n: usize) -> String {
    match s.char_indices().nth(n) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

/// Rough token count (~4 characters a token) for servers that report no usage.
pub(crate) fn estimate_tokens(s: &str) -> u64 {
    (s.chars().count() as u64).div_ceil(4)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> OutputSchema {
        OutputSchema::new(
            "plan",
            json!({"type": "object", "required": ["steps"], "properties": {"steps": {"type": "array"}}}),
        )
    }

    #[test]
    fn resolve_mechanisms() {
        let s = schema();
        let d = Decoded {
            text: "{\"steps\": []}".into(),
            ..Decoded::default()
        };
        assert_eq!(
            resolve(&d, Some(&s), Mechanism::JsonSchema).unwrap().1,
            Mechanism::JsonSchema
        );
        let d = Decoded {
            text: "Sure:\n```json\n{\"steps\": []}\n```".into(),
            ..Decoded::default()
        };
        assert_eq!(
            resolve(&d, Some(&s), Mechanism::JsonSchema).unwrap().1,
            Mechanism::Text
        );
        let d = Decoded {
            tool_args: Some("{\"steps\": [1]}".into()),
            ..Decoded::default()
        };
        let (v, m) = resolve(&d, Some(&s), Mechanism::Tools).unwrap();
        assert_eq!((v.unwrap(), m), (json!({"steps": [1]}), Mechanism::Tools));
        let d = Decoded {
            text: "{\"steps\": [".into(),
            finish_reason: Some("length".into()),
            ..Decoded::default()
        };
        assert_eq!(
            resolve(&d, Some(&s), Mechanism::Text),
            Err(ResolveError::OutputTruncated)
        );
        let d = Decoded {
            text: "{\"answer\": 1}".into(),
            ..Decoded::default()
        };
        assert_eq!(
            resolve(&d, Some(&s), Mechanism::Text),
            Err(ResolveError::Invalid(
                "missing required field \"steps\"".into()
            ))
        );
        let d = Decoded {
            refusal: Some("I can't help with that.".into()),
            ..Decoded::default()
        };
        assert!(matches!(
            resolve(&d, None, Mechanism::None),
            Err(ResolveError::Refused(_))
        ));
    }

    #[test]
    fn error_bodies_of_every_server() {
        let cases: [(&[u8], &str, Option<&str>); 6] = [
            (
                br#"{"error":{"message":"Invalid parameter: 'response_format' of type 'json_schema' is not supported with this model.","type":"invalid_request_error","param":"response_format","code":null}}"#,
                "Invalid parameter: 'response_format'",
                Some("response_format"),
            ),
            (
                br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
                "Overloaded",
                None,
            ),
            (
                br#"{"object":"error","message":"max_tokens is too large","type":"BadRequestError","param":null,"code":400}"#,
                "max_tokens is too large",
                None,
            ),
            (br#"{"error":"model 'x' not found"}"#, "model 'x' not found", None),
            (br#"{"detail":"Not Found"}"#, "Not Found", None),
            (b"<html>502 Bad Gateway</html>", "<html>502 Bad Gateway</html>", None),
        ];
        for (body, msg, param) in cases {
            let (m, p) = error_message(body);
            assert!(m.starts_with(msg), "{m}");
            assert_eq!(p.as_deref(), param);
        }
    }

    #[test]
    fn text_mode_puts_schema_in_the_prompt() {
        let req = ChatRequest {
            system: "You plan.".into(),
            schema: Some(schema()),
            ..ChatRequest::default()
        };
        let p = system_prompt(&req, Mechanism::Text);
        assert!(p.starts_with("You plan.\n\n") && p.contains("\"required\":[\"steps\"]"));
        assert_eq!(system_prompt(&req, Mechanism::JsonSchema), "You plan.");
        assert_eq!(clip("héllo", 2), "hé…");
        assert_eq!(estimate_tokens("12345"), 2);
    }
}
