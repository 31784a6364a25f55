//! `kernos skill …`: taught and generated skills of org `local` — save, new, approve,
//! install, list, show, diff, rollback, remove, export, import. The store and the lifecycle
//! are `kernos_skills`'; this front end reads the journal for the plan to teach, runs
//! validation in the sandbox, asks the model, asks the person, signs and journals each
//! transition (`skill.*`).

use std::process::ExitCode;

use anyhow::Context;
use kernos_core::{ActionId, Actor, CancelToken, LOCAL_ORG, Plan};
use kernos_engine::{Quiet, Session};
use kernos_skills::generate::{Author, Ending};
use kernos_skills::{
    Body, Bundle, Kind, Manifest, Signature, Status, Store, TestResult, Transition,
};
use serde_json::{Map, Value, json};

use crate::app::App;
use crate::cli::SkillCmd;
use crate::term;

/// Runs one `kernos skill …` command.
pub fn run(app: &App, cmd: SkillCmd) -> anyhow::Result<ExitCode> {
    let store = Store::new(&app.data_dir);
    let org = LOCAL_ORG;
    match cmd {
        SkillCmd::Save {
            name,
            params,
            phrasings,
            summary,
            tx,
        } => save(
            app,
            &store,
            &name,
            &params,
            phrasings,
            summary,
            tx.as_deref(),
        ),
        SkillCmd::New {
            repairs,
            description,
        } => new(app, &store, &description.join(" "), repairs),
        SkillCmd::Approve { name, version, yes } => approve(app, &store, &name, version, yes),
        SkillCmd::Install { name, version } => {
            let v = store.resolve(org, &name, version)?;
            let body = json!({"version": v});
            if let Some(t) = via_daemon(app, "POST", &format!("/v1/skills/{name}/install"), &body)?
            {
                return say(app, &t, &format!("installed {name} v{v}"));
            }
            match store.install(org, &name, v) {
                Ok(t) => {
                    journal(app, std::slice::from_ref(&t))?;
                    say(app, &t, &format!("installed {name} v{v}"))
                }
                Err(e) => {
                    journal(
                        app,
                        &[Transition {
                            kind: "skill.refused".into(),
                            payload: json!({"org": org, "name": name, "version": v, "why": e.to_string()}),
                        }],
                    )?;
                    Err(e.into())
                }
            }
        }
        SkillCmd::List => list(app, &store),
        SkillCmd::Show { name, version } => show(app, &store, &name, version),
        SkillCmd::Diff { name, from, to } => diff(&store, &name, from, to),
        SkillCmd::Rollback { name } => {
            let path = format!("/v1/skills/{name}/rollback");
            let t = match via_daemon(app, "POST", &path, &json!({}))? {
                Some(t) => t,
                None => {
                    let t = store.rollback(org, &name)?;
                    journal(app, std::slice::from_ref(&t))?;
                    t
                }
            };
            let msg = format!(
                "{name}: back to v{} (from v{})",
                t.payload["version"], t.payload["from"]
            );
            say(app, &t, &msg)
        }
        SkillCmd::Remove { name, version } => {
            let body = json!({"version": version});
            let t = match via_daemon(app, "DELETE", &format!("/v1/skills/{name}"), &body)? {
                Some(t) => t,
                None => {
                    let t = store.remove(org, &name, version)?;
                    journal(app, std::slice::from_ref(&t))?;
                    t
                }
            };
            let what = version.map_or(String::new(), |v| format!(" v{v}"));
            say(app, &t, &format!("removed {name}{what}"))
        }
        SkillCmd::Export { name, version, out } => {
            let v = match version {
                Some(v) => v,
                None => current(&store, &name)?,
            };
            let (file, t) = store.export(org, &name, v)?;
            journal(app, &[t])?;
            let text = serde_json::to_string_pretty(&file)?;
            match out {
                Some(p) => {
                    std::fs::write(&p, text + "\n")
                        .with_context(|| format!("cannot write {}", p.display()))?;
                    eprintln!("exported {name} v{v} to {}", p.display());
                }
                None => println!("{text}"),
            }
            Ok(ExitCode::SUCCESS)
        }
        SkillCmd::Import { file } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let v: Value = serde_json::from_str(&text)
                .with_context(|| format!("{} is not JSON", file.display()))?;
            // An export carries its format and hash; anything else is a bundle written by hand.
            let (name, version, t) = if v.get("format").is_some() {
                store.import(org, &v)?
            } else {
                let b: Bundle = serde_json::from_value(v).with_context(|| {
                    format!(
                        "{} is neither a skill export nor a bundle ({{\"manifest\": …, \"body\": …}})",
                        file.display()
                    )
                })?;
                let name = b.name().to_owned();
                let (version, t) = store.save_draft(org, b, "hand")?;
                (name, version, t)
            };
            journal(app, &[t])?;
            let bundle = store.bundle(org, &name, version)?;
            validate_and_record(app, &store, &bundle, None)
        }
    }
}

