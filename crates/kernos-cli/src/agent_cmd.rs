//! `kernos agent "<goal>"` (and `kernos --agent "<goal>"`): observe with read-only steps,
//! propose the next steps, ask, run, repeat — within a step, a token and a time budget shown
//! live on stderr. Every step goes through the engine like any request (policy, approval,
//! sandbox, journal); plans made after an observation are untrusted, so their changes are
//! always asked about in a terminal and never run on `--yes` alone.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::bail;
use kernos_core::{CancelToken, Plan};
use kernos_engine::{ActionOutcome, Ask, StepStatus, TxReport, TxStatus};
use kernos_llm::RouteOpts;
use kernos_planner::PlanContext;
use kernos_planner::llm::{Agent, AgentHost, AgentStatus, Budget, HostOutcome, Observation, Stop};
use serde_json::json;

use crate::app::App;
use crate::front::NEEDS_CONFIRMATION;
use crate::render;
use crate::request;
use crate::term::Style;

struct CliHost<'a> {
    app: &'a App,
    cancel: &'a CancelToken,
    style: Style,
    home: String,
}

impl CliHost<'_> {
    /// What a report's steps showed, as the model reads it next turn.
    fn observations(&self, report: &TxReport) -> Vec<Observation> {
        let plain = Style { on: false };
        report
            .steps
            .iter()
            .map(|s| {
                let text = match (&s.status, &s.output) {
                    (StepStatus::Done, Some(out)) => render::output(out, &self.home, plain),
                    (StepStatus::Done, None) => "(no output)".into(),
                    (StepStatus::Failed { error }, _) => format!("failed: {error}"),
                    (StepStatus::Skipped { reason }, _) => format!("skipped: {reason}"),
                    (StepStatus::Denied { reason }, _) => format!("refused by policy: {reason}"),
                    (StepStatus::Declined { reason }, _) => format!("not run: {reason}"),
                    (StepStatus::Cancelled, _) => "cancelled".into(),
                };
                Observation {
                    step: format!(
                        "step {}: {} {}",
                        s.index + 1,
                        s.name,
                        render::args_line(&s.args, &self.home)
                    ),
                    text: render::truncate(&text, kernos_planner::llm::MAX_STEP_OBSERVATION),
                }
            })
            .collect()
    }
}

/// Why a report stopped the agent, if it did.
fn stop_reason(report: &TxReport) -> Option<String> {
    match report.status {
        TxStatus::Committed | TxStatus::Failed => None,
        TxStatus::Cancelled => Some("cancelled (Ctrl-C)".into()),
        TxStatus::Denied | TxStatus::Declined => Some(
            report
                .steps
                .iter()
                .find_map(|s| match &s.status {
                    StepStatus::Denied { reason } | StepStatus::Declined { reason } => {
                        Some(reason.clone())
                    }
                    _ => None,
                })
                .unwrap_or_else(|| "a step was not approved".into()),
        ),
    }
}

impl AgentHost for CliHost<'_> {
    /// Each plan the agent proposes is an ordinary request on the one path (through the
    /// daemon when one runs): policy, approval, sandbox, journal, undo.
    fn run(&mut self, plan: &Plan) -> HostOutcome {
        if !self.app.global.json {
            crate::llm_cmd::print_why(plan, self.style, &self.home);
        }
        let stopped = |reason: String| HostOutcome::Stopped {
            observations: Vec::new(),
            reason,
        };
        let handled = match request::handle(self.app, Ask::Plan(plan.clone()), None, self.cancel) {
            Ok(h) => h,
            Err(e) => return stopped(e.to_string()),
        };
        let report = match handled.outcome {
            ActionOutcome::Ran(report) => report,
            ActionOutcome::Denied { reason } => return stopped(format!("refused: {reason}")),
            ActionOutcome::Stopped { reason }
                if reason == NEEDS_CONFIRMATION
                    && plan.untrusted_input
                    && self.app.opts.approval.yes =>
            {
                return stopped("this plan was made after reading untrusted text, so --yes does not cover its changes; run it in a terminal to approve them".into());
            }
            ActionOutcome::Stopped { reason }
            | ActionOutcome::Invalid { error: reason }
            | ActionOutcome::Ended { error: reason, .. } => return stopped(reason),
            other => return stopped(format!("ended {}", other.status())),
        };
        if !self.app.global.json {
            crate::show::print_report(&report, self.style, &self.home);
        }
        let observations = self.observations(&report);
        match stop_reason(&report) {
            None => HostOutcome::Ran(observations),
            Some(reason) => HostOutcome::Stopped {
                observations,
                reason,
            },
        }
    }

    fn status(&mut self, s: &AgentStatus) {
        eprintln!("{} {s}", self.style.dim("agent:"));
    }

    fn note(&mut self, message: &str) {
        if !self.app.global.json {
            println!("{} {message}", self.style.dim("model:"));
        }
    }
}

