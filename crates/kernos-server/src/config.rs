//! `[server]` in the Kernos config file: where the daemon listens and how much it accepts.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Daemon settings. Every field has a default, so an empty `[server]` (or none) works.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// TCP address to listen on, e.g. `127.0.0.1:7878`. Non-loopback needs TLS (or
    /// `--insecure`).
    pub listen: String,
    /// PEM certificate chain for TLS.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for TLS.
    pub tls_key: Option<PathBuf>,
    /// Run slots: actions planned and run at once. A step waiting for approval holds none.
    pub workers: usize,
    /// Slots one organisation may hold at once; unset: all but a quarter of `workers` (at
    /// least one), so other organisations always find a free slot (see [`ServerConfig::running_cap`]).
    pub max_running_per_org: Option<usize>,
    /// Actions of one organisation that may wait for approval at once; beyond it the step is
    /// declined at once, saying so.
    pub max_waiting_per_org: usize,
    /// Actions of every organisation that may wait for approval at once (each holds a parked
    /// thread, no slot).
    pub max_waiting: usize,
    /// Actions waiting for a worker; beyond it a submission gets 429.
    pub queue: usize,
    /// Sustained requests per second per API key (token bucket refill rate).
    pub rate_per_sec: f64,
    /// Requests a key may send in a burst (token bucket size).
    pub rate_burst: f64,
    /// Largest request body, bytes.
    pub body_limit: usize,
    /// Longest time to produce a response's head, milliseconds (SSE streams run on after it).
    pub request_timeout_ms: u64,
    /// Requests handled at once; more get 503 at once rather than queueing.
    pub concurrency: usize,
    /// How long a step waits for POST /v1/approvals/{id} before it is declined, seconds.
    pub approval_timeout_s: u64,
    /// How long a dashboard sign-in lasts, seconds (then the browser signs in again).
    pub session_ttl_s: u64,
    /// Run units charged per step on top of the CPU seconds of its sandboxed children.
    pub step_overhead_units: f64,
    /// Monthly run-unit quota per organisation (organisations not listed are unlimited).
    pub quotas: BTreeMap<String, f64>,
    /// Filesystem scope per organisation other than `local`: trees its steps may read and
    /// write besides its own workspace (`<data_dir>/orgs/<org>/work`), which is always in it.
    /// An organisation not listed reaches its workspace only.
    pub scopes: BTreeMap<String, kernos_core::FsScope>,
    /// `[[server.monitors]]`: what the daemon watches for the host operator (disk, memory,
    /// services, ports, URLs, certificates, logs, files, journal events), each with a
    /// threshold, hysteresis, a cool-down and an optional remediation plan or agent goal.
    pub monitors: Vec<kernos_monitor::MonitorSpec>,
    /// `[[server.webhooks]]`: where monitor events and remediations waiting for approval are
    /// sent, as HMAC-signed JSON with retries.
    pub webhooks: Vec<kernos_monitor::WebhookConfig>,
    /// Journal sync policy for the daemon: `normal` (commits reach the OS before an answer,
    /// fsynced at checkpoints: survives a killed daemon) or `full` (fsync every commit).
    pub durability: String,
    /// Live events buffered per subscriber before a slow one falls back to the journal.
    pub sse_buffer: usize,
    /// Event streams open at once; more get 503.
    pub sse_streams: usize,
    /// Most missed events a resuming SSE client is replayed; beyond it, a `resync` event.
    pub replay_limit: u64,
    /// Idempotency keys remembered (oldest forgotten first; rebuilt from the journal when the
    /// daemon starts, so a retry across a restart is still recognised).
    pub idempotency_keys: usize,
    /// How long an idempotency key is remembered, seconds.
    pub idempotency_ttl_s: u64,
    /// `[server.mcp]`: Kernos as an MCP server (`/mcp`, `kernos mcp serve`).
    pub mcp: McpServe,
}

/// `[server.mcp]`: what MCP clients are offered. Agents choke on hundreds of tools, so the
/// list can be cut down; whatever is offered, every call takes the one request path.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct McpServe {
    /// Serve `/mcp` on the daemon's listeners (`kernos mcp serve` works either way).
    pub enabled: bool,
    /// Catalog actions offered as tools: globs on `tool.action` (`fs.*`, `sys.disk*`).
    pub tools: Vec<String>,
    /// Actions never offered, even when `tools` matches them (`shell.*`).
    pub hide: Vec<String>,
    /// Also offer `kernos_request`, `kernos_plan`, `kernos_undo` and `kernos_history`.
    pub meta_tools: bool,
    /// Output rows per step a tool result carries; the rest is counted (all of it stays in
    /// the journal, `kernos show ACTION`).
    pub max_rows: usize,
}

