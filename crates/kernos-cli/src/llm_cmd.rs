//! The language-model side of the CLI: the planner cascade behind every request (offline →
//! plan cache → model lane → offline), `--explain`, metering into the journal, `kernos
//! models` and `kernos usage`.

use std::process::ExitCode;

use anyhow::{Context, bail};
use kernos_core::{Actor, NewEvent, Plan};
use kernos_journal::{Durability, Journal, JournalOptions, Query};
use kernos_llm::BlockingRouter;
use kernos_planner::PlanContext;
use kernos_planner::llm::{Cascade, PlanCache, Planned, Source};
use serde_json::{Value, json};

use crate::app::App;
use crate::cli::ModelsCmd;
use crate::render;
use crate::term::Style;

use crate::planning::CACHE_FILE;

/// Plans a request through the cascade: journals the model tier's calls, prints the
/// fallback notice (if any) on stderr.
pub fn plan(app: &App, cascade: &Cascade, text: &str, ctx: &PlanContext) -> Planned {
    let planned = cascade.plan(text, ctx, &app.plan_options());
    let events = kernos_planner::llm::events_for(&planned, text);
    journal(app, events);
    if let Some(n) = &planned.notice {
        eprintln!("kernos: {n}");
    }
    planned
}

/// Appends metering events (best effort: a journal problem must not lose the plan).
pub fn journal(app: &App, events: Vec<(&'static str, Value)>) {
    if events.is_empty() {
        return;
    }
    let actor = Actor::current_user();
    let evs: Vec<NewEvent> = events
        .into_iter()
        .map(|(kind, payload)| NewEvent::new(kind, actor.clone()).payload(payload))
        .collect();
    // Metering need not survive a power loss, and a cache hit should not wait for a disk
    // flush: these commits reach the OS at once and the disk at the next checkpoint. (The
    // chain stays whole either way: a later fully synced append flushes these with it.)
    let opts = JournalOptions {
        durability: Durability::Normal,
        ..JournalOptions::default()
    };
    let r = Journal::open_with(&app.data_dir, opts).and_then(|mut j| j.append_batch(&evs));
    if let Err(e) = r {
        eprintln!("kernos: could not journal language-model usage: {e}");
    }
}

/// Who wrote a plan's `why`, as `--explain` marks it.
pub fn why_source(plan: &Plan) -> String {
    match plan.planner.as_deref() {
        Some(p) if p.starts_with("llm:") => format!("from the model, {}", &p[4..]),
        Some("user") => "from you".into(),
        _ => "from the offline planner".into(),
    }
}

/// `--explain`: each step and why it is there.
pub fn print_why(plan: &Plan, style: Style, home: &str) {
    let src = why_source(plan);
    println!("{}", style.bold("Why each step is there:"));
    for (i, s) in plan.steps.iter().enumerate() {
        println!(
            "  {}. {} {}",
            i + 1,
            style.bold(&s.name()),
            render::args_line(&s.args, home)
        );
        match &s.why {
            Some(w) => println!("     {w} {}", style.dim(&format!("({src})"))),
            None => println!("     {}", style.dim(&format!("(no reason given, {src})"))),
        }
    }
    if plan.untrusted_input {
        println!(
            "  {}",
            style.yellow("made after reading untrusted text: every change will be asked about")
        );
    }
}

/// A label for where a plan came from, for JSON output.
pub fn source_name(p: &Planned) -> &'static str {
    match p.source {
        Source::Offline => "offline",
        Source::Cache => "cache",
        Source::Model { .. } => "model",
    }
}

/// `kernos models [list|test NAME|use NAME]`.
pub fn models(app: &App, action: Option<ModelsCmd>) -> anyhow::Result<ExitCode> {
    match action.unwrap_or(ModelsCmd::List) {
        ModelsCmd::List => list(app),
        ModelsCmd::Test { name } => test(app, &name),
        ModelsCmd::Use { name } => use_provider(app, &name),
    }
}

const NONE_CONFIGURED: &str = "no language model is configured: Kernos plans offline. Add a \
[[llm.providers]] entry with `kernos config edit` (or set KERNOS_LLM_<NAME>_BASE_URL and \
KERNOS_LLM_<NAME>_MODEL); see the README, \"Language models\"";

