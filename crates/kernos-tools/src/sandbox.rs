//! Deriving a step's sandbox policy from its declared effects.
//!
//! A child process may write only what its step declared it writes, may use the network only if
//! the step declared network access (and then only to the declared hosts), and may never read
//! Kernos's own data or the user's credential stores unless the step explicitly declared reading
//! them.
//!
//! Services: a privileged effect on a service (start, stop, restart, enable, disable) gets the
//! [`Lifetime::Service`] sandbox, in which what the command starts outlives the step (still
//! confined; see there), and any effect on a service lets the command reach the service
//! manager's control sockets (systemd's private socket, the D-Bus system bus) when this
//! machine has them.

use std::path::{Path, PathBuf};

use std::fs;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use kernos_core::secret::{HOME_SECRETS, SYSTEM_SECRETS};
use kernos_core::{
    Effect, EffectKind, HostPort, Lifetime, NetworkPolicy, SandboxPolicy, Target, ThreadView,
};

use crate::env::Env;

/// Trees a step of an organisation with a filesystem scope never sees in a child process
/// unless its scope grants them: where people and other tenants keep files. (The child still
/// needs the system — programs, libraries, `/etc` — to run at all; its Landlock domain keeps
/// it from writing outside what was declared.)
const SHARED_TREES: &[&str] = &["/home", "/root", "/srv", "/mnt", "/media"];

/// Control sockets of the service managers `svc` drives: `systemctl` talks to systemd over the
/// first as root, and over the D-Bus system bus otherwise.
pub const SERVICE_MANAGER_SOCKETS: [&str; 2] =
    ["/run/systemd/private", "/run/dbus/system_bus_socket"];

/// The service-manager sockets that exist on this machine (none without systemd or D-Bus).
fn service_manager_sockets() -> Vec<PathBuf> {
    SERVICE_MANAGER_SOCKETS
        .iter()
        .map(PathBuf::from)
        .filter(|p| p.exists())
        .collect()
}

/// The policy for a child process of a step with these effects.
pub fn policy_for(effects: &[Effect], env: &Env) -> SandboxPolicy {
    policy_with_sockets(effects, env, &service_manager_sockets())
}

/// The policy for the read-only queries of a step with these effects (a dry run's or a
/// change's "what is the state now?"): only its reads, where any effect on a service counts as
/// reading that service, so the query may still ask the service manager. Never writable paths,
/// never the network, never the service lifetime.
pub fn read_only_policy_for(effects: &[Effect], env: &Env) -> SandboxPolicy {
    let reads: Vec<Effect> = effects
        .iter()
        .filter_map(|e| match (&e.kind, &e.target) {
            (EffectKind::Read, _) => Some(e.clone()),
            (_, Target::Service { .. }) => Some(Effect {
                kind: EffectKind::Read,
                target: e.target.clone(),
            }),
            _ => None,
        })
        .collect();
    policy_for(&reads, env)
}

/// [`policy_for`] with the service-manager sockets this machine has given explicitly.
fn policy_with_sockets(effects: &[Effect], env: &Env, manager: &[PathBuf]) -> SandboxPolicy {
    let mut p = SandboxPolicy::default();
    let mut hosts: Vec<HostPort> = Vec::new();
    let mut any_host = false;
    let mut network = false;
    for e in effects {
        match (&e.kind, &e.target) {
            (EffectKind::Write | EffectKind::Delete, Target::Path { path, .. }) => {
                p.write.extend(writable_root(path));
            }
            (EffectKind::Read, Target::Path { path, .. }) => p.read.push(path.clone()),
            (EffectKind::Network, Target::Host { port, .. }) => {
                // The kernel can confine a step to ports (Landlock), not to host names, so a
                // declared host becomes "any host on that port": enforceable, and honest
                // about what is enforced. Without a port, any port.
                network = true;
                match port {
                    Some(p) => hosts.push(HostPort {
                        host: "*".into(),
                        port: Some(*p),
                    }),
                    None => any_host = true,
                }
            }
            (EffectKind::Network, _) => {
                network = true;
                any_host = true;
            }
            (kind, Target::Service { .. }) => {
                if *kind == EffectKind::Privileged {
                    p.lifetime = Lifetime::Service;
                }
                for s in manager {
                    if !p.unix_sockets.contains(s) {
                        p.unix_sockets.push(s.clone());
                    }
                }
            }
            _ => {}
        }
    }
    if p.lifetime == Lifetime::Service {
        // The sandbox does not apply these to a service (they would bind the daemon for its
        // whole life); say so in the policy that is journaled. Nor the file-size and
        // open-file caps, for the same reason: a database must not hit a step's 8 GiB file
        // limit months later, nor a web server a step's 1024 descriptors.
        p.limits.memory_bytes = None;
        p.limits.max_processes = None;
        p.limits.cpu_seconds = None;
        p.limits.file_size_bytes = None;
        p.limits.open_files = None;
    }
    if network {
        p.network = NetworkPolicy::Allow {
            hosts: if any_host { Vec::new() } else { hosts },
        };
        // Resolver configuration and CA certificates are needed to reach any host by name.
        p.env_allow
            .extend(["SSL_CERT_FILE", "SSL_CERT_DIR"].map(String::from));
    }
    // Never readable unless a path inside them was declared explicitly: declaring the whole
    // home directory does not expose ~/.ssh.
    let declared_read = |d: &Path| {
        p.read
            .iter()
            .chain(p.write.iter())
            .any(|r| r.starts_with(d))
    };
    let mut deny: Vec<PathBuf> = secret_paths(env)
        .into_iter()
        .filter(|d| !declared_read(d))
        .collect();
    deny.extend(data_dir_hidden(env));
    if let Some(scope) = &env.scope {
        for t in SHARED_TREES {
            let t = Path::new(t);
            if scope.may_read(t) {
                continue;
            }
            // A granted tree inside a shared one stays visible: hide its siblings instead.
            let keep: Vec<PathBuf> = scope
                .read
                .iter()
                .chain(&scope.write)
                .filter(|r| r.starts_with(t))
                .cloned()
                .collect();
            deny.extend(hide_except(t, &keep));
        }
    }
    deny.sort();
    deny.dedup();
    p.deny_read = deny;
    p.write.sort();
    p.write.dedup();
    p.read.sort();
    p.read.dedup();
    p
}

