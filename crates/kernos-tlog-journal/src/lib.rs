//! Kernos's journal as a transparency log: the glue between the journal (`kernos-journal`,
//! the source of truth) and the log's primitives (`kernos-tlog`, no I/O beyond its own files).
//!
//! - [`Log`]: the live log of a data directory: keys under `<data dir>/tlog/keys`, tiles under
//!   `<data dir>/tlog/tiles`, caught up from the journal on open (tiles that disagree with
//!   the journal are rebuilt), one leaf per event in journal order, signed checkpoints.
//! - Checkpoints are journal events themselves ([`CHECKPOINT_KIND`]), so they are chained,
//!   exported and cannot silently disappear.
//! - [`read`]: what needs only the journal: rebuild the tree, list stored checkpoints, check
//!   them all ([`read::verify_checkpoints`]), prove an event, build an export bundle.
//! - [`cosigned`]: an auditor's check of the stored witness cosignatures (`log.cosigned`)
//!   against the witness's public keys.
//! - [`witness`]: a daemon acting as a witness for other logs: the largest tree it saw per
//!   origin, kept as journal events, and the check that refuses a rollback.
//!
//! The file formats are in `docs/TLOG.md`.

mod config;
pub mod cosigned;
mod error;
mod live;
mod log;
pub mod read;
pub mod witness;

pub use config::{
    CheckpointConfig, JournalConfig, WitnessConfig, WitnessPush, WitnessedLog, host_name,
};
pub use error::{LogError, Result};
pub use live::{LiveLog, Wake};
pub use log::{Log, SPILL_EVERY, SignedCheckpoint, leaf_of, leaf_of_committed, tlog_dir};

/// Kind of the journal event that stores a signed checkpoint (payload: `note`, `size`, `root`).
pub const CHECKPOINT_KIND: &str = "log.checkpoint";
/// Kind of the journal event that stores a witness's cosignatures on a checkpoint.
pub const COSIGNED_KIND: &str = "log.cosigned";
/// Kind of the journal event a log stores when its witness refused one of its checkpoints
/// (payload: `witness`, `size`, `status`, `rollback`, `known_size`, `detail`): a refusal for a
/// rollback means the witness saw a larger tree than this log holds now, which the operator
/// and an auditor must see in the journal, not only in the daemon's log output.
pub const WITNESS_PUSH_REFUSED_KIND: &str = "log.witness_refused";
/// Kind of the journal event that records a key rotation, by the daemon or by `kernos journal
/// keys --rotate` (payload:
/// `origin`, `retired` and `vkeys` — the old and new verifier keys — `retired_at`,
/// `not_after`), by whoever asked for it.
pub const KEYS_ROTATED_KIND: &str = "log.keys_rotated";

/// The `log.keys_rotated` event: who rotated the keys of `origin`, the keys retired at `now`
/// (their signatures dated up to `now + overlap_s` still verify) and the new ones.
pub fn keys_rotated_event(
    actor: kernos_core::Actor,
    origin: &str,
    retired: &[String],
    vkeys: &[String],
    now: u64,
    overlap_s: u64,
) -> kernos_core::NewEvent {
    kernos_core::NewEvent::new(KEYS_ROTATED_KIND, actor).payload(serde_json::json!({
        "origin": origin,
        "retired": retired,
        "vkeys": vkeys,
        "retired_at": now,
        "not_after": now.saturating_add(overlap_s),
    }))
}
/// Kind of the event a witness journals when it accepts a larger tree of a log.
pub const WITNESS_SEEN_KIND: &str = "witness.checkpoint";
/// Kind of the event a witness journals when it refuses a rollback or a fork.
pub const WITNESS_REFUSED_KIND: &str = "witness.refused";

/// Events of these kinds are the log's own bookkeeping: they are leaves like every event,
/// but do not count towards "new events since the last checkpoint" (else every checkpoint
/// would call for the next one).
pub fn is_log_kind(kind: &str) -> bool {
    kind.starts_with("log.")
}

/// Parses verifier keys (`<name>+<id>+<base64>`) into the keys a verifier trusts.
pub fn trusted_from_vkeys(vkeys: &[String]) -> Result<kernos_tlog::TrustedKeys> {
    let keys = vkeys
        .iter()
        .map(|v| kernos_tlog::VerifierKey::from_vkey(v))
        .collect::<kernos_tlog::Result<Vec<_>>>()?;
    Ok(kernos_tlog::TrustedKeys(keys))
}
