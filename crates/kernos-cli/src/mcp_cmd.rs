//! `kernos mcp serve|list|trust`: Kernos as an MCP server on stdio, and the external MCP
//! servers whose tools join the catalog.

use std::process::ExitCode;

use crate::app::App;
use crate::cli::McpCmd;

/// Runs one `kernos mcp …` command.
pub fn run(app: &App, cmd: McpCmd) -> anyhow::Result<ExitCode> {
    let _ = app;
    match cmd {
        McpCmd::Serve => anyhow::bail!("kernos mcp serve is not built yet"),
        McpCmd::List => anyhow::bail!("kernos mcp list is not built yet"),
        McpCmd::Trust { .. } => anyhow::bail!("kernos mcp trust is not built yet"),
    }
}
