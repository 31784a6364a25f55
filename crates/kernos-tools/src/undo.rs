//! Undo: what a step records before it changes anything, and how the engine puts it back.
//!
//! Tools never write their own undo logic. Before each change they call a [`Recorder`] method
//! (`before_write`, `trash`, `before_move`, …), which computes the inverse — snapshotting file
//! content into the blob store when the change would destroy it — and hands it to the engine's
//! [`UndoSink`], which journals it durably *before* the method returns. Only then does the tool
//! act. So a crash at any point leaves a journal that knows how to undo whatever happened.
//!
//! After a step, the engine stores a [`Fingerprint`] of each touched path. Undo first compares
//! every fingerprint with the path as it is now; anything that changed since is reported and
//! left alone instead of clobbered. Everything a step deletes goes to the trash, never straight
//! to oblivion; what undo removes is only what the transaction itself created, unchanged since,
//! and is removed for good (keeping copies of copies would only fill the trash).

use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use kernos_journal::{BlobId, BlobStore};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::env::Env;
use crate::error::{Result, ToolError};

/// Metadata needed to restore a file exactly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileMeta {
    /// Permission bits (and file type bits, ignored on restore).
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Modification time, nanoseconds since the epoch.
    pub mtime_ns: i64,
}

impl FileMeta {
    fn of(m: &fs::Metadata) -> Self {
        FileMeta {
            mode: m.mode(),
            uid: m.uid(),
            gid: m.gid(),
            mtime_ns: mtime_ns(m),
        }
    }
}

/// A saved copy of a file's content (in the blob store) and metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileSnapshot {
    /// Blob holding the content.
    pub blob: BlobId,
    /// Size, bytes.
    pub size: u64,
    /// Metadata.
    pub meta: FileMeta,
}

/// The inverse of one change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Inverse {
    /// Put a file's old content and metadata back.
    RestoreFile {
        /// The file.
        path: PathBuf,
        /// What it was.
        snapshot: FileSnapshot,
    },
    /// Remove (to the trash) something the step created.
    Remove {
        /// The created path.
        path: PathBuf,
        /// Whether it is a directory.
        dir: bool,
    },
    /// Remove (to the trash) a whole directory tree the step created in one go (a copied
    /// tree), provided the tree is still exactly as the step left it.
    RemoveTree {
        /// The created directory.
        path: PathBuf,
    },
    /// Move `from` back to `to` (undoes a move, or a delete into the trash).
    MoveBack {
        /// Where it is now.
        from: PathBuf,
        /// Where it was.
        to: PathBuf,
    },
    /// Restore permission bits.
    SetMode {
        /// The path.
        path: PathBuf,
        /// Old mode.
        mode: u32,
    },
    /// Run a step (e.g. `pkg.remove` after `pkg.install`, `svc.start` after `svc.stop`).
    Step {
        /// Tool.
        tool: String,
        /// Action.
        action: String,
        /// Arguments.
        args: Value,
    },
}

/// A directory's modification time before a change to its entries, restored after undo so the
/// tree is identical to before, timestamps included.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirStamp {
    /// The directory.
    pub path: PathBuf,
    /// Its mtime, ns.
    pub mtime_ns: i64,
}

/// One undo record: an inverse plus the directory times to restore after applying it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// What to do.
    pub inverse: Inverse,
    /// Directory times to put back afterwards.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dirs: Vec<DirStamp>,
}

impl Record {
    /// One-line description for reports.
    pub fn describe(&self) -> String {
        match &self.inverse {
            Inverse::RestoreFile { path, .. } => format!("restore {}", path.display()),
            Inverse::Remove { path, .. } => format!("remove {}", path.display()),
            Inverse::RemoveTree { path } => format!("remove the tree {}", path.display()),
            Inverse::MoveBack { from, to } => {
                format!("move {} back to {}", from.display(), to.display())
            }
            Inverse::SetMode { path, mode } => {
                format!("chmod {:o} {}", mode & 0o7777, path.display())
            }
            Inverse::Step { tool, action, args } => format!("run {tool}.{action} {args}"),
        }
    }

