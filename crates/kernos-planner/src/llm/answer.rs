//! The answer format asked of the model, and reading an answer back into a [`Plan`].
//!
//! The format is a tagged union per action (see [`output_schema_for`]): each step is
//! `{"action": "fs.find", "args": {…that action's own arguments…}, "why": "…"}`, so a server
//! that constrains decoding to the schema cannot produce an unknown action, argument name or
//! type. Every object closes `additionalProperties`.
//!
//! Reading is lenient where that is safe, because servers without constrained decoding answer
//! in whatever shape the model likes: arguments as `{name, value}` pairs (the format before
//! the union) or as JSON text, `{"$step": 0}` references, `tool` and `action` given
//! separately, `"5"` for an integer. What matters is that the result then passes the
//! catalog's validator, the same one the offline planner's plans go through.

use kernos_core::{Plan, PlanIssue, Step, StepRef};
use kernos_llm::OutputSchema;
use kernos_tools::Registry;
use serde_json::{Map, Value, json};

/// Longest `why` kept per step.
const MAX_WHY: usize = 240;

/// The output schema for plans over the whole catalog (`agent`: with the `done` flag of agent
/// mode). See [`output_schema_for`].
pub fn output_schema(registry: &Registry, agent: bool) -> OutputSchema {
    output_schema_for(registry, &[], agent)
}

/// The output schema for plans using only `actions` (names like `fs.find`; empty, or no known
/// name among them, means the whole catalog).
///
/// Each step is a tagged union over the actions: `{"action": "fs.find", "args": {…}}` where
/// `args` is that action's own argument object, compiled from the schema the registry derives
/// from its Rust type — names, types, enums and required arguments, nothing else allowed. A
/// server that constrains decoding to the schema (llama.cpp's grammar, OpenAI's strict
/// structured outputs, Anthropic's tool input schema) then cannot produce an unknown action,
/// an unknown or misspelt argument, or a value of the wrong type. Optional arguments and the
/// `message` are left out of `required`, so a grammar lets the model skip them (fewer tokens)
/// and puts them after the required ones; strict OpenAI mode gets them back as nullable
/// (`kernos_llm::wire::strict_form`).
pub fn output_schema_for(registry: &Registry, actions: &[String], agent: bool) -> OutputSchema {
    let mut variants: Vec<Value> = Vec::new();
    for tool in registry.tools() {
        for a in &tool.actions {
            let name = format!("{}.{}", tool.name, a.name);
            if actions.is_empty() || actions.contains(&name) {
                variants.push(step_variant(&name, &a.args_schema));
            }
        }
    }
    if variants.is_empty() && !actions.is_empty() {
        return output_schema_for(registry, &[], agent);
    }
    let steps = json!({
        "type": "array",
        "items": if variants.len() == 1 { variants.remove(0) } else { json!({"anyOf": variants}) }
    });
    let mut props = Map::new();
    props.insert("steps".into(), steps);
    props.insert("message".into(), json!({"type": "string"}));
    let mut required = vec![json!("steps")];
    if agent {
        props.insert("done".into(), json!({"type": "boolean"}));
        required.insert(0, json!("done"));
    }
    let schema = json!({
        "type": "object",
        "properties": props,
        "required": required,
        "additionalProperties": false,
    });
    OutputSchema {
        name: if agent {
            "kernos_agent_turn"
        } else {
            "kernos_plan"
        }
        .into(),
        description: if agent {
            "The next steps towards the goal, or done with the answer".into()
        } else {
            "A Kernos plan: the steps that carry out the request".into()
        },
        schema,
        strict: true,
    }
}

/// One arm of the step union: this action's name as a one-value enum and its arguments.
fn step_variant(name: &str, args_schema: &Value) -> Value {
    let empty = Map::new();
    let defs = args_schema
        .get("$defs")
        .or_else(|| args_schema.get("definitions"))
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    json!({
        "type": "object",
        "properties": {
            "action": {"type": "string", "enum": [name]},
            "args": compile_object(args_schema, defs, 0),
            "why": {"type": "string"},
        },
        "required": ["action", "args"],
        "additionalProperties": false,
    })
}

