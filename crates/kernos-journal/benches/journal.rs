//! Journal benchmarks, measured against raw rusqlite in the same run.
//!
//! Run: `cargo bench -p kernos-journal --bench journal` (add `-- --quick` for a short run,
//! `-- --verify-events 1000000` to change the verify size).
//!
//! - single: one event per transaction, `Journal::append` vs a raw INSERT into an equivalent
//!   table (same columns, indexes and pragmas), both with the same durability;
//! - batch: `Journal::append_batch` and the group-commit writer fed by several threads;
//! - verify: `Journal::verify` over a journal of 1,000,000 events.
//!
//! Each figure is the median of several rounds; rounds alternate raw and journal so machine
//! noise hits both alike.

#![allow(clippy::unwrap_used, missing_docs)]

use std::time::{Duration, Instant};

use kernos_core::{ActionId, Actor, NewEvent, TxId};
use kernos_journal::{Durability, GroupCommitter, GroupOptions, Journal, JournalOptions};
use rusqlite::{Connection, params};
use serde_json::json;

struct Args {
    single: usize,
    rounds: usize,
    batch_events: usize,
    verify_events: usize,
}

fn parse_args() -> Args {
    let mut a = Args {
        single: 2000,
        rounds: 5,
        batch_events: 200_000,
        verify_events: 1_000_000,
    };
    let argv: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i < argv.len() {
        let next = argv.get(i + 1).and_then(|v| v.parse().ok());
        match argv[i].as_str() {
            "--quick" => {
                a = Args {
                    single: 300,
                    rounds: 3,
                    batch_events: 50_000,
                    verify_events: 100_000,
                };
            }
            "--single" => a.single = next.unwrap_or(a.single),
            "--rounds" => a.rounds = next.unwrap_or(a.rounds),
            "--batch-events" => a.batch_events = next.unwrap_or(a.batch_events),
            "--verify-events" => a.verify_events = next.unwrap_or(a.verify_events),
            _ => {}
        }
        i += 1;
    }
    a
}

fn event(i: usize, action: ActionId, tx: TxId) -> NewEvent {
    NewEvent::new("step.finished", Actor::user("bench"))
        .action(action)
        .tx(tx)
        .payload(json!({"step": i % 7, "tool": "fs", "action": "largest", "rows": 5, "ms": 3}))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// The raw baseline: the same table, indexes and pragmas as the journal, plain INSERTs.
fn raw_open(dir: &std::path::Path, d: Durability) -> Connection {
    let c = Connection::open(dir.join("raw.db")).unwrap();
    c.pragma_update(None, "journal_mode", "WAL").unwrap();
    c.pragma_update(
        None,
        "synchronous",
        if d == Durability::Full {
            "FULL"
        } else {
            "NORMAL"
        },
    )
    .unwrap();
    c.execute_batch(
        "CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY, ts_ms INTEGER NOT NULL, kind TEXT NOT NULL,
           actor TEXT NOT NULL, org TEXT NOT NULL, action TEXT, tx TEXT, payload TEXT NOT NULL, hash BLOB NOT NULL);
         CREATE INDEX IF NOT EXISTS e_kind ON events(kind, seq);
         CREATE INDEX IF NOT EXISTS e_actor ON events(actor, seq);
         CREATE INDEX IF NOT EXISTS e_action ON events(action, seq) WHERE action IS NOT NULL;
         CREATE INDEX IF NOT EXISTS e_tx ON events(tx, seq) WHERE tx IS NOT NULL;",
    )
    .unwrap();
    c
}

fn raw_single(c: &mut Connection, n: usize, start: usize) -> f64 {
    let (a, t) = (ActionId::generate(), TxId::generate());
    let t0 = Instant::now();
    for i in 0..n {
        let e = event(i, a, t);
        let payload = serde_json::to_string(&e.payload).unwrap();
        let tx = c.transaction().unwrap();
        tx.prepare_cached(
            "INSERT INTO events (seq, ts_ms, kind, actor, org, action, tx, payload, hash) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9)",
        )
        .unwrap()
        .execute(params![
            (start + i) as i64,
            0i64,
            e.kind,
            e.actor.0,
            e.org,
            e.action.map(|x| x.to_string()),
            e.tx.map(|x| x.to_string()),
            payload,
            &[0u8; 32][..]
        ])
        .unwrap();
        tx.commit().unwrap();
    }
    n as f64 / t0.elapsed().as_secs_f64()
}

fn journal_single(j: &mut Journal, n: usize) -> f64 {
    let (a, t) = (ActionId::generate(), TxId::generate());
    let t0 = Instant::now();
    for i in 0..n {
        j.append(&event(i, a, t)).unwrap();
    }
    n as f64 / t0.elapsed().as_secs_f64()
}

fn bench_single(args: &Args, d: Durability) -> (f64, f64) {
    let dir = tempfile::tempdir().unwrap();
    let mut raw = raw_open(dir.path(), d);
    let mut j = Journal::open_with(
        dir.path().join("j"),
        JournalOptions {
            durability: d,
            ..Default::default()
        },
    )
    .unwrap();
    // Warm-up: first pages, statement caches.
    raw_single(&mut raw, 50, 1);
    journal_single(&mut j, 50);
    let (mut rs, mut js) = (Vec::new(), Vec::new());
    let mut next = 51;
    for _ in 0..args.rounds {
        rs.push(raw_single(&mut raw, args.single, next));
        next += args.single;
        js.push(journal_single(&mut j, args.single));
    }
    (median(rs), median(js))
}

