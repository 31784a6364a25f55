//! apt / dpkg (Debian, Ubuntu): `apt-cache` and `dpkg-query` for reads, `apt-get -s` to
//! simulate a transaction, `apt-get -y` to run it.

use std::time::Duration;

use kernos_core::ExecOutcome;

use super::{Details, Hit, Installed, Manager, Plan, Upgrade, failed, sources};
use crate::ctx::{Ctx, RunOpts};
use crate::error::{Result, ToolError};

pub(crate) struct Apt;

/// Everything dpkg, apt and maintainer scripts write while installing or removing.
const WRITE_PATHS: &[&str] = &[
    "/usr",
    // Kernel and bootloader packages install into /boot.
    "/boot",
    "/etc",
    "/opt",
    "/bin",
    "/sbin",
    "/lib",
    "/var/lib/dpkg",
    "/var/lib/apt",
    "/var/lib",
    "/var/cache/apt",
    "/var/cache",
    "/var/log/apt",
    "/var/log",
    "/run",
];

/// Same options for the simulation and the real run, so they plan the same transaction.
fn apt_get_args<'a>(install: bool, simulate: bool, names: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["apt-get", "-q"];
    if simulate {
        v.push("-s");
    } else {
        v.extend([
            "-y",
            // Keep changed configuration files and never ask about them.
            "-o",
            "Dpkg::Options::=--force-confdef",
            "-o",
            "Dpkg::Options::=--force-confold",
        ]);
    }
    v.push(if install { "install" } else { "remove" });
    v.push("--");
    v.extend_from_slice(names);
    v
}

fn read(ctx: &Ctx<'_>, argv: &[&str]) -> Result<ExecOutcome> {
    ctx.run_read_only(argv, RunOpts::default())
}

/// `apt-cache search` lines: `name - description`.
pub(crate) fn parse_search(text: &str) -> Vec<Hit> {
    text.lines()
        .filter_map(|l| {
            let (n, d) = l.split_once(" - ")?;
            Some(Hit {
                name: n.trim().to_owned(),
                description: d.trim().to_owned(),
            })
        })
        .collect()
}

/// `dpkg-query -W -f='${db:Status-Abbrev}\t${Package}\t${Architecture}\t${Version}\t${Installed-Size}\t${binary:Summary}\n'`.
const LIST_FORMAT: &str = "${db:Status-Abbrev}\t${Package}\t${Architecture}\t${Version}\t${Installed-Size}\t${binary:Summary}\n";

/// Installed packages from [`LIST_FORMAT`] output. Packages of a foreign architecture are
/// named `name:arch`, as apt names them.
pub(crate) fn parse_installed(text: &str) -> Vec<Installed> {
    let rows: Vec<Vec<&str>> = text.lines().map(|l| l.split('\t').collect()).collect();
    // dpkg itself is always of the native architecture.
    let native = rows
        .iter()
        .find(|r| r.get(1) == Some(&"dpkg"))
        .and_then(|r| r.get(2).copied())
        .unwrap_or("");
    rows.iter()
        .filter(|r| r.len() >= 6 && r[0].chars().nth(1) == Some('i'))
        .map(|r| {
            let arch = r[2];
            let name = if arch == native || arch == "all" || native.is_empty() {
                r[1].to_owned()
            } else {
                format!("{}:{arch}", r[1])
            };
            Installed {
                name,
                version: r[3].to_owned(),
                arch: arch.to_owned(),
                size: r[4].trim().parse::<u64>().ok().map(|k| k * 1024),
                description: r[5].to_owned(),
            }
        })
        .collect()
}

/// `apt-get -s` output: the `Inst` and `Remv` lines.
pub(crate) fn parse_simulation(text: &str) -> Plan {
    let mut p = Plan::default();
    for l in text.lines() {
        if let Some(rest) = l.strip_prefix("Inst ") {
            let mut it = rest.splitn(2, ' ');
            let Some(name) = it.next() else { continue };
            let rest = it.next().unwrap_or("");
            let (old, rest) = match rest.strip_prefix('[') {
                Some(r) => match r.split_once("] ") {
                    Some((o, r)) => (Some(o), r),
                    None => (None, rest),
                },
                None => (None, rest),
            };
            let new = rest
                .strip_prefix('(')
                .and_then(|r| r.split_whitespace().next())
                .unwrap_or("")
                .to_owned();
            match old {
                Some(o) => p.upgrade.push((name.to_owned(), o.to_owned(), new)),
                None => p.install.push((name.to_owned(), new)),
            }
        } else if let Some(rest) = l.strip_prefix("Remv ") {
            let mut it = rest.split_whitespace();
            let Some(name) = it.next() else { continue };
            let ver = it
                .next()
                .map(|v| v.trim_matches(['[', ']']).to_owned())
                .unwrap_or_default();
            p.remove.push((name.to_owned(), ver));
        }
    }
    p
}

