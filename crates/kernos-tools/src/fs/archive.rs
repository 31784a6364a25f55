//! `fs.archive` and `fs.extract`: tar.gz/tgz, tar and zip.
//!
//! Archives store each source under its own name (entries are relative to the source's parent
//! directory), keep modes, times and symlinks, and are written to a temporary file beside the
//! destination that replaces it only when complete. The dry run builds the archive into a
//! byte counter, so its size is exact (at the cost of compressing twice for a preview).
//!
//! Extraction is planned completely before anything is written: an entry that is absolute,
//! climbs out with `..`, is a symlink or hard link pointing outside the destination, or would be
//! written through a symlink, makes the whole extraction fail with nothing written. Existing
//! files are overwritten (snapshotted first), existing directories are merged into, and
//! anything else in the way is refused. Set-id and sticky bits from archives are dropped.

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::fs::{self, OpenOptions};
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use kernos_core::{CancelToken, ColumnKind, Effect, EffectKind, Reversibility};
use serde_json::Value;

use crate::args::{ArchiveFormat, FsArchive, FsExtract};
use crate::ctx::Ctx;
use crate::error::{Result, ToolError};
use crate::output::{Change, Output, human_bytes, row};
use crate::registry::{Action, Meta};
use crate::undo::{Recorder, set_mtime};

use super::ops::{self, Op};
use super::read::{read_effect, stat_root};
use super::{
    DataDir, arg_path, arg_paths, contained, guard_write, kind_name, lstat, lstat_or_err,
    missing_dirs, tree_size, write_effects,
};

/// The format a file name asks for, by its extension.
pub(crate) fn format_from_name(name: &str) -> Option<ArchiveFormat> {
    let n = name.to_ascii_lowercase();
    if n.ends_with(".tar.gz") || n.ends_with(".tgz") {
        Some(ArchiveFormat::TarGz)
    } else if n.ends_with(".tar") {
        Some(ArchiveFormat::Tar)
    } else if n.ends_with(".zip") {
        Some(ArchiveFormat::Zip)
    } else {
        None
    }
}

/// The format of archive content, from its first bytes.
pub(crate) fn sniff(head: &[u8]) -> Option<ArchiveFormat> {
    if head.starts_with(&[0x1f, 0x8b]) {
        Some(ArchiveFormat::TarGz)
    } else if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
        Some(ArchiveFormat::Zip)
    } else if head.get(257..262) == Some(b"ustar") {
        Some(ArchiveFormat::Tar)
    } else {
        None
    }
}

fn format_name(f: ArchiveFormat) -> &'static str {
    match f {
        ArchiveFormat::TarGz => "tar.gz",
        ArchiveFormat::Tar => "tar",
        ArchiveFormat::Zip => "zip",
    }
}

/// Whether a symlink at `dir/…` (given as the components of its directory, relative to the
/// destination) pointing at `target` stays inside the destination.
pub(crate) fn link_stays_inside(dir: &Path, target: &Path) -> bool {
    let mut depth: Vec<&std::ffi::OsStr> = Vec::new();
    for c in dir.components() {
        match c {
            Component::Normal(n) => depth.push(n),
            Component::CurDir => {}
            _ => return false,
        }
    }
    for c in target.components() {
        match c {
            Component::Normal(n) => depth.push(n),
            Component::CurDir => {}
            Component::ParentDir => {
                if depth.pop().is_none() {
                    return false;
                }
            }
            Component::RootDir | Component::Prefix(_) => return false,
        }
    }
    true
}

/// Reads exactly `left` bytes of a file being archived: a file that shrank meanwhile is an
/// error (the archive would be corrupt), one that grew is cut at the size in its header.
struct Exact<'a, R> {
    inner: R,
    left: u64,
    cancel: &'a CancelToken,
}

impl<R: Read> Read for Exact<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        if self.cancel.is_cancelled() {
            return Err(io::Error::new(io::ErrorKind::Interrupted, "cancelled"));
        }
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the file shrank while it was being archived; run it again",
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// A writer that only counts: the size an archive would have, without writing it.
#[derive(Default)]
struct Counter {
    pos: u64,
    len: u64,
}

impl Write for Counter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.pos += buf.len() as u64;
        self.len = self.len.max(self.pos);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Seek for Counter {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let base = |b: u64, off: i64| {
            b.checked_add_signed(off)
                .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))
        };
        self.pos = match to {
            SeekFrom::Start(p) => p,
            SeekFrom::End(off) => base(self.len, off)?,
            SeekFrom::Current(off) => base(self.pos, off)?,
        };
        Ok(self.pos)
    }
}

// ---------------------------------------------------------------------------------- times

/// Seconds since the epoch as a zip (MS-DOS, local time) timestamp; 1980 when out of range.
fn dos_time(secs: i64) -> zip::DateTime {
    // SAFETY: an all-zero `tm` is a valid value (null zone pointer included).
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let t = secs as libc::time_t;
    // SAFETY: both pointers are valid for the duration of the call; localtime_r is re-entrant.
    let ok = unsafe { !libc::localtime_r(&t, &mut tm).is_null() };
    if !ok {
        return zip::DateTime::DEFAULT;
    }
    let field = |v: libc::c_int| u8::try_from(v).unwrap_or(0);
    u16::try_from(tm.tm_year + 1900)
        .ok()
        .and_then(|y| {
            zip::DateTime::from_date_and_time(
                y,
                field(tm.tm_mon + 1),
                field(tm.tm_mday),
                field(tm.tm_hour),
                field(tm.tm_min),
                field(tm.tm_sec),
            )
            .ok()
        })
        .unwrap_or(zip::DateTime::DEFAULT)
}

