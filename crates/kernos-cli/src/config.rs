//! The TOML configuration: `$XDG_CONFIG_HOME/kernos/config.toml` (or `$KERNOS_CONFIG`), with
//! `KERNOS_<SECTION>_<KEY>` environment overrides, validated with messages that point at the
//! line.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

/// Everything configurable.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Command-line behaviour.
    pub cli: CliConfig,
    /// Risk and approval.
    pub policy: kernos_policy::Config,
    /// Confinement.
    pub sandbox: SandboxConfig,
    /// The planners.
    pub planner: PlannerConfig,
    /// Language-model providers (`KERNOS_LLM_*` overrides, see `kernos_llm::LlmConfig`).
    pub llm: kernos_llm::LlmConfig,
    /// The daemon (`kernos serve`).
    pub server: kernos_server::ServerConfig,
    /// How much Kernos's trash keeps (what deletes put aside for undo).
    pub trash: kernos_tools::trash::Budget,
    /// External MCP servers whose reviewed tools join the catalog (`[[mcp.servers]]`).
    pub mcp: kernos_mcp::McpConfig,
    /// The journal as a transparency log: `[journal.checkpoints]`, `[journal.witness]`.
    pub journal: kernos_tlog_journal::JournalConfig,
    /// This daemon as a witness for other logs: `[witness]`, `[[witness.logs]]`.
    pub witness: kernos_tlog_journal::WitnessConfig,
    /// The fleet (`[fleet]`): the NATS broker, and whether `kernos serve` is a node, a
    /// controller or both. `kernos node join` writes `<data dir>/fleet.toml`, which wins.
    pub fleet: Option<kernos_server::FleetConfig>,
    /// Named overlays: `[profile.prod.server]` and the like, merged over the rest of the file
    /// when `--profile prod` (or `KERNOS_PROFILE=prod`) selects them. Only the file has them;
    /// a loaded config has its profile merged in already, so they are not shown again.
    #[serde(skip_serializing)]
    pub profile: std::collections::BTreeMap<String, toml::Table>,
}

/// `[cli]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CliConfig {
    /// `auto`, `always` or `never`.
    pub color: String,
    /// Show a progress bar for steps that take longer than this many milliseconds.
    pub progress_after_ms: u64,
}

impl Default for CliConfig {
    fn default() -> Self {
        CliConfig {
            color: "auto".into(),
            progress_after_ms: 300,
        }
    }
}

/// `[sandbox]`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SandboxConfig {
    /// Run steps even when a confinement feature is missing on this kernel (weaker
    /// confinement). Off: Kernos refuses to run them.
    pub allow_weaker: bool,
}

/// `[planner]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PlannerConfig {
    /// How long "them", "that file", "undo that" refer to the previous request in the same
    /// directory, in minutes.
    pub context_minutes: u64,
    /// Offline plans at least this confident (0..1) are used without asking a model.
    pub confidence_threshold: f32,
    /// The lane for complex requests (used when a provider has it).
    pub complex_lane: String,
    /// Repairs of an invalid model plan (0–5).
    pub max_repairs: u32,
    /// Cache model plans in `<data_dir>/plan-cache.db`.
    pub cache: bool,
    /// How long a cached plan is served, in hours.
    pub cache_ttl_hours: u64,
    /// Most plans kept (least recently used go first).
    pub cache_max_entries: usize,
    /// Agent mode: most steps, tokens, seconds (`--max-steps`, `--max-tokens`, `--time`).
    pub agent_max_steps: usize,
    /// See `agent_max_steps`.
    pub agent_max_tokens: u64,
    /// See `agent_max_steps`.
    pub agent_time_secs: u64,
}

