//! Sandbox policy: plain data describing what a confined step may do.
//!
//! The engine derives a [`SandboxPolicy`] from a step's declared effects; the sandbox helper
//! receives it serialised and applies it in the child before `exec` (Landlock, seccomp,
//! namespaces, rlimits, cgroups). Keeping it as data means it can be shown, journaled, tested and
//! diffed like everything else.

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Network access for a confined step.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum NetworkPolicy {
    /// No network at all (only Unix sockets); the default.
    #[default]
    Deny,
    /// Network allowed, limited to these peers. An empty list means any peer.
    Allow {
        /// Allowed peers; empty = any.
        #[serde(default)]
        hosts: Vec<HostPort>,
    },
}

/// One allowed network peer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct HostPort {
    /// Host name or address.
    pub host: String,
    /// Port; `None` means any port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
}

/// Resource limits for a confined step. `None` means "no limit of this kind".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Limits {
    /// Maximum memory (address space / cgroup memory.max), bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_bytes: Option<u64>,
    /// Maximum number of processes (RLIMIT_NPROC / pids.max).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_processes: Option<u64>,
    /// Maximum CPU time, seconds (RLIMIT_CPU).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_seconds: Option<u64>,
    /// Wall-clock limit, milliseconds; the whole process group is killed when it passes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wall_ms: Option<u64>,
    /// Largest file the step may write, bytes (RLIMIT_FSIZE).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_size_bytes: Option<u64>,
    /// Maximum open file descriptors (RLIMIT_NOFILE).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_files: Option<u64>,
    /// Captured stdout and stderr are each cut at this many bytes, with a marker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_bytes: Option<u64>,
}

impl Default for Limits {
    /// Conservative defaults for a single tool step.
    fn default() -> Self {
        Limits {
            memory_bytes: Some(1 << 30),
            max_processes: Some(256),
            cpu_seconds: Some(60),
            wall_ms: Some(120_000),
            file_size_bytes: Some(8 << 30),
            open_files: Some(1024),
            output_bytes: Some(8 << 20),
        }
    }
}

/// Everything the sandbox helper needs to confine one command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SandboxPolicy {
    /// Paths readable in addition to the read-only view of the root filesystem.
    #[serde(default)]
    pub read: Vec<PathBuf>,
    /// Paths (files or directory trees) the command may change. Nothing else is writable,
    /// except a private temporary directory.
    #[serde(default)]
    pub write: Vec<PathBuf>,
    /// Paths that must not even be read (e.g. the journal, `~/.ssh`), when not declared.
    #[serde(default)]
    pub deny_read: Vec<PathBuf>,
    /// Network access.
    #[serde(default)]
    pub network: NetworkPolicy,
    /// Resource limits.
    #[serde(default)]
    pub limits: Limits,
    /// Names of environment variables passed through; every other variable is removed.
    #[serde(default)]
    pub env_allow: Vec<String>,
    /// Working directory for the command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<PathBuf>,
    /// Run even when a confinement feature is missing on this kernel. Off by default: the
    /// sandbox fails closed.
    #[serde(default)]
    pub allow_weaker: bool,
}

impl Default for SandboxPolicy {
    fn default() -> Self {
        SandboxPolicy {
            read: Vec::new(),
            write: Vec::new(),
            deny_read: Vec::new(),
            network: NetworkPolicy::Deny,
            limits: Limits::default(),
            env_allow: ["PATH", "HOME", "LANG", "LC_ALL", "TERM", "USER", "TZ"]
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            cwd: None,
            allow_weaker: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_defaults() {
        let p = SandboxPolicy {
            write: vec!["/tmp/work".into()],
            network: NetworkPolicy::Allow {
                hosts: vec![HostPort {
                    host: "deb.debian.org".into(),
                    port: Some(443),
                }],
            },
            ..SandboxPolicy::default()
        };
        let j = serde_json::to_string(&p).unwrap();
        assert_eq!(serde_json::from_str::<SandboxPolicy>(&j).unwrap(), p);
        let minimal: SandboxPolicy = serde_json::from_str("{}").unwrap();
        assert_eq!(minimal.network, NetworkPolicy::Deny);
        assert!(!minimal.allow_weaker);
    }
}
