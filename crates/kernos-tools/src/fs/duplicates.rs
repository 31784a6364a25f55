//! `fs.duplicates`: files with the same content under a directory, found by size first and
//! then by a BLAKE3 hash of the candidates only, so a tree of unique sizes is never read.
//! Hard links to one file are one file, not duplicates of each other.

use std::collections::{HashMap, HashSet};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use kernos_core::{ColumnKind, Effect, EffectKind, Reversibility};
use serde_json::{Map, Value};

use crate::args::{FsDuplicates, HashAlgo};
use crate::ctx::Ctx;
use crate::error::{Result, ToolError};
use crate::output::{Output, human_bytes, row};
use crate::registry::{Action, Meta};
use crate::undo::Recorder;

use super::arg_path;
use super::read::{Skipped, read_effect, stat_root, walk};
use super::scan::hash_file;

/// `fs.duplicates`.
pub(crate) struct Duplicates;

/// A set of files with one content: its size, hash and paths (sorted).
struct Group {
    size: u64,
    hash: String,
    paths: Vec<PathBuf>,
}

impl Action for Duplicates {
    type Args = FsDuplicates;

    fn meta(&self) -> Meta {
        Meta {
            tool: "fs",
            name: "duplicates",
            summary: "Find files with identical content under a directory (by size, then BLAKE3)",
            effects: &[EffectKind::Read],
            reversibility: Reversibility::ReadOnly,
            output: &[
                ("path", ColumnKind::Path),
                ("size", ColumnKind::Bytes),
                ("group", ColumnKind::Int),
                ("checksum", ColumnKind::Text),
            ],
        }
    }

    fn effects(&self, a: &FsDuplicates, ctx: &Ctx<'_>) -> Result<Vec<Effect>> {
        Ok(vec![read_effect(
            ctx,
            &arg_path(ctx, &a.path, "path")?,
            true,
        )])
    }

    fn execute(&self, a: &FsDuplicates, ctx: &Ctx<'_>, _: &mut Recorder<'_>) -> Result<Output> {
        let root = arg_path(ctx, &a.path, "path")?;
        stat_root(&root)?;
        let min = a.min_size.unwrap_or(1).max(1);
        let (by_size, mut skipped) = files_by_size(ctx, &root, a.hidden, min)?;
        let groups = same_content(ctx, by_size, &mut skipped)?;
        let mut rows: Vec<Map<String, Value>> = Vec::new();
        let mut wasted = 0u64;
        for (i, g) in groups.iter().enumerate() {
            wasted += g.size * (g.paths.len() as u64 - 1);
            for p in &g.paths {
                rows.push(row([
                    ("path", Value::from(p.display().to_string())),
                    ("size", Value::from(g.size)),
                    ("group", Value::from(i + 1)),
                    ("checksum", Value::from(g.hash.as_str())),
                ]));
            }
        }
        let mut summary = format!(
            "{} group{} of identical files ({} files) under {}; {} could be freed",
            groups.len(),
            if groups.len() == 1 { "" } else { "s" },
            rows.len(),
            root.display(),
            human_bytes(wasted)
        );
        skipped.note(&mut summary);
        Ok(Output::table(Vec::new(), rows).with_summary(summary))
    }
}

/// Regular files of at least `min` bytes under `root`, by size; one path per inode.
fn files_by_size(
    ctx: &Ctx<'_>,
    root: &std::path::Path,
    hidden: bool,
    min: u64,
) -> Result<(HashMap<u64, Vec<PathBuf>>, Skipped)> {
    let mut by_size: HashMap<u64, Vec<PathBuf>> = HashMap::new();
    let mut inodes: HashSet<(u64, u64)> = HashSet::new();
    let skipped = walk(ctx, root, hidden, None, |e| {
        if !e.file_type().is_file() {
            return Ok(true);
        }
        let Ok(m) = e.metadata() else {
            return Ok(true);
        };
        if m.len() >= min && inodes.insert((m.dev(), m.ino())) {
            by_size
                .entry(m.len())
                .or_default()
                .push(e.path().to_path_buf());
        }
        Ok(true)
    })?;
    Ok((by_size, skipped))
}

/// Hashes the files that share a size with another; groups of two or more with one hash,
/// the most space wasted first (ties by first path).
fn same_content(
    ctx: &Ctx<'_>,
    by_size: HashMap<u64, Vec<PathBuf>>,
    skipped: &mut Skipped,
) -> Result<Vec<Group>> {
    let mut groups = Vec::new();
    for (size, paths) in by_size {
        if paths.len() < 2 {
            continue;
        }
        let mut by_hash: HashMap<String, Vec<PathBuf>> = HashMap::new();
        for p in paths {
            ctx.check_cancel()?;
            match hash_file(ctx, &p, HashAlgo::Blake3) {
                Ok((h, _)) => by_hash.entry(h).or_default().push(p),
                Err(ToolError::Cancelled) => return Err(ToolError::Cancelled),
                // Unreadable or gone since the walk: counted, not fatal.
                Err(_) => skipped.unreadable += 1,
            }
        }
        for (hash, mut paths) in by_hash {
            if paths.len() >= 2 {
                paths.sort();
                groups.push(Group { size, hash, paths });
            }
        }
    }
    groups.sort_by(|a, b| {
        let wa = a.size * (a.paths.len() as u64 - 1);
        let wb = b.size * (b.paths.len() as u64 - 1);
        wb.cmp(&wa).then_with(|| a.paths[0].cmp(&b.paths[0]))
    });
    Ok(groups)
}