    /// The path whose state after the step must still hold for undo to be safe.
    fn watched(&self) -> Option<&Path> {
        match &self.inverse {
            Inverse::RestoreFile { path, .. }
            | Inverse::SetMode { path, .. }
            | Inverse::Remove { path, .. }
            | Inverse::RemoveTree { path } => Some(path),
            Inverse::MoveBack { from, .. } => Some(from),
            Inverse::Step { .. } => None,
        }
    }

    /// The fingerprint the engine stores right after the step ran.
    pub fn after_state(&self) -> Option<Fingerprint> {
        let deep = matches!(self.inverse, Inverse::RemoveTree { .. });
        self.watched().map(|p| {
            if deep {
                Fingerprint::of_tree(p)
            } else {
                Fingerprint::of(p)
            }
        })
    }
}

/// Receives undo records; the engine journals them durably before returning.
pub trait UndoSink {
    /// Records inverses. When this returns `Ok`, they survive a crash.
    fn record(&mut self, records: Vec<Record>) -> Result<()>;
}

/// The records of one step and the after-state of each.
///
/// A record's after-state is the state of its path once *its* change is done: normally when the
/// step ends, but if a later record of the same step touches the same path, the state just
/// before that later change (which is exactly when the later record arrives). Undo, walking
/// back, then finds every path as the record left it.
#[derive(Debug, Default, Clone)]
pub struct StepRecords {
    /// Records in order.
    pub records: Vec<Record>,
    /// After-state per record (filled as described above; all set after [`Self::finish`]).
    pub after: Vec<Option<Fingerprint>>,
    open: Vec<bool>,
}

impl StepRecords {
    /// Adds records about to be acted on, closing earlier records on the same paths.
    pub fn push(&mut self, new: &[Record]) {
        for r in new {
            if let Some(p) = r.watched() {
                for j in 0..self.records.len() {
                    if self.open[j] && self.records[j].watched() == Some(p) {
                        self.after[j] = Some(Fingerprint::of(p));
                        self.open[j] = false;
                    }
                }
            }
            self.records.push(r.clone());
            self.after.push(None);
            self.open.push(true);
        }
    }

    /// The step is over: fingerprints every record still open.
    pub fn finish(&mut self) {
        for j in 0..self.records.len() {
            if self.open[j] {
                self.after[j] = self.records[j].after_state();
                self.open[j] = false;
            }
        }
    }
}

impl std::ops::Deref for StepRecords {
    type Target = [Record];
    fn deref(&self) -> &[Record] {
        &self.records
    }
}

/// A sink that keeps records in memory (tests, dry runs).
#[derive(Debug, Default)]
pub struct MemorySink(pub StepRecords);

impl UndoSink for MemorySink {
    fn record(&mut self, records: Vec<Record>) -> Result<()> {
        self.0.push(&records);
        Ok(())
    }
}

/// What a path looks like, compact enough to journal, precise enough to notice a change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    /// `missing`, `file`, `dir`, `symlink`, `other`.
    pub kind: String,
    /// Size (files).
    #[serde(default)]
    pub size: u64,
    /// Permission bits.
    #[serde(default)]
    pub mode: u32,
    /// mtime, ns (files and symlinks only: a directory's mtime moves whenever undo itself
    /// changes its entries; what is inside a directory is covered by the records of those
    /// entries, and a created directory is only removed once it is empty again).
    #[serde(default)]
    pub mtime_ns: i64,
    /// blake3 over every entry beneath a directory, for trees removed as a whole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tree: Option<String>,
}

impl Fingerprint {
    /// Fingerprints `path` (not following a final symlink).
    pub fn of(path: &Path) -> Self {
        let Ok(m) = fs::symlink_metadata(path) else {
            return Fingerprint {
                kind: "missing".into(),
                size: 0,
                mode: 0,
                mtime_ns: 0,
                tree: None,
            };
        };
        let ft = m.file_type();
        let kind = if ft.is_file() {
            "file"
        } else if ft.is_dir() {
            "dir"
        } else if ft.is_symlink() {
            "symlink"
        } else {
            "other"
        };
        let (size, mtime) = if ft.is_dir() {
            (0, 0)
        } else {
            (m.len(), mtime_ns(&m))
        };
        Fingerprint {
            kind: kind.into(),
            size,
            mode: m.mode() & 0o7777,
            mtime_ns: mtime,
            tree: None,
        }
    }

