//! Test support (feature `testing`): a fake OpenAI-compatible (and Anthropic-shaped) server on
//! 127.0.0.1 that replays scripted answers byte for byte and records every request.
//!
//! Plain `std::net` with a thread per connection, rather than axum/hyper: tests need control a
//! framework takes away — cut a chunked body mid-stream, never answer, send a body that is not
//! JSON, answer late — and need no dependency for it. Used by this crate's client tests and by
//! the planner's, the CLI's and the daemon's model-tier tests.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde_json::Value;

/// One scripted answer.
#[derive(Debug, Clone)]
pub enum Reply {
    /// A complete response with `Content-Length`, sent after `delay`.
    Full {
        /// HTTP status.
        status: u16,
        /// Extra response headers.
        headers: Vec<(String, String)>,
        /// `Content-Type`.
        content_type: String,
        /// The body, as sent.
        body: Vec<u8>,
        /// How long to wait before answering.
        delay: Duration,
    },
    /// `text/event-stream` with chunked transfer encoding, one HTTP chunk per piece, `delay`
    /// between pieces. `complete: false` drops the connection after the last piece without the
    /// terminating zero-length chunk (a connection lost mid-stream).
    Stream {
        /// The chunks, each sent as is.
        pieces: Vec<String>,
        /// Pause before each piece.
        delay: Duration,
        /// Whether the stream ends properly.
        complete: bool,
    },
    /// Read the request and never answer (until the client gives up and closes).
    Hang,
}

impl Reply {
    /// 200 with a JSON body.
    pub fn json(body: impl AsRef<[u8]>) -> Reply {
        Reply::status_json(200, body)
    }

    /// Any status with a JSON body.
    pub fn status_json(status: u16, body: impl AsRef<[u8]>) -> Reply {
        Reply::Full {
            status,
            headers: Vec::new(),
            content_type: "application/json".into(),
            body: body.as_ref().to_vec(),
            delay: Duration::ZERO,
        }
    }

    /// Adds a response header (complete responses only).
    pub fn with_header(mut self, k: &str, v: &str) -> Reply {
        if let Reply::Full { headers, .. } = &mut self {
            headers.push((k.into(), v.into()));
        }
        self
    }

    /// Answers only after `d` (complete responses only).
    pub fn after(mut self, d: Duration) -> Reply {
        if let Reply::Full { delay, .. } = &mut self {
            *delay = d;
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

/// How a server with parallel slots behaves, for scheduler tests and the scheduler bench: `slots`
/// generations run at once, each taking `per_prompt_token` per prompt token (prompt processing)
/// and `per_output_token` per answer token (decoding, per slot: on a GPU decoding is bound by
/// memory bandwidth, so a few parallel slots barely slow each other); requests beyond the slots
/// wait in a FIFO queue, as llama.cpp's server queues them; beyond `queue_limit` waiting ones
/// the server answers 429 with `Retry-After: 1`. Prompt tokens are counted at 4 characters a
/// token; the answer is `min(max_tokens, output_tokens)` tokens long.
///
/// A request with `"stream": true` is answered as llama-server streams: one SSE event per
/// answer token (`t0 `, `t1 `, …) as it is decoded, then the finish reason, the usage and
/// `[DONE]`; a client that closes the connection mid-stream stops the generation and frees the
/// slot (llama-server cancels a task whose connection is gone). A conversation ending in an
/// assistant message is continued, as llama-server continues a prefill: its answer goes on from
/// the token after the prefill's last (`output_tokens` in all).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotModel {
    /// Generations at once.
    pub slots: usize,
    /// Requests allowed to wait for a slot before 429s.
    pub queue_limit: usize,
    /// Prompt-processing time per prompt token.
    pub per_prompt_token: Duration,
    /// Decoding time per answer token.
    pub per_output_token: Duration,
    /// Answer length when `max_tokens` allows it.
    pub output_tokens: u32,
}

/// A request the server received.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// Request path, e.g. `/v1/chat/completions`.
    pub path: String,
    /// Request headers, as sent.
    pub headers: Vec<(String, String)>,
    /// The JSON body (`Null` when it was not JSON).
    pub body: Value,
}

impl Recorded {
    /// A header's value, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The system prompt and every message's text as (role, text), OpenAI or Anthropic shape.
    pub fn texts(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if let Some(s) = self.body.get("system") {
            let t = s
                .as_str()
                .map(str::to_owned)
                .or_else(|| s.as_array().map(|blocks| joined_text(blocks)))
                .unwrap_or_default();
            out.push(("system".to_owned(), t));
        }
        for m in self.body["messages"].as_array().into_iter().flatten() {
            let role = m["role"].as_str().unwrap_or("").to_owned();
            let content = match &m["content"] {
                Value::String(s) => s.clone(),
                Value::Array(parts) => joined_text(parts),
                _ => String::new(),
            };
            out.push((role, content));
        }
        out
    }

