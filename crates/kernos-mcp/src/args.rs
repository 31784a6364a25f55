//! Checking a call's arguments against the tool's published JSON schema, before anything runs:
//! an object, every required property present, no property the schema closes out, and each
//! given property of the declared JSON type. The server checks the rest.

use serde_json::{Map, Value};

/// Why `args` do not fit `schema`, if they do not.
pub fn check(schema: &Value, args: &Value) -> Result<(), String> {
    let empty = Map::new();
    let args = match args {
        Value::Null => &empty,
        Value::Object(m) => m,
        other => return Err(format!("arguments must be an object, not {other}")),
    };
    let props = schema.get("properties").and_then(Value::as_object);
    for r in schema
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        if !args.contains_key(r) {
            return Err(format!("missing field `{r}`"));
        }
    }
    let closed = schema.get("additionalProperties") == Some(&Value::Bool(false));
    for (k, v) in args {
        let Some(p) = props.and_then(|p| p.get(k)) else {
            if closed {
                let known: Vec<&str> = props
                    .map(|p| p.keys().map(String::as_str).collect())
                    .unwrap_or_default();
                return Err(format!(
                    "unknown field `{k}`, expected one of {}",
                    known.join(", ")
                ));
            }
            continue;
        };
        let types: Vec<&str> = match p.get("type") {
            Some(Value::String(t)) => vec![t.as_str()],
            Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
            _ => continue,
        };
        if !types.iter().any(|t| is_type(v, t)) {
            return Err(format!(
                "field `{k}`: expected {}, got {v}",
                types.join(" or ")
            ));
        }
    }
    Ok(())
}

/// Whether `v` is of JSON schema type `t`.
pub fn is_type(v: &Value, t: &str) -> bool {
    match t {
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        "array" => v.is_array(),
        "object" => v.is_object(),
        "null" => v.is_null(),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn arguments_are_checked_against_the_schema() {
        let s = json!({
            "type": "object",
            "properties": {"path": {"type": "string"}, "head": {"type": "integer"}},
            "required": ["path"],
            "additionalProperties": false
        });
        assert!(check(&s, &json!({"path": "/x", "head": 3})).is_ok());
        assert_eq!(check(&s, &json!({})).unwrap_err(), "missing field `path`");
        assert!(
            check(&s, &json!({"path": 1}))
                .unwrap_err()
                .contains("expected string")
        );
        assert!(
            check(&s, &json!({"path": "/x", "mode": 1}))
                .unwrap_err()
                .contains("unknown field `mode`")
        );
        assert!(check(&s, &json!([1])).is_err());
        assert!(check(&json!({"type": "object"}), &Value::Null).is_ok());
    }
}
