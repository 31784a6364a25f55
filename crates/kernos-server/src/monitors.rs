//! Monitors in the daemon: the host operator's `[[server.monitors]]` watched by one
//! [`kernos_monitor::Runner`]; what they see is journaled (`monitor.fired`,
//! `monitor.cleared`, `monitor.failed`) and sent to the `[[server.webhooks]]`, signed.
//!
//! Monitors added through the API (`POST /v1/monitors`) are journaled (`monitor.added`,
//! `monitor.removed`) and come back after a restart; adding or removing one restarts the
//! runner with the new set (every monitor is armed afresh).
//!
//! A fired monitor's remediation is a proposal, never a command: a plan is queued as an
//! ordinary action of `monitor:<name>` in org `local` (policy, approval, sandbox, journal,
//! undo); the lease granted to `monitor:<name>` (or named by the remediation) lets its steps
//! run unasked, up to the remediation's `max_risk`; otherwise they wait in the approval queue,
//! and the webhooks are told (`approval.waiting`). A goal starts an agent.

use std::collections::{BTreeMap, HashMap};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use kernos_core::event::kind;
use kernos_core::{ActionId, Actor, LOCAL_ORG, NewEvent};
use kernos_monitor::{Notification, Notifier, Proposal, Runner, Update};
use serde::Serialize;
use serde_json::{Value, json};

use crate::State;
use crate::auth::{Principal, Role};
use crate::sched::Job;
use crate::wire::SubmitRequest;

/// Kind of the event journaled when a monitor fires.
pub const MONITOR_FIRED: &str = "monitor.fired";
/// Kind of the event journaled when a fired monitor clears.
pub const MONITOR_CLEARED: &str = "monitor.cleared";
/// Kind of the event journaled when a monitor cannot read what it watches.
pub const MONITOR_FAILED: &str = "monitor.failed";
/// Kind of the event journaled when the host operator adds a monitor through the API.
pub const MONITOR_ADDED: &str = "monitor.added";
/// Kind of the event journaled when the host operator removes a monitor added through the API.
pub const MONITOR_REMOVED: &str = "monitor.removed";

/// What the monitor thread is asked to do.
enum Msg {
    Update(Update),
    /// A remediation's step waits for a person: tell the webhooks.
    Approval(String, Value),
}

/// Where a monitor stands, for `GET /v1/monitors`.
#[derive(Debug, Clone, Default, Serialize, schemars::JsonSchema)]
pub struct MonitorStatus {
    /// The monitor's name.
    pub name: String,
    /// `ok` (armed), `fired`, or `failing` (its probe cannot read).
    pub state: String,
    /// The latest value reported (on firing or clearing).
    pub value: Option<f64>,
    /// What was seen last, for people.
    pub message: Option<String>,
    /// The action its remediation was queued as, if any.
    pub remediation: Option<String>,
    /// When the state last changed, ms since the epoch.
    pub since_ms: Option<i64>,
}

/// The runner, the monitors' states and the remediations in flight.
#[derive(Default)]
pub(crate) struct Monitors {
    runner: Mutex<Option<Runner>>,
    /// Whether a `journal_event` monitor counts published events (else none are parsed).
    feeds_journal: std::sync::atomic::AtomicBool,
    states: Mutex<BTreeMap<String, MonitorStatus>>,
    /// Remediation actions, to the monitor that proposed them.
    runs: Mutex<HashMap<String, String>>,
    /// Monitors added through the API (after the configured ones), from the journal.
    added: Mutex<Vec<kernos_monitor::MonitorSpec>>,
    /// Where the runner's updates go, once started.
    sink: OnceLock<Mutex<Sender<Msg>>>,
    tx: OnceLock<Mutex<Sender<Msg>>>,
}

