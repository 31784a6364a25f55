//! The two processes inside the sandbox.
//!
//! * **init** — cloned by the helper into the new namespaces, it is PID 1 of the new PID
//!   namespace. It joins the step cgroup, builds the mount view (read-only everything, writable
//!   binds, hidden paths, a minimal /dev, a fresh /proc), forks the command and reaps whatever
//!   gets orphaned. As soon as the command ends — or the helper asks it to stop the step — it
//!   kills every other process in the namespace (`kill(-1)`, which daemons that called setsid
//!   cannot escape), reaps them, reports, and exits; so a step never leaves anything behind.
//!   It is not Landlock-confined, which puts it outside the command's Landlock domain: the
//!   command can neither ptrace it, write its memory through /proc/1/mem, nor signal it.
//! * **command** — sets rlimits, `no_new_privs`, Landlock and seccomp (in that order: seccomp
//!   last, so nothing we still need is filtered) and execs.
//!
//! For a service-lifetime step there is no PID namespace: the init is an ordinary process that
//! builds the same mount view, runs the command as the leader of its own process group (with
//! a parent-death signal, so it cannot outlive a dead init), and when the command exits it
//! kills nothing — what the command started is the service. Stopping such a step (timeout,
//! cancel) kills the command's process group only; `kill(-1)` here would mean the whole host.
//!
//! Both run in a fresh copy of the single-threaded helper, so allocating is safe here. Errors go
//! to the helper as one line on the status pipe: `E <kind> <message>`, `W <feature>` for a
//! feature skipped under `allow_weaker`, `T <phase> <µs>` when tracing, and finally
//! `X <wait status> <command cpu ms> <tree cpu ms>` once the command has ended and everything
//! else in the namespace has been killed and reaped.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};

use super::plan::Plan;
use super::view::MountPlan;
use crate::protocol::FailKind;
use crate::sys;

const MOUNT_ATTR_RDONLY: u64 = 0x1;
const MOUNT_ATTR_NOSUID: u64 = 0x2;
const MOUNT_ATTR_NODEV: u64 = 0x4;
const AT_RECURSIVE: libc::c_uint = 0x8000;

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// Device nodes the command gets in its private /dev; everything else (disks, /dev/mem, …) is
/// absent, because a read-only view of a raw disk would bypass every hidden path.
const DEVICES: [&CStr; 5] = [c"null", c"zero", c"full", c"random", c"urandom"];

