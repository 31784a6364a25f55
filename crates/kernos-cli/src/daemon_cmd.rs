//! `kernos serve`, `kernos keys …`, and requests sent through a running daemon.
//!
//! When `<data_dir>/kernos.sock` answers, `kernos "<request>"` goes through the daemon (the
//! same engine, policy and journal, one path): it submits, follows the action's event stream,
//! shows the same preview and prompt (answers go to POST /v1/approvals/{id}) and renders the
//! same results. Without a daemon, everything runs embedded as before.

use std::process::ExitCode;

use anyhow::{Context, bail};
use kernos_core::event::kind;
use kernos_core::{Actor, NewEvent, Plan, Risk, TxId};
use kernos_engine::payload::{StepDecided, StepFinished};
use kernos_engine::{
    ActionOutcome, ActionStatus, Ask, Handled, Preview, StepReport, StepStatus, TxReport, TxStatus,
    UndoReport,
};
use kernos_journal::{Journal, Query};
use kernos_planner::Conversation;
use kernos_server::{KeyTable, Principal, Role};
use serde_json::{Value, json};

use crate::app::App;
use crate::daemon_client::{self as client, Events};
use crate::{render, term};

/// The daemon as this configuration describes it, for `kernos serve` and `kernos mcp serve`.
pub fn daemon_options(app: &App) -> kernos_server::DaemonOptions {
    let config_text = crate::config::path()
        .ok()
        .and_then(|p| std::fs::read_to_string(p).ok());
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from("/"));
    kernos_server::DaemonOptions {
        data_dir: app.data_dir.clone(),
        config: app.config.server.clone(),
        policy: app.config.policy.clone(),
        runner: crate::app::runner(&app.config, &app.data_dir),
        home,
        config_text,
        planner: app.cascade(),
        trash_budget: app.config.trash,
        registry: app.registry(),
        org_tools: Some(app.org_tools()),
        log: kernos_server::LogOptions {
            journal: app.config.journal.clone(),
            witness: app.config.witness.clone(),
        },
        fleet: crate::fleet_cmd::membership(&app.data_dir).or_else(|| app.config.fleet.clone()),
        live: Some(kernos_server::reload::LiveSource {
            loader: {
                let (data_dir, registry, skills) =
                    (app.data_dir.clone(), app.registry(), app.org_skills());
                std::sync::Arc::new(move || reload_config(&data_dir, &registry, &skills))
            },
            sections: serde_json::to_value(&app.config).unwrap_or_default(),
        }),
    }
}

/// The daemon's config loader for a reload (SIGHUP): the same file, `--profile` and
/// environment as at start, read again; the planner cascade (providers, lanes, the plan
/// cache) built from it as at start, over the catalog the daemon runs with.
fn reload_config(
    data_dir: &std::path::Path,
    registry: &std::sync::Arc<kernos_tools::Registry>,
    skills: &std::sync::Arc<kernos_skills::action::OrgCatalogs>,
) -> Result<kernos_server::NewConfig, String> {
    let (c, text) = crate::config::load_text().map_err(|e| format!("{e:#}"))?;
    Ok(kernos_server::NewConfig {
        server: c.server.clone(),
        sections: serde_json::to_value(&c).map_err(|e| e.to_string())?,
        planner: Some(crate::planning::cascade(
            &c,
            data_dir,
            registry.clone(),
            skills.clone(),
        )),
        text,
    })
}

/// `kernos serve [--listen ADDR] [--insecure]`.
pub fn serve(app: &App, listen: Option<String>, insecure: bool) -> anyhow::Result<ExitCode> {
    kernos_server::startup::mark("command line and config");
    kernos_server::init_logging();
    trim_after_bursts();
    let opts = daemon_options(app);
    kernos_server::startup::mark("catalog and planner");
    kernos_server::serve(
        opts,
        kernos_server::ServeOptions {
            listen,
            insecure,
            tcp: true,
        },
    )?;
    Ok(ExitCode::SUCCESS)
}

