//! Whether a step is inside a capability lease ([`kernos_core::Lease`]).
//!
//! Pure: the caller passes the lease as it stands now (looked up on every step, so revocation
//! counts at once) and the step's concrete effects and assessed risk. The verdict only decides
//! whether a person must be asked; what policy denies stays denied whatever a lease says, and a
//! step outside the lease is asked about even when policy alone would have let it run.

use std::path::{Component, Path, PathBuf};

use kernos_core::{Effect, Lease, LeaseScope, Risk, Target};
use serde::{Deserialize, Serialize};

/// Where a step stands against a lease.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum LeaseVerdict {
    /// Covered: its action, effects, targets and risk are all within the lease.
    Inside,
    /// Not covered: it needs a person's yes, as without a lease.
    Outside {
        /// What of the step the lease does not cover.
        reason: String,
    },
    /// The lease covers nothing any more (revoked, expired, budget spent): no step may start
    /// under it.
    Inactive {
        /// Why.
        reason: String,
    },
}

/// Checks one step (`name` is `tool.action`) against `lease` at `now_ms`.
pub fn check_lease(
    lease: &Lease,
    name: &str,
    effects: &[Effect],
    risk: Risk,
    now_ms: i64,
) -> LeaseVerdict {
    if let Some(reason) = lease.inactive_reason(now_ms) {
        return LeaseVerdict::Inactive { reason };
    }
    match outside(lease, name, effects, risk) {
        Some(why) => LeaseVerdict::Outside {
            reason: format!("outside lease {}: {why}", lease.id),
        },
        None => LeaseVerdict::Inside,
    }
}

/// What of the step the lease does not cover, if anything.
fn outside(lease: &Lease, name: &str, effects: &[Effect], risk: Risk) -> Option<String> {
    let caps = &lease.capabilities;
    if caps.is_empty() {
        return Some("it names no actions or effects".into());
    }
    if !caps.actions.is_empty() && !caps.actions.iter().any(|p| action_matches(p, name)) {
        return Some(format!(
            "{name} is not one of its actions ({})",
            caps.actions.join(", ")
        ));
    }
    if !caps.effects.is_empty()
        && let Some(e) = effects.iter().find(|e| !caps.effects.contains(&e.kind))
    {
        return Some(format!("{} effects are not in it ({})", e.kind, e.target));
    }
    if let Some(why) = effects.iter().find_map(|e| target_outside(&lease.scope, e)) {
        return Some(why);
    }
    (risk > lease.max_risk).then(|| {
        format!(
            "the step is {risk} risk, above its {} risk limit",
            lease.max_risk
        )
    })
}

/// `fs.*` matches every action of `fs`, `*` every action, anything else only itself.
fn action_matches(pattern: &str, name: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    match pattern.strip_suffix(".*") {
        Some(tool) => name.split_once('.').is_some_and(|(t, _)| t == tool),
        None => pattern == name,
    }
}

/// Why effect `e`'s target is outside `scope`, if it is.
fn target_outside(scope: &LeaseScope, e: &Effect) -> Option<String> {
    match &e.target {
        Target::Path { path, .. } => {
            let p = lexical(path);
            let inside = p.is_absolute()
                && scope
                    .paths
                    .iter()
                    .map(|r| lexical(r))
                    .any(|r| r.is_absolute() && p.starts_with(&r));
            (!inside).then(|| format!("{} is not under its paths", path.display()))
        }
        Target::Service { name } => (!scope.services.iter().any(|s| prefix_matches(s, name)))
            .then(|| format!("service {name} is not one of its services")),
        Target::Package { name } => (!scope.packages.iter().any(|s| prefix_matches(s, name)))
            .then(|| format!("package {name} is not one of its packages")),
        Target::Host { host, port } => {
            if !scope.hosts.iter().any(|h| host_matches(h, host)) {
                return Some(format!("host {host} is not one of its hosts"));
            }
            port.filter(|p| !scope.ports.contains(p))
                .map(|p| format!("port {p} of {host} is not one of its ports"))
        }
        // A lease has no kind of scope for processes: signalling one is always asked about.
        Target::Process { pid, .. } => {
            Some(format!("process {pid}: a lease never covers processes"))
        }
        // The command line itself is covered by the capability (`shell.run`, `exec`); what it
        // touches is declared as separate path and host effects, checked above.
        Target::Command { .. } | Target::System => None,
    }
}

