//! An in-process HTTP/1.1 server on 127.0.0.1 that replays scripted answers byte for byte.
//!
//! Plain `std::net` with a thread per connection, rather than axum/hyper: the tests need
//! control a framework takes away — cut a chunked body mid-stream, never answer, send a body
//! that is not JSON — and they need no dependency for it. It records every request so tests
//! can check what was sent (model, `response_format`, tools, headers).

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

/// One scripted answer.
#[derive(Debug, Clone)]
pub enum Reply {
    /// A complete response with `Content-Length`.
    Full {
        status: u16,
        headers: Vec<(String, String)>,
        content_type: String,
        body: Vec<u8>,
    },
    /// `text/event-stream` with chunked transfer encoding, one HTTP chunk per piece, `delay`
    /// between pieces. `complete: false` drops the connection after the last piece without the
    /// terminating zero-length chunk (a connection lost mid-stream).
    Stream {
        pieces: Vec<String>,
        delay: Duration,
        complete: bool,
    },
    /// Read the request and never answer (until the client gives up and closes).
    Hang,
}

impl Reply {
    /// 200 with a JSON body.
    pub fn json(body: &str) -> Reply {
        Reply::status_json(200, body)
    }

    /// Any status with a JSON body.
    pub fn status_json(status: u16, body: &str) -> Reply {
        Reply::Full {
            status,
            headers: Vec::new(),
            content_type: "application/json".into(),
            body: body.as_bytes().to_vec(),
        }
    }

    /// Adds a response header.
    pub fn with_header(mut self, k: &str, v: &str) -> Reply {
        if let Reply::Full { headers, .. } = &mut self {
            headers.push((k.into(), v.into()));
        }
        self
    }

    /// A complete SSE stream whose events are `events` (each already `data: …\n\n`-framed).
    pub fn sse(events: &[&str]) -> Reply {
        Reply::Stream {
            pieces: events.iter().map(|s| (*s).to_owned()).collect(),
            delay: Duration::ZERO,
            complete: true,
        }
    }
}

/// What the server received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Value,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

struct Shared {
    replies: Mutex<VecDeque<Reply>>,
    /// Used when the script is exhausted.
    fallback: Mutex<Option<Reply>>,
    requests: Mutex<Vec<Recorded>>,
    stop: AtomicBool,
}

pub struct FakeServer {
    pub addr: std::net::SocketAddr,
    shared: Arc<Shared>,
}

impl FakeServer {
    /// A server answering requests with `replies` in order; when they run out it answers 599
    /// "script exhausted" so an unexpected extra request shows up in the test.
    pub fn start(replies: Vec<Reply>) -> FakeServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            replies: Mutex::new(replies.into()),
            fallback: Mutex::new(None),
            requests: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
        });
        let s = shared.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let s = s.clone();
                std::thread::spawn(move || serve(conn, &s));
            }
        });
        FakeServer { addr, shared }
    }

    /// A server that gives every request the same answer.
    pub fn always(reply: Reply) -> FakeServer {
        let s = FakeServer::start(Vec::new());
        *s.shared.fallback.lock().unwrap() = Some(reply);
        s
    }

    /// Base URL for an OpenAI-compatible provider.
    pub fn v1(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Base URL without a path (Anthropic, or Ollama pasted bare).
    pub fn root(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.requests.lock().unwrap().clone()
    }

    pub fn request_count(&self) -> usize {
        self.shared.requests.lock().unwrap().len()
    }

    /// Replaces the remaining script.
    pub fn push(&self, reply: Reply) {
        self.shared.replies.lock().unwrap().push_back(reply);
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so its thread ends.
        let _ = TcpStream::connect(self.addr);
    }
}

fn serve(mut conn: TcpStream, s: &Shared) {
    let Some(req) = read_request(&mut conn) else {
        return;
    };
    s.requests.lock().unwrap().push(req);
    let reply = s
        .replies
        .lock()
        .unwrap()
        .pop_front()
        .or_else(|| s.fallback.lock().unwrap().clone())
        .unwrap_or_else(|| {
            Reply::status_json(
                599,
                r#"{"error":{"message":"fake server: script exhausted"}}"#,
            )
        });
    match reply {
        Reply::Full {
            status,
            headers,
            content_type,
            body,
        } => {
            let mut head = format!(
                "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n",
                reason(status),
                body.len()
            );
            for (k, v) in headers {
                head.push_str(&format!("{k}: {v}\r\n"));
            }
            head.push_str("\r\n");
            let _ = conn.write_all(head.as_bytes());
            let _ = conn.write_all(&body);
        }
        Reply::Stream {
            pieces,
            delay,
            complete,
        } => {
            let head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\n\
                        Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
            if conn.write_all(head.as_bytes()).is_err() {
                return;
            }
            for p in pieces {
                if !delay.is_zero() {
                    std::thread::sleep(delay);
                }
                let chunk = format!("{:x}\r\n{p}\r\n", p.len());
                if conn.write_all(chunk.as_bytes()).is_err() || conn.flush().is_err() {
                    return;
                }
            }
            if complete {
                let _ = conn.write_all(b"0\r\n\r\n");
            } else {
                // Reset rather than close cleanly, as a crashed upstream would.
                let _ = conn.shutdown(Shutdown::Both);
                return;
            }
        }
        Reply::Hang => {
            // Block until the client closes (read returns 0 or fails); bounded so a test that
            // forgets its timeout cannot hang the suite.
            let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
            let mut buf = [0u8; 256];
            while matches!(conn.read(&mut buf), Ok(n) if n > 0) {}
            return;
        }
    }
    let _ = conn.flush();
    let _ = conn.shutdown(Shutdown::Write);
    // Drain whatever the client still sends so the close is orderly.
    let _ = conn.set_read_timeout(Some(Duration::from_millis(200)));
    let mut sink = [0u8; 256];
    while matches!(conn.read(&mut sink), Ok(n) if n > 0) {}
}

fn read_request(conn: &mut TcpStream) -> Option<Recorded> {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    let mut r = BufReader::new(conn.try_clone().ok()?);
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let _method = parts.next()?;
    let path = parts.next()?.to_owned();
    let mut headers = Vec::new();
    let mut len = 0usize;
    loop {
        let mut h = String::new();
        r.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        let (k, v) = (k.trim().to_owned(), v.trim().to_owned());
        if k.eq_ignore_ascii_case("content-length") {
            len = v.parse().ok()?;
        }
        headers.push((k, v));
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).ok()?;
    Some(Recorded {
        path,
        headers,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    })
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        529 => "Overloaded",
        _ => "Whatever",
    }
}
