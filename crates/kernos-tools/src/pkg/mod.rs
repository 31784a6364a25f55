//! The `pkg` tool: system packages through the machine's package manager.
//!
//! Backends, detected at run time in this order: **apt** (`apt-get`, `apt-cache`,
//! `dpkg-query`; implemented and tested fully), **dnf** and **pacman** (search, info, list,
//! upgradable, install, remove; written against their documented output formats but *untested*
//! here, since this machine is Debian). No manager → a clear error.
//!
//! Package names are checked against the backend's naming rules before they reach any command
//! line, and are passed after `--`, so a name can never become an option (`-o…`).
//!
//! `install` and `remove` first simulate (`apt-get -s`) to learn exactly which packages the
//! transaction adds, upgrades and removes, dependencies included. Their effects name every one
//! of those packages (privileged, write or delete), the hosts of the configured repositories
//! (network, install only) and the package manager's directories (write), so policy sees the
//! whole transaction and the sandbox allows exactly it. `install` records the inverse —
//! `pkg.remove` of exactly the packages that were not installed before — before it acts, and
//! runs non-interactively. `remove` is irreversible: configuration and state the package
//! leaves behind or deletes cannot be restored faithfully.
//!
//! Output rows:
//! - `search`: `name`, `installed`, `version` (installed), `description`
//! - `info`: `name`, `installed`, `version`, `candidate`, `size`, `section`, `homepage`,
//!   `description` (and the long description as text)
//! - `list`: `name`, `version`, `arch`, `size`, `description`
//! - `upgradable`: `name`, `version`, `candidate`, `source`
//! - `install` / `remove`: `name`, `version`, `change` (`installed`, `upgraded`, `removed`)

mod apt;
mod dnf;
mod pacman;
mod sources;

use std::collections::BTreeMap;

use kernos_core::{ColumnKind, Effect, EffectKind, ExecOutcome, Reversibility, Target};
use serde_json::json;

use crate::args::{NoArgs, PkgInfo, PkgList, PkgNames, PkgSearch};
use crate::ctx::Ctx;
use crate::error::{Result, ToolError};
use crate::output::{Change, Output, row};
use crate::probe::which;
use crate::registry::{Action, Meta, Registry};
use crate::undo::Recorder;

pub use sources::{apt_hosts, parse_apt_sources};

/// Registers the `pkg` actions.
pub fn register(r: &mut Registry) {
    r.register(Search);
    r.register(Info);
    r.register(List);
    r.register(Upgradable);
    r.register(Install);
    r.register(Remove);
}

/// Most search results returned (best matches first).
const MAX_RESULTS: usize = 200;

/// A search hit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Hit {
    name: String,
    description: String,
}

/// What `info` knows about a package.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Details {
    name: String,
    installed: Option<String>,
    candidate: Option<String>,
    size: Option<u64>,
    section: Option<String>,
    homepage: Option<String>,
    summary: Option<String>,
    long: Option<String>,
    depends: Option<String>,
}

/// An installed package.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Installed {
    name: String,
    version: String,
    arch: String,
    size: Option<u64>,
    description: String,
}

/// An available upgrade.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Upgrade {
    name: String,
    version: String,
    candidate: String,
    source: String,
}

/// What a transaction would do, from the manager's own simulation.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Plan {
    /// Newly installed: (name, version).
    install: Vec<(String, String)>,
    /// Upgraded: (name, from, to).
    upgrade: Vec<(String, String, String)>,
    /// Removed: (name, version).
    remove: Vec<(String, String)>,
}

impl Plan {
    fn is_empty(&self) -> bool {
        self.install.is_empty() && self.upgrade.is_empty() && self.remove.is_empty()
    }

    /// The changes, in the order execute reports them: installs and upgrades by name, then
    /// removals by name.
    fn changes(&self) -> Vec<Change> {
        let mut inst: Vec<&str> = self
            .install
            .iter()
            .map(|p| p.0.as_str())
            .chain(self.upgrade.iter().map(|p| p.0.as_str()))
            .collect();
        inst.sort_unstable();
        let mut rem: Vec<&str> = self.remove.iter().map(|p| p.0.as_str()).collect();
        rem.sort_unstable();
        inst.into_iter()
            .map(|n| Change::PackageInstall { name: n.to_owned() })
            .chain(
                rem.into_iter()
                    .map(|n| Change::PackageRemove { name: n.to_owned() }),
            )
            .collect()
    }

