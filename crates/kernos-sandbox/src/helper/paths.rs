//! The policy's paths as the helper uses them: made absolute and canonical, the declared Unix
//! sockets checked, the undeclared ones found (to be covered), plus the step's private temp dir.

use std::ffi::OsString;
use std::io;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

use super::fail::{Failure, Weakened};
use crate::protocol::{FailKind, HelperRequest};

/// Where host daemons keep their control sockets (and users their tmux, screen, ssh-agent
/// and X11 sockets): searched for sockets to cover when the policy declares Unix sockets.
const SOCKET_DIRS: [&str; 4] = ["/run", "/var/run", "/tmp", "/var/tmp"];
/// Most directory entries looked at while searching SOCKET_DIRS before giving up.
const SOCKET_SCAN_BUDGET: usize = 100_000;

/// The policy's paths, canonical. A readable, hidden or socket path that does not exist is
/// left out (nothing to reach or hide); a writable path or working directory must exist.
pub(super) struct DeclaredPaths {
    pub writable: Vec<PathBuf>,
    pub readable: Vec<PathBuf>,
    /// `deny_read` paths, plus directories that may hold undeclared sockets but cannot be
    /// searched for them.
    pub denied: Vec<PathBuf>,
    pub sockets: Vec<PathBuf>,
    /// Undeclared Unix sockets to cover, when the policy declares some (so `connect(2)` is open).
    pub cover_sockets: Vec<PathBuf>,
    pub cwd: Option<PathBuf>,
}

impl DeclaredPaths {
    /// Resolves the request's paths; `unix_connect` when connect(2) to Unix sockets is open.
    pub(super) fn resolve(
        req: &HelperRequest,
        unix_connect: bool,
        weakened: &mut Weakened,
    ) -> Result<Self, Failure> {
        let policy = &req.policy;
        let mut writable = Vec::new();
        for p in &policy.write {
            match canon(p, "writable")? {
                Some(c) => writable.push(c),
                None => {
                    return Err((
                        FailKind::InvalidPolicy,
                        format!(
                            "writable path {p:?} does not exist; create it first or declare the \
                             directory that will contain it"
                        ),
                    ));
                }
            }
        }
        let readable = existing(&policy.read, "readable")?;
        let mut denied = existing(&policy.deny_read, "deny_read")?;
        let sockets = declared_sockets(&policy.unix_sockets)?;
        let mut cover_sockets = Vec::new();
        if unix_connect {
            cover_sockets = undeclared_sockets(&sockets, &mut denied, weakened)?;
        }
        let cwd = match policy.cwd.as_ref().or(req.caller_cwd.as_ref()) {
            Some(c) => match canon(c, "working directory")? {
                Some(c) => Some(c),
                None => {
                    return Err((
                        FailKind::InvalidPolicy,
                        format!("working directory {c:?} does not exist"),
                    ));
                }
            },
            None => None,
        };
        Ok(DeclaredPaths {
            writable,
            readable,
            denied,
            sockets,
            cover_sockets,
            cwd,
        })
    }
}

