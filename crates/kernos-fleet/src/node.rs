//! A node: announces itself, beats, and runs what is addressed to it.
//!
//! Delivery is at least once (a dispatch is acknowledged only after its result is stored on
//! the broker), and running is at most once: a dispatch names the action id the node runs it
//! as, and the [`Executor`] finds that action in the node's journal on any redelivery, reports
//! it, and does not run it again. The consumer is recreated whenever its message stream ends
//! or errs (missed idle heartbeats after a partition, a broker restart), so it cannot stall
//! silently after a reconnect.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::AckKind;
use async_nats::jetstream::consumer::{DeliverPolicy, pull};
use futures_util::StreamExt;
use kernos_core::Risk;
use tokio::sync::{Semaphore, watch};

use crate::wire::{Dispatch, NodeInfo, NodeResult, NodeState, Outcome, Report, now_ms};
use crate::{Broker, FleetError, Result, inventory, subject};

/// How long a delivered dispatch stays ours without an acknowledgement; a running one is kept
/// with progress acknowledgements every third of it, so a dispatch whose node died is
/// delivered again this long after the last one.
const ACK_WAIT: Duration = Duration::from_secs(9);

/// Runs a dispatch on this node's one request path.
pub trait Executor: Send + Sync + 'static {
    /// Whether the node's journal already holds action `action` (it was started before: a
    /// redelivery). Such a dispatch is reported, never run again, and never expires.
    fn known(&self, action: &str) -> impl Future<Output = bool> + Send;

    /// Runs the dispatch as action `d.action` — or, when that action exists, waits for it to
    /// end — and says how it ended. Nothing is run twice for the same action id.
    fn execute(&self, d: Dispatch) -> impl Future<Output = NodeResult> + Send;
}

/// Who a node is and what it announces.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Its name in the organisation's fleet.
    pub name: String,
    /// Labels selectors match (`role=web`).
    pub labels: BTreeMap<String, String>,
    /// How often it beats.
    pub heartbeat: Duration,
    /// The highest risk it runs from the fleet.
    pub max_risk: Risk,
    /// Services to report as running or not.
    pub services: Vec<String>,
    /// Packages whose installed version to report.
    pub packages: Vec<String>,
    /// Kernos's version.
    pub version: String,
    /// At most this many dispatches run at once on this node.
    pub parallel: usize,
}

/// A joined node.
#[derive(Debug)]
pub struct Node {
    broker: Broker,
    /// The inventory bucket, opened once: each heartbeat is a put into it.
    kv: async_nats::jetstream::kv::Store,
    cfg: NodeConfig,
    started_ms: i64,
}

impl Node {
    /// Joins: creates the organisation's streams and bucket if needed and announces itself.
    pub async fn join(broker: Broker, cfg: NodeConfig) -> Result<Self> {
        subject::check("node", &cfg.name)?;
        let kv = broker.ensure().await?;
        let node = Node {
            broker,
            kv,
            cfg,
            started_ms: now_ms(),
        };
        node.announce(NodeState::Up).await?;
        Ok(node)
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.cfg.name
    }

    /// Writes its inventory entry (the heartbeat).
    async fn announce(&self, state: NodeState) -> Result<()> {
        let cfg = self.cfg.clone();
        let facts =
            tokio::task::spawn_blocking(move || inventory::collect(&cfg.services, &cfg.packages))
                .await
                .unwrap_or_default();
        let info = NodeInfo {
            name: self.cfg.name.clone(),
            labels: self.cfg.labels.clone(),
            state,
            last_seen_ms: now_ms(),
            heartbeat_s: self.cfg.heartbeat.as_secs().max(1),
            started_ms: self.started_ms,
            version: self.cfg.version.clone(),
            max_risk: self.cfg.max_risk,
            facts,
        };
        let body = serde_json::to_vec(&info).unwrap_or_default();
        self.kv
            .put(&self.cfg.name, body.into())
            .await
            .map_err(|e| FleetError::broker("inventory put", e))?;
        Ok(())
    }

    /// Marks node `name` left without running it (`kernos node leave` with no daemon up):
    /// its inventory entry says `left`, so selectors skip it, and its consumer is removed.
    pub async fn leave_offline(broker: Broker, cfg: NodeConfig) -> Result<()> {
        let kv = broker.nodes().await?;
        let node = Node {
            broker,
            kv,
            cfg,
            started_ms: now_ms(),
        };
        node.leave().await
    }

    /// Leaves: marks itself left (selectors skip it) and removes its consumer. Plans still
    /// queued for it stay on the broker until it joins again or they expire.
    pub async fn leave(&self) -> Result<()> {
        self.announce(NodeState::Left).await?;
        let stream = self
            .broker
            .js
            .get_stream(self.broker.names.plans_stream())
            .await
            .map_err(|e| FleetError::broker("plans stream", e))?;
        let _ = stream
            .delete_consumer(&self.broker.names.node_consumer(&self.cfg.name))
            .await;
        Ok(())
    }

