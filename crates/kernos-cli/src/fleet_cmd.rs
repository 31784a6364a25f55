//! `kernos node join|leave`, `kernos fleet nodes`, and how a fan-out's progress prints.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use kernos_server::FleetConfig;
use serde_json::{Value, json};

use crate::app::App;
use crate::cli::{FleetCmd, NodeCmd};
use crate::daemon_client as client;
use crate::render;
use crate::term::Style;

/// Where `kernos node join` records membership (it wins over `[fleet]` in the config).
fn membership_file(data_dir: &Path) -> PathBuf {
    data_dir.join("fleet.toml")
}

/// The membership `kernos node join` recorded, if any.
pub fn membership(data_dir: &Path) -> Option<FleetConfig> {
    let text = std::fs::read_to_string(membership_file(data_dir)).ok()?;
    #[derive(serde::Deserialize)]
    struct File {
        fleet: FleetConfig,
    }
    match toml::from_str::<File>(&text) {
        Ok(f) => Some(f.fleet),
        Err(e) => {
            eprintln!(
                "kernos: ignoring {}: {e}",
                membership_file(data_dir).display()
            );
            None
        }
    }
}

/// `kernos node …`
pub fn node(app: &App, cmd: NodeCmd) -> anyhow::Result<ExitCode> {
    let file = membership_file(&app.data_dir);
    match cmd {
        NodeCmd::Join {
            url,
            creds,
            nkey,
            tls_ca,
            name,
            org,
            labels,
            controller,
        } => {
            let name = match name {
                Some(n) => n,
                None => std::fs::read_to_string("/proc/sys/kernel/hostname")
                    .map(|h| h.trim().to_owned())
                    .context("cannot read the host name; give --name")?,
            };
            let mut map = std::collections::BTreeMap::new();
            for l in &labels {
                let Some((k, v)) = l.split_once('=') else {
                    bail!("label {l:?} is not KEY=VALUE, e.g. role=web");
                };
                map.insert(k.trim().to_owned(), v.trim().to_owned());
            }
            let abs = |p: Option<PathBuf>| -> anyhow::Result<Option<PathBuf>> {
                p.map(|p| {
                    std::fs::canonicalize(&p)
                        .with_context(|| format!("cannot read {}", p.display()))
                })
                .transpose()
            };
            let cfg = FleetConfig {
                url,
                creds: abs(creds)?,
                nkey: abs(nkey)?,
                tls_ca: abs(tls_ca)?,
                tls: false,
                org,
                controller,
                node: Some(name.clone()),
                labels: map,
                heartbeat_s: 5,
                max_risk: kernos_core::Risk::High,
                local_org: kernos_core::LOCAL_ORG.into(),
                services: Vec::new(),
                packages: Vec::new(),
                parallel: 4,
                cwd: None,
            };
            cfg.validate().map_err(anyhow::Error::msg)?;
            // Private, as the daemon requires of its data directory.
            std::os::unix::fs::DirBuilderExt::mode(
                std::fs::DirBuilder::new().recursive(true),
                0o700,
            )
            .create(&app.data_dir)
            .with_context(|| format!("cannot create {}", app.data_dir.display()))?;
            #[derive(serde::Serialize)]
            struct File<'a> {
                fleet: &'a FleetConfig,
            }
            let text = toml::to_string(&File { fleet: &cfg })?;
            std::fs::write(&file, text)
                .with_context(|| format!("cannot write {}", file.display()))?;
            let running = client::available(&app.data_dir);
            println!(
                "joined {} as node {name}{}",
                cfg.url,
                if running {
                    "; restart `kernos serve` to start taking plans"
                } else {
                    "; `kernos serve` announces it and takes plans while it runs"
                }
            );
            Ok(ExitCode::SUCCESS)
        }
        NodeCmd::Leave => {
            let Some(cfg) = membership(&app.data_dir) else {
                bail!("this machine is not a node (no {})", file.display());
            };
            if client::available(&app.data_dir) {
                bail!(
                    "stop `kernos serve` first: while it runs it announces the node and takes its plans"
                );
            }
            kernos_server::fleet_leave(&cfg).with_context(|| {
                format!("cannot tell the broker at {} that this node left", cfg.url)
            })?;
            std::fs::remove_file(&file)
                .with_context(|| format!("cannot remove {}", file.display()))?;
            println!("node {} left the fleet", cfg.node.as_deref().unwrap_or("?"));
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `kernos fleet …`
pub fn fleet(app: &App, cmd: FleetCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        FleetCmd::Nodes => {
            if !client::available(&app.data_dir) {
                bail!(
                    "the fleet is read through the daemon: start `kernos serve` with [fleet] controller = true"
                );
            }
            let v = client::call(&app.data_dir, "GET", "/v1/fleet/nodes", None)?
                .ok()?
                .json()?;
            if app.global.json {
                render::json_line(&v)?;
                return Ok(ExitCode::SUCCESS);
            }
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as i64)
                .unwrap_or(0);
            for n in v["nodes"].as_array().into_iter().flatten() {
                let labels: Vec<String> = n["labels"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                    .collect();
                let f = &n["facts"];
                println!(
                    "{:<16} {:<12} seen {:>5}s ago  {:<20} {} · {} · {} CPUs · mem {:.0}%",
                    n["name"].as_str().unwrap_or(""),
                    n["status"].as_str().unwrap_or(""),
                    (now - n["last_seen_ms"].as_i64().unwrap_or(now)) / 1000,
                    labels.join(","),
                    f["os"].as_str().unwrap_or(""),
                    f["kernel"].as_str().unwrap_or(""),
                    f["cpus"],
                    n["memory_used_pct"].as_f64().unwrap_or(0.0),
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// One line per node as a fan-out goes.
pub fn print_progress(kind: &str, p: &Value, style: Style) {
    let node = p["node"].as_str().unwrap_or("?");
    match kind {
        "fleet.node.sent" if p["offline"] == json!(true) => {
            println!(
                "  {node}: {}",
                style.yellow("offline: queued until it returns")
            );
        }
        "fleet.node.started" => println!("  {node}: {}", style.dim("running")),
        "fleet.node.finished" => {
            let outcome = p["outcome"].as_str().unwrap_or("?");
            let word = if outcome == "ok" {
                style.green(outcome)
            } else {
                style.red(outcome)
            };
            let tail = p["error"]
                .as_str()
                .map(|e| format!(": {e}"))
                .unwrap_or_default();
            println!("  {node}: {word}{tail}");
            for st in p["steps"].as_array().into_iter().flatten() {
                if let Some(t) = st["text"].as_str().filter(|t| !t.is_empty()) {
                    for line in t.lines().take(20) {
                        println!("    {line}");
                    }
                }
            }
        }
        _ => {}
    }
}

/// The end of a fan-out: the summary and the undo hint.
pub fn print_summary(r: &kernos_engine::RemoteOutcome, style: Style) {
    let what = if r.undo {
        "undone on the fleet"
    } else {
        "fleet"
    };
    let head = if r.report.all_ok() {
        style.green(&format!("{what}:"))
    } else {
        style.red(&format!("{what}:"))
    };
    println!("{head} {} (transaction {})", r.report.summary, r.tx);
}
