//! Live configuration: `kernos serve` takes a new config on SIGHUP (which `kernos config edit`
//! and `systemctl reload kernos` send) without dropping a connection.
//!
//! The `[server]` settings are one immutable snapshot, `State::config: RwLock<Arc<ServerConfig>>`:
//! a reader clones the `Arc` (a few nanoseconds under an uncontended read lock) and keeps that
//! snapshot for what it is doing, so a request, a stream or a running action never sees half of
//! one config and half of the next; a reload builds the next snapshot aside and swaps it whole.
//! Chosen over `arc-swap` on purpose: reads are a handful per request next to a journal append
//! that costs microseconds, writes happen once per reload, and std's lock needs no dependency.
//!
//! What a reload applies at once: rate limits, quotas, organisations' scopes, monitors, the
//! approval timeout, the stream, concurrency and time limits, dashboard sign-in lifetime, and
//! the planner (`[llm]` providers and `[planner]`: the engine's cascade is swapped). What the
//! daemon built once at start (listeners, TLS, run slots, the journal's durability, the
//! engine's policy and catalog) keeps its old value in the snapshot and is reported as
//! `restart_required`, so the snapshot always tells what is in force. An invalid new config is
//! refused whole, with the error, and the old one stays. Every reload is journaled:
//! [`CONFIG_RELOADED`] (the new file's SHA-256, what changed, what needs a restart) or
//! [`CONFIG_REJECTED`] (the error).

use std::sync::Arc;

use kernos_core::NewEvent;
use serde::Serialize;
use serde_json::{Value, json};

use crate::{ServerConfig, State};

/// Kind of the event journaled when a new config is taken.
pub const CONFIG_RELOADED: &str = "config.reloaded";
/// Kind of the event journaled when a new config is refused (the old one stays).
pub const CONFIG_REJECTED: &str = "config.rejected";

/// A config as the CLI loaded it (file, `--profile` overlay, environment), for a reload.
#[derive(Debug)]
pub struct NewConfig {
    /// Its `[server]` settings.
    pub server: ServerConfig,
    /// The file's text (hashed for the audit record; empty when there is no file).
    pub text: String,
    /// The whole config as JSON, one key per section, to tell what changed outside `[server]`.
    pub sections: Value,
    /// The planner built from its `[llm]` and `[planner]` sections (providers, lanes, the plan
    /// cache), taken when either changed; `None`: those need a restart.
    pub planner: Option<kernos_planner::llm::Cascade>,
}

/// Loads the config again: the CLI's loader, with the profile the daemon was started with.
/// The error is what is wrong with the new file, ready to show.
pub type Loader = Arc<dyn Fn() -> Result<NewConfig, String> + Send + Sync>;

/// How a daemon reloads: where new configs come from and the last one accepted.
#[derive(Clone)]
pub struct LiveSource {
    /// Reads the config again.
    pub loader: Loader,
    /// The whole config in force, as JSON sections ([`NewConfig::sections`]).
    pub sections: Value,
}

impl std::fmt::Debug for LiveSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveSource").finish_non_exhaustive()
    }
}

/// What a reload did.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ReloadReport {
    /// Whether the new config was taken.
    pub accepted: bool,
    /// SHA-256 of the new file's text.
    pub sha256: String,
    /// Settings that differ from the config in force (`server.rate_per_sec`, `llm`…).
    pub changed: Vec<String>,
    /// Of those, the ones in force now.
    pub applied: Vec<String>,
    /// Of those, the ones that take a restart (their old value stays in force until then).
    pub restart_required: Vec<String>,
    /// Why the new config was refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `[server]` settings a reload applies at once: each is read from the snapshot where it is
/// used, per request, step or stream. Every other `[server]` key was built into something at
/// start.
const LIVE_SERVER_KEYS: &[&str] = &[
    "rate_per_sec",
    "rate_burst",
    "quotas",
    "scopes",
    "monitors",
    "approval_timeout_s",
    "sse_streams",
    "replay_limit",
    "concurrency",
    "request_timeout_ms",
    "session_ttl_s",
];

/// Sections that concern only the command line: changed, never a restart.
const CLIENT_SECTIONS: &[&str] = &["cli"];

/// Sections the planner is built from: applied by swapping the engine's planner when the
/// loader built a new one.
const PLANNER_SECTIONS: &[&str] = &["llm", "planner"];

fn sha256(text: &str) -> String {
    use sha2::Digest;
    kernos_core::hex::encode(&sha2::Sha256::digest(text.as_bytes()))
}

