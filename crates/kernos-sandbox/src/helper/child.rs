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
//! * **command** — started sharing the init's memory until its exec (`CLONE_VM |
//!   CLONE_VFORK`, see [`fork_command`]), sets rlimits, `no_new_privs`, Landlock and seccomp
//!   (in that order: seccomp last, so nothing we still need is filtered) and execs.
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

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};

use super::mounts::setup_mounts;
use super::plan::Plan;
use super::status::{fail, status, trace};
use crate::protocol::FailKind;
use crate::sys;

/// Set by SIGUSR1: the helper wants the step stopped (timeout, cancel, CPU limit).
static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_stop(_sig: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

/// Entry point of the cloned child (the namespace init). Never returns.
pub(crate) fn init_main(plan: &Plan, go: OwnedFd, status_fd: OwnedFd, in_namespaces: bool) -> ! {
    let st = status_fd.as_raw_fd();
    wait_for_release(go);
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
    reset_signals();
    if in_namespaces {
        if let Some(m) = &plan.mounts {
            if let Err((kind, msg)) = setup_mounts(m, plan.allow_weaker, st) {
                fail(st, kind, &msg);
            }
        }
    }
    trace(plan, st, "mounts built");
    // Only as PID 1 of a namespace of our own does kill(-1) mean "the step". Otherwise (a
    // service step, or the weaker no-namespace fallback) it would mean every process we may
    // signal on the host, so the command gets a process group of its own to be stopped by.
    let pid_ns = in_namespaces && !plan.service;
    let pid = fork_command(plan, st, pid_ns);
    // We need none of the command's stdio; holding it would delay the caller's end of file.
    for fd in 0..3 {
        // SAFETY: closing our own copies of stdio.
        unsafe { libc::close(fd) };
    }
    let (command_status, command_cpu) = reap_until_command_ends(plan, st, pid_ns, pid);
    end_step(plan, pid_ns, pid);
    let tree_cpu = tree_cpu_ms();
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

/// Waits until the helper has written our uid/gid maps and put us in the step cgroup; dies
/// with the helper from now on.
fn wait_for_release(go: OwnedFd) {
    // If the helper dies, die with it: our exit then tears down the whole namespace.
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) };
    // EOF instead of the byte means the helper died before (the death signal might have
    // missed).
    let mut b = [0u8; 1];
    if !matches!(sys::read(go.as_raw_fd(), &mut b), Ok(1)) {
        // SAFETY: see fail().
        unsafe { libc::_exit(1) };
    }
}

