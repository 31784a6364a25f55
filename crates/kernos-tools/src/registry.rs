//! The tool registry: every action, its published spec, and plan validation.

use std::collections::BTreeMap;

use kernos_core::{
    ActionSpec, Column, ColumnKind, Effect, EffectKind, Plan, PlanIssue, Reversibility, ToolSpec,
};
use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::ctx::Ctx;
use crate::error::{Result, ToolError};
use crate::output::{Change, Output};
use crate::undo::Recorder;

/// The fixed description of an action (everything but its argument schema, which comes from
/// its `Args` type).
#[derive(Debug, Clone, Copy)]
pub struct Meta {
    /// Tool name, e.g. `fs`.
    pub tool: &'static str,
    /// Action name, e.g. `largest`.
    pub name: &'static str,
    /// One line saying what it does.
    pub summary: &'static str,
    /// Effect classes it may have.
    pub effects: &'static [EffectKind],
    /// Whether the engine can undo it.
    pub reversibility: Reversibility,
    /// Columns of its output rows.
    pub output: &'static [(&'static str, ColumnKind)],
}

/// One action, with typed arguments.
///
/// The contract: `effects` names every path, host, process, package or service the action
/// will touch for these arguments (policy and the sandbox trust it); `dry_run` lists exactly
/// the [`Change`]s `execute` would make now; `execute` calls the [`Recorder`] before each change
/// and returns those same changes in [`Output::changes`].
pub trait Action: Send + Sync + 'static {
    /// Argument type; its JSON schema is the action's published schema.
    type Args: DeserializeOwned + Serialize + JsonSchema;

    /// The fixed description.
    fn meta(&self) -> Meta;

    /// Concrete effects for these arguments.
    fn effects(&self, args: &Self::Args, ctx: &Ctx<'_>) -> Result<Vec<Effect>>;

    /// The changes `execute` would make, without making them. Reads change nothing.
    fn dry_run(&self, _args: &Self::Args, _ctx: &Ctx<'_>) -> Result<Vec<Change>> {
        Ok(Vec::new())
    }

    /// Does it.
    fn execute(&self, args: &Self::Args, ctx: &Ctx<'_>, undo: &mut Recorder<'_>) -> Result<Output>;
}

/// An action with its arguments as JSON: what the registry stores.
pub trait DynAction: Send + Sync {
    /// The published spec.
    fn spec(&self) -> &ActionSpec;
    /// Checks arguments against the action's type; the error names the problem.
    fn check_args(&self, args: &Value) -> std::result::Result<(), String>;
    /// See [`Action::effects`].
    fn effects(&self, args: &Value, ctx: &Ctx<'_>) -> Result<Vec<Effect>>;
    /// See [`Action::dry_run`].
    fn dry_run(&self, args: &Value, ctx: &Ctx<'_>) -> Result<Vec<Change>>;
    /// See [`Action::execute`].
    fn execute(&self, args: &Value, ctx: &Ctx<'_>, undo: &mut Recorder<'_>) -> Result<Output>;
    /// Events this action asks the engine to journal after one of its steps ran, as
    /// `(kind, payload)`: something learned while running that the record must keep (an
    /// external MCP server found changed since it was trusted). A confined step cannot write
    /// the journal itself; the engine appends these to the step's action, whichever front
    /// end asked. Each notice is handed out once. Built-in actions have none.
    fn take_notices(&self) -> Vec<(String, Value)> {
        Vec::new()
    }
}

struct Erased<A: Action> {
    action: A,
    /// Built on first use: its argument schema is generated from `A::Args` (schemars), which
    /// for every action of the catalog was a measurable part of each start (a CLI request,
    /// the daemon, a Kernos OS boot), while a request looks at a few actions.
    spec: std::sync::OnceLock<ActionSpec>,
}

impl<A: Action> Erased<A> {
    fn spec_ref(&self) -> &ActionSpec {
        self.spec.get_or_init(|| {
            let m = self.action.meta();
            ActionSpec {
                name: m.name.to_owned(),
                summary: m.summary.to_owned(),
                args_schema: serde_json::to_value(schemars::schema_for!(A::Args))
                    .unwrap_or(Value::Null),
                effects: m.effects.to_vec(),
                reversibility: m.reversibility,
                output: m.output.iter().map(|(n, k)| Column::new(n, *k)).collect(),
                risk_floor: None,
            }
        })
    }
}

fn parse<T: DeserializeOwned>(args: &Value) -> Result<T> {
    let v = if args.is_null() {
        Value::Object(Default::default())
    } else {
        args.clone()
    };
    serde_json::from_value(v).map_err(|e| ToolError::InvalidArgs(e.to_string()))
}

impl<A: Action> DynAction for Erased<A> {
    fn spec(&self) -> &ActionSpec {
        self.spec_ref()
    }

    fn check_args(&self, args: &Value) -> std::result::Result<(), String> {
        parse::<A::Args>(args).map(|_| ()).map_err(|e| match e {
            ToolError::InvalidArgs(m) => m,
            other => other.to_string(),
        })
    }

    fn effects(&self, args: &Value, ctx: &Ctx<'_>) -> Result<Vec<Effect>> {
        self.action.effects(&parse(args)?, ctx)
    }

    fn dry_run(&self, args: &Value, ctx: &Ctx<'_>) -> Result<Vec<Change>> {
        self.action.dry_run(&parse(args)?, ctx)
    }

    fn execute(&self, args: &Value, ctx: &Ctx<'_>, undo: &mut Recorder<'_>) -> Result<Output> {
        let mut out = self.action.execute(&parse(args)?, ctx, undo)?;
        if out.columns.is_empty() && !out.rows.is_empty() {
            out.columns = self.spec_ref().output.clone();
        }
        Ok(out)
    }
}

/// One-line summaries of the tools themselves.
const TOOL_SUMMARIES: &[(&str, &str)] = &[
    (
        "fs",
        "Files and directories: find, read, search, write, copy, move, delete, archive",
    ),
    (
        "sys",
        "The machine: OS, kernel, disks, memory, CPU, uptime, users",
    ),
    ("proc", "Running processes: list, find, signal"),
    (
        "svc",
        "System services (systemd): status, start, stop, enable, logs",
    ),
    (
        "pkg",
        "System packages (apt, dnf, pacman): search, install, remove",
    ),
    (
        "net",
        "Network: interfaces, ports, connections, DNS, HTTP, ping",
    ),
    ("logs", "System logs: errors, tail"),
    ("git", "Git repositories: status, log, diff, branches"),
    ("shell", "Run a command line, confined by the sandbox"),
];

/// All actions, by `tool.action`. Actions are shared (`Arc`), so [`Registry::extended`] can
/// copy a catalog cheaply to add an organisation's own actions to it.
pub struct Registry {
    actions: BTreeMap<String, std::sync::Arc<dyn DynAction>>,
    /// Tools registered at run time (an external MCP server is `mcp.<server>`), with their
    /// summaries, listed after the built-in ones in registration order.
    dynamic_tools: Vec<(String, String)>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.actions.keys()).finish()
    }
}