/// Gives the heap's free pages back to the system once a burst of work is over.
///
/// glibc keeps what a burst freed inside its arenas (one per busy thread: the daemon has 16
/// workers, the runtime's threads, the journal's writer): measured after 100,000 actions,
/// 7.5 MB of the 13 MB of arenas were free, and `malloc_trim(0)` brought the daemon's RSS
/// down by 3 MiB. Capping the arenas (`M_ARENA_MAX`) or fixing the trim and mmap thresholds
/// did not (within run-to-run noise), so this trims instead, and only when the process has
/// gone idle after real work: a trim walks every arena under its lock, which a busy daemon
/// should not pay for, and an idle one has nothing new to give back.
fn trim_after_bursts() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        /// CPU time since the last trim that makes a trim worth it (a burst happened).
        const BURST: std::time::Duration = std::time::Duration::from_millis(500);
        /// CPU time in the last tick below which the process counts as idle.
        const IDLE: std::time::Duration = std::time::Duration::from_millis(20);
        let cpu = || {
            // SAFETY: getrusage only writes the struct we pass.
            let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
            // SAFETY: RUSAGE_SELF with a valid pointer cannot fail.
            unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
            let t = |tv: libc::timeval| {
                std::time::Duration::from_secs(tv.tv_sec.max(0) as u64)
                    + std::time::Duration::from_micros(tv.tv_usec.max(0) as u64)
            };
            t(ru.ru_utime) + t(ru.ru_stime)
        };
        let spawned = std::thread::Builder::new()
            .name("kernos-trim".into())
            .spawn(move || {
                let (mut last, mut trimmed) = (cpu(), cpu());
                loop {
                    std::thread::sleep(std::time::Duration::from_secs(1));
                    let now = cpu();
                    if now.saturating_sub(last) < IDLE && now.saturating_sub(trimmed) > BURST {
                        // SAFETY: malloc_trim has no preconditions.
                        unsafe { libc::malloc_trim(0) };
                        trimmed = cpu();
                    }
                    last = cpu();
                }
            });
        if let Err(e) = spawned {
            eprintln!("kernos: cannot start the heap trimming thread: {e}");
        }
    }
}

fn local_principal() -> Principal {
    Principal {
        actor: Actor::current_user(),
        org: kernos_core::LOCAL_ORG.into(),
        role: Role::Owner,
        key_id: None,
        source: "cli".into(),
    }
}

fn print_key(app: &App, v: &Value) -> anyhow::Result<()> {
    if app.global.json {
        return render::json_line(v);
    }
    println!("{}", v["key"].as_str().unwrap_or(""));
    eprintln!(
        "key {} for org {} with role {}: shown once and stored only as its SHA-256; keep it now",
        v["id"].as_str().unwrap_or(""),
        v["org"].as_str().unwrap_or(""),
        v["role"].as_str().unwrap_or("")
    );
    Ok(())
}

/// `kernos keys create --org ORG --role ROLE [--label TEXT]`.
pub fn keys_create(app: &App, org: &str, role: Role, label: &str) -> anyhow::Result<ExitCode> {
    kernos_server::auth::validate_org(org).map_err(anyhow::Error::msg)?;
    if client::available(&app.data_dir) {
        let r = client::call(
            &app.data_dir,
            "POST",
            "/v1/keys",
            Some(&json!({"org": org, "role": role, "label": label})),
        )?
        .ok()?;
        print_key(app, &r.json()?)?;
        return Ok(ExitCode::SUCCESS);
    }
    let who = local_principal();
    let k = kernos_server::generate_key(org, role, label, &who).map_err(anyhow::Error::msg)?;
    let mut j = Journal::open(&app.data_dir)
        .with_context(|| format!("cannot open the journal in {}", app.data_dir.display()))?;
    j.append(
        &NewEvent::new(kernos_server::auth::KEY_CREATED, who.actor.clone())
            .org(org)
            .payload(k.payload.clone()),
    )?;
    print_key(
        app,
        &json!({"key": k.secret, "id": k.id, "org": org, "role": role, "label": label}),
    )?;
    Ok(ExitCode::SUCCESS)
}

