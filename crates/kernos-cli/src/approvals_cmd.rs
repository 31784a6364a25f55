//! `kernos approvals` and `kernos approve ID [--no]`: the steps waiting in the running daemon
//! for a person — those of agents, schedules, monitors, and API or MCP clients that cannot ask
//! anyone themselves. On the Unix socket the caller is the owner of org `local`.

use std::process::ExitCode;

use anyhow::bail;
use serde_json::{Value, json};

use crate::app::App;
use crate::daemon_client as client;

fn require_daemon(app: &App) -> anyhow::Result<()> {
    if !client::available(&app.data_dir) {
        bail!(
            "steps wait for approval only in a running daemon, and none answers on {}: start it with `kernos serve` (a request run here asks you directly)",
            kernos_server::socket_path(&app.data_dir).display()
        );
    }
    Ok(())
}

/// `kernos approvals`.
pub fn list(app: &App) -> anyhow::Result<ExitCode> {
    require_daemon(app)?;
    let pending = client::call(&app.data_dir, "GET", "/v1/state/approvals", None)?
        .ok()?
        .json()?;
    if app.global.json {
        println!("{}", serde_json::to_string_pretty(&pending)?);
        return Ok(ExitCode::SUCCESS);
    }
    let rows = pending.as_array().map(Vec::as_slice).unwrap_or_default();
    if rows.is_empty() {
        println!("nothing waits for approval");
    }
    let now = kernos_core::time::now_ms();
    for a in rows {
        println!(
            "{}  {} risk  step {} {} {}",
            s(a, "approval"),
            s(a, "risk"),
            a["step"].as_u64().unwrap_or(0) + 1,
            s(a, "name"),
            a["args"]
        );
        println!(
            "    asked by {}; declined in {} s unless answered: kernos approve {} [--no]",
            s(a, "requested_by"),
            (a["expires_ms"].as_i64().unwrap_or(now) - now).max(0) / 1000,
            s(a, "approval")
        );
        for c in a["changes"].as_array().into_iter().flatten() {
            println!("    would {}", c.as_str().unwrap_or_default());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `kernos approve ID [--no] [--reason WHY]`.
pub fn answer(
    app: &App,
    id: &str,
    approve: bool,
    reason: Option<&str>,
) -> anyhow::Result<ExitCode> {
    require_daemon(app)?;
    let body = json!({"approve": approve, "reason": reason});
    client::call(
        &app.data_dir,
        "POST",
        &format!("/v1/approvals/{id}"),
        Some(&body),
    )?
    .ok()?;
    println!("{} {id}", if approve { "approved" } else { "declined" });
    Ok(ExitCode::SUCCESS)
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str().unwrap_or("")
}
