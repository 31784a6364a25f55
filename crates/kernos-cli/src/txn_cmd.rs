//! `kernos history`, `kernos show <id>`, `kernos undo [<id>]`.

use std::process::ExitCode;

use anyhow::bail;
use kernos_core::event::kind;
use kernos_core::{ActionId, Actor, CancelToken, LOCAL_ORG};
use kernos_engine::payload::{
    StepDecided, StepFailed, StepFinished, TxFinished, TxStarted, TxUndone,
};
use kernos_engine::{ApproveAll, DeclineAll, Engine, Quiet, Session, short_id};

use crate::app::App;
use crate::render;
use crate::term;

/// `kernos history`: the newest transactions.
pub fn history(app: &App, limit: usize) -> anyhow::Result<ExitCode> {
    let engine = app.engine()?;
    let txs = engine.history(limit, None)?;
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
        let status = match (t.status, t.undone) {
            (_, true) => s.dim("undone"),
            (Some(st), _) => st.as_str().to_owned(),
            (None, _) => s.red("interrupted"),
        };
        let what = t.request.clone().unwrap_or_else(|| t.steps.join(", "));
        println!(
            "{}  {:>8}  {:<11} {}{}",
            s.bold(&short_id(&t.tx)),
            render::ago(t.started_ms),
            status,
            render::truncate(&what, 70),
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
    let engine = app.engine()?;
    let tx = engine.resolve_tx(id)?;
    let events = engine.events_of(tx)?;
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

/// `kernos undo [<id>]`: shows what undo will do, asks, does it, reports.
pub fn undo(app: &App, id: Option<&str>, yes: bool, dry_run: bool) -> anyhow::Result<ExitCode> {
    let engine = app.engine()?;
    undo_with(app, &engine, id, yes, dry_run, &CancelToken::new())
}

/// Undo with an engine the caller already has (the REPL and "undo that").
pub fn undo_with(
    app: &App,
    engine: &Engine,
    id: Option<&str>,
    yes: bool,
    dry_run: bool,
    cancel: &CancelToken,
) -> anyhow::Result<ExitCode> {
    let tx = match id {
        Some(i) => engine.resolve_tx(i)?,
        None => match engine.last_undoable(None)? {
            Some(t) => t,
            None => bail!(
                "nothing to undo: no transaction that changed something is left undone (see `kernos history`)"
            ),
        },
    };
    let plan = engine.undo_plan(tx)?;
    let s = app.style;
    if !app.global.json {
        println!(
            "{} {}{}:",
            s.bold("Undo"),
            short_id(&tx),
            plan.request
                .as_ref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default()
        );
        for item in &plan.items {
            println!("  - {}", item.description);
        }
    }
    if dry_run {
        if app.global.json {
            println!("{}", serde_json::to_string_pretty(&plan)?);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let interactive = term::interactive();
    if !yes {
        if !interactive {
            bail!(
                "undo changes files; nothing was done. Run it in a terminal to confirm, or pass --yes"
            );
        }
        if term::ask_key("Undo this? [y/n] ", &['y', 'n'], Some('n'))? != 'y' {
            println!("nothing undone");
            return Ok(ExitCode::from(1));
        }
    }
    let session = Session {
        env: app.env(),
        actor: Actor::current_user(),
        org: LOCAL_ORG.into(),
        action: ActionId::generate(),
        cancel: cancel.clone(),
        observer: &Quiet,
    };
    let report = if yes || interactive {
        engine.undo(tx, &session, &mut ApproveAll("undo confirmed".into()))?
    } else {
        engine.undo(tx, &session, &mut DeclineAll("not confirmed".into()))?
    };
    if app.global.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "{} {} of {} put back",
            s.green("undone:"),
            report.undone.len(),
            plan.items.len()
        );
        for c in &report.conflicts {
            println!("  {} {c}", s.yellow("left alone:"));
        }
        for f in &report.failed {
            println!("  {} {f}", s.red("failed:"));
        }
    }
    Ok(if report.complete() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
