//! Export bundles: everything a third party needs to check a stretch of the journal without
//! trusting Kernos — the events' stored fields, signed checkpoints, and the proofs tying them
//! together. The JSON format is documented in docs/TLOG.md; `scripts/verify-bundle` checks it
//! independently.
//!
//! The events are tied to the newest checkpoint by one range proof rather than one inclusion
//! proof each: O(log n) hashes for the whole run instead of O(k log n), each event hashed
//! once, and a dropped or inserted event breaks the proof because the run must be contiguous.

use serde::{Deserialize, Serialize};

use crate::checkpoint::{Checkpoint, VerifiedCheckpoint, verify_checkpoint};
use crate::error::{Result, TlogError};
use crate::hash::{Hash, b64};
use crate::leaf::EventLeaf;
use crate::note::TrustedKeys;
use crate::proof::{verify_consistency, verify_range};
use crate::tree::MerkleTree;

/// The `format` field of a bundle this version writes and reads.
pub const BUNDLE_FORMAT: &str = "kernos-tlog-bundle/v1";

/// One journal event's stored fields, as exported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleEvent {
    /// Sequence number.
    pub seq: u64,
    /// Timestamp, ms.
    pub ts_ms: i64,
    /// Kind.
    pub kind: String,
    /// Actor.
    pub actor: String,
    /// Organisation.
    pub org: String,
    /// Action id text.
    pub action: Option<String>,
    /// Transaction id text.
    pub tx: Option<String>,
    /// The payload exactly as stored (JSON text, kept as a string, never re-serialised).
    pub payload: String,
}

impl BundleEvent {
    /// The event's leaf fields.
    pub fn leaf(&self) -> EventLeaf<'_> {
        EventLeaf {
            seq: self.seq,
            ts_ms: self.ts_ms,
            kind: &self.kind,
            actor: &self.actor,
            org: &self.org,
            action: self.action.as_deref(),
            tx: self.tx.as_deref(),
            payload: self.payload.as_bytes(),
        }
    }
}

/// Leaves `[start, end)` are in the tree of `size` leaves: the hashes of the maximal subtrees
/// outside the range, left to right.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RangeProof {
    /// First leaf index (first event's seq − 1).
    pub start: u64,
    /// One past the last leaf index.
    pub end: u64,
    /// Tree size (the newest checkpoint's).
    pub size: u64,
    /// Proof hashes.
    #[serde(with = "b64_hashes")]
    pub hashes: Vec<Hash>,
}

/// RFC 9162 consistency proof between two checkpoints' trees.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsistencyProof {
    /// Earlier tree size.
    pub size1: u64,
    /// Later tree size.
    pub size2: u64,
    /// Proof hashes.
    #[serde(with = "b64_hashes")]
    pub hashes: Vec<Hash>,
}

/// An export bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bundle {
    /// [`BUNDLE_FORMAT`].
    pub format: String,
    /// The log's origin (every checkpoint's first line).
    pub origin: String,
    /// The log's public keys, for convenience only: a verifier should get them out of band.
    pub keys: TrustedKeys,
    /// Contiguous events, by seq.
    pub events: Vec<BundleEvent>,
    /// Signed checkpoints (note text), oldest first.
    pub checkpoints: Vec<String>,
    /// The events in the newest checkpoint's tree.
    pub range_proof: RangeProof,
    /// Consistency of each checkpoint with the next one.
    pub consistency: Vec<ConsistencyProof>,
}

/// What a bundle that verified contains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleReport {
    /// Number of events.
    pub events: u64,
    /// First and last seq.
    pub seqs: (u64, u64),
    /// The checkpoints, verified, oldest first.
    pub checkpoints: Vec<VerifiedCheckpoint>,
}

impl std::fmt::Display for BundleReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Some(newest) = self.checkpoints.last() else {
            return Ok(());
        };
        let retired = self
            .checkpoints
            .iter()
            .filter(|c| c.signed_by_retired_key())
            .count();
        write!(
            f,
            "OK: {} events (seq {}..{}) included in {} checkpoint(s) of {}, newest size {} root {}, consistent, Ed25519 + ML-DSA-44 signatures valid",
            self.events,
            self.seqs.0,
            self.seqs.1,
            self.checkpoints.len(),
            newest.checkpoint.origin,
            newest.checkpoint.size,
            b64(&newest.checkpoint.root)
        )?;
        if retired > 0 {
            write!(
                f,
                " ({retired} signed by a retired key inside its overlap window)"
            )?;
        }
        Ok(())
    }
}

