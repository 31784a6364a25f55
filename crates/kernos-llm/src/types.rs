//! Requests, responses and the small value types around them.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Who said a message in the conversation. The system prompt is separate
/// ([`ChatRequest::system`]) because the two APIs carry it differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The person (or the planner speaking for them, e.g. a repair request).
    User,
    /// An earlier model answer, replayed so the model can correct it.
    Assistant,
}

impl Role {
    /// The wire name, the same in both APIs.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }
}

/// One turn of the conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// Who said it.
    pub role: Role,
    /// Plain text.
    pub content: String,
}

impl Message {
    /// A user turn.
    pub fn user(content: impl Into<String>) -> Self {
        Message {
            role: Role::User,
            content: content.into(),
        }
    }

    /// An assistant turn.
    pub fn assistant(content: impl Into<String>) -> Self {
        Message {
            role: Role::Assistant,
            content: content.into(),
        }
    }
}

/// The shape the answer must have, as a JSON schema.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputSchema {
    /// A short identifier (`[a-zA-Z0-9_-]`, ≤ 64 chars): the `json_schema` name or the tool
    /// name the model is forced to call.
    pub name: String,
    /// One line telling the model what the object is (used as the tool description).
    pub description: String,
    /// The JSON schema (draft 2020-12 subset the providers accept).
    pub schema: Value,
    /// Ask for strict (constrained-decoding) adherence where the API offers it. OpenAI's strict
    /// mode requires `additionalProperties: false` and every property listed in `required`.
    pub strict: bool,
}

impl OutputSchema {
    /// A strict schema with an empty description.
    pub fn new(name: impl Into<String>, schema: Value) -> Self {
        OutputSchema {
            name: name.into(),
            description: String::new(),
            schema,
            strict: true,
        }
    }
}

/// What to ask the model.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChatRequest {
    /// The system prompt (may be empty).
    pub system: String,
    /// The conversation, oldest first; normally it starts with a user turn.
    pub messages: Vec<Message>,
    /// When set, the answer must be JSON of this shape; [`ChatResponse::json`] then holds it.
    pub schema: Option<OutputSchema>,
    /// Overrides the provider's `max_tokens`.
    pub max_tokens: Option<u32>,
    /// Sampling temperature; `None` leaves the server's default.
    pub temperature: Option<f32>,
    /// Stream the answer (SSE). Gives [`ChatResponse::first_token_ms`] and [`StreamEvent`]s.
    pub stream: bool,
    /// Texts in the prompt that were read from a credential store (e.g. `/etc/shadow`, a file
    /// under `~/.ssh`): a remote provider is sent none of them — each occurrence is replaced
    /// whole, whatever it looks like, before the pattern redaction runs (the `redact`
    /// module).
    pub sensitive: Vec<String>,
}

/// Which way the structured answer was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mechanism {
    /// No schema was asked for: plain text.
    None,
    /// Constrained output: OpenAI `response_format: json_schema`, Anthropic
    /// `output_config.format`.
    JsonSchema,
    /// A forced tool/function call whose arguments are the answer.
    Tools,
    /// JSON found in free text (fences and prose removed). Also reported when a stronger
    /// mechanism was requested but the server ignored it and answered in prose.
    Text,
}

/// Tokens used by one call, as the server reported them (or estimated when it did not).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Usage {
    /// Prompt tokens.
    pub input_tokens: u64,
    /// Completion tokens.
    pub output_tokens: u64,
    /// The server sent no usage (e.g. Ollama streaming without `include_usage`); the counts
    /// are estimated from the text at ~4 characters a token.
    pub estimated: bool,
}

/// One try against one provider, successful or not: what the caller journals for cost and
/// diagnosis. A failed try can still cost tokens (e.g. an answer that was not valid JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    /// Provider name from the config.
    pub provider: String,
    /// Model asked for.
    pub model: String,
    /// Mechanism requested in this try.
    pub mechanism: Mechanism,
    /// Wall time of the try.
    pub latency_ms: u64,
    /// Tokens used (zero when the server answered with an error).
    pub usage: Usage,
    /// Cost in US dollars from the configured prices (0 when the model has no price).
    pub cost_usd: f64,
    /// Why it failed, or `None` for the try that answered.
    pub error: Option<String>,
    /// Secrets replaced in the text this try sent (the `redact` module); 0 when the provider
    /// may see raw text.
    #[serde(default)]
    pub redactions: u32,
}

/// The answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChatResponse {
    /// The model's text (for a tool call: the arguments as JSON text).
    pub text: String,
    /// The structured result, parsed, when the request had a schema.
    pub json: Option<Value>,
    /// Tokens of the successful try.
    pub usage: Usage,
    /// Cost of the successful try in US dollars; see [`ChatResponse::total_cost_usd`] for all
    /// tries.
    pub cost_usd: f64,
    /// The model as the server echoed it (falls back to the requested one).
    pub model: String,
    /// Provider name from the config.
    pub provider: String,
    /// Wall time of the successful try.
    pub latency_ms: u64,
    /// Time to the first streamed token (streaming only).
    pub first_token_ms: Option<u64>,
    /// Normalised finish reason: `stop`, `length`, `tool_calls`, … as the server said it
    /// (Anthropic's `end_turn`/`tool_use`/`max_tokens` are passed through unchanged).
    pub finish_reason: Option<String>,
    /// How the structured result was obtained.
    pub mechanism_used: Mechanism,
    /// Every try made for this call, in order, the successful one last.
    pub attempts: Vec<Attempt>,
    /// Secrets replaced in the text sent to the provider that answered.
    pub redactions: u32,
}

impl ChatResponse {
    /// Cost of every try of this call, failed ones included.
    pub fn total_cost_usd(&self) -> f64 {
        self.attempts.iter().map(|a| a.cost_usd).sum()
    }
}

/// Where to send a call when the caller wants something other than the lane's cascade.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteOpts {
    /// Use only this provider (no fallback to others).
    pub provider: Option<String>,
    /// Use this model instead of the lane's. With `provider`, for that provider; without it, the
    /// first provider in the cascade that lists the model (in a lane or a price), else the first
    /// provider; later providers in the cascade keep their lane models.
    pub model: Option<String>,
    /// Who the call is for (an organisation, or `org/agent`): the scheduler shares each
    /// provider's slots fairly by tokens between clients. `None`: `local`.
    pub client: Option<String>,
    /// The call's priority under the `priority` discipline (higher first; ageing keeps low
    /// ones from starving). Ignored by the other disciplines. Default 0.
    pub priority: u8,
    /// How old the work this call belongs to is, lower being older: when it began in ms since
    /// the epoch, shifted left 16 bits ([`task_key`]; the top 64 bits of a ULID such as an
    /// agent's id are exactly that, plus 16 random bits). Under the `fair` discipline a
    /// client's waiting call of the oldest work goes first, so one organisation's agents
    /// finish one after another instead of all slowing down together; between clients the
    /// token counters still decide. `None`: the call's own arrival.
    pub task: Option<u64>,
}

/// The [`RouteOpts::task`] key of work that began at `ms` (since the epoch).
pub fn task_key(ms: u64) -> u64 {
    ms << 16
}

/// Progress of a streamed call, given to the callback of [`crate::Router::complete_with`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamEvent<'a> {
    /// A try started. Text received before this belongs to a try that failed: discard it.
    Started {
        /// Provider name.
        provider: &'a str,
        /// Model asked for.
        model: &'a str,
    },
    /// More answer text (for a tool call: a fragment of the arguments JSON).
    Delta(&'a str),
}