impl Default for Registry {
    fn default() -> Self {
        Self::builtin()
    }
}

impl Registry {
    /// A registry with no actions.
    pub fn empty() -> Self {
        Registry {
            actions: BTreeMap::new(),
            dynamic_tools: Vec::new(),
        }
    }

    /// Adds an action (replacing one with the same name).
    pub fn register<A: Action>(&mut self, action: A) {
        let m = action.meta();
        self.actions.insert(
            format!("{}.{}", m.tool, m.name),
            std::sync::Arc::new(Erased {
                action,
                spec: std::sync::OnceLock::new(),
            }),
        );
    }

    /// Adds a tool known only at run time (an external MCP server's, whose schemas come from
    /// the server rather than from Rust types): its one-line summary, then its actions with
    /// [`Registry::register_dyn`]. Replaces the summary of a tool with the same name.
    pub fn add_tool(&mut self, tool: &str, summary: &str) {
        self.dynamic_tools.retain(|(t, _)| t != tool);
        self.dynamic_tools
            .push((tool.to_owned(), summary.to_owned()));
    }

    /// Adds an action of a tool added with [`Registry::add_tool`], as `tool.<spec name>`
    /// (replacing one with the same name). The action publishes its own spec.
    pub fn register_dyn(&mut self, tool: &str, action: Box<dyn DynAction>) {
        let name = format!("{tool}.{}", action.spec().name);
        self.actions.insert(name, std::sync::Arc::from(action));
    }

    /// A copy of this catalog to add more actions to (an organisation's installed generated
    /// skills): the actions are shared with this one, not rebuilt, so the copy is cheap.
    pub fn extended(&self) -> Registry {
        Registry {
            actions: self.actions.clone(),
            dynamic_tools: self.dynamic_tools.clone(),
        }
    }

    /// Looks up `tool.action`, shared: for a caller that must keep the action beyond the
    /// registry it came from (an organisation's catalog built for one request).
    pub fn get_shared(&self, tool: &str, action: &str) -> Option<std::sync::Arc<dyn DynAction>> {
        self.actions.get(&format!("{tool}.{action}")).cloned()
    }

    /// Looks up `tool.action`.
    pub fn get(&self, tool: &str, action: &str) -> Option<&dyn DynAction> {
        self.actions
            .get(&format!("{tool}.{action}"))
            .map(|b| b.as_ref())
    }

