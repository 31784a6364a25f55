//! `fs.search`, `fs.checksum`, `fs.count`: reads that look inside files, streamed so any size
//! works.

use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use kernos_core::{CancelToken, ColumnKind, Effect, EffectKind, Reversibility};
use regex::bytes::RegexBuilder;
use serde_json::Value;

use crate::args::{CountWhat, FsChecksum, FsCount, FsSearch, HashAlgo};
use crate::ctx::Ctx;
use crate::error::{Result, ToolError};
use crate::output::{Output, human_bytes, row};
use crate::registry::{Action, Meta};
use crate::undo::Recorder;

use super::read::{Skipped, read_effect, stat_root, walk};
use super::special;
use super::{arg_path, arg_paths, looks_binary, name_glob, regular_file};

// --------------------------------------------------------------------------------- search

/// `fs.search`.
pub(crate) struct Search;

/// Matching lines returned at most when no limit is given.
const SEARCH_DEFAULT_LIMIT: usize = 1000;
/// Longest line text returned; longer lines are cut (minified files have megabyte lines).
const LINE_CAP: usize = 400;

fn line_text(line: &[u8]) -> String {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let text = String::from_utf8_lossy(line);
    if text.chars().count() > LINE_CAP {
        let mut t: String = text.chars().take(LINE_CAP).collect();
        t.push('…');
        t
    } else {
        text.into_owned()
    }
}

impl Action for Search {
    type Args = FsSearch;

    fn meta(&self) -> Meta {
        Meta {
            tool: "fs",
            name: "search",
            summary: "Find lines containing text (or matching a regex) in a file or a tree",
            effects: &[EffectKind::Read],
            reversibility: Reversibility::ReadOnly,
            output: &[
                ("path", ColumnKind::Path),
                ("line", ColumnKind::Int),
                ("text", ColumnKind::Text),
            ],
        }
    }

    fn effects(&self, a: &FsSearch, ctx: &Ctx<'_>) -> Result<Vec<Effect>> {
        Ok(vec![read_effect(
            ctx,
            &arg_path(ctx, &a.path, "path")?,
            true,
        )])
    }

    fn execute(&self, a: &FsSearch, ctx: &Ctx<'_>, _: &mut Recorder<'_>) -> Result<Output> {
        let root = arg_path(ctx, &a.path, "path")?;
        if a.pattern.is_empty() {
            return Err(ToolError::InvalidArgs(
                "pattern is empty; give the text to look for".into(),
            ));
        }
        let source = if a.regex {
            a.pattern.clone()
        } else {
            regex::escape(&a.pattern)
        };
        let re = RegexBuilder::new(&source)
            .case_insensitive(a.ignore_case)
            .build()
            .map_err(|e| {
                ToolError::InvalidArgs(format!(
                    "pattern {:?} is not a valid regular expression: {e}; set \"regex\": false \
                     to search for the text literally",
                    a.pattern
                ))
            })?;
        let glob = a
            .glob
            .as_deref()
            .map(|g| name_glob(g, "glob"))
            .transpose()?;
        let limit = a.limit.unwrap_or(SEARCH_DEFAULT_LIMIT);
        let root_meta = stat_root(&root)?;
        let mut files: Vec<PathBuf> = Vec::new();
        let mut skipped = Skipped::default();
        if root_meta.is_dir() {
            skipped = walk(ctx, &root, false, None, |e| {
                let ok = e.file_type().is_file()
                    && glob.as_ref().is_none_or(|g| g.is_match(e.file_name()));
                if ok {
                    files.push(e.path().to_path_buf());
                }
                Ok(true)
            })?;
        } else {
            regular_file(&root, &root_meta)?;
            files.push(root.clone());
        }
        let mut rows = Vec::new();
        let mut truncated = false;
        let mut binary = 0usize;
        let mut matched_files = 0usize;
        let total = files.len() as u64;
        'files: for (i, path) in files.iter().enumerate() {
            ctx.check_cancel()?;
            ctx.progress
                .update(i as u64, Some(total), &path.display().to_string());
            let Ok(f) = special::open_read(path) else {
                skipped.unreadable += 1;
                continue;
            };
            let mut r = BufReader::with_capacity(64 * 1024, f);
            match r.fill_buf() {
                Ok(head) if looks_binary(head) => {
                    binary += 1;
                    continue;
                }
                Ok(_) => {}
                Err(_) => {
                    skipped.unreadable += 1;
                    continue;
                }
            }
            let mut line = Vec::new();
            let mut n = 0u64;
            let mut any = false;
            loop {
                line.clear();
                match r.read_until(b'\n', &mut line) {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(_) => {
                        skipped.unreadable += 1;
                        break;
                    }
                }
                n += 1;
                if n % 65_536 == 0 {
                    ctx.check_cancel()?;
                }
                if re.is_match(&line) {
                    if rows.len() >= limit {
                        truncated = true;
                        break 'files;
                    }
                    any = true;
                    rows.push(row([
                        ("path", Value::from(path.display().to_string())),
                        ("line", Value::from(n)),
                        ("text", Value::from(line_text(&line))),
                    ]));
                }
            }
            matched_files += usize::from(any);
        }
        let mut summary = format!(
            "{} matching line{} in {} of {} file{} under {}",
            rows.len(),
            if rows.len() == 1 { "" } else { "s" },
            matched_files,
            files.len(),
            if files.len() == 1 { "" } else { "s" },
            root.display()
        );
        if truncated {
            summary.push_str(&format!("; stopped at the limit of {limit}"));
        }
        if binary > 0 {
            summary.push_str(&format!("; {binary} binary file(s) skipped"));
        }
        skipped.note(&mut summary);
        let mut out = Output::table(Vec::new(), rows).with_summary(summary);
        out.truncated = truncated;
        Ok(out)
    }
}