/// A zip (MS-DOS, local time) timestamp as seconds since the epoch.
fn from_dos_time(d: &zip::DateTime) -> Option<i64> {
    // SAFETY: as in `dos_time`.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    tm.tm_year = libc::c_int::from(d.year()) - 1900;
    tm.tm_mon = libc::c_int::from(d.month()) - 1;
    tm.tm_mday = libc::c_int::from(d.day());
    tm.tm_hour = libc::c_int::from(d.hour());
    tm.tm_min = libc::c_int::from(d.minute());
    tm.tm_sec = libc::c_int::from(d.second());
    tm.tm_isdst = -1;
    // SAFETY: `tm` is a valid, initialised struct that mktime may normalise in place.
    let t = unsafe { libc::mktime(&mut tm) };
    (t != -1).then_some(t as i64)
}

/// The Info-ZIP "extended timestamp" extra field with the exact modification time, so
/// extraction (ours, unzip's) does not depend on time zones or DOS's 2-second steps.
fn ut_field(secs: i64) -> [u8; 5] {
    let t = u32::try_from(secs.max(0)).unwrap_or(u32::MAX).to_le_bytes();
    [1, t[0], t[1], t[2], t[3]]
}

// -------------------------------------------------------------------------------- archive

/// `fs.archive`.
pub(crate) struct Archive;

/// One entry to pack.
struct Item {
    /// On disk.
    path: PathBuf,
    /// In the archive.
    name: PathBuf,
    /// `lstat` of `path`.
    meta: fs::Metadata,
}

struct ArchivePlan {
    dest: PathBuf,
    format: ArchiveFormat,
    mkdirs: Vec<PathBuf>,
    /// Size of the file the archive replaces.
    old: Option<u64>,
    items: Vec<Item>,
    /// Sockets, FIFOs and devices left out.
    special: usize,
}

fn archive_dest(ctx: &Ctx<'_>, a: &FsArchive) -> Result<(PathBuf, ArchiveFormat)> {
    let dest = ctx.env.real(&arg_path(ctx, &a.dest, "dest")?);
    guard_write(ctx, &dest)?;
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let format = a
        .format
        .or_else(|| format_from_name(&name))
        .ok_or_else(|| {
            ToolError::InvalidArgs(format!(
                "cannot tell the archive format from {:?}; end the name with .tar.gz, .tgz, .tar \
             or .zip, or set \"format\"",
                a.dest
            ))
        })?;
    Ok((dest, format))
}

fn plan_archive(ctx: &Ctx<'_>, a: &FsArchive) -> Result<ArchivePlan> {
    let (dest, format) = archive_dest(ctx, a)?;
    let old = match lstat(&dest) {
        None => None,
        Some(m) if m.is_file() => Some(m.len()),
        Some(m) if m.is_dir() => {
            return Err(ToolError::Refused(format!(
                "{} is a directory; give the archive's own file name, e.g. {}/archive.{}",
                dest.display(),
                dest.display(),
                format_name(format)
            )));
        }
        Some(m) => {
            return Err(ToolError::Refused(format!(
                "{} exists and is a {}; only a regular file is replaced by a new archive",
                dest.display(),
                kind_name(m.file_type())
            )));
        }
    };
    let mkdirs = match dest.parent() {
        Some(p) => missing_dirs(p, &HashSet::new())?,
        None => Vec::new(),
    };
    let sources = arg_paths(ctx, &a.source, "source")?;
    if sources.is_empty() {
        return Err(ToolError::InvalidArgs(
            "source is empty: there is nothing to archive".into(),
        ));
    }
    let mut items = Vec::new();
    let mut special = 0usize;
    let mut names: HashSet<PathBuf> = HashSet::new();
    for src in sources {
        lstat_or_err(&src)?;
        // A symlink named as a source is followed: its name, the content it points to.
        let top = ctx.env.real(&src);
        stat_root(&top)?;
        let Some(root_name) = src.file_name() else {
            return Err(ToolError::Refused(format!(
                "{} has no name to store it under; archive the things inside it",
                src.display()
            )));
        };
        if dest.starts_with(&top) {
            return Err(ToolError::Refused(format!(
                "the archive {} would be inside {}, which is being archived; write it outside, \
                 e.g. next to it",
                dest.display(),
                src.display()
            )));
        }
        let data = DataDir::of(ctx);
        let home = ctx.env.home.clone();
        // Credential stores below the root stay out, as every walk leaves them out: an
        // archive of /etc must not be a readable copy of /etc/shadow.
        let walk = walkdir::WalkDir::new(&top)
            .follow_links(false)
            .sort_by_file_name()
            .into_iter()
            .filter_entry(move |e| {
                !data.contains(e.path())
                    && (e.depth() == 0
                        || kernos_core::secret::credential_reason(e.path(), &home).is_none())
            });
        for e in walk {
            ctx.check_cancel()?;
            let e = e.map_err(|e| {
                let p = e
                    .path()
                    .map(Path::to_path_buf)
                    .unwrap_or_else(|| top.clone());
                ToolError::Failed(format!(
                    "cannot read {}: {e}; the archive would be incomplete, so none was written",
                    p.display()
                ))
            })?;
            let rel = e.path().strip_prefix(&top).unwrap_or(Path::new(""));
            let name = Path::new(root_name).join(rel);
            let ft = e.file_type();
            if !(ft.is_file() || ft.is_dir() || ft.is_symlink()) {
                special += 1;
                continue;
            }
            if format == ArchiveFormat::Zip && name.to_str().is_none() {
                return Err(ToolError::Refused(format!(
                    "{} has a name that is not valid UTF-8, which zip cannot store; use \
                     .tar.gz instead",
                    e.path().display()
                )));
            }
            if !names.insert(name.clone()) {
                return Err(ToolError::Refused(format!(
                    "two sources would both be stored as {} in the archive; archive them \
                     separately or rename one",
                    name.display()
                )));
            }
            let meta = fs::symlink_metadata(e.path())
                .map_err(|err| ToolError::io("cannot read", e.path(), err))?;
            items.push(Item {
                path: e.path().to_path_buf(),
                name,
                meta,
            });
        }
    }
    Ok(ArchivePlan {
        dest,
        format,
        mkdirs,
        old,
        items,
        special,
    })
}

