//! Finding the JSON in a model's answer when the server did not constrain it: models wrap it in
//! ```json fences, put prose before and after it, or think aloud in `<think>` blocks first.

use serde_json::Value;

/// How the JSON was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    /// The whole answer (trimmed) was the JSON.
    Whole,
    /// It was inside a code fence, or surrounded by prose.
    Embedded,
}

/// At most this many `{`/`[` positions are tried in prose, so a long answer full of braces
/// cannot make extraction quadratic in practice.
const MAX_CANDIDATES: usize = 64;

/// Extracts the first JSON object or array from `text`. Prefers, in order: the whole text,
/// a fenced block (```json … ``` or a bare ``` fence), the first `{`/`[` in prose that starts a
/// complete value. Reasoning blocks (`<think>…</think>`) are skipped first.
pub fn extract_json(text: &str) -> Option<(Value, Found)> {
    let stripped = strip_think(text);
    let t = stripped.trim();
    if t.starts_with(['{', '[']) {
        if let Ok(v) = serde_json::from_str::<Value>(t) {
            return Some((v, Found::Whole));
        }
    }
    for block in fences(t) {
        let b = block.trim();
        if b.starts_with(['{', '[']) {
            if let Ok(v) = serde_json::from_str::<Value>(b) {
                return Some((v, Found::Embedded));
            }
        }
    }
    // Prose: parse one value from each candidate start; the streaming deserializer stops at the
    // end of the first value, so text after it does not matter.
    let mut tried = 0;
    for (i, c) in t.char_indices() {
        if c != '{' && c != '[' {
            continue;
        }
        tried += 1;
        if tried > MAX_CANDIDATES {
            break;
        }
        let mut it = serde_json::Deserializer::from_str(&t[i..]).into_iter::<Value>();
        if let Some(Ok(v)) = it.next() {
            // `[1]` in "see note [1]" is a value but not an answer; an array counts only when
            // it holds objects or is the schema's shape — callers check shape afterwards, so
            // prefer objects here.
            if v.is_object() || v.as_array().is_some_and(|a| a.iter().any(Value::is_object)) {
                return Some((v, Found::Embedded));
            }
        }
    }
    None
}

/// Removes `<think>…</think>` blocks (DeepSeek-R1, Qwen3 and others served without a
/// reasoning parser put their reasoning in the content). An unclosed block removes the rest.
fn strip_think(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains("<think>") {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("<think>") {
        out.push_str(&rest[..i]);
        match rest[i..].find("</think>") {
            Some(j) => rest = &rest[i + j + "</think>".len()..],
            None => {
                rest = "";
                break;
            }
        }
    }
    out.push_str(rest);
    std::borrow::Cow::Owned(out)
}

/// Contents of ``` fenced blocks, in order (the info string, e.g. `json`, is skipped).
fn fences(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find("```") {
        let after = &rest[open + 3..];
        let Some(nl) = after.find('\n') else { break };
        let body = &after[nl + 1..];
        match body.find("```") {
            Some(close) => {
                out.push(&body[..close]);
                rest = &body[close + 3..];
            }
            None => {
                // An unclosed fence (a stream cut short or a sloppy model): take the rest.
                out.push(body);
                break;
            }
        }
    }
    out
}

/// A light shape check of `value` against the schema's top level: its `type` and `required`
/// keys. Full validation is the caller's (the planner validates plans with its own validator);
/// this catches a model that ignored the schema and answered something else entirely.
pub fn check_shape(schema: &Value, value: &Value) -> Result<(), String> {
    match schema.get("type").and_then(Value::as_str) {
        Some("object") if !value.is_object() => {
            return Err(format!("expected a JSON object, got {}", type_name(value)));
        }
        Some("array") if !value.is_array() => {
            return Err(format!("expected a JSON array, got {}", type_name(value)));
        }
        _ => {}
    }
    if let (Some(req), Some(obj)) = (
        schema.get("required").and_then(Value::as_array),
        value.as_object(),
    ) {
        let missing: Vec<&str> = req
            .iter()
            .filter_map(Value::as_str)
            .filter(|k| !obj.contains_key(*k))
            .collect();
        if !missing.is_empty() {
            return Err(format!(
                "missing required field{} {}",
                if missing.len() == 1 { "" } else { "s" },
                missing
                    .iter()
                    .map(|k| format!("{k:?}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    Ok(())
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn whole_fenced_and_prose() {
        assert_eq!(
            extract_json(" {\"a\": 1} \n").unwrap(),
            (json!({"a": 1}), Found::Whole)
        );
        let fenced = "Here is the plan:\n```json\n{\"steps\": []}\n```\nLet me know!";
        assert_eq!(
            extract_json(fenced).unwrap(),
            (json!({"steps": []}), Found::Embedded)
        );
        let bare = "```\n[{\"x\": 2}]\n```";
        assert_eq!(extract_json(bare).unwrap().0, json!([{"x": 2}]));
        let prose = "Sure! The answer is {\"steps\": [{\"tool\": \"fs\"}]} — hope that helps {.";
        assert_eq!(
            extract_json(prose).unwrap().0,
            json!({"steps": [{"tool": "fs"}]})
        );
    }

    #[test]
    fn skips_false_starts_and_thinking() {
        let t = "Note [1] and {not json} then {\"ok\": true}";
        assert_eq!(extract_json(t).unwrap().0, json!({"ok": true}));
        let think = "<think>maybe {\"ok\": false}?</think>\n{\"ok\": true}";
        assert_eq!(
            extract_json(think).unwrap(),
            (json!({"ok": true}), Found::Whole)
        );
        assert!(extract_json("I cannot produce a plan for that.").is_none());
        assert!(extract_json("{\"cut\": [1, 2").is_none());
        // an unclosed fence still yields its complete JSON
        assert_eq!(
            extract_json("```json\n{\"a\":1}\n").unwrap().0,
            json!({"a": 1})
        );
    }

    #[test]
    fn shape_check() {
        let s = json!({"type": "object", "required": ["steps", "summary"]});
        assert!(check_shape(&s, &json!({"steps": [], "summary": ""})).is_ok());
        let e = check_shape(&s, &json!({"answer": 42})).unwrap_err();
        assert_eq!(e, "missing required fields \"steps\", \"summary\"");
        let e = check_shape(&s, &json!([1])).unwrap_err();
        assert_eq!(e, "expected a JSON object, got an array");
        assert!(check_shape(&json!({}), &json!(3)).is_ok());
    }
}