/// `name` exactly, or any name starting with what precedes a trailing `*`.
fn prefix_matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => pattern == name,
    }
}

/// `host` exactly (case aside), `*` any host, `*.example.org` any name below example.org.
fn host_matches(pattern: &str, host: &str) -> bool {
    let (pattern, host) = (pattern.to_ascii_lowercase(), host.to_ascii_lowercase());
    if pattern == "*" {
        return true;
    }
    match pattern.strip_prefix("*.") {
        Some(domain) => host
            .strip_suffix(domain)
            .is_some_and(|rest| rest.ends_with('.')),
        None => pattern == host,
    }
}

/// Folds `.` and `..` without touching the filesystem, as the engine resolves step paths
/// (symlinks in a step's paths are already followed by the tools before policy sees them, so a
/// link into another tree is judged where it points). A `..` above the root stays, so such a
/// path is under no prefix.
fn lexical(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use kernos_core::{Capabilities, EffectKind, LeaseBudget, LeaseUsage};

    use super::*;

    const NOW: i64 = 10_000;

    fn lease() -> Lease {
        Lease {
            id: "ls_test".into(),
            org: "acme".into(),
            grantee: "agent:a1".into(),
            capabilities: Capabilities {
                actions: vec!["fs.*".into(), "svc.restart".into(), "net.http".into()],
                effects: vec![],
            },
            scope: LeaseScope {
                paths: vec!["/srv/app".into()],
                services: vec!["app-*".into()],
                packages: vec![],
                hosts: vec!["*.example.org".into()],
                ports: vec![443],
            },
            max_risk: Risk::Medium,
            granted_ms: 0,
            expires_ms: 60_000,
            budget: LeaseBudget::default(),
            used: LeaseUsage::default(),
            granted_by: "key:admin".into(),
            revoked: false,
        }
    }

    fn write(p: &str) -> Vec<Effect> {
        vec![Effect::path(EffectKind::Write, p, false)]
    }

    fn check(l: &Lease, name: &str, effects: &[Effect], risk: Risk) -> LeaseVerdict {
        check_lease(l, name, effects, risk, NOW)
    }

    fn is_outside(v: &LeaseVerdict, needle: &str) -> bool {
        matches!(v, LeaseVerdict::Outside { reason } if reason.contains(needle) && reason.starts_with("outside lease ls_test: "))
    }

    #[test]
    fn paths_match_by_whole_components_after_folding_dots() {
        let l = lease();
        for inside in [
            "/srv/app",
            "/srv/app/x/y",
            "/srv/app/./x",
            "/srv/other/../app/x",
        ] {
            assert_eq!(
                check(&l, "fs.write", &write(inside), Risk::Medium),
                LeaseVerdict::Inside,
                "{inside}"
            );
        }
        for outside in [
            "/srv/ap",
            "/srv/apps/x",
            "/srv/app/../secret",
            "/srv/app/../../etc/passwd",
            "srv/app/x",
            "/",
        ] {
            assert!(
                is_outside(
                    &check(&l, "fs.write", &write(outside), Risk::Medium),
                    "paths"
                ),
                "{outside}"
            );
        }
        // A prefix written with dots means what it folds to.
        let mut dotted = lease();
        dotted.scope.paths = vec!["/srv/x/../app/".into()];
        assert_eq!(
            check(&dotted, "fs.write", &write("/srv/app/f"), Risk::Low),
            LeaseVerdict::Inside
        );
    }

    #[test]
    fn one_target_outside_makes_the_step_outside() {
        let l = lease();
        let mut effects = write("/srv/app/a");
        effects.push(Effect::path(EffectKind::Read, "/srv/appdata/b", false));
        assert!(is_outside(
            &check(&l, "fs.copy", &effects, Risk::Medium),
            "/srv/appdata/b"
        ));
    }

    #[test]
    fn actions_effect_kinds_and_risk_bound_the_lease() {
        let mut l = lease();
        assert!(is_outside(
            &check(&l, "pkg.install", &[], Risk::Low),
            "not one of its actions"
        ));
        assert!(is_outside(
            &check(&l, "fs.delete", &write("/srv/app/x"), Risk::High),
            "above its medium risk limit"
        ));
        l.capabilities.effects = vec![EffectKind::Read];
        assert!(is_outside(
            &check(&l, "fs.write", &write("/srv/app/x"), Risk::Low),
            "write effects"
        ));
        l.capabilities = Capabilities::default();
        assert!(is_outside(
            &check(&l, "fs.list", &[], Risk::Low),
            "names no"
        ));
        // Effect kinds alone, for any action.
        l.capabilities.effects = vec![EffectKind::Read];
        let read = [Effect::path(EffectKind::Read, "/srv/app/log", true)];
        assert_eq!(
            check(&l, "logs.tail", &read, Risk::Low),
            LeaseVerdict::Inside
        );
        assert!(action_matches("*", "x.y") && !action_matches("fs.*", "fsx.list"));
    }

    #[test]
    fn services_packages_hosts_ports_and_processes() {
        let l = lease();
        let svc = |name: &str| {
            vec![Effect {
                kind: EffectKind::Privileged,
                target: Target::Service { name: name.into() },
            }]
        };
        assert_eq!(
            check(&l, "svc.restart", &svc("app-web"), Risk::Medium),
            LeaseVerdict::Inside
        );
        assert!(is_outside(
            &check(&l, "svc.restart", &svc("nginx"), Risk::Medium),
            "service nginx"
        ));
        let host = |host: &str, port| {
            vec![Effect {
                kind: EffectKind::Network,
                target: Target::Host {
                    host: host.into(),
                    port,
                },
            }]
        };
        assert_eq!(
            check(
                &l,
                "net.http",
                &host("API.example.org", Some(443)),
                Risk::Low
            ),
            LeaseVerdict::Inside
        );
        assert_eq!(
            check(&l, "net.http", &host("api.example.org", None), Risk::Low),
            LeaseVerdict::Inside
        );
        assert!(is_outside(
            &check(
                &l,
                "net.http",
                &host("example.org.evil.net", None),
                Risk::Low
            ),
            "host"
        ));
        assert!(is_outside(
            &check(&l, "net.http", &host("badexample.org", None), Risk::Low),
            "host"
        ));
        assert!(is_outside(
            &check(&l, "net.http", &host("a.example.org", Some(22)), Risk::Low),
            "port 22"
        ));
        let pkg = vec![Effect {
            kind: EffectKind::Privileged,
            target: Target::Package {
                name: "htop".into(),
            },
        }];
        let mut any = lease();
        any.capabilities.actions = vec!["*".into()];
        assert!(is_outside(
            &check(&any, "pkg.install", &pkg, Risk::Low),
            "package"
        ));
        let kill = vec![Effect {
            kind: EffectKind::Write,
            target: Target::Process {
                pid: 77,
                name: None,
                uid: None,
            },
        }];
        assert!(is_outside(
            &check(&any, "proc.kill", &kill, Risk::Low),
            "process"
        ));
    }

    #[test]
    fn an_expired_revoked_or_spent_lease_is_inactive() {
        let mut l = lease();
        let ok = write("/srv/app/x");
        assert_eq!(
            check_lease(&l, "fs.write", &ok, Risk::Low, 60_000),
            LeaseVerdict::Inactive {
                reason: "lease ls_test expired 0 s ago".into()
            }
        );
        l.budget.max_steps = Some(3);
        l.used.steps = 3;
        assert!(matches!(
            check(&l, "fs.write", &ok, Risk::Low),
            LeaseVerdict::Inactive { reason } if reason.contains("3 steps")
        ));
        l.used.steps = 0;
        l.revoked = true;
        assert!(matches!(
            check(&l, "fs.write", &ok, Risk::Low),
            LeaseVerdict::Inactive { reason } if reason.contains("revoked")
        ));
    }
}
