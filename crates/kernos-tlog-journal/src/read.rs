//! What needs only the journal (and the log's public keys): rebuilding the tree, the stored
//! checkpoints, checking them all, proving one event, exporting a bundle. The CLI uses these
//! without a daemon; the daemon answers proofs from its live tree instead.

use std::path::Path;

use kernos_journal::{Journal, Query};
use kernos_tlog::{
    Bundle, BundleEvent, Hash, MerkleTree, TiledTree, TlogError, TrustedKeys, VerifiedCheckpoint,
    b64, verify_checkpoint, verify_consistency, verify_inclusion,
};
use serde::Serialize;

use crate::CHECKPOINT_KIND;
use crate::error::{LogError, Result};
use crate::log::{leaf_of, tlog_dir};

/// A checkpoint as stored in the journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredCheckpoint {
    /// The seq of the event that stores it.
    pub seq: u64,
    /// Tree size it signs.
    pub size: u64,
    /// The signed note.
    pub note: String,
}

/// The stored checkpoints, oldest first (those stored after `after`, if given).
pub fn stored_checkpoints_after(j: &Journal, after: Option<u64>) -> Result<Vec<StoredCheckpoint>> {
    let mut out = Vec::new();
    let mut bad = None;
    j.for_each(
        &Query {
            after,
            ..Query::kind(CHECKPOINT_KIND)
        },
        |e| {
            let note = e.payload["note"].as_str().map(str::to_string);
            let size = e.payload["size"].as_u64();
            match (note, size) {
                (Some(note), Some(size)) => out.push(StoredCheckpoint {
                    seq: e.seq,
                    size,
                    note,
                }),
                _ => {
                    bad = Some(e.seq);
                    return false;
                }
            }
            true
        },
    )?;
    match bad {
        Some(seq) => Err(LogError::Invalid(format!(
            "event {seq} ({CHECKPOINT_KIND}) has no note and size"
        ))),
        None => Ok(out),
    }
}

/// The stored checkpoints, oldest first.
pub fn stored_checkpoints(j: &Journal) -> Result<Vec<StoredCheckpoint>> {
    stored_checkpoints_after(j, None)
}

/// The tree of the journal's events, rebuilt from every stored row (nothing trusted but the
/// journal).
pub fn rebuild(j: &Journal) -> Result<MerkleTree> {
    let (head, _) = j.head()?;
    let mut leaves = Vec::with_capacity(head as usize);
    let mut gap = None;
    j.for_each_row(0, None, |r, _| {
        if r.seq != leaves.len() as u64 + 1 {
            gap = Some(leaves.len() as u64 + 1);
            return false;
        }
        leaves.push(leaf_of(r).leaf_hash());
        true
    })?;
    if let Some(seq) = gap {
        return Err(LogError::Invalid(format!(
            "event {seq} is missing from the journal: run `kernos journal verify`"
        )));
    }
    Ok(MerkleTree::from_leaf_hashes(leaves))
}

/// The tree for reading: the tiles under `<data_dir>/tlog/tiles` if they agree with the
/// journal, caught up with its newer events; else rebuilt in memory. Never writes.
pub fn load_tree(data_dir: &Path, j: &Journal) -> Result<MerkleTree> {
    let dir = tlog_dir(data_dir).join("tiles");
    if dir.exists()
        && let Ok(tiles) = TiledTree::open(&dir)
    {
        let size = tiles.tree().size();
        let start = tiles.last_tile_start();
        let mut hashes = Vec::new();
        j.for_each_row(start, Some(size), |r, _| {
            hashes.push(leaf_of(r).leaf_hash());
            true
        })?;
        if hashes.len() as u64 == size - start && tiles.check_leaves(start, &hashes).is_ok() {
            let mut tree = tiles.tree().clone();
            let mut ok = true;
            j.for_each_row(size, None, |r, _| {
                ok = r.seq == tree.size() + 1;
                if ok {
                    tree.append(leaf_of(r).leaf_hash());
                }
                ok
            })?;
            if ok {
                return Ok(tree);
            }
        }
    }
    rebuild(j)
}

/// What checking one stored (or supplied) checkpoint found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum CheckpointStatus {
    /// Signatures valid, root equal to the journal's tree at that size.
    Ok {
        /// Signed by a retired key, inside its overlap window.
        retired_key: bool,
    },
    /// Signed by a key that was rotated out before the signature's date.
    RotatedOut {
        /// What the verifier said.
        detail: String,
    },
    /// A signature missing, failing, or by no trusted key.
    BadSignature {
        /// What the verifier said.
        detail: String,
    },
    /// The journal's tree at that size has another root: history was rewritten.
    RootMismatch {
        /// The journal's root at that size.
        journal_root: String,
    },
    /// The checkpoint is larger than the journal: events were cut off.
    BeyondJournal {
        /// Events in the journal.
        journal_size: u64,
    },
    /// Not an append-only extension of the previous checkpoint.
    Inconsistent {
        /// What the verifier said.
        detail: String,
    },
}

