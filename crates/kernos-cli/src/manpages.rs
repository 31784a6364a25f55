//! Man pages, generated from the one clap definition ([`crate::cli::Cli`]) and the config
//! types, so they cannot drift from the code: `kernos(1)`, one page per subcommand
//! (`kernos-serve(1)`, `kernos-journal-tail(1)`…) by clap_mangen, and `kernos.toml(5)` built
//! here from [`Config::default`] (every section and key, with its default) and the commented
//! template. `scripts/build-deb` runs `kernos __manpages DIR` to write them.

use std::path::Path;

use anyhow::Context;
use clap::CommandFactory;

use crate::cli::Cli;
use crate::config::{self, Config};

/// The hidden first argument that writes the man pages (not a subcommand: it is for
/// packagers, never shown in `--help`).
pub const ARG: &str = "__manpages";

/// One line per config section for `kernos.toml(5)`. A test checks it names exactly the
/// sections [`Config`] has, so a new section cannot ship undocumented.
pub const SECTIONS: &[(&str, &str)] = &[
    ("cli", "How the command line looks: colour, progress."),
    (
        "policy",
        "Risk and approval: what runs without asking, protected and system paths.",
    ),
    (
        "sandbox",
        "Confinement: whether steps may run with weaker confinement on an old kernel.",
    ),
    (
        "planner",
        "The offline planner, the plan cache, follow-ups and agent budgets.",
    ),
    (
        "llm",
        "Language-model providers, lanes and prices (optional: without any, Kernos plans offline).",
    ),
    (
        "server",
        "The daemon (kernos serve): listeners, TLS, run slots, limits, quotas, organisations' scopes, monitors, webhooks, the MCP server.",
    ),
    ("trash", "How much the trash keeps for undo."),
    (
        "mcp",
        "External MCP servers whose reviewed tools join the catalog.",
    ),
    (
        "journal",
        "The journal as a transparency log: checkpoints, signing keys, the witness to push to.",
    ),
    ("witness", "This daemon as a witness for other logs."),
    (
        "fleet",
        "The fleet: the NATS broker, and whether kernos serve is a node, a controller or both (kernos node join writes <data dir>/fleet.toml, which wins).",
    ),
];

/// Writes every page into `dir` (created if missing); returns the file names.
pub fn write_all(dir: &Path) -> anyhow::Result<Vec<String>> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let cmd = Cli::command();
    clap_mangen::generate_to(cmd, dir)
        .with_context(|| format!("cannot write the man pages into {}", dir.display()))?;
    let five = dir.join("kernos.toml.5");
    std::fs::write(&five, config_page()?)
        .with_context(|| format!("cannot write {}", five.display()))?;
    let mut names: Vec<String> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    Ok(names)
}

