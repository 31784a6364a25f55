//! Load generator for `scripts/bench-daemon`: N concurrent keep-alive clients submit read-only
//! actions to a running daemon on loopback while one SSE subscriber timestamps each action's
//! first event. Prints intent-to-first-event percentiles, accepted actions per second, and the
//! daemon's RSS before and after.
//!
//!   cargo run --release -p kernos-server --example loadgen -- ADDR KEY PID [CLIENTS] [ACTIONS] [PACED_RATE]
//!
//! The first tenth of the actions (at most 10,000) are sent paced at PACED_RATE actions/s in
//! total (default 1000), the rest as fast as the clients can. Each submits a `sys.uptime` plan,
//! or the body in `KERNOS_BENCH_PLAN`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark: a panic is a failed run

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// The daemon's CPU time so far (user + system, all threads), in ms, from /proc/<pid>/stat.
fn cpu_ms(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let f: Vec<u64> = stat
        .rsplit_once(')')
        .map(|(_, rest)| {
            rest.split_whitespace()
                .map(|x| x.parse().unwrap_or(0))
                .collect()
        })
        .unwrap_or_default();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    // Fields 14 and 15 of stat (utime, stime), counted after the ')' from field 3.
    (f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0)) as f64 * 1000.0 / hz
}

/// One keep-alive HTTP/1.1 connection.
struct Conn {
    w: TcpStream,
    r: BufReader<TcpStream>,
}

impl Conn {
    fn new(addr: &str) -> Conn {
        let s = TcpStream::connect(addr).unwrap();
        s.set_nodelay(true).unwrap();
        Conn {
            w: s.try_clone().unwrap(),
            r: BufReader::new(s),
        }
    }

    fn post(&mut self, path: &str, key: &str, body: &str) -> (u16, String) {
        let req = format!(
            "POST {path} HTTP/1.1\r\nHost: b\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        self.w.write_all(req.as_bytes()).unwrap();
        let mut line = String::new();
        self.r.read_line(&mut line).unwrap();
        let status: u16 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
        let mut len = 0usize;
        loop {
            line.clear();
            self.r.read_line(&mut line).unwrap();
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some(v) = l.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().unwrap();
            }
        }
        let mut b = vec![0; len];
        self.r.read_exact(&mut b).unwrap();
        (status, String::from_utf8_lossy(&b).into_owned())
    }
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let addr = args[1].clone();
    let key = args[2].clone();
    let pid: u32 = args[3].parse().unwrap();
    let clients: usize = args.get(4).map(|s| s.parse().unwrap()).unwrap_or(50);
    let total: usize = args.get(5).map(|s| s.parse().unwrap()).unwrap_or(100_000);
    let paced_rate: f64 = args.get(6).map(|s| s.parse().unwrap()).unwrap_or(1000.0);
    let idle = rss_kib(pid);

    // The subscriber: one SSE stream of action.submitted events, timestamped on arrival.
    let first: Arc<Mutex<HashMap<String, Instant>>> = Arc::new(Mutex::new(HashMap::new()));
    {
        let first = first.clone();
        let s = TcpStream::connect(&addr).unwrap();
        s.set_nodelay(true).unwrap();
        let mut w = s.try_clone().unwrap();
        w.write_all(
            format!(
                "GET /v1/events?prefix=action.submitted HTTP/1.1\r\nHost: b\r\nAuthorization: Bearer {key}\r\n\r\n"
            )
            .as_bytes(),
        )
        .unwrap();
        std::thread::spawn(move || {
            let mut r = BufReader::new(s);
            let mut line = String::new();
            loop {
                line.clear();
                if r.read_line(&mut line).unwrap_or(0) == 0 {
                    return;
                }
                if let Some(d) = line.strip_prefix("data: ") {
                    let now = Instant::now();
                    if let Some(i) = d.find("\"action\":\"") {
                        let id = d[i + 10..i + 36].to_owned();
                        first.lock().unwrap().insert(id, now);
                    }
                }
            }
        });
    }
    std::thread::sleep(Duration::from_millis(300));