impl Default for PlannerConfig {
    fn default() -> Self {
        PlannerConfig {
            context_minutes: 15,
            confidence_threshold: kernos_planner::llm::DEFAULT_THRESHOLD,
            complex_lane: "strong".into(),
            max_repairs: kernos_planner::llm::DEFAULT_MAX_REPAIRS,
            cache: true,
            cache_ttl_hours: 7 * 24,
            cache_max_entries: kernos_planner::llm::DEFAULT_CAPACITY,
            agent_max_steps: 12,
            agent_max_tokens: 60_000,
            agent_time_secs: 300,
        }
    }
}

/// The commented template written by `kernos config edit` when there is no file yet.
pub const TEMPLATE: &str = r#"# Kernos configuration. Every setting can also be given as an environment variable
# KERNOS_<SECTION>_<KEY>, e.g. KERNOS_POLICY_ALLOW_MEDIUM=true.

[cli]
# color = "auto"            # auto | always | never (NO_COLOR is honoured)
# progress_after_ms = 300   # show progress for steps slower than this

[policy]
# ask_for_reads = false     # read-only plans run without asking
# allow_medium = false      # run reversible changes in your own space without asking
# protected = []            # paths no step may change, e.g. ["/srv/data"]
# system = []               # extra paths treated as system paths (high risk)

[sandbox]
# allow_weaker = false      # run even if Landlock/seccomp/namespaces are missing

[trash]
# What deletes put aside so `kernos undo` can bring it back. When a delete would take the
# trash over the budget, its preview names the oldest items that then go for good (their
# undo no longer works); `kernos trash` lists and empties it by hand.
# max_bytes = "2GiB"        # bytes or a size ("500M", "10GiB"); 0 = no size limit
# max_age_days = 0          # items older than this go at the next delete; 0 = kept

[planner]
# context_minutes = 15      # how long follow-ups ("them", "undo that") refer back
# confidence_threshold = 0.8  # offline plans this confident never go to a model
# complex_lane = "strong"   # lane for long or open-ended requests ("why…", "fix…")
# max_repairs = 2           # re-asks when a model's plan is invalid
# cache = true              # cache model plans (plan-cache.db in the data directory)
# cache_ttl_hours = 168
# cache_max_entries = 2000
# agent_max_steps = 12      # kernos agent budgets (--max-steps, --max-tokens, --time)
# agent_max_tokens = 60000
# agent_time_secs = 300

# Language models (optional: without any, Kernos plans offline). Several providers form a
# fallback cascade; `kernos models` lists them, `kernos models test NAME` checks one.
# Env overrides: KERNOS_LLM_<NAME>_BASE_URL / _MODEL / _LANE_<LANE> / _API_KEY_ENV …
#
# [llm]
# default_lane = "fast"
# order = ["local", "claude"]
#
# [[llm.providers]]
# name = "local"                              # llama-server, Ollama, vLLM, LM Studio…
# base_url = "http://127.0.0.1:8080/v1"
# lanes = { fast = "qwen2.5-7b-instruct" }
#
# [[llm.providers]]
# name = "claude"
# kind = "anthropic"
# api_key_env = "ANTHROPIC_API_KEY"           # the variable's NAME, never the key
# lanes = { fast = "claude-haiku-4-5", strong = "claude-sonnet-4-5" }
# prices = { "claude-haiku-4-5" = { input_per_mtok = 1.0, output_per_mtok = 5.0 } }

# External MCP servers: their tools join the catalog as mcp.<server>.<tool> once a person has
# reviewed them (`kernos mcp trust <server>`); `kernos mcp list` shows where each stands. A
# stdio server runs inside the sandbox with only the paths and peers declared here. A tool
# not declared (and no default) may change anything: policy asks, at high risk.
#
# [[mcp.servers]]
# name = "files"
# command = ["node", "/opt/mcp/server-filesystem/dist/index.js", "/srv/share"]
# env = []                                    # variables passed from Kernos's environment
# read = ["/srv/share"]                       # what the server process may read
# write = ["/srv/share/inbox"]                # where its changing tools may write
# network = []                                # "host:port" peers it may reach
# timeout_s = 30
# [mcp.servers.tools.read_text_file]
# effects = ["read"]                          # read write delete exec network privileged
# [mcp.servers.default]
# effects = ["write"]
# risk = "medium"                             # a floor: policy may find more, never less

