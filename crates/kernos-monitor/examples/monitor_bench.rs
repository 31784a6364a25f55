//! Measures what issue 16 promises of monitors:
//!
//! - detection latency of the file-change and log-pattern monitors: from the cause (a file
//!   created, a matching line appended) to the `Fired` callback; p50 and p99 of 200 causes,
//!   the median of 3 runs;
//! - idle cost of 100 configured monitors: CPU from `/proc/self/stat` (utime + stime, in
//!   10 ms ticks) and the RSS they add (`/proc/self/status`), over 30 s with the spec's
//!   default intervals (every monitor is read once in that span) and over 10 s with 1 s
//!   intervals.
//!
//! Run: `cargo run --release -p kernos-monitor --example monitor_bench`
//! (`-- --quick` for 50 causes and 3 s spans).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a bench: a panic is a failed run

use std::io::Write;
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use kernos_monitor::{MonitorSpec, Runner, Update, parse_monitors};

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let causes = if quick { 50 } else { 200 };

    let files = median_of_3(|| file_change_latencies(causes));
    println!(
        "file_changes detection latency ({causes} causes, median of 3 runs): p50 {:.2} ms, p99 {:.2} ms",
        files.0, files.1
    );
    let logs = median_of_3(|| log_pattern_latencies(causes));
    println!(
        "log_pattern detection latency ({causes} causes, median of 3 runs): p50 {:.2} ms, p99 {:.2} ms",
        logs.0, logs.1
    );
    for (interval, secs) in [(None, 30), (Some("1s"), 10)] {
        let idle = Duration::from_secs(if quick { 3 } else { secs });
        let (cpu, rss_kib) = idle_cost(interval, idle);
        println!(
            "idle cost of 100 monitors (intervals: {}) over {} s: CPU {cpu:.3} % of one core, RSS +{:.2} MiB",
            interval.unwrap_or("spec defaults, 30s"),
            idle.as_secs(),
            rss_kib as f64 / 1024.0
        );
    }
}

