//! What confinement this kernel and this process can actually apply (`kernos doctor`).
//!
//! The namespace, mount, Landlock and seccomp checks are done for real in a short-lived forked
//! child rather than inferred from sysctls, because containers, LSMs and distro patches can
//! each make a feature that "exists" fail in practice.

use std::fmt;
use std::os::fd::AsRawFd;

use serde::Serialize;

use crate::cgroup::{CgroupSetup, CgroupVersion};
use crate::{landlock, sys};

/// Cgroup support for per-step limits.
#[derive(Debug, Clone, Serialize)]
pub struct CgroupInfo {
    /// Interface used.
    pub version: CgroupVersion,
    /// Controllers a step cgroup can use (memory, pids, cpu, cpuacct).
    pub controllers: Vec<String>,
}

/// The confinement features available here.
#[derive(Debug, Clone, Serialize)]
pub struct Features {
    /// `uname -r`.
    pub kernel: String,
    /// Landlock ABI version, if Landlock is enabled.
    pub landlock_abi: Option<u32>,
    /// A Landlock ruleset could actually be enforced.
    pub landlock_enforced: bool,
    /// Landlock protections missing at this ABI compared with the newest we use.
    pub landlock_missing: Vec<String>,
    /// A seccomp filter could be installed (and the syscall table is known for this arch).
    pub seccomp: bool,
    /// `PR_SET_NO_NEW_PRIVS` works.
    pub no_new_privs: bool,
    /// A user namespace could be created.
    pub user_namespace: bool,
    /// A PID namespace could be created (inside the user namespace).
    pub pid_namespace: bool,
    /// A network namespace could be created.
    pub net_namespace: bool,
    /// IPC and UTS namespaces could be created.
    pub ipc_uts_namespaces: bool,
    /// A mount namespace could be created (needed to hide `deny_read` paths).
    pub mount_namespace: bool,
    /// The whole mount tree could be made read-only (`mount_setattr`, Linux 5.12+).
    pub read_only_mounts: bool,
    /// Per-step cgroup, if one can be created.
    pub cgroup: Option<CgroupInfo>,
    /// Other cgroup facts worth knowing (e.g. a v2 mount without the controllers we need).
    pub cgroup_note: Option<String>,
    /// How the process limit is enforced.
    pub process_limit: String,
}

impl Features {
    /// Features the sandbox needs and refuses to run without (unless `allow_weaker`). Empty
    /// when every step can be fully confined.
    pub fn missing(&self) -> Vec<&'static str> {
        let mut m = Vec::new();
        if !self.landlock_enforced {
            m.push("landlock");
        }
        if !self.seccomp {
            m.push("seccomp");
        }
        if !self.no_new_privs {
            m.push("no_new_privs");
        }
        if !self.user_namespace {
            m.push("user namespace");
        }
        if !self.pid_namespace {
            m.push("pid namespace");
        }
        if !self.net_namespace {
            m.push("network namespace");
        }
        if !self.mount_namespace {
            m.push("mount namespace");
        }
        if !self.read_only_mounts {
            m.push("read-only mounts");
        }
        if self.process_limit.starts_with("NOT") {
            m.push("process limit");
        }
        m
    }

    /// The machine-readable form (`kernos doctor --json`).
    pub fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        if let Some(o) = v.as_object_mut() {
            o.insert("missing".into(), serde_json::json!(self.missing()));
        }
        v
    }
}