fn write_err(dest: &Path) -> impl Fn(io::Error) -> ToolError + '_ {
    move |e| {
        if e.kind() == io::ErrorKind::Interrupted {
            ToolError::Cancelled
        } else {
            ToolError::io("cannot write archive", dest, e)
        }
    }
}

/// Writes the archive to `w`; returns the writer.
fn build<W: Write + Seek>(ctx: &Ctx<'_>, p: &ArchivePlan, w: W) -> Result<W> {
    let err = write_err(&p.dest);
    match p.format {
        ArchiveFormat::Tar => tar_items(ctx, p, tar::Builder::new(w))?
            .into_inner()
            .map_err(&err),
        ArchiveFormat::TarGz => {
            let gz = GzEncoder::new(w, Compression::default());
            tar_items(ctx, p, tar::Builder::new(gz))?
                .into_inner()
                .and_then(GzEncoder::finish)
                .map_err(&err)
        }
        ArchiveFormat::Zip => zip_items(ctx, p, w),
    }
}

fn progress(ctx: &Ctx<'_>, p: &ArchivePlan, i: usize, it: &Item) -> Result<()> {
    ctx.check_cancel()?;
    ctx.progress.update(
        i as u64,
        Some(p.items.len() as u64),
        &it.name.display().to_string(),
    );
    Ok(())
}

fn tar_items<W: Write>(
    ctx: &Ctx<'_>,
    p: &ArchivePlan,
    mut b: tar::Builder<W>,
) -> Result<tar::Builder<W>> {
    let err = write_err(&p.dest);
    for (i, it) in p.items.iter().enumerate() {
        progress(ctx, p, i, it)?;
        let m = &it.meta;
        let mut h = tar::Header::new_gnu();
        h.set_metadata_in_mode(m, tar::HeaderMode::Complete);
        h.set_mode(m.mode() & 0o7777);
        let ft = m.file_type();
        if ft.is_file() {
            h.set_size(m.len());
            let f =
                fs::File::open(&it.path).map_err(|e| ToolError::io("cannot read", &it.path, e))?;
            let data = Exact {
                inner: BufReader::with_capacity(256 * 1024, f),
                left: m.len(),
                cancel: ctx.cancel,
            };
            b.append_data(&mut h, &it.name, data).map_err(&err)?;
        } else if ft.is_dir() {
            h.set_size(0);
            b.append_data(&mut h, &it.name, io::empty()).map_err(&err)?;
        } else {
            let target = fs::read_link(&it.path)
                .map_err(|e| ToolError::io("cannot read link", &it.path, e))?;
            h.set_size(0);
            b.append_link(&mut h, &it.name, &target).map_err(&err)?;
        }
    }
    b.finish().map_err(&err)?;
    Ok(b)
}

fn zip_items<W: Write + Seek>(ctx: &Ctx<'_>, p: &ArchivePlan, w: W) -> Result<W> {
    let zerr = |e: zip::result::ZipError| match e {
        zip::result::ZipError::Io(e) => write_err(&p.dest)(e),
        other => ToolError::Failed(format!("cannot write {}: {other}", p.dest.display())),
    };
    let mut z = zip::ZipWriter::new(w);
    for (i, it) in p.items.iter().enumerate() {
        progress(ctx, p, i, it)?;
        let m = &it.meta;
        // Checked while planning: zip names are UTF-8.
        let name = it.name.to_string_lossy().into_owned();
        let mut opts: zip::write::FullFileOptions<'_> = zip::write::FileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .last_modified_time(dos_time(m.mtime()))
            .unix_permissions(m.mode() & 0o777)
            .large_file(m.len() >= zip::ZIP64_BYTES_THR);
        opts.add_extra_data(0x5455, ut_field(m.mtime()), false)
            .map_err(zerr)?;
        let ft = m.file_type();
        if ft.is_file() {
            z.start_file(name, opts).map_err(zerr)?;
            let f =
                fs::File::open(&it.path).map_err(|e| ToolError::io("cannot read", &it.path, e))?;
            let mut data = Exact {
                inner: BufReader::with_capacity(256 * 1024, f),
                left: m.len(),
                cancel: ctx.cancel,
            };
            io::copy(&mut data, &mut z).map_err(write_err(&p.dest))?;
        } else if ft.is_dir() {
            z.add_directory(name, opts).map_err(zerr)?;
        } else {
            let target = fs::read_link(&it.path)
                .map_err(|e| ToolError::io("cannot read link", &it.path, e))?;
            z.add_symlink(name, target.to_string_lossy(), opts)
                .map_err(zerr)?;
        }
    }
    z.finish().map_err(zerr)
}

/// The changes of an archive plan, given the archive's size.
fn archive_changes(p: &ArchivePlan, size: u64) -> Vec<Change> {
    let mut out: Vec<Change> = p
        .mkdirs
        .iter()
        .cloned()
        .map(|d| Op::Mkdir(d).change())
        .collect();
    out.push(match p.old {
        Some(old) => Change::Overwrite {
            path: p.dest.clone(),
            old_bytes: old,
            new_bytes: size,
        },
        None => Change::Create {
            path: p.dest.clone(),
            bytes: Some(size),
            dir: false,
        },
    });
    out
}

