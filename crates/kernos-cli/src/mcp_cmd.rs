//! `kernos mcp serve|list|trust`: Kernos as an MCP server on stdio, and the external MCP
//! servers whose tools join the catalog.

use std::process::ExitCode;

use crate::app::App;
use crate::cli::McpCmd;

/// Runs one `kernos mcp …` command.
pub fn run(app: &App, cmd: McpCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        McpCmd::Serve => serve(app),
        McpCmd::List => anyhow::bail!("kernos mcp list is not built yet"),
        McpCmd::Trust { .. } => anyhow::bail!("kernos mcp trust is not built yet"),
    }
}

/// `kernos mcp serve`: MCP on stdio, relayed to the running daemon or served by one started
/// here (see `kernos_server::serve_stdio`). Logs go to stderr: stdout carries only MCP.
fn serve(app: &App) -> anyhow::Result<ExitCode> {
    kernos_server::init_logging();
    kernos_server::serve_stdio(crate::daemon_cmd::daemon_options(app))?;
    Ok(ExitCode::SUCCESS)
}