/// How a step reference is written in an answer.
fn ref_schema() -> Value {
    json!({
        "type": "object",
        "properties": {"step": {"type": "integer", "minimum": 0}, "column": {"type": "string"}},
        "required": ["step", "column"],
        "additionalProperties": false,
    })
}

/// An object schema in the subset every constraining server accepts: its properties compiled,
/// its own `required`, nothing else allowed.
fn compile_object(s: &Value, defs: &Map<String, Value>, depth: usize) -> Value {
    let mut props = Map::new();
    if let Some(p) = s.get("properties").and_then(Value::as_object) {
        for (k, v) in p {
            props.insert(k.clone(), compile(v, defs, depth + 1));
        }
    }
    let required: Vec<Value> = s
        .get("required")
        .and_then(Value::as_array)
        .map(|r| {
            r.iter()
                .filter(|n| n.as_str().is_some_and(|n| props.contains_key(n)))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    json!({
        "type": "object",
        "properties": props,
        "required": required,
        "additionalProperties": false,
    })
}

/// One property schema, inlined and simplified: `$ref`s resolved (a step reference becomes
/// [`ref_schema`]), `null` alternatives dropped (an absent argument is "not given"), one-value
/// `oneOf`s of strings folded into an `enum`, documentation keywords dropped.
fn compile(p: &Value, defs: &Map<String, Value>, depth: usize) -> Value {
    if depth > 8 {
        return json!({});
    }
    if let Some(r) = p.get("$ref").and_then(Value::as_str) {
        let name = r.rsplit('/').next().unwrap_or(r);
        if name == "StepRef" {
            return ref_schema();
        }
        return defs
            .get(name)
            .map_or_else(|| json!({}), |d| compile(d, defs, depth + 1));
    }
    if let Some(e) = p.get("enum").and_then(Value::as_array) {
        let vals: Vec<Value> = e.iter().filter(|v| !v.is_null()).cloned().collect();
        return json!({"type": "string", "enum": vals});
    }
    if let Some(c) = p.get("const") {
        return json!({"type": "string", "enum": [c]});
    }
    for k in ["anyOf", "oneOf"] {
        if let Some(alts) = p.get(k).and_then(Value::as_array) {
            let alts: Vec<Value> = alts
                .iter()
                .filter(|a| a.get("type").and_then(Value::as_str) != Some("null"))
                .map(|a| compile(a, defs, depth + 1))
                .collect();
            let consts: Option<Vec<Value>> = alts
                .iter()
                .map(|a| match a.get("enum").and_then(Value::as_array) {
                    Some(e) if a.get("type") == Some(&json!("string")) => Some(e.clone()),
                    _ => None,
                })
                .collect::<Option<Vec<_>>>()
                .map(|v| v.into_iter().flatten().collect());
            return match (consts, alts.len()) {
                (Some(vals), n) if n > 0 => json!({"type": "string", "enum": vals}),
                (_, 1) => alts.into_iter().next().unwrap_or_else(|| json!({})),
                _ => json!({"anyOf": alts}),
            };
        }
    }
    let types: Vec<&str> = match p.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .filter(|t| *t != "null")
            .collect(),
        _ => Vec::new(),
    };
    let one = |t: &str| -> Value {
        match t {
            "array" => json!({
                "type": "array",
                "items": p.get("items").map_or_else(|| json!({}), |i| compile(i, defs, depth + 1)),
            }),
            "object" => compile_object(p, defs, depth),
            "integer" => match p.get("minimum").and_then(Value::as_i64) {
                Some(m) => json!({"type": "integer", "minimum": m}),
                None => json!({"type": "integer"}),
            },
            other => json!({"type": other}),
        }
    };
    match types.as_slice() {
        [] => json!({}),
        [t] => one(t),
        ts => json!({"anyOf": ts.iter().map(|t| one(t)).collect::<Vec<_>>()}),
    }
}

/// An answer read back: the plan (not yet checked against the catalog), the model's message
/// and, in agent mode, whether it is done.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// The steps, as a plan.
    pub plan: Plan,
    /// `message`, trimmed.
    pub message: String,
    /// `done` (agent mode; false when absent).
    pub done: bool,
}

