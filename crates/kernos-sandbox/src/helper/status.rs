//! The status pipe from the init and the command to the helper: one line per message,
//! `E <kind> <message>` for a failure, `W <feature>` for a feature skipped under
//! `allow_weaker`, `T <phase> <µs>` when tracing, and `X <wait status> <command cpu ms>
//! <tree cpu ms>` once the step is over.

use std::os::fd::RawFd;

use super::plan::Plan;
use crate::protocol::FailKind;
use crate::sys;

/// Writes one status line; errors are ignored because there is nobody left to tell.
pub(super) fn status(fd: RawFd, line: &str) {
    let mut s = line.replace('\n', " ");
    s.push('\n');
    let _ = sys::write_all(fd, s.as_bytes());
}

/// Sends a phase timestamp when tracing.
pub(super) fn trace(plan: &Plan, fd: RawFd, name: &str) {
    if plan.trace {
        status(fd, &format!("T {name} {}", sys::mono_us()));
    }
}

/// Reports the failure and exits the child.
pub(super) fn fail(fd: RawFd, kind: FailKind, msg: &str) -> ! {
    status(fd, &format!("E {} {msg}", kind.word()));
    // SAFETY: _exit never returns and runs no destructors, which is what a failed child wants.
    unsafe { libc::_exit(127) }
}
