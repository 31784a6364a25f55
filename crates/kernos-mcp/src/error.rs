//! What can go wrong with an external MCP server, each saying what to do about it.

use std::path::PathBuf;

/// Errors of the MCP client side.
#[derive(Debug, thiserror::Error)]
pub enum McpError {
    /// A `[[mcp.servers]]` entry is wrong.
    #[error("[[mcp.servers]] {server}: {why}")]
    Config {
        /// The server's name as written.
        server: String,
        /// What is wrong.
        why: String,
    },
    /// The pinned snapshot cannot be read or written.
    #[error("{}: {source}", path.display())]
    Store {
        /// The snapshot file.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// A pinned snapshot that is not valid JSON of the expected shape.
    #[error("{}: not a snapshot of MCP tools ({source}); run `kernos mcp trust` again", path.display())]
    BadSnapshot {
        /// The snapshot file.
        path: PathBuf,
        /// Cause.
        source: serde_json::Error,
    },
    /// Talking to the server failed (start, initialize, list, call).
    #[error("MCP server {server}: {why}")]
    Server {
        /// The server's name.
        server: String,
        /// What failed.
        why: String,
    },
    /// The server's tools differ from the reviewed snapshot: its tools are disabled.
    #[error(
        "MCP server {server} changed its tools since they were reviewed ({}); its tools are disabled until a person reviews them again: kernos mcp trust {server}",
        changes.join("; ")
    )]
    Changed {
        /// The server's name.
        server: String,
        /// What changed, one item each ("added tool x", "tool y: description changed").
        changes: Vec<String>,
    },
}

impl McpError {
    /// A config error for `server`.
    pub fn config(server: &str, why: impl Into<String>) -> Self {
        McpError::Config {
            server: server.to_owned(),
            why: why.into(),
        }
    }

    /// A failure talking to `server`.
    pub fn server(server: &str, why: impl std::fmt::Display) -> Self {
        McpError::Server {
            server: server.to_owned(),
            why: why.to_string(),
        }
    }
}
