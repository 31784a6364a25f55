//! External MCP servers as Kernos tools.
//!
//! `[[mcp.servers]]` in the config names a server (a stdio command or a URL), what its process
//! may touch, and what each of its tools is declared to do ([`config`]). A person reviews the
//! server's `tools/list` and pins it (`kernos mcp trust`, [`snapshot`]); only pinned servers'
//! tools join the catalog, as `mcp.<server>.<tool>` ([`action`]). Every call runs the driver
//! ([`driver`], the `kernos` binary with a hidden argument) in the step's sandbox, derived from
//! the declared effects ([`effects`]); the driver starts the server as its child, re-checks the
//! live tool list against the pin, and calls the tool only when nothing changed.

pub mod action;
mod args;
pub mod config;
pub mod driver;
pub mod effects;
mod error;
pub mod snapshot;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use kernos_tools::Registry;

pub use action::{McpAction, Server, list_tools};
pub use config::{McpConfig, ServerConfig, ToolDecl};
pub use driver::{DRIVER_ARG, driver_main};
pub use error::McpError;
pub use snapshot::{Snapshot, ToolInfo};

/// Journal kind: a person reviewed a server's tools and pinned them (`kernos mcp trust`).
pub const MCP_TRUSTED: &str = "mcp.trusted";
/// Journal kind: a server's live tools differed from the pin at a call, so its tools are
/// disabled until trusted again.
pub const MCP_CHANGED: &str = "mcp.changed";

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