    /// What actually happened between two snapshots of the installed packages.
    fn diff(before: &BTreeMap<String, String>, after: &BTreeMap<String, String>) -> Plan {
        let mut p = Plan::default();
        for (n, v) in after {
            match before.get(n) {
                None => p.install.push((n.clone(), v.clone())),
                Some(old) if old != v => p.upgrade.push((n.clone(), old.clone(), v.clone())),
                _ => {}
            }
        }
        for (n, v) in before {
            if !after.contains_key(n) {
                p.remove.push((n.clone(), v.clone()));
            }
        }
        p
    }

    fn rows(&self) -> Vec<serde_json::Map<String, serde_json::Value>> {
        let mut v: Vec<(String, String, &str)> = Vec::new();
        v.extend(
            self.install
                .iter()
                .map(|(n, ver)| (n.clone(), ver.clone(), "installed")),
        );
        v.extend(
            self.upgrade
                .iter()
                .map(|(n, _, to)| (n.clone(), to.clone(), "upgraded")),
        );
        v.extend(
            self.remove
                .iter()
                .map(|(n, ver)| (n.clone(), ver.clone(), "removed")),
        );
        v.sort();
        v.into_iter()
            .map(|(n, ver, c)| {
                row([
                    ("name", json!(n)),
                    ("version", json!(ver)),
                    ("change", json!(c)),
                ])
            })
            .collect()
    }

    fn summary(&self) -> String {
        let names = |v: Vec<&str>| v.join(", ");
        let mut parts = Vec::new();
        if !self.install.is_empty() {
            parts.push(format!(
                "installed {} ({})",
                self.install.len(),
                names(self.install.iter().map(|p| p.0.as_str()).collect())
            ));
        }
        if !self.upgrade.is_empty() {
            parts.push(format!(
                "upgraded {} ({})",
                self.upgrade.len(),
                names(self.upgrade.iter().map(|p| p.0.as_str()).collect())
            ));
        }
        if !self.remove.is_empty() {
            parts.push(format!(
                "removed {} ({})",
                self.remove.len(),
                names(self.remove.iter().map(|p| p.0.as_str()).collect())
            ));
        }
        if parts.is_empty() {
            "nothing changed".into()
        } else {
            parts.join("; ")
        }
    }
}