/// Escapes text for roff: backslashes, and a leading `.` or `'` that would read as a request.
fn roff(text: &str) -> String {
    text.lines()
        .map(|l| {
            let l = l.replace('\\', "\\e").replace('-', "\\-");
            if l.starts_with('.') || l.starts_with('\'') {
                format!("\\&{l}")
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The default config as TOML sections (what `kernos config show` prints with no file).
fn default_sections() -> anyhow::Result<toml::Table> {
    let text = toml::to_string(&Config::default())?;
    Ok(toml::from_str(&text)?)
}

/// `kernos.toml(5)`.
pub fn config_page() -> anyhow::Result<String> {
    let mut p = String::new();
    let version = env!("CARGO_PKG_VERSION");
    p.push_str(&format!(
        ".TH KERNOS.TOML 5 \"\" \"kernos {version}\" \"File Formats\"\n"
    ));
    p.push_str(".SH NAME\nkernos.toml \\- configuration of kernos(1) and its daemon\n");
    p.push_str(".SH SYNOPSIS\n");
    p.push_str(&roff(
        "$KERNOS_CONFIG, else $XDG_CONFIG_HOME/kernos/config.toml, else ~/.config/kernos/config.toml.\nThe packaged service reads /etc/kernos/config.toml (KERNOS_CONFIG in kernos.service).",
    ));
    p.push_str("\n.SH DESCRIPTION\n");
    p.push_str(&roff(
        "A TOML file; every setting is optional and has the default shown below. Unknown keys are errors that name the line. `kernos config check` checks the file, `kernos config edit` opens it in $EDITOR, checks it and has a running daemon reload it; `kernos config show` prints the settings in force.",
    ));
    p.push_str("\n.SH SECTIONS\n");
    let defaults = default_sections()?;
    for (name, what) in SECTIONS {
        p.push_str(&format!(".SS [{name}]\n{}\n", roff(what)));
        let Some(toml::Value::Table(t)) = defaults.get(*name) else {
            p.push_str("Off unless set; its keys are in the example below.\n");
            continue;
        };
        {
            for (k, v) in t {
                let shown = match v {
                    toml::Value::Table(sub) if sub.is_empty() => "{}".to_owned(),
                    toml::Value::Table(_) => format!("[{name}.{k}] table"),
                    other => other.to_string(),
                };
                p.push_str(&format!(".TP\n.B {name}.{k}\ndefault: {}\n", roff(&shown)));
            }
        }
    }
    p.push_str(".SH PROFILES\n");
    p.push_str(&roff(
        "Tables under [profile.NAME] (e.g. [profile.prod.server]) are merged over the rest of the file when kernos runs with --profile NAME or KERNOS_PROFILE=NAME: tables key by key, other values replaced whole. Without a profile they are ignored.",
    ));
    p.push_str("\n.SH ENVIRONMENT\n");
    p.push_str(&roff(
        "Every setting of [cli], [policy], [sandbox], [planner], [server] and [trash] can be given as KERNOS_<SECTION>_<KEY> (e.g. KERNOS_SERVER_RATE_PER_SEC=50); KERNOS_LLM_<NAME>_<KEY> sets or adds a provider. The environment wins over the file and its profile.",
    ));
    p.push_str("\n.SH RELOADING\n");
    p.push_str(&roff(
        "kernos serve reads the file again on SIGHUP (systemctl reload kernos; kernos config edit sends it). Rate limits, quotas, organisations' scopes, monitors, the approval timeout, the stream, concurrency and time limits, and the language-model providers and planner settings ([llm], [planner]) apply at once, without dropping a connection or a running action; other changes are reported as needing a restart and keep their old value until then. An invalid file is refused with the error and the config in force stays. Each reload is journaled as config.reloaded (the file's SHA\\-256, what changed, what needs a restart) or config.rejected (the error).",
    ));
    p.push_str(
        "\n.SH EXAMPLE\nThe commented template `kernos config edit` starts from:\n.PP\n.nf\n",
    );
    p.push_str(&roff(&config::template()));
    p.push_str("\n.fi\n.SH SEE ALSO\nkernos(1), kernos\\-serve(1), kernos\\-config(1), systemd.service(5)\n");
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every section the config type accepts, from serde's own list of expected fields (the
    /// error for an unknown one names them all, optional sections too).
    fn all_sections() -> Vec<String> {
        let e = toml::from_str::<Config>("[no_such_section]\n")
            .unwrap_err()
            .to_string();
        let list = e.split("expected one of").nth(1).unwrap();
        list.split(',')
            .map(|s| {
                s.trim()
                    .trim_matches(|c: char| c == '`' || c.is_whitespace())
                    .to_owned()
            })
            .map(|s| s.split('`').next().unwrap_or("").to_owned())
            .filter(|s| !s.is_empty() && s != "profile")
            .collect()
    }

    #[test]
    fn every_config_section_is_described_and_every_key_listed() {
        let defaults = default_sections().unwrap();
        let described: Vec<&str> = SECTIONS.iter().map(|(n, _)| *n).collect();
        let all = all_sections();
        let mut have: Vec<&str> = all.iter().map(String::as_str).collect();
        let mut want = described.clone();
        have.sort_unstable();
        want.sort_unstable();
        assert_eq!(
            have, want,
            "SECTIONS must name exactly the config's sections"
        );
        let page = config_page().unwrap();
        for (name, t) in &defaults {
            assert!(page.contains(&format!(".SS [{name}]")), "{name}");
            for k in t.as_table().unwrap().keys() {
                assert!(page.contains(&format!(".B {name}.{k}\n")), "{name}.{k}");
            }
        }
        // Every [server] setting, including the ones without a default value to print.
        for k in [
            "listen",
            "tls_cert",
            "max_running_per_org",
            "quotas",
            "scopes",
            "monitors",
        ] {
            assert!(
                page.contains(&format!("server.{k}")) || page.contains(k),
                "{k}"
            );
        }
        assert!(page.contains(".SH PROFILES") && page.contains(".SH RELOADING"));
    }

    #[test]
    fn roff_escapes_requests_and_backslashes() {
        assert_eq!(roff(".x\n'y\na\\b"), "\\&.x\n\\&'y\na\\eb");
    }
}
