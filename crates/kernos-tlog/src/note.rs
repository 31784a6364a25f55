//! C2SP signed notes (<https://c2sp.org/signed-note>) and verifier keys.
//!
//! A note is text ending in a newline, a blank line, then one line per signature:
//! `— <key name> base64(u32be key ID || signature)`. A key is identified by name and key ID
//! together, the ID being `SHA-256(name || 0x0A || type || public key)[:4]`; a verifier
//! ignores signatures by keys it does not know and must check the ones it does.

use sha2::{Digest, Sha256};

use crate::error::{Alg, Result, TlogError};

/// Signature type byte of Ed25519 signed-note signatures.
pub const ED25519_TYPE: u8 = 0x01;
/// Signature type byte of ML-DSA-44 timestamped cosignatures (c2sp.org/tlog-cosignature).
pub const MLDSA44_TYPE: u8 = 0x06;

/// Most signatures a note may carry before it is refused (the spec asks for at least 16).
const MAX_SIGNATURES: usize = 64;

impl Alg {
    /// The signed-note signature type byte.
    pub fn type_byte(self) -> u8 {
        match self {
            Alg::Ed25519 => ED25519_TYPE,
            Alg::MlDsa44 => MLDSA44_TYPE,
        }
    }

    /// Public key length in bytes.
    pub fn public_len(self) -> usize {
        match self {
            Alg::Ed25519 => 32,
            Alg::MlDsa44 => fips204::ml_dsa_44::PK_LEN,
        }
    }
}

/// `SHA-256(name || 0x0A || type || public)[:4]`, big-endian.
pub fn key_id(name: &str, alg: Alg, public: &[u8]) -> u32 {
    key_id_of_type(name, alg.type_byte(), public)
}

/// The signed-note key ID for any signature type byte (cosignatures have their own types).
pub(crate) fn key_id_of_type(name: &str, type_byte: u8, public: &[u8]) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([b'\n', type_byte]);
    h.update(public);
    let d = h.finalize();
    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

/// One signature line of a note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteSignature {
    /// Key name.
    pub name: String,
    /// Key ID.
    pub key_id: u32,
    /// The signature bytes after the key ID.
    pub sig: Vec<u8>,
}

/// A parsed signed note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedNote {
    /// The signed text, including its final newline.
    pub text: String,
    /// The signatures, in order.
    pub signatures: Vec<NoteSignature>,
}

impl SignedNote {
    /// Parses a note; refuses control characters, unsigned notes and malformed lines.
    pub fn parse(note: &str) -> Result<Self> {
        let bad = |m: &str| TlogError::Note(m.to_string());
        if note.chars().any(|c| c < ' ' && c != '\n') {
            return Err(bad("control characters other than newline"));
        }
        let split = note
            .rfind("\n\n")
            .ok_or_else(|| bad("no blank line before the signatures"))?;
        let text = note[..=split].to_string();
        let block = &note[split + 2..];
        if !block.ends_with('\n') {
            return Err(bad("the last signature line does not end in a newline"));
        }
        let mut signatures = Vec::new();
        for line in block[..block.len() - 1].split('\n') {
            let rest = line
                .strip_prefix("— ")
                .ok_or_else(|| bad("a signature line does not start with an em dash"))?;
            let (name, sig) = rest
                .split_once(' ')
                .ok_or_else(|| bad("a signature line has no signature"))?;
            if name.is_empty() || name.contains('+') || sig.contains(' ') {
                return Err(bad("a signature line has a bad key name"));
            }
            let raw = crate::hash::unb64(sig)
                .filter(|r| r.len() > 4)
                .ok_or_else(|| bad("a signature is not base64 of a key ID and signature"))?;
            signatures.push(NoteSignature {
                name: name.to_string(),
                key_id: u32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]),
                sig: raw[4..].to_vec(),
            });
        }
        if signatures.len() > MAX_SIGNATURES {
            return Err(bad("too many signatures"));
        }
        Ok(SignedNote { text, signatures })
    }
}

impl std::fmt::Display for SignedNote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)?;
        f.write_str("\n")?;
        for s in &self.signatures {
            let mut raw = s.key_id.to_be_bytes().to_vec();
            raw.extend_from_slice(&s.sig);
            writeln!(f, "— {} {}", s.name, crate::hash::b64(&raw))?;
        }
        Ok(())
    }
}

/// A public key a verifier trusts, with its rotation status.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "VerifierKeyJson", into = "VerifierKeyJson")]
pub struct VerifierKey {
    /// Key name (the log's origin).
    pub name: String,
    /// Algorithm.
    pub alg: Alg,
    /// Public key bytes.
    pub public: Vec<u8>,
    /// When it was rotated out (Unix seconds), if it was.
    pub retired_at: Option<u64>,
    /// Signatures dated after this (Unix seconds) are refused; `None` while the key is active.
    pub not_after: Option<u64>,
}

impl VerifierKey {
    /// The key ID.
    pub fn key_id(&self) -> u32 {
        key_id(&self.name, self.alg, &self.public)
    }

    /// `name+keyid`: how errors and reports name the key.
    pub fn label(&self) -> String {
        format!("{}+{:08x}", self.name, self.key_id())
    }

    /// The signed-note verifier key: `<name>+<hex key ID>+<base64(type || public key)>`.
    pub fn vkey(&self) -> String {
        let mut raw = vec![self.alg.type_byte()];
        raw.extend_from_slice(&self.public);
        format!("{}+{}", self.label(), crate::hash::b64(&raw))
    }