/// `p` made canonical; `None` if it does not exist. `what` names it in errors.
fn canon(p: &Path, what: &str) -> Result<Option<PathBuf>, Failure> {
    if !p.is_absolute() {
        return Err((
            FailKind::InvalidPolicy,
            format!("{what} path {p:?} is not absolute"),
        ));
    }
    match std::fs::canonicalize(p) {
        Ok(c) => Ok(Some(c)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err((FailKind::InvalidPolicy, format!("{what} path {p:?}: {e}"))),
    }
}

/// The ones of `paths` that exist, canonical.
fn existing(paths: &[PathBuf], what: &str) -> Result<Vec<PathBuf>, Failure> {
    let mut out = Vec::new();
    for p in paths {
        if let Some(c) = canon(p, what)? {
            out.push(c);
        }
    }
    Ok(out)
}

/// The declared Unix sockets that exist, each checked to be a socket.
fn declared_sockets(paths: &[PathBuf]) -> Result<Vec<PathBuf>, Failure> {
    use std::os::unix::fs::FileTypeExt;
    let mut sockets = Vec::new();
    for p in paths {
        let Some(c) = canon(p, "Unix socket")? else {
            continue; // not there (e.g. no D-Bus on this machine): nothing to reach
        };
        // A declared socket is exempt from hiding, so it must not be a way to declare a
        // readable file or directory under another name.
        if !std::fs::metadata(&c).is_ok_and(|m| m.file_type().is_socket()) {
            return Err((
                FailKind::InvalidPolicy,
                format!(
                    "{p:?} is declared as a Unix socket but is not one; declare files and \
                     directories as readable paths instead"
                ),
            ));
        }
        sockets.push(c);
    }
    Ok(sockets)
}

/// connect(2) is open, so every socket the view shows is reachable: finds all the undeclared
/// ones where sockets live (to be covered), and adds directories that cannot be looked into
/// to `denied`.
fn undeclared_sockets(
    declared: &[PathBuf],
    denied: &mut Vec<PathBuf>,
    weakened: &mut Weakened,
) -> Result<Vec<PathBuf>, Failure> {
    match sockets_under(&SOCKET_DIRS, declared, SOCKET_SCAN_BUDGET) {
        Ok((found, unlisted)) => {
            denied.extend(unlisted);
            Ok(found)
        }
        Err(why) => {
            weakened.skip(
                (
                    FailKind::Unavailable,
                    format!("cannot hide the undeclared Unix sockets: {why}"),
                ),
                format!("hiding undeclared Unix sockets ({why})"),
            )?;
            Ok(Vec::new())
        }
    }
}

/// Every pathname Unix socket under `roots` except the `keep` ones, and every directory there
/// that cannot be listed (it may hold sockets nobody can see from here, so it is hidden
/// whole): `(sockets, directories)`. Symlinks are not followed, and a root that is another
/// one under a second name (`/var/run` → `/run`) is searched once. Fails after looking at
/// `budget` entries.
fn sockets_under(
    roots: &[&str],
    keep: &[PathBuf],
    budget: usize,
) -> Result<(Vec<PathBuf>, Vec<PathBuf>), String> {
    use std::os::unix::fs::FileTypeExt;
    let mut searched: Vec<PathBuf> = Vec::new();
    let mut found = Vec::new();
    let mut unlisted = Vec::new();
    let mut looked = 0usize;
    for r in roots {
        let Ok(root) = std::fs::canonicalize(r) else {
            continue;
        };
        if searched.contains(&root) {
            continue;
        }
        searched.push(root.clone());
        let mut stack = vec![root];
        while let Some(dir) = stack.pop() {
            let entries = match std::fs::read_dir(&dir) {
                Ok(entries) => entries,
                // Removed while we looked (temp dirs come and go): nothing in it to reach.
                Err(e)
                    if e.kind() == io::ErrorKind::NotFound
                        || e.raw_os_error() == Some(libc::ENOTDIR) =>
                {
                    continue;
                }
                Err(_) => {
                    unlisted.push(dir);
                    continue;
                }
            };
            for e in entries {
                let Ok(e) = e else {
                    unlisted.push(dir.clone());
                    break;
                };
                looked += 1;
                if looked > budget {
                    return Err(format!(
                        "more than {budget} files under {} to check",
                        roots.join(", ")
                    ));
                }
                let Ok(ft) = e.file_type() else {
                    continue;
                };
                if ft.is_socket() {
                    let p = e.path();
                    if !keep.contains(&p) {
                        found.push(p);
                    }
                } else if ft.is_dir() {
                    stack.push(e.path());
                }
            }
        }
    }
    Ok((found, unlisted))
}

/// A fresh private directory for the command's temporary files (mode 0700).
pub(super) fn make_tmpdir() -> io::Result<PathBuf> {
    let base = std::env::temp_dir();
    let mut template = base.join("kernos-sbx-XXXXXX").into_os_string().into_vec();
    template.push(0);
    // SAFETY: `template` is a writable NUL-terminated buffer ending in XXXXXX.
    let r = unsafe { libc::mkdtemp(template.as_mut_ptr().cast()) };
    if r.is_null() {
        return Err(io::Error::last_os_error());
    }
    template.pop();
    Ok(PathBuf::from(OsString::from_vec(template)))
}

/// Removes the private temp dir. The command may have left directories without write or
/// search permission (which a non-root helper could not descend), so fix modes and retry.
pub(crate) fn remove_tree(dir: &Path) {
    if std::fs::remove_dir_all(dir).is_ok() {
        return;
    }
    fn open_up(p: &Path) {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(md) = std::fs::symlink_metadata(p) {
            if md.is_dir() {
                let _ = std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o700));
                if let Ok(rd) = std::fs::read_dir(p) {
                    for e in rd.flatten() {
                        open_up(&e.path());
                    }
                }
            }
        }
    }
    open_up(dir);
    let _ = std::fs::remove_dir_all(dir);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sockets_are_found_and_declared_ones_kept() {
        let d = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(d.path()).unwrap();
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        let s1 = root.join("a/one.sock");
        let s2 = root.join("a/b/two.sock");
        let _l1 = std::os::unix::net::UnixListener::bind(&s1).unwrap();
        let _l2 = std::os::unix::net::UnixListener::bind(&s2).unwrap();
        std::fs::write(root.join("a/file"), "x").unwrap();
        std::os::unix::fs::symlink(&root, root.join("a/b/loop")).unwrap();
        let r = root.to_str().unwrap();
        let (mut found, unlisted) =
            sockets_under(&[r, r], std::slice::from_ref(&s1), 1000).unwrap();
        found.sort();
        assert_eq!(found, vec![s2.clone()]);
        assert!(unlisted.is_empty());
        assert!(sockets_under(&[r], &[], 2).is_err());
        assert_eq!(
            sockets_under(&["/nonexistent-kernos"], &[], 10).unwrap(),
            (vec![], vec![])
        );
    }

    #[test]
    fn tmpdir_is_private_and_removable() {
        let d = make_tmpdir().unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&d).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        std::fs::create_dir(d.join("locked")).unwrap();
        std::fs::write(d.join("locked/f"), "x").unwrap();
        std::fs::set_permissions(d.join("locked"), std::fs::Permissions::from_mode(0o000)).unwrap();
        remove_tree(&d);
        assert!(!d.exists());
    }
}
