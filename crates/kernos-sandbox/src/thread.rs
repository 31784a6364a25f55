//! Confining one thread of Kernos's own process to a [`ThreadView`] with Landlock.
//!
//! The file tools do their work in-process (no child to put in a namespace), so the engine
//! runs each such step on a fresh thread and confines that thread before the tool touches
//! anything. Two Landlock layers, because their costs differ:
//!
//! * the **read layer** handles reading files and listing directories and grants them beneath
//!   the view's read roots, less the hidden paths. Landlock can only grant, so a root with a
//!   hidden path below it is granted child by child along the way down (`/`, then everything
//!   in `/etc` but `shadow`, …). That can be hundreds of rules, so the prepared ruleset is kept
//!   and reused by every thread with the same roots and hidden paths, and rebuilt when one of
//!   the directories it enumerated has changed (a new entry would otherwise be unreadable).
//! * the **write layer** handles every other right (create, write, remove, rename, truncate,
//!   execute) and grants them beneath the view's write roots only; it is small and built for
//!   each step. Nothing is executable: a step that needs a program asks its parent thread,
//!   which runs it in the full sandbox.
//!
//! What this does not hide: `stat` and the existence of a path (Landlock does not govern them),
//! and the *names* inside a directory on the way down to a hidden path — Landlock grants
//! beneath, so the directories there (`/`, `/etc`) must be listable for anything in them to
//! be found, and that right reaches the hidden directories below too. Their contents cannot be
//! read; policy refuses a step that names a hidden path before it runs, and the file tools'
//! walks never descend into one.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use kernos_core::ThreadView;

use crate::landlock::{self, FS_READ_DIR, FS_READ_FILE};
use crate::sys;

/// Why a thread could not be confined.
#[derive(Debug, thiserror::Error)]
pub enum ConfineError {
    /// This kernel has no Landlock (or it is disabled at boot).
    #[error(
        "this kernel cannot confine a thread (Landlock: {0}); enable Landlock (lsm= boot option) to run in-process steps confined"
    )]
    Unavailable(io::Error),
    /// A Landlock call failed.
    #[error("cannot confine the step's thread ({what}): {source}")]
    Failed {
        /// Which call, on which path.
        what: String,
        /// The kernel's answer.
        source: io::Error,
    },
}

/// The rights the read layer grants (with REFER, see `read_layer`).
const READ: u64 = FS_READ_FILE | FS_READ_DIR;

/// A directory listed to carve out a hidden path, with its mtime (seconds, nanoseconds) then.
type Listed = (PathBuf, i64, i64);

/// The two layers of a confined thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Layer {
    Read,
    Write,
}

/// What a layer is prepared for: which layer, its roots, hidden and shown paths, as given.
type LayerKey = (Layer, Vec<PathBuf>, Vec<PathBuf>, Vec<PathBuf>);

/// Prepared layers kept at most; beyond it the cache starts afresh (changing steps each bring
/// their own write roots).
const MAX_PREPARED: usize = 256;

/// A prepared layer and the directories whose listing it depends on.
struct Prepared {
    ruleset: Arc<OwnedFd>,
    listed: Vec<Listed>,
}

impl Prepared {
    fn still_current(&self) -> bool {
        self.listed.iter().all(|(d, sec, nsec)| {
            fs::metadata(d).is_ok_and(|m| m.mtime() == *sec && m.mtime_nsec() == *nsec)
        })
    }
}

/// Confines threads to views, keeping prepared layers. Share one per process.
#[derive(Default)]
pub struct ThreadConfiner {
    layers: Mutex<HashMap<LayerKey, Arc<Prepared>>>,
}

impl std::fmt::Debug for ThreadConfiner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThreadConfiner").finish_non_exhaustive()
    }
}

impl ThreadConfiner {
    /// A confiner with nothing prepared yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether this kernel can confine threads at all.
    pub fn available() -> bool {
        landlock::abi().is_ok()
    }

    /// Confines the calling thread to `view` for the rest of its life. Call it on a thread
    /// made for the purpose: it cannot be undone, and it sets `no_new_privs` on the thread.
    pub fn confine_current_thread(&self, view: &ThreadView) -> Result<(), ConfineError> {
        let abi = landlock::abi().map_err(ConfineError::Unavailable)?;
        let read = self.layer(abi, Layer::Read, &view.read, view)?;
        let write = self.layer(abi, Layer::Write, &view.write, view)?;
        // SAFETY: prctl with these arguments only sets a flag on the calling thread.
        let r = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
        sys::cvt(r).map_err(|e| failed("no_new_privs", e))?;
        landlock::restrict_thread(&read).map_err(|e| failed("read layer", e))?;
        landlock::restrict_thread(&write).map_err(|e| failed("write layer", e))
    }

