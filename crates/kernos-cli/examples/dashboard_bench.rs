//! Dashboard bench for `scripts/bench-dashboard`: a headless chromium signed in to a running
//! daemon's dashboard, on the Activity view, while read-only actions are submitted for the
//! same organisation. Measures the quality bar of the page:
//!
//! - idle: single actions one at a time; event-to-DOM lag (journal `ts_ms` to the row being in
//!   the page) p50/p95;
//! - load: EVENTS_PER_S events a second for SECONDS (the actions' rate is set from the events
//!   each action journaled in the idle phase); a row every 5 s with the daemon's head, the
//!   page's last sequence number and backlog, heap, DOM rows, events kept and the lag p95 of
//!   the interval;
//! - after the load: how long until the page has the organisation's last event, and whether
//!   anything arrived twice.
//!
//!   cargo run --release -p kernos-cli --example dashboard_bench -- ADDR KEY [SECONDS] [EVENTS_PER_S]
//!
//! Lag is what the page measures itself (`window.kernosStats()`, a ring of the last 4,096
//! samples, read and reset every 5 s): the run's p95 and p99 are the worst interval's (an
//! upper bound), its p50 the median interval's. `KERNOS_BENCH_WITNESS=1` adds a second
//! measurement over every row: a MutationObserver on the list notes when each sequence number
//! first enters the DOM, joined with the `ts_ms` of the same event from the bench's own event
//! stream. It is off by default because its samples, fetched through chromedriver, stay
//! reachable in the page (about 20 KB/s of heap at 1,000 events/s) and would be counted as the
//! page's memory. The bench's own stream also gives the daemon-side part of the lag (journal
//! to a plain HTTP client).
//!
//! Environment: `KERNOS_BENCH_IDLE` (idle actions, default 50), `KERNOS_BENCH_CLIENTS`
//! (submitting connections, default 4), `KERNOS_BENCH_SUMMARY=FILE` (appends one line of
//! `name=value` figures, for the script's medians over several runs). For experiments:
//! `KERNOS_BENCH_INJECT=JS` runs JS in the page before signing in (e.g. a `fetch` wrapper that
//! refuses some paths), `KERNOS_BENCH_QUIET=1` asks the page nothing between 10 s and the end
//! of the load (rows and the backlog then cover those two points only, the witness's lag the
//! first 10 s).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark: a panic is a failed run

#[path = "../tests/cli/browser.rs"]
#[allow(dead_code)] // the tests' helpers, of which the bench uses a few
mod browser;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use browser::Browser;

/// One read-only action: journals a handful of events and touches nothing.
const BODY: &str = r#"{"plan":{"steps":[{"tool":"sys","action":"uptime","args":{}}]}}"#;

/// Wall-clock milliseconds, as the journal's `ts_ms` and the page's `Date.now()` count them.
fn wall_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        * 1000.0
}