/// A package manager.
pub(crate) trait Manager {
    /// `apt`, `dnf`, `pacman`.
    fn name(&self) -> &'static str;
    /// Whether `n` follows the manager's package naming rules.
    fn valid_name(&self, n: &str) -> bool;
    /// An example of valid names, for error messages.
    fn name_rule(&self) -> &'static str;
    fn search(&self, ctx: &Ctx<'_>, words: &[&str]) -> Result<Vec<Hit>>;
    /// `None` when no repository and no installed package has that name.
    fn info(&self, ctx: &Ctx<'_>, name: &str) -> Result<Option<Details>>;
    fn installed(&self, ctx: &Ctx<'_>) -> Result<Vec<Installed>>;
    fn upgradable(&self, ctx: &Ctx<'_>) -> Result<Vec<Upgrade>>;
    /// Simulates installing (or removing) `names`.
    fn plan(&self, ctx: &Ctx<'_>, names: &[&str], install: bool) -> Result<Plan>;
    /// Does it, non-interactively.
    fn apply(&self, ctx: &Ctx<'_>, names: &[&str], install: bool) -> Result<ExecOutcome>;
    /// Repository hosts (and ports) an install downloads from.
    fn hosts(&self) -> Vec<(String, Option<u16>)>;
    /// Directories the manager and package scripts write.
    fn write_paths(&self) -> &'static [&'static str];
}

/// The machine's package manager.
pub(crate) fn manager() -> Result<Box<dyn Manager>> {
    if which("apt-get").is_some() && which("dpkg-query").is_some() {
        return Ok(Box::new(apt::Apt));
    }
    if which("dnf").is_some() && which("rpm").is_some() {
        return Ok(Box::new(dnf::Dnf));
    }
    if which("pacman").is_some() {
        return Ok(Box::new(pacman::Pacman));
    }
    Err(ToolError::Unavailable(
        "no supported package manager (apt, dnf or pacman) on this machine: pkg.* is unavailable"
            .into(),
    ))
}

/// Checks names before they reach any command line.
fn names<'a>(m: &dyn Manager, p: &'a PkgNames) -> Result<Vec<&'a str>> {
    let list = p.packages.list();
    if list.is_empty() {
        return Err(ToolError::InvalidArgs(
            "no packages given: name at least one".into(),
        ));
    }
    let mut out: Vec<&str> = Vec::new();
    for n in list {
        let n = check_name(m, n)?;
        if !out.contains(&n) {
            out.push(n);
        }
    }
    Ok(out)
}

fn check_name<'a>(m: &dyn Manager, n: &'a str) -> Result<&'a str> {
    if n.is_empty() || n.len() > 200 || n.starts_with('-') || !m.valid_name(n) {
        return Err(ToolError::InvalidArgs(format!(
            "{n:?} is not a valid {} package name: {}",
            m.name(),
            m.name_rule()
        )));
    }
    Ok(n)
}

fn installed_map(m: &dyn Manager, ctx: &Ctx<'_>) -> Result<BTreeMap<String, String>> {
    Ok(m.installed(ctx)?
        .into_iter()
        .map(|p| (p.name, p.version))
        .collect())
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The error for a failed manager command: its last lines, which say why.
pub(crate) fn failed(what: &str, out: &ExecOutcome) -> ToolError {
    let said = if out.stderr.is_empty() {
        out.stdout_text()
    } else {
        out.stderr_text()
    };
    let how = match (&out.stopped, out.code) {
        (Some(s), _) => format!(" ({s})"),
        (None, Some(c)) => format!(" (exit {c})"),
        _ => String::new(),
    };
    ToolError::Failed(format!("{what} failed{how}: {}", tail(&said, 8)))
}

fn read(kind: EffectKind) -> Vec<Effect> {
    vec![Effect {
        kind,
        target: Target::System,
    }]
}

// ------------------------------------------------------------------------------------ reads

/// `pkg.search`.
struct Search;

impl Action for Search {
    type Args = PkgSearch;

    fn meta(&self) -> Meta {
        Meta {
            tool: "pkg",
            name: "search",
            summary: "Search the configured repositories for packages by name or description",
            effects: &[EffectKind::Read],
            reversibility: Reversibility::ReadOnly,
            output: &[
                ("name", ColumnKind::Text),
                ("installed", ColumnKind::Bool),
                ("version", ColumnKind::Text),
                ("description", ColumnKind::Text),
            ],
        }
    }

    fn effects(&self, args: &PkgSearch, _ctx: &Ctx<'_>) -> Result<Vec<Effect>> {
        query_words(&args.query)?;
        Ok(read(EffectKind::Read))
    }

    fn execute(&self, args: &PkgSearch, ctx: &Ctx<'_>, _undo: &mut Recorder<'_>) -> Result<Output> {
        let words = query_words(&args.query)?;
        let m = manager()?;
        let mut hits = m.search(ctx, &words)?;
        let installed = installed_map(m.as_ref(), ctx)?;
        let q = args.query.trim().to_ascii_lowercase();
        // Best first: the exact name, names starting with the query, names containing it,
        // then description matches; alphabetical within each.
        hits.sort_by_key(|h| {
            let n = h.name.to_ascii_lowercase();
            let rank = if n == q {
                0
            } else if n.starts_with(&q) {
                1
            } else if n.contains(&q) {
                2
            } else {
                3
            };
            (rank, h.name.clone())
        });
        let total = hits.len();
        let truncated = total > MAX_RESULTS;
        let rows = hits
            .into_iter()
            .take(MAX_RESULTS)
            .map(|h| {
                let v = installed.get(&h.name);
                row([
                    ("name", json!(h.name)),
                    ("installed", json!(v.is_some())),
                    ("version", json!(v)),
                    ("description", json!(h.description)),
                ])
            })
            .collect::<Vec<_>>();
        let summary = if truncated {
            format!("{total} packages match; showing the best {MAX_RESULTS}")
        } else {
            format!("{total} packages match")
        };
        Ok(Output {
            rows,
            summary: Some(summary),
            truncated,
            ..Output::default()
        })
    }
}

fn query_words(q: &str) -> Result<Vec<&str>> {
    let words: Vec<&str> = q.split_whitespace().collect();
    if words.is_empty() || q.len() > 200 || q.contains('\0') {
        return Err(ToolError::InvalidArgs(
            "search query must be one to a few words (at most 200 characters)".into(),
        ));
    }
    Ok(words)
}

/// `pkg.info`.
struct Info;

impl Action for Info {
    type Args = PkgInfo;

    fn meta(&self) -> Meta {
        Meta {
            tool: "pkg",
            name: "info",
            summary: "Show one package: installed or not, versions, size, description",
            effects: &[EffectKind::Read],
            reversibility: Reversibility::ReadOnly,
            output: &[
                ("name", ColumnKind::Text),
                ("installed", ColumnKind::Bool),
                ("version", ColumnKind::Text),
                ("candidate", ColumnKind::Text),
                ("size", ColumnKind::Bytes),
                ("section", ColumnKind::Text),
                ("homepage", ColumnKind::Text),
                ("description", ColumnKind::Text),
            ],
        }
    }

    fn effects(&self, args: &PkgInfo, _ctx: &Ctx<'_>) -> Result<Vec<Effect>> {
        let m = manager()?;
        let n = check_name(m.as_ref(), &args.name)?;
        Ok(vec![Effect {
            kind: EffectKind::Read,
            target: Target::Package { name: n.to_owned() },
        }])
    }

    fn execute(&self, args: &PkgInfo, ctx: &Ctx<'_>, _undo: &mut Recorder<'_>) -> Result<Output> {
        let m = manager()?;
        let n = check_name(m.as_ref(), &args.name)?;
        let Some(d) = m.info(ctx, n)? else {
            return Err(ToolError::Failed(format!(
                "no package named {n} is installed or in the configured repositories; `pkg.search {n}` finds similar names"
            )));
        };
        let mut text = String::new();
        if let Some(s) = &d.summary {
            text.push_str(s);
            text.push('\n');
        }
        if let Some(l) = &d.long {
            text.push_str(l);
            text.push('\n');
        }
        if let Some(dep) = &d.depends {
            text.push_str(&format!("Depends: {dep}\n"));
        }
        let summary = match (&d.installed, &d.candidate) {
            (Some(v), Some(c)) if v != c => format!("{n} {v} installed; {c} available"),
            (Some(v), _) => format!("{n} {v} installed"),
            (None, Some(c)) => format!("{n} not installed; {c} available"),
            (None, None) => format!("{n} not installed"),
        };
        let r = row([
            ("name", json!(d.name)),
            ("installed", json!(d.installed.is_some())),
            ("version", json!(d.installed)),
            ("candidate", json!(d.candidate)),
            ("size", json!(d.size)),
            ("section", json!(d.section)),
            ("homepage", json!(d.homepage)),
            ("description", json!(d.summary)),
        ]);
        Ok(Output {
            rows: vec![r],
            text: Some(text),
            summary: Some(summary),
            ..Output::default()
        })
    }
}

/// `pkg.list`.
struct List;

impl Action for List {
    type Args = PkgList;

    fn meta(&self) -> Meta {
        Meta {
            tool: "pkg",
            name: "list",
            summary: "List installed packages, optionally only names containing a pattern",
            effects: &[EffectKind::Read],
            reversibility: Reversibility::ReadOnly,
            output: &[
                ("name", ColumnKind::Text),
                ("version", ColumnKind::Text),
                ("arch", ColumnKind::Text),
                ("size", ColumnKind::Bytes),
                ("description", ColumnKind::Text),
            ],
        }
    }

    fn effects(&self, _args: &PkgList, _ctx: &Ctx<'_>) -> Result<Vec<Effect>> {
        Ok(read(EffectKind::Read))
    }

    fn execute(&self, args: &PkgList, ctx: &Ctx<'_>, _undo: &mut Recorder<'_>) -> Result<Output> {
        let m = manager()?;
        let pat = args.pattern.as_deref().map(str::to_ascii_lowercase);
        let mut all = m.installed(ctx)?;
        all.sort_by(|a, b| a.name.cmp(&b.name));
        let total = all.len();
        let rows: Vec<_> = all
            .into_iter()
            .filter(|p| {
                pat.as_deref()
                    .is_none_or(|q| p.name.to_ascii_lowercase().contains(q))
            })
            .map(|p| {
                row([
                    ("name", json!(p.name)),
                    ("version", json!(p.version)),
                    ("arch", json!(p.arch)),
                    ("size", json!(p.size)),
                    ("description", json!(p.description)),
                ])
            })
            .collect();
        let summary = match &args.pattern {
            Some(q) => format!("{} of {total} installed packages match {q:?}", rows.len()),
            None => format!("{total} packages installed"),
        };
        Ok(Output::table(Vec::new(), rows).with_summary(summary))
    }
}

/// `pkg.upgradable`.
struct Upgradable;

impl Action for Upgradable {
    type Args = NoArgs;

    fn meta(&self) -> Meta {
        Meta {
            tool: "pkg",
            name: "upgradable",
            summary: "List installed packages with newer versions available (as of the last index refresh)",
            effects: &[EffectKind::Read],
            reversibility: Reversibility::ReadOnly,
            output: &[
                ("name", ColumnKind::Text),
                ("version", ColumnKind::Text),
                ("candidate", ColumnKind::Text),
                ("source", ColumnKind::Text),
            ],
        }
    }

    fn effects(&self, _args: &NoArgs, _ctx: &Ctx<'_>) -> Result<Vec<Effect>> {
        Ok(read(EffectKind::Read))
    }

    fn execute(&self, _args: &NoArgs, ctx: &Ctx<'_>, _undo: &mut Recorder<'_>) -> Result<Output> {
        let m = manager()?;
        let mut ups = m.upgradable(ctx)?;
        ups.sort_by(|a, b| a.name.cmp(&b.name));
        let n = ups.len();
        let rows = ups
            .into_iter()
            .map(|u| {
                row([
                    ("name", json!(u.name)),
                    ("version", json!(u.version)),
                    ("candidate", json!(u.candidate)),
                    ("source", json!(u.source)),
                ])
            })
            .collect();
        Ok(Output::table(Vec::new(), rows).with_summary(format!(
            "{n} packages can be upgraded (according to the package index as last refreshed)"
        )))
    }
}

// ---------------------------------------------------------------------------------- changes

const CHANGE_COLUMNS: &[(&str, ColumnKind)] = &[
    ("name", ColumnKind::Text),
    ("version", ColumnKind::Text),
    ("change", ColumnKind::Text),
];

fn change_effects(m: &dyn Manager, plan: &Plan, requested: &[&str], install: bool) -> Vec<Effect> {
    let mut v: Vec<Effect> = Vec::new();
    let mut push = |e: Effect| {
        if !v.contains(&e) {
            v.push(e);
        }
    };
    let pkg = |n: &str| Target::Package { name: n.to_owned() };
    let touched: Vec<&str> = requested
        .iter()
        .copied()
        .chain(plan.install.iter().map(|p| p.0.as_str()))
        .chain(plan.upgrade.iter().map(|p| p.0.as_str()))
        .collect();
    for n in &touched {
        push(Effect {
            kind: EffectKind::Privileged,
            target: pkg(n),
        });
        push(Effect {
            kind: if install {
                EffectKind::Write
            } else {
                EffectKind::Delete
            },
            target: pkg(n),
        });
    }
    for (n, _) in &plan.remove {
        push(Effect {
            kind: EffectKind::Privileged,
            target: pkg(n),
        });
        push(Effect {
            kind: EffectKind::Delete,
            target: pkg(n),
        });
    }
    for p in m.write_paths() {
        push(Effect::path(EffectKind::Write, *p, true));
    }
    if install && !(plan.install.is_empty() && plan.upgrade.is_empty()) {
        let hosts = m.hosts();
        if hosts.is_empty() {
            // No repository host could be read: the download needs some network.
            push(Effect {
                kind: EffectKind::Network,
                target: Target::Host {
                    host: "*".into(),
                    port: None,
                },
            });
        }
        for (h, port) in hosts {
            push(Effect {
                kind: EffectKind::Network,
                target: Target::Host { host: h, port },
            });
        }
    }
    v
}

fn needs_root(ctx: &Ctx<'_>, what: &str) -> Result<()> {
    if ctx.env.uid != 0 {
        return Err(ToolError::PermissionDenied {
            path: "/var/lib/dpkg".into(),
            hint: format!(
                "{what} packages needs root: run kernos as root (e.g. through its system service)"
            ),
        });
    }
    Ok(())
}

/// `pkg.install`.
struct Install;

impl Action for Install {
    type Args = PkgNames;

    fn meta(&self) -> Meta {
        Meta {
            tool: "pkg",
            name: "install",
            summary: "Install packages and their dependencies (undo removes exactly what was newly installed)",
            effects: &[
                EffectKind::Write,
                EffectKind::Network,
                EffectKind::Privileged,
            ],
            reversibility: Reversibility::Reversible,
            output: CHANGE_COLUMNS,
        }
    }

    fn effects(&self, args: &PkgNames, ctx: &Ctx<'_>) -> Result<Vec<Effect>> {
        let m = manager()?;
        let ns = names(m.as_ref(), args)?;
        let plan = m.plan(ctx, &ns, true)?;
        Ok(change_effects(m.as_ref(), &plan, &ns, true))
    }

    fn dry_run(&self, args: &PkgNames, ctx: &Ctx<'_>) -> Result<Vec<Change>> {
        let m = manager()?;
        let ns = names(m.as_ref(), args)?;
        Ok(m.plan(ctx, &ns, true)?.changes())
    }

    fn execute(&self, args: &PkgNames, ctx: &Ctx<'_>, undo: &mut Recorder<'_>) -> Result<Output> {
        let m = manager()?;
        let ns = names(m.as_ref(), args)?;
        let before = installed_map(m.as_ref(), ctx)?;
        let plan = m.plan(ctx, &ns, true)?;
        if plan.is_empty() {
            return Ok(Output::table(Vec::new(), Vec::new()).with_summary(format!(
                "{} already installed and up to date; nothing to do",
                ns.join(", ")
            )));
        }
        needs_root(ctx, "installing")?;
        // Exactly the packages that are new, as the undo: never one that was there before.
        let new: Vec<&str> = plan
            .install
            .iter()
            .map(|p| p.0.as_str())
            .filter(|n| !before.contains_key(*n))
            .collect();
        if !new.is_empty() {
            undo.inverse_step("pkg", "remove", json!({ "packages": new }))?;
        }
        let out = m.apply(ctx, &ns, true)?;
        let after = installed_map(m.as_ref(), ctx)?;
        let done = Plan::diff(&before, &after);
        if !out.success() {
            let mut e = failed(&format!("{} install {}", m.name(), ns.join(" ")), &out);
            if !done.is_empty() {
                if let ToolError::Failed(msg) = &mut e {
                    msg.push_str(&format!("\n(partly done: {})", done.summary()));
                }
            }
            return Err(e);
        }
        let mut summary = done.summary();
        if !done.upgrade.is_empty() {
            summary.push_str("; undo removes only the new packages, upgrades stay");
        }
        if !done.remove.is_empty() {
            summary.push_str("; undo cannot bring back the removed packages");
        }
        Ok(Output {
            rows: done.rows(),
            summary: Some(summary),
            changes: done.changes(),
            ..Output::default()
        })
    }
}

/// `pkg.remove`.
struct Remove;

impl Action for Remove {
    type Args = PkgNames;

    fn meta(&self) -> Meta {
        Meta {
            tool: "pkg",
            name: "remove",
            summary: "Remove packages (and packages that depend on them); cannot be undone",
            effects: &[
                EffectKind::Delete,
                EffectKind::Write,
                EffectKind::Privileged,
            ],
            reversibility: Reversibility::Irreversible,
            output: CHANGE_COLUMNS,
        }
    }

    fn effects(&self, args: &PkgNames, ctx: &Ctx<'_>) -> Result<Vec<Effect>> {
        let m = manager()?;
        let ns = names(m.as_ref(), args)?;
        let plan = m.plan(ctx, &ns, false)?;
        Ok(change_effects(m.as_ref(), &plan, &ns, false))
    }

    fn dry_run(&self, args: &PkgNames, ctx: &Ctx<'_>) -> Result<Vec<Change>> {
        let m = manager()?;
        let ns = names(m.as_ref(), args)?;
        Ok(m.plan(ctx, &ns, false)?.changes())
    }

    fn execute(&self, args: &PkgNames, ctx: &Ctx<'_>, _undo: &mut Recorder<'_>) -> Result<Output> {
        let m = manager()?;
        let ns = names(m.as_ref(), args)?;
        let before = installed_map(m.as_ref(), ctx)?;
        let plan = m.plan(ctx, &ns, false)?;
        if plan.is_empty() {
            return Ok(Output::table(Vec::new(), Vec::new())
                .with_summary(format!("{} not installed; nothing to do", ns.join(", "))));
        }
        needs_root(ctx, "removing")?;
        let out = m.apply(ctx, &ns, false)?;
        let after = installed_map(m.as_ref(), ctx)?;
        let done = Plan::diff(&before, &after);
        if !out.success() {
            return Err(failed(
                &format!("{} remove {}", m.name(), ns.join(" ")),
                &out,
            ));
        }
        Ok(Output {
            rows: done.rows(),
            summary: Some(done.summary()),
            changes: done.changes(),
            ..Output::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(v: &[(&str, &str)]) -> BTreeMap<String, String> {
        v.iter().map(|(a, b)| ((*a).into(), (*b).into())).collect()
    }

    #[test]
    fn diff_and_changes() {
        let before = map(&[("bash", "5.1"), ("old", "1"), ("same", "2")]);
        let after = map(&[("bash", "5.2"), ("hello", "2.10"), ("same", "2")]);
        let d = Plan::diff(&before, &after);
        assert_eq!(d.install, vec![("hello".into(), "2.10".into())]);
        assert_eq!(d.upgrade, vec![("bash".into(), "5.1".into(), "5.2".into())]);
        assert_eq!(d.remove, vec![("old".into(), "1".into())]);
        assert_eq!(
            d.changes(),
            vec![
                Change::PackageInstall {
                    name: "bash".into()
                },
                Change::PackageInstall {
                    name: "hello".into()
                },
                Change::PackageRemove { name: "old".into() },
            ]
        );
        assert_eq!(
            d.summary(),
            "installed 1 (hello); upgraded 1 (bash); removed 1 (old)"
        );
    }

    #[test]
    fn names_are_checked_per_manager() {
        let m = apt::Apt;
        for good in [
            "hello",
            "libc6",
            "g++",
            "libstdc++6",
            "python3.11",
            "libc6:amd64",
        ] {
            assert!(check_name(&m, good).is_ok(), "{good}");
        }
        for bad in [
            "-oAPT::x=y",
            "Hello",
            "a",
            "x y",
            "x;rm",
            "../x",
            "",
            "foo=1.0",
            "foo/bookworm",
        ] {
            assert!(check_name(&m, bad).is_err(), "{bad:?}");
        }
        let e = check_name(&m, "-o").unwrap_err().to_string();
        assert!(e.contains("not a valid apt package name"), "{e}");
    }

    #[test]
    fn queries_are_checked() {
        assert_eq!(query_words("  web server ").unwrap(), vec!["web", "server"]);
        assert!(query_words("   ").is_err());
    }
}
