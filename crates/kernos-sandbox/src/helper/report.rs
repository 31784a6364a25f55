//! Reporting a step that ran: the CPU the tree used, and how the command ended and why
//! (its exit code or signal, and the limit or request that stopped it, if one did).

use kernos_core::exec::StopReason;
use kernos_core::sandbox::Limits;

use super::fail::{Failure, helper_err};
use super::plan::Resources;
use super::watch::{Ended, Kill};
use crate::cgroup::CgroupEvents;
use crate::sys;

/// What the step used, read once it is over.
pub(super) struct Usage {
    /// CPU of the whole tree, ms.
    pub tree_cpu_ms: u64,
    /// Limit events of the step cgroup.
    pub events: CgroupEvents,
    /// The init, when it reported the step done but has not exited yet: reaped after the
    /// report is sent.
    pub reap_later: Option<libc::pid_t>,
}

/// Reaps the init (if it has exited) and reads what the tree used.
pub(super) fn usage(ended: &Ended, init: libc::pid_t, res: &Resources) -> Result<Usage, Failure> {
    let mut tree_cpu_ms = ended.status.done.map(|(_, _, tree)| tree).unwrap_or(0);
    let mut reap_later = None;
    if ended.exited {
        let (_init_status, ru) = sys::wait4(init).map_err(helper_err("wait4"))?;
        tree_cpu_ms = tree_cpu_ms.max(sys::rusage_cpu_ms(&ru));
    } else {
        reap_later = Some(init);
    }
    let events = res.cgroup.as_ref().map(|c| c.events()).unwrap_or_default();
    // The cgroup's own accounting, when there is one, covers every process of the step.
    if let Some(us) = res.cgroup.as_ref().and_then(|c| c.cpu_usage_us()) {
        tree_cpu_ms = tree_cpu_ms.max(us / 1000);
    }
    Ok(Usage {
        tree_cpu_ms,
        events,
        reap_later,
    })
}

/// How the command ended.
pub(super) struct Verdict {
    pub code: Option<i32>,
    pub signal: Option<i32>,
    pub stopped: Option<StopReason>,
}

/// The command's exit and why it was stopped. A setup failure the init or command reported
/// fails the step, unless the step was being cancelled or timed out anyway. `cpu_limit` is
/// the CPU limit that bound the step (none for a service).
pub(super) fn verdict(
    ended: &Ended,
    usage: &Usage,
    limits: &Limits,
    cpu_limit: Option<u64>,
) -> Result<Verdict, Failure> {
    if let Some(f) = &ended.status.failure {
        if ended.killed != Some(Kill::Cancel) && ended.killed != Some(Kill::Timeout) {
            return Err(f.clone());
        }
    }
    let (code, signal, cmd_cpu_ms) = match ended.status.done {
        Some((st, cpu, _)) if libc::WIFEXITED(st) => (Some(libc::WEXITSTATUS(st)), None, cpu),
        Some((st, cpu, _)) if libc::WIFSIGNALED(st) => (None, Some(libc::WTERMSIG(st)), cpu),
        Some((_, cpu, _)) => (None, Some(libc::SIGKILL), cpu),
        // Killed before the command ended: it died with the namespace.
        None => (None, Some(libc::SIGKILL), usage.tree_cpu_ms),
    };
    let exit = Exit {
        code,
        signal,
        cmd_cpu_ms,
    };
    let stopped = match ended.killed {
        Some(Kill::Cancel) => Some(StopReason::Cancelled),
        Some(Kill::CpuTotal) => limits
            .cpu_seconds
            .map(|limit_s| StopReason::CpuLimit { limit_s }),
        killed => limit_hit(&exit, killed, &usage.events, limits, cpu_limit),
    };
    Ok(Verdict {
        code,
        signal,
        stopped,
    })
}

/// How the command process ended.
struct Exit {
    code: Option<i32>,
    signal: Option<i32>,
    cmd_cpu_ms: u64,
}

/// The limit that ended the command, if one did (or the signal that killed it otherwise).
/// `killed` is the helper's own reason, if it stopped the tree on the wall clock.
fn limit_hit(
    exit: &Exit,
    killed: Option<Kill>,
    events: &CgroupEvents,
    limits: &Limits,
    cpu_limit: Option<u64>,
) -> Option<StopReason> {
    let Exit {
        code,
        signal,
        cmd_cpu_ms,
    } = *exit;
    let success = code == Some(0) && killed.is_none();
    // A shell running the command reports a child killed by signal N as exit code 128+N;
    // `shell.run` steps always go through one, so read that too.
    let by = |sig: i32| signal == Some(sig) || code == Some(128 + sig);
    let cpu_hit = cpu_limit.is_some_and(|c| {
        by(libc::SIGXCPU) || (signal == Some(libc::SIGKILL) && cmd_cpu_ms >= c * 1000)
    });
    if cpu_hit {
        cpu_limit.map(|limit_s| StopReason::CpuLimit { limit_s })
    } else if by(libc::SIGXFSZ) && limits.file_size_bytes.is_some() {
        limits
            .file_size_bytes
            .map(|limit_bytes| StopReason::FileSizeLimit { limit_bytes })
    } else if !success
        && (events.oom_kills > 0 || (events.memory_limit_hits > 0 && signal == Some(libc::SIGKILL)))
    {
        limits
            .memory_bytes
            .map(|limit_bytes| StopReason::MemoryLimit { limit_bytes })
    } else if !success && events.pids_limit_hits > 0 {
        limits
            .max_processes
            .map(|limit| StopReason::ProcessLimit { limit })
    } else if killed == Some(Kill::Timeout) {
        Some(StopReason::Timeout {
            limit_ms: limits.wall_ms.unwrap_or(0),
        })
    } else {
        signal.map(|signal| StopReason::Signal { signal })
    }
}