/// Reads an answer. Problems of shape come back as issues with JSON pointers into the answer,
/// worded for the model to fix them.
pub fn read_answer(v: &Value, registry: &Registry) -> Result<Answer, Vec<PlanIssue>> {
    let mut issues = Vec::new();
    let issue = |issues: &mut Vec<PlanIssue>, pointer: String, message: String| {
        issues.push(PlanIssue { pointer, message });
    };
    // Some models wrap the answer ({"plan": {...}}) or answer with the bare step list.
    let obj = match v {
        Value::Object(o) if !o.contains_key("steps") && o.len() == 1 => match o.values().next() {
            Some(Value::Object(inner)) if inner.contains_key("steps") => inner.clone(),
            _ => o.clone(),
        },
        Value::Object(o) => o.clone(),
        Value::Array(a) => {
            let mut m = Map::new();
            m.insert("steps".into(), Value::Array(a.clone()));
            m
        }
        other => {
            return Err(vec![PlanIssue {
                pointer: String::new(),
                message: format!(
                    "the answer must be a JSON object with \"steps\" and \"message\", not {}",
                    kind_of(other)
                ),
            }]);
        }
    };
    let message = obj
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or("")
        .trim()
        .to_owned();
    let done = obj.get("done").and_then(Value::as_bool).unwrap_or(false);
    let raw_steps: Vec<Value> = match obj.get("steps") {
        Some(Value::Array(a)) => a.clone(),
        None | Some(Value::Null) => Vec::new(),
        Some(other) => {
            issue(
                &mut issues,
                "/steps".into(),
                format!("must be a list of steps, not {}", kind_of(other)),
            );
            Vec::new()
        }
    };
    let mut steps = Vec::with_capacity(raw_steps.len());
    for (i, s) in raw_steps.iter().enumerate() {
        let at = format!("/steps/{i}");
        let Some(s) = s.as_object() else {
            issue(
                &mut issues,
                at,
                format!("a step must be an object, not {}", kind_of(s)),
            );
            continue;
        };
        let action = s.get("action").and_then(Value::as_str).unwrap_or("").trim();
        // A tool's name may hold dots (`mcp.files.read_text_file`): the catalog splits it.
        let (tool, name) = match (
            registry
                .split_name(action)
                .or_else(|| action.split_once('.')),
            s.get("tool").and_then(Value::as_str),
        ) {
            (Some((t, a)), _) => (t.to_owned(), a.to_owned()),
            (None, Some(t)) if !action.is_empty() => (t.to_owned(), action.to_owned()),
            _ => {
                let near = if action.is_empty() {
                    String::new()
                } else {
                    format!("; closest: {}", registry.closest(action, 3).join(", "))
                };
                issue(
                    &mut issues,
                    format!("{at}/action"),
                    format!(
                        "\"action\" must be one of the listed names, like \"fs.find\" (got {action:?}{near})"
                    ),
                );
                continue;
            }
        };
        let mut step = Step::new(&tool, &name);
        match read_args(s.get("args"), &format!("{at}/args")) {
            Ok(a) => step.args = a,
            Err(mut e) => issues.append(&mut e),
        }
        match s.get("needs") {
            None | Some(Value::Null) => {}
            Some(Value::Array(n)) => {
                for (j, x) in n.iter().enumerate() {
                    match x.as_u64().and_then(|x| usize::try_from(x).ok()) {
                        Some(k) => step.needs.push(k),
                        None => issue(
                            &mut issues,
                            format!("{at}/needs/{j}"),
                            format!("must be a step index (0, 1, …), not {x}"),
                        ),
                    }
                }
                step.needs.sort_unstable();
                step.needs.dedup();
            }
            Some(other) => issue(
                &mut issues,
                format!("{at}/needs"),
                format!("must be a list of step indexes, not {}", kind_of(other)),
            ),
        }
        if let Some(a) = registry.get(&tool, &name) {
            coerce_args(&mut step.args, &a.spec().args_schema);
        }
        for (_, r) in step.refs() {
            if !step.needs.contains(&r.step) {
                step.needs.push(r.step);
            }
        }
        step.needs.sort_unstable();
        step.needs.dedup();
        step.why = s
            .get("why")
            .and_then(Value::as_str)
            .map(|w| clip_line(w, MAX_WHY))
            .filter(|w| !w.is_empty());
        steps.push(step);
    }
    if !issues.is_empty() {
        return Err(issues);
    }
    Ok(Answer {
        plan: Plan::new(steps),
        message,
        done,
    })
}