    /// The last user message's text.
    pub fn last_user(&self) -> String {
        self.texts()
            .into_iter()
            .rev()
            .find(|(r, _)| r == "user")
            .map(|(_, t)| t)
            .unwrap_or_default()
    }
}

fn joined_text(blocks: &[Value]) -> String {
    blocks
        .iter()
        .filter_map(|b| b["text"].as_str())
        .collect::<Vec<_>>()
        .join("")
}

struct Shared {
    replies: Mutex<VecDeque<Reply>>,
    /// Used when the script is exhausted.
    fallback: Mutex<Option<Reply>>,
    requests: Mutex<Vec<Recorded>>,
    /// What `GET /props` reports as the context size (llama.cpp's way); `None`: 404.
    n_ctx: Mutex<Option<u32>>,
    stop: AtomicBool,
    /// The slot model answering when the script is exhausted.
    model: Mutex<Option<SlotModel>>,
    /// (running, waiting) under the slot model.
    slots: Mutex<(usize, usize)>,
    slot_freed: Condvar,
    /// Chat requests being answered now, and the most there ever were.
    active: AtomicUsize,
    max_active: AtomicUsize,
}

/// A lock that survives a panicking test thread: the data is still what the test wants to see.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The fake server; stops accepting when dropped.
pub struct FakeServer {
    /// Where it listens (127.0.0.1, an ephemeral port).
    pub addr: SocketAddr,
    shared: Arc<Shared>,
}

impl FakeServer {
    /// A server answering requests with `replies` in order; when they run out it answers 599
    /// "script exhausted" so an unexpected extra request shows up in the test.
    ///
    /// # Panics
    /// When no loopback port can be bound.
    pub fn start(replies: Vec<Reply>) -> FakeServer {
        let listener =
            TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind loopback: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("local addr: {e}"));
        let shared = Arc::new(Shared {
            replies: Mutex::new(replies.into()),
            fallback: Mutex::new(None),
            requests: Mutex::new(Vec::new()),
            n_ctx: Mutex::new(None),
            stop: AtomicBool::new(false),
            model: Mutex::new(None),
            slots: Mutex::new((0, 0)),
            slot_freed: Condvar::new(),
            active: AtomicUsize::new(0),
            max_active: AtomicUsize::new(0),
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
        *lock(&s.shared.fallback) = Some(reply);
        s
    }

    /// A server modelling a real one with slots (see [`SlotModel`]): every chat request not
    /// answered by a scripted reply ([`FakeServer::push`]) is answered by the model with a
    /// chat completion whose usage reports the modelled tokens.
    pub fn with_slots(model: SlotModel) -> FakeServer {
        let s = FakeServer::start(Vec::new());
        *lock(&s.shared.model) = Some(model);
        s
    }

    /// The most chat requests the server was answering at the same time.
    pub fn max_concurrency(&self) -> usize {
        self.shared.max_active.load(Ordering::SeqCst)
    }

    /// Base URL for an OpenAI-compatible provider (`http://addr/v1`).
    pub fn v1(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Base URL without a path (Anthropic, or Ollama pasted bare).
    pub fn root(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<Recorded> {
        lock(&self.shared.requests).clone()
    }

    /// How many requests were received.
    pub fn count(&self) -> usize {
        lock(&self.shared.requests).len()
    }

    /// Answers `GET /props` as llama.cpp's server does, reporting a context of `n` tokens
    /// (without this it answers 404, as servers without the endpoint do). Such requests are
    /// neither recorded nor scripted.
    pub fn with_context(self, n: u32) -> FakeServer {
        *lock(&self.shared.n_ctx) = Some(n);
        self
    }

    /// Appends an answer to the script.
    pub fn push(&self, reply: Reply) {
        lock(&self.shared.replies).push_back(reply);
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so its thread ends.
        let _ = TcpStream::connect(self.addr);
    }
}

/// A local base URL (`…/v1`) nothing listens on: bound, then released.
///
/// # Panics
/// When no loopback port can be bound.
pub fn closed_port_url() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind loopback: {e}"));
    let addr = l.local_addr().unwrap_or_else(|e| panic!("local addr: {e}"));
    drop(l);
    format!("http://{addr}/v1")
}

fn serve(mut conn: TcpStream, s: &Shared) {
    let Some((method, req)) = read_request(&mut conn) else {
        return;
    };
    if method == "GET" && req.path.ends_with("/props") {
        let n_ctx = *lock(&s.n_ctx);
        match n_ctx {
            Some(n) => {
                let slots = lock(&s.model).map_or(4, |m| m.slots);
                let body = format!(
                    r#"{{"default_generation_settings":{{"n_ctx":{n},"params":{{}}}},"total_slots":{slots},"model_path":"fake.gguf"}}"#
                );
                send_full(
                    &mut conn,
                    200,
                    &[],
                    "application/json",
                    body.as_bytes(),
                    Duration::ZERO,
                );
            }
            None => send_full(
                &mut conn,
                404,
                &[],
                "text/plain",
                b"File Not Found",
                Duration::ZERO,
            ),
        }
        let _ = conn.flush();
        let _ = conn.shutdown(Shutdown::Write);
        return;
    }
    let body = req.body.clone();
    lock(&s.requests).push(req);
    let next = lock(&s.replies).pop_front();
    let model = *lock(&s.model);
    let now = s.active.fetch_add(1, Ordering::SeqCst) + 1;
    s.max_active.fetch_max(now, Ordering::SeqCst);
    let reply = match (next, model) {
        (None, Some(m)) if body["stream"] == Value::Bool(true) => {
            modelled_stream(&mut conn, s, m, &body);
            s.active.fetch_sub(1, Ordering::SeqCst);
            return;
        }
        (None, Some(m)) => Some(modelled(s, m, &body)),
        (next, _) => next,
    };
    s.active.fetch_sub(1, Ordering::SeqCst);
    let reply = reply
        .or_else(|| lock(&s.fallback).clone())
        .unwrap_or_else(|| {
            Reply::status_json(
                599,
                r#"{"error":{"message":"fake server: script exhausted"}}"#,
            )
        });
    let finished = match reply {
        Reply::Full {
            status,
            headers,
            content_type,
            body,
            delay,
        } => {
            send_full(&mut conn, status, &headers, &content_type, &body, delay);
            true
        }
        Reply::Stream {
            pieces,
            delay,
            complete,
        } => send_stream(&mut conn, &pieces, delay, complete),
        Reply::Hang => {
            // Block until the client closes (read returns 0 or fails); bounded so a test that
            // forgets its timeout cannot hang the suite.
            let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
            let mut buf = [0u8; 256];
            while matches!(conn.read(&mut buf), Ok(n) if n > 0) {}
            false
        }
    };
    if finished {
        let _ = conn.flush();
        let _ = conn.shutdown(Shutdown::Write);
        // Drain whatever the client still sends so the close is orderly.
        let _ = conn.set_read_timeout(Some(Duration::from_millis(200)));
        let mut sink = [0u8; 256];
        while matches!(conn.read(&mut sink), Ok(n) if n > 0) {}
    }
}

/// Takes a slot of the [`SlotModel`], waiting in the server's queue; `false` when the queue
/// is full (answer 429).
fn take_slot(s: &Shared, m: SlotModel) -> bool {
    let mut q = lock(&s.slots);
    if q.0 >= m.slots {
        if q.1 >= m.queue_limit {
            return false;
        }
        q.1 += 1;
        while q.0 >= m.slots {
            q = s.slot_freed.wait(q).unwrap_or_else(PoisonError::into_inner);
        }
        q.1 -= 1;
    }
    q.0 += 1;
    true
}

fn free_slot(s: &Shared) {
    lock(&s.slots).0 -= 1;
    s.slot_freed.notify_one();
}

fn queue_full() -> Reply {
    Reply::status_json(
        429,
        r#"{"error":{"message":"fake server: queue full","type":"rate_limit"}}"#,
    )
    .with_header("Retry-After", "1")
}

/// Prompt tokens (4 characters each) and the answer's length under `m`: `(prompt, skip,
/// output)`, `skip` being the answer tokens a trailing assistant message already holds.
fn sizes(m: SlotModel, body: &Value) -> (u32, u32, u32) {
    let rec = Recorded {
        path: String::new(),
        headers: Vec::new(),
        body: body.clone(),
    };
    let texts = rec.texts();
    let chars: usize = texts.iter().map(|(_, t)| t.chars().count()).sum();
    let prompt = u32::try_from(chars.div_ceil(4)).unwrap_or(u32::MAX);
    let skip = match texts.last() {
        Some((role, t)) if role == "assistant" => {
            u32::try_from(t.split_whitespace().count()).unwrap_or(u32::MAX)
        }
        _ => 0,
    };
    let max = body["max_tokens"]
        .as_u64()
        .or_else(|| body["max_completion_tokens"].as_u64())
        .and_then(|n| u32::try_from(n).ok())
        .unwrap_or(u32::MAX);
    (prompt, skip, m.output_tokens.saturating_sub(skip).min(max))
}

/// Streams one answer as [`SlotModel`] says, a token per event; stops when the client leaves.
fn modelled_stream(conn: &mut TcpStream, s: &Shared, m: SlotModel, body: &Value) {
    if !take_slot(s, m) {
        if let Reply::Full {
            status,
            headers,
            content_type,
            body,
            delay,
        } = queue_full()
        {
            send_full(conn, status, &headers, &content_type, &body, delay);
        }
        return;
    }
    let (prompt, skip, output) = sizes(m, body);
    std::thread::sleep(m.per_prompt_token * prompt);
    let event = |v: Value| format!("data: {v}\n\n");
    let head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\
                Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    let mut ok = conn.write_all(head.as_bytes()).is_ok();
    let mut send = |conn: &mut TcpStream, p: String| {
        ok = ok
            && conn
                .write_all(format!("{:x}\r\n{p}\r\n", p.len()).as_bytes())
                .and_then(|()| conn.flush())
                .is_ok();
        ok
    };
    let mut sent = 0;
    for k in skip..skip + output {
        std::thread::sleep(m.per_output_token);
        let delta =
            serde_json::json!({"choices": [{"index": 0, "delta": {"content": format!("t{k} ")}}]});
        if !send(conn, event(delta)) {
            break;
        }
        sent += 1;
    }
    free_slot(s);
    if sent < output {
        return;
    }
    let finish = if skip + output < m.output_tokens {
        "length"
    } else {
        "stop"
    };
    let tail = [
        event(serde_json::json!({"choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})),
        event(serde_json::json!({"choices": [], "usage": {
            "prompt_tokens": prompt, "completion_tokens": output, "total_tokens": prompt + output
        }})),
        "data: [DONE]\n\n".to_owned(),
    ];
    for p in tail {
        send(conn, p);
    }
    let _ = conn.write_all(b"0\r\n\r\n");
    let _ = conn.flush();
    let _ = conn.shutdown(Shutdown::Write);
}

/// Answers one request as [`SlotModel`] says: waits for a slot (or 429s when too many wait),
/// then takes the modelled time.
fn modelled(s: &Shared, m: SlotModel, body: &Value) -> Reply {
    if !take_slot(s, m) {
        return queue_full();
    }
    let (prompt, _, output) = sizes(m, body);
    std::thread::sleep(m.per_prompt_token * prompt + m.per_output_token * output);
    free_slot(s);
    let answer = serde_json::json!({
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "model": body["model"],
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": "ok"},
            "finish_reason": "stop"
        }],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": output,
            "total_tokens": prompt + output
        }
    });
    Reply::json(answer.to_string())
}

fn send_full(
    conn: &mut TcpStream,
    status: u16,
    headers: &[(String, String)],
    content_type: &str,
    body: &[u8],
    delay: Duration,
) {
    if !delay.is_zero() {
        std::thread::sleep(delay);
    }
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
    let _ = conn.write_all(body);
}

/// Sends an SSE stream; `false` when the connection was dropped (on purpose or not).
fn send_stream(conn: &mut TcpStream, pieces: &[String], delay: Duration, complete: bool) -> bool {
    let head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\n\
                Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    if conn.write_all(head.as_bytes()).is_err() {
        return false;
    }
    for p in pieces {
        if !delay.is_zero() {
            std::thread::sleep(delay);
        }
        let chunk = format!("{:x}\r\n{p}\r\n", p.len());
        if conn.write_all(chunk.as_bytes()).is_err() || conn.flush().is_err() {
            return false;
        }
    }
    if complete {
        let _ = conn.write_all(b"0\r\n\r\n");
        return true;
    }
    // Reset rather than close cleanly, as a crashed upstream would.
    let _ = conn.shutdown(Shutdown::Both);
    false
}

fn read_request(conn: &mut TcpStream) -> Option<(String, Recorded)> {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    let mut r = BufReader::new(conn.try_clone().ok()?);
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    let method = line.split_whitespace().next()?.to_owned();
    let path = line.split_whitespace().nth(1)?.to_owned();
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
    Some((
        method,
        Recorded {
            path,
            headers,
            body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        },
    ))
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

/// The scheduler's own cost per call, for the scheduler bench: `calls` calls from `clients`
/// clients contend for `slots` slots of one queue under `policy` (all submitted, then served as
/// slots free), with no model and no network; returns the mean time per call of acquiring,
/// being handed a slot and releasing it with a usage correction (the task spawn included).
///
/// # Panics
/// When a current-thread runtime cannot be built.
pub fn sched_overhead(
    policy: crate::SchedPolicy,
    slots: usize,
    clients: usize,
    calls: usize,
) -> Duration {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"));
    let q = crate::sched::Queue::new("bench", slots, policy);
    let names: Vec<String> = (0..clients.max(1)).map(|i| format!("org{i}")).collect();
    let start = std::time::Instant::now();
    rt.block_on(async {
        let mut tasks = Vec::with_capacity(calls);
        for i in 0..calls {
            let q = q.clone();
            let name = names[i % names.len()].clone();
            tasks.push(tokio::spawn(async move {
                if let Some(p) = q.acquire(&name, 500, (i % 3) as u8, None).await {
                    tokio::task::yield_now().await;
                    p.finish(crate::types::Usage {
                        input_tokens: 300,
                        output_tokens: 90,
                        estimated: false,
                    });
                }
            }));
        }
        for t in tasks {
            let _ = t.await;
        }
    });
    start.elapsed() / u32::try_from(calls.max(1)).unwrap_or(u32::MAX)
}

/// The scheduler's own cost per call with no contention: one task acquiring a free slot and
/// releasing it, `calls` times in a row, with no model and no network.
///
/// # Panics
/// When a current-thread runtime cannot be built.
pub fn sched_overhead_uncontended(policy: crate::SchedPolicy, calls: usize) -> Duration {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"));
    let q = crate::sched::Queue::new("bench", 4, policy);
    let start = std::time::Instant::now();
    rt.block_on(async {
        for _ in 0..calls {
            if let Some(p) = q.acquire("org0", 500, 0, None).await {
                p.finish(crate::types::Usage {
                    input_tokens: 300,
                    output_tokens: 90,
                    estimated: false,
                });
            }
        }
    });
    start.elapsed() / u32::try_from(calls.max(1)).unwrap_or(u32::MAX)
}