# The journal as a transparency log (docs/TLOG.md): the daemon signs checkpoints (Ed25519 +
# ML-DSA-44) with keys in <data dir>/tlog/keys; `kernos journal keys` prints them.
#
# [journal]
# keys_dir = "/etc/kernos/log-keys"  # keep (or provision) the signing keys here instead: 0700, files 0600
#
# [journal.checkpoints]
# every_events = 10000      # sign after this many new events (0: not by count)
# every_s = 60              # or after this many seconds with new events (0: not by time)
# origin = "host.example/kernos/journal"      # default: <host name>/kernos/journal; fixed once keys exist
#
# [journal.witness]                           # push each checkpoint to a witness for cosigning
# url = "https://witness.example:7878"        # another Kernos daemon with [[witness.logs]]
# key_env = "KERNOS_WITNESS_KEY"              # variable holding an operator key of the witness
# vkeys = ["witness.example/kernos/witness+…"]  # its cosigning keys (`kernos journal keys` there)

# This daemon as a witness for other logs (POST /v1/log/witness).
#
# [witness]
# name = "host.example/kernos/witness"        # default: <host name>/kernos/witness
# [[witness.logs]]
# origin = "other.example/kernos/journal"
# vkeys = ["other.example/kernos/journal+…", "other.example/kernos/journal+…"]  # Ed25519 and ML-DSA-44

# The fleet over NATS JetStream (README "Fleet"). `kernos node join` writes the node's part to
# <data dir>/fleet.toml instead.
#
# [fleet]
# url = "nats://broker.example:4222"          # or tls://…
# nkey = "/etc/kernos/fleet.nk"               # a user NKEY seed (or creds = "….creds" for JWT auth)
# tls_ca = "/etc/kernos/nats-ca.pem"          # require TLS to the broker, trusting this CA
# org = "local"                               # the fleet's organisation (subjects, who may fan out)
# controller = true                           # fan out this organisation's `--on` requests
# node = "web-1"                              # join as this node (omit: not a node)
# labels = { role = "web" }                   # what selectors match
# heartbeat_s = 5
# max_risk = "high"                           # the most this node runs from the fleet
# cwd = "/srv"                                # where fanned-out plans run (default: the home)
# services = ["nginx"]                        # report whether these run
# packages = ["nginx"]                        # report their installed versions
"#;

/// The whole template: the sections above plus the daemon's.
pub fn template() -> String {
    format!("{TEMPLATE}{}", kernos_server::config::TEMPLATE)
}

/// Where the config file lives.
pub fn path() -> anyhow::Result<PathBuf> {
    let nonempty = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(p) = nonempty("KERNOS_CONFIG") {
        return Ok(p);
    }
    if let Some(d) = nonempty("XDG_CONFIG_HOME") {
        return Ok(d.join("kernos/config.toml"));
    }
    nonempty("HOME")
        .map(|h| h.join(".config/kernos/config.toml"))
        .context("no config location: set KERNOS_CONFIG, XDG_CONFIG_HOME or HOME")
}

/// The profile `--profile` chose for this process (set once by `main`).
static PROFILE: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();

/// Selects the `[profile.NAME]` overlay every later [`load`] merges (from `--profile`).
pub fn set_profile(name: Option<String>) {
    let _ = PROFILE.set(name.filter(|n| !n.is_empty()));
}

/// The profile in force, if any.
pub fn profile() -> Option<String> {
    PROFILE.get().cloned().flatten()
}

/// Loads the config file (if any) and applies environment overrides.
pub fn load() -> anyhow::Result<Config> {
    load_text().map(|(c, _)| c)
}