    /// Like [`Fingerprint::of`], and for a directory also a hash of every entry beneath it
    /// (relative path, kind, size, mode, and mtime for non-directories).
    pub fn of_tree(path: &Path) -> Self {
        let mut fp = Fingerprint::of(path);
        if fp.kind != "dir" {
            return fp;
        }
        let mut entries: Vec<(PathBuf, Fingerprint)> = Vec::new();
        let mut stack = vec![path.to_path_buf()];
        while let Some(dir) = stack.pop() {
            let Ok(rd) = fs::read_dir(&dir) else { continue };
            for e in rd.flatten() {
                let p = e.path();
                let f = Fingerprint::of(&p);
                if f.kind == "dir" {
                    stack.push(p.clone());
                }
                entries.push((p.strip_prefix(path).map(Path::to_path_buf).unwrap_or(p), f));
            }
        }
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        let mut h = blake3::Hasher::new();
        for (p, f) in &entries {
            h.update(p.as_os_str().as_encoded_bytes());
            h.update(&[0]);
            h.update(f.kind.as_bytes());
            h.update(&f.size.to_le_bytes());
            h.update(&f.mode.to_le_bytes());
            h.update(&f.mtime_ns.to_le_bytes());
        }
        fp.tree = Some(h.finalize().to_hex().to_string());
        fp
    }
}

/// Modification time in ns.
pub fn mtime_ns(m: &fs::Metadata) -> i64 {
    m.mtime()
        .saturating_mul(1_000_000_000)
        .saturating_add(m.mtime_nsec())
}

/// Sets a path's modification time (not following symlinks), leaving its access time alone.
pub fn set_mtime(path: &Path, ns: i64) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let times = [
        libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_OMIT,
        },
        libc::timespec {
            tv_sec: ns.div_euclid(1_000_000_000),
            tv_nsec: ns.rem_euclid(1_000_000_000),
        },
    ];
    // SAFETY: `c` is a valid NUL-terminated path and `times` points at two timespecs.
    let r = unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn stamp(path: &Path) -> Option<DirStamp> {
    let parent = path.parent()?;
    let m = fs::metadata(parent).ok()?;
    Some(DirStamp {
        path: parent.to_path_buf(),
        mtime_ns: mtime_ns(&m),
    })
}

fn stamps(paths: &[&Path]) -> Vec<DirStamp> {
    let mut v: Vec<DirStamp> = paths.iter().filter_map(|p| stamp(p)).collect();
    v.dedup_by(|a, b| a.path == b.path);
    v
}

/// Moves `from` to `to`, copying and then removing when they are on different filesystems.
/// Metadata (mode, owner when permitted, mtime) is preserved either way.
pub fn move_path(from: &Path, to: &Path) -> Result<()> {
    match fs::rename(from, to) {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EXDEV) => {
            copy_tree(from, to)?;
            let m =
                fs::symlink_metadata(from).map_err(|e| ToolError::io("cannot stat", from, e))?;
            if m.is_dir() {
                fs::remove_dir_all(from).map_err(|e| ToolError::io("cannot remove", from, e))
            } else {
                fs::remove_file(from).map_err(|e| ToolError::io("cannot remove", from, e))
            }
        }
        Err(e) => Err(ToolError::io("cannot move", from, e)),
    }
}

/// Copies a file, symlink or directory tree, preserving modes, mtimes and (when permitted)
/// owners. Refuses to overwrite: `to` must not exist.
pub fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    copy_tree_with(from, to, &mut |_| Ok(()))
}

/// Bytes a copy moves between two calls of its `tick`: small enough that a stop request is
/// honoured within a fraction of a second, large enough not to cost anything.
pub const COPY_CHUNK: usize = 1 << 20;