/// Runs `f` three times and returns the median p50 and the median p99.
fn median_of_3(f: impl Fn() -> Vec<Duration>) -> (f64, f64) {
    let mut p50s = Vec::new();
    let mut p99s = Vec::new();
    for _ in 0..3 {
        let mut lat = f();
        lat.sort();
        p50s.push(ms(percentile(&lat, 0.50)));
        p99s.push(ms(percentile(&lat, 0.99)));
    }
    p50s.sort_by(f64::total_cmp);
    p99s.sort_by(f64::total_cmp);
    (p50s[1], p99s[1])
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn start(specs: Vec<MonitorSpec>) -> (Runner, mpsc::Receiver<(Instant, Update)>) {
    let (tx, rx) = mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    let runner = Runner::start(specs, move |u| {
        let _ = tx.lock().unwrap().send((Instant::now(), u));
    })
    .unwrap();
    (runner, rx)
}

/// Waits for the next `Fired` and returns when the callback saw it; then for the `Cleared`
/// that re-arms the monitor (its 1 ms window empties at the next 100 ms evaluation).
fn fired_then_cleared(rx: &mpsc::Receiver<(Instant, Update)>) -> Instant {
    let at = loop {
        match rx.recv_timeout(Duration::from_secs(10)).unwrap() {
            (at, Update::Fired(_)) => break at,
            (_, Update::Failed { error, .. }) => panic!("{error}"),
            _ => {}
        }
    };
    loop {
        if let (_, Update::Cleared(_)) = rx.recv_timeout(Duration::from_secs(10)).unwrap() {
            return at;
        }
    }
}

fn file_change_latencies(causes: usize) -> Vec<Duration> {
    let d = tempfile::tempdir().unwrap();
    let (runner, rx) = start(
        parse_monitors(&format!(
            "[[monitor]]\nname = \"tree\"\nkind = \"file_changes\"\npath = \"{}\"\n\
             window = \"1ms\"\ninterval = \"100ms\"\ncooldown = \"0s\"\n",
            d.path().display()
        ))
        .unwrap(),
    );
    std::thread::sleep(Duration::from_millis(200));
    let lat = (0..causes)
        .map(|i| {
            let t0 = Instant::now();
            std::fs::write(d.path().join(format!("f{i}")), "x").unwrap();
            fired_then_cleared(&rx) - t0
        })
        .collect();
    runner.stop();
    lat
}

fn log_pattern_latencies(causes: usize) -> Vec<Duration> {
    let d = tempfile::tempdir().unwrap();
    let log = d.path().join("app.log");
    std::fs::write(&log, "").unwrap();
    let (runner, rx) = start(
        parse_monitors(&format!(
            "[[monitor]]\nname = \"errors\"\nkind = \"log_pattern\"\npath = \"{}\"\n\
             pattern = \"ERROR\"\nwindow = \"1ms\"\ninterval = \"100ms\"\ncooldown = \"0s\"\n",
            log.display()
        ))
        .unwrap(),
    );
    std::thread::sleep(Duration::from_millis(200));
    let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    let lat = (0..causes)
        .map(|i| {
            writeln!(f, "info {i}").unwrap();
            let t0 = Instant::now();
            writeln!(f, "ERROR {i}").unwrap();
            fired_then_cleared(&rx) - t0
        })
        .collect();
    runner.stop();
    lat
}

/// 100 monitors of the kinds that need nothing outside this machine.
fn hundred_monitors(dir: &Path, interval: Option<&str>) -> Vec<MonitorSpec> {
    let every = interval
        .map(|i| format!("interval = \"{i}\"\n"))
        .unwrap_or_default();
    let cert = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/localhost-cert.pem");
    let mut toml = String::new();
    let mut add = |n: usize, body: &dyn Fn(usize) -> String| {
        for i in 0..n {
            toml.push_str(&format!(
                "[[monitor]]\nname = \"m{}\"\n{}\n{every}",
                toml.matches("[[monitor]]").count(),
                body(i)
            ));
        }
    };
    let d = dir.display();
    add(15, &|_| {
        format!("kind = \"disk\"\nmount = \"{d}\"\nthreshold = 99.9")
    });
    add(15, &|_| {
        format!("kind = \"inodes\"\nmount = \"{d}\"\nthreshold = 99.9")
    });
    add(10, &|_| "kind = \"memory\"\nthreshold = 99.9".into());
    add(5, &|_| "kind = \"swap\"\nthreshold = 99.9".into());
    add(5, &|_| "kind = \"load\"\nthreshold = 1000".into());
    add(10, &|i| {
        format!("kind = \"process\"\nprocess = \"kernos-bench-{i}\"\nthreshold = 2")
    });
    add(5, &|i| {
        format!("kind = \"service\"\nunit = \"bench-{i}.service\"\nthreshold = 2")
    });
    add(10, &|i| {
        format!("kind = \"port\"\nport = {}\nthreshold = 2", 40000 + i)
    });
    add(5, &|_| {
        format!(
            "kind = \"tls_expiry\"\nfile = \"{}\"\nthreshold = 1",
            cert.display()
        )
    });
    add(10, &|i| {
        let log = dir.join(format!("log{i}.log"));
        std::fs::write(&log, "").unwrap();
        format!(
            "kind = \"log_pattern\"\npath = \"{}\"\npattern = \"ERROR\"\nthreshold = 1000",
            log.display()
        )
    });
    add(10, &|i| {
        let sub = dir.join(format!("tree{i}"));
        std::fs::create_dir_all(&sub).unwrap();
        format!(
            "kind = \"file_changes\"\npath = \"{}\"\nthreshold = 1000",
            sub.display()
        )
    });
    let specs = parse_monitors(&toml).unwrap();
    assert_eq!(specs.len(), 100);
    specs
}

/// CPU (% of one core) and RSS added (KiB) while 100 monitors run for `span`.
fn idle_cost(interval: Option<&str>, span: Duration) -> (f64, u64) {
    let d = tempfile::tempdir().unwrap();
    let specs = hundred_monitors(d.path(), interval);
    let rss0 = rss_kib();
    let (runner, rx) = start(specs);
    // The first readings (all due at start) are part of starting, not of idling.
    std::thread::sleep(Duration::from_millis(500));
    let (cpu0, t0) = (cpu_ticks(), Instant::now());
    std::thread::sleep(span);
    let (cpu1, elapsed) = (cpu_ticks(), t0.elapsed());
    let rss1 = rss_kib();
    runner.stop();
    let updates: Vec<_> = rx.try_iter().collect();
    assert!(
        updates
            .iter()
            .all(|(_, u)| !matches!(u, Update::Failed { .. })),
        "{updates:?}"
    );
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let cpu = (cpu1 - cpu0) as f64 / hz / elapsed.as_secs_f64() * 100.0;
    (cpu, rss1.saturating_sub(rss0))
}

/// utime + stime of this process, in clock ticks.
fn cpu_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 of stat; `after` starts at field 3.
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap()
}
