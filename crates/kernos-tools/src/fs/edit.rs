//! `fs.write`, `fs.append`, `fs.mkdir`.
//!
//! Write and append create missing parent directories (each recorded for undo and listed in
//! the dry run) rather than failing: the preview shows exactly which directories appear, and
//! undo removes them again.

use std::collections::HashSet;
use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use kernos_core::{ColumnKind, Effect, EffectKind, Reversibility};
use serde_json::Value;

use crate::args::{FsAppend, FsMkdir, FsWrite};
use crate::ctx::Ctx;
use crate::error::{Result, ToolError};
use crate::output::{Change, Output, human_bytes, row};
use crate::registry::{Action, Meta};
use crate::undo::Recorder;

use super::ops::{self, Op};
use super::{arg_path, guard_write, kind_name, lstat, missing_dirs, write_effects};

/// The file a write or append changes: symlinks followed, must not be a directory.
fn target_file(ctx: &Ctx<'_>, raw: &str) -> Result<PathBuf> {
    let path = ctx.env.real(&arg_path(ctx, raw, "path")?);
    guard_write(ctx, &path)?;
    if raw.trim_end().ends_with('/') {
        return Err(ToolError::InvalidArgs(format!(
            "{raw:?} ends with '/', so it names a directory; give a file name, e.g. {}notes.txt",
            raw.trim_end()
        )));
    }
    Ok(path)
}

/// Size of the existing regular file at `p`, `None` when missing; other kinds are refused.
fn existing_file(p: &Path) -> Result<Option<u64>> {
    match lstat(p) {
        None => Ok(None),
        Some(m) if m.is_file() => Ok(Some(m.len())),
        Some(m) if m.is_dir() => Err(ToolError::Refused(format!(
            "{} is a directory; give the name of a file inside it, e.g. {}/notes.txt",
            p.display(),
            p.display()
        ))),
        Some(m) if m.file_type().is_symlink() => Err(ToolError::Refused(format!(
            "{} is a symbolic link to something that does not exist; fix or remove the link",
            p.display()
        ))),
        Some(m) => Err(ToolError::Refused(format!(
            "{} is a {} (not a regular file); Kernos only writes regular files",
            p.display(),
            kind_name(m.file_type())
        ))),
    }
}

/// Ops creating the missing parents of `p`.
fn parent_ops(p: &Path) -> Result<Vec<Op>> {
    let Some(parent) = p.parent() else {
        return Ok(Vec::new());
    };
    Ok(missing_dirs(parent, &HashSet::new())?
        .into_iter()
        .map(Op::Mkdir)
        .collect())
}

/// Output of write/append: one row with the file and its size now.
fn file_output(path: &Path, changes: Vec<Change>, summary: String) -> Output {
    let size = lstat(path).map(|m| m.len()).unwrap_or(0);
    let mut out = Output::table(
        Vec::new(),
        vec![row([
            ("path", Value::from(path.display().to_string())),
            ("size", Value::from(size)),
        ])],
    )
    .with_summary(summary);
    out.changes = changes;
    out
}

const FILE_COLUMNS: &[(&str, ColumnKind)] =
    &[("path", ColumnKind::Path), ("size", ColumnKind::Bytes)];

// ---------------------------------------------------------------------------------- write

/// `fs.write`.
pub(crate) struct Write;

/// The bytes `fs.write` puts in the file: the text, ending with a newline unless `exact`.
fn written(a: &FsWrite) -> Vec<u8> {
    let mut content = a.content.as_bytes().to_vec();
    if !a.exact && !content.is_empty() && !content.ends_with(b"\n") {
        content.push(b'\n');
    }
    content
}

fn plan_write(ctx: &Ctx<'_>, a: &FsWrite) -> Result<(PathBuf, Vec<Op>)> {
    let path = target_file(ctx, &a.path)?;
    let mut ops = parent_ops(&path)?;
    let old = existing_file(&path)?;
    ops.push(Op::Write {
        path: path.clone(),
        content: written(a),
        old,
    });
    Ok((path, ops))
}