/// Upgrades from an `apt-get -s dist-upgrade`: `Inst name [old] (new Origin:ver/suite [arch])`.
pub(crate) fn parse_upgrades(text: &str) -> Vec<Upgrade> {
    text.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("Inst ")?;
            let (name, rest) = rest.split_once(' ')?;
            let (old, rest) = rest.strip_prefix('[')?.split_once("] ")?;
            let inner = rest.strip_prefix('(')?;
            let inner = &inner[..inner.find(')')?];
            let (new, src) = inner.split_once(' ').unwrap_or((inner, ""));
            let src = src.rsplit_once(" [").map_or(src, |(s, _)| s);
            Some(Upgrade {
                name: name.to_owned(),
                version: old.to_owned(),
                candidate: new.to_owned(),
                source: src.trim().to_owned(),
            })
        })
        .collect()
}

/// The first record of `apt-cache show`: field → value (continuation lines joined with
/// newlines; a lone `.` is an empty line).
pub(crate) fn parse_record(text: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.is_empty() {
            break;
        }
        if let Some(cont) = line.strip_prefix(' ') {
            if let Some(last) = out.last_mut() {
                last.1.push('\n');
                last.1.push_str(if cont == "." { "" } else { cont });
            }
            continue;
        }
        if let Some((k, v)) = line.split_once(':') {
            out.push((k.to_owned(), v.trim().to_owned()));
        }
    }
    out
}

/// `Candidate:` of `apt-cache policy`.
pub(crate) fn parse_candidate(text: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.trim().strip_prefix("Candidate:"))
        .map(|c| c.trim().to_owned())
        .filter(|c| c != "(none)" && !c.is_empty())
}

/// Debian policy: lower-case letters, digits, `+ - .`, at least two characters, starting
/// with a letter or digit; optionally `:arch`.
fn debian_name(n: &str) -> bool {
    let (pkg, arch) = match n.split_once(':') {
        Some((p, a)) => (p, Some(a)),
        None => (n, None),
    };
    let pkg_ok = pkg.len() >= 2
        && pkg
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && pkg
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.".contains(c));
    let arch_ok = arch.is_none_or(|a| {
        !a.is_empty()
            && a.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    });
    pkg_ok && arch_ok
}