    /// Looks up a full `tool.action` name (a tool's name may itself hold dots: `mcp.files`).
    pub fn get_name(&self, name: &str) -> Option<(&str, &dyn DynAction)> {
        self.actions
            .get_key_value(name)
            .map(|(k, a)| (k.as_str(), a.as_ref()))
    }

    /// Splits a full `tool.action` name of this catalog into its tool and action.
    pub fn split_name<'n>(&self, name: &'n str) -> Option<(&'n str, &'n str)> {
        let (_, a) = self.get_name(name)?;
        let action = a.spec().name.as_str();
        let tool = name.strip_suffix(action)?.strip_suffix('.')?;
        Some((tool, &name[tool.len() + 1..]))
    }

    /// Every `tool.action` name, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.actions.keys().map(String::as_str)
    }

    /// The tool specs (tools in catalog order, actions in registration order of names).
    pub fn tools(&self) -> Vec<ToolSpec> {
        let mut tools: Vec<ToolSpec> = Vec::new();
        let dynamic = self
            .dynamic_tools
            .iter()
            .map(|(n, s)| (n.as_str(), s.as_str()));
        for (name, summary) in TOOL_SUMMARIES.iter().copied().chain(dynamic) {
            let actions: Vec<ActionSpec> = self
                .actions
                .iter()
                .filter(|(k, a)| {
                    k.strip_suffix(a.spec().name.as_str())
                        .and_then(|t| t.strip_suffix('.'))
                        == Some(name)
                })
                .map(|(_, a)| a.spec().clone())
                .collect();
            if !actions.is_empty() {
                tools.push(ToolSpec {
                    name: name.to_owned(),
                    summary: summary.to_owned(),
                    actions,
                });
            }
        }
        tools
    }

    /// A short hash of every spec: changes whenever an action, schema or effect changes, so
    /// caches keyed on it never serve plans made for another catalog.
    pub fn catalog_version(&self) -> String {
        let mut h = blake3::Hasher::new();
        for (k, a) in &self.actions {
            h.update(k.as_bytes());
            h.update(
                serde_json::to_string(a.spec())
                    .unwrap_or_default()
                    .as_bytes(),
            );
        }
        h.finalize().to_hex()[..16].to_string()
    }

    /// Checks a plan against the catalog: structure, action names, argument types, and that
    /// every step reference points at a path column of an earlier step's output.
    pub fn validate(&self, plan: &Plan) -> Vec<PlanIssue> {
        let mut issues = plan.check_structure();
        for (i, step) in plan.steps.iter().enumerate() {
            let Some(action) = self.get(&step.tool, &step.action) else {
                let name = step.name();
                let near = self.closest(&name, 3);
                issues.push(PlanIssue {
                    pointer: format!("/steps/{i}"),
                    message: format!("unknown action {name}; closest: {}", near.join(", ")),
                });
                continue;
            };
            if let Err(m) = action.check_args(&Value::Object(step.args.clone())) {
                issues.push(PlanIssue {
                    pointer: format!("/steps/{i}/args"),
                    message: m,
                });
            }
            for (ptr, r) in step.refs() {
                let Some(src) = plan.steps.get(r.step).filter(|_| r.step < i) else {
                    continue;
                };
                let Some(src_action) = self.get(&src.tool, &src.action) else {
                    continue;
                };
                let spec = src_action.spec();
                let col = match &r.field {
                    Some(f) => spec.column(f),
                    None => spec.output.iter().find(|c| c.kind == ColumnKind::Path),
                };
                match col {
                    Some(c) if c.kind == ColumnKind::Path => {}
                    Some(c) => issues.push(PlanIssue {
                        pointer: format!("/steps/{i}/args{ptr}"),
                        message: format!(
                            "column {} of {} holds {:?}, not paths",
                            c.name,
                            src.name(),
                            c.kind
                        ),
                    }),
                    None => issues.push(PlanIssue {
                        pointer: format!("/steps/{i}/args{ptr}"),
                        message: format!(
                            "{} has no {} column; it has: {}",
                            src.name(),
                            r.field.as_deref().unwrap_or("path"),
                            spec.output
                                .iter()
                                .map(|c| c.name.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    }),
                }
            }
        }
        issues
    }

    /// The `n` action names closest to `name` (by edit distance), for "did you mean".
    pub fn closest(&self, name: &str, n: usize) -> Vec<String> {
        let mut scored: Vec<(usize, &str)> =
            self.names().map(|k| (edit_distance(name, k), k)).collect();
        scored.sort();
        scored
            .into_iter()
            .take(n)
            .map(|(_, k)| k.to_owned())
            .collect()
    }
}

/// Levenshtein distance, for suggestions.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}
