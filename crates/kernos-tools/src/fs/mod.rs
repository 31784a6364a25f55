//! The `fs` tool: files and directories.
//!
//! Conventions every action here follows:
//!
//! - **Paths.** Argument paths are resolved with [`Env::resolve`](crate::Env::resolve) (`~`,
//!   relative to the working directory). Anything that *changes* a path acts on, and reports,
//!   the path with symlinks followed ([`Env::real`](crate::Env::real)), so writing through
//!   `~/link -> /etc` is declared, previewed and journaled as a write to `/etc`. Actions that
//!   act on an entry itself (delete, the source of a move) follow the symlinks of its parent
//!   directories but not the entry: deleting a link deletes the link, not what it points to.
//! - **Effects** are computed leniently from the current state (a step earlier in the plan may
//!   still create what a later step needs), and only fail on arguments that can never work.
//! - **Missing parent directories are created** by write, append, copy, move, archive and
//!   extract; each one is recorded for undo and shown in the dry run as its own change.
//! - **Destinations** of copy and move work like `cp`/`mv`: an existing directory (or a `dest`
//!   ending in `/`) receives the sources inside it, anything else is the new name. When
//!   `source` is a list (which is what a step reference becomes), `dest` is always a
//!   directory, created when missing, so "move them to old/" never renames one file to `old`.
//! - **Kernos's data directory** (journal, blobs, trash) is never a target: such steps are
//!   refused; deleting or moving a directory that contains it is refused too.
//! - Every change goes through the [`Recorder`](crate::Recorder) first, and the dry run lists
//!   exactly the changes execute then makes, in the same order (both are built from one plan).

mod archive;
mod chmod;
mod duplicates;
mod edit;
mod ops;
mod read;
mod scan;
mod special;
mod transfer;

use std::collections::HashSet;
use std::fs::{self, FileType, Metadata};
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use globset::{GlobBuilder, GlobMatcher};
use kernos_core::{Effect, EffectKind};

use crate::args::Paths;
use crate::ctx::Ctx;
use crate::error::{Result, ToolError};
use crate::registry::Registry;

/// Registers the `fs` actions.
pub fn register(r: &mut Registry) {
    r.register(read::List);
    r.register(read::Find);
    r.register(read::Largest);
    r.register(read::Usage);
    r.register(read::Read);
    r.register(scan::Search);
    r.register(scan::Checksum);
    r.register(scan::Count);
    r.register(duplicates::Duplicates);
    r.register(edit::Write);
    r.register(edit::Append);
    r.register(edit::Mkdir);
    r.register(transfer::Copy);
    r.register(transfer::Move);
    r.register(transfer::Delete);
    r.register(chmod::Chmod);
    r.register(archive::Archive);
    r.register(archive::Extract);
}

/// How many entries a walk visits between cancellation checks and progress reports.
const TICK: u64 = 1024;

/// The literal paths of a [`Paths`] argument, resolved, without repeats (order kept). A step
/// reference that reaches a tool unresolved is an error: the engine fills them in.
pub(crate) fn arg_paths(ctx: &Ctx<'_>, p: &Paths, what: &str) -> Result<Vec<PathBuf>> {
    if let Some(r) = p.step_ref() {
        return Err(ToolError::InvalidArgs(format!(
            "`{what}` refers to the output of step {}, which only exists while the plan runs; \
             run the whole plan, or give the paths literally",
            r.step
        )));
    }
    let mut out: Vec<PathBuf> = Vec::new();
    for s in p.list() {
        let r = arg_path(ctx, s, what)?;
        if !out.contains(&r) {
            out.push(r);
        }
    }
    Ok(out)
}

/// One argument path, resolved; empty strings are an error.
pub(crate) fn arg_path(ctx: &Ctx<'_>, s: &str, what: &str) -> Result<PathBuf> {
    if s.trim().is_empty() {
        return Err(ToolError::InvalidArgs(format!(
            "`{what}` is empty; give a file or directory path"
        )));
    }
    Ok(ctx.env.resolve(s))
}

