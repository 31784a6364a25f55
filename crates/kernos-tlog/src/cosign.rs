//! Witness cosignatures (C2SP tlog-cosignature): what a witness adds to a log's checkpoint
//! after checking that it extends every checkpoint of that log the witness saw before.
//!
//! A witness signs with its own [`KeySet`] (name = the witness's name), in both forms the spec
//! defines:
//!
//! - **Ed25519, type 0x04** (`cosignature/v1`): the signature is
//!   `u64be(timestamp) || Ed25519(msg)` with `msg = "cosignature/v1\ntime <timestamp>\n" ||
//!   <checkpoint note text>`; key ID = SHA-256(name ‖ 0x0A ‖ 0x04 ‖ key)[:4]. What today's
//!   witness network speaks.
//! - **ML-DSA-44, type 0x06** (`subtree/v1`): the same message the log's own ML-DSA-44
//!   signature covers, with the witness's name ([`crate::checkpoint`]).
//!
//! The timestamp is when the witness cosigned: it vouches that at that time, the checkpoint
//! was consistent with everything it had seen of the log.

use ed25519_dalek::{Signature, VerifyingKey};

use crate::checkpoint::{Checkpoint, cosigned_message, mldsa44_verifies};
use crate::error::{Alg, Result, TlogError};
use crate::keys::KeySet;
use crate::note::{MLDSA44_TYPE, NoteSignature, SignedNote, VerifierKey};

/// Signature type byte of Ed25519 `cosignature/v1` cosignatures.
pub const COSIGNATURE_V1_TYPE: u8 = 0x04;

/// The `cosignature/v1` message for a checkpoint's note text at `timestamp`.
fn v1_message(text: &str, timestamp: u64) -> Vec<u8> {
    let mut m = format!("cosignature/v1\ntime {timestamp}\n").into_bytes();
    m.extend_from_slice(text.as_bytes());
    m
}

/// Key ID of a `cosignature/v1` Ed25519 key: SHA-256(name ‖ 0x0A ‖ 0x04 ‖ key)[:4].
fn v1_key_id(name: &str, public: &[u8]) -> u32 {
    crate::note::key_id_of_type(name, COSIGNATURE_V1_TYPE, public)
}

/// A witness's public cosigning key, as configured by the log that pushes to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WitnessKey {
    /// The witness's name.
    pub name: String,
    /// Ed25519 (`cosignature/v1`, type 0x04) or ML-DSA-44 (type 0x06).
    pub alg: Alg,
    /// Public key bytes.
    pub public: Vec<u8>,
}

impl WitnessKey {
    fn type_byte(&self) -> u8 {
        match self.alg {
            Alg::Ed25519 => COSIGNATURE_V1_TYPE,
            Alg::MlDsa44 => MLDSA44_TYPE,
        }
    }

    /// The key ID.
    pub fn key_id(&self) -> u32 {
        match self.alg {
            Alg::Ed25519 => v1_key_id(&self.name, &self.public),
            Alg::MlDsa44 => crate::note::key_id(&self.name, Alg::MlDsa44, &self.public),
        }
    }

    /// `<name>+<hex key ID>+<base64(type || key)>`.
    pub fn vkey(&self) -> String {
        let mut raw = vec![self.type_byte()];
        raw.extend_from_slice(&self.public);
        format!(
            "{}+{:08x}+{}",
            self.name,
            self.key_id(),
            crate::hash::b64(&raw)
        )
    }

    /// Parses a witness vkey (type 0x04 or 0x06) and checks its key ID.
    pub fn from_vkey(vkey: &str) -> Result<Self> {
        let v = crate::note::ParsedVkey::parse(
            vkey,
            &[
                (COSIGNATURE_V1_TYPE, Alg::Ed25519),
                (MLDSA44_TYPE, Alg::MlDsa44),
            ],
        )?;
        let k = WitnessKey {
            name: v.name.to_string(),
            alg: v.alg,
            public: v.public.clone(),
        };
        v.check_id(k.key_id())?;
        Ok(k)
    }
}

