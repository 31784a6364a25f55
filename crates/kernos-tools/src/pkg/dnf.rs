//! dnf / rpm (Fedora, RHEL and derivatives).
//!
//! UNTESTED on a real dnf system: this development machine is Debian. The parsers follow the
//! output formats of dnf 4 (and, where they differ, dnf 5) and are unit-tested with samples
//! written from those formats; the end-to-end paths have not run.

use std::collections::BTreeMap;
use std::time::Duration;

use kernos_core::ExecOutcome;

use super::{Details, Hit, Installed, Manager, Plan, Upgrade, failed, sources};
use crate::ctx::{Ctx, RunOpts};
use crate::error::{Result, ToolError};

pub(crate) struct Dnf;

const WRITE_PATHS: &[&str] = &[
    "/usr",
    // Kernel and bootloader packages install into /boot.
    "/boot",
    "/etc",
    "/opt",
    "/var/lib/rpm",
    "/var/lib/dnf",
    "/var/lib",
    "/var/cache/dnf",
    "/var/cache",
    "/var/log",
    "/run",
];

const ARCHES: &[&str] = &[
    "x86_64", "noarch", "aarch64", "i686", "i386", "armv7hl", "ppc64le", "s390x", "src",
];

/// `hello.x86_64` → `hello`.
fn strip_arch(n: &str) -> &str {
    match n.rsplit_once('.') {
        Some((base, arch)) if ARCHES.contains(&arch) => base,
        _ => n,
    }
}

/// `dnf search` lines: `name.arch : summary` (dnf 4) or ` name.arch<TAB>summary` (dnf 5).
pub(crate) fn parse_search(text: &str) -> Vec<Hit> {
    text.lines()
        .filter(|l| !l.starts_with('=') && !l.starts_with("Matched"))
        .filter_map(|l| {
            let (n, d) = l.split_once(" : ").or_else(|| l.split_once('\t'))?;
            let n = n.trim();
            (!n.is_empty() && !n.contains(' ')).then(|| Hit {
                name: strip_arch(n).to_owned(),
                description: d.trim().to_owned(),
            })
        })
        .collect()
}

/// `rpm -qa --qf '%{NAME}\t%{VERSION}-%{RELEASE}\t%{ARCH}\t%{SIZE}\t%{SUMMARY}\n'`.
pub(crate) fn parse_rpm_list(text: &str) -> Vec<Installed> {
    text.lines()
        .filter_map(|l| {
            let c: Vec<&str> = l.split('\t').collect();
            if c.len() < 5 || c[0] == "gpg-pubkey" {
                return None;
            }
            Some(Installed {
                name: c[0].to_owned(),
                version: c[1].to_owned(),
                arch: c[2].to_owned(),
                size: c[3].parse().ok(),
                description: c[4].to_owned(),
            })
        })
        .collect()
}

/// The transaction table `dnf --assumeno install|remove` prints: section → (name, version).
pub(crate) fn parse_transaction(text: &str) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    let mut section = String::new();
    let mut pending: Option<String> = None;
    for line in text.lines() {
        if line.starts_with("Transaction Summary") || line.starts_with("Transaction summary") {
            break;
        }
        if !line.starts_with(' ') {
            if let Some(s) = line.trim().strip_suffix(':') {
                section = s.to_ascii_lowercase();
            }
            continue;
        }
        if section.is_empty() {
            continue;
        }
        let mut toks: Vec<&str> = line.split_whitespace().collect();
        // Long names wrap: the name alone on one line, the rest on the next.
        let joined;
        if let Some(p) = pending.take() {
            joined = format!("{p} {}", toks.join(" "));
            toks = joined.split_whitespace().collect();
        }
        if toks.len() == 1 {
            pending = Some(toks[0].to_owned());
            continue;
        }
        if toks.len() < 3 || toks[0] == "replacing" {
            continue;
        }
        out.push((section.clone(), toks[0].to_owned(), toks[2].to_owned()));
    }
    out
}

/// `dnf check-update` lines: `name.arch  version  repo`.
pub(crate) fn parse_check_update(text: &str) -> Vec<(String, String, String)> {
    text.lines()
        .filter_map(|l| {
            let t: Vec<&str> = l.split_whitespace().collect();
            (t.len() == 3 && t[0].contains('.')).then(|| {
                (
                    strip_arch(t[0]).to_owned(),
                    t[1].to_owned(),
                    t[2].to_owned(),
                )
            })
        })
        .filter(|(n, _, _)| n != "Obsoleting")
        .collect()
}

