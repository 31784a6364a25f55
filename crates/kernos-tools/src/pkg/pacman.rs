//! pacman (Arch Linux and derivatives).
//!
//! UNTESTED on a real pacman system: this development machine is Debian. The parsers follow
//! pacman 6's documented output and are unit-tested with samples written from it; the
//! end-to-end paths have not run.

use std::collections::BTreeMap;
use std::time::Duration;

use kernos_core::ExecOutcome;

use super::{Details, Hit, Installed, Manager, Plan, Upgrade, dnf::parse_size, failed, sources};
use crate::ctx::{Ctx, RunOpts};
use crate::error::{Result, ToolError};

pub(crate) struct Pacman;

const WRITE_PATHS: &[&str] = &[
    "/usr",
    // Kernel and bootloader packages install into /boot.
    "/boot",
    "/etc",
    "/opt",
    "/var/lib/pacman",
    "/var/lib",
    "/var/cache/pacman",
    "/var/cache",
    "/var/log",
    "/run",
];

/// `pacman -Ss`: `repo/name version [installed]` followed by an indented description.
pub(crate) fn parse_search(text: &str) -> Vec<Hit> {
    let mut out: Vec<Hit> = Vec::new();
    for line in text.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some(h) = out.last_mut() {
                if h.description.is_empty() {
                    h.description = line.trim().to_owned();
                }
            }
            continue;
        }
        let Some(first) = line.split_whitespace().next() else {
            continue;
        };
        let name = first.rsplit_once('/').map_or(first, |(_, n)| n);
        out.push(Hit {
            name: name.to_owned(),
            description: String::new(),
        });
    }
    out
}

/// `pacman -Qi` / `-Si`: `Key            : value` lines.
pub(crate) fn parse_info(text: &str) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(" : ") {
            m.insert(k.trim().to_owned(), v.trim().to_owned());
        }
    }
    m
}

/// `name version` per line (`pacman -Q`, `--print-format '%n %v'`).
pub(crate) fn parse_pairs(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            Some((it.next()?.to_owned(), it.next()?.to_owned()))
        })
        .collect()
}

/// `pacman -Qu`: `name old -> new`.
pub(crate) fn parse_updates(text: &str) -> Vec<Upgrade> {
    text.lines()
        .filter_map(|l| {
            let t: Vec<&str> = l.split_whitespace().collect();
            (t.len() >= 4 && t[2] == "->").then(|| Upgrade {
                name: t[0].to_owned(),
                version: t[1].to_owned(),
                candidate: t[3].to_owned(),
                source: String::new(),
            })
        })
        .collect()
}

impl Pacman {
    fn installed_map(&self, ctx: &Ctx<'_>) -> Result<BTreeMap<String, String>> {
        Ok(self
            .installed(ctx)?
            .into_iter()
            .map(|p| (p.name, p.version))
            .collect())
    }
}