/// A unique name for the temporary file beside `dest`.
fn temp_beside(dest: &Path) -> PathBuf {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    dest.with_file_name(format!(
        ".{name}.kernos-{}-{nonce}.part",
        std::process::id()
    ))
}

impl Action for Archive {
    type Args = FsArchive;

    fn meta(&self) -> Meta {
        Meta {
            tool: "fs",
            name: "archive",
            summary: "Pack files or directories into a .tar.gz, .tar or .zip archive",
            effects: &[EffectKind::Read, EffectKind::Write],
            reversibility: Reversibility::Reversible,
            output: &[
                ("path", ColumnKind::Path),
                ("format", ColumnKind::Text),
                ("entries", ColumnKind::Int),
                ("input", ColumnKind::Bytes),
                ("size", ColumnKind::Bytes),
            ],
        }
    }

    fn effects(&self, a: &FsArchive, ctx: &Ctx<'_>) -> Result<Vec<Effect>> {
        let (dest, _) = archive_dest(ctx, a)?;
        let mut out: Vec<Effect> = arg_paths(ctx, &a.source, "source")?
            .iter()
            .map(|s| read_effect(ctx, s, true))
            .collect();
        out.extend(write_effects(&dest, false));
        Ok(out)
    }

    fn dry_run(&self, a: &FsArchive, ctx: &Ctx<'_>) -> Result<Vec<Change>> {
        let p = plan_archive(ctx, a)?;
        let size = build(ctx, &p, Counter::default())?.len;
        Ok(archive_changes(&p, size))
    }

    fn execute(&self, a: &FsArchive, ctx: &Ctx<'_>, undo: &mut Recorder<'_>) -> Result<Output> {
        let p = plan_archive(ctx, a)?;
        let mkdirs: Vec<Op> = p.mkdirs.iter().cloned().map(Op::Mkdir).collect();
        ops::run(&mkdirs, ctx, undo)?;
        undo.before_write(&p.dest)?;
        let tmp = temp_beside(&p.dest);
        let written = (|| {
            let f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&tmp)
                .map_err(|e| ToolError::io("cannot create", &tmp, e))?;
            let w = build(ctx, &p, BufWriter::with_capacity(256 * 1024, f))?;
            let f = w
                .into_inner()
                .map_err(|e| ToolError::io("cannot write archive", &p.dest, e.into_error()))?;
            f.sync_all()
                .map_err(|e| ToolError::io("cannot write archive", &p.dest, e))?;
            if let Some(m) = p.old.and_then(|_| lstat(&p.dest)) {
                // A replaced archive keeps its permissions.
                fs::set_permissions(&tmp, fs::Permissions::from_mode(m.mode() & 0o7777))
                    .map_err(|e| ToolError::io("cannot set mode of", &tmp, e))?;
            }
            let size = f.metadata().map(|m| m.len()).unwrap_or(0);
            fs::rename(&tmp, &p.dest).map_err(|e| ToolError::io("cannot create", &p.dest, e))?;
            Ok(size)
        })();
        let size = match written {
            Ok(s) => s,
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                return Err(e);
            }
        };
        let input: u64 = p
            .items
            .iter()
            .filter(|i| i.meta.is_file())
            .map(|i| i.meta.len())
            .sum();
        let mut summary = format!(
            "packed {} entries ({}) into {} ({})",
            p.items.len(),
            human_bytes(input),
            p.dest.display(),
            human_bytes(size)
        );
        if p.special > 0 {
            summary.push_str(&format!(
                "; left out {} socket(s), FIFO(s) or device(s)",
                p.special
            ));
        }
        let mut out = Output::table(
            Vec::new(),
            vec![row([
                ("path", Value::from(p.dest.display().to_string())),
                ("format", Value::from(format_name(p.format))),
                ("entries", Value::from(p.items.len())),
                ("input", Value::from(input)),
                ("size", Value::from(size)),
            ])],
        )
        .with_summary(summary);
        out.changes = archive_changes(&p, size);
        Ok(out)
    }
}

// -------------------------------------------------------------------------------- extract

/// `fs.extract`.
pub(crate) struct Extract;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Dir,
    File,
    Symlink(PathBuf),
    Hardlink(PathBuf),
    /// Devices, FIFOs, sparse files and other things Kernos does not unpack.
    Other,
    /// Archive metadata (pax global headers): not an entry at all.
    Meta,
}

/// An archive entry's header.
#[derive(Debug, Clone)]
struct Entry {
    index: usize,
    name: PathBuf,
    kind: Kind,
    size: u64,
    mode: Option<u32>,
    mtime: Option<i64>,
}

fn damaged(archive: &Path, f: ArchiveFormat, e: impl std::fmt::Display) -> ToolError {
    ToolError::Failed(format!(
        "{} is not a valid {} archive, or is damaged: {e}",
        archive.display(),
        format_name(f)
    ))
}

