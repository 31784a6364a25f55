//! `kernos serve` for real: the binary on a loopback port and on its Unix socket, API keys from
//! the CLI, approvals over HTTP, SSE resume, SIGTERM mid-action, SIGKILL and recovery, limits,
//! quotas, audit CSV, TLS, and `kernos "<request>"` going through the daemon.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::{World, text};

/// A running `kernos serve`.
pub(crate) struct Daemon {
    child: Option<Child>,
    pub(crate) addr: String,
    socket: std::path::PathBuf,
    stdout: BufReader<std::process::ChildStdout>,
}

impl Daemon {
    pub(crate) fn start(w: &World, args: &[&str]) -> Daemon {
        grant_acme(w);
        let mut all = vec!["serve", "--listen", "127.0.0.1:0"];
        all.extend_from_slice(args);
        Daemon::spawn(w, w.cmd(&all))
    }

    /// Like [`Daemon::start`], with extra environment variables (API keys named by
    /// `key_env` settings).
    pub(crate) fn start_env(w: &World, args: &[&str], env: &[(&str, &str)]) -> Daemon {
        grant_acme(w);
        let mut all = vec!["serve", "--listen", "127.0.0.1:0"];
        all.extend_from_slice(args);
        let mut c = w.cmd(&all);
        for (k, v) in env {
            c.env(k, v);
        }
        Daemon::spawn(w, c)
    }

    /// Stops the daemon with SIGTERM and checks it exited cleanly.
    pub(crate) fn stop(mut self) {
        let status = self.signal(libc::SIGTERM);
        assert!(status.success(), "the daemon stopped cleanly: {status:?}");
    }

    /// Starts `c`, a command that ends up running `kernos serve`, and waits until it listens.
    fn spawn(w: &World, mut c: std::process::Command) -> Daemon {
        c.stdout(Stdio::piped()).stderr(Stdio::null());
        let mut child = c.spawn().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut addr = String::new();
        let mut line = String::new();
        let until = Instant::now() + Duration::from_secs(20);
        loop {
            line.clear();
            assert!(Instant::now() < until, "daemon did not start");
            if stdout.read_line(&mut line).unwrap() == 0 {
                panic!("daemon exited: {:?}", child.wait());
            }
            if let Some(a) = line.trim().strip_prefix("kernos: listening on http://") {
                addr = a.to_owned();
            }
            if line.contains("kernos: socket ") {
                break;
            }
        }
        Daemon {
            child: Some(child),
            addr,
            socket: w.data.join("kernos.sock"),
            stdout,
        }
    }

    /// Stops the daemon with SIGTERM, as a service manager would, and starts it again on the
    /// same address with the same data: what a client must live through.
    pub(crate) fn restart(&mut self, w: &World) {
        let status = self.signal(libc::SIGTERM);
        assert!(status.success(), "the daemon stopped cleanly: {status:?}");
        let addr = self.addr.clone();
        *self = Daemon::spawn(w, w.cmd(&["serve", "--listen", &addr]));
    }

    pub(crate) fn pid(&self) -> i32 {
        self.child.as_ref().unwrap().id() as i32
    }

    pub(crate) fn signal(&mut self, sig: i32) -> std::process::ExitStatus {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.pid(), sig) };
        let mut c = self.child.take().unwrap();
        let until = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(s) = c.try_wait().unwrap() {
                return s;
            }
            assert!(
                Instant::now() < until,
                "daemon did not exit after signal {sig}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn rest_of_stdout(&mut self) -> String {
        let mut s = String::new();
        let _ = self.stdout.read_to_string(&mut s);
        s
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// An answer.
pub(crate) struct Resp {
    pub(crate) status: u16,
    headers: String,
    pub(crate) body: Vec<u8>,
}

impl Resp {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {} {}", self.status, text(&self.body)))
    }
    fn header(&self, name: &str) -> Option<String> {
        self.headers.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
    }
}

