//! `fs.copy`, `fs.move`, `fs.delete`.
//!
//! Destination rules (as `cp`/`mv`): when `dest` is an existing directory, ends with `/`, or
//! `source` is a list, each source goes *into* `dest` under its own name (`dest` is created
//! when missing); otherwise `dest` is the new name. Copy follows a symlink named as a source
//! (copying what it points to) and copies symlinks inside trees as symlinks; move and delete
//! act on the symlink itself.
//!
//! Replacing: copying a file onto a file overwrites it in place (snapshotted first); copying a
//! directory onto a directory merges into it; moving a file onto a file snapshots the old one
//! and reports it as overwritten. A file never replaces a directory nor the other way round,
//! and every clash is found while planning, before anything changes. Delete moves to the trash
//! and refuses a non-empty directory unless `recursive` is set.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use kernos_core::{ColumnKind, Effect, EffectKind, Reversibility};
use serde_json::{Map, Value};

use crate::args::{FsCopy, FsDelete, FsMove, Paths};
use crate::ctx::Ctx;
use crate::error::{Result, ToolError};
use crate::output::{Change, Output, human_bytes, row};
use crate::registry::{Action, Meta};
use crate::undo::Recorder;

use super::ops::{self, Op};
use super::{
    arg_path, arg_paths, entry_real, first_special, guard_whole, guard_write, kind_name, lstat,
    lstat_or_err, missing_dirs, nonempty_dir, outermost, tree_size, write_effects,
};

/// Where sources go.
struct Dest {
    /// The directory sources go into, or the new name of the single source.
    path: PathBuf,
    /// Whether sources go into `path`.
    into: bool,
    /// Directories to create first (when `path` is a directory that does not exist yet).
    mkdirs: Vec<PathBuf>,
}

/// Works out the destination. `follow_final`: whether a symlink at `dest` is followed when it
/// is the new name (copy writes through it; move replaces the link itself).
fn destination(ctx: &Ctx<'_>, raw: &str, list: bool, follow_final: bool) -> Result<Dest> {
    let resolved = arg_path(ctx, raw, "dest")?;
    let real = ctx.env.real(&resolved);
    let is_dir = fs::metadata(&real).is_ok_and(|m| m.is_dir());
    let into = is_dir || list || raw.trim_end().ends_with('/');
    if into {
        guard_write(ctx, &real)?;
        let mkdirs = if is_dir {
            Vec::new()
        } else if let Some(m) = lstat(&real) {
            return Err(ToolError::Refused(format!(
                "{} is a {}, not a directory; several sources need a directory to go into",
                real.display(),
                kind_name(m.file_type())
            )));
        } else {
            missing_dirs(&real, &HashSet::new())?
        };
        return Ok(Dest {
            path: real,
            into,
            mkdirs,
        });
    }
    let path = if follow_final {
        real
    } else {
        entry_real(ctx, &resolved)
    };
    guard_write(ctx, &path)?;
    let mkdirs = match path.parent() {
        Some(parent) => missing_dirs(parent, &HashSet::new())?,
        None => Vec::new(),
    };
    Ok(Dest {
        path,
        into: false,
        mkdirs,
    })
}

fn name_of(p: &Path) -> Result<&std::ffi::OsStr> {
    p.file_name().ok_or_else(|| {
        ToolError::Refused(format!(
            "{} has no name of its own to copy or move; name the things inside it",
            p.display()
        ))
    })
}

/// What a copy or move plan did per source, for the output rows.
struct Item {
    target: PathBuf,
    source: PathBuf,
    kind: &'static str,
    size: u64,
}

fn item_rows(items: &[Item]) -> Vec<Map<String, Value>> {
    items
        .iter()
        .map(|i| {
            row([
                ("path", Value::from(i.target.display().to_string())),
                ("source", Value::from(i.source.display().to_string())),
                ("type", Value::from(i.kind)),
                ("size", Value::from(i.size)),
            ])
        })
        .collect()
}

const TRANSFER_COLUMNS: &[(&str, ColumnKind)] = &[
    ("path", ColumnKind::Path),
    ("source", ColumnKind::Path),
    ("type", ColumnKind::Text),
    ("size", ColumnKind::Bytes),
];

