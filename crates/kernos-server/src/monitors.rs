//! Monitors in the daemon: the host operator's `[[server.monitors]]` watched by one
//! [`kernos_monitor::Runner`]; what they see is journaled (`monitor.fired`,
//! `monitor.cleared`, `monitor.failed`) and sent to the `[[server.webhooks]]`, signed.
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

    /// Every configured monitor and where it stands.
    pub(crate) fn list(&self, st: &State) -> Vec<MonitorStatus> {
        let states = lock(&self.states);
        st.config
            .monitors
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

/// Starts the runner and the thread that acts on what it sees (when any monitor or webhook is
/// configured).
pub(crate) fn start(st: &Arc<State>) -> std::io::Result<()> {
    if st.config.monitors.is_empty() {
        return Ok(());
    }
    let (tx, rx) = std::sync::mpsc::channel::<Msg>();
    let sink = tx.clone();
    let runner = Runner::start(st.config.monitors.clone(), move |u| {
        let _ = sink.send(Msg::Update(u));
    })
    .map_err(|e| std::io::Error::other(format!("monitors: {e}")))?;
    *lock(&st.monitors.runner) = Some(runner);
    let feeds = st
        .config
        .monitors
        .iter()
        .any(|m| matches!(m.probe, kernos_monitor::Probe::JournalEvent { .. }));
    st.monitors
        .feeds_journal
        .store(feeds, std::sync::atomic::Ordering::Relaxed);
    let _ = st.monitors.tx.set(Mutex::new(tx));
    let weak = Arc::downgrade(st);
    std::thread::Builder::new()
        .name("kernos-monitors".into())
        .spawn(move || serve(&weak, &rx))
        .map(|_| ())
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
            .config
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