fn request<S: Read + Write>(
    mut s: S,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: Option<&Value>,
    extra: &[(&str, &str)],
) -> Resp {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n");
    if let Some(k) = key {
        req.push_str(&format!("Authorization: Bearer {k}\r\n"));
    }
    for (k, v) in extra {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() {
        req.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    req.push_str("\r\n");
    req.push_str(&body);
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = text(&raw[..split]);
    let mut body = raw[split + 4..].to_vec();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        let mut out = Vec::new();
        let mut rest = &body[..];
        loop {
            let nl = rest.windows(2).position(|w| w == b"\r\n").unwrap();
            let n = usize::from_str_radix(text(&rest[..nl]).trim(), 16).unwrap();
            if n == 0 {
                break;
            }
            out.extend_from_slice(&rest[nl + 2..nl + 2 + n]);
            rest = &rest[nl + 2 + n + 2..];
        }
        body = out;
    }
    Resp {
        status,
        headers: head,
        body,
    }
}

impl Daemon {
    pub(crate) fn http(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> Resp {
        self.http_with(method, path, key, body, &[])
    }
    fn http_with(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
        extra: &[(&str, &str)],
    ) -> Resp {
        let s = TcpStream::connect(&self.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        request(s, method, path, key, body.as_ref(), extra)
    }
    /// Over the Unix socket, as the daemon's own user (no key).
    pub(crate) fn local(&self, method: &str, path: &str, body: Option<Value>) -> Resp {
        let s = UnixStream::connect(&self.socket).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        request(s, method, path, None, body.as_ref(), &[])
    }

    pub(crate) fn finished(&self, key: &str, action: &str) -> Value {
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            let v = self
                .http(
                    "GET",
                    &format!("/v1/state/actions/{action}"),
                    Some(key),
                    None,
                )
                .json();
            let s = v["status"].as_str().unwrap_or("").to_owned();
            if s != "queued" && s != "running" {
                return v;
            }
            assert!(Instant::now() < until, "{v}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn pending(&self, key: &str, action: &str) -> Value {
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            let v = self
                .http("GET", "/v1/state/approvals", Some(key), None)
                .json();
            if let Some(a) = v.as_array().unwrap().iter().find(|a| a["action"] == action) {
                return a.clone();
            }
            assert!(Instant::now() < until, "no approval for {action}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// `kernos keys create` and the printed key.
pub(crate) fn new_key(w: &World, org: &str, role: &str) -> String {
    let out = w.run(&[
        "keys", "create", "--org", org, "--role", role, "--label", "t",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let k = text(&out.stdout).trim().to_owned();
    assert!(k.starts_with("kn_"), "{k}");
    k
}

/// The organisation these tests use works in the world's tree, as if the operator had
/// granted it (an organisation reaches only its own workspace unless configured).
fn grant_acme(w: &World) {
    let path = w.home.join(".config/kernos/config.toml");
    let mut toml = std::fs::read_to_string(&path).unwrap_or_default();
    if !toml.contains("[server.scopes.acme]") {
        toml.push_str(&format!(
            "\n[server.scopes.acme]\nwrite = [\"{}\"]\n",
            w.home.display()
        ));
        w.config(&toml);
    }
}

pub(crate) fn submit(d: &Daemon, key: &str, body: Value) -> String {
    let r = d.http("POST", "/v1/actions", Some(key), Some(body));
    assert_eq!(r.status, 202, "{}", text(&r.body));
    r.json()["action"].as_str().unwrap().to_owned()
}

#[test]
fn keys_from_the_cli_work_at_once_and_approvals_run_over_http() {
    let w = World::new();
    let f = w.file("old.log", "keep");
    // A key made before the daemon runs (written to the journal) …
    let early = new_key(&w, "acme", "operator");
    let d = Daemon::start(&w, &[]);
    // … and one made while it runs (through the socket).
    let admin = new_key(&w, "acme", "admin");
    assert_eq!(
        d.http("GET", "/v1/state/usage", Some(&early), None).status,
        200
    );
    assert_eq!(d.http("GET", "/v1/keys", Some(&admin), None).status, 200);
    assert_eq!(d.http("GET", "/v1/keys", Some(&early), None).status, 403);
    assert_eq!(d.http("GET", "/v1/state/usage", None, None).status, 401);
    let cwd = w.cwd.display().to_string();
    let a = submit(&d, &early, json!({"request": "delete old.log", "cwd": cwd}));
    let p = d.pending(&early, &a);
    let id = p["approval"].as_str().unwrap();
    let r = d.http(
        "POST",
        &format!("/v1/approvals/{id}"),
        Some(&early),
        Some(json!({"approve": true})),
    );
    assert_eq!(r.status, 200, "{}", text(&r.body));
    assert_eq!(d.finished(&early, &a)["status"], "committed");
    assert!(!f.exists());
    // `kernos keys list` and revoke through the daemon; the key stops working at once.
    let list = w.run(&["keys", "list", "--org", "acme"]);
    let listing = text(&list.stdout);
    assert_eq!(listing.lines().count(), 2, "{listing}");
    assert!(!listing.contains(&early[30..]), "no secrets in the listing");
    let early_id = early.split('_').nth(1).unwrap();
    let out = w.run(&["keys", "revoke", early_id]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        d.http("GET", "/v1/state/usage", Some(&early), None).status,
        401
    );
    // Metrics over the socket (the host operator).
    let m = d.local("GET", "/metrics", None);
    assert_eq!(m.status, 200);
    assert!(text(&m.body).contains("kernos_actions_total{outcome=\"committed\"} 1"));
}

#[test]
fn requests_from_the_cli_go_through_a_running_daemon_with_the_same_results() {
    let w = World::new();
    w.file("logs/big.log", &"x".repeat(5000));
    w.file("logs/small.log", "x");
    let embedded = w.run(&["show the 2 largest files in logs"]);
    assert!(embedded.status.success());
    let d = Daemon::start(&w, &[]);
    let via = w.run(&["show the 2 largest files in logs"]);
    assert!(via.status.success(), "{}", text(&via.stderr));
    assert_eq!(text(&via.stdout), text(&embedded.stdout), "same rendering");
    // Both front ends recorded the same action; the second went through the daemon's socket.
    let actions = d.local("GET", "/v1/state/actions", None).json();
    let actions = actions.as_array().unwrap();
    assert_eq!(actions.len(), 2);
    let sources: Vec<String> = actions
        .iter()
        .map(|a| {
            assert_eq!(a["request"], "show the 2 largest files in logs");
            let path = format!("/v1/state/actions/{}", a["action"].as_str().unwrap());
            let detail = d.local("GET", &path, None).json();
            detail["events"][0]["payload"]["source"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert!(
        sources.iter().any(|s| s == "cli (embedded engine)"),
        "{sources:?}"
    );
    assert!(
        sources.iter().any(|s| s.starts_with("unix:")),
        "{sources:?}"
    );
    // A change with --yes, then "undo that" as a follow-up, both through the daemon.
    let f = w.file("tmp.txt", "t");
    let out = w.run(&["--yes", "delete tmp.txt"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!f.exists());
    assert!(text(&out.stdout).contains("undo with: kernos undo"));
    let out = w.run(&["--yes", "undo that"]);
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert_eq!(std::fs::read_to_string(&f).unwrap(), "t");
    // Without a terminal and without --yes, a change does not run.
    let out = w.run(&["delete tmp.txt"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(f.exists());
    assert!(text(&out.stderr).contains("--yes"), "{}", text(&out.stderr));
    // --json has the same shape as embedded.
    let j: Value = serde_json::from_str(
        text(
            &w.run(&["--json", "show the 2 largest files in logs"])
                .stdout,
        )
        .lines()
        .last()
        .unwrap(),
    )
    .unwrap();
    assert_eq!(j["report"]["status"], "committed");
    assert_eq!(
        j["report"]["steps"][0]["output"]["rows"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    drop(d);
}

#[test]
fn sigterm_mid_action_stops_cleanly_within_seconds() {
    let w = World::new();
    let f = w.file("keep.log", "x");
    let mut d = Daemon::start(&w, &[]);
    let k = new_key(&w, "acme", "operator");
    let a = submit(
        &d,
        &k,
        json!({"request": "delete keep.log", "cwd": w.cwd.display().to_string()}),
    );
    d.pending(&k, &a);
    let t = Instant::now();
    let status = d.signal(libc::SIGTERM);
    assert!(status.success(), "{status:?}");
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "took {:?}",
        t.elapsed()
    );
    assert!(d.rest_of_stdout().contains("kernos: stopped"));
    assert!(f.exists());
    assert!(!w.data.join("kernos.sock").exists(), "socket removed");
    let j = kernos_journal::Journal::open_read_only(&w.data).unwrap();
    let evs = j.query(&kernos_journal::Query::action(&a)).unwrap();
    let last = evs.last().unwrap();
    assert_eq!(last.kind, "action.finished");
    assert_eq!(last.payload["status"], "declined");
    let head = j.head().unwrap().0;
    assert_eq!(j.get(head).unwrap().unwrap().kind, "daemon.stopped");
    assert!(j.verify().unwrap().is_ok());
    // Without a daemon the CLI runs embedded again.
    let out = w.run(&["list files in ."]);
    assert!(out.status.success());
}

/// A daemon killed (SIGKILL) while a delete of `keep.log` waits for approval: the key and
/// the action id.
fn killed_while_waiting(w: &World) -> (String, String) {
    w.file("keep.log", "x");
    let mut d = Daemon::start(w, &[]);
    let k = new_key(w, "acme", "operator");
    let a = submit(
        &d,
        &k,
        json!({"request": "delete keep.log", "cwd": w.cwd.display().to_string()}),
    );
    d.pending(&k, &a);
    d.signal(libc::SIGKILL);
    (k, a)
}

#[test]
fn sigkill_mid_action_is_reported_interrupted_after_restart() {
    let w = World::new();
    let (k, a) = killed_while_waiting(&w);
    assert!(
        w.data.join("kernos.sock").exists(),
        "a killed daemon leaves its socket"
    );
    let mut d = Daemon::start(&w, &[]);
    let v = d.finished(&k, &a);
    assert_eq!(v["status"], "interrupted", "{v}");
    let kinds = |v: &Value| -> Vec<String> {
        v["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["kind"].as_str().unwrap().to_owned())
            .collect()
    };
    let k1 = kinds(&v);
    assert!(k1.contains(&"approval.requested".into()) && k1.contains(&"action.interrupted".into()));
    // Exactly once, even across a further restart.
    assert!(d.signal(libc::SIGTERM).success());
    let d = Daemon::start(&w, &[]);
    let k2 = kinds(&d.finished(&k, &a));
    assert_eq!(k2.iter().filter(|k| *k == "action.interrupted").count(), 1);
}

#[test]
fn a_restart_reports_what_a_crash_interrupted_on_stdout() {
    let w = World::new();
    let (_, a) = killed_while_waiting(&w);
    let mut c = w.cmd(&["serve", "--listen", "127.0.0.1:0"]);
    c.stdout(Stdio::piped()).stderr(Stdio::null());
    let mut child = c.spawn().unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut seen = String::new();
    let mut line = String::new();
    while out.read_line(&mut line).unwrap() > 0 {
        seen.push_str(&line);
        if line.contains("kernos: socket") {
            break;
        }
        line.clear();
    }
    // SAFETY: our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    child.wait().unwrap();
    assert!(
        seen.contains(&format!("action {a} (org acme) was interrupted")),
        "{seen}"
    );
}

#[test]
fn sse_resume_over_tcp_across_a_reconnect_gets_each_event_once() {
    let w = World::new();
    let d = Daemon::start(&w, &[]);
    let k = new_key(&w, "local", "viewer");
    let head = d.http("GET", "/healthz", None, None).json()["head"]
        .as_u64()
        .unwrap();
    const N: usize = 10_000;
    let data = w.data.clone();
    let writer = std::thread::spawn(move || {
        let mut j = kernos_journal::Journal::open(&data).unwrap();
        for b in 0..N / 200 {
            let evs: Vec<kernos_core::NewEvent> = (0..200)
                .map(|i| {
                    kernos_core::NewEvent::new("test.tick", kernos_core::Actor::system())
                        .payload(json!({"n": b * 200 + i}))
                })
                .collect();
            j.append_batch(&evs).unwrap();
            std::thread::sleep(Duration::from_millis(3));
        }
    });
    let mut got: Vec<(u64, u64)> = Vec::new();
    let mut last = head;
    for (round, stop_at) in [(0, 3_333), (1, N)] {
        let s = TcpStream::connect(&d.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut s2 = s.try_clone().unwrap();
        let hdr = if round == 0 {
            format!("GET /v1/events?prefix=test.&after={last} HTTP/1.1\r\n")
        } else {
            format!("GET /v1/events?prefix=test. HTTP/1.1\r\nLast-Event-ID: {last}\r\n")
        };
        s2.write_all(format!("{hdr}Host: t\r\nAuthorization: Bearer {k}\r\n\r\n").as_bytes())
            .unwrap();
        let mut r = BufReader::new(s);
        let mut line = String::new();
        let mut id = None;
        while got.len() < stop_at {
            line.clear();
            assert!(r.read_line(&mut line).unwrap() > 0, "stream ended");
            // Chunk-size lines and blank lines are skipped; SSE fields are parsed.
            if let Some(v) = line.trim_end().strip_prefix("id: ") {
                id = v.parse::<u64>().ok();
            } else if let Some(v) = line.trim_end().strip_prefix("data: ") {
                let e: Value = serde_json::from_str(v).unwrap();
                got.push((id.unwrap(), e["payload"]["n"].as_u64().unwrap()));
                last = id.unwrap();
            }
        }
        drop(r); // disconnect in the middle
    }
    writer.join().unwrap();
    let ns: Vec<u64> = got.iter().map(|g| g.1).collect();
    assert_eq!(
        ns,
        (0..N as u64).collect::<Vec<_>>(),
        "every event exactly once, in order"
    );
}

#[test]
fn limits_quota_idempotency_and_audit_csv_over_http() {
    let w = World::new();
    w.config(
        "[server]\nrate_per_sec = 1.0\nrate_burst = 4.0\nstep_overhead_units = 0.01\n[server.quotas]\nacme = 0.01\n",
    );
    let d = Daemon::start(&w, &[]);
    let op = new_key(&w, "acme", "operator");
    let admin = new_key(&w, "acme", "admin");
    let body = json!({"request": "list files in .", "cwd": w.cwd.display().to_string()});
    // Idempotency: the same key twice is one action.
    let h = [("Idempotency-Key", "one")];
    let r1 = d.http_with("POST", "/v1/actions", Some(&op), Some(body.clone()), &h);
    let r2 = d.http_with("POST", "/v1/actions", Some(&op), Some(body.clone()), &h);
    assert_eq!((r1.status, r2.status), (202, 202));
    assert_eq!(r1.json()["action"], r2.json()["action"]);
    d.finished(&admin, r1.json()["action"].as_str().unwrap());
    // Quota: room for one step (each is admitted before it starts); 0.01 units used of 0.01.
    let r = d.http("POST", "/v1/actions", Some(&op), Some(body.clone()));
    assert_eq!(r.status, 402, "{}", text(&r.body));
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("application/problem+json")
    );
    // Rate limit: the operator key has used 3 of its burst of 4 and refills at 1/s, so a
    // quick run of requests hits 429.
    let mut r = d.http("GET", "/v1/state/usage", Some(&op), None);
    for _ in 0..4 {
        if r.status == 429 {
            break;
        }
        r = d.http("GET", "/v1/state/usage", Some(&op), None);
    }
    assert_eq!(r.status, 429);
    assert!(r.header("retry-after").is_some());
    // Audit CSV (admin key, own bucket).
    let csv = d.http(
        "GET",
        "/v1/audit.csv?action=key.created",
        Some(&admin),
        None,
    );
    assert_eq!(csv.status, 200);
    let t = text(&csv.body);
    assert_eq!(t.lines().count(), 3, "{t}");
    assert!(t.lines().nth(1).unwrap().contains("audit.key.created"));
    let all = d.http("GET", "/v1/audit", Some(&admin), None).json();
    assert!(
        all.as_array()
            .unwrap()
            .iter()
            .any(|r| r["kind"] == "action.submitted")
    );
}

#[test]
fn refuses_a_public_address_without_tls_and_serves_tls_when_configured() {
    let w = World::new();
    let out = w.run(&["serve", "--listen", "0.0.0.0:0"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("without TLS"),
        "{}",
        text(&out.stderr)
    );
    assert!(!w.data.join("kernos.sock").exists());
    // TLS with a self-signed certificate (openssl makes it; curl talks to it).
    let have = |p: &str| {
        std::process::Command::new(p)
            .arg("version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok()
    };
    if !have("openssl") || !have("curl") {
        eprintln!("SKIPPED the TLS half: needs openssl and curl (apt-get install openssl curl)");
        return;
    }
    let cert = w.root().join("cert.pem");
    let key = w.root().join("key.pem");
    let ok = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(ok.success());
    w.config(&format!(
        "[server]\ntls_cert = \"{}\"\ntls_key = \"{}\"\n",
        cert.display(),
        key.display()
    ));
    let mut c = w.cmd(&["serve", "--listen", "127.0.0.1:0"]);
    c.stdout(Stdio::piped()).stderr(Stdio::null());
    let mut child = c.spawn().unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let addr = line
        .trim()
        .strip_prefix("kernos: listening on https://")
        .unwrap()
        .to_owned();
    let r = std::process::Command::new("curl")
        .args(["-sk", &format!("https://{addr}/healthz")])
        .output()
        .unwrap();
    // SAFETY: our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    child.wait().unwrap();
    assert!(
        text(&r.stdout).contains("\"status\":\"ok\""),
        "{}",
        text(&r.stdout)
    );
}

#[test]
fn changes_the_cli_made_without_a_daemon_are_in_the_audit_log() {
    let w = World::new();
    let f = w.file("gone.txt", "x");
    let out = w.run(&["--yes", "delete gone.txt"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!f.exists());
    let d = Daemon::start(&w, &[]);
    let admin = new_key(&w, "local", "admin");
    let all = d.http("GET", "/v1/audit", Some(&admin), None).json();
    // The CLI records its submission like the daemon does, so that is the audit record.
    let sub = all
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["kind"] == "action.submitted")
        .unwrap_or_else(|| panic!("no action.submitted in {all}"));
    // The account of the real uid, not the `USER=tester` this test's environment claims.
    assert_eq!(sub["actor"], kernos_core::Actor::current_user().0);
    assert_ne!(sub["actor"], "user:tester");
    assert_eq!(sub["source"], "cli (embedded engine)");
    assert_eq!(sub["after"]["request"], "delete gone.txt");
    assert!(
        !all.as_array()
            .unwrap()
            .iter()
            .any(|r| r["kind"] == "tx.started"),
        "listed once, not again as its transaction: {all}"
    );
}

#[test]
fn run_units_are_cpu_seconds_of_sandboxed_children_plus_overhead() {
    let w = World::new();
    // Enough data that hashing it takes measurable CPU in the confined child.
    let data: Vec<u8> = (0..30_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(w.cwd.join("big.bin"), data).unwrap();
    let d = Daemon::start(&w, &[]);
    let admin = new_key(&w, "acme", "admin");
    let plan = json!({"steps": [{"tool": "shell", "action": "run", "args": {"command": "sha256sum big.bin"}}]});
    let a = submit(
        &d,
        &admin,
        json!({"plan": plan, "cwd": w.cwd.display().to_string(), "auto_approve": true}),
    );
    let v = d.finished(&admin, &a);
    assert_eq!(v["status"], "committed", "{v}");
    let fin = v["events"].as_array().unwrap().last().unwrap()["payload"].clone();
    let cpu_ms = fin["cpu_ms"].as_u64().unwrap();
    assert!(cpu_ms > 0, "the child's CPU time comes from rusage: {fin}");
    let units = v["units"].as_f64().unwrap();
    assert!(
        (units - (cpu_ms as f64 / 1000.0 + 0.01)).abs() < 1e-6,
        "{units} vs {cpu_ms} ms"
    );
    let u = d.http("GET", "/v1/state/usage", Some(&admin), None).json();
    assert!((u["units"].as_f64().unwrap() - units).abs() < 1e-6, "{u}");
    let m = text(&d.local("GET", "/metrics", None).body);
    assert!(m.contains("kernos_run_units_total{org=\"acme\"}"), "{m}");
}

/// One read and one change, each through three front ends — the CLI on its embedded engine,
/// the CLI through a running daemon, and the HTTP API — journal the same sequence of event
/// kinds: every front end is an adapter over the engine's one request path.
#[test]
fn every_front_end_journals_the_same_sequence_of_event_kinds() {
    let w = World::new();
    w.file("logs/big.log", &"x".repeat(5000));
    w.file("logs/small.log", "x");
    for name in ["a.txt", "b.txt", "c.txt", "d.txt"] {
        w.file(name, "x");
    }
    let read = "show the 2 largest files in logs";
    let ok = |out: std::process::Output| assert!(out.status.success(), "{}", text(&out.stderr));
    ok(w.run(&[read]));
    ok(w.run(&["--yes", "delete a.txt"]));
    let d = Daemon::start(&w, &[]);
    ok(w.run(&[read]));
    ok(w.run(&["--yes", "delete b.txt"]));
    let key = new_key(&w, "local", "admin");
    let cwd = w.cwd.display().to_string();
    for request in [read, "delete c.txt"] {
        let a = submit(
            &d,
            &key,
            json!({"request": request, "cwd": cwd, "auto_approve": true}),
        );
        assert!(d.finished(&key, &a)["status"] == "committed");
    }
    // And an MCP client (the Python SDK over /mcp), approving when asked.
    let mcp = crate::mcp_server::python_sdk();
    if let Some(py) = &mcp {
        let url = format!("http://{}/mcp", d.addr);
        let mut c = w.program(py.to_str().unwrap());
        c.env(
            "KERNOS_MCP_REQUESTS",
            json!([read, "delete d.txt"]).to_string(),
        );
        let child =
            crate::mcp_server::client_with(c, &["http", "auto", "requests", &cwd, &url, &key]);
        let r = crate::mcp_server::report(child);
        for res in r["results"].as_array().unwrap() {
            assert_eq!(res["structuredContent"]["status"], "committed", "{res}");
        }
    }
    let mut actions: Vec<Value> = d
        .local("GET", "/v1/state/actions", None)
        .json()
        .as_array()
        .unwrap()
        .clone();
    actions.reverse();
    let kinds: Vec<(String, Vec<String>)> = actions
        .iter()
        .map(|a| {
            let path = format!("/v1/state/actions/{}", a["action"].as_str().unwrap());
            let events = d.local("GET", &path, None).json()["events"].clone();
            // Whether a person was asked depends on the front end, not the path: `--yes` and
            // `auto_approve` approve at once, an MCP client is asked (approval.requested and
            // the audit record of the answer); the step's approval.decided is there for all.
            let kinds = events
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["kind"].as_str().unwrap().to_owned())
                .filter(|k| k != "approval.requested" && k != "audit.approval.decided")
                .collect();
            (a["request"].as_str().unwrap_or("").to_owned(), kinds)
        })
        .collect();
    assert_eq!(kinds.len(), if mcp.is_some() { 8 } else { 6 }, "{kinds:?}");
    let expected_read = [
        "action.submitted",
        "plan.created",
        "tx.started",
        "step.decided",
        "step.started",
        "step.finished",
        "tx.finished",
        "action.finished",
    ];
    for (i, (request, k)) in kinds.iter().enumerate() {
        let (same_as, _) = &kinds[i % 2];
        assert_eq!(request.starts_with("delete"), same_as.starts_with("delete"));
        assert_eq!(
            k,
            &kinds[i % 2].1,
            "front end {} differs for {request:?}",
            i / 2
        );
    }
    assert_eq!(kinds[0].1, expected_read);
    let change = &kinds[1].1;
    for kind in [
        "action.previewed",
        "approval.decided",
        "step.undo_recorded",
        "tx.finished",
    ] {
        assert!(change.contains(&kind.to_owned()), "{change:?}");
    }
}

/// With a daemon running, `history`, `show` and `undo` go through it too (one writer, one
/// view): they see the local organisation's work only, as the daemon shows it, never
/// another organisation's newer transaction.
#[test]
fn history_show_and_undo_go_through_a_running_daemon() {
    let w = World::new();
    let mine = w.file("mine.txt", "m");
    let theirs = w.file("theirs.txt", "t");
    let d = Daemon::start(&w, &[]);
    let out = w.run(&["--yes", "delete mine.txt"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let acme = new_key(&w, "acme", "admin");
    let a = submit(
        &d,
        &acme,
        json!({"request": "delete theirs.txt", "cwd": w.cwd.display().to_string(), "auto_approve": true}),
    );
    let fin = d.finished(&acme, &a);
    assert_eq!(fin["status"], "committed", "{fin}");
    let their_tx = fin["tx"].as_str().unwrap().to_owned();
    assert!(!theirs.exists());

    let h = w.run(&["--json", "history"]);
    assert!(h.status.success(), "{}", text(&h.stderr));
    let h: Value = serde_json::from_slice(&h.stdout).unwrap();
    let requests: Vec<&str> = h
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["request"].as_str().unwrap())
        .collect();
    assert_eq!(
        requests,
        ["delete mine.txt"],
        "the daemon's view of the local org"
    );
    let my_tx = h[0]["tx"].as_str().unwrap().to_owned();

    let show = w.run(&["--json", "show", &my_tx[my_tx.len() - 8..]]);
    assert!(show.status.success(), "{}", text(&show.stderr));
    let events: Value = serde_json::from_slice(&show.stdout).unwrap();
    assert_eq!(events[0]["kind"], "tx.started");
    let other = w.run(&["show", &their_tx]);
    assert!(
        !other.status.success(),
        "another org's transaction is not shown"
    );
    assert!(
        text(&other.stderr).contains("no transaction"),
        "{}",
        text(&other.stderr)
    );

    let undo = w.run(&["--yes", "undo"]);
    assert!(
        undo.status.success(),
        "{}{}",
        text(&undo.stdout),
        text(&undo.stderr)
    );
    assert_eq!(std::fs::read_to_string(&mine).unwrap(), "m");
    assert!(
        !theirs.exists(),
        "the newer transaction of another org was left alone"
    );
    let actions = d.local("GET", "/v1/state/actions", None).json();
    assert_eq!(actions[0]["status"], "undone", "{actions}");
}

/// Reads one HTTP/1.1 response with a Content-Length body from a kept-alive connection.
fn read_one(s: &mut std::net::TcpStream) -> (u16, String) {
    let mut raw = Vec::new();
    let mut byte = [0u8; 1];
    while !raw.ends_with(b"\r\n\r\n") {
        assert_eq!(
            s.read(&mut byte).unwrap(),
            1,
            "the connection closed mid-answer"
        );
        raw.push(byte[0]);
    }
    let head = text(&raw).to_ascii_lowercase();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map(|v| v.trim().parse().unwrap())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).unwrap();
    (status, head)
}

/// A request refused before its body was read (bad key, rate limit) leaves a keep-alive
/// connection usable for the next request, as HTTP/1.1 clients expect.
#[test]
fn a_refused_post_keeps_the_connection_alive() {
    let w = World::new();
    let d = Daemon::start(&w, &[]);
    let mut s = std::net::TcpStream::connect(&d.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let body = json!({"request": "list files in ."}).to_string();
    let head = format!(
        "POST /v1/actions HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer kn_not_a_key\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    for _ in 0..3 {
        // The body follows the head a moment later, as on a busy network: the refusal must
        // not close the connection under the client while the body is on its way.
        s.write_all(head.as_bytes()).unwrap();
        std::thread::sleep(Duration::from_millis(200));
        s.write_all(body.as_bytes()).unwrap();
        let (status, head) = read_one(&mut s);
        assert_eq!(status, 401);
        assert!(!head.contains("connection: close"), "{head}");
    }
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let (status, _) = read_one(&mut s);
    assert_eq!(status, 200, "the same connection still answers");
}

/// The daemon's config with one model provider at `url` (one try per call).
pub(crate) fn with_model(w: &World, url: &str) {
    w.config(
        &format!(
            "[llm.retry]\nmax_attempts = 1\n\n[[llm.providers]]\nname = \"local\"\nbase_url = \"{url}\"\nlanes = {{ fast = \"local-model\" }}\n"
        ),
    );
}

/// Polls the agent over the socket until `ok` holds.
fn agent_until(d: &Daemon, id: &str, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let v = d.local("GET", &format!("/v1/agents/{id}"), None).json();
        if ok(&v) {
            return v;
        }
        assert!(Instant::now() < until, "the agent never {what}: {v}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn agents_survive_a_sigkill_of_the_daemon_and_resume_from_their_snapshots() {
    use crate::fake_llm::plan;
    use kernos_llm::testing::FakeServer;
    let w = World::new();
    w.file("notes.txt", "the backup disk is alpha-7");
    let llm = FakeServer::start(vec![
        plan(
            &[(
                "fs.read",
                vec![("path", json!("notes.txt"))],
                "read the notes",
            )],
            json!({"done": false}),
        ),
        // Still on its way when the daemon is killed.
        plan(&[], json!({"done": true, "message": "never seen"})).after(Duration::from_secs(20)),
    ]);
    with_model(&w, &llm.v1());
    let mut d = Daemon::start(&w, &[]);
    let out = w
        .cmd(&[
            "agent",
            "spawn",
            "--max-steps",
            "5",
            "what does the backup use?",
        ])
        .current_dir(&w.cwd)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    let id = shown
        .lines()
        .find_map(|l| l.strip_prefix("spawned: "))
        .unwrap_or_else(|| panic!("{shown}"))
        .trim()
        .to_owned();
    agent_until(&d, &id, "ran its first step", |v| v["used"]["steps"] == 1);
    let until = Instant::now() + Duration::from_secs(10);
    while llm.count() < 2 {
        assert!(Instant::now() < until, "no second model call");
        std::thread::sleep(Duration::from_millis(10));
    }
    d.signal(libc::SIGKILL);

    llm.push(plan(
        &[],
        json!({"done": true, "message": "It uses alpha-7."}),
    ));
    let d = Daemon::start(&w, &[]);
    let v = agent_until(&d, &id, "finished", |v| v["state"] == "finished");
    assert_eq!(v["answer"], "It uses alpha-7.", "{v}");
    assert_eq!(v["used"]["steps"], 1, "{v}");
    // The step ran exactly once, before the kill; the turn in flight was asked again.
    let actions = v["actions"].as_array().unwrap();
    assert_eq!(actions.len(), 1, "{v}");
    let a = d
        .local(
            "GET",
            &format!("/v1/state/actions/{}", actions[0].as_str().unwrap()),
            None,
        )
        .json();
    let started = a["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "step.started")
        .count();
    assert_eq!(
        (a["status"].as_str(), started),
        (Some("committed"), 1),
        "{a}"
    );
    assert!(
        llm.requests()
            .last()
            .unwrap()
            .last_user()
            .contains("alpha-7")
    );
    // The CLI lists it with its state and budget used.
    let out = w.cmd(&["agents"]).output().unwrap();
    let list = text(&out.stdout);
    assert!(list.contains("finished") && list.contains("1/5"), "{list}");
}

/// `kernos lease grant|show|renew|revoke` and `kernos leases` go through the daemon: a key's
/// change inside the granted lease runs without an approval, and after `kernos lease revoke`
/// the same change waits for one.
#[test]
fn leases_from_the_cli_spare_asking_until_revoked() {
    let w = World::new();
    let without = w.run(&["leases"]);
    assert!(!without.status.success());
    assert!(
        text(&without.stderr).contains("kernos serve"),
        "{}",
        text(&without.stderr)
    );
    let d = Daemon::start(&w, &[]);
    let op = new_key(&w, "local", "operator");
    let op_id = op.split('_').nth(1).unwrap();
    let grantee = format!("key:{op_id}");
    let cwd = w.cwd.display().to_string();
    let out = w.run(&[
        "--json",
        "lease",
        "grant",
        "--grantee",
        &grantee,
        "--action",
        "fs.*",
        "--path",
        &cwd,
        "--max-risk",
        "medium",
        "--ttl",
        "1h",
        "--max-steps",
        "5",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let lease: Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = lease["id"].as_str().unwrap().to_owned();
    assert_eq!(lease["state"], "active", "{lease}");
    assert_eq!(lease["scope"]["paths"], json!([cwd]));

    let f = w.file("old.log", "x");
    let a = submit(&d, &op, json!({"request": "delete old.log", "cwd": cwd}));
    assert_eq!(d.finished(&op, &a)["status"], "committed");
    assert!(!f.exists(), "ran under the lease, nobody asked");

    let shown = w.run(&["lease", "show", &id]);
    let shown = text(&shown.stdout);
    assert!(
        shown.contains("used       1 steps") && shown.contains("of 5 steps"),
        "{shown}"
    );
    let listed = text(&w.run(&["leases", "--grantee", &grantee]).stdout);
    assert!(
        listed.contains(&id) && listed.contains("active"),
        "{listed}"
    );
    let renewed = w.run(&["lease", "renew", &id, "--ttl", "2h"]);
    assert!(renewed.status.success(), "{}", text(&renewed.stderr));
    // Two hours from the renewal, shown to the minute (a second may pass before it prints).
    let renewed = text(&renewed.stdout);
    assert!(
        renewed.contains("expires in 1h 59m") || renewed.contains("expires in 2h"),
        "{renewed}"
    );

    let revoked = w.run(&["lease", "revoke", &id]);
    assert!(revoked.status.success(), "{}", text(&revoked.stderr));
    assert!(text(&revoked.stdout).contains("(revoked)"));
    let g = w.file("new.log", "x");
    let b = submit(&d, &op, json!({"request": "delete new.log", "cwd": cwd}));
    d.pending(&op, &b);
    assert!(
        g.exists(),
        "without the lease the change waits for a person"
    );
    let again = w.run(&["lease", "revoke", &id]);
    assert!(!again.status.success());
    assert!(
        text(&again.stderr).contains("already revoked"),
        "{}",
        text(&again.stderr)
    );
}

#[test]
fn schedules_from_the_cli_store_the_plan_shown_and_run_in_the_daemon() {
    let w = World::new();
    w.file("a.txt", "a");
    let d = Daemon::start(&w, &[]);
    // Without a terminal to ask and without --yes, nothing is stored.
    let refused = w
        .cmd(&["schedule", "add", "every 1 seconds", "list files in ."])
        .current_dir(&w.cwd)
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(
        text(&refused.stdout).contains("plan:"),
        "the plan is shown first: {}",
        text(&refused.stdout)
    );
    assert!(
        text(&refused.stderr).contains("--yes"),
        "{}",
        text(&refused.stderr)
    );
    assert_eq!(d.local("GET", "/v1/schedules", None).json(), json!([]));

    let out = w
        .cmd(&[
            "schedule",
            "add",
            "--yes",
            "every 1 seconds",
            "list files in .",
        ])
        .current_dir(&w.cwd)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let id = text(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("stored: "))
        .unwrap()
        .trim()
        .to_owned();
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let actions = d.local("GET", "/v1/state/actions", None).json();
        if actions
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["status"] == "committed")
        {
            break;
        }
        assert!(Instant::now() < until, "the schedule never ran: {actions}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let listed = text(&w.cmd(&["schedule", "list"]).output().unwrap().stdout);
    assert!(
        listed.contains(&id[id.len() - 8..]) && listed.contains("every second"),
        "{listed}"
    );
    let paused = w
        .cmd(&["schedule", "pause", &id[id.len() - 8..]])
        .output()
        .unwrap();
    assert!(
        text(&paused.stdout).contains("(paused)"),
        "{}",
        text(&paused.stdout)
    );
    let removed = w.cmd(&["schedule", "remove", &id]).output().unwrap();
    assert!(removed.status.success(), "{}", text(&removed.stderr));
    assert_eq!(d.local("GET", "/v1/schedules", None).json(), json!([]));
}

const HOOK_SECRET: &str = "a-shared-secret-of-some-length";

/// A loopback webhook receiver (one thread, plain HTTP/1.1): the `event` of every
/// notification whose signature checks out; a bad signature gets 401 and is not kept.
fn webhook_receiver() -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", l.local_addr().unwrap());
    let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let keep = got.clone();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut headers = std::collections::HashMap::new();
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            loop {
                line.clear();
                if r.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
                    break;
                }
                if let Some((k, v)) = line.split_once(':') {
                    headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
                }
            }
            let n: usize = headers
                .get("content-length")
                .map_or(0, |v| v.parse().unwrap());
            let mut body = vec![0; n];
            r.read_exact(&mut body).unwrap();
            let h = |k: &str| headers.get(k).cloned().unwrap_or_default();
            let ok = kernos_monitor::webhook::verify(
                HOOK_SECRET.as_bytes(),
                &h("x-kernos-timestamp"),
                &body,
                &h("x-kernos-signature"),
                std::time::SystemTime::now(),
                Duration::from_secs(300),
            );
            if ok {
                let v: Value = serde_json::from_slice(&body).unwrap();
                keep.lock()
                    .unwrap()
                    .push(v["event"].as_str().unwrap().to_owned());
            }
            let status = if ok { "200 OK" } else { "401 Unauthorized" };
            let _ = write!(
                s,
                "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
        }
    });
    (url, got)
}

/// `kernos serve` in a private mount namespace where `tmpfs` is a fresh 1 MiB tmpfs that is
/// 900 KiB full (only that daemon sees it; the test reads it through /proc/<pid>/root).
fn serve_over_a_full_tmpfs(w: &World, tmpfs: &std::path::Path) -> Daemon {
    let script = format!(
        "mount -t tmpfs -o size=1m kernos-test {t} && head -c 900k /dev/zero > {t}/fill && exec \"$0\" serve --listen 127.0.0.1:0",
        t = tmpfs.display()
    );
    let mut c = w.program("unshare");
    c.args(["--mount", "--propagation", "private", "sh", "-c", &script]);
    c.arg(env!("CARGO_BIN_EXE_kernos"));
    Daemon::spawn(w, c)
}

#[test]
fn a_monitor_on_a_filling_tmpfs_waits_for_approval_then_cleans_up_under_its_lease() {
    let w = World::new();
    let tmpfs = w.root().join("tmpfs");
    std::fs::create_dir_all(&tmpfs).unwrap();
    let (hook, got) = webhook_receiver();
    w.config(
        &format!(
            "[[server.monitors]]\nname = \"tmpfs-full\"\nkind = \"disk\"\nmount = \"{t}\"\nthreshold = 80\nclear_below = 50\ninterval = \"200ms\"\n\
             [server.monitors.remediation]\nplan = {{ steps = [{{ tool = \"fs\", action = \"delete\", args = {{ path = \"{{mount}}/fill\" }} }}] }}\n\n\
             [[server.webhooks]]\nurl = \"{hook}\"\nsecret = \"{HOOK_SECRET}\"\nbackoff_ms = 50\n",
            t = tmpfs.display()
        ),
    );
    let wait = |what: &str, ok: &dyn Fn() -> bool| {
        let until = Instant::now() + Duration::from_secs(20);
        while !ok() {
            assert!(Instant::now() < until, "{what} never happened");
            std::thread::sleep(Duration::from_millis(50));
        }
    };

    // No lease: the cleanup waits for a person, the receiver is told (signed), nothing is freed.
    let mut d = serve_over_a_full_tmpfs(&w, &tmpfs);
    let fill = |d: &Daemon| {
        std::path::PathBuf::from(format!("/proc/{}/root{}/fill", d.pid(), tmpfs.display()))
    };
    wait("the cleanup asking", &|| {
        !d.local("GET", "/v1/state/approvals", None)
            .json()
            .as_array()
            .unwrap()
            .is_empty()
    });
    let a = d.local("GET", "/v1/state/approvals", None).json()[0].clone();
    assert_eq!(
        (a["name"].as_str(), a["requested_by"].as_str()),
        (Some("fs.delete"), Some("monitor:tmpfs-full")),
        "{a}"
    );
    assert!(fill(&d).exists(), "nothing ran without approval");
    wait("signed notifications", &|| {
        let g = got.lock().unwrap();
        g.contains(&"monitor.fired".to_owned()) && g.contains(&"approval.waiting".to_owned())
    });

    // With a lease for the monitor, the next daemon (a fresh, full tmpfs) cleans up unasked.
    let out = w.run(&[
        "lease",
        "grant",
        "--grantee",
        "monitor:tmpfs-full",
        "--action",
        "fs.delete",
        "--path",
        &tmpfs.display().to_string(),
        "--max-risk",
        "medium",
        "--ttl",
        "1h",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(d.signal(libc::SIGTERM).success());
    let d = serve_over_a_full_tmpfs(&w, &tmpfs);
    wait("the space freed", &|| !fill(&d).exists());
    wait("the monitor clearing", &|| {
        d.local("GET", "/v1/monitors", None).json()[0]["state"] == "ok"
    });
    let m = d.local("GET", "/v1/monitors", None).json();
    let action = m[0]["remediation"].as_str().unwrap().to_owned();
    let detail = || {
        d.local("GET", &format!("/v1/state/actions/{action}"), None)
            .json()
    };
    wait("the cleanup's end", &|| detail()["status"] == "committed");
    let done = detail();
    assert!(done.to_string().contains("within lease"), "{done}");
    // Journaled and undoable: the file comes back onto the tmpfs.
    let tx = done["tx"].as_str().unwrap().to_owned();
    let r = d.local(
        "POST",
        "/v1/actions",
        Some(json!({"undo": tx, "auto_approve": true})),
    );
    assert_eq!(r.status, 202, "{}", text(&r.body));
    wait("the undo", &|| fill(&d).exists());
}

#[test]
fn kernos_watch_shows_the_monitors_then_follows_what_happens() {
    let w = World::new();
    w.config(
        &format!(
            "[[server.monitors]]\nname = \"disk-here\"\nkind = \"disk\"\nmount = \"{}\"\nthreshold = 0.1\nclear_below = 0.05\ninterval = \"200ms\"\n",
            w.cwd.display()
        ),
    );
    let d = Daemon::start(&w, &[]);
    let until = Instant::now() + Duration::from_secs(20);
    while d.local("GET", "/v1/monitors", None).json()[0]["state"] != "fired" {
        assert!(Instant::now() < until, "the monitor never fired");
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut watch = w.cmd(&["watch"]).stdout(Stdio::piped()).spawn().unwrap();
    let mut out = BufReader::new(watch.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert!(
        line.contains("disk-here") && line.contains("fired"),
        "{line}"
    );
    while !line.contains("following events") {
        line.clear();
        out.read_line(&mut line).unwrap();
    }
    let a = d.local(
        "POST",
        "/v1/actions",
        Some(json!({"request": "list files in .", "cwd": w.cwd.display().to_string()})),
    );
    let action = a.json()["action"].as_str().unwrap().to_owned();
    loop {
        line.clear();
        assert!(out.read_line(&mut line).unwrap() > 0, "watch ended");
        if line.contains("action.finished") {
            assert!(
                line.contains(&action) && line.contains("committed"),
                "{line}"
            );
            break;
        }
    }
    let _ = watch.kill();
    let _ = watch.wait();
}
