//! The step's resource limits: which ones bind it, the cgroup that enforces what rlimits
//! cannot, and the rlimits the command sets on itself.

use kernos_core::sandbox::{Lifetime, Limits, SandboxPolicy};

use super::fail::{Failure, Weakened};
use crate::cgroup::{CgroupLimits, CgroupSetup, StepCgroup};
use crate::protocol::FailKind;

/// The limits that bind one step, and how they are enforced.
pub(super) struct StepLimits {
    /// Memory, bytes (none for a service: see [`StepLimits::decide`]).
    pub memory: Option<u64>,
    /// Processes (none for a service).
    pub processes: Option<u64>,
    /// CPU seconds (none for a service).
    pub cpu_seconds: Option<u64>,
    /// What the step cgroup, if one can be made, is to limit.
    cgroup: CgroupLimits,
    /// A cgroup accounts the CPU time of the whole tree, to hold it to `cpu_seconds`.
    cpu_accounted: bool,
}

impl StepLimits {
    /// The limits of `policy` that bind the step, and which of them a cgroup enforces on
    /// this machine (`setup`). Fails when a process limit cannot bind root.
    pub(super) fn decide(
        policy: &SandboxPolicy,
        setup: &CgroupSetup,
        euid: libc::uid_t,
        weakened: &mut Weakened,
    ) -> Result<StepLimits, Failure> {
        let limits = &policy.limits;
        let service = policy.lifetime == Lifetime::Service;
        let cpus = std::thread::available_parallelism()
            .map(|n| n.get() as u64)
            .unwrap_or(1);
        // A service outlives the step, so limits that would bind it for its whole life
        // (memory, processes, CPU time, a per-step cgroup) are not applied to service steps.
        let step_limit = |l: Option<u64>| l.filter(|_| !service);
        let (memory, processes, cpu_seconds) = (
            step_limit(limits.memory_bytes),
            step_limit(limits.max_processes),
            step_limit(limits.cpu_seconds),
        );
        let cgroup = CgroupLimits {
            memory_bytes: memory.filter(|_| setup.has("memory")),
            // +1 for the namespace init, which lives in the cgroup too.
            max_pids: processes.filter(|_| setup.has("pids")).map(|p| p + 1),
            // Leave one core to the rest of the system so a runaway step never starves the
            // daemon that supervises it.
            cpus: (!service && cpus > 1 && setup.has("cpu")).then_some(cpus - 1),
        };
        if processes.is_some() && cgroup.max_pids.is_none() && euid == 0 {
            // RLIMIT_NPROC is not enforced for uid 0, so without a pids cgroup nothing would
            // stop a fork bomb run by root.
            let why = "process limit (no pids cgroup can be created here, and RLIMIT_NPROC does \
                       not bind root)";
            weakened.skip((FailKind::Unavailable, why.into()), why)?;
        }
        Ok(StepLimits {
            memory,
            processes,
            cpu_seconds,
            cpu_accounted: cpu_seconds.is_some() && setup.has("cpuacct"),
            cgroup,
        })
    }

    /// Creates the step cgroup if any limit needs one: `(cgroup, summary for the report)`.
    /// A cgroup that cannot be made weakens the step, except that root's process limit
    /// depends on it.
    pub(super) fn create_cgroup(
        &self,
        setup: &CgroupSetup,
        euid: libc::uid_t,
        weakened: &mut Weakened,
    ) -> Result<(Option<StepCgroup>, Option<String>), Failure> {
        let c = &self.cgroup;
        let needed = c.memory_bytes.is_some()
            || c.max_pids.is_some()
            || c.cpus.is_some()
            || self.cpu_accounted;
        if !needed {
            return Ok((None, None));
        }
        let name = format!("kernos-sbx-{}", std::process::id());
        match StepCgroup::create(setup, &name, c, self.cpu_accounted) {
            Ok(cg) => {
                let summary = cg.version.map(|v| {
                    let ctrls: Vec<&str> = cg.dirs.iter().map(|(c, _)| c.as_str()).collect();
                    format!("{v:?}: {}", ctrls.join(",")).to_lowercase()
                });
                Ok((Some(cg), summary))
            }
            Err(e) => {
                let why = format!("step cgroup ({e})");
                if c.max_pids.is_some() && euid == 0 {
                    weakened.skip((FailKind::Unavailable, why.clone()), why)?;
                } else {
                    weakened.note(why);
                }
                Ok((None, None))
            }
        }
    }

    /// Total CPU of the tree, µs, that the helper holds the step to (when a cgroup accounts it).
    pub(super) fn cpu_total_us(&self) -> Option<u64> {
        self.cpu_seconds
            .filter(|_| self.cpu_accounted)
            .map(|s| s.saturating_mul(1_000_000))
    }

    /// The rlimits the command sets on itself; `cgroup` is the step cgroup, if there is one.
    pub(super) fn rlimits(
        &self,
        limits: &Limits,
        cgroup: Option<&StepCgroup>,
    ) -> Vec<(libc::__rlimit_resource_t, u64, u64)> {
        let mem_cgroup = cgroup
            .is_some_and(|c| c.dirs.iter().any(|(n, _)| n == "memory" || n.is_empty()))
            && self.cgroup.memory_bytes.is_some();
        let mut rlimits: Vec<(libc::__rlimit_resource_t, u64, u64)> = vec![
            // Core dumps of a confined command would land in its cwd or a host-wide handler.
            (libc::RLIMIT_CORE, 0, 0),
        ];
        if let Some(m) = self.memory {
            // With a memory cgroup enforcing the real limit, the address-space limit only
            // guards against absurd single allocations; virtual reservations (runtimes,
            // mmap'd files) routinely exceed resident memory, so give them room.
            let r#as = if mem_cgroup { m.saturating_mul(2) } else { m };
            rlimits.push((libc::RLIMIT_AS, r#as, r#as));
        }
        if let Some(p) = self.processes {
            rlimits.push((libc::RLIMIT_NPROC, p, p));
        }
        if let Some(c) = self.cpu_seconds {
            // SIGXCPU at the soft limit, SIGKILL a second later if it is caught.
            rlimits.push((libc::RLIMIT_CPU, c, c.saturating_add(1)));
        }
        if let Some(f) = limits.file_size_bytes {
            rlimits.push((libc::RLIMIT_FSIZE, f, f));
        }
        if let Some(n) = limits.open_files {
            rlimits.push((libc::RLIMIT_NOFILE, n, n));
        }
        rlimits
    }
}
