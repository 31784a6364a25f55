//! The main job: a request in plain language → plan → preview → confirmation → run → results.

use std::process::ExitCode;

use crate::front::{CliApprover, CliObserver, DECLINED_AT_PROMPT};
use anyhow::Context;
use kernos_core::{ActionId, Actor, CancelToken, LOCAL_ORG, Plan, Risk};
use kernos_engine::payload::ActionSubmitted;
use kernos_engine::{
    ActionOutcome, ActionStatus, Ask, Handled, Preview, Request, Review, Session, StepStatus,
    TxReport, TxStatus, short_id,
};
use kernos_planner::llm::Cascade;
use kernos_planner::{Conversation, Outcome, PlanContext};
use serde_json::{Value, json};

use crate::app::App;
use crate::render;
use crate::term::{self, Style};

/// Per-directory conversation memory for one-shot calls: "them", "undo that" work across
/// separate `kernos` invocations in the same directory for a few minutes.
pub struct ContextStore {
    path: std::path::PathBuf,
    max_age_ms: i64,
}

use kernos_core::time::now_ms;

impl ContextStore {
    /// The store for the current directory.
    pub fn for_cwd(app: &App) -> Self {
        let cwd = app.env().cwd;
        let key = blake3::hash(cwd.as_os_str().as_encoded_bytes()).to_hex();
        ContextStore {
            path: app
                .data_dir
                .join("context")
                .join(format!("{}.json", &key[..16])),
            max_age_ms: app.config.planner.context_minutes as i64 * 60_000,
        }
    }

    /// The conversation, if recent enough.
    pub fn load(&self) -> Option<Conversation> {
        let text = std::fs::read_to_string(&self.path).ok()?;
        let v: Value = serde_json::from_str(&text).ok()?;
        let saved = v.get("saved_ms")?.as_i64()?;
        if now_ms() - saved > self.max_age_ms {
            return None;
        }
        serde_json::from_value(v.get("conversation")?.clone()).ok()
    }

    /// Saves the conversation (best effort: losing it only loses follow-up convenience).
    pub fn save(&self, c: &Conversation) {
        if let Some(dir) = self.path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let v = json!({"saved_ms": now_ms(), "conversation": c});
        let tmp = self.path.with_extension("tmp");
        if std::fs::write(&tmp, v.to_string()).is_ok() {
            let _ = std::fs::rename(&tmp, &self.path);
        }
    }
}

/// Who asks from this terminal: the real user, as owner of the local organisation.
fn session<'a>(app: &App, cancel: &CancelToken, observer: &'a CliObserver) -> Session<'a> {
    Session {
        env: app.env(),
        actor: Actor::current_user(),
        org: LOCAL_ORG.into(),
        action: ActionId::generate(),
        cancel: cancel.clone(),
        observer,
    }
}

/// Takes one request down the embedded engine's request path, as the owner of the local
/// organisation at this terminal.
pub fn handle_embedded(
    app: &App,
    ask: Ask,
    conversation: Option<&Conversation>,
    cancel: &CancelToken,
) -> anyhow::Result<Handled> {
    let engine = app.engine()?;
    let observer = CliObserver::new(app);
    let s = session(app, cancel, &observer);
    let dry_run = app.opts.approval.dry_run;
    let submitted = ActionSubmitted::embedded_cli(
        &ask,
        &s.env.cwd.display().to_string(),
        dry_run,
        app.opts.approval.yes,
    );
    let request = Request {
        ask,
        context: conversation.cloned(),
        dry_run,
        plan_options: crate::llm_cmd::options(app),
        submitted: Some(submitted),
    };
    let handled = engine.handle(request, &s, &mut CliApprover::new(app));
    observer.finish();
    Ok(handled?)
}

/// Takes one request down the one path the way this machine is set up: through the daemon
/// when one answers on the data directory's socket (one writer, one view), else on the
/// embedded engine.
pub fn handle(
    app: &App,
    ask: Ask,
    conversation: Option<&Conversation>,
    cancel: &CancelToken,
) -> anyhow::Result<Handled> {
    if crate::daemon_client::available(&app.data_dir) {
        crate::daemon_cmd::submit(app, ask, conversation, cancel)
    } else {
        handle_embedded(app, ask, conversation, cancel)
    }
}

