//! A small blocking HTTP/1.1 client for the daemon's Unix socket (`<data_dir>/kernos.sock`).
//! The socket's peer credentials authenticate the caller (same user as the daemon → owner of
//! the local org), so no key is sent. Enough HTTP for JSON requests and one SSE stream.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::Value;

/// A response with its whole body.
#[derive(Debug)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Body.
    pub body: Vec<u8>,
}

impl Response {
    /// The body as JSON.
    pub fn json(&self) -> anyhow::Result<Value> {
        serde_json::from_slice(&self.body).with_context(|| {
            format!(
                "the daemon answered {} with something that is not JSON",
                self.status
            )
        })
    }

    /// Fails with the problem document's detail unless the status is 2xx.
    pub fn ok(self) -> anyhow::Result<Response> {
        if (200..300).contains(&self.status) {
            return Ok(self);
        }
        let detail = serde_json::from_slice::<Value>(&self.body)
            .ok()
            .and_then(|v| v["detail"].as_str().map(str::to_owned))
            .unwrap_or_else(|| String::from_utf8_lossy(&self.body).into_owned());
        bail!("the daemon refused ({}): {detail}", self.status)
    }
}

/// Whether a daemon answers on `data_dir`'s socket (and the user did not opt out).
pub fn available(data_dir: &Path) -> bool {
    if std::env::var_os("KERNOS_NO_DAEMON").is_some_and(|v| v == "1") {
        return false;
    }
    kernos_server::daemon_running(data_dir)
}

fn connect(data_dir: &Path) -> anyhow::Result<UnixStream> {
    let s = kernos_server::connect(data_dir).with_context(|| {
        format!(
            "cannot reach the daemon on {}",
            kernos_server::socket_path(data_dir).display()
        )
    })?;
    s.set_write_timeout(Some(Duration::from_secs(30)))?;
    Ok(s)
}

fn send(s: &mut UnixStream, method: &str, path: &str, body: Option<&Value>) -> anyhow::Result<()> {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: kernos\r\nConnection: close\r\n");
    if !body.is_empty() || method == "POST" {
        req.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    req.push_str("\r\n");
    req.push_str(&body);
    s.write_all(req.as_bytes())
        .context("cannot send the request to the daemon")?;
    Ok(())
}

/// The head of a response: status and whether the body is chunked (else its length).
fn read_head(r: &mut BufReader<UnixStream>) -> anyhow::Result<(u16, bool, Option<usize>)> {
    let mut line = String::new();
    r.read_line(&mut line)
        .context("the daemon closed the connection")?;
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("not an HTTP answer from the daemon: {line:?}"))?;
    let mut chunked = false;
    let mut len = None;
    loop {
        line.clear();
        r.read_line(&mut line)?;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            let k = k.trim().to_ascii_lowercase();
            let v = v.trim();
            if k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked") {
                chunked = true;
            } else if k == "content-length" {
                len = v.parse().ok();
            }
        }
    }
    Ok((status, chunked, len))
}

/// Reads one chunk of a chunked body; `None` at the end.
fn read_chunk(r: &mut BufReader<UnixStream>) -> anyhow::Result<Option<Vec<u8>>> {
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or("0"), 16)
        .context("bad chunk from the daemon")?;
    if size == 0 {
        return Ok(None);
    }
    let mut buf = vec![0u8; size];
    r.read_exact(&mut buf)?;
    let mut crlf = [0u8; 2];
    r.read_exact(&mut crlf)?;
    Ok(Some(buf))
}

/// One request, whole answer.
pub fn call(
    data_dir: &Path,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> anyhow::Result<Response> {
    let mut s = connect(data_dir)?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    send(&mut s, method, path, body)?;
    let mut r = BufReader::new(s);
    let (status, chunked, len) = read_head(&mut r)?;
    let mut body = Vec::new();
    if chunked {
        while let Some(c) = read_chunk(&mut r)? {
            body.extend_from_slice(&c);
        }
    } else if let Some(n) = len {
        body.resize(n, 0);
        r.read_exact(&mut body)?;
    } else {
        r.read_to_end(&mut body)?;
    }
    Ok(Response { status, body })
}

/// One server-sent event.
#[derive(Debug, Clone)]
pub struct SseEvent {
    /// `event:` (the journal kind, or `resync`).
    pub kind: String,
    /// `data:` parsed as JSON (the journal event).
    pub data: Value,
}

/// An open event stream.
pub struct Events {
    r: BufReader<UnixStream>,
    buf: String,
}

impl Events {
    /// Opens GET `path` as an event stream.
    pub fn open(data_dir: &Path, path: &str) -> anyhow::Result<Events> {
        let mut s = connect(data_dir)?;
        send(&mut s, "GET", path, None)?;
        let mut r = BufReader::new(s);
        let (status, chunked, _) = read_head(&mut r)?;
        if status != 200 || !chunked {
            bail!("the daemon did not open an event stream (status {status})");
        }
        Ok(Events {
            r,
            buf: String::new(),
        })
    }

    /// The next event (blocks); `None` when the stream ends.
    pub fn next_event(&mut self) -> anyhow::Result<Option<SseEvent>> {
        loop {
            if let Some(i) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..i + 2).collect();
                let mut kind = String::new();
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        kind = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.strip_prefix(' ').unwrap_or(v));
                    }
                }
                if kind.is_empty() && data.is_empty() {
                    continue; // keep-alive
                }
                let data = serde_json::from_str(&data).unwrap_or(Value::String(data));
                return Ok(Some(SseEvent { kind, data }));
            }
            match read_chunk(&mut self.r)? {
                Some(c) => self.buf.push_str(&String::from_utf8_lossy(&c)),
                None => return Ok(None),
            }
        }
    }
}
