//! What the kernel offers the sandbox, learned once per helper: the fork server computes it
//! before the first fork, so every step inherits it (the common seccomp programs included,
//! already built).

use crate::cgroup::CgroupSetup;
use crate::seccomp::FilterOpts;
use crate::{landlock, seccomp};

/// The kernel's sandboxing features, as probed once.
pub(super) struct Probed {
    /// The Landlock ABI version, or the errno that says why there is none.
    pub landlock_abi: Result<u32, i32>,
    pub seccomp_available: bool,
    filter_no_net: Result<Vec<libc::sock_filter>, String>,
    filter_net: Result<Vec<libc::sock_filter>, String>,
    pub cgroups: CgroupSetup,
}

/// The filter of an ordinary step without the network effect.
const NO_NET: FilterOpts = FilterOpts {
    deny_network: true,
    unix_connect: false,
    no_kill_all: false,
};
/// The filter of an ordinary step with it.
const NET: FilterOpts = FilterOpts {
    deny_network: false,
    unix_connect: false,
    no_kill_all: false,
};

/// The features of this kernel, probed on first use.
pub(super) fn probed() -> &'static Probed {
    static P: std::sync::OnceLock<Probed> = std::sync::OnceLock::new();
    P.get_or_init(|| Probed {
        landlock_abi: landlock::abi().map_err(|e| e.raw_os_error().unwrap_or(libc::ENOSYS)),
        seccomp_available: seccomp::available(),
        filter_no_net: seccomp::build(NO_NET),
        filter_net: seccomp::build(NET),
        cgroups: CgroupSetup::detect(),
    })
}

impl Probed {
    /// The seccomp program for `opts`: the two common ones were built before the first fork;
    /// the rarer variants (declared Unix sockets, service lifetime) cost a few µs to build.
    pub(super) fn filter(&self, opts: FilterOpts) -> Result<Vec<libc::sock_filter>, String> {
        match opts {
            NO_NET => self.filter_no_net.clone(),
            NET => self.filter_net.clone(),
            other => seccomp::build(other),
        }
    }
}
