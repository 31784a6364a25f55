//! Placeholders in remediation templates: `{name}` in any string of a plan (or an agent's goal)
//! is replaced by the reading's value of that name.
//!
//! Only `{identifier}` is a placeholder; any other brace is literal, so a regular expression
//! like `a{2,3}` in a plan argument stays as written. `{{` and `}}` write a literal brace
//! where one would otherwise start a placeholder. Values are substituted as text, so a filled
//! template has exactly the shape of the template: a reading can never add a step, an
//! argument or an option.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::error::TemplateError;

/// One piece of a template string.
enum Piece<'a> {
    Text(&'a str),
    Var(&'a str),
}

/// Splits `s` into literal text and placeholders.
fn pieces(s: &str) -> Vec<Piece<'_>> {
    let mut out = Vec::new();
    let bytes = s.as_bytes();
    let (mut i, mut start) = (0, 0);
    while i < bytes.len() {
        let double = bytes.get(i + 1) == Some(&bytes[i]);
        match bytes[i] {
            b'{' | b'}' if double => {
                out.push(Piece::Text(&s[start..=i]));
                i += 2;
                start = i;
            }
            b'{' => match ident_end(bytes, i + 1) {
                Some(end) if bytes.get(end) == Some(&b'}') => {
                    out.push(Piece::Text(&s[start..i]));
                    out.push(Piece::Var(&s[i + 1..end]));
                    i = end + 1;
                    start = i;
                }
                _ => i += 1,
            },
            _ => i += 1,
        }
    }
    out.push(Piece::Text(&s[start..]));
    out
}

/// The end of an identifier starting at `from` (`[A-Za-z_][A-Za-z0-9_]*`), if there is one.
fn ident_end(bytes: &[u8], from: usize) -> Option<usize> {
    let first = *bytes.get(from)?;
    if !(first.is_ascii_alphabetic() || first == b'_') {
        return None;
    }
    let len = bytes[from..]
        .iter()
        .take_while(|b| b.is_ascii_alphanumeric() || **b == b'_')
        .count();
    Some(from + len)
}

/// Checks that every placeholder in `s` is one of `known`.
pub fn check_str(s: &str, known: &BTreeSet<&str>) -> Result<(), TemplateError> {
    for p in pieces(s) {
        if let Piece::Var(name) = p {
            if !known.contains(name) {
                return Err(TemplateError::Unknown {
                    name: name.to_owned(),
                    known: known.iter().copied().collect::<Vec<_>>().join(", "),
                });
            }
        }
    }
    Ok(())
}

/// Checks every string (and object key) in a JSON value.
pub fn check_value(v: &Value, known: &BTreeSet<&str>) -> Result<(), TemplateError> {
    match v {
        Value::String(s) => check_str(s, known),
        Value::Array(a) => a.iter().try_for_each(|x| check_value(x, known)),
        Value::Object(m) => m.iter().try_for_each(|(k, x)| {
            check_str(k, known)?;
            check_value(x, known)
        }),
        _ => Ok(()),
    }
}

/// Fills the placeholders of `s` from `vars`.
pub fn fill_str(s: &str, vars: &BTreeMap<String, String>) -> Result<String, TemplateError> {
    let mut out = String::with_capacity(s.len());
    for p in pieces(s) {
        match p {
            Piece::Text(t) => out.push_str(t),
            Piece::Var(name) => match vars.get(name) {
                Some(v) => out.push_str(v),
                None => {
                    return Err(TemplateError::Unknown {
                        name: name.to_owned(),
                        known: vars.keys().cloned().collect::<Vec<_>>().join(", "),
                    });
                }
            },
        }
    }
    Ok(out)
}

/// Fills every string (and object key) of a JSON value.
pub fn fill_value(v: &Value, vars: &BTreeMap<String, String>) -> Result<Value, TemplateError> {
    Ok(match v {
        Value::String(s) => Value::String(fill_str(s, vars)?),
        Value::Array(a) => Value::Array(
            a.iter()
                .map(|x| fill_value(x, vars))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, x)| Ok((fill_str(k, vars)?, fill_value(x, vars)?)))
                .collect::<Result<_, TemplateError>>()?,
        ),
        other => other.clone(),
    })
}

/// Fills a plan template.
pub fn fill_plan(
    plan: &kernos_core::Plan,
    vars: &BTreeMap<String, String>,
) -> Result<kernos_core::Plan, TemplateError> {
    let v = serde_json::to_value(plan).map_err(|e| TemplateError::NotAPlan(e.to_string()))?;
    serde_json::from_value(fill_value(&v, vars)?)
        .map_err(|e| TemplateError::NotAPlan(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn placeholders_are_replaced_and_other_braces_stay() {
        let v = vars(&[("mount", "/srv/scratch"), ("used_pct", "93.5")]);
        assert_eq!(
            fill_str("clean {mount}/cache at {used_pct}%", &v).unwrap(),
            "clean /srv/scratch/cache at 93.5%"
        );
        assert_eq!(
            fill_str("a{2,3} {} { mount}", &v).unwrap(),
            "a{2,3} {} { mount}"
        );
        assert_eq!(
            fill_str("{{mount}} is literal", &v).unwrap(),
            "{mount} is literal"
        );
        assert_eq!(fill_str("tail {", &v).unwrap(), "tail {");
    }

    #[test]
    fn an_unknown_placeholder_is_named_with_the_known_ones() {
        let known: BTreeSet<&str> = ["mount", "value"].into_iter().collect();
        let e = check_str("rm {mnt}", &known).unwrap_err().to_string();
        assert!(e.contains("{mnt}") && e.contains("mount, value"), "{e}");
        assert!(check_str("{{mnt}}", &known).is_ok());
    }

    #[test]
    fn a_value_with_braces_or_quotes_is_substituted_as_text() {
        let v = vars(&[("path", "/x/{value}\", \"extra\": \"y")]);
        let filled = fill_value(&serde_json::json!({"args": {"path": "{path}"}}), &v).unwrap();
        assert_eq!(filled["args"]["path"], "/x/{value}\", \"extra\": \"y");
        assert_eq!(filled["args"].as_object().unwrap().len(), 1);
    }
}
