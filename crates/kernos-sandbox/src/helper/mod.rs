//! The sandbox helper: receives a request on fd 3, builds the confinement plan, clones the
//! namespace init, supervises it (wall clock, total CPU, cancellation), cleans up and reports.
//!
//! Process tree:
//! ```text
//! library (engine / CLI)
//!  └─ fork server       `kernos-sandbox __sandbox-helper --server`, one per runner
//!      └─ helper        one per step; host namespaces; writes the id maps, owns the cgroup
//!          │            and the private temp dir, enforces the wall clock
//!          └─ init      PID 1 of new user+pid+mount+ipc+uts(+net) namespaces; builds mounts
//!              └─ command   rlimits, no_new_privs, Landlock, seccomp, exec
//! ```
//! For a service-lifetime step the init is an ordinary process in a new mount namespace (plus
//! a user namespace when not root, and a network namespace without the network effect): it
//! builds the same mount view, runs the command in its own process group, and exits with it,
//! leaving whatever the command started (the daemon) running.
//! The helper is single-threaded on purpose: the clone below is a plain fork-like clone, and
//! the child may then run ordinary Rust code.

mod child;

use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

use kernos_core::exec::StopReason;
use kernos_core::sandbox::{Lifetime, NetworkPolicy};

use crate::cgroup::{CgroupLimits, CgroupSetup, StepCgroup};
use crate::landlock::{self, PathRule, Ruleset};
use crate::protocol::{
    CONTROL_FD, FailKind, HELPER_ARG, HelperMessage, HelperReport, HelperRequest, PROTOCOL_VERSION,
};
use crate::seccomp::FilterOpts;
use crate::{seccomp, sys};

pub(crate) use child::{Hide, MountPlan};

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

/// A request the helper refuses, with the kind the library maps to an `ExecError`.
type Failure = (FailKind, String);

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// How often total CPU of the tree is checked against the limit when a cgroup accounts it.
const CPU_POLL: Duration = Duration::from_millis(100);
/// How long the namespace init gets to kill and reap the step before it is SIGKILLed.
const STOP_GRACE: Duration = Duration::from_millis(1000);
/// Private /dev/shm cap when the policy has no memory limit.
const DEFAULT_SHM: u64 = 64 << 20;
/// Where host daemons keep their control sockets (and users their tmux, screen, ssh-agent
/// and X11 sockets): searched for sockets to cover when the policy declares Unix sockets.
const SOCKET_DIRS: [&str; 4] = ["/run", "/var/run", "/tmp", "/var/tmp"];
/// Most directory entries looked at while searching SOCKET_DIRS before giving up.
const SOCKET_SCAN_BUDGET: usize = 100_000;
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

/// The helper's entry point (`kernos-sandbox`, `kernos __sandbox-helper`). Never returns.
///
/// `__sandbox-helper --server` is the fork server a runner keeps (fd 3 is its request
/// socket); plain `__sandbox-helper` runs one step whose control socket is fd 3.
pub fn helper_main() -> ! {
    let main_us = sys::mono_us();
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let args: Vec<&OsStr> = args.iter().map(|a| a.as_os_str()).collect();
    let result = match args.as_slice() {
        [] | [_] if args.first().is_none_or(|a| *a == HELPER_ARG) => run_step(main_us),
        [a, b] if *a == HELPER_ARG && *b == SERVER_ARG => serve(),
        _ => Err(format!(
            "unexpected arguments {args:?}: this is kernos's sandbox helper, started by kernos \
             itself; to run a command confined use `kernos sandbox exec -- CMD` or \
             `kernos-sandbox exec -- CMD`"
        )),
    };
    let code = match result {
        Ok(()) => 0,
        Err(msg) => {
            eprintln!("kernos-sandbox: {msg}");
            2
        }
    };
    std::process::exit(code)
}

/// One newline-terminated JSON message to the caller on the control socket.
fn send(msg: &HelperMessage) {
    if let Ok(mut line) = serde_json::to_vec(msg) {
        line.push(b'\n');
        let _ = sys::write_all(CONTROL_FD, &line);
    }
}

/// What this helper learns about the machine once: the fork server computes it before the
/// first fork, so every step inherits it (including the seccomp programs, already built).
struct Probed {
    landlock_abi: Result<u32, i32>,
    seccomp_available: bool,
    filter_no_net: Result<Vec<libc::sock_filter>, String>,
    filter_net: Result<Vec<libc::sock_filter>, String>,
    cgroups: CgroupSetup,
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

fn probed() -> &'static Probed {
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
    fn filter(&self, opts: FilterOpts) -> Result<Vec<libc::sock_filter>, String> {
        match opts {
            NO_NET => self.filter_no_net.clone(),
            NET => self.filter_net.clone(),
            other => seccomp::build(other),
        }
    }
}

/// Second argument that selects fork-server mode.
pub(crate) const SERVER_ARG: &str = "--server";

/// The fork server: a pristine single-threaded helper that, for each request (four descriptors:
/// the step's stdin, stdout, stderr and control socket), forks a copy of itself to run that
/// step. A fork of this tiny process costs ~0.1 ms where exec'ing a fresh helper costs ~1 ms,
/// and every step still starts from the same untouched state: the server itself never runs
/// step code. It exits when the library closes the socket (e.g. because the library died).
fn serve() -> Result<(), String> {
    if !is_socket(CONTROL_FD) {
        return Err("no request socket on fd 3 (fork-server mode)".into());
    }
    // Steps are reaped automatically; each step resets this before it needs wait().
    // SAFETY: setting a signal disposition.
    unsafe { libc::signal(libc::SIGCHLD, libc::SIG_IGN) };
    let _ = probed();
    loop {
        let fds = match recv_fds(CONTROL_FD) {
            Ok(Some(fds)) => fds,
            Ok(None) => return Ok(()), // the library is gone
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("fork server: {e}")),
        };
        if fds.len() != 4 {
            continue; // not a request we understand; the descriptors close here
        }
        // SAFETY: we are single-threaded; the child only rearranges descriptors and then runs
        // the ordinary step code, exactly like a freshly exec'd helper.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            let main_us = sys::mono_us();
            // SAFETY: plain syscalls on descriptors this process owns.
            unsafe {
                libc::signal(libc::SIGCHLD, libc::SIG_DFL);
                libc::setsid();
                // The received descriptors are ≥ 5 (0–2 are /dev/null, 3 the server socket,
                // 4 possibly the shared network namespace), so dup2 cannot clobber a source.
                libc::close(CONTROL_FD);
                for (target, fd) in fds.iter().enumerate() {
                    libc::dup2(fd.as_raw_fd(), target as RawFd);
                }
            }
            drop(fds);
            let code = match run_step(main_us) {
                Ok(()) => 0,
                Err(msg) => {
                    eprintln!("kernos-sandbox: {msg}");
                    2
                }
            };
            std::process::exit(code);
        }
        // The parent's copies close here (drop).
    }
}

