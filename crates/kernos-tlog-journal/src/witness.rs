//! A Kernos daemon as a witness for other logs: it remembers the largest tree it saw of each
//! log (as journal events, so the memory survives restarts and is itself chained), and
//! cosigns a new checkpoint only if it extends that tree. A smaller tree, a different root at
//! the same size or a failing consistency proof is a rollback or a fork: refused and
//! journaled.

use std::collections::HashMap;

use kernos_core::{Actor, NewEvent};
use kernos_journal::{Journal, Query};
use kernos_tlog::{
    Checkpoint, Hash, SignedNote, b64, unb64_hash, verify_checkpoint, verify_consistency,
};

use crate::config::WitnessedLog;
use crate::error::Result;
use crate::{WITNESS_REFUSED_KIND, WITNESS_SEEN_KIND, trusted_from_vkeys};

/// The largest tree a witness saw of one log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// Tree size.
    pub size: u64,
    /// Root at that size.
    pub root: Hash,
}

/// Why a witness refused a checkpoint, and the HTTP status that says so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Not a checkpoint, or a proof that is not base64 hashes (400).
    Malformed(String),
    /// A log this witness is not configured for (404).
    UnknownLog(String),
    /// The log's signatures do not verify with the configured keys (403).
    BadSignature(String),
    /// The log's `old_size` is not what the witness saw last: not an attack, the log should
    /// retry from `known_size` (409, not journaled).
    Stale {
        /// What the witness saw last.
        known_size: u64,
    },
    /// A smaller tree than the witness saw, another root at the same size, or a failing
    /// consistency proof: the log rolled back or forked (409, journaled).
    Rollback {
        /// What the witness saw last.
        known_size: u64,
        /// What is wrong.
        reason: String,
    },
}

impl Refusal {
    /// The HTTP status.
    pub fn status(&self) -> u16 {
        match self {
            Refusal::Malformed(_) => 400,
            Refusal::BadSignature(_) => 403,
            Refusal::UnknownLog(_) => 404,
            Refusal::Stale { .. } | Refusal::Rollback { .. } => 409,
        }
    }

    /// What to tell the caller.
    pub fn detail(&self) -> String {
        match self {
            Refusal::Malformed(m) | Refusal::BadSignature(m) | Refusal::UnknownLog(m) => m.clone(),
            Refusal::Stale { known_size } => format!(
                "the witness last saw a tree of size {known_size}: send a consistency proof from that size"
            ),
            Refusal::Rollback { reason, .. } => reason.clone(),
        }
    }
}

/// A checkpoint the witness accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The log's origin.
    pub origin: String,
    /// The new largest tree (or the same one again).
    pub seen: Seen,
    /// Whether it is larger than what the witness saw before (then it must be journaled).
    pub grew: bool,
}

/// What a witness saw of every log.
#[derive(Debug, Clone, Default)]
pub struct WitnessBook {
    logs: HashMap<String, Seen>,
}

impl WitnessBook {
    /// Rebuilds the book from the witness's journal.
    pub fn load(j: &Journal) -> Result<Self> {
        let mut book = WitnessBook::default();
        j.for_each(&Query::kind(WITNESS_SEEN_KIND), |e| {
            let origin = e.payload["origin"].as_str();
            let size = e.payload["size"].as_u64();
            let root = e.payload["root"].as_str().and_then(unb64_hash);
            if let (Some(o), Some(size), Some(root)) = (origin, size, root) {
                book.record(o, Seen { size, root });
            }
            true
        })?;
        Ok(book)
    }

    /// What the witness saw of `origin`.
    pub fn seen(&self, origin: &str) -> Option<&Seen> {
        self.logs.get(origin)
    }

    /// Remembers a larger tree (a smaller one is ignored).
    pub fn record(&mut self, origin: &str, seen: Seen) {
        let e = self.logs.entry(origin.to_string()).or_insert(Seen {
            size: 0,
            root: kernos_tlog::empty_root(),
        });
        if seen.size >= e.size {
            *e = seen;
        }
    }

    /// Checks a checkpoint pushed by a log: its origin is configured, its two signatures
    /// verify with the configured keys, and it extends the largest tree seen (by the
    /// consistency proof from `old_size`, which must be that tree's size).
    pub fn check(
        &self,
        logs: &[WitnessedLog],
        note: &str,
        old_size: u64,
        proof: &[String],
    ) -> std::result::Result<Accepted, Refusal> {
        let text = SignedNote::parse(note)
            .map_err(|e| Refusal::Malformed(e.to_string()))?
            .text;
        let cp = Checkpoint::parse_body(&text).map_err(|e| Refusal::Malformed(e.to_string()))?;
        let log = logs.iter().find(|l| l.origin == cp.origin).ok_or_else(|| {
            Refusal::UnknownLog(format!("this witness does not witness {:?}", cp.origin))
        })?;
        let trusted =
            trusted_from_vkeys(&log.vkeys).map_err(|e| Refusal::BadSignature(e.to_string()))?;
        verify_checkpoint(note, &trusted).map_err(|e| Refusal::BadSignature(e.to_string()))?;
        let known = self.seen(&cp.origin).cloned().unwrap_or(Seen {
            size: 0,
            root: kernos_tlog::empty_root(),
        });
        let rollback = |reason: String| Refusal::Rollback {
            known_size: known.size,
            reason,
        };
        if cp.size < known.size {
            return Err(rollback(format!(
                "rollback: {} is at size {}, but this witness already saw size {}",
                cp.origin, cp.size, known.size
            )));
        }
        if cp.size == known.size {
            if cp.root != known.root {
                return Err(rollback(format!(
                    "fork: {} has another root at size {} than the one this witness saw ({} vs {})",
                    cp.origin,
                    cp.size,
                    b64(&cp.root),
                    b64(&known.root)
                )));
            }
            return Ok(Accepted {
                origin: cp.origin.clone(),
                seen: known,
                grew: false,
            });
        }
        if old_size != known.size {
            return Err(Refusal::Stale {
                known_size: known.size,
            });
        }
        if known.size > 0 {
            let hashes = proof
                .iter()
                .map(|h| unb64_hash(h))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| {
                    Refusal::Malformed("a proof hash is not base64 of 32 bytes".into())
                })?;
            verify_consistency(known.size, cp.size, &hashes, &known.root, &cp.root)
                .map_err(|e| rollback(format!("{}: {e}", cp.origin)))?;
        }
        Ok(Accepted {
            origin: cp.origin.clone(),
            seen: Seen {
                size: cp.size,
                root: cp.root,
            },
            grew: true,
        })
    }
}

/// The event that records a larger tree of `origin` (the note is kept: it is the evidence).
pub fn seen_event(actor: Actor, origin: &str, seen: &Seen, note: &str) -> NewEvent {
    NewEvent::new(WITNESS_SEEN_KIND, actor).payload(serde_json::json!({
        "origin": origin,
        "size": seen.size,
        "root": b64(&seen.root),
        "note": note,
    }))
}

/// The event that records a refused rollback or fork (with the offending note as evidence).
pub fn refused_event(actor: Actor, known_size: u64, reason: &str, note: &str) -> NewEvent {
    NewEvent::new(WITNESS_REFUSED_KIND, actor).payload(serde_json::json!({
        "known_size": known_size,
        "reason": reason,
        "note": note,
    }))
}