impl fmt::Display for Features {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let yn = |b: bool| if b { "yes" } else { "NO" };
        writeln!(f, "sandbox features (kernel {})", self.kernel)?;
        match self.landlock_abi {
            Some(abi) => {
                write!(
                    f,
                    "  landlock            ABI {abi}, {}",
                    if self.landlock_enforced {
                        "enforced"
                    } else {
                        "NOT enforced"
                    }
                )?;
                if !self.landlock_missing.is_empty() {
                    write!(f, " (without {})", self.landlock_missing.join(", "))?;
                }
                writeln!(f)?;
            }
            None => writeln!(
                f,
                "  landlock            NO (needs Linux 5.13+ with lsm=landlock)"
            )?,
        }
        writeln!(f, "  seccomp             {}", yn(self.seccomp))?;
        writeln!(f, "  no_new_privs        {}", yn(self.no_new_privs))?;
        writeln!(f, "  user namespace      {}", yn(self.user_namespace))?;
        writeln!(f, "  pid namespace       {}", yn(self.pid_namespace))?;
        writeln!(f, "  network namespace   {}", yn(self.net_namespace))?;
        writeln!(f, "  ipc/uts namespaces  {}", yn(self.ipc_uts_namespaces))?;
        writeln!(f, "  mount namespace     {}", yn(self.mount_namespace))?;
        writeln!(f, "  read-only mounts    {}", yn(self.read_only_mounts))?;
        match &self.cgroup {
            Some(c) => writeln!(
                f,
                "  cgroup              {:?} ({})",
                c.version,
                c.controllers.join(", ")
            )?,
            None => writeln!(f, "  cgroup              none (rlimits only)")?,
        }
        if let Some(n) = &self.cgroup_note {
            writeln!(f, "                      {n}")?;
        }
        writeln!(f, "  process limit       {}", self.process_limit)?;
        let missing = self.missing();
        if missing.is_empty() {
            write!(f, "  => full confinement available")
        } else {
            write!(
                f,
                "  => missing: {}; steps are refused unless sandbox.allow_weaker = true",
                missing.join(", ")
            )
        }
    }
}

// Bits the probe child reports.
const B_NNP: u32 = 1 << 0;
const B_USER: u32 = 1 << 1;
const B_MNT: u32 = 1 << 2;
const B_NET: u32 = 1 << 3;
const B_IPC_UTS: u32 = 1 << 4;
const B_PID: u32 = 1 << 5;
const B_RO_MOUNTS: u32 = 1 << 6;
const B_LANDLOCK: u32 = 1 << 7;
const B_SECCOMP: u32 = 1 << 8;

/// Probes the running kernel. Takes a few milliseconds (one forked child).
pub fn probe() -> Features {
    let abi = landlock::abi().ok().filter(|v| *v >= 1);
    let bits = probe_child(abi).unwrap_or(0);
    let setup = CgroupSetup::detect();
    let cgroup = setup.summary().map(|(version, controllers)| CgroupInfo {
        version,
        controllers,
    });
    // SAFETY: geteuid has no arguments.
    let euid = unsafe { libc::geteuid() };
    let process_limit = if setup.has("pids") {
        format!(
            "pids cgroup ({})",
            if setup.v2.is_some() { "v2" } else { "v1" }
        )
    } else if euid != 0 {
        "RLIMIT_NPROC".to_owned()
    } else {
        "NOT enforceable: root ignores RLIMIT_NPROC and no pids cgroup can be created".to_owned()
    };
    Features {
        kernel: kernel_release(),
        landlock_abi: abi,
        landlock_enforced: bits & B_LANDLOCK != 0,
        landlock_missing: abi
            .map(|a| {
                landlock::missing_for(a)
                    .into_iter()
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default(),
        seccomp: bits & B_SECCOMP != 0,
        no_new_privs: bits & B_NNP != 0,
        user_namespace: bits & B_USER != 0,
        pid_namespace: bits & B_PID != 0,
        net_namespace: bits & B_NET != 0,
        ipc_uts_namespaces: bits & B_IPC_UTS != 0,
        mount_namespace: bits & B_MNT != 0,
        read_only_mounts: bits & B_RO_MOUNTS != 0,
        cgroup,
        cgroup_note: cgroup_note(&setup),
        process_limit,
    }
}

fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "unknown".into())
}