/// Drops paths that lie beneath another path of the list: acting on the parent covers them.
pub(crate) fn outermost(paths: Vec<PathBuf>) -> Vec<PathBuf> {
    let all = paths.clone();
    paths
        .into_iter()
        .filter(|p| !all.iter().any(|q| q != p && p.starts_with(q)))
        .collect()
}

/// The path of an entry itself: its parent directories' symlinks followed, the entry's own
/// name kept (so a symlink stays the symlink).
pub(crate) fn entry_real(ctx: &Ctx<'_>, p: &Path) -> PathBuf {
    match (p.parent(), p.file_name()) {
        (Some(parent), Some(name)) => ctx.env.real(parent).join(name),
        _ => ctx.env.real(p),
    }
}

/// `lstat`, as an option.
pub(crate) fn lstat(p: &Path) -> Option<Metadata> {
    fs::symlink_metadata(p).ok()
}

/// `lstat` that fails with a clear not-found error.
pub(crate) fn lstat_or_err(p: &Path) -> Result<Metadata> {
    fs::symlink_metadata(p).map_err(|e| ToolError::io("cannot read", p, e))
}

/// Refuses targets inside Kernos's data directory, but for an organisation's own workspace
/// there (its scope grants it).
pub(crate) fn guard_write(ctx: &Ctx<'_>, p: &Path) -> Result<()> {
    let data = &ctx.env.data_dir;
    let data_real = ctx.env.real(data);
    let own = ctx.env.scope.as_ref().is_some_and(|s| s.may_write(p));
    if !own && (p.starts_with(data) || p.starts_with(&data_real)) {
        return Err(ToolError::Refused(format!(
            "{} is inside Kernos's data directory {}; steps never change the journal, its \
             snapshots or the trash. Choose a path outside it",
            p.display(),
            data.display()
        )));
    }
    Ok(())
}

/// Refuses targets inside Kernos's data directory and directories that contain it (deleting
/// or moving those would take the journal along).
pub(crate) fn guard_whole(ctx: &Ctx<'_>, p: &Path) -> Result<()> {
    guard_write(ctx, p)?;
    let data = &ctx.env.data_dir;
    let data_real = ctx.env.real(data);
    if data.starts_with(p) || data_real.starts_with(p) {
        return Err(ToolError::Refused(format!(
            "{} contains Kernos's data directory {}, which holds the journal and the trash; \
             name the things inside it you mean instead",
            p.display(),
            data.display()
        )));
    }
    Ok(())
}

/// Kernos's data directory as written and with symlinks followed, computed once for walks
/// that prune it entry by entry.
pub(crate) struct DataDir(PathBuf, PathBuf);

impl DataDir {
    pub(crate) fn of(ctx: &Ctx<'_>) -> Self {
        DataDir(ctx.env.data_dir.clone(), ctx.env.real(&ctx.env.data_dir))
    }

    /// Whether `p` is inside it.
    pub(crate) fn contains(&self, p: &Path) -> bool {
        p.starts_with(&self.0) || p.starts_with(&self.1)
    }
}

/// Fails unless `p` is a regular file that can be read to its end: reading a FIFO would
/// block, a device may never end, and so would a few kernel files (`/proc/kmsg`).
pub(crate) fn regular_file(p: &Path, m: &Metadata) -> Result<()> {
    if m.is_file() {
        return match special::blocking_kernel_file(p) {
            Some(why) => Err(ToolError::Refused(why)),
            None => Ok(()),
        };
    }
    Err(ToolError::Refused(format!(
        "{} is a {}, not a regular file; {}",
        p.display(),
        if m.is_dir() {
            "directory"
        } else {
            "special file (device, FIFO or socket)"
        },
        if m.is_dir() {
            "use fs.list or fs.find to see what is in it"
        } else {
            "Kernos only reads regular files"
        }
    )))
}

/// A short name for a file type.
pub(crate) fn kind_name(ft: FileType) -> &'static str {
    if ft.is_dir() {
        "dir"
    } else if ft.is_file() {
        "file"
    } else if ft.is_symlink() {
        "symlink"
    } else {
        "other"
    }
}