/// Calls `f` with each entry and a reader of its content, in archive order.
fn each_entry(
    ctx: &Ctx<'_>,
    archive: &Path,
    format: ArchiveFormat,
    mut f: impl FnMut(Entry, &mut dyn Read) -> Result<()>,
) -> Result<()> {
    let file = fs::File::open(archive).map_err(|e| ToolError::io("cannot read", archive, e))?;
    let bad = |e: io::Error| damaged(archive, format, e);
    match format {
        ArchiveFormat::Tar | ArchiveFormat::TarGz => {
            let buffered = BufReader::with_capacity(256 * 1024, file);
            let reader: Box<dyn Read> = if format == ArchiveFormat::TarGz {
                Box::new(GzDecoder::new(buffered))
            } else {
                Box::new(buffered)
            };
            let mut ar = tar::Archive::new(reader);
            for (index, e) in ar.entries().map_err(bad)?.enumerate() {
                ctx.check_cancel()?;
                let mut e = e.map_err(bad)?;
                let name = e.path().map_err(bad)?.into_owned();
                let link = || -> Result<PathBuf> {
                    Ok(e.link_name()
                        .map_err(bad)?
                        .ok_or_else(|| damaged(archive, format, "a link without a target"))?
                        .into_owned())
                };
                use tar::EntryType as T;
                let kind = match e.header().entry_type() {
                    T::Regular | T::Continuous => Kind::File,
                    T::Directory => Kind::Dir,
                    T::Symlink => Kind::Symlink(link()?),
                    T::Link => Kind::Hardlink(link()?),
                    T::XGlobalHeader => Kind::Meta,
                    _ => Kind::Other,
                };
                let entry = Entry {
                    index,
                    name,
                    kind,
                    size: e.size(),
                    mode: e.header().mode().ok(),
                    mtime: e.header().mtime().ok().map(|t| t as i64),
                };
                f(entry, &mut e)?;
            }
        }
        ArchiveFormat::Zip => {
            let zbad = |e: zip::result::ZipError| damaged(archive, format, e);
            let mut z =
                zip::ZipArchive::new(BufReader::with_capacity(256 * 1024, file)).map_err(zbad)?;
            for index in 0..z.len() {
                ctx.check_cancel()?;
                let mut zf = z.by_index(index).map_err(|e| match e {
                    zip::result::ZipError::UnsupportedArchive(m) => ToolError::Refused(format!(
                        "{} cannot be unpacked by Kernos ({m}); encrypted zips and methods other \
                         than deflate need `unzip`",
                        archive.display()
                    )),
                    other => zbad(other),
                })?;
                if !matches!(
                    zf.compression(),
                    zip::CompressionMethod::Stored | zip::CompressionMethod::Deflated
                ) {
                    return Err(ToolError::Refused(format!(
                        "{} uses {} compression, which Kernos does not unpack; use `unzip`",
                        archive.display(),
                        zf.compression()
                    )));
                }
                let name = PathBuf::from(zf.name());
                let kind = if zf.is_dir() {
                    Kind::Dir
                } else if zf.is_symlink() {
                    let mut t = Vec::new();
                    (&mut zf).take(4096).read_to_end(&mut t).map_err(bad)?;
                    Kind::Symlink(PathBuf::from(OsString::from_vec(t)))
                } else {
                    Kind::File
                };
                let ut = zf.extra_data_fields().find_map(|f| match f {
                    zip::ExtraField::ExtendedTimestamp(t) => t.mod_time().map(i64::from),
                    _ => None,
                });
                let entry = Entry {
                    index,
                    name,
                    size: if kind == Kind::File { zf.size() } else { 0 },
                    kind,
                    mode: zf.unix_mode(),
                    mtime: ut.or_else(|| zf.last_modified().as_ref().and_then(from_dos_time)),
                };
                f(entry, &mut zf)?;
            }
        }
    }
    Ok(())
}

/// One change of an extraction.
#[derive(Debug, Clone)]
enum XOp {
    /// A directory the archive implies but does not list.
    Mkdir(PathBuf),
    /// A directory entry.
    Dir {
        path: PathBuf,
        mode: u32,
        mtime: Option<i64>,
    },
    /// A file entry (new or overwriting).
    File {
        path: PathBuf,
        size: u64,
        old: Option<u64>,
        mode: u32,
        mtime: Option<i64>,
    },
    /// A symbolic link entry.
    Symlink {
        path: PathBuf,
        target: PathBuf,
        mtime: Option<i64>,
    },
    /// A hard link to a file extracted earlier.
    Hardlink {
        path: PathBuf,
        target: PathBuf,
        size: u64,
        old: Option<u64>,
    },
}

impl XOp {
    fn change(&self) -> Change {
        let file = |path: &Path, size: u64, old: Option<u64>| match old {
            Some(o) => Change::Overwrite {
                path: path.to_path_buf(),
                old_bytes: o,
                new_bytes: size,
            },
            None => Change::Create {
                path: path.to_path_buf(),
                bytes: Some(size),
                dir: false,
            },
        };
        match self {
            XOp::Mkdir(path) | XOp::Dir { path, .. } => Change::Create {
                path: path.clone(),
                bytes: None,
                dir: true,
            },
            XOp::File {
                path, size, old, ..
            }
            | XOp::Hardlink {
                path, size, old, ..
            } => file(path, *size, *old),
            XOp::Symlink { path, .. } => Change::Create {
                path: path.clone(),
                bytes: None,
                dir: false,
            },
        }
    }
}

/// What a plan puts at a relative path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Planned {
    Dir,
    File(u64),
    Link,
}

struct ExtractPlan {
    archive: PathBuf,
    format: ArchiveFormat,
    dest: PathBuf,
    /// Directories to create for `dest` itself.
    pre: Vec<PathBuf>,
    /// Per entry index: the entry's name (checked again while extracting) and its changes.
    steps: Vec<(usize, PathBuf, Vec<XOp>)>,
    /// The archive's top-level names, in order.
    tops: Vec<PathBuf>,
    /// Entries left out (devices, FIFOs…).
    special: usize,
}

fn unsafe_entry(archive: &Path, name: &Path, why: impl std::fmt::Display) -> ToolError {
    ToolError::Refused(format!(
        "{} is unsafe to unpack: entry {:?} {why}. Nothing was extracted",
        archive.display(),
        name
    ))
}

fn extract_paths(ctx: &Ctx<'_>, a: &FsExtract) -> Result<(PathBuf, PathBuf)> {
    let archive = arg_path(ctx, &a.archive, "archive")?;
    let dest = match &a.dest {
        Some(d) => arg_path(ctx, d, "dest")?,
        None => ctx.env.cwd.clone(),
    };
    let dest = ctx.env.real(&dest);
    guard_write(ctx, &dest)?;
    Ok((archive, dest))
}

