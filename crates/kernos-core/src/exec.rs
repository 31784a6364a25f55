//! The seam between tools and the sandbox: how a tool asks for a confined child process.
//!
//! Tools describe the command and the [`SandboxPolicy`] it needs; a [`ProcessRunner`] (the
//! sandbox crate's, wired in by the engine) runs it confined and reports what happened. Tools
//! never spawn processes any other way.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::sandbox::SandboxPolicy;

/// A command to run confined.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ExecRequest {
    /// Program and arguments; the program is looked up in `PATH` when it has no slash.
    pub argv: Vec<String>,
    /// Bytes fed to standard input (none: stdin is `/dev/null`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdin: Option<Vec<u8>>,
    /// Variables set explicitly for this command, on top of the policy's allow-list.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<(String, String)>,
    /// What the command may do.
    pub policy: SandboxPolicy,
}

impl ExecRequest {
    /// A command with the given policy and no input.
    pub fn new<S: AsRef<str>>(argv: &[S], policy: SandboxPolicy) -> Self {
        ExecRequest {
            argv: argv.iter().map(|s| s.as_ref().to_owned()).collect(),
            stdin: None,
            env: Vec::new(),
            policy,
        }
    }
}

/// Why the sandbox stopped a command before it finished by itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum StopReason {
    /// The wall-clock limit passed; the whole process group was killed.
    Timeout {
        /// The limit, milliseconds.
        limit_ms: u64,
    },
    /// The CPU-time limit was reached.
    CpuLimit {
        /// The limit, seconds.
        limit_s: u64,
    },
    /// The memory limit was reached.
    MemoryLimit {
        /// The limit, bytes.
        limit_bytes: u64,
    },
    /// The process-count limit was reached.
    ProcessLimit {
        /// The limit.
        limit: u64,
    },
    /// The file-size limit was reached.
    FileSizeLimit {
        /// The limit, bytes.
        limit_bytes: u64,
    },
    /// The caller cancelled (Ctrl-C, shutdown).
    Cancelled,
    /// Killed by a signal not explained by a limit.
    Signal {
        /// Signal number.
        signal: i32,
    },
}

impl std::fmt::Display for StopReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StopReason::Timeout { limit_ms } => {
                write!(f, "stopped: wall-clock limit of {limit_ms} ms reached")
            }
            StopReason::CpuLimit { limit_s } => {
                write!(f, "stopped: CPU limit of {limit_s} s reached")
            }
            StopReason::MemoryLimit { limit_bytes } => {
                write!(f, "stopped: memory limit of {limit_bytes} bytes reached")
            }
            StopReason::ProcessLimit { limit } => {
                write!(f, "stopped: process limit of {limit} reached")
            }
            StopReason::FileSizeLimit { limit_bytes } => {
                write!(f, "stopped: file size limit of {limit_bytes} bytes reached")
            }
            StopReason::Cancelled => f.write_str("stopped: cancelled"),
            StopReason::Signal { signal } => write!(f, "stopped: killed by signal {signal}"),
        }
    }
}

/// What a confined command did.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct ExecOutcome {
    /// Exit code, when it exited normally.
    pub code: Option<i32>,
    /// Terminating signal, when it was killed.
    pub signal: Option<i32>,
    /// Captured standard output (cut at the policy's output cap).
    pub stdout: Vec<u8>,
    /// Captured standard error (cut at the policy's output cap).
    pub stderr: Vec<u8>,
    /// Whether stdout was cut.
    pub stdout_truncated: bool,
    /// Whether stderr was cut.
    pub stderr_truncated: bool,
    /// Why the sandbox stopped it, if it did.
    pub stopped: Option<StopReason>,
    /// CPU time (user + system) of the command and its children, milliseconds.
    pub cpu_ms: u64,
    /// Wall time, milliseconds.
    pub wall_ms: u64,
}

impl ExecOutcome {
    /// Exited by itself with status 0.
    pub fn success(&self) -> bool {
        self.code == Some(0) && self.stopped.is_none()
    }

    /// Standard output as text (lossy).
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Standard error as text (lossy).
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

/// Why a confined command could not be run at all.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// The program does not exist or is not executable.
    #[error("cannot run {program:?}: {reason}")]
    NotFound {
        /// The program.
        program: String,
        /// Why.
        reason: String,
    },
    /// A confinement feature is missing and the policy does not allow running weaker.
    #[error(
        "sandbox unavailable: {0} (set sandbox.allow_weaker = true in the config to run with weaker confinement)"
    )]
    Unavailable(String),
    /// The policy is not valid (e.g. a relative path).
    #[error("invalid sandbox policy: {0}")]
    InvalidPolicy(String),
    /// The sandbox helper failed.
    #[error("sandbox helper failed: {0}")]
    Helper(String),
    /// An I/O error talking to the child.
    #[error("sandbox I/O error: {0}")]
    Io(#[from] std::io::Error),
}

/// Runs commands confined. Implemented by the sandbox crate; tools call it.
pub trait ProcessRunner: Send + Sync {
    /// Runs `req` to completion (or until a limit or `cancel` stops it).
    fn run(&self, req: &ExecRequest, cancel: &CancelToken) -> Result<ExecOutcome, ExecError>;
}

/// A cheap, clonable flag that says "stop what you are doing" (Ctrl-C, shutdown, a timeout
/// decided from outside). A [`CancelToken::child`] also stops when its parent does, so one
/// step can be stopped (its time limit) without stopping the whole action.
#[derive(Debug, Clone, Default)]
pub struct CancelToken(Arc<Flag>);

#[derive(Debug, Default)]
struct Flag {
    set: AtomicBool,
    parent: Option<CancelToken>,
}

impl CancelToken {
    /// A token that is not cancelled.
    pub fn new() -> Self {
        Self::default()
    }

    /// A token cancelled by its own [`cancel`](Self::cancel) or by this one's.
    pub fn child(&self) -> Self {
        CancelToken(Arc::new(Flag {
            set: AtomicBool::new(false),
            parent: Some(self.clone()),
        }))
    }

    /// Asks everyone holding a clone (and every child) to stop.
    pub fn cancel(&self) {
        self.0.set.store(true, Ordering::SeqCst);
    }

    /// Whether stop was asked, of this token or of an ancestor.
    pub fn is_cancelled(&self) -> bool {
        self.0.set.load(Ordering::SeqCst)
            || self
                .0
                .parent
                .as_ref()
                .is_some_and(CancelToken::is_cancelled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_stops_with_its_parent_but_not_the_other_way() {
        let parent = CancelToken::new();
        let child = parent.child();
        child.cancel();
        assert!(child.is_cancelled() && !parent.is_cancelled());
        let child = parent.child();
        parent.cancel();
        assert!(child.is_cancelled());
    }

    #[test]
    fn cancel_is_shared() {
        let a = CancelToken::new();
        let b = a.clone();
        assert!(!b.is_cancelled());
        a.cancel();
        assert!(b.is_cancelled());
    }

    #[test]
    fn outcome_success_and_round_trip() {
        let mut o = ExecOutcome {
            code: Some(0),
            ..Default::default()
        };
        assert!(o.success());
        o.stopped = Some(StopReason::Timeout { limit_ms: 10 });
        assert!(!o.success());
        let j = serde_json::to_value(&o).unwrap();
        assert_eq!(j["stopped"]["reason"], "timeout");
        assert_eq!(serde_json::from_value::<ExecOutcome>(j).unwrap(), o);
        let r = ExecRequest::new(&["ls", "-l"], SandboxPolicy::default());
        assert_eq!(r.argv, vec!["ls", "-l"]);
    }
}
