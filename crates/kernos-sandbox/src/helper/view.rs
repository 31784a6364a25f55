//! The mount view a step's command sees, as a description the init builds in the new mount
//! namespace: hidden paths (with declared paths inside them shown again), writable binds,
//! covered Unix sockets, a private /dev/shm and a fresh /proc.

use std::ffi::{CString, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use super::fail::{Failure, cpath};
use super::paths::DeclaredPaths;
use crate::sys;

/// Private /dev/shm cap when the policy has no memory limit.
const DEFAULT_SHM: u64 = 64 << 20;

/// What to hide (a `deny_read` path) and what to show again inside it.
#[derive(Debug, Clone)]
pub(crate) struct Hide {
    pub path: CString,
    pub is_dir: bool,
    /// Declared paths below `path`: (absolute source path, path below `path`, is_dir).
    pub reexpose: Vec<(CString, Vec<CString>, bool)>,
}

/// The mount view to build in the new mount namespace.
#[derive(Debug, Clone)]
pub(crate) struct MountPlan {
    pub hide: Vec<Hide>,
    /// Declared writable paths plus the private temp dir (canonical).
    pub writable: Vec<CString>,
    /// Size of the private /dev/shm, bytes.
    pub shm_bytes: u64,
    /// Mount a /proc of the step's own PID namespace (not for a service step, which has none
    /// and keeps the host's).
    pub fresh_proc: bool,
    /// Undeclared Unix sockets to cover (when the policy declares some, so `connect(2)` is
    /// open): each one still visible once the view is built gets an empty mount.
    pub cover_sockets: Vec<CString>,
}

/// The view for `paths` (whose `writable` includes the private temp dir); `memory_limit`
/// caps the private /dev/shm.
pub(super) fn mount_view(
    paths: &DeclaredPaths,
    memory_limit: Option<u64>,
    service: bool,
) -> Result<MountPlan, Failure> {
    Ok(MountPlan {
        hide: hidden(paths)?,
        writable: paths
            .writable
            .iter()
            .map(|p| cpath(p))
            .collect::<Result<Vec<_>, _>>()?,
        shm_bytes: memory_limit.map_or(DEFAULT_SHM, |m| m.min(DEFAULT_SHM)),
        // A fresh /proc needs a PID namespace of our own; a service step keeps the host's
        // (read-only, and Landlock keeps other processes' root, fd and exe links closed).
        fresh_proc: !service,
        cover_sockets: paths
            .cover_sockets
            .iter()
            .map(|p| cpath(p))
            .collect::<Result<Vec<_>, _>>()?,
    })
}

/// The denied paths to hide, outermost first, each with the declared paths below it.
/// Declared sockets count as declared paths here: not hidden, and bound back in when they
/// lie inside a hidden directory.
fn hidden(paths: &DeclaredPaths) -> Result<Vec<Hide>, Failure> {
    let declared: Vec<&PathBuf> = paths
        .readable
        .iter()
        .chain(paths.writable.iter())
        .chain(paths.sockets.iter())
        .collect();
    let mut denied: Vec<&PathBuf> = paths.denied.iter().collect();
    denied.sort_by_key(|p| p.as_os_str().len());
    let mut hide: Vec<Hide> = Vec::new();
    for d in denied {
        if declared.contains(&d) {
            continue; // explicitly declared: the step may read it.
        }
        if hide
            .iter()
            .any(|h| d.starts_with(OsStr::from_bytes(h.path.to_bytes())))
        {
            continue; // already inside a hidden directory.
        }
        let is_dir = d.is_dir();
        let reexpose = if is_dir {
            reexposed(d, &declared)?
        } else {
            Vec::new()
        };
        hide.push(Hide {
            path: cpath(d)?,
            is_dir,
            reexpose,
        });
    }
    Ok(hide)
}

/// The declared paths strictly below the hidden directory `dir`.
fn reexposed(
    dir: &Path,
    declared: &[&PathBuf],
) -> Result<Vec<(CString, Vec<CString>, bool)>, Failure> {
    let mut reexpose = Vec::new();
    for p in declared {
        if let Ok(rel) = p.strip_prefix(dir) {
            if rel.as_os_str().is_empty() {
                continue;
            }
            let parts = rel
                .components()
                .filter_map(|c| match c {
                    Component::Normal(s) => sys::cbytes(s).ok(),
                    _ => None,
                })
                .collect();
            reexpose.push((cpath(p)?, parts, p.is_dir()));
        }
    }
    Ok(reexpose)
}
