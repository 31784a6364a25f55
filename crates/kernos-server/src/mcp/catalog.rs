//! The tools an MCP client is offered: every catalog action `[server.mcp]` lets through, with
//! its argument schema and hints derived from its declared effects, and the four Kernos tools
//! that take plain language, plan, undo and read the history.

use std::sync::Arc;

use globset::{Glob, GlobSet, GlobSetBuilder};
use kernos_core::{ActionSpec, EffectKind, Reversibility};
use kernos_tools::Registry;
use rmcp::model::{JsonObject, Tool, ToolAnnotations};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

use crate::config::McpServe;

/// `kernos_request`: plain language, planned and run on the one path.
pub(crate) const REQUEST: &str = "kernos_request";
/// `kernos_plan`: plan and preview only; nothing changes.
pub(crate) const PLAN: &str = "kernos_plan";
/// `kernos_undo`: undo a transaction.
pub(crate) const UNDO: &str = "kernos_undo";
/// `kernos_history`: recent transactions of the caller's organisation.
pub(crate) const HISTORY: &str = "kernos_history";

/// Arguments of `kernos_request`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RequestArgs {
    /// What to do, in plain language: "show the 5 largest files in /var/log".
    pub(crate) request: String,
    /// Absolute directory relative paths refer to (default: the daemon's home, or the
    /// organisation's workspace).
    #[serde(default)]
    pub(crate) cwd: Option<String>,
}

/// Arguments of `kernos_undo`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UndoArgs {
    /// The transaction to undo (its id or a unique part of at least 4 characters, as the
    /// tool results and kernos_history show it); leave it out for the newest one of your
    /// organisation that changed something and was not undone.
    #[serde(default)]
    pub(crate) transaction: Option<String>,
}

/// Arguments of `kernos_history`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct HistoryArgs {
    /// How many transactions, newest first (1–200, default 20).
    #[serde(default)]
    pub(crate) limit: Option<usize>,
}

/// Which catalog actions are offered, from `[server.mcp] tools` and `hide`.
#[derive(Debug, Clone)]
pub(crate) struct Offer {
    show: GlobSet,
    hide: GlobSet,
    meta_tools: bool,
}

impl Offer {
    /// From the config (validated at start, so a bad glob here is only skipped).
    pub(crate) fn new(cfg: &McpServe) -> Self {
        let set = |globs: &[String]| {
            let mut b = GlobSetBuilder::new();
            for g in globs {
                if let Ok(g) = Glob::new(g) {
                    b.add(g);
                }
            }
            b.build().unwrap_or_else(|_| GlobSet::empty())
        };
        Offer {
            show: set(&cfg.tools),
            hide: set(&cfg.hide),
            meta_tools: cfg.meta_tools,
        }
    }

    /// Whether the catalog action `name` (`tool.action`) is offered.
    pub(crate) fn action(&self, name: &str) -> bool {
        self.show.is_match(name) && !self.hide.is_match(name)
    }

    /// Whether the four `kernos_*` tools are offered.
    pub(crate) fn meta_tools(&self) -> bool {
        self.meta_tools
    }
}

/// Every tool offered, catalog actions first (in the registry's order), built once per
/// daemon: the catalog does not change while it runs.
pub(crate) fn tools(registry: &Registry, offer: &Offer) -> Arc<Vec<Tool>> {
    let mut out: Vec<Tool> = registry
        .tools()
        .iter()
        .flat_map(|t| {
            t.actions
                .iter()
                .map(move |a| (format!("{}.{}", t.name, a.name), a))
        })
        .filter(|(name, _)| offer.action(name))
        .map(|(name, spec)| action_tool(name, spec))
        .collect();
    if offer.meta_tools() {
        out.extend(meta_tools());
    }
    Arc::new(out)
}

