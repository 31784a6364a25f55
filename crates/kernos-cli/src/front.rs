//! What the terminal supplies to the engine's one request path: where progress goes
//! ([`CliObserver`]: spinners, the preview, what undo would do) and how approval is obtained
//! ([`CliApprover`]: the y/n/d/e/? prompt, `--yes`, or "no terminal, so no").

use std::io::IsTerminal;
use std::sync::Mutex;

use anyhow::Context;
use kernos_core::event::kind;
use kernos_core::{Actor, EffectKind, Event, Plan, Risk, Target};
use kernos_engine::{
    Approval, ApprovalRequest, Approver, Observer, Preview, Review, UndoPlan, Verdict,
};
use kernos_planner::llm::Planned;

use crate::app::App;
use crate::render;
use crate::show::{explain, print_changes, print_preview, print_undo_plan};
use crate::term::{self, Style};

/// The reason recorded when the person answers "no" at a prompt (the prompt already said
/// what happened, so renderers add nothing).
pub const DECLINED_AT_PROMPT: &str = "declined at the prompt";

/// Why a plan that changes things does not run without a terminal or `--yes`.
pub const NEEDS_CONFIRMATION: &str =
    "not run: this plan changes things and needs confirmation; run it in a terminal or pass --yes";

/// Shows a request's progress on the terminal: the preview, what undo would do, and a
/// spinner for long steps (on stderr, only when it is a terminal).
pub struct CliObserver {
    bar: Mutex<Option<indicatif::ProgressBar>>,
    spinner: bool,
    json: bool,
    explain: bool,
    style: Style,
    home: String,
    plan_len: Mutex<usize>,
}