/// Loads the config like [`load`], with the file's text as read (empty without a file), so
/// the daemon can record which file it runs with.
pub fn load_text() -> anyhow::Result<(Config, String)> {
    let p = path()?;
    let text = match std::fs::read_to_string(&p) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", p.display())),
    };
    let c = parse_profile(&text, &p, std::env::vars(), profile().as_deref())?;
    Ok((c, text))
}

/// What the commands that repair or inspect (`doctor`, `history`, `show`, `undo`, `config`)
/// run with when the file is broken: every top-level section that is valid on its own, with
/// the environment overrides, defaults for the rest. A broken file must not block the way to
/// fix it.
#[derive(Debug)]
pub struct Salvaged {
    /// The configuration in force.
    pub config: Config,
    /// Why the file could not be loaded as written, when it could not.
    pub error: Option<anyhow::Error>,
    /// The top-level sections left out (their defaults are used), e.g. `["policy"]`, or
    /// `["*"]` when the file is not TOML at all.
    pub dropped: Vec<String>,
}

/// Loads the configuration like [`load`], salvaging what it can from a broken file.
pub fn load_salvaged() -> Salvaged {
    let error = match load() {
        Ok(config) => {
            return Salvaged {
                config,
                error: None,
                dropped: Vec::new(),
            };
        }
        Err(e) => e,
    };
    let text = path()
        .ok()
        .and_then(|p| std::fs::read_to_string(p).ok())
        .unwrap_or_default();
    let (config, dropped) = salvage(&text, std::env::vars());
    Salvaged {
        config,
        error: Some(error),
        dropped,
    }
}

/// The valid sections of `text` (each tried alone), with `env` applied; the names of the
/// sections left out.
fn salvage(text: &str, env: impl Iterator<Item = (String, String)>) -> (Config, Vec<String>) {
    let env: Vec<(String, String)> = env.collect();
    let Ok(table) = toml::from_str::<toml::Table>(text) else {
        let config = parse("", Path::new("(defaults)"), env.into_iter()).unwrap_or_default();
        return (config, vec!["*".into()]);
    };
    let mut kept = toml::Table::new();
    let mut dropped = Vec::new();
    for (name, section) in table {
        let mut alone = toml::Table::new();
        alone.insert(name.clone(), section.clone());
        let ok = toml::to_string(&alone)
            .ok()
            .is_some_and(|t| parse(&t, Path::new("(section)"), std::iter::empty()).is_ok());
        if ok {
            kept.insert(name, section);
        } else {
            dropped.push(name);
        }
    }
    let kept_text = toml::to_string(&kept).unwrap_or_default();
    match parse(&kept_text, Path::new("(salvaged)"), env.clone().into_iter()) {
        Ok(c) => (c, dropped),
        // The sections are fine alone but the environment (or their combination) is not:
        // the environment's own error is reported with the file's, defaults are used.
        Err(_) => (
            parse("", Path::new("(defaults)"), env.into_iter()).unwrap_or_default(),
            vec!["*".into()],
        ),
    }
}

/// Parses config text, then applies `KERNOS_<SECTION>_<KEY>` overrides from `env`.
pub fn parse(
    text: &str,
    origin: &Path,
    env: impl Iterator<Item = (String, String)>,
) -> anyhow::Result<Config> {
    parse_profile(text, origin, env, None)
}

