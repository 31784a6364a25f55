//! One step, from request to report: build the confinement plan, clone the init, supervise
//! the tree, report, and clean up after the caller has its answer.

use std::os::fd::OwnedFd;
use std::time::Duration;

use super::control::{is_socket, read_request, send, signal_fd};
use super::fail::Failure;
use super::launch;
use super::plan::Confinement;
use super::report;
use super::trace::Trace;
use super::watch::{self, Watch};
use crate::cgroup::StepCgroup;
use crate::protocol::{
    CONTROL_FD, FailKind, HelperMessage, HelperReport, HelperRequest, PROTOCOL_VERSION,
};
use crate::sys;

/// What is left to do after the report: remove the (empty) step cgroup and reap the init.
struct Leftovers {
    init: Option<libc::pid_t>,
    cgroup: Option<StepCgroup>,
}

/// One step: read the request on fd 3, run it, report, clean up.
pub(super) fn run_step(main_us: u64) -> Result<(), String> {
    if !is_socket(CONTROL_FD) {
        return Err(
            "no control socket on fd 3: this is kernos's sandbox helper, started by kernos \
             itself; to run a command confined use `kernos sandbox exec -- CMD`"
                .into(),
        );
    }
    // If our parent (the library, or the fork server) dies, tear the sandbox down like a
    // cancel.
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM, 0, 0, 0) };
    let signals = signal_fd().map_err(|e| format!("signalfd: {e}"))?;
    let raw = read_request()?;
    let req: HelperRequest =
        serde_json::from_slice(&raw).map_err(|e| format!("bad request: {e}"))?;
    if req.version != PROTOCOL_VERSION {
        send(&HelperMessage::Failed {
            kind: FailKind::Helper,
            message: format!(
                "the sandbox helper speaks protocol {PROTOCOL_VERSION} but the caller sent {}: \
                 the helper binary is from another build; rebuild kernos (cargo build) or point \
                 KERNOS_SANDBOX_HELPER at the matching binary",
                req.version
            ),
        });
        return Ok(());
    }
    // SAFETY: getppid has no arguments.
    if unsafe { libc::getppid() } != req.parent_pid {
        // Our parent already died between starting us and arming the death signal.
        return Ok(());
    }
    let leftovers = match run(&req, &signals, main_us) {
        Ok((report, leftovers)) => {
            send(&HelperMessage::Finished(report));
            Some(leftovers)
        }
        Err((kind, message)) => {
            send(&HelperMessage::Failed { kind, message });
            None
        }
    };
    hang_up();
    if let Some(mut l) = leftovers {
        if let Some(cg) = &mut l.cgroup {
            cg.remove();
        }
        if let Some(pid) = l.init {
            let _ = sys::wait4(pid);
        }
    }
    Ok(())
}

/// Tells the caller we are done (end of file on the control socket and on the command's
/// output, whose last copies we hold), so it need not wait for the init's namespace
/// teardown, which may still be running.
fn hang_up() {
    // SAFETY: plain syscalls on our own descriptors.
    unsafe {
        libc::shutdown(CONTROL_FD, libc::SHUT_WR);
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC);
        for fd in 0..3 {
            libc::dup2(null, fd);
        }
    }
}

/// Plans the confinement, clones the init, supervises the tree and builds the report.
fn run(
    req: &HelperRequest,
    signals: &OwnedFd,
    main_us: u64,
) -> Result<(HelperReport, Leftovers), Failure> {
    let mut trace = Trace::new(req.trace, main_us);
    trace.mark("request read");
    let Confinement {
        plan,
        namespaces,
        limits,
        mut resources,
        mut weakened,
        cgroup_summary,
        self_moving,
    } = Confinement::build(req, &mut trace)?;
    let init = launch::launch(
        req,
        plan,
        namespaces,
        &resources,
        self_moving,
        &mut weakened,
        &mut trace,
    )?;
    let mut ended = watch::supervise(Watch {
        init: &init,
        signals,
        deadline: req
            .policy
            .limits
            .wall_ms
            .map(|ms| init.started + Duration::from_millis(ms)),
        cpu_limit_us: limits.cpu_total_us(),
        cgroup: resources.cgroup.as_ref(),
        self_moving,
    })?;
    trace.mark("tree done");
    let usage = report::usage(&ended, init.pid, &resources)?;
    // The empty step cgroup is removed after the report is sent: nobody waits for that.
    let cgroup_left = resources.cgroup.take();
    drop(resources);
    trace.mark("cleaned up");
    trace.extend(std::mem::take(&mut ended.status.trace));
    for w in std::mem::take(&mut ended.status.weakened) {
        weakened.note(w);
    }
    let verdict = report::verdict(&ended, &usage, &req.policy.limits, limits.cpu_seconds)?;
    Ok((
        HelperReport {
            code: verdict.code,
            signal: verdict.signal,
            stopped: verdict.stopped,
            cpu_ms: usage.tree_cpu_ms,
            weakened: weakened.into_notes(),
            cgroup: cgroup_summary,
            trace: trace.into_marks(),
        },
        Leftovers {
            init: usage.reap_later,
            cgroup: cgroup_left,
        },
    ))
}
