//! Scripted answers for the fake OpenAI-compatible server ([`kernos_llm::testing`]) that the
//! real `kernos` binary is driven against: chat completions in the llama-server shape. (The
//! planner's and kernos-llm's suites test the wire formats in depth; here it only has to look
//! like a llama-server.)

use kernos_llm::testing::Reply;
use serde_json::{Value, json};

/// A chat completion whose content is `content` (1200 + 300 tokens).
pub fn completion(content: &str) -> Reply {
    Reply::json(json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1741569952,
        "model": "local-model",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1200, "completion_tokens": 300, "total_tokens": 1500}
    })
    .to_string())
}

/// One step: `(action, [(name, value)…], why)`.
pub type StepSpec<'a> = (&'a str, Vec<(&'a str, Value)>, &'a str);

/// A plan answer in the strict format, with `extra` fields (e.g. `done`).
pub fn plan(steps: &[StepSpec<'_>], extra: Value) -> Reply {
    let mut a = json!({
        "steps": steps.iter().map(|(a, args, why)| json!({
            "action": a,
            "args": args.iter().map(|(n, v)| json!({"name": n, "value": v})).collect::<Vec<_>>(),
            "needs": [],
            "why": why,
        })).collect::<Vec<_>>(),
        "message": "",
    });
    if let (Some(o), Some(e)) = (a.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            o.insert(k.clone(), v.clone());
        }
    }
    completion(&a.to_string())
}
