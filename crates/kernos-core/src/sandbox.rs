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

/// How long what a step starts may live, and the confinement that follows from that.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Lifetime {
    /// Everything the command starts ends with it: the command runs as PID 1's child in a new
    /// PID namespace whose init kills whatever is left when the command exits, inside a
    /// per-step cgroup and under every resource limit. The default, for every ordinary step.
    #[default]
    Step,
    /// For steps that start or stop system services (an init script that forks a daemon and
    /// exits, `kill $(cat pidfile)`): processes the command starts may outlive the step.
    ///
    /// Compared with [`Lifetime::Step`]: no new PID namespace (real PIDs, the host's `/proc`
    /// with its command lines, signals to host processes: Landlock's signal scoping is off),
    /// no IPC or UTS namespace
    /// (a daemon shares SysV IPC and the host name with its clients), no user namespace when
    /// running as root (a daemon's capabilities must count against the host, e.g. to bind
    /// port 80; the most dangerous ones — `CAP_SYS_ADMIN`, `CAP_SYS_MODULE`, `CAP_SYS_RAWIO`,
    /// `CAP_SYS_PTRACE`, `CAP_SYS_BOOT`, `CAP_MKNOD`, MAC, BPF, perf, syslog, audit control —
    /// are dropped from the bounding set instead), nothing is killed when the command exits,
    /// no per-step cgroup, and `memory_bytes`, `max_processes` and `cpu_seconds` are not
    /// applied (they would bind the daemon for its whole life). A network namespace is still
    /// created when the policy has no network (a daemon without the network effect cannot
    /// open network sockets anyway), and none when it has.
    ///
    /// Everything else still applies: `no_new_privs`, the seccomp filter (plus: no
    /// `kill(-1, …)`), Landlock with the declared writable paths (and its ptrace restriction:
    /// host processes' `/proc/PID/root`, `exe`, `fd`, `environ` stay closed), the read-only
    /// mount view with the declared writable paths, the `deny_read` mounts, a minimal `/dev`,
    /// the scrubbed environment, the file-size and open-file limits when set, and the
    /// wall-clock limit on the control command (on timeout or cancel its process group is
    /// killed; daemons that left it with `setsid` stay).
    ///
    /// **A daemon started this way stays confined by the step's Landlock domain, seccomp
    /// filter and mount view for its whole life**: it can write only the paths that step
    /// declared, cannot read its `deny_read` paths, uses the network only if that step had the
    /// network effect, and does not see host mounts made after it started. Declare what the
    /// daemon itself needs (its pid, log and state directories; the network it serves). The
    /// private temporary directory (`TMPDIR`) belongs to the control command and is removed
    /// when it exits, and the step's output pipes stop being read shortly after: a daemon
    /// must keep its files in its declared directories and redirect its output.
    Service,
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
    /// Whether what the command starts may outlive the step (see [`Lifetime`]).
    #[serde(default)]
    pub lifetime: Lifetime,
    /// Pathname Unix sockets the command may connect to even without the network effect
    /// (systemd's `/run/systemd/private`, the D-Bus system bus). Seccomp cannot see a socket
    /// path, so when this list is non-empty `connect(2)` is allowed (`socket(2)` still only
    /// for `AF_UNIX`, `bind`/`listen` still refused) and the mount view makes every other
    /// socket unreachable instead: each pathname socket under `/run`, `/tmp` and `/var/tmp`
    /// that exists when the step starts and is not listed here is covered by an empty mount
    /// (also when it lies in a declared readable or writable path), and listed sockets inside
    /// `deny_read` paths are bound back in. Abstract sockets of the host stay out of reach (a
    /// separate network namespace, and Landlock's abstract-socket scoping). A listed path that
    /// exists must be a socket; one that does not exist is skipped.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unix_sockets: Vec<PathBuf>,
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
            lifetime: Lifetime::Step,
            unix_sockets: Vec::new(),
        }
    }
}

/// The filesystem one thread of Kernos's own process may reach while it does a step's
/// in-process work (the file tools read and write without a child process): the kernel
/// (Landlock) enforces it on that thread alone, so a symlink, a walk or a bug cannot reach what
/// the step's declaration and the organisation's scope did not grant.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct ThreadView {
    /// Trees the thread may read.
    pub read: Vec<PathBuf>,
    /// Trees it may create, change and remove in (readable only if also under `read`).
    pub write: Vec<PathBuf>,
    /// Paths inside those trees it must not read or change: secret locations and Kernos's own
    /// data. Landlock can only grant, so these are carved out by granting their siblings.
    pub hide: Vec<PathBuf>,
    /// Paths inside hidden ones that stay reachable (the session's vault and workspace inside
    /// the data directory).
    pub show: Vec<PathBuf>,
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
        assert_eq!(minimal.lifetime, Lifetime::Step);
        assert!(minimal.unix_sockets.is_empty());
    }

    #[test]
    fn lifetime_and_sockets_round_trip_and_old_json_parses() {
        let p = SandboxPolicy {
            lifetime: Lifetime::Service,
            unix_sockets: vec!["/run/systemd/private".into()],
            ..SandboxPolicy::default()
        };
        let j = serde_json::to_value(&p).unwrap();
        assert_eq!(j["lifetime"], "service");
        assert_eq!(j["unix_sockets"][0], "/run/systemd/private");
        assert_eq!(serde_json::from_value::<SandboxPolicy>(j).unwrap(), p);
        // A policy journaled before these fields existed.
        let old = r#"{"read":[],"write":["/w"],"deny_read":[],"network":{"mode":"deny"},
            "limits":{},"env_allow":["PATH"],"allow_weaker":false}"#;
        let o: SandboxPolicy = serde_json::from_str(old).unwrap();
        assert_eq!(o.lifetime, Lifetime::Step);
        assert!(o.unix_sockets.is_empty());
        // The default step policy serialises without the socket list.
        let d = serde_json::to_value(SandboxPolicy::default()).unwrap();
        assert!(d.get("unix_sockets").is_none());
        assert_eq!(d["lifetime"], "step");
    }
}
