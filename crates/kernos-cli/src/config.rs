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
    /// The offline planner.
    pub planner: PlannerConfig,
    /// The daemon (`kernos serve`).
    pub server: kernos_server::ServerConfig,
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
}

impl Default for PlannerConfig {
    fn default() -> Self {
        PlannerConfig {
            context_minutes: 15,
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

[planner]
# context_minutes = 15      # how long follow-ups ("them", "undo that") refer back
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

/// Loads the config file (if any) and applies environment overrides.
pub fn load() -> anyhow::Result<Config> {
    let p = path()?;
    let text = match std::fs::read_to_string(&p) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", p.display())),
    };
    parse(&text, &p, std::env::vars())
}

/// Parses config text, then applies `KERNOS_<SECTION>_<KEY>` overrides from `env`.
pub fn parse(
    text: &str,
    origin: &Path,
    env: impl Iterator<Item = (String, String)>,
) -> anyhow::Result<Config> {
    let mut table: toml::Table =
        toml::from_str(text).map_err(|e| anyhow::anyhow!("{}: {e}", origin.display()))?;
    apply_env(&mut table, env)?;
    // Deserialising the merged table catches unknown keys and wrong types; for errors in the
    // file itself, re-parse the text to get line numbers.
    match Config::deserialize(toml::Value::Table(table)) {
        Ok(c) => {
            validate(&c)?;
            Ok(c)
        }
        Err(e) => {
            if let Err(located) = toml::from_str::<Config>(text) {
                bail!("{}: {located}", origin.display());
            }
            bail!("invalid setting from the environment: {e}")
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
    c.server.validate().map_err(anyhow::Error::msg)?;
    Ok(())
}

const SECTIONS: &[&str] = &["cli", "policy", "sandbox", "planner", "server"];

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
}