/// The credential stores that exist on this machine (see [`kernos_core::secret`]): the system
/// ones, SSH host keys, and the stores in the acting user's home, `/root` and every home under
/// `/home`. Listed afresh at most every few seconds (a step starts often; homes rarely appear).
pub fn secret_paths(env: &Env) -> Vec<PathBuf> {
    static CACHE: Mutex<Option<(Instant, PathBuf, Vec<PathBuf>)>> = Mutex::new(None);
    if let Ok(c) = CACHE.lock()
        && let Some((at, home, v)) = c.as_ref()
        && *home == env.home
        && at.elapsed() < Duration::from_secs(5)
    {
        return v.clone();
    }
    let mut v: Vec<PathBuf> = SYSTEM_SECRETS.iter().map(PathBuf::from).collect();
    if let Ok(rd) = fs::read_dir("/etc/ssh") {
        v.extend(
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| kernos_core::secret::credential_reason(p, &env.home).is_some()),
        );
    }
    let mut homes = vec![env.home.clone(), PathBuf::from("/root")];
    if let Ok(rd) = fs::read_dir("/home") {
        homes.extend(rd.flatten().map(|e| e.path()));
    }
    for h in homes {
        v.extend(HOME_SECRETS.iter().map(|s| h.join(s)));
    }
    // The acting user's stores are listed even when absent (the helper skips what does not
    // exist, and one may appear during the step); other homes only with what they hold.
    v.retain(|p| p.starts_with(&env.home) || fs::symlink_metadata(p).is_ok());
    v.sort();
    v.dedup();
    if let Ok(mut c) = CACHE.lock() {
        *c = Some((Instant::now(), env.home.clone(), v.clone()));
    }
    v
}

/// What of Kernos's data directory a step must not see: all of it but this session's vault
/// (its trash and undo snapshots, which its own deletes and writes fill) and any scope root
/// inside it (an organisation's workspace).
fn data_dir_hidden(env: &Env) -> Vec<PathBuf> {
    let mut keep = vault_dirs(env).to_vec();
    if let Some(s) = &env.scope {
        keep.extend(s.read.iter().chain(&s.write).cloned());
    }
    hide_except(&env.data_dir, &keep)
}

/// The directories of a session's vault: its trash and its undo-snapshot store.
pub fn vault_dirs(env: &Env) -> [PathBuf; 2] {
    [env.trash_dir(), env.vault.join("blobs")]
}

/// The paths that hide everything under `root` except the `keep` paths inside it: `root`
/// itself when no kept path is inside it, otherwise the siblings along the way down to each.
pub fn hide_except(root: &Path, keep: &[PathBuf]) -> Vec<PathBuf> {
    let inside: Vec<&PathBuf> = keep.iter().filter(|k| k.starts_with(root)).collect();
    if inside.is_empty() {
        return vec![root.to_path_buf()];
    }
    if inside.iter().any(|k| k.as_path() == root) {
        return Vec::new();
    }
    let Ok(rd) = fs::read_dir(root) else {
        return vec![root.to_path_buf()];
    };
    let mut out = Vec::new();
    for e in rd.flatten() {
        out.extend(hide_except(&e.path(), keep));
    }
    out
}

