//! Where and as whom Kernos runs, and how argument paths are made absolute against that.
//!
//! Its own module because both the action context (`ctx`) and the sandbox policy derivation
//! (`sandbox`) need it, and neither should depend on the other for it.

use kernos_core::FsScope;
use std::path::{Component, Path, PathBuf};

/// Where and as whom Kernos runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Env {
    /// Working directory: relative paths in arguments are relative to it.
    pub cwd: PathBuf,
    /// The user's home directory: `~` in arguments.
    pub home: PathBuf,
    /// Kernos's data directory (journal, blobs, trash). Steps may never touch it.
    pub data_dir: PathBuf,
    /// Where this session's trash and undo snapshots live: the data directory for the host
    /// operator, `<data_dir>/orgs/<org>` for an organisation with a filesystem scope, so no
    /// organisation's step can see what another deleted.
    pub vault: PathBuf,
    /// The organisation's filesystem scope; `None` for the host operator (the whole machine).
    pub scope: Option<FsScope>,
    /// Effective user id.
    pub uid: u32,
}

impl Env {
    /// The environment of this process.
    pub fn current(data_dir: PathBuf) -> Self {
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
        let home = std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| cwd.clone());
        // SAFETY: geteuid has no preconditions and cannot fail.
        let uid = unsafe { libc::geteuid() };
        Env {
            cwd,
            home,
            vault: data_dir.clone(),
            scope: None,
            data_dir,
            uid,
        }
    }

    /// Where deleted things go until undo or purge.
    pub fn trash_dir(&self) -> PathBuf {
        self.vault.join("trash")
    }

    /// Turns an argument path into an absolute, lexically normalised path: `~` and `~/x` are
    /// expanded, relative paths are joined to the working directory, `.` and `..` are folded.
    /// Symlinks are not followed (see [`Env::real`] for that).
    pub fn resolve(&self, p: &str) -> PathBuf {
        let p = p.trim();
        let raw = if p == "~" {
            self.home.clone()
        } else if let Some(rest) = p.strip_prefix("~/") {
            self.home.join(rest)
        } else {
            let path = Path::new(p);
            if path.is_absolute() {
                path.to_path_buf()
            } else {
                self.cwd.join(path)
            }
        };
        normalize(&raw)
    }

    /// The path with every symlink in it followed, as far as it exists; the missing tail is
    /// appended as is. Policy judges writes by this, so `~/link -> /etc` counts as `/etc`.
    pub fn real(&self, p: &Path) -> PathBuf {
        let mut existing = p.to_path_buf();
        let mut tail: Vec<std::ffi::OsString> = Vec::new();
        loop {
            if let Ok(c) = std::fs::canonicalize(&existing) {
                let mut out = c;
                for t in tail.iter().rev() {
                    out.push(t);
                }
                return out;
            }
            match (
                existing.file_name().map(|f| f.to_owned()),
                existing.parent(),
            ) {
                (Some(name), Some(parent)) => {
                    tail.push(name);
                    existing = parent.to_path_buf();
                }
                _ => return p.to_path_buf(),
            }
        }
    }
}

/// Folds `.` and `..` without touching the filesystem.
pub fn normalize(p: &Path) -> PathBuf {
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
    if out.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Env {
        Env {
            cwd: "/work/proj".into(),
            home: "/home/ann".into(),
            data_dir: "/home/ann/.local/share/kernos".into(),
            vault: "/home/ann/.local/share/kernos".into(),
            scope: None,
            uid: 1000,
        }
    }

    #[test]
    fn resolve_expands_and_normalises() {
        let e = env();
        assert_eq!(e.resolve("~"), PathBuf::from("/home/ann"));
        assert_eq!(
            e.resolve("~/Downloads"),
            PathBuf::from("/home/ann/Downloads")
        );
        assert_eq!(
            e.resolve("notes.txt"),
            PathBuf::from("/work/proj/notes.txt")
        );
        assert_eq!(
            e.resolve("./build/../cache/"),
            PathBuf::from("/work/proj/cache")
        );
        assert_eq!(e.resolve("/var/log/./x/.."), PathBuf::from("/var/log"));
        assert_eq!(e.resolve("~other"), PathBuf::from("/work/proj/~other"));
    }

    #[test]
    fn real_follows_symlinks_of_the_existing_prefix() {
        let d = tempfile::tempdir().unwrap();
        let target = d.path().join("target");
        std::fs::create_dir(&target).unwrap();
        let link = d.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let e = Env {
            cwd: d.path().into(),
            ..env()
        };
        let real = e.real(&link.join("new/file.txt"));
        assert_eq!(
            real,
            std::fs::canonicalize(&target).unwrap().join("new/file.txt")
        );
    }
}