// ------------------------------------------------------------------------------- checksum

/// `fs.checksum`.
pub(crate) struct Checksum;

/// A streaming hasher for one algorithm.
enum Hasher {
    Sha256(sha2::Sha256),
    Sha512(sha2::Sha512),
    Sha1(sha1::Sha1),
    Md5(md5::Md5),
    Blake3(Box<blake3::Hasher>),
}

impl Hasher {
    fn new(a: HashAlgo) -> Self {
        use sha2::Digest;
        match a {
            HashAlgo::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
            HashAlgo::Sha512 => Hasher::Sha512(sha2::Sha512::new()),
            HashAlgo::Sha1 => Hasher::Sha1(sha1::Sha1::new()),
            HashAlgo::Md5 => Hasher::Md5(md5::Md5::new()),
            HashAlgo::Blake3 => Hasher::Blake3(Box::new(blake3::Hasher::new())),
        }
    }

    fn update(&mut self, b: &[u8]) {
        use sha2::Digest;
        match self {
            Hasher::Sha256(h) => h.update(b),
            Hasher::Sha512(h) => h.update(b),
            Hasher::Sha1(h) => h.update(b),
            Hasher::Md5(h) => h.update(b),
            Hasher::Blake3(h) => {
                h.update(b);
            }
        }
    }

    fn hex(self) -> String {
        use kernos_core::hex::encode as hex;
        use sha2::Digest;
        match self {
            Hasher::Sha256(h) => hex(&h.finalize()),
            Hasher::Sha512(h) => hex(&h.finalize()),
            Hasher::Sha1(h) => hex(&h.finalize()),
            Hasher::Md5(h) => hex(&h.finalize()),
            Hasher::Blake3(h) => h.finalize().to_hex().to_string(),
        }
    }
}

fn algo_name(a: HashAlgo) -> &'static str {
    match a {
        HashAlgo::Sha256 => "sha256",
        HashAlgo::Sha512 => "sha512",
        HashAlgo::Sha1 => "sha1",
        HashAlgo::Md5 => "md5",
        HashAlgo::Blake3 => "blake3",
    }
}

/// Hashes a file in 256 KiB blocks; returns the hex digest and the size.
pub(crate) fn hash_file(ctx: &Ctx<'_>, p: &Path, a: HashAlgo) -> Result<(String, u64)> {
    let mut f = special::open_read(p).map_err(|e| ToolError::io("cannot read", p, e))?;
    let mut h = Hasher::new(a);
    let mut buf = vec![0u8; 256 * 1024];
    let mut size = 0u64;
    loop {
        let n = match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(ToolError::io("cannot read", p, e)),
        };
        h.update(&buf[..n]);
        size += n as u64;
        if size % (64 << 20) < n as u64 {
            ctx.check_cancel()?;
            ctx.progress.update(size, None, &p.display().to_string());
        }
    }
    Ok((h.hex(), size))
}

impl Action for Checksum {
    type Args = FsChecksum;

