//! The main job: a request in plain language → plan → preview → confirmation → run → results.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Mutex;

use anyhow::Context;
use kernos_core::event::kind;
use kernos_core::{ActionId, Actor, CancelToken, Event, LOCAL_ORG, Plan, Risk};
use kernos_engine::{
    Approval, ApprovalRequest, ApproveAll, ApprovedUpTo, Approver, DeclineAll, Engine, Observer,
    Preview, Session, StepStatus, TxReport, TxStatus, short_id,
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

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

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

/// Shows progress of long steps on stderr when it is a terminal.
pub struct CliObserver {
    bar: Mutex<Option<indicatif::ProgressBar>>,
    enabled: bool,
    plan_len: usize,
}

impl CliObserver {
    /// An observer for a plan of `plan_len` steps.
    pub fn new(plan_len: usize, json: bool) -> Self {
        CliObserver {
            bar: Mutex::new(None),
            enabled: !json && std::io::stderr().is_terminal(),
            plan_len,
        }
    }

    /// Clears the spinner.
    pub fn finish(&self) {
        if let Ok(mut b) = self.bar.lock() {
            if let Some(bar) = b.take() {
                bar.finish_and_clear();
            }
        }
    }
}

impl Observer for CliObserver {
    fn event(&self, ev: &Event) {
        if !self.enabled {
            return;
        }
        match ev.kind.as_str() {
            kind::STEP_STARTED => {
                let name = ev.payload["name"].as_str().unwrap_or("step");
                let n = ev.payload["step"].as_u64().unwrap_or(0) + 1;
                let bar = indicatif::ProgressBar::new_spinner();
                let label = if self.plan_len > 1 {
                    format!("[{n}/{}] {name}", self.plan_len)
                } else {
                    name.to_owned()
                };
                bar.set_message(label);
                // Drawn on the first tick, so steps faster than this never flash a spinner.
                bar.enable_steady_tick(std::time::Duration::from_millis(250));
                if let Ok(mut b) = self.bar.lock() {
                    *b = Some(bar);
                }
            }
            kind::STEP_FINISHED | kind::STEP_FAILED | kind::TX_FINISHED => self.finish(),
            _ => {}
        }
    }

    fn progress(&self, _step: usize, done: u64, total: Option<u64>, what: &str) {
        if let Ok(b) = self.bar.lock() {
            if let Some(bar) = b.as_ref() {
                match total {
                    Some(t) if t > 0 => bar.set_message(format!("{what} {}%", done * 100 / t)),
                    _ => bar.set_message(format!("{what} ({done})")),
                }
            }
        }
    }
}

/// Asks the person about steps whose risk rose at run time, or that the preview could not
/// cover (undo's inverse steps).
pub(crate) struct TtyApprover {
    pub(crate) style: Style,
    pub(crate) home: String,
}

impl Approver for TtyApprover {
    fn approve(&mut self, req: &ApprovalRequest<'_>) -> Approval {
        println!(
            "step {} {} {}: risk {} — {}",
            req.step + 1,
            self.style.bold(req.name),
            render::args_line(req.args, &self.home),
            self.style.risk(req.assessment.risk),
            req.assessment
                .reasons
                .first()
                .map(String::as_str)
                .unwrap_or("")
        );
        match term::ask_key("Run this step? [y/n] ", &['y', 'n'], Some('n')) {
            Ok('y') => Approval::Approve("confirmed at the prompt".into()),
            _ => Approval::Decline("declined at the prompt".into()),
        }
    }
}

/// What the person chose at the plan prompt.
enum Choice {
    Run,
    Stop,
}

/// Runs one request end to end. `conversation` carries follow-up context in and out.
pub fn run_request(
    app: &App,
    cascade: &Cascade,
    text: &str,
    conversation: &mut Option<Conversation>,
    cancel: &CancelToken,
) -> anyhow::Result<ExitCode> {
    let env = app.env();
    let ctx = PlanContext {
        home: env.home.display().to_string(),
        cwd: env.cwd.display().to_string(),
        conversation: conversation.clone(),
    };
    let style = app.style;
    let json_mode = app.global.json;
    let mut plan = match crate::llm_cmd::plan(app, cascade, text, &ctx).outcome {
        Outcome::Plan { plan, .. } => plan,
        Outcome::Undo { target } => {
            let engine = app.engine()?;
            let target = target.or_else(|| conversation.as_ref().and_then(|c| c.last_tx.clone()));
            return crate::txn_cmd::undo_with(
                app,
                &engine,
                target.as_deref(),
                app.global.yes,
                app.global.dry_run,
                cancel,
            );
        }
        Outcome::NotUnderstood {
            message,
            suggestions,
        } => {
            if json_mode {
                render::json_line(
                    &json!({"steps": [], "error": message, "suggestions": suggestions}),
                )?;
            } else {
                eprintln!("kernos: {message}");
                if !suggestions.is_empty() {
                    eprintln!("The closest things I can do:");
                    for s in &suggestions {
                        eprintln!(
                            "  kernos \"{}\"   {}",
                            s.example,
                            style.dim(&format!("({})", s.action))
                        );
                    }
                }
            }
            return Ok(ExitCode::from(2));
        }
    };
    if plan.request.is_none() {
        plan.request = Some(text.to_owned());
    }
    if app.global.explain && !json_mode {
        crate::llm_cmd::print_why(&plan, style, &env.home.display().to_string());
    }
    // A plan made after a model read untrusted text is never approved by --yes alone.
    let yes = app.global.yes && !plan.untrusted_input;
    if app.global.yes && !yes {
        eprintln!(
            "kernos: --yes does not cover this plan: it was made after reading untrusted text"
        );
    }

    let engine = app.engine()?;
    let observer = CliObserver::new(plan.steps.len(), json_mode);
    let session = Session {
        env: env.clone(),
        actor: Actor::current_user(),
        org: LOCAL_ORG.into(),
        action: ActionId::generate(),
        cancel: cancel.clone(),
        observer: &observer,
    };
    let home = env.home.display().to_string();
    let interactive = term::interactive();

    let read_only = plan.steps.iter().all(|s| {
        engine
            .registry()
            .get(&s.tool, &s.action)
            .is_some_and(|a| a.spec().is_read_only())
    });

    let (report, preview) = if read_only && !app.global.dry_run {
        // Reads run at once; a read that policy still asks about (credentials) needs a yes.
        let mut approver: Box<dyn Approver> = if yes {
            Box::new(ApproveAll("--yes".into()))
        } else if interactive {
            Box::new(TtyApprover {
                style,
                home: home.clone(),
            })
        } else {
            Box::new(DeclineAll(
                "needs confirmation: no terminal to ask and no --yes".into(),
            ))
        };
        // Nothing here changes anything, so nothing needs to be on disk before a step runs:
        // the run's events are committed together at its end — one sync instead of one per
        // event. A run that could not be recorded is reported as an error, not shown.
        engine.store().hold();
        let run = engine.run(&plan, None, &session, approver.as_mut());
        let recorded = engine.store().release();
        let report = run?;
        recorded.context("the read ran but could not be recorded in the journal")?;
        (report, None)
    } else {
        let mut preview = engine.preview(&plan, &session)?;
        if !json_mode {
            print_preview(&plan, &preview, style, &home);
        }
        if let Some(why) = &preview.denied {
            if json_mode {
                render::json_line(&json!({"plan": plan, "preview": preview, "error": why}))?;
            } else {
                eprintln!("{} {why}", style.red("refused:"));
            }
            return Ok(ExitCode::from(1));
        }
        if app.global.dry_run {
            if json_mode {
                render::json_line(&json!({"plan": plan, "preview": preview}))?;
            } else {
                print_changes(&preview, style);
                println!("{}", style.dim("(dry run: nothing was changed)"));
            }
            return Ok(ExitCode::SUCCESS);
        }
        if !yes {
            if !interactive {
                let msg = "not run: this plan changes things and needs confirmation; run it in a terminal or pass --yes";
                if json_mode {
                    render::json_line(&json!({"plan": plan, "preview": preview, "error": msg}))?;
                } else {
                    eprintln!("kernos: {msg}");
                }
                return Ok(ExitCode::from(1));
            }
            if let Choice::Stop = prompt(&engine, &session, &mut plan, &mut preview, style, &home)?
            {
                println!("nothing done");
                return Ok(ExitCode::from(1));
            }
        }
        let mut approver: Box<dyn Approver> = if yes {
            Box::new(ApproveAll("--yes".into()))
        } else {
            Box::new(ApprovedUpTo {
                risk: preview.risk,
                by: Actor::current_user().0,
            })
        };
        let report = engine.run(&plan, Some(&preview), &session, approver.as_mut())?;
        (report, Some(preview))
    };
    observer.finish();

    // Remember what this did, for "them", "that file", "undo that".
    *conversation = Some(Conversation::after_run(
        &plan,
        report.produced_paths(),
        report.undoable.then(|| report.tx.to_string()),
    ));

    if json_mode {
        render::json_line(&json!({"plan": plan, "preview": preview, "report": report}))?;
    } else {
        print_report(&report, style, &home);
    }
    Ok(match report.status {
        TxStatus::Committed => ExitCode::SUCCESS,
        _ => ExitCode::from(1),
    })
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
        if preview.read_only {
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
            style.dim(s.reversibility.as_str())
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

/// The y/n/d/e/? prompt. Editing re-validates and re-previews.
fn prompt(
    engine: &Engine,
    session: &Session<'_>,
    plan: &mut Plan,
    preview: &mut Preview,
    style: Style,
    home: &str,
) -> anyhow::Result<Choice> {
    loop {
        let c = term::ask_key(
            "Run it? [y]es [n]o [d]ry-run [e]dit [?]explain ",
            &['y', 'n', 'd', 'e', '?'],
            None,
        )?;
        match c {
            'y' => return Ok(Choice::Run),
            'n' => return Ok(Choice::Stop),
            'd' => print_changes(preview, style),
            '?' => explain(plan, preview, style),
            'e' => {
                if let Some(mut edited) = edit_plan(engine, plan)? {
                    // Editing does not launder a plan made after reading untrusted text.
                    edited.untrusted_input |= plan.untrusted_input;
                    *plan = edited;
                    *preview = engine.preview(plan, session)?;
                    print_preview(plan, preview, style, home);
                    if let Some(why) = &preview.denied {
                        eprintln!("{} {why}", style.red("refused:"));
                        return Ok(Choice::Stop);
                    }
                }
            }
            _ => {}
        }
    }
}

/// Opens the plan as TOML in `$EDITOR`; returns the edited plan once it validates (or `None`
/// if the person gave up).
fn edit_plan(engine: &Engine, plan: &Plan) -> anyhow::Result<Option<Plan>> {
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
            Ok(p) => match engine.validate(&p) {
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
            } else if app.global.explain {
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