    /// The prepared `which` layer granting beneath `roots`, carving out the view's hidden
    /// paths; built (paths resolved, directories listed) only when not prepared or stale.
    fn layer(
        &self,
        abi: u32,
        which: Layer,
        roots: &[PathBuf],
        view: &ThreadView,
    ) -> Result<Arc<OwnedFd>, ConfineError> {
        let key = (which, roots.to_vec(), view.hide.clone(), view.show.clone());
        if let Some(l) = self.cached(&key) {
            return Ok(l);
        }
        let rights = match which {
            // Every ruleset forbids moving a file to another directory unless it grants
            // REFER there (the kernel treats that right as always handled), so the read
            // layer grants it wherever it grants reading; the write layer decides where
            // moves may happen.
            Layer::Read => READ | (landlock::fs_rights_for(abi) & landlock::FS_REFER),
            Layer::Write => landlock::fs_rights_for(abi) & !READ,
        };
        let carved = Carve {
            hide: canonical(&view.hide),
            show: canonical(&view.show),
        };
        let (ruleset, listed) = build(rights, &canonical(roots), &carved)?;
        let prepared = Arc::new(Prepared {
            ruleset: Arc::new(ruleset),
            listed,
        });
        let fd = prepared.ruleset.clone();
        if let Ok(mut m) = self.layers.lock() {
            if m.len() >= MAX_PREPARED {
                m.clear();
            }
            m.insert(key, prepared);
        }
        Ok(fd)
    }

    fn cached(&self, key: &LayerKey) -> Option<Arc<OwnedFd>> {
        let layer = self.layers.lock().ok()?.get(key).cloned()?;
        layer.still_current().then(|| layer.ruleset.clone())
    }
}

fn failed(what: impl Into<String>, source: io::Error) -> ConfineError {
    ConfineError::Failed {
        what: what.into(),
        source,
    }
}

/// What to carve out of the granted trees: hidden paths, and paths inside them shown again.
struct Carve {
    hide: Vec<PathBuf>,
    show: Vec<PathBuf>,
}

impl Carve {
    fn hidden(&self, p: &Path) -> bool {
        self.hide.iter().any(|h| p.starts_with(h)) && !self.show.iter().any(|s| p.starts_with(s))
    }

    /// Whether the answer of `hidden` differs somewhere strictly below `p`.
    fn mixed_below(&self, p: &Path) -> bool {
        let below = |v: &[PathBuf]| v.iter().any(|x| x.starts_with(p) && x != p);
        if self.hidden(p) {
            below(&self.show)
        } else {
            below(&self.hide)
        }
    }
}

/// A ruleset handling and granting `rights` beneath each root, carved. Returns it with the
/// directories it had to list (and their mtimes).
fn build(
    rights: u64,
    roots: &[PathBuf],
    carved: &Carve,
) -> Result<(OwnedFd, Vec<Listed>), ConfineError> {
    let ruleset =
        landlock::create_fs_ruleset(rights).map_err(|e| failed("landlock_create_ruleset", e))?;
    let mut grants = Vec::new();
    let mut listed = Vec::new();
    for r in roots {
        carve(r, carved, &mut grants, &mut listed);
    }
    // A directory on the way down to a hidden path stays listable (Landlock grants beneath, so
    // this also lets the names inside hidden directories be listed; their contents are not).
    let listing = rights & FS_READ_DIR;
    let on_the_way = listed.iter().map(|(d, _, _)| (d, listing));
    for (g, rights) in grants.iter().map(|g| (g, rights)).chain(on_the_way) {
        if rights == 0 {
            continue;
        }
        let Ok(c) = sys::cpath(g) else { continue };
        // A path that vanished since it was listed is simply not granted.
        let Ok(target) = sys::open(&c, libc::O_PATH | libc::O_NOFOLLOW, 0) else {
            continue;
        };
        landlock::add_path_rule(&ruleset, &target, rights)
            .map_err(|e| failed(format!("rule for {}", g.display()), e))?;
    }
    Ok((ruleset, listed))
}

/// The paths to grant so that everything beneath `root` but the hidden paths is reachable:
/// `root` itself when the answer is the same everywhere below it (nothing when that answer is
/// "hidden"), otherwise each of its entries in turn. Symbolic links among the entries are not
/// granted (what they point to is reachable, or not, where it lies).
fn carve(root: &Path, c: &Carve, grants: &mut Vec<PathBuf>, listed: &mut Vec<Listed>) {
    if !c.mixed_below(root) {
        if !c.hidden(root) {
            grants.push(root.to_path_buf());
        }
        return;
    }
    let Ok(meta) = fs::symlink_metadata(root) else {
        return;
    };
    if !meta.is_dir() {
        return;
    }
    let Ok(entries) = fs::read_dir(root) else {
        return;
    };
    listed.push((root.to_path_buf(), meta.mtime(), meta.mtime_nsec()));
    for e in entries.flatten() {
        if e.file_type().is_ok_and(|t| t.is_symlink()) {
            continue;
        }
        carve(&e.path(), c, grants, listed);
    }
}