fn list(app: &App) -> anyhow::Result<ExitCode> {
    let cfg = &app.config.llm;
    let models = cfg.models();
    if app.global.json {
        render::json_line(&json!({
            "default_lane": cfg.default_lane,
            "models": models,
        }))?;
        return Ok(ExitCode::SUCCESS);
    }
    if models.is_empty() {
        println!("{NONE_CONFIGURED}");
        return Ok(ExitCode::SUCCESS);
    }
    let style = app.style;
    println!(
        "{}",
        style.dim(&format!(
            "cascade order, default lane {:?}; `kernos models test NAME` makes one tiny call",
            cfg.default_lane
        ))
    );
    let rows: Vec<Vec<String>> = models
        .iter()
        .map(|m| {
            vec![
                (m.rank + 1).to_string(),
                m.provider.clone(),
                m.kind.as_str().to_owned(),
                m.lane.clone().unwrap_or_else(|| "(any)".into()),
                m.model.clone(),
                m.price.map_or_else(
                    || "-".into(),
                    |p| format!("${}/${}", p.input_per_mtok, p.output_per_mtok),
                ),
                match (&m.api_key_env, m.key_present) {
                    (None, _) => "none needed".into(),
                    (Some(k), true) => format!("{k} set"),
                    (Some(k), false) => format!("{k} MISSING"),
                },
                m.endpoint.clone(),
            ]
        })
        .collect();
    print_table(
        &[
            "#",
            "provider",
            "kind",
            "lane",
            "model",
            "price/Mtok",
            "key",
            "endpoint",
        ],
        &rows,
    );
    Ok(ExitCode::SUCCESS)
}

fn print_table(head: &[&str], rows: &[Vec<String>]) {
    let mut w: Vec<usize> = head.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<width$}  ", width = w[i]));
            }
        }
        println!("{}", s.trim_end());
    };
    line(head.iter().map(|h| (*h).to_owned()).collect());
    for r in rows {
        line(r.clone());
    }
}

