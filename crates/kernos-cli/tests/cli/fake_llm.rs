//! A minimal OpenAI-compatible server on 127.0.0.1 for driving the real `kernos` binary: it
//! answers with scripted chat completions and records every request body. (The planner's
//! and kernos-llm's suites test the wire formats in depth; here it only has to look like a
//! llama-server.)

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

pub struct FakeLlm {
    pub addr: std::net::SocketAddr,
    replies: Arc<Mutex<VecDeque<String>>>,
    always: Arc<Mutex<Option<String>>>,
    requests: Arc<Mutex<Vec<Value>>>,
}

/// A chat completion whose content is `content` (1200 + 300 tokens).
pub fn completion(content: &str) -> String {
    json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1741569952,
        "model": "local-model",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1200, "completion_tokens": 300, "total_tokens": 1500}
    })
    .to_string()
}

/// One step: `(action, [(name, value)…], why)`.
pub type StepSpec<'a> = (&'a str, Vec<(&'a str, Value)>, &'a str);

/// A plan answer in the strict format, with `extra` fields (e.g. `done`).
pub fn plan(steps: &[StepSpec<'_>], extra: Value) -> String {
    let mut a = json!({
        "steps": steps.iter().map(|(a, args, why)| json!({
            "action": a,
            "args": args.iter().map(|(n, v)| json!({"name": n, "value": v})).collect::<Vec<_>>(),
            "needs": [],
            "why": why,
        })).collect::<Vec<_>>(),
        "message": "",
    });
    if let (Some(o), Some(e)) = (a.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            o.insert(k.clone(), v.clone());
        }
    }
    completion(&a.to_string())
}

impl FakeLlm {
    pub fn start(replies: Vec<String>) -> FakeLlm {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let s = FakeLlm {
            addr,
            replies: Arc::new(Mutex::new(replies.into())),
            always: Arc::new(Mutex::new(None)),
            requests: Arc::new(Mutex::new(Vec::new())),
        };
        let (r, a, q) = (s.replies.clone(), s.always.clone(), s.requests.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let (r, a, q) = (r.clone(), a.clone(), q.clone());
                std::thread::spawn(move || serve(conn, &r, &a, &q));
            }
        });
        s
    }

    pub fn always(reply: String) -> FakeLlm {
        let s = FakeLlm::start(Vec::new());
        *s.always.lock().unwrap() = Some(reply);
        s
    }

    pub fn base(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    pub fn count(&self) -> usize {
        self.requests.lock().unwrap().len()
    }

    pub fn requests(&self) -> Vec<Value> {
        self.requests.lock().unwrap().clone()
    }

    /// The last user message of request `i`.
    pub fn user(&self, i: usize) -> String {
        let r = &self.requests()[i];
        r["messages"]
            .as_array()
            .unwrap()
            .iter()
            .rev()
            .find(|m| m["role"] == "user")
            .and_then(|m| m["content"].as_str())
            .unwrap_or("")
            .to_owned()
    }
}

/// A local URL nothing listens on.
pub fn dead_base() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let a = l.local_addr().unwrap();
    drop(l);
    format!("http://{a}/v1")
}

fn serve(
    mut conn: TcpStream,
    replies: &Mutex<VecDeque<String>>,
    always: &Mutex<Option<String>>,
    requests: &Mutex<Vec<Value>>,
) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    let Ok(clone) = conn.try_clone() else { return };
    let mut r = BufReader::new(clone);
    let mut line = String::new();
    if r.read_line(&mut line).is_err() {
        return;
    }
    let mut len = 0usize;
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).is_err() {
            return;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.trim().eq_ignore_ascii_case("content-length") {
                len = v.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0u8; len];
    if r.read_exact(&mut body).is_err() {
        return;
    }
    requests
        .lock()
        .unwrap()
        .push(serde_json::from_slice(&body).unwrap_or(Value::Null));
    let (status, body) = match replies
        .lock()
        .unwrap()
        .pop_front()
        .or_else(|| always.lock().unwrap().clone())
    {
        Some(b) => (200, b),
        None => (
            599,
            r#"{"error":{"message":"fake server: script exhausted"}}"#.to_owned(),
        ),
    };
    let head = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = conn.write_all(head.as_bytes());
    let _ = conn.write_all(body.as_bytes());
    let _ = conn.flush();
    let _ = conn.shutdown(Shutdown::Write);
}
