//! Taught skills: a plan turned into a template (`kernos skill save`), a template filled with
//! arguments, and the requests the offline planner reads as a skill — "NAME with ARGS" and the
//! skill's own phrasings.

use kernos_core::{Plan, Step};
use serde_json::{Map, Value};

use crate::bundle::{Body, Bundle, Kind, Param, placeholders};
use crate::error::{Result, SkillError};

/// The steps of `plan` with each parameter's literal value replaced by `{name}`, and the
/// parameters with the JSON type of their value. Every literal must occur in the plan.
pub fn from_plan(plan: &Plan, params: &[(String, String)]) -> Result<(Vec<Step>, Vec<Param>)> {
    let mut steps = plan.steps.clone();
    let mut out = Vec::new();
    // Longest literal first: `/a/b` must not be eaten by a parameter whose value is `/a`.
    let mut order: Vec<&(String, String)> = params.iter().collect();
    order.sort_by_key(|(_, v)| std::cmp::Reverse(v.len()));
    for (name, literal) in order {
        if literal.is_empty() {
            return Err(SkillError::Args(format!(
                "parameter {name} has an empty value"
            )));
        }
        let mut kind = "string";
        let mut found = false;
        for s in &mut steps {
            for v in s.args.values_mut() {
                match v {
                    Value::String(t) if t.contains(literal.as_str()) => {
                        *t = t.replace(literal.as_str(), &format!("{{{name}}}"));
                        found = true;
                    }
                    Value::Number(n) if n.to_string() == *literal => {
                        kind = if n.is_f64() { "number" } else { "integer" };
                        *v = Value::String(format!("{{{name}}}"));
                        found = true;
                    }
                    Value::Bool(b) if b.to_string() == *literal => {
                        *v = Value::String(format!("{{{name}}}"));
                        kind = "boolean";
                        found = true;
                    }
                    _ => {}
                }
            }
        }
        if !found {
            return Err(SkillError::Args(format!(
                "{literal:?} (for parameter {name}) is not an argument of the plan; its arguments are: {}",
                literals(plan).join(", ")
            )));
        }
        out.push(Param {
            name: name.clone(),
            kind: kind.into(),
            description: format!("was {literal:?} when taught"),
        });
    }
    // Parameters in the order the user named them.
    out.sort_by_key(|p| params.iter().position(|(n, _)| *n == p.name));
    Ok((steps, out))
}

/// Every argument value of the plan, for the "not found" message.
fn literals(plan: &Plan) -> Vec<String> {
    plan.steps
        .iter()
        .flat_map(|s| s.args.values())
        .map(|v| match v {
            Value::String(s) => format!("{s:?}"),
            other => other.to_string(),
        })
        .collect()
}