/// The value at fraction `p` of `v` (sorted here), `NaN` when empty.
fn pct(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

/// One keep-alive HTTP/1.1 connection with the bench key.
struct Conn {
    w: TcpStream,
    r: BufReader<TcpStream>,
    key: String,
}

impl Conn {
    fn new(addr: &str, key: &str) -> Conn {
        let s = TcpStream::connect(addr).unwrap();
        s.set_nodelay(true).unwrap();
        Conn {
            w: s.try_clone().unwrap(),
            r: BufReader::new(s),
            key: key.to_owned(),
        }
    }

    fn call(&mut self, method: &str, path: &str, body: &str) -> (u16, String) {
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: b\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.key,
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

    /// Submits one read-only action, retrying on 429 (queue full).
    fn submit(&mut self) {
        loop {
            match self.call("POST", "/v1/actions", BODY) {
                (202, _) => return,
                (429, _) => std::thread::sleep(Duration::from_millis(20)),
                (s, b) => panic!("POST /v1/actions answered {s}: {b}"),
            }
        }
    }

    /// The daemon's newest journal sequence number (all organisations).
    fn head(&mut self) -> u64 {
        let (s, b) = self.call("GET", "/healthz", "");
        assert_eq!(s, 200, "{b}");
        serde_json::from_str::<Value>(&b).unwrap()["head"]
            .as_u64()
            .unwrap()
    }

    /// Waits until the daemon's head has not moved for `quiet`, and answers it.
    fn settle(&mut self, quiet: Duration) -> u64 {
        let mut last = self.head();
        let mut since = Instant::now();
        loop {
            std::thread::sleep(Duration::from_millis(50));
            let h = self.head();
            if h != last {
                (last, since) = (h, Instant::now());
            } else if since.elapsed() >= quiet {
                return h;
            }
        }
    }
}

/// The bench's own event stream with the same key: the organisation's events as a plain HTTP
/// client sees them (which the page should reach), with each event's `ts_ms`.
struct Reference {
    /// seq -> journal ts_ms.
    ts: Mutex<HashMap<u64, f64>>,
    /// Wall-clock arrival minus `ts_ms`, per event, in order.
    lag: Mutex<Vec<(u64, f64)>>,
    last: AtomicU64,
}

impl Reference {
    fn start(addr: &str, key: &str) -> Arc<Reference> {
        let me = Arc::new(Reference {
            ts: Mutex::new(HashMap::new()),
            lag: Mutex::new(Vec::new()),
            last: AtomicU64::new(0),
        });
        let s = TcpStream::connect(addr).unwrap();
        s.set_nodelay(true).unwrap();
        let mut w = s.try_clone().unwrap();
        write!(
            w,
            "GET /v1/events HTTP/1.1\r\nHost: b\r\nAuthorization: Bearer {key}\r\n\r\n"
        )
        .unwrap();
        let r = me.clone();
        std::thread::spawn(move || {
            let mut rd = BufReader::new(s);
            let mut line = String::new();
            let mut id = 0u64;
            loop {
                line.clear();
                if rd.read_line(&mut line).unwrap_or(0) == 0 {
                    return;
                }
                if let Some(v) = line.strip_prefix("id:") {
                    id = v.trim().parse().unwrap_or(0);
                } else if let Some(d) = line.strip_prefix("data:") {
                    let now = wall_ms();
                    let Ok(e) = serde_json::from_str::<Value>(d.trim()) else {
                        continue;
                    };
                    let Some(ts) = e["ts_ms"].as_f64() else {
                        continue;
                    };
                    r.ts.lock().unwrap().insert(id, ts);
                    r.lag.lock().unwrap().push((id, now - ts));
                    r.last.store(id, Ordering::Release);
                }
            }
        });
        me
    }

    fn last(&self) -> u64 {
        self.last.load(Ordering::Acquire)
    }

    /// Daemon-side lag (ms) of the events with sequence numbers in `(from, to]`.
    fn lag_between(&self, from: u64, to: u64) -> Vec<f64> {
        self.lag
            .lock()
            .unwrap()
            .iter()
            .filter(|(s, _)| *s > from && *s <= to)
            .map(|(_, l)| *l)
            .collect()
    }
}

/// Notes, in the page, when each sequence number first enters the activity list's DOM. Rows
/// are a reused pool, so a row is new when its `data-seq` is above every one seen before.
const WITNESS: &str = r##"
if (!window.__bench) {
  const w = (window.__bench = { seen: [], max: -1 });
  const ul = document.querySelector("#events");
  new MutationObserver(() => {
    if (w.off) return;
    const now = Date.now();
    const prev = w.max;
    for (const li of ul.children) {
      const seq = Number(li.dataset.seq);
      if (seq > prev) {
        w.seen.push(seq, now);
        if (seq > w.max) w.max = seq;
      }
    }
  }).observe(ul, { subtree: true, childList: true, attributes: true, attributeFilter: ["data-seq"] });
}
"##;

/// The signed-in dashboard page.
struct Page {
    b: Browser,
    /// Witness samples: (seq, wall ms when its row entered the DOM).
    seen: Vec<(u64, f64)>,
}

impl Page {
    /// `kernosStats()` as JSON.
    fn stats(&self) -> Value {
        self.b.eval("return window.kernosStats();", vec![])
    }

    fn last_seq(&self) -> u64 {
        self.stats()["lastSeq"].as_u64().unwrap_or(0)
    }

    fn reset_lag(&self) {
        self.b.eval("window.kernosStats.resetLag();", vec![]);
    }

    /// Moves the witness's samples into `seen` and answers how many there were.
    fn drain(&mut self) -> usize {
        let v = self.b.eval(
            "const w = window.__bench; const s = w ? w.seen.join(',') : ''; if (w) w.seen = []; return s;",
            vec![],
        );
        self.keep(&v)
    }

    /// Keeps witness samples sent as one string `seq,ms,seq,ms,…`.
    fn keep(&mut self, v: &Value) -> usize {
        let nums: Vec<f64> = v
            .as_str()
            .unwrap()
            .split(',')
            .filter(|x| !x.is_empty())
            .map(|x| x.parse().unwrap())
            .collect();
        for p in nums.chunks(2) {
            self.seen.push((p[0] as u64, p[1]));
        }
        nums.len() / 2
    }

    /// `kernosStats()` of the interval since the last sample (its lag samples are then
    /// forgotten), and the witness's samples moved into `seen`: one call into the page (every
    /// call is work for the page, and chromedriver's calls have a cost of their own).
    fn sample(&mut self) -> Value {
        let v = self.b.eval(
            "const w = window.__bench; const s = w ? w.seen.join(',') : ''; if (w) w.seen = [];
             const st = window.kernosStats(); window.kernosStats.resetLag(); return [st, s];",
            vec![],
        );
        self.keep(&v[1]);
        v[0].clone()
    }

    /// The JS heap in use after a full garbage collection (`--js-flags=--expose-gc`).
    fn heap_after_gc(&self) -> f64 {
        self.b
            .eval(
                "window.gc(); return performance.memory.usedJSHeapSize;",
                vec![],
            )
            .as_f64()
            .unwrap_or(f64::NAN)
    }

    /// Witness lags (ms) of the events with sequence numbers in `(from, to]`.
    fn lag_between(&self, r: &Reference, from: u64, to: u64) -> Vec<f64> {
        let ts = r.ts.lock().unwrap();
        self.seen
            .iter()
            .filter(|(s, _)| *s > from && *s <= to)
            .filter_map(|(s, t)| ts.get(s).map(|ts| t - ts))
            .collect()
    }
}

/// Starts chromium, signs in with `key` through the page's form and opens `#/activity`.
fn open_page(addr: &str, key: &str) -> Page {
    let b = Browser::start_with(
        "dashboard-bench",
        &["--enable-precise-memory-info", "--js-flags=--expose-gc"],
    )
    .unwrap_or_else(|| panic!("the bench needs chromium and chromedriver on PATH"));
    b.goto(&format!("http://{addr}/"));
    if let Ok(js) = std::env::var("KERNOS_BENCH_INJECT") {
        b.eval(&js, vec![]);
    }
    b.wait_shown("form#signin");
    b.wait_shown("input#key");
    b.type_into("input#key", key);
    b.click("form#signin button:not([type=button]):not([type=reset])");
    b.wait("the page to say who is signed in", |b| {
        b.text("#who").filter(|t| t.contains('·'))
    });
    b.eval("location.hash = '#/activity';", vec![]);
    b.wait_shown("#events-viewport");
    b.wait("the event stream to be live", |b| {
        (b.eval(
            "return document.querySelector('#live').dataset.state;",
            vec![],
        ) == json!("live"))
        .then_some(())
    });
    if std::env::var_os("KERNOS_BENCH_WITNESS").is_some() {
        b.eval(WITNESS, vec![]);
    }
    Page {
        b,
        seen: Vec::new(),
    }
}

/// Figures of one run, printed as the summary.
#[derive(Default)]
struct Summary {
    idle_page: (f64, f64, f64),
    idle: (f64, f64, f64),
    idle_daemon: (f64, f64),
    /// The page's own lag of each 5 s interval: p50, p95, p99, max.
    load_page: Vec<(f64, f64, f64, f64)>,
    load: (f64, f64, f64, f64),
    load_daemon: (f64, f64, f64),
    events_per_action: f64,
    events_per_s: f64,
    max_backlog: u64,
    heap_10s: f64,
    heap_end: f64,
    heap_gc_10s: f64,
    heap_gc_end: f64,
    dom_rows_max: u64,
    kept_end: u64,
    daemon_drain_ms: f64,
    catch_up_ms: f64,
    duplicates: u64,
    reconnects: u64,
    resyncs: u64,
    ordered: bool,
    /// Whether the under-load lag is over every row (the witness), not from the page's own
    /// intervals.
    exact: bool,
}

/// Single actions one at a time: lag with nothing else going on. Answers events per action.
fn idle_phase(page: &mut Page, r: &Reference, c: &mut Conn, n: usize, s: &mut Summary) {
    let head0 = c.settle(Duration::from_millis(300));
    page.drain();
    page.reset_lag();
    for _ in 0..n {
        c.submit();
        std::thread::sleep(Duration::from_millis(200));
    }
    let head1 = c.settle(Duration::from_millis(500));
    wait_for(page, r.last(), Duration::from_secs(30));
    let st = page.stats();
    s.idle_page = (
        st["lagMs"]["p50"].as_f64().unwrap_or(f64::NAN),
        st["lagMs"]["p95"].as_f64().unwrap_or(f64::NAN),
        st["lagMs"]["p99"].as_f64().unwrap_or(f64::NAN),
    );
    page.drain();
    let mut l = page.lag_between(r, head0, head1);
    s.idle = if l.is_empty() {
        s.idle_page
    } else {
        (pct(&mut l, 0.5), pct(&mut l, 0.95), pct(&mut l, 0.99))
    };
    let mut d = r.lag_between(head0, head1);
    s.idle_daemon = (pct(&mut d, 0.5), pct(&mut d, 0.95));
    s.events_per_action = (head1 - head0) as f64 / n as f64;
    println!(
        "idle: {n} actions, {} events ({:.1} per action); event-to-DOM lag p50 {:.1} ms p95 {:.1} ms (page: p50 {:.1} p95 {:.1}, {} samples); daemon-to-client p50 {:.1} ms p95 {:.1} ms",
        head1 - head0,
        s.events_per_action,
        s.idle.0,
        s.idle.1,
        s.idle_page.0,
        s.idle_page.1,
        st["lagMs"]["n"],
        s.idle_daemon.0,
        s.idle_daemon.1,
    );
}

/// Waits until the page has received `seq`; answers false after `patience`.
fn wait_for(page: &Page, seq: u64, patience: Duration) -> bool {
    let until = Instant::now() + patience;
    while page.last_seq() < seq {
        if Instant::now() > until {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

/// Submitters: `clients` connections together submitting `per_s` actions a second, paced,
/// until `stop`. Answers their threads and the count of actions submitted.
fn submitters(
    addr: &str,
    key: &str,
    clients: usize,
    per_s: f64,
    stop: Arc<AtomicBool>,
) -> (Vec<std::thread::JoinHandle<()>>, Arc<AtomicUsize>) {
    let sent = Arc::new(AtomicUsize::new(0));
    let every = Duration::from_secs_f64(clients as f64 / per_s);
    let threads = (0..clients)
        .map(|n| {
            let (addr, key, stop, sent) =
                (addr.to_owned(), key.to_owned(), stop.clone(), sent.clone());
            std::thread::spawn(move || {
                let mut c = Conn::new(&addr, &key);
                let mut due = Instant::now() + every * n as u32 / clients as u32;
                while !stop.load(Ordering::Relaxed) {
                    let now = Instant::now();
                    if due > now {
                        std::thread::sleep(due - now);
                    }
                    due += every;
                    c.submit();
                    sent.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    (threads, sent)
}

/// `rate` events a second for `seconds`, sampled and shown every 5 s; then the catch-up.
fn load_phase(
    page: &mut Page,
    r: &Reference,
    c: &mut Conn,
    (addr, key): (&str, &str),
    seconds: u64,
    rate: f64,
    s: &mut Summary,
) {
    let clients: usize = std::env::var("KERNOS_BENCH_CLIENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4);
    // Quiet: the page is asked nothing between 10 s and the end (is the bench's own polling
    // part of what it measures?).
    let quiet = std::env::var_os("KERNOS_BENCH_QUIET").is_some();
    let per_s = rate / s.events_per_action;
    println!(
        "load: {rate} events/s for {seconds} s = {per_s:.1} actions/s from {clients} connections"
    );
    println!(
        "{:>5} {:>9} {:>9} {:>9} {:>8} {:>9} {:>7} {:>6} {:>9} {:>6}",
        "t s", "events/s", "head", "page", "backlog", "heap MB", "domRows", "kept", "lag p95", "n"
    );
    page.drain();
    page.reset_lag();
    let head0 = c.head();
    let stop = Arc::new(AtomicBool::new(false));
    let t0 = Instant::now();
    let (threads, sent) = submitters(addr, key, clients, per_s, stop.clone());
    let (mut prev_head, mut prev_tick) = (head0, 0);
    for tick in 1..=seconds {
        let due = t0 + Duration::from_secs(tick);
        if let Some(d) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(d);
        }
        // Every 5 s only: each call into the page through chromedriver leaves some heap behind
        // (KERNOS_BENCH_QUIET shows the page's own heap flat without them).
        if (quiet && tick != 10 && tick != seconds) || (tick % 5 != 0 && tick != seconds) {
            continue;
        }
        // The page first, then the daemon: the backlog is never under-counted.
        let st = page.sample();
        let head = c.head();
        let last = st["lastSeq"].as_u64().unwrap_or(0);
        let heap = st["heap"].as_f64().unwrap_or(f64::NAN);
        s.max_backlog = s.max_backlog.max(head.saturating_sub(last));
        s.dom_rows_max = s.dom_rows_max.max(st["domRows"].as_u64().unwrap_or(0));
        if tick == 10 {
            s.heap_10s = heap;
            s.heap_gc_10s = page.heap_after_gc();
            if quiet {
                // The witness would otherwise hold every sample until the end.
                page.b.eval("window.__bench.off = true;", vec![]);
            }
        }
        let lag = &st["lagMs"];
        let f = |k: &str| lag[k].as_f64().unwrap_or(f64::NAN);
        s.load_page.push((f("p50"), f("p95"), f("p99"), f("max")));
        println!(
            "{tick:>5} {:>9.0} {head:>9} {last:>9} {:>8} {:>9.1} {:>7} {:>6} {:>9.1} {:>6}",
            (head - prev_head) as f64 / (tick - prev_tick) as f64,
            head.saturating_sub(last),
            heap / 1e6,
            st["domRows"].as_u64().unwrap_or(0),
            st["kept"].as_u64().unwrap_or(0),
            lag["p95"].as_f64().unwrap_or(f64::NAN),
            lag["n"].as_u64().unwrap_or(0),
        );
        (prev_head, prev_tick) = (head, tick);
    }
    stop.store(true, Ordering::Relaxed);
    let stopped = Instant::now();
    let head_stop = c.head();
    s.events_per_s = (head_stop - head0) as f64 / t0.elapsed().as_secs_f64();
    for t in threads {
        t.join().unwrap();
    }
    let st = page.stats();
    s.heap_end = st["heap"].as_f64().unwrap_or(f64::NAN);
    s.heap_gc_end = page.heap_after_gc();
    catch_up(page, r, c, stopped, s);
    println!(
        "load: {} actions submitted; {} events journaled, {:.0} events/s",
        sent.load(Ordering::Relaxed),
        head_stop - head0,
        s.events_per_s
    );
    page.drain();
    let end = r.last();
    let mut l = page.lag_between(r, head0, end);
    let n = l.len();
    let mut d = r.lag_between(head0, end);
    s.load_daemon = (pct(&mut d, 0.5), pct(&mut d, 0.95), pct(&mut d, 0.99));
    if n > 0 {
        s.load = (
            pct(&mut l, 0.5),
            pct(&mut l, 0.95),
            pct(&mut l, 0.99),
            pct(&mut l, 1.0),
        );
        s.exact = true;
        println!(
            "load: {n} rows entered the DOM ({:.0}% of {} events; rows that scroll past within one frame are never drawn)",
            100.0 * n as f64 / d.len().max(1) as f64,
            d.len()
        );
    } else {
        // From the page's own 5 s intervals: when every interval's p95 is at most X, so is the
        // whole run's; the median of the p50s stands for the run's p50.
        let col = |f: fn(&(f64, f64, f64, f64)) -> f64| -> Vec<f64> {
            s.load_page.iter().map(f).collect()
        };
        let worst = |v: Vec<f64>| v.into_iter().fold(f64::NAN, f64::max);
        s.load = (
            pct(&mut col(|x| x.0), 0.5),
            worst(col(|x| x.1)),
            worst(col(|x| x.2)),
            worst(col(|x| x.3)),
        );
    }
}

/// After the load: how long until the page has the organisation's last event, and until the
/// daemon journaled it.
fn catch_up(page: &Page, r: &Reference, c: &mut Conn, stopped: Instant, s: &mut Summary) {
    let mut trace: Vec<(f64, u64, u64)> = Vec::new(); // (ms since stop, page last, head)
    let mut last_head = 0;
    let mut still = Instant::now();
    loop {
        let head = c.head();
        let last = page.last_seq();
        trace.push((stopped.elapsed().as_secs_f64() * 1000.0, last, head));
        if head != last_head {
            (last_head, still) = (head, Instant::now());
        }
        if still.elapsed() > Duration::from_secs(1) && last >= r.last() {
            break;
        }
        assert!(
            stopped.elapsed() < Duration::from_secs(300),
            "the page did not catch up in 5 minutes: page {last}, daemon {head}, reference stream {}",
            r.last()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let end = r.last();
    s.catch_up_ms = trace
        .iter()
        .find(|t| t.1 >= end)
        .map(|t| t.0)
        .unwrap_or(f64::NAN);
    s.daemon_drain_ms = trace
        .iter()
        .find(|t| t.2 >= last_head)
        .map(|t| t.0)
        .unwrap_or(f64::NAN);
    let st = page
        .b
        .eval("return window.kernosStats({seqs: true});", vec![]);
    s.duplicates = st["duplicates"].as_u64().unwrap_or(u64::MAX);
    s.reconnects = st["reconnects"].as_u64().unwrap_or(0);
    s.resyncs = st["resyncs"].as_u64().unwrap_or(0);
    s.kept_end = st["kept"].as_u64().unwrap_or(0);
    let seqs: Vec<u64> = st["seqs"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default();
    s.ordered = seqs.windows(2).all(|w| w[0] < w[1]);
}

fn mb(b: f64) -> f64 {
    b / 1e6
}

fn print_summary(s: &Summary, rate: f64, seconds: u64) {
    let med = |f: fn(&(f64, f64, f64, f64)) -> f64| {
        let mut v: Vec<f64> = s.load_page.iter().map(f).collect();
        pct(&mut v, 0.5)
    };
    let worst = s.load_page.iter().map(|x| x.1).fold(f64::NAN, f64::max);
    let how = if s.exact {
        "every row, from the witness"
    } else {
        "from the page's 5 s intervals: median p50, worst p95/p99/max"
    };
    println!("summary:");
    println!(
        "  idle lag            p50 {:.1} ms  p95 {:.1} ms  p99 {:.1} ms   (page's own: p50 {:.1} p95 {:.1}; daemon to a plain client p50 {:.1} p95 {:.1})",
        s.idle.0,
        s.idle.1,
        s.idle.2,
        s.idle_page.0,
        s.idle_page.1,
        s.idle_daemon.0,
        s.idle_daemon.1
    );
    println!(
        "  under-load lag      p50 {:.1} ms  p95 {:.1} ms  p99 {:.1} ms  max {:.1} ms   ({how}; page's own, per 5 s: median p50 {:.1}, median p95 {:.1}, worst p95 {:.1}; daemon to a plain client p50 {:.1} p95 {:.1} p99 {:.1})",
        s.load.0,
        s.load.1,
        s.load.2,
        s.load.3,
        med(|x| x.0),
        med(|x| x.1),
        worst,
        s.load_daemon.0,
        s.load_daemon.1,
        s.load_daemon.2
    );
    println!(
        "  events/s            {:.0} achieved (asked {rate} for {seconds} s; {:.1} events per action)",
        s.events_per_s, s.events_per_action
    );
    println!(
        "  max backlog         {} events (daemon head - page lastSeq, sampled every 5 s)",
        s.max_backlog
    );
    println!(
        "  JS heap             {:.1} MB at 10 s, {:.1} MB at the end; after a full GC {:.1} MB at 10 s, {:.1} MB at the end",
        mb(s.heap_10s),
        mb(s.heap_end),
        mb(s.heap_gc_10s),
        mb(s.heap_gc_end)
    );
    println!(
        "  DOM rows            {} at most; {} events kept at the end",
        s.dom_rows_max, s.kept_end
    );
    println!(
        "  catch-up            {:.0} ms after the load stopped (the daemon journaled its last event at {:.0} ms)",
        s.catch_up_ms, s.daemon_drain_ms
    );
    println!(
        "  duplicates          {}   reconnects {}   resyncs {}   kept seqs strictly increasing: {}",
        s.duplicates, s.reconnects, s.resyncs, s.ordered
    );
    println!(
        "  first load          {} bytes gzip",
        kernos_server::dashboard::first_load_bytes()
    );
    if let Some(path) = std::env::var_os("KERNOS_BENCH_SUMMARY") {
        let line = format!(
            "idle_p50={:.1} idle_p95={:.1} load_p50={:.1} load_p95={:.1} load_p99={:.1} events_per_s={:.0} max_backlog={} heap_10s_mb={:.1} heap_end_mb={:.1} heap_gc_10s_mb={:.1} heap_gc_end_mb={:.1} dom_rows={} catch_up_ms={:.0} duplicates={}\n",
            s.idle.0,
            s.idle.1,
            s.load.0,
            s.load.1,
            s.load.2,
            s.events_per_s,
            s.max_backlog,
            mb(s.heap_10s),
            mb(s.heap_end),
            mb(s.heap_gc_10s),
            mb(s.heap_gc_end),
            s.dom_rows_max,
            s.catch_up_ms,
            s.duplicates
        );
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        f.write_all(line.as_bytes()).unwrap();
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let addr = args[1].clone();
    let key = args[2].clone();
    let seconds: u64 = args.get(3).map(|s| s.parse().unwrap()).unwrap_or(60);
    let rate: f64 = args.get(4).map(|s| s.parse().unwrap()).unwrap_or(1000.0);
    let idle_n: usize = std::env::var("KERNOS_BENCH_IDLE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let r = Reference::start(&addr, &key);
    let mut c = Conn::new(&addr, &key);
    let mut page = open_page(&addr, &key);
    let ua = page.b.user_agent();
    println!("dashboard bench: {addr}, {ua}");
    let mut s = Summary::default();
    idle_phase(&mut page, &r, &mut c, idle_n, &mut s);
    load_phase(&mut page, &r, &mut c, (&addr, &key), seconds, rate, &mut s);
    print_summary(&s, rate, seconds);
}