impl CliObserver {
    /// An observer for requests made from `app` (its `--json`, `--explain` and style).
    pub fn new(app: &App) -> Self {
        let json = app.global.json;
        CliObserver {
            bar: Mutex::new(None),
            spinner: !json && std::io::stderr().is_terminal(),
            json,
            explain: app.opts.planning.explain,
            style: app.style,
            home: app.home(),
            plan_len: Mutex::new(0),
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

    fn start_spinner(&self, ev: &Event) {
        let name = ev.payload["name"].as_str().unwrap_or("step");
        let n = ev.payload["step"].as_u64().unwrap_or(0) + 1;
        let len = self.plan_len.lock().map(|l| *l).unwrap_or(0);
        let bar = indicatif::ProgressBar::new_spinner();
        let label = if len > 1 {
            format!("[{n}/{len}] {name}")
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
}

impl Observer for CliObserver {
    fn event(&self, ev: &Event) {
        match ev.kind.as_str() {
            kind::TX_STARTED => {
                let n = ev.payload["plan"]["steps"]
                    .as_array()
                    .map(Vec::len)
                    .unwrap_or(0);
                if let Ok(mut l) = self.plan_len.lock() {
                    *l = n;
                }
            }
            kind::STEP_STARTED if self.spinner => self.start_spinner(ev),
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

    fn planned(&self, planned: &Planned) {
        if let Some(n) = &planned.notice {
            eprintln!("kernos: {n}");
        }
        if let kernos_planner::llm::Source::Model { provider, model } = &planned.source {
            eprintln!("kernos: planned by the language model {provider}/{model}");
        }
        // Changes the planner was unsure of were refused already; a read that left words
        // unexplained still runs, but never silently.
        if let (false, kernos_planner::Outcome::Plan { .. }) =
            (planned.unused.is_empty(), &planned.outcome)
        {
            eprintln!(
                "kernos: note: this plan does not use \u{201c}{}\u{201d}; check it is what you meant",
                planned.unused.join("\u{201d}, \u{201c}")
            );
        }
        if let (true, false, kernos_planner::Outcome::Plan { plan, .. }) =
            (self.explain, self.json, &planned.outcome)
        {
            crate::llm_cmd::print_why(plan, self.style, &self.home);
        }
    }

    fn previewed(&self, plan: &Plan, preview: &Preview) {
        if !self.json {
            print_preview(plan, preview, self.style, &self.home);
        }
    }

    fn undo_planned(&self, plan: &UndoPlan) {
        if !self.json {
            print_undo_plan(
                &plan.tx.to_string(),
                plan.request.as_deref(),
                plan.items.iter().map(|i| i.description.as_str()),
                self.style,
            );
        }
    }
}

/// Obtains approval at the terminal: the plan prompt (y/n/d/e/?), a prompt per step whose risk
/// rose once its inputs were known, `--yes`, or — with no terminal and no `--yes` — no.
pub struct CliApprover {
    style: Style,
    home: String,
    yes: bool,
    interactive: bool,
    /// The risk the person accepted at the plan prompt.
    approved: Option<Risk>,
    /// The person confirmed an undo: its inverse steps are part of what they approved.
    undo_confirmed: bool,
}

impl CliApprover {
    /// The approver for requests made from `app`.
    pub fn new(app: &App) -> Self {
        CliApprover {
            style: app.style,
            home: app.home(),
            yes: app.opts.approval.yes,
            interactive: term::interactive(),
            approved: None,
            undo_confirmed: false,
        }
    }

    /// `--yes` covers only plans made before anything untrusted was read.
    fn yes_covers(&self, untrusted: bool) -> bool {
        if self.yes && untrusted {
            eprintln!(
                "kernos: --yes does not cover this plan: it was made after reading untrusted text"
            );
        }
        self.yes && !untrusted
    }

    fn approve_undo(&mut self) -> Approval {
        if self.yes {
            self.undo_confirmed = true;
            return Approval::Approve("undo confirmed (--yes)".into());
        }
        if !self.interactive {
            return Approval::Decline(
                "undo changes files; nothing was done. Run it in a terminal to confirm, or pass --yes"
                    .into(),
            );
        }
        match term::ask_key("Undo this? [y/n] ", &['y', 'n'], Some('n')) {
            Ok('y') => {
                self.undo_confirmed = true;
                Approval::Approve("undo confirmed".into())
            }
            _ => {
                println!("nothing undone");
                Approval::Decline(DECLINED_AT_PROMPT.into())
            }
        }
    }
}

impl Approver for CliApprover {
    fn approve(&mut self, req: &ApprovalRequest<'_>) -> Approval {
        if req.name == "undo" {
            return self.approve_undo();
        }
        if self.undo_confirmed {
            return Approval::Approve("undo confirmed".into());
        }
        if self.yes_covers(req.untrusted) {
            return Approval::Approve("--yes".into());
        }
        if let Some(risk) = self.approved {
            return kernos_engine::ApprovedUpTo {
                risk,
                by: Actor::current_user().0,
            }
            .approve(req);
        }
        if !self.interactive {
            return Approval::Decline("needs confirmation: no terminal to ask and no --yes".into());
        }
        if ask_step(self.style, &self.home, req) {
            Approval::Approve("confirmed at the prompt".into())
        } else {
            Approval::Decline(DECLINED_AT_PROMPT.into())
        }
    }

    fn review(&mut self, review: &mut Review<'_, '_>) -> kernos_engine::Result<Verdict> {
        if self.yes_covers(review.plan().untrusted_input) {
            self.approved = Some(Risk::High);
            return Ok(Verdict::Run);
        }
        if !self.interactive {
            // A plan that only reads and talks to the network (ping, resolve, an HTTP GET),
            // which policy lets run without asking, is a read: it runs as reads do.
            let preview = review.preview();
            let reads = preview.denied.is_none()
                && preview.steps.iter().all(|s| {
                    render::reads_only(s) && s.assessment.decision == kernos_core::Decision::Allow
                });
            if reads && !review.plan().untrusted_input {
                return Ok(Verdict::Run);
            }
            return Ok(Verdict::Stop(NEEDS_CONFIRMATION.into()));
        }
        loop {
            let key = term::ask_key(
                "Run it? [y]es [n]o [d]ry-run [e]dit [?]explain ",
                &['y', 'n', 'd', 'e', '?'],
                None,
            );
            match key {
                Ok('y') => {
                    if !confirmed_by_word(review.preview()) {
                        println!("nothing done");
                        return Ok(Verdict::Stop(DECLINED_AT_PROMPT.into()));
                    }
                    self.approved = Some(review.preview().risk);
                    return Ok(Verdict::Run);
                }
                Ok('d') => print_changes(review.preview(), self.style),
                Ok('?') => explain(review.plan(), review.preview(), self.style),
                Ok('e') => {
                    let edited = match edit_plan(review) {
                        Ok(e) => e,
                        Err(e) => {
                            eprintln!("kernos: cannot edit the plan: {e}");
                            None
                        }
                    };
                    if let Some(edited) = edited {
                        review.replace(edited)?;
                        if let Some(why) = &review.preview().denied {
                            eprintln!("{} {why}", self.style.red("refused:"));
                            return Ok(Verdict::Stop(why.clone()));
                        }
                    }
                }
                Ok(_) | Err(_) => {
                    println!("nothing done");
                    return Ok(Verdict::Stop(DECLINED_AT_PROMPT.into()));
                }
            }
        }
    }
}

/// The word a person must type to run a previewed plan, when one key is not enough: the
/// number of entries it deletes when that is more than one (so the count is read, not
/// guessed), else "yes" for a recursive delete or a high-risk plan; `None` when a key will do.
pub fn confirmation_word(preview: &Preview) -> Option<String> {
    let deleted: u64 = preview
        .steps
        .iter()
        .flat_map(|s| s.changes.iter().flatten())
        .map(|c| match c {
            kernos_tools::Change::Delete { entries, .. } => *entries,
            _ => 0,
        })
        .sum();
    let recursive_delete = preview.steps.iter().flat_map(|s| &s.effects).any(|e| {
        e.kind == EffectKind::Delete
            && matches!(
                e.target,
                Target::Path {
                    recursive: true,
                    ..
                }
            )
    });
    if deleted > 1 {
        Some(deleted.to_string())
    } else if recursive_delete || preview.risk == Risk::High {
        Some("yes".into())
    } else {
        None
    }
}

/// After a "y": asks for the typed word when the plan needs one; true to run.
fn confirmed_by_word(preview: &Preview) -> bool {
    let Some(word) = confirmation_word(preview) else {
        return true;
    };
    let what = if word == "yes" {
        format!("This is a {} change.", risk_word(preview))
    } else {
        format!("This deletes {word} files and folders.")
    };
    matches!(
        term::ask_word(&format!("{what} Type {word} to run it: "), &word),
        Ok(true)
    )
}

fn risk_word(preview: &Preview) -> &'static str {
    if preview.risk == Risk::High {
        "high-risk"
    } else {
        "recursive"
    }
}

/// Asks about one step; true for yes.
pub fn ask_step(style: Style, home: &str, req: &ApprovalRequest<'_>) -> bool {
    println!(
        "step {} {} {}: risk {} — {}",
        req.step + 1,
        style.bold(req.name),
        render::args_line(req.args, home),
        style.risk(req.assessment.risk),
        req.assessment
            .reasons
            .first()
            .map(String::as_str)
            .unwrap_or("")
    );
    let yes = matches!(
        term::ask_key("Run this step? [y/n] ", &['y', 'n'], Some('n')),
        Ok('y')
    );
    // A step whose risk rose to high once its inputs were known is confirmed like a
    // high-risk plan: with a typed word.
    yes && (req.assessment.risk != Risk::High
        || matches!(term::ask_word("Type yes to run it: ", "yes"), Ok(true)))
}

/// Opens the plan under review as TOML in `$EDITOR`; returns the edited plan once it
/// validates (or `None` if the person gave up).
fn edit_plan(review: &Review<'_, '_>) -> anyhow::Result<Option<Plan>> {
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