/// One catalog action as an MCP tool.
fn action_tool(name: String, spec: &ActionSpec) -> Tool {
    let description = format!(
        "{} (effects: {}; {}). Runs on Kernos's one path: policy, approval where it asks, the sandbox, the journal; the result names the transaction to undo.",
        spec.summary,
        if spec.effects.is_empty() {
            "none".to_owned()
        } else {
            spec.effects
                .iter()
                .map(|e| e.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        },
        match spec.reversibility {
            Reversibility::ReadOnly => "changes nothing",
            Reversibility::Reversible => "undoable",
            Reversibility::Irreversible => "cannot be undone",
        }
    );
    Tool::new(name, description, object_schema(&spec.args_schema))
        .with_title(spec.summary.clone())
        .with_annotations(annotations(spec))
}

/// Hints from what the action declares (never from what a model says about it):
/// read-only when it changes nothing (its only effect is reading, or it is declared
/// read-only, like an HTTP GET); destructive when it deletes, runs programs, needs root, or
/// cannot be undone; idempotent only when it changes nothing; open-world when it talks to
/// the network.
pub(crate) fn annotations(spec: &ActionSpec) -> ToolAnnotations {
    let read_only = spec.reversibility == Reversibility::ReadOnly
        || spec.effects.iter().all(|e| e.is_read_only());
    let destructive = !read_only
        && (spec.reversibility == Reversibility::Irreversible
            || spec.effects.iter().any(|e| {
                matches!(
                    e,
                    EffectKind::Delete | EffectKind::Exec | EffectKind::Privileged
                )
            }));
    ToolAnnotations::with_title(spec.summary.clone())
        .read_only(read_only)
        .destructive(destructive)
        .idempotent(read_only)
        .open_world(spec.effects.contains(&EffectKind::Network))
}

/// The four Kernos tools.
fn meta_tools() -> Vec<Tool> {
    let hints = |read_only: bool, destructive: bool| {
        ToolAnnotations::new()
            .read_only(read_only)
            .destructive(destructive)
            .idempotent(read_only)
            .open_world(!read_only)
    };
    vec![
        Tool::new(
            REQUEST,
            "Ask Kernos in plain language (\"free space in /var by removing logs older than 30 days\"). It plans typed tool calls, checks policy, asks for approval where policy says to, runs each step in the sandbox, journals everything, and answers with the results and the transaction id for kernos_undo.",
            schema_of::<RequestArgs>(),
        )
        .with_title("Ask Kernos")
        .with_annotations(hints(false, true)),
        Tool::new(
            PLAN,
            "Plan a plain-language request and preview it: the steps, what each would change (a dry run), its risk and whether it can be undone. Nothing is changed.",
            schema_of::<RequestArgs>(),
        )
        .with_title("Plan and preview")
        .with_annotations(hints(true, false)),
        Tool::new(
            UNDO,
            "Undo a transaction Kernos ran (restores files from its trash and snapshots). Goes through approval like any change.",
            schema_of::<UndoArgs>(),
        )
        .with_title("Undo a transaction")
        .with_annotations(hints(false, false)),
        Tool::new(
            HISTORY,
            "Recent transactions of your organisation: when, what was asked, status, what changed, whether it can still be undone.",
            schema_of::<HistoryArgs>(),
        )
        .with_title("History")
        .with_annotations(hints(true, false)),
    ]
}

fn schema_of<T: JsonSchema>() -> Arc<JsonObject> {
    object_schema(&serde_json::to_value(schemars::schema_for!(T)).unwrap_or(Value::Null))
}

/// A JSON schema as MCP wants an input schema: an object schema (an action without
/// arguments gets the empty object's).
fn object_schema(v: &Value) -> Arc<JsonObject> {
    let mut o = match v {
        Value::Object(o) => o.clone(),
        _ => JsonObject::new(),
    };
    o.insert("type".into(), Value::String("object".into()));
    Arc::new(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(tools: &[&str], hide: &[&str]) -> McpServe {
        McpServe {
            tools: tools.iter().map(|s| s.to_string()).collect(),
            hide: hide.iter().map(|s| s.to_string()).collect(),
            ..McpServe::default()
        }
    }

    fn listed(c: &McpServe) -> Vec<String> {
        tools(&Registry::builtin(), &Offer::new(c))
            .iter()
            .map(|t| t.name.to_string())
            .collect()
    }

    #[test]
    fn every_catalog_action_is_offered_by_default_with_the_kernos_tools() {
        let names = listed(&McpServe::default());
        let registry = Registry::builtin();
        for a in registry.names() {
            assert!(names.iter().any(|n| n == a), "{a} is not offered");
        }
        for m in [REQUEST, PLAN, UNDO, HISTORY] {
            assert!(names.iter().any(|n| n == m), "{m} is not offered");
        }
    }

    #[test]
    fn the_config_cuts_the_list_down() {
        let names = listed(&cfg(&["fs.*", "sys.memory"], &["fs.delete"]));
        assert!(names.iter().any(|n| n == "fs.find"));
        assert!(names.iter().any(|n| n == "sys.memory"));
        assert!(!names.iter().any(|n| n == "fs.delete"), "hidden");
        assert!(!names.iter().any(|n| n.starts_with("shell.")), "not listed");
        let none = McpServe {
            meta_tools: false,
            ..cfg(&[], &[])
        };
        assert!(listed(&none).is_empty());
    }

    #[test]
    fn hints_follow_declared_effects() {
        let registry = Registry::builtin();
        let spec = |n: &str| {
            let (t, a) = n.split_once('.').unwrap();
            registry.get(t, a).unwrap().spec().clone()
        };
        let read = annotations(&spec("fs.read"));
        assert_eq!(
            (
                read.read_only_hint,
                read.destructive_hint,
                read.idempotent_hint
            ),
            (Some(true), Some(false), Some(true))
        );
        let delete = annotations(&spec("fs.delete"));
        assert_eq!(
            (delete.read_only_hint, delete.destructive_hint),
            (Some(false), Some(true))
        );
        let write = annotations(&spec("fs.write"));
        assert_eq!(write.read_only_hint, Some(false));
        let http = annotations(&spec("net.http"));
        assert_eq!(http.open_world_hint, Some(true));
    }

    #[test]
    fn every_input_schema_is_an_object_schema() {
        for t in tools(&Registry::builtin(), &Offer::new(&McpServe::default())).iter() {
            assert_eq!(
                t.input_schema.get("type"),
                Some(&Value::from("object")),
                "{}",
                t.name
            );
        }
    }
}