/// [`parse`] with the `[profile.NAME]` overlay merged over the file first (before the
/// environment, which still has the last word).
pub fn parse_profile(
    text: &str,
    origin: &Path,
    env: impl Iterator<Item = (String, String)>,
    profile: Option<&str>,
) -> anyhow::Result<Config> {
    let mut table: toml::Table =
        toml::from_str(text).map_err(|e| anyhow::anyhow!("{}: {e}", origin.display()))?;
    apply_profile(&mut table, profile).map_err(|e| anyhow::anyhow!("{}: {e}", origin.display()))?;
    let env: Vec<(String, String)> = env.collect();
    apply_env(&mut table, env.iter().cloned())?;
    // Deserialising the merged table catches unknown keys and wrong types; for errors in the
    // file itself, re-parse the text to get line numbers.
    match Config::deserialize(toml::Value::Table(table)) {
        Ok(mut c) => {
            // [llm] has nested providers the generic KERNOS_<SECTION>_<KEY> form cannot
            // address; its own handler applies KERNOS_LLM_* and validates the section.
            c.llm
                .apply_env(env)
                .map_err(|e| anyhow::anyhow!("{}: {e}", origin.display()))?;
            validate(&c)?;
            Ok(c)
        }
        Err(e) => {
            if let Err(located) = toml::from_str::<Config>(text) {
                bail!("{}: {located}", origin.display());
            }
            match profile {
                Some(p) => bail!(
                    "invalid setting in [profile.{p}] of {} or from the environment: {e}",
                    origin.display()
                ),
                None => bail!("invalid setting from the environment: {e}"),
            }
        }
    }
}

fn validate(c: &Config) -> anyhow::Result<()> {
    if !["auto", "always", "never"].contains(&c.cli.color.as_str()) {
        bail!(
            "cli.color must be \"auto\", \"always\" or \"never\", not {:?}",
            c.cli.color
        );
    }
    for p in c.policy.protected.iter().chain(&c.policy.system) {
        if !p.is_absolute() {
            bail!("policy paths must be absolute: {}", p.display());
        }
    }
    let t = c.planner.confidence_threshold;
    if !(0.0..=1.0).contains(&t) || t.is_nan() {
        bail!("planner.confidence_threshold must be between 0 and 1, not {t}");
    }
    if c.planner.max_repairs > 5 {
        bail!(
            "planner.max_repairs must be at most 5, not {}",
            c.planner.max_repairs
        );
    }
    if c.planner.agent_max_steps == 0
        || c.planner.agent_max_tokens == 0
        || c.planner.agent_time_secs == 0
    {
        bail!("planner.agent_max_steps, agent_max_tokens and agent_time_secs must be at least 1");
    }
    c.server.validate().map_err(anyhow::Error::msg)?;
    c.mcp.validate()?;
    c.journal.validate()?;
    c.witness.validate()?;
    Ok(())
}

/// Takes the `[profile.*]` tables out of `table` and merges the one named `profile` over the
/// rest: tables key by key, any other value (arrays too) replaced whole.
fn apply_profile(table: &mut toml::Table, profile: Option<&str>) -> anyhow::Result<()> {
    let profiles = match table.remove("profile") {
        None => toml::Table::new(),
        Some(toml::Value::Table(t)) => t,
        Some(_) => bail!("`profile` must be tables like [profile.prod]"),
    };
    let Some(name) = profile else {
        return Ok(());
    };
    match profiles.get(name) {
        Some(toml::Value::Table(overlay)) => {
            merge(table, overlay.clone());
            Ok(())
        }
        Some(_) => bail!("[profile.{name}] must be a table"),
        None => {
            let known: Vec<&str> = profiles.keys().map(String::as_str).collect();
            bail!(
                "no [profile.{name}] in the config file (profiles there: {}); add one or drop --profile",
                if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                }
            )
        }
    }
}