/// Like [`copy_tree`], calling `tick` with the size of each chunk written (at most
/// [`COPY_CHUNK`]) and before each entry of a tree (with 0). An error from `tick` (a stop
/// request) ends the copy at once and is returned. What was copied so far stays where it is:
/// the caller recorded the whole target for undo before starting, so undo removes it.
pub fn copy_tree_with(
    from: &Path,
    to: &Path,
    tick: &mut dyn FnMut(u64) -> Result<()>,
) -> Result<()> {
    tick(0)?;
    let m = fs::symlink_metadata(from).map_err(|e| ToolError::io("cannot stat", from, e))?;
    let ft = m.file_type();
    if ft.is_symlink() {
        let target = fs::read_link(from).map_err(|e| ToolError::io("cannot read link", from, e))?;
        std::os::unix::fs::symlink(&target, to)
            .map_err(|e| ToolError::io("cannot create link", to, e))?;
    } else if ft.is_dir() {
        fs::create_dir(to).map_err(|e| ToolError::io("cannot create directory", to, e))?;
        let rd = fs::read_dir(from).map_err(|e| ToolError::io("cannot list", from, e))?;
        for e in rd {
            let e = e.map_err(|e| ToolError::io("cannot list", from, e))?;
            copy_tree_with(&e.path(), &to.join(e.file_name()), tick)?;
        }
    } else if !ft.is_file() {
        // Opening a FIFO would block forever and a device may never end: refuse instead.
        return Err(ToolError::Refused(format!(
            "{} is a FIFO, socket or device, which cannot be copied",
            from.display()
        )));
    } else {
        let mut src = fs::File::open(from).map_err(|e| ToolError::io("cannot open", from, e))?;
        let mut dst = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(to)
            .map_err(|e| ToolError::io("cannot create", to, e))?;
        copy_chunks(&mut src, &mut dst, from, to, tick)?;
        dst.sync_all()
            .map_err(|e| ToolError::io("cannot sync", to, e))?;
    }
    if !ft.is_symlink() {
        fs::set_permissions(to, fs::Permissions::from_mode(m.mode() & 0o7777))
            .map_err(|e| ToolError::io("cannot set mode of", to, e))?;
    }
    // Owner: only root may give files away; as anyone else the copy is simply ours.
    let _ = std::os::unix::fs::lchown(to, Some(m.uid()), Some(m.gid()));
    set_mtime(to, mtime_ns(&m)).map_err(|e| ToolError::io("cannot set time of", to, e))?;
    Ok(())
}

/// Copies `src` to `dst` in chunks of [`COPY_CHUNK`], calling `tick` after each.
pub fn copy_chunks(
    src: &mut fs::File,
    dst: &mut fs::File,
    from: &Path,
    to: &Path,
    tick: &mut dyn FnMut(u64) -> Result<()>,
) -> Result<()> {
    use std::io::{Read, Write};
    let mut buf = vec![0u8; COPY_CHUNK];
    loop {
        let n = match src.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(ToolError::io("cannot read", from, e)),
        };
        dst.write_all(&buf[..n])
            .map_err(|e| ToolError::io("cannot copy to", to, e))?;
        tick(n as u64)?;
    }
}

