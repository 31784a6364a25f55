//! The daemon in a fleet (`[fleet]`): as a **node** it announces itself and runs the plans
//! its organisation's controller sends, each as an ordinary action of `fleet:<controller>`
//! on this daemon's one path (its own policy, sandbox and journal; see [`exec`]); as a
//! **controller** it fans the actions that name nodes (`on`) out to them, the engine having
//! planned, judged and approved them here first ([`remote`]). The transport and its rules
//! are `kernos-fleet`'s; this module only joins them to the daemon.

mod config;
mod exec;
mod remote;

use std::sync::{Arc, RwLock};

use kernos_core::NewEvent;
use kernos_engine::EventStore;
use kernos_fleet::{Controller, Node, NodeResult};

pub use config::FleetConfig;
pub(crate) use remote::FleetRemote;

use crate::State;

/// Journaled at home for each node's report (`fleet.node.sent|started|finished`), and for a
/// result that came after its fan-out ended.
pub const FLEET_NODE_LATE: &str = "fleet.node.late";

/// The daemon's fleet side: its own small runtime (the workers that fan out are blocking
/// threads, and the node agent must not depend on the HTTP server's lifetime).
pub(crate) struct Fleet {
    pub(crate) config: Option<FleetConfig>,
    rt: Option<tokio::runtime::Runtime>,
    controller: RwLock<Option<Controller>>,
    stop: tokio::sync::watch::Sender<bool>,
}

impl std::fmt::Debug for Fleet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fleet")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Fleet {
    /// The fleet side for `config` (nothing runs until [`start`]).
    pub(crate) fn new(config: Option<FleetConfig>) -> std::io::Result<Self> {
        let rt = match &config {
            Some(_) => Some(
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name("kernos-fleet")
                    .enable_all()
                    .build()?,
            ),
            None => None,
        };
        Ok(Fleet {
            config,
            rt,
            controller: RwLock::new(None),
            stop: tokio::sync::watch::channel(false).0,
        })
    }

    /// The controller, once connected, when this daemon fans out for `org`.
    pub(crate) fn controller_for(&self, org: &str) -> Option<(Controller, tokio::runtime::Handle)> {
        let cfg = self.config.as_ref()?;
        if cfg.org != org || !cfg.controller {
            return None;
        }
        let c = self.controller.read().ok()?.clone()?;
        Some((c, self.rt.as_ref()?.handle().clone()))
    }

    /// Whether this daemon fans out for `org` (connected or not yet).
    pub(crate) fn controls(&self, org: &str) -> bool {
        self.config
            .as_ref()
            .is_some_and(|c| c.controller && c.org == org)
    }

    /// Stops the node agent and the controller's consumer.
    pub(crate) fn stop(&self) {
        let _ = self.stop.send(true);
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        // The state is dropped on the HTTP server's runtime, where a runtime may not block
        // to shut down: let its tasks end on their own threads.
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

/// Connects in the background (the broker may come up later; the client retries) and starts
/// the node agent and the controller the config asks for.
pub(crate) fn start(st: &Arc<State>) {
    let (Some(cfg), Some(rt)) = (st.fleet.config.clone(), st.fleet.rt.as_ref()) else {
        return;
    };
    let weak = Arc::downgrade(st);
    let stop = st.fleet.stop.subscribe();
    rt.spawn(async move {
        let broker = match kernos_fleet::connect(&cfg.broker(&cfg.client_name())).await {
            Ok(b) => b,
            Err(e) => {
                tracing::error!("fleet: {e}");
                return;
            }
        };
        if cfg.controller {
            let late_st = weak.clone();
            let started = Controller::start(broker.clone(), &cfg.controller_name(), move |r| {
                if let Some(st) = late_st.upgrade() {
                    // A journal append blocks: not on the runtime's threads.
                    tokio::task::spawn_blocking(move || journal_late(&st, r));
                }
            })
            .await;
            match (started, weak.upgrade()) {
                (Ok(c), Some(st)) => {
                    if let Ok(mut slot) = st.fleet.controller.write() {
                        *slot = Some(c);
                    }
                    tracing::info!(org = %cfg.org, "fleet: controller connected to {}", cfg.url);
                }
                (Err(e), _) => tracing::error!("fleet: cannot start the controller: {e}"),
                (_, None) => return,
            }
        }
        if let Some(node_cfg) = cfg.node_config() {
            let name = node_cfg.name.clone();
            match Node::join(broker, node_cfg).await {
                Ok(node) => {
                    tracing::info!(node = %name, org = %cfg.org, "fleet: joined as a node");
                    let exec = Arc::new(exec::DaemonExec::new(weak, &cfg));
                    node.run(exec, stop).await;
                }
                Err(e) => tracing::error!("fleet: cannot join as node {name}: {e}"),
            }
        }
    });
}

/// Announces this machine's node as left, for `kernos node leave` while no daemon runs (a
/// running one would keep announcing it).
pub fn leave(cfg: &FleetConfig) -> Result<(), kernos_fleet::FleetError> {
    let Some(node) = cfg.node_config() else {
        return Ok(());
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| kernos_fleet::FleetError::Connect {
            url: cfg.url.clone(),
            why: e.to_string(),
        })?;
    rt.block_on(async {
        let broker = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            kernos_fleet::connect(&cfg.broker(&cfg.client_name())),
        )
        .await
        .map_err(|_| kernos_fleet::FleetError::Connect {
            url: cfg.url.clone(),
            why: "no answer within 10 s".into(),
        })??;
        Node::leave_offline(broker, node).await
    })
}

/// A node's result that came after its fan-out ended (an offline node that ran the plan on
/// return): journaled in the fan-out's action at home.
fn journal_late(st: &State, r: NodeResult) {
    let Some(cfg) = st.fleet.config.as_ref() else {
        return;
    };
    let mut ev = NewEvent::new(
        FLEET_NODE_LATE,
        kernos_core::Actor(format!("fleet:{}", r.node)),
    )
    .org(&cfg.org)
    .payload(serde_json::to_value(&r).unwrap_or_default());
    if let Ok(a) = r.fanout.parse::<kernos_core::ActionId>() {
        ev = ev.action(a);
    }
    if let Err(e) = st.store.append(ev) {
        tracing::error!(node = %r.node, "fleet: cannot journal a late result: {e}");
    }
}
