//! `[fleet]`: the broker, who this daemon is in its organisation's fleet, and what it runs.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use kernos_core::Risk;
use kernos_fleet::node::NodeConfig;
use serde::{Deserialize, Serialize};

/// `[fleet]` in the config (or `<data dir>/fleet.toml`, written by `kernos node join`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FleetConfig {
    /// The broker: `nats://host:4222` (or `tls://…`).
    pub url: String,
    /// A NATS credentials file (JWT + NKEY seed) for operator-mode brokers.
    #[serde(default)]
    pub creds: Option<PathBuf>,
    /// A file with a user NKEY seed, for brokers that list users' public keys.
    #[serde(default)]
    pub nkey: Option<PathBuf>,
    /// Require TLS to the broker, trusting this CA (PEM).
    #[serde(default)]
    pub tls_ca: Option<PathBuf>,
    /// Require TLS to the broker (with the system's CAs).
    #[serde(default)]
    pub tls: bool,
    /// The organisation whose fleet this is: its subjects on the broker, and the Kernos
    /// organisation whose actions may fan out from here.
    #[serde(default = "local")]
    pub org: String,
    /// Fan out this organisation's actions that name nodes (`on`).
    #[serde(default)]
    pub controller: bool,
    /// Join as a node of this name (unset: not a node).
    #[serde(default)]
    pub node: Option<String>,
    /// The node's labels (`role = "web"`).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Seconds between heartbeats.
    #[serde(default = "five")]
    pub heartbeat_s: u64,
    /// The highest risk this node runs from the fleet, whatever home approved.
    #[serde(default = "high")]
    pub max_risk: Risk,
    /// The Kernos organisation fanned-out plans run as on this node (its scope and policy).
    #[serde(default = "local")]
    pub local_org: String,
    /// The working directory fanned-out plans run in on this node (their relative paths
    /// resolve against it); unset: the daemon's home.
    #[serde(default)]
    pub cwd: Option<PathBuf>,
    /// Services whose running state the node reports.
    #[serde(default)]
    pub services: Vec<String>,
    /// Packages whose installed version the node reports.
    #[serde(default)]
    pub packages: Vec<String>,
    /// Dispatches a node runs at once.
    #[serde(default = "four")]
    pub parallel: usize,
}

fn local() -> String {
    kernos_core::LOCAL_ORG.into()
}
fn five() -> u64 {
    5
}
fn four() -> usize {
    4
}
fn high() -> Risk {
    Risk::High
}

impl FleetConfig {
    /// Checks names and files, saying what to fix.
    pub fn validate(&self) -> Result<(), String> {
        kernos_fleet::subject::check("[fleet] org", &self.org).map_err(|e| e.to_string())?;
        if let Some(n) = &self.node {
            kernos_fleet::subject::check("[fleet] node", n).map_err(|e| e.to_string())?;
        }
        if !self.controller && self.node.is_none() {
            return Err("[fleet] names neither `controller = true` nor `node = \"NAME\"`: say what this daemon is in the fleet".into());
        }
        if let Some(c) = &self.cwd {
            if !c.is_absolute() || !c.is_dir() {
                return Err(format!(
                    "[fleet] cwd = {} must be an existing absolute directory",
                    c.display()
                ));
            }
        }
        for f in [&self.creds, &self.nkey, &self.tls_ca]
            .into_iter()
            .flatten()
        {
            if !f.is_file() {
                return Err(format!(
                    "[fleet] names {}, which is not a readable file",
                    f.display()
                ));
            }
        }
        Ok(())
    }

    /// The broker connection for a client named `name`.
    pub(crate) fn broker(&self, name: &str) -> kernos_fleet::connect::BrokerConfig {
        kernos_fleet::connect::BrokerConfig {
            url: self.url.clone(),
            creds: self.creds.clone(),
            nkey: self.nkey.clone(),
            tls_ca: self.tls_ca.clone(),
            tls: self.tls,
            org: self.org.clone(),
            client_name: name.to_owned(),
        }
    }

    /// How this daemon names itself to the broker.
    pub(crate) fn client_name(&self) -> String {
        match &self.node {
            Some(n) => format!("kernos-node-{n}"),
            None => format!("kernos-controller-{}", self.controller_name()),
        }
    }

    /// The controller's durable name: the node name, else the host name.
    pub(crate) fn controller_name(&self) -> String {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        let raw = self.node.clone().unwrap_or_else(|| host.trim().to_owned());
        let clean: String = raw
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .take(64)
            .collect();
        if clean.is_empty() {
            "home".into()
        } else {
            clean
        }
    }

    /// The node agent's settings, when this daemon is a node.
    pub(crate) fn node_config(&self) -> Option<NodeConfig> {
        Some(NodeConfig {
            name: self.node.clone()?,
            labels: self.labels.clone(),
            heartbeat: Duration::from_secs(self.heartbeat_s.max(1)),
            max_risk: self.max_risk,
            services: self.services.clone(),
            packages: self.packages.clone(),
            version: env!("CARGO_PKG_VERSION").into(),
            parallel: self.parallel,
        })
    }
}
