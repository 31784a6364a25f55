//! The primitive changes of the mutating `fs` actions. An action first builds a list of
//! [`Op`]s from its arguments and the current state; its dry run is that list's changes, and
//! its execution applies the list in order — so the two cannot disagree.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;

use crate::ctx::Ctx;
use crate::error::{Result, ToolError};
use crate::output::Change;
use crate::undo::{Recorder, copy_chunks, copy_tree_with, move_path, mtime_ns, set_mtime};

use super::mode_str;

/// One change, with everything needed to describe it and to make it.
#[derive(Debug, Clone)]
pub(crate) enum Op {
    /// Create one directory; its parent exists by the time this runs.
    Mkdir(PathBuf),
    /// Create or replace a file with this content.
    Write {
        /// The file.
        path: PathBuf,
        /// New content.
        content: Vec<u8>,
        /// Size of the file it replaces, if one exists.
        old: Option<u64>,
    },
    /// Add bytes at the end of a file (creating it when missing).
    Append {
        /// The file.
        path: PathBuf,
        /// Bytes to add.
        bytes: Vec<u8>,
        /// Whether the file exists already.
        exists: bool,
    },
    /// Copy a file, symlink or tree to a path that does not exist.
    CopyNew {
        /// Source.
        from: PathBuf,
        /// New path.
        to: PathBuf,
        /// Bytes copied.
        bytes: u64,
        /// Whether it is a directory.
        dir: bool,
    },
    /// Copy a file over an existing file (its content is snapshotted first).
    CopyOver {
        /// Source file.
        from: PathBuf,
        /// Existing file.
        to: PathBuf,
        /// Its size before.
        old: u64,
        /// Its size after.
        new: u64,
    },
    /// Remove a file that a move is about to replace, keeping its content and metadata for
    /// undo. (Trashing it instead would leave undo with two moves whose order matters: the
    /// trashed file cannot go back while the moved one still occupies its place.)
    Replace {
        /// The file being replaced.
        path: PathBuf,
        /// Its size.
        old: u64,
        /// Size of what replaces it.
        new: u64,
    },
    /// Move to the trash.
    Trash {
        /// What.
        path: PathBuf,
        /// Bytes beneath.
        bytes: u64,
        /// Entries, itself included.
        entries: u64,
    },
    /// Move or rename (the target does not exist).
    Move {
        /// From.
        from: PathBuf,
        /// To.
        to: PathBuf,
        /// Bytes beneath.
        bytes: u64,
    },
    /// Change permission bits.
    Chmod {
        /// The path (symlinks already followed).
        path: PathBuf,
        /// Old bits.
        from: u32,
        /// New bits.
        to: u32,
    },
}

impl Op {
    /// The change this op makes, as reported by both dry run and execute.
    pub(crate) fn change(&self) -> Change {
        match self {
            Op::Mkdir(p) => Change::Create {
                path: p.clone(),
                bytes: None,
                dir: true,
            },
            Op::Write { path, content, old } => match old {
                Some(o) => Change::Overwrite {
                    path: path.clone(),
                    old_bytes: *o,
                    new_bytes: content.len() as u64,
                },
                None => Change::Create {
                    path: path.clone(),
                    bytes: Some(content.len() as u64),
                    dir: false,
                },
            },
            Op::Append {
                path,
                bytes,
                exists,
            } => {
                if *exists {
                    Change::Append {
                        path: path.clone(),
                        bytes: bytes.len() as u64,
                    }
                } else {
                    Change::Create {
                        path: path.clone(),
                        bytes: Some(bytes.len() as u64),
                        dir: false,
                    }
                }
            }
            Op::CopyNew { to, bytes, dir, .. } => Change::Create {
                path: to.clone(),
                bytes: Some(*bytes),
                dir: *dir,
            },
            Op::CopyOver { to, old, new, .. } => Change::Overwrite {
                path: to.clone(),
                old_bytes: *old,
                new_bytes: *new,
            },
            Op::Replace { path, old, new } => Change::Overwrite {
                path: path.clone(),
                old_bytes: *old,
                new_bytes: *new,
            },
            Op::Trash {
                path,
                bytes,
                entries,
            } => Change::Delete {
                path: path.clone(),
                bytes: *bytes,
                entries: *entries,
            },
            Op::Move { from, to, bytes } => Change::Move {
                from: from.clone(),
                to: to.clone(),
                bytes: *bytes,
            },
            Op::Chmod { path, from, to } => Change::Chmod {
                path: path.clone(),
                from: mode_str(*from),
                to: mode_str(*to),
            },
        }
    }