fn plan_extract(ctx: &Ctx<'_>, a: &FsExtract) -> Result<ExtractPlan> {
    let (archive, dest) = extract_paths(ctx, a)?;
    if stat_root(&archive)?.is_dir() {
        return Err(ToolError::Refused(format!(
            "{} is a directory, not an archive",
            archive.display()
        )));
    }
    let mut head = Vec::with_capacity(512);
    fs::File::open(&archive)
        .and_then(|f| f.take(512).read_to_end(&mut head))
        .map_err(|e| ToolError::io("cannot read", &archive, e))?;
    let name = archive
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let format = sniff(&head)
        .or_else(|| format_from_name(&name))
        .ok_or_else(|| {
            ToolError::Refused(format!(
                "{} is not an archive Kernos can unpack (it unpacks .tar.gz/.tgz, .tar and .zip)",
                archive.display()
            ))
        })?;
    if let Some(m) = lstat(&dest).filter(|_| !fs::metadata(&dest).is_ok_and(|m| m.is_dir())) {
        return Err(ToolError::Refused(format!(
            "{} is a {}, not a directory; give a directory to extract into",
            dest.display(),
            kind_name(m.file_type())
        )));
    }
    let pre = missing_dirs(&dest, &HashSet::new())?;

    let mut entries = Vec::new();
    each_entry(ctx, &archive, format, |e, _| {
        entries.push(e);
        Ok(())
    })?;
    // A later entry with the same name replaces an earlier one (as tar does).
    let mut last: HashMap<PathBuf, usize> = HashMap::new();
    for e in &entries {
        if let Ok(rel) = contained(&e.name) {
            if !matches!(e.kind, Kind::Dir | Kind::Other | Kind::Meta) {
                last.insert(rel, e.index);
            }
        }
    }

    let mut planned: HashMap<PathBuf, Planned> = HashMap::new();
    let mut links: HashSet<PathBuf> = HashSet::new();
    let mut made: HashSet<PathBuf> = pre.iter().cloned().collect();
    let mut plan = ExtractPlan {
        archive: archive.clone(),
        format,
        dest: dest.clone(),
        pre,
        steps: Vec::new(),
        tops: Vec::new(),
        special: 0,
    };
    for e in entries {
        let rel = contained(&e.name).map_err(|why| {
            unsafe_entry(
                &archive,
                &e.name,
                format!("would land outside {} because {why}", dest.display()),
            )
        })?;
        match e.kind {
            Kind::Meta => continue,
            Kind::Other => {
                plan.special += 1;
                continue;
            }
            _ => {}
        }
        if rel.as_os_str().is_empty() {
            continue;
        }
        for anc in rel.ancestors().skip(1) {
            if links.contains(anc) {
                return Err(unsafe_entry(
                    &archive,
                    &e.name,
                    format!(
                        "would be written through {}, a symbolic link the archive itself creates",
                        anc.display()
                    ),
                ));
            }
            if matches!(planned.get(anc), Some(Planned::File(_))) {
                return Err(ToolError::Refused(format!(
                    "{} puts a file at {} and then something inside it; it cannot be unpacked \
                     as it is",
                    archive.display(),
                    anc.display()
                )));
            }
        }
        let path = dest.join(&rel);
        let parent = path.parent().unwrap_or(&dest);
        let parent_real = ctx.env.real(parent);
        if !parent_real.starts_with(&dest) {
            return Err(unsafe_entry(
                &archive,
                &e.name,
                format!(
                    "would be written through the symbolic link {}, which leads to {}, outside {}",
                    parent.display(),
                    parent_real.display(),
                    dest.display()
                ),
            ));
        }
        if !matches!(e.kind, Kind::Dir) && last.get(&rel) != Some(&e.index) {
            continue;
        }
        let mut xops: Vec<XOp> = Vec::new();
        for d in missing_dirs(parent, &made)? {
            made.insert(d.clone());
            xops.push(XOp::Mkdir(d));
        }
        let mode = |default: u32| e.mode.map_or(default, |m| m & 0o777);
        let in_the_way = |m: &fs::Metadata, what: &str| {
            ToolError::Refused(format!(
                "{} already exists as a {}, where the archive has a {what}; move it away or \
                 extract somewhere else",
                path.display(),
                kind_name(m.file_type())
            ))
        };
        let existing_file = |planned: &HashMap<PathBuf, Planned>| -> Result<Option<u64>> {
            match (planned.get(&rel), lstat(&path)) {
                (Some(Planned::Dir), _) => Err(ToolError::Refused(format!(
                    "{} has both a directory and a file named {}; it cannot be unpacked as it is",
                    archive.display(),
                    rel.display()
                ))),
                (_, None) => Ok(None),
                (_, Some(m)) if m.is_file() => Ok(Some(m.len())),
                (_, Some(m)) => Err(in_the_way(&m, "file")),
            }
        };
        match &e.kind {
            Kind::Dir => {
                if planned.get(&rel) == Some(&Planned::Dir) || made.contains(&path) {
                    // Listed twice, or implied by an earlier entry: nothing more to do.
                } else if let Some(m) = lstat(&path) {
                    if !m.is_dir() {
                        return Err(in_the_way(&m, "directory"));
                    }
                } else {
                    made.insert(path.clone());
                    xops.push(XOp::Dir {
                        path: path.clone(),
                        mode: mode(0o755),
                        mtime: e.mtime,
                    });
                }
                planned.insert(rel.clone(), Planned::Dir);
            }
            Kind::File => {
                let old = existing_file(&planned)?;
                xops.push(XOp::File {
                    path: path.clone(),
                    size: e.size,
                    old,
                    mode: mode(0o644),
                    mtime: e.mtime,
                });
                planned.insert(rel.clone(), Planned::File(e.size));
            }
            Kind::Symlink(target) => {
                let base = parent_real.strip_prefix(&dest).unwrap_or(Path::new(""));
                if !link_stays_inside(base, target) {
                    return Err(unsafe_entry(
                        &archive,
                        &e.name,
                        format!(
                            "is a symbolic link to {}, which points outside {}",
                            target.display(),
                            dest.display()
                        ),
                    ));
                }
                if let Some(m) = lstat(&path) {
                    return Err(in_the_way(&m, "symbolic link"));
                }
                xops.push(XOp::Symlink {
                    path: path.clone(),
                    target: target.clone(),
                    mtime: e.mtime,
                });
                links.insert(rel.clone());
                planned.insert(rel.clone(), Planned::Link);
            }
            Kind::Hardlink(target) => {
                let t = contained(target).map_err(|why| {
                    unsafe_entry(
                        &archive,
                        &e.name,
                        format!(
                            "is a hard link to {}, which is outside because {why}",
                            target.display()
                        ),
                    )
                })?;
                let Some(Planned::File(size)) = planned.get(&t).copied() else {
                    return Err(unsafe_entry(
                        &archive,
                        &e.name,
                        format!(
                            "is a hard link to {}, which is not a file unpacked before it",
                            target.display()
                        ),
                    ));
                };
                let old = existing_file(&planned)?;
                xops.push(XOp::Hardlink {
                    path: path.clone(),
                    target: dest.join(&t),
                    size,
                    old,
                });
                planned.insert(rel.clone(), Planned::File(size));
            }
            Kind::Other | Kind::Meta => {}
        }
        if let Some(Component::Normal(top)) = rel.components().next() {
            let top = PathBuf::from(top);
            if !plan.tops.contains(&top) {
                plan.tops.push(top);
            }
        }
        plan.steps.push((e.index, e.name.clone(), xops));
    }
    Ok(plan)
}

