//! `kernos agent "<goal>"` (and `kernos --agent "<goal>"`): observe with read-only steps,
//! propose the next steps, ask, run, repeat — within a step, a token and a time budget shown
//! live on stderr. Every step goes through the engine like any request (policy, approval,
//! sandbox, journal); plans made after an observation are untrusted, so their changes are
//! always asked about in a terminal and never run on `--yes` alone.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::bail;
use kernos_core::{ActionId, Actor, CancelToken, LOCAL_ORG, Plan};
use kernos_engine::{
    ApproveAll, ApprovedUpTo, Approver, DeclineAll, Engine, Session, StepStatus, TxStatus,
};
use kernos_llm::RouteOpts;
use kernos_planner::PlanContext;
use kernos_planner::llm::{Agent, AgentHost, AgentStatus, Budget, HostOutcome, Observation, Stop};
use serde_json::json;

use crate::app::App;
use crate::render;
use crate::request::{CliObserver, TtyApprover, print_preview, print_report};
use crate::term::{self, Style};

/// Most characters of one step's output given back to the model.
const MAX_OBSERVATION: usize = 4_000;

struct CliHost<'a> {
    app: &'a App,
    engine: Engine,
    cancel: &'a CancelToken,
    style: Style,
    home: String,
    interactive: bool,
}

impl CliHost<'_> {
    fn session<'s>(&self, observer: &'s CliObserver) -> Session<'s> {
        Session {
            env: self.app.env(),
            actor: Actor::current_user(),
            org: LOCAL_ORG.into(),
            action: ActionId::generate(),
            cancel: self.cancel.clone(),
            observer,
        }
    }

    /// `--yes` approves only plans made before anything untrusted was read.
    fn yes(&self, plan: &Plan) -> bool {
        self.app.global.yes && !plan.untrusted_input
    }
}

impl AgentHost for CliHost<'_> {
    fn run(&mut self, plan: &Plan) -> HostOutcome {
        let json = self.app.global.json;
        if !json {
            crate::llm_cmd::print_why(plan, self.style, &self.home);
        }
        let observer = CliObserver::new(plan.steps.len(), json);
        let session = self.session(&observer);
        let read_only = plan.steps.iter().all(|s| {
            self.engine
                .registry()
                .get(&s.tool, &s.action)
                .is_some_and(|a| a.spec().is_read_only())
        });
        let result = if read_only {
            // Reads run at once; a read policy still asks about (credentials, or the network
            // in an untrusted plan) needs a person.
            let mut approver: Box<dyn Approver> = if self.yes(plan) {
                Box::new(ApproveAll("--yes".into()))
            } else if self.interactive {
                Box::new(TtyApprover {
                    style: self.style,
                    home: self.home.clone(),
                })
            } else {
                Box::new(DeclineAll(
                    "needs confirmation: no terminal to ask (and --yes does not cover plans made after reading untrusted text)".into(),
                ))
            };
            self.engine.run(plan, None, &session, approver.as_mut())
        } else {
            let preview = match self.engine.preview(plan, &session) {
                Ok(p) => p,
                Err(e) => {
                    return HostOutcome::Stopped {
                        observations: Vec::new(),
                        reason: e.to_string(),
                    };
                }
            };
            if !json {
                print_preview(plan, &preview, self.style, &self.home);
            }
            if let Some(why) = &preview.denied {
                return HostOutcome::Stopped {
                    observations: Vec::new(),
                    reason: format!("refused: {why}"),
                };
            }
            let mut approver: Box<dyn Approver> = if self.yes(plan) {
                Box::new(ApproveAll("--yes".into()))
            } else if self.interactive {
                match term::ask_key("Run these steps? [y/n] ", &['y', 'n'], Some('n')) {
                    Ok('y') => Box::new(ApprovedUpTo {
                        risk: preview.risk,
                        by: Actor::current_user().0,
                    }),
                    _ => {
                        return HostOutcome::Stopped {
                            observations: Vec::new(),
                            reason: "declined at the prompt".into(),
                        };
                    }
                }
            } else {
                let why = if plan.untrusted_input && self.app.global.yes {
                    "this plan was made after reading untrusted text, so --yes does not cover its changes; run it in a terminal to approve them"
                } else {
                    "these steps change things and need confirmation; run it in a terminal or pass --yes"
                };
                return HostOutcome::Stopped {
                    observations: Vec::new(),
                    reason: why.into(),
                };
            };
            self.engine
                .run(plan, Some(&preview), &session, approver.as_mut())
        };
        observer.finish();
        let report = match result {
            Ok(r) => r,
            Err(e) => {
                return HostOutcome::Stopped {
                    observations: Vec::new(),
                    reason: e.to_string(),
                };
            }
        };
        if !json {
            print_report(&report, self.style, &self.home);
        }
        let plain = Style { on: false };
        let observations: Vec<Observation> = report
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
                    text: render::truncate(&text, MAX_OBSERVATION),
                }
            })
            .collect();
        match report.status {
            TxStatus::Committed | TxStatus::Failed => HostOutcome::Ran(observations),
            TxStatus::Cancelled => HostOutcome::Stopped {
                observations,
                reason: "cancelled (Ctrl-C)".into(),
            },
            TxStatus::Denied | TxStatus::Declined => {
                let reason = report
                    .steps
                    .iter()
                    .find_map(|s| match &s.status {
                        StepStatus::Denied { reason } | StepStatus::Declined { reason } => {
                            Some(reason.clone())
                        }
                        _ => None,
                    })
                    .unwrap_or_else(|| "a step was not approved".into());
                HostOutcome::Stopped {
                    observations,
                    reason,
                }
            }
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
        max_steps: app.global.max_steps.unwrap_or(p.agent_max_steps).max(1),
        max_tokens: app.global.max_tokens.unwrap_or(p.agent_max_tokens).max(1),
        max_time: app
            .global
            .time
            .unwrap_or(Duration::from_secs(p.agent_time_secs)),
    }
}

/// Runs the agent towards `goal`.
pub fn run(app: &App, goal: &str, cancel: &CancelToken) -> anyhow::Result<ExitCode> {
    let cascade = crate::llm_cmd::cascade(app);
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
        provider: app.global.provider.clone(),
        model: app.global.model.clone(),
    };
    let mut host = CliHost {
        app,
        engine: app.engine()?,
        cancel,
        style: app.style,
        home: env.home.display().to_string(),
        interactive: term::interactive(),
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