fn bench_batch(args: &Args, d: Durability, batch: usize) -> f64 {
    let mut rates = Vec::new();
    for _ in 0..args.rounds {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open_with(
            dir.path(),
            JournalOptions {
                durability: d,
                ..Default::default()
            },
        )
        .unwrap();
        let (a, t) = (ActionId::generate(), TxId::generate());
        let evs: Vec<NewEvent> = (0..batch).map(|i| event(i, a, t)).collect();
        let rounds = args.batch_events / batch;
        let t0 = Instant::now();
        for _ in 0..rounds {
            j.append_batch(&evs).unwrap();
        }
        rates.push((rounds * batch) as f64 / t0.elapsed().as_secs_f64());
    }
    median(rates)
}

fn bench_group(args: &Args, d: Durability, threads: usize) -> f64 {
    let mut rates = Vec::new();
    for _ in 0..args.rounds {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::open_with(
            dir.path(),
            JournalOptions {
                durability: d,
                ..Default::default()
            },
        )
        .unwrap();
        let gc = GroupCommitter::start(j, GroupOptions::default()).unwrap();
        // Synchronous producers wait for each commit, so keep this part short.
        let per = (args.batch_events / threads).min(20_000 / threads);
        let t0 = Instant::now();
        let hs: Vec<_> = (0..threads)
            .map(|_| {
                let ap = gc.appender();
                std::thread::spawn(move || {
                    let (a, t) = (ActionId::generate(), TxId::generate());
                    for i in 0..per {
                        ap.append(&event(i, a, t)).unwrap();
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        rates.push((per * threads) as f64 / t0.elapsed().as_secs_f64());
        gc.shutdown();
    }
    median(rates)
}

/// Producers that keep many appends in flight (as the async daemon does) instead of waiting for
/// each one: what the single writer can sustain.
fn bench_group_pipelined(args: &Args, d: Durability, threads: usize) -> f64 {
    use kernos_journal::PreparedEvent;
    use std::sync::mpsc;
    let mut rates = Vec::new();
    for _ in 0..args.rounds {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::open_with(
            dir.path(),
            JournalOptions {
                durability: d,
                ..Default::default()
            },
        )
        .unwrap();
        let gc = GroupCommitter::start(j, GroupOptions::default()).unwrap();
        let per = args.batch_events / threads;
        let t0 = Instant::now();
        let hs: Vec<_> = (0..threads)
            .map(|_| {
                let ap = gc.appender();
                std::thread::spawn(move || {
                    let (a, t) = (ActionId::generate(), TxId::generate());
                    let (done_tx, done_rx) = mpsc::channel();
                    for i in 0..per {
                        let p = PreparedEvent::new(&event(i, a, t)).unwrap();
                        let done = done_tx.clone();
                        ap.submit(
                            vec![p],
                            Box::new(move |r| {
                                let _ = done.send(r.is_ok());
                            }),
                        )
                        .unwrap();
                    }
                    drop(done_tx);
                    assert!(done_rx.iter().all(|ok| ok));
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        rates.push((per * threads) as f64 / t0.elapsed().as_secs_f64());
        gc.shutdown();
    }
    median(rates)
}

fn bench_verify(args: &Args) -> (f64, Duration) {
    let dir = tempfile::tempdir().unwrap();
    let mut j = Journal::open_with(
        dir.path(),
        JournalOptions {
            durability: Durability::Normal,
            ..Default::default()
        },
    )
    .unwrap();
    let (a, t) = (ActionId::generate(), TxId::generate());
    let evs: Vec<NewEvent> = (0..10_000).map(|i| event(i, a, t)).collect();
    let mut left = args.verify_events;
    while left > 0 {
        let n = left.min(evs.len());
        j.append_batch(&evs[..n]).unwrap();
        left -= n;
    }
    let mut times = Vec::new();
    for _ in 0..args.rounds.min(3) {
        let t0 = Instant::now();
        let r = j.verify().unwrap();
        times.push(t0.elapsed().as_secs_f64());
        assert!(r.is_ok() && r.checked == args.verify_events as u64);
    }
    let m = median(times);
    println!(
        "  (journal of {} events: {} MB)",
        args.verify_events,
        dir_size(dir.path()) / 1_000_000
    );
    (m, Duration::from_secs_f64(m))
}

fn dir_size(p: &std::path::Path) -> u64 {
    std::fs::read_dir(p)
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

fn main() {
    let args = parse_args();
    println!(
        "kernos-journal bench: {} single appends x {} rounds, {} batched events, verify over {}",
        args.single, args.rounds, args.batch_events, args.verify_events
    );
    for d in [Durability::Full, Durability::Normal] {
        let (raw, jr) = bench_single(&args, d);
        println!(
            "single append  [{d:?}]  raw rusqlite {raw:>9.0}/s   journal {jr:>9.0}/s   ratio {:>5.1}%",
            100.0 * jr / raw
        );
    }
    for d in [Durability::Full, Durability::Normal] {
        for b in [100, 1000] {
            println!(
                "append_batch   [{d:?}] batch {b:>5}: {:>9.0} events/s",
                bench_batch(&args, d, b)
            );
        }
        for t in [4, 16] {
            println!(
                "group commit   [{d:?}] {t:>2} threads, each waiting: {:>9.0} events/s",
                bench_group(&args, d, t)
            );
        }
        println!(
            "group commit   [{d:?}]  4 threads, pipelined: {:>9.0} events/s",
            bench_group_pipelined(&args, d, 4)
        );
    }
    let (secs, _) = bench_verify(&args);
    println!("verify {} events: {secs:.3} s", args.verify_events);
}
