//! Errors of the log over the journal.

use kernos_journal::JournalError;
use kernos_tlog::TlogError;

/// What can go wrong keeping, reading or checking the log.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The tree, keys, a signature or a proof.
    #[error(transparent)]
    Tlog(#[from] TlogError),
    /// Reading or writing the journal.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// A request that cannot be answered as asked (which event, which checkpoint, which
    /// origin), saying why.
    #[error("{0}")]
    Invalid(String),
    /// A `[journal]` or `[witness]` setting that cannot work: which one, and why.
    #[error("{setting}: {reason}")]
    Config {
        /// The setting, e.g. `journal.witness.url`.
        setting: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// Result alias.
pub type Result<T, E = LogError> = std::result::Result<T, E>;
