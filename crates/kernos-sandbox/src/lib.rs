//! The confined exec path every process-spawning tool step runs through.
//!
//! The engine hands a [`kernos_core::exec::ExecRequest`] (command + [`SandboxPolicy`]) to a
//! [`SandboxRunner`], which implements [`kernos_core::exec::ProcessRunner`]. The runner starts
//! the `kernos-sandbox` helper (or `kernos __sandbox-helper`), sends it the request over a
//! private socket, and the helper applies the policy in fresh processes before `exec`:
//!
//! * new user, PID, mount, IPC and UTS namespaces, and a network namespace without the network
//!   effect; the namespace init exits with the command, which kills anything left behind;
//! * a read-only mount tree with only the declared paths (and a private temp dir) writable,
//!   `deny_read` paths covered by empty read-only mounts, a minimal `/dev` and a private
//!   `/proc`;
//! * `PR_SET_NO_NEW_PRIVS`, Landlock (read-only root, declared writable paths, TCP rules,
//!   signal and abstract-socket scoping, whatever the kernel's ABI offers), and a seccomp
//!   filter (no ptrace, io_uring, mount, bpf, kexec, modules, keyrings, namespace creation…;
//!   no sockets but AF_UNIX without the network effect);
//! * rlimits, and a per-step cgroup (memory, pids, cpu) where one can be created;
//! * an environment scrubbed to the allow-list.
//!
//! Create one runner and share it (clones share the fork server): the first step pays for
//! starting the server, every later one only for a fork.
//!
//! A missing kernel feature makes the run fail with [`ExecError::Unavailable`] naming it,
//! unless the policy sets `allow_weaker`. [`probe`] says what this machine supports
//! (`kernos doctor`); [`ExecArgs`] and [`run_exec_command`] are `kernos sandbox exec`.
//!
//! [`SandboxPolicy`]: kernos_core::sandbox::SandboxPolicy
//! [`ExecError::Unavailable`]: kernos_core::exec::ExecError::Unavailable

#![cfg(target_os = "linux")]

mod cgroup;
mod cli;
mod configured;
mod discover;
mod helper;
mod landlock;
mod probe;
mod protocol;
mod runner;
mod seccomp;
mod sys;

pub use cgroup::CgroupVersion;
pub use cli::{
    ExecArgs, default_deny_read, parse_duration, parse_size, run_exec_command,
    run_exec_command_with,
};
pub use configured::Configured;
pub use discover::{HELPER_BIN, HELPER_ENV, find_helper};
pub use helper::helper_main;
pub use probe::{CgroupInfo, Features, probe};
pub use protocol::HELPER_ARG;
pub use runner::{NoSink, OutputSink, RunReport, SandboxRunner};