/// Whether `p` is a directory with at least one entry (not following a final symlink).
pub(crate) fn nonempty_dir(p: &Path) -> bool {
    lstat(p).is_some_and(|m| m.is_dir()) && fs::read_dir(p).is_ok_and(|mut rd| rd.next().is_some())
}

/// Total bytes of regular files and number of entries (itself included) of a file or tree,
/// not following symlinks. Unreadable parts count as what could be read.
pub(crate) fn tree_size(ctx: &Ctx<'_>, p: &Path) -> Result<(u64, u64)> {
    let mut bytes = 0u64;
    let mut entries = 0u64;
    for e in walkdir::WalkDir::new(p)
        .follow_links(false)
        .follow_root_links(false)
    {
        let Ok(e) = e else { continue };
        entries += 1;
        if entries % TICK == 0 {
            ctx.check_cancel()?;
        }
        if e.file_type().is_file() {
            bytes += e.metadata().map(|m| m.len()).unwrap_or(0);
        }
    }
    Ok((bytes, entries))
}

/// The first special file (FIFO, socket, device) in a file or tree, if any: copying one would
/// block or read forever.
pub(crate) fn first_special(ctx: &Ctx<'_>, p: &Path) -> Result<Option<PathBuf>> {
    for (i, e) in walkdir::WalkDir::new(p)
        .follow_links(false)
        .follow_root_links(false)
        .into_iter()
        .enumerate()
    {
        if i as u64 % TICK == 0 {
            ctx.check_cancel()?;
        }
        let Ok(e) = e else { continue };
        let ft = e.file_type();
        if !(ft.is_file() || ft.is_dir() || ft.is_symlink()) {
            return Ok(Some(e.into_path()));
        }
    }
    Ok(None)
}

/// Directories that must be created for `dir` to exist, outermost first; `planned` holds
/// directories earlier operations of the same plan create. Fails when an existing ancestor is
/// not a directory.
pub(crate) fn missing_dirs(dir: &Path, planned: &HashSet<PathBuf>) -> Result<Vec<PathBuf>> {
    let mut missing = Vec::new();
    let mut cur = Some(dir);
    while let Some(c) = cur {
        if planned.contains(c) {
            break;
        }
        match fs::metadata(c) {
            Ok(m) if m.is_dir() => break,
            Ok(_) => {
                return Err(ToolError::Refused(format!(
                    "{} is a file, not a directory, so nothing can be created inside it",
                    c.display()
                )));
            }
            Err(_) if lstat(c).is_some() => {
                return Err(ToolError::Refused(format!(
                    "{} is a broken symbolic link; fix or remove it first",
                    c.display()
                )));
            }
            Err(_) => missing.push(c.to_path_buf()),
        }
        cur = c.parent();
    }
    missing.reverse();
    Ok(missing)
}

/// Effects of creating or changing `p`: a write on `p`, plus a write on the outermost
/// directory that has to be created on the way (so the sandbox can allow creating it).
pub(crate) fn write_effects(p: &Path, recursive: bool) -> Vec<Effect> {
    let mut out = vec![Effect::path(EffectKind::Write, p, recursive)];
    if let Some(parent) = p.parent() {
        if let Ok(m) = missing_dirs(parent, &HashSet::new()) {
            if let Some(top) = m.first() {
                out.push(Effect::path(EffectKind::Write, top, false));
            }
        }
    }
    out
}

/// Modification time, seconds since the epoch.
pub(crate) fn mtime_secs(m: &Metadata) -> i64 {
    m.mtime()
}

/// Permission bits as four octal digits, e.g. `0644`.
pub(crate) fn mode_str(mode: u32) -> String {
    format!("{:04o}", mode & 0o7777)
}

/// Whether a file name is hidden (starts with a dot).
pub(crate) fn is_hidden(name: &std::ffi::OsStr) -> bool {
    name.as_encoded_bytes().first() == Some(&b'.')
}

