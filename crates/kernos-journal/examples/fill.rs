//! Fills a journal with N synthetic events, for benchmarking the CLI on a big journal:
//!
//! `cargo run --release -p kernos-journal --example fill -- DIR 1000000`
//! `time kernos --data-dir DIR journal verify`

use kernos_core::{ActionId, Actor, NewEvent, TxId};
use kernos_journal::{Durability, Journal, JournalOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().ok_or("usage: fill DIR COUNT")?;
    let count: usize = args.next().ok_or("usage: fill DIR COUNT")?.parse()?;
    let opts = JournalOptions {
        durability: Durability::Normal,
        ..Default::default()
    };
    let mut j = Journal::open_with(&dir, opts)?;
    let mut left = count;
    while left > 0 {
        let (a, t) = (ActionId::generate(), TxId::generate());
        let n = left.min(10_000);
        let evs: Vec<NewEvent> = (0..n)
            .map(|i| {
                NewEvent::new("step.finished", Actor::user("bench"))
                    .action(a)
                    .tx(t)
                    .payload(serde_json::json!({"step": i % 7, "tool": "fs", "action": "largest", "rows": 5}))
            })
            .collect();
        j.append_batch(&evs)?;
        left -= n;
    }
    println!("{} now holds {} events", dir, j.head()?.0);
    Ok(())
}
