//! Canonical JSON: every object's keys sorted, no insignificant whitespace. What is hashed
//! must give the same bytes however a file was laid out and whatever map order serde_json
//! was built with (a skill bundle's attestation, an MCP server's pinned tool list).

use serde_json::Value;

/// `v` as canonical JSON text.
pub fn canonical_json(v: &Value) -> String {
    let mut out = String::new();
    write(v, &mut out);
    out
}

// Objects are written key by key in sorted order by hand: serde_json's own map order depends
// on its `preserve_order` feature, which any crate in the build may turn on.
fn write(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write(&m[k], out);
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write(x, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_order_and_layout_do_not_change_the_text() {
        let a: Value =
            serde_json::from_str(r#"{"b": [1, {"d": 2, "c": "x"}], "a": null}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"a":null,"b":[1,{"c":"x","d":2}]}"#).unwrap();
        assert_eq!(canonical_json(&a), canonical_json(&b));
        assert_eq!(canonical_json(&a), r#"{"a":null,"b":[1,{"c":"x","d":2}]}"#);
    }
}