/// A matcher for file names. Matching ignores case (camera files are `.JPG`, people type
/// `*.jpg`). A pattern without wildcards matches names containing it.
pub(crate) fn name_glob(pat: &str, what: &str) -> Result<GlobMatcher> {
    let pat = pat.trim();
    if pat.is_empty() {
        return Err(ToolError::InvalidArgs(format!(
            "`{what}` is empty; give a pattern like *.log"
        )));
    }
    let full = if pat.contains(['*', '?', '[', '{']) {
        pat.to_owned()
    } else {
        format!("*{pat}*")
    };
    GlobBuilder::new(&full)
        .case_insensitive(true)
        .backslash_escape(true)
        .build()
        .map(|g| g.compile_matcher())
        .map_err(|e| {
            ToolError::InvalidArgs(format!(
                "`{what}` {pat:?} is not a valid pattern ({e}); use * and ? as wildcards, \
                 e.g. *.log or report-??.pdf"
            ))
        })
}

/// Whether bytes look like binary data rather than text (a NUL in the first 8 KiB, as git
/// and grep decide).
pub(crate) fn looks_binary(head: &[u8]) -> bool {
    head[..head.len().min(8192)].contains(&0)
}

/// A relative path that stays beneath its base: no `..`, not absolute. `.` parts are dropped.
/// `Err` says why not. An empty result means the base itself.
pub(crate) fn contained(rel: &Path) -> std::result::Result<PathBuf, &'static str> {
    let mut out = PathBuf::new();
    for c in rel.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            Component::ParentDir => return Err("it climbs out with '..'"),
            Component::RootDir | Component::Prefix(_) => return Err("it is an absolute path"),
        }
    }
    Ok(out)
}

/// `n` and its noun, singular for one: "1 file", "3 files", "1 entry", "2 entries".
pub(crate) fn counted(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counted_is_singular_for_one() {
        assert_eq!(counted(1, "file", "files"), "1 file");
        assert_eq!(counted(0, "file", "files"), "0 files");
        assert_eq!(counted(2, "entry", "entries"), "2 entries");
    }

    #[test]
    fn contained_rejects_escapes() {
        assert_eq!(contained(Path::new("a/./b")).unwrap(), PathBuf::from("a/b"));
        assert_eq!(contained(Path::new("./")).unwrap(), PathBuf::new());
        assert!(contained(Path::new("../x")).is_err());
        assert!(contained(Path::new("a/../../x")).is_err());
        assert!(
            contained(Path::new("a/../b")).is_err(),
            "any '..' is refused"
        );
        assert!(contained(Path::new("/etc/passwd")).is_err());
    }

    #[test]
    fn globs_ignore_case_and_plain_words_match_inside() {
        let g = name_glob("*.jpg", "name").unwrap();
        assert!(g.is_match("IMG_1.JPG"));
        assert!(!g.is_match("a.jpeg"));
        let g = name_glob("report", "name").unwrap();
        assert!(g.is_match("Q3-Report.pdf"));
        assert!(name_glob("[", "name").is_err());
        assert!(name_glob(" ", "name").is_err());
    }

    #[test]
    fn outermost_drops_nested_paths() {
        let v = outermost(vec![
            "/a".into(),
            "/a/b".into(),
            "/ab".into(),
            "/c/d".into(),
        ]);
        assert_eq!(
            v,
            vec![
                PathBuf::from("/a"),
                PathBuf::from("/ab"),
                PathBuf::from("/c/d")
            ]
        );
    }

    #[test]
    fn missing_dirs_outermost_first_and_files_refused() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x/y/z");
        assert_eq!(
            missing_dirs(&p, &HashSet::new()).unwrap(),
            vec![d.path().join("x"), d.path().join("x/y"), p.clone()]
        );
        std::fs::write(d.path().join("f"), b"").unwrap();
        assert!(missing_dirs(&d.path().join("f/g"), &HashSet::new()).is_err());
        let planned: HashSet<PathBuf> = [d.path().join("x")].into();
        assert_eq!(
            missing_dirs(&p, &planned).unwrap(),
            vec![d.path().join("x/y"), p]
        );
    }

    #[test]
    fn binary_detection() {
        assert!(!looks_binary(b"hello\nworld"));
        assert!(looks_binary(b"PK\x03\x04\x00\x00"));
    }
}