/// The installed version, else the newest.
fn current(store: &Store, name: &str) -> anyhow::Result<u32> {
    Ok(match store.installed(LOCAL_ORG, name)? {
        Some(i) => i.version,
        None => store.resolve(LOCAL_ORG, name, None)?,
    })
}

/// Prints `msg` (or the transition as JSON with `--json`).
fn say(app: &App, t: &Transition, msg: &str) -> anyhow::Result<ExitCode> {
    if app.global.json {
        println!("{}", json!({"event": t.kind, "payload": t.payload}));
    } else {
        println!("{msg}");
    }
    Ok(ExitCode::SUCCESS)
}

/// A lifecycle change made by the daemon, when one answers on the socket: one writer, and the
/// same change an API client makes (`/v1/skills/…`, journaled by the daemon with the socket's
/// user). `None`: no daemon runs, the caller changes the store and journals itself.
fn via_daemon(
    app: &App,
    method: &str,
    path: &str,
    body: &Value,
) -> anyhow::Result<Option<Transition>> {
    if !crate::daemon_client::available(&app.data_dir) {
        return Ok(None);
    }
    let v = crate::daemon_client::call(&app.data_dir, method, path, Some(body))?
        .ok()?
        .json()?;
    Ok(Some(Transition {
        kind: v["event"].as_str().unwrap_or_default().to_owned(),
        payload: v["payload"].clone(),
    }))
}

/// Appends each transition to the journal as an event of a fresh action of this user.
fn journal(app: &App, ts: &[Transition]) -> anyhow::Result<()> {
    let engine = app.reader()?;
    let session = Session {
        env: app.env(),
        actor: Actor::current_user(),
        org: LOCAL_ORG.into(),
        action: ActionId::generate(),
        cancel: CancelToken::new(),
        observer: &Quiet,
    };
    for t in ts {
        let mut payload = t.payload.clone();
        if let Some(p) = payload.as_object_mut() {
            p.insert("by".into(), json!(session.actor.to_string()));
        }
        engine.append_action(&session, &t.kind, payload)?;
    }
    Ok(())
}

/// The plan of transaction `tx`, or of the newest transaction of org `local`.
fn plan_of(app: &App, tx: Option<&str>) -> anyhow::Result<Plan> {
    let journal = kernos_journal::Journal::open_read_only(&app.data_dir).with_context(|| {
        format!(
            "no journal in {}: run a request first",
            app.data_dir.display()
        )
    })?;
    let q = kernos_journal::Query {
        kind: Some(kernos_core::event::kind::TX_STARTED.into()),
        org: Some(LOCAL_ORG.into()),
        tx: tx.map(str::to_owned),
        newest_first: true,
        limit: Some(1),
        ..kernos_journal::Query::default()
    };
    let e = journal
        .query(&q)?
        .into_iter()
        .next()
        .with_context(|| match tx {
            Some(t) => format!("no transaction {t} in the journal"),
            None => {
                "no transaction in the journal yet: run the request you want to teach first".into()
            }
        })?;
    serde_json::from_value(e.payload["plan"].clone())
        .context("the transaction's plan cannot be read")
}

