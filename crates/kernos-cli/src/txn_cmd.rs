//! `kernos history`, `kernos show <id>` (`kernos undo` is a request: see `request::run`).
//! With a daemon running both read through it, like every other command (one view).

use std::process::ExitCode;

use kernos_core::event::kind;
use kernos_core::{Event, TxId};
use kernos_engine::payload::{
    StepDecided, StepFailed, StepFinished, TxFinished, TxStarted, TxUndone,
};
use kernos_engine::{TxSummary, short_id};

use crate::app::App;
use crate::daemon_client as client;
use crate::render;

/// The newest transactions: the daemon's view when one runs, else the journal's.
fn transactions(app: &App, limit: usize) -> anyhow::Result<Vec<TxSummary>> {
    if client::available(&app.data_dir) {
        let path = format!("/v1/state/transactions?limit={limit}");
        let v = client::call(&app.data_dir, "GET", &path, None)?
            .ok()?
            .json()?;
        return Ok(serde_json::from_value(v)?);
    }
    Ok(app.reader()?.history(limit, None)?)
}

/// Every event of a transaction (by full id or a unique part), from the daemon when one runs.
fn events(app: &App, id: &str) -> anyhow::Result<(TxId, Vec<Event>)> {
    if client::available(&app.data_dir) {
        let path = format!("/v1/state/transactions/{id}");
        let v = client::call(&app.data_dir, "GET", &path, None)?
            .ok()?
            .json()?;
        let events: Vec<Event> = serde_json::from_value(v)?;
        let tx = events
            .iter()
            .find_map(|e| e.tx)
            .ok_or_else(|| anyhow::anyhow!("the daemon answered a transaction with no events"))?;
        return Ok((tx, events));
    }
    let engine = app.reader()?;
    let tx = engine.resolve_tx(id)?;
    Ok((tx, engine.events_of(tx)?))
}

/// The widest status `history` shows ("interrupted", "cancelled", "succeeded", …).
const STATUS_WIDTH: usize = 11;

/// `kernos history`: the newest transactions.
pub fn history(app: &App, limit: usize) -> anyhow::Result<ExitCode> {
    let txs = transactions(app, limit)?;
    if app.global.json {
        println!("{}", serde_json::to_string_pretty(&txs)?);
        return Ok(ExitCode::SUCCESS);
    }
    if txs.is_empty() {
        println!(
            "nothing yet: run a request, e.g. kernos \"show the 5 largest files in /var/log\""
        );
        return Ok(ExitCode::SUCCESS);
    }
    let s = app.style;
    for t in txs {
        // Padded before it is coloured: escape codes count as characters to `format!`.
        let status = match (t.status, t.undone) {
            (_, true) => s.dim(&format!("{:<STATUS_WIDTH$}", "undone")),
            (Some(st), _) => format!("{:<STATUS_WIDTH$}", st.as_str()),
            (None, _) => s.red(&format!("{:<STATUS_WIDTH$}", "interrupted")),
        };
        let what = t.request.clone().unwrap_or_else(|| t.steps.join(", "));
        println!(
            "{}  {:>8}  {}  {}{}",
            s.bold(&short_id(&t.tx)),
            render::ago(t.started_ms),
            status,
            render::fit(&what, 70),
            if t.undoable {
                s.dim("  (undoable)")
            } else {
                String::new()
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `kernos show <id>`: a transaction in full, from the journal.
pub fn show(app: &App, id: &str) -> anyhow::Result<ExitCode> {
    let (tx, events) = events(app, id)?;
    // Outputs too large to journal inline live in the blob store, read directly.
    let engine = app.reader()?;
    if app.global.json {
        println!("{}", serde_json::to_string_pretty(&events)?);
        return Ok(ExitCode::SUCCESS);
    }
    let s = app.style;
    let home = app.home();
    for e in &events {
        let p = &e.payload;
        match e.kind.as_str() {
            kind::TX_STARTED => {
                if let Ok(st) = serde_json::from_value::<TxStarted>(p.clone()) {
                    println!(
                        "{} {}  by {}  in {}",
                        s.bold("transaction"),
                        tx,
                        e.actor,
                        st.cwd
                    );
                    println!("started  {}", render::time_ms(e.ts_ms));
                    if let Some(r) = st.plan.request {
                        println!("request  {r}");
                    }
                }
            }
            kind::STEP_DECIDED => {
                if let Ok(d) = serde_json::from_value::<StepDecided>(p.clone()) {
                    println!(
                        "\n{} {}  {}  risk {}  {}",
                        s.bold(&format!("{}.", d.step + 1)),
                        s.bold(&d.name),
                        render::args_line(&d.args, &home),
                        s.risk(d.risk),
                        d.decision
                    );
                    for r in d.reasons.iter().take(3) {
                        println!("   {}", s.dim(r));
                    }
                }
            }
            kind::APPROVAL_DECIDED => {
                let ok = p["approved"].as_bool().unwrap_or(false);
                println!(
                    "   {} {}",
                    if ok { "approved:" } else { "declined:" },
                    p["reason"].as_str().unwrap_or("")
                );
            }
            kind::STEP_FINISHED => {
                if let Ok(f) = serde_json::from_value::<StepFinished>(p.clone()) {
                    let out = engine.stored_output(&f);
                    for c in &out.changes {
                        println!("   {}", c.describe());
                    }
                    let text = render::output(&out, &home, s);
                    for line in text.lines().take(40) {
                        println!("   {line}");
                    }
                    println!("   {}", s.dim(&format!("done in {} ms", f.wall_ms)));
                }
            }
            kind::STEP_FAILED => {
                if let Ok(f) = serde_json::from_value::<StepFailed>(p.clone()) {
                    println!(
                        "   {} {}",
                        s.red(if f.cancelled { "cancelled:" } else { "failed:" }),
                        f.error
                    );
                }
            }
            kind::TX_FINISHED => {
                if let Ok(f) = serde_json::from_value::<TxFinished>(p.clone()) {
                    println!(
                        "\n{} {} ({} of {} steps)",
                        s.bold("ended"),
                        f.status.as_str(),
                        f.done,
                        f.total
                    );
                }
            }
            kind::TX_UNDONE => {
                if let Ok(u) = serde_json::from_value::<TxUndone>(p.clone()) {
                    println!(
                        "{} {} by {}: {} put back, {} left alone",
                        s.bold("undone"),
                        render::time_ms(e.ts_ms),
                        e.actor,
                        u.undone.len(),
                        u.conflicts.len()
                    );
                }
            }
            _ => {}
        }
    }
    Ok(ExitCode::SUCCESS)
}