/// Reads values the way a person would where that cannot change their meaning: `"5"` for a
/// declared integer is 5, `"true"` for a boolean is true, a number for a string is its digits,
/// one string where a list of strings is declared is a list of one. Anything else is left for
/// the validator to reject.
fn coerce_args(args: &mut Map<String, Value>, args_schema: &Value) {
    let empty = Map::new();
    let defs = args_schema
        .get("$defs")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let Some(props) = args_schema.get("properties").and_then(Value::as_object) else {
        return;
    };
    for (k, v) in args.iter_mut() {
        let Some(p) = props.get(k) else { continue };
        let p = compile(p, defs, 0);
        let ty = p.get("type").and_then(Value::as_str);
        let fixed = match (ty, &*v) {
            (Some("integer"), Value::String(t)) => t.trim().parse::<i64>().ok().map(Value::from),
            (Some("boolean"), Value::String(t)) => match t.trim().to_ascii_lowercase().as_str() {
                "true" | "yes" => Some(Value::Bool(true)),
                "false" | "no" => Some(Value::Bool(false)),
                _ => None,
            },
            (Some("string"), Value::Number(n)) => Some(Value::String(n.to_string())),
            (Some("array"), Value::String(t))
                if p["items"].get("type").and_then(Value::as_str) == Some("string") =>
            {
                Some(Value::Array(vec![Value::String(t.clone())]))
            }
            _ => None,
        };
        if let Some(f) = fixed {
            *v = f;
        }
    }
}

/// Arguments as pairs, an object, or JSON text of an object.
fn read_args(v: Option<&Value>, at: &str) -> Result<Map<String, Value>, Vec<PlanIssue>> {
    let mut out = Map::new();
    let mut issues = Vec::new();
    match v {
        None | Some(Value::Null) => {}
        Some(Value::Object(o)) => {
            for (k, x) in o {
                if let Some(x) = read_value(x) {
                    out.insert(k.clone(), x);
                }
            }
        }
        Some(Value::String(text)) if text.trim().is_empty() => {}
        Some(Value::String(text)) => match serde_json::from_str::<Value>(text) {
            Ok(parsed @ (Value::Object(_) | Value::Array(_))) => {
                return read_args(Some(&parsed), at);
            }
            _ => issues.push(PlanIssue {
                pointer: at.to_owned(),
                message: "must be a list of {\"name\", \"value\"} pairs".into(),
            }),
        },
        Some(Value::Array(pairs)) => {
            for (j, p) in pairs.iter().enumerate() {
                let name = p.get("name").and_then(Value::as_str).map(str::trim);
                match (name, p.get("value")) {
                    (Some(n), Some(x)) if !n.is_empty() => {
                        if out.contains_key(n) {
                            issues.push(PlanIssue {
                                pointer: format!("{at}/{j}"),
                                message: format!("argument {n:?} is given twice"),
                            });
                        } else if let Some(x) = read_value(x) {
                            out.insert(n.to_owned(), x);
                        }
                    }
                    _ => issues.push(PlanIssue {
                        pointer: format!("{at}/{j}"),
                        message: "each argument must be {\"name\": \"…\", \"value\": …}".into(),
                    }),
                }
            }
        }
        Some(other) => issues.push(PlanIssue {
            pointer: at.to_owned(),
            message: format!(
                "must be a list of {{\"name\", \"value\"}} pairs, not {}",
                kind_of(other)
            ),
        }),
    }
    if issues.is_empty() {
        Ok(out)
    } else {
        Err(issues)
    }
}

