//! What the library and the helper say to each other over the control socket (fd 3).
//!
//! library → helper: one [`HelperRequest`] as JSON, preceded by its length (u32, little
//! endian). Any later byte from the library means "cancel"; end of file means it is gone.
//! helper → library: newline-delimited [`HelperMessage`]s: `started` once the command's process
//! tree exists (so the library can clean up if the helper dies), then exactly one of `finished`
//! or `failed`.

use std::path::PathBuf;

use kernos_core::exec::{ExecError, StopReason};
use kernos_core::sandbox::SandboxPolicy;
use serde::{Deserialize, Serialize};

/// Bumped whenever the messages change, so an old helper binary is refused with a clear error.
/// 2: the policy carries `lifetime` and `unix_sockets`, which an older helper would ignore.
pub(crate) const PROTOCOL_VERSION: u32 = 2;

/// The hidden first argument the helper is started with (also `kernos __sandbox-helper`).
pub const HELPER_ARG: &str = "__sandbox-helper";

/// The helper's control socket descriptor.
pub(crate) const CONTROL_FD: i32 = 3;

/// Everything the helper needs; stdin is not in here, it is the helper's own fd 0.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct HelperRequest {
    pub version: u32,
    /// The library's pid: the helper checks it is still its parent after arming the parent-death
    /// signal, closing the race where the library died in between.
    pub parent_pid: i32,
    pub argv: Vec<String>,
    /// The command's environment, already filtered to the allow-list (the helper adds TMPDIR).
    pub env: Vec<(String, String)>,
    pub policy: SandboxPolicy,
    /// A shared, empty network namespace passed as this descriptor (see the helper's
    /// `join_shared_netns`), if the caller has one.
    #[serde(default)]
    pub netns_fd: Option<i32>,
    /// The caller's working directory, used when the policy names none.
    #[serde(default)]
    pub caller_cwd: Option<PathBuf>,
    /// Report phase timings (`KERNOS_SANDBOX_TRACE=1`).
    #[serde(default)]
    pub trace: bool,
}

/// Why a run could not happen, mirroring [`ExecError`]'s variants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum FailKind {
    NotFound,
    Unavailable,
    InvalidPolicy,
    Helper,
}

/// The outcome as the helper saw it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct HelperReport {
    pub code: Option<i32>,
    pub signal: Option<i32>,
    pub stopped: Option<StopReason>,
    /// CPU of the whole confined tree (user + system), milliseconds.
    pub cpu_ms: u64,
    /// Confinement that was requested but skipped because `allow_weaker` was set.
    pub weakened: Vec<String>,
    /// Which cgroup interface limited the step, if any ("v1: memory,pids").
    pub cgroup: Option<String>,
    /// Phase timings, CLOCK_MONOTONIC µs, when tracing was asked for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trace: Vec<(String, u64)>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum HelperMessage {
    Started {
        /// Host pid of the helper running this step (a session leader: the caller's last
        /// resort is killing its process group).
        helper_pid: i32,
        /// Host pid of the namespace init (informational).
        pid: i32,
        cgroups: Vec<PathBuf>,
        tmpdir: Option<PathBuf>,
    },
    Finished(HelperReport),
    Failed {
        kind: FailKind,
        message: String,
    },
}

impl FailKind {
    pub(crate) fn into_error(self, message: String, program: &str) -> ExecError {
        match self {
            FailKind::NotFound => ExecError::NotFound {
                program: program.to_owned(),
                reason: message,
            },
            FailKind::Unavailable => ExecError::Unavailable(message),
            FailKind::InvalidPolicy => ExecError::InvalidPolicy(message),
            FailKind::Helper => ExecError::Helper(message),
        }
    }

    /// The short word used on the child → helper status pipe.
    pub(crate) fn word(self) -> &'static str {
        match self {
            FailKind::NotFound => "notfound",
            FailKind::Unavailable => "unavailable",
            FailKind::InvalidPolicy => "invalid",
            FailKind::Helper => "helper",
        }
    }

    pub(crate) fn from_word(w: &str) -> FailKind {
        match w {
            "notfound" => FailKind::NotFound,
            "unavailable" => FailKind::Unavailable,
            "invalid" => FailKind::InvalidPolicy,
            _ => FailKind::Helper,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip() {
        let m = HelperMessage::Finished(HelperReport {
            code: Some(3),
            stopped: Some(StopReason::Timeout { limit_ms: 5 }),
            ..Default::default()
        });
        let j = serde_json::to_string(&m).unwrap();
        assert!(!j.contains('\n'));
        match serde_json::from_str::<HelperMessage>(&j).unwrap() {
            HelperMessage::Finished(r) => assert_eq!(r.code, Some(3)),
            other => panic!("{other:?}"),
        }
        for k in [
            FailKind::NotFound,
            FailKind::Unavailable,
            FailKind::InvalidPolicy,
            FailKind::Helper,
        ] {
            assert_eq!(FailKind::from_word(k.word()), k);
        }
    }
}
