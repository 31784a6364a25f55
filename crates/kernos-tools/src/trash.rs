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

use serde::{Deserialize, Deserializer, Serialize};

use crate::env::Env;

/// How much the trash may keep (`[trash]` in the configuration). It is enforced whenever a
/// change puts something into the trash: the oldest items that no longer fit leave it for
/// good, and the preview of that change names them first, since their transactions can then
/// no longer be undone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Budget {
    /// Most bytes the trash keeps: a number of bytes or a size such as `"2GiB"` or `"500M"`
    /// (binary units). 0: no size limit.
    #[serde(deserialize_with = "size")]
    pub max_bytes: u64,
    /// Items kept longer than this many days go when the next change fills the trash. 0: kept
    /// however old.
    pub max_age_days: u64,
}

/// 2 GiB: enough to undo everyday deletes, small enough that a forgotten trash never fills the
/// disk (the size that prompted the budget was a data directory of 6.3 GiB).
pub const DEFAULT_MAX_BYTES: u64 = 2 << 30;

impl Default for Budget {
    fn default() -> Self {
        Budget {
            max_bytes: DEFAULT_MAX_BYTES,
            max_age_days: 0,
        }
    }
}

impl Budget {
    /// What must leave the trash for good so that it, with `incoming` more bytes, keeps to
    /// the budget at `now_s`: items older than the age limit, then the oldest until the rest
    /// fits. Items for which `keep` holds (what the running transaction just put there) are
    /// never chosen — a delete that was just approved as undoable stays undoable — so an
    /// item larger than the whole budget is kept, alone, until the next change that fills
    /// the trash.
    pub fn to_purge(
        &self,
        items: &[TrashItem],
        incoming: u64,
        now_s: i64,
        keep: impl Fn(&TrashItem) -> bool,
    ) -> Vec<TrashItem> {
        let max_age_s = i64::try_from(self.max_age_days.saturating_mul(86_400)).unwrap_or(i64::MAX);
        let too_old = |i: &TrashItem| self.max_age_days > 0 && now_s - i.trashed_s > max_age_s;
        let mut total: u64 = items.iter().map(|i| i.bytes).sum::<u64>() + incoming;
        let mut out = Vec::new();
        for i in items.iter().filter(|i| !keep(i)) {
            let over = self.max_bytes > 0 && total > self.max_bytes;
            if over || too_old(i) {
                total = total.saturating_sub(i.bytes);
                out.push(i.clone());
            }
        }
        out
    }
}

/// `max_bytes` as a number of bytes or a size written with a unit.
fn size<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Size {
        Bytes(u64),
        Text(String),
    }
    match Size::deserialize(d)? {
        Size::Bytes(b) => Ok(b),
        Size::Text(t) => parse_size(&t).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "{t:?} is not a size: write bytes (2147483648) or a size like \"2GiB\", \"500M\""
            ))
        }),
    }
}

/// "2GiB", "500M", "1.5g", "4096", "10 KB": binary units, like the rest of Kernos.
pub fn parse_size(s: &str) -> Option<u64> {
    let t = s.trim().to_ascii_lowercase();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().ok()?;
    let unit = unit.trim().trim_end_matches('b').trim_end_matches('i');
    let mult: u64 = match unit {
        "" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        "t" => 1 << 40,
        _ => return None,
    };
    let v = n * mult as f64;
    (v.is_finite() && v >= 0.0 && v < u64::MAX as f64).then_some(v as u64)
}

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
    fn the_budget_purges_the_oldest_and_the_too_old_but_never_what_is_kept() {
        let items = [item(50, 1), item(30, 2), item(20, 3)];
        let b = Budget {
            max_bytes: 100,
            max_age_days: 0,
        };
        assert!(b.to_purge(&items, 0, 10, |_| false).is_empty());
        assert_eq!(
            b.to_purge(&items, 60, 10, |_| false),
            vec![item(50, 1), item(30, 2)]
        );
        // Larger than the whole budget: everything else goes, the kept item stays.
        let kept = |i: &TrashItem| i.trashed_s == 3;
        assert_eq!(
            b.to_purge(&items, 500, 10, kept),
            vec![item(50, 1), item(30, 2)]
        );
        let aged = Budget {
            max_bytes: 0,
            max_age_days: 1,
        };
        assert_eq!(
            aged.to_purge(&items, 0, 86_400 + 2, |_| false),
            vec![item(50, 1)]
        );
    }

    #[test]
    fn sizes_parse_with_binary_units_and_the_budget_reads_from_toml() {
        assert_eq!(parse_size("2GiB"), Some(2 << 30));
        assert_eq!(parse_size("500M"), Some(500 << 20));
        assert_eq!(parse_size("10 kb"), Some(10 << 10));
        assert_eq!(parse_size("4096"), Some(4096));
        assert_eq!(parse_size("lots"), None);
        let b: Budget = serde_json::from_str(r#"{"max_bytes": "1.5k"}"#).unwrap();
        assert_eq!(b.max_bytes, 1536);
        assert_eq!(b.max_age_days, 0);
        assert!(serde_json::from_str::<Budget>(r#"{"max_bytes": "huge"}"#).is_err());
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