impl Default for McpServe {
    fn default() -> Self {
        McpServe {
            enabled: true,
            tools: vec!["*".into()],
            hide: Vec::new(),
            meta_tools: true,
            max_rows: 200,
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "127.0.0.1:7878".into(),
            tls_cert: None,
            tls_key: None,
            workers: 16,
            max_running_per_org: None,
            max_waiting_per_org: 256,
            max_waiting: 1024,
            queue: 1024,
            rate_per_sec: 200.0,
            rate_burst: 400.0,
            body_limit: 1 << 20,
            request_timeout_ms: 30_000,
            concurrency: 1024,
            approval_timeout_s: 600,
            session_ttl_s: 12 * 3600,
            step_overhead_units: 0.01,
            quotas: BTreeMap::new(),
            scopes: BTreeMap::new(),
            monitors: Vec::new(),
            webhooks: Vec::new(),
            durability: "normal".into(),
            sse_buffer: 4096,
            sse_streams: 1024,
            replay_limit: 1_000_000,
            idempotency_keys: 10_000,
            idempotency_ttl_s: 24 * 3600,
            mcp: McpServe::default(),
        }
    }
}

impl ServerConfig {
    /// Checks values that types alone cannot, with messages naming the setting.
    pub fn validate(&self) -> Result<(), String> {
        self.listen_addr()?;
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err(
                "server.tls_cert and server.tls_key go together: set both or neither".into(),
            );
        }
        let positive = [
            ("server.workers", self.workers),
            ("server.max_waiting_per_org", self.max_waiting_per_org),
            ("server.max_waiting", self.max_waiting),
            ("server.queue", self.queue),
            ("server.body_limit", self.body_limit),
            ("server.concurrency", self.concurrency),
            ("server.sse_buffer", self.sse_buffer),
            ("server.sse_streams", self.sse_streams),
            ("server.idempotency_keys", self.idempotency_keys),
        ];
        for (name, v) in positive {
            if v == 0 {
                return Err(format!("{name} must be at least 1"));
            }
        }
        if !(60..=30 * 86_400).contains(&self.session_ttl_s) {
            return Err(format!(
                "server.session_ttl_s must be between 60 and 2592000 (30 days), not {}",
                self.session_ttl_s
            ));
        }
        for g in self.mcp.tools.iter().chain(&self.mcp.hide) {
            globset::Glob::new(g)
                .map_err(|e| format!("server.mcp: {g:?} is not a glob like \"fs.*\": {e}"))?;
        }
        kernos_monitor::spec::check_unique(&self.monitors)
            .map_err(|e| format!("server.monitors: {e}"))?;
        if self.webhooks.iter().any(|w| w.secret.len() < 16) {
            return Err(
                "server.webhooks: every webhook needs a `secret` of at least 16 characters (receivers check the signature with it)"
                    .into(),
            );
        }
        if self.max_running_per_org == Some(0) {
            return Err("server.max_running_per_org must be at least 1 (or unset)".into());
        }
        if !(self.rate_per_sec > 0.0 && self.rate_burst >= 1.0) {
            return Err("server.rate_per_sec must be > 0 and server.rate_burst >= 1".into());
        }
        if self.step_overhead_units < 0.0 {
            return Err("server.step_overhead_units must not be negative".into());
        }
        for (org, q) in &self.quotas {
            if *q < 0.0 || q.is_nan() {
                return Err(format!("server.quotas.{org} must be a non-negative number"));
            }
        }
        crate::scope::validate(&self.scopes)?;
        if !["normal", "full"].contains(&self.durability.as_str()) {
            return Err(format!(
                "server.durability must be \"normal\" or \"full\", not {:?}",
                self.durability
            ));
        }
        Ok(())
    }

    /// Slots one organisation may hold: `max_running_per_org`, or by default `workers` less a
    /// quarter of them (at least one left to others when there are two or more), so a busy
    /// organisation leaves room for the rest while a lone one still uses most of the daemon.
    pub fn running_cap(&self) -> usize {
        self.max_running_per_org
            .unwrap_or_else(|| {
                self.workers
                    - (self.workers / 4)
                        .max(1)
                        .min(self.workers.saturating_sub(1))
            })
            .clamp(1, self.workers.max(1))
    }

    /// The listen address, parsed.
    pub fn listen_addr(&self) -> Result<SocketAddr, String> {
        self.listen.parse().map_err(|e| {
            format!(
                "server.listen {:?} is not an address like 127.0.0.1:7878: {e}",
                self.listen
            )
        })
    }

    /// The journal durability this config asks for.
    pub fn journal_durability(&self) -> kernos_journal::Durability {
        if self.durability == "full" {
            kernos_journal::Durability::Full
        } else {
            kernos_journal::Durability::Normal
        }
    }
}

