//! Requests that name a catalog action directly, with `key=value` arguments:
//! `fs.read path=/etc/hostname`, `mcp.files.read_text_file path=/srv/a.txt head=3`.
//!
//! The way to reach any action the vocabulary has no words for — an external MCP server's
//! tools above all — without a model. One step; each value is typed from the action's JSON
//! schema (integers, numbers, booleans, strings; arrays and objects written as JSON), so the
//! plan passes the same validator as any other. Values may be quoted (`"a b"` or `'a b'`).

use kernos_core::{Plan, Step};
use kernos_tools::Registry;
use serde_json::{Map, Value};

/// The plan for `request` when its first word is a `tool.action` of `catalog`: `None` when it
/// is not one, `Some(Err(why))` when the arguments cannot be read.
pub fn plan(request: &str, catalog: &Registry) -> Option<Result<Plan, String>> {
    let request = request.trim();
    let (name, rest) = request
        .split_once(char::is_whitespace)
        .unwrap_or((request, ""));
    let (full, action) = catalog.get_name(name)?;
    let (tool, action_name) = catalog.split_name(full)?;
    let schema = &action.spec().args_schema;
    Some(arguments(rest, schema).map(|args| {
        let mut step = Step::new(tool, action_name);
        step.args = args;
        Plan::new(vec![step])
    }))
}

/// `key=value …` typed by `schema`'s properties.
fn arguments(text: &str, schema: &Value) -> Result<Map<String, Value>, String> {
    let mut args = Map::new();
    for word in words(text)? {
        let Some((key, raw)) = word.split_once('=') else {
            return Err(format!(
                "\u{201c}{word}\u{201d} is not an argument: write key=value"
            ));
        };
        if key.is_empty() {
            return Err(format!("\u{201c}{word}\u{201d} has no argument name"));
        }
        let kind = schema
            .get("properties")
            .and_then(|p| p.get(key))
            .map(json_type)
            .unwrap_or_default();
        let value = typed(key, raw, &kind)?;
        if args.insert(key.to_owned(), value).is_some() {
            return Err(format!("argument {key} is given twice"));
        }
    }
    Ok(args)
}

/// The declared JSON type of a property (the first non-null one of a list).
fn json_type(prop: &Value) -> String {
    match prop.get("type") {
        Some(Value::String(t)) => t.clone(),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or("")
            .to_owned(),
        _ => String::new(),
    }
}

/// `raw` as a value of JSON type `kind` (unknown: JSON if it parses, else the text).
fn typed(key: &str, raw: &str, kind: &str) -> Result<Value, String> {
    let bad = |what: &str| format!("argument {key}: {raw:?} is not {what}");
    match kind {
        "string" => Ok(Value::String(raw.to_owned())),
        "integer" => raw
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| bad("an integer")),
        "number" => match raw.parse::<i64>() {
            Ok(i) => Ok(Value::from(i)),
            Err(_) => raw
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map(Value::Number)
                .ok_or_else(|| bad("a number")),
        },
        "boolean" => match raw {
            "true" | "yes" => Ok(Value::Bool(true)),
            "false" | "no" => Ok(Value::Bool(false)),
            _ => Err(bad("true or false")),
        },
        "array" | "object" => serde_json::from_str::<Value>(raw)
            .ok()
            .filter(|v| v.is_array() == (kind == "array") && (v.is_array() || v.is_object()))
            .ok_or_else(|| bad(&format!("a JSON {kind}"))),
        _ => Ok(serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_owned()))),
    }
}

/// Splits on whitespace, keeping quoted words and values whole (those quotes removed).
fn words(text: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut started = false;
    for c in text.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => cur.push(c),
            // A quote opens only a whole word or a whole value (`s="a b"`), so JSON values
            // keep theirs (`o={"k":1}`).
            None if (c == '"' || c == '\'') && (cur.is_empty() || cur.ends_with('=')) => {
                quote = Some(c);
                started = true;
            }
            None if c.is_whitespace() => {
                if started {
                    out.push(std::mem::take(&mut cur));
                    started = false;
                }
            }
            None => {
                cur.push(c);
                started = true;
            }
        }
    }
    if quote.is_some() {
        return Err("a quote is not closed".into());
    }
    if started {
        out.push(cur);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn catalog() -> Registry {
        Registry::builtin()
    }

    #[test]
    fn a_builtin_action_by_name_is_one_step_with_typed_arguments() {
        let p = plan("fs.largest path=/var/log count=3", &catalog())
            .unwrap()
            .unwrap();
        assert_eq!(p.steps.len(), 1);
        assert_eq!(p.steps[0].name(), "fs.largest");
        assert_eq!(p.steps[0].args["path"], "/var/log");
        assert_eq!(p.steps[0].args["count"], 3);
        assert!(
            catalog().validate(&p).is_empty(),
            "{:?}",
            catalog().validate(&p)
        );
    }

    #[test]
    fn other_requests_are_not_by_name() {
        assert!(plan("show the largest files", &catalog()).is_none());
        assert!(plan("fs.nothing path=/x", &catalog()).is_none());
    }

    #[test]
    fn values_are_typed_from_the_schema_and_quotes_keep_spaces() {
        let schema = json!({"properties": {
            "n": {"type": "integer"}, "x": {"type": "number"}, "b": {"type": "boolean"},
            "s": {"type": "string"}, "a": {"type": "array"}, "o": {"type": ["object", "null"]}
        }});
        let a = arguments(
            r#"n=2 x=1.5 b=true s="a b" a='["p","q"]' o={"k":1} free=7"#,
            &schema,
        )
        .unwrap();
        assert_eq!(
            Value::Object(a),
            json!({"n": 2, "x": 1.5, "b": true, "s": "a b", "a": ["p", "q"], "o": {"k": 1}, "free": 7})
        );
        assert_eq!(arguments("s=12", &schema).unwrap()["s"], "12");
        for (text, want) in [
            ("n=two", "not an integer"),
            ("b=maybe", "true or false"),
            ("a={}", "JSON array"),
            ("loose", "key=value"),
            ("s=\"open", "not closed"),
            ("n=1 n=2", "twice"),
        ] {
            let e = arguments(text, &schema).unwrap_err();
            assert!(e.contains(want), "{text}: {e}");
        }
    }
}
