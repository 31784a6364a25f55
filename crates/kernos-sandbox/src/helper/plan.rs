//! The confinement plan of one step, decided before anything is cloned: the namespaces, the
//! mount view, the Landlock rules, the seccomp filter, the rlimits and the step cgroup. Each
//! part is decided by its own function, in a fixed order; a part this machine cannot give
//! fails the step unless the policy allows weaker confinement (see [`Weakened`]).

use std::ffi::CString;
use std::os::fd::OwnedFd;
use std::path::PathBuf;

use kernos_core::sandbox::{Lifetime, NetworkPolicy};

use super::command::Command;
use super::fail::{Failure, Weakened, cpath, cstring};
use super::kernel::{self, Probed};
use super::limits::StepLimits;
use super::netns::PendingNetns;
use super::paths::{DeclaredPaths, make_tmpdir, remove_tree};
use super::rules;
use super::trace::Trace;
use super::view::{self, MountPlan};
use crate::cgroup::StepCgroup;
use crate::landlock::Ruleset;
use crate::protocol::{FailKind, HelperRequest};
use crate::seccomp::FilterOpts;

/// Everything the cloned children need, computed before cloning.
#[derive(Debug)]
pub(crate) struct Plan {
    pub program: CString,
    pub argv: Vec<CString>,
    pub envp: Vec<CString>,
    pub cwd: Option<CString>,
    pub rlimits: Vec<(libc::__rlimit_resource_t, u64, u64)>,
    pub landlock: Option<Ruleset>,
    pub seccomp: Option<Vec<libc::sock_filter>>,
    pub mounts: Option<MountPlan>,
    pub allow_weaker: bool,
    /// v1 `tasks` files of the step cgroup, for the init to join by writing "0".
    pub cgroup_join: Vec<OwnedFd>,
    /// v1 `tasks` files of our own cgroup, for the init to leave the step cgroup again.
    pub cgroup_leave: Vec<OwnedFd>,
    /// Service lifetime: the init is not a PID-namespace init; it stops only the command's
    /// process group and leaves everything else running when the command exits.
    pub service: bool,
    /// Capabilities to drop from the bounding set before exec (service lifetime as root,
    /// where no user namespace scopes them).
    pub drop_caps: Vec<u32>,
    /// Send phase timings on the status pipe.
    pub trace: bool,
}

/// Capabilities a service-lifetime command run as root gives up (they are the ones a user
/// namespace would have kept from it): no service needs them, and each opens a way around
/// the mount view, the seccomp filter or the kernel's integrity.
const SERVICE_DROPPED_CAPS: [(u32, &str); 13] = [
    (9, "CAP_LINUX_IMMUTABLE"),
    (16, "CAP_SYS_MODULE"),
    (17, "CAP_SYS_RAWIO"),
    (19, "CAP_SYS_PTRACE"),
    (21, "CAP_SYS_ADMIN"),
    (22, "CAP_SYS_BOOT"),
    (27, "CAP_MKNOD"),
    (30, "CAP_AUDIT_CONTROL"),
    (32, "CAP_MAC_OVERRIDE"),
    (33, "CAP_MAC_ADMIN"),
    (34, "CAP_SYSLOG"),
    (38, "CAP_PERFMON"),
    (39, "CAP_BPF"),
];

/// The namespaces the init is cloned into.
pub(super) struct Namespaces {
    /// `CLONE_NEW*` flags, except the network namespace (see `isolate_network`).
    pub flags: libc::c_int,
    /// A user namespace is among them: its id maps are written after cloning.
    pub user: bool,
    /// No network effect: the init gets an empty network namespace of its own, or the
    /// caller's shared one when it may join that.
    pub isolate_network: bool,
    /// Landlock scopes abstract Unix sockets (ABI 6), the only thing two steps could share
    /// in an empty network namespace, so joining the caller's shared one is as good.
    pub may_share_network: bool,
    /// Our effective uid, which decides the id maps.
    pub euid: libc::uid_t,
    /// The step's own empty network namespace, being made while the plan is built (as root,
    /// when there is no shared one to join).
    pub premade_net: PendingNetns,
}

impl Namespaces {
    fn for_step(
        service: bool,
        euid: libc::uid_t,
        deny_network: bool,
        abi: Option<u32>,
        premade_net: PendingNetns,
    ) -> Self {
        let mut flags = libc::CLONE_NEWNS;
        if !service {
            flags |= libc::CLONE_NEWPID | libc::CLONE_NEWIPC | libc::CLONE_NEWUTS;
        }
        // Root runs a service without a user namespace: a daemon's capabilities must count
        // against the host (binding port 80 in the host's network namespace, say). The ones
        // no service needs are dropped from the bounding set instead.
        let user = !service || euid != 0;
        if user {
            flags |= libc::CLONE_NEWUSER;
        }
        Namespaces {
            flags,
            user,
            isolate_network: deny_network,
            may_share_network: abi.unwrap_or(0) >= 6,
            euid,
            premade_net,
        }
    }

    /// Capabilities the command drops because no user namespace scopes them.
    fn dropped_caps(&self) -> Vec<u32> {
        if self.user {
            Vec::new()
        } else {
            SERVICE_DROPPED_CAPS.iter().map(|(c, _)| *c).collect()
        }
    }
}

/// State that must be cleaned up whatever happens.
pub(super) struct Resources {
    pub cgroup: Option<StepCgroup>,
    pub tmpdir: Option<PathBuf>,
}