/// The commented `[server]` section for the config template.
pub const TEMPLATE: &str = r#"
[server]
# listen = "127.0.0.1:7878"   # non-loopback needs tls_cert/tls_key (or --insecure)
# tls_cert = "/etc/kernos/cert.pem"
# tls_key = "/etc/kernos/key.pem"
# workers = 16                # actions planned and run at once (run slots)
# max_running_per_org = 12    # slots one org may hold; default: workers less a quarter
# max_waiting_per_org = 256   # actions of one org waiting for approval (they hold no slot)
# max_waiting = 1024          # actions of all orgs waiting for approval
# queue = 1024                # actions waiting; beyond it 429
# rate_per_sec = 200.0        # per API key
# rate_burst = 400.0
# body_limit = 1048576        # bytes
# request_timeout_ms = 30000
# concurrency = 1024          # requests in flight; beyond it 503
# approval_timeout_s = 600    # a step waiting for approval is declined after this
# session_ttl_s = 43200       # a dashboard sign-in lasts this long
# step_overhead_units = 0.01  # run units per step on top of CPU seconds
# durability = "normal"       # or "full" (fsync every commit)
# sse_streams = 1024          # event streams open at once; beyond it 503
# [server.quotas]
# acme = 1000.0               # run units per calendar month (UTC)
# [server.scopes.acme]        # what org acme's steps may reach besides its workspace
# read = ["/srv/shared"]      #   (<data_dir>/orgs/acme/work); the local org has the machine
# write = ["/srv/acme"]
# [server.mcp]                # Kernos as an MCP server (/mcp, `kernos mcp serve`)
# tools = ["*"]               # catalog actions offered, globs on tool.action ("fs.*")
# hide = ["shell.*"]          # never offered
# meta_tools = true           # kernos_request, kernos_plan, kernos_undo, kernos_history
# max_rows = 200              # output rows per step in a tool result
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_checks_name_the_setting() {
        assert!(ServerConfig::default().validate().is_ok());
        let bad = ServerConfig {
            listen: "nowhere".into(),
            ..ServerConfig::default()
        };
        assert!(bad.validate().unwrap_err().contains("server.listen"));
        let bad = ServerConfig {
            tls_cert: Some("/c".into()),
            ..ServerConfig::default()
        };
        assert!(bad.validate().unwrap_err().contains("tls_key"));
        let bad = ServerConfig {
            queue: 0,
            ..ServerConfig::default()
        };
        assert!(bad.validate().unwrap_err().contains("server.queue"));
        let bad = ServerConfig {
            durability: "sometimes".into(),
            ..ServerConfig::default()
        };
        assert!(bad.validate().unwrap_err().contains("durability"));
        let bad = ServerConfig {
            max_running_per_org: Some(0),
            ..ServerConfig::default()
        };
        assert!(bad.validate().unwrap_err().contains("max_running_per_org"));
    }

    #[test]
    fn an_org_may_hold_all_slots_but_a_quarter_by_default() {
        let cap = |workers, set| {
            ServerConfig {
                workers,
                max_running_per_org: set,
                ..ServerConfig::default()
            }
            .running_cap()
        };
        assert_eq!(cap(16, None), 12);
        assert_eq!(cap(4, None), 3);
        assert_eq!(cap(2, None), 1);
        assert_eq!(cap(1, None), 1);
        assert_eq!(cap(16, Some(2)), 2);
        assert_eq!(cap(4, Some(9)), 4, "never more than there are slots");
    }
}