impl std::fmt::Debug for Monitors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Monitors").finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Monitors {
    /// Journal events for `journal_event` monitors; approval requests of remediations for the
    /// webhooks.
    pub(crate) fn on_published(&self, p: &crate::Published) {
        use std::sync::atomic::Ordering;
        // Runs on the journal's writer thread: nothing is parsed unless someone needs it.
        let feeds = self.feeds_journal.load(Ordering::Relaxed) && !p.kind.starts_with("monitor.");
        let monitor = if p.kind == kind::APPROVAL_REQUESTED {
            p.action
                .as_deref()
                .and_then(|a| lock(&self.runs).get(a).cloned())
        } else {
            None
        };
        if !feeds && monitor.is_none() {
            return;
        }
        let Some(e) = p.event() else {
            return;
        };
        if feeds {
            if let Some(r) = lock(&self.runner).as_ref() {
                r.feed(&e);
            }
        }
        if let (Some(m), Some(tx)) = (monitor, self.tx.get()) {
            let _ = lock(tx).send(Msg::Approval(m, e.payload));
        }
    }

    /// Rebuilds the monitors added through the API from the journal.
    pub(crate) fn load(
        j: &kernos_journal::Journal,
    ) -> Result<Monitors, kernos_journal::JournalError> {
        let mut added: Vec<kernos_monitor::MonitorSpec> = Vec::new();
        j.for_each(&kernos_journal::Query::kind_prefix("monitor."), |e| {
            match e.kind.as_str() {
                MONITOR_ADDED => {
                    if let Ok(m) =
                        serde_json::from_value::<kernos_monitor::MonitorSpec>(e.payload.clone())
                    {
                        added.retain(|a| a.name != m.name);
                        added.push(m);
                    }
                }
                MONITOR_REMOVED => {
                    let name = e.payload["name"].as_str().unwrap_or_default();
                    added.retain(|a| a.name != name);
                }
                _ => {}
            }
            true
        })?;
        Ok(Monitors {
            added: Mutex::new(added),
            ..Monitors::default()
        })
    }

    /// The monitors added through the API.
    pub(crate) fn added(&self) -> Vec<kernos_monitor::MonitorSpec> {
        lock(&self.added).clone()
    }

    /// Every monitor: the configured ones, then those added through the API.
    fn specs(&self, st: &State) -> Vec<kernos_monitor::MonitorSpec> {
        let mut v = st.config().monitors.clone();
        v.extend(lock(&self.added).iter().cloned());
        v
    }

    /// Every monitor and where it stands.
    pub(crate) fn list(&self, st: &State) -> Vec<MonitorStatus> {
        let states = lock(&self.states);
        self.specs(st)
            .iter()
            .map(|m| {
                states.get(&m.name).cloned().unwrap_or(MonitorStatus {
                    name: m.name.clone(),
                    state: "ok".into(),
                    ..MonitorStatus::default()
                })
            })
            .collect()
    }

    fn set(&self, name: &str, f: impl FnOnce(&mut MonitorStatus)) {
        let mut states = lock(&self.states);
        let s = states
            .entry(name.to_owned())
            .or_insert_with(|| MonitorStatus {
                name: name.to_owned(),
                ..MonitorStatus::default()
            });
        f(s);
        s.since_ms = Some(crate::limits::now_ms());
    }
}

/// Starts the thread that acts on what monitors see, and the runner over every monitor.
pub(crate) fn start(st: &Arc<State>) -> std::io::Result<()> {
    let (tx, rx) = std::sync::mpsc::channel::<Msg>();
    let _ = st.monitors.sink.set(Mutex::new(tx.clone()));
    let _ = st.monitors.tx.set(Mutex::new(tx));
    restart_runner(st).map_err(std::io::Error::other)?;
    let weak = Arc::downgrade(st);
    std::thread::Builder::new()
        .name("kernos-monitors".into())
        .spawn(move || serve(&weak, &rx))
        .map(|_| ())
}

