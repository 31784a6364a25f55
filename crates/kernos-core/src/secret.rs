//! Where credentials live on a Linux machine: the one list that policy (reading one is high
//! risk), the walks of the file tools (they never descend into one) and the sandbox (a step
//! cannot see one it did not name) all use, so a backup copy such as `/etc/shadow-` cannot be
//! known to one of them and missed by another.
//!
//! The classification is by path alone (no I/O): `path` is a secret location when it, or one
//! of its ancestors, is one. Paths should be absolute and lexically normalised.

use std::path::{Component, Path};

/// Credential stores inside a home directory (any user's: `/root`, `/home/*`, and the acting
/// user's home wherever it is).
pub const HOME_SECRETS: &[&str] = &[
    ".ssh",
    ".gnupg",
    ".aws",
    ".azure",
    ".kube",
    ".docker",
    ".password-store",
    ".config/gcloud",
    ".config/kernos",
    ".netrc",
    ".pgpass",
    ".git-credentials",
];

/// System files and directories that hold password hashes, private keys or network secrets,
/// including the backup copies tools leave beside them (`shadow-`, `gshadow-`).
pub const SYSTEM_SECRETS: &[&str] = &[
    "/etc/shadow",
    "/etc/shadow-",
    "/etc/gshadow",
    "/etc/gshadow-",
    "/etc/security/opasswd",
    "/etc/ssl/private",
    "/etc/pki/tls/private",
    "/etc/krb5.keytab",
    "/etc/NetworkManager/system-connections",
    "/etc/wireguard",
    "/etc/letsencrypt/archive",
    "/etc/letsencrypt/keys",
    "/etc/ipsec.secrets",
    "/etc/ppp/chap-secrets",
    "/etc/ppp/pap-secrets",
];

/// Why `path` holds credentials or Kernos's own data, or `None`. `home` is the acting user's
/// home directory, `data_dir` Kernos's data directory (the journal, blobs and trash: other
/// people's deletions and every organisation's record).
pub fn secret_reason(path: &Path, home: &Path, data_dir: &Path) -> Option<String> {
    if path.starts_with(data_dir) {
        return Some(format!("Kernos's data directory ({})", data_dir.display()));
    }
    credential_reason(path, home)
}

/// Why `path` holds credentials (as [`secret_reason`], leaving Kernos's data directory to the
/// caller, which may be walking an organisation's own workspace inside it), or `None`.
pub fn credential_reason(path: &Path, home: &Path) -> Option<String> {
    if let Some(s) = SYSTEM_SECRETS.iter().find(|s| path.starts_with(s)) {
        return Some(format!("a system credential store ({s})"));
    }
    if let Some(key) = private_key_file(path) {
        return Some(format!("a private key ({})", key.display()));
    }
    let homes = [Some(home), home_of(path)];
    // Walks ask this for every entry: compare without building paths.
    for h in homes.into_iter().flatten() {
        let Ok(rest) = path.strip_prefix(h) else {
            continue;
        };
        if let Some(s) = HOME_SECRETS.iter().find(|s| rest.starts_with(s)) {
            return Some(format!("a credential store ({})", h.join(s).display()));
        }
    }
    None
}

/// The home directory `path` lies in when it is under `/root` or `/home/<user>`.
fn home_of(path: &Path) -> Option<&Path> {
    let mut it = path.components();
    if it.next() != Some(Component::RootDir) {
        return None;
    }
    match it.next() {
        Some(Component::Normal(n)) if n == "root" => Some(Path::new("/root")),
        Some(Component::Normal(n)) if n == "home" => match it.next() {
            Some(Component::Normal(_)) => ancestor_at(path, 3),
            _ => None,
        },
        _ => None,
    }
}

/// The ancestor of `path` made of its first `n` components.
fn ancestor_at(path: &Path, n: usize) -> Option<&Path> {
    let total = path.components().count();
    path.ancestors().nth(total.checked_sub(n)?)
}

/// The private-key file `path` is (or lies in), named as found: SSH host keys
/// (`/etc/ssh/ssh_host_*_key`, not the `.pub` halves) and key files in any directory called
/// `private` under `/etc`.
fn private_key_file(path: &Path) -> Option<&Path> {
    if !path.starts_with("/etc") {
        return None;
    }
    path.ancestors().find(|p| {
        let Some(name) = p.file_name().and_then(|n| n.to_str()) else {
            return false;
        };
        let in_ssh = p.parent() == Some(Path::new("/etc/ssh"));
        let host_key = in_ssh && name.starts_with("ssh_host_") && name.ends_with("_key");
        let in_private = p
            .parent()
            .and_then(Path::file_name)
            .is_some_and(|d| d == "private");
        host_key || (in_private && (name.ends_with(".key") || name.ends_with(".pem")))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(p: &str) -> Option<String> {
        secret_reason(
            Path::new(p),
            Path::new("/home/ann"),
            Path::new("/home/ann/.local/share/kernos"),
        )
    }

    #[test]
    fn password_hashes_and_their_backups_are_secrets() {
        for p in [
            "/etc/shadow",
            "/etc/shadow-",
            "/etc/gshadow",
            "/etc/gshadow-",
            "/etc/security/opasswd",
        ] {
            assert!(reason(p).is_some(), "{p}");
        }
        assert!(reason("/etc/passwd").is_none());
        assert!(reason("/etc/shadowsocks.json").is_none());
    }

    #[test]
    fn private_keys_are_secrets_and_public_halves_are_not() {
        assert!(reason("/etc/ssh/ssh_host_ed25519_key").is_some());
        assert!(reason("/etc/ssh/ssh_host_ed25519_key.pub").is_none());
        assert!(reason("/etc/ssh/sshd_config").is_none());
        assert!(reason("/etc/ssl/private/site.key").is_some());
        assert!(reason("/etc/nginx/private/site.pem").is_some());
        assert!(reason("/etc/ssl/certs/ca.pem").is_none());
    }

    #[test]
    fn every_users_credential_stores_are_secrets() {
        assert!(reason("/home/ann/.ssh/id_ed25519").is_some());
        assert!(reason("/home/bob/.aws/credentials").is_some());
        assert!(reason("/root/.ssh").is_some());
        assert!(reason("/home/bob/.netrc").is_some());
        assert!(reason("/home/bob/notes.txt").is_none());
        assert!(reason("/home").is_none());
        assert!(reason("/srv/app/.ssh/authorized_keys").is_none());
    }

    #[test]
    fn the_data_directory_and_everything_in_it_is_kept_away() {
        assert!(reason("/home/ann/.local/share/kernos/journal.db").is_some());
        assert!(reason("/home/ann/.local/share").is_none());
    }
}
