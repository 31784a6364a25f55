//! The controller: reads the inventory, fans an approved plan out, and brings results home.
//!
//! Results come back through one durable consumer per controller on the organisation's
//! results stream (file-stored), so a broker restart or a controller restart loses none: a
//! fan-out being waited on gets its nodes' reports as they come; a report that arrives after
//! its fan-out ended (a node that was offline and ran the plan on return) goes to the
//! controller's `late` handler, which the daemon journals.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::{DeliverPolicy, pull};
use futures_util::StreamExt;
use kernos_core::Risk;
use tokio::sync::mpsc;

use crate::wire::{
    Dispatch, Fanout, NodeInfo, NodeResult, NodeStatus, Outcome, Report, Rollout, Work, now_ms,
};
use crate::{Broker, FleetError, Result, Selector};

type Waiters = Arc<Mutex<HashMap<String, mpsc::UnboundedSender<Report>>>>;

/// After the broker could not be asked, how long before heartbeats are judged again (nodes
/// beat again once they have reconnected).
const BEAT_GRACE: Duration = Duration::from_secs(6);

/// What a fan-out reports while it runs.
#[derive(Debug, Clone)]
pub enum Progress {
    /// The dispatch was stored on the broker for this node.
    Sent {
        /// The node.
        node: String,
        /// It was unreachable when sent: it runs the plan when it returns, before the deadline.
        offline: bool,
    },
    /// The node took it and started.
    Started {
        /// The node.
        node: String,
    },
    /// The node's part ended (or was given up on).
    Finished(NodeResult),
}

/// One fan-out to run.
#[derive(Debug, Clone)]
pub struct Request {
    /// Its id (the home action's).
    pub fanout: String,
    /// The nodes it goes to (in this order), and what each does.
    pub nodes: Vec<(String, Work)>,
    /// Batches, failure budget, timeouts.
    pub rollout: Rollout,
    /// The highest risk approved at home.
    pub approved_risk: Risk,
    /// Who approved it.
    pub approved_by: String,
    /// Who fans it out.
    pub controller: String,
}

/// A controller of one organisation's fleet.
#[derive(Debug, Clone)]
pub struct Controller {
    broker: Broker,
    /// The inventory bucket, opened once: every status check reads an entry of it.
    kv: async_nats::jetstream::kv::Store,
    waiters: Waiters,
}

impl Controller {
    /// Connects the results consumer named `name` (stable across restarts: it is where this
    /// controller left off) and hands every report nobody waits for to `late`.
    pub async fn start<F>(broker: Broker, name: &str, late: F) -> Result<Self>
    where
        F: Fn(NodeResult) + Send + Sync + 'static,
    {
        crate::subject::check("controller", name)?;
        let kv = broker.ensure().await?;
        let waiters: Waiters = Arc::default();
        let c = Controller {
            broker: broker.clone(),
            kv,
            waiters: waiters.clone(),
        };
        let durable = broker.names.controller_consumer(name);
        tokio::spawn(consume(broker, durable, waiters, Arc::new(late)));
        Ok(c)
    }