/// The keys of two JSON objects whose values differ, sorted.
fn differing(old: &Value, new: &Value) -> Vec<String> {
    let empty = serde_json::Map::new();
    let (o, n) = (
        old.as_object().unwrap_or(&empty),
        new.as_object().unwrap_or(&empty),
    );
    let mut keys: Vec<String> = o
        .keys()
        .chain(n.keys())
        .filter(|k| o.get(*k) != n.get(*k))
        .cloned()
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

impl State {
    /// Loads the config again with the daemon's loader and takes it, or refuses it; journals
    /// which. `source` says what asked (`SIGHUP`, a test). `None` when this daemon was started
    /// without a loader.
    pub fn reload(&self, source: &str) -> Option<ReloadReport> {
        let loader = self
            .live
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
            .map(|l| l.loader.clone())?;
        Some(self.apply_config(loader(), source))
    }

    /// Takes `new` as the config in force, or refuses it (see the module doc).
    pub fn apply_config(&self, new: Result<NewConfig, String>, source: &str) -> ReloadReport {
        // One reload at a time: the live source's lock is held throughout.
        let mut live = self
            .live
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut new = match new.and_then(|n| self.check(&n).map(|()| n)) {
            Ok(n) => n,
            Err(error) => {
                let report = ReloadReport {
                    accepted: false,
                    sha256: String::new(),
                    changed: Vec::new(),
                    applied: Vec::new(),
                    restart_required: Vec::new(),
                    error: Some(error.clone()),
                };
                tracing::error!("config refused, the old one stays in force: {error}");
                self.journal(CONFIG_REJECTED, &report, source, None);
                return report;
            }
        };
        let old = self.config();
        let old_server = serde_json::to_value(&*old).unwrap_or(Value::Null);
        let new_server = serde_json::to_value(&new.server).unwrap_or(Value::Null);
        let mut changed = Vec::new();
        let mut applied = Vec::new();
        let mut restart_required = Vec::new();
        for k in differing(&old_server, &new_server) {
            let name = format!("server.{k}");
            if LIVE_SERVER_KEYS.contains(&k.as_str()) {
                applied.push(name.clone());
            } else {
                restart_required.push(name.clone());
            }
            changed.push(name);
        }
        let old_sections = live.as_ref().map(|l| l.sections.clone());
        let mut planner_changed = false;
        if let Some(old_sections) = &old_sections {
            for k in differing(old_sections, &new.sections) {
                if k == "server" {
                    continue;
                }
                if PLANNER_SECTIONS.contains(&k.as_str()) && new.planner.is_some() {
                    planner_changed = true;
                    applied.push(k.clone());
                } else if !CLIENT_SECTIONS.contains(&k.as_str()) {
                    restart_required.push(k.clone());
                }
                changed.push(k);
            }
        }
        changed.sort();
        // The next snapshot: the old one with the live keys taken from the new config.
        let mut next = (*old).clone();
        let n = &new.server;
        next.rate_per_sec = n.rate_per_sec;
        next.rate_burst = n.rate_burst;
        next.quotas = n.quotas.clone();
        next.scopes = n.scopes.clone();
        next.monitors = n.monitors.clone();
        next.approval_timeout_s = n.approval_timeout_s;
        next.sse_streams = n.sse_streams;
        next.replay_limit = n.replay_limit;
        next.concurrency = n.concurrency;
        next.request_timeout_ms = n.request_timeout_ms;
        next.session_ttl_s = n.session_ttl_s;
        let monitors_changed = next.monitors != old.monitors;
        *self
            .config
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(next);
        if let Ok(mut l) = self.limiter.lock() {
            l.set(n.rate_per_sec, n.rate_burst);
        }
        if monitors_changed {
            if let Err(e) = crate::monitors::restart_runner(self) {
                tracing::error!("monitors after the reload: {e}");
            }
        }
        if planner_changed {
            if let Some(p) = new.planner.take() {
                self.engine.set_planner(p);
            }
        }
        if let Some(l) = live.as_mut() {
            l.sections = new.sections.clone();
        }
        let report = ReloadReport {
            accepted: true,
            sha256: sha256(&new.text),
            changed,
            applied,
            restart_required,
            error: None,
        };
        tracing::info!(
            sha256 = %report.sha256,
            changed = ?report.changed,
            restart_required = ?report.restart_required,
            "config reloaded"
        );
        self.journal(CONFIG_RELOADED, &report, source, Some(&new.text));
        report
    }

    /// Checks what the CLI's own validation cannot know: scopes against this data directory,
    /// configured monitors against those added through the API.
    fn check(&self, n: &NewConfig) -> Result<(), String> {
        n.server.validate()?;
        crate::scope::check_roots(&n.server.scopes, &self.data_dir)?;
        let mut all = n.server.monitors.clone();
        all.extend(self.monitors.added());
        kernos_monitor::spec::check_unique(&all).map_err(|e| format!("server.monitors: {e}"))
    }

    fn journal(&self, kind: &str, report: &ReloadReport, source: &str, text: Option<&str>) {
        let mut payload = json!({"source": source, "pid": std::process::id()});
        if let (Value::Object(p), Ok(Value::Object(r))) =
            (&mut payload, serde_json::to_value(report))
        {
            p.extend(r);
        }
        if let Err(e) = self.store.append_now(
            NewEvent::new(kind, self.local_actor.clone())
                .org(kernos_core::LOCAL_ORG)
                .payload(payload),
        ) {
            tracing::error!("cannot journal {kind}: {e}");
        }
        // The same record a start leaves when the file changed, so the next start does not
        // report this change again.
        if let Some(text) = text {
            let _ = self.store.append_now(
                NewEvent::new("audit.config.changed", self.local_actor.clone()).payload(json!({
                    "actor": self.local_actor,
                    "org": kernos_core::LOCAL_ORG,
                    "role": "owner",
                    "source": format!("reload ({source})"),
                    "after": {"sha256": report.sha256, "text": text},
                })),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differing_names_changed_added_and_removed_keys() {
        let a = json!({"x": 1, "y": {"z": 1}, "gone": true});
        let b = json!({"x": 1, "y": {"z": 2}, "new": 0});
        assert_eq!(differing(&a, &b), vec!["gone", "new", "y"]);
        assert!(differing(&a, &a).is_empty());
    }

    #[test]
    fn every_live_key_is_a_server_setting() {
        let v = serde_json::to_value(ServerConfig::default()).unwrap();
        for k in LIVE_SERVER_KEYS {
            assert!(v.get(k).is_some(), "{k} is not a [server] key");
        }
    }
}