fn key_table(app: &App) -> anyhow::Result<KeyTable> {
    let mut t = KeyTable::default();
    if !app.data_dir.join(kernos_journal::DB_FILE).exists() {
        return Ok(t);
    }
    let j = Journal::open_read_only(&app.data_dir)?;
    j.for_each(&Query::kind_prefix("audit.key."), |e| {
        t.apply(&e);
        true
    })?;
    Ok(t)
}

/// `kernos keys list [--org ORG]`.
pub fn keys_list(app: &App, org: Option<&str>) -> anyhow::Result<ExitCode> {
    let keys: Vec<Value> = if client::available(&app.data_dir) {
        let mut orgs: Vec<String> = match org {
            Some(o) => vec![o.to_owned()],
            None => Vec::new(),
        };
        if orgs.is_empty() {
            // The daemon lists one org per call; without --org, every org in the journal.
            orgs = key_table(app)?
                .list(None)
                .into_iter()
                .map(|k| k.org)
                .collect();
            orgs.dedup();
        }
        let mut all = Vec::new();
        for o in orgs {
            let r = client::call(&app.data_dir, "GET", &format!("/v1/keys?org={o}"), None)?.ok()?;
            if let Value::Array(v) = r.json()? {
                all.extend(v);
            }
        }
        all
    } else {
        key_table(app)?
            .list(org)
            .into_iter()
            .map(|k| serde_json::to_value(k).unwrap_or(Value::Null))
            .collect()
    };
    if app.global.json {
        println!("{}", serde_json::to_string_pretty(&keys)?);
        return Ok(ExitCode::SUCCESS);
    }
    if keys.is_empty() {
        println!("no keys yet: kernos keys create --org ORG --role viewer|operator|admin|owner");
        return Ok(ExitCode::SUCCESS);
    }
    for k in keys {
        println!(
            "{}  {:<12} {:<9} {:<8} {}",
            k["id"].as_str().unwrap_or(""),
            k["org"].as_str().unwrap_or(""),
            k["role"].as_str().unwrap_or(""),
            if k["revoked"] == true {
                "revoked"
            } else {
                "active"
            },
            k["label"].as_str().unwrap_or("")
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `kernos keys revoke ID`.
pub fn keys_revoke(app: &App, id: &str) -> anyhow::Result<ExitCode> {
    if client::available(&app.data_dir) {
        client::call(&app.data_dir, "DELETE", &format!("/v1/keys/{id}"), None)?.ok()?;
    } else {
        let t = key_table(app)?;
        let Some(k) = t.get(id) else {
            bail!("no key {id}: see `kernos keys list`");
        };
        if k.revoked {
            bail!("key {id} is already revoked");
        }
        let who = local_principal();
        Journal::open(&app.data_dir)?.append(
            &NewEvent::new(kernos_server::auth::KEY_REVOKED, who.actor.clone())
                .org(&k.org)
                .payload(json!({
                    "key_id": id, "org": k.org, "role": k.role, "label": k.label,
                    "actor": who.actor, "actor_org": who.org, "actor_role": who.role,
                    "source": who.source, "before": {"revoked": false}, "after": {"revoked": true},
                })),
        )?;
    }
    if app.global.json {
        render::json_line(&json!({"id": id, "revoked": true}))?;
    } else {
        println!("key {id} revoked");
    }
    Ok(ExitCode::SUCCESS)
}

/// What the client learns from an action's events.
#[derive(Default)]
struct Seen {
    plan: Option<Plan>,
    preview: Option<Preview>,
    decided: Vec<StepDecided>,
    outputs: Vec<(usize, kernos_tools::Output)>,
    finished: Option<Value>,
    approved_up_to: Option<Risk>,
    suggestions: Vec<kernos_planner::Suggestion>,
    /// Each fleet node's result (`fleet.node.finished`), in the order they came.
    nodes: Vec<Value>,
}

/// Submits `ask` to the daemon and follows its events until `action.finished`; what happened
/// comes back in the engine's own terms.
pub fn submit(
    app: &App,
    ask: Ask,
    conversation: Option<&Conversation>,
    cancel: &kernos_core::CancelToken,
) -> anyhow::Result<Handled> {
    let dir = &app.data_dir;
    let style = app.style;
    let json_mode = app.global.json;
    let env = app.env();
    let home = env.home.display().to_string();
    let interactive = term::interactive();
    let head = client::call(dir, "GET", "/healthz", None)?.ok()?.json()?["head"]
        .as_u64()
        .unwrap_or(0);
    let mut body = json!({
        "cwd": env.cwd.display().to_string(),
        "dry_run": app.opts.approval.dry_run,
        "auto_approve": app.opts.approval.yes,
        "context": conversation,
    });
    let fleet = &app.opts.fleet;
    if let Some(on) = &fleet.on {
        body["on"] = json!(on);
        let mut rollout = json!({});
        if let Some(b) = fleet.batch {
            rollout["batch"] = json!(b);
        }
        if let Some(m) = fleet.max_failures {
            rollout["max_failures"] = json!(m);
        }
        if let Some(t) = fleet.node_timeout {
            rollout["node_timeout_s"] = json!(t.as_secs().max(1));
        }
        if let Some(d) = fleet.deadline {
            rollout["deadline_s"] = json!(d.as_secs().max(1));
        }
        body["rollout"] = rollout;
    }
    match ask {
        Ask::Text(t) => body["request"] = json!(t),
        Ask::Plan(p) => body["plan"] = json!(p),
        Ask::Undo(t) => body["undo"] = json!(t.unwrap_or_else(|| "last".into())),
    }
    let acc = client::call(dir, "POST", "/v1/actions", Some(&body))?
        .ok()?
        .json()?;
    let action = acc["action"]
        .as_str()
        .context("the daemon answered without an action id")?
        .to_owned();
    let mut events = Events::open(dir, &format!("/v1/events?action={action}&after={head}"))?;
    // The stream is read on its own thread so Ctrl-C can be noticed while waiting: the first
    // one asks the daemon to stop the action (the step stops cleanly and is journaled).
    let (etx, erx) = std::sync::mpsc::sync_channel(64);
    std::thread::spawn(move || {
        while let Ok(Some(ev)) = events.next_event() {
            if etx.send(ev).is_err() {
                return;
            }
        }
    });
    let mut asked_to_stop = false;
    let mut seen = Seen::default();
    loop {
        let ev = match erx.recv_timeout(std::time::Duration::from_millis(100)) {
            Ok(ev) => ev,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                if cancel.is_cancelled() && !asked_to_stop {
                    asked_to_stop = true;
                    client::call(dir, "POST", &format!("/v1/actions/{action}/cancel"), None)?;
                }
                continue;
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
        };
        let p = &ev.data["payload"];
        match ev.kind.as_str() {
            kind::PLAN_FAILED => {
                seen.suggestions =
                    serde_json::from_value(p["suggestions"].clone()).unwrap_or_default();
            }
            kind::PLAN_CREATED => {
                seen.plan = serde_json::from_value(p["plan"].clone()).ok();
            }
            kernos_server::ACTION_PREVIEWED => {
                let plan: Option<Plan> = serde_json::from_value(p["plan"].clone()).ok();
                let preview: Option<Preview> = serde_json::from_value(p["preview"].clone()).ok();
                if let (Some(plan), Some(preview)) = (&plan, &preview) {
                    if !json_mode {
                        crate::show::print_preview(plan, preview, style, &home);
                    }
                }
                if let (false, Some(undo)) = (json_mode, p.get("undo")) {
                    crate::show::print_undo_plan(
                        undo["tx"].as_str().unwrap_or(""),
                        undo["request"].as_str(),
                        undo["items"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(|i| i["description"].as_str()),
                        style,
                    );
                }
                seen.plan = plan.or(seen.plan);
                seen.preview = preview;
            }
            kind::STEP_DECIDED => {
                if let Ok(d) = serde_json::from_value::<StepDecided>(p.clone()) {
                    seen.decided.push(d);
                }
            }
            kind::STEP_FINISHED => {
                if let Ok(f) = serde_json::from_value::<StepFinished>(p.clone()) {
                    seen.outputs.push((f.step, f.result.output));
                }
            }
            kind::APPROVAL_REQUESTED => {
                let (approve, reason) = answer(app, &mut seen, p, interactive)?;
                let id = p["approval"].as_str().unwrap_or("");
                client::call(
                    dir,
                    "POST",
                    &format!("/v1/approvals/{id}"),
                    Some(&json!({"approve": approve, "reason": reason})),
                )?
                .ok()?;
                if !approve && !interactive && !json_mode {
                    eprintln!("kernos: {reason}");
                }
            }
            kernos_server::ACTION_FINISHED => {
                seen.finished = Some(p.clone());
                break;
            }
            k if k.starts_with("fleet.node.") => {
                if !json_mode {
                    crate::fleet_cmd::print_progress(k, p, style);
                }
                if k == "fleet.node.finished" {
                    seen.nodes.push(p.clone());
                }
            }
            _ => {}
        }
    }
    let Some(fin) = seen.finished.take() else {
        bail!("the daemon stopped before the action finished; see `kernos history`");
    };
    to_handled(seen, &fin)
}

/// Decides about a step the daemon asks about, the way the embedded path would.
fn answer(
    app: &App,
    seen: &mut Seen,
    p: &Value,
    interactive: bool,
) -> anyhow::Result<(bool, String)> {
    let risk: Risk = serde_json::from_value(p["risk"].clone()).unwrap_or(Risk::High);
    if let Some(max) = seen.approved_up_to {
        if risk <= max {
            return Ok((true, format!("plan approved by {}", Actor::current_user())));
        }
    }
    if app.opts.approval.yes {
        return Ok((true, "--yes".into()));
    }
    if !interactive {
        return Ok((
            false,
            "not run: this plan changes things and needs confirmation; run it in a terminal or pass --yes".into(),
        ));
    }
    let style = app.style;
    // The first question is about the whole plan that was previewed; later ones (a step whose
    // risk rose once its inputs were known) are asked one by one.
    if seen.approved_up_to.is_none() && p["name"] != "undo" {
        if let (Some(plan), Some(preview)) = (&seen.plan, &seen.preview) {
            loop {
                let c = term::ask_key(
                    "Run it? [y]es [n]o [d]ry-run [?]explain ",
                    &['y', 'n', 'd', '?'],
                    None,
                )?;
                match c {
                    'y' => {
                        seen.approved_up_to = Some(preview.risk);
                        return Ok((true, "confirmed at the prompt".into()));
                    }
                    'n' => return Ok((false, "declined at the prompt".into())),
                    'd' => crate::show::print_changes(preview, style),
                    '?' => crate::show::explain(plan, preview, style),
                    _ => {}
                }
            }
        }
    }
    let home = app.home();
    let args = p["args"].as_object().cloned().unwrap_or_default();
    println!(
        "step {} {} {}: risk {} — {}",
        p["step"].as_u64().unwrap_or(0) + 1,
        style.bold(p["name"].as_str().unwrap_or("")),
        render::args_line(&args, &home),
        style.risk(risk),
        p["reasons"][0].as_str().unwrap_or("")
    );
    let q = if p["name"] == "undo" {
        "Undo this? [y/n] "
    } else {
        "Run this step? [y/n] "
    };
    Ok(match term::ask_key(q, &['y', 'n'], Some('n'))? {
        'y' => (true, "confirmed at the prompt".into()),
        _ => (false, "declined at the prompt".into()),
    })
}

/// The outcome `action.finished` records, in the engine's terms, with what the events
/// showed (plan, preview, step outputs).
fn to_handled(seen: Seen, fin: &Value) -> anyhow::Result<Handled> {
    let status: ActionStatus =
        serde_json::from_value(fin["status"].clone()).unwrap_or(ActionStatus::Error);
    let error = fin["error"].as_str().unwrap_or(status.as_str()).to_owned();
    let tx: Option<TxId> = fin["tx"].as_str().and_then(|t| t.parse().ok());
    let outcome = if let (Some(r), Some(tx)) = (fin.get("remote"), tx) {
        ActionOutcome::Remote(kernos_engine::RemoteOutcome {
            tx,
            undo: status == ActionStatus::Undone,
            report: kernos_engine::RemoteReport {
                total: r["total"].as_u64().unwrap_or(0) as usize,
                ok: r["ok"].as_u64().unwrap_or(0) as usize,
                summary: r["summary"].as_str().unwrap_or("").to_owned(),
                results: Value::Array(seen.nodes.clone()),
                changed: Vec::new(),
            },
        })
    } else if let Ok(undo) = serde_json::from_value::<UndoReport>(fin["undo"].clone()) {
        ActionOutcome::Undone(undo)
    } else {
        match (status, tx, &seen.plan) {
            (ActionStatus::NotUnderstood, _, _) => ActionOutcome::NotUnderstood {
                message: error,
                suggestions: seen.suggestions.clone(),
            },
            (ActionStatus::Invalid, _, _) => ActionOutcome::Invalid { error },
            (ActionStatus::Previewed, _, _) => ActionOutcome::Previewed,
            (ActionStatus::Denied, None, _) => ActionOutcome::Denied { reason: error },
            (ActionStatus::Declined, Some(tx), None) => {
                ActionOutcome::UndoDeclined { tx, reason: error }
            }
            (ActionStatus::Declined, None, _) => ActionOutcome::Stopped { reason: error },
            (_, Some(_), Some(plan)) if fin.get("steps").is_some() => {
                ActionOutcome::Ran(rebuild_report(plan, &seen, fin)?)
            }
            (status, _, _) => ActionOutcome::Ended { status, error },
        }
    };
    Ok(Handled {
        outcome,
        plan: seen.plan,
        preview: seen.preview,
    })
}

/// The engine's report, rebuilt from the journaled events of the action.
fn rebuild_report(plan: &Plan, seen: &Seen, fin: &Value) -> anyhow::Result<TxReport> {
    let tx: TxId = fin["tx"]
        .as_str()
        .and_then(|t| t.parse().ok())
        .context("the action finished without a transaction")?;
    let status: TxStatus =
        serde_json::from_value(fin["status"].clone()).unwrap_or(TxStatus::Failed);
    let mut steps = Vec::new();
    for (i, s) in fin["steps"].as_array().into_iter().flatten().enumerate() {
        let index = s["index"].as_u64().map(|x| x as usize).unwrap_or(i);
        let text = |k: &str| s[k].as_str().unwrap_or("").to_owned();
        let st = match s["status"].as_str().unwrap_or("") {
            "done" => StepStatus::Done,
            "failed" => StepStatus::Failed {
                error: text("error"),
            },
            "skipped" => StepStatus::Skipped {
                reason: text("reason"),
            },
            "denied" => StepStatus::Denied {
                reason: text("reason"),
            },
            "declined" => StepStatus::Declined {
                reason: text("reason"),
            },
            _ => StepStatus::Cancelled,
        };
        let decided = seen.decided.iter().find(|d| d.step == index);
        steps.push(StepReport {
            index,
            name: s["name"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| plan.steps.get(index).map(|p| p.name()).unwrap_or_default()),
            args: decided
                .map(|d| d.args.clone())
                .or_else(|| plan.steps.get(index).map(|p| p.args.clone()))
                .unwrap_or_default(),
            assessment: None,
            status: st,
            output: seen
                .outputs
                .iter()
                .find(|(i, _)| *i == index)
                .map(|(_, o)| o.clone()),
        });
    }
    Ok(TxReport {
        tx,
        status,
        steps,
        undoable: fin["undoable"].as_bool().unwrap_or(false),
        cpu_ms: fin["cpu_ms"].as_u64().unwrap_or(0),
    })
}
