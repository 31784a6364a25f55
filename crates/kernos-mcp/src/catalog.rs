//! Which configured servers' tools join the catalog: only those a person pinned, as
//! `mcp.<server>.<tool>`, read from the config and the snapshot files alone (no server is
//! started to build a catalog).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use kernos_tools::Registry;

use crate::action::{McpAction, Server};
use crate::config::McpConfig;
use crate::snapshot;

/// Where a configured server stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Reviewed: its tools are in the catalog (the hash pins them).
    Trusted {
        /// The pinned hash.
        hash: String,
        /// How many tools.
        tools: usize,
    },
    /// Configured, never reviewed: no tools in the catalog.
    NotReviewed,
    /// The pin cannot be read.
    Broken(String),
}

/// One configured server as the catalog saw it.
#[derive(Debug, Clone)]
pub struct Registered {
    /// Its name in the config.
    pub name: String,
    /// Trusted, not reviewed, or a broken pin.
    pub status: Status,
    /// The state its actions share, when trusted (see [`Server::changed`]).
    pub server: Option<Arc<Server>>,
}

/// Adds every trusted server's tools to `registry` (tool `mcp.<server>`), with `driver` as
/// the program each call runs confined; returns each configured server. Reads only the config
/// and the snapshot files: no server is started.
pub fn register(
    registry: &mut Registry,
    config: &McpConfig,
    data_dir: &Path,
    driver: &Path,
) -> Vec<Registered> {
    let mut out = Vec::new();
    for s in &config.servers {
        let (status, server) = match snapshot::load(data_dir, &s.name) {
            Ok(Some(snap)) => {
                let tool = format!("mcp.{}", s.name);
                let origin = s
                    .command
                    .as_ref()
                    .map(|c| c.join(" "))
                    .or_else(|| s.url.clone())
                    .unwrap_or_default();
                registry.add_tool(&tool, &format!("External MCP server {} ({origin})", s.name));
                let status = Status::Trusted {
                    hash: snap.hash.clone(),
                    tools: snap.tools.len(),
                };
                let server = Arc::new(Server::new(s.clone(), snap, PathBuf::from(driver)));
                for t in &server.snapshot.tools {
                    registry
                        .register_dyn(&tool, Box::new(McpAction::new(server.clone(), t.clone())));
                }
                (status, Some(server))
            }
            Ok(None) => (Status::NotReviewed, None),
            Err(e) => (Status::Broken(e.to_string()), None),
        };
        out.push(Registered {
            name: s.name.clone(),
            status,
            server,
        });
    }
    out
}
