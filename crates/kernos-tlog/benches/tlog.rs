//! Transparency-log benchmarks.
//!
//! Run: `cargo bench -p kernos-tlog --bench tlog` (add `-- --quick` for a short run,
//! `-- --leaves 1000000` to change the tree size).
//!
//! - append: leaf hashing (journal-like events) plus appending to the tree, for N leaves;
//! - sign: one checkpoint, Ed25519 + ML-DSA-44; verify: both signatures;
//! - inclusion: one inclusion proof at size N (random indices);
//! - tiles: persisting the whole tree as tlog-tiles, and reloading it;
//! - bundle: rebuilding N events' leaves and verifying them, the checkpoints and consistency
//!   proofs (`verify_bundle`), and parsing the bundle's JSON first.
//!
//! Each figure is the median of several rounds.

#![allow(clippy::unwrap_used, missing_docs)]

use std::time::Instant;

use kernos_tlog::{
    Bundle, BundleEvent, Checkpoint, KeySet, MerkleTree, TiledTree, verify_bundle,
    verify_checkpoint,
};

struct Args {
    leaves: u64,
    rounds: usize,
}

fn parse_args() -> Args {
    let mut a = Args {
        leaves: 1_000_000,
        rounds: 5,
    };
    let argv: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i < argv.len() {
        let next = argv.get(i + 1).and_then(|v| v.parse().ok());
        match argv[i].as_str() {
            "--quick" => {
                a = Args {
                    leaves: 100_000,
                    rounds: 3,
                }
            }
            "--leaves" => a.leaves = next.unwrap_or(a.leaves),
            "--rounds" => a.rounds = next.map_or(a.rounds, |r: u64| r as usize),
            _ => {}
        }
        i += 1;
    }
    a
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// A journal-like event (the payload the journal bench uses).
fn event(seq: u64) -> BundleEvent {
    BundleEvent {
        seq,
        ts_ms: 1_760_000_000_000 + seq as i64,
        kind: "step.finished".into(),
        actor: "user:bench".into(),
        org: "local".into(),
        action: Some("01J9ZK3W8Y5V2T6R4Q1P0N8M7L".into()),
        tx: Some("01J9ZK3W8Y5V2T6R4Q1P0N8M7K".into()),
        payload: format!(
            r#"{{"step":{},"tool":"fs","action":"largest","rows":5,"ms":3}}"#,
            seq % 7
        ),
    }
}

fn main() {
    let args = parse_args();
    let n = args.leaves;
    println!("kernos-tlog bench: {n} leaves, {} rounds", args.rounds);
    let events: Vec<BundleEvent> = (1..=n).map(event).collect();

    let mut times = Vec::new();
    let mut tree = MerkleTree::new();
    for _ in 0..args.rounds.min(3) {
        let t0 = Instant::now();
        let mut t = MerkleTree::new();
        for e in &events {
            t.append(e.leaf().leaf_hash());
        }
        times.push(t0.elapsed().as_secs_f64());
        tree = t;
    }
    let s = median(times);
    println!(
        "append {n} leaves (leaf hashing included): {:.3} s  ({:.0} leaves/s)",
        s,
        n as f64 / s
    );

    let dir = tempfile::tempdir().unwrap();
    let keys = KeySet::open_or_create(dir.path().join("keys"), "kernos.bench/journal", 1).unwrap();
    let cp = Checkpoint {
        origin: "kernos.bench/journal".into(),
        size: n,
        root: tree.root(),
        extensions: vec![],
    };
    let mut sign = Vec::new();
    let mut note = String::new();
    for i in 0..200 {
        let t0 = Instant::now();
        note = cp.sign(&keys, 1000 + i).unwrap();
        sign.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    println!(
        "sign a checkpoint (Ed25519 + ML-DSA-44): median {:.3} ms",
        median(sign)
    );
    let trusted = keys.public();
    let mut ver = Vec::new();
    for _ in 0..200 {
        let t0 = Instant::now();
        verify_checkpoint(&note, &trusted).unwrap();
        ver.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    println!(
        "verify a checkpoint (both signatures): median {:.3} ms",
        median(ver)
    );

    let mut incl = Vec::new();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for _ in 0..10_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let t0 = Instant::now();
        let p = tree.inclusion_proof(x % n, n).unwrap();
        incl.push(t0.elapsed().as_secs_f64() * 1e6);
        std::hint::black_box(p);
    }
    println!("inclusion proof at size {n}: median {:.1} µs", median(incl));

    let tiles = tempfile::tempdir().unwrap();
    let mut tt = TiledTree::open(tiles.path()).unwrap();
    for i in 0..n {
        tt.append(tree.leaf_hash(i).unwrap());
    }
    let t0 = Instant::now();
    tt.persist().unwrap();
    let persist = t0.elapsed().as_secs_f64();
    let mut reload = Vec::new();
    for _ in 0..args.rounds.min(3) {
        let t0 = Instant::now();
        let back = TiledTree::open(tiles.path()).unwrap();
        reload.push(t0.elapsed().as_secs_f64());
        assert_eq!(back.tree().size(), n);
    }
    println!(
        "tiles: persist {n} leaves {:.3} s, reload {:.3} s (median)",
        persist,
        median(reload)
    );

    // Ten checkpoints spread over the log, the newest at n.
    let checkpoints: Vec<String> = (1..=10)
        .map(|k| {
            let size = n * k / 10;
            Checkpoint {
                size,
                root: tree.root_at(size).unwrap(),
                ..cp.clone()
            }
            .sign(&keys, 2000 + k)
            .unwrap()
        })
        .collect();
    let bundle = Bundle::build(
        "kernos.bench/journal",
        trusted.clone(),
        events,
        checkpoints,
        &tree,
    )
    .unwrap();
    let json = bundle.to_json().unwrap();
    let mut verify = Vec::new();
    let mut parse = Vec::new();
    for _ in 0..args.rounds.min(3) {
        let t0 = Instant::now();
        let b = Bundle::from_json(&json).unwrap();
        parse.push(t0.elapsed().as_secs_f64());
        let t0 = Instant::now();
        let r = verify_bundle(&b, &trusted).unwrap();
        verify.push(t0.elapsed().as_secs_f64());
        assert_eq!(r.events, n);
    }
    println!(
        "bundle of {n} events, 10 checkpoints ({} MB JSON): rebuild + verify {:.3} s, JSON parse {:.3} s (median)",
        json.len() / 1_000_000,
        median(verify),
        median(parse)
    );
}