impl Action for Write {
    type Args = FsWrite;

    fn meta(&self) -> Meta {
        Meta {
            tool: "fs",
            name: "write",
            summary: "Write text to a file, replacing its content (creating it and missing folders)",
            effects: &[EffectKind::Write],
            reversibility: Reversibility::Reversible,
            output: FILE_COLUMNS,
        }
    }

    fn effects(&self, a: &FsWrite, ctx: &Ctx<'_>) -> Result<Vec<Effect>> {
        Ok(write_effects(&target_file(ctx, &a.path)?, false))
    }

    fn dry_run(&self, a: &FsWrite, ctx: &Ctx<'_>) -> Result<Vec<Change>> {
        Ok(ops::changes(&plan_write(ctx, a)?.1))
    }

    fn execute(&self, a: &FsWrite, ctx: &Ctx<'_>, undo: &mut Recorder<'_>) -> Result<Output> {
        let (path, plan) = plan_write(ctx, a)?;
        let changes = ops::run(&plan, ctx, undo)?;
        let verb = if matches!(changes.last(), Some(Change::Overwrite { .. })) {
            "wrote"
        } else {
            "created"
        };
        let summary = format!(
            "{verb} {} ({})",
            path.display(),
            human_bytes(written(a).len() as u64)
        );
        Ok(file_output(&path, changes, summary))
    }
}

// --------------------------------------------------------------------------------- append

/// `fs.append`.
pub(crate) struct Append;

/// Whether the file's last byte is a newline (`true` for an empty file: nothing to separate).
fn ends_with_newline(p: &Path, len: u64) -> Result<bool> {
    if len == 0 {
        return Ok(true);
    }
    let mut f = fs::File::open(p).map_err(|e| ToolError::io("cannot read", p, e))?;
    f.seek(SeekFrom::End(-1))
        .map_err(|e| ToolError::io("cannot read", p, e))?;
    let mut b = [0u8; 1];
    f.read_exact(&mut b)
        .map_err(|e| ToolError::io("cannot read", p, e))?;
    Ok(b[0] == b'\n')
}

/// The bytes appending `text` adds to a file of `len` bytes: a newline first when the file
/// does not end with one, and one after the text when it has none. Nothing for no text:
/// appending "" is how an empty file is created ("touch") without altering an existing one.
pub(crate) fn append_bytes(text: &str, file_ends_with_newline: bool) -> Vec<u8> {
    if text.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::with_capacity(text.len() + 2);
    if !file_ends_with_newline {
        out.push(b'\n');
    }
    out.extend_from_slice(text.as_bytes());
    if !text.ends_with('\n') {
        out.push(b'\n');
    }
    out
}

fn plan_append(ctx: &Ctx<'_>, a: &FsAppend) -> Result<(PathBuf, Vec<Op>)> {
    let path = target_file(ctx, &a.path)?;
    let mut ops = parent_ops(&path)?;
    let old = existing_file(&path)?;
    let nl = match old {
        Some(len) => ends_with_newline(&path, len)?,
        None => true,
    };
    let bytes = append_bytes(&a.content, nl);
    // Nothing to add to a file that is there: no change at all (like mkdir of an existing
    // directory), so nothing is journaled or offered for undo.
    if !(bytes.is_empty() && old.is_some()) {
        ops.push(Op::Append {
            path: path.clone(),
            bytes,
            exists: old.is_some(),
        });
    }
    Ok((path, ops))
}

impl Action for Append {
    type Args = FsAppend;

    fn meta(&self) -> Meta {
        Meta {
            tool: "fs",
            name: "append",
            summary: "Add text at the end of a file, on its own line (creating the file if missing)",
            effects: &[EffectKind::Write],
            reversibility: Reversibility::Reversible,
            output: FILE_COLUMNS,
        }
    }

