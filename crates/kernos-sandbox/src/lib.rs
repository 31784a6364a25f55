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
//! Two policy fields change that shape for service control (`svc.*`):
//!
//! * `unix_sockets` lists pathname Unix sockets (systemd's private socket, the D-Bus system
//!   bus) the command may connect to without the network effect. Seccomp cannot read a socket
//!   address, so `connect(2)` is then allowed (sockets still only `AF_UNIX`; no `bind`,
//!   `listen`) and the mount view does the choosing: every undeclared socket under `/run`,
//!   `/tmp` and `/var/tmp` is covered by an empty mount, declared ones inside hidden paths are
//!   bound back in, and host abstract sockets stay behind the network namespace and Landlock's
//!   scoping.
//! * `lifetime: service` is for steps that start or stop system services: no PID, IPC or UTS
//!   namespace (real PIDs, so scripts can read pid files and signal daemons; Landlock's signal
//!   scoping is off), no user namespace for root (a daemon's capabilities must count against
//!   the host, e.g. to bind port 80; `CAP_SYS_ADMIN`, `CAP_SYS_MODULE`, `CAP_SYS_RAWIO`,
//!   `CAP_SYS_PTRACE`, `CAP_MKNOD` and other dangerous ones are dropped from the bounding set
//!   instead), nothing killed when the command exits, no cgroup, no memory, process or CPU-time
//!   limits. Still: `no_new_privs`, seccomp (plus: no `kill(-1)`), Landlock with the declared
//!   writable paths (and its ptrace rule, which keeps host processes' `/proc/PID/root`, `fd`,
//!   `exe` and `environ` closed), the read-only mount view, `deny_read`, the scrubbed
//!   environment, and the wall clock on the control command (on timeout its process group is
//!   killed). **A daemon started this way stays confined by the step's Landlock domain,
//!   seccomp filter and mount view for its whole life**: it writes only what that step
//!   declared and has the network only if that step had it. The runner stops reading output
//!   200 ms after the command exited, so a daemon holding the pipes cannot hang the step.
//!
//! Create one runner and share it (clones share the fork server): the first step pays for
//! starting the server, every later one only for a fork. A process that runs one step and
//! exits (`kernos sandbox exec`) uses [`SandboxRunner::one_shot`] instead: while it is
//! single-threaded it forks itself as the step's helper, with no server to start. Such a step
//! run as root gets its empty network namespace from a short-lived helper thread while the plan
//! is built (the fork server shares one instead), and every command is started with
//! `CLONE_VM | CLONE_VFORK` rather than a fork of the init, which copies its caller.
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
mod thread;

pub use cgroup::CgroupVersion;
pub use cli::{
    ExecArgs, default_deny_read, parse_duration, parse_size, run_exec_command,
    run_exec_command_with,
};
pub use configured::Configured;
pub use discover::{HELPER_BIN, HELPER_ENV, embedded_helper, find_helper};
pub use helper::helper_main;
pub use probe::{CgroupInfo, Features, probe};
pub use protocol::HELPER_ARG;
pub use runner::{NoSink, OutputSink, RunReport, SandboxRunner};
pub use thread::{ConfineError, ThreadConfiner};