fn transfer_output(
    items: &[Item],
    changes: Vec<Change>,
    verb: &str,
    skipped: usize,
    dest: &Path,
) -> Output {
    let total: u64 = items.iter().map(|i| i.size).sum();
    let mut summary = match items {
        [] => format!("nothing to {verb}"),
        [one] => format!(
            "{verb} {} to {} ({})",
            one.source.display(),
            one.target.display(),
            human_bytes(one.size)
        ),
        many => format!(
            "{verb} {} items into {} ({})",
            many.len(),
            dest.display(),
            human_bytes(total)
        ),
    };
    if skipped > 0 {
        summary.push_str(&format!("; {skipped} already there"));
    }
    let mut out = Output::table(Vec::new(), item_rows(items)).with_summary(summary);
    out.changes = changes;
    out
}

// ----------------------------------------------------------------------------------- copy

/// `fs.copy`.
pub(crate) struct Copy;

struct CopyPlan {
    ops: Vec<Op>,
    items: Vec<Item>,
    dest: PathBuf,
}

fn plan_copy(ctx: &Ctx<'_>, a: &FsCopy) -> Result<CopyPlan> {
    let sources = outermost(arg_paths(ctx, &a.source, "source")?);
    let list = matches!(a.source, Paths::Many(_));
    let dest = destination(ctx, &a.dest, list, true)?;
    let mut plan = CopyPlan {
        ops: Vec::new(),
        items: Vec::new(),
        dest: dest.path.clone(),
    };
    if sources.is_empty() {
        return Ok(plan);
    }
    plan.ops.extend(dest.mkdirs.iter().cloned().map(Op::Mkdir));
    let mut targets: HashSet<PathBuf> = HashSet::new();
    for src in sources {
        ctx.check_cancel()?;
        lstat_or_err(&src)?;
        // A symlink named as a source is followed: the user means what it points to.
        let from = ctx.env.real(&src);
        let fm = fs::metadata(&from).map_err(|_| {
            ToolError::Refused(format!(
                "{} is a symbolic link to something that does not exist; nothing to copy",
                src.display()
            ))
        })?;
        let target = if dest.into {
            ctx.env.real(&dest.path.join(name_of(&src)?))
        } else {
            dest.path.clone()
        };
        guard_write(ctx, &target)?;
        if target == from {
            return Err(ToolError::Refused(format!(
                "{} and {} are the same file; give another destination",
                src.display(),
                target.display()
            )));
        }
        if fm.is_dir() && target.starts_with(&from) {
            return Err(ToolError::Refused(format!(
                "cannot copy {} into itself ({}); choose a destination outside it",
                src.display(),
                target.display()
            )));
        }
        if !targets.insert(target.clone()) {
            return Err(ToolError::Refused(format!(
                "two sources would both be copied to {}; copy them separately under different names",
                target.display()
            )));
        }
        if let Some(special) = first_special(ctx, &from)? {
            return Err(ToolError::Refused(format!(
                "{} is a FIFO, socket or device, which cannot be copied; copy the regular files around it instead",
                special.display()
            )));
        }
        let (bytes, _) = tree_size(ctx, &from)?;
        match lstat(&target) {
            None => plan.ops.push(Op::CopyNew {
                from: from.clone(),
                to: target.clone(),
                bytes,
                dir: fm.is_dir(),
            }),
            Some(tm) if fm.is_file() && tm.is_file() => plan.ops.push(Op::CopyOver {
                from: from.clone(),
                to: target.clone(),
                old: tm.len(),
                new: fm.len(),
            }),
            Some(tm) if fm.is_dir() && tm.is_dir() => merge(ctx, &from, &target, &mut plan.ops)?,
            Some(tm) => return Err(clash(&from, &fm, &target, &tm)),
        }
        plan.items.push(Item {
            target,
            source: src,
            kind: if fm.is_dir() { "dir" } else { "file" },
            size: bytes,
        });
    }
    Ok(plan)
}

/// A copy or move that would replace one kind of thing with another.
fn clash(from: &Path, fm: &fs::Metadata, to: &Path, tm: &fs::Metadata) -> ToolError {
    ToolError::Refused(format!(
        "{} already exists and is a {}; it will not be replaced by the {} {}. Delete or rename \
         it first, or choose another destination",
        to.display(),
        kind_name(tm.file_type()),
        kind_name(fm.file_type()),
        from.display()
    ))
}

