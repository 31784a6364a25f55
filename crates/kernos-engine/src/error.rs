//! Engine errors.

use kernos_core::PlanIssue;

/// What can stop the engine from doing what was asked.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The plan does not fit the catalog.
    #[error("the plan is not valid: {}", .0.iter().map(|i| i.to_string()).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<PlanIssue>),
    /// The journal failed; nothing further was done.
    #[error(transparent)]
    Journal(#[from] kernos_journal::JournalError),
    /// No transaction matches.
    #[error("no transaction {0}: see `kernos history`")]
    NoSuchTx(String),
    /// Several transactions match a short id.
    #[error("{0} matches several transactions ({1}); give more characters")]
    Ambiguous(String, String),
    /// Nothing to undo.
    #[error("{0}")]
    NothingToUndo(String),
    /// A journal row the engine wrote cannot be read back.
    #[error("journal event {seq} is not what the engine wrote: {reason}")]
    BadEvent {
        /// Sequence number.
        seq: u64,
        /// What is wrong.
        reason: String,
    },
}

/// Result alias.
pub type Result<T, E = EngineError> = std::result::Result<T, E>;