/// Set by SIGUSR1: the helper wants the step stopped (timeout, cancel, CPU limit).
static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_stop(_sig: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

/// Writes one status line; errors are ignored because there is nobody left to tell.
fn status(fd: RawFd, line: &str) {
    let mut s = line.replace('\n', " ");
    s.push('\n');
    let _ = sys::write_all(fd, s.as_bytes());
}

/// Sends a phase timestamp when tracing.
fn trace(plan: &Plan, fd: RawFd, name: &str) {
    if plan.trace {
        status(fd, &format!("T {name} {}", sys::mono_us()));
    }
}

fn fail(fd: RawFd, kind: FailKind, msg: &str) -> ! {
    status(fd, &format!("E {} {msg}", kind.word()));
    // SAFETY: _exit never returns and runs no destructors, which is what a failed child wants.
    unsafe { libc::_exit(127) }
}

/// Entry point of the cloned child (the namespace init). Never returns.
pub(crate) fn init_main(plan: &Plan, go: OwnedFd, status_fd: OwnedFd, in_namespaces: bool) -> ! {
    let st = status_fd.as_raw_fd();
    // If the helper dies, die with it: our exit then tears down the whole namespace.
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) };
    // Wait until the helper has written our uid/gid maps and put us in the step cgroup. EOF
    // instead of the byte means the helper died before (the death signal might have missed).
    let mut b = [0u8; 1];
    if !matches!(sys::read(go.as_raw_fd(), &mut b), Ok(1)) {
        // SAFETY: see fail().
        unsafe { libc::_exit(1) };
    }
    drop(go);
    trace(plan, st, "init released");

    // Join the step cgroup by moving ourselves (see StepCgroup::self_move_fds for why).
    for fd in &plan.cgroup_join {
        if let Err(e) = sys::write_all(fd.as_raw_fd(), b"0") {
            fail(
                st,
                FailKind::Helper,
                &format!("joining the step cgroup: {e}"),
            );
        }
    }

    // The helper blocks TERM/INT/HUP for its signalfd and Rust ignores SIGPIPE; the command must
    // start with neither (an ignored SIGPIPE survives exec and breaks `yes | head`).
    // SAFETY: sigset_t is plain data; the calls only take pointers to locals.
    unsafe {
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }

    if in_namespaces {
        if let Some(m) = &plan.mounts {
            if let Err((kind, msg)) = setup_mounts(m, plan.allow_weaker, st) {
                fail(st, kind, &msg);
            }
        }
    }

    trace(plan, st, "mounts built");
    // SAFETY: getpid has no arguments.
    let init_pid = unsafe { libc::getpid() };
    // SAFETY: the helper is single-threaded, so the forked copy may run arbitrary code.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        fail(
            st,
            FailKind::Helper,
            &format!("fork: {}", io::Error::last_os_error()),
        );
    }
    // Only as PID 1 of a namespace of our own does kill(-1) mean "the step". Otherwise (a
    // service step, or the weaker no-namespace fallback) it would mean every process we may
    // signal on the host, so the command gets a process group of its own to be stopped by.
    let pid_ns = in_namespaces && !plan.service;
    if pid == 0 {
        command_main(plan, st, (!pid_ns).then_some(init_pid));
    }
    if !pid_ns {
        // Also from this side, so the group exists before any stop request can name it.
        // SAFETY: plain syscall on our own child.
        unsafe { libc::setpgid(pid, pid) };
    }

    // We need none of the command's stdio; holding it would delay the caller's end of file.
    for fd in 0..3 {
        // SAFETY: closing our own copies of stdio.
        unsafe { libc::close(fd) };
    }

    // Reap orphans until the command ends, or until the helper asks us (SIGUSR1) to stop the
    // step: then we kill everything ourselves and reap it, so the CPU time of the killed
    // processes is still accounted to us (when the kernel tears a namespace down after its
    // init died, it reaps the rest without accounting their time to anyone).
    // SAFETY: installing an async-signal-safe handler (it only stores to an atomic); no
    // SA_RESTART, so wait4 returns EINTR and the loop sees the request.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_stop as *const () as libc::sighandler_t;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(libc::SIGUSR1, &sa, std::ptr::null_mut());
    }
    let mut command_status = 0;
    let mut command_cpu = 0;
    loop {
        if STOP.load(Ordering::SeqCst) {
            stop_step(pid_ns, pid);
        }
        let mut wstatus = 0;
        // SAFETY: rusage is plain data.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: pointers to locals.
        let r = unsafe { libc::wait4(-1, &mut wstatus, libc::__WALL, &mut ru) };
        if r == pid {
            trace(plan, st, "command exited");
            command_status = wstatus;
            command_cpu = sys::rusage_cpu_ms(&ru);
            break;
        }
        if r < 0 && io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            break;
        }
    }
    // The step is over: nothing it started may outlive it. As the namespace's init, kill(-1)
    // reaches every other process in it, including ones that called setsid to daemonise; a
    // process forking at the same moment either gets the signal too or has its fork fail.
    // A service step is the exception: what the command started is meant to keep running.
    // Without a PID namespace of our own (service, or the weaker fallback) kill(-1) would
    // reach the whole host; the fallback step kills what is left of the command's group.
    if pid_ns {
        // SAFETY: plain syscall.
        unsafe { libc::kill(-1, libc::SIGKILL) };
    } else if !plan.service {
        // SAFETY: plain syscall on the group our command led.
        unsafe { libc::kill(-pid, libc::SIGKILL) };
    }
    loop {
        let mut wstatus = 0;
        // SAFETY: pointer to a local.
        let r = unsafe { libc::waitpid(-1, &mut wstatus, libc::__WALL) };
        if r < 0 && io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            break; // ECHILD: everyone is reaped.
        }
    }
    // CPU of the whole tree: everything was reaped by us, so RUSAGE_CHILDREN has it all.
    // SAFETY: rusage is plain data; getrusage fills it.
    let tree_cpu = unsafe {
        let mut ch: libc::rusage = std::mem::zeroed();
        let mut me: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut ch);
        libc::getrusage(libc::RUSAGE_SELF, &mut me);
        sys::rusage_cpu_ms(&ch) + sys::rusage_cpu_ms(&me)
    };
    // Leave the step cgroup, so the helper can remove it without waiting for our namespaces
    // to be torn down (which takes a few milliseconds and is nobody's business).
    for fd in &plan.cgroup_leave {
        let _ = sys::write_all(fd.as_raw_fd(), b"0");
    }
    trace(plan, st, "namespace emptied");
    status(st, &format!("X {command_status} {command_cpu} {tree_cpu}"));
    // SAFETY: see fail().
    unsafe { libc::_exit(0) }
}