impl Manager for Apt {
    fn name(&self) -> &'static str {
        "apt"
    }

    fn valid_name(&self, n: &str) -> bool {
        debian_name(n)
    }

    fn name_rule(&self) -> &'static str {
        "lower-case letters, digits and + - . (at least two characters, e.g. nginx, libssl3, g++), optionally :arch"
    }

    fn search(&self, ctx: &Ctx<'_>, words: &[&str]) -> Result<Vec<Hit>> {
        let mut argv = vec!["apt-cache", "search", "--"];
        argv.extend_from_slice(words);
        let out = read(ctx, &argv)?;
        if !out.success() {
            return Err(failed("apt-cache search", &out));
        }
        Ok(parse_search(&out.stdout_text()))
    }

    fn info(&self, ctx: &Ctx<'_>, name: &str) -> Result<Option<Details>> {
        let f = "${db:Status-Abbrev}\t${Version}\t${Installed-Size}\t${Section}\t${Homepage}\t${binary:Summary}\n";
        let q = read(ctx, &["dpkg-query", "-W", "-f", f, "--", name])?;
        let mut d = Details {
            name: name.to_owned(),
            ..Details::default()
        };
        let mut known = false;
        if q.success() {
            if let Some(l) = q.stdout_text().lines().next() {
                let c: Vec<&str> = l.split('\t').collect();
                if c.len() >= 6 && c[0].chars().nth(1) == Some('i') {
                    known = true;
                    d.installed = Some(c[1].to_owned());
                    d.size = c[2].trim().parse::<u64>().ok().map(|k| k * 1024);
                    d.section = Some(c[3].to_owned()).filter(|s| !s.is_empty());
                    d.homepage = Some(c[4].to_owned()).filter(|s| !s.is_empty());
                    d.summary = Some(c[5].to_owned()).filter(|s| !s.is_empty());
                }
            }
        }
        let show = read(ctx, &["apt-cache", "show", "--no-all-versions", "--", name])?;
        if show.success() {
            let rec = parse_record(&show.stdout_text());
            let get = |k: &str| rec.iter().find(|(f, _)| f == k).map(|(_, v)| v.clone());
            if !rec.is_empty() {
                known = true;
            }
            if let Some(desc) = get("Description") {
                let mut lines = desc.splitn(2, '\n');
                let first = lines.next().unwrap_or("").to_owned();
                if d.summary.is_none() && !first.is_empty() {
                    d.summary = Some(first);
                }
                d.long = lines
                    .next()
                    .map(str::to_owned)
                    .filter(|s| !s.trim().is_empty());
            }
            if d.size.is_none() {
                d.size = get("Installed-Size")
                    .and_then(|s| s.parse::<u64>().ok())
                    .map(|k| k * 1024);
            }
            d.section = d.section.or_else(|| get("Section"));
            d.homepage = d.homepage.or_else(|| get("Homepage"));
            d.depends = get("Depends");
        }
        let pol = read(ctx, &["apt-cache", "policy", "--", name])?;
        if pol.success() {
            d.candidate = parse_candidate(&pol.stdout_text());
        }
        Ok(known.then_some(d))
    }

    fn installed(&self, ctx: &Ctx<'_>) -> Result<Vec<Installed>> {
        let out = read(ctx, &["dpkg-query", "-W", "-f", LIST_FORMAT])?;
        if !out.success() {
            return Err(failed("dpkg-query", &out));
        }
        Ok(parse_installed(&out.stdout_text()))
    }

    fn upgradable(&self, ctx: &Ctx<'_>) -> Result<Vec<Upgrade>> {
        let out = read(ctx, &["apt-get", "-q", "-s", "dist-upgrade"])?;
        if !out.success() {
            return Err(failed("apt-get -s dist-upgrade", &out));
        }
        Ok(parse_upgrades(&out.stdout_text()))
    }

    fn plan(&self, ctx: &Ctx<'_>, names: &[&str], install: bool) -> Result<Plan> {
        let argv = apt_get_args(install, true, names);
        let out = read(ctx, &argv)?;
        if !out.success() {
            let errs: Vec<String> = out
                .stderr_text()
                .lines()
                .filter_map(|l| l.strip_prefix("E: ").map(str::to_owned))
                .collect();
            if !errs.is_empty() {
                let hint = if errs.iter().any(|e| e.contains("Unable to locate")) {
                    "; `pkg.search` finds the right name"
                } else {
                    ""
                };
                return Err(ToolError::Failed(format!(
                    "apt cannot {} {}: {}{hint}",
                    if install { "install" } else { "remove" },
                    names.join(" "),
                    errs.join("; ")
                )));
            }
            return Err(failed("apt-get -s", &out));
        }
        Ok(parse_simulation(&out.stdout_text()))
    }

    fn apply(&self, ctx: &Ctx<'_>, names: &[&str], install: bool) -> Result<ExecOutcome> {
        let argv = apt_get_args(install, false, names);
        ctx.run(
            &argv,
            RunOpts {
                env: vec![
                    ("DEBIAN_FRONTEND".into(), "noninteractive".into()),
                    ("APT_LISTCHANGES_FRONTEND".into(), "none".into()),
                    // Ubuntu's needrestart would otherwise ask which services to restart.
                    ("NEEDRESTART_MODE".into(), "l".into()),
                ],
                timeout: Some(Duration::from_secs(30 * 60)),
                ..RunOpts::default()
            },
        )
    }

    fn hosts(&self) -> Vec<(String, Option<u16>)> {
        sources::apt_hosts()
    }

    fn write_paths(&self) -> &'static [&'static str] {
        WRITE_PATHS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Captured on this machine (Debian 12), trimmed.
    const SIM_INSTALL: &str = "Reading package lists...
Building dependency tree...
Reading state information...
The following additional packages will be installed:
  libtext-charwidth-perl
The following NEW packages will be installed:
  cowsay libtext-charwidth-perl
0 upgraded, 2 newly installed, 0 to remove and 132 not upgraded.
Inst libtext-charwidth-perl (0.04-11 Debian:12.15/oldstable [amd64])
Inst cowsay (3.03+dfsg2-8 Debian:12.15/oldstable [all])
Conf libtext-charwidth-perl (0.04-11 Debian:12.15/oldstable [amd64])
Conf cowsay (3.03+dfsg2-8 Debian:12.15/oldstable [all])
";

    const SIM_UPGRADE: &str = "Inst bash [5.2.15-2+b8] (5.2.15-2+b13 Debian:12.15/oldstable [amd64])
Conf bash (5.2.15-2+b13 Debian:12.15/oldstable [amd64])
Inst libgcrypt20-dev [1.10.1-3] (1.10.1-3+deb12u1 Debian:12.15/oldstable, Debian-Security:12/oldstable-security [amd64]) []
";

    const SIM_REMOVE: &str = "The following packages will be REMOVED:
  libpq-dev libpq5 postgresql postgresql-15 postgresql-client-15
  postgresql-contrib
0 upgraded, 0 newly installed, 6 to remove and 126 not upgraded.
Remv libpq-dev [15.18-0+deb12u1]
Remv postgresql [15+248+deb12u1]
Remv postgresql-contrib [15+248+deb12u1]
Remv postgresql-15 [15.18-0+deb12u1]
Remv postgresql-client-15 [15.18-0+deb12u1]
Remv libpq5 [15.18-0+deb12u1]
";

    #[test]
    fn simulated_install_lists_new_packages_with_dependencies() {
        let p = parse_simulation(SIM_INSTALL);
        assert_eq!(
            p.install,
            vec![
                ("libtext-charwidth-perl".into(), "0.04-11".into()),
                ("cowsay".into(), "3.03+dfsg2-8".into())
            ]
        );
        assert!(p.upgrade.is_empty() && p.remove.is_empty());
    }

    #[test]
    fn simulated_upgrades_and_removals() {
        let p = parse_simulation(SIM_UPGRADE);
        assert_eq!(
            p.upgrade[0],
            ("bash".into(), "5.2.15-2+b8".into(), "5.2.15-2+b13".into())
        );
        assert_eq!(p.upgrade.len(), 2);
        let p = parse_simulation(SIM_REMOVE);
        assert_eq!(p.remove.len(), 6);
        assert_eq!(p.remove[5], ("libpq5".into(), "15.18-0+deb12u1".into()));
    }

    #[test]
    fn upgrades_from_dist_upgrade() {
        let u = parse_upgrades(SIM_UPGRADE);
        assert_eq!(u.len(), 2);
        assert_eq!(u[0].name, "bash");
        assert_eq!(u[0].version, "5.2.15-2+b8");
        assert_eq!(u[0].candidate, "5.2.15-2+b13");
        assert_eq!(u[0].source, "Debian:12.15/oldstable");
        assert_eq!(
            u[1].source,
            "Debian:12.15/oldstable, Debian-Security:12/oldstable-security"
        );
    }

    #[test]
    fn installed_list_names_foreign_architectures() {
        let t = "ii \tbash\tamd64\t5.2.15-2+b8\t7164\tGNU Bourne Again SHell\n\
                 ii \tdpkg\tamd64\t1.21.22\t6400\tDebian package management system\n\
                 ii \tlibc6\ti386\t2.36-9\t12000\tGNU C Library: Shared libraries\n\
                 rc \told\tamd64\t1.0\t10\tremoved, config left\n\
                 ii \ttzdata\tall\t2024a-0\t3000\ttime zone data\n";
        let p = parse_installed(t);
        let names: Vec<&str> = p.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, vec!["bash", "dpkg", "libc6:i386", "tzdata"]);
        assert_eq!(p[0].size, Some(7164 * 1024));
        assert_eq!(p[0].description, "GNU Bourne Again SHell");
    }

    #[test]
    fn search_lines() {
        let h = parse_search(
            "hello - example package based on GNU hello\nhello-traditional - example package not using any helper package\n",
        );
        assert_eq!(h.len(), 2);
        assert_eq!(h[0].name, "hello");
        assert_eq!(h[0].description, "example package based on GNU hello");
    }

    #[test]
    fn show_records_and_policy() {
        let show = "Package: hello\nVersion: 2.10-3\nInstalled-Size: 277\nDepends: libc6 (>= 2.34)\nDescription: example package based on GNU hello\n The GNU hello program.\n .\n It is an example.\nHomepage: https://www.gnu.org/software/hello/\n\nPackage: hello\nVersion: 2.9\n";
        let r = parse_record(show);
        let get = |k: &str| r.iter().find(|(f, _)| f == k).map(|(_, v)| v.as_str());
        assert_eq!(get("Version"), Some("2.10-3"));
        assert_eq!(
            get("Description"),
            Some("example package based on GNU hello\nThe GNU hello program.\n\nIt is an example.")
        );
        let pol =
            "hello:\n  Installed: (none)\n  Candidate: 2.10-3\n  Version table:\n     2.10-3 500\n";
        assert_eq!(parse_candidate(pol).as_deref(), Some("2.10-3"));
        assert_eq!(
            parse_candidate("x:\n  Installed: (none)\n  Candidate: (none)\n"),
            None
        );
    }

    #[test]
    fn simulation_and_run_use_the_same_transaction() {
        let sim = apt_get_args(true, true, &["hello"]);
        let run = apt_get_args(true, false, &["hello"]);
        assert_eq!(sim, vec!["apt-get", "-q", "-s", "install", "--", "hello"]);
        assert_eq!(run.last(), Some(&"hello"));
        assert!(run.contains(&"-y") && run.contains(&"--"));
        let sep = run.iter().position(|a| *a == "--").unwrap();
        assert_eq!(run[sep - 1], "install");
    }
}