/// `dnf info` blocks: `Key : value`, continuation lines `    : more`.
pub(crate) fn parse_info(text: &str) -> Vec<(String, BTreeMap<String, String>)> {
    let mut out: Vec<(String, BTreeMap<String, String>)> = Vec::new();
    let mut section = String::new();
    let mut last_key = String::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            continue;
        }
        if !line.contains(':') || line.to_ascii_lowercase().ends_with("packages") {
            section = line.trim().to_ascii_lowercase();
            continue;
        }
        let (k, v) = line.split_once(':').unwrap_or((line, ""));
        let k = k.trim();
        let v = v.trim();
        if k.is_empty() {
            if let Some((_, m)) = out.last_mut() {
                if let Some(prev) = m.get_mut(&last_key) {
                    prev.push(' ');
                    prev.push_str(v);
                }
            }
            continue;
        }
        if k == "Name" {
            out.push((section.clone(), BTreeMap::new()));
        }
        if let Some((_, m)) = out.last_mut() {
            m.insert(k.to_owned(), v.to_owned());
            last_key = k.to_owned();
        }
    }
    out
}

/// `1.5 M`, `178.3 KiB`, `12 k` → bytes.
pub(crate) fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s.find(|c: char| c.is_ascii_alphabetic())?;
    let n: f64 = s[..split].trim().parse().ok()?;
    let unit = s[split..].trim().to_ascii_lowercase();
    let mul = match unit.chars().next()? {
        'b' => 1.0,
        'k' => 1024.0,
        'm' => 1024.0 * 1024.0,
        'g' => 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    Some((n * mul) as u64)
}

