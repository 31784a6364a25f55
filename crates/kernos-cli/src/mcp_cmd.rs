//! `kernos mcp serve|list|trust`: Kernos as an MCP server on stdio, and the external MCP
//! servers whose tools join the catalog.

use std::process::ExitCode;

use anyhow::Context;
use kernos_core::time::now_ms;
use kernos_core::{ActionId, Actor, CancelToken, LOCAL_ORG};
use kernos_engine::{Quiet, Session};
use kernos_mcp::{ServerConfig, Snapshot, Status, ToolInfo, snapshot};
use serde_json::json;

use crate::app::App;
use crate::cli::McpCmd;
use crate::term;

/// Runs one `kernos mcp …` command.
pub fn run(app: &App, cmd: McpCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        McpCmd::Serve => serve(app),
        McpCmd::List => list(app),
        McpCmd::Trust { server, yes } => trust(app, &server, yes),
    }
}

/// For each server whose latest `mcp.changed` in the journal is newer than its latest
/// `mcp.trusted`: what changed. Its tools fail until it is trusted again.
fn changed_since_trusted(app: &App) -> Vec<(String, Vec<String>)> {
    let Ok(journal) = kernos_journal::Journal::open_read_only(&app.data_dir) else {
        return Vec::new();
    };
    let q = kernos_journal::Query {
        kind_prefix: Some("mcp.".into()),
        newest_first: true,
        ..kernos_journal::Query::default()
    };
    let mut seen: Vec<String> = Vec::new();
    let mut changed = Vec::new();
    for e in journal.query(&q).unwrap_or_default() {
        let is_change = e.kind == kernos_mcp::MCP_CHANGED;
        if !is_change && e.kind != kernos_mcp::MCP_TRUSTED {
            continue;
        }
        let Some(server) = e.payload["server"].as_str() else {
            continue;
        };
        if seen.iter().any(|s| s == server) {
            continue;
        }
        seen.push(server.to_owned());
        if is_change {
            let what = e.payload["changes"]
                .as_array()
                .map(|c| {
                    c.iter()
                        .filter_map(|x| x.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            changed.push((server.to_owned(), what));
        }
    }
    changed
}

/// Every configured server, how it is reached and where it stands.
fn list(app: &App) -> anyhow::Result<ExitCode> {
    let catalog = app.catalog();
    let changed = changed_since_trusted(app);
    let change_of = |name: &str| changed.iter().find(|(s, _)| s == name).map(|(_, c)| c);
    if app.global.json {
        let v: Vec<_> = catalog
            .servers
            .iter()
            .map(|r| {
                let (status, hash, tools) = match &r.status {
                    Status::Trusted { .. } if change_of(&r.name).is_some() => ("changed", None, 0),
                    Status::Trusted { hash, tools } => ("trusted", Some(hash.clone()), *tools),
                    Status::NotReviewed => ("not reviewed", None, 0),
                    Status::Broken(_) => ("broken", None, 0),
                };
                json!({
                    "name": r.name,
                    "status": status,
                    "hash": hash,
                    "tools": tools,
                    "changes": change_of(&r.name),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(ExitCode::SUCCESS);
    }
    if catalog.servers.is_empty() {
        println!(
            "no MCP servers configured: add [[mcp.servers]] to the config (kernos config edit)"
        );
        return Ok(ExitCode::SUCCESS);
    }
    let style = app.style;
    for r in &catalog.servers {
        let origin = app
            .config
            .mcp
            .server(&r.name)
            .map(origin)
            .unwrap_or_default();
        let status = match (&r.status, change_of(&r.name)) {
            (Status::Trusted { .. }, Some(c)) => style.red(&format!(
                "changed since trusted ({}), its tools are disabled: kernos mcp trust {}",
                c.join("; "),
                r.name
            )),
            (Status::Trusted { hash, tools }, None) => style.green(&format!(
                "trusted: {tools} tool{} (pin {})",
                if *tools == 1 { "" } else { "s" },
                &hash[..hash.len().min(12)]
            )),
            (Status::NotReviewed, _) => {
                style.yellow(&format!("not reviewed: kernos mcp trust {}", r.name))
            }
            (Status::Broken(why), _) => style.red(&format!("broken pin: {why}")),
        };
        println!(
            "{}  {}  {}",
            style.bold(&r.name),
            status,
            style.dim(&origin)
        );
        if let Some(s) = &r.server {
            for t in &s.snapshot.tools {
                println!("  mcp.{}.{}  {}", r.name, t.name, style.dim(&t.summary()));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// How a server is reached, for listings.
fn origin(s: &ServerConfig) -> String {
    s.command
        .as_ref()
        .map(|c| c.join(" "))
        .or_else(|| s.url.clone())
        .unwrap_or_default()
}

/// Lists the server's live tools (confined, like every call), shows them and what changed
/// since the last pin, asks, pins them and journals `mcp.trusted`.
fn trust(app: &App, name: &str, yes: bool) -> anyhow::Result<ExitCode> {
    let Some(server) = app.config.mcp.server(name) else {
        let known: Vec<&str> = app
            .config
            .mcp
            .servers
            .iter()
            .map(|s| s.name.as_str())
            .collect();
        anyhow::bail!(
            "no MCP server {name:?} in the config (configured: {})",
            if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            }
        );
    };
    let runner = crate::app::runner(&app.config, &app.data_dir);
    let tools = kernos_mcp::list_tools(server, crate::app::mcp_driver(), &*runner, &app.env())
        .with_context(|| format!("cannot list the tools of MCP server {name}"))?;
    let previous = snapshot::load(&app.data_dir, name).unwrap_or(None);
    let hash = kernos_mcp::snapshot::tools_hash(&tools);
    let changes = previous
        .as_ref()
        .map(|p| kernos_mcp::snapshot::diff(&p.tools, &tools));
    if !app.global.json {
        show(app, server, &tools, changes.as_deref());
    }
    if previous.as_ref().is_some_and(|p| p.hash == hash) {
        if app.global.json {
            println!(
                "{}",
                json!({"server": name, "hash": hash, "changed": false})
            );
        } else {
            println!("unchanged since it was trusted: nothing to do");
        }
        return Ok(ExitCode::SUCCESS);
    }
    if !yes {
        if !term::interactive() {
            anyhow::bail!("not trusting {name} without a terminal to ask; add --yes");
        }
        if !term::ask_word(
            &format!("Trust these tools of {name}? Type \"yes\": "),
            "yes",
        )? {
            println!("not trusted");
            return Ok(ExitCode::from(1));
        }
    }
    let actor = Actor::current_user();
    let snap = Snapshot {
        server: name.to_owned(),
        hash: hash.clone(),
        trusted_by: actor.to_string(),
        trusted_at_ms: now_ms(),
        tools,
    };
    let engine = app.reader()?;
    let session = Session {
        env: app.env(),
        actor,
        org: LOCAL_ORG.into(),
        action: ActionId::generate(),
        cancel: CancelToken::new(),
        observer: &Quiet,
    };
    // Journaled first: a crash in between leaves a record of a pin that may be missing, never
    // a pin without a record.
    let names: Vec<&str> = snap.tools.iter().map(|t| t.name.as_str()).collect();
    engine.append_action(
        &session,
        kernos_mcp::MCP_TRUSTED,
        json!({
            "server": name,
            "hash": hash,
            "tools": names,
            "changes": changes,
            "by": snap.trusted_by,
        }),
    )?;
    let path = snapshot::save(&app.data_dir, &snap)?;
    if app.global.json {
        println!(
            "{}",
            json!({"server": name, "hash": hash, "changed": true, "tools": names})
        );
    } else {
        println!(
            "trusted {} tool{} of {name} (pinned in {})",
            names.len(),
            if names.len() == 1 { "" } else { "s" },
            path.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The review: each tool with its summary, the server's hints, what the config declares it
/// does, and what changed since the last pin.
fn show(app: &App, server: &ServerConfig, tools: &[ToolInfo], changes: Option<&[String]>) {
    let style = app.style;
    println!(
        "{} — {} tool{}",
        style.bold(&server.name),
        tools.len(),
        if tools.len() == 1 { "" } else { "s" }
    );
    for t in tools {
        let decl = server.decl(&t.name);
        let effects: Vec<&str> = decl.effects.iter().map(|e| e.as_str()).collect();
        let declared = if server.tools.contains_key(&t.name) || server.default.is_some() {
            format!("declared {}", effects.join("+"))
        } else {
            "undeclared: may change anything, always asks".to_owned()
        };
        println!(
            "  mcp.{}.{}  {}  {}",
            server.name,
            t.name,
            style.dim(&t.summary()),
            style.yellow(&declared)
        );
        if let Some(a) = &t.annotations {
            println!("      server's hints (not trusted): {a}");
        }
    }
    match changes {
        None => println!("never trusted before"),
        Some([]) => {}
        Some(c) => {
            println!("changed since it was last trusted:");
            for line in c {
                println!("  - {line}");
            }
        }
    }
}

/// `kernos mcp serve`: MCP on stdio, relayed to the running daemon or served by one started
/// here (see `kernos_server::serve_stdio`). Logs go to stderr: stdout carries only MCP.
fn serve(app: &App) -> anyhow::Result<ExitCode> {
    kernos_server::init_logging();
    kernos_server::serve_stdio(crate::daemon_cmd::daemon_options(app))?;
    Ok(ExitCode::SUCCESS)
}