    /// Beats and runs dispatches until `stop` turns true.
    pub async fn run<E: Executor>(self, exec: Arc<E>, mut stop: watch::Receiver<bool>) {
        let me = Arc::new(self);
        let beat = {
            let me = me.clone();
            let mut stop = stop.clone();
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = stop.changed() => return,
                        _ = tokio::time::sleep(me.cfg.heartbeat) => {}
                    }
                    if let Err(e) = me.announce(NodeState::Up).await {
                        tracing::warn!(node = %me.cfg.name, "heartbeat not stored: {e}");
                    }
                }
            })
        };
        let slots = Arc::new(Semaphore::new(me.cfg.parallel.max(1)));
        let mut backoff = Duration::from_millis(200);
        while !*stop.borrow() {
            let msgs = match me.messages().await {
                Ok(m) => {
                    backoff = Duration::from_millis(200);
                    m
                }
                Err(e) => {
                    tracing::warn!(node = %me.cfg.name, "cannot consume plans yet: {e}");
                    tokio::select! {
                        _ = stop.changed() => break,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                    continue;
                }
            };
            tokio::pin!(msgs);
            loop {
                let next = tokio::select! {
                    _ = stop.changed() => break,
                    n = msgs.next() => n,
                };
                match next {
                    Some(Ok(m)) => {
                        let Ok(permit) = slots.clone().acquire_owned().await else {
                            break;
                        };
                        let (me, exec) = (me.clone(), exec.clone());
                        tokio::spawn(async move {
                            me.handle(m, exec.as_ref()).await;
                            drop(permit);
                        });
                    }
                    Some(Err(e)) => {
                        // Missed heartbeats, a reconnect, a deleted consumer: start afresh
                        // rather than wait on a stream that may never yield again.
                        tracing::info!(node = %me.cfg.name, "plan stream interrupted ({e}); consuming again");
                        break;
                    }
                    None => break,
                }
            }
        }
        beat.abort();
    }

    /// The node's durable consumer: every plan addressed to it, from the first it has not
    /// acknowledged. A running dispatch is kept with progress acks; one whose node died is
    /// delivered again [`ACK_WAIT`] after the last.
    async fn messages(&self) -> Result<pull::Stream> {
        let n = &self.broker.names;
        self.broker
            .consume(
                &n.plans_stream(),
                &n.node_consumer(&self.cfg.name),
                n.plan(&self.cfg.name),
                DeliverPolicy::All,
                ACK_WAIT,
            )
            .await
    }

    /// One delivered dispatch: report started, run it (or find it run), report the result,
    /// and only then acknowledge it.
    async fn handle<E: Executor>(&self, m: async_nats::jetstream::Message, exec: &E) {
        let d: Dispatch = match serde_json::from_slice(&m.payload) {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(subject = %m.subject, "dropping a dispatch this version cannot read: {e}");
                let _ = m.ack_with(AckKind::Term).await;
                return;
            }
        };
        if d.node != self.cfg.name {
            let _ = m.ack_with(AckKind::Term).await;
            return;
        }
        let known = exec.known(&d.action).await;
        let result = if !known && now_ms() > d.deadline_ms {
            NodeResult::at_home(
                &d.fanout,
                &d.node,
                Outcome::Expired,
                format!(
                    "the node was away past the plan's deadline ({} ms late) and did not run it",
                    now_ms() - d.deadline_ms
                ),
            )
        } else {
            self.report(&Report::Started {
                fanout: d.fanout.clone(),
                node: d.node.clone(),
                at_ms: now_ms(),
            })
            .await;
            // Keep the delivery ours while it runs.
            let run = exec.execute(d.clone());
            tokio::pin!(run);
            loop {
                tokio::select! {
                    r = &mut run => break r,
                    _ = tokio::time::sleep(ACK_WAIT / 3) => {
                        let _ = m.ack_with(AckKind::Progress).await;
                    }
                }
            }
        };
        if self.report(&Report::Finished(result)).await {
            let _ = m.double_ack().await;
        }
    }

    /// Publishes a report, retrying while the broker is away (a restart, a partition) for up
    /// to two minutes; false when it never stored it (the dispatch is then not acknowledged,
    /// and its redelivery reports again, without running it again).
    async fn report(&self, r: &Report) -> bool {
        let (fanout, node, phase) = match r {
            Report::Started { fanout, node, .. } => (fanout, node, "started"),
            Report::Finished(res) => (&res.fanout, &res.node, "finished"),
        };
        let body = serde_json::to_vec(r).unwrap_or_default();
        let subject = self.broker.names.result(fanout, node);
        let id = format!("{fanout}.{node}.{phase}");
        let until = std::time::Instant::now() + Duration::from_secs(120);
        loop {
            match self
                .broker
                .publish(subject.clone(), &id, body.clone())
                .await
            {
                Ok(()) => return true,
                Err(e) if std::time::Instant::now() < until => {
                    tracing::info!(node = %node, "report not stored yet ({e}); retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(e) => {
                    tracing::warn!(node = %node, "report not stored: {e}");
                    return false;
                }
            }
        }
    }
}
