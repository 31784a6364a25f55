//! Journal errors: each says what went wrong and, where there is one, what to do.

use std::path::PathBuf;

/// Anything that can go wrong in the journal or blob store.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// No data directory could be determined.
    #[error("no data directory: set KERNOS_DATA_DIR (or XDG_DATA_HOME, or HOME)")]
    NoDataDir,
    /// The database file could not be opened or set up.
    #[error("cannot open the journal at {path}: {source}")]
    Open {
        /// Database path.
        path: PathBuf,
        /// Cause.
        source: rusqlite::Error,
    },
    /// The database was written by a newer Kernos.
    #[error(
        "the journal at {path} has schema version {found}, newer than this kernos understands ({supported}); upgrade kernos"
    )]
    TooNew {
        /// Database path.
        path: PathBuf,
        /// Version found.
        found: i64,
        /// Newest version this build knows.
        supported: i64,
    },
    /// The disk is full; nothing was recorded by the failed call.
    #[error(
        "the disk holding the journal is full; nothing was recorded. Free some space and retry"
    )]
    DiskFull,
    /// Another process holds the journal's write lock for too long.
    #[error("the journal is busy (another kernos is writing); retry in a moment")]
    Busy,
    /// Any other SQLite error.
    #[error("journal database error: {0}")]
    Sql(rusqlite::Error),
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
    /// A payload too large to keep in a journal row.
    #[error(
        "event payload is {size} bytes, over the {limit}-byte limit; put large data in the blob store and journal its id"
    )]
    PayloadTooLarge {
        /// Size of the serialised payload.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// A stored row could not be decoded.
    #[error("journal row {seq} is unreadable: {reason}")]
    Corrupt {
        /// Sequence number of the row.
        seq: u64,
        /// What is wrong.
        reason: String,
    },
    /// A blob id that is not in the store.
    #[error("blob {0} is not in the blob store")]
    BlobNotFound(String),
    /// A blob whose content no longer matches its id.
    #[error("blob {id} is corrupt: its content hashes to {actual}")]
    BlobCorrupt {
        /// The id (expected hash).
        id: String,
        /// The hash of what is on disk.
        actual: String,
    },
    /// Not a blob id.
    #[error("{0:?} is not a blob id (64 hex characters)")]
    BadBlobId(String),
    /// An append on a journal opened read-only.
    #[error("this journal was opened read-only")]
    ReadOnly,
    /// The group-commit writer thread is gone.
    #[error("the journal writer has stopped: {0}")]
    WriterGone(String),
    /// An append refused because an earlier append on the same [`crate::Link`] failed: the
    /// journal never holds a later event of a linked sequence without the earlier ones.
    #[error("an earlier linked append failed ({0}), so this one was not recorded")]
    EarlierAppendFailed(String),
}

impl From<rusqlite::Error> for JournalError {
    fn from(e: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode;
        match e.sqlite_error_code() {
            Some(ErrorCode::DiskFull) => JournalError::DiskFull,
            Some(ErrorCode::DatabaseBusy) | Some(ErrorCode::DatabaseLocked) => JournalError::Busy,
            _ => JournalError::Sql(e),
        }
    }
}

impl JournalError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        if source.raw_os_error() == Some(libc::ENOSPC) {
            return JournalError::DiskFull;
        }
        JournalError::Io {
            op,
            path: path.into(),
            source,
        }
    }
}

/// Result alias for the journal.
pub type Result<T, E = JournalError> = std::result::Result<T, E>;
