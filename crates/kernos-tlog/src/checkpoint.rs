//! Checkpoints (C2SP tlog-checkpoint): the signed statement "this log, at this size, has this
//! root", carrying two signatures by the log's keys.
//!
//! - Ed25519, a plain signed-note signature (type 0x01) over the note text;
//! - ML-DSA-44, a C2SP tlog-cosignature (type 0x06): `u64be(timestamp) || signature` over the
//!   `cosigned_message` (label `subtree/v1\n\0`, the key name, the timestamp, the origin,
//!   start 0, end = size, the root), empty FIPS 204 context.
//!
//! A verifier needs both, from trusted keys: the classical one is what today's tlog tooling
//! and witnesses check; the post-quantum one keeps the log's history unforgeable once a
//! quantum computer can forge Ed25519. The ML-DSA timestamp is the checkpoint's signing
//! time; it decides whether a retired key was still inside its overlap window.

use ed25519_dalek::{Signature, VerifyingKey};
use fips204::ml_dsa_44;
use fips204::traits::{SerDes, Verifier as _};

use crate::error::{Alg, Result, TlogError};
use crate::hash::{Hash, b64, unb64_hash};
use crate::keys::KeySet;
use crate::note::{NoteSignature, SignedNote, TrustedKeys, VerifierKey};

/// The label that starts every ML-DSA-44 cosigned message.
const COSIGNED_LABEL: &[u8; 12] = b"subtree/v1\n\0";

/// A tree head: the body of a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's identity (`kernos.example/host/journal`).
    pub origin: String,
    /// Number of leaves.
    pub size: u64,
    /// Merkle tree root at that size.
    pub root: Hash,
    /// Extension lines (not recommended; Ed25519 signs them, ML-DSA-44 does not).
    pub extensions: Vec<String>,
}

impl Checkpoint {
    /// `<origin>\n<size>\n<base64 root>\n` plus any extension lines.
    pub fn body(&self) -> String {
        let mut s = format!("{}\n{}\n{}\n", self.origin, self.size, b64(&self.root));
        for e in &self.extensions {
            s.push_str(e);
            s.push('\n');
        }
        s
    }

    /// Parses a checkpoint body (the note text).
    pub fn parse_body(text: &str) -> Result<Self> {
        let bad = |m: &str| TlogError::Note(m.to_string());
        let lines: Vec<&str> = text
            .strip_suffix('\n')
            .ok_or_else(|| bad("the text does not end in a newline"))?
            .split('\n')
            .collect();
        let [origin, size, root, ext @ ..] = lines.as_slice() else {
            return Err(bad("fewer than three lines"));
        };
        let size_ok = !size.is_empty()
            && size.bytes().all(|b| b.is_ascii_digit())
            && (*size == "0" || !size.starts_with('0'));
        let size = size
            .parse()
            .ok()
            .filter(|_| size_ok)
            .ok_or_else(|| bad("the size is not a decimal number"))?;
        if origin.is_empty() || ext.iter().any(|l| l.is_empty()) {
            return Err(bad("an empty origin or extension line"));
        }
        Ok(Checkpoint {
            origin: origin.to_string(),
            size,
            root: unb64_hash(root).ok_or_else(|| bad("the root is not base64 of 32 bytes"))?,
            extensions: ext.iter().map(|s| s.to_string()).collect(),
        })
    }

    /// Signs with the active Ed25519 and ML-DSA-44 keys, dated `timestamp` (Unix seconds);
    /// returns the signed note text.
    pub fn sign(&self, keys: &KeySet, timestamp: u64) -> Result<String> {
        let text = self.body();
        let (ed_sig, ed_key) = keys.sign_ed25519(text.as_bytes());
        let msg = cosigned_message(keys.name(), timestamp, self)?;
        let (ml_sig, ml_key) = keys.sign_mldsa44(&msg)?;
        let mut ml = timestamp.to_be_bytes().to_vec();
        ml.extend_from_slice(&ml_sig);
        let note = SignedNote {
            text,
            signatures: vec![
                NoteSignature {
                    name: ed_key.name.clone(),
                    key_id: ed_key.key_id(),
                    sig: ed_sig.to_vec(),
                },
                NoteSignature {
                    name: ml_key.name.clone(),
                    key_id: ml_key.key_id(),
                    sig: ml,
                },
            ],
        };
        Ok(note.to_string())
    }
}

/// A checkpoint whose two signatures verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedCheckpoint {
    /// The tree head.
    pub checkpoint: Checkpoint,
    /// Signing time (Unix seconds) from the ML-DSA-44 cosignature.
    pub timestamp: u64,
    /// The Ed25519 key that signed it.
    pub ed25519: VerifierKey,
    /// The ML-DSA-44 key that signed it.
    pub mldsa44: VerifierKey,
}

impl VerifiedCheckpoint {
    /// Whether a retired key (inside its overlap window) signed it.
    pub fn signed_by_retired_key(&self) -> bool {
        self.ed25519.retired_at.is_some() || self.mldsa44.retired_at.is_some()
    }
}