/// The witness keys of a key set (its active generation): Ed25519 as `cosignature/v1`, then
/// ML-DSA-44.
pub fn witness_keys(keys: &KeySet) -> Vec<WitnessKey> {
    keys.public()
        .0
        .into_iter()
        .filter(|k| k.retired_at.is_none())
        .map(|k| WitnessKey {
            name: k.name,
            alg: k.alg,
            public: k.public,
        })
        .collect()
}

/// Cosigns a checkpoint note (its text; any signatures on it are ignored) with the witness's
/// active keys at `timestamp`: the two signature lines to add to the note.
pub fn cosign(keys: &KeySet, note: &str, timestamp: u64) -> Result<Vec<NoteSignature>> {
    let text = SignedNote::parse(note)?.text;
    let cp = Checkpoint::parse_body(&text)?;
    let (ed, ed_key) = keys.sign_ed25519(&v1_message(&text, timestamp));
    let mut ed_sig = timestamp.to_be_bytes().to_vec();
    ed_sig.extend_from_slice(&ed);
    let (ml, ml_key) = keys.sign_mldsa44(&cosigned_message(keys.name(), timestamp, &cp)?)?;
    let mut ml_sig = timestamp.to_be_bytes().to_vec();
    ml_sig.extend_from_slice(&ml);
    Ok(vec![
        NoteSignature {
            name: keys.name().to_string(),
            key_id: v1_key_id(keys.name(), &ed_key.public),
            sig: ed_sig,
        },
        NoteSignature {
            name: keys.name().to_string(),
            key_id: ml_key.key_id(),
            sig: ml_sig,
        },
    ])
}

/// One cosignature that verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedCosignature {
    /// The witness key.
    pub key: WitnessKey,
    /// When the witness cosigned (Unix seconds).
    pub timestamp: u64,
}

/// Checks the cosignatures on `note` by the given witness keys: every signature line by one
/// of them must verify (a bad one rejects the note); lines by other keys (the log's own, other
/// witnesses') are ignored. Returns the ones that verified.
pub fn verify_cosignatures(note: &str, witness: &[WitnessKey]) -> Result<Vec<VerifiedCosignature>> {
    let parsed = SignedNote::parse(note)?;
    let cp = Checkpoint::parse_body(&parsed.text)?;
    let mut out = Vec::new();
    for s in &parsed.signatures {
        let Some(key) = witness
            .iter()
            .find(|k| k.name == s.name && k.key_id() == s.key_id)
        else {
            continue;
        };
        let bad = || TlogError::BadSignature {
            alg: key.alg,
            key: format!("{}+{:08x}", key.name, key.key_id()),
            size: cp.size,
        };
        let timestamp = match key.alg {
            Alg::Ed25519 => {
                let ok = s.sig.len() == 8 + 64 && {
                    let ts = u64::from_be_bytes(s.sig[..8].try_into().map_err(|_| bad())?);
                    let sig: [u8; 64] = s.sig[8..].try_into().map_err(|_| bad())?;
                    let pk: [u8; 32] = key.public.as_slice().try_into().map_err(|_| bad())?;
                    VerifyingKey::from_bytes(&pk).is_ok_and(|vk| {
                        vk.verify_strict(
                            &v1_message(&parsed.text, ts),
                            &Signature::from_bytes(&sig),
                        )
                        .is_ok()
                    })
                };
                if !ok {
                    return Err(bad());
                }
                u64::from_be_bytes(s.sig[..8].try_into().map_err(|_| bad())?)
            }
            Alg::MlDsa44 => {
                let vk = VerifierKey {
                    name: key.name.clone(),
                    alg: Alg::MlDsa44,
                    public: key.public.clone(),
                    retired_at: None,
                    not_after: None,
                };
                mldsa44_verifies(&vk, &cp, &s.sig).ok_or_else(bad)?
            }
        };
        out.push(VerifiedCosignature {
            key: key.clone(),
            timestamp,
        });
    }
    Ok(out)
}

/// `note` with `extra` signature lines appended (a log adds its witnesses' cosignatures).
pub fn add_signatures(note: &str, extra: &[NoteSignature]) -> Result<String> {
    let mut n = SignedNote::parse(note)?;
    for s in extra {
        if !n.signatures.contains(s) {
            n.signatures.push(s.clone());
        }
    }
    Ok(n.to_string())
}
