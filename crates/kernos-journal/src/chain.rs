//! The hash chain: how an event's hash is computed from its stored fields and its predecessor.
//!
//! The hash covers the exact bytes stored in the row (the payload as stored text, not a
//! re-serialisation), so verification needs no JSON parsing and cannot be fooled by an edit that
//! keeps the JSON "equivalent". The sequence number is hashed too, so moving a row to another
//! position breaks the chain even if its content is untouched.

/// The hash that precedes the first event.
pub const GENESIS: [u8; 32] = [0; 32];

/// Domain separation: a hash from this chain can never equal one computed for another purpose.
const DOMAIN: &[u8] = b"kernos-journal-v1\0";

/// The stored fields of one row, borrowed.
#[derive(Debug, Clone, Copy)]
pub struct RowRef<'a> {
    /// Sequence number.
    pub seq: u64,
    /// Timestamp, ms.
    pub ts_ms: i64,
    /// Kind.
    pub kind: &'a str,
    /// Actor.
    pub actor: &'a str,
    /// Organisation.
    pub org: &'a str,
    /// Action id text.
    pub action: Option<&'a str>,
    /// Transaction id text.
    pub tx: Option<&'a str>,
    /// Payload as stored (JSON text).
    pub payload: &'a [u8],
}

/// The hash of `row` chained after `prev`.
pub fn hash_row(prev: &[u8; 32], row: &RowRef<'_>) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(DOMAIN);
    h.update(prev);
    h.update(&row.seq.to_le_bytes());
    h.update(&row.ts_ms.to_le_bytes());
    field(&mut h, Some(row.kind.as_bytes()));
    field(&mut h, Some(row.actor.as_bytes()));
    field(&mut h, Some(row.org.as_bytes()));
    field(&mut h, row.action.map(str::as_bytes));
    field(&mut h, row.tx.map(str::as_bytes));
    field(&mut h, Some(row.payload));
    *h.finalize().as_bytes()
}

/// Length-prefixed field, with a distinct marker for "absent" so `None` and `Some("")` differ.
fn field(h: &mut blake3::Hasher, v: Option<&[u8]>) {
    match v {
        None => {
            h.update(&[0]);
        }
        Some(b) => {
            h.update(&[1]);
            h.update(&(b.len() as u64).to_le_bytes());
            h.update(b);
        }
    }
}

/// Lower-case hex of a hash.
pub fn to_hex(h: &[u8; 32]) -> String {
    kernos_core::hex::encode(h)
}

/// Parses 64 hex characters.
pub fn from_hex(s: &str) -> Option<[u8; 32]> {
    kernos_core::hex::decode32(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(seq: u64, payload: &'static [u8]) -> RowRef<'static> {
        RowRef {
            seq,
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
    fn every_field_matters() {
        let base = hash_row(&GENESIS, &row(1, b"{}"));
        assert_ne!(base, hash_row(&GENESIS, &row(2, b"{}")));
        assert_ne!(base, hash_row(&GENESIS, &row(1, b"{ }")));
        assert_ne!(base, hash_row(&[1; 32], &row(1, b"{}")));
        let mut r = row(1, b"{}");
        r.action = Some("");
        assert_ne!(base, hash_row(&GENESIS, &r));
        let mut r = row(1, b"{}");
        r.kind = "ka";
        r.actor = "";
        assert_ne!(
            base,
            hash_row(&GENESIS, &r),
            "field boundaries are unambiguous"
        );
        assert_eq!(base, hash_row(&GENESIS, &row(1, b"{}")));
    }

    #[test]
    fn hex_round_trip() {
        let h = hash_row(&GENESIS, &row(1, b"x"));
        assert_eq!(from_hex(&to_hex(&h)), Some(h));
        assert_eq!(from_hex("zz"), None);
        assert_eq!(from_hex(&"g".repeat(64)), None);
    }
}
