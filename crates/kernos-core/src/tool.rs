//! What tools declare about themselves: their actions, argument schemas, effects and outputs.
//!
//! These declarations are what the kernel trusts. Risk, approval and sandbox policy are derived
//! from the declared effects and the concrete arguments of a step, never from what a planner (or
//! a model) claims about it.

use std::fmt;
use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The classes of effect an action can have on the world.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum EffectKind {
    /// Reads files or system state.
    Read,
    /// Creates or changes files or state.
    Write,
    /// Removes files or state.
    Delete,
    /// Runs a program.
    Exec,
    /// Talks to the network.
    Network,
    /// Needs root or changes system-wide state (packages, services, other users' processes).
    Privileged,
}

impl EffectKind {
    /// Every effect kind, in a stable order.
    pub const ALL: [EffectKind; 6] = [
        EffectKind::Read,
        EffectKind::Write,
        EffectKind::Delete,
        EffectKind::Exec,
        EffectKind::Network,
        EffectKind::Privileged,
    ];

    /// The lower-case name used in output and on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            EffectKind::Read => "read",
            EffectKind::Write => "write",
            EffectKind::Delete => "delete",
            EffectKind::Exec => "exec",
            EffectKind::Network => "network",
            EffectKind::Privileged => "privileged",
        }
    }

    /// Whether this effect leaves the world as it was.
    pub fn is_read_only(self) -> bool {
        matches!(self, EffectKind::Read)
    }
}

impl fmt::Display for EffectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a concrete effect touches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Target {
    /// A file or directory; `recursive` when everything beneath it is affected too.
    Path {
        /// The path, absolute after the engine resolved it.
        path: PathBuf,
        /// Whether the effect reaches into everything beneath the path.
        #[serde(default)]
        recursive: bool,
    },
    /// A network peer.
    Host {
        /// Host name or address.
        host: String,
        /// Port, when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        port: Option<u16>,
    },
    /// A running process.
    Process {
        /// Process id.
        pid: u32,
        /// Command name, when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        /// Owner's user id, when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        uid: Option<u32>,
    },
    /// A system package.
    Package {
        /// Package name.
        name: String,
    },
    /// A system service.
    Service {
        /// Unit or service name.
        name: String,
    },
    /// A command line to be run.
    Command {
        /// The command as written.
        line: String,
    },
    /// The system as a whole (e.g. reading the kernel version).
    System,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Path { path, recursive } => {
                write!(f, "{}", path.display())?;
                if *recursive {
                    f.write_str(" (recursive)")?;
                }
                Ok(())
            }
            Target::Host {
                host,
                port: Some(p),
            } => write!(f, "{host}:{p}"),
            Target::Host { host, port: None } => f.write_str(host),
            Target::Process {
                pid, name: Some(n), ..
            } => write!(f, "pid {pid} ({n})"),
            Target::Process { pid, .. } => write!(f, "pid {pid}"),
            Target::Package { name } => write!(f, "package {name}"),
            Target::Service { name } => write!(f, "service {name}"),
            Target::Command { line } => write!(f, "`{line}`"),
            Target::System => f.write_str("system"),
        }
    }
}

/// One concrete effect of one step: a kind applied to a target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Effect {
    /// What kind of effect.
    pub kind: EffectKind,
    /// What it touches.
    pub target: Target,
}

impl Effect {
    /// Shorthand for an effect on a path.
    pub fn path(kind: EffectKind, path: impl Into<PathBuf>, recursive: bool) -> Self {
        Effect {
            kind,
            target: Target::Path {
                path: path.into(),
                recursive,
            },
        }
    }
}

/// Whether the engine can put things back after an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Reversibility {
    /// Changes nothing, so there is nothing to undo.
    ReadOnly,
    /// The engine records what it needs to undo the action before it acts.
    Reversible,
    /// Once done, it cannot be undone (a signal sent, a request made, a command run).
    Irreversible,
}

impl Reversibility {
    /// Short label for previews.
    pub fn as_str(self) -> &'static str {
        match self {
            Reversibility::ReadOnly => "read-only",
            Reversibility::Reversible => "reversible",
            Reversibility::Irreversible => "irreversible",
        }
    }
}