/// The filesystem view of a step's in-process work (see [`ThreadView`]): the scope's trees
/// (the whole machine for the host operator) to read; the step's declared writable roots and
/// the session's vault to change; hidden, the credential stores it did not name and
/// Kernos's data directory but the vault and the organisation's workspace. Cheap to make (no
/// listing): the confiner keeps what it prepared for an identical view.
pub fn thread_view(effects: &[Effect], env: &Env) -> ThreadView {
    let read = match &env.scope {
        None => vec![PathBuf::from("/")],
        // The vault too: moving a file into the trash or a snapshot into place is allowed by
        // Landlock only between directories both layers grant it in.
        Some(s) => s
            .read
            .iter()
            .chain(&s.write)
            .cloned()
            .chain(vault_dirs(env))
            .collect(),
    };
    let mut write: Vec<PathBuf> = vault_dirs(env).to_vec();
    let mut named: Vec<&Path> = Vec::new();
    for e in effects {
        if let Target::Path { path, .. } = &e.target {
            named.push(path);
            if matches!(e.kind, EffectKind::Write | EffectKind::Delete) {
                write.extend(in_process_writable_root(path));
            }
        }
    }
    let mut hide: Vec<PathBuf> = secret_paths(env)
        .into_iter()
        .filter(|s| !named.iter().any(|p| p.starts_with(s)))
        .collect();
    hide.push(env.data_dir.clone());
    let mut show = vault_dirs(env).to_vec();
    if let Some(s) = &env.scope {
        show.extend(
            s.read
                .iter()
                .chain(&s.write)
                .filter(|r| r.starts_with(&env.data_dir))
                .cloned(),
        );
    }
    ThreadView {
        read,
        write,
        hide,
        show,
    }
}

/// What in-process work must be able to change to change `path`: its nearest existing
/// ancestor directory, never the root itself. The parent, not the path: removing or renaming
/// a directory into the trash is a change to the directory holding it, and the file tools
/// create missing parent directories as `mkdir -p` does.
fn in_process_writable_root(path: &Path) -> Option<PathBuf> {
    path.ancestors()
        .skip(1)
        .find(|d| d.is_dir())
        .filter(|d| *d != Path::new("/"))
        .map(Path::to_path_buf)
}