/// Stops a running step on the helper's request.
fn stop_step(pid_ns: bool, command: libc::pid_t) {
    // SAFETY: plain syscalls.
    unsafe {
        if pid_ns {
            // We are the namespace init, so -1 means "everyone else in the step".
            libc::kill(-1, libc::SIGKILL);
        } else {
            // The command's process group is the control operation; a daemon that already
            // left it with setsid is a started service and stays.
            libc::kill(-command, libc::SIGKILL);
            libc::kill(command, libc::SIGKILL);
        }
    }
}

/// Drops `caps` from the bounding set (what root gets on exec) and from our inheritable,
/// permitted and effective sets (the inheritable one would carry them across exec too).
fn drop_capabilities(caps: &[u32]) -> Result<(), String> {
    const CAP_VERSION_3: u32 = 0x2008_0522;
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    for &c in caps {
        // SAFETY: prctl with integer arguments. Not in the set (or unknown to this kernel):
        // nothing to drop.
        if unsafe { libc::prctl(libc::PR_CAPBSET_READ, c as libc::c_ulong, 0, 0, 0) } != 1 {
            continue;
        }
        // SAFETY: as above.
        if unsafe { libc::prctl(libc::PR_CAPBSET_DROP, c as libc::c_ulong, 0, 0, 0) } != 0 {
            return Err(format!(
                "dropping capability {c} from the bounding set: {}",
                io::Error::last_os_error()
            ));
        }
    }
    let mut hdr = Header {
        version: CAP_VERSION_3,
        pid: 0,
    };
    let mut data = [Data::default(); 2];
    // SAFETY: header and a two-element data array, as capget(2) wants for version 3.
    if unsafe { libc::syscall(libc::SYS_capget, &mut hdr as *mut Header, data.as_mut_ptr()) } != 0 {
        return Err(format!("capget: {}", io::Error::last_os_error()));
    }
    for &c in caps {
        let (i, bit) = ((c / 32) as usize, 1u32 << (c % 32));
        if let Some(d) = data.get_mut(i) {
            d.effective &= !bit;
            d.permitted &= !bit;
            d.inheritable &= !bit;
        }
    }
    // SAFETY: as above; capset only lowers what we hold.
    if unsafe { libc::syscall(libc::SYS_capset, &mut hdr as *mut Header, data.as_ptr()) } != 0 {
        return Err(format!("capset: {}", io::Error::last_os_error()));
    }
    Ok(())
}