/// Explains a cgroup v2 mount that is present but unusable (the hybrid layout).
fn cgroup_note(setup: &CgroupSetup) -> Option<String> {
    if setup.v2.is_some() {
        return None;
    }
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let mp = mounts.lines().find_map(|l| {
        let (left, right) = l.split_once(" - ")?;
        right
            .starts_with("cgroup2 ")
            .then(|| left.split(' ').nth(4).map(str::to_owned))
            .flatten()
    })?;
    let ctrls = std::fs::read_to_string(format!("{mp}/cgroup.controllers")).unwrap_or_default();
    Some(format!(
        "cgroup v2 at {mp} is not delegated to us for memory/pids/cpu (it offers: {})",
        if ctrls.trim().is_empty() {
            "nothing"
        } else {
            ctrls.trim()
        }
    ))
}

/// Forks a child that tries each feature and writes a bit mask to a pipe. The child makes
/// only raw syscalls (no allocation), so this is safe from a multi-threaded caller.
fn probe_child(abi: Option<u32>) -> Option<u32> {
    let (r, w) = sys::pipe().ok()?;
    let filter = crate::seccomp::build(crate::seccomp::FilterOpts {
        deny_network: true,
        ..Default::default()
    })
    .ok();
    let ruleset = abi.map(|abi| landlock::Ruleset {
        abi,
        handled_fs: landlock::FS_READ_FILE,
        handled_net: 0,
        rules: Vec::new(),
        connect_ports: Vec::new(),
        scope_signals: true,
    });
    // SAFETY: the child below only performs syscalls on pre-built data and _exits.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return None;
    }
    if pid == 0 {
        // SAFETY: raw syscalls with valid pointers to data built before the fork.
        unsafe {
            let mut bits = 0u32;
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 {
                bits |= B_NNP;
            }
            if libc::unshare(libc::CLONE_NEWUSER) == 0 {
                bits |= B_USER;
                if libc::unshare(libc::CLONE_NEWNS) == 0 {
                    bits |= B_MNT;
                    let ok = libc::mount(
                        std::ptr::null(),
                        c"/".as_ptr(),
                        std::ptr::null(),
                        libc::MS_REC | libc::MS_PRIVATE,
                        std::ptr::null(),
                    ) == 0;
                    let attr: [u64; 4] = [1, 0, 0, 0]; // MOUNT_ATTR_RDONLY
                    if ok
                        && libc::syscall(
                            libc::SYS_mount_setattr,
                            libc::AT_FDCWD,
                            c"/".as_ptr(),
                            0x8000u32,
                            attr.as_ptr(),
                            32usize,
                        ) == 0
                    {
                        bits |= B_RO_MOUNTS;
                    }
                }
                if libc::unshare(libc::CLONE_NEWNET) == 0 {
                    bits |= B_NET;
                }
                if libc::unshare(libc::CLONE_NEWIPC | libc::CLONE_NEWUTS) == 0 {
                    bits |= B_IPC_UTS;
                }
                if libc::unshare(libc::CLONE_NEWPID) == 0 {
                    bits |= B_PID;
                }
            }
            if let Some(rs) = &ruleset {
                // restrict_self only formats an error string on failure; success allocates
                // nothing.
                if rs.restrict_self().is_ok() {
                    bits |= B_LANDLOCK;
                }
            }
            if let Some(f) = &filter {
                let fprog = libc::sock_fprog {
                    len: f.len() as u16,
                    filter: f.as_ptr() as *mut libc::sock_filter,
                };
                if libc::syscall(
                    libc::SYS_seccomp,
                    libc::SECCOMP_SET_MODE_FILTER,
                    0u32,
                    &fprog as *const libc::sock_fprog,
                ) == 0
                {
                    bits |= B_SECCOMP;
                }
            }
            let b = bits.to_ne_bytes();
            libc::write(w.as_raw_fd(), b.as_ptr().cast(), 4);
            libc::_exit(0);
        }
    }
    drop(w);
    let mut b = [0u8; 4];
    let n = sys::read(r.as_raw_fd(), &mut b).ok();
    let _ = sys::wait4(pid);
    (n == Some(4)).then(|| u32::from_ne_bytes(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_reports_something_sensible() {
        let f = probe();
        let text = f.to_string();
        assert!(text.contains("landlock"));
        let j = f.to_json();
        assert!(j["missing"].is_array());
        assert!(j["kernel"].is_string());
    }
}
