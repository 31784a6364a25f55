//! What an auditor checks of a witness: every stored `log.cosigned` note against the
//! witness's public keys (given out of band), one report per cosigned checkpoint. A witness
//! cosignature says "this witness saw this tree and no smaller one after a larger one"; it is
//! only worth something if it verifies with the witness's own keys, so a bad one fails the
//! audit and one by a key the auditor did not give counts as not cosigned.

use kernos_journal::{Journal, Query};
use kernos_tlog::{Alg, Checkpoint, SignedNote, WitnessKey, verify_cosignatures};
use serde::Serialize;

use crate::COSIGNED_KIND;
use crate::error::{LogError, Result};

/// What one stored cosigned checkpoint came to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum CosignedStatus {
    /// Cosigned by the given witness key(s): an Ed25519 and an ML-DSA-44 cosignature.
    Ok {
        /// The witness's name.
        witness: String,
        /// When it cosigned (Unix seconds, from the Ed25519 cosignature).
        timestamp: u64,
    },
    /// A cosignature by a given witness key does not verify: the note or the signature was
    /// altered.
    BadCosignature {
        /// What failed.
        detail: String,
    },
    /// No cosignature of one algorithm or both by the given key(s): another witness, or keys
    /// the auditor did not pass.
    NotCosigned {
        /// What is missing.
        detail: String,
    },
}

impl CosignedStatus {
    /// Whether this fails the audit.
    pub fn failed(&self) -> bool {
        !matches!(self, CosignedStatus::Ok { .. })
    }
}

/// One stored `log.cosigned` event, checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CosignedCheck {
    /// The seq of the event that stores it.
    pub seq: u64,
    /// The tree size the checkpoint signs.
    pub size: u64,
    /// The witness URL it was pushed to.
    pub witness_url: Option<String>,
    /// The result.
    #[serde(flatten)]
    pub status: CosignedStatus,
}

/// Checks every stored `log.cosigned` note, oldest first, against the `witness` keys: both
/// an Ed25519 `cosignature/v1` and an ML-DSA-44 cosignature by them are required.
pub fn verify_cosigned(j: &Journal, witness: &[WitnessKey]) -> Result<Vec<CosignedCheck>> {
    let mut out = Vec::new();
    let mut bad = None;
    j.for_each(&Query::kind(COSIGNED_KIND), |e| {
        let Some(note) = e.payload["note"].as_str() else {
            bad = Some(e.seq);
            return false;
        };
        let size = SignedNote::parse(note)
            .ok()
            .and_then(|n| Checkpoint::parse_body(&n.text).ok())
            .map_or_else(|| e.payload["size"].as_u64().unwrap_or(0), |c| c.size);
        out.push(CosignedCheck {
            seq: e.seq,
            size,
            witness_url: e.payload["witness"].as_str().map(str::to_string),
            status: check_note(note, witness),
        });
        true
    })?;
    match bad {
        Some(seq) => Err(LogError::Invalid(format!(
            "event {seq} ({COSIGNED_KIND}) has no note"
        ))),
        None => Ok(out),
    }
}

/// Checks one cosigned note against the witness keys.
pub fn check_note(note: &str, witness: &[WitnessKey]) -> CosignedStatus {
    let ok = match verify_cosignatures(note, witness) {
        Ok(ok) => ok,
        Err(e) => {
            return CosignedStatus::BadCosignature {
                detail: e.to_string(),
            };
        }
    };
    let ed = ok.iter().find(|c| c.key.alg == Alg::Ed25519);
    let ml = ok.iter().find(|c| c.key.alg == Alg::MlDsa44);
    match (ed, ml) {
        (Some(ed), Some(_)) => CosignedStatus::Ok {
            witness: ed.key.name.clone(),
            timestamp: ed.timestamp,
        },
        (None, None) => CosignedStatus::NotCosigned {
            detail: "no cosignature by the given witness key(s)".into(),
        },
        (None, Some(_)) => CosignedStatus::NotCosigned {
            detail: "no Ed25519 cosignature by the given witness key(s)".into(),
        },
        (Some(_), None) => CosignedStatus::NotCosigned {
            detail: "no ML-DSA-44 cosignature by the given witness key(s)".into(),
        },
    }
}