/// The command process: confine and exec. Never returns. `own_group` (the init's pid) when
/// there is no PID namespace to end the step with.
fn command_main(plan: &Plan, st: RawFd, own_group: Option<libc::pid_t>) -> ! {
    if let Some(init_pid) = own_group {
        // Its own process group, so a stop request reaches the control command and whatever
        // it runs in the foreground without touching what it daemonised; and it dies with
        // the init, which itself dies with the helper (nothing else would stop it: there is
        // no namespace to tear down).
        // SAFETY: plain syscalls on ourselves.
        unsafe {
            libc::setpgid(0, 0);
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
            if libc::getppid() != init_pid {
                libc::_exit(1); // the init died before the death signal was armed
            }
        }
    }

    for &(res, soft, hard) in &plan.rlimits {
        let mut cur = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: pointer to a local.
        unsafe { libc::getrlimit(res, &mut cur) };
        // We may lower but (without CAP_SYS_RESOURCE) never raise a hard limit.
        let hard = hard.min(cur.rlim_max);
        let lim = libc::rlimit {
            rlim_cur: soft.min(hard),
            rlim_max: hard,
        };
        // SAFETY: pointer to a local.
        if unsafe { libc::setrlimit(res, &lim) } != 0 {
            fail(
                st,
                FailKind::Helper,
                &format!("setrlimit({res}): {}", io::Error::last_os_error()),
            );
        }
    }

    // Always enter the directory by path, in the new mount view: an inherited working
    // directory would still point into whatever a hidden path's mount now covers.
    let cwd = plan.cwd.as_deref().unwrap_or(c"/");
    {
        // SAFETY: valid C string.
        if unsafe { libc::chdir(cwd.as_ptr()) } != 0 {
            fail(
                st,
                FailKind::InvalidPolicy,
                &format!(
                    "cannot enter working directory {cwd:?}: {}",
                    io::Error::last_os_error()
                ),
            );
        }
    }

    if !plan.drop_caps.is_empty() {
        if let Err(e) = drop_capabilities(&plan.drop_caps) {
            if plan.allow_weaker {
                status(st, &format!("W dropping capabilities ({e})"));
            } else {
                fail(st, FailKind::Unavailable, &e);
            }
        }
    }

    // Setuid/setcap binaries must not gain anything, and Landlock/seccomp require it anyway.
    // SAFETY: prctl with integer arguments.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        fail(
            st,
            FailKind::Unavailable,
            &format!("no_new_privs: {}", io::Error::last_os_error()),
        );
    }

    if let Some(rs) = &plan.landlock {
        if let Err(e) = rs.restrict_self() {
            if plan.allow_weaker {
                status(st, &format!("W Landlock ({e})"));
            } else {
                fail(st, FailKind::Unavailable, &format!("Landlock: {e}"));
            }
        }
    }

    // Nothing but stdio and the status pipe (itself close-on-exec) may reach the command.
    // SAFETY: plain syscall; marks every descriptor from 3 up close-on-exec.
    unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };

    trace(plan, st, "command confined (rlimits, landlock)");
    let mut argv: Vec<*const libc::c_char> = plan.argv.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    let mut envp: Vec<*const libc::c_char> = plan.envp.iter().map(|a| a.as_ptr()).collect();
    envp.push(std::ptr::null());

    if let Some(prog) = &plan.seccomp {
        if let Err(e) = crate::seccomp::install(prog) {
            if plan.allow_weaker {
                status(st, &format!("W seccomp ({e})"));
            } else {
                fail(st, FailKind::Unavailable, &e);
            }
        }
    }

    trace(plan, st, "seccomp on, exec");
    // SAFETY: argv and envp are NULL-terminated arrays of valid C strings that outlive the call.
    unsafe { libc::execve(plan.program.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
    let e = io::Error::last_os_error();
    fail(
        st,
        FailKind::NotFound,
        &format!("cannot execute {:?}: {e}", plan.program),
    )
}

fn mount_setattr(path: &CStr, recursive: bool, set: u64, clr: u64) -> io::Result<()> {
    let attr = MountAttr {
        attr_set: set,
        attr_clr: clr,
        propagation: 0,
        userns_fd: 0,
    };
    // SAFETY: valid C string and pointer to a local attr struct of the given size.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            path.as_ptr(),
            if recursive { AT_RECURSIVE } else { 0 },
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    sys::cvt_l(r).map(|_| ())
}

fn mount(
    src: Option<&CStr>,
    target: &CStr,
    fstype: Option<&CStr>,
    flags: libc::c_ulong,
    data: Option<&CStr>,
) -> io::Result<()> {
    let p = |c: Option<&CStr>| c.map_or(std::ptr::null(), |c| c.as_ptr());
    // SAFETY: every pointer is NULL or a valid C string.
    let r = unsafe {
        libc::mount(
            p(src),
            target.as_ptr(),
            p(fstype),
            flags,
            p(data).cast::<libc::c_void>(),
        )
    };
    sys::cvt(r).map(|_| ())
}

/// `/proc/self/fd/N` for binding from a descriptor opened before its path was covered.
fn fd_path(fd: &OwnedFd) -> CString {
    CString::new(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap_or_default()
}

fn join(base: &CStr, rel: &[CString]) -> CString {
    let mut v = base.to_bytes().to_vec();
    for c in rel {
        v.push(b'/');
        v.extend_from_slice(c.to_bytes());
    }
    CString::new(v).unwrap_or_default()
}

fn make_mountpoint(path: &CStr, is_dir: bool) -> io::Result<()> {
    if is_dir {
        // SAFETY: valid C string.
        let r = unsafe { libc::mkdir(path.as_ptr(), 0o755) };
        if r != 0 && io::Error::last_os_error().raw_os_error() != Some(libc::EEXIST) {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    } else {
        sys::open(path, libc::O_CREAT | libc::O_WRONLY, 0o644).map(drop)
    }
}

type MountError = (FailKind, String);

fn unavailable(what: &str, e: io::Error) -> MountError {
    (FailKind::Unavailable, format!("{what}: {e}"))
}

/// Builds the command's view of the filesystem. Why mounts and not only Landlock: Landlock
/// cannot take something away from a readable root (so it cannot hide `deny_read` paths inside
/// it), and it does not govern chmod/chown/utime/xattr at all. A read-only mount covers both
/// gaps, and an empty tmpfs over a hidden directory makes it unreadable while `ls ~` still works.
fn setup_mounts(m: &MountPlan, allow_weaker: bool, st: RawFd) -> Result<(), MountError> {
    let root = c"/";
    // Nothing we do here may propagate back to the host, and host mounts must not appear in
    // here later with their original (writable) flags.
    mount(None, root, None, libc::MS_REC | libc::MS_PRIVATE, None)
        .map_err(|e| unavailable("private mount propagation", e))?;

    // Open what we are about to cover while it is still reachable by path.
    let devices: Vec<(&CStr, Option<OwnedFd>)> = DEVICES
        .iter()
        .map(|name| {
            let p = join(c"/dev", &[CString::from(*name)]);
            (*name, sys::open(&p, libc::O_PATH, 0).ok())
        })
        .collect();
    let mut reexpose_fds = Vec::new();
    for h in &m.hide {
        let mut fds = Vec::new();
        for (src, _, _) in &h.reexpose {
            fds.push(sys::open(src, libc::O_PATH, 0).ok());
        }
        reexpose_fds.push(fds);
    }

    // 1. Everything read-only, no setuid, no device nodes (our /dev below re-allows a few).
    match mount_setattr(
        root,
        true,
        MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
        0,
    ) {
        Ok(()) => {}
        Err(e) if allow_weaker => status(st, &format!("W read-only mounts ({e})")),
        Err(e) => {
            return Err(unavailable(
                "read-only mounts (mount_setattr, Linux 5.12+)",
                e,
            ));
        }
    }

    // 2. Hidden paths: an empty read-only tmpfs over a directory, a node-less /dev/null over a
    //    file (opening it fails with EACCES). Declared paths inside are bound back in. A path
    //    that has gone since the helper looked (a temp dir of someone else's, say) leaves
    //    nothing to hide.
    let gone = |e: &io::Error| matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR));
    for (h, fds) in m.hide.iter().zip(reexpose_fds) {
        if h.is_dir {
            match mount(
                Some(c"tmpfs"),
                &h.path,
                Some(c"tmpfs"),
                libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                Some(c"size=64k,mode=0755"),
            ) {
                Ok(()) => {}
                Err(e) if gone(&e) => continue,
                Err(e) => return Err(unavailable(&format!("hiding {:?}", h.path), e)),
            }
            for ((_, rel, is_dir), fd) in h.reexpose.iter().zip(fds) {
                let Some(fd) = fd else { continue };
                for i in 1..rel.len() {
                    make_mountpoint(&join(&h.path, &rel[..i]), true)
                        .map_err(|e| unavailable("re-exposing a declared path", e))?;
                }
                let target = join(&h.path, rel);
                make_mountpoint(&target, *is_dir)
                    .map_err(|e| unavailable("re-exposing a declared path", e))?;
                mount(
                    Some(&fd_path(&fd)),
                    &target,
                    None,
                    libc::MS_BIND | libc::MS_REC,
                    None,
                )
                .map_err(|e| unavailable(&format!("re-exposing {target:?}"), e))?;
            }
            mount_setattr(&h.path, false, MOUNT_ATTR_RDONLY, 0)
                .map_err(|e| unavailable("read-only hidden path", e))?;
        } else {
            let null = devices
                .iter()
                .find(|(n, _)| *n == c"null")
                .and_then(|(_, fd)| fd.as_ref());
            let Some(null) = null else {
                return Err((FailKind::Unavailable, "no /dev/null to hide files".into()));
            };
            match mount(Some(&fd_path(null)), &h.path, None, libc::MS_BIND, None) {
                Ok(()) => {}
                Err(e) if gone(&e) => continue,
                Err(e) => return Err(unavailable(&format!("hiding {:?}", h.path), e)),
            }
            mount_setattr(&h.path, false, MOUNT_ATTR_NODEV | MOUNT_ATTR_RDONLY, 0)
                .map_err(|e| unavailable("hiding a file", e))?;
        }
    }

    // 3. Writable paths: bind each onto itself (a new mount) and make that one writable again.
    for w in &m.writable {
        mount(Some(w), w, None, libc::MS_BIND | libc::MS_REC, None)
            .map_err(|e| unavailable(&format!("writable bind of {w:?}"), e))?;
        if mount_setattr(w, true, 0, MOUNT_ATTR_RDONLY).is_err() {
            // A read-only submount locked by the host cannot be made writable; keep it
            // read-only and make only the declared path itself writable.
            mount_setattr(w, false, 0, MOUNT_ATTR_RDONLY)
                .map_err(|e| unavailable(&format!("making {w:?} writable"), e))?;
        }
    }

    // 3b. Undeclared Unix sockets: a node-less /dev/null over each one refuses connections.
    //     After the writable binds and the re-exposed paths, so none of those brings one
    //     back; one that is not visible any more (inside a hidden directory) needs nothing.
    if !m.cover_sockets.is_empty() {
        let null = devices
            .iter()
            .find(|(n, _)| *n == c"null")
            .and_then(|(_, fd)| fd.as_ref())
            .ok_or((
                FailKind::Unavailable,
                "no /dev/null to cover Unix sockets with".to_owned(),
            ))?;
        for sock in &m.cover_sockets {
            match mount(Some(&fd_path(null)), sock, None, libc::MS_BIND, None) {
                Ok(()) => {}
                Err(e) if gone(&e) => continue,
                Err(e) => return Err(unavailable(&format!("covering the socket {sock:?}"), e)),
            }
            mount_setattr(sock, false, MOUNT_ATTR_NODEV | MOUNT_ATTR_RDONLY, 0)
                .map_err(|e| unavailable("covering a socket", e))?;
        }
    }

    // 4. A minimal /dev: a few harmless device nodes, stdio links and a private /dev/shm.
    let dev = c"/dev";
    mount(
        Some(c"tmpfs"),
        dev,
        Some(c"tmpfs"),
        libc::MS_NOSUID | libc::MS_NOEXEC,
        Some(c"size=64k,mode=0755"),
    )
    .map_err(|e| unavailable("private /dev", e))?;
    for (name, fd) in &devices {
        let Some(fd) = fd else { continue };
        let target = join(dev, &[CString::from(*name)]);
        make_mountpoint(&target, false).map_err(|e| unavailable("private /dev", e))?;
        mount(Some(&fd_path(fd)), &target, None, libc::MS_BIND, None)
            .map_err(|e| unavailable(&format!("binding {target:?}"), e))?;
        mount_setattr(&target, false, 0, MOUNT_ATTR_NODEV)
            .map_err(|e| unavailable(&format!("enabling {target:?}"), e))?;
    }
    for (link, to) in [
        (c"/dev/fd", c"/proc/self/fd"),
        (c"/dev/stdin", c"/proc/self/fd/0"),
        (c"/dev/stdout", c"/proc/self/fd/1"),
        (c"/dev/stderr", c"/proc/self/fd/2"),
    ] {
        // SAFETY: valid C strings.
        unsafe { libc::symlink(to.as_ptr(), link.as_ptr()) };
    }
    let shm = c"/dev/shm";
    make_mountpoint(shm, true).map_err(|e| unavailable("private /dev/shm", e))?;
    let shm_opts = CString::new(format!("size={},mode=1777", m.shm_bytes)).unwrap_or_default();
    mount(
        Some(c"tmpfs"),
        shm,
        Some(c"tmpfs"),
        libc::MS_NOSUID | libc::MS_NODEV,
        Some(&shm_opts),
    )
    .map_err(|e| unavailable("private /dev/shm", e))?;
    mount_setattr(dev, false, MOUNT_ATTR_RDONLY, 0)
        .map_err(|e| unavailable("read-only /dev", e))?;

    // 5. A /proc that shows only this PID namespace (host command lines can carry secrets).
    if !m.fresh_proc {
        return Ok(());
    }
    match mount(
        Some(c"proc"),
        c"/proc",
        Some(c"proc"),
        libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
        None,
    ) {
        Ok(()) => {}
        Err(e) if allow_weaker => status(st, &format!("W private /proc ({e})")),
        Err(e) => return Err(unavailable("private /proc", e)),
    }
    Ok(())
}
