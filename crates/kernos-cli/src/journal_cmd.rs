//! `kernos journal tail | show | verify`; the transparency-log commands are in `tlog_cmd`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use kernos_core::Event;
use kernos_journal::{DB_FILE, Journal, Query};

use crate::cli::{Global, JournalCmd, TailArgs, VerifyArgs};
use crate::render;

/// The data directory from `--data-dir` / `KERNOS_DATA_DIR`, else the XDG default.
pub fn data_dir(g: &Global) -> anyhow::Result<PathBuf> {
    match &g.data_dir {
        Some(d) => Ok(d.clone()),
        None => Ok(kernos_journal::default_data_dir()?),
    }
}

/// Opens the journal for reading; `None` when nothing has been recorded yet.
fn open_for_reading(g: &Global) -> anyhow::Result<Option<Journal>> {
    let dir = data_dir(g)?;
    if !dir.join(DB_FILE).exists() {
        return Ok(None);
    }
    Journal::open_read_only(&dir)
        .with_context(|| format!("cannot read the journal in {}", dir.display()))
        .map(Some)
}

/// Runs a journal subcommand.
pub fn run(g: &Global, cmd: JournalCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        JournalCmd::Tail(args) => tail(g, args),
        JournalCmd::Show { seq } => show(g, seq),
        JournalCmd::Verify(args) => verify(g, &args),
        JournalCmd::Keys { rotate, overlap } => {
            crate::tlog_cmd::keys(g, &data_dir(g)?, rotate, overlap)
        }
        JournalCmd::Checkpoint => crate::tlog_cmd::checkpoint(g, &data_dir(g)?),
        JournalCmd::Prove { seq, size } => crate::tlog_cmd::prove(g, &data_dir(g)?, seq, size),
        JournalCmd::Export { since } => crate::tlog_cmd::export(&data_dir(g)?, since.as_deref()),
    }
}

fn print_event(g: &Global, e: &Event) -> anyhow::Result<()> {
    if g.json {
        return render::json_line(e);
    }
    let mut ids = String::new();
    if let Some(a) = e.action {
        ids.push_str(&format!(" action={a}"));
    }
    if let Some(t) = e.tx {
        ids.push_str(&format!(" tx={t}"));
    }
    let payload = if e.payload.is_null() {
        String::new()
    } else {
        e.payload.to_string()
    };
    println!(
        "{:>6}  {}  {:<18} {:<14}{}  {}",
        e.seq,
        render::time_ms(e.ts_ms),
        e.kind,
        e.actor,
        ids,
        render::fit(&payload, 120)
    );
    Ok(())
}

fn tail(g: &Global, a: TailArgs) -> anyhow::Result<ExitCode> {
    let filter = Query {
        kind_prefix: a.kind.clone(),
        tx: a.tx.clone(),
        action: a.action.clone(),
        actor: a.actor.clone(),
        ..Query::default()
    };
    let mut journal = open_for_reading(g)?;
    let mut last = 0;
    if let Some(j) = &journal {
        let mut newest = j.query(&Query {
            limit: Some(a.lines),
            newest_first: true,
            ..filter.clone()
        })?;
        newest.reverse();
        for e in &newest {
            print_event(g, e)?;
        }
        last = j.head()?.0;
    } else if !a.follow && !g.json {
        eprintln!(
            "the journal is empty: nothing has been recorded in {} yet",
            data_dir(g)?.display()
        );
    }
    if !a.follow {
        return Ok(ExitCode::SUCCESS);
    }
    // Poll: cheap (one indexed range query) and works across processes without any daemon.
    loop {
        std::thread::sleep(Duration::from_millis(200));
        if journal.is_none() {
            journal = open_for_reading(g)?;
        }
        let Some(j) = &journal else { continue };
        let new = j.query(&Query {
            after: Some(last),
            ..filter.clone()
        })?;
        for e in &new {
            print_event(g, e)?;
        }
        // Advance past filtered-out events too, so they are not re-read every time.
        last = j.head()?.0.max(new.last().map_or(last, |e| e.seq));
        use std::io::Write;
        std::io::stdout().flush()?;
    }
}

fn show(g: &Global, seq: u64) -> anyhow::Result<ExitCode> {
    let Some(j) = open_for_reading(g)? else {
        anyhow::bail!("there is no event {seq}: the journal is empty");
    };
    let Some(e) = j.get(seq)? else {
        let (head, _) = j.head()?;
        anyhow::bail!("there is no event {seq}: the journal has events 1 to {head}");
    };
    if g.json {
        println!("{}", serde_json::to_string_pretty(&e)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("event   {}", e.seq);
    println!("time    {}", render::time_ms(e.ts_ms));
    println!("kind    {}", e.kind);
    println!("actor   {}", e.actor);
    println!("org     {}", e.org);
    if let Some(a) = e.action {
        println!("action  {a}");
    }
    if let Some(t) = e.tx {
        println!("tx      {t}");
    }
    println!("hash    {}", e.hash);
    println!(
        "payload {}",
        serde_json::to_string_pretty(&e.payload)?.replace('\n', "\n        ")
    );
    Ok(ExitCode::SUCCESS)
}

fn verify(g: &Global, args: &VerifyArgs) -> anyhow::Result<ExitCode> {
    let chain = verify_chain(g)?;
    if !args.checkpoints {
        if !args.witness.is_empty() || !args.against.is_empty() {
            anyhow::bail!("--against and --witness check checkpoints: add --checkpoints");
        }
        return Ok(chain);
    }
    let mut ok = crate::tlog_cmd::verify_checkpoints(g, &data_dir(g)?, &args.against)?;
    if !args.witness.is_empty() {
        ok &= crate::tlog_cmd::verify_cosigned(g, &data_dir(g)?, &args.witness)?;
    }
    Ok(if ok && chain == ExitCode::SUCCESS {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn verify_chain(g: &Global) -> anyhow::Result<ExitCode> {
    let Some(j) = open_for_reading(g)? else {
        if g.json {
            render::json_line(
                &serde_json::json!({"ok": true, "checked": 0, "head_seq": 0, "first_bad": null}),
            )?;
        } else {
            println!("ok: the journal is empty");
        }
        return Ok(ExitCode::SUCCESS);
    };
    let report = j.verify()?;
    if g.json {
        let mut v = serde_json::to_value(&report)?;
        v["ok"] = report.is_ok().into();
        render::json_line(&v)?;
    } else {
        match &report.first_bad {
            None => println!("ok: {} events, chain intact", report.checked),
            Some(t) => {
                println!("TAMPERED: first bad event is {}: {}", t.seq, t.problem);
                println!("({} events before it verified)", report.checked);
            }
        }
    }
    Ok(if report.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
