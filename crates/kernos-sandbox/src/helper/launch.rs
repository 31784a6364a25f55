//! Cloning the namespace init and releasing it: the clone itself (with the weaker
//! no-namespace fallback when allowed), the user namespace's id maps, the step cgroup, and
//! the byte on the "go" pipe the init waits for.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::time::Instant;

use super::child;
use super::control::send;
use super::fail::{Failure, Weakened, helper_err};
use super::netns::PendingNetns;
use super::plan::{Namespaces, Plan, Resources};
use super::trace::Trace;
use crate::protocol::{FailKind, HelperMessage, HelperRequest};
use crate::sys;

/// The released init.
pub(super) struct Launched {
    pub pid: libc::pid_t,
    /// To wait for the init's exit and to signal it.
    pub pidfd: OwnedFd,
    /// Read end of the status pipe the init and the command report on.
    pub status: OwnedFd,
    /// When the init was released: the wall clock starts here.
    pub started: Instant,
}

/// What the parent keeps of a freshly cloned init.
struct Cloned {
    pid: libc::pid_t,
    /// The init is in the new namespaces (not the weaker fallback).
    in_namespaces: bool,
    go: OwnedFd,
    status: OwnedFd,
}

/// Clones the init into `ns` with `plan` and releases it once it is in the step cgroup.
/// On failure the init, if there is one, is killed and reaped.
pub(super) fn launch(
    req: &HelperRequest,
    plan: Plan,
    mut ns: Namespaces,
    res: &Resources,
    self_moving: bool,
    weakened: &mut Weakened,
    trace: &mut Trace,
) -> Result<Launched, Failure> {
    let netns = std::mem::take(&mut ns.premade_net);
    let cloned = clone_init(req, plan, &ns, netns, weakened)?;
    trace.mark("cloned");
    release(cloned, &ns, res, self_moving, trace)
}

/// Clones the init, which runs `plan` (in the child this never returns). Without the
/// namespaces, and when the policy allows it, falls back to a plain fork without the mount
/// view. The plan is dropped in the parent, closing its copies of the cgroup files.
///
/// Without the network effect the init gets, in order of preference: the caller's shared
/// namespace (when it may share one), the one `netns` made for this step, or a new one from
/// the clone itself.
fn clone_init(
    req: &HelperRequest,
    mut plan: Plan,
    ns: &Namespaces,
    netns: PendingNetns,
    weakened: &mut Weakened,
) -> Result<Cloned, Failure> {
    let mut flags = ns.flags;
    let premade = netns.finish();
    if ns.isolate_network
        && !join_shared_netns(req.netns_fd, ns.may_share_network)
        && !premade.as_ref().is_some_and(join_own_netns)
    {
        flags |= libc::CLONE_NEWNET;
    }
    drop(premade); // the init must not inherit it; it keeps the namespace alive by being in it
    let (go_r, go_w) = sys::pipe().map_err(helper_err("pipe"))?;
    let (st_r, st_w) = sys::pipe().map_err(helper_err("pipe"))?;
    let mut in_namespaces = true;
    let mut pid = clone(flags);
    if let Err(e) = &pid {
        let why = format!(
            "namespaces (clone with CLONE_NEWUSER|CLONE_NEWPID|CLONE_NEWNS… failed: {e}); \
             unprivileged user namespaces may be disabled (sysctl user.max_user_namespaces, \
             kernel.unprivileged_userns_clone, or an AppArmor userns restriction)"
        );
        weakened.skip((FailKind::Unavailable, why.clone()), why)?;
        without_mount_namespace(&mut plan, weakened);
        in_namespaces = false;
        pid = clone(0);
    }
    let pid = pid.map_err(helper_err("fork"))?;
    if pid == 0 {
        drop(go_w);
        drop(st_r);
        child::init_main(&plan, go_r, st_w, in_namespaces);
    }
    Ok(Cloned {
        pid,
        in_namespaces,
        go: go_w,
        status: st_r,
    })
}

/// The weaker fallback: no mount view, so no hidden paths and no read-only mounts, and no
/// private /dev/shm for Landlock to open up.
fn without_mount_namespace(plan: &mut Plan, weakened: &mut Weakened) {
    if !plan.mounts.as_ref().is_some_and(|m| m.hide.is_empty()) {
        weakened.note("deny_read paths are NOT hidden (needs a mount namespace)");
    }
    weakened.note("read-only mounts (metadata changes outside writable paths)");
    plan.mounts = None;
    if let Some(rs) = &mut plan.landlock {
        rs.rules.retain(|r| r.path.as_c_str() != c"/dev/shm");
    }
}

