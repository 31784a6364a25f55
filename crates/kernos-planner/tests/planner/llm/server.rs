//! An in-process HTTP/1.1 server on 127.0.0.1 that replays scripted answers byte for byte and
//! records every request (the same approach as kernos-llm's client-level tests, trimmed to
//! what planner-level tests need: whole answers, delays, hangs).

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
    /// A complete response.
    Full {
        status: u16,
        headers: Vec<(String, String)>,
        body: String,
        delay: Duration,
    },
    /// Read the request and never answer.
    Hang,
}

impl Reply {
    pub fn json(body: impl Into<String>) -> Reply {
        Reply::status(200, body)
    }

    pub fn status(status: u16, body: impl Into<String>) -> Reply {
        Reply::Full {
            status,
            headers: Vec::new(),
            body: body.into(),
            delay: Duration::ZERO,
        }
    }

    pub fn with_header(mut self, k: &str, v: &str) -> Reply {
        if let Reply::Full { headers, .. } = &mut self {
            headers.push((k.into(), v.into()));
        }
        self
    }

    pub fn after(mut self, d: Duration) -> Reply {
        if let Reply::Full { delay, .. } = &mut self {
            *delay = d;
        }
        self
    }
}

/// What the server received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub path: String,
    pub body: Value,
}

impl Recorded {
    /// The system prompt and every message's text, as sent (OpenAI or Anthropic shape).
    pub fn texts(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if let Some(s) = self.body.get("system") {
            let t = s
                .as_str()
                .map(str::to_owned)
                .or_else(|| {
                    s.as_array().map(|blocks| {
                        blocks
                            .iter()
                            .filter_map(|b| b["text"].as_str())
                            .collect::<Vec<_>>()
                            .join("")
                    })
                })
                .unwrap_or_default();
            out.push(("system".to_owned(), t));
        }
        for m in self.body["messages"].as_array().into_iter().flatten() {
            let role = m["role"].as_str().unwrap_or("").to_owned();
            let content = match &m["content"] {
                Value::String(s) => s.clone(),
                Value::Array(parts) => parts
                    .iter()
                    .filter_map(|p| p["text"].as_str())
                    .collect::<Vec<_>>()
                    .join(""),
                _ => String::new(),
            };
            out.push((role, content));
        }
        out
    }

    /// The last user message.
    pub fn last_user(&self) -> String {
        self.texts()
            .into_iter()
            .rev()
            .find(|(r, _)| r == "user")
            .map(|(_, t)| t)
            .unwrap_or_default()
    }
}

struct Shared {
    replies: Mutex<VecDeque<Reply>>,
    fallback: Mutex<Option<Reply>>,
    requests: Mutex<Vec<Recorded>>,
    stop: AtomicBool,
}

pub struct FakeServer {
    pub addr: std::net::SocketAddr,
    shared: Arc<Shared>,
}

impl FakeServer {
    /// Answers requests with `replies` in order; when they run out, 599 "script exhausted" so
    /// an unexpected request shows up in the test.
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

    /// Gives every request the same answer.
    pub fn always(reply: Reply) -> FakeServer {
        let s = FakeServer::start(Vec::new());
        *s.shared.fallback.lock().unwrap() = Some(reply);
        s
    }

    pub fn v1(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    pub fn root(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.requests.lock().unwrap().clone()
    }

    pub fn count(&self) -> usize {
        self.shared.requests.lock().unwrap().len()
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}

/// A local address nothing listens on (bound, then released).
pub fn closed_port_url() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    format!("http://{addr}/v1")
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
            Reply::status(
                599,
                r#"{"error":{"message":"fake server: script exhausted"}}"#,
            )
        });
    match reply {
        Reply::Full {
            status,
            headers,
            body,
            delay,
        } => {
            if !delay.is_zero() {
                std::thread::sleep(delay);
            }
            let mut head = format!(
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
                body.len()
            );
            for (k, v) in headers {
                head.push_str(&format!("{k}: {v}\r\n"));
            }
            head.push_str("\r\n");
            let _ = conn.write_all(head.as_bytes());
            let _ = conn.write_all(body.as_bytes());
        }
        Reply::Hang => {
            let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
            let mut buf = [0u8; 256];
            while matches!(conn.read(&mut buf), Ok(n) if n > 0) {}
            return;
        }
    }
    let _ = conn.flush();
    let _ = conn.shutdown(Shutdown::Write);
    let _ = conn.set_read_timeout(Some(Duration::from_millis(200)));
    let mut sink = [0u8; 256];
    while matches!(conn.read(&mut sink), Ok(n) if n > 0) {}
}

fn read_request(conn: &mut TcpStream) -> Option<Recorded> {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    let mut r = BufReader::new(conn.try_clone().ok()?);
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    let path = line.split_whitespace().nth(1)?.to_owned();
    let mut len = 0usize;
    loop {
        let mut h = String::new();
        r.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        if k.trim().eq_ignore_ascii_case("content-length") {
            len = v.trim().parse().ok()?;
        }
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).ok()?;
    Some(Recorded {
        path,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    })
}
