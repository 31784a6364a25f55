//! Time slicing of streamed generations. A long generation holds one of the server's few slots
//! for as long as it runs, so calls of other clients wait behind it however fair the queue is.
//! With a provider's `time_slice_tokens` set, a streamed plain-text try that has produced that
//! many answer tokens while another client's call waits is stopped (its connection closed:
//! llama-server then cancels the generation and frees the slot), the slot goes back to the
//! scheduler, and the call queues again to resume.
//!
//! Resuming re-sends the request with the answer so far appended as a trailing assistant
//! message. llama-server renders a conversation ending in an assistant message as a prefill
//! and continues that message rather than starting a new turn, and with its prompt cache the
//! shared prefix is not recomputed; vLLM does the same when asked with
//! `continue_final_message: true`, and Anthropic's Messages API continues a trailing assistant
//! turn too (not used here: it rejects a prefill ending in whitespace). OpenAI's own API does not
//! continue such a message, which is why slicing is opt-in per provider.
//!
//! The caller sees one answer: the stream goes on where it stopped (no new
//! [`crate::StreamEvent::Started`]), and the response's text and usage are those of every slice
//! together.

use std::borrow::Cow;

use crate::types::{ChatRequest, Message, Role, Usage};

/// One call's answer so far, across the slices it was pre-empted at.
#[derive(Debug)]
pub(crate) struct Resumed<'r> {
    base: &'r ChatRequest,
    /// The call's whole answer budget.
    max_tokens: u32,
    /// Answer tokens a slice may run before it can be pre-empted; `None`: never.
    pub(crate) slice: Option<u32>,
    /// The answer so far.
    pub(crate) text: String,
    /// Answer tokens it took.
    generated: u32,
    /// Tokens the finished slices used.
    usage: Usage,
    /// Time to the first token of the first slice.
    pub(crate) first_token_ms: Option<u64>,
}

impl<'r> Resumed<'r> {
    pub(crate) fn new(base: &'r ChatRequest, max_tokens: u32, slice: Option<u32>) -> Self {
        Resumed {
            base,
            max_tokens,
            slice,
            text: String::new(),
            generated: 0,
            usage: Usage::default(),
            first_token_ms: None,
        }
    }

    /// The request for the next try: the caller's, or after a slice, the caller's with the
    /// answer so far as a trailing assistant message (extending the caller's own trailing
    /// assistant message, if it ended with one) and what is left of the answer budget.
    pub(crate) fn request(&self) -> Cow<'r, ChatRequest> {
        if self.text.is_empty() {
            return Cow::Borrowed(self.base);
        }
        let mut req = self.base.clone();
        match req.messages.last_mut() {
            Some(m) if m.role == Role::Assistant => m.content.push_str(&self.text),
            _ => req.messages.push(Message::assistant(self.text.clone())),
        }
        req.max_tokens = Some(self.max_tokens.saturating_sub(self.generated).max(1));
        Cow::Owned(req)
    }

    /// A slice ended after saying `text` in `tokens` answer tokens and using `usage`.
    pub(crate) fn step(
        &mut self,
        text: &str,
        tokens: u32,
        usage: Usage,
        first_token_ms: Option<u64>,
    ) {
        self.text.push_str(text);
        self.generated = self.generated.saturating_add(tokens);
        self.usage = self.total(usage);
        self.first_token_ms = self.first_token_ms.or(first_token_ms);
    }

    /// The tokens of every finished slice and `last`.
    pub(crate) fn total(&self, last: Usage) -> Usage {
        Usage {
            input_tokens: self.usage.input_tokens + last.input_tokens,
            output_tokens: self.usage.output_tokens + last.output_tokens,
            estimated: self.usage.estimated || last.estimated,
        }
    }
}
