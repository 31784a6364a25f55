//! The Kernos journal: everything Kernos does is recorded here, once, in order, and cannot be
//! changed without `verify` noticing.
//!
//! - [`Journal`]: one SQLite database (`journal.db`, WAL) holding an append-only `events` table.
//!   Every row carries the blake3 hash of its content chained with its predecessor's hash, and a
//!   one-row `chain_head` records the newest position, so edits, deletions, insertions,
//!   reordering and truncation are all detected by [`Journal::verify`].
//! - [`BlobStore`]: content-addressed files beside the database for large payloads (command
//!   output, file snapshots for undo), written atomically.
//! - [`GroupCommitter`]: one writer thread that commits whatever many producers have queued in a
//!   single transaction, for throughput under concurrency.
//! - Read models: [`Query`] selects by sequence range, kind, transaction, action, actor, org, time.

mod blob;
pub mod chain;
mod error;
mod group;
mod journal;
mod schema;

pub use blob::{BlobId, BlobStore};
pub use error::{JournalError, Result};
pub use group::{Appender, BACKSTOP_PAGES, CommitHook, GroupCommitter, GroupOptions, Link, Reply};
pub use journal::{
    Appended, DB_FILE, Durability, Journal, JournalOptions, MAX_PAYLOAD_BYTES, PreparedEvent,
    Query, Tamper, VerifyReport, create_private_dir, default_data_dir,
};
pub use schema::CURRENT as SCHEMA_VERSION;