/// Merges `over` into `base`: tables recursively, other values replaced.
fn merge(base: &mut toml::Table, over: toml::Table) {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

/// Sections the generic `KERNOS_<SECTION>_<KEY>` form applies to. `llm` is left out on
/// purpose: its providers are a list the generic form cannot address, so `KERNOS_LLM_*` goes
/// to `LlmConfig::apply_env` (see `parse`).
const SECTIONS: &[&str] = &["cli", "policy", "sandbox", "planner", "server", "trash"];

/// Applies `KERNOS_<SECTION>_<KEY>=value` (value parsed as a TOML value, else taken as a
/// string). Variables for other purposes (`KERNOS_DATA_DIR`, `KERNOS_CONFIG`) are ignored.
fn apply_env(
    table: &mut toml::Table,
    env: impl Iterator<Item = (String, String)>,
) -> anyhow::Result<()> {
    for (k, v) in env {
        let Some(rest) = k.strip_prefix("KERNOS_") else {
            continue;
        };
        // The sandbox's own variables share the section's prefix but are not settings.
        if matches!(k.as_str(), "KERNOS_SANDBOX_HELPER" | "KERNOS_SANDBOX_TRACE") {
            continue;
        }
        let lower = rest.to_ascii_lowercase();
        let Some(section) = SECTIONS
            .iter()
            .find(|s| lower.starts_with(&format!("{s}_")))
        else {
            continue;
        };
        let key = &lower[section.len() + 1..];
        if key.is_empty() {
            continue;
        }
        let value: toml::Value = toml::from_str::<toml::Table>(&format!("v = {v}"))
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or_else(|| toml::Value::String(v.clone()));
        let sec = table
            .entry((*section).to_owned())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        match sec {
            toml::Value::Table(t) => {
                t.insert(key.to_owned(), value);
            }
            _ => bail!("[{section}] in the config file is not a table"),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Iterator<Item = (String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect::<Vec<_>>()
            .into_iter()
    }

    #[test]
    fn empty_is_defaults_and_template_parses() {
        assert_eq!(
            parse("", Path::new("c"), env(&[])).unwrap(),
            Config::default()
        );
        assert_eq!(
            parse(TEMPLATE, Path::new("c"), env(&[])).unwrap(),
            Config::default()
        );
        assert_eq!(
            parse(&template(), Path::new("c"), env(&[])).unwrap(),
            Config::default()
        );
    }

    #[test]
    fn errors_point_at_the_line() {
        let text = "[cli]\ncolor = \"auto\"\n\n[policy]\nallow_medum = true\n";
        let e = parse(text, Path::new("/x/config.toml"), env(&[]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("/x/config.toml") && e.contains("line 5") && e.contains("allow_medum"),
            "{e}"
        );
        let e = parse(
            "[policy]\nallow_medium = \"yes\"\n",
            Path::new("c"),
            env(&[]),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("line 2"), "{e}");
        let e = parse("[cli]\ncolor = \"blue\"\n", Path::new("c"), env(&[]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("cli.color"), "{e}");
    }

    #[test]
    fn a_broken_file_keeps_its_valid_sections() {
        let text = "[polcy]\nallow_medium = true\n\n[cli]\ncolor = \"never\"\n";
        let (c, dropped) = salvage(text, env(&[("KERNOS_POLICY_ALLOW_MEDIUM", "true")]));
        assert_eq!(dropped, vec!["polcy".to_owned()]);
        assert_eq!(c.cli.color, "never");
        assert!(c.policy.allow_medium, "environment overrides still apply");
        let (c, dropped) = salvage("[cli\ncolor = ", env(&[]));
        assert_eq!(dropped, vec!["*".to_owned()]);
        assert_eq!(c, Config::default());
        let (_, dropped) = salvage("[policy]\nprotected = [\"rel\"]\n", env(&[]));
        assert_eq!(dropped, vec!["policy".to_owned()]);
    }

    #[test]
    fn profiles_merge_over_the_file() {
        let text = "[server]\nrate_per_sec = 5.0\nworkers = 4\n\n[profile.prod.server]\nrate_per_sec = 50.0\n[profile.prod.server.quotas]\nacme = 10.0\n\n[profile.dev.cli]\ncolor = \"never\"\n";
        let base = parse(text, Path::new("c"), env(&[])).unwrap();
        assert_eq!(base.server.rate_per_sec, 5.0);
        assert!(base.server.quotas.is_empty());
        let prod = parse_profile(text, Path::new("c"), env(&[]), Some("prod")).unwrap();
        assert_eq!(prod.server.rate_per_sec, 50.0);
        assert_eq!(prod.server.workers, 4, "what the profile leaves out stays");
        assert_eq!(prod.server.quotas["acme"], 10.0);
        assert_eq!(prod.cli.color, "auto");
        // The environment still has the last word.
        let p = parse_profile(
            text,
            Path::new("c"),
            env(&[("KERNOS_SERVER_RATE_PER_SEC", "7.0")]),
            Some("prod"),
        )
        .unwrap();
        assert_eq!(p.server.rate_per_sec, 7.0);
        let e = parse_profile(text, Path::new("c"), env(&[]), Some("staging"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("profile.staging") && e.contains("dev, prod"),
            "{e}"
        );
        let e = parse_profile(
            "[profile.prod.server]\nrate_per_sec = \"fast\"\n",
            Path::new("c"),
            env(&[]),
            Some("prod"),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("profile.prod"), "{e}");
    }

    #[test]
    fn environment_overrides() {
        let c = parse(
            "[policy]\nallow_medium = false\n",
            Path::new("c"),
            env(&[
                ("KERNOS_POLICY_ALLOW_MEDIUM", "true"),
                ("KERNOS_DATA_DIR", "/d"),
                ("KERNOS_CLI_COLOR", "never"),
                ("KERNOS_SANDBOX_HELPER", "/x/kernos-sandbox"),
            ]),
        )
        .unwrap();
        assert!(c.policy.allow_medium);
        assert_eq!(c.cli.color, "never");
        let e = parse(
            "",
            Path::new("c"),
            env(&[("KERNOS_POLICY_ALLOW_MEDIUM", "perhaps")]),
        )
        .unwrap_err();
        assert!(e.to_string().contains("environment"), "{e}");
    }

    #[test]
    fn llm_section_and_its_environment() {
        let text = "[llm]\ndefault_lane = \"fast\"\n\n[[llm.providers]]\nname = \"local\"\nbase_url = \"http://127.0.0.1:8080/v1\"\nlanes = { fast = \"qwen\" }\n";
        let c = parse(text, Path::new("c"), env(&[])).unwrap();
        assert_eq!(c.llm.providers[0].name, "local");
        // KERNOS_LLM_* goes to the llm section's own handler: nested keys and new providers.
        let c = parse(
            text,
            Path::new("c"),
            env(&[
                ("KERNOS_LLM_LOCAL_LANE_STRONG", "qwen-32b"),
                ("KERNOS_LLM_BOX_BASE_URL", "http://10.0.0.2:11434"),
                ("KERNOS_LLM_BOX_MODEL", "llama3.2"),
                ("KERNOS_PLANNER_CONFIDENCE_THRESHOLD", "0.9"),
            ]),
        )
        .unwrap();
        assert_eq!(c.llm.providers[0].lanes["strong"], "qwen-32b");
        assert_eq!(c.llm.providers[1].name, "box");
        assert!((c.planner.confidence_threshold - 0.9).abs() < 1e-6);
        // Errors name the field and the file.
        let e = parse(
            "[[llm.providers]]\nname = \"x\"\nbase_url = \"ftp://h\"\nmodel = \"m\"\n",
            Path::new("/x/config.toml"),
            env(&[]),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("/x/config.toml") && e.contains("llm.providers[0].base_url"),
            "{e}"
        );
        let e = parse(
            "",
            Path::new("c"),
            env(&[("KERNOS_LLM_NOPE_TIMEOUT_MS", "5")]),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("KERNOS_LLM_NOPE_TIMEOUT_MS"), "{e}");
        let e = parse(
            "[planner]\nconfidence_threshold = 2.0\n",
            Path::new("c"),
            env(&[]),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("confidence_threshold"), "{e}");
    }
}
