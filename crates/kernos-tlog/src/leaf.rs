//! The leaf of one journal event: the exact bytes the Merkle tree commits to.
//!
//! They are built from the event's stored fields — the same fields, in the same order, that
//! the journal's hash chain covers (`kernos_journal::chain::RowRef`) — with integers big-endian
//! and every text length-prefixed, so a verifier in any language rebuilds them from an export
//! without a JSON library's idea of "equivalent" getting in the way:
//!
//! ```text
//! b"kernos-event-v1\0" || u64be(seq) || i64be(ts_ms)
//!   || field(kind) || field(actor) || field(org) || field(action?) || field(tx?) || field(payload)
//! field(None) = 0x00        field(Some(b)) = 0x01 || u64be(len(b)) || b
//! ```
//!
//! Leaf index = seq − 1 (the journal numbers events from 1, without gaps).

use sha2::{Digest, Sha256};

use crate::hash::Hash;

/// Domain separation: these bytes can never be mistaken for another Kernos structure.
pub const LEAF_DOMAIN: &[u8] = b"kernos-event-v1\0";

/// The stored fields of one journal event, borrowed (the shape of the journal's `RowRef`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventLeaf<'a> {
    /// Sequence number (≥ 1); the leaf index is `seq − 1`.
    pub seq: u64,
    /// Timestamp, milliseconds since the Unix epoch.
    pub ts_ms: i64,
    /// Event kind (`action.finished`, …).
    pub kind: &'a str,
    /// Who acted.
    pub actor: &'a str,
    /// Organisation.
    pub org: &'a str,
    /// Action id text, if any.
    pub action: Option<&'a str>,
    /// Transaction id text, if any.
    pub tx: Option<&'a str>,
    /// The payload exactly as stored (JSON text), not a re-serialisation.
    pub payload: &'a [u8],
}

impl EventLeaf<'_> {
    /// The leaf bytes (see the module documentation).
    pub fn leaf_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.payload.len());
        self.write(&mut |b: &[u8]| out.extend_from_slice(b));
        out
    }

    /// Appends the leaf bytes to `out` (to queue many leaves in one buffer).
    pub fn write_to(&self, out: &mut Vec<u8>) {
        self.write(&mut |b: &[u8]| out.extend_from_slice(b));
    }

    /// The RFC 6962 leaf hash of these bytes, without building them in memory first.
    pub fn leaf_hash(&self) -> Hash {
        let mut h = Sha256::new();
        h.update([0x00]);
        self.write(&mut |b: &[u8]| h.update(b));
        h.finalize().into()
    }

    /// The one definition of the encoding, fed to a byte sink.
    fn write(&self, out: &mut dyn FnMut(&[u8])) {
        out(LEAF_DOMAIN);
        out(&self.seq.to_be_bytes());
        out(&self.ts_ms.to_be_bytes());
        field(out, Some(self.kind.as_bytes()));
        field(out, Some(self.actor.as_bytes()));
        field(out, Some(self.org.as_bytes()));
        field(out, self.action.map(str::as_bytes));
        field(out, self.tx.map(str::as_bytes));
        field(out, Some(self.payload));
    }
}

/// Length-prefixed field with a distinct marker for "absent", so `None` and `Some("")` differ
/// and no two field lists encode alike.
fn field(out: &mut dyn FnMut(&[u8]), v: Option<&[u8]>) {
    match v {
        None => out(&[0]),
        Some(b) => {
            out(&[1]);
            out(&(b.len() as u64).to_be_bytes());
            out(b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::leaf_hash;

    fn ev(payload: &'static [u8]) -> EventLeaf<'static> {
        EventLeaf {
            seq: 1,
            ts_ms: 5,
            kind: "k",
            actor: "a",
            org: "o",
            action: None,
            tx: None,
            payload,
        }
    }

    #[test]
    fn the_encoding_is_exactly_as_documented() {
        let mut e = ev(b"{}");
        e.tx = Some("t");
        let mut want = b"kernos-event-v1\0".to_vec();
        want.extend(1u64.to_be_bytes());
        want.extend(5i64.to_be_bytes());
        for f in [&b"k"[..], b"a", b"o"] {
            want.push(1);
            want.extend((f.len() as u64).to_be_bytes());
            want.extend(f);
        }
        want.push(0); // action: None
        want.extend([1, 0, 0, 0, 0, 0, 0, 0, 1, b't']);
        want.extend([1, 0, 0, 0, 0, 0, 0, 0, 2, b'{', b'}']);
        assert_eq!(e.leaf_bytes(), want);
        assert_eq!(
            e.leaf_hash(),
            leaf_hash(&want),
            "streamed hash = hash of the bytes"
        );
    }

    #[test]
    fn every_field_matters_and_boundaries_are_unambiguous() {
        let base = ev(b"{}").leaf_hash();
        let mut e = ev(b"{}");
        e.action = Some("");
        assert_ne!(base, e.leaf_hash(), "None differs from Some(\"\")");
        let mut e = ev(b"{}");
        e.kind = "ka";
        e.actor = "";
        assert_ne!(base, e.leaf_hash());
        assert_ne!(base, ev(b"{ }").leaf_hash());
        let mut e = ev(b"{}");
        e.seq = 2;
        assert_ne!(base, e.leaf_hash());
        let mut e = ev(b"{}");
        e.ts_ms = -5;
        assert_ne!(base, e.leaf_hash());
    }
}