/// Copies a directory into an existing one, entry by entry (like `cp -r` does): new entries are
/// copied whole, existing files are overwritten (snapshotted first), existing directories are
/// merged into; anything else is a clash, refused before anything is copied.
fn merge(ctx: &Ctx<'_>, from: &Path, to: &Path, ops: &mut Vec<Op>) -> Result<()> {
    let mut entries: Vec<_> = fs::read_dir(from)
        .map_err(|e| ToolError::io("cannot list", from, e))?
        .collect::<std::io::Result<Vec<_>>>()
        .map_err(|e| ToolError::io("cannot list", from, e))?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        ctx.check_cancel()?;
        let f = e.path();
        let t = to.join(e.file_name());
        let fm = lstat_or_err(&f)?;
        match lstat(&t) {
            None => ops.push(Op::CopyNew {
                bytes: tree_size(ctx, &f)?.0,
                dir: fm.is_dir(),
                from: f,
                to: t,
            }),
            Some(tm) if fm.is_file() && tm.is_file() => ops.push(Op::CopyOver {
                old: tm.len(),
                new: fm.len(),
                from: f,
                to: t,
            }),
            Some(tm) if fm.is_dir() && tm.is_dir() => merge(ctx, &f, &t, ops)?,
            Some(tm) => return Err(clash(&f, &fm, &t, &tm)),
        }
    }
    Ok(())
}

impl Action for Copy {
    type Args = FsCopy;

    fn meta(&self) -> Meta {
        Meta {
            tool: "fs",
            name: "copy",
            summary: "Copy files or directory trees (keeping modes and times)",
            effects: &[EffectKind::Read, EffectKind::Write],
            reversibility: Reversibility::Reversible,
            output: TRANSFER_COLUMNS,
        }
    }

    fn effects(&self, a: &FsCopy, ctx: &Ctx<'_>) -> Result<Vec<Effect>> {
        let sources = arg_paths(ctx, &a.source, "source")?;
        let list = matches!(a.source, Paths::Many(_));
        let dest = lenient_dest(ctx, &a.dest, list, true)?;
        let mut out = Vec::new();
        if dest.into && lstat(&dest.path).is_none() {
            out.extend(write_effects(&dest.path, false));
        }
        for src in sources {
            let from = ctx.env.real(&src);
            let deep = nonempty_dir(&from);
            out.push(Effect::path(EffectKind::Read, &from, deep));
            let target = match (dest.into, src.file_name()) {
                (true, Some(n)) => ctx.env.real(&dest.path.join(n)),
                _ => dest.path.clone(),
            };
            guard_write(ctx, &target)?;
            out.extend(write_effects(&target, deep));
        }
        Ok(dedup(out))
    }

    fn dry_run(&self, a: &FsCopy, ctx: &Ctx<'_>) -> Result<Vec<Change>> {
        Ok(ops::changes(&plan_copy(ctx, a)?.ops))
    }

    fn execute(&self, a: &FsCopy, ctx: &Ctx<'_>, undo: &mut Recorder<'_>) -> Result<Output> {
        let plan = plan_copy(ctx, a)?;
        let changes = ops::run(&plan.ops, ctx, undo)?;
        Ok(transfer_output(
            &plan.items,
            changes,
            "copied",
            0,
            &plan.dest,
        ))
    }
}

/// The destination for effects: like [`destination`] but never failing on state (an earlier
/// step may fix it), only on arguments.
fn lenient_dest(ctx: &Ctx<'_>, raw: &str, list: bool, follow_final: bool) -> Result<Dest> {
    let resolved = arg_path(ctx, raw, "dest")?;
    let real = ctx.env.real(&resolved);
    let is_dir = fs::metadata(&real).is_ok_and(|m| m.is_dir());
    let into = is_dir || list || raw.trim_end().ends_with('/');
    let path = if into || follow_final {
        real
    } else {
        entry_real(ctx, &resolved)
    };
    guard_write(ctx, &path)?;
    Ok(Dest {
        path,
        into,
        mkdirs: Vec::new(),
    })
}

fn dedup(effects: Vec<Effect>) -> Vec<Effect> {
    let mut out: Vec<Effect> = Vec::with_capacity(effects.len());
    for e in effects {
        if !out.contains(&e) {
            out.push(e);
        }
    }
    out
}