/// What must be writable to change `path`: the path itself if it is an existing directory,
/// otherwise its parent (creating, replacing or removing a file changes its directory). When
/// not even the parent exists, nothing is granted: the sandbox can only grant existing paths,
/// and granting a further ancestor would hand the child far more than was declared.
fn writable_root(path: &Path) -> Option<PathBuf> {
    if path.is_dir() {
        return Some(path.to_path_buf());
    }
    // Never the root itself: a declared path like /boot that does not exist on this machine
    // must not turn into "the whole filesystem is writable".
    path.parent()
        .filter(|d| d.is_dir() && *d != Path::new("/"))
        .map(Path::to_path_buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Env {
        Env {
            cwd: "/w".into(),
            home: "/home/u".into(),
            data_dir: "/home/u/.local/share/kernos".into(),
            vault: "/home/u/.local/share/kernos".into(),
            scope: None,
            uid: 1000,
        }
    }

    fn service(kind: EffectKind) -> Effect {
        Effect {
            kind,
            target: Target::Service { name: "web".into() },
        }
    }

    fn sockets() -> Vec<PathBuf> {
        SERVICE_MANAGER_SOCKETS.iter().map(PathBuf::from).collect()
    }

    #[test]
    fn privileged_service_effect_gets_the_service_lifetime_and_manager_sockets() {
        let p = policy_with_sockets(
            &[
                service(EffectKind::Privileged),
                service(EffectKind::Write),
                Effect::path(EffectKind::Write, "/nonexistent-kernos/run", true),
            ],
            &env(),
            &sockets(),
        );
        assert_eq!(p.lifetime, Lifetime::Service);
        assert_eq!(p.unix_sockets, sockets());
        // Still no network unless declared, still the secrets hidden, still a wall clock.
        assert_eq!(p.network, NetworkPolicy::Deny);
        assert!(p.deny_read.contains(&PathBuf::from("/home/u/.ssh")));
        assert!(p.limits.wall_ms.is_some());
        assert!(p.limits.output_bytes.is_some());
        // Limits that would bind a daemon for life are off, and say so.
        assert_eq!(p.limits.memory_bytes, None);
        assert_eq!(p.limits.max_processes, None);
        assert_eq!(p.limits.cpu_seconds, None);
        assert_eq!(p.limits.file_size_bytes, None);
        assert_eq!(p.limits.open_files, None);
    }

    #[test]
    fn service_reads_and_writes_get_sockets_but_the_step_lifetime() {
        for kind in [EffectKind::Read, EffectKind::Write] {
            let p = policy_with_sockets(&[service(kind)], &env(), &sockets());
            assert_eq!(p.lifetime, Lifetime::Step, "{kind:?}");
            assert_eq!(p.unix_sockets, sockets(), "{kind:?}");
            assert_eq!(p.limits, kernos_core::Limits::default(), "{kind:?}");
        }
        // A machine without systemd or D-Bus: nothing to reach.
        let p = policy_with_sockets(&[service(EffectKind::Privileged)], &env(), &[]);
        assert_eq!(p.lifetime, Lifetime::Service);
        assert!(p.unix_sockets.is_empty());
    }

    #[test]
    fn other_effects_get_neither() {
        let effects = [
            Effect::path(EffectKind::Write, "/tmp", true),
            Effect {
                kind: EffectKind::Privileged,
                target: Target::Package {
                    name: "nginx".into(),
                },
            },
            Effect {
                kind: EffectKind::Read,
                target: Target::System,
            },
        ];
        let p = policy_with_sockets(&effects, &env(), &sockets());
        assert_eq!(p.lifetime, Lifetime::Step);
        assert!(p.unix_sockets.is_empty());
    }

    #[test]
    fn policy_for_adds_only_sockets_that_exist_here() {
        let p = policy_for(&[service(EffectKind::Read)], &env());
        let here: Vec<PathBuf> = sockets().into_iter().filter(|s| s.exists()).collect();
        assert_eq!(p.unix_sockets, here);
    }

    #[test]
    fn read_only_queries_keep_reads_and_services_only() {
        let d = tempfile::tempdir().unwrap();
        let effects = vec![
            service(EffectKind::Privileged),
            service(EffectKind::Write),
            Effect::path(EffectKind::Write, d.path(), true),
            Effect::path(EffectKind::Read, "/var/log/web.log", false),
            Effect {
                kind: EffectKind::Network,
                target: Target::Host {
                    host: "*".into(),
                    port: None,
                },
            },
        ];
        let full = policy_for(&effects, &env());
        assert_eq!(full.lifetime, Lifetime::Service);
        assert_eq!(full.write, vec![d.path().to_path_buf()]);
        let ro = read_only_policy_for(&effects, &env());
        assert_eq!(ro.lifetime, Lifetime::Step);
        assert!(ro.write.is_empty());
        assert_eq!(ro.network, NetworkPolicy::Deny);
        assert_eq!(ro.read, vec![PathBuf::from("/var/log/web.log")]);
        assert_eq!(ro.unix_sockets, full.unix_sockets);
        assert_eq!(read_only_policy_for(&[], &env()), policy_for(&[], &env()));
    }

    #[test]
    fn reads_only_get_no_writes_and_no_network() {
        let p = policy_for(&[Effect::path(EffectKind::Read, "/var/log", true)], &env());
        assert!(p.write.is_empty());
        assert_eq!(p.network, NetworkPolicy::Deny);
        assert!(
            p.deny_read
                .contains(&PathBuf::from("/home/u/.local/share/kernos"))
        );
        assert!(p.deny_read.contains(&PathBuf::from("/home/u/.ssh")));
    }

    #[test]
    fn writes_and_hosts_are_exactly_the_declared_ones() {
        let effects = vec![
            Effect::path(EffectKind::Write, "/nonexistent-dir/file.txt", false),
            Effect {
                kind: EffectKind::Network,
                target: Target::Host {
                    host: "example.org".into(),
                    port: Some(443),
                },
            },
        ];
        let p = policy_for(&effects, &env());
        // Nothing under a directory that does not exist can be granted.
        assert!(p.write.is_empty());
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("new.txt");
        let p2 = policy_for(&[Effect::path(EffectKind::Write, &f, false)], &env());
        assert_eq!(p2.write, vec![d.path().to_path_buf()]);
        assert_eq!(
            p.network,
            NetworkPolicy::Allow {
                hosts: vec![HostPort {
                    host: "*".into(),
                    port: Some(443)
                }]
            }
        );
    }

    #[test]
    fn a_missing_top_level_directory_never_grants_the_root() {
        let p = policy_for(
            &[Effect::path(
                EffectKind::Write,
                "/no-such-top-level-dir",
                true,
            )],
            &env(),
        );
        assert!(p.write.is_empty(), "{:?}", p.write);
    }

    #[test]
    fn declaring_home_does_not_expose_secrets() {
        let p = policy_for(&[Effect::path(EffectKind::Write, "/home/u", true)], &env());
        assert!(p.deny_read.contains(&PathBuf::from("/home/u/.ssh")));
    }

    #[test]
    fn declaring_a_secret_read_unblocks_it() {
        let p = policy_for(
            &[Effect::path(EffectKind::Read, "/home/u/.ssh/config", false)],
            &env(),
        );
        assert!(!p.deny_read.contains(&PathBuf::from("/home/u/.ssh")));
    }
}