/// Receives one request: a 1-byte message carrying descriptors. `None` at end of file.
fn recv_fds(sock: RawFd) -> io::Result<Option<Vec<OwnedFd>>> {
    let mut byte = [0u8; 1];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    // Room for up to 8 descriptors.
    let mut cbuf = [0u64; 8];
    // SAFETY: msghdr is plain data; every pointer refers to a local buffer of the given size.
    let n = unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&cbuf) as _;
        let n = libc::recvmsg(sock, &mut msg, libc::MSG_CMSG_CLOEXEC);
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut fds = Vec::new();
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(cmsg).cast::<RawFd>();
                let count = ((*cmsg).cmsg_len as usize - libc::CMSG_LEN(0) as usize)
                    / std::mem::size_of::<RawFd>();
                for i in 0..count {
                    fds.push(OwnedFd::from_raw_fd(std::ptr::read_unaligned(data.add(i))));
                }
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
        if n == 0 && fds.is_empty() {
            return Ok(None);
        }
        fds
    };
    Ok(Some(n))
}

/// Reads the length-prefixed request from the control socket. The socket then stays open:
/// a byte from the caller later means "cancel", and end of file means the caller is gone.
fn read_request() -> Result<Vec<u8>, String> {
    let mut len = [0u8; 4];
    read_exact(CONTROL_FD, &mut len).map_err(|e| format!("reading the request: {e}"))?;
    let len = u32::from_le_bytes(len) as usize;
    if len > 64 << 20 {
        return Err(format!("request of {len} bytes is too large"));
    }
    let mut raw = vec![0u8; len];
    read_exact(CONTROL_FD, &mut raw).map_err(|e| format!("reading the request: {e}"))?;
    Ok(raw)
}

fn read_exact(fd: RawFd, mut buf: &mut [u8]) -> io::Result<()> {
    while !buf.is_empty() {
        match sys::read(fd, buf)? {
            0 => return Err(io::ErrorKind::UnexpectedEof.into()),
            n => buf = &mut buf[n..],
        }
    }
    Ok(())
}

/// One step: read the request on fd 3, run it, report, clean up.
fn run_step(main_us: u64) -> Result<(), String> {
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
    let leftovers = match supervise(&req, &signals, main_us) {
        Ok((report, leftovers)) => {
            send(&HelperMessage::Finished(report));
            Some(leftovers)
        }
        Err((kind, message)) => {
            send(&HelperMessage::Failed { kind, message });
            None
        }
    };
    // Tell the caller we are done (end of file on the control socket and on the command's
    // output, whose last copies we hold), then reap the init, whose namespace teardown may
    // still be running: the caller need not wait for that.
    // SAFETY: plain syscalls on our own descriptors.
    unsafe {
        libc::shutdown(CONTROL_FD, libc::SHUT_WR);
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC);
        for fd in 0..3 {
            libc::dup2(null, fd);
        }
    }
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

fn is_socket(fd: RawFd) -> bool {
    // SAFETY: stat is plain data; fstat only writes it.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: pointer to a local.
    unsafe { libc::fstat(fd, &mut st) == 0 && (st.st_mode & libc::S_IFMT) == libc::S_IFSOCK }
}

/// Blocks TERM/INT/HUP and returns a signalfd for them, so cancellation is just another
/// descriptor in the poll loop.
fn signal_fd() -> io::Result<OwnedFd> {
    // SAFETY: sigset_t is plain data manipulated only through libc's functions.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
            libc::sigaddset(&mut set, s);
        }
        sys::cvt(libc::sigprocmask(
            libc::SIG_BLOCK,
            &set,
            std::ptr::null_mut(),
        ))?;
        let fd = sys::cvt(libc::signalfd(
            -1,
            &set,
            libc::SFD_CLOEXEC | libc::SFD_NONBLOCK,
        ))?;
        Ok(OwnedFd::from_raw_fd(fd))
    }
}

/// What is left to do after the report: remove the (empty) step cgroup and reap the init.
struct Leftovers {
    init: Option<libc::pid_t>,
    cgroup: Option<StepCgroup>,
}

/// State that must be cleaned up whatever happens.
struct Resources {
    cgroup: Option<StepCgroup>,
    tmpdir: Option<PathBuf>,
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

/// Removes the private temp dir. The command may have left directories without write or
/// search permission (which a non-root helper could not descend), so fix modes and retry.
pub(crate) fn remove_tree(dir: &Path) {
    if std::fs::remove_dir_all(dir).is_ok() {
        return;
    }
    fn open_up(p: &Path) {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(md) = std::fs::symlink_metadata(p) {
            if md.is_dir() {
                let _ = std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o700));
                if let Ok(rd) = std::fs::read_dir(p) {
                    for e in rd.flatten() {
                        open_up(&e.path());
                    }
                }
            }
        }
    }
    open_up(dir);
    let _ = std::fs::remove_dir_all(dir);
}

/// Why the helper killed the tree, if it did.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kill {
    Timeout,
    Cancel,
    CpuTotal,
}

