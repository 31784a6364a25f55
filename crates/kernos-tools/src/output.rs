//! What actions return: rows to render, text, and the exact changes made.

use std::path::PathBuf;

use kernos_core::Column;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One change to the world, as predicted by a dry run or as made by an execution. The two lists
/// are built the same way so they can be compared: a dry run says exactly what execute then does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Change {
    /// A new file or directory.
    Create {
        /// Path.
        path: PathBuf,
        /// Size of a new file, bytes.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        bytes: Option<u64>,
        /// Whether it is a directory.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        dir: bool,
    },
    /// An existing file replaced (its old content is kept for undo).
    Overwrite {
        /// Path.
        path: PathBuf,
        /// Size before.
        old_bytes: u64,
        /// Size after.
        new_bytes: u64,
    },
    /// Bytes added at the end of a file.
    Append {
        /// Path.
        path: PathBuf,
        /// Bytes added.
        bytes: u64,
    },
    /// A file or tree moved to the trash.
    Delete {
        /// Path.
        path: PathBuf,
        /// Total size, bytes.
        bytes: u64,
        /// Entries (files and directories) including itself.
        entries: u64,
    },
    /// A file or tree moved or renamed.
    Move {
        /// From.
        from: PathBuf,
        /// To.
        to: PathBuf,
        /// Total size, bytes.
        bytes: u64,
    },
    /// Permission bits changed.
    Chmod {
        /// Path.
        path: PathBuf,
        /// Mode before (octal).
        from: String,
        /// Mode after (octal).
        to: String,
    },
    /// A signal sent to a process.
    Signal {
        /// Process id.
        pid: u32,
        /// Process name.
        name: String,
        /// Signal name.
        signal: String,
    },
    /// A package installed.
    PackageInstall {
        /// Package.
        name: String,
    },
    /// A package removed.
    PackageRemove {
        /// Package.
        name: String,
    },
    /// A service's state changed.
    Service {
        /// Service.
        name: String,
        /// State before (`active`, `inactive`, `enabled`, `disabled`).
        from: String,
        /// State after.
        to: String,
    },
    /// A command run (its effects are not known in advance).
    Exec {
        /// The command line.
        command: String,
    },
    /// A network request that may change remote state.
    Request {
        /// Method.
        method: String,
        /// URL.
        url: String,
    },
}

impl Change {
    /// One line for previews, e.g. `delete /tmp/x (3 entries, 1.2 KiB)`.
    pub fn describe(&self) -> String {
        match self {
            // A copied tree carries its size (what the preview of a copy must show); a
            // directory made empty does not.
            Change::Create {
                path,
                dir: true,
                bytes,
            } => format!(
                "create directory {}{}",
                path.display(),
                bytes
                    .map(|b| format!(" ({})", human_bytes(b)))
                    .unwrap_or_default()
            ),
            Change::Create { path, bytes, .. } => {
                format!(
                    "create {}{}",
                    path.display(),
                    bytes
                        .map(|b| format!(" ({})", human_bytes(b)))
                        .unwrap_or_default()
                )
            }
            Change::Overwrite {
                path,
                old_bytes,
                new_bytes,
            } => format!(
                "overwrite {} ({} -> {})",
                path.display(),
                human_bytes(*old_bytes),
                human_bytes(*new_bytes)
            ),
            Change::Append { path, bytes } => {
                format!("append {} to {}", human_bytes(*bytes), path.display())
            }
            Change::Delete {
                path,
                bytes,
                entries,
            } => {
                if *entries <= 1 {
                    format!(
                        "delete {} ({}) to trash",
                        path.display(),
                        human_bytes(*bytes)
                    )
                } else {
                    format!(
                        "delete {} ({} entries, {}) to trash",
                        path.display(),
                        entries,
                        human_bytes(*bytes)
                    )
                }
            }
            Change::Move { from, to, bytes } => {
                format!(
                    "move {} -> {} ({})",
                    from.display(),
                    to.display(),
                    human_bytes(*bytes)
                )
            }
            Change::Chmod { path, from, to } => format!("chmod {} {from} -> {to}", path.display()),
            Change::Signal { pid, name, signal } => format!("send SIG{signal} to {pid} ({name})"),
            Change::PackageInstall { name } => format!("install package {name}"),
            Change::PackageRemove { name } => format!("remove package {name}"),
            Change::Service { name, from, to } => format!("service {name}: {from} -> {to}"),
            Change::Exec { command } => format!("run `{command}`"),
            Change::Request { method, url } => format!("{method} {url}"),
        }
    }
}

/// Bytes in binary units: `512 B`, `1.5 KiB`, `3.2 GiB`.
pub fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    if b < 1024 {
        return format!("{b} B");
    }
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    format!("{v:.1} {}", UNITS[u])
}

/// What an action returns.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Output {
    /// Columns of `rows`, in display order (the action's declared output columns).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub columns: Vec<Column>,
    /// Result rows: objects keyed by column name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rows: Vec<Map<String, Value>>,
    /// Free text (file content, command output, log lines), when that is the result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// One line summing up, e.g. `3 files, 1.2 GiB`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// The changes made (empty for reads).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<Change>,
    /// Whether rows or text were cut (limits, huge output).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
    /// CPU time of sandboxed child processes, milliseconds (for metering).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cpu_ms: u64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

impl Output {
    /// Rows with the given columns.
    pub fn table(columns: Vec<Column>, rows: Vec<Map<String, Value>>) -> Self {
        Output {
            columns,
            rows,
            ..Output::default()
        }
    }

    /// A text result.
    pub fn text(text: impl Into<String>) -> Self {
        Output {
            text: Some(text.into()),
            ..Output::default()
        }
    }

    /// Sets the summary line.
    pub fn with_summary(mut self, s: impl Into<String>) -> Self {
        self.summary = Some(s.into());
        self
    }

    /// Values of one column across all rows.
    pub fn column_values(&self, name: &str) -> Vec<Value> {
        self.rows
            .iter()
            .filter_map(|r| r.get(name).cloned())
            .collect()
    }
}

/// Builds a row from `(column, value)` pairs.
pub fn row<const N: usize>(pairs: [(&str, Value); N]) -> Map<String, Value> {
    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_sizes() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(5 << 30), "5.0 GiB");
    }

    #[test]
    fn change_round_trip_and_description() {
        let c = Change::Delete {
            path: "/tmp/x".into(),
            bytes: 2048,
            entries: 3,
        };
        let j = serde_json::to_value(&c).unwrap();
        assert_eq!(j["op"], "delete");
        assert_eq!(serde_json::from_value::<Change>(j).unwrap(), c);
        assert_eq!(c.describe(), "delete /tmp/x (3 entries, 2.0 KiB) to trash");
    }
}