fn extract_changes(p: &ExtractPlan) -> Vec<Change> {
    let mut out: Vec<Change> = p
        .pre
        .iter()
        .cloned()
        .map(|d| Op::Mkdir(d).change())
        .collect();
    for (_, _, xops) in &p.steps {
        out.extend(xops.iter().map(XOp::change));
    }
    out
}

fn set_time(path: &Path, mtime: Option<i64>) -> Result<()> {
    match mtime {
        Some(t) => set_mtime(path, t.saturating_mul(1_000_000_000))
            .map_err(|e| ToolError::io("cannot set time of", path, e)),
        None => Ok(()),
    }
}

/// Applies one extraction change (recording its inverse first). Directory modes and times
/// are set at the end (`late`), once nothing more is written inside them.
fn apply_xop(
    op: &XOp,
    data: &mut dyn Read,
    archive: &Path,
    rec: &mut Recorder<'_>,
    late: &mut Vec<(PathBuf, u32, Option<i64>)>,
) -> Result<()> {
    match op {
        XOp::Mkdir(p) => {
            rec.before_mkdir(p)?;
            fs::create_dir(p).map_err(|e| ToolError::io("cannot create directory", p, e))
        }
        XOp::Dir { path, mode, mtime } => {
            rec.before_mkdir(path)?;
            fs::create_dir(path).map_err(|e| ToolError::io("cannot create directory", path, e))?;
            // Writable for us until the end, whatever the archive says.
            fs::set_permissions(path, fs::Permissions::from_mode(mode | 0o700))
                .map_err(|e| ToolError::io("cannot set mode of", path, e))?;
            late.push((path.clone(), *mode, *mtime));
            Ok(())
        }
        XOp::File {
            path,
            size,
            mode,
            mtime,
            ..
        } => {
            rec.before_write(path)?;
            let mut f = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(path)
                .map_err(|e| ToolError::io("cannot write", path, e))?;
            let n = io::copy(&mut data.take(*size), &mut f)
                .map_err(|e| ToolError::io("cannot unpack", path, e))?;
            if n != *size {
                return Err(ToolError::Failed(format!(
                    "{} is damaged: {} should have {size} bytes, found {n}",
                    archive.display(),
                    path.display()
                )));
            }
            drop(f);
            fs::set_permissions(path, fs::Permissions::from_mode(*mode))
                .map_err(|e| ToolError::io("cannot set mode of", path, e))?;
            set_time(path, *mtime)
        }
        XOp::Symlink {
            path,
            target,
            mtime,
        } => {
            rec.before_write(path)?;
            std::os::unix::fs::symlink(target, path)
                .map_err(|e| ToolError::io("cannot create link", path, e))?;
            set_time(path, *mtime)
        }
        XOp::Hardlink {
            path, target, old, ..
        } => {
            rec.before_write(path)?;
            if old.is_some() {
                fs::remove_file(path).map_err(|e| ToolError::io("cannot replace", path, e))?;
            }
            fs::hard_link(target, path).map_err(|e| ToolError::io("cannot create link", path, e))
        }
    }
}

impl Action for Extract {
    type Args = FsExtract;

    fn meta(&self) -> Meta {
        Meta {
            tool: "fs",
            name: "extract",
            summary: "Unpack a .tar.gz, .tar or .zip archive (refusing entries that escape)",
            effects: &[EffectKind::Read, EffectKind::Write],
            reversibility: Reversibility::Reversible,
            output: &[
                ("path", ColumnKind::Path),
                ("type", ColumnKind::Text),
                ("size", ColumnKind::Bytes),
            ],
        }
    }