    /// The organisation's nodes as announced (left ones too), by name.
    pub async fn nodes(&self) -> Result<Vec<NodeInfo>> {
        let kv = &self.kv;
        let mut keys = kv
            .keys()
            .await
            .map_err(|e| FleetError::broker("inventory keys", e))?;
        let mut out = Vec::new();
        while let Some(k) = keys.next().await {
            let Ok(k) = k else { continue };
            if let Ok(Some(info)) = entry(kv, &k).await {
                out.push(info);
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// The members `selector` picks (nodes that left are never picked).
    pub async fn select(&self, selector: &Selector) -> Result<Vec<NodeInfo>> {
        let now = now_ms();
        Ok(self
            .nodes()
            .await?
            .into_iter()
            .filter(|n| n.status(now) != NodeStatus::Left && selector.matches(n))
            .collect())
    }

    /// Runs a fan-out to its end: sends in batches, waits for each node's report (a node
    /// that stops beating mid-run is `lost`, one silent past the node timeout `timed_out` or
    /// `unreachable`), stops sending after too many failures, and reports progress as it goes.
    pub async fn fanout(&self, req: Request, mut progress: impl FnMut(Progress)) -> Fanout {
        let (tx, mut rx) = mpsc::unbounded_channel();
        if let Ok(mut w) = self.waiters.lock() {
            w.insert(req.fanout.clone(), tx);
        }
        let deadline_ms = now_ms() + req.rollout.deadline_s as i64 * 1000;
        let node_timeout = Duration::from_secs(req.rollout.node_timeout_s.max(1));
        let limit = if req.rollout.batch == 0 {
            usize::MAX
        } else {
            req.rollout.batch
        };
        let mut queue: VecDeque<(String, Work)> = req.nodes.iter().cloned().collect();
        let mut flying: HashMap<String, Flight> = HashMap::new();
        let mut out = Fanout {
            fanout: req.fanout.clone(),
            results: Vec::new(),
        };
        let mut failures = 0usize;
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        let mut broker_trouble = Instant::now()
            .checked_sub(BEAT_GRACE * 2)
            .unwrap_or_else(Instant::now);
        loop {
            let stopped = req.rollout.max_failures.is_some_and(|m| failures >= m);
            while !stopped && flying.len() < limit {
                let Some((node, work)) = queue.pop_front() else {
                    break;
                };
                let d = Dispatch {
                    fanout: req.fanout.clone(),
                    node: node.clone(),
                    action: node_action(&req.fanout, &node),
                    work,
                    approved_risk: req.approved_risk,
                    approved_by: req.approved_by.clone(),
                    controller: req.controller.clone(),
                    deadline_ms,
                };
                let offline = self.status(&node).await == Some(NodeStatus::Unreachable);
                match self.send(&d).await {
                    Ok(()) if offline => {
                        progress(Progress::Sent {
                            node: node.clone(),
                            offline,
                        });
                        let r = NodeResult::at_home(
                            &req.fanout,
                            &node,
                            Outcome::Unreachable,
                            "unreachable (no heartbeat): the plan waits on the broker and runs \
                             when the node returns, if before the deadline"
                                .into(),
                        );
                        failures += 1;
                        progress(Progress::Finished(r.clone()));
                        out.results.push(r);
                    }
                    Ok(()) => {
                        progress(Progress::Sent {
                            node: node.clone(),
                            offline,
                        });
                        flying.insert(
                            node,
                            Flight {
                                sent: Instant::now(),
                                started: false,
                            },
                        );
                    }
                    Err(e) => {
                        let r =
                            NodeResult::at_home(&req.fanout, &node, Outcome::Failed, e.to_string());
                        failures += 1;
                        progress(Progress::Finished(r.clone()));
                        out.results.push(r);
                    }
                }
            }
            if flying.is_empty() && (queue.is_empty() || stopped) {
                break;
            }
            tokio::select! {
                Some(report) = rx.recv() => match report {
                    Report::Started { node, .. } => {
                        if let Some(f) = flying.get_mut(&node) {
                            if !f.started {
                                f.started = true;
                                progress(Progress::Started { node });
                            }
                        }
                    }
                    Report::Finished(r) => {
                        if flying.remove(&r.node).is_some() {
                            if r.outcome.is_failure() {
                                failures += 1;
                            }
                            progress(Progress::Finished(r.clone()));
                            out.results.push(r);
                        }
                    }
                },
                _ = tick.tick() => {
                    for r in self.overdue(&req.fanout, &mut flying, node_timeout, &mut broker_trouble).await {
                        failures += 1;
                        progress(Progress::Finished(r.clone()));
                        out.results.push(r);
                    }
                }
            }
        }
        for (node, _) in queue {
            let r = NodeResult::at_home(
                &req.fanout,
                &node,
                Outcome::Skipped,
                format!("not sent: the rollout stopped after {failures} failures"),
            );
            progress(Progress::Finished(r.clone()));
            out.results.push(r);
        }
        if let Ok(mut w) = self.waiters.lock() {
            w.remove(&req.fanout);
        }
        out
    }

    /// Nodes given up on: started and no longer beating (lost), or silent past the timeout.
    /// Heartbeats are judged only while the broker answers and has answered for a while: after
    /// a broker restart every node's last beat is old until it beats again.
    async fn overdue(
        &self,
        fanout: &str,
        flying: &mut HashMap<String, Flight>,
        timeout: Duration,
        broker_trouble: &mut Instant,
    ) -> Vec<NodeResult> {
        let mut done = Vec::new();
        let names: Vec<String> = flying.keys().cloned().collect();
        for node in names {
            let Some(f) = flying.get(&node) else { continue };
            let late = f.sent.elapsed() > timeout;
            let status = if late || f.sent.elapsed() > Duration::from_secs(2) {
                match self.status(&node).await {
                    Some(s) => s,
                    None => {
                        *broker_trouble = Instant::now();
                        NodeStatus::Up
                    }
                }
            } else {
                NodeStatus::Up
            };
            let judged = broker_trouble.elapsed() > BEAT_GRACE;
            let verdict = match (f.started, status, late) {
                (true, NodeStatus::Unreachable | NodeStatus::Left, _) if judged => Some((
                    Outcome::Lost,
                    "the node started and then stopped beating: it died or was cut off mid-run",
                )),
                (false, NodeStatus::Unreachable | NodeStatus::Left, true) => Some((
                    Outcome::Unreachable,
                    "the node stopped beating before it took the plan; it runs it on return if before the deadline",
                )),
                (_, _, true) => Some((
                    Outcome::TimedOut,
                    "no result within the node timeout (it may still finish; its result is journaled when it comes)",
                )),
                _ => None,
            };
            if let Some((outcome, why)) = verdict {
                flying.remove(&node);
                done.push(NodeResult::at_home(fanout, &node, outcome, why.into()));
            }
        }
        done
    }

    /// A node's status now (one never announced is unreachable); `None` when the broker
    /// cannot be asked, which says nothing about the node.
    async fn status(&self, node: &str) -> Option<NodeStatus> {
        match entry(&self.kv, node).await {
            Ok(Some(info)) => Some(info.status(now_ms())),
            Ok(None) => Some(NodeStatus::Unreachable),
            Err(()) => None,
        }
    }

    async fn send(&self, d: &Dispatch) -> Result<()> {
        let body = serde_json::to_vec(d).unwrap_or_default();
        self.broker
            .publish(
                self.broker.names.plan(&d.node),
                &format!("{}.{}", d.fanout, d.node),
                body,
            )
            .await
    }
}

/// A node's inventory entry, its `last_seen_ms` being when the broker stored it: a beat the
/// node made while cut off and its client delivered on reconnecting is a beat now, and the
/// nodes' clocks do not matter. `Err` when the broker cannot be asked.
async fn entry(kv: &async_nats::jetstream::kv::Store, node: &str) -> Result<Option<NodeInfo>, ()> {
    let Some(e) = kv.entry(node).await.map_err(|_| ())? else {
        return Ok(None);
    };
    if e.value.is_empty() {
        return Ok(None);
    }
    match serde_json::from_slice::<NodeInfo>(&e.value) {
        Ok(mut info) => {
            info.last_seen_ms = (e.created.unix_timestamp_nanos() / 1_000_000) as i64;
            Ok(Some(info))
        }
        Err(err) => {
            tracing::warn!(node = %node, "unreadable inventory entry: {err}");
            Ok(None)
        }
    }
}

/// A dispatch in flight.
#[derive(Debug)]
struct Flight {
    sent: Instant,
    started: bool,
}

/// The action id node `node` runs fan-out `fanout` as: the fan-out's time (so it sorts with
/// its home action) and 80 bits of a hash of both names — the same on every redelivery, and
/// different per node and per fan-out.
pub fn node_action(fanout: &str, node: &str) -> String {
    let ms = fanout
        .parse::<kernos_core::ActionId>()
        .map(|a| a.timestamp_ms())
        .unwrap_or_else(|_| now_ms() as u64)
        & 0xffff_ffff_ffff;
    let h = blake3::hash(format!("kernos-fleet\0{fanout}\0{node}").as_bytes());
    let mut low: u128 = 0;
    for b in &h.as_bytes()[..10] {
        low = (low << 8) | u128::from(*b);
    }
    kernos_core::ActionId(kernos_core::id::RawId::from_u128(
        (u128::from(ms) << 80) | low,
    ))
    .to_string()
}

/// The controller's results consumer: forever, recreated whenever its stream ends or errs.
async fn consume(
    broker: Broker,
    durable: String,
    waiters: Waiters,
    late: Arc<dyn Fn(NodeResult) + Send + Sync>,
) {
    let mut backoff = Duration::from_millis(200);
    loop {
        let msgs = match results(&broker, &durable).await {
            Ok(m) => {
                backoff = Duration::from_millis(200);
                m
            }
            Err(e) => {
                tracing::warn!("cannot read fleet results yet: {e}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
                continue;
            }
        };
        tokio::pin!(msgs);
        while let Some(next) = msgs.next().await {
            let m = match next {
                Ok(m) => m,
                Err(e) => {
                    tracing::info!("fleet results interrupted ({e}); reading again");
                    break;
                }
            };
            match serde_json::from_slice::<Report>(&m.payload) {
                Ok(report) => {
                    let fanout = match &report {
                        Report::Started { fanout, .. } => fanout.clone(),
                        Report::Finished(r) => r.fanout.clone(),
                    };
                    let waiter = waiters.lock().ok().and_then(|w| w.get(&fanout).cloned());
                    match (waiter, report) {
                        (Some(w), report) => {
                            let _ = w.send(report);
                        }
                        (None, Report::Finished(r)) => late(r),
                        (None, Report::Started { .. }) => {}
                    }
                }
                Err(e) => tracing::warn!(subject = %m.subject, "unreadable fleet report: {e}"),
            }
            let _ = m.ack().await;
        }
    }
}

async fn results(broker: &Broker, durable: &str) -> Result<pull::Stream> {
    // A new controller starts from now; a known one resumes where it left off.
    broker
        .consume(
            &broker.names.results_stream(),
            durable,
            broker.names.results(),
            DeliverPolicy::New,
            Duration::from_secs(30),
        )
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_runs_a_fanout_as_one_stable_action_id() {
        let f = kernos_core::ActionId::generate().to_string();
        let a = node_action(&f, "web-1");
        assert_eq!(a, node_action(&f, "web-1"), "the same on redelivery");
        assert_ne!(a, node_action(&f, "web-2"));
        let parsed: kernos_core::ActionId = a.parse().expect("a valid action id");
        let home: kernos_core::ActionId = f.parse().expect("id");
        assert_eq!(parsed.timestamp_ms(), home.timestamp_ms());
    }
}