/// The helper blocks TERM/INT/HUP for its signalfd and Rust ignores SIGPIPE; the command must
/// start with neither (an ignored SIGPIPE survives exec and breaks `yes | head`).
fn reset_signals() {
    // SAFETY: sigset_t is plain data; the calls only take pointers to locals.
    unsafe {
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Starts the command (which confines itself and execs); returns its pid.
///
/// The command shares our memory until its exec (`CLONE_VM | CLONE_VFORK`, on a stack of its
/// own: what `posix_spawn` does), and we are suspended until then, so nothing it does to
/// memory can race us. A plain fork of the init — a copy of the caller, which in one-shot mode
/// is the whole `kernos` binary with its relocated data — copied the page tables and then
/// took a copy-on-write fault for every page either side touched before the exec. Everything
/// the command does before exec is per process anyway: its own descriptor table (no
/// `CLONE_FILES`), working directory (no `CLONE_FS`), signal handlers (no `CLONE_SIGHAND`),
/// rlimits, credentials, Landlock domain and seccomp filter.
fn fork_command(plan: &Plan, st: RawFd, pid_ns: bool) -> libc::pid_t {
    /// What the command's entry point needs; lives on our stack, which the command may read
    /// because we are suspended until it has exec'd or exited.
    struct Start<'a> {
        plan: &'a Plan,
        st: RawFd,
        own_group: Option<libc::pid_t>,
    }
    extern "C" fn entry(arg: *mut libc::c_void) -> libc::c_int {
        // SAFETY: `arg` is the `Start` below, alive until clone returns in the parent, which
        // is after this child has exec'd or exited.
        let s = unsafe { &*arg.cast::<Start>() };
        command_main(s.plan, s.st, s.own_group)
    }
    // SAFETY: getpid has no arguments.
    let init_pid = unsafe { libc::getpid() };
    let mut start = Start {
        plan,
        st,
        own_group: (!pid_ns).then_some(init_pid),
    };
    let stack = match CommandStack::new() {
        Ok(s) => s,
        Err(e) => fail(st, FailKind::Helper, &format!("command stack: {e}")),
    };
    // SAFETY: `entry` runs on its own stack (with a guard page below it) in a child that
    // shares our memory; CLONE_VFORK suspends us until it has exec'd or exited, so `start`
    // and the stack outlive its use of them. It never returns into our frames.
    let pid = unsafe {
        libc::clone(
            entry,
            stack.top(),
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
            (&mut start as *mut Start).cast(),
        )
    };
    drop(stack);
    if pid < 0 {
        fail(
            st,
            FailKind::Helper,
            &format!("clone: {}", io::Error::last_os_error()),
        );
    }
    if !pid_ns {
        // Also from this side, so the group exists before any stop request can name it.
        // SAFETY: plain syscall on our own child.
        unsafe { libc::setpgid(pid, pid) };
    }
    pid
}

/// The stack the command runs on until its exec: anonymous memory with a guard page below.
struct CommandStack {
    base: *mut libc::c_void,
    len: usize,
}

impl CommandStack {
    /// Ample for the confinement code (it only makes system calls and formats errors); pages
    /// are only committed when touched.
    const SIZE: usize = 512 << 10;
    const GUARD: usize = 64 << 10;

    fn new() -> io::Result<CommandStack> {
        let len = Self::SIZE + Self::GUARD;
        // SAFETY: a fresh private anonymous mapping; nothing else refers to it.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let stack = CommandStack { base, len };
        // SAFETY: the lowest GUARD bytes of our own mapping become inaccessible.
        if unsafe { libc::mprotect(base, Self::GUARD, libc::PROT_NONE) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(stack)
    }

    /// The initial stack pointer (stacks grow down on every architecture we build for).
    fn top(&self) -> *mut libc::c_void {
        // SAFETY: one past the end of our mapping, which is where a stack starts.
        unsafe { self.base.cast::<u8>().add(self.len).cast() }
    }
}

impl Drop for CommandStack {
    fn drop(&mut self) {
        // SAFETY: our own mapping, no longer used (the command has exec'd or exited).
        unsafe { libc::munmap(self.base, self.len) };
    }
}

/// Reaps orphans until the command ends, or until the helper asks us (SIGUSR1) to stop the
/// step: then we kill everything ourselves and reap it, so the CPU time of the killed
/// processes is still accounted to us (when the kernel tears a namespace down after its init
/// died, it reaps the rest without accounting their time to anyone). Returns the command's
/// wait status and CPU ms.
fn reap_until_command_ends(plan: &Plan, st: RawFd, pid_ns: bool, pid: libc::pid_t) -> (i32, u64) {
    // SAFETY: installing an async-signal-safe handler (it only stores to an atomic); no
    // SA_RESTART, so wait4 returns EINTR and the loop sees the request.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_stop as *const () as libc::sighandler_t;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(libc::SIGUSR1, &sa, std::ptr::null_mut());
    }
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
            return (wstatus, sys::rusage_cpu_ms(&ru));
        }
        if r < 0 && io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return (0, 0);
        }
    }
}

/// The step is over: nothing it started may outlive it. As the namespace's init, kill(-1)
/// reaches every other process in it, including ones that called setsid to daemonise; a
/// process forking at the same moment either gets the signal too or has its fork fail.
/// A service step is the exception: what the command started is meant to keep running.
/// Without a PID namespace of our own (service, or the weaker fallback) kill(-1) would
/// reach the whole host; the fallback step kills what is left of the command's group.
/// Then reaps everything.
fn end_step(plan: &Plan, pid_ns: bool, pid: libc::pid_t) {
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
}

/// CPU of the whole tree: everything was reaped by us, so RUSAGE_CHILDREN has it all.
fn tree_cpu_ms() -> u64 {
    // SAFETY: rusage is plain data; getrusage fills it.
    unsafe {
        let mut ch: libc::rusage = std::mem::zeroed();
        let mut me: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut ch);
        libc::getrusage(libc::RUSAGE_SELF, &mut me);
        sys::rusage_cpu_ms(&ch) + sys::rusage_cpu_ms(&me)
    }
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
    set_rlimits(plan, st);
    // Always enter the directory by path, in the new mount view: an inherited working
    // directory would still point into whatever a hidden path's mount now covers.
    let cwd = plan.cwd.as_deref().unwrap_or(c"/");
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
    confine(plan, st);
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
    exec(plan, st)
}

/// Lowers the plan's rlimits.
fn set_rlimits(plan: &Plan, st: RawFd) {
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
}

/// Drops the capabilities the plan names, sets `no_new_privs` and enters the Landlock domain.
fn confine(plan: &Plan, st: RawFd) {
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
}

/// Installs the seccomp filter (last, so nothing we still need is filtered) and execs.
fn exec(plan: &Plan, st: RawFd) -> ! {
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
