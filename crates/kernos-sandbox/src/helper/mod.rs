//! The sandbox helper: receives a request on fd 3, builds the confinement plan, clones the
//! namespace init, supervises it (wall clock, total CPU, cancellation), cleans up and reports.
//!
//! Process tree:
//! ```text
//! library (engine / CLI)
//!  └─ fork server       `kernos-sandbox __sandbox-helper --server`, one per runner
//!      └─ helper        one per step; host namespaces; writes the id maps, owns the cgroup
//!          │            and the private temp dir, enforces the wall clock
//!          └─ init      PID 1 of new user+pid+mount+ipc+uts(+net) namespaces; builds mounts
//!              └─ command   rlimits, no_new_privs, Landlock, seccomp, exec
//! ```
//! For a service-lifetime step the init is an ordinary process in a new mount namespace (plus
//! a user namespace when not root, and a network namespace without the network effect): it
//! builds the same mount view, runs the command in its own process group, and exits with it,
//! leaving whatever the command started (the daemon) running.
//! The helper is single-threaded when it clones, on purpose: the clone is a plain fork-like
//! clone, and the child may then run ordinary Rust code. (The one thread it may start,
//! [`netns`], has ended by then.)
//!
//! A step goes through four stages ([`step`] runs them in order):
//! 1. **plan** ([`plan`]): the whole confinement is decided before anything is cloned, one
//!    part per function — Landlock ABI and rules ([`rules`]), seccomp filter, declared paths
//!    ([`paths`]), the command ([`command`]), limits and cgroup ([`limits`]), the mount view
//!    ([`view`]), namespaces. A part that cannot be had fails the step, unless the policy
//!    allows weaker confinement ([`fail::Weakened`]).
//! 2. **clone** ([`launch`]): the init is cloned into its namespaces and released.
//! 3. **supervise** ([`watch`]): wall clock, total CPU, cancellation and signals.
//! 4. **report** ([`report`]): how the command ended and why, and what the tree used.

mod child;
mod command;
mod control;
mod fail;
mod kernel;
mod launch;
mod limits;
mod mounts;
mod netns;
mod paths;
mod plan;
mod report;
mod rules;
mod server;
mod status;
mod step;
mod trace;
mod view;
mod watch;

use std::ffi::{OsStr, OsString};

use crate::protocol::HELPER_ARG;
use crate::sys;

pub(crate) use paths::remove_tree;
pub(crate) use server::SERVER_ARG;

/// The helper's entry point (`kernos-sandbox`, `kernos __sandbox-helper`). Never returns.
///
/// `__sandbox-helper --server` is the fork server a runner keeps (fd 3 is its request
/// socket); plain `__sandbox-helper` runs one step whose control socket is fd 3.
pub fn helper_main() -> ! {
    let main_us = sys::mono_us();
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let args: Vec<&OsStr> = args.iter().map(|a| a.as_os_str()).collect();
    let result = match args.as_slice() {
        [] | [_] if args.first().is_none_or(|a| *a == HELPER_ARG) => step::run_step(main_us),
        [a, b] if *a == HELPER_ARG && *b == SERVER_ARG => server::serve(),
        _ => Err(format!(
            "unexpected arguments {args:?}: this is kernos's sandbox helper, started by kernos \
             itself; to run a command confined use `kernos sandbox exec -- CMD` or \
             `kernos-sandbox exec -- CMD`"
        )),
    };
    std::process::exit(exit_code(result))
}

/// One step in a helper the library forked from its own (single-threaded) process instead of
/// a fork server's child (`SandboxRunner::one_shot`): descriptors 0-3 are the step's, as in a
/// fork server's child. Returns the exit code.
pub(crate) fn forked_step(main_us: u64) -> i32 {
    exit_code(step::run_step(main_us))
}

fn exit_code(result: Result<(), String>) -> i32 {
    match result {
        Ok(()) => 0,
        Err(msg) => {
            eprintln!("kernos-sandbox: {msg}");
            2
        }
    }
}
