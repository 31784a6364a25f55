//! Deriving a step's sandbox policy from its declared effects.
//!
//! A child process may write only what its step declared it writes, may use the network only if
//! the step declared network access (and then only to the declared hosts), and may never read
//! Kernos's own data or the user's credential stores unless the step explicitly declared reading
//! them.

use std::path::{Path, PathBuf};

use kernos_core::{Effect, EffectKind, HostPort, NetworkPolicy, SandboxPolicy, Target};

use crate::ctx::Env;

/// Credential stores under the home directory that no step reads unless it says so.
const SECRET_DIRS: &[&str] = &[
    ".ssh",
    ".gnupg",
    ".aws",
    ".kube",
    ".docker",
    ".password-store",
    ".config/gcloud",
];

/// The policy for a child process of a step with these effects.
pub fn policy_for(effects: &[Effect], env: &Env) -> SandboxPolicy {
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
            _ => {}
        }
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
    let mut deny: Vec<PathBuf> = Vec::new();
    if !declared_read(&env.data_dir) {
        deny.push(env.data_dir.clone());
    }
    for s in SECRET_DIRS {
        let d = env.home.join(s);
        if !declared_read(&d) {
            deny.push(d);
        }
    }
    p.deny_read = deny;
    p.write.sort();
    p.write.dedup();
    p.read.sort();
    p.read.dedup();
    p
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
            uid: 1000,
        }
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