    fn effects(&self, a: &FsAppend, ctx: &Ctx<'_>) -> Result<Vec<Effect>> {
        Ok(write_effects(&target_file(ctx, &a.path)?, false))
    }

    fn dry_run(&self, a: &FsAppend, ctx: &Ctx<'_>) -> Result<Vec<Change>> {
        Ok(ops::changes(&plan_append(ctx, a)?.1))
    }

    fn execute(&self, a: &FsAppend, ctx: &Ctx<'_>, undo: &mut Recorder<'_>) -> Result<Output> {
        let (path, plan) = plan_append(ctx, a)?;
        let changes = ops::run(&plan, ctx, undo)?;
        let summary = match changes.last() {
            Some(Change::Append { bytes, .. }) => {
                format!("appended {} to {}", human_bytes(*bytes), path.display())
            }
            None => format!("{} is there already; nothing to add", path.display()),
            _ => format!("created {}", path.display()),
        };
        Ok(file_output(&path, changes, summary))
    }
}

// ---------------------------------------------------------------------------------- mkdir

/// `fs.mkdir`.
pub(crate) struct Mkdir;

fn plan_mkdir(ctx: &Ctx<'_>, a: &FsMkdir) -> Result<(PathBuf, Vec<Op>)> {
    let path = ctx.env.real(&arg_path(ctx, &a.path, "path")?);
    guard_write(ctx, &path)?;
    if let Some(m) = lstat(&path).filter(|m| !m.is_dir()) {
        return Err(ToolError::Refused(format!(
            "{} already exists and is a {}, not a directory; choose another name",
            path.display(),
            kind_name(m.file_type())
        )));
    }
    let ops = missing_dirs(&path, &HashSet::new())?
        .into_iter()
        .map(Op::Mkdir)
        .collect();
    Ok((path, ops))
}

impl Action for Mkdir {
    type Args = FsMkdir;

    fn meta(&self) -> Meta {
        Meta {
            tool: "fs",
            name: "mkdir",
            summary: "Create a directory and any missing parents",
            effects: &[EffectKind::Write],
            reversibility: Reversibility::Reversible,
            output: &[("path", ColumnKind::Path)],
        }
    }

    fn effects(&self, a: &FsMkdir, ctx: &Ctx<'_>) -> Result<Vec<Effect>> {
        let path = ctx.env.real(&arg_path(ctx, &a.path, "path")?);
        guard_write(ctx, &path)?;
        Ok(write_effects(&path, false))
    }

    fn dry_run(&self, a: &FsMkdir, ctx: &Ctx<'_>) -> Result<Vec<Change>> {
        Ok(ops::changes(&plan_mkdir(ctx, a)?.1))
    }

    fn execute(&self, a: &FsMkdir, ctx: &Ctx<'_>, undo: &mut Recorder<'_>) -> Result<Output> {
        let (path, plan) = plan_mkdir(ctx, a)?;
        let changes = ops::run(&plan, ctx, undo)?;
        let summary = if changes.is_empty() {
            format!("{} already exists", path.display())
        } else {
            format!(
                "created {} ({} new director{})",
                path.display(),
                changes.len(),
                if changes.len() == 1 { "y" } else { "ies" }
            )
        };
        let mut out = Output::table(
            Vec::new(),
            vec![row([("path", Value::from(path.display().to_string()))])],
        )
        .with_summary(summary);
        out.changes = changes;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn append_adds_newlines_where_missing() {
        assert_eq!(append_bytes("x", true), b"x\n");
        assert_eq!(append_bytes("x\n", true), b"x\n");
        assert_eq!(append_bytes("x", false), b"\nx\n");
        assert_eq!(append_bytes("a\nb", false), b"\na\nb\n");
        assert_eq!(append_bytes("", false), b"");
        assert_eq!(append_bytes("", true), b"");
    }
}