impl Drop for Resources {
    fn drop(&mut self) {
        if let Some(cg) = &mut self.cgroup {
            cg.remove();
        }
        if let Some(t) = self.tmpdir.take() {
            remove_tree(&t);
        }
    }
}

/// The whole confinement of one step, ready to be cloned.
pub(super) struct Confinement {
    /// What the init and the command apply.
    pub plan: Plan,
    pub namespaces: Namespaces,
    pub limits: StepLimits,
    /// The step cgroup and the private temp dir.
    pub resources: Resources,
    pub weakened: Weakened,
    /// Which cgroup interface limits the step ("v1: memory,pids"), for the report.
    pub cgroup_summary: Option<String>,
    /// The init moves itself into the step cgroup (v1); otherwise the helper attaches it.
    pub self_moving: bool,
}

impl Confinement {
    /// Decides every part of the step's confinement, in order. Any part that cannot be had
    /// (and may not be skipped) fails the step; the temp dir and cgroup made so far go with it.
    pub(super) fn build(req: &HelperRequest, trace: &mut Trace) -> Result<Confinement, Failure> {
        // Started first, so that it runs while the rest of the plan is built.
        let premade_net = PendingNetns::start(req);
        let policy = &req.policy;
        let mut weakened = Weakened::new(policy.allow_weaker);
        // SAFETY: geteuid has no arguments.
        let euid = unsafe { libc::geteuid() };
        let kernel = kernel::probed();
        let service = policy.lifetime == Lifetime::Service;
        let deny_network = matches!(policy.network, NetworkPolicy::Deny);
        // Declared sockets open connect(2) to Unix sockets; the mount view then decides which.
        let unix_connect = deny_network && !policy.unix_sockets.is_empty();

        let abi = rules::landlock_abi(kernel, &mut weakened)?;
        let filter = FilterOpts {
            deny_network,
            unix_connect,
            no_kill_all: service,
        };
        let seccomp = seccomp_filter(kernel, filter, &mut weakened)?;
        let mut paths = DeclaredPaths::resolve(req, unix_connect, &mut weakened)?;
        let tmpdir = make_tmpdir().map_err(|e| {
            (
                FailKind::Helper,
                format!("cannot create the private temp dir: {e}"),
            )
        })?;
        let mut resources = Resources {
            cgroup: None,
            tmpdir: Some(tmpdir.clone()),
        };
        paths.writable.push(tmpdir.clone());
        let command = Command::resolve(req, &tmpdir, paths.cwd.as_deref())?;
        trace.mark("planned");

        let limits = StepLimits::decide(policy, &kernel.cgroups, euid, &mut weakened)?;
        let (cgroup, cgroup_summary) =
            limits.create_cgroup(&kernel.cgroups, euid, &mut weakened)?;
        resources.cgroup = cgroup;
        trace.mark("cgroup created");
        let rlimits = limits.rlimits(&policy.limits, resources.cgroup.as_ref());

        let net = rules::network_rules(&policy.network, abi, &mut weakened)?;
        let mounts = view::mount_view(&paths, limits.memory, service)?;
        let landlock = abi.map(|abi| rules::ruleset(abi, &mounts.writable, &net, service));
        let (cgroup_join, cgroup_leave) = self_move_fds(resources.cgroup.as_ref())?;
        let self_moving = !cgroup_join.is_empty();
        let namespaces = Namespaces::for_step(service, euid, deny_network, abi, premade_net);

        let plan = Plan {
            program: command.program,
            argv: req
                .argv
                .iter()
                .map(|a| cstring(a))
                .collect::<Result<_, _>>()?,
            envp: command
                .env
                .iter()
                .map(|(k, v)| cstring(&format!("{k}={v}")))
                .collect::<Result<_, _>>()?,
            cwd: paths.cwd.as_deref().map(cpath).transpose()?,
            rlimits,
            landlock,
            seccomp,
            mounts: Some(mounts),
            allow_weaker: policy.allow_weaker,
            cgroup_join,
            cgroup_leave,
            service,
            drop_caps: namespaces.dropped_caps(),
            trace: req.trace,
        };
        Ok(Confinement {
            plan,
            namespaces,
            limits,
            resources,
            weakened,
            cgroup_summary,
            self_moving,
        })
    }
}

/// The seccomp program for the step, if the kernel can filter system calls.
fn seccomp_filter(
    kernel: &Probed,
    opts: FilterOpts,
    weakened: &mut Weakened,
) -> Result<Option<Vec<libc::sock_filter>>, Failure> {
    if !kernel.seccomp_available {
        weakened.skip(
            (
                FailKind::Unavailable,
                "seccomp filters are not available on this kernel (CONFIG_SECCOMP_FILTER)".into(),
            ),
            "seccomp (not built into this kernel)",
        )?;
        return Ok(None);
    }
    match kernel.filter(opts) {
        Ok(p) => Ok(Some(p)),
        Err(e) => {
            let note = format!("seccomp ({e})");
            weakened.skip((FailKind::Unavailable, e), note)?;
            Ok(None)
        }
    }
}

/// v1: the init moves itself in and out of the step cgroup through these (fast); v2: the
/// helper moves it in after cloning, and there are none.
fn self_move_fds(cgroup: Option<&StepCgroup>) -> Result<(Vec<OwnedFd>, Vec<OwnedFd>), Failure> {
    match cgroup.map(|c| c.self_move_fds()) {
        Some(Ok(Some(fds))) => Ok(fds),
        Some(Err(e)) => Err((FailKind::Helper, format!("step cgroup: {e}"))),
        _ => Ok((Vec::new(), Vec::new())),
    }
}