    /// Parses a verifier key (active: no retirement); checks that its ID matches its content.
    pub fn from_vkey(vkey: &str) -> Result<Self> {
        let v = ParsedVkey::parse(
            vkey,
            &[(ED25519_TYPE, Alg::Ed25519), (MLDSA44_TYPE, Alg::MlDsa44)],
        )?;
        v.check_id(key_id(v.name, v.alg, &v.public))?;
        Ok(VerifierKey {
            name: v.name.to_string(),
            alg: v.alg,
            public: v.public,
            retired_at: None,
            not_after: None,
        })
    }
}

/// A vkey `<name>+<hex key ID>+<base64(type || key)>` taken apart: the shared half of parsing
/// a log's verifier key and a witness's cosigning key (their type bytes and key IDs differ).
pub(crate) struct ParsedVkey<'a> {
    vkey: &'a str,
    pub(crate) name: &'a str,
    id: &'a str,
    pub(crate) alg: Alg,
    pub(crate) public: Vec<u8>,
}

impl<'a> ParsedVkey<'a> {
    /// Splits `vkey`, decodes the key and maps its type byte through `types`.
    pub(crate) fn parse(vkey: &'a str, types: &[(u8, Alg)]) -> Result<Self> {
        let bad = |reason: String| TlogError::BadKey {
            key: vkey.to_string(),
            reason,
        };
        let mut parts = vkey.splitn(3, '+');
        let (Some(name), Some(id), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad("expected <name>+<hex key ID>+<base64 key>".into()));
        };
        let raw = crate::hash::unb64(key).ok_or_else(|| bad("the key is not base64".into()))?;
        let found = raw
            .split_first()
            .and_then(|(t, p)| types.iter().find(|(ty, _)| ty == t).map(|(_, a)| (*a, p)));
        let Some((alg, public)) = found else {
            let allowed: Vec<String> = types
                .iter()
                .map(|(t, a)| format!("{a} (0x{t:02x})"))
                .collect();
            return Err(bad(format!("not a {} key", allowed.join(" or "))));
        };
        if name.is_empty() || public.len() != alg.public_len() {
            return Err(bad("wrong public key length or empty name".into()));
        }
        Ok(ParsedVkey {
            vkey,
            name,
            id,
            alg,
            public: public.to_vec(),
        })
    }

    /// Fails unless the vkey's key ID is 8 hex digits equal to `expected`.
    pub(crate) fn check_id(&self, expected: u32) -> Result<()> {
        if self.id.len() == 8 && u32::from_str_radix(self.id, 16).ok() == Some(expected) {
            return Ok(());
        }
        Err(TlogError::BadKey {
            key: self.vkey.to_string(),
            reason: "the key ID does not match the name and key".into(),
        })
    }
}

/// How a verifier key travels in JSON (bundles, `keys.json`): the vkey text plus rotation.
#[derive(serde::Serialize, serde::Deserialize)]
struct VerifierKeyJson {
    vkey: String,
    #[serde(default)]
    retired_at: Option<u64>,
    #[serde(default)]
    not_after: Option<u64>,
}

impl TryFrom<VerifierKeyJson> for VerifierKey {
    type Error = TlogError;
    fn try_from(j: VerifierKeyJson) -> Result<Self> {
        let mut k = VerifierKey::from_vkey(&j.vkey)?;
        k.retired_at = j.retired_at;
        k.not_after = j.not_after;
        Ok(k)
    }
}

impl From<VerifierKey> for VerifierKeyJson {
    fn from(k: VerifierKey) -> Self {
        VerifierKeyJson {
            vkey: k.vkey(),
            retired_at: k.retired_at,
            not_after: k.not_after,
        }
    }
}

/// The keys a verifier trusts for a log.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct TrustedKeys(pub Vec<VerifierKey>);

impl TrustedKeys {
    /// The key with this name and ID, if trusted.
    pub fn find(&self, name: &str, key_id: u32) -> Option<&VerifierKey> {
        self.0
            .iter()
            .find(|k| k.name == name && k.key_id() == key_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_round_trip_and_malformed_ones_are_refused() {
        let n = SignedNote {
            text: "a\nb\n\nc\n".into(),
            signatures: vec![NoteSignature {
                name: "example.com/log".into(),
                key_id: 0x0102_0304,
                sig: vec![9; 64],
            }],
        };
        let s = n.to_string();
        assert_eq!(
            SignedNote::parse(&s).unwrap(),
            n,
            "the last blank line splits"
        );
        assert!(SignedNote::parse("a\n").is_err());
        assert!(SignedNote::parse("a\n\n- x AAAAAAA=\n").is_err());
        assert!(SignedNote::parse("a\r\n\n— x AQIDBAU=\n").is_err());
        assert!(SignedNote::parse("a\n\n— x+y AQIDBAU=\n").is_err());
        assert!(SignedNote::parse("a\n\n— x AQIDBAU=").is_err());
    }

    #[test]
    fn vkeys_round_trip_and_a_wrong_id_is_refused() {
        let k = VerifierKey {
            name: "kernos.test/log".into(),
            alg: Alg::Ed25519,
            public: vec![7; 32],
            retired_at: None,
            not_after: None,
        };
        let v = k.vkey();
        assert!(v.starts_with(&format!("kernos.test/log+{:08x}+AQcH", k.key_id())));
        assert_eq!(VerifierKey::from_vkey(&v).unwrap(), k);
        let wrong = v.replacen(&format!("{:08x}", k.key_id()), "00000000", 1);
        assert!(VerifierKey::from_vkey(&wrong).is_err());
        assert!(VerifierKey::from_vkey("nope").is_err());
    }
}
