//! Transparency-log errors: each says what failed and, where there is one, what to do.
//!
//! Verification failures name the thing that did not check out (which leaf, which sizes, which
//! key and algorithm), because the person reading them is deciding whether a log lied.

use std::path::PathBuf;

/// Which signature algorithm a key or signature uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Alg {
    /// Ed25519 signed-note signature (type 0x01) over the checkpoint text.
    Ed25519,
    /// ML-DSA-44 (FIPS 204) timestamped cosignature (type 0x06) over the tree head.
    MlDsa44,
}

impl std::fmt::Display for Alg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Alg::Ed25519 => "Ed25519",
            Alg::MlDsa44 => "ML-DSA-44",
        })
    }
}

/// Anything that can go wrong building, storing, signing or verifying the log.
#[derive(Debug, thiserror::Error)]
pub enum TlogError {
    /// A filesystem error.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// Which path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// A key file or directory others can read: the secret may already have leaked.
    #[error(
        "{path} is accessible to group or others (mode {mode:o}); run `chmod {fix:o} {path}` (and consider rotating the keys)"
    )]
    InsecurePermissions {
        /// The file or directory.
        path: PathBuf,
        /// Its mode bits.
        mode: u32,
        /// The mode to set.
        fix: u32,
    },
    /// A key file that cannot be used.
    #[error("key file {path}: {reason}")]
    KeyFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The OS random number generator failed (no key or signature was made).
    #[error("the OS random number generator failed: {0}")]
    Random(getrandom::Error),
    /// ML-DSA signing failed (the library gave up; retrying is safe).
    #[error("ML-DSA-44 signing failed: {0}")]
    Signing(&'static str),
    /// A leaf index or tree size beyond what the tree holds.
    #[error("{what} {value} is out of range: the tree has {size} leaves")]
    OutOfRange {
        /// "leaf index", "tree size"…
        what: &'static str,
        /// The value asked for.
        value: u64,
        /// The tree's size.
        size: u64,
    },
    /// An inclusion proof that does not lead to the root.
    #[error(
        "leaf {index} is not included in the tree of size {size} with that root: the event, the proof or the checkpoint was altered"
    )]
    Inclusion {
        /// Leaf index.
        index: u64,
        /// Tree size.
        size: u64,
    },
    /// A consistency proof that fails: the later tree does not extend the earlier one.
    #[error(
        "the tree of size {size2} is not an append-only extension of the tree of size {size1}: history was rewritten or truncated, or the proof was altered"
    )]
    Consistency {
        /// Earlier size.
        size1: u64,
        /// Later size.
        size2: u64,
    },
    /// A range proof whose leaves and hashes do not give the root.
    #[error(
        "leaves {start}..{end} are not the ones in the tree of size {size} with that root: an event was altered, added or dropped, or the proof was altered"
    )]
    Range {
        /// First leaf index.
        start: u64,
        /// One past the last leaf index.
        end: u64,
        /// Tree size.
        size: u64,
    },
    /// A stored tile that is damaged or disagrees with the rest of the tree.
    #[error(
        "tile {path}: {reason}; the tiles are a cache of the journal: remove the tile directory and rebuild it from the journal"
    )]
    TileCorrupt {
        /// The tile file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A leaf hash in the tiles that differs from the one the journal's event gives.
    #[error(
        "leaf {index} in the tiles differs from the journal's event seq {seq}: remove the tile directory and rebuild it from the journal"
    )]
    TileMismatch {
        /// Leaf index.
        index: u64,
        /// The journal's sequence number (index + 1).
        seq: u64,
    },
    /// A signed note or checkpoint that is not well formed.
    #[error("malformed checkpoint: {0}")]
    Note(String),
    /// A verifier key that cannot be parsed.
    #[error("bad verifier key {key:?}: {reason}")]
    BadKey {
        /// The key text (public).
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// No signature of this algorithm by any trusted key.
    #[error(
        "the checkpoint of size {size} has no {alg} signature by a trusted key (both Ed25519 and ML-DSA-44 are required); check the keys you passed"
    )]
    MissingSignature {
        /// Algorithm.
        alg: Alg,
        /// Tree size in the checkpoint.
        size: u64,
    },
    /// A signature by a trusted key that does not verify.
    #[error(
        "the {alg} signature by key {key} on the checkpoint of size {size} does not verify: the checkpoint or the signature was altered"
    )]
    BadSignature {
        /// Algorithm.
        alg: Alg,
        /// `name+keyid` of the key.
        key: String,
        /// Tree size in the checkpoint.
        size: u64,
    },
    /// A valid signature by a key that was rotated out before the signature's time.
    #[error(
        "the {alg} signature on the checkpoint of size {size} is signed by a rotated-out key: {key} was retired and stopped being valid at {not_after}, but the signature is dated {signed_at}"
    )]
    RotatedOutKey {
        /// Algorithm.
        alg: Alg,
        /// `name+keyid` of the key.
        key: String,
        /// Tree size in the checkpoint.
        size: u64,
        /// The checkpoint's signing time (Unix seconds, from its ML-DSA-44 cosignature).
        signed_at: u64,
        /// End of the key's overlap window (Unix seconds).
        not_after: u64,
    },
    /// An export bundle that is not well formed or does not verify.
    #[error("bundle: {0}")]
    Bundle(String),
    /// JSON that does not parse.
    #[error("JSON: {0}")]
    Json(#[from] serde_json::Error),
}

impl TlogError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        TlogError::Io {
            op,
            path: path.into(),
            source,
        }
    }
}

/// Result alias for the transparency log.
pub type Result<T, E = TlogError> = std::result::Result<T, E>;