    fn effects(&self, a: &FsExtract, ctx: &Ctx<'_>) -> Result<Vec<Effect>> {
        let (archive, dest) = extract_paths(ctx, a)?;
        let mut out = vec![read_effect(ctx, &archive, false)];
        out.extend(write_effects(&dest, true));
        Ok(out)
    }

    fn dry_run(&self, a: &FsExtract, ctx: &Ctx<'_>) -> Result<Vec<Change>> {
        Ok(extract_changes(&plan_extract(ctx, a)?))
    }

    fn execute(&self, a: &FsExtract, ctx: &Ctx<'_>, undo: &mut Recorder<'_>) -> Result<Output> {
        let p = plan_extract(ctx, a)?;
        let pre: Vec<Op> = p.pre.iter().cloned().map(Op::Mkdir).collect();
        let mut changes = ops::run(&pre, ctx, undo)?;
        let steps: HashMap<usize, &(usize, PathBuf, Vec<XOp>)> =
            p.steps.iter().map(|s| (s.0, s)).collect();
        let mut late = Vec::new();
        let mut seen = 0usize;
        let total = p.steps.len() as u64;
        each_entry(ctx, &p.archive, p.format, |e, data| {
            let Some((_, name, xops)) = steps.get(&e.index) else {
                return Ok(());
            };
            if &e.name != name {
                return Err(ToolError::Failed(format!(
                    "{} changed while it was being unpacked; run the step again",
                    p.archive.display()
                )));
            }
            seen += 1;
            ctx.progress
                .update(seen as u64, Some(total), &name.display().to_string());
            for op in xops {
                apply_xop(op, data, &p.archive, undo, &mut late)?;
                changes.push(op.change());
            }
            Ok(())
        })?;
        if seen != p.steps.len() {
            return Err(ToolError::Failed(format!(
                "{} changed while it was being unpacked; run the step again",
                p.archive.display()
            )));
        }
        for (path, mode, mtime) in late.iter().rev() {
            fs::set_permissions(path, fs::Permissions::from_mode(*mode))
                .map_err(|e| ToolError::io("cannot set mode of", path, e))?;
            set_time(path, *mtime)?;
        }
        let mut rows = Vec::new();
        for top in &p.tops {
            let path = p.dest.join(top);
            let kind = lstat(&path).map_or("missing", |m| kind_name(m.file_type()));
            let (size, _) = tree_size(ctx, &path)?;
            rows.push(row([
                ("path", Value::from(path.display().to_string())),
                ("type", Value::from(kind)),
                ("size", Value::from(size)),
            ]));
        }
        let files = changes
            .iter()
            .filter(|c| {
                matches!(
                    c,
                    Change::Create { dir: false, .. } | Change::Overwrite { .. }
                )
            })
            .count();
        let overwritten = changes
            .iter()
            .filter(|c| matches!(c, Change::Overwrite { .. }))
            .count();
        let mut summary = format!(
            "unpacked {files} file(s) and link(s) from {} into {}",
            p.archive.display(),
            p.dest.display()
        );
        if overwritten > 0 {
            summary.push_str(&format!(
                "; {overwritten} existing file(s) overwritten (undo restores them)"
            ));
        }
        if p.special > 0 {
            summary.push_str(&format!(
                "; left out {} device(s), FIFO(s) or other special entries",
                p.special
            ));
        }
        let mut out = Output::table(Vec::new(), rows).with_summary(summary);
        out.changes = changes;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_from_names_and_content() {
        assert_eq!(format_from_name("a.TAR.GZ"), Some(ArchiveFormat::TarGz));
        assert_eq!(format_from_name("a.tgz"), Some(ArchiveFormat::TarGz));
        assert_eq!(format_from_name("a.tar"), Some(ArchiveFormat::Tar));
        assert_eq!(format_from_name("a.zip"), Some(ArchiveFormat::Zip));
        assert_eq!(format_from_name("a.rar"), None);
        assert_eq!(format_from_name("tar"), None);
        assert_eq!(sniff(&[0x1f, 0x8b, 8]), Some(ArchiveFormat::TarGz));
        assert_eq!(sniff(b"PK\x03\x04rest"), Some(ArchiveFormat::Zip));
        let mut tar = vec![0u8; 512];
        tar[257..262].copy_from_slice(b"ustar");
        assert_eq!(sniff(&tar), Some(ArchiveFormat::Tar));
        assert_eq!(sniff(b"plain text"), None);
    }

    #[test]
    fn link_targets_must_stay_inside() {
        assert!(link_stays_inside(Path::new(""), Path::new("a/b")));
        assert!(link_stays_inside(Path::new("d"), Path::new("../x")));
        assert!(link_stays_inside(Path::new("d/e"), Path::new("../../x")));
        assert!(!link_stays_inside(Path::new("d"), Path::new("../../x")));
        assert!(!link_stays_inside(Path::new(""), Path::new("..")));
        assert!(!link_stays_inside(Path::new("d"), Path::new("/etc/passwd")));
        assert!(link_stays_inside(Path::new("d"), Path::new("./y/../z")));
    }

    #[test]
    fn counter_measures_like_a_file() {
        let mut c = Counter::default();
        c.write_all(b"0123456789").unwrap();
        c.seek(SeekFrom::Start(2)).unwrap();
        c.write_all(b"ab").unwrap();
        assert_eq!(c.len, 10);
        c.seek(SeekFrom::End(0)).unwrap();
        c.write_all(b"x").unwrap();
        assert_eq!((c.len, c.pos), (11, 11));
    }

    #[test]
    fn dos_times_round_trip_to_two_seconds() {
        let t = 1_700_000_000;
        let back = from_dos_time(&dos_time(t)).unwrap();
        assert!((back - t).abs() <= 2, "{back} vs {t}");
        assert_eq!(ut_field(0x01020304), [1, 4, 3, 2, 1]);
    }
}
