//! Kernos's trash: what deletes put aside so undo can bring it back.
//!
//! Layout: `<data_dir>/trash/<slot>/<name>`, one slot (a fresh id) per deleted item; the
//! transaction that trashed it journaled a `MoveBack` from that path (see
//! [`Recorder::trash`](crate::Recorder::trash)). Emptying a slot makes that part of the
//! transaction impossible to undo, so callers journal it and undo says so.
//!
//! What undo itself removes (a copy, a file a step created) does not come here: it was made by
//! the transaction and is exactly as the transaction left it (undo checks its fingerprint
//! first), so keeping it would only fill the trash with duplicates of what the user still has.

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::env::Env;

/// One deleted item waiting in the trash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrashItem {
    /// Its slot directory (removing the slot removes the item).
    pub slot: PathBuf,
    /// The item inside the slot, under its original name.
    pub path: PathBuf,
    /// Bytes of its regular files.
    pub bytes: u64,
    /// When it was put in the trash, seconds since the epoch (the slot's change time).
    pub trashed_s: i64,
}

/// Everything in the trash, oldest first. A trash that does not exist is empty.
pub fn list(env: &Env) -> io::Result<Vec<TrashItem>> {
    let root = env.trash_dir();
    let rd = match fs::read_dir(&root) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut items = Vec::new();
    for slot in rd.flatten() {
        let slot = slot.path();
        let Ok(m) = fs::symlink_metadata(&slot) else {
            continue;
        };
        if !m.is_dir() {
            continue;
        }
        // A slot holds one item; an empty slot (its item was undone) is listed as nothing.
        let Some(item) = fs::read_dir(&slot)?.flatten().next() else {
            continue;
        };
        items.push(TrashItem {
            path: item.path(),
            bytes: bytes_of(&item.path()),
            trashed_s: m.ctime(),
            slot,
        });
    }
    items.sort_by(|a, b| a.trashed_s.cmp(&b.trashed_s).then(a.slot.cmp(&b.slot)));
    Ok(items)
}

/// Removes an item for good (its whole slot).
pub fn remove(item: &TrashItem) -> io::Result<()> {
    fs::remove_dir_all(&item.slot)
}

/// Removes slots whose item is gone (put back by undo), so they do not pile up.
pub fn tidy(env: &Env) {
    if let Ok(rd) = fs::read_dir(env.trash_dir()) {
        for slot in rd.flatten() {
            // remove_dir only removes an empty directory: exactly the slots with nothing left.
            let _ = fs::remove_dir(slot.path());
        }
    }
}

/// The oldest items to remove so that the trash, with `incoming` more bytes, fits in
/// `budget` bytes. Empty when it fits already.
pub fn over_budget(items: &[TrashItem], incoming: u64, budget: u64) -> Vec<TrashItem> {
    let mut total: u64 = items.iter().map(|i| i.bytes).sum::<u64>() + incoming;
    let mut out = Vec::new();
    for i in items {
        if total <= budget {
            break;
        }
        total = total.saturating_sub(i.bytes);
        out.push(i.clone());
    }
    out
}

/// Whether `p` is inside the trash of `env`.
pub fn contains(env: &Env, p: &Path) -> bool {
    p.starts_with(env.trash_dir())
}

fn bytes_of(p: &Path) -> u64 {
    let Ok(m) = fs::symlink_metadata(p) else {
        return 0;
    };
    if m.is_dir() {
        fs::read_dir(p)
            .map(|rd| rd.flatten().map(|e| bytes_of(&e.path())).sum())
            .unwrap_or(0)
    } else if m.is_file() {
        m.len()
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(bytes: u64, t: i64) -> TrashItem {
        TrashItem {
            slot: PathBuf::from(format!("/t/{t}")),
            path: PathBuf::from(format!("/t/{t}/x")),
            bytes,
            trashed_s: t,
        }
    }

    #[test]
    fn over_budget_pushes_out_the_oldest_first() {
        let items = [item(50, 1), item(30, 2), item(20, 3)];
        assert!(over_budget(&items, 0, 100).is_empty());
        let out = over_budget(&items, 10, 100);
        assert_eq!(out, vec![item(50, 1)]);
        let out = over_budget(&items, 60, 100);
        assert_eq!(out, vec![item(50, 1), item(30, 2)]);
    }

    #[test]
    fn lists_oldest_first_with_sizes_and_tidies_empty_slots() {
        let d = tempfile::tempdir().unwrap();
        let env = Env {
            cwd: d.path().into(),
            home: d.path().into(),
            data_dir: d.path().join("data"),
            vault: d.path().join("data"),
            scope: None,
            uid: 0,
        };
        assert!(list(&env).unwrap().is_empty());
        let t = env.trash_dir();
        fs::create_dir_all(t.join("a/dir/sub")).unwrap();
        fs::write(t.join("a/dir/sub/f"), vec![0u8; 10]).unwrap();
        fs::write(t.join("a/dir/g"), vec![0u8; 5]).unwrap();
        fs::create_dir_all(t.join("b")).unwrap();
        let items = list(&env).unwrap();
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].bytes, 15);
        assert_eq!(items[0].path, t.join("a/dir"));
        tidy(&env);
        assert!(!t.join("b").exists());
        remove(&items[0]).unwrap();
        assert!(list(&env).unwrap().is_empty());
    }
}
