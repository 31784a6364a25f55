//! Server-sent events, incrementally: bytes arrive in arbitrary pieces (a line, an event or a
//! UTF-8 character may be split across network reads), events come out whole.
//!
//! Follows the WHATWG `text/event-stream` rules the two APIs use: `field: value` lines, an
//! empty line ends an event, several `data:` lines join with `\n`, lines starting with `:` are
//! comments (keep-alives), `\r\n` and `\n` both end lines.

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseEvent {
    /// The `event:` field (Anthropic names every event; OpenAI sends none).
    pub event: Option<String>,
    /// The `data:` lines joined with `\n`.
    pub data: String,
}

/// Incremental parser.
#[derive(Debug, Default)]
pub struct SseParser {
    buf: Vec<u8>,
    current: SseEvent,
    has_field: bool,
    data_lines: usize,
}

impl SseParser {
    /// A parser with nothing buffered.
    pub fn new() -> Self {
        SseParser::default()
    }

    /// Feeds bytes; appends every event completed by them to `out`.
    pub fn push(&mut self, bytes: &[u8], out: &mut Vec<SseEvent>) {
        self.buf.extend_from_slice(bytes);
        let mut start = 0;
        while let Some(rel) = self.buf[start..].iter().position(|&b| b == b'\n') {
            let end = start + rel;
            let mut line = &self.buf[start..end];
            if line.last() == Some(&b'\r') {
                line = &line[..line.len() - 1];
            }
            let line = String::from_utf8_lossy(line).into_owned();
            start = end + 1;
            self.line(&line, out);
        }
        self.buf.drain(..start);
    }

    /// Ends the input. Returns an event left without its terminating blank line (a stream
    /// closed right after its last `data:` line), which callers treat like any other event.
    pub fn finish(&mut self) -> Option<SseEvent> {
        if !self.buf.is_empty() {
            let rest = std::mem::take(&mut self.buf);
            let line = String::from_utf8_lossy(&rest).into_owned();
            let mut out = Vec::new();
            self.line(&line, &mut out);
            if let Some(e) = out.pop() {
                return Some(e);
            }
        }
        if self.has_field {
            self.has_field = false;
            self.data_lines = 0;
            return Some(std::mem::take(&mut self.current));
        }
        None
    }

    /// Bytes received but not yet part of a complete line.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    fn line(&mut self, line: &str, out: &mut Vec<SseEvent>) {
        if line.is_empty() {
            if self.has_field {
                out.push(std::mem::take(&mut self.current));
                self.has_field = false;
                self.data_lines = 0;
            }
            return;
        }
        if line.starts_with(':') {
            return;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "data" => {
                if self.data_lines > 0 {
                    self.current.data.push('\n');
                }
                self.current.data.push_str(value);
                self.data_lines += 1;
                self.has_field = true;
            }
            "event" => {
                self.current.event = Some(value.to_owned());
                self.has_field = true;
            }
            // id, retry and unknown fields carry nothing these APIs use.
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(input: &[&[u8]]) -> Vec<SseEvent> {
        let mut p = SseParser::new();
        let mut out = Vec::new();
        for piece in input {
            p.push(piece, &mut out);
        }
        out.extend(p.finish());
        out
    }

    #[test]
    fn events_survive_any_split() {
        let stream = "event: message_start\ndata: {\"a\":1}\n\n: keep-alive\n\ndata: [DONE]\n\n";
        let whole = all(&[stream.as_bytes()]);
        assert_eq!(whole.len(), 2);
        assert_eq!(whole[0].event.as_deref(), Some("message_start"));
        assert_eq!(whole[0].data, "{\"a\":1}");
        assert_eq!(whole[1].data, "[DONE]");
        for cut in 1..stream.len() {
            let (a, b) = stream.as_bytes().split_at(cut);
            assert_eq!(all(&[a, b]), whole, "cut at {cut}");
        }
        let bytes: Vec<&[u8]> = stream.as_bytes().chunks(1).collect();
        assert_eq!(all(&bytes), whole);
    }

    #[test]
    fn crlf_multiline_and_split_utf8() {
        let s = "data: h\u{e9}llo\r\ndata: world\r\n\r\n".as_bytes();
        // split inside the two-byte é
        let i = s.iter().position(|&b| b == 0xc3).unwrap() + 1;
        let ev = all(&[&s[..i], &s[i..]]);
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].data, "h\u{e9}llo\nworld");
    }

    #[test]
    fn unterminated_last_event_is_returned_by_finish() {
        let mut p = SseParser::new();
        let mut out = Vec::new();
        p.push(b"data: {\"x\":1}", &mut out);
        assert!(out.is_empty());
        assert_eq!(p.pending(), 13);
        assert_eq!(p.finish().unwrap().data, "{\"x\":1}");
        assert!(p.finish().is_none());
    }
}
