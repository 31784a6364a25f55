//! The answer format asked of the model, and reading an answer back into a [`Plan`].
//!
//! The format is strict-JSON-schema compatible (OpenAI `strict: true`, Anthropic structured
//! outputs, llama.cpp / Ollama grammars): every object closes `additionalProperties` and lists
//! every property as required. Because strict mode forbids free-form objects, a step's
//! arguments are a list of `{name, value}` pairs whose values are a string, an integer, a
//! boolean, a list of strings or a reference to an earlier step's rows — every argument type
//! of the catalog is one of those. The action name is an `enum` of the catalog, so a
//! constrained server cannot even spell an action that does not exist.
//!
//! Reading is lenient, because servers without constrained decoding answer in whatever shape
//! the model likes: arguments as a plain object or as JSON text, `{"$step": 0}` references,
//! `tool` and `action` given separately. What matters is that the result then passes the
//! catalog's validator, the same one the offline planner's plans go through.

use kernos_core::{Plan, PlanIssue, Step, StepRef};
use kernos_llm::OutputSchema;
use kernos_tools::Registry;
use serde_json::{Map, Value, json};

/// Longest `why` kept per step.
const MAX_WHY: usize = 240;

/// The output schema for plans (`agent`: with the `done` flag of agent mode).
pub fn output_schema(registry: &Registry, agent: bool) -> OutputSchema {
    let actions: Vec<Value> = registry.names().map(Value::from).collect();
    let mut props = Map::new();
    props.insert(
        "steps".into(),
        json!({"type": "array", "items": {"$ref": "#/$defs/step"}}),
    );
    props.insert(
        "message".into(),
        json!({
            "type": "string",
            "description": if agent {
                "When done: the answer to the user. Otherwise what you are checking (may be empty)."
            } else {
                "Empty when there are steps; otherwise one sentence saying why no plan fits."
            }
        }),
    );
    let mut required = vec![json!("steps"), json!("message")];
    if agent {
        props.insert(
            "done".into(),
            json!({"type": "boolean", "description": "True when the goal is reached or cannot be; then steps is empty."}),
        );
        required.push(json!("done"));
    }
    let schema = json!({
        "type": "object",
        "properties": props,
        "required": required,
        "additionalProperties": false,
        "$defs": {
            "step": {
                "type": "object",
                "properties": {
                    "action": {"type": "string", "enum": actions},
                    "args": {"type": "array", "items": {"$ref": "#/$defs/arg"}},
                    "needs": {"type": "array", "items": {"type": "integer"}},
                    "why": {"type": "string"}
                },
                "required": ["action", "args", "needs", "why"],
                "additionalProperties": false
            },
            "arg": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "value": {"anyOf": [
                        {"type": "string"},
                        {"type": "integer"},
                        {"type": "boolean"},
                        {"type": "array", "items": {"type": "string"}},
                        {"$ref": "#/$defs/ref"}
                    ]}
                },
                "required": ["name", "value"],
                "additionalProperties": false
            },
            "ref": {
                "type": "object",
                "description": "The rows of an earlier step: its index and the column to use.",
                "properties": {
                    "step": {"type": "integer"},
                    "column": {"type": "string"}
                },
                "required": ["step", "column"],
                "additionalProperties": false
            }
        }
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
        let (tool, name) = match (
            action.split_once('.'),
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

    #[test]
    fn schema_is_strict_everywhere() {
        fn walk(v: &Value, at: &str) {
            if let Some(o) = v.as_object() {
                if o.get("type") == Some(&json!("object")) {
                    assert_eq!(o.get("additionalProperties"), Some(&json!(false)), "{at}");
                    let props: Vec<&String> = o["properties"].as_object().unwrap().keys().collect();
                    let req: Vec<&str> = o["required"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .filter_map(Value::as_str)
                        .collect();
                    for p in props {
                        assert!(req.contains(&p.as_str()), "{at}: {p} not required");
                    }
                }
                for (k, x) in o {
                    walk(x, &format!("{at}/{k}"));
                }
            } else if let Some(a) = v.as_array() {
                for (i, x) in a.iter().enumerate() {
                    walk(x, &format!("{at}/{i}"));
                }
            }
        }
        for agent in [false, true] {
            let s = output_schema(&reg(), agent);
            assert!(s.strict);
            walk(&s.schema, "");
            let names = s.schema["$defs"]["step"]["properties"]["action"]["enum"]
                .as_array()
                .unwrap();
            assert!(names.contains(&json!("fs.find")));
        }
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