// ----------------------------------------------------------------------------------- move

/// `fs.move`.
pub(crate) struct Move;

struct MovePlan {
    ops: Vec<Op>,
    items: Vec<Item>,
    dest: PathBuf,
    /// Sources already where they would go.
    in_place: usize,
}

fn plan_move(ctx: &Ctx<'_>, a: &FsMove) -> Result<MovePlan> {
    let sources = outermost(arg_paths(ctx, &a.source, "source")?);
    let list = matches!(a.source, Paths::Many(_));
    let dest = destination(ctx, &a.dest, list, false)?;
    let mut plan = MovePlan {
        ops: Vec::new(),
        items: Vec::new(),
        dest: dest.path.clone(),
        in_place: 0,
    };
    if sources.is_empty() {
        return Ok(plan);
    }
    plan.ops.extend(dest.mkdirs.iter().cloned().map(Op::Mkdir));
    let mut targets: HashSet<PathBuf> = HashSet::new();
    for src in sources {
        ctx.check_cancel()?;
        let from = entry_real(ctx, &src);
        let fm = lstat_or_err(&from)?;
        guard_whole(ctx, &from)?;
        let target = if dest.into {
            dest.path.join(name_of(&from)?)
        } else {
            dest.path.clone()
        };
        guard_write(ctx, &target)?;
        if target == from {
            if dest.into {
                plan.in_place += 1;
                continue;
            }
            return Err(ToolError::Refused(format!(
                "{} is already at {}; nothing to move",
                src.display(),
                target.display()
            )));
        }
        if fm.is_dir() && target.starts_with(&from) {
            return Err(ToolError::Refused(format!(
                "cannot move {} into itself ({}); choose a destination outside it",
                src.display(),
                target.display()
            )));
        }
        if !targets.insert(target.clone()) {
            return Err(ToolError::Refused(format!(
                "two sources would both be moved to {}; move them separately under different names",
                target.display()
            )));
        }
        let (bytes, _) = tree_size(ctx, &from)?;
        match lstat(&target) {
            None => {}
            // Replacing a file: its content is kept first, so undo brings it back.
            Some(tm) if tm.is_file() && !fm.is_dir() => plan.ops.push(Op::Replace {
                path: target.clone(),
                old: tm.len(),
                new: bytes,
            }),
            Some(tm) => return Err(clash(&from, &fm, &target, &tm)),
        }
        plan.ops.push(Op::Move {
            from: from.clone(),
            to: target.clone(),
            bytes,
        });
        plan.items.push(Item {
            target,
            source: from,
            kind: kind_name(fm.file_type()),
            size: bytes,
        });
    }
    Ok(plan)
}

impl Action for Move {
    type Args = FsMove;

    fn meta(&self) -> Meta {
        Meta {
            tool: "fs",
            name: "move",
            summary: "Move or rename files or directories",
            effects: &[EffectKind::Write, EffectKind::Delete],
            reversibility: Reversibility::Reversible,
            output: TRANSFER_COLUMNS,
        }
    }

    fn effects(&self, a: &FsMove, ctx: &Ctx<'_>) -> Result<Vec<Effect>> {
        let sources = arg_paths(ctx, &a.source, "source")?;
        let list = matches!(a.source, Paths::Many(_));
        let dest = lenient_dest(ctx, &a.dest, list, false)?;
        let mut out = Vec::new();
        if dest.into && lstat(&dest.path).is_none() {
            out.extend(write_effects(&dest.path, false));
        }
        for src in sources {
            let from = entry_real(ctx, &src);
            guard_whole(ctx, &from)?;
            let deep = nonempty_dir(&from);
            out.push(Effect::path(EffectKind::Delete, &from, deep));
            let target = match (dest.into, from.file_name()) {
                (true, Some(n)) => dest.path.join(n),
                _ => dest.path.clone(),
            };
            guard_write(ctx, &target)?;
            out.extend(write_effects(&target, deep));
            // A file already there is replaced: its old content is deleted (kept for undo).
            if lstat(&target).is_some_and(|m| m.is_file()) && target != from {
                out.push(Effect::path(EffectKind::Delete, &target, false));
            }
        }
        Ok(dedup(out))
    }

