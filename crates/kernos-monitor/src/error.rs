//! Monitor errors: each says which monitor or file, what went wrong and, where there is one,
//! what to do.

use std::path::PathBuf;

/// A monitor specification that cannot be used as written.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// The TOML or JSON did not parse or did not have the expected shape.
    #[error("monitor spec: {0}")]
    Parse(String),
    /// A field has a value that makes no sense for its kind.
    #[error("monitor {monitor:?}: {reason}")]
    Invalid {
        /// The monitor's name.
        monitor: String,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// Two monitors share a name, so events could not say which one fired.
    #[error("two monitors are named {0:?}; names must be unique")]
    Duplicate(String),
}

/// A remediation template whose placeholders could not be filled.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// `{name}` names a value this kind of monitor does not provide.
    #[error("unknown placeholder {{{name}}}; this monitor provides: {known}")]
    Unknown {
        /// The placeholder's name.
        name: String,
        /// The names the reading provides, comma-separated.
        known: String,
    },
    /// A `{` with no matching `}`.
    #[error("unclosed placeholder in {0:?} (write {{{{ for a literal brace)")]
    Unclosed(String),
    /// The filled template no longer reads as a plan.
    #[error("the filled plan is not a plan: {0}")]
    NotAPlan(String),
}

/// A probe that could not read the machine.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// A file or system call failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// Which path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// A kernel file did not have the expected format.
    #[error("cannot read {what}: {reason}")]
    Format {
        /// Which file or value.
        what: String,
        /// What was wrong.
        reason: String,
    },
    /// The network probe could not complete (connect, TLS handshake, timeout).
    #[error("{target}: {reason}")]
    Network {
        /// Host, URL or address.
        target: String,
        /// What failed.
        reason: String,
    },
    /// A certificate that could not be parsed.
    #[error("certificate from {source_name}: {reason}")]
    Certificate {
        /// File or URL the certificate came from.
        source_name: String,
        /// What was wrong.
        reason: String,
    },
}

impl ProbeError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ProbeError::Io {
            op,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn format(what: impl Into<String>, reason: impl Into<String>) -> Self {
        ProbeError::Format {
            what: what.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn network(target: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        ProbeError::Network {
            target: target.into(),
            reason: reason.to_string(),
        }
    }
}

/// The runner could not start.
#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    /// The specs were not valid.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// The runner's thread, runtime or inotify instance could not be created.
    #[error("cannot start the monitor runner: {0}")]
    Start(std::io::Error),
}

/// A webhook that could not be delivered.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The receiver refused the notification (4xx); retrying would not help.
    #[error("webhook {url} refused the notification with status {status}; not retried")]
    Refused {
        /// The endpoint.
        url: String,
        /// HTTP status.
        status: u16,
    },
    /// Every attempt failed with a server error or a timeout.
    #[error("webhook {url} failed after {attempts} attempts: {last}")]
    Exhausted {
        /// The endpoint.
        url: String,
        /// How many attempts were made.
        attempts: u32,
        /// The last failure.
        last: String,
    },
    /// The HTTP client could not be built.
    #[error("cannot build the webhook client: {0}")]
    Client(String),
}
