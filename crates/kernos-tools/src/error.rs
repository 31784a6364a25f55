//! Tool errors: each says what went wrong and what to do about it.

use std::path::{Path, PathBuf};

use kernos_core::ExecError;

/// Anything a tool action can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    /// The arguments do not fit the action.
    #[error("invalid arguments: {0}")]
    InvalidArgs(String),
    /// No such tool or action.
    #[error("unknown action {0}: run `kernos tools` to see what exists")]
    UnknownAction(String),
    /// A path that does not exist.
    #[error("{} does not exist", .0.display())]
    NotFound(PathBuf),
    /// A path that exists but should not (and will not be overwritten).
    #[error("{} already exists", .0.display())]
    AlreadyExists(PathBuf),
    /// Permission denied.
    #[error("permission denied on {}: {hint}", path.display())]
    PermissionDenied {
        /// The path.
        path: PathBuf,
        /// What to do, e.g. "run as root or with sudo".
        hint: String,
    },
    /// A feature this machine lacks, e.g. no systemd.
    #[error("{0}")]
    Unavailable(String),
    /// The sandbox or the child process failed.
    #[error(transparent)]
    Exec(#[from] ExecError),
    /// A filesystem error.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// On which path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The blob store or journal failed (snapshots for undo).
    #[error("cannot save what undo needs: {0}")]
    Journal(#[from] kernos_journal::JournalError),
    /// The operation was refused for safety.
    #[error("refused: {0}")]
    Refused(String),
    /// Cancelled (Ctrl-C or shutdown) before it finished.
    #[error("cancelled")]
    Cancelled,
    /// Undo cannot put something back because it changed since.
    #[error("not undone: {0}")]
    Conflict(String),
    /// A command ran and failed.
    #[error("{0}")]
    Failed(String),
}

impl ToolError {
    /// An I/O error on a path, classified so the message says what to do.
    pub fn io(op: &'static str, path: &Path, source: std::io::Error) -> Self {
        match source.kind() {
            std::io::ErrorKind::NotFound => ToolError::NotFound(path.to_owned()),
            std::io::ErrorKind::PermissionDenied => ToolError::PermissionDenied {
                path: path.to_owned(),
                hint: "this user may not do that; run kernos as a user who may".into(),
            },
            std::io::ErrorKind::AlreadyExists => ToolError::AlreadyExists(path.to_owned()),
            _ => ToolError::Io {
                op,
                path: path.to_owned(),
                source,
            },
        }
    }
}

/// Result alias for tools.
pub type Result<T, E = ToolError> = std::result::Result<T, E>;
