//! Append throughput with the transparency log on vs off, same workload, same run.
//!
//! Run: `cargo bench -p kernos-tlog-journal --bench append` (`-- --quick` for a short run).
//!
//! The workload is the daemon's: the group-commit writer fed by 4 threads keeping appends in
//! flight (pipelined), `Durability::Normal` (the daemon's default). "on" is what the daemon
//! does: the commit hook queues each event's leaf bytes (on the writer thread), a feeder
//! thread hashes them into the tree, and a checkpoint thread signs a checkpoint every
//! `--every` events and appends it as a `log.checkpoint` event, writing the tiles first.
//! "On" is timed until the tree holds every event. Rounds alternate off and on so machine
//! noise hits both alike; each figure is the median.
//!
//! `--verify-events N` also builds a journal of N events with a checkpoint every 10,000 and
//! times `read::verify_checkpoints` over it (what `kernos journal verify --checkpoints` runs).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;
use std::sync::mpsc;
use std::time::Instant;

use kernos_core::{ActionId, Actor, NewEvent, TxId};
use kernos_journal::{
    Durability, GroupCommitter, GroupOptions, Journal, JournalOptions, PreparedEvent,
};
use kernos_tlog_journal::{CheckpointConfig, LiveLog, Log, Wake, leaf_of_committed, read};
use serde_json::json;

struct Args {
    events: usize,
    rounds: usize,
    every: u64,
    verify_events: usize,
}