/// The paths as the kernel resolves them (symlinks followed), dropping those that do not
/// exist, sorted: a key for the prepared layers and what `carve` compares.
fn canonical(paths: &[PathBuf]) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = paths
        .iter()
        .filter_map(|p| fs::canonicalize(p).ok())
        .collect();
    v.sort();
    v.dedup();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `f` on a fresh thread confined to `view`.
    fn on_confined<T: Send>(view: ThreadView, f: impl FnOnce() -> T + Send) -> T {
        let c = ThreadConfiner::new();
        std::thread::scope(|s| {
            s.spawn(|| {
                c.confine_current_thread(&view).expect("confine");
                f()
            })
            .join()
            .expect("thread")
        })
    }

    #[test]
    fn hidden_files_inside_a_readable_tree_cannot_be_read() {
        if !ThreadConfiner::available() {
            eprintln!("skipped: no Landlock");
            return;
        }
        let d = tempfile::tempdir().unwrap();
        let root = d.path().canonicalize().unwrap();
        fs::create_dir_all(root.join("etc/ssl/private")).unwrap();
        fs::write(root.join("etc/shadow"), "root:$6$hash").unwrap();
        fs::write(root.join("etc/passwd"), "root:x:0:0").unwrap();
        fs::write(root.join("etc/ssl/private/site.key"), "KEY").unwrap();
        let view = ThreadView {
            read: vec![root.clone()],
            write: vec![],
            hide: vec![root.join("etc/shadow"), root.join("etc/ssl/private")],
            show: vec![],
        };
        let r = root.clone();
        let (passwd, listing, shadow, key, write) = on_confined(view, move || {
            (
                fs::read_to_string(r.join("etc/passwd")).is_ok(),
                fs::read_dir(r.join("etc")).is_ok(),
                fs::read_to_string(r.join("etc/shadow")).is_ok(),
                fs::read_to_string(r.join("etc/ssl/private/site.key")).is_ok(),
                fs::write(r.join("etc/new"), "x").is_ok(),
            )
        });
        assert!(passwd, "a file beside a hidden one stays readable");
        assert!(
            listing,
            "a directory holding a hidden file can still be listed"
        );
        assert!(!shadow && !key, "hidden files cannot be read");
        assert!(!write, "nothing is writable outside the write roots");
        assert!(!root.join("etc/new").exists());
        assert_eq!(
            fs::read_to_string(root.join("etc/shadow")).unwrap(),
            "root:$6$hash"
        );
    }

    #[test]
    fn writes_land_only_in_write_roots_and_a_symlink_does_not_widen_them() {
        if !ThreadConfiner::available() {
            eprintln!("skipped: no Landlock");
            return;
        }
        let d = tempfile::tempdir().unwrap();
        let root = d.path().canonicalize().unwrap();
        fs::create_dir_all(root.join("mine")).unwrap();
        fs::create_dir_all(root.join("theirs")).unwrap();
        fs::write(root.join("theirs/secret.txt"), "theirs").unwrap();
        std::os::unix::fs::symlink(root.join("theirs"), root.join("mine/link")).unwrap();
        let view = ThreadView {
            read: vec![root.join("mine")],
            write: vec![root.join("mine")],
            hide: vec![],
            show: vec![],
        };
        let r = root.clone();
        let (own, via_link_read, via_link_write) = on_confined(view, move || {
            (
                fs::write(r.join("mine/a.txt"), "a").is_ok(),
                fs::read_to_string(r.join("mine/link/secret.txt")).is_ok(),
                fs::write(r.join("mine/link/evil.txt"), "x").is_ok(),
            )
        });
        assert!(own);
        assert!(!via_link_read && !via_link_write);
        assert!(!root.join("theirs/evil.txt").exists());
    }

    #[test]
    fn a_prepared_read_layer_sees_entries_created_after_it() {
        if !ThreadConfiner::available() {
            eprintln!("skipped: no Landlock");
            return;
        }
        let d = tempfile::tempdir().unwrap();
        let root = d.path().canonicalize().unwrap();
        fs::write(root.join("hidden"), "h").unwrap();
        let view = ThreadView {
            read: vec![root.clone()],
            write: vec![],
            hide: vec![root.join("hidden")],
            show: vec![],
        };
        let c = ThreadConfiner::new();
        let read = |p: PathBuf| {
            std::thread::scope(|s| {
                s.spawn(|| {
                    c.confine_current_thread(&view).unwrap();
                    fs::read_to_string(p).is_ok()
                })
                .join()
                .unwrap()
            })
        };
        assert!(!read(root.join("hidden")));
        fs::write(root.join("later.txt"), "l").unwrap();
        assert!(
            read(root.join("later.txt")),
            "the layer was rebuilt for the new entry"
        );
    }
}
