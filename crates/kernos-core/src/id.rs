//! Identifiers.
//!
//! Every id is 128 bits: a 48-bit millisecond timestamp followed by 80 random bits, written as 26
//! characters of Crockford base32 (the ULID layout). Ids therefore sort by creation time, which
//! keeps journal indexes and listings in a natural order, and they never collide in practice
//! across processes or machines without any coordination.
//!
//! Each kind of id is its own type (`ActionId`, `TxId`, ...) so one can never be passed where the
//! other is expected; on the wire every id is a plain string.

use std::fmt;
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Crockford's base32 alphabet (no I, L, O, U), lower case when printed.
const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// Why a string is not an id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// Wrong number of characters.
    #[error("an id has 26 characters, got {0}")]
    Length(usize),
    /// A character outside Crockford base32.
    #[error("{0:?} is not a valid id character (ids use 0-9 and a-z without i, l, o, u)")]
    Char(char),
    /// The first character encodes more than 128 bits.
    #[error("id is out of range (first character must be 0-7)")]
    Overflow,
    /// The operating system's random source failed.
    #[error("no randomness from the operating system: {0}")]
    Random(String),
}

/// The raw 128-bit value behind every id type.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RawId(u128);

impl RawId {
    /// A new id for the current time.
    ///
    /// Falls back to a time-and-counter value only if the OS random source fails, which on Linux
    /// means `getrandom(2)` itself is broken; uniqueness within the process is still guaranteed.
    pub fn generate() -> Self {
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
            & 0xffff_ffff_ffff;
        let mut rnd = [0u8; 10];
        if getrandom::fill(&mut rnd).is_err() {
            use std::sync::atomic::{AtomicU64, Ordering};
            static COUNTER: AtomicU64 = AtomicU64::new(0);
            let c = COUNTER.fetch_add(1, Ordering::Relaxed);
            rnd[..8].copy_from_slice(&c.to_le_bytes());
            rnd[8..].copy_from_slice(&(std::process::id() as u16).to_le_bytes());
        }
        let mut r: u128 = 0;
        for b in rnd {
            r = (r << 8) | u128::from(b);
        }
        RawId((u128::from(ms) << 80) | r)
    }

    /// The creation time in milliseconds since the Unix epoch.
    pub fn timestamp_ms(self) -> u64 {
        (self.0 >> 80) as u64
    }

    /// The raw value.
    pub fn as_u128(self) -> u128 {
        self.0
    }

    /// Builds an id from its raw value.
    pub fn from_u128(v: u128) -> Self {
        RawId(v)
    }
}

impl fmt::Display for RawId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = [0u8; 26];
        let mut v = self.0;
        for slot in out.iter_mut().rev() {
            *slot = ALPHABET[(v & 31) as usize];
            v >>= 5;
        }
        // The alphabet is ASCII, so this cannot fail; fall back to hex rather than panic.
        match std::str::from_utf8(&out) {
            Ok(s) => f.write_str(s),
            Err(_) => write!(f, "{:032x}", self.0),
        }
    }
}

impl fmt::Debug for RawId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for RawId {
    type Err = IdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() != 26 {
            return Err(IdError::Length(s.chars().count()));
        }
        let mut v: u128 = 0;
        for (i, c) in s.chars().enumerate() {
            let d = decode_char(c).ok_or(IdError::Char(c))?;
            if i == 0 && d > 7 {
                return Err(IdError::Overflow);
            }
            v = (v << 5) | u128::from(d);
        }
        Ok(RawId(v))
    }
}

/// Decodes one Crockford base32 character, accepting upper case and the usual look-alikes.
fn decode_char(c: char) -> Option<u8> {
    let c = c.to_ascii_lowercase();
    let c = match c {
        'o' => '0',
        'i' | 'l' => '1',
        other => other,
    };
    ALPHABET
        .iter()
        .position(|&a| a as char == c)
        .map(|p| p as u8)
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub RawId);

        impl $name {
            /// A new, unique id.
            pub fn generate() -> Self {
                Self(RawId::generate())
            }

            /// When the id was created, in milliseconds since the Unix epoch.
            pub fn timestamp_ms(self) -> u64 {
                self.0.timestamp_ms()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                s.parse().map(Self)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = std::borrow::Cow::<str>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }

        impl schemars::JsonSchema for $name {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }
            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!({
                    "type": "string",
                    "pattern": "^[0-7][0-9a-hjkmnp-tv-zA-HJKMNP-TV-Z]{25}$",
                    "description": concat!("A ", stringify!($name), ": 26 characters of Crockford base32, sortable by time.")
                })
            }
        }
    };
}

id_type!(
    /// One submitted request (text or plan) and everything that follows from it.
    ActionId
);
id_type!(
    /// One run of a plan: the unit that `undo` reverses.
    TxId
);
id_type!(
    /// A pending approval: a step waiting for someone to say yes or no.
    ApprovalId
);
id_type!(
    /// An agent: a goal worked on across many actions, outliving the request that spawned it.
    AgentId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_parse_round_trip() {
        for _ in 0..100 {
            let id = TxId::generate();
            let s = id.to_string();
            assert_eq!(s.len(), 26);
            assert_eq!(s.parse::<TxId>().unwrap(), id);
            assert_eq!(s.to_uppercase().parse::<TxId>().unwrap(), id);
        }
    }

    #[test]
    fn ids_sort_by_time_and_are_unique() {
        let a = ActionId::generate();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = ActionId::generate();
        assert!(a < b);
        assert!(a.to_string() < b.to_string());
        let set: std::collections::HashSet<_> = (0..10_000).map(|_| TxId::generate()).collect();
        assert_eq!(set.len(), 10_000);
    }

    #[test]
    fn rejects_bad_strings() {
        assert_eq!("abc".parse::<TxId>(), Err(IdError::Length(3)));
        assert!(matches!(
            "8zzzzzzzzzzzzzzzzzzzzzzzzz".parse::<TxId>(),
            Err(IdError::Overflow)
        ));
        assert!(matches!(
            "0000000000000000000000000u".parse::<TxId>(),
            Err(IdError::Char('u'))
        ));
    }

    #[test]
    fn serde_is_a_plain_string() {
        let id = ApprovalId::generate();
        let j = serde_json::to_string(&id).unwrap();
        assert_eq!(j, format!("\"{id}\""));
        let back: ApprovalId = serde_json::from_str(&j).unwrap();
        assert_eq!(back, id);
        assert!(serde_json::from_str::<ApprovalId>("\"nope\"").is_err());
    }

    #[test]
    fn timestamp_is_recoverable() {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let id = TxId::generate();
        assert!(id.timestamp_ms().abs_diff(now) < 5_000);
    }
}
