//! The fleet: many machines running Kernos, reached over NATS JetStream.
//!
//! A **node** (`kernos node join`, or `[fleet] node` in the config) announces its inventory in
//! a key-value bucket, refreshes it as a heartbeat, and takes the plans addressed to it from a
//! durable consumer; a **controller** (the home daemon) reads the inventory, picks nodes by
//! selector, publishes one approved plan to each, and brings their results home. Both live in
//! the daemon, so a fanned-out plan is still one action on each node's one request path:
//! planned, policy-checked and approved at home, checked again by the node's own policy, run
//! sandboxed and journaled there.
//!
//! This crate is the transport and its rules, nothing of the engine: [`wire`] (what travels),
//! [`subject`] (the per-organisation names on the broker), [`selector`] (`role=web`,
//! `disk./var>90%`), [`inventory`] (the facts a node announces), [`node`] (the consumer loop,
//! at-least-once delivery made run-once by the action id a dispatch names) and [`controller`]
//! (fan-out with batches, a failure budget, per-node timeouts and heartbeat loss).

pub mod connect;
pub mod controller;
mod error;
pub mod inventory;
pub mod node;
pub mod selector;
pub mod subject;
pub mod wire;

pub use connect::{Broker, BrokerConfig, connect};
pub use controller::{Controller, Progress};
pub use error::{FleetError, Result};
pub use node::{Executor, Node};
pub use selector::Selector;
pub use wire::{Dispatch, Fanout, NodeInfo, NodeResult, NodeState, NodeStatus, Rollout, Work};
