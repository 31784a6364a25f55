//! `kernos schedule add|list|show|pause|resume|remove|run-now`: schedules live in the daemon
//! (reached through its Unix socket as the local organisation's owner). `add` asks the daemon to
//! plan the request without storing it, shows the plan, and stores exactly that plan once the
//! person agrees: the approved plan is what every run runs.

use std::process::ExitCode;

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::app::App;
use crate::cli::ScheduleCmd;
use crate::daemon_client as client;
use crate::{render, term};

/// Runs one schedule command against the daemon.
pub fn run(app: &App, cmd: ScheduleCmd) -> anyhow::Result<ExitCode> {
    if !client::available(&app.data_dir) {
        bail!(
            "schedules run in the daemon, and none answers on {}: start it with `kernos serve`",
            kernos_server::socket_path(&app.data_dir).display()
        );
    }
    match cmd {
        ScheduleCmd::Add {
            when,
            request,
            missed,
            random_delay,
            yes,
        } => add(app, &when, &request.join(" "), &missed, random_delay, yes),
        ScheduleCmd::List => list(app),
        ScheduleCmd::Show { id } => {
            let id = resolve(app, &id)?;
            let v = call(app, "GET", &format!("/v1/schedules/{id}"), None)?;
            print(app, &v)
        }
        ScheduleCmd::Pause { id } => op(app, &id, "POST", "pause"),
        ScheduleCmd::Resume { id } => op(app, &id, "POST", "resume"),
        ScheduleCmd::Remove { id } => op(app, &id, "DELETE", ""),
        ScheduleCmd::RunNow { id } => {
            let id = resolve(app, &id)?;
            let v = call(app, "POST", &format!("/v1/schedules/{id}/run"), None)?;
            if app.global.json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                match v["status"].as_str() {
                    Some("requested") => println!("running {id} now"),
                    Some(other) => {
                        println!("{id}: {} — this request joins it", other.replace('_', " "))
                    }
                    None => println!("{v}"),
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn call(app: &App, method: &str, path: &str, body: Option<&Value>) -> anyhow::Result<Value> {
    client::call(&app.data_dir, method, path, body)?
        .ok()?
        .json()
}

fn add(
    app: &App,
    when: &str,
    request: &str,
    missed: &str,
    random_delay: Option<std::time::Duration>,
    yes: bool,
) -> anyhow::Result<ExitCode> {
    let mut body = json!({
        "when": when,
        "request": request,
        "cwd": app.env().cwd.display().to_string(),
        "missed": if missed == "skip" { "skip" } else { "run_once" },
        "random_delay_s": random_delay.map(|d| d.as_secs()),
        "dry_run": true,
    });
    let draft = call(app, "POST", "/v1/schedules", Some(&body))?;
    if !app.global.json {
        print_view(app, &draft);
    }
    if !yes {
        if !term::interactive() {
            bail!(
                "not storing a schedule without a terminal to ask; check the plan above and add --yes"
            );
        }
        let k = term::ask_key("Store this schedule? [y/N] ", &['y', 'n'], Some('n'))?;
        if k != 'y' {
            println!("not stored");
            return Ok(ExitCode::from(1));
        }
    }
    // The plan shown is the plan stored: not planned again.
    body["plan"] = draft["plan"].clone();
    body["dry_run"] = json!(false);
    let v = call(app, "POST", "/v1/schedules", Some(&body))?;
    if app.global.json {
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!("stored: {}", v["schedule"].as_str().unwrap_or(""));
    }
    Ok(ExitCode::SUCCESS)
}

fn op(app: &App, id: &str, method: &str, verb: &str) -> anyhow::Result<ExitCode> {
    let id = resolve(app, id)?;
    let path = if verb.is_empty() {
        format!("/v1/schedules/{id}")
    } else {
        format!("/v1/schedules/{id}/{verb}")
    };
    let v = call(app, method, &path, None)?;
    print(app, &v)
}

fn print(app: &App, v: &Value) -> anyhow::Result<ExitCode> {
    if app.global.json {
        println!("{}", serde_json::to_string_pretty(v)?);
    } else {
        print_view(app, v);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_view(app: &App, v: &Value) {
    let id = v["schedule"].as_str().unwrap_or("");
    if !id.is_empty() {
        println!("schedule  {id}");
    }
    println!("when      {}", v["describe"].as_str().unwrap_or(""));
    println!(
        "next      {}{}",
        v["next_due"].as_str().unwrap_or("never"),
        if v["paused"] == true { " (paused)" } else { "" }
    );
    if let Some(r) = v["running"].as_str() {
        println!("running   {r}");
    }
    if let Some(l) = v["last_run"].as_object() {
        println!(
            "last run  {} {}",
            l.get("run").and_then(Value::as_str).unwrap_or(""),
            l.get("outcome")
                .and_then(|o| o.get("status").or(o.get("outcome")))
                .and_then(Value::as_str)
                .unwrap_or("")
        );
    }
    if let Some(l) = v["lease"].as_str() {
        println!("lease     {l} (steps inside it run without asking)");
    }
    println!("plan:");
    for (i, s) in v["plan"]["steps"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let args = s["args"].as_object().cloned().unwrap_or_default();
        println!(
            "  {}. {}.{} {}",
            i + 1,
            s["tool"].as_str().unwrap_or(""),
            s["action"].as_str().unwrap_or(""),
            render::args_line(&args, &app.env().home.display().to_string())
        );
    }
}

fn list(app: &App) -> anyhow::Result<ExitCode> {
    let v = call(app, "GET", "/v1/schedules", None)?;
    if app.global.json {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(ExitCode::SUCCESS);
    }
    let all = v
        .as_array()
        .context("the daemon's schedule list is not a list")?;
    if all.is_empty() {
        println!("no schedules: kernos schedule add \"every day at 03:00\" \"<what to do>\"");
        return Ok(ExitCode::SUCCESS);
    }
    println!("{:<10} {:<28} {:<27} REQUEST", "SCHEDULE", "WHEN", "NEXT");
    for s in all {
        let id = s["schedule"].as_str().unwrap_or("");
        println!(
            "{:<10} {:<28} {:<27} {}",
            &id[id.len().saturating_sub(8)..],
            render::truncate(s["describe"].as_str().unwrap_or(""), 28),
            if s["paused"] == true {
                "paused".to_owned()
            } else {
                s["next_due"].as_str().unwrap_or("never").to_owned()
            },
            render::truncate(s["request"].as_str().unwrap_or("(a plan)"), 50)
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The full id of the one schedule whose id contains `part`.
fn resolve(app: &App, part: &str) -> anyhow::Result<String> {
    let part = part.trim().to_ascii_lowercase();
    if part.len() == 26 {
        return Ok(part);
    }
    if part.len() < 4 {
        bail!("give at least 4 characters of the schedule id (`kernos schedule list` shows them)");
    }
    let all = call(app, "GET", "/v1/schedules", None)?;
    let hits: Vec<&str> = all
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["schedule"].as_str())
        .filter(|s| s.contains(&part))
        .collect();
    match hits.as_slice() {
        [one] => Ok((*one).to_owned()),
        [] => bail!("no schedule id contains {part:?}; `kernos schedule list` shows them"),
        many => bail!(
            "{part:?} is in {} schedule ids; give more of it",
            many.len()
        ),
    }
}