impl Bundle {
    /// Builds a bundle: `events` (contiguous by seq) and `checkpoints` (signed notes, oldest
    /// first) of the log whose tree is `tree`.
    pub fn build(
        origin: &str,
        keys: TrustedKeys,
        events: Vec<BundleEvent>,
        checkpoints: Vec<String>,
        tree: &MerkleTree,
    ) -> Result<Self> {
        let mut sizes = Vec::with_capacity(checkpoints.len());
        for c in &checkpoints {
            let note = crate::note::SignedNote::parse(c)?;
            sizes.push(Checkpoint::parse_body(&note.text)?.size);
        }
        let (Some(&newest), Some(first)) = (sizes.last(), events.first()) else {
            return Err(TlogError::Bundle(
                "a bundle needs at least one event and one checkpoint".into(),
            ));
        };
        let start = first.seq.saturating_sub(1);
        let end = start + events.len() as u64;
        let range_proof = RangeProof {
            start,
            end,
            size: newest,
            hashes: tree.range_proof(start, end, newest)?,
        };
        let consistency = sizes
            .windows(2)
            .map(|w| {
                Ok(ConsistencyProof {
                    size1: w[0],
                    size2: w[1],
                    hashes: tree.consistency_proof(w[0], w[1])?,
                })
            })
            .collect::<Result<_>>()?;
        Ok(Bundle {
            format: BUNDLE_FORMAT.into(),
            origin: origin.into(),
            keys,
            events,
            checkpoints,
            range_proof,
            consistency,
        })
    }

    /// Parses a bundle's JSON.
    pub fn from_json(bytes: &[u8]) -> Result<Self> {
        Ok(serde_json::from_slice(bytes)?)
    }

    /// The bundle as JSON.
    pub fn to_json(&self) -> Result<Vec<u8>> {
        Ok(serde_json::to_vec(self)?)
    }
}

/// Checks a bundle against the keys the verifier trusts: every checkpoint's two signatures,
/// consistency between consecutive checkpoints, and that the events, rebuilt into leaves, are
/// exactly the newest checkpoint's leaves `[start, end)`.
pub fn verify_bundle(bundle: &Bundle, trusted: &TrustedKeys) -> Result<BundleReport> {
    let bad = |m: String| Err(TlogError::Bundle(m));
    if bundle.format != BUNDLE_FORMAT {
        return bad(format!("unknown format {:?}", bundle.format));
    }
    let mut checkpoints: Vec<VerifiedCheckpoint> = Vec::new();
    for (i, note) in bundle.checkpoints.iter().enumerate() {
        let v = verify_checkpoint(note, trusted)?;
        if v.checkpoint.origin != bundle.origin {
            return bad(format!(
                "checkpoint {i} is for {:?}, not {:?}",
                v.checkpoint.origin, bundle.origin
            ));
        }
        checkpoints.push(v);
    }
    if bundle.consistency.len() + 1 != checkpoints.len().max(1) {
        return bad(
            "there must be one consistency proof per pair of consecutive checkpoints".into(),
        );
    }
    for (pair, proof) in checkpoints.windows(2).zip(&bundle.consistency) {
        let (a, b) = (&pair[0].checkpoint, &pair[1].checkpoint);
        if (proof.size1, proof.size2) != (a.size, b.size) {
            return bad(format!(
                "the consistency proof {}→{} does not match checkpoints of size {} and {}",
                proof.size1, proof.size2, a.size, b.size
            ));
        }
        verify_consistency(a.size, b.size, &proof.hashes, &a.root, &b.root)?;
    }
    let Some(newest) = checkpoints.last() else {
        return bad("no checkpoint".into());
    };
    let (Some(first), Some(last)) = (bundle.events.first(), bundle.events.last()) else {
        return bad("no events".into());
    };
    let mut leaves = Vec::with_capacity(bundle.events.len());
    for (i, e) in bundle.events.iter().enumerate() {
        let want = first.seq + i as u64;
        if e.seq != want {
            return bad(format!(
                "event seq {want} is missing (found seq {} in its place): an export holds a contiguous run of events",
                e.seq
            ));
        }
        leaves.push(e.leaf().leaf_hash());
    }
    let rp = &bundle.range_proof;
    let start = first
        .seq
        .checked_sub(1)
        .ok_or(TlogError::Bundle("seq 0 is not a journal seq".into()))?;
    if (rp.start, rp.end, rp.size) != (start, start + leaves.len() as u64, newest.checkpoint.size) {
        return bad(format!(
            "the range proof covers leaves {}..{} of size {}, but the events are leaves {}..{} and the newest checkpoint has size {}",
            rp.start,
            rp.end,
            rp.size,
            start,
            start + leaves.len() as u64,
            newest.checkpoint.size
        ));
    }
    verify_range(start, &leaves, rp.size, &rp.hashes, &newest.checkpoint.root)?;
    Ok(BundleReport {
        events: leaves.len() as u64,
        seqs: (first.seq, last.seq),
        checkpoints,
    })
}

/// Hash lists as arrays of standard base64 strings.
mod b64_hashes {
    use serde::{Deserialize, Deserializer, Serializer, de::Error as _};

    use crate::hash::{Hash, b64, unb64_hash};

    pub fn serialize<S: Serializer>(hashes: &[Hash], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(hashes.iter().map(|h| b64(h)))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Hash>, D::Error> {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|s| unb64_hash(s).ok_or_else(|| D::Error::custom("not base64 of 32 bytes")))
            .collect()
    }
}
