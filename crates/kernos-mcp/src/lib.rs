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
mod catalog;
pub mod config;
pub mod driver;
pub mod effects;
mod error;
pub mod snapshot;

pub use action::{McpAction, Server, list_tools};
pub use catalog::{Registered, Status, register};
pub use config::{McpConfig, ServerConfig, ToolDecl};
pub use driver::{DRIVER_ARG, driver_main};
pub use error::McpError;
pub use snapshot::{Snapshot, ToolInfo};

/// Journal kind: a person reviewed a server's tools and pinned them (`kernos mcp trust`).
pub const MCP_TRUSTED: &str = "mcp.trusted";
/// Journal kind: a server's live tools differed from the pin at a call, so its tools are
/// disabled until trusted again.
pub const MCP_CHANGED: &str = "mcp.changed";