/// The template's steps with `args` put in: a value that is exactly `{p}` becomes the typed
/// argument, `{p}` inside a longer string its text.
pub fn instantiate(bundle: &Bundle, args: &Map<String, Value>) -> Result<Plan> {
    let Body::Template { steps } = &bundle.body else {
        return Err(SkillError::State(format!(
            "{} is a generated skill, not a template",
            bundle.name()
        )));
    };
    let m = &bundle.manifest;
    for p in &m.params {
        if !args.contains_key(&p.name) {
            return Err(SkillError::Args(format!(
                "{} needs {}: say e.g. \u{201c}{} with {}=…\u{201d}",
                m.name, p.name, m.name, p.name
            )));
        }
    }
    if let Some(k) = args
        .keys()
        .find(|k| !m.params.iter().any(|p| &p.name == *k))
    {
        return Err(SkillError::Args(format!(
            "{} has no parameter {k}; it has: {}",
            m.name,
            m.params
                .iter()
                .map(|p| p.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let mut out = Vec::new();
    for s in steps {
        let mut step = s.clone();
        for v in step.args.values_mut() {
            if let Value::String(t) = v {
                *v = fill(t, args);
            }
        }
        step.why = Some(format!("skill {} v{}", m.name, m.version));
        out.push(step);
    }
    Ok(Plan::new(out))
}

/// `text` with its placeholders filled.
pub fn fill(text: &str, args: &Map<String, Value>) -> Value {
    let slots = placeholders(text);
    if slots.len() == 1 && text == format!("{{{}}}", slots[0]) {
        if let Some(v) = args.get(&slots[0]) {
            return v.clone();
        }
    }
    let mut t = text.to_owned();
    for s in slots {
        if let Some(v) = args.get(&s) {
            let as_text = match v {
                Value::String(x) => x.clone(),
                other => other.to_string(),
            };
            t = t.replace(&format!("{{{s}}}"), &as_text);
        }
    }
    Value::String(t)
}

/// The value `raw` typed as parameter `p` says.
fn typed(p: &Param, raw: &str) -> Result<Value> {
    let bad = |what: &str| SkillError::Args(format!("{}: {raw:?} is not {what}", p.name));
    Ok(match p.kind.as_str() {
        "integer" => Value::from(raw.parse::<i64>().map_err(|_| bad("an integer"))?),
        "number" => raw
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .ok_or_else(|| bad("a number"))?,
        "boolean" => match raw {
            "true" | "yes" => Value::Bool(true),
            "false" | "no" => Value::Bool(false),
            _ => return Err(bad("true or false")),
        },
        _ => Value::String(raw.to_owned()),
    })
}

/// Words of a request, quoted text kept whole (quotes removed), and whether each was quoted.
fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut started = false;
    for c in text.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => cur.push(c),
            None if (c == '"' || c == '\'' || c == '\u{201c}') && cur.is_empty() => {
                quote = Some(if c == '\u{201c}' { '\u{201d}' } else { c });
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
    if started {
        out.push(cur);
    }
    out
}

/// A word compared loosely: case and trailing punctuation do not matter.
fn same(a: &str, b: &str) -> bool {
    let t = |s: &str| {
        s.trim_end_matches(['.', ',', '!', '?', ';', ':'])
            .to_lowercase()
    };
    t(a) == t(b)
}

/// What a request means as one of these installed taught skills: `None` when it names none
/// of them, `Some(Err)` when it does but its arguments do not fit (the message says how to
/// say it). "NAME with p=v …", "NAME p=v", "NAME with VALUE" (one parameter), or one of the
/// skill's phrasings with its `{slots}` filled (phrasings first: "stash a.txt in /srv"
/// is a phrasing even though it starts with the name).
pub fn plan_request(skills: &[Bundle], request: &str) -> Option<Result<Plan>> {
    // A sentence's final stop is not part of its last value.
    let mut w = words(request.trim().trim_end_matches(['.', '!', '?']));
    // Politeness around the request changes nothing.
    if w.first().is_some_and(|x| same(x, "please")) {
        w.remove(0);
    }
    if w.last().is_some_and(|x| same(x, "please")) {
        w.pop();
    }
    if w.is_empty() {
        return None;
    }
    for b in skills.iter().filter(|b| b.manifest.kind == Kind::Taught) {
        for phrasing in &b.manifest.phrasings {
            if let Some(raw) = match_phrasing(phrasing, &w) {
                let args = raw
                    .into_iter()
                    .map(|(k, v)| {
                        let p = b.manifest.params.iter().find(|p| p.name == k);
                        match p {
                            Some(p) => typed(p, &v).map(|v| (k, v)),
                            None => Ok((k, Value::String(v))),
                        }
                    })
                    .collect::<Result<Map<String, Value>>>();
                return Some(args.and_then(|a| instantiate(b, &a)));
            }
        }
    }
    for b in skills.iter().filter(|b| b.manifest.kind == Kind::Taught) {
        if let Some(args) = by_name(b, &w) {
            return Some(args.and_then(|a| instantiate(b, &a)));
        }
    }
    None
}

/// "NAME [with] ARGS": `None` when the first word is not the skill's name.
fn by_name(b: &Bundle, w: &[String]) -> Option<Result<Map<String, Value>>> {
    let m = &b.manifest;
    if !same(&w[0], &m.name) {
        return None;
    }
    let mut rest = &w[1..];
    if rest.first().is_some_and(|x| same(x, "with")) {
        rest = &rest[1..];
    }
    let mut args = Map::new();
    let mut loose = Vec::new();
    for word in rest {
        let word = word.trim_end_matches(',');
        match word.split_once('=') {
            Some((k, v)) if m.params.iter().any(|p| p.name == k) => {
                let p = m.params.iter().find(|p| p.name == k)?;
                match typed(p, v) {
                    Ok(v) => {
                        args.insert(k.to_owned(), v);
                    }
                    Err(e) => return Some(Err(e)),
                }
            }
            _ if !same(word, "and") => loose.push(word.to_owned()),
            _ => {}
        }
    }
    // Words without `name=`: the parameters not given yet, in order.
    let missing: Vec<&Param> = m
        .params
        .iter()
        .filter(|p| !args.contains_key(&p.name))
        .collect();
    if loose.len() > missing.len() {
        return Some(Err(SkillError::Args(format!(
            "{} takes {}; \u{201c}{}\u{201d} is more than that",
            m.name,
            m.params
                .iter()
                .map(|p| p.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            loose.join(" ")
        ))));
    }
    for (p, v) in missing.iter().zip(loose) {
        match typed(p, &v) {
            Ok(v) => {
                args.insert(p.name.clone(), v);
            }
            Err(e) => return Some(Err(e)),
        }
    }
    Some(Ok(args))
}

/// Matches the request's words against a phrasing with `{slot}`s: literal words loosely
/// equal, each slot one or more words (as few as let the rest match).
fn match_phrasing(phrasing: &str, w: &[String]) -> Option<Vec<(String, String)>> {
    let pattern = words(phrasing);
    let mut out = Vec::new();
    go(&pattern, w, &mut out).then_some(out)
}

fn go(pattern: &[String], w: &[String], out: &mut Vec<(String, String)>) -> bool {
    let Some(first) = pattern.first() else {
        return w.is_empty();
    };
    let slot = placeholders(first);
    if slot.len() == 1 && *first == format!("{{{}}}", slot[0]) {
        for n in 1..=w.len() {
            out.push((slot[0].clone(), w[..n].join(" ")));
            if go(&pattern[1..], &w[n..], out) {
                return true;
            }
            out.pop();
        }
        return false;
    }
    match w.first() {
        Some(x) if same(x, first) => go(&pattern[1..], &w[1..], out),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::Manifest;
    use serde_json::json;

    fn plan() -> Plan {
        let mut a = Step::new("fs", "mkdir");
        a.args.insert("path".into(), json!("/tmp/w/backup"));
        let mut b = Step::new("fs", "copy");
        b.args.insert("source".into(), json!("/tmp/w/notes.txt"));
        b.args
            .insert("dest".into(), json!("/tmp/w/backup/notes.txt"));
        Plan::new(vec![a, b])
    }

    fn skill() -> Bundle {
        let (steps, params) = from_plan(
            &plan(),
            &[
                ("dir".into(), "/tmp/w".into()),
                ("file".into(), "notes.txt".into()),
            ],
        )
        .unwrap();
        Bundle {
            manifest: Manifest {
                name: "stash".into(),
                version: 1,
                summary: "copy a file into backup/".into(),
                kind: Kind::Taught,
                params,
                phrasings: vec![
                    "stash {file} in {dir}".into(),
                    "keep a copy of {file} from {dir}".into(),
                ],
                effects: vec![],
                read: vec![],
                write: vec![],
                network: vec![],
                reversible: true,
                language: None,
                tests: vec![],
            },
            body: Body::Template { steps },
        }
    }

    #[test]
    fn a_plan_becomes_a_template_and_back() {
        let b = skill();
        let Body::Template { steps } = &b.body else {
            unreachable!()
        };
        assert_eq!(steps[1].args["dest"], "{dir}/backup/{file}");
        let mut args = Map::new();
        args.insert("dir".into(), json!("/srv/x"));
        args.insert("file".into(), json!("a.txt"));
        let p = instantiate(&b, &args).unwrap();
        assert_eq!(p.steps[1].args["source"], "/srv/x/a.txt");
        assert_eq!(p.steps[0].args["path"], "/srv/x/backup");
        let e = from_plan(&plan(), &[("x".into(), "/nowhere".into())]).unwrap_err();
        assert!(e.to_string().contains("/tmp/w/notes.txt"), "{e}");
    }

    #[test]
    fn requests_by_name_and_by_phrasing() {
        let skills = vec![skill()];
        for r in [
            "stash with dir=/srv/x file=a.txt",
            "stash file=a.txt dir=/srv/x",
            "stash with /srv/x a.txt",
            "please stash a.txt in /srv/x",
            "Keep a copy of a.txt from /srv/x.",
            "stash \"a.txt\" in '/srv/x'",
        ] {
            let p = plan_request(&skills, r)
                .unwrap_or_else(|| panic!("{r}: not recognised"))
                .unwrap_or_else(|e| panic!("{r}: {e}"));
            assert_eq!(p.steps[1].args["source"], "/srv/x/a.txt", "{r}");
        }
        assert!(plan_request(&skills, "show the largest files").is_none());
        let e = plan_request(&skills, "stash with dir=/x")
            .unwrap()
            .unwrap_err();
        assert!(e.to_string().contains("needs file"), "{e}");
    }
}