/// `kernos skill save NAME --param k=v …`
fn save(
    app: &App,
    store: &Store,
    name: &str,
    params: &[String],
    phrasings: Vec<String>,
    summary: Option<String>,
    tx: Option<&str>,
) -> anyhow::Result<ExitCode> {
    kernos_skills::check_name(name)?;
    let plan = plan_of(app, tx)?;
    let mut pairs = Vec::new();
    for p in params {
        let (k, v) = p
            .split_once('=')
            .with_context(|| format!("--param {p:?}: write name=value"))?;
        pairs.push((k.to_owned(), v.to_owned()));
    }
    let (steps, params) = kernos_skills::template::from_plan(&plan, &pairs)?;
    let summary = summary
        .or_else(|| plan.request.clone().map(|r| format!("as taught: {r}")))
        .unwrap_or_else(|| format!("skill {name}"));
    let bundle = Bundle {
        manifest: Manifest {
            name: name.to_owned(),
            version: 0,
            summary,
            kind: Kind::Taught,
            params,
            phrasings,
            effects: Vec::new(),
            read: Vec::new(),
            write: Vec::new(),
            network: Vec::new(),
            reversible: true,
            language: None,
            tests: Vec::new(),
        },
        body: Body::Template { steps },
    };
    // The values it was taught with are its test: they must make a plan the catalog accepts.
    let example: Map<String, Value> = pairs
        .iter()
        .map(|(k, v)| (k.clone(), literal(&bundle, k, v)))
        .collect();
    let (version, t) = store.save_draft(LOCAL_ORG, bundle, "taught")?;
    journal(app, &[t])?;
    let bundle = store.bundle(LOCAL_ORG, name, version)?;
    validate_and_record(app, store, &bundle, Some(example))
}

/// A taught value typed as its parameter says.
fn literal(b: &Bundle, name: &str, raw: &str) -> Value {
    let kind = b
        .manifest
        .params
        .iter()
        .find(|p| p.name == name)
        .map(|p| p.kind.as_str())
        .unwrap_or("string");
    match kind {
        "integer" | "number" | "boolean" => {
            serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_owned()))
        }
        _ => Value::String(raw.to_owned()),
    }
}

/// Example arguments for a taught skill without taught values: a typed placeholder each.
fn placeholder_args(b: &Bundle) -> Map<String, Value> {
    b.manifest
        .params
        .iter()
        .map(|p| {
            let v = match p.kind.as_str() {
                "integer" | "number" => json!(1),
                "boolean" => json!(true),
                _ => json!(format!("/tmp/{}", p.name)),
            };
            (p.name.clone(), v)
        })
        .collect()
}

/// Validates a stored version (taught: its plan against the catalog; generated: its tests in
/// the sandbox), records and journals the outcome, and says what to do next.
fn validate_and_record(
    app: &App,
    store: &Store,
    bundle: &Bundle,
    example: Option<Map<String, Value>>,
) -> anyhow::Result<ExitCode> {
    let name = bundle.name().to_owned();
    let version = bundle.manifest.version;
    let (tests, passed) = match bundle.manifest.kind {
        Kind::Taught => {
            let args = example.unwrap_or_else(|| placeholder_args(bundle));
            let r = kernos_skills::template::instantiate(bundle, &args)
                .map_err(|e| e.to_string())
                .and_then(|plan| {
                    let issues = app.registry().validate(&plan);
                    if issues.is_empty() {
                        Ok(plan.steps.len())
                    } else {
                        Err(issues
                            .iter()
                            .map(|i| format!("{}: {}", i.pointer, i.message))
                            .collect::<Vec<_>>()
                            .join("; "))
                    }
                });
            let passed = r.is_ok();
            let detail = match r {
                Ok(n) => format!("its {n} step(s) check against the catalog"),
                Err(e) => e,
            };
            (
                vec![TestResult {
                    name: "plan".into(),
                    passed,
                    detail,
                }],
                passed,
            )
        }
        Kind::Generated => {
            let v = validate_generated(app, bundle);
            let passed = v.passed();
            (v.tests, passed)
        }
    };
    let t = store.record_validation(LOCAL_ORG, &name, version, tests.clone(), passed)?;
    journal(app, std::slice::from_ref(&t))?;
    if app.global.json {
        println!(
            "{}",
            json!({"name": name, "version": version, "validated": passed, "hash": t.payload["hash"], "tests": tests})
        );
    } else {
        for r in &tests {
            let mark = if r.passed { "ok  " } else { "FAIL" };
            println!("  {mark} {}: {}", r.name, r.detail);
        }
        if passed {
            println!(
                "saved {name} v{version} (validated, {}); next: kernos skill approve {name}",
                t.payload["hash"].as_str().unwrap_or_default()
            );
        } else {
            println!("saved {name} v{version} as a draft: it did not pass validation");
        }
    }
    Ok(if passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Validates a generated bundle: first what policy makes of the effects each test declares
/// (a denied one is a violation: it never runs, and is not sent back for repair), then its
/// tests in the sandbox.
fn validate_generated(app: &App, b: &Bundle) -> kernos_skills::validate::Validation {
    if let Some(why) = denied_by_policy(app, b) {
        return kernos_skills::validate::Validation {
            tests: vec![TestResult {
                name: "policy".into(),
                passed: false,
                detail: why.clone(),
            }],
            violation: Some(why),
        };
    }
    let runner = crate::app::runner(&app.config, &app.data_dir);
    kernos_skills::validate::validate(b, &*runner, &app.env())
}

/// Why policy would refuse a run of `b` with one of its tests' arguments, if it would.
fn denied_by_policy(app: &App, b: &Bundle) -> Option<String> {
    let action = kernos_skills::action::SkillAction::new(b.clone())?;
    let spec = kernos_tools::DynAction::spec(&action);
    let env = app.env();
    let ctx = kernos_policy::Context {
        home: env.home.clone(),
        cwd: env.cwd.clone(),
        data_dir: app.data_dir.clone(),
        uid: env.uid,
        pid: std::process::id(),
        scope: env.scope.clone(),
    };
    let work = std::env::temp_dir().join("kernos-skill-test");
    for t in &b.manifest.tests {
        let args: Map<String, Value> = t
            .args
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => (
                    k.clone(),
                    Value::String(s.replace("{work}", &work.to_string_lossy())),
                ),
                other => (k.clone(), other.clone()),
            })
            .collect();
        let effects = kernos_skills::action::effects_of(b, &args, &|p| env.resolve(p));
        let a = kernos_policy::assess(spec, &effects, &ctx, &app.config.policy);
        if let kernos_core::Decision::Deny { reason } = a.decision {
            return Some(format!(
                "policy refuses what test {} declares: {reason}",
                t.name
            ));
        }
    }
    None
}

