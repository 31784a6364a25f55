//! `kernos trash list | size | empty`: what deletes keep so undo can bring it back.
//!
//! Emptying is itself a change: the transactions whose items go can no longer be undone. It
//! warns, asks (unless `--yes`), journals `trash.emptied` per transaction before removing
//! anything, and `kernos undo` of such a transaction then says the trash was emptied. The
//! configured budget (`[trash] max_bytes`, `max_age_days`) is kept automatically by the
//! engine whenever a delete fills the trash; `size` shows it.

use std::process::ExitCode;
use std::time::Duration;

use kernos_core::time::now_ms;
use kernos_core::{ActionId, Actor, CancelToken, LOCAL_ORG};
use kernos_engine::{Quiet, Session, TrashEntry, short_id};
use kernos_tools::{human_bytes, trash};
use serde_json::json;

use crate::app::App;
use crate::cli::TrashCmd;
use crate::daemon_client as client;
use crate::term;

/// Runs a `kernos trash` command.
pub fn run(app: &App, cmd: TrashCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        TrashCmd::List => list(app),
        TrashCmd::Size => size(app),
        TrashCmd::Empty {
            older_than,
            larger_than,
            yes,
        } => empty(app, older_than, larger_than, yes || app.opts.approval.yes),
    }
}

/// Everything in the trash, oldest first, with the transaction that put it there.
fn entries(app: &App) -> anyhow::Result<Vec<TrashEntry>> {
    let env = app.env();
    let items = trash::list(&env)?;
    if items.is_empty() {
        return Ok(Vec::new());
    }
    Ok(app.reader()?.attribute_trash(&env, items)?)
}

/// How long ago, in the largest whole unit: "3 d", "5 h", "12 min", "40 s".
fn age(trashed_s: i64) -> String {
    let secs = (now_ms() as i64 / 1000 - trashed_s).max(0);
    match secs {
        s if s >= 86_400 => format!("{} d", s / 86_400),
        s if s >= 3_600 => format!("{} h", s / 3_600),
        s if s >= 60 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}

fn entry_json(e: &TrashEntry) -> serde_json::Value {
    json!({
        "path": e.origin.as_ref().map(|p| p.display().to_string()),
        "in_trash": e.item.path.display().to_string(),
        "tx": e.tx.map(|t| t.to_string()),
        "bytes": e.item.bytes,
        "trashed_s": e.item.trashed_s,
    })
}

fn print_entries(app: &App, list: &[TrashEntry]) {
    let s = &app.style;
    for e in list {
        let what = e
            .origin
            .as_ref()
            .unwrap_or(&e.item.path)
            .display()
            .to_string();
        let tx = e.tx.map(|t| short_id(&t)).unwrap_or_else(|| "-".to_owned());
        println!(
            "{:>10}  {:>7} ago  {:8}  {}",
            human_bytes(e.item.bytes),
            age(e.item.trashed_s),
            tx,
            what
        );
    }
    let total: u64 = list.iter().map(|e| e.item.bytes).sum();
    println!(
        "{}",
        s.dim(&format!(
            "{} in {}",
            human_bytes(total),
            if list.len() == 1 {
                "1 item".to_owned()
            } else {
                format!("{} items", list.len())
            }
        ))
    );
}

fn list(app: &App) -> anyhow::Result<ExitCode> {
    let list = entries(app)?;
    if app.global.json {
        let v: Vec<_> = list.iter().map(entry_json).collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else if list.is_empty() {
        println!("the trash is empty");
    } else {
        print_entries(app, &list);
    }
    Ok(ExitCode::SUCCESS)
}

fn size(app: &App) -> anyhow::Result<ExitCode> {
    let items = trash::list(&app.env())?;
    let total: u64 = items.iter().map(|i| i.bytes).sum();
    let budget = app.config.trash;
    if app.global.json {
        println!(
            "{}",
            json!({
                "bytes": total,
                "items": items.len(),
                "max_bytes": budget.max_bytes,
                "max_age_days": budget.max_age_days,
            })
        );
    } else {
        println!(
            "{} in {} item{} ({}); budget {}{}",
            human_bytes(total),
            items.len(),
            if items.len() == 1 { "" } else { "s" },
            app.env().trash_dir().display(),
            if budget.max_bytes == 0 {
                "unlimited".to_owned()
            } else {
                human_bytes(budget.max_bytes)
            },
            if budget.max_age_days == 0 {
                String::new()
            } else {
                format!(", items kept {} days", budget.max_age_days)
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn empty(
    app: &App,
    older_than: Option<Duration>,
    larger_than: Option<u64>,
    yes: bool,
) -> anyhow::Result<ExitCode> {
    if client::available(&app.data_dir) {
        anyhow::bail!(
            "a Kernos daemon is running on {}; it is the journal's one writer, so empty the \
             trash while it is stopped",
            app.data_dir.display()
        );
    }
    let now_s = now_ms() as i64 / 1000;
    let chosen: Vec<TrashEntry> = entries(app)?
        .into_iter()
        .filter(|e| older_than.is_none_or(|d| now_s - e.item.trashed_s > d.as_secs() as i64))
        .filter(|e| larger_than.is_none_or(|b| e.item.bytes > b))
        .collect();
    if chosen.is_empty() {
        if app.global.json {
            println!("{}", json!({"removed": [], "bytes": 0}));
        } else {
            println!("nothing in the trash matches; nothing removed");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let txs: Vec<String> = {
        let mut v: Vec<String> = chosen
            .iter()
            .filter_map(|e| e.tx.map(|t| short_id(&t)))
            .collect();
        v.dedup();
        v
    };
    if !app.global.json {
        print_entries(app, &chosen);
        eprintln!(
            "{} these are removed for good: {} can no longer be undone",
            app.style.yellow("warning:"),
            if txs.is_empty() {
                "they".to_owned()
            } else {
                format!(
                    "transaction{} {}",
                    if txs.len() == 1 { "" } else { "s" },
                    txs.join(", ")
                )
            }
        );
    }
    if !yes {
        if !term::interactive() {
            anyhow::bail!("not emptying the trash without a terminal to ask; add --yes");
        }
        if !term::ask_word("Type \"empty\" to remove them: ", "empty")? {
            println!("nothing removed");
            return Ok(ExitCode::from(1));
        }
    }
    let engine = app.reader()?;
    let session = Session {
        env: app.env(),
        actor: Actor::current_user(),
        org: LOCAL_ORG.into(),
        action: ActionId::generate(),
        cancel: CancelToken::new(),
        observer: &Quiet,
    };
    engine.record_trash_emptied(&session, &chosen, "kernos trash empty")?;
    let mut freed = 0u64;
    for e in &chosen {
        trash::remove(&e.item)?;
        freed += e.item.bytes;
    }
    trash::tidy(&session.env);
    if app.global.json {
        let v: Vec<_> = chosen.iter().map(entry_json).collect();
        println!("{}", json!({"removed": v, "bytes": freed}));
    } else {
        println!(
            "removed {} from the trash ({} freed)",
            if chosen.len() == 1 {
                "1 item".to_owned()
            } else {
                format!("{} items", chosen.len())
            },
            human_bytes(freed)
        );
    }
    Ok(ExitCode::SUCCESS)
}