    fn dry_run(&self, a: &FsMove, ctx: &Ctx<'_>) -> Result<Vec<Change>> {
        Ok(ops::changes(&plan_move(ctx, a)?.ops))
    }

    fn execute(&self, a: &FsMove, ctx: &Ctx<'_>, undo: &mut Recorder<'_>) -> Result<Output> {
        let plan = plan_move(ctx, a)?;
        let changes = ops::run(&plan.ops, ctx, undo)?;
        Ok(transfer_output(
            &plan.items,
            changes,
            "moved",
            plan.in_place,
            &plan.dest,
        ))
    }
}

// --------------------------------------------------------------------------------- delete

/// `fs.delete`.
pub(crate) struct Delete;

struct DeleteRow {
    path: PathBuf,
    kind: &'static str,
    bytes: u64,
    entries: u64,
}

fn plan_delete(ctx: &Ctx<'_>, a: &FsDelete) -> Result<(Vec<Op>, Vec<DeleteRow>)> {
    let paths = outermost(
        arg_paths(ctx, &a.path, "path")?
            .iter()
            .map(|p| entry_real(ctx, p))
            .collect(),
    );
    let mut ops = Vec::new();
    let mut rows = Vec::new();
    for path in paths {
        ctx.check_cancel()?;
        let m = lstat_or_err(&path)?;
        guard_whole(ctx, &path)?;
        let (bytes, entries) = tree_size(ctx, &path)?;
        if m.is_dir() && entries > 1 && !a.recursive {
            return Err(ToolError::Refused(format!(
                "{} is a directory with {} entr{} in it; add \"recursive\": true to delete it and \
                 everything inside (it goes to Kernos's trash, and undo puts it back)",
                path.display(),
                entries - 1,
                if entries == 2 { "y" } else { "ies" }
            )));
        }
        ops.push(Op::Trash {
            path: path.clone(),
            bytes,
            entries,
        });
        rows.push(DeleteRow {
            path,
            kind: kind_name(m.file_type()),
            bytes,
            entries,
        });
    }
    Ok((ops, rows))
}

impl Action for Delete {
    type Args = FsDelete;

    fn meta(&self) -> Meta {
        Meta {
            tool: "fs",
            name: "delete",
            summary: "Delete files or directories (to Kernos's trash; undo restores them)",
            effects: &[EffectKind::Delete],
            reversibility: Reversibility::Reversible,
            output: &[
                ("path", ColumnKind::Path),
                ("type", ColumnKind::Text),
                ("size", ColumnKind::Bytes),
                ("entries", ColumnKind::Int),
            ],
        }
    }

    fn effects(&self, a: &FsDelete, ctx: &Ctx<'_>) -> Result<Vec<Effect>> {
        let mut out = Vec::new();
        for p in arg_paths(ctx, &a.path, "path")? {
            let path = entry_real(ctx, &p);
            guard_whole(ctx, &path)?;
            out.push(Effect::path(EffectKind::Delete, &path, nonempty_dir(&path)));
        }
        Ok(out)
    }

    fn dry_run(&self, a: &FsDelete, ctx: &Ctx<'_>) -> Result<Vec<Change>> {
        Ok(ops::changes(&plan_delete(ctx, a)?.0))
    }

    fn execute(&self, a: &FsDelete, ctx: &Ctx<'_>, undo: &mut Recorder<'_>) -> Result<Output> {
        let (plan, rows) = plan_delete(ctx, a)?;
        let changes = ops::run(&plan, ctx, undo)?;
        let total: u64 = rows.iter().map(|r| r.bytes).sum();
        let summary = match rows.as_slice() {
            [] => "nothing to delete".to_owned(),
            [one] => format!(
                "deleted {} ({}) to the trash",
                one.path.display(),
                human_bytes(one.bytes)
            ),
            many => format!(
                "deleted {} items ({}) to the trash",
                many.len(),
                human_bytes(total)
            ),
        };
        let rows = rows
            .iter()
            .map(|r| {
                row([
                    ("path", Value::from(r.path.display().to_string())),
                    ("type", Value::from(r.kind)),
                    ("size", Value::from(r.bytes)),
                    ("entries", Value::from(r.entries)),
                ])
            })
            .collect();
        let mut out = Output::table(Vec::new(), rows).with_summary(summary);
        out.changes = changes;
        Ok(out)
    }
}