impl CheckpointStatus {
    /// Whether this is a failure (a retired key inside its window is not).
    pub fn failed(&self) -> bool {
        !matches!(self, CheckpointStatus::Ok { .. })
    }
}

/// One checkpoint's verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckpointCheck {
    /// Where it is stored (`None` for one supplied by the caller).
    pub seq: Option<u64>,
    /// Its tree size.
    pub size: u64,
    /// Its root (base64).
    pub root: String,
    /// The verdict.
    #[serde(flatten)]
    pub status: CheckpointStatus,
}

/// The result of checking every checkpoint against the journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckpointsReport {
    /// Events in the journal (the rebuilt tree's size).
    pub journal_size: u64,
    /// The journal's root now.
    pub root: String,
    /// Each checkpoint, stored ones oldest first, then supplied ones.
    pub checkpoints: Vec<CheckpointCheck>,
}

impl CheckpointsReport {
    /// Whether every checkpoint checked out.
    pub fn is_ok(&self) -> bool {
        self.checkpoints.iter().all(|c| !c.status.failed())
    }
}

/// Checks one signed checkpoint against `tree` (the journal's, rebuilt): signatures by
/// `trusted`, then its root against the tree's root at its size.
fn check_one(
    note: &str,
    trusted: &TrustedKeys,
    tree: &MerkleTree,
    seq: Option<u64>,
) -> (CheckpointCheck, Option<VerifiedCheckpoint>) {
    let parsed = kernos_tlog::SignedNote::parse(note)
        .and_then(|n| kernos_tlog::Checkpoint::parse_body(&n.text));
    let (size, root) = parsed
        .as_ref()
        .map_or((0, String::new()), |c| (c.size, b64(&c.root)));
    let check = |status| CheckpointCheck {
        seq,
        size,
        root: root.clone(),
        status,
    };
    let v = match verify_checkpoint(note, trusted) {
        Ok(v) => v,
        Err(e @ TlogError::RotatedOutKey { .. }) => {
            return (
                check(CheckpointStatus::RotatedOut {
                    detail: e.to_string(),
                }),
                None,
            );
        }
        Err(e) => {
            return (
                check(CheckpointStatus::BadSignature {
                    detail: e.to_string(),
                }),
                None,
            );
        }
    };
    let status = if size > tree.size() {
        CheckpointStatus::BeyondJournal {
            journal_size: tree.size(),
        }
    } else {
        match tree.root_at(size) {
            Ok(r) if r == v.checkpoint.root => CheckpointStatus::Ok {
                retired_key: v.signed_by_retired_key(),
            },
            Ok(r) => CheckpointStatus::RootMismatch {
                journal_root: b64(&r),
            },
            Err(e) => CheckpointStatus::BadSignature {
                detail: e.to_string(),
            },
        }
    };
    let ok = !status.failed();
    (check(status), ok.then_some(v))
}

/// Rebuilds the tree from the journal and checks every stored checkpoint — both signatures
/// by `trusted` (a key rotated out before the signature's date is reported as such), the root
/// at its size, and consistency with the previous good one — then each of `supplied` (notes
/// a verifier kept from before, e.g. published ones: a journal rewritten from scratch has
/// fresh checkpoints of its own, but cannot match those).
pub fn verify_checkpoints(
    j: &Journal,
    trusted: &TrustedKeys,
    supplied: &[String],
) -> Result<CheckpointsReport> {
    let tree = rebuild(j)?;
    verify_checkpoints_in(&tree, &stored_checkpoints(j)?, trusted, supplied)
}

/// [`verify_checkpoints`] over a tree already rebuilt.
pub fn verify_checkpoints_in(
    tree: &MerkleTree,
    stored: &[StoredCheckpoint],
    trusted: &TrustedKeys,
    supplied: &[String],
) -> Result<CheckpointsReport> {
    let mut out = Vec::new();
    let mut prev: Option<VerifiedCheckpoint> = None;
    let notes = stored
        .iter()
        .map(|c| (Some(c.seq), c.note.as_str()))
        .chain(supplied.iter().map(|n| (None, n.as_str())));
    for (seq, note) in notes {
        let (mut check, v) = check_one(note, trusted, tree, seq);
        if let (Some(p), Some(v)) = (&prev, &v) {
            let (a, b) = (&p.checkpoint, &v.checkpoint);
            if a.size <= b.size {
                let proof = tree.consistency_proof(a.size, b.size)?;
                if let Err(e) = verify_consistency(a.size, b.size, &proof, &a.root, &b.root) {
                    check.status = CheckpointStatus::Inconsistent {
                        detail: e.to_string(),
                    };
                }
            }
        }
        if v.is_some() && !check.status.failed() {
            prev = v;
        }
        out.push(check);
    }
    Ok(CheckpointsReport {
        journal_size: tree.size(),
        root: b64(&tree.root()),
        checkpoints: out,
    })
}