/// The budgets: flags first, then the config.
pub fn budget(app: &App) -> Budget {
    let p = &app.config.planner;
    Budget {
        max_steps: app
            .opts
            .budget
            .max_steps
            .unwrap_or(p.agent_max_steps)
            .max(1),
        max_tokens: app
            .opts
            .budget
            .max_tokens
            .unwrap_or(p.agent_max_tokens)
            .max(1),
        max_time: app
            .opts
            .budget
            .time
            .unwrap_or(Duration::from_secs(p.agent_time_secs)),
        max_units: None,
        max_cost_usd: None,
    }
}

/// Runs the agent towards `goal`.
pub fn run(app: &App, goal: &str, cancel: &CancelToken) -> anyhow::Result<ExitCode> {
    let cascade = app.cascade();
    let (Some(planner), true) = (cascade.llm(), cascade.has_model()) else {
        bail!(
            "agent mode needs a language model, and none is configured: add a [[llm.providers]] \
             entry (`kernos config edit`) or set KERNOS_LLM_<NAME>_BASE_URL and \
             KERNOS_LLM_<NAME>_MODEL; see `kernos models`"
        );
    };
    let model = cascade.model().map_err(|e| anyhow::anyhow!(e))?;
    let env = app.env();
    let ctx = PlanContext::new(
        env.home.display().to_string(),
        env.cwd.display().to_string(),
    );
    let mut agent = Agent::new(planner, model);
    agent.budget = budget(app);
    agent.lane = cascade.lane_for(goal);
    agent.route = RouteOpts {
        provider: app.opts.planning.provider.clone(),
        model: app.opts.planning.model.clone(),
        ..RouteOpts::default()
    };
    let mut host = CliHost {
        app,
        cancel,
        style: app.style,
        home: env.home.display().to_string(),
    };
    let report = agent.run(goal, &ctx, &mut host);
    let events = report
        .attempts
        .iter()
        .map(|a| {
            (
                kernos_core::event::kind::LLM_CALL,
                kernos_planner::llm::call_payload(a, "agent", "not_used"),
            )
        })
        .collect();
    crate::llm_cmd::journal(app, events);
    let summary = format!(
        "{} turn{}, {} step{}, {} tokens, ${:.4}, {:.1} s",
        report.turns,
        if report.turns == 1 { "" } else { "s" },
        report.steps,
        if report.steps == 1 { "" } else { "s" },
        report.tokens,
        report.cost_usd,
        report.elapsed.as_secs_f64()
    );
    if app.global.json {
        render::json_line(&json!({
            "goal": goal,
            "stop": report.stop,
            "turns": report.turns,
            "steps": report.steps,
            "tokens": report.tokens,
            "cost_usd": report.cost_usd,
            "elapsed_ms": u64::try_from(report.elapsed.as_millis()).unwrap_or(u64::MAX),
            "plans": report.plans,
        }))?;
    } else {
        match &report.stop {
            Stop::Done { answer } => {
                println!("{}", app.style.bold("Answer (from the model):"));
                println!("{answer}");
            }
            other => eprintln!("kernos: agent stopped — {other}"),
        }
        eprintln!("{}", app.style.dim(&format!("agent: {summary}")));
    }
    Ok(match report.stop {
        Stop::Done { .. } => ExitCode::SUCCESS,
        _ => ExitCode::from(1),
    })
}
