//! The reviewed snapshot of a server's `tools/list`: what a person saw and approved (names,
//! descriptions, schemas, annotations), its hash, what changed since, and where it is kept
//! (`<data_dir>/mcp/<server>.json`, readable by its owner only).

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::McpError;

/// One tool as the server lists it: everything a pin covers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolInfo {
    /// The server's name for it.
    pub name: String,
    /// Human title, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// What it does, in the server's words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// JSON schema of its arguments.
    pub input_schema: Value,
    /// JSON schema of its structured output, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_schema: Option<Value>,
    /// The server's hints (`readOnlyHint`, `destructiveHint`, …): shown to the reviewer, never
    /// trusted for policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<Value>,
}

impl ToolInfo {
    /// The first line of the description (or the title), for listings.
    pub fn summary(&self) -> String {
        let text = self
            .description
            .as_deref()
            .or(self.title.as_deref())
            .unwrap_or("");
        let line = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
        let line = line.trim();
        if line.chars().count() > 120 {
            format!("{}…", line.chars().take(119).collect::<String>())
        } else {
            line.to_owned()
        }
    }
}

/// A pinned snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The server's name in the config.
    pub server: String,
    /// [`tools_hash`] of `tools`.
    pub hash: String,
    /// Who pinned it (`user:<name>`).
    pub trusted_by: String,
    /// When, milliseconds since the epoch.
    pub trusted_at_ms: i64,
    /// The tools, sorted by name.
    pub tools: Vec<ToolInfo>,
}

/// The hash that pins a tool list: blake3 over each tool's canonical JSON (object keys
/// sorted), tools in name order, so the order a server lists them in does not matter.
pub fn tools_hash(tools: &[ToolInfo]) -> String {
    let mut sorted: Vec<&ToolInfo> = tools.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    let mut h = blake3::Hasher::new();
    for t in sorted {
        let s = kernos_core::canonical_json(&serde_json::to_value(t).unwrap_or(Value::Null));
        h.update(s.as_bytes());
        h.update(b"\n");
    }
    h.finalize().to_hex().to_string()
}

/// What differs between the pinned tools and the live ones, one line each: added, removed,
/// and for a tool in both, which of its parts changed.
pub fn diff(pinned: &[ToolInfo], live: &[ToolInfo]) -> Vec<String> {
    let mut out = Vec::new();
    for t in live {
        match pinned.iter().find(|p| p.name == t.name) {
            None => out.push(format!("added tool {}", t.name)),
            Some(p) if p != t => {
                let mut parts = Vec::new();
                if p.title != t.title {
                    parts.push("title");
                }
                if p.description != t.description {
                    parts.push("description");
                }
                if p.input_schema != t.input_schema {
                    parts.push("arguments");
                }
                if p.output_schema != t.output_schema {
                    parts.push("output schema");
                }
                if p.annotations != t.annotations {
                    parts.push("annotations");
                }
                out.push(format!("tool {}: {} changed", t.name, parts.join(", ")));
            }
            Some(_) => {}
        }
    }
    for p in pinned {
        if !live.iter().any(|t| t.name == p.name) {
            out.push(format!("removed tool {}", p.name));
        }
    }
    out
}

/// Where pinned snapshots live.
pub fn store_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("mcp")
}

/// The snapshot file of `server`.
pub fn snapshot_path(data_dir: &Path, server: &str) -> PathBuf {
    store_dir(data_dir).join(format!("{server}.json"))
}

/// The pinned snapshot of `server`, if a person reviewed one.
pub fn load(data_dir: &Path, server: &str) -> Result<Option<Snapshot>, McpError> {
    let path = snapshot_path(data_dir, server);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(McpError::Store { path, source }),
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|source| McpError::BadSnapshot { path, source })
}

/// Pins `snap`: written to a private temporary file, then renamed over the old one.
pub fn save(data_dir: &Path, snap: &Snapshot) -> Result<PathBuf, McpError> {
    let dir = store_dir(data_dir);
    let path = snapshot_path(data_dir, &snap.server);
    let store = |source| McpError::Store {
        path: path.clone(),
        source,
    };
    std::fs::create_dir_all(&dir).map_err(store)?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).map_err(store)?;
    let tmp = dir.join(format!(".{}.json.tmp", snap.server));
    let json = serde_json::to_vec_pretty(snap).map_err(|e| store(std::io::Error::other(e)))?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(store)?;
    f.write_all(&json).map_err(store)?;
    f.sync_all().map_err(store)?;
    std::fs::rename(&tmp, &path).map_err(store)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tool(name: &str, desc: &str) -> ToolInfo {
        ToolInfo {
            name: name.into(),
            title: None,
            description: Some(desc.into()),
            input_schema: json!({"type": "object", "properties": {"path": {"type": "string"}}}),
            output_schema: None,
            annotations: Some(json!({"readOnlyHint": true})),
        }
    }

    #[test]
    fn the_hash_ignores_listing_order_and_sees_every_part() {
        let a = vec![tool("a", "reads"), tool("b", "writes")];
        let b = vec![tool("b", "writes"), tool("a", "reads")];
        assert_eq!(tools_hash(&a), tools_hash(&b));
        let mut c = a.clone();
        c[0].annotations = Some(json!({"readOnlyHint": false}));
        assert_ne!(tools_hash(&a), tools_hash(&c));
        let mut d = a.clone();
        d[1].input_schema["properties"]["mode"] = json!({"type": "string"});
        assert_ne!(tools_hash(&a), tools_hash(&d));
    }

    #[test]
    fn the_diff_names_what_changed() {
        let pinned = vec![tool("read", "reads"), tool("gone", "x")];
        let mut changed = tool("read", "reads, and now also uploads");
        changed.input_schema = json!({"type": "object"});
        let live = vec![changed, tool("new", "y")];
        assert_eq!(
            diff(&pinned, &live),
            vec![
                "tool read: description, arguments changed",
                "added tool new",
                "removed tool gone"
            ]
        );
        assert!(diff(&pinned, &pinned).is_empty());
    }

    #[test]
    fn a_snapshot_is_kept_privately_and_read_back() {
        let d = tempfile::tempdir().unwrap();
        assert!(load(d.path(), "files").unwrap().is_none());
        let tools = vec![tool("read", "reads")];
        let snap = Snapshot {
            server: "files".into(),
            hash: tools_hash(&tools),
            trusted_by: "user:ann".into(),
            trusted_at_ms: 1,
            tools,
        };
        let path = save(d.path(), &snap).unwrap();
        assert_eq!(load(d.path(), "files").unwrap(), Some(snap));
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::write(&path, b"{").unwrap();
        assert!(
            load(d.path(), "files")
                .unwrap_err()
                .to_string()
                .contains("trust")
        );
    }

    #[test]
    fn a_summary_is_the_first_line() {
        assert_eq!(tool("t", "\nFirst line.\nMore.").summary(), "First line.");
    }
}