impl Manager for Dnf {
    fn name(&self) -> &'static str {
        "dnf"
    }

    fn valid_name(&self, n: &str) -> bool {
        n.chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
            && n.chars()
                .all(|c| c.is_ascii_alphanumeric() || "_+.-".contains(c))
    }

    fn name_rule(&self) -> &'static str {
        "letters, digits and _ + . - (e.g. httpd, python3-pyyaml)"
    }

    fn search(&self, ctx: &Ctx<'_>, words: &[&str]) -> Result<Vec<Hit>> {
        let mut argv = vec!["dnf", "-q", "search", "--"];
        argv.extend_from_slice(words);
        let out = ctx.run_read_only(&argv, RunOpts::default())?;
        if !out.success() {
            return Err(failed("dnf search", &out));
        }
        Ok(parse_search(&out.stdout_text()))
    }

    fn info(&self, ctx: &Ctx<'_>, name: &str) -> Result<Option<Details>> {
        let out = ctx.run_read_only(&["dnf", "-q", "info", "--", name], RunOpts::default())?;
        if !out.success() {
            return Ok(None);
        }
        let blocks = parse_info(&out.stdout_text());
        if blocks.is_empty() {
            return Ok(None);
        }
        let ver = |m: &BTreeMap<String, String>| {
            let v = m.get("Version").cloned().unwrap_or_default();
            match m.get("Release") {
                Some(r) => format!("{v}-{r}"),
                None => v,
            }
        };
        let installed = blocks.iter().find(|(s, m)| {
            s.starts_with("installed") || m.get("Repository").is_some_and(|r| r.starts_with('@'))
        });
        let available = blocks.iter().find(|(s, m)| {
            s.starts_with("available") || m.get("Repository").is_some_and(|r| !r.starts_with('@'))
        });
        let main = installed
            .or(available)
            .map(|(_, m)| m.clone())
            .unwrap_or_default();
        Ok(Some(Details {
            name: name.to_owned(),
            installed: installed.map(|(_, m)| ver(m)),
            candidate: available.map(|(_, m)| ver(m)),
            size: main
                .get("Installed size")
                .or_else(|| main.get("Size"))
                .and_then(|s| parse_size(s)),
            section: None,
            homepage: main.get("URL").cloned(),
            summary: main.get("Summary").cloned(),
            long: main.get("Description").cloned(),
            depends: None,
        }))
    }

    fn installed(&self, ctx: &Ctx<'_>) -> Result<Vec<Installed>> {
        let out = ctx.run_read_only(
            &[
                "rpm",
                "-qa",
                "--qf",
                "%{NAME}\\t%{VERSION}-%{RELEASE}\\t%{ARCH}\\t%{SIZE}\\t%{SUMMARY}\\n",
            ],
            RunOpts::default(),
        )?;
        if !out.success() {
            return Err(failed("rpm -qa", &out));
        }
        Ok(parse_rpm_list(&out.stdout_text()))
    }

    fn upgradable(&self, ctx: &Ctx<'_>) -> Result<Vec<Upgrade>> {
        // Exit 100 means "updates available", 0 "none".
        let out = ctx.run_read_only(&["dnf", "-q", "check-update"], RunOpts::default())?;
        if !matches!(out.code, Some(0) | Some(100)) {
            return Err(failed("dnf check-update", &out));
        }
        let installed: BTreeMap<String, String> = self
            .installed(ctx)?
            .into_iter()
            .map(|p| (p.name, p.version))
            .collect();
        Ok(parse_check_update(&out.stdout_text())
            .into_iter()
            .map(|(name, candidate, source)| Upgrade {
                version: installed.get(&name).cloned().unwrap_or_default(),
                name,
                candidate,
                source,
            })
            .collect())
    }

    fn plan(&self, ctx: &Ctx<'_>, names: &[&str], install: bool) -> Result<Plan> {
        let mut argv = vec![
            "dnf",
            "--assumeno",
            if install { "install" } else { "remove" },
            "--",
        ];
        argv.extend_from_slice(names);
        let out = ctx.run_read_only(&argv, RunOpts::default())?;
        let text = format!("{}\n{}", out.stdout_text(), out.stderr_text());
        if let Some(e) = text
            .lines()
            .find(|l| l.starts_with("Error:") || l.starts_with("No match for argument"))
        {
            return Err(ToolError::Failed(format!(
                "dnf cannot {} {}: {e}",
                if install { "install" } else { "remove" },
                names.join(" ")
            )));
        }
        let installed: BTreeMap<String, String> = self
            .installed(ctx)?
            .into_iter()
            .map(|p| (p.name, p.version))
            .collect();
        let mut p = Plan::default();
        for (section, name, version) in parse_transaction(&out.stdout_text()) {
            if section.starts_with("removing") {
                p.remove.push((name, version));
            } else if section.starts_with("upgrading") || section.starts_with("downgrading") {
                let from = installed.get(&name).cloned().unwrap_or_default();
                p.upgrade.push((name, from, version));
            } else if section.starts_with("installing") {
                p.install.push((name, version));
            }
        }
        Ok(p)
    }

    fn apply(&self, ctx: &Ctx<'_>, names: &[&str], install: bool) -> Result<ExecOutcome> {
        let mut argv = vec![
            "dnf",
            "-y",
            if install { "install" } else { "remove" },
            "--",
        ];
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
        sources::dnf_hosts()
    }

    fn write_paths(&self) -> &'static [&'static str] {
        WRITE_PATHS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transaction_table() {
        let t = "Dependencies resolved.
================================================================================
 Package             Architecture  Version              Repository      Size
================================================================================
Installing:
 hello               x86_64        2.12.1-2.fc39        fedora          86 k
Installing dependencies:
 a-very-long-package-name-that-wraps
                     noarch        1.0-1.fc39           updates         10 k
Upgrading:
 bash                x86_64        5.2.26-1.fc39        updates        1.8 M
Removing:
 old                 noarch        0.1-1                @System         1 k

Transaction Summary
================================================================================
Install  2 Packages
Operation aborted.
";
        let rows = parse_transaction(t);
        assert_eq!(
            rows,
            vec![
                ("installing".into(), "hello".into(), "2.12.1-2.fc39".into()),
                (
                    "installing dependencies".into(),
                    "a-very-long-package-name-that-wraps".into(),
                    "1.0-1.fc39".into()
                ),
                ("upgrading".into(), "bash".into(), "5.2.26-1.fc39".into()),
                ("removing".into(), "old".into(), "0.1-1".into()),
            ]
        );
    }

    #[test]
    fn search_and_updates() {
        let s = parse_search(
            "======== Name Exactly Matched: hello ========\nhello.x86_64 : Prints a familiar, friendly greeting\n",
        );
        assert_eq!(s[0].name, "hello");
        let u = parse_check_update(
            "\nbash.x86_64    5.2.26-1.fc39    updates\nkernel.x86_64  6.8.9-100.fc39   updates\n",
        );
        assert_eq!(
            u[0],
            ("bash".into(), "5.2.26-1.fc39".into(), "updates".into())
        );
    }

    #[test]
    fn info_blocks_and_sizes() {
        let t = "Installed Packages\nName         : bash\nVersion      : 5.2.21\nRelease      : 1.fc39\nSize         : 7.9 M\nRepository   : @System\nSummary      : The GNU Bourne Again shell\nDescription  : The GNU Bourne Again shell (Bash) is a shell\n             : compatible with sh.\n\nAvailable Packages\nName         : bash\nVersion      : 5.2.26\nRelease      : 1.fc39\nRepository   : updates\n";
        let b = parse_info(t);
        assert_eq!(b.len(), 2);
        assert_eq!(b[0].0, "installed packages");
        assert!(b[0].1["Description"].ends_with("compatible with sh."));
        assert_eq!(parse_size("7.9 M"), Some((7.9 * 1024.0 * 1024.0) as u64));
        assert_eq!(parse_size("86 k"), Some(86 * 1024));
    }

    #[test]
    fn rpm_list() {
        let p = parse_rpm_list(
            "bash\t5.2.21-1.fc39\tx86_64\t8000000\tThe GNU shell\ngpg-pubkey\t1-1\t(none)\t0\tkey\n",
        );
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].size, Some(8_000_000));
    }
}