    fn meta(&self) -> Meta {
        Meta {
            tool: "fs",
            name: "checksum",
            summary: "Hash files (sha256 by default; sha512, sha1, md5, blake3)",
            effects: &[EffectKind::Read],
            reversibility: Reversibility::ReadOnly,
            output: &[
                ("path", ColumnKind::Path),
                ("algorithm", ColumnKind::Text),
                ("checksum", ColumnKind::Text),
                ("size", ColumnKind::Bytes),
            ],
        }
    }

    fn effects(&self, a: &FsChecksum, ctx: &Ctx<'_>) -> Result<Vec<Effect>> {
        Ok(arg_paths(ctx, &a.path, "path")?
            .iter()
            .map(|p| read_effect(ctx, p, true))
            .collect())
    }

    fn execute(&self, a: &FsChecksum, ctx: &Ctx<'_>, _: &mut Recorder<'_>) -> Result<Output> {
        let mut files = Vec::new();
        let mut skipped = Skipped::default();
        for p in arg_paths(ctx, &a.path, "path")? {
            let m = stat_root(&p)?;
            if m.is_dir() {
                // A directory: every file in it, hidden ones too (a checksum list is a manifest).
                let s = walk(ctx, &p, true, None, |e| {
                    if e.file_type().is_file() {
                        files.push(e.path().to_path_buf());
                    }
                    Ok(true)
                })?;
                skipped.add(s);
            } else {
                regular_file(&p, &m)?;
                files.push(p);
            }
        }
        let name = algo_name(a.algorithm);
        let mut rows = Vec::new();
        let mut bytes = 0u64;
        for p in &files {
            ctx.check_cancel()?;
            let (sum, size) = hash_file(ctx, p, a.algorithm)?;
            bytes += size;
            rows.push(row([
                ("path", Value::from(p.display().to_string())),
                ("algorithm", Value::from(name)),
                ("checksum", Value::from(sum)),
                ("size", Value::from(size)),
            ]));
        }
        let mut summary = format!(
            "{name} of {} file{} ({})",
            rows.len(),
            if rows.len() == 1 { "" } else { "s" },
            human_bytes(bytes)
        );
        skipped.note(&mut summary);
        Ok(Output::table(Vec::new(), rows).with_summary(summary))
    }
}

// ---------------------------------------------------------------------------------- count

/// `fs.count`.
pub(crate) struct Count;

/// Lines, words and bytes of a stream. A last line without a newline still counts as a line
/// (people count lines, not newline characters); words are runs of non-whitespace bytes.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TextCounts {
    pub(crate) lines: u64,
    pub(crate) words: u64,
    pub(crate) bytes: u64,
}

impl TextCounts {
    /// Counts a stream; `None` when it looks binary.
    pub(crate) fn of(cancel: &CancelToken, mut r: impl Read) -> std::io::Result<Option<Self>> {
        let mut c = TextCounts::default();
        let mut buf = vec![0u8; 256 * 1024];
        let mut in_word = false;
        let mut last = b'\n';
        let mut first = true;
        loop {
            let n = match r.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            let chunk = &buf[..n];
            if first && looks_binary(chunk) {
                return Ok(None);
            }
            first = false;
            if cancel.is_cancelled() {
                return Err(std::io::Error::other("cancelled"));
            }
            for &b in chunk {
                if b == b'\n' {
                    c.lines += 1;
                }
                let space = b.is_ascii_whitespace();
                if !space && !in_word {
                    c.words += 1;
                }
                in_word = !space;
            }
            c.bytes += n as u64;
            last = chunk[n - 1];
        }
        if last != b'\n' {
            c.lines += 1;
        }
        Ok(Some(c))
    }
}

/// The counted thing's noun, singular and plural.
fn what_name(w: CountWhat) -> (&'static str, &'static str) {
    match w {
        CountWhat::Files => ("file", "files"),
        CountWhat::Dirs => ("dir", "dirs"),
        CountWhat::Lines => ("line", "lines"),
        CountWhat::Words => ("word", "words"),
        CountWhat::Bytes => ("byte", "bytes"),
    }
}

impl Action for Count {
    type Args = FsCount;

    fn meta(&self) -> Meta {
        Meta {
            tool: "fs",
            name: "count",
            summary: "Count files or directories in a tree, or lines, words or bytes of files",
            effects: &[EffectKind::Read],
            reversibility: Reversibility::ReadOnly,
            output: &[
                ("path", ColumnKind::Path),
                ("what", ColumnKind::Text),
                ("count", ColumnKind::Int),
            ],
        }
    }