/// A value as the catalog wants it: references in the core `{"$step", "$field"}` form; `null`
/// means "not given" (some models fill every optional argument with null).
fn read_value(v: &Value) -> Option<Value> {
    match v {
        Value::Null => None,
        Value::Object(o) => {
            let step = o
                .get("step")
                .or_else(|| o.get("$step"))
                .and_then(Value::as_u64)
                .and_then(|s| usize::try_from(s).ok());
            let field = o
                .get("column")
                .or_else(|| o.get("$field"))
                .or_else(|| o.get("field"))
                .and_then(Value::as_str);
            let only_ref_keys = o
                .keys()
                .all(|k| matches!(k.as_str(), "step" | "$step" | "column" | "$field" | "field"));
            match step {
                Some(s) if only_ref_keys => Some(StepRef::new(s, field).to_value()),
                _ => Some(v.clone()),
            }
        }
        other => Some(other.clone()),
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// One line, at most `n` characters.
pub(crate) fn clip_line(s: &str, n: usize) -> String {
    let line: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    match line.char_indices().nth(n) {
        Some((i, _)) => format!("{}…", &line[..i]),
        None => line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg() -> Registry {
        Registry::builtin()
    }

    /// Every object closed; in the strict form every property required. Returns the objects
    /// seen.
    fn walk(v: &Value, at: &str, strict: bool, n: &mut usize) {
        if let Some(o) = v.as_object() {
            if o.get("type") == Some(&json!("object")) {
                *n += 1;
                assert_eq!(o.get("additionalProperties"), Some(&json!(false)), "{at}");
                let req: Vec<&str> = o["required"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter_map(Value::as_str)
                    .collect();
                for p in o["properties"].as_object().unwrap().keys() {
                    assert!(
                        !strict || req.contains(&p.as_str()),
                        "{at}: {p} not required"
                    );
                }
            }
            for (k, x) in o {
                walk(x, &format!("{at}/{k}"), strict, n);
            }
        } else if let Some(a) = v.as_array() {
            for (i, x) in a.iter().enumerate() {
                walk(x, &format!("{at}/{i}"), strict, n);
            }
        }
    }

    #[test]
    fn schema_is_a_closed_union_of_the_actions() {
        for agent in [false, true] {
            let s = output_schema(&reg(), agent);
            assert!(s.strict);
            let mut n = 0;
            walk(&s.schema, "", false, &mut n);
            let mut m = 0;
            walk(&kernos_llm::wire::strict_form(&s.schema), "", true, &mut m);
            assert_eq!(n, m);
            let arms = s.schema["properties"]["steps"]["items"]["anyOf"]
                .as_array()
                .unwrap();
            assert_eq!(arms.len(), reg().names().count());
        }
        let s = output_schema_for(&reg(), &["fs.find".into(), "fs.delete".into()], false);
        let arms = s.schema["properties"]["steps"]["items"]["anyOf"]
            .as_array()
            .unwrap();
        assert_eq!(arms.len(), 2);
        let find = arms
            .iter()
            .find(|a| a["properties"]["action"]["enum"] == json!(["fs.find"]))
            .unwrap();
        let args = &find["properties"]["args"];
        assert_eq!(
            args["properties"]["min_size"],
            json!({"type": "integer", "minimum": 0})
        );
        assert_eq!(
            args["properties"]["type"],
            json!({"type": "string", "enum": ["file", "dir", "symlink"]})
        );
        assert_eq!(args["required"], json!([]));
        let delete = arms
            .iter()
            .find(|a| a["properties"]["action"]["enum"] == json!(["fs.delete"]))
            .unwrap();
        let path = &delete["properties"]["args"]["properties"]["path"]["anyOf"];
        assert_eq!(path.as_array().unwrap().len(), 3, "{path}");
        assert_eq!(path[0]["required"], json!(["step", "column"]));
        // Unknown names only: the whole catalog.
        let all = output_schema_for(&reg(), &["nope.nope".into()], false);
        assert_eq!(all, output_schema(&reg(), false));
    }

    #[test]
    fn numbers_and_booleans_written_as_text_are_read() {
        let r = reg();
        let a = read_answer(
            &json!({"steps": [
                {"action": "fs.largest", "args": {"path": "/var/log", "count": "5"}},
                {"action": "fs.delete", "args": {"path": {"step": 0, "column": "path"}, "recursive": "true"}},
                {"action": "pkg.install", "args": {"packages": "htop"}}
            ]}),
            &r,
        )
        .unwrap();
        assert_eq!(a.plan.steps[0].args["count"], json!(5));
        assert_eq!(a.plan.steps[1].args["recursive"], json!(true));
        assert_eq!(a.plan.steps[1].needs, [0], "a reference implies the order");
        assert!(r.validate(&a.plan).is_empty(), "{:?}", r.validate(&a.plan));
        // Not a number: left for the validator, which says so.
        let b = read_answer(
            &json!({"steps": [{"action": "fs.largest", "args": {"path": "/", "count": "five"}}]}),
            &r,
        )
        .unwrap();
        assert!(!r.validate(&b.plan).is_empty());
    }

    #[test]
    fn reads_pairs_objects_text_and_refs() {
        let r = reg();
        let a = read_answer(
            &json!({"steps": [
                {"action": "fs.find", "args": [{"name": "path", "value": "/tmp"}, {"name": "min_size", "value": 5}], "needs": [], "why": " find\n them "},
                {"action": "fs.delete", "args": [{"name": "path", "value": {"step": 0, "column": "path"}}], "needs": [0], "why": "delete"}
            ], "message": ""}),
            &r,
        )
        .unwrap();
        assert_eq!(a.plan.steps[0].args["min_size"], 5);
        assert_eq!(a.plan.steps[0].why.as_deref(), Some("find them"));
        assert_eq!(
            a.plan.steps[1].args["path"],
            json!({"$step": 0, "$field": "path"})
        );
        assert!(r.validate(&a.plan).is_empty(), "{:?}", r.validate(&a.plan));

        let b = read_answer(
            &json!({"plan": {"steps": [{"tool": "fs", "action": "largest", "args": "{\"path\": \"/var/log\", \"count\": null}"}]}}),
            &r,
        )
        .unwrap();
        assert_eq!(b.plan.steps[0].name(), "fs.largest");
        assert_eq!(b.plan.steps[0].args.len(), 1, "null means not given");
        let c = read_answer(&json!([{"action": "sys.uptime"}]), &r).unwrap();
        assert_eq!(c.plan.steps[0].name(), "sys.uptime");
    }

    #[test]
    fn shape_problems_point_into_the_answer() {
        let e = read_answer(
            &json!({"steps": [
                {"action": "find", "args": []},
                {"action": "fs.find", "args": [{"name": "path", "value": "a"}, {"name": "path", "value": "b"}], "needs": [-1]}
            ]}),
            &reg(),
        )
        .unwrap_err();
        let ptrs: Vec<&str> = e.iter().map(|i| i.pointer.as_str()).collect();
        assert_eq!(
            ptrs,
            ["/steps/0/action", "/steps/1/args/1", "/steps/1/needs/0"],
            "{e:?}"
        );
        assert!(e[0].message.contains("closest"), "{}", e[0].message);
        assert!(read_answer(&json!("no"), &reg()).is_err());
    }
}