/// (Re)starts the runner over every monitor; none: no runner.
pub(crate) fn restart_runner(st: &State) -> Result<(), String> {
    let specs = st.monitors.specs(st);
    let mut runner = lock(&st.monitors.runner);
    if let Some(old) = runner.take() {
        old.stop();
    }
    if specs.is_empty() {
        return Ok(());
    }
    let feeds = specs
        .iter()
        .any(|m| matches!(m.probe, kernos_monitor::Probe::JournalEvent { .. }));
    let sink = st
        .monitors
        .sink
        .get()
        .map(|s| lock(s).clone())
        .ok_or("the monitor thread is not running")?;
    let r = Runner::start(specs, move |u| {
        let _ = sink.send(Msg::Update(u));
    })
    .map_err(|e| format!("monitors: {e}"))?;
    *runner = Some(r);
    st.monitors
        .feeds_journal
        .store(feeds, std::sync::atomic::Ordering::Relaxed);
    Ok(())
}

/// Adds a monitor (host operator): journaled, then watched at once.
pub(crate) fn add(
    st: &State,
    p: &Principal,
    spec: kernos_monitor::MonitorSpec,
) -> crate::error::ApiResult<MonitorStatus> {
    use crate::error::ApiError;
    if st.monitors.specs(st).iter().any(|m| m.name == spec.name) {
        return Err(ApiError::conflict(format!(
            "a monitor named {:?} exists; remove it first or pick another name",
            spec.name
        )));
    }
    let payload = serde_json::to_value(&spec).map_err(|e| ApiError::internal(e.to_string()))?;
    st.store.append_now(
        NewEvent::new(MONITOR_ADDED, p.actor.clone())
            .org(LOCAL_ORG)
            .payload(payload),
    )?;
    let name = spec.name.clone();
    lock(&st.monitors.added).push(spec);
    restart_runner(st).map_err(ApiError::internal)?;
    Ok(MonitorStatus {
        name,
        state: "ok".into(),
        ..MonitorStatus::default()
    })
}

/// Removes a monitor added through the API (configured ones live in the config file).
pub(crate) fn remove(st: &State, p: &Principal, name: &str) -> crate::error::ApiResult<()> {
    use crate::error::ApiError;
    if !lock(&st.monitors.added).iter().any(|m| m.name == name) {
        let configured = st.config().monitors.iter().any(|m| m.name == name);
        return Err(if configured {
            ApiError::conflict(format!(
                "monitor {name:?} is configured in [[server.monitors]]; remove it from the config file"
            ))
        } else {
            ApiError::not_found(format!(
                "no monitor {name:?}; list them with GET /v1/monitors"
            ))
        });
    }
    st.store.append_now(
        NewEvent::new(MONITOR_REMOVED, p.actor.clone())
            .org(LOCAL_ORG)
            .payload(json!({"name": name})),
    )?;
    lock(&st.monitors.added).retain(|m| m.name != name);
    lock(&st.monitors.states).remove(name);
    restart_runner(st).map_err(ApiError::internal)
}

/// Stops the runner (at shutdown).
pub(crate) fn stop(st: &State) {
    if let Some(r) = lock(&st.monitors.runner).take() {
        r.stop();
    }
}

fn serve(st: &std::sync::Weak<State>, rx: &Receiver<Msg>) {
    // Webhook deliveries retry with backoff: they run beside the loop, not in it.
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!("monitors cannot run: {e}");
            return;
        }
    };
    let notifiers: Vec<Arc<Notifier>> = match st.upgrade() {
        Some(s) => s
            .config()
            .webhooks
            .iter()
            .filter_map(|w| match Notifier::new(w.clone()) {
                Ok(n) => Some(Arc::new(n)),
                Err(e) => {
                    tracing::error!(url = %w.url, "webhook unusable: {e}");
                    None
                }
            })
            .collect(),
        None => return,
    };
    while let Ok(m) = rx.recv() {
        let Some(st) = st.upgrade() else {
            return;
        };
        if st.is_shutting_down() {
            return;
        }
        let note = match m {
            Msg::Update(u) => handle(&st, u),
            Msg::Approval(monitor, view) => Some(Notification::new(
                "approval.waiting",
                json!({"monitor": monitor, "approval": view}),
            )),
        };
        if let Some(n) = note {
            for w in &notifiers {
                let (w, n, st) = (w.clone(), n.clone(), st.clone());
                rt.spawn(async move {
                    if let Err(e) = w.send(&n).await {
                        tracing::warn!("webhook {}: {e}", n.event);
                        let ev = NewEvent::new("webhook.failed", Actor::system())
                            .payload(json!({"event": n.event, "error": e.to_string()}));
                        let _ = st.append(ev).await;
                    }
                });
            }
        }
    }
}