/// The type of a column in an action's output rows: tells renderers how to show the value
/// (human sizes, times) and tells the validator which step references fit which arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ColumnKind {
    /// A filesystem path (string).
    Path,
    /// A size in bytes (integer).
    Bytes,
    /// A plain integer.
    Int,
    /// A floating point number.
    Float,
    /// Percentage, 0–100 (number).
    Percent,
    /// Free text.
    Text,
    /// A point in time, seconds since the Unix epoch (integer).
    Time,
    /// A duration in seconds (number).
    Duration,
    /// true / false.
    Bool,
    /// A process id (integer).
    Pid,
}

/// One column of an action's output rows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Column {
    /// Field name in each row object.
    pub name: String,
    /// Value type.
    pub kind: ColumnKind,
}

impl Column {
    /// Builds a column.
    pub fn new(name: &str, kind: ColumnKind) -> Self {
        Column {
            name: name.to_owned(),
            kind,
        }
    }
}

/// The declaration of one action of a tool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ActionSpec {
    /// Action name, e.g. `largest`.
    pub name: String,
    /// One line saying what it does.
    pub summary: String,
    /// JSON schema of the arguments, generated from the Rust argument type.
    pub args_schema: serde_json::Value,
    /// The classes of effect the action can have (concrete targets come from the arguments).
    pub effects: Vec<EffectKind>,
    /// Whether the engine can undo it.
    pub reversibility: Reversibility,
    /// Columns of the rows the action returns.
    #[serde(default)]
    pub output: Vec<Column>,
    /// The least risk policy may assess for a step of this action, whatever its effects: an
    /// operator's declaration for an action Kernos cannot look inside (an external MCP
    /// server's tool). It only ever raises what policy finds, never lowers it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub risk_floor: Option<crate::Risk>,
}

impl ActionSpec {
    /// True when every declared effect is a read.
    pub fn is_read_only(&self) -> bool {
        self.effects.iter().all(|e| e.is_read_only())
    }

    /// Looks up an output column by name.
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.output.iter().find(|c| c.name == name)
    }
}

/// The declaration of a tool: a named group of actions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ToolSpec {
    /// Tool name, e.g. `fs`.
    pub name: String,
    /// One line saying what the tool is for.
    pub summary: String,
    /// Its actions.
    pub actions: Vec<ActionSpec>,
}

impl ToolSpec {
    /// Looks up an action by name.
    pub fn action(&self, name: &str) -> Option<&ActionSpec> {
        self.actions.iter().find(|a| a.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn effect_round_trip() {
        let effects = vec![
            Effect::path(EffectKind::Delete, "/tmp/x", true),
            Effect {
                kind: EffectKind::Network,
                target: Target::Host {
                    host: "example.org".into(),
                    port: Some(443),
                },
            },
            Effect {
                kind: EffectKind::Privileged,
                target: Target::Process {
                    pid: 1,
                    name: Some("init".into()),
                    uid: Some(0),
                },
            },
            Effect {
                kind: EffectKind::Read,
                target: Target::System,
            },
        ];
        let j = serde_json::to_string(&effects).unwrap();
        let back: Vec<Effect> = serde_json::from_str(&j).unwrap();
        assert_eq!(back, effects);
        assert!(j.contains(r#""kind":"delete""#));
        assert!(j.contains(r#""type":"path""#));
    }

    #[test]
    fn display_targets() {
        assert_eq!(
            Effect::path(EffectKind::Write, "/a b", true)
                .target
                .to_string(),
            "/a b (recursive)"
        );
        assert_eq!(
            Target::Host {
                host: "h".into(),
                port: Some(80)
            }
            .to_string(),
            "h:80"
        );
    }

    #[test]
    fn read_only_spec() {
        let spec = ActionSpec {
            name: "list".into(),
            summary: "List".into(),
            args_schema: serde_json::json!({}),
            effects: vec![EffectKind::Read],
            reversibility: Reversibility::ReadOnly,
            output: vec![Column::new("path", ColumnKind::Path)],
            risk_floor: None,
        };
        assert!(spec.is_read_only());
        assert_eq!(spec.column("path").map(|c| c.kind), Some(ColumnKind::Path));
        let j = serde_json::to_value(&spec).unwrap();
        assert_eq!(serde_json::from_value::<ActionSpec>(j).unwrap(), spec);
    }
}