/// An inclusion proof of one event in one checkpoint, verified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InclusionProof {
    /// The event.
    pub seq: u64,
    /// Its leaf index (seq − 1).
    pub index: u64,
    /// Its leaf hash (base64).
    pub leaf_hash: String,
    /// The checkpoint's tree size.
    pub size: u64,
    /// The checkpoint's root (base64).
    pub root: String,
    /// The signed checkpoint.
    pub checkpoint: String,
    /// The proof's hashes (base64), leaf to root.
    pub hashes: Vec<String>,
}

/// Picks the checkpoint to prove in: the one of size `size`, or the newest.
pub fn pick_checkpoint(
    stored: &[StoredCheckpoint],
    size: Option<u64>,
) -> Result<&StoredCheckpoint> {
    let found = match size {
        Some(s) => stored.iter().rev().find(|c| c.size == s),
        None => stored.last(),
    };
    found.ok_or_else(|| {
        LogError::Invalid(match size {
            Some(s) => format!(
                "no stored checkpoint has size {s}; sizes stored: {}",
                stored
                    .iter()
                    .map(|c| c.size.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            None => "no checkpoint yet: run `kernos journal checkpoint`".into(),
        })
    })
}

/// Proves event `seq` (with leaf hash `leaf`) in the checkpoint `note`, and verifies the
/// proof and the checkpoint's signatures before answering.
pub fn prove(
    tree: &MerkleTree,
    trusted: &TrustedKeys,
    note: &str,
    seq: u64,
    leaf: Hash,
) -> Result<InclusionProof> {
    let v = verify_checkpoint(note, trusted)?;
    let cp = &v.checkpoint;
    if seq == 0 || seq > cp.size {
        return Err(LogError::Invalid(format!(
            "event {seq} is not in the checkpoint of size {}: it covers events 1..={}{}",
            cp.size,
            cp.size,
            if seq > cp.size {
                "; wait for the next checkpoint or run `kernos journal checkpoint`"
            } else {
                ""
            }
        )));
    }
    let index = seq - 1;
    let hashes = tree.inclusion_proof(index, cp.size)?;
    verify_inclusion(&leaf, index, cp.size, &hashes, &cp.root)?;
    Ok(InclusionProof {
        seq,
        index,
        leaf_hash: b64(&leaf),
        size: cp.size,
        root: b64(&cp.root),
        checkpoint: note.to_string(),
        hashes: hashes.iter().map(|h| b64(h)).collect(),
    })
}

/// The leaf hash of stored event `seq`, from the row as stored.
pub fn leaf_hash_of(j: &Journal, seq: u64) -> Result<Hash> {
    let mut out = None;
    j.for_each_row(seq.saturating_sub(1), Some(seq), |r, _| {
        out = Some(leaf_of(r).leaf_hash());
        false
    })?;
    out.ok_or_else(|| LogError::Invalid(format!("there is no event {seq} in the journal")))
}

/// The org of stored event `seq`.
pub fn org_of(j: &Journal, seq: u64) -> Result<Option<String>> {
    let mut out = None;
    j.for_each_row(seq.saturating_sub(1), Some(seq), |r, _| {
        out = Some(r.org.to_string());
        false
    })?;
    Ok(out)
}

/// An export bundle of the events from `since` (a seq, 1 for all) up to the newest
/// checkpoint, with every stored checkpoint whose size reaches past `since` (the newest one
/// ties the events, the others are tied to it by consistency proofs).
pub fn export(
    j: &Journal,
    tree: &MerkleTree,
    keys: TrustedKeys,
    origin: &str,
    since: u64,
) -> Result<Bundle> {
    let stored = stored_checkpoints(j)?;
    let newest = pick_checkpoint(&stored, None)?;
    let since = since.max(1);
    if since > newest.size {
        return Err(LogError::Invalid(format!(
            "the newest checkpoint covers events 1..={}: nothing from {since} is checkpointed yet; run `kernos journal checkpoint` first",
            newest.size
        )));
    }
    let checkpoints: Vec<String> = stored
        .iter()
        .filter(|c| c.size >= since && c.size <= newest.size)
        .map(|c| c.note.clone())
        .collect();
    let mut events = Vec::with_capacity((newest.size + 1 - since) as usize);
    j.for_each_row(since - 1, Some(newest.size), |r, _| {
        events.push(BundleEvent {
            seq: r.seq,
            ts_ms: r.ts_ms,
            kind: r.kind.to_string(),
            actor: r.actor.to_string(),
            org: r.org.to_string(),
            action: r.action.map(str::to_string),
            tx: r.tx.map(str::to_string),
            payload: String::from_utf8_lossy(r.payload).into_owned(),
        });
        true
    })?;
    Ok(Bundle::build(origin, keys, events, checkpoints, tree)?)
}

/// The first seq at or after `ts_ms` (for `--since TIME`).
pub fn first_seq_since(j: &Journal, ts_ms: i64) -> Result<Option<u64>> {
    Ok(j.query(&Query {
        since_ms: Some(ts_ms),
        limit: Some(1),
        ..Query::default()
    })?
    .first()
    .map(|e| e.seq))
}