    /// Records the inverse, then makes the change. Copies stop between chunks when `ctx` is
    /// cancelled (see [`copy_tree_with`]); what they wrote is already recorded for undo.
    pub(crate) fn apply(&self, ctx: &Ctx<'_>, rec: &mut Recorder<'_>) -> Result<()> {
        match self {
            Op::Mkdir(p) => {
                rec.before_mkdir(p)?;
                fs::create_dir(p).map_err(|e| ToolError::io("cannot create directory", p, e))
            }
            Op::Write { path, content, .. } => {
                rec.before_write(path)?;
                // In place, so hard links, owner and mode of an existing file stay as they are.
                let mut f = OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .open(path)
                    .map_err(|e| ToolError::io("cannot write", path, e))?;
                f.write_all(content)
                    .map_err(|e| ToolError::io("cannot write", path, e))
            }
            Op::Append { path, bytes, .. } => {
                rec.before_write(path)?;
                let mut f = OpenOptions::new()
                    .append(true)
                    .create(true)
                    .open(path)
                    .map_err(|e| ToolError::io("cannot append to", path, e))?;
                f.write_all(bytes)
                    .map_err(|e| ToolError::io("cannot append to", path, e))
            }
            Op::CopyNew { from, to, dir, .. } => {
                if *dir {
                    // One record for the whole tree: undo removes it if it is unchanged.
                    rec.before_create_tree(to)?;
                } else {
                    rec.before_write(to)?;
                }
                copy_tree_with(from, to, &mut watch(ctx, to))
            }
            Op::CopyOver { from, to, .. } => {
                rec.before_write(to)?;
                copy_over(from, to, &mut watch(ctx, to))
            }
            Op::Replace { path, .. } => {
                rec.before_write(path)?;
                fs::remove_file(path).map_err(|e| ToolError::io("cannot replace", path, e))
            }
            Op::Trash { path, .. } => rec.trash(path).map(|_| ()),
            Op::Move { from, to, .. } => {
                rec.before_move(from, to)?;
                move_path(from, to)
            }
            Op::Chmod { path, to, .. } => {
                rec.before_chmod(path)?;
                fs::set_permissions(path, fs::Permissions::from_mode(*to))
                    .map_err(|e| ToolError::io("cannot change mode of", path, e))
            }
        }
    }
}

/// What a copy calls between chunks: stop when asked, and report the bytes copied so far.
fn watch<'a>(ctx: &'a Ctx<'_>, to: &'a std::path::Path) -> impl FnMut(u64) -> Result<()> + 'a {
    let mut copied = 0u64;
    let what = to.display().to_string();
    move |n| {
        ctx.check_cancel()?;
        copied += n;
        if n > 0 {
            ctx.progress.update(copied, None, &what);
        }
        Ok(())
    }
}

/// Replaces an existing file's content with another's, and gives it the source's mode and
/// modification time (as `cp -p` would). In place, so links to the target stay linked.
fn copy_over(
    from: &std::path::Path,
    to: &std::path::Path,
    tick: &mut dyn FnMut(u64) -> Result<()>,
) -> Result<()> {
    let m = fs::metadata(from).map_err(|e| ToolError::io("cannot read", from, e))?;
    let mut src = fs::File::open(from).map_err(|e| ToolError::io("cannot open", from, e))?;
    let mut dst = OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(to)
        .map_err(|e| ToolError::io("cannot write", to, e))?;
    copy_chunks(&mut src, &mut dst, from, to, tick)?;
    drop(dst);
    fs::set_permissions(to, fs::Permissions::from_mode(m.mode() & 0o7777))
        .map_err(|e| ToolError::io("cannot set mode of", to, e))?;
    set_mtime(to, mtime_ns(&m)).map_err(|e| ToolError::io("cannot set time of", to, e))
}

/// The changes of a plan (its dry run).
pub(crate) fn changes(ops: &[Op]) -> Vec<Change> {
    ops.iter().map(Op::change).collect()
}

/// Applies a plan in order, checking for cancellation between ops and reporting progress.
/// Returns the changes made.
pub(crate) fn run(ops: &[Op], ctx: &Ctx<'_>, rec: &mut Recorder<'_>) -> Result<Vec<Change>> {
    let total = ops.len() as u64;
    let mut done = Vec::with_capacity(ops.len());
    for (i, op) in ops.iter().enumerate() {
        ctx.check_cancel()?;
        op.apply(ctx, rec)?;
        let change = op.change();
        ctx.progress
            .update(i as u64 + 1, Some(total), &change.describe());
        done.push(change);
    }
    Ok(done)
}
