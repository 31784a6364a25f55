//! Following a log file: new lines since the last read, across rotation and truncation.
//!
//! The follower keeps the file open. When the path names a different file than the one open
//! (rotated: renamed away and recreated), it first reads the old file to its end, then moves to
//! the new one from its start. When the file shrinks below what was read (truncated in place,
//! `copytruncate`), it starts again from the beginning. A partial last line is kept until its
//! newline arrives.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::error::ProbeError;

/// The longest line kept whole; longer lines are cut (the rest still counts as that line).
const MAX_LINE: usize = 64 * 1024;
/// The most read in one call, so one huge burst cannot stall the runner.
const MAX_READ: u64 = 16 * 1024 * 1024;

/// A followed log file.
#[derive(Debug)]
pub struct LogTail {
    path: PathBuf,
    /// The open file, its (device, inode), and how far it has been read.
    open: Option<(File, (u64, u64), u64)>,
    partial: Vec<u8>,
}

impl LogTail {
    /// Starts following `path` at its current end: only lines written from now on are seen.
    /// A file that does not exist yet is followed from its start once it appears.
    pub fn at_end(path: &Path) -> Self {
        let open = File::open(path).ok().and_then(|f| {
            let m = f.metadata().ok()?;
            Some((f, (m.dev(), m.ino()), m.len()))
        });
        LogTail {
            path: path.to_owned(),
            open,
            partial: Vec::new(),
        }
    }

    /// The followed path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Calls `line` for every complete new line (without its newline).
    pub fn read_new(&mut self, mut line: impl FnMut(&[u8])) -> Result<(), ProbeError> {
        let current = match std::fs::metadata(&self.path) {
            Ok(m) => Some(((m.dev(), m.ino()), m.len())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(ProbeError::io("stat", &self.path, e)),
        };
        let same_file =
            matches!((&self.open, current), (Some((_, id, _)), Some((cur, _))) if *id == cur);
        if !same_file {
            // Rotated or removed: what the old file still holds was written before the switch.
            self.drain_open(&mut line)?;
            if current.is_some() {
                self.partial.clear();
                self.open = match File::open(&self.path) {
                    Ok(f) => {
                        let m = f
                            .metadata()
                            .map_err(|e| ProbeError::io("stat", &self.path, e))?;
                        Some((f, (m.dev(), m.ino()), 0))
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                    Err(e) => return Err(ProbeError::io("open", &self.path, e)),
                };
            } else {
                self.open = None;
            }
        }
        if let (Some((_, _, offset)), Some((_, len))) = (&mut self.open, current) {
            if len < *offset {
                // Truncated in place: start over.
                *offset = 0;
                self.partial.clear();
            }
        }
        self.drain_open(&mut line)
    }

    /// Reads the open file from its offset to its end (bounded by [`MAX_READ`]).
    fn drain_open(&mut self, line: &mut impl FnMut(&[u8])) -> Result<(), ProbeError> {
        let Some((file, _, offset)) = &mut self.open else {
            return Ok(());
        };
        file.seek(SeekFrom::Start(*offset))
            .map_err(|e| ProbeError::io("seek", &self.path, e))?;
        let mut buf = Vec::new();
        let n = file
            .by_ref()
            .take(MAX_READ)
            .read_to_end(&mut buf)
            .map_err(|e| ProbeError::io("read", &self.path, e))?;
        *offset += n as u64;
        let mut rest = &buf[..];
        while let Some(nl) = rest.iter().position(|b| *b == b'\n') {
            if self.partial.is_empty() {
                line(&rest[..nl]);
            } else {
                self.append_partial(&rest[..nl]);
                line(&self.partial);
                self.partial.clear();
            }
            rest = &rest[nl + 1..];
        }
        self.append_partial(rest);
        Ok(())
    }

    fn append_partial(&mut self, bytes: &[u8]) {
        let room = MAX_LINE.saturating_sub(self.partial.len());
        self.partial
            .extend_from_slice(&bytes[..bytes.len().min(room)]);
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn lines(t: &mut LogTail) -> Vec<String> {
        let mut out = Vec::new();
        t.read_new(|l| out.push(String::from_utf8_lossy(l).into_owned()))
            .unwrap();
        out
    }

    fn append(p: &Path, s: &str) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .unwrap();
        f.write_all(s.as_bytes()).unwrap();
    }

    #[test]
    fn only_new_whole_lines_are_read() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("app.log");
        append(&p, "old line\n");
        let mut t = LogTail::at_end(&p);
        assert!(lines(&mut t).is_empty());
        append(&p, "one\ntw");
        assert_eq!(lines(&mut t), ["one"]);
        append(&p, "o\n");
        assert_eq!(lines(&mut t), ["two"]);
    }

    #[test]
    fn rotation_reads_the_old_files_rest_then_the_new_file() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("app.log");
        append(&p, "");
        let mut t = LogTail::at_end(&p);
        append(&p, "a\n");
        std::fs::rename(&p, d.path().join("app.log.1")).unwrap();
        append(&d.path().join("app.log.1"), "b\n");
        append(&p, "c\n");
        assert_eq!(lines(&mut t), ["a", "b", "c"]);
        append(&p, "d\n");
        assert_eq!(lines(&mut t), ["d"]);
    }

    #[test]
    fn truncation_starts_over() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("app.log");
        append(&p, "");
        let mut t = LogTail::at_end(&p);
        append(&p, "first line\n");
        assert_eq!(lines(&mut t), ["first line"]);
        std::fs::write(&p, "x\n").unwrap();
        assert_eq!(lines(&mut t), ["x"]);
    }

    #[test]
    fn a_file_that_appears_later_is_read_from_its_start() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("later.log");
        let mut t = LogTail::at_end(&p);
        assert!(lines(&mut t).is_empty());
        append(&p, "hello\n");
        assert_eq!(lines(&mut t), ["hello"]);
        std::fs::remove_file(&p).unwrap();
        assert!(lines(&mut t).is_empty());
    }
}
