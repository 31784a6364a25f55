//! The CLI's client for the daemon's Unix socket (`<data_dir>/kernos.sock`): reqwest's blocking
//! client speaks HTTP over the socket, the workspace's SSE parser reads the event stream. The
//! socket's peer credentials authenticate the caller (same user as the daemon → owner of the
//! local org), so no key is sent.

use std::collections::VecDeque;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context, bail};
use kernos_llm::wire::sse::{SseEvent as WireEvent, SseParser};
use reqwest::blocking::{Client, RequestBuilder};
use reqwest::header::CONTENT_TYPE;
use serde_json::Value;

/// How long one call may take, from sending the request to its last body byte. Calls are short
/// JSON exchanges; what runs long (an action) is followed on the event stream, which has no
/// timeout.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// The origin every request names. The socket decides where it goes; the host is only the
/// `Host:` header.
const ORIGIN: &str = "http://kernos";

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

/// Whether a daemon answers on `data_dir`'s socket (and the user did not opt out). Only a
/// connect: no HTTP client is built until a daemon is known to be there.
pub fn available(data_dir: &Path) -> bool {
    if std::env::var_os("KERNOS_NO_DAEMON").is_some_and(|v| v == "1") {
        return false;
    }
    kernos_server::daemon_running(data_dir)
}

/// The client bound to `data_dir`'s socket, built on first use and then shared: a blocking
/// client owns a runtime thread, so one request following another reuses it (and its
/// connection pool) instead of starting a new one.
fn client(data_dir: &Path) -> anyhow::Result<Client> {
    static CLIENT: Mutex<Option<(PathBuf, Client)>> = Mutex::new(None);
    let socket = kernos_server::socket_path(data_dir);
    let mut cached = CLIENT
        .lock()
        .map_err(|_| anyhow::anyhow!("the daemon client's lock was poisoned"))?;
    if let Some((_, c)) = cached.as_ref().filter(|(p, _)| *p == socket) {
        return Ok(c.clone());
    }
    // reqwest builds a TLS configuration even for plain HTTP; the workspace's provider is ring
    // (see the workspace Cargo.toml), installed before the first client is built.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let c = Client::builder()
        .unix_socket(socket.clone())
        // No TLS is ever spoken over the socket: an empty root store spares loading (and
        // requiring) the system's CA certificates.
        .tls_certs_only(std::iter::empty())
        // Per request: calls set CALL_TIMEOUT, the event stream runs as long as the action.
        .timeout(None)
        .build()
        .context("cannot set up the HTTP client for the daemon")?;
    *cached = Some((socket, c.clone()));
    Ok(c)
}

/// Sends `req`, turning transport failures into a sentence that says what to do.
fn send(data_dir: &Path, req: RequestBuilder) -> anyhow::Result<reqwest::blocking::Response> {
    req.send().map_err(|e| {
        let socket = kernos_server::socket_path(data_dir);
        let what = if e.is_timeout() {
            format!(
                "the daemon on {} did not answer within {} s",
                socket.display(),
                CALL_TIMEOUT.as_secs()
            )
        } else {
            format!("cannot reach the daemon on {}", socket.display())
        };
        anyhow::Error::new(e).context(format!(
            "{what}; is `kernos serve` still running? (KERNOS_NO_DAEMON=1 works without it)"
        ))
    })
}

/// One request, whole answer.
pub fn call(
    data_dir: &Path,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> anyhow::Result<Response> {
    let method = reqwest::Method::from_bytes(method.as_bytes())
        .with_context(|| format!("{method:?} is not an HTTP method"))?;
    let is_post = method == reqwest::Method::POST;
    let mut req = client(data_dir)?
        .request(method, format!("{ORIGIN}{path}"))
        .timeout(CALL_TIMEOUT);
    // A POST always declares JSON, with an empty body when there is none (the daemon's
    // JSON extractors want the header).
    if body.is_some() || is_post {
        req = req
            .header(CONTENT_TYPE, "application/json")
            .body(body.map(Value::to_string).unwrap_or_default());
    }
    let resp = send(data_dir, req)?;
    let status = resp.status().as_u16();
    let body = resp
        .bytes()
        .context("the daemon's answer broke off; try again")?
        .to_vec();
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

impl SseEvent {
    /// The daemon's event from the parser's: data that is not JSON stays a string.
    fn from_wire(e: WireEvent) -> SseEvent {
        let data = serde_json::from_str(&e.data).unwrap_or(Value::String(e.data));
        SseEvent {
            kind: e.event.unwrap_or_default(),
            data,
        }
    }
}

/// An open event stream.
pub struct Events {
    body: reqwest::blocking::Response,
    parser: SseParser,
    ready: VecDeque<WireEvent>,
    ended: bool,
}

impl Events {
    /// Opens GET `path` as an event stream.
    pub fn open(data_dir: &Path, path: &str) -> anyhow::Result<Events> {
        let req = client(data_dir)?.get(format!("{ORIGIN}{path}"));
        let body = send(data_dir, req)?;
        let status = body.status().as_u16();
        let is_stream = body
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        if status != 200 || !is_stream {
            bail!("the daemon did not open an event stream (status {status})");
        }
        Ok(Events {
            body,
            parser: SseParser::new(),
            ready: VecDeque::new(),
            ended: false,
        })
    }

    /// The next event (blocks); `None` when the stream ends.
    pub fn next_event(&mut self) -> anyhow::Result<Option<SseEvent>> {
        let mut buf = [0u8; 8192];
        loop {
            if let Some(e) = self.ready.pop_front() {
                if e.event.as_deref().unwrap_or("").is_empty() && e.data.is_empty() {
                    continue; // an empty event carries nothing
                }
                return Ok(Some(SseEvent::from_wire(e)));
            }
            if self.ended {
                return Ok(None);
            }
            let n = self
                .body
                .read(&mut buf)
                .context("the daemon's event stream broke off")?;
            if n == 0 {
                self.ended = true;
                self.ready.extend(self.parser.finish());
            } else {
                let mut out = Vec::new();
                self.parser.push(&buf[..n], &mut out);
                self.ready.extend(out);
            }
        }
    }
}