fn test(app: &App, name: &str) -> anyhow::Result<ExitCode> {
    let cfg = &app.config.llm;
    if cfg.providers.is_empty() {
        bail!("{NONE_CONFIGURED}");
    }
    let (provider, model) = match name.split_once('/') {
        Some((p, m)) if cfg.provider(p).is_some() => (p, Some(m)),
        _ => (name, None),
    };
    let router = BlockingRouter::new(cfg.clone())?;
    let r = router.probe(provider, model);
    let attempts = router.router().metrics();
    // The probe is metered like any call.
    if let Some(m) = attempts.first() {
        journal(
            app,
            vec![(
                kernos_core::event::kind::LLM_CALL,
                json!({
                    "provider": m.provider, "model": m.model, "purpose": "probe",
                    "input_tokens": m.input_tokens, "output_tokens": m.output_tokens,
                    "cost_usd": m.cost_usd, "latency_ms": m.latency_ms_total,
                    "error": r.as_ref().err().map(ToString::to_string), "cache": "not_used",
                }),
            )],
        );
    }
    match r {
        Ok(p) => {
            if app.global.json {
                render::json_line(&p)?;
            } else {
                println!(
                    "{} {} ({}) answered {:?} in {} ms; {} + {} tokens{}, ${:.6}",
                    app.style.green("ok:"),
                    p.provider,
                    p.model_echo.as_deref().unwrap_or(&p.model),
                    render::truncate(p.text.trim(), 40),
                    p.latency_ms,
                    p.usage.input_tokens,
                    p.usage.output_tokens,
                    if p.usage.estimated {
                        " (estimated)"
                    } else {
                        ""
                    },
                    p.cost_usd
                );
                println!("{}", app.style.dim(&p.endpoint));
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            if app.global.json {
                render::json_line(
                    &json!({"provider": provider, "error": e.to_string(), "kind": e.kind()}),
                )?;
            } else {
                eprintln!("kernos: {e}");
            }
            Ok(ExitCode::from(1))
        }
    }
}

/// Writes `order = [NAME, …]` into the `[llm]` section of the config file, keeping every
/// other line (and comment) as it was, then checks the result before replacing the file.
fn use_provider(app: &App, name: &str) -> anyhow::Result<ExitCode> {
    let mut llm = app.config.llm.clone();
    llm.prefer(name).map_err(|e| anyhow::anyhow!("{e}"))?;
    let path = crate::config::path()?;
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    // Only providers the file itself knows may be written: one added by KERNOS_LLM_* would
    // make the file invalid without that variable.
    let file_cfg = crate::config::parse(&text, &path, std::iter::empty())?;
    let order: Vec<String> = llm
        .order
        .iter()
        .filter(|n| file_cfg.llm.provider(n).is_some())
        .cloned()
        .collect();
    if !order.iter().any(|n| n == name) {
        bail!(
            "provider {name:?} comes from the environment (KERNOS_LLM_*), not from {}: set KERNOS_LLM_ORDER={name} instead",
            path.display()
        );
    }
    let line = format!(
        "order = [{}]",
        order
            .iter()
            .map(|n| format!("{n:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let new_text = set_llm_order(&text, &line);
    crate::config::parse(&new_text, &path, std::iter::empty())
        .context("the changed configuration would not be valid; nothing was written")?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let tmp = path.with_extension("toml.tmp");
    std::fs::write(&tmp, &new_text).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("cannot replace {}", path.display()))?;
    if app.global.json {
        render::json_line(&json!({"order": order, "config": path}))?;
    } else {
        println!("{name} is now tried first ({line} in {})", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// Replaces (or adds) the `order` line of the `[llm]` table.
pub fn set_llm_order(text: &str, line: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let header = lines.iter().position(|l| l.trim() == "[llm]");
    let mut out: Vec<String> = Vec::with_capacity(lines.len() + 2);
    match header {
        Some(h) => {
            // The table runs until the next header.
            let end = lines[h + 1..]
                .iter()
                .position(|l| l.trim_start().starts_with('['))
                .map_or(lines.len(), |i| h + 1 + i);
            let existing = (h + 1..end).find(|&i| {
                let t = lines[i].trim_start();
                t.starts_with("order") && t["order".len()..].trim_start().starts_with('=')
            });
            match existing {
                Some(i) => {
                    // A multi-line array ends at the line holding its closing bracket.
                    let mut last = i;
                    if !lines[i].contains(']') {
                        while last + 1 < end && !lines[last].contains(']') {
                            last += 1;
                        }
                    }
                    out.extend(lines[..i].iter().map(|l| (*l).to_owned()));
                    out.push(line.to_owned());
                    out.extend(lines[last + 1..].iter().map(|l| (*l).to_owned()));
                }
                None => {
                    out.extend(lines[..=h].iter().map(|l| (*l).to_owned()));
                    out.push(line.to_owned());
                    out.extend(lines[h + 1..].iter().map(|l| (*l).to_owned()));
                }
            }
        }
        None => {
            // A new [llm] table must come before any [[llm.providers]] array entries' own
            // keys could be confused with it: put it first.
            out.push("[llm]".into());
            out.push(line.to_owned());
            out.push(String::new());
            out.extend(lines.iter().map(|l| (*l).to_owned()));
        }
    }
    let mut s = out.join("\n");
    s.push('\n');
    s
}

/// `kernos usage`: calls, tokens and cost per provider/model, cache hit rate.
pub fn usage(app: &App) -> anyhow::Result<ExitCode> {
    let db = app.data_dir.join(kernos_journal::DB_FILE);
    let events = if db.exists() {
        let j = Journal::open_read_only(&app.data_dir)
            .with_context(|| format!("cannot open the journal in {}", app.data_dir.display()))?;
        j.query(&Query::kind_prefix("llm."))?
    } else {
        Vec::new()
    };
    let s = kernos_planner::llm::summarise(&events);
    let cache = PlanCache::open(app.data_dir.join(CACHE_FILE))
        .ok()
        .and_then(|c| c.stats().ok());
    if app.global.json {
        render::json_line(&json!({"usage": s, "cache": cache}))?;
        return Ok(ExitCode::SUCCESS);
    }
    if s.models.is_empty() && s.requests == 0 {
        println!("No language-model use recorded yet.");
    } else {
        let rows: Vec<Vec<String>> = s
            .models
            .iter()
            .map(|m| {
                vec![
                    m.provider.clone(),
                    m.model.clone(),
                    m.calls.to_string(),
                    m.errors.to_string(),
                    m.input_tokens.to_string(),
                    m.output_tokens.to_string(),
                    format!("${:.4}", m.cost_usd),
                    format!("{} ms", m.mean_latency_ms),
                ]
            })
            .collect();
        if !rows.is_empty() {
            print_table(
                &[
                    "provider",
                    "model",
                    "calls",
                    "errors",
                    "tokens in",
                    "tokens out",
                    "cost",
                    "mean latency",
                ],
                &rows,
            );
        }
        // Only worth a table when more than one organisation used the models (a daemon).
        if s.orgs.len() > 1 {
            let rows: Vec<Vec<String>> = s
                .orgs
                .iter()
                .map(|o| {
                    vec![
                        o.org.clone(),
                        o.calls.to_string(),
                        o.input_tokens.to_string(),
                        o.output_tokens.to_string(),
                        format!("${:.4}", o.cost_usd),
                    ]
                })
                .collect();
            print_table(
                &["organisation", "calls", "tokens in", "tokens out", "cost"],
                &rows,
            );
        }
        if s.redactions > 0 {
            println!(
                "{} secret{} redacted from prompts before they left this machine",
                s.redactions,
                if s.redactions == 1 { " was" } else { "s were" }
            );
        }
        println!(
            "{} request{} reached the model tier: {} planned by a model, {} from the cache, {} fell back to the offline planner; total ${:.4}",
            s.requests,
            if s.requests == 1 { "" } else { "s" },
            s.from_model,
            s.cache_hits,
            s.fell_back,
            s.cost_usd
        );
    }
    println!(
        "plan cache: hit rate {:.0}% ({} hits, {} misses){}",
        s.cache_hit_rate * 100.0,
        s.cache_hits,
        s.cache_misses,
        cache.map_or_else(String::new, |c| format!(
            "; {} plan{} stored",
            c.entries,
            if c.entries == 1 { "" } else { "s" }
        ))
    );
    Ok(ExitCode::SUCCESS)
}

/// JSON for a planned request (`kernos plan --json`): the plan plus where it came from.
pub fn plan_json(planned: &Planned, plan: &Plan, confidence: f32) -> anyhow::Result<Value> {
    let mut v = serde_json::to_value(plan)?;
    v["confidence"] = json!(confidence);
    v["source"] = json!(source_name(planned));
    if planned.used_llm_tier() {
        v["cache"] = json!(planned.cache.as_str());
    }
    // What the plan does not account for: scripts see it as plainly as a person does.
    v["unused"] = json!(planned.unused);
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_line_is_replaced_or_added_keeping_the_rest() {
        let line = "order = [\"b\", \"a\"]";
        let t = "# mine\n[cli]\ncolor = \"never\"\n\n[llm]\n# comment\norder = [\"a\"]\ndefault_lane = \"fast\"\n\n[[llm.providers]]\nname = \"a\"\n";
        let out = set_llm_order(t, line);
        assert_eq!(out, t.replace("order = [\"a\"]", line));
        let multi = "[llm]\norder = [\n  \"a\",\n  \"b\",\n]\n[[llm.providers]]\nname = \"a\"\n";
        assert_eq!(
            set_llm_order(multi, line),
            "[llm]\norder = [\"b\", \"a\"]\n[[llm.providers]]\nname = \"a\"\n"
        );
        let no_order = "[llm]\ndefault_lane = \"fast\"\n";
        assert_eq!(
            set_llm_order(no_order, line),
            "[llm]\norder = [\"b\", \"a\"]\ndefault_lane = \"fast\"\n"
        );
        let no_table = "[[llm.providers]]\nname = \"a\"\n";
        assert!(
            set_llm_order(no_table, line)
                .starts_with("[llm]\norder = [\"b\", \"a\"]\n\n[[llm.providers]]")
        );
    }
}