/// Runs one request ([`handle`]) and renders what happened; `conversation` carries follow-up
/// context in and out.
pub fn run(
    app: &App,
    ask: Ask,
    conversation: &mut Option<Conversation>,
    cancel: &CancelToken,
) -> anyhow::Result<ExitCode> {
    let handled = handle(app, ask, conversation.as_ref(), cancel)?;
    if let Some(c) = handled.conversation() {
        *conversation = Some(c);
    }
    render(app, &handled)
}

/// Shows what became of a request — the same for the embedded engine and the daemon — and
/// the exit code it means.
pub fn render(app: &App, h: &Handled) -> anyhow::Result<ExitCode> {
    let style = app.style;
    let json = app.global.json;
    let home = app.home();
    let plan = &h.plan;
    let preview = &h.preview;
    let fail = |error: &str| -> anyhow::Result<ExitCode> {
        if json {
            render::json_line(&json!({"plan": plan, "preview": preview, "error": error}))?;
        }
        Ok(ExitCode::from(1))
    };
    match &h.outcome {
        ActionOutcome::NotUnderstood {
            message,
            suggestions,
        } => {
            if json {
                render::json_line(
                    &json!({"steps": [], "error": message, "suggestions": suggestions}),
                )?;
            } else {
                eprintln!("kernos: {message}");
                if !suggestions.is_empty() {
                    eprintln!("The closest things I can do:");
                    for s in suggestions {
                        eprintln!(
                            "  kernos \"{}\"   {}",
                            s.example,
                            style.dim(&format!("({})", s.action))
                        );
                    }
                }
            }
            Ok(ExitCode::from(2))
        }
        ActionOutcome::Invalid { error } => {
            if !json {
                eprintln!("kernos: {error}");
            }
            fail(error)
        }
        ActionOutcome::Denied { reason } => {
            if !json {
                eprintln!("{} {reason}", style.red("refused:"));
            }
            fail(reason)
        }
        ActionOutcome::Previewed => {
            if json {
                render::json_line(&json!({"plan": plan, "preview": preview}))?;
            } else if let Some(p) = preview {
                print_changes(p, style);
                println!("{}", style.dim("(dry run: nothing was changed)"));
            }
            Ok(ExitCode::SUCCESS)
        }
        ActionOutcome::Stopped { reason } => {
            if !json && reason != DECLINED_AT_PROMPT {
                eprintln!("kernos: {reason}");
            }
            fail(reason)
        }
        ActionOutcome::Ran(report) => {
            if json {
                render::json_line(&json!({"plan": plan, "preview": preview, "report": report}))?;
            } else {
                print_report(report, style, &home);
            }
            Ok(match report.status {
                TxStatus::Committed => ExitCode::SUCCESS,
                _ => ExitCode::from(1),
            })
        }
        ActionOutcome::UndoPreviewed(plan) => {
            if json {
                println!("{}", serde_json::to_string_pretty(plan)?);
            }
            Ok(ExitCode::SUCCESS)
        }
        ActionOutcome::Undone(report) => {
            if json {
                println!("{}", serde_json::to_string_pretty(report)?);
            } else {
                let total = report.undone.len() + report.conflicts.len() + report.failed.len();
                println!(
                    "{} {} of {total} put back",
                    style.green("undone:"),
                    report.undone.len(),
                );
                for c in &report.conflicts {
                    println!("  {} {c}", style.yellow("left alone:"));
                }
                for f in &report.failed {
                    println!("  {} {f}", style.red("failed:"));
                }
            }
            Ok(if report.complete() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        ActionOutcome::UndoDeclined { reason, .. } => {
            if !json && reason != DECLINED_AT_PROMPT {
                eprintln!("kernos: {reason}");
            }
            fail(reason)
        }
        ActionOutcome::Ended { status, error } => {
            if !json {
                eprintln!("kernos: {error}");
            }
            fail(error)?;
            Ok(match status {
                ActionStatus::Cancelled => ExitCode::from(130),
                _ => ExitCode::from(1),
            })
        }
    }
}

pub(crate) fn print_preview(plan: &Plan, preview: &Preview, style: Style, home: &str) {
    let reversible = preview
        .steps
        .iter()
        .all(|s| s.reversibility != kernos_core::Reversibility::Irreversible);
    println!(
        "{} ({} step{}, risk {}{})",
        style.bold("Plan"),
        plan.steps.len(),
        if plan.steps.len() == 1 { "" } else { "s" },
        style.risk(preview.risk),
        if preview.read_only || preview.steps.iter().all(render::reads_only) {
            ""
        } else if reversible {
            ", reversible"
        } else {
            ", NOT fully reversible"
        }
    );
    for s in &preview.steps {
        println!(
            "  {}. {:<14} {}   {} {}",
            s.index + 1,
            style.bold(&s.name),
            render::args_line(&s.args, home),
            style.risk(s.assessment.risk),
            style.dim(if render::reads_only(s) {
                kernos_core::Reversibility::ReadOnly.as_str()
            } else {
                s.reversibility.as_str()
            })
        );
        if let Some(changes) = &s.changes {
            for c in changes.iter().take(5) {
                println!("       {}", c.describe());
            }
            if changes.len() > 5 {
                println!(
                    "       {}",
                    style.dim(&format!("… and {} more (d to see all)", changes.len() - 5))
                );
            }
        }
        if let Some(n) = &s.note {
            println!("       {}", style.dim(n));
        }
        if s.assessment.risk > Risk::Low {
            if let Some(r) = s.assessment.reasons.first() {
                println!(
                    "       {}",
                    style.dim(&format!("why {}: {r}", s.assessment.risk))
                );
            }
        }
    }
}

pub(crate) fn print_changes(preview: &Preview, style: Style) {
    for s in &preview.steps {
        match &s.changes {
            Some(c) if c.is_empty() => println!(
                "{}. {}: {}",
                s.index + 1,
                s.name,
                style.dim("changes nothing")
            ),
            Some(c) => {
                println!("{}. {}:", s.index + 1, s.name);
                for ch in c {
                    println!("   {}", ch.describe());
                }
            }
            None => println!(
                "{}. {}: {}",
                s.index + 1,
                s.name,
                style.dim(
                    s.note
                        .as_deref()
                        .unwrap_or("unknown until earlier steps run")
                )
            ),
        }
    }
}

pub(crate) fn explain(plan: &Plan, preview: &Preview, style: Style) {
    for (s, step) in preview.steps.iter().zip(&plan.steps) {
        println!("{}. {} — {}", s.index + 1, style.bold(&s.name), s.summary);
        if let Some(why) = &step.why {
            println!(
                "   why: {why} {}",
                style.dim(&format!("({})", crate::llm_cmd::why_source(plan)))
            );
        }
        for e in &s.effects {
            println!("   {} {}", e.kind, e.target);
        }
        println!(
            "   risk {}: {}",
            style.risk(s.assessment.risk),
            s.assessment.reasons.join("; ")
        );
        println!(
            "   {}",
            match s.reversibility {
                kernos_core::Reversibility::ReadOnly => "changes nothing",
                kernos_core::Reversibility::Reversible => "undo puts it back (`kernos undo`)",
                kernos_core::Reversibility::Irreversible => "cannot be undone",
            }
        );
    }
}

/// Opens the plan under review as TOML in `$EDITOR`; returns the edited plan once it
/// validates (or `None` if the person gave up).
pub(crate) fn edit_plan(review: &Review<'_, '_>) -> anyhow::Result<Option<Plan>> {
    let plan = review.plan();
    let dir = tempfile::tempdir().context("cannot create a temporary file for editing")?;
    let path = dir.path().join("plan.toml");
    let text = format!(
        "# Edit the plan, save and quit. Lines starting with # are ignored.\n# Steps run in order; a value {{ \"$step\" = 0 }} means \"the output of step 1\".\n\n{}",
        toml::to_string_pretty(plan)?
    );
    std::fs::write(&path, text)?;
    loop {
        crate::config_cmd::edit_file(&path)?;
        let edited = std::fs::read_to_string(&path)?;
        let parsed: anyhow::Result<Plan> = toml::from_str::<Plan>(&edited)
            .map_err(anyhow::Error::from)
            .or_else(|_| serde_json::from_str::<Plan>(&edited).map_err(anyhow::Error::from));
        let problem = match parsed {
            Ok(p) => match review.validate(&p) {
                Ok(()) => return Ok(Some(p)),
                Err(e) => e.to_string(),
            },
            Err(e) => e.to_string(),
        };
        eprintln!("kernos: the edited plan is not valid: {problem}");
        if term::ask_key("Edit again? [y/n] ", &['y', 'n'], Some('y'))? != 'y' {
            return Ok(None);
        }
    }
}

pub(crate) fn print_report(report: &TxReport, style: Style, home: &str) {
    let multi = report.steps.len() > 1;
    for s in &report.steps {
        if multi {
            println!("{}", style.bold(&format!("{}. {}", s.index + 1, s.name)));
        }
        match &s.status {
            StepStatus::Done => {
                if let Some(out) = &s.output {
                    if out.changes.is_empty() {
                        print!("{}", render::output(out, home, style));
                    } else {
                        // For changes, the list of what was done says it all; the rows would
                        // repeat it.
                        for c in &out.changes {
                            println!("{} {}", style.green("✓"), c.describe());
                        }
                        if let Some(t) = &out.text {
                            print!("{t}");
                        }
                        if let Some(sum) = &out.summary {
                            println!("{}", style.dim(sum));
                        }
                    }
                }
            }
            StepStatus::Failed { error } => println!("{} {error}", style.red("failed:")),
            StepStatus::Skipped { reason } => {
                println!("{}", style.dim(&format!("skipped: {reason}")))
            }
            StepStatus::Denied { reason } => println!("{} {reason}", style.red("refused:")),
            StepStatus::Declined { reason } => println!("{} {reason}", style.yellow("not run:")),
            StepStatus::Cancelled => println!(
                "{}",
                style.yellow("cancelled (what was done so far can be undone)")
            ),
        }
    }
    if report.undoable {
        println!(
            "{}",
            style.dim(&format!("undo with: kernos undo {}", short_id(&report.tx)))
        );
    }
}

/// `kernos plan [--json] "<request>"`: the plan only, nothing runs.
pub fn plan_only(app: &App, cascade: &Cascade, text: &str) -> anyhow::Result<ExitCode> {
    let env = app.env();
    let conversation = ContextStore::for_cwd(app).load();
    let ctx = PlanContext {
        home: env.home.display().to_string(),
        cwd: env.cwd.display().to_string(),
        conversation,
    };
    let mut planned = crate::llm_cmd::plan(app, cascade, text, &ctx);
    let outcome = std::mem::replace(&mut planned.outcome, Outcome::Undo { target: None });
    match outcome {
        Outcome::Plan { plan, confidence } => {
            if app.global.json {
                render::json_line(&crate::llm_cmd::plan_json(&planned, &plan, confidence)?)?;
            } else if app.opts.planning.explain {
                crate::llm_cmd::print_why(&plan, app.style, &env.home.display().to_string());
            } else {
                for (i, s) in plan.steps.iter().enumerate() {
                    println!(
                        "{}. {} {}",
                        i + 1,
                        app.style.bold(&s.name()),
                        render::args_line(&s.args, &env.home.display().to_string())
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Outcome::Undo { target } => {
            if app.global.json {
                render::json_line(
                    &json!({"steps": [], "undo": target.unwrap_or_else(|| "last".into())}),
                )?;
            } else {
                println!(
                    "undo {}",
                    target.unwrap_or_else(|| "the last transaction".into())
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Outcome::NotUnderstood {
            message,
            suggestions,
        } => {
            if app.global.json {
                render::json_line(
                    &json!({"steps": [], "error": message, "suggestions": suggestions}),
                )?;
            } else {
                eprintln!("kernos: {message}");
                for s in &suggestions {
                    eprintln!("  kernos \"{}\"", s.example);
                }
            }
            Ok(ExitCode::from(2))
        }
    }
}
