//! `kernos agents` and `kernos agent spawn|list|show|logs|pause|resume|kill|clone`: agents that
//! work in the daemon (through its Unix socket, as the local organisation's owner). The work
//! is the daemon's; this only asks and prints.

use std::process::ExitCode;

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::app::App;
use crate::cli::AgentCmd;
use crate::daemon_client as client;
use crate::render;

/// Runs one agent command against the daemon.
pub fn run(app: &App, cmd: AgentCmd) -> anyhow::Result<ExitCode> {
    if !client::available(&app.data_dir) {
        bail!(
            "agents work in the daemon, and none answers on {}: start it with `kernos serve` (and configure a language model, see `kernos models`)",
            kernos_server::socket_path(&app.data_dir).display()
        );
    }
    match cmd {
        AgentCmd::Spawn {
            max_steps,
            max_tokens,
            time,
            max_units,
            max_cost,
            lane,
            paused,
            goal,
        } => {
            let body = json!({
                "goal": goal.join(" "),
                "lane": lane,
                "cwd": app.env().cwd.display().to_string(),
                "paused": paused,
                "budget": {
                    "max_steps": max_steps,
                    "max_tokens": max_tokens,
                    "max_time_s": time.map(|t| t.as_secs().max(1)),
                    "max_units": max_units,
                    "max_cost_usd": max_cost,
                },
            });
            let v = call(app, "POST", "/v1/agents", Some(&without_nulls(body)))?;
            print_one(app, &v, "spawned")
        }
        AgentCmd::List { state } => list(app, state.as_deref()),
        AgentCmd::Show { id } => {
            let id = resolve(app, &id)?;
            let v = call(app, "GET", &format!("/v1/agents/{id}"), None)?;
            if app.global.json {
                return print_json(&v);
            }
            print_view(&v);
            for (i, o) in v["observations"]
                .as_array()
                .into_iter()
                .flatten()
                .enumerate()
            {
                if i == 0 {
                    println!("observed:");
                }
                println!(
                    "  {}\n    {}",
                    o["step"].as_str().unwrap_or(""),
                    render::truncate(o["text"].as_str().unwrap_or("").trim(), 300)
                        .replace('\n', "\n    ")
                );
            }
            if let Some(actions) = v["actions"].as_array().filter(|a| !a.is_empty()) {
                let ids: Vec<&str> = actions.iter().filter_map(Value::as_str).collect();
                println!("actions: {}", ids.join(" "));
            }
            Ok(ExitCode::SUCCESS)
        }
        AgentCmd::Logs { id } => {
            let id = resolve(app, &id)?;
            let v = call(app, "GET", &format!("/v1/agents/{id}/logs"), None)?;
            if app.global.json {
                return print_json(&v);
            }
            for e in v.as_array().into_iter().flatten() {
                println!(
                    "{:>8}  {:<18} {}",
                    e["seq"],
                    e["kind"].as_str().unwrap_or(""),
                    summary(e)
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        AgentCmd::Pause { id } => op(app, &id, "pause", "pausing (a running step finishes first)"),
        AgentCmd::Resume { id } => op(app, &id, "resume", "resumed"),
        AgentCmd::Kill { id } => op(app, &id, "kill", "killed"),
        AgentCmd::Clone { id } => op(app, &id, "clone", "spawned a clone"),
    }
}

fn call(app: &App, method: &str, path: &str, body: Option<&Value>) -> anyhow::Result<Value> {
    client::call(&app.data_dir, method, path, body)?
        .ok()?
        .json()
}

fn op(app: &App, id: &str, verb: &str, done: &str) -> anyhow::Result<ExitCode> {
    let id = resolve(app, id)?;
    let v = call(app, "POST", &format!("/v1/agents/{id}/{verb}"), None)?;
    print_one(app, &v, done)
}

/// The full id of the one agent whose id contains `part`.
fn resolve(app: &App, part: &str) -> anyhow::Result<String> {
    let part = part.trim().to_ascii_lowercase();
    if part.len() == 26 {
        return Ok(part);
    }
    if part.len() < 4 {
        bail!("give at least 4 characters of the agent id (`kernos agents` lists them)");
    }
    let all = call(app, "GET", "/v1/agents", None)?;
    let hits: Vec<&str> = all
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a["agent"].as_str())
        .filter(|a| a.contains(&part))
        .collect();
    match hits.as_slice() {
        [one] => Ok((*one).to_owned()),
        [] => bail!("no agent id contains {part:?}; `kernos agents` lists them"),
        many => bail!(
            "{part:?} is in {} agent ids ({}); give more of it",
            many.len(),
            many.join(", ")
        ),
    }
}

fn list(app: &App, state: Option<&str>) -> anyhow::Result<ExitCode> {
    let path = match state {
        Some(s) => format!("/v1/agents?state={s}"),
        None => "/v1/agents".into(),
    };
    let v = call(app, "GET", &path, None)?;
    if app.global.json {
        return print_json(&v);
    }
    let agents = v
        .as_array()
        .context("the daemon's agent list is not a list")?;
    if agents.is_empty() {
        println!("no agents: kernos agent spawn \"<goal>\"");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<10} {:<18} {:>9} {:>13} {:>9}  {:<10} GOAL",
        "AGENT", "STATE", "STEPS", "TOKENS", "TIME", "LEASE"
    );
    for a in agents {
        let u = &a["used"];
        let b = &a["budget"];
        let lease = a["lease"].as_str().map_or("-".to_owned(), |l| {
            l[l.len().saturating_sub(8)..].to_owned()
        });
        println!(
            "{:<10} {:<18} {:>9} {:>13} {:>9}  {:<10} {}",
            short(a),
            state_of(a),
            format!("{}/{}", u["steps"], b["max_steps"]),
            format!("{}/{}", u["tokens"], b["max_tokens"]),
            render::duration(u["time_s"].as_f64().unwrap_or(0.0)),
            lease,
            render::truncate(a["goal"].as_str().unwrap_or(""), 60)
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn print_one(app: &App, v: &Value, done: &str) -> anyhow::Result<ExitCode> {
    if app.global.json {
        return print_json(v);
    }
    println!("{done}: {}", v["agent"].as_str().unwrap_or(""));
    print_view(v);
    Ok(ExitCode::SUCCESS)
}

fn print_view(v: &Value) {
    let u = &v["used"];
    let b = &v["budget"];
    println!("agent   {}", v["agent"].as_str().unwrap_or(""));
    println!("goal    {}", v["goal"].as_str().unwrap_or(""));
    println!("state   {}", state_of(v));
    if let Some(r) = v["reason"].as_str() {
        println!("why     {r}");
    }
    if let Some(l) = v["lease"].as_str() {
        println!("lease   {l} (steps inside it run without asking; `kernos lease show {l}`)");
    }
    println!(
        "used    {}/{} steps, {}/{} tokens, {} of {}, {} units, ${:.4}",
        u["steps"],
        b["max_steps"],
        u["tokens"],
        b["max_tokens"],
        render::duration(u["time_s"].as_f64().unwrap_or(0.0)),
        render::duration(b["max_time_s"].as_f64().unwrap_or(0.0)),
        u["units"].as_f64().unwrap_or(0.0),
        u["cost_usd"].as_f64().unwrap_or(0.0)
    );
    if let Some(a) = v["answer"].as_str() {
        println!("answer  (from the model) {a}");
    }
}

fn state_of(v: &Value) -> String {
    let s = v["state"].as_str().unwrap_or("?");
    match v["waiting_on"].as_str() {
        Some(w) => format!("{s} ({w})"),
        None => s.to_owned(),
    }
}

fn short(v: &Value) -> String {
    let id = v["agent"].as_str().unwrap_or("");
    id[id.len().saturating_sub(8)..].to_owned()
}

/// One line about an event of an agent's log.
fn summary(e: &Value) -> String {
    let p = &e["payload"];
    match e["kind"].as_str().unwrap_or("") {
        "agent.spawned" => format!("goal: {}", p["goal"].as_str().unwrap_or("")),
        "agent.state" => {
            let mut s = p["state"].as_str().unwrap_or("").to_owned();
            if let Some(w) = p["wait"].as_str() {
                s.push_str(&format!(" ({w})"));
            }
            if let Some(r) = p["reason"].as_str() {
                s.push_str(&format!(": {r}"));
            }
            s
        }
        "agent.snapshot" => format!(
            "{} steps, {} tokens{}",
            p["used"]["steps"],
            p["used"]["tokens"],
            p["pending"]
                .as_str()
                .map(|a| format!(", next action {a}"))
                .unwrap_or_default()
        ),
        "llm.call" => format!(
            "{}/{} {} tokens in, {} out{}",
            p["provider"].as_str().unwrap_or(""),
            p["model"].as_str().unwrap_or(""),
            p["input_tokens"].as_u64().unwrap_or(0),
            p["output_tokens"].as_u64().unwrap_or(0),
            p["error"]
                .as_str()
                .map(|e| format!(" (failed: {e})"))
                .unwrap_or_default()
        ),
        _ => e["action"]
            .as_str()
            .map(|a| format!("action {a}"))
            .unwrap_or_default(),
    }
}

fn print_json(v: &Value) -> anyhow::Result<ExitCode> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(ExitCode::SUCCESS)
}

/// The spawn body without the options left out (the daemon fills in its defaults).
fn without_nulls(mut v: Value) -> Value {
    if let Value::Object(m) = &mut v {
        m.retain(|_, x| !x.is_null());
        for x in m.values_mut() {
            if x.is_object() {
                *x = without_nulls(x.take());
            }
        }
    }
    v
}