fn supervise(
    req: &HelperRequest,
    signals: &OwnedFd,
    main_us: u64,
) -> Result<(HelperReport, Leftovers), Failure> {
    let policy = &req.policy;
    let mut trace: Vec<(String, u64)> = Vec::new();
    if req.trace {
        trace.push(("helper main()".into(), main_us));
    }
    let mut mark = |name: &str| {
        if req.trace {
            trace.push((name.to_owned(), sys::mono_us()));
        }
    };
    mark("request read");
    let mut weakened: Vec<String> = Vec::new();
    let euid = unsafe { libc::geteuid() };

    // --- what the kernel offers -------------------------------------------------------------
    let probed = probed();
    let abi = match probed
        .landlock_abi
        .as_ref()
        .map_err(|e| io::Error::from_raw_os_error(*e))
    {
        Ok(v) if *v >= 1 => Some(*v),
        other => {
            let why = match other {
                Err(e) => e.to_string(),
                Ok(v) => format!("ABI {v}"),
            };
            if !policy.allow_weaker {
                return Err((
                    FailKind::Unavailable,
                    format!(
                        "Landlock is not available on this kernel ({why}); it needs Linux 5.13+ with lsm=landlock"
                    ),
                ));
            }
            weakened.push(format!("Landlock ({why})"));
            None
        }
    };
    let deny_network = matches!(policy.network, NetworkPolicy::Deny);
    let service = policy.lifetime == Lifetime::Service;
    // Declared sockets open connect(2) to Unix sockets; the mount view then decides which.
    let unix_connect = deny_network && !policy.unix_sockets.is_empty();
    let seccomp = if probed.seccomp_available {
        let opts = FilterOpts {
            deny_network,
            unix_connect,
            no_kill_all: service,
        };
        match probed.filter(opts) {
            Ok(p) => Some(p),
            Err(e) if policy.allow_weaker => {
                weakened.push(format!("seccomp ({e})"));
                None
            }
            Err(e) => return Err((FailKind::Unavailable, e)),
        }
    } else if policy.allow_weaker {
        weakened.push("seccomp (not built into this kernel)".into());
        None
    } else {
        return Err((
            FailKind::Unavailable,
            "seccomp filters are not available on this kernel (CONFIG_SECCOMP_FILTER)".into(),
        ));
    };

    // --- paths ------------------------------------------------------------------------------
    let canon = |p: &Path, what: &str| -> Result<Option<PathBuf>, Failure> {
        if !p.is_absolute() {
            return Err((
                FailKind::InvalidPolicy,
                format!("{what} path {p:?} is not absolute"),
            ));
        }
        match std::fs::canonicalize(p) {
            Ok(c) => Ok(Some(c)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err((FailKind::InvalidPolicy, format!("{what} path {p:?}: {e}"))),
        }
    };
    let mut writable = Vec::new();
    for p in &policy.write {
        match canon(p, "writable")? {
            Some(c) => writable.push(c),
            None => {
                return Err((
                    FailKind::InvalidPolicy,
                    format!(
                        "writable path {p:?} does not exist; create it first or declare the \
                         directory that will contain it"
                    ),
                ));
            }
        }
    }
    let mut readable = Vec::new();
    for p in &policy.read {
        if let Some(c) = canon(p, "readable")? {
            readable.push(c);
        }
    }
    let mut denied = Vec::new();
    for p in &policy.deny_read {
        if let Some(c) = canon(p, "deny_read")? {
            denied.push(c);
        }
    }
    let mut sockets = Vec::new();
    for p in &policy.unix_sockets {
        let Some(c) = canon(p, "Unix socket")? else {
            continue; // not there (e.g. no D-Bus on this machine): nothing to reach
        };
        use std::os::unix::fs::FileTypeExt;
        // A declared socket is exempt from hiding, so it must not be a way to declare a
        // readable file or directory under another name.
        if !std::fs::metadata(&c).is_ok_and(|m| m.file_type().is_socket()) {
            return Err((
                FailKind::InvalidPolicy,
                format!(
                    "{p:?} is declared as a Unix socket but is not one; declare files and \
                     directories as readable paths instead"
                ),
            ));
        }
        sockets.push(c);
    }
    let mut cover_sockets = Vec::new();
    if unix_connect {
        // connect(2) is open, so every socket the view shows is reachable: cover all the
        // undeclared ones where sockets live (and hide directories we cannot look into).
        match sockets_under(&SOCKET_DIRS, &sockets, SOCKET_SCAN_BUDGET) {
            Ok((found, unlisted)) => {
                cover_sockets = found;
                denied.extend(unlisted);
            }
            Err(why) if policy.allow_weaker => {
                weakened.push(format!("hiding undeclared Unix sockets ({why})"));
            }
            Err(why) => {
                return Err((
                    FailKind::Unavailable,
                    format!("cannot hide the undeclared Unix sockets: {why}"),
                ));
            }
        }
    }
    let cwd = match policy.cwd.as_ref().or(req.caller_cwd.as_ref()) {
        Some(c) => match canon(c, "working directory")? {
            Some(c) => Some(c),
            None => {
                return Err((
                    FailKind::InvalidPolicy,
                    format!("working directory {c:?} does not exist"),
                ));
            }
        },
        None => None,
    };

    // --- environment and program --------------------------------------------------------------
    let tmpdir = make_tmpdir().map_err(|e| {
        (
            FailKind::Helper,
            format!("cannot create the private temp dir: {e}"),
        )
    })?;
    let mut res = Resources {
        cgroup: None,
        tmpdir: Some(tmpdir.clone()),
    };
    writable.push(tmpdir.clone());

    let mut env: Vec<(String, String)> = req
        .env
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "TMPDIR" | "TMP" | "TEMP"))
        .cloned()
        .collect();
    let t = tmpdir.to_string_lossy().into_owned();
    env.push(("TMPDIR".into(), t.clone()));
    if !env.iter().any(|(k, _)| k == "PATH") {
        env.push(("PATH".into(), DEFAULT_PATH.into()));
    }
    let path_var = env
        .iter()
        .rev()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| DEFAULT_PATH.into());
    let program = req
        .argv
        .first()
        .ok_or((FailKind::InvalidPolicy, "empty command line".to_owned()))?;
    let program = resolve_program(program, &path_var, cwd.as_deref())?;

    mark("planned");
    // --- limits -------------------------------------------------------------------------------
    let limits = &policy.limits;
    let cg_setup = &probed.cgroups;
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get() as u64)
        .unwrap_or(1);
    // A service outlives the step, so limits that would bind it for its whole life (memory,
    // processes, CPU time, a per-step cgroup) are not applied to service-lifetime steps.
    let step_limit = |l: Option<u64>| l.filter(|_| !service);
    let (memory_limit, process_limit, cpu_limit) = (
        step_limit(limits.memory_bytes),
        step_limit(limits.max_processes),
        step_limit(limits.cpu_seconds),
    );
    let cg_limits = CgroupLimits {
        memory_bytes: memory_limit.filter(|_| cg_setup.has("memory")),
        // +1 for the namespace init, which lives in the cgroup too.
        max_pids: process_limit
            .filter(|_| cg_setup.has("pids"))
            .map(|p| p + 1),
        // Leave one core to the rest of the system so a runaway step never starves the
        // daemon that supervises it.
        cpus: (!service && cpus > 1 && cg_setup.has("cpu")).then_some(cpus - 1),
    };
    if process_limit.is_some() && cg_limits.max_pids.is_none() && euid == 0 {
        // RLIMIT_NPROC is not enforced for uid 0, so without a pids cgroup nothing would
        // stop a fork bomb run by root.
        let why = "process limit (no pids cgroup can be created here, and RLIMIT_NPROC does \
                   not bind root)";
        if !policy.allow_weaker {
            return Err((FailKind::Unavailable, why.into()));
        }
        weakened.push(why.into());
    }
    let want_cpu_acct = cpu_limit.is_some() && cg_setup.has("cpuacct");
    let name = format!("kernos-sbx-{}", std::process::id());
    let cgroup_summary;
    if cg_limits.memory_bytes.is_some()
        || cg_limits.max_pids.is_some()
        || cg_limits.cpus.is_some()
        || want_cpu_acct
    {
        match StepCgroup::create(cg_setup, &name, &cg_limits, want_cpu_acct) {
            Ok(cg) => {
                cgroup_summary = cg.version.map(|v| {
                    let ctrls: Vec<&str> = cg.dirs.iter().map(|(c, _)| c.as_str()).collect();
                    format!("{v:?}: {}", ctrls.join(",")).to_lowercase()
                });
                res.cgroup = Some(cg);
            }
            Err(e) => {
                let why = format!("step cgroup ({e})");
                if cg_limits.max_pids.is_some() && euid == 0 && !policy.allow_weaker {
                    return Err((FailKind::Unavailable, why));
                }
                weakened.push(why);
                cgroup_summary = None;
            }
        }
    } else {
        cgroup_summary = None;
    }

    mark("cgroup created");
    let mem_cgroup = res
        .cgroup
        .as_ref()
        .is_some_and(|c| c.dirs.iter().any(|(n, _)| n == "memory" || n.is_empty()))
        && cg_limits.memory_bytes.is_some();
    let mut rlimits: Vec<(libc::__rlimit_resource_t, u64, u64)> = vec![
        // Core dumps of a confined command would land in its cwd or a host-wide handler.
        (libc::RLIMIT_CORE, 0, 0),
    ];
    if let Some(m) = memory_limit {
        // With a memory cgroup enforcing the real limit, the address-space limit only guards
        // against absurd single allocations; virtual reservations (runtimes, mmap'd files)
        // routinely exceed resident memory, so give them room.
        let r#as = if mem_cgroup { m.saturating_mul(2) } else { m };
        rlimits.push((libc::RLIMIT_AS, r#as, r#as));
    }
    if let Some(p) = process_limit {
        rlimits.push((libc::RLIMIT_NPROC, p, p));
    }
    if let Some(c) = cpu_limit {
        // SIGXCPU at the soft limit, SIGKILL a second later if it is caught.
        rlimits.push((libc::RLIMIT_CPU, c, c.saturating_add(1)));
    }
    if let Some(f) = limits.file_size_bytes {
        rlimits.push((libc::RLIMIT_FSIZE, f, f));
    }
    if let Some(n) = limits.open_files {
        rlimits.push((libc::RLIMIT_NOFILE, n, n));
    }

    // --- network rules ------------------------------------------------------------------------
    let mut handled_net = 0;
    let mut connect_ports = Vec::new();
    match &policy.network {
        NetworkPolicy::Deny => {
            handled_net = landlock::NET_BIND_TCP | landlock::NET_CONNECT_TCP;
        }
        NetworkPolicy::Allow { hosts } => {
            let any = |h: &str| h.is_empty() || h == "*";
            let unrestricted =
                hosts.is_empty() || hosts.iter().any(|h| any(&h.host) && h.port.is_none());
            if !unrestricted {
                let named: Vec<&str> = hosts
                    .iter()
                    .filter(|h| !any(&h.host))
                    .map(|h| h.host.as_str())
                    .collect();
                if !named.is_empty() {
                    let why = format!(
                        "host filtering for {} (the kernel can restrict TCP ports, not host \
                         names; declare hosts as \"*\" with ports to have them enforced)",
                        named.join(", ")
                    );
                    if !policy.allow_weaker {
                        return Err((FailKind::Unavailable, why));
                    }
                    weakened.push(why);
                }
                if hosts.iter().all(|h| h.port.is_some()) {
                    if abi.unwrap_or(0) >= 4 {
                        handled_net = landlock::NET_CONNECT_TCP;
                        connect_ports = hosts.iter().filter_map(|h| h.port).collect();
                    } else if !policy.allow_weaker {
                        return Err((
                            FailKind::Unavailable,
                            "TCP port filtering (needs Landlock ABI 4, Linux 6.7+)".into(),
                        ));
                    } else {
                        weakened.push("TCP port filtering (Landlock ABI < 4)".into());
                    }
                }
            }
        }
    }

    // --- mounts (hidden and writable paths) ----------------------------------------------------
    // Declared sockets count as declared paths here: not hidden, and bound back in when they
    // lie inside a hidden directory.
    let declared: Vec<&PathBuf> = readable
        .iter()
        .chain(writable.iter())
        .chain(sockets.iter())
        .collect();
    let mut hide: Vec<Hide> = Vec::new();
    denied.sort_by_key(|p| p.as_os_str().len());
    for d in &denied {
        if declared.contains(&d) {
            continue; // explicitly declared: the step may read it.
        }
        if hide
            .iter()
            .any(|h| d.starts_with(OsStr::from_bytes(h.path.to_bytes())))
        {
            continue; // already inside a hidden directory.
        }
        let is_dir = d.is_dir();
        let mut reexpose = Vec::new();
        if is_dir {
            for p in &declared {
                if let Ok(rel) = p.strip_prefix(d) {
                    if rel.as_os_str().is_empty() {
                        continue;
                    }
                    let parts = rel
                        .components()
                        .filter_map(|c| match c {
                            Component::Normal(s) => sys::cbytes(s).ok(),
                            _ => None,
                        })
                        .collect();
                    reexpose.push((cpath(p)?, parts, p.is_dir()));
                }
            }
        }
        hide.push(Hide {
            path: cpath(d)?,
            is_dir,
            reexpose,
        });
    }
    let shm_bytes = memory_limit.map_or(DEFAULT_SHM, |m| m.min(DEFAULT_SHM));
    let writable_c = writable
        .iter()
        .map(|p| cpath(p))
        .collect::<Result<Vec<_>, _>>()?;
    let mounts = MountPlan {
        hide,
        writable: writable_c.clone(),
        shm_bytes,
        // A fresh /proc needs a PID namespace of our own; a service step keeps the host's
        // (read-only, and Landlock keeps other processes' root, fd and exe links closed).
        fresh_proc: !service,
        cover_sockets: cover_sockets
            .iter()
            .map(|p| cpath(p))
            .collect::<Result<Vec<_>, _>>()?,
    };

    // --- Landlock -----------------------------------------------------------------------------
    let landlock = abi.map(|abi| {
        let all = landlock::fs_rights_for(abi);
        let mut rules = vec![PathRule {
            path: c"/".into(),
            access: landlock::FS_READ_RIGHTS,
            required: true,
        }];
        for w in &writable_c {
            rules.push(PathRule {
                path: w.clone(),
                access: all,
                required: true,
            });
        }
        // The private /dev/shm (a tmpfs of our own; dropped below if there is no mount
        // namespace, when /dev/shm would be the host's).
        rules.push(PathRule {
            path: c"/dev/shm".into(),
            access: all,
            required: false,
        });
        for dev in [c"/dev/null", c"/dev/zero", c"/dev/full"] {
            rules.push(PathRule {
                path: dev.into(),
                access: landlock::FS_READ_FILE | landlock::FS_WRITE_FILE | landlock::FS_TRUNCATE,
                required: false,
            });
        }
        Ruleset {
            abi,
            handled_fs: all,
            handled_net,
            rules,
            connect_ports: connect_ports.clone(),
            scope_signals: !service,
        }
    });

    // v1: the init moves itself in and out (fast); v2: we move it in after cloning.
    let (cgroup_join, cgroup_leave) = match res.cgroup.as_ref().map(|c| c.self_move_fds()) {
        Some(Ok(Some(fds))) => fds,
        Some(Err(e)) => return Err((FailKind::Helper, format!("step cgroup: {e}"))),
        _ => (Vec::new(), Vec::new()),
    };
    let self_moving = !cgroup_join.is_empty();

    let mut plan = Plan {
        program,
        argv: req
            .argv
            .iter()
            .map(|a| cstring(a))
            .collect::<Result<_, _>>()?,
        envp: env
            .iter()
            .map(|(k, v)| cstring(&format!("{k}={v}")))
            .collect::<Result<_, _>>()?,
        cwd: cwd.as_deref().map(cpath).transpose()?,
        rlimits,
        landlock,
        seccomp,
        mounts: Some(mounts),
        allow_weaker: policy.allow_weaker,
        cgroup_join,
        cgroup_leave,
        service,
        drop_caps: Vec::new(),
        trace: req.trace,
    };

    // --- clone --------------------------------------------------------------------------------
    let mut flags = libc::CLONE_NEWNS;
    if !service {
        flags |= libc::CLONE_NEWPID | libc::CLONE_NEWIPC | libc::CLONE_NEWUTS;
    }
    // Root runs a service without a user namespace: a daemon's capabilities must count
    // against the host (binding port 80 in the host's network namespace, say). The ones no
    // service needs are dropped from the bounding set instead.
    let user_ns = !service || euid != 0;
    if user_ns {
        flags |= libc::CLONE_NEWUSER;
    } else {
        plan.drop_caps = SERVICE_DROPPED_CAPS.iter().map(|(c, _)| *c).collect();
    }
    if deny_network && !join_shared_netns(req, abi) {
        flags |= libc::CLONE_NEWNET;
    }
    let (go_r, go_w) = sys::pipe().map_err(helper_err("pipe"))?;
    let (st_r, st_w) = sys::pipe().map_err(helper_err("pipe"))?;
    let mut in_ns = true;
    let mut pid = clone(flags);
    if let Err(e) = &pid {
        let why = format!(
            "namespaces (clone with CLONE_NEWUSER|CLONE_NEWPID|CLONE_NEWNS… failed: {e}); \
             unprivileged user namespaces may be disabled (sysctl user.max_user_namespaces, \
             kernel.unprivileged_userns_clone, or an AppArmor userns restriction)"
        );
        if !policy.allow_weaker {
            return Err((FailKind::Unavailable, why));
        }
        weakened.push(why);
        if !plan.mounts.as_ref().is_some_and(|m| m.hide.is_empty()) {
            weakened.push("deny_read paths are NOT hidden (needs a mount namespace)".into());
        }
        weakened.push("read-only mounts (metadata changes outside writable paths)".into());
        plan.mounts = None;
        if let Some(rs) = &mut plan.landlock {
            rs.rules.retain(|r| r.path.as_c_str() != c"/dev/shm");
        }
        in_ns = false;
        pid = clone(0);
    }
    let pid = pid.map_err(helper_err("fork"))?;
    if pid == 0 {
        drop(go_w);
        drop(st_r);
        child::init_main(&plan, go_r, st_w, in_ns);
    }
    mark("cloned");
    drop(plan);
    drop(go_r);
    drop(st_w);
    let pidfd = sys::pidfd_open(pid).map_err(helper_err("pidfd_open"))?;
    let kill_tree = || {
        let _ = sys::pidfd_kill(&pidfd, libc::SIGKILL);
    };
    // Stopping a running step: ask the init to kill and reap everything (so CPU time stays
    // accounted), and SIGKILL it if it has not reported within STOP_GRACE.
    let mut stop_asked: Option<Instant> = None;
    let stop_tree = |stop_asked: &mut Option<Instant>| {
        if stop_asked.is_none() {
            let _ = sys::pidfd_kill(&pidfd, libc::SIGUSR1);
            *stop_asked = Some(Instant::now());
        }
    };

    if in_ns && user_ns {
        if let Err(e) = write_id_maps(pid, euid) {
            kill_tree();
            let _ = sys::wait4(pid);
            return Err((
                FailKind::Unavailable,
                format!("user namespace id maps: {e}"),
            ));
        }
    }
    if let (Some(cg), false) = (&res.cgroup, self_moving) {
        if let Err(e) = cg.attach(pid) {
            kill_tree();
            let _ = sys::wait4(pid);
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
        tmpdir: Some(tmpdir.clone()),
    });
    mark("maps written, released");
    let started = Instant::now();
    if sys::write_all(go_w.as_raw_fd(), b"g").is_err() {
        kill_tree();
    }
    drop(go_w);

    // --- supervise ----------------------------------------------------------------------------
    let deadline = limits.wall_ms.map(|ms| started + Duration::from_millis(ms));
    let cpu_limit_us = limits
        .cpu_seconds
        .filter(|_| want_cpu_acct)
        .map(|s| s.saturating_mul(1_000_000));
    let mut killed: Option<Kill> = None;
    let mut st = ChildStatus::default();
    let mut pending = Vec::new();
    let mut status_open = true;
    let mut caller_open = true;
    let mut exited = false;
    // Done when the init has exited, or — when it leaves the cgroup by itself — as soon as it
    // reports that everything in the namespace is dead (its own teardown is not our business).
    while !(exited || (self_moving && st.done.is_some())) {
        let now = Instant::now();
        let mut timeout: i32 = -1;
        if let Some(t) = stop_asked {
            if now.duration_since(t) >= STOP_GRACE {
                kill_tree();
            } else {
                timeout = ms_until(t + STOP_GRACE, now);
            }
        }
        if killed.is_none() && st.done.is_none() {
            if let Some(d) = deadline {
                if now >= d {
                    killed = Some(Kill::Timeout);
                    stop_tree(&mut stop_asked);
                    continue;
                }
                timeout = if timeout < 0 {
                    ms_until(d, now)
                } else {
                    timeout.min(ms_until(d, now))
                };
            }
            if cpu_limit_us.is_some() {
                let t = CPU_POLL.as_millis() as i32;
                timeout = if timeout < 0 { t } else { timeout.min(t) };
            }
        }
        let mut fds = [
            libc::pollfd {
                fd: pidfd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: if status_open { st_r.as_raw_fd() } else { -1 },
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: signals.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: if caller_open { CONTROL_FD } else { -1 },
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        sys::poll(&mut fds, timeout).map_err(helper_err("poll"))?;
        if fds[3].revents != 0 {
            // A byte from the caller asks to cancel; end of file means it died. Either way
            // the step must stop.
            let mut b = [0u8; 16];
            if !matches!(sys::read(CONTROL_FD, &mut b), Ok(n) if n > 0) {
                caller_open = false;
            }
            if killed.is_none() && st.done.is_none() {
                killed = Some(Kill::Cancel);
                stop_tree(&mut stop_asked);
            }
        }
        if fds[1].revents != 0 {
            let mut buf = [0u8; 4096];
            match sys::read(st_r.as_raw_fd(), &mut buf) {
                Ok(0) | Err(_) => status_open = false,
                Ok(n) => st.feed(&mut pending, &buf[..n]),
            }
        }
        if fds[2].revents != 0 {
            // SAFETY: signalfd_siginfo is plain data; we only drain the descriptor.
            let mut si: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
            // SAFETY: the slice covers exactly `si`.
            let _ = sys::read(signals.as_raw_fd(), unsafe {
                std::slice::from_raw_parts_mut(
                    (&mut si as *mut libc::signalfd_siginfo).cast::<u8>(),
                    std::mem::size_of::<libc::signalfd_siginfo>(),
                )
            });
            if killed.is_none() && st.done.is_none() {
                killed = Some(Kill::Cancel);
            }
            stop_tree(&mut stop_asked);
        }
        if fds[0].revents != 0 {
            exited = true;
            // The init has fully exited, so every writer of the status pipe is gone (the
            // command's copy was close-on-exec and the namespace is empty): drain to EOF.
            let mut buf = [0u8; 4096];
            while status_open {
                match sys::read(st_r.as_raw_fd(), &mut buf) {
                    Ok(0) | Err(_) => status_open = false,
                    Ok(n) => st.feed(&mut pending, &buf[..n]),
                }
            }
            st.feed(&mut pending, b"\n");
        }
        if killed.is_none() && !exited && st.done.is_none() {
            if let (Some(limit), Some(cg)) = (cpu_limit_us, &res.cgroup) {
                if cg.cpu_usage_us().is_some_and(|u| u >= limit) {
                    killed = Some(Kill::CpuTotal);
                    stop_tree(&mut stop_asked);
                }
            }
        }
    }
    mark("tree done");
    let mut tree_cpu_ms = st.done.map(|(_, _, tree)| tree).unwrap_or(0);
    let mut reap_later = None;
    if exited {
        let (_init_status, ru) = sys::wait4(pid).map_err(helper_err("wait4"))?;
        tree_cpu_ms = tree_cpu_ms.max(sys::rusage_cpu_ms(&ru));
    } else {
        reap_later = Some(pid);
    }
    let events = res.cgroup.as_ref().map(|c| c.events()).unwrap_or_default();
    // The cgroup's own accounting, when there is one, covers every process of the step.
    if let Some(us) = res.cgroup.as_ref().and_then(|c| c.cpu_usage_us()) {
        tree_cpu_ms = tree_cpu_ms.max(us / 1000);
    }
    // The empty step cgroup is removed after the report is sent: nobody waits for that.
    let cgroup_left = res.cgroup.take();
    drop(res);
    mark("cleaned up");
    trace.extend(st.trace);
    weakened.extend(st.weakened);

    // --- report -------------------------------------------------------------------------------
    if let Some(f) = st.failure {
        if killed != Some(Kill::Cancel) && killed != Some(Kill::Timeout) {
            return Err(f);
        }
    }
    let (code, signal, cmd_cpu_ms) = match st.done {
        Some((st, cpu, _)) if libc::WIFEXITED(st) => (Some(libc::WEXITSTATUS(st)), None, cpu),
        Some((st, cpu, _)) if libc::WIFSIGNALED(st) => (None, Some(libc::WTERMSIG(st)), cpu),
        Some((_, cpu, _)) => (None, Some(libc::SIGKILL), cpu),
        // Killed before the command ended: it died with the namespace.
        None => (None, Some(libc::SIGKILL), tree_cpu_ms),
    };
    let success = code == Some(0) && killed.is_none();
    let stopped = match killed {
        Some(Kill::Cancel) => Some(StopReason::Cancelled),
        Some(Kill::CpuTotal) => limits
            .cpu_seconds
            .map(|limit_s| StopReason::CpuLimit { limit_s }),
        _ => {
            // A shell running the command reports a child killed by signal N as exit code
            // 128+N; `shell.run` steps always go through one, so read that too.
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
                && (events.oom_kills > 0
                    || (events.memory_limit_hits > 0 && signal == Some(libc::SIGKILL)))
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
    };
    Ok((
        HelperReport {
            code,
            signal,
            stopped,
            cpu_ms: tree_cpu_ms,
            weakened,
            cgroup: cgroup_summary,
            trace,
        },
        Leftovers {
            init: reap_later,
            cgroup: cgroup_left,
        },
    ))
}

/// What the init and the command said on the status pipe.
#[derive(Default)]
struct ChildStatus {
    /// `(wait status, command cpu ms, tree cpu ms)` once everything in the namespace is dead.
    done: Option<(i32, u64, u64)>,
    failure: Option<Failure>,
    weakened: Vec<String>,
    trace: Vec<(String, u64)>,
}

impl ChildStatus {
    /// Consumes complete lines from `pending` + `data`.
    fn feed(&mut self, pending: &mut Vec<u8>, data: &[u8]) {
        pending.extend_from_slice(data);
        while let Some(i) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=i).collect();
            let line = String::from_utf8_lossy(&line[..line.len() - 1]).into_owned();
            let mut it = line.splitn(3, ' ');
            match it.next() {
                Some("E") if self.failure.is_none() => {
                    let kind = FailKind::from_word(it.next().unwrap_or(""));
                    self.failure = Some((kind, it.next().unwrap_or("").to_owned()));
                }
                Some("W") => self.weakened.push(line[2..].to_owned()),
                Some("T") => {
                    if let Some((name, t)) = line[2..].rsplit_once(' ') {
                        if let Ok(t) = t.parse() {
                            self.trace.push((name.to_owned(), t));
                        }
                    }
                }
                Some("X") => {
                    let nums: Vec<i64> = line[2..]
                        .split(' ')
                        .filter_map(|s| s.parse().ok())
                        .collect();
                    if let [st, cmd, tree] = nums[..] {
                        self.done = Some((st as i32, cmd as u64, tree as u64));
                    }
                }
                _ => {}
            }
        }
    }
}

/// Joins the caller's shared network namespace (fd 4) instead of creating one per step, when
/// the caller passed one and Landlock scopes abstract Unix sockets (ABI 6), the only thing two
/// concurrent steps could otherwise share in an empty namespace (sockets other than AF_UNIX
/// are refused by seccomp). Creating and tearing down a network namespace per step costs
/// 0.6 ms at the median and several ms at p90 (teardown runs in a shared kernel workqueue).
fn join_shared_netns(req: &HelperRequest, abi: Option<u32>) -> bool {
    let Some(fd) = req.netns_fd else {
        return false;
    };
    let ok = abi.unwrap_or(0) >= 6
        // SAFETY: setns on a descriptor the caller passed; affects only this helper process.
        && unsafe { libc::setns(fd, libc::CLONE_NEWNET) } == 0;
    // SAFETY: closing our copy; the init must not inherit it.
    unsafe { libc::close(fd) };
    ok
}

fn ms_until(d: Instant, now: Instant) -> i32 {
    let ms = d.saturating_duration_since(now).as_millis() + 1;
    ms.min(i32::MAX as u128) as i32
}

fn helper_err(what: &'static str) -> impl Fn(io::Error) -> Failure {
    move |e| (FailKind::Helper, format!("{what}: {e}"))
}

fn cstring(s: &str) -> Result<CString, Failure> {
    CString::new(s).map_err(|_| {
        (
            FailKind::InvalidPolicy,
            format!("{s:?} contains a NUL byte"),
        )
    })
}

fn cpath(p: &Path) -> Result<CString, Failure> {
    sys::cpath(p).map_err(|e| (FailKind::InvalidPolicy, e.to_string()))
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

/// Every pathname Unix socket under `roots` except the `keep` ones, and every directory there
/// that cannot be listed (it may hold sockets nobody can see from here, so it is hidden
/// whole): `(sockets, directories)`. Symlinks are not followed, and a root that is another
/// one under a second name (`/var/run` → `/run`) is searched once. Fails after looking at
/// `budget` entries.
fn sockets_under(
    roots: &[&str],
    keep: &[PathBuf],
    budget: usize,
) -> Result<(Vec<PathBuf>, Vec<PathBuf>), String> {
    use std::os::unix::fs::FileTypeExt;
    let mut searched: Vec<PathBuf> = Vec::new();
    let mut found = Vec::new();
    let mut unlisted = Vec::new();
    let mut looked = 0usize;
    for r in roots {
        let Ok(root) = std::fs::canonicalize(r) else {
            continue;
        };
        if searched.contains(&root) {
            continue;
        }
        searched.push(root.clone());
        let mut stack = vec![root];
        while let Some(dir) = stack.pop() {
            let entries = match std::fs::read_dir(&dir) {
                Ok(entries) => entries,
                // Removed while we looked (temp dirs come and go): nothing in it to reach.
                Err(e)
                    if e.kind() == io::ErrorKind::NotFound
                        || e.raw_os_error() == Some(libc::ENOTDIR) =>
                {
                    continue;
                }
                Err(_) => {
                    unlisted.push(dir);
                    continue;
                }
            };
            for e in entries {
                let Ok(e) = e else {
                    unlisted.push(dir.clone());
                    break;
                };
                looked += 1;
                if looked > budget {
                    return Err(format!(
                        "more than {budget} files under {} to check",
                        roots.join(", ")
                    ));
                }
                let Ok(ft) = e.file_type() else {
                    continue;
                };
                if ft.is_socket() {
                    let p = e.path();
                    if !keep.contains(&p) {
                        found.push(p);
                    }
                } else if ft.is_dir() {
                    stack.push(e.path());
                }
            }
        }
    }
    Ok((found, unlisted))
}

/// A fresh private directory for the command's temporary files (mode 0700).
fn make_tmpdir() -> io::Result<PathBuf> {
    let base = std::env::temp_dir();
    let mut template = base.join("kernos-sbx-XXXXXX").into_os_string().into_vec();
    template.push(0);
    // SAFETY: `template` is a writable NUL-terminated buffer ending in XXXXXX.
    let r = unsafe { libc::mkdtemp(template.as_mut_ptr().cast()) };
    if r.is_null() {
        return Err(io::Error::last_os_error());
    }
    template.pop();
    Ok(PathBuf::from(OsString::from_vec(template)))
}

/// Finds the program like execvp would, so a missing program is reported before any namespace
/// is built.
fn resolve_program(prog: &str, path_var: &str, cwd: Option<&Path>) -> Result<CString, Failure> {
    let not_found = |reason: String| (FailKind::NotFound, reason);
    if prog.is_empty() {
        return Err(not_found("empty program name".into()));
    }
    let check = |p: &Path| -> Result<(), String> {
        let md = std::fs::metadata(p).map_err(|e| e.to_string())?;
        if md.is_dir() {
            return Err("is a directory".into());
        }
        let c = sys::cpath(p).map_err(|e| e.to_string())?;
        // SAFETY: valid C string.
        if unsafe { libc::access(c.as_ptr(), libc::X_OK) } != 0 {
            return Err(io::Error::last_os_error().to_string());
        }
        Ok(())
    };
    if prog.contains('/') {
        let p = Path::new(prog);
        let full = if p.is_absolute() {
            p.to_path_buf()
        } else {
            match cwd {
                Some(c) => c.join(p),
                None => std::env::current_dir()
                    .map(|d| d.join(p))
                    .unwrap_or_else(|_| p.to_path_buf()),
            }
        };
        check(&full).map_err(not_found)?;
        return cpath(&full);
    }
    for dir in path_var.split(':').filter(|d| !d.is_empty()) {
        let cand = Path::new(dir).join(prog);
        if check(&cand).is_ok() {
            return cpath(&cand);
        }
    }
    Err(not_found(format!(
        "not found in PATH ({path_var}); give a full path or add its directory to PATH"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_programs() {
        assert!(resolve_program("sh", DEFAULT_PATH, None).is_ok());
        let e = resolve_program("definitely-not-a-program-xyz", DEFAULT_PATH, None).unwrap_err();
        assert_eq!(e.0, FailKind::NotFound);
        assert!(resolve_program("/bin/sh", "", None).is_ok());
        assert_eq!(
            resolve_program("/etc", "", None).unwrap_err().0,
            FailKind::NotFound
        );
    }

    #[test]
    fn sockets_are_found_and_declared_ones_kept() {
        let d = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(d.path()).unwrap();
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        let s1 = root.join("a/one.sock");
        let s2 = root.join("a/b/two.sock");
        let _l1 = std::os::unix::net::UnixListener::bind(&s1).unwrap();
        let _l2 = std::os::unix::net::UnixListener::bind(&s2).unwrap();
        std::fs::write(root.join("a/file"), "x").unwrap();
        std::os::unix::fs::symlink(&root, root.join("a/b/loop")).unwrap();
        let r = root.to_str().unwrap();
        let (mut found, unlisted) =
            sockets_under(&[r, r], std::slice::from_ref(&s1), 1000).unwrap();
        found.sort();
        assert_eq!(found, vec![s2.clone()]);
        assert!(unlisted.is_empty());
        assert!(sockets_under(&[r], &[], 2).is_err());
        assert_eq!(
            sockets_under(&["/nonexistent-kernos"], &[], 10).unwrap(),
            (vec![], vec![])
        );
    }

    #[test]
    fn tmpdir_is_private_and_removable() {
        let d = make_tmpdir().unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&d).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        std::fs::create_dir(d.join("locked")).unwrap();
        std::fs::write(d.join("locked/f"), "x").unwrap();
        std::fs::set_permissions(d.join("locked"), std::fs::Permissions::from_mode(0o000)).unwrap();
        remove_tree(&d);
        assert!(!d.exists());
    }
}
