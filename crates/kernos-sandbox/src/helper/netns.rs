//! The step's empty network namespace, made on a short-lived thread while the plan is built.
//!
//! Creating a network namespace is the most expensive part of cloning the init (~0.6 ms of
//! kernel work: the loopback device, the per-namespace sysctl tables), and it depends on
//! nothing the plan decides. So when the step has no network effect and nobody passed a
//! namespace to join (a one-shot step, `kernos sandbox exec`; the fork server passes its
//! shared one), a thread unshares a fresh one while the main thread plans, and the init is
//! cloned into it instead of with `CLONE_NEWNET`. On two cores this takes it off the step's
//! critical path.
//!
//! Only as root: `unshare(CLONE_NEWNET)` needs `CAP_SYS_ADMIN` in our user namespace, and the
//! helper must be able to `setns` into the result before cloning. The namespace is then owned
//! by our (the initial) user namespace rather than by the step's new one, so the step holds no
//! capability over it at all (it cannot even bring `lo` up) — stricter than a namespace of its
//! own, and the same as the fork server's shared one. It is private to this step: nothing
//! else ever joins it, and it goes away with the step's last process.
//!
//! The thread has ended (joined) before the init is cloned, so the clone still happens in a
//! single-threaded process.

use std::os::fd::OwnedFd;
use std::thread::JoinHandle;

use kernos_core::sandbox::NetworkPolicy;

use crate::protocol::HelperRequest;
use crate::sys;

/// A network namespace being made for the step, if one is.
#[derive(Default)]
pub(super) struct PendingNetns(Option<JoinHandle<Option<OwnedFd>>>);

impl PendingNetns {
    /// Starts making the namespace when the step will want a fresh empty one and we may make
    /// it ourselves; otherwise nothing (the clone then creates it, as before).
    pub(super) fn start(req: &HelperRequest) -> PendingNetns {
        // SAFETY: geteuid has no arguments.
        let root = unsafe { libc::geteuid() } == 0;
        if !root || req.netns_fd.is_some() || !matches!(req.policy.network, NetworkPolicy::Deny) {
            return PendingNetns(None);
        }
        // A thread that cannot be started just leaves the namespace to the clone.
        PendingNetns(sys::spawn_netns_maker())
    }

    /// Waits for the thread and returns the namespace, if it could be made. After this the
    /// helper is single-threaded again.
    pub(super) fn finish(self) -> Option<OwnedFd> {
        self.0.and_then(|t| t.join().ok().flatten())
    }
}
