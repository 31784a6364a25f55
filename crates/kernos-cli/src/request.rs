//! The main job: a request in plain language → plan → preview → confirmation → run → results.

use std::process::ExitCode;

use crate::front::{CliApprover, CliObserver, DECLINED_AT_PROMPT};
use kernos_core::{ActionId, Actor, CancelToken, LOCAL_ORG};
use kernos_engine::payload::ActionSubmitted;
use kernos_engine::{ActionOutcome, ActionStatus, Ask, Handled, Request, Session, TxStatus};
use kernos_planner::llm::Cascade;
use kernos_planner::{Conversation, Outcome, PlanContext};
use serde_json::{Value, json};

use crate::app::App;
use crate::render;
use crate::show::{print_changes, print_report};

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
            let _ = kernos_journal::create_private_dir(dir);
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
    let engine = match app.engine() {
        Ok(e) => e,
        Err(e) if app.data_dir_unwritable() => {
            let why = format!("{} cannot be written", app.data_dir.display());
            eprintln!(
                "kernos: warning: {why} ({e}); reads run but are not recorded, changes are refused"
            );
            app.unrecorded_engine(why)?
        }
        Err(e) => return Err(e),
    };
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
        plan_options: app.plan_options(),
        submitted: Some(submitted),
        // The embedded engine reaches no fleet: fan-out goes through the daemon.
        remote: None,
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
    } else if app.opts.fleet.on.is_some() {
        anyhow::bail!(
            "--on fans the request out to fleet nodes through the daemon: start `kernos serve` with [fleet] controller = true"
        )
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
        ActionOutcome::Remote(r) => {
            if json {
                render::json_line(&json!({"plan": plan, "tx": r.tx, "fleet": r.report}))?;
            } else {
                crate::fleet_cmd::print_summary(r, style);
            }
            Ok(if r.report.all_ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
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

/// `kernos plan [--json] "<request>"`: the plan only, nothing runs.
pub fn plan_only(app: &App, cascade: &Cascade, text: &str) -> anyhow::Result<ExitCode> {
    let env = app.env();
    let conversation = ContextStore::for_cwd(app).load();
    let ctx = PlanContext {
        home: env.home.display().to_string(),
        cwd: env.cwd.display().to_string(),
        conversation,
        org: None,
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