/// Verifies a signed checkpoint: an Ed25519 and an ML-DSA-44 signature by trusted keys, each
/// inside its key's validity. Signatures by unknown keys are ignored (C2SP signed-note); a
/// signature by a trusted key that fails rejects the whole note.
pub fn verify_checkpoint(note: &str, trusted: &TrustedKeys) -> Result<VerifiedCheckpoint> {
    let note = SignedNote::parse(note)?;
    let checkpoint = Checkpoint::parse_body(&note.text)?;
    let size = checkpoint.size;
    let mut ed_ok: Vec<&VerifierKey> = Vec::new();
    let mut ml_ok: Vec<(&VerifierKey, u64)> = Vec::new();
    for s in &note.signatures {
        let Some(key) = trusted.find(&s.name, s.key_id) else {
            continue;
        };
        let bad = || TlogError::BadSignature {
            alg: key.alg,
            key: key.label(),
            size,
        };
        match key.alg {
            Alg::Ed25519 => {
                if !ed25519_verifies(key, note.text.as_bytes(), &s.sig) {
                    return Err(bad());
                }
                ed_ok.push(key);
            }
            Alg::MlDsa44 => {
                let ts = mldsa44_verifies(key, &checkpoint, &s.sig).ok_or_else(bad)?;
                ml_ok.push((key, ts));
            }
        }
    }
    // The ML-DSA-44 signature dates the checkpoint; each signature must be inside its key's
    // validity at that date.
    let in_window = |k: &VerifierKey, ts: u64| k.not_after.is_none_or(|na| ts <= na);
    let rotated_out = |k: &VerifierKey, ts: u64| TlogError::RotatedOutKey {
        alg: k.alg,
        key: k.label(),
        size,
        signed_at: ts,
        not_after: k.not_after.unwrap_or(0),
    };
    let (mldsa44, timestamp) = match ml_ok.iter().find(|(k, ts)| in_window(k, *ts)) {
        Some(&(k, ts)) => (k.clone(), ts),
        None => {
            return Err(match ml_ok.first() {
                Some(&(k, ts)) => rotated_out(k, ts),
                None => TlogError::MissingSignature {
                    alg: Alg::MlDsa44,
                    size,
                },
            });
        }
    };
    let ed25519 = match ed_ok.iter().find(|k| in_window(k, timestamp)) {
        Some(k) => (*k).clone(),
        None => {
            return Err(match ed_ok.first() {
                Some(k) => rotated_out(k, timestamp),
                None => TlogError::MissingSignature {
                    alg: Alg::Ed25519,
                    size,
                },
            });
        }
    };
    Ok(VerifiedCheckpoint {
        checkpoint,
        timestamp,
        ed25519,
        mldsa44,
    })
}

fn ed25519_verifies(key: &VerifierKey, msg: &[u8], sig: &[u8]) -> bool {
    let (Ok(pk), Ok(sig)) = (
        <[u8; 32]>::try_from(key.public.as_slice()),
        <[u8; 64]>::try_from(sig),
    ) else {
        return false;
    };
    VerifyingKey::from_bytes(&pk)
        .is_ok_and(|vk| vk.verify_strict(msg, &Signature::from_bytes(&sig)).is_ok())
}

/// Checks a `u64be(timestamp) || ML-DSA-44 signature` cosignature; returns its timestamp.
pub(crate) fn mldsa44_verifies(key: &VerifierKey, cp: &Checkpoint, sig: &[u8]) -> Option<u64> {
    if sig.len() != 8 + ml_dsa_44::SIG_LEN {
        return None;
    }
    let ts = u64::from_be_bytes(sig[..8].try_into().ok()?);
    let pk = ml_dsa_44::PublicKey::try_from_bytes(key.public.as_slice().try_into().ok()?).ok()?;
    let msg = cosigned_message(&key.name, ts, cp).ok()?;
    let s: [u8; ml_dsa_44::SIG_LEN] = sig[8..].try_into().ok()?;
    (ts <= i64::MAX as u64 && pk.verify(&msg, &s, &[])).then_some(ts)
}

/// The tlog-cosignature `cosigned_message` for a whole checkpoint (start 0, end = size).
pub(crate) fn cosigned_message(name: &str, timestamp: u64, cp: &Checkpoint) -> Result<Vec<u8>> {
    let short = |what: &str, s: &str| {
        u8::try_from(s.len())
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| TlogError::Note(format!("the {what} must be 1 to 255 bytes")))
    };
    let mut m = COSIGNED_LABEL.to_vec();
    m.push(short("key name", name)?);
    m.extend_from_slice(name.as_bytes());
    m.extend_from_slice(&timestamp.to_be_bytes());
    m.push(short("origin", &cp.origin)?);
    m.extend_from_slice(cp.origin.as_bytes());
    m.extend_from_slice(&0u64.to_be_bytes());
    m.extend_from_slice(&cp.size.to_be_bytes());
    m.extend_from_slice(&cp.root);
    Ok(m)
}