/// Whether the entry `path` may be taken out of its directory: the directory is writable and
/// searchable by us and not on a read-only file system (`access` answers both, for root too).
fn removable(path: &Path) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let c = std::ffi::CString::new(parent.as_os_str().as_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: `c` is a valid NUL-terminated path.
    if unsafe { libc::access(c.as_ptr(), libc::W_OK | libc::X_OK) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// A fresh, empty directory inside the trash for one deleted item.
fn trash_slot(env: &Env) -> Result<PathBuf> {
    let root = env.trash_dir();
    // Private: the trash holds what users deleted.
    std::os::unix::fs::DirBuilderExt::mode(fs::DirBuilder::new().recursive(true), 0o700)
        .create(&root)
        .map_err(|e| ToolError::io("cannot create trash", &root, e))?;
    let slot = root.join(kernos_core::RawId::generate().to_string());
    fs::create_dir(&slot).map_err(|e| ToolError::io("cannot create trash", &slot, e))?;
    Ok(slot)
}

/// What tools call before each change. Each method journals the inverse (through the sink)
/// before returning; some also perform the change when doing both is the only safe order
/// (`trash`).
pub struct Recorder<'a> {
    sink: &'a mut dyn UndoSink,
    env: &'a Env,
    blobs: &'a BlobStore,
}

impl<'a> Recorder<'a> {
    /// A recorder writing to `sink`.
    pub fn new(sink: &'a mut dyn UndoSink, env: &'a Env, blobs: &'a BlobStore) -> Self {
        Recorder { sink, env, blobs }
    }

    /// Before creating or replacing the file at `path`: snapshots it if it exists (content
    /// into the blob store), or notes that undo must remove it if it does not.
    pub fn before_write(&mut self, path: &Path) -> Result<()> {
        let inverse = match fs::symlink_metadata(path) {
            Ok(m) if m.is_file() => {
                let (blob, size) = self.blobs.put_file(path)?;
                Inverse::RestoreFile {
                    path: path.to_owned(),
                    snapshot: FileSnapshot {
                        blob,
                        size,
                        meta: FileMeta::of(&m),
                    },
                }
            }
            Ok(m) if m.is_dir() => return Err(ToolError::AlreadyExists(path.to_owned())),
            Ok(_) => {
                return Err(ToolError::Refused(format!(
                    "{} is not a regular file; write to its target instead",
                    path.display()
                )));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Inverse::Remove {
                path: path.to_owned(),
                dir: false,
            },
            Err(e) => return Err(ToolError::io("cannot stat", path, e)),
        };
        self.sink.record(vec![Record {
            inverse,
            dirs: stamps(&[path]),
        }])
    }

    /// Before creating directory `path` and any missing parents: notes that undo must remove
    /// each directory that is about to be created.
    pub fn before_mkdir(&mut self, path: &Path) -> Result<()> {
        let mut missing: Vec<&Path> = Vec::new();
        let mut p = Some(path);
        while let Some(cur) = p {
            if fs::symlink_metadata(cur).is_ok() {
                break;
            }
            missing.push(cur);
            p = cur.parent();
        }
        // Outermost first, so undo (reverse order) removes the innermost first.
        let records: Vec<Record> = missing
            .iter()
            .rev()
            .map(|d| Record {
                inverse: Inverse::Remove {
                    path: d.to_path_buf(),
                    dir: true,
                },
                dirs: stamps(&[d]),
            })
            .collect();
        if records.is_empty() {
            Ok(())
        } else {
            self.sink.record(records)
        }
    }

    /// Before creating a whole directory tree at `path` in one go (copying a tree): undo
    /// removes the tree, provided it is still exactly as the step left it.
    pub fn before_create_tree(&mut self, path: &Path) -> Result<()> {
        if fs::symlink_metadata(path).is_ok() {
            return Err(ToolError::AlreadyExists(path.to_owned()));
        }
        self.sink.record(vec![Record {
            inverse: Inverse::RemoveTree {
                path: path.to_owned(),
            },
            dirs: stamps(&[path]),
        }])
    }

    /// Deletes `path` by moving it into the trash, journaling where it went first. Returns the
    /// path inside the trash.
    pub fn trash(&mut self, path: &Path) -> Result<PathBuf> {
        fs::symlink_metadata(path).map_err(|e| ToolError::io("cannot delete", path, e))?;
        // A delete that cannot happen must fail before its record is journaled: a record of a
        // move that never took place would make the transaction look undoable.
        removable(path).map_err(|e| ToolError::io("cannot delete", path, e))?;
        let name = path
            .file_name()
            .ok_or_else(|| ToolError::Refused(format!("cannot delete {}", path.display())))?;
        let dest = trash_slot(self.env)?.join(name);
        self.sink.record(vec![Record {
            inverse: Inverse::MoveBack {
                from: dest.clone(),
                to: path.to_owned(),
            },
            dirs: stamps(&[path]),
        }])?;
        move_path(path, &dest)?;
        Ok(dest)
    }

    /// Before moving `from` to `to` (which must not exist): notes the way back.
    pub fn before_move(&mut self, from: &Path, to: &Path) -> Result<()> {
        self.sink.record(vec![Record {
            inverse: Inverse::MoveBack {
                from: to.to_owned(),
                to: from.to_owned(),
            },
            dirs: stamps(&[from, to]),
        }])
    }

    /// Before changing the permission bits of `path`.
    pub fn before_chmod(&mut self, path: &Path) -> Result<()> {
        let m = fs::symlink_metadata(path).map_err(|e| ToolError::io("cannot stat", path, e))?;
        self.sink.record(vec![Record {
            inverse: Inverse::SetMode {
                path: path.to_owned(),
                mode: m.mode() & 0o7777,
            },
            dirs: vec![],
        }])
    }

    /// After a program the step ran created `path` (a generated skill's script): notes that
    /// undo must remove it, and put back `parent`, its directory's time taken before the
    /// program ran. Recorded after the fact, because which files a program makes is known
    /// only once it ran; a crash in between leaves that file in place (everything it
    /// overwrote was snapshotted before with [`Recorder::before_write`]).
    pub fn created(&mut self, path: &Path, parent: Option<DirStamp>) -> Result<()> {
        self.sink.record(vec![Record {
            inverse: Inverse::Remove {
                path: path.to_owned(),
                dir: path.is_dir(),
            },
            dirs: parent.into_iter().collect(),
        }])
    }

    /// Before a change whose inverse is another step (package installs, service changes).
    pub fn inverse_step(&mut self, tool: &str, action: &str, args: Value) -> Result<()> {
        self.sink.record(vec![Record {
            inverse: Inverse::Step {
                tool: tool.into(),
                action: action.into(),
                args,
            },
            dirs: vec![],
        }])
    }
}

/// Why a record cannot be applied safely now, or `None` when it can. `after` is the
/// fingerprint stored when its step finished (absent when the step was interrupted).
///
/// Undo checks each record right before applying it, walking the records in reverse: by then
/// the later records have put their paths back, so every path should look exactly as it did
/// when the record's step finished. If it does not, someone changed it since, and it is left
/// alone.
pub fn check(record: &Record, after: Option<&Fingerprint>) -> Option<String> {
    if let (Some(after), Some(now)) = (after, record.after_state()) {
        if &now != after {
            let p = record.watched()?;
            return Some(format!(
                "{} changed since (now {}), left as it is",
                p.display(),
                now.kind
            ));
        }
    }
    match &record.inverse {
        Inverse::MoveBack { from, to } => {
            if fs::symlink_metadata(to).is_ok() {
                return Some(format!("{} exists again, not overwritten", to.display()));
            }
            if fs::symlink_metadata(from).is_err() {
                return Some(format!("{} is gone, nothing to move back", from.display()));
            }
            None
        }
        Inverse::Remove { path, .. } | Inverse::RemoveTree { path }
            if fs::symlink_metadata(path).is_err() =>
        {
            Some(format!("{} is already gone", path.display()))
        }
        Inverse::Remove { path, dir: true } => {
            let has_entries = fs::read_dir(path)
                .map(|mut rd| rd.next().is_some())
                .unwrap_or(false);
            has_entries
                .then(|| format!("{} holds files added since, left as it is", path.display()))
        }
        _ => None,
    }
}

/// Applies one record's file inverse. `Inverse::Step` is the engine's to run (it needs the
/// registry and the sandbox); here it is an error.
pub fn apply(record: &Record, _env: &Env, blobs: &BlobStore) -> Result<()> {
    match &record.inverse {
        Inverse::RestoreFile { path, snapshot } => {
            blobs.copy_to(&snapshot.blob, path)?;
            let m = &snapshot.meta;
            let _ = std::os::unix::fs::lchown(path, Some(m.uid), Some(m.gid));
            fs::set_permissions(path, fs::Permissions::from_mode(m.mode & 0o7777))
                .map_err(|e| ToolError::io("cannot set mode of", path, e))?;
            set_mtime(path, m.mtime_ns)
                .map_err(|e| ToolError::io("cannot set time of", path, e))?;
        }
        Inverse::Remove { path, dir } => {
            // Removed for good, not trashed: the step created it and `check` found it exactly
            // as the step left it, so nothing the user had is lost (see `crate::trash`).
            let removed = if *dir {
                fs::remove_dir(path)
            } else {
                fs::remove_file(path)
            };
            removed.map_err(|e| ToolError::io("cannot remove", path, e))?;
        }
        Inverse::RemoveTree { path } => {
            // A copied tree, unchanged since the copy (its whole-tree fingerprint matched):
            // removed for good like the above, so undoing a big copy frees the space.
            fs::remove_dir_all(path).map_err(|e| ToolError::io("cannot remove", path, e))?;
        }
        Inverse::MoveBack { from, to } => move_path(from, to)?,
        Inverse::SetMode { path, mode } => {
            fs::set_permissions(path, fs::Permissions::from_mode(*mode))
                .map_err(|e| ToolError::io("cannot set mode of", path, e))?;
        }
        Inverse::Step { tool, action, .. } => {
            return Err(ToolError::Failed(format!(
                "{tool}.{action} must be run by the engine"
            )));
        }
    }
    for d in &record.dirs {
        // Best effort: the directory may be gone by now (removed by an earlier inverse).
        let _ = set_mtime(&d.path, d.mtime_ns);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixture {
        _dir: tempfile::TempDir,
        root: PathBuf,
        env: Env,
        blobs: BlobStore,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("tree");
        fs::create_dir(&root).unwrap();
        let data = dir.path().join("data");
        let env = Env {
            cwd: root.clone(),
            home: root.clone(),
            data_dir: data.clone(),
            vault: data.clone(),
            scope: None,
            uid: 0,
        };
        let blobs = BlobStore::open(data.join("blobs"), false).unwrap();
        Fixture {
            _dir: dir,
            root,
            env,
            blobs,
        }
    }

    /// Everything about a tree that undo promises to restore.
    fn snapshot(root: &Path) -> Vec<(PathBuf, String, u32, i64, Vec<u8>)> {
        let mut out = Vec::new();
        let mut stack = vec![root.to_path_buf()];
        while let Some(d) = stack.pop() {
            let m = fs::symlink_metadata(&d).unwrap();
            out.push((d.clone(), "dir".into(), m.mode(), mtime_ns(&m), vec![]));
            for e in fs::read_dir(&d).unwrap().flatten() {
                let p = e.path();
                let m = fs::symlink_metadata(&p).unwrap();
                if m.is_dir() {
                    stack.push(p);
                } else {
                    out.push((
                        p.clone(),
                        "file".into(),
                        m.mode(),
                        mtime_ns(&m),
                        fs::read(&p).unwrap(),
                    ));
                }
            }
        }
        out.sort();
        out
    }

    fn undo_all(f: &Fixture, records: &[Record], after: &[Option<Fingerprint>]) {
        for (r, a) in records.iter().zip(after).rev() {
            assert_eq!(check(r, a.as_ref()), None, "{}", r.describe());
            apply(r, &f.env, &f.blobs).unwrap();
        }
    }

    fn settle() {
        // Make sure a change lands on a different mtime than the original.
        std::thread::sleep(std::time::Duration::from_millis(15));
    }

    #[test]
    fn write_overwrite_mkdir_move_trash_chmod_round_trip() {
        let f = fixture();
        fs::write(f.root.join("a.txt"), b"original a").unwrap();
        fs::set_permissions(f.root.join("a.txt"), fs::Permissions::from_mode(0o640)).unwrap();
        fs::create_dir(f.root.join("sub")).unwrap();
        fs::write(f.root.join("sub/b.txt"), b"bbb").unwrap();
        let before = snapshot(&f.root);
        settle();

        let mut sink = MemorySink::default();
        let mut rec = Recorder::new(&mut sink, &f.env, &f.blobs);
        // overwrite a.txt
        rec.before_write(&f.root.join("a.txt")).unwrap();
        fs::write(f.root.join("a.txt"), b"changed").unwrap();
        // create new/deeper/c.txt
        rec.before_mkdir(&f.root.join("new/deeper")).unwrap();
        fs::create_dir_all(f.root.join("new/deeper")).unwrap();
        rec.before_write(&f.root.join("new/deeper/c.txt")).unwrap();
        fs::write(f.root.join("new/deeper/c.txt"), b"c").unwrap();
        // move sub/b.txt to new/b.txt
        rec.before_move(&f.root.join("sub/b.txt"), &f.root.join("new/b.txt"))
            .unwrap();
        fs::rename(f.root.join("sub/b.txt"), f.root.join("new/b.txt")).unwrap();
        // chmod and delete
        rec.before_chmod(&f.root.join("a.txt")).unwrap();
        fs::set_permissions(f.root.join("a.txt"), fs::Permissions::from_mode(0o777)).unwrap();
        rec.trash(&f.root.join("sub")).unwrap();
        assert!(!f.root.join("sub").exists());

        sink.0.finish();
        undo_all(&f, &sink.0.records, &sink.0.after);
        assert_eq!(snapshot(&f.root), before, "tree differs after undo");
    }

    #[test]
    fn changed_since_is_reported_not_clobbered() {
        let f = fixture();
        let p = f.root.join("x.txt");
        fs::write(&p, b"v1").unwrap();
        let mut sink = MemorySink::default();
        Recorder::new(&mut sink, &f.env, &f.blobs)
            .before_write(&p)
            .unwrap();
        fs::write(&p, b"v2 by kernos").unwrap();
        let after = sink.0.records[0].after_state();
        settle();
        fs::write(&p, b"v3 by the user, later").unwrap();
        let conflict = check(&sink.0.records[0], after.as_ref());
        assert!(
            conflict.as_deref().unwrap_or("").contains("changed since"),
            "{conflict:?}"
        );
        assert_eq!(fs::read(&p).unwrap(), b"v3 by the user, later");
    }

    #[test]
    fn move_back_never_overwrites() {
        let f = fixture();
        let (a, b) = (f.root.join("a"), f.root.join("b"));
        fs::write(&a, b"a").unwrap();
        let mut sink = MemorySink::default();
        Recorder::new(&mut sink, &f.env, &f.blobs)
            .before_move(&a, &b)
            .unwrap();
        fs::rename(&a, &b).unwrap();
        fs::write(&a, b"someone recreated a").unwrap();
        let after = sink.0.records[0].after_state();
        assert!(
            check(&sink.0.records[0], after.as_ref())
                .unwrap()
                .contains("exists again")
        );
    }

    #[test]
    fn created_tree_changed_later_is_left_alone() {
        let f = fixture();
        let d = f.root.join("made");
        let mut sink = MemorySink::default();
        Recorder::new(&mut sink, &f.env, &f.blobs)
            .before_mkdir(&d)
            .unwrap();
        fs::create_dir(&d).unwrap();
        let after = sink.0.records[0].after_state();
        fs::write(d.join("user-file"), b"precious").unwrap();
        assert!(check(&sink.0.records[0], after.as_ref()).is_some());
    }

    #[test]
    fn created_tree_is_removed_whole_unless_changed() {
        let f = fixture();
        let src = f.root.join("src");
        fs::create_dir_all(src.join("a/b")).unwrap();
        fs::write(src.join("a/b/f"), b"x").unwrap();
        let before = snapshot(&f.root);
        settle();
        for touch_after in [false, true] {
            let dst = f.root.join("dst");
            let mut sink = MemorySink::default();
            Recorder::new(&mut sink, &f.env, &f.blobs)
                .before_create_tree(&dst)
                .unwrap();
            copy_tree(&src, &dst).unwrap();
            sink.0.finish();
            let r = &sink.0.records[0];
            let a = sink.0.after[0].as_ref();
            if touch_after {
                fs::write(dst.join("a/b/f"), b"edited").unwrap();
                assert!(check(r, a).unwrap().contains("changed since"));
                fs::remove_dir_all(&dst).unwrap();
            } else {
                assert_eq!(check(r, a), None);
                apply(r, &f.env, &f.blobs).unwrap();
                assert_eq!(snapshot(&f.root), before);
            }
        }
    }

    #[test]
    fn copy_tree_preserves_metadata() {
        let f = fixture();
        let src = f.root.join("src");
        fs::create_dir(&src).unwrap();
        fs::write(src.join("f"), b"data").unwrap();
        fs::set_permissions(src.join("f"), fs::Permissions::from_mode(0o604)).unwrap();
        std::os::unix::fs::symlink("f", src.join("l")).unwrap();
        set_mtime(&src.join("f"), 1_000_000_000_123).unwrap();
        let dst = f.root.join("dst");
        copy_tree(&src, &dst).unwrap();
        let m = fs::metadata(dst.join("f")).unwrap();
        assert_eq!((m.mode() & 0o777, mtime_ns(&m)), (0o604, 1_000_000_000_123));
        assert_eq!(fs::read_link(dst.join("l")).unwrap(), PathBuf::from("f"));
        assert!(copy_tree(&src, &dst).is_err(), "copy_tree never overwrites");
    }
}
