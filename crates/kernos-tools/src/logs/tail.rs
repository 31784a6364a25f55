//! `logs.tail`: the last lines of a log file, read from the end so a multi-gigabyte log costs
//! no more than the lines shown.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};

use kernos_core::{Effect, EffectKind, Reversibility};

use crate::args::LogsTail;
use crate::output::{Output, human_bytes};
use crate::registry::{Action, Meta};
use crate::undo::Recorder;
use crate::{Ctx, Result, ToolError};

/// Bytes read per step backwards.
const CHUNK: u64 = 64 * 1024;
/// The most lines one call returns.
pub(crate) const MAX_LINES: usize = 100_000;
/// The most bytes one call reads, so a file of one endless line cannot exhaust memory.
const MAX_BYTES: u64 = 16 * 1024 * 1024;

/// Lines of a file from the last to the first, read in chunks from the end.
pub(crate) struct RevLines<R> {
    r: R,
    /// Offset of the first byte not yet read.
    pos: u64,
    /// Read but not yet returned: everything between `pos` and the last returned line.
    buf: Vec<u8>,
    /// Whether the file was empty (then there are no lines at all).
    empty: bool,
    /// Whether the part after the final newline has been dealt with.
    started: bool,
    /// Whether the first line of the file has been returned.
    finished: bool,
    /// Total bytes read so far.
    pub(crate) read: u64,
}

impl<R: Read + Seek> RevLines<R> {
    /// Starts at the end of `r`.
    pub(crate) fn new(mut r: R) -> io::Result<Self> {
        let len = r.seek(SeekFrom::End(0))?;
        Ok(RevLines {
            r,
            pos: len,
            buf: Vec::new(),
            empty: len == 0,
            started: false,
            finished: false,
            read: 0,
        })
    }

    fn fill(&mut self) -> io::Result<()> {
        let n = CHUNK.min(self.pos);
        self.pos -= n;
        self.r.seek(SeekFrom::Start(self.pos))?;
        let mut chunk = vec![0u8; n as usize];
        self.r.read_exact(&mut chunk)?;
        self.read += n;
        chunk.extend_from_slice(&self.buf);
        self.buf = chunk;
        Ok(())
    }
}

impl<R: Read + Seek> Iterator for RevLines<R> {
    type Item = io::Result<Vec<u8>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.finished || self.empty {
            return None;
        }
        loop {
            if let Some(i) = self.buf.iter().rposition(|b| *b == b'\n') {
                let line = self.buf.split_off(i + 1);
                self.buf.truncate(i);
                if !self.started {
                    self.started = true;
                    // Text after the file's final newline is a line only if it is not empty.
                    if line.is_empty() {
                        continue;
                    }
                }
                return Some(Ok(line));
            }
            if self.pos == 0 {
                self.finished = true;
                return Some(Ok(std::mem::take(&mut self.buf)));
            }
            if let Err(e) = self.fill() {
                self.finished = true;
                return Some(Err(e));
            }
        }
    }
}

/// The last `n` lines of `r`, oldest first, and whether the byte cap cut them short.
pub(crate) fn last_lines<R: Read + Seek>(r: R, n: usize) -> io::Result<(Vec<String>, bool)> {
    let mut it = RevLines::new(r)?;
    let mut lines = Vec::with_capacity(n.min(1024));
    let mut cut = false;
    while lines.len() < n {
        match it.next() {
            Some(l) => lines.push(String::from_utf8_lossy(&l?).into_owned()),
            None => break,
        }
        if it.read > MAX_BYTES {
            cut = true;
            break;
        }
    }
    lines.reverse();
    Ok((lines, cut))
}

/// `logs.tail`.
#[derive(Debug, Clone, Copy)]
pub struct Tail;

impl Action for Tail {
    type Args = LogsTail;

    fn meta(&self) -> Meta {
        Meta {
            tool: "logs",
            name: "tail",
            summary: "The last lines of a log file",
            effects: &[EffectKind::Read],
            reversibility: Reversibility::ReadOnly,
            output: &[],
        }
    }

    fn effects(&self, args: &LogsTail, ctx: &Ctx<'_>) -> Result<Vec<Effect>> {
        Ok(vec![Effect::path(
            EffectKind::Read,
            ctx.env.resolve(&args.path),
            false,
        )])
    }

    fn execute(&self, args: &LogsTail, ctx: &Ctx<'_>, _: &mut Recorder<'_>) -> Result<Output> {
        if args.lines > MAX_LINES {
            return Err(ToolError::InvalidArgs(format!(
                "at most {MAX_LINES} lines at a time; ask for fewer"
            )));
        }
        let path = ctx.env.resolve(&args.path);
        let meta = std::fs::metadata(&path).map_err(|e| ToolError::io("read", &path, e))?;
        if meta.is_dir() {
            return Err(ToolError::InvalidArgs(format!(
                "{} is a directory; name a log file in it (fs.list shows them)",
                path.display()
            )));
        }
        let name = path.to_string_lossy();
        if [".gz", ".xz", ".bz2", ".zst"]
            .iter()
            .any(|e| name.ends_with(e))
        {
            return Err(ToolError::InvalidArgs(format!(
                "{} is compressed; tail the current log instead (the same name without the \
                 number and extension)",
                path.display()
            )));
        }
        let f = File::open(&path).map_err(|e| ToolError::io("open", &path, e))?;
        let (lines, cut) =
            last_lines(f, args.lines).map_err(|e| ToolError::io("read", &path, e))?;
        let mut text = lines.join("\n");
        if !text.is_empty() {
            text.push('\n');
        }
        let summary = if lines.is_empty() {
            format!("{} is empty", path.display())
        } else {
            format!(
                "last {} line{} of {} ({}){}",
                lines.len(),
                if lines.len() == 1 { "" } else { "s" },
                path.display(),
                human_bytes(meta.len()),
                if cut {
                    format!("; stopped after reading {}", human_bytes(MAX_BYTES))
                } else {
                    String::new()
                }
            )
        };
        let mut out = Output::text(text).with_summary(summary);
        out.truncated = cut;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn rev(s: &str) -> Vec<String> {
        RevLines::new(Cursor::new(s.as_bytes().to_vec()))
            .unwrap()
            .map(|l| String::from_utf8(l.unwrap()).unwrap())
            .collect()
    }

    #[test]
    fn reverse_lines_match_forward_lines() {
        for s in [
            "",
            "a",
            "a\n",
            "a\nb",
            "a\nb\n",
            "\n",
            "\n\n",
            "\nx\n",
            "a\n\nb\n\n",
        ] {
            let mut want: Vec<String> = s.lines().map(str::to_owned).collect();
            want.reverse();
            assert_eq!(rev(s), want, "{s:?}");
        }
    }

    #[test]
    fn across_chunk_boundaries() {
        let lines: Vec<String> = (0..20_000)
            .map(|i| format!("line {i} {}", "x".repeat(i % 50)))
            .collect();
        let text = lines.join("\n") + "\n";
        assert!(text.len() as u64 > 4 * CHUNK);
        let (last, cut) = last_lines(Cursor::new(text.into_bytes()), 3).unwrap();
        assert!(!cut);
        assert_eq!(last, lines[19_997..].to_vec());
        let all: Vec<String> = {
            let mut v = rev(&(lines.join("\n")));
            v.reverse();
            v
        };
        assert_eq!(all, lines);
    }
}
