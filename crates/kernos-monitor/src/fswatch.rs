//! One inotify instance for every file-change and log-pattern monitor, and which monitor each
//! event concerns.
//!
//! inotify gives one watch per inode per instance: two monitors watching the same directory
//! share a watch descriptor (masks are added together), so the registry keeps, per
//! descriptor, every monitor that asked and what it wants from it. A log file is watched
//! through its directory, so its rotation (a new file of the same name) is seen too.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

use inotify::{EventMask, Inotify, WatchDescriptor, WatchMask};

/// Subdirectories watched under one recursive tree at most; deeper trees are watched in part.
pub const MAX_TREE_DIRS: usize = 10_000;

/// An inotify event, owned.
#[derive(Debug, Clone)]
pub struct FsEvent {
    /// The watch it came from.
    pub wd: WatchDescriptor,
    /// What happened.
    pub mask: EventMask,
    /// The entry's name inside the watched directory.
    pub name: Option<OsString>,
}

/// What a monitor wants from a watch.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Interest {
    /// Every change in the directory (a file-change monitor's tree).
    Tree { recursive: bool },
    /// Changes of one entry of the directory (a log file, or a single watched file).
    Entry(OsString),
}

/// What an event means to one monitor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hit {
    /// Something changed at this path.
    Changed(PathBuf),
    /// The queue overflowed: events were lost, anything may have changed.
    Overflow,
}

/// The watches of every push monitor, by descriptor.
#[derive(Debug, Default)]
pub struct Registry {
    by_wd: HashMap<WatchDescriptor, (PathBuf, Vec<(usize, Interest)>)>,
}

const TREE_MASK: WatchMask = WatchMask::CREATE
    .union(WatchMask::DELETE)
    .union(WatchMask::MODIFY)
    .union(WatchMask::ATTRIB)
    .union(WatchMask::MOVED_FROM)
    .union(WatchMask::MOVED_TO)
    .union(WatchMask::DELETE_SELF);

const ENTRY_MASK: WatchMask = WatchMask::CREATE
    .union(WatchMask::MODIFY)
    .union(WatchMask::MOVED_TO)
    .union(WatchMask::MOVED_FROM)
    .union(WatchMask::DELETE)
    .union(WatchMask::ATTRIB);

impl Registry {
    /// Watches `path` for monitor `slot`: a directory (and, if `recursive`, every directory
    /// below it), or a single file through its parent directory.
    pub fn watch_path(
        &mut self,
        ino: &mut Inotify,
        slot: usize,
        path: &Path,
        recursive: bool,
    ) -> std::io::Result<()> {
        if path.is_dir() {
            self.add(ino, slot, path, TREE_MASK, Interest::Tree { recursive })?;
            if recursive {
                self.watch_below(ino, slot, path);
            }
            Ok(())
        } else {
            self.watch_entry(ino, slot, path)
        }
    }

    /// Watches one file through its directory (which must exist).
    pub fn watch_entry(
        &mut self,
        ino: &mut Inotify,
        slot: usize,
        file: &Path,
    ) -> std::io::Result<()> {
        let (Some(dir), Some(name)) = (file.parent(), file.file_name()) else {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("{} names no file in a directory", file.display()),
            ));
        };
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        self.add(ino, slot, dir, ENTRY_MASK, Interest::Entry(name.to_owned()))
    }

    fn add(
        &mut self,
        ino: &mut Inotify,
        slot: usize,
        dir: &Path,
        mask: WatchMask,
        interest: Interest,
    ) -> std::io::Result<()> {
        let wd = ino.watches().add(dir, mask | WatchMask::MASK_ADD)?;
        let entry = self
            .by_wd
            .entry(wd)
            .or_insert_with(|| (dir.to_owned(), Vec::new()));
        // A directory seen twice (created while its parent was being walked) counts once.
        if !entry.1.iter().any(|(s, i)| *s == slot && *i == interest) {
            entry.1.push((slot, interest));
        }
        Ok(())
    }

    /// Adds watches for the directories below `root` (not `root` itself), up to the cap.
    fn watch_below(&mut self, ino: &mut Inotify, slot: usize, root: &Path) {
        let dirs = walkdir::WalkDir::new(root)
            .min_depth(1)
            .follow_links(false)
            .into_iter()
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_dir())
            .take(MAX_TREE_DIRS);
        for d in dirs {
            // A directory removed or unreadable meanwhile is simply not watched.
            let _ = self.add(
                ino,
                slot,
                d.path(),
                TREE_MASK,
                Interest::Tree { recursive: true },
            );
        }
    }

    /// What `ev` means to each monitor it concerns. A directory created under a recursive
    /// tree is watched from now on (with what it already holds).
    pub fn route(&mut self, ino: &mut Inotify, ev: &FsEvent) -> Vec<(usize, Hit)> {
        if ev.mask.contains(EventMask::Q_OVERFLOW) {
            let mut all: Vec<usize> = self
                .by_wd
                .values()
                .flat_map(|(_, subs)| subs.iter().map(|(s, _)| *s))
                .collect();
            all.sort_unstable();
            all.dedup();
            return all.into_iter().map(|s| (s, Hit::Overflow)).collect();
        }
        if ev.mask.contains(EventMask::IGNORED) {
            self.by_wd.remove(&ev.wd);
            return Vec::new();
        }
        let Some((dir, subs)) = self.by_wd.get(&ev.wd) else {
            return Vec::new();
        };
        let path = match &ev.name {
            Some(n) => dir.join(n),
            None => dir.clone(),
        };
        let mut hits = Vec::new();
        let mut new_dir_for = Vec::new();
        for (slot, interest) in subs {
            match interest {
                Interest::Tree { recursive } => {
                    let is_new_dir = ev.mask.contains(EventMask::ISDIR)
                        && ev.mask.intersects(EventMask::CREATE | EventMask::MOVED_TO);
                    if *recursive && is_new_dir {
                        new_dir_for.push(*slot);
                    }
                    hits.push((*slot, Hit::Changed(path.clone())));
                }
                Interest::Entry(name) if ev.name.as_deref() == Some(OsStr::new(name)) => {
                    hits.push((*slot, Hit::Changed(path.clone())));
                }
                Interest::Entry(_) => {}
            }
        }
        for slot in new_dir_for {
            if self
                .add(
                    ino,
                    slot,
                    &path,
                    TREE_MASK,
                    Interest::Tree { recursive: true },
                )
                .is_ok()
            {
                self.watch_below(ino, slot, &path);
            }
        }
        hits
    }
}