    fn effects(&self, a: &FsCount, ctx: &Ctx<'_>) -> Result<Vec<Effect>> {
        Ok(vec![read_effect(
            ctx,
            &arg_path(ctx, &a.path, "path")?,
            true,
        )])
    }

    fn execute(&self, a: &FsCount, ctx: &Ctx<'_>, _: &mut Recorder<'_>) -> Result<Output> {
        let path = arg_path(ctx, &a.path, "path")?;
        let root_meta = stat_root(&path)?;
        let is_dir = root_meta.is_dir();
        if !is_dir {
            regular_file(&path, &root_meta)?;
        }
        let what = a.what.unwrap_or(if is_dir {
            CountWhat::Files
        } else {
            CountWhat::Lines
        });
        let mut skipped = Skipped::default();
        let mut binary = 0u64;
        let mut text_files = 0u64;
        let count = match what {
            CountWhat::Files | CountWhat::Dirs if !is_dir => {
                return Err(ToolError::InvalidArgs(format!(
                    "{} is a file; count its lines, words or bytes, or give a directory to \
                     count {}",
                    path.display(),
                    what_name(what).1
                )));
            }
            CountWhat::Files | CountWhat::Dirs => {
                // Everything beneath, hidden entries included; "files" are all non-directories.
                let mut n = 0u64;
                skipped = walk(ctx, &path, true, None, |e| {
                    let dir = e.file_type().is_dir();
                    if e.depth() > 0 && dir == (what == CountWhat::Dirs) {
                        n += 1;
                    }
                    Ok(true)
                })?;
                n
            }
            CountWhat::Lines | CountWhat::Words | CountWhat::Bytes => {
                let mut files = Vec::new();
                if is_dir {
                    skipped = walk(ctx, &path, false, None, |e| {
                        if e.file_type().is_file() {
                            files.push(e.path().to_path_buf());
                        }
                        Ok(true)
                    })?;
                } else {
                    files.push(path.clone());
                }
                let mut total = 0u64;
                for f in &files {
                    ctx.check_cancel()?;
                    if what == CountWhat::Bytes {
                        total += fs::metadata(f).map(|m| m.len()).unwrap_or(0);
                        text_files += 1;
                        continue;
                    }
                    let file =
                        special::open_read(f).map_err(|e| ToolError::io("cannot read", f, e))?;
                    match TextCounts::of(ctx.cancel, file) {
                        Ok(Some(c)) => {
                            text_files += 1;
                            total += if what == CountWhat::Lines {
                                c.lines
                            } else {
                                c.words
                            };
                        }
                        Ok(None) if !is_dir => {
                            return Err(ToolError::Refused(format!(
                                "{} looks binary, so it has no lines or words; count its bytes \
                                 instead",
                                f.display()
                            )));
                        }
                        Ok(None) => binary += 1,
                        Err(_) => {
                            ctx.check_cancel()?;
                            skipped.unreadable += 1;
                        }
                    }
                }
                total
            }
        };
        let (one, many) = what_name(what);
        let mut summary = format!("{} in {}", super::counted(count, one, many), path.display());
        if is_dir && matches!(what, CountWhat::Lines | CountWhat::Words | CountWhat::Bytes) {
            summary.push_str(&format!(
                " (over {}",
                super::counted(text_files, "file", "files")
            ));
            if binary > 0 {
                summary.push_str(&format!(", {binary} binary skipped"));
            }
            summary.push(')');
        }
        skipped.note(&mut summary);
        Ok(Output::table(
            Vec::new(),
            vec![row([
                ("path", Value::from(path.display().to_string())),
                ("what", Value::from(many)),
                ("count", Value::from(count)),
            ])],
        )
        .with_summary(summary))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(b: &[u8]) -> Option<TextCounts> {
        TextCounts::of(&CancelToken::new(), b).unwrap()
    }

    #[test]
    fn counts_lines_words_bytes_like_people_do() {
        let c = counts(b"hello world\nsecond  line\n").unwrap();
        assert_eq!((c.lines, c.words, c.bytes), (2, 4, 25));
        let c = counts(b"no newline at end").unwrap();
        assert_eq!((c.lines, c.words), (1, 4));
        let c = counts(b"").unwrap();
        assert_eq!((c.lines, c.words, c.bytes), (0, 0, 0));
        assert!(counts(b"\x00\x01binary").is_none());
    }

    #[test]
    fn long_lines_are_cut() {
        let t = line_text(&[b'a'; 1000]);
        assert_eq!(t.chars().count(), LINE_CAP + 1);
        assert_eq!(line_text(b"x\r\n"), "x");
    }
}
