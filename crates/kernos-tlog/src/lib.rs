//! Kernos's journal as a transparency log that third parties can check.
//!
//! - [`EventLeaf`]: the bytes one journal event contributes to the tree (seq − 1 is its index).
//! - [`MerkleTree`]: RFC 9162 tree over leaf hashes; roots, inclusion, consistency and range
//!   proofs for any size. [`TiledTree`] keeps it on disk as C2SP tlog-tiles.
//! - [`verify_inclusion`], [`verify_consistency`], [`verify_range`]: checks needing no tree.
//! - [`KeySet`]: the log's Ed25519 + ML-DSA-44 keys on disk, with rotation; [`TrustedKeys`]
//!   what a verifier trusts.
//! - [`Checkpoint`]: C2SP tlog-checkpoint signed notes carrying both signatures.
//! - [`cosign`], [`verify_cosignatures`]: a witness's C2SP tlog-cosignatures (Ed25519
//!   `cosignature/v1` and ML-DSA-44) on a log's checkpoint.
//! - [`Bundle`]: an export (events, checkpoints, proofs) that [`verify_bundle`] and
//!   `scripts/verify-bundle` check end to end.
//!
//! The format of every byte a verifier sees is in `docs/TLOG.md`.

mod bundle;
mod checkpoint;
mod cosign;
mod error;
mod hash;
mod keys;
mod layout;
mod leaf;
mod note;
mod proof;
mod tiles;
mod tree;

pub use bundle::{
    BUNDLE_FORMAT, Bundle, BundleEvent, BundleReport, ConsistencyProof, RangeProof, verify_bundle,
};
pub use checkpoint::{Checkpoint, VerifiedCheckpoint, verify_checkpoint};
pub use cosign::{
    COSIGNATURE_V1_TYPE, VerifiedCosignature, WitnessKey, add_signatures, cosign,
    verify_cosignatures, witness_keys,
};
pub use error::{Alg, Result, TlogError};
pub use hash::{Hash, b64, empty_root, leaf_hash, node_hash, root_of, unb64_hash};
pub use keys::{DEFAULT_OVERLAP_S, KeySet};
pub use layout::{TILE_WIDTH, tile_path};
pub use leaf::{EventLeaf, LEAF_DOMAIN};
pub use note::{
    ED25519_TYPE, MLDSA44_TYPE, NoteSignature, SignedNote, TrustedKeys, VerifierKey, key_id,
};
pub use proof::{
    root_from_inclusion, root_from_range, verify_consistency, verify_inclusion, verify_range,
};
pub use tiles::TiledTree;
pub use tree::{MerkleTree, TileSource};