fn parse_args() -> Args {
    let mut a = Args {
        events: 200_000,
        rounds: 5,
        every: 10_000,
        verify_events: 0,
    };
    let argv: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i < argv.len() {
        let next = argv.get(i + 1).and_then(|v| v.parse().ok());
        match argv[i].as_str() {
            "--quick" => {
                a.events = 50_000;
                a.rounds = 3;
            }
            "--events" => a.events = next.unwrap_or(a.events),
            "--rounds" => a.rounds = next.unwrap_or(a.rounds),
            "--every" => a.every = next.map_or(a.every, |n: usize| n as u64),
            "--verify-events" => a.verify_events = next.unwrap_or(0),
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

fn opts() -> JournalOptions {
    JournalOptions {
        durability: Durability::Normal,
        ..Default::default()
    }
}

/// One round: `events` appends from 4 pipelined producers; returns events/s (the log's own
/// checkpoint events not counted) and the checkpoints made.
fn round(events: usize, every: Option<u64>) -> (f64, u64) {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open_with(dir.path(), opts()).unwrap();
    let gopts = GroupOptions {
        max_batch: 4096,
        queue: 8192,
        background_checkpoint: true,
    };
    let live = every.map(|every| {
        let log = Log::open(dir.path(), "bench.example/log", &journal, 1).unwrap();
        Arc::new(LiveLog::new(
            log,
            &CheckpointConfig {
                every_events: every,
                every_s: 0,
                origin: None,
            },
        ))
    });
    // What the daemon does: the writer thread only queues each event's leaf bytes; the
    // feeder thread hashes them into the tree.
    let hook: Option<kernos_journal::CommitHook> = live.clone().map(|live| {
        Box::new(move |batch: &[(PreparedEvent, kernos_journal::Appended)]| {
            for (p, a) in batch {
                live.enqueue_leaf(&leaf_of_committed(p, a));
            }
        }) as kernos_journal::CommitHook
    });
    let feeder = live
        .clone()
        .map(|live| std::thread::spawn(move || live.feed()));
    let gc = GroupCommitter::start_with_hook(journal, gopts, hook).unwrap();
    let signer = live.clone().map(|live| {
        let ap = gc.appender();
        std::thread::spawn(move || {
            let mut n = 0u64;
            while live.wait() != Wake::Stop {
                live.checkpoint(
                    2,
                    |ev| ap.append(&ev).map(|_| ()).map_err(Into::into),
                    Actor::system(),
                )
                .unwrap();
                n += 1;
            }
            n
        })
    });
    let threads = 4;
    let per = events / threads;
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
    // "On" is timed until the tree holds every event, not just the journal.
    if let Some(live) = &live {
        assert!(live.flush(std::time::Duration::from_secs(60)));
    }
    let rate = (per * threads) as f64 / t0.elapsed().as_secs_f64();
    let mut made = 0;
    if let (Some(live), Some(s), Some(f)) = (live, signer, feeder) {
        live.stop();
        made = s.join().unwrap();
        f.join().unwrap();
        assert_eq!(live.failure(), None);
    }
    gc.shutdown();
    (rate, made)
}

fn bench_verify(n: usize) {
    let dir = tempfile::tempdir().unwrap();
    let mut j = Journal::open_with(dir.path(), opts()).unwrap();
    let mut log = Log::open(dir.path(), "bench.example/log", &j, 1).unwrap();
    let (a, t) = (ActionId::generate(), TxId::generate());
    let evs: Vec<NewEvent> = (0..10_000).map(|i| event(i, a, t)).collect();
    let mut left = n;
    while left > 0 {
        let k = left.min(evs.len());
        j.append_batch(&evs[..k]).unwrap();
        left -= k;
        log.catch_up(&j).unwrap();
        let cp = log.checkpoint(2).unwrap();
        j.append(&cp.event(Actor::system())).unwrap();
        log.catch_up(&j).unwrap();
    }
    let trusted = log.keys().public();
    // As a daemon leaves them at a clean stop: the tiles current.
    log.persist().unwrap();
    drop(log);
    let mut times = Vec::new();
    for _ in 0..3 {
        let t0 = Instant::now();
        let r = read::verify_checkpoints(&j, &trusted, &[]).unwrap();
        times.push(t0.elapsed().as_secs_f64());
        assert!(r.is_ok());
    }
    println!(
        "verify --checkpoints over {} events ({} checkpoints): {:.3} s",
        j.head().unwrap().0,
        n.div_ceil(10_000),
        median(times)
    );
    // What `kernos journal prove SEQ` does after start-up: open the journal read-only, load
    // the tree from the tiles (caught up with the rows after them), find the newest
    // checkpoint, read the event's row, prove and verify.
    let mut times = Vec::new();
    for _ in 0..3 {
        let t0 = Instant::now();
        let j = Journal::open_read_only(dir.path()).unwrap();
        let tree = read::load_tree(dir.path(), &j).unwrap();
        let stored = read::stored_checkpoints(&j).unwrap();
        let cp = read::pick_checkpoint(&stored, None).unwrap();
        let seq = (n / 2) as u64;
        let leaf = read::leaf_hash_of(&j, seq).unwrap();
        read::prove(&tree, &trusted, &cp.note, seq, leaf).unwrap();
        times.push(t0.elapsed().as_secs_f64());
    }
    println!(
        "prove one event at {} events (journal prove's work): {:.3} s",
        n,
        median(times)
    );
}

fn main() {
    let args = parse_args();
    println!(
        "kernos-tlog-journal append bench: {} events x {} rounds, 4 pipelined producers, Normal durability, checkpoint every {} events",
        args.events, args.rounds, args.every
    );
    round(args.events / 10, None);
    round(args.events / 10, Some(args.every));
    let (mut off, mut on) = (Vec::new(), Vec::new());
    let mut made = 0;
    for _ in 0..args.rounds {
        off.push(round(args.events, None).0);
        let (r, m) = round(args.events, Some(args.every));
        on.push(r);
        made = m;
    }
    let (off, on) = (median(off), median(on));
    println!("tree + checkpoints off: {off:>9.0} events/s");
    println!("tree + checkpoints on:  {on:>9.0} events/s  ({made} checkpoints per round)");
    println!("ratio on/off: {:.1} %", 100.0 * on / off);
    if args.verify_events > 0 {
        bench_verify(args.verify_events);
    }
}
