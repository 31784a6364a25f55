//! `kernos leases` and `kernos lease grant|show|renew|revoke`: capability leases, through the
//! running daemon (leases belong to its agents, schedules and API keys; there is nothing to
//! do with one without it). On the Unix socket the caller is the host operator, so leases are
//! granted in org `local`.

use std::process::ExitCode;

use anyhow::bail;
use serde_json::{Value, json};

use crate::app::App;
use crate::cli::{LeaseCmd, LeaseGrantArgs};
use crate::daemon_client as client;
use crate::render;

/// Fails unless a daemon answers on the data directory's socket.
fn require_daemon(app: &App) -> anyhow::Result<()> {
    if !client::available(&app.data_dir) {
        bail!(
            "capability leases are kept by the daemon, and none answers on {}: start it with `kernos serve`",
            kernos_server::socket_path(&app.data_dir).display()
        );
    }
    Ok(())
}

/// `kernos leases [--grantee G]`.
pub fn list(app: &App, grantee: Option<&str>) -> anyhow::Result<ExitCode> {
    require_daemon(app)?;
    let path = match grantee {
        Some(g) => format!("/v1/leases?grantee={}", encode(g)),
        None => "/v1/leases".to_owned(),
    };
    let leases = client::call(&app.data_dir, "GET", &path, None)?
        .ok()?
        .json()?;
    if app.global.json {
        println!("{}", serde_json::to_string_pretty(&leases)?);
        return Ok(ExitCode::SUCCESS);
    }
    let rows = leases.as_array().map(Vec::as_slice).unwrap_or_default();
    if rows.is_empty() {
        println!(
            "no leases yet: kernos lease grant --grantee key:ID --action 'fs.*' --path DIR --ttl 1h"
        );
    }
    for l in rows {
        println!(
            "{}  {:<8} {:<34} up to {:<6} {}  {}",
            s(l, "id"),
            s(l, "state"),
            s(l, "grantee"),
            s(l, "max_risk"),
            expires(l),
            covers(l)
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `kernos lease …`.
pub fn run(app: &App, cmd: LeaseCmd) -> anyhow::Result<ExitCode> {
    require_daemon(app)?;
    let (method, path, body) = match cmd {
        LeaseCmd::Grant(a) => ("POST", "/v1/leases".to_owned(), Some(grant_body(*a))),
        LeaseCmd::Show { id } => ("GET", format!("/v1/leases/{}", encode(&id)), None),
        LeaseCmd::Renew { id, ttl } => (
            "POST",
            format!("/v1/leases/{}/renew", encode(&id)),
            Some(json!({"ttl_s": ttl.as_secs()})),
        ),
        LeaseCmd::Revoke { id } => ("DELETE", format!("/v1/leases/{}", encode(&id)), None),
    };
    let lease = client::call(&app.data_dir, method, &path, body.as_ref())?
        .ok()?
        .json()?;
    if app.global.json {
        render::json_line(&lease)?;
    } else {
        print_lease(&lease);
    }
    Ok(ExitCode::SUCCESS)
}

/// The POST /v1/leases body from the command line.
fn grant_body(a: LeaseGrantArgs) -> Value {
    let mut budget = serde_json::Map::new();
    if let Some(n) = a.max_steps {
        budget.insert("max_steps".into(), json!(n));
    }
    if let Some(u) = a.max_units {
        budget.insert("max_units".into(), json!(u));
    }
    json!({
        "grantee": a.grantee,
        "capabilities": {"actions": a.action, "effects": a.effect},
        "scope": {
            "paths": a.path.iter().map(|p| std::path::absolute(p).unwrap_or_else(|_| p.clone())).collect::<Vec<_>>(),
            "services": a.service,
            "packages": a.package,
            "hosts": a.host,
            "ports": a.port,
        },
        "max_risk": a.max_risk,
        "ttl_s": a.ttl.as_secs(),
        "budget": budget,
    })
}

/// One lease, in full.
fn print_lease(l: &Value) {
    println!("lease {}  ({})", s(l, "id"), s(l, "state"));
    println!("  for        {}", s(l, "grantee"));
    println!("  covers     {}", covers(l));
    println!("  scope      {}", scope(l));
    println!("  up to      {} risk", s(l, "max_risk"));
    println!("  {}", expires(l));
    println!(
        "  used       {} steps, {} run units{}",
        l["used"]["steps"].as_u64().unwrap_or(0),
        l["used"]["units"].as_f64().unwrap_or(0.0),
        budget(l)
    );
    println!("  granted by {}", s(l, "granted_by"));
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str().unwrap_or("")
}

/// The strings of a list field, comma-separated.
fn joined(v: &Value) -> String {
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_owned))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

fn covers(l: &Value) -> String {
    let c = &l["capabilities"];
    let mut parts = Vec::new();
    let actions = joined(&c["actions"]);
    if !actions.is_empty() {
        parts.push(actions);
    }
    let effects = joined(&c["effects"]);
    if !effects.is_empty() {
        parts.push(format!("effects {effects}"));
    }
    parts.join("; ")
}

fn scope(l: &Value) -> String {
    let parts: Vec<String> = ["paths", "services", "packages", "hosts", "ports"]
        .iter()
        .filter_map(|k| {
            let j = joined(&l["scope"][k]);
            (!j.is_empty()).then(|| format!("{k} {j}"))
        })
        .collect();
    if parts.is_empty() {
        "nothing beyond the capabilities".into()
    } else {
        parts.join("; ")
    }
}

fn budget(l: &Value) -> String {
    let b = &l["budget"];
    let mut out = Vec::new();
    if let Some(n) = b["max_steps"].as_u64() {
        out.push(format!("{n} steps"));
    }
    if let Some(u) = b["max_units"].as_f64() {
        out.push(format!("{u} units"));
    }
    if out.is_empty() {
        String::new()
    } else {
        format!(" of {}", out.join(", "))
    }
}

/// When it expires (or expired), relative to now.
fn expires(l: &Value) -> String {
    let at = l["expires_ms"].as_i64().unwrap_or(0);
    let left = at - kernos_core::time::now_ms();
    let d = humantime::format_duration(std::time::Duration::from_secs(left.unsigned_abs() / 1000));
    if left > 0 {
        format!("expires in {d}")
    } else {
        format!("expired {d} ago")
    }
}

/// Percent-encodes what goes into a path segment or query value (ids and grantees are plain,
/// but a typo should not make another request).
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.:~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
