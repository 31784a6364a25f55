//! `kernos watch`: what the daemon is doing, live, in the terminal — where the monitors stand
//! and what waits for approval, then one line per event as it happens (the daemon's event
//! stream, through its Unix socket).

use std::process::ExitCode;

use anyhow::bail;
use serde_json::Value;

use crate::app::App;
use crate::daemon_client as client;
use crate::render;

/// Event kinds shown without `--all`: what someone watching the machine cares about.
const SHOWN: &[&str] = &[
    "monitor.",
    "schedule.",
    "agent.state",
    "approval.requested",
    "approval.decided",
    "action.finished",
    "webhook.failed",
];

/// Follows the daemon's events until the stream ends or Ctrl-C.
pub fn run(app: &App, all: bool) -> anyhow::Result<ExitCode> {
    if !client::available(&app.data_dir) {
        bail!(
            "nothing to watch: no daemon answers on {}; start it with `kernos serve`",
            kernos_server::socket_path(&app.data_dir).display()
        );
    }
    let now = |path: &str| -> anyhow::Result<Value> {
        client::call(&app.data_dir, "GET", path, None)?.ok()?.json()
    };
    for m in now("/v1/monitors")?.as_array().into_iter().flatten() {
        println!(
            "monitor   {:<24} {}{}",
            m["name"].as_str().unwrap_or(""),
            m["state"].as_str().unwrap_or(""),
            m["message"]
                .as_str()
                .map(|s| format!(" — {s}"))
                .unwrap_or_default()
        );
    }
    for a in now("/v1/state/approvals")?.as_array().into_iter().flatten() {
        println!(
            "waiting   {} {} ({}) asked by {}",
            a["approval"].as_str().unwrap_or(""),
            a["name"].as_str().unwrap_or(""),
            a["risk"].as_str().unwrap_or(""),
            a["requested_by"].as_str().unwrap_or("")
        );
    }
    println!("{}", app.style.dim("following events (Ctrl-C to stop)…"));
    let mut events = client::Events::open(&app.data_dir, "/v1/events")?;
    while let Some(e) = events.next_event()? {
        let kind = e.data["kind"].as_str().unwrap_or(&e.kind).to_owned();
        if !all && !SHOWN.iter().any(|k| kind.starts_with(k)) {
            continue;
        }
        if app.global.json {
            println!("{}", e.data);
            continue;
        }
        let ts = e.data["ts_ms"].as_i64().unwrap_or(0);
        let time = render::time_ms(ts);
        println!(
            "{}  {:<20} {}",
            time.get(11..19).unwrap_or(&time),
            kind,
            summary(&kind, &e.data)
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// One line about an event.
fn summary(kind: &str, e: &Value) -> String {
    let p = &e["payload"];
    let s = |v: &Value| v.as_str().unwrap_or("").to_owned();
    match kind {
        "monitor.fired" | "monitor.cleared" => s(&p["message"]),
        "monitor.failed" => format!("{}: {}", s(&p["monitor"]), s(&p["error"])),
        "schedule.transition" => format!("{} {}", s(&p["schedule"]), s(&p["transition"]["event"])),
        "agent.state" => format!(
            "{} {}{}",
            s(&p["agent"]),
            s(&p["state"]),
            p["reason"]
                .as_str()
                .map(|r| format!(": {r}"))
                .unwrap_or_default()
        ),
        "approval.requested" => format!(
            "{} {} ({}) asked by {}",
            s(&p["approval"]),
            s(&p["name"]),
            s(&p["risk"]),
            s(&p["requested_by"])
        ),
        "action.finished" => format!("{} {}", s(&e["action"]), s(&p["status"])),
        _ => s(&e["actor"]),
    }
}