/// Writes the id maps, puts the init in the step cgroup, tells the caller the tree exists,
/// and lets the init go.
fn release(
    cloned: Cloned,
    ns: &Namespaces,
    res: &Resources,
    self_moving: bool,
    trace: &mut Trace,
) -> Result<Launched, Failure> {
    let pid = cloned.pid;
    let pidfd = sys::pidfd_open(pid).map_err(helper_err("pidfd_open"))?;
    let abandon = || {
        let _ = sys::pidfd_kill(&pidfd, libc::SIGKILL);
        let _ = sys::wait4(pid);
    };
    if cloned.in_namespaces && ns.user {
        if let Err(e) = write_id_maps(pid, ns.euid) {
            abandon();
            return Err((
                FailKind::Unavailable,
                format!("user namespace id maps: {e}"),
            ));
        }
    }
    if let (Some(cg), false) = (&res.cgroup, self_moving) {
        if let Err(e) = cg.attach(pid) {
            abandon();
            return Err((FailKind::Helper, format!("joining the step cgroup: {e}")));
        }
    }
    send(&HelperMessage::Started {
        helper_pid: std::process::id() as i32,
        pid,
        cgroups: res
            .cgroup
            .as_ref()
            .map(|c| c.dirs.iter().map(|(_, d)| d.clone()).collect())
            .unwrap_or_default(),
        tmpdir: res.tmpdir.clone(),
    });
    trace.mark("maps written, released");
    let started = Instant::now();
    if sys::write_all(cloned.go.as_raw_fd(), b"g").is_err() {
        let _ = sys::pidfd_kill(&pidfd, libc::SIGKILL);
    }
    drop(cloned.go);
    Ok(Launched {
        pid,
        pidfd,
        status: cloned.status,
        started,
    })
}

/// Joins the caller's shared network namespace (`fd`) instead of creating one per step, when
/// the caller passed one and Landlock scopes abstract Unix sockets (`scoped`: ABI 6), the
/// only thing two concurrent steps could otherwise share in an empty namespace (sockets other
/// than AF_UNIX are refused by seccomp). Creating and tearing down a network namespace per
/// step costs 0.6 ms at the median and several ms at p90 (teardown runs in a shared kernel
/// workqueue).
fn join_shared_netns(fd: Option<i32>, scoped: bool) -> bool {
    let Some(fd) = fd else {
        return false;
    };
    let ok = scoped
        // SAFETY: setns on a descriptor the caller passed; affects only this helper process.
        && unsafe { libc::setns(fd, libc::CLONE_NEWNET) } == 0;
    // SAFETY: closing our copy; the init must not inherit it.
    unsafe { libc::close(fd) };
    ok
}

/// Joins the empty network namespace made for this step alone (see [`super::netns`]).
fn join_own_netns(fd: &OwnedFd) -> bool {
    // SAFETY: setns on a namespace descriptor we own; affects only this helper process.
    unsafe { libc::setns(fd.as_raw_fd(), libc::CLONE_NEWNET) == 0 }
}

/// A fork-like clone into new namespaces (flags 0: a plain fork).
fn clone(flags: libc::c_int) -> io::Result<libc::pid_t> {
    // SAFETY: with a NULL stack, clone behaves like fork; the helper is single-threaded, so the
    // child gets a consistent copy of the process. The remaining pointer arguments are unused.
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone,
            (flags | libc::SIGCHLD) as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    sys::cvt_l(r).map(|p| p as libc::pid_t)
}

/// Maps ids for the child's user namespace. Root (we can, holding CAP_SETUID/CAP_SETGID) maps
/// every id to itself, so root stays root inside and file ownership looks the same; anyone
/// else may only map their own uid and gid, which is also what they keep inside.
fn write_id_maps(pid: libc::pid_t, euid: libc::uid_t) -> io::Result<()> {
    let base = PathBuf::from(format!("/proc/{pid}"));
    if euid == 0 {
        std::fs::write(base.join("uid_map"), "0 0 4294967295\n")?;
        std::fs::write(base.join("gid_map"), "0 0 4294967295\n")?;
    } else {
        // SAFETY: getegid has no arguments.
        let egid = unsafe { libc::getegid() };
        std::fs::write(base.join("setgroups"), "deny")?;
        std::fs::write(base.join("uid_map"), format!("{euid} {euid} 1\n"))?;
        std::fs::write(base.join("gid_map"), format!("{egid} {egid} 1\n"))?;
    }
    Ok(())
}
