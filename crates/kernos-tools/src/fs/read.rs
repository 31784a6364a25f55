//! `fs.list`, `fs.find`, `fs.largest`, `fs.usage`, `fs.read`: reads, no changes.
//!
//! Sizes are apparent sizes (what `ls -l` shows); in totals, a file with several hard links is
//! counted once. Walks never follow symlinks below the named path, skip what they may not read
//! (and say how much in the summary), and stop promptly when cancelled.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::fs;
use std::io::{Read as _, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use kernos_core::{ColumnKind, Effect, EffectKind, Reversibility};
use serde_json::{Map, Value};

use crate::args::{EntryType, FindSort, FsFind, FsLargest, FsList, FsRead, FsUsage, SizeKind};
use crate::ctx::Ctx;
use crate::error::{Result, ToolError};
use crate::output::{Output, human_bytes, row};
use crate::registry::{Action, Meta};
use crate::undo::Recorder;

use super::special;
use super::{
    DataDir, TICK, arg_path, is_hidden, kind_name, looks_binary, mode_str, mtime_secs, name_glob,
    nonempty_dir, regular_file,
};

/// A read effect on the real path of `p`; recursive when it reaches into a directory.
pub(crate) fn read_effect(ctx: &Ctx<'_>, p: &Path, tree: bool) -> Effect {
    let real = ctx.env.real(p);
    let deep = tree && fs::metadata(&real).is_ok_and(|m| m.is_dir());
    Effect::path(EffectKind::Read, real, deep)
}

/// Fails with a clear error when `p` does not exist (following a final symlink).
pub(crate) fn stat_root(p: &Path) -> Result<fs::Metadata> {
    fs::metadata(p).map_err(|e| {
        if fs::symlink_metadata(p).is_ok() {
            ToolError::Refused(format!(
                "{} is a symbolic link to something that does not exist",
                p.display()
            ))
        } else {
            ToolError::io("cannot read", p, e)
        }
    })
}

/// What a walk left out, for the summary: entries it could not read, special files
/// (devices, FIFOs, sockets, blocking kernel files), the kernel's file systems below the root
/// and Kernos's own data directory.
#[derive(Default)]
pub(crate) struct Skipped {
    /// Entries that could not be read.
    pub(crate) unreadable: u64,
    /// Devices, FIFOs, sockets and kernel files that block.
    pub(crate) special: u64,
    /// Mount points of kernel file systems (`/proc`, `/sys`) not descended into.
    pub(crate) kernel: Vec<PathBuf>,
    /// Kernos's data directory, when the walk passed it by.
    pub(crate) data_dir: Option<PathBuf>,
    /// Credential stores passed by (`/etc/shadow`, `~/.ssh`, …; see
    /// [`kernos_core::secret`]): a walk never reads them, whatever its root.
    pub(crate) secrets: Vec<PathBuf>,
}

impl Skipped {
    /// Adds what another walk left out.
    pub(crate) fn add(&mut self, other: Skipped) {
        self.unreadable += other.unreadable;
        self.special += other.special;
        self.kernel.extend(other.kernel);
        if self.data_dir.is_none() {
            self.data_dir = other.data_dir;
        }
        self.secrets.extend(other.secrets);
    }

    /// Appends " (skipped …)" to a summary when anything was left out.
    pub(crate) fn note(&self, summary: &mut String) {
        let mut parts = Vec::new();
        if self.unreadable > 0 {
            parts.push(format!(
                "{} unreadable entr{}",
                self.unreadable,
                if self.unreadable == 1 { "y" } else { "ies" }
            ));
        }
        if self.special > 0 {
            parts.push(super::counted(
                self.special,
                "special file",
                "special files",
            ));
        }
        if !self.kernel.is_empty() {
            let list: Vec<String> = self
                .kernel
                .iter()
                .map(|p| p.display().to_string())
                .collect();
            parts.push(format!("the kernel's file systems {}", list.join(", ")));
        }
        if let Some(d) = &self.data_dir {
            parts.push(format!("Kernos's data directory {}", d.display()));
        }
        if !self.secrets.is_empty() {
            let mut list: Vec<String> = self
                .secrets
                .iter()
                .take(3)
                .map(|p| p.display().to_string())
                .collect();
            if self.secrets.len() > 3 {
                list.push(format!("{} more", self.secrets.len() - 3));
            }
            parts.push(format!(
                "{} ({})",
                super::counted(
                    self.secrets.len() as u64,
                    "credential store",
                    "credential stores"
                ),
                list.join(", ")
            ));
        }
        if !parts.is_empty() {
            summary.push_str(&format!(" (skipped {})", parts.join("; ")));
        }
    }
}

/// Walks `root` (not following symlinks beneath it), calling `f` for each readable entry
/// (the root included, at depth 0). Hidden entries below the root are skipped unless `hidden`.
///
/// Never handed to `f`, and counted in the returned [`Skipped`]: devices, FIFOs and sockets
/// (opening one may block forever), the kernel's file systems below the root (`/proc`,
/// `/sys`: a search from `/` is about the user's files, and some kernel files block or never
/// end), blocking kernel files when the root itself is on one (`/proc/kmsg`), Kernos's
/// data directory unless the root is inside it (the trash and the journal are not the
/// user's files, and a plan to change them would be refused), and credential stores below the
/// root (`/etc/shadow-`, `~/.ssh`: a search of `/etc` must not be a way to read what reading
/// `/etc/shadow` by name would ask about).
pub(crate) fn walk(
    ctx: &Ctx<'_>,
    root: &Path,
    hidden: bool,
    max_depth: Option<usize>,
    mut f: impl FnMut(&walkdir::DirEntry) -> Result<bool>,
) -> Result<Skipped> {
    let mut w = walkdir::WalkDir::new(root)
        .follow_links(false)
        .sort_by_file_name();
    if let Some(d) = max_depth {
        w = w.max_depth(d);
    }
    let data = DataDir::of(ctx);
    let prune_data = !data.contains(root);
    let root_dev = fs::metadata(root).ok().map(|m| m.dev());
    let root_on_kernel_fs = special::on_kernel_fs(root);
    let mut kernel = special::KernelFsCache::allowing(root_dev);
    let mut skipped = Skipped::default();
    let mut n = 0u64;
    let mut it = w
        .into_iter()
        .filter_entry(|e| hidden || e.depth() == 0 || !is_hidden(e.file_name()));
    while let Some(e) = it.next() {
        n += 1;
        if n % TICK == 0 {
            ctx.check_cancel()?;
            ctx.progress.update(n, None, &format!("{} entries", n));
        }
        let Ok(e) = e else {
            skipped.unreadable += 1;
            continue;
        };
        let ft = e.file_type();
        if e.depth() > 0 {
            if kernos_core::secret::credential_reason(e.path(), &ctx.env.home).is_some() {
                skipped.secrets.push(e.path().to_path_buf());
                if ft.is_dir() {
                    it.skip_current_dir();
                }
                continue;
            }
            if prune_data && data.contains(e.path()) {
                skipped.data_dir = Some(e.path().to_path_buf());
                if ft.is_dir() {
                    it.skip_current_dir();
                }
                continue;
            }
            if ft.is_dir() {
                let dev = e.metadata().map(|m| m.dev()).ok();
                if dev.is_some_and(|d| kernel.is_kernel(d, e.path())) {
                    skipped.kernel.push(e.path().to_path_buf());
                    it.skip_current_dir();
                    continue;
                }
            }
            if special::is_special(ft)
                || (root_on_kernel_fs && ft.is_file() && special::blocking_name(e.file_name()))
            {
                skipped.special += 1;
                continue;
            }
        }
        if !f(&e)? {
            break;
        }
    }
    Ok(skipped)
}

fn secs_ago(m: &fs::Metadata, now: i64) -> i64 {
    now - mtime_secs(m)
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn entry_row(path: &Path, m: &fs::Metadata) -> Map<String, Value> {
    row([
        ("path", Value::from(path.display().to_string())),
        ("type", Value::from(kind_name(m.file_type()))),
        ("size", Value::from(if m.is_dir() { 0 } else { m.len() })),
        ("modified", Value::from(mtime_secs(m))),
    ])
}

// ----------------------------------------------------------------------------------- list

/// `fs.list`.
pub(crate) struct List;

impl Action for List {
    type Args = FsList;

    fn meta(&self) -> Meta {
        Meta {
            tool: "fs",
            name: "list",
            summary: "List the entries of a directory",
            effects: &[EffectKind::Read],
            reversibility: Reversibility::ReadOnly,
            output: &[
                ("path", ColumnKind::Path),
                ("name", ColumnKind::Text),
                ("type", ColumnKind::Text),
                ("size", ColumnKind::Bytes),
                ("modified", ColumnKind::Time),
                ("mode", ColumnKind::Text),
            ],
        }
    }

    fn effects(&self, a: &FsList, ctx: &Ctx<'_>) -> Result<Vec<Effect>> {
        Ok(vec![read_effect(
            ctx,
            &arg_path(ctx, &a.path, "path")?,
            a.recursive,
        )])
    }

    fn execute(&self, a: &FsList, ctx: &Ctx<'_>, _: &mut Recorder<'_>) -> Result<Output> {
        let dir = arg_path(ctx, &a.path, "path")?;
        let m = stat_root(&dir)?;
        let mut entries: Vec<(PathBuf, String, fs::Metadata)> = Vec::new();
        let mut truncated = false;
        if m.is_dir() && a.recursive {
            truncated = list_tree(ctx, &dir, a.all, &mut entries)?;
        } else if m.is_dir() {
            let rd = fs::read_dir(&dir).map_err(|e| ToolError::io("cannot list", &dir, e))?;
            for e in rd {
                let e = e.map_err(|e| ToolError::io("cannot list", &dir, e))?;
                if !a.all && is_hidden(&e.file_name()) {
                    continue;
                }
                let p = e.path();
                if let Ok(m) = fs::symlink_metadata(&p) {
                    entries.push((p, e.file_name().to_string_lossy().into_owned(), m));
                }
            }
            entries.sort_by(|x, y| x.1.cmp(&y.1));
        } else {
            // Like `ls file`: the file itself.
            let name = dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            entries.push((dir.clone(), name, fs::symlink_metadata(&dir).unwrap_or(m)));
        }
        let dirs = entries.iter().filter(|e| e.2.is_dir()).count();
        let bytes: u64 = entries
            .iter()
            .filter(|e| e.2.is_file())
            .map(|e| e.2.len())
            .sum();
        let rows = entries
            .iter()
            .map(|(p, name, m)| {
                let mut r = entry_row(p, m);
                r.insert("name".into(), Value::from(name.as_str()));
                r.insert("mode".into(), Value::from(mode_str(m.mode())));
                r
            })
            .collect();
        let mut summary = format!(
            "{} ({} director{}, {} other) in {}{}, {} in files",
            super::counted(entries.len() as u64, "entry", "entries"),
            dirs,
            if dirs == 1 { "y" } else { "ies" },
            entries.len() - dirs,
            dir.display(),
            if a.recursive { " and below" } else { "" },
            human_bytes(bytes)
        );
        if truncated {
            summary.push_str(&format!("; stopped at {LIST_TREE_LIMIT} entries"));
        }
        let mut out = Output::table(Vec::new(), rows).with_summary(summary);
        out.truncated = truncated;
        Ok(out)
    }
}

/// Most entries a recursive listing returns.
const LIST_TREE_LIMIT: usize = 10_000;

/// Every entry below `dir` (not `dir` itself), named by its path relative to `dir`, in walk
/// order; whether the listing stopped at [`LIST_TREE_LIMIT`].
fn list_tree(
    ctx: &Ctx<'_>,
    dir: &Path,
    hidden: bool,
    entries: &mut Vec<(PathBuf, String, fs::Metadata)>,
) -> Result<bool> {
    let mut truncated = false;
    walk(ctx, dir, hidden, None, |e| {
        if e.depth() == 0 {
            return Ok(true);
        }
        if entries.len() >= LIST_TREE_LIMIT {
            truncated = true;
            return Ok(false);
        }
        if let Ok(m) = e.metadata() {
            let name = e
                .path()
                .strip_prefix(dir)
                .unwrap_or(e.path())
                .display()
                .to_string();
            entries.push((e.path().to_path_buf(), name, m));
        }
        Ok(true)
    })?;
    Ok(truncated)
}

// ----------------------------------------------------------------------------------- find

/// `fs.find`.
pub(crate) struct Find;

/// How many results `fs.find` returns at most when no limit is given.
const FIND_DEFAULT_LIMIT: usize = 10_000;

impl Action for Find {
    type Args = FsFind;

    fn meta(&self) -> Meta {
        Meta {
            tool: "fs",
            name: "find",
            summary: "Find files by name, type, size or age, searching a tree",
            effects: &[EffectKind::Read],
            reversibility: Reversibility::ReadOnly,
            output: &[
                ("path", ColumnKind::Path),
                ("type", ColumnKind::Text),
                ("size", ColumnKind::Bytes),
                ("modified", ColumnKind::Time),
            ],
        }
    }

    fn effects(&self, a: &FsFind, ctx: &Ctx<'_>) -> Result<Vec<Effect>> {
        Ok(vec![read_effect(
            ctx,
            &arg_path(ctx, &a.path, "path")?,
            true,
        )])
    }

    fn execute(&self, a: &FsFind, ctx: &Ctx<'_>, _: &mut Recorder<'_>) -> Result<Output> {
        let root = arg_path(ctx, &a.path, "path")?;
        stat_root(&root)?;
        let glob = a
            .name
            .as_deref()
            .map(|n| name_glob(n, "name"))
            .transpose()?;
        if let (Some(lo), Some(hi)) = (a.min_size, a.max_size) {
            if lo > hi {
                return Err(ToolError::InvalidArgs(format!(
                    "min_size {lo} is larger than max_size {hi}; nothing could match"
                )));
            }
        }
        if a.max_depth == Some(0) {
            return Err(ToolError::InvalidArgs(
                "max_depth 0 searches nothing; use 1 for the directory's own entries".into(),
            ));
        }
        let limit = a.limit.unwrap_or(FIND_DEFAULT_LIMIT);
        let now = now_secs();
        let sized = a.min_size.is_some() || a.max_size.is_some();
        let mut rows = Vec::new();
        let mut truncated = false;
        let mut bytes = 0u64;
        let skipped = walk(ctx, &root, a.hidden, a.max_depth, |e| {
            if e.depth() == 0 {
                return Ok(true);
            }
            let ft = e.file_type();
            if let Some(t) = a.entry_type {
                let ok = match t {
                    EntryType::File => ft.is_file(),
                    EntryType::Dir => ft.is_dir(),
                    EntryType::Symlink => ft.is_symlink(),
                };
                if !ok {
                    return Ok(true);
                }
            }
            if let Some(g) = &glob {
                if !g.is_match(e.file_name()) {
                    return Ok(true);
                }
            }
            let Ok(m) = e.metadata() else {
                return Ok(true);
            };
            // Sizes are about files: a size condition leaves directories and links out.
            if sized && !ft.is_file() {
                return Ok(true);
            }
            if a.min_size.is_some_and(|lo| m.len() < lo)
                || a.max_size.is_some_and(|hi| m.len() > hi)
            {
                return Ok(true);
            }
            let age = secs_ago(&m, now);
            if a.older_than.is_some_and(|s| age <= s as i64)
                || a.newer_than.is_some_and(|s| age > s as i64)
            {
                return Ok(true);
            }
            if a.empty {
                let empty = if ft.is_file() {
                    m.len() == 0
                } else if ft.is_dir() {
                    !nonempty_dir(e.path())
                } else {
                    false
                };
                if !empty {
                    return Ok(true);
                }
            }
            // Sorted results are cut after sorting: every match has to be seen first.
            if a.sort.is_none() && rows.len() >= limit {
                truncated = true;
                return Ok(false);
            }
            if ft.is_file() {
                bytes += m.len();
            }
            rows.push(entry_row(e.path(), &m));
            Ok(true)
        })?;
        if let Some(order) = a.sort {
            truncated = sort_by_mtime(&mut rows, order, limit);
            bytes = rows
                .iter()
                .filter(|r| r.get("type").and_then(Value::as_str) == Some("file"))
                .filter_map(|r| r.get("size").and_then(Value::as_u64))
                .sum();
        }
        let mut summary = format!(
            "{} match{} under {} ({} in files)",
            rows.len(),
            if rows.len() == 1 { "" } else { "es" },
            root.display(),
            human_bytes(bytes)
        );
        if truncated {
            summary.push_str(&format!("; stopped at the limit of {limit}"));
        }
        skipped.note(&mut summary);
        let mut out = Output::table(Vec::new(), rows).with_summary(summary);
        out.truncated = truncated;
        Ok(out)
    }
}

/// Orders `rows` by their `modified` column (ties by path) and keeps the first `limit`;
/// whether any were cut.
fn sort_by_mtime(rows: &mut Vec<Map<String, Value>>, order: FindSort, limit: usize) -> bool {
    let key = |r: &Map<String, Value>| {
        let t = r.get("modified").and_then(Value::as_i64).unwrap_or(0);
        let p = r
            .get("path")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        (t, p)
    };
    rows.sort_by(|a, b| {
        let (ta, pa) = key(a);
        let (tb, pb) = key(b);
        let by_time = match order {
            FindSort::Newest => tb.cmp(&ta),
            FindSort::Oldest => ta.cmp(&tb),
        };
        by_time.then(pa.cmp(&pb))
    });
    let cut = rows.len() > limit;
    rows.truncate(limit);
    cut
}

// -------------------------------------------------------------------------------- largest

/// `fs.largest`.
pub(crate) struct Largest;

/// Sizes of every directory under `root` (itself included): the files beneath each, hard
/// links counted once. Also returns the number of files and the skipped count.
pub(crate) struct Totals {
    pub(crate) dirs: HashMap<PathBuf, u64>,
    pub(crate) files: Vec<(PathBuf, u64, i64)>,
    pub(crate) skipped: Skipped,
}

pub(crate) fn totals(ctx: &Ctx<'_>, root: &Path, want_dirs: bool) -> Result<Totals> {
    let mut dirs: HashMap<PathBuf, u64> = HashMap::new();
    let mut files = Vec::new();
    let mut inodes: HashSet<(u64, u64)> = HashSet::new();
    let skipped = walk(ctx, root, true, None, |e| {
        let ft = e.file_type();
        if ft.is_dir() {
            if want_dirs {
                dirs.entry(e.path().to_path_buf()).or_insert(0);
            }
            return Ok(true);
        }
        if !ft.is_file() {
            return Ok(true);
        }
        let Ok(m) = e.metadata() else {
            return Ok(true);
        };
        if m.nlink() > 1 && !inodes.insert((m.dev(), m.ino())) {
            return Ok(true);
        }
        if want_dirs {
            let mut p = e.path().parent();
            while let Some(d) = p {
                *dirs.entry(d.to_path_buf()).or_insert(0) += m.len();
                if d == root {
                    break;
                }
                p = d.parent();
            }
        }
        files.push((e.path().to_path_buf(), m.len(), mtime_secs(&m)));
        Ok(true)
    })?;
    Ok(Totals {
        dirs,
        files,
        skipped,
    })
}

/// The `n` largest of `items` by size, largest first, ties by path.
fn top<T: Ord + Clone>(items: impl Iterator<Item = (u64, T)>, n: usize) -> Vec<(u64, T)> {
    let mut heap: BinaryHeap<Reverse<(u64, Reverse<T>)>> = BinaryHeap::new();
    for (size, t) in items {
        heap.push(Reverse((size, Reverse(t))));
        if heap.len() > n {
            heap.pop();
        }
    }
    let mut v: Vec<(u64, T)> = heap
        .into_iter()
        .map(|Reverse((s, Reverse(t)))| (s, t))
        .collect();
    v.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    v
}

impl Action for Largest {
    type Args = FsLargest;

    fn meta(&self) -> Meta {
        Meta {
            tool: "fs",
            name: "largest",
            summary: "The biggest files (or directories, by total size) under a path",
            effects: &[EffectKind::Read],
            reversibility: Reversibility::ReadOnly,
            output: &[
                ("path", ColumnKind::Path),
                ("type", ColumnKind::Text),
                ("size", ColumnKind::Bytes),
            ],
        }
    }

    fn effects(&self, a: &FsLargest, ctx: &Ctx<'_>) -> Result<Vec<Effect>> {
        Ok(vec![read_effect(
            ctx,
            &arg_path(ctx, &a.path, "path")?,
            true,
        )])
    }

    fn execute(&self, a: &FsLargest, ctx: &Ctx<'_>, _: &mut Recorder<'_>) -> Result<Output> {
        let root = arg_path(ctx, &a.path, "path")?;
        stat_root(&root)?;
        if a.count == 0 {
            return Err(ToolError::InvalidArgs(
                "count is 0; ask for at least one".into(),
            ));
        }
        let want_dirs = a.kind == SizeKind::Dirs;
        let t = totals(ctx, &root, want_dirs)?;
        let (kind, best) = if want_dirs {
            let dirs = t.dirs.into_iter().filter(|(p, _)| p != &root);
            ("dir", top(dirs.map(|(p, s)| (s, p)), a.count))
        } else {
            let files = t.files.into_iter().map(|(p, s, _)| (s, p));
            ("file", top(files, a.count))
        };
        let rows: Vec<_> = best
            .iter()
            .map(|(s, p)| {
                row([
                    ("path", Value::from(p.display().to_string())),
                    ("type", Value::from(kind)),
                    ("size", Value::from(*s)),
                ])
            })
            .collect();
        let total: u64 = best.iter().map(|b| b.0).sum();
        let mut summary = match rows.len() {
            0 => format!("no {kind}s under {}", root.display()),
            1 => format!(
                "the largest {kind} under {} ({})",
                root.display(),
                human_bytes(total)
            ),
            n => format!(
                "the {n} largest {kind}s under {} ({} together)",
                root.display(),
                human_bytes(total)
            ),
        };
        t.skipped.note(&mut summary);
        Ok(Output::table(Vec::new(), rows).with_summary(summary))
    }
}

// ---------------------------------------------------------------------------------- usage

/// `fs.usage`.
pub(crate) struct Usage;

impl Action for Usage {
    type Args = FsUsage;

    fn meta(&self) -> Meta {
        Meta {
            tool: "fs",
            name: "usage",
            summary: "Total size of a directory tree, and of each of its entries, biggest first",
            effects: &[EffectKind::Read],
            reversibility: Reversibility::ReadOnly,
            output: &[
                ("path", ColumnKind::Path),
                ("type", ColumnKind::Text),
                ("size", ColumnKind::Bytes),
                ("files", ColumnKind::Int),
                ("percent", ColumnKind::Percent),
            ],
        }
    }

    fn effects(&self, a: &FsUsage, ctx: &Ctx<'_>) -> Result<Vec<Effect>> {
        Ok(vec![read_effect(
            ctx,
            &arg_path(ctx, &a.path, "path")?,
            true,
        )])
    }

    fn execute(&self, a: &FsUsage, ctx: &Ctx<'_>, _: &mut Recorder<'_>) -> Result<Output> {
        let root = arg_path(ctx, &a.path, "path")?;
        stat_root(&root)?;
        // Per immediate child: kind, bytes, files.
        let mut children: HashMap<PathBuf, (&'static str, u64, u64)> = HashMap::new();
        let mut inodes: HashSet<(u64, u64)> = HashSet::new();
        let mut total = 0u64;
        let mut files = 0u64;
        let skipped = walk(ctx, &root, true, None, |e| {
            let ft = e.file_type();
            let child = if e.depth() == 0 {
                None
            } else {
                let rel = e.path().strip_prefix(&root).unwrap_or(e.path());
                rel.components().next().map(|c| root.join(c.as_os_str()))
            };
            if let (Some(c), 1) = (&child, e.depth()) {
                children.insert(c.clone(), (kind_name(ft), 0, 0));
            }
            if !ft.is_file() {
                return Ok(true);
            }
            let Ok(m) = e.metadata() else {
                return Ok(true);
            };
            if m.nlink() > 1 && !inodes.insert((m.dev(), m.ino())) {
                return Ok(true);
            }
            total += m.len();
            files += 1;
            if let Some(c) = child {
                if let Some(v) = children.get_mut(&c) {
                    v.1 += m.len();
                    v.2 += 1;
                }
            }
            Ok(true)
        })?;
        let mut list: Vec<_> = children.into_iter().collect();
        list.sort_by(|a, b| b.1.1.cmp(&a.1.1).then_with(|| a.0.cmp(&b.0)));
        if list.is_empty() && fs::metadata(&root).is_ok_and(|m| m.is_file()) {
            list.push((root.clone(), ("file", total, files)));
        }
        let rows = list
            .iter()
            .map(|(p, (kind, size, n))| {
                let pct = if total == 0 {
                    0.0
                } else {
                    (*size as f64 * 1000.0 / total as f64).round() / 10.0
                };
                row([
                    ("path", Value::from(p.display().to_string())),
                    ("type", Value::from(*kind)),
                    ("size", Value::from(*size)),
                    ("files", Value::from(*n)),
                    ("percent", Value::from(pct)),
                ])
            })
            .collect();
        let mut summary = format!(
            "{} in {} file{} under {}",
            human_bytes(total),
            files,
            if files == 1 { "" } else { "s" },
            root.display()
        );
        skipped.note(&mut summary);
        Ok(Output::table(Vec::new(), rows).with_summary(summary))
    }
}

// ----------------------------------------------------------------------------------- read

/// `fs.read`.
pub(crate) struct Read;

/// The most text `fs.read` returns; bigger files are cut there (and say so).
pub(crate) const READ_CAP: u64 = 1 << 20;

/// The last `n` lines of a file, read backwards from the end in blocks (cheap on huge logs),
/// at most `cap` bytes of them. Returns the bytes and whether they were cut.
fn tail_bytes(f: &mut fs::File, len: u64, n: usize, cap: u64) -> std::io::Result<(Vec<u8>, bool)> {
    const BLOCK: u64 = 64 * 1024;
    let mut buf: Vec<u8> = Vec::new();
    let mut pos = len;
    loop {
        // Newlines in what we have, not counting one that ends the file.
        let body = buf.strip_suffix(b"\n").unwrap_or(&buf);
        let newlines = body.iter().filter(|&&b| b == b'\n').count();
        if newlines >= n || pos == 0 || buf.len() as u64 > cap {
            break;
        }
        let step = BLOCK.min(pos);
        pos -= step;
        f.seek(SeekFrom::Start(pos))?;
        let mut chunk = vec![0u8; step as usize];
        f.read_exact(&mut chunk)?;
        chunk.extend_from_slice(&buf);
        buf = chunk;
    }
    let body_len = buf.strip_suffix(b"\n").map_or(buf.len(), <[u8]>::len);
    let mut start = 0usize;
    let mut seen = 0usize;
    for i in (0..body_len).rev() {
        if buf[i] == b'\n' {
            seen += 1;
            if seen == n {
                start = i + 1;
                break;
            }
        }
    }
    let mut out = buf.split_off(start);
    let cut = out.len() as u64 > cap;
    if cut {
        out.drain(..out.len() - cap as usize);
    }
    Ok((out, cut))
}

/// The first `n` lines (or everything when `None`), at most `cap` bytes.
fn head_bytes(f: &mut fs::File, n: Option<usize>, cap: u64) -> std::io::Result<(Vec<u8>, bool)> {
    let mut out = Vec::new();
    let mut r = std::io::BufReader::new(f).take(cap + 1);
    match n {
        None => {
            r.read_to_end(&mut out)?;
        }
        Some(n) => {
            use std::io::BufRead;
            for _ in 0..n {
                if r.read_until(b'\n', &mut out)? == 0 {
                    break;
                }
            }
        }
    }
    let cut = out.len() as u64 > cap;
    out.truncate(cap as usize);
    Ok((out, cut))
}

impl Action for Read {
    type Args = FsRead;

    fn meta(&self) -> Meta {
        Meta {
            tool: "fs",
            name: "read",
            summary: "Show a text file, or its first or last lines",
            effects: &[EffectKind::Read],
            reversibility: Reversibility::ReadOnly,
            output: &[],
        }
    }

    fn effects(&self, a: &FsRead, ctx: &Ctx<'_>) -> Result<Vec<Effect>> {
        Ok(vec![read_effect(
            ctx,
            &arg_path(ctx, &a.path, "path")?,
            false,
        )])
    }

    fn execute(&self, a: &FsRead, ctx: &Ctx<'_>, _: &mut Recorder<'_>) -> Result<Output> {
        let path = arg_path(ctx, &a.path, "path")?;
        if a.head.is_some() && a.tail.is_some() {
            return Err(ToolError::InvalidArgs("give head or tail, not both".into()));
        }
        let m = stat_root(&path)?;
        regular_file(&path, &m)?;
        let mut f =
            special::open_read(&path).map_err(|e| ToolError::io("cannot read", &path, e))?;
        let len = m.len();
        let io = |e| ToolError::io("cannot read", &path, e);
        let (bytes, cut) = match a.tail {
            Some(n) => tail_bytes(&mut f, len, n, READ_CAP).map_err(io)?,
            None => head_bytes(&mut f, a.head, READ_CAP).map_err(io)?,
        };
        if looks_binary(&bytes) {
            return Err(ToolError::Refused(format!(
                "{} looks binary ({}), not text; use fs.checksum to identify it, or \
                 shell.run with `file` or `xxd` to inspect it",
                path.display(),
                human_bytes(len)
            )));
        }
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let lines = text.lines().count();
        let what = match (a.head, a.tail) {
            (Some(n), _) => format!("first {} of ", lines_word(n.min(lines))),
            (_, Some(n)) => format!("last {} of ", lines_word(n.min(lines))),
            _ => String::new(),
        };
        let mut summary = format!(
            "{what}{} ({}), {} line{} shown",
            path.display(),
            human_bytes(len),
            lines,
            if lines == 1 { "" } else { "s" }
        );
        if cut {
            summary.push_str(&format!(
                "; cut at {} — use head or tail to see a part, or fs.search to find lines",
                human_bytes(READ_CAP)
            ));
        }
        let mut out = Output::text(text).with_summary(summary);
        out.truncated = cut;
        Ok(out)
    }
}

/// "line" for one, "3 lines" for more: "first line of f", "last 3 lines of f".
fn lines_word(n: usize) -> String {
    if n == 1 {
        "line".into()
    } else {
        format!("{n} lines")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(content: &[u8]) -> (tempfile::TempDir, fs::File, u64) {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        fs::write(&p, content).unwrap();
        (d, fs::File::open(&p).unwrap(), content.len() as u64)
    }

    #[test]
    fn tail_takes_last_lines_with_or_without_final_newline() {
        let (_d, mut f, len) = file(b"a\nb\nc\n");
        assert_eq!(tail_bytes(&mut f, len, 2, 100).unwrap().0, b"b\nc\n");
        let (_d, mut f, len) = file(b"a\nb\nc");
        assert_eq!(tail_bytes(&mut f, len, 2, 100).unwrap().0, b"b\nc");
        assert_eq!(tail_bytes(&mut f, len, 10, 100).unwrap().0, b"a\nb\nc");
        assert_eq!(tail_bytes(&mut f, len, 0, 100).unwrap().0, b"");
    }

    #[test]
    fn tail_crosses_blocks() {
        let mut content = Vec::new();
        for i in 0..50_000 {
            content.extend_from_slice(format!("line {i}\n").as_bytes());
        }
        let (_d, mut f, len) = file(&content);
        let (got, cut) = tail_bytes(&mut f, len, 3, 1 << 20).unwrap();
        assert_eq!(got, b"line 49997\nline 49998\nline 49999\n");
        assert!(!cut);
        let (got, cut) = tail_bytes(&mut f, len, 40_000, 1000).unwrap();
        assert!(cut && got.len() == 1000 && got.ends_with(b"line 49999\n"));
    }

    #[test]
    fn head_stops_at_lines_or_cap() {
        let (_d, mut f, _) = file(b"1\n2\n3\n");
        assert_eq!(
            head_bytes(&mut f, Some(2), 100).unwrap(),
            (b"1\n2\n".to_vec(), false)
        );
        let (_d, mut f, _) = file(b"0123456789");
        assert_eq!(
            head_bytes(&mut f, None, 4).unwrap(),
            (b"0123".to_vec(), true)
        );
    }

    #[test]
    fn top_keeps_the_largest_in_order() {
        let v = top(
            vec![(5, "e"), (1, "a"), (9, "z"), (5, "b"), (3, "c")].into_iter(),
            3,
        );
        assert_eq!(v, vec![(9, "z"), (5, "b"), (5, "e")]);
    }
}
