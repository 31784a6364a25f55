//! The log's configuration: `[journal.checkpoints]`, `[journal.witness]` and `[witness]`.

use serde::{Deserialize, Serialize};

/// `[journal]`: the journal as a transparency log.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JournalConfig {
    /// Where the log's signing keys live: made there on first use (directory 0700, files
    /// 0600), or provisioned there (e.g. from a vault; group/world-readable keys are refused).
    /// By default `<data dir>/tlog/keys`.
    pub keys_dir: Option<std::path::PathBuf>,
    /// `[journal.checkpoints]`: when the daemon signs checkpoints.
    pub checkpoints: CheckpointConfig,
    /// `[journal.witness]`: where each checkpoint is sent for cosigning.
    pub witness: Option<WitnessPush>,
}

/// `[journal.checkpoints]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CheckpointConfig {
    /// Sign a checkpoint after this many new events (0: never by count).
    pub every_events: u64,
    /// Sign a checkpoint when this many seconds passed and there are new events (0: never
    /// by time).
    pub every_s: u64,
    /// The log's origin, the first line of every checkpoint and the keys' name; by default
    /// `<host name>/kernos/journal`. Fixed when the keys are made: changing it later is
    /// refused (a verifier holds checkpoints under the old one).
    pub origin: Option<String>,
}

impl Default for CheckpointConfig {
    fn default() -> Self {
        CheckpointConfig {
            every_events: 10_000,
            every_s: 60,
            origin: None,
        }
    }
}

/// `[journal.witness]`: a witness (another Kernos daemon, `POST /v1/log/witness`) that
/// cosigns each checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WitnessPush {
    /// The witness daemon's base URL (`https://witness.example:7878`).
    pub url: String,
    /// The name of the environment variable holding the API key to send (never the key).
    pub key_env: Option<String>,
    /// The witness's cosigning keys (`kernos journal keys --witness` on the witness), to
    /// check its answers; cosignatures by other keys are refused.
    #[serde(default)]
    pub vkeys: Vec<String>,
}

/// `[witness]`: this daemon as a witness for other logs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WitnessConfig {
    /// The witness's name (its cosigning keys' name); by default `<host name>/kernos/witness`.
    pub name: Option<String>,
    /// `[[witness.logs]]`: the logs it cosigns for.
    pub logs: Vec<WitnessedLog>,
}

/// `[[witness.logs]]`: one log a witness cosigns for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WitnessedLog {
    /// The log's origin.
    pub origin: String,
    /// The log's verifier keys (`kernos journal keys` on the log's host): an Ed25519 and an
    /// ML-DSA-44 one, both required on every checkpoint.
    pub vkeys: Vec<String>,
}

/// The host's name, for default origins.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty() && !s.contains(char::is_whitespace))
        .unwrap_or_else(|| "localhost".into())
}

impl CheckpointConfig {
    /// The configured origin, or `<host name>/kernos/journal`.
    pub fn origin_or_default(&self) -> String {
        self.origin
            .clone()
            .unwrap_or_else(|| format!("{}/kernos/journal", host_name()))
    }
}

impl WitnessConfig {
    /// The configured name, or `<host name>/kernos/witness`.
    pub fn name_or_default(&self) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| format!("{}/kernos/witness", host_name()))
    }

    /// Checks every configured key parses, so a typo fails at start, not at the first push.
    pub fn validate(&self) -> crate::Result<()> {
        for l in &self.logs {
            crate::trusted_from_vkeys(&l.vkeys).map_err(|e| crate::LogError::Config {
                setting: format!("witness.logs for {:?}", l.origin),
                reason: e.to_string(),
            })?;
        }
        Ok(())
    }
}

impl JournalConfig {
    /// The keys' directory for the journal in `data_dir` (see [`JournalConfig::keys_dir`]).
    pub fn keys_dir_for(&self, data_dir: &std::path::Path) -> std::path::PathBuf {
        self.keys_dir
            .clone()
            .unwrap_or_else(|| crate::tlog_dir(data_dir).join("keys"))
    }

    /// Checks the witness push section's keys.
    pub fn validate(&self) -> crate::Result<()> {
        if let Some(w) = &self.witness {
            if !(w.url.starts_with("http://") || w.url.starts_with("https://")) {
                return Err(crate::LogError::Config {
                    setting: "journal.witness.url".into(),
                    reason: format!("must be http(s)://, not {:?}", w.url),
                });
            }
            for k in &w.vkeys {
                kernos_tlog::WitnessKey::from_vkey(k).map_err(|e| crate::LogError::Config {
                    setting: "journal.witness.vkeys".into(),
                    reason: e.to_string(),
                })?;
            }
        }
        Ok(())
    }
}