    // KERNOS_BENCH_PLAN: another submission body, e.g. a step that touches files (the file
    // tools run on a confined thread; sys.uptime does not).
    let body: &'static str = match std::env::var("KERNOS_BENCH_PLAN") {
        Ok(b) => Box::leak(b.into_boxed_str()),
        Err(_) => r#"{"plan":{"steps":[{"tool":"sys","action":"uptime","args":{}}]}}"#,
    };
    let paced_n = (total / 10).min(10_000);
    // Phase 1: paced, 50 clients at `paced_rate` actions/s in total: latency when the daemon
    // is busy but not saturated.
    let paced = phase(&addr, &key, body, clients, paced_n, Some(paced_rate));
    // Phase 2: closed loop, every client as fast as it can: throughput, and latency at
    // saturation.
    let cpu0 = cpu_ms(pid);
    let sat = phase(&addr, &key, body, clients, total - paced_n, None);
    // The queue drains after the last answer; what it costs is part of the actions' cost.
    std::thread::sleep(Duration::from_secs(3));
    let sat_cpu_us = (cpu_ms(pid) - cpu0) * 1000.0 / sat.sent.len().max(1) as f64;
    let first = first.lock().unwrap();
    let report = |name: &str, r: &Phase| {
        let mut i2f: Vec<f64> = r
            .sent
            .iter()
            .filter_map(|(id, t0)| {
                first
                    .get(id)
                    .map(|t| t.duration_since(*t0).as_secs_f64() * 1000.0)
            })
            .collect();
        let seen = i2f.len();
        println!(
            "{name:<12} {} actions in {:.1} s = {:.0} accepted/s ({} answered 429 and were retried); intent-to-first-event p50 {:.3} ms  p95 {:.3} ms  p99 {:.3} ms ({seen} seen)",
            r.sent.len(),
            r.elapsed.as_secs_f64(),
            r.sent.len() as f64 / r.elapsed.as_secs_f64(),
            r.rejected,
            pct(&mut i2f, 0.50),
            pct(&mut i2f, 0.95),
            pct(&mut i2f, 0.99),
        );
    };
    // KERNOS_BENCH_SAMPLES=FILE: every action's send time (ms since its phase began) and
    // intent-to-first-event (ms), to see when the slow ones happen.
    if let Some(path) = std::env::var_os("KERNOS_BENCH_SAMPLES") {
        let mut out = String::new();
        for (name, r) in [("paced", &paced), ("saturated", &sat)] {
            for (id, t0) in &r.sent {
                if let Some(t) = first.get(id) {
                    out.push_str(&format!(
                        "{name} {:.3} {:.3}\n",
                        t0.duration_since(r.started).as_secs_f64() * 1000.0,
                        t.duration_since(*t0).as_secs_f64() * 1000.0
                    ));
                }
            }
        }
        std::fs::write(path, out).unwrap();
    }
    let after = rss_kib(pid);
    println!("clients      {clients}");
    report(&format!("paced {paced_rate}/s"), &paced);
    report("saturated", &sat);
    println!("daemon CPU per saturated action {sat_cpu_us:.1} µs (user + system, all threads)");
    println!(
        "daemon RSS idle             {:.1} MiB",
        idle as f64 / 1024.0
    );
    println!(
        "daemon RSS after {total} actions {:.1} MiB",
        after as f64 / 1024.0
    );
}

struct Phase {
    started: Instant,
    sent: Vec<(String, Instant)>,
    rejected: usize,
    elapsed: Duration,
}

fn phase(
    addr: &str,
    key: &str,
    body: &'static str,
    clients: usize,
    total: usize,
    rate: Option<f64>,
) -> Phase {
    let next = Arc::new(AtomicUsize::new(0));
    let sent: Arc<Mutex<Vec<(String, Instant)>>> = Arc::new(Mutex::new(Vec::with_capacity(total)));
    let rejected = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let per_client = rate.map(|r| Duration::from_secs_f64(clients as f64 / r));
    let threads: Vec<_> = (0..clients)
        .map(|n| {
            let (addr, key, next, sent, rejected) = (
                addr.to_owned(),
                key.to_owned(),
                next.clone(),
                sent.clone(),
                rejected.clone(),
            );
            std::thread::spawn(move || {
                let mut c = Conn::new(&addr);
                let mut mine = Vec::new();
                // Spread paced clients evenly over one interval.
                let mut due = Instant::now()
                    + per_client
                        .map(|p| p * n as u32 / clients as u32)
                        .unwrap_or_default();
                while next.fetch_add(1, Ordering::Relaxed) < total {
                    if let Some(p) = per_client {
                        let now = Instant::now();
                        if due > now {
                            std::thread::sleep(due - now);
                        }
                        due += p;
                    }
                    loop {
                        let t0 = Instant::now();
                        let (status, b) = c.post("/v1/actions", &key, body);
                        if status == 202 {
                            let i = b.find("\"action\":\"").unwrap();
                            mine.push((b[i + 10..i + 36].to_owned(), t0));
                            break;
                        }
                        // 429 (queue full): back off briefly and retry.
                        rejected.fetch_add(1, Ordering::Relaxed);
                        std::thread::sleep(Duration::from_millis(20));
                    }
                }
                sent.lock().unwrap().extend(mine);
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let elapsed = started.elapsed();
    let sent = std::mem::take(&mut *sent.lock().unwrap());
    Phase {
        started,
        sent,
        rejected: rejected.load(Ordering::Relaxed),
        elapsed,
    }
}