/// Journals an update, acts on a fired monitor's remediation, and says what to notify.
fn handle(st: &Arc<State>, u: Update) -> Option<Notification> {
    let (kind_, name, payload) = match &u {
        Update::Fired(f) => (
            MONITOR_FIRED,
            f.monitor.clone(),
            serde_json::to_value(f).ok()?,
        ),
        Update::Cleared(c) => (
            MONITOR_CLEARED,
            c.monitor.clone(),
            serde_json::to_value(c).ok()?,
        ),
        Update::Failed { monitor, error } => (
            MONITOR_FAILED,
            monitor.clone(),
            json!({"monitor": monitor, "error": error}),
        ),
    };
    let actor = Actor(format!("monitor:{name}"));
    let ev = NewEvent::new(kind_, actor.clone())
        .org(LOCAL_ORG)
        .payload(payload.clone());
    if let Err(e) = st.store.append_now(ev) {
        tracing::error!(monitor = %name, "cannot journal {kind_}: {e}");
    }
    match u {
        Update::Fired(f) => {
            st.monitors.set(&name, |s| {
                s.state = "fired".into();
                s.value = Some(f.value);
                s.message = Some(f.message.clone());
                s.remediation = None;
            });
            if let Some(p) = f.remediation {
                remediate(st, &name, actor, p);
            }
        }
        Update::Cleared(c) => st.monitors.set(&name, |s| {
            s.state = "ok".into();
            s.value = Some(c.value);
            s.message = Some(c.message);
        }),
        Update::Failed { error, .. } => st.monitors.set(&name, |s| {
            s.state = "failing".into();
            s.message = Some(error);
        }),
    }
    Some(Notification::new(kind_, payload))
}

/// Queues a fired monitor's plan as an action of `monitor:<name>`, or starts its agent.
fn remediate(st: &Arc<State>, name: &str, actor: Actor, p: Proposal) {
    let principal = Principal {
        actor,
        org: LOCAL_ORG.into(),
        role: Role::Operator,
        key_id: None,
        source: format!("monitor:{name}"),
    };
    let (plan, lease, max_risk) = match p {
        Proposal::Plan {
            plan,
            lease,
            max_risk,
        } => (plan, lease, max_risk),
        Proposal::Agent { goal, .. } => {
            let req = crate::wire::AgentSpawn {
                goal,
                ..crate::wire::AgentSpawn::default()
            };
            match crate::agents::spawn(st, &principal, req, None) {
                Ok(v) => st.monitors.set(name, |s| s.remediation = Some(v.agent)),
                Err(e) => tracing::warn!(monitor = %name, "its agent did not start: {}", e.detail),
            }
            return;
        }
    };
    let action = ActionId::generate();
    lock(&st.monitors.runs).insert(action.to_string(), name.to_owned());
    let payload = json!({
        "plan": plan,
        "dry_run": false,
        "auto_approve": false,
        "role": principal.role,
        "source": principal.source,
        "monitor": name,
    });
    let job = Job {
        action,
        principal,
        req: SubmitRequest {
            plan: Some(plan),
            ..SubmitRequest::default()
        },
        agent: None,
        schedule: None,
        monitor: Some(name.to_owned()),
        lease,
        max_risk,
        fleet: None,
    };
    let queued = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())
        .and_then(|rt| {
            rt.block_on(crate::submit::enqueue(st, job, payload))
                .map_err(|e| e.detail)
        });
    match queued {
        Ok(()) => st
            .monitors
            .set(name, |s| s.remediation = Some(action.to_string())),
        Err(e) => tracing::warn!(monitor = %name, "its remediation was not queued: {e}"),
    }
}