impl Manager for Pacman {
    fn name(&self) -> &'static str {
        "pacman"
    }

    fn valid_name(&self, n: &str) -> bool {
        !n.starts_with(['-', '.'])
            && n.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "@._+-".contains(c))
    }

    fn name_rule(&self) -> &'static str {
        "lower-case letters, digits and @ . _ + - (e.g. nginx, python-yaml)"
    }

    fn search(&self, ctx: &Ctx<'_>, words: &[&str]) -> Result<Vec<Hit>> {
        let mut argv = vec!["pacman", "-Ss", "--"];
        argv.extend_from_slice(words);
        let out = ctx.run_read_only(&argv, RunOpts::default())?;
        // Exit 1 with no output means "no match".
        if !out.success() && !out.stdout.is_empty() {
            return Err(failed("pacman -Ss", &out));
        }
        Ok(parse_search(&out.stdout_text()))
    }

    fn info(&self, ctx: &Ctx<'_>, name: &str) -> Result<Option<Details>> {
        let q = ctx.run_read_only(&["pacman", "-Qi", "--", name], RunOpts::default())?;
        let s = ctx.run_read_only(&["pacman", "-Si", "--", name], RunOpts::default())?;
        let local = q.success().then(|| parse_info(&q.stdout_text()));
        let sync = s.success().then(|| parse_info(&s.stdout_text()));
        let Some(main) = local.clone().or_else(|| sync.clone()) else {
            return Ok(None);
        };
        Ok(Some(Details {
            name: name.to_owned(),
            installed: local.as_ref().and_then(|m| m.get("Version").cloned()),
            candidate: sync.as_ref().and_then(|m| m.get("Version").cloned()),
            size: main.get("Installed Size").and_then(|s| parse_size(s)),
            section: main.get("Repository").cloned(),
            homepage: main.get("URL").cloned(),
            summary: main.get("Description").cloned(),
            long: None,
            depends: main.get("Depends On").cloned(),
        }))
    }

    fn installed(&self, ctx: &Ctx<'_>) -> Result<Vec<Installed>> {
        let out = ctx.run_read_only(&["pacman", "-Q"], RunOpts::default())?;
        if !out.success() {
            return Err(failed("pacman -Q", &out));
        }
        Ok(parse_pairs(&out.stdout_text())
            .into_iter()
            .map(|(name, version)| Installed {
                name,
                version,
                ..Installed::default()
            })
            .collect())
    }

    fn upgradable(&self, ctx: &Ctx<'_>) -> Result<Vec<Upgrade>> {
        let out = ctx.run_read_only(&["pacman", "-Qu"], RunOpts::default())?;
        // Exit 1 with no output: nothing to upgrade.
        if !out.success() && !out.stdout.is_empty() {
            return Err(failed("pacman -Qu", &out));
        }
        Ok(parse_updates(&out.stdout_text()))
    }

    fn plan(&self, ctx: &Ctx<'_>, names: &[&str], install: bool) -> Result<Plan> {
        let mut argv = if install {
            vec![
                "pacman",
                "-S",
                "--needed",
                "--print",
                "--print-format",
                "%n %v",
                "--",
            ]
        } else {
            vec!["pacman", "-R", "--print", "--print-format", "%n %v", "--"]
        };
        argv.extend_from_slice(names);
        let out = ctx.run_read_only(&argv, RunOpts::default())?;
        if !out.success() {
            let e = out
                .stderr_text()
                .lines()
                .filter(|l| l.starts_with("error:"))
                .collect::<Vec<_>>()
                .join("; ");
            return Err(ToolError::Failed(format!(
                "pacman cannot {} {}: {e}",
                if install { "install" } else { "remove" },
                names.join(" ")
            )));
        }
        let targets = parse_pairs(&out.stdout_text());
        let installed = self.installed_map(ctx)?;
        let mut p = Plan::default();
        for (n, v) in targets {
            if !install {
                p.remove.push((n, v));
            } else if let Some(old) = installed.get(&n) {
                p.upgrade.push((n, old.clone(), v));
            } else {
                p.install.push((n, v));
            }
        }
        Ok(p)
    }

    fn apply(&self, ctx: &Ctx<'_>, names: &[&str], install: bool) -> Result<ExecOutcome> {
        let mut argv = if install {
            vec!["pacman", "-S", "--noconfirm", "--needed", "--"]
        } else {
            vec!["pacman", "-R", "--noconfirm", "--"]
        };
        argv.extend_from_slice(names);
        ctx.run(
            &argv,
            RunOpts {
                timeout: Some(Duration::from_secs(30 * 60)),
                ..RunOpts::default()
            },
        )
    }

    fn hosts(&self) -> Vec<(String, Option<u16>)> {
        sources::pacman_hosts()
    }

    fn write_paths(&self) -> &'static [&'static str] {
        WRITE_PATHS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_output() {
        let h = parse_search(
            "extra/nginx 1.26.0-1 [installed]\n    Lightweight HTTP server and IMAP/POP3 proxy server\nextra/nginx-mainline 1.27.0-1\n    Lightweight HTTP server (mainline)\n",
        );
        assert_eq!(h.len(), 2);
        assert_eq!(h[0].name, "nginx");
        assert_eq!(h[1].description, "Lightweight HTTP server (mainline)");
    }

    #[test]
    fn info_output() {
        let m = parse_info(
            "Repository      : extra\nName            : nginx\nVersion         : 1.26.0-1\nDescription     : Lightweight HTTP server\nInstalled Size  : 1.23 MiB\n",
        );
        assert_eq!(m["Version"], "1.26.0-1");
        assert_eq!(
            parse_size(&m["Installed Size"]),
            Some((1.23 * 1024.0 * 1024.0) as u64)
        );
    }

    #[test]
    fn updates_and_pairs() {
        let u = parse_updates("linux 6.8.9.arch1-1 -> 6.9.1.arch1-1\n");
        assert_eq!(u[0].candidate, "6.9.1.arch1-1");
        assert_eq!(parse_pairs("bash 5.2.026-2\n")[0].0, "bash");
    }
}