/// The configured model as the author of a generated skill, with the tokens and cost of
/// every answer (journaled with the generation's outcome).
struct ModelAuthor {
    router: kernos_llm::BlockingRouter,
    input_tokens: u64,
    output_tokens: u64,
    cost_usd: f64,
}

impl Author for ModelAuthor {
    fn write(&mut self, system: &str, turns: &[(String, String)]) -> Result<String, String> {
        let req = kernos_llm::ChatRequest {
            system: system.to_owned(),
            messages: turns
                .iter()
                .map(|(role, text)| {
                    if role == "assistant" {
                        kernos_llm::Message::assistant(text.clone())
                    } else {
                        kernos_llm::Message::user(text.clone())
                    }
                })
                .collect(),
            ..kernos_llm::ChatRequest::default()
        };
        let r = self
            .router
            .complete("", &req, &kernos_llm::RouteOpts::default())
            .map_err(|e| e.to_string())?;
        self.input_tokens += r.usage.input_tokens;
        self.output_tokens += r.usage.output_tokens;
        self.cost_usd += r.total_cost_usd();
        Ok(r.text)
    }
}

/// `kernos skill new "…"`
fn new(app: &App, store: &Store, description: &str, repairs: u32) -> anyhow::Result<ExitCode> {
    if app.config.llm.providers.is_empty() {
        anyhow::bail!(
            "no language model is configured: a generated skill is written by one (kernos models list; or teach a plan with kernos skill save)"
        );
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    let router = kernos_llm::BlockingRouter::new(app.config.llm.clone())?;
    let mut author = ModelAuthor {
        router,
        input_tokens: 0,
        output_tokens: 0,
        cost_usd: 0.0,
    };
    let mut check = |b: &Bundle| validate_generated(app, b);
    let g = kernos_skills::generate::generate(description, &mut author, &mut check, repairs);
    let attempts = g.attempts.len();
    let ending = match &g.ending {
        Ending::Validated => "validated".to_owned(),
        Ending::Exhausted => format!("still failing after {repairs} repair(s)"),
        Ending::Repeated { fingerprint } => {
            format!("the same failure twice (fingerprint {fingerprint}): stopped early")
        }
        Ending::Violation(why) => format!("blocked by the sandbox, not repaired: {why}"),
        Ending::NoModel(why) => format!("the model could not be asked: {why}"),
    };
    let kind = match &g.ending {
        Ending::Validated => "validated",
        Ending::Exhausted => "exhausted",
        Ending::Repeated { .. } => "repeated",
        Ending::Violation(_) => "violation",
        Ending::NoModel(_) => "no_model",
    };
    let mut saved = None;
    if let Some((bundle, v)) = g.last {
        let name = bundle.name().to_owned();
        let (version, t) = store.save_draft(LOCAL_ORG, bundle, "generated")?;
        let passed = v.passed();
        let rt = store.record_validation(LOCAL_ORG, &name, version, v.tests.clone(), passed)?;
        journal(app, &[t, rt.clone()])?;
        saved = Some((name, version, rt.payload["hash"].clone(), v));
    }
    let outcome = Transition {
        kind: "skill.generation".into(),
        payload: json!({
            "org": LOCAL_ORG,
            "description": description,
            "ending": kind,
            "why": ending,
            "attempts": attempts,
            "repairs": attempts.saturating_sub(1),
            "input_tokens": author.input_tokens,
            "output_tokens": author.output_tokens,
            "cost_usd": author.cost_usd,
            "name": saved.as_ref().map(|s| s.0.clone()),
            "version": saved.as_ref().map(|s| s.1),
        }),
    };
    journal(app, std::slice::from_ref(&outcome))?;
    if app.global.json {
        let mut p = outcome.payload.clone();
        if let (Some(o), Some((_, _, hash, v))) = (p.as_object_mut(), &saved) {
            o.insert("hash".into(), hash.clone());
            o.insert("tests".into(), json!(v.tests));
        }
        println!("{p}");
    } else {
        println!("{attempts} attempt(s): {ending}");
        if let Some((name, version, _, v)) = &saved {
            for r in &v.tests {
                let mark = if r.passed { "ok  " } else { "FAIL" };
                println!("  {mark} {}: {}", r.name, r.detail);
            }
            if matches!(g.ending, Ending::Validated) {
                println!("saved {name} v{version} (validated); next: kernos skill approve {name}");
            } else {
                println!("saved {name} v{version} as a draft");
            }
        }
    }
    Ok(if matches!(g.ending, Ending::Validated) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The review a person approves: manifest, body, test results, declared effects.
fn review(app: &App, b: &Bundle, state: &kernos_skills::State, hash: &str) {
    let s = app.style;
    let m = &b.manifest;
    println!(
        "{} v{} — {} ({:?}, {})",
        s.bold(&m.name),
        m.version,
        m.summary,
        m.kind,
        hash
    );
    for p in &m.params {
        println!(
            "  parameter {} ({}) {}",
            p.name,
            p.kind,
            s.dim(&p.description)
        );
    }
    for p in &m.phrasings {
        println!("  understood as: \u{201c}{p}\u{201d}");
    }
    match &b.body {
        Body::Template { steps } => {
            for (i, st) in steps.iter().enumerate() {
                println!(
                    "  step {}: {} {}",
                    i + 1,
                    st.name(),
                    Value::Object(st.args.clone())
                );
            }
        }
        Body::Script { code } => {
            let effects: Vec<&str> = m.effects.iter().map(|e| e.as_str()).collect();
            println!(
                "  {}",
                s.yellow(&format!(
                    "declares: effects [{}], reads {:?}, writes {:?}, network {:?}, {}",
                    effects.join(", "),
                    m.read,
                    m.write,
                    m.network,
                    if m.reversible {
                        "reversible"
                    } else {
                        "irreversible"
                    }
                ))
            );
            println!("  --- {:?} code ---", m.language);
            for line in code.lines() {
                println!("  | {line}");
            }
        }
    }
    for t in &state.tests {
        let mark = if t.passed { "ok  " } else { "FAIL" };
        println!("  {mark} test {}: {}", t.name, t.detail);
    }
}

/// Signs the attestation with the journal's checkpoint keys, when they exist.
fn sign(app: &App, name: &str, version: u32, hash: &str) -> Option<Signature> {
    let dir = app.config.journal.keys_dir_for(&app.data_dir);
    if !dir.join("keys.json").exists() {
        return None;
    }
    let keys = kernos_tlog::KeySet::open(&dir).ok()?;
    let msg = kernos_skills::store::attestation_message(LOCAL_ORG, name, version, hash);
    let (sig, key) = keys.sign_detached(msg.as_bytes());
    Some(Signature { key, sig })
}

/// `kernos skill approve NAME`
fn approve(
    app: &App,
    store: &Store,
    name: &str,
    version: Option<u32>,
    yes: bool,
) -> anyhow::Result<ExitCode> {
    let v = store.resolve(LOCAL_ORG, name, version)?;
    let b = store.bundle(LOCAL_ORG, name, v)?;
    let state = store.state(LOCAL_ORG, name, v)?;
    let hash = b.hash();
    if !app.global.json {
        review(app, &b, &state, &hash);
    }
    if state.status == Status::Draft {
        anyhow::bail!(
            "{name} v{v} is a draft: it has not passed validation, so it cannot be approved"
        );
    }
    if !yes {
        if !term::interactive() {
            anyhow::bail!("not approving {name} without a terminal to ask; add --yes");
        }
        if !term::ask_word(&format!("Approve {name} v{v}? Type \"yes\": "), "yes")? {
            println!("not approved");
            return Ok(ExitCode::from(1));
        }
    }
    if let Some(t) = via_daemon(
        app,
        "POST",
        &format!("/v1/skills/{name}/approve"),
        &json!({"version": v}),
    )? {
        return say(
            app,
            &t,
            &format!(
                "approved {name} v{v} (through the daemon, attestation signed with the journal's keys); next: kernos skill install {name}"
            ),
        );
    }
    let by = Actor::current_user().to_string();
    let sig = sign(app, name, v, &hash);
    let t = store.approve(LOCAL_ORG, name, v, &by, sig.clone())?;
    journal(app, std::slice::from_ref(&t))?;
    let signed = if sig.is_some() {
        ", attestation signed with the journal's keys"
    } else {
        ""
    };
    say(
        app,
        &t,
        &format!("approved {name} v{v}{signed}; next: kernos skill install {name}"),
    )
}

/// `kernos skill list`
fn list(app: &App, store: &Store) -> anyhow::Result<ExitCode> {
    let entries = store.list(LOCAL_ORG)?;
    if app.global.json {
        let v: Vec<Value> = entries
            .iter()
            .map(|e| {
                json!({
                    "name": e.name, "version": e.version, "kind": e.bundle.manifest.kind,
                    "status": e.state.status, "installed": e.installed, "hash": e.hash,
                    "summary": e.bundle.manifest.summary,
                    "altered": e.state.validated_hash.as_ref().is_some_and(|h| *h != e.hash),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(ExitCode::SUCCESS);
    }
    if entries.is_empty() {
        println!("no skills yet: teach one with kernos skill save NAME, or kernos skill new \"…\"");
    }
    let s = app.style;
    for e in &entries {
        let installed = if e.installed {
            s.green(" installed")
        } else {
            String::new()
        };
        let altered = if e
            .state
            .validated_hash
            .as_ref()
            .is_some_and(|h| *h != e.hash)
        {
            s.red(" ALTERED since validation")
        } else {
            String::new()
        };
        println!(
            "{} v{}  {:?} {:?}{installed}{altered}  {}",
            s.bold(&e.name),
            e.version,
            e.bundle.manifest.kind,
            e.state.status,
            s.dim(&e.bundle.manifest.summary)
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `kernos skill show NAME`
fn show(app: &App, store: &Store, name: &str, version: Option<u32>) -> anyhow::Result<ExitCode> {
    let v = match version {
        Some(v) => v,
        None => current(store, name)?,
    };
    let b = store.bundle(LOCAL_ORG, name, v)?;
    let state = store.state(LOCAL_ORG, name, v)?;
    let hash = b.hash();
    if app.global.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({"bundle": b, "state": state, "hash": hash}))?
        );
    } else {
        review(app, &b, &state, &hash);
        println!("  status {:?}", state.status);
    }
    Ok(ExitCode::SUCCESS)
}

/// `kernos skill diff NAME A B`: the lines of the two bundles (pretty JSON) that differ.
fn diff(store: &Store, name: &str, from: u32, to: u32) -> anyhow::Result<ExitCode> {
    let a = serde_json::to_string_pretty(&store.bundle(LOCAL_ORG, name, from)?)?;
    let b = serde_json::to_string_pretty(&store.bundle(LOCAL_ORG, name, to)?)?;
    let (a, b): (Vec<&str>, Vec<&str>) = (a.lines().collect(), b.lines().collect());
    // Longest common subsequence of lines: small files, so the table is fine.
    let mut t = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            t[i][j] = if a[i] == b[j] {
                t[i + 1][j + 1] + 1
            } else {
                t[i + 1][j].max(t[i][j + 1])
            };
        }
    }
    println!("--- {name} v{from}\n+++ {name} v{to}");
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            i += 1;
            j += 1;
        } else if j < b.len() && (i == a.len() || t[i][j + 1] >= t[i + 1][j]) {
            println!("+{}", b[j]);
            j += 1;
        } else {
            println!("-{}", a[i]);
            i += 1;
        }
    }
    Ok(ExitCode::SUCCESS)
}
