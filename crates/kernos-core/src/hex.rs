//! Lower-case hexadecimal: how hashes (the journal chain, blob ids, API key hashes, checksums)
//! are written and read back everywhere in Kernos.

const DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Lower-case hex of `bytes`.
pub fn encode(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// Reads exactly 64 hex digits (either case) as 32 bytes; `None` for anything else.
pub fn decode32(s: &str) -> Option<[u8; 32]> {
    let b = s.as_bytes();
    if b.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        let hi = (b[2 * i] as char).to_digit(16)?;
        let lo = (b[2 * i + 1] as char).to_digit(16)?;
        *o = (hi * 16 + lo) as u8;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_what_is_not_64_hex_digits() {
        let bytes: [u8; 32] = std::array::from_fn(|i| (i * 37) as u8);
        let s = encode(&bytes);
        assert_eq!(s.len(), 64);
        assert_eq!(s, s.to_ascii_lowercase());
        assert_eq!(decode32(&s), Some(bytes));
        assert_eq!(decode32(&s.to_ascii_uppercase()), Some(bytes));
        assert_eq!(decode32(&s[..62]), None);
        assert_eq!(decode32(&format!("{}zz", &s[..62])), None);
        assert_eq!(encode(&[0x00, 0x0f, 0xf0, 0xff]), "000ff0ff");
    }
}
