//! The library side: spawn the helper, feed stdin, capture output, watch the clock and the
//! cancel token, and turn what happened into an [`ExecOutcome`].
//!
//! Everything runs in the calling thread with one `poll` loop (no reader threads), so a step
//! costs one `posix_spawn` plus a handful of syscalls here. `posix_spawn` (glibc uses
//! `CLONE_VFORK`) keeps spawning cheap even from a large daemon process, where `fork` would copy
//! page tables, and it maps the four descriptors the helper needs without a `pre_exec` hook.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use kernos_core::exec::{
    CancelToken, ExecError, ExecOutcome, ExecRequest, ProcessRunner, StopReason,
};
use kernos_core::sandbox::NetworkPolicy;
use serde::Serialize;

use crate::protocol::{HELPER_ARG, HelperMessage, HelperReport, HelperRequest, PROTOCOL_VERSION};
use crate::sys;

/// How often the cancel token is looked at while nothing else happens.
const CANCEL_POLL: Duration = Duration::from_millis(20);
/// After this much time past the wall-clock limit the helper itself is presumed stuck and its
/// whole process group is killed from here (the helper normally enforces the limit itself).
const HELPER_GRACE: Duration = Duration::from_secs(5);
/// After asking the helper to cancel, how long before killing it outright.
const CANCEL_GRACE: Duration = Duration::from_secs(3);
/// Once the helper has reported (the command has exited), how long output may still take to
/// end. Only a process that outlived the command can hold the pipes open that long — a daemon
/// started by a service-lifetime step that did not redirect its output — and the step must
/// not wait for it. (A step-lifetime command leaves nothing behind, so its output ends at
/// once and this never applies.)
const OUTPUT_GRACE: Duration = Duration::from_millis(200);

/// Receives output as it arrives (only the part that is kept under the output cap, then the
/// truncation marker). The default methods discard it.
pub trait OutputSink {
    /// A chunk of the command's standard output.
    fn stdout(&mut self, _chunk: &[u8]) {}
    /// A chunk of the command's standard error.
    fn stderr(&mut self, _chunk: &[u8]) {}
}

/// An [`OutputSink`] that discards everything (output is still captured in the outcome).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoSink;

impl OutputSink for NoSink {}

/// An outcome plus what the sandbox itself has to say about the run.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// What the command did.
    pub outcome: ExecOutcome,
    /// Confinement that was requested but not applied because the policy allowed running
    /// weaker (`allow_weaker`). Empty when everything was enforced.
    pub weakened: Vec<String>,
    /// Which cgroup interface limited the step (e.g. `"v1: memory,pids,cpu"`), if any.
    pub cgroup: Option<String>,
}

/// Runs commands through the `kernos-sandbox` helper. Implements [`ProcessRunner`], the only
/// way tools spawn processes.
#[derive(Debug, Clone)]
pub struct SandboxRunner {
    helper: PathBuf,
    base_env: Option<Vec<(String, String)>>,
    /// The fork server, started on first use and shared by clones of this runner.
    server: Arc<Mutex<Option<ForkServer>>>,
    /// One-shot mode ([`SandboxRunner::one_shot`]): fork this process as the step's helper
    /// while it is single-threaded, instead of starting a fork server.
    one_shot: bool,
    /// Step helpers forked in one-shot mode that have not been reaped yet.
    forked: Arc<Mutex<Vec<libc::pid_t>>>,
}

impl SandboxRunner {
    /// A runner using the helper found by [`crate::find_helper`].
    pub fn new() -> Result<Self, ExecError> {
        Ok(Self::with_helper(crate::discover::find_helper()?))
    }

    /// A runner using the given helper binary (`kernos-sandbox`, or `kernos` itself).
    pub fn with_helper(helper: impl Into<PathBuf>) -> Self {
        SandboxRunner {
            helper: helper.into(),
            base_env: None,
            server: Arc::new(Mutex::new(None)),
            one_shot: false,
            forked: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// For a short-lived process that runs one step and exits (`kernos sandbox exec`): while
    /// this process is single-threaded, each step's helper is a fork of this process instead
    /// of a fork of a fork server that first has to be exec'd. That saves starting the helper
    /// binary a second time (the dynamic loader, 80k relocations, the runtime: ~3 ms of CPU
    /// for `kernos`), which is most of what a one-shot step costs beyond the kernel's
    /// namespace work. The forked helper then runs exactly the code a fork server's child
    /// runs, from the same state a spawned helper starts in: empty environment (whose old
    /// strings are wiped, so `/proc/1/environ` of the namespace init is empty), only the
    /// step's four descriptors, default signal handling, a session of its own, and its
    /// parent (this process) armed as the one whose death stops the step.
    ///
    /// A process with more than one thread falls back to the fork server (forking a
    /// multi-threaded process and then running ordinary code is not safe), and so does a
    /// long-lived one that never asked for this: the fork server keeps every step starting
    /// from a small pristine process, with nothing of the caller's memory in the namespace
    /// init. Use this only where the caller holds no secrets in memory.
    pub fn one_shot(mut self) -> Self {
        self.one_shot = true;
        self
    }

    /// Takes the variables that the policy's `env_allow` picks from from `env` instead of this
    /// process's environment (the daemon passes the requesting user's environment; tests pass
    /// a hostile one).
    pub fn with_base_env<I, K, V>(mut self, env: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        self.base_env = Some(env.into_iter().map(|(k, v)| (k.into(), v.into())).collect());
        self
    }

    /// The helper binary this runner starts.
    pub fn helper(&self) -> &Path {
        &self.helper
    }

    /// Runs `req` and also reports weakened confinement and the cgroup used.
    pub fn run_detailed(
        &self,
        req: &ExecRequest,
        cancel: &CancelToken,
    ) -> Result<RunReport, ExecError> {
        self.run_streaming(req, cancel, &mut NoSink)
    }

    /// Like [`SandboxRunner::run_detailed`], passing output to `sink` as it arrives.
    pub fn run_streaming(
        &self,
        req: &ExecRequest,
        cancel: &CancelToken,
        sink: &mut dyn OutputSink,
    ) -> Result<RunReport, ExecError> {
        if req.argv.is_empty() || req.argv[0].is_empty() {
            return Err(ExecError::InvalidPolicy("empty command line".into()));
        }
        let env = self.child_env(req)?;
        let trace = std::env::var_os("KERNOS_SANDBOX_TRACE").is_some_and(|v| v == "1");
        let _pipe_guard = SigpipeBlock::new();
        let started = Instant::now();
        let started_us = sys::mono_us();
        let mut step = Step::open(req.stdin.is_some())?;
        let (parent_pid, netns) = match self.fork_helper(&step)? {
            Some(me) => (me, false),
            None => self.submit(&step)?,
        };
        let request = HelperRequest {
            version: PROTOCOL_VERSION,
            parent_pid,
            argv: req.argv.clone(),
            env,
            policy: req.policy.clone(),
            // The server holds the shared namespace on this descriptor; it only helps (and is
            // only used) when the step has no network.
            netns_fd: (netns && matches!(req.policy.network, NetworkPolicy::Deny))
                .then_some(NETNS_FD),
            caller_cwd: std::env::current_dir().ok(),
            trace,
        };
        let request = serde_json::to_vec(&request)
            .map_err(|e| ExecError::Helper(format!("cannot encode the request: {e}")))?;
        let submitted_us = sys::mono_us();
        send_request(&step.ctl, &request);
        let cap = req
            .policy
            .limits
            .output_bytes
            .map_or(usize::MAX, |b| usize::try_from(b).unwrap_or(usize::MAX));
        let wall_limit = req.policy.limits.wall_ms.map(Duration::from_millis);
        let io = step.pump(
            req.stdin.as_deref().unwrap_or_default(),
            cap,
            sink,
            cancel,
            wall_limit.map(|w| started + w + HELPER_GRACE),
            req.policy.limits.wall_ms,
        )?;
        for (cap, is_out) in [(&io.stdout, true), (&io.stderr, false)] {
            if cap.truncated() {
                let m = cap.marker();
                if is_out {
                    sink.stdout(&m);
                } else {
                    sink.stderr(&m);
                }
            }
        }
        let wall_ms = started.elapsed().as_millis() as u64;

        let mut started_msg = None;
        let mut final_msg = None;
        for line in io.control.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            match serde_json::from_slice::<HelperMessage>(line) {
                Ok(m @ HelperMessage::Started { .. }) => started_msg = Some(m),
                Ok(m) => final_msg = Some(m),
                Err(_) => {}
            }
        }
        let (stdout, stdout_truncated) = io.stdout.finish();
        let (stderr, stderr_truncated) = io.stderr.finish();
        let mut outcome = ExecOutcome {
            stdout,
            stderr,
            stdout_truncated,
            stderr_truncated,
            wall_ms,
            ..ExecOutcome::default()
        };
        match final_msg {
            Some(HelperMessage::Finished(HelperReport {
                code,
                signal,
                stopped,
                cpu_ms,
                weakened,
                cgroup,
                trace: phases,
            })) => {
                if trace {
                    let mut phases = phases;
                    phases.push(("request sent to the helper".into(), submitted_us));
                    print_trace(started_us, &phases);
                }
                outcome.code = code;
                outcome.signal = signal;
                outcome.stopped = stopped;
                outcome.cpu_ms = cpu_ms;
                Ok(RunReport {
                    outcome,
                    weakened,
                    cgroup,
                })
            }
            Some(HelperMessage::Failed { kind, message }) => {
                Err(kind.into_error(message, &req.argv[0]))
            }
            _ => {
                // The helper died without reporting: clean up what it announced.
                if let Some(HelperMessage::Started {
                    cgroups, tmpdir, ..
                }) = started_msg
                {
                    crate::cgroup::remove_dirs(&cgroups);
                    if let Some(t) = tmpdir {
                        let ours = std::env::temp_dir().join("kernos-sbx-");
                        if t.to_string_lossy().starts_with(&*ours.to_string_lossy()) {
                            crate::helper::remove_tree(&t);
                        }
                    }
                }
                if let Some(reason) = io.forced {
                    outcome.signal = Some(libc::SIGKILL);
                    outcome.stopped = Some(reason);
                    return Ok(RunReport {
                        outcome,
                        weakened: Vec::new(),
                        cgroup: None,
                    });
                }
                let tail = String::from_utf8_lossy(
                    &outcome.stderr[outcome.stderr.len().saturating_sub(2000)..],
                )
                .into_owned();
                Err(ExecError::Helper(format!(
                    "the sandbox helper {} ended without a report{}; check that it is the \
                     kernos-sandbox binary from this build",
                    self.helper.display(),
                    if tail.trim().is_empty() {
                        String::new()
                    } else {
                        format!(": {}", tail.trim())
                    }
                )))
            }
        }
    }

    /// The command's environment: the allow-listed variables of the base environment, then the
    /// request's explicit variables.
    fn child_env(&self, req: &ExecRequest) -> Result<Vec<(String, String)>, ExecError> {
        let allowed = |k: &str| req.policy.env_allow.iter().any(|a| a == k);
        let mut env: Vec<(String, String)> = match &self.base_env {
            Some(b) => b.iter().filter(|(k, _)| allowed(k)).cloned().collect(),
            None => std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
                .filter(|(k, _)| allowed(k))
                .collect(),
        };
        for (k, v) in &req.env {
            if k.is_empty() || k.contains('=') || k.contains('\0') || v.contains('\0') {
                return Err(ExecError::InvalidPolicy(format!(
                    "bad environment variable name or value: {k:?}"
                )));
            }
            env.retain(|(ek, _)| ek != k);
            env.push((k.clone(), v.clone()));
        }
        Ok(env)
    }
}

impl SandboxRunner {
    /// Hands the step's descriptors to the fork server (starting it, or restarting it if it
    /// died). Returns the server's pid (the step helper's parent) and whether it holds a
    /// shared network namespace.
    fn submit(&self, step: &Step) -> Result<(i32, bool), ExecError> {
        let mut guard = self
            .server
            .lock()
            .map_err(|_| ExecError::Helper("fork server lock poisoned".into()))?;
        for attempt in 0..2 {
            if guard.is_none() {
                *guard = Some(ForkServer::start(&self.helper)?);
            }
            if let Some(server) = guard.as_ref() {
                match server.send(&step.child_fds) {
                    Ok(()) => return Ok((server.pid, server.netns)),
                    Err(e) if attempt == 0 => {
                        let _ = e;
                        *guard = None; // it died: start a new one
                    }
                    Err(e) => {
                        return Err(ExecError::Helper(format!(
                            "cannot reach the sandbox fork server ({}): {e}",
                            self.helper.display()
                        )));
                    }
                }
            }
        }
        Err(ExecError::Helper(
            "cannot start the sandbox fork server".into(),
        ))
    }
}

impl SandboxRunner {
    /// One-shot mode: forks this process as the step's helper (see
    /// [`SandboxRunner::one_shot`]). Returns our pid (the helper's parent), or `None` when
    /// the step should go to the fork server instead.
    fn fork_helper(&self, step: &Step) -> Result<Option<i32>, ExecError> {
        if !self.one_shot || !single_threaded() {
            return Ok(None);
        }
        let mut forked = self
            .forked
            .lock()
            .map_err(|_| ExecError::Helper("forked helper list lock poisoned".into()))?;
        reap_finished(&mut forked);
        // Wiped in the child; located before forking (reading /proc allocates).
        let env_area = own_env_area();
        let me = std::process::id() as i32;
        // SAFETY: this process is single-threaded (checked above), so the child gets a
        // consistent copy and may run ordinary code; it only ever leaves through `_exit`.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(ExecError::Helper(format!(
                "fork: {}",
                io::Error::last_os_error()
            )));
        }
        if pid == 0 {
            become_helper(&step.child_fds, env_area);
        }
        forked.push(pid);
        Ok(Some(me))
    }
}

/// In the forked child: turn into what a fork-server child is (see
/// [`SandboxRunner::one_shot`]) and run the step. Never returns.
fn become_helper(fds: &[OwnedFd], env_area: Option<(usize, usize)>) -> ! {
    let main_us = sys::mono_us();
    // SAFETY: we are the only thread of a fresh fork; every call is a plain syscall or libc
    // call on our own state. The descriptors are first moved above 9, so the dup2s to 0-3
    // cannot clobber a source that is still needed.
    unsafe {
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
        for sig in 1..libc::SIGRTMIN() {
            if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                libc::signal(sig, libc::SIG_DFL);
            }
        }
        // As in any Rust program, and so in a spawned helper: a write to a closed pipe is an
        // error, not death.
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        libc::setsid();
        let mut high = [0; 4];
        for (h, fd) in high.iter_mut().zip(fds) {
            *h = libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD, 10);
        }
        for (target, h) in high.iter().enumerate() {
            if *h < 0 || libc::dup2(*h, target as RawFd) < 0 {
                libc::_exit(2);
            }
        }
        libc::syscall(libc::SYS_close_range, 4u32, u32::MAX, 0u32);
        libc::clearenv();
        if let Some((start, end)) = env_area {
            // The environment strings this process started with: the kernel shows this
            // area as /proc/PID/environ, and the namespace init is a copy of us.
            std::ptr::write_bytes(start as *mut u8, 0, end - start);
        }
    }
    let code = crate::helper::forked_step(main_us);
    // SAFETY: `_exit`, not `exit`: the caller's buffered stdout must not be flushed again
    // from this copy (it would land in the command's output).
    unsafe { libc::_exit(code) }
}

/// Whether this process has exactly one thread (`/proc/self/stat`, field 20).
fn single_threaded() -> bool {
    std::fs::read_to_string("/proc/self/stat").is_ok_and(|s| {
        s.rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(17).map(|n| n == "1"))
            .unwrap_or(false)
    })
}

/// The address range of this process's initial environment strings (`/proc/self/stat`,
/// fields 50 and 51), if the kernel tells.
fn own_env_area() -> Option<(usize, usize)> {
    let s = std::fs::read_to_string("/proc/self/stat").ok()?;
    let (_, rest) = s.rsplit_once(')')?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let start: usize = f.get(47)?.parse().ok()?;
    let end: usize = f.get(48)?.parse().ok()?;
    (start > 0 && end > start).then_some((start, end))
}

/// Reaps the one-shot helpers that have finished (their cleanup after the report is theirs
/// to finish; nobody waits for it).
fn reap_finished(pids: &mut Vec<libc::pid_t>) {
    pids.retain(|&pid| {
        let mut status = 0;
        // SAFETY: pointer to a local; WNOHANG never blocks.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        r == 0
    });
}

impl Drop for SandboxRunner {
    fn drop(&mut self) {
        if let Ok(mut f) = self.forked.lock() {
            reap_finished(&mut f);
        }
    }
}

impl ProcessRunner for SandboxRunner {
    fn run(&self, req: &ExecRequest, cancel: &CancelToken) -> Result<ExecOutcome, ExecError> {
        self.run_detailed(req, cancel).map(|r| r.outcome)
    }
}

/// `KERNOS_SANDBOX_TRACE=1`: phase timings on stderr, relative to the spawn.
fn print_trace(t0: u64, phases: &[(String, u64)]) {
    let mut all: Vec<(u64, &str)> = phases.iter().map(|(n, t)| (*t, n.as_str())).collect();
    all.push((sys::mono_us(), "caller has the outcome"));
    all.sort();
    let mut prev = t0;
    for (t, n) in all {
        eprintln!(
            "kernos-sandbox trace: {:>8.3} ms (+{:.3})  {n}",
            t.saturating_sub(t0) as f64 / 1000.0,
            t.saturating_sub(prev) as f64 / 1000.0
        );
        prev = t;
    }
}

/// Writes the length-prefixed request. The socket stays open: a later byte means "cancel".
/// A helper that died early just makes this fail; the poll loop then reports why.
fn send_request(ctl: &OwnedFd, request: &[u8]) {
    let mut framed = (request.len() as u32).to_le_bytes().to_vec();
    framed.extend_from_slice(request);
    let mut buf = framed.as_slice();
    // The socket is non-blocking; a large request is written as the helper reads it.
    while !buf.is_empty() {
        // SAFETY: valid slice; MSG_NOSIGNAL turns a dead peer into EPIPE instead of SIGPIPE.
        let n = unsafe {
            libc::send(
                ctl.as_raw_fd(),
                buf.as_ptr().cast(),
                buf.len(),
                libc::MSG_NOSIGNAL,
            )
        };
        if n < 0 {
            match io::Error::last_os_error().kind() {
                io::ErrorKind::Interrupted => continue,
                io::ErrorKind::WouldBlock => {
                    let mut p = [libc::pollfd {
                        fd: ctl.as_raw_fd(),
                        events: libc::POLLOUT,
                        revents: 0,
                    }];
                    if !matches!(sys::poll(&mut p, 5000), Ok(1)) {
                        break;
                    }
                    continue;
                }
                _ => break,
            }
        }
        buf = &buf[n as usize..];
    }
}

/// Output kept under a cap, counting what was dropped.
struct Capture {
    buf: Vec<u8>,
    cap: usize,
    total: u64,
}

impl Capture {
    fn new(cap: usize) -> Self {
        Capture {
            buf: Vec::new(),
            cap,
            total: 0,
        }
    }

    /// Keeps what fits and returns it (for streaming).
    fn push<'a>(&mut self, chunk: &'a [u8]) -> &'a [u8] {
        self.total += chunk.len() as u64;
        let room = self.cap.saturating_sub(self.buf.len());
        let kept = &chunk[..chunk.len().min(room)];
        self.buf.extend_from_slice(kept);
        kept
    }

    fn truncated(&self) -> bool {
        self.total > self.buf.len() as u64
    }

    fn marker(&self) -> Vec<u8> {
        format!(
            "\n[kernos sandbox: output truncated at {} bytes; {} more bytes were discarded]\n",
            self.cap,
            self.total - self.buf.len() as u64
        )
        .into_bytes()
    }

    fn finish(self) -> (Vec<u8>, bool) {
        if self.truncated() {
            let marker = self.marker();
            let mut b = self.buf;
            b.extend_from_slice(&marker);
            (b, true)
        } else {
            (self.buf, false)
        }
    }
}

/// What the poll loop collected.
struct Collected {
    stdout: Capture,
    stderr: Capture,
    control: Vec<u8>,
    /// Set when this side had to kill the helper itself.
    forced: Option<StopReason>,
}

/// Moves a descriptor to a number ≥ 10, so the dup2 targets 0–4 in a spawned child can never
/// collide with a source descriptor.
fn high(fd: OwnedFd) -> io::Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC returns a new descriptor we then own.
    let n = sys::cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 10) })?;
    // SAFETY: fresh descriptor.
    Ok(unsafe { OwnedFd::from_raw_fd(n) })
}

/// The helper in fork-server mode: one per runner, started on first use.
#[derive(Debug)]
struct ForkServer {
    pid: libc::pid_t,
    /// SOCK_SEQPACKET socket; each message is one step's descriptors.
    sock: OwnedFd,
    /// Whether the server holds the shared network namespace on fd 4.
    netns: bool,
}

/// Descriptor number of the shared network namespace in the helper.
const NETNS_FD: i32 = 4;

impl ForkServer {
    /// `posix_spawn` of `helper __sandbox-helper --server` with /dev/null on 0–2, its request
    /// socket on 3 and the shared network namespace (when we have one) on 4, an empty
    /// environment (the helper runs unconfined, so LD_PRELOAD and friends must not reach it),
    /// a new session (no controlling terminal; Ctrl-C reaches the caller, which cancels), and
    /// default signal dispositions and mask. `posix_spawn` (glibc uses CLONE_VFORK) stays cheap
    /// even from a large daemon, where fork would copy page tables.
    fn start(helper: &Path) -> Result<ForkServer, ExecError> {
        let err = |what: &str, e: io::Error| ExecError::Helper(format!("{what}: {e}"));
        let mut sv = [0; 2];
        // SAFETY: `sv` has room for two descriptors.
        sys::cvt(unsafe {
            libc::socketpair(
                libc::AF_UNIX,
                libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
                0,
                sv.as_mut_ptr(),
            )
        })
        .map_err(|e| err("fork server socket", e))?;
        // SAFETY: fresh descriptors from socketpair.
        let (sock, child) = unsafe { (OwnedFd::from_raw_fd(sv[0]), OwnedFd::from_raw_fd(sv[1])) };
        let null = || {
            sys::open(c"/dev/null", libc::O_RDWR, 0)
                .and_then(high)
                .map_err(|e| err("/dev/null", e))
        };
        let mut fds = vec![
            null()?,
            null()?,
            null()?,
            high(child).map_err(|e| err("dup", e))?,
        ];
        let netns = shared_netns();
        if let Some(ns) = netns {
            // SAFETY: `ns` is a process-lifetime static descriptor.
            let ns = unsafe { std::os::fd::BorrowedFd::borrow_raw(ns) };
            fds.push(
                ns.try_clone_to_owned()
                    .and_then(high)
                    .map_err(|e| err("dup", e))?,
            );
        }
        let pid = posix_spawn_helper(helper, &fds).map_err(|e| {
            ExecError::Helper(format!(
                "cannot start the sandbox helper {}: {e}; build it with `cargo build -p \
                 kernos-sandbox` (or install kernos), or set KERNOS_SANDBOX_HELPER to its path",
                helper.display()
            ))
        })?;
        Ok(ForkServer {
            pid,
            sock,
            netns: netns.is_some(),
        })
    }

    /// Sends one step's descriptors (stdin, stdout, stderr, control) in one message.
    fn send(&self, fds: &[OwnedFd]) -> io::Result<()> {
        let raw: Vec<RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
        let mut byte = [b'r'];
        let mut iov = libc::iovec {
            iov_base: byte.as_mut_ptr().cast(),
            iov_len: 1,
        };
        let mut cbuf = [0u64; 8];
        // SAFETY: msghdr and cmsg are filled through libc's macros within the local buffer,
        // which is large enough for the (at most 4) descriptors.
        unsafe {
            let mut msg: libc::msghdr = std::mem::zeroed();
            msg.msg_iov = &mut iov;
            msg.msg_iovlen = 1;
            msg.msg_control = cbuf.as_mut_ptr().cast();
            let bytes = std::mem::size_of_val(raw.as_slice()) as u32;
            msg.msg_controllen = libc::CMSG_SPACE(bytes) as _;
            let cmsg = libc::CMSG_FIRSTHDR(&msg);
            (*cmsg).cmsg_level = libc::SOL_SOCKET;
            (*cmsg).cmsg_type = libc::SCM_RIGHTS;
            (*cmsg).cmsg_len = libc::CMSG_LEN(bytes) as _;
            std::ptr::copy_nonoverlapping(
                raw.as_ptr(),
                libc::CMSG_DATA(cmsg).cast::<RawFd>(),
                raw.len(),
            );
            loop {
                if libc::sendmsg(self.sock.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) >= 0 {
                    return Ok(());
                }
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }
    }
}

impl Drop for ForkServer {
    fn drop(&mut self) {
        // Closing the socket makes the server exit; then reap it.
        // SAFETY: plain syscalls on our own descriptor and child.
        unsafe {
            libc::shutdown(self.sock.as_raw_fd(), libc::SHUT_RDWR);
        }
        let _ = sys::wait4(self.pid);
    }
}

/// One step's descriptors: our ends, and the helper's ends to hand to the fork server.
struct Step {
    stdin: Option<OwnedFd>,
    stdout: OwnedFd,
    stderr: OwnedFd,
    ctl: OwnedFd,
    /// stdin, stdout, stderr, control — for the helper; closed once sent.
    child_fds: Vec<OwnedFd>,
}

impl Step {
    fn open(with_stdin: bool) -> Result<Step, ExecError> {
        let io_err = |what: &str| {
            let what = what.to_owned();
            move |e: io::Error| ExecError::Helper(format!("{what}: {e}"))
        };
        let (in_r, in_w) = if with_stdin {
            let (r, w) = sys::pipe().map_err(io_err("stdin pipe"))?;
            (r, Some(w))
        } else {
            (
                sys::open(c"/dev/null", libc::O_RDONLY, 0).map_err(io_err("/dev/null"))?,
                None,
            )
        };
        let (out_r, out_w) = sys::pipe().map_err(io_err("stdout pipe"))?;
        let (err_r, err_w) = sys::pipe().map_err(io_err("stderr pipe"))?;
        let mut sv = [0; 2];
        // SAFETY: `sv` has room for two descriptors.
        sys::cvt(unsafe {
            libc::socketpair(
                libc::AF_UNIX,
                libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
                0,
                sv.as_mut_ptr(),
            )
        })
        .map_err(io_err("control socket"))?;
        // SAFETY: fresh descriptors from socketpair.
        let (ctl, ctl_child) =
            unsafe { (OwnedFd::from_raw_fd(sv[0]), OwnedFd::from_raw_fd(sv[1])) };
        for fd in [&out_r, &err_r, &ctl].into_iter().chain(in_w.as_ref()) {
            sys::set_nonblocking(fd.as_raw_fd(), true).map_err(io_err("O_NONBLOCK"))?;
        }
        Ok(Step {
            stdin: in_w,
            stdout: out_r,
            stderr: err_r,
            ctl,
            child_fds: vec![in_r, out_w, err_w, ctl_child],
        })
    }

    /// The poll loop: until the helper has closed the control socket and all output has
    /// ended, or [`OUTPUT_GRACE`] after the control socket closed. The helper's pid is learnt
    /// from its `started` message, for the last resort.
    fn pump(
        &mut self,
        input: &[u8],
        cap: usize,
        sink: &mut dyn OutputSink,
        cancel: &CancelToken,
        hard_deadline: Option<Instant>,
        wall_limit_ms: Option<u64>,
    ) -> Result<Collected, ExecError> {
        // The helper has its copies now; ours must go, or we would never see end of file.
        self.child_fds.clear();
        let mut c = Collected {
            stdout: Capture::new(cap),
            stderr: Capture::new(cap),
            control: Vec::new(),
            forced: None,
        };
        let mut pos = 0;
        if input.is_empty() {
            self.stdin = None; // EOF right away
        }
        let (mut out_open, mut err_open, mut ctl_open) = (true, true, true);
        let mut cancel_sent: Option<Instant> = None;
        let mut forced_at: Option<Instant> = None;
        let mut helper_pid: Option<libc::pid_t> = None;
        let mut buf = vec![0u8; 64 * 1024];
        let mut ctl_closed_at: Option<Instant> = None;
        // One last non-blocking pass over the pipes, then stop.
        let mut last_pass = false;
        while out_open || err_open || ctl_open {
            if forced_at.is_some_and(|t| t.elapsed() > Duration::from_secs(2)) {
                break; // killed, and still something holds a pipe: do not hang the caller
            }
            let fd_or_off = |open: bool, fd: &OwnedFd| if open { fd.as_raw_fd() } else { -1 };
            let mut fds = [
                libc::pollfd {
                    fd: fd_or_off(out_open, &self.stdout),
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    fd: fd_or_off(err_open, &self.stderr),
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    fd: fd_or_off(ctl_open, &self.ctl),
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    fd: self.stdin.as_ref().map_or(-1, |f| f.as_raw_fd()),
                    events: libc::POLLOUT,
                    revents: 0,
                },
            ];
            let wait_ms = if last_pass {
                0
            } else {
                CANCEL_POLL.as_millis() as i32
            };
            sys::poll(&mut fds, wait_ms).map_err(|e| ExecError::Helper(format!("poll: {e}")))?;

            if fds[3].revents != 0 {
                if let Some(w) = &self.stdin {
                    let chunk = &input[pos..input.len().min(pos + 64 * 1024)];
                    // SAFETY: valid slice.
                    let n =
                        unsafe { libc::write(w.as_raw_fd(), chunk.as_ptr().cast(), chunk.len()) };
                    if n > 0 {
                        pos += n as usize;
                        if pos >= input.len() {
                            self.stdin = None; // all fed: close for EOF
                        }
                    } else if n < 0 {
                        let e = io::Error::last_os_error();
                        if !matches!(
                            e.kind(),
                            io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                        ) {
                            // EPIPE: the command does not want (more) input.
                            self.stdin = None;
                        }
                    }
                }
            }
            for (i, open, cap, is_out) in [
                (0, &mut out_open, &mut c.stdout, true),
                (1, &mut err_open, &mut c.stderr, false),
            ] {
                if fds[i].revents == 0 {
                    continue;
                }
                let fd = if is_out { &self.stdout } else { &self.stderr };
                // Drain what is there now; output beyond the cap is read and dropped so the
                // command never blocks on a full pipe.
                loop {
                    match sys::read(fd.as_raw_fd(), &mut buf) {
                        Ok(0) => {
                            *open = false;
                            break;
                        }
                        Ok(n) => {
                            let kept = cap.push(&buf[..n]);
                            if !kept.is_empty() {
                                if is_out {
                                    sink.stdout(kept);
                                } else {
                                    sink.stderr(kept);
                                }
                            }
                            if n < buf.len() {
                                break;
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(_) => {
                            *open = false;
                            break;
                        }
                    }
                }
            }
            if fds[2].revents != 0 {
                loop {
                    match sys::read(self.ctl.as_raw_fd(), &mut buf) {
                        Ok(0) => {
                            ctl_open = false;
                            break;
                        }
                        Ok(n) => {
                            c.control.extend_from_slice(&buf[..n]);
                            if helper_pid.is_none() {
                                helper_pid = started_pid(&c.control);
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(_) => {
                            ctl_open = false;
                            break;
                        }
                    }
                }
            }
            if last_pass {
                break; // what was still in the pipes has been read; whoever holds them stays
            }
            if !ctl_open {
                let closed = *ctl_closed_at.get_or_insert_with(Instant::now);
                if closed.elapsed() >= OUTPUT_GRACE {
                    last_pass = true;
                }
            }
            if ctl_open {
                let now = Instant::now();
                if cancel.is_cancelled() && cancel_sent.is_none() {
                    // The helper kills the tree, cleans up and reports "cancelled".
                    // SAFETY: valid one-byte buffer; MSG_NOSIGNAL as above.
                    unsafe {
                        libc::send(
                            self.ctl.as_raw_fd(),
                            b"c".as_ptr().cast(),
                            1,
                            libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT,
                        )
                    };
                    cancel_sent = Some(now);
                }
                let cancel_overdue = cancel_sent.is_some_and(|t| now - t > CANCEL_GRACE);
                let wall_overdue = hard_deadline.is_some_and(|d| now > d);
                if (cancel_overdue || wall_overdue) && c.forced.is_none() {
                    c.forced = Some(if cancel_sent.is_some() {
                        StopReason::Cancelled
                    } else {
                        StopReason::Timeout {
                            limit_ms: wall_limit_ms.unwrap_or_default(),
                        }
                    });
                    forced_at = Some(now);
                    if let Some(pid) = helper_pid {
                        // The helper is stuck (it normally enforces limits itself). It is a
                        // session leader and its control socket is still open, so the pid is
                        // still its own: kill its group; the namespace dies with it.
                        // SAFETY: plain syscall.
                        unsafe { libc::kill(-pid, libc::SIGKILL) };
                    }
                }
            }
        }
        Ok(c)
    }
}

/// The helper pid from a `started` line, if one has arrived.
fn started_pid(control: &[u8]) -> Option<libc::pid_t> {
    control
        .split(|b| *b == b'\n')
        .filter_map(|l| serde_json::from_slice::<HelperMessage>(l).ok())
        .find_map(|m| match m {
            HelperMessage::Started { helper_pid, .. } => Some(helper_pid),
            _ => None,
        })
}

/// One empty network namespace for all network-less steps of this process (root only: it
/// must be owned by the initial user namespace for the helper to join it). Created once by a
/// short-lived thread, since unsharing the network namespace affects only the calling thread.
fn shared_netns() -> Option<RawFd> {
    static NETNS: OnceLock<Option<OwnedFd>> = OnceLock::new();
    NETNS
        .get_or_init(|| {
            // SAFETY: geteuid has no arguments.
            if unsafe { libc::geteuid() } != 0 {
                return None;
            }
            sys::spawn_netns_maker()?.join().ok().flatten()
        })
        .as_ref()
        .map(|f| f.as_raw_fd())
}

/// `posix_spawn` of `helper __sandbox-helper --server` with `fds` mapped to 0, 1, 2, ….
fn posix_spawn_helper(helper: &Path, fds: &[OwnedFd]) -> io::Result<libc::pid_t> {
    let path = sys::cpath(helper)?;
    let arg = CString::new(HELPER_ARG).map_err(|_| io::ErrorKind::InvalidInput)?;
    let server =
        CString::new(crate::helper::SERVER_ARG).map_err(|_| io::ErrorKind::InvalidInput)?;
    let argv = [
        path.as_ptr(),
        arg.as_ptr(),
        server.as_ptr(),
        std::ptr::null(),
    ];
    let envp = [std::ptr::null::<libc::c_char>()];
    // SAFETY: the file-actions and attribute objects are initialised before use and destroyed
    // after; every pointer passed refers to locals that outlive the call.
    unsafe {
        let mut fa: libc::posix_spawn_file_actions_t = std::mem::zeroed();
        let mut attr: libc::posix_spawnattr_t = std::mem::zeroed();
        libc::posix_spawn_file_actions_init(&mut fa);
        libc::posix_spawnattr_init(&mut attr);
        let mut rc = 0;
        for (target, fd) in fds.iter().enumerate() {
            if rc == 0 {
                rc = libc::posix_spawn_file_actions_adddup2(
                    &mut fa,
                    fd.as_raw_fd(),
                    target as RawFd,
                );
            }
        }
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        let mut all: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::sigdelset(&mut all, libc::SIGKILL);
        libc::sigdelset(&mut all, libc::SIGSTOP);
        if rc == 0 {
            rc = libc::posix_spawnattr_setflags(
                &mut attr,
                (libc::POSIX_SPAWN_SETSID as libc::c_int
                    | libc::POSIX_SPAWN_SETSIGMASK
                    | libc::POSIX_SPAWN_SETSIGDEF) as libc::c_short,
            );
        }
        if rc == 0 {
            rc = libc::posix_spawnattr_setsigmask(&mut attr, &empty);
        }
        if rc == 0 {
            rc = libc::posix_spawnattr_setsigdefault(&mut attr, &all);
        }
        let mut pid = 0;
        if rc == 0 {
            rc = libc::posix_spawn(
                &mut pid,
                path.as_ptr(),
                &fa,
                &attr,
                argv.as_ptr() as *const *mut libc::c_char,
                envp.as_ptr() as *const *mut libc::c_char,
            );
        }
        libc::posix_spawn_file_actions_destroy(&mut fa);
        libc::posix_spawnattr_destroy(&mut attr);
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        Ok(pid)
    }
}

/// Blocks SIGPIPE in this thread while we write to the command's stdin, so a command that
/// stops reading gives us EPIPE instead of killing the caller; a pending SIGPIPE is consumed
/// before the old mask comes back.
struct SigpipeBlock {
    old: libc::sigset_t,
}

impl SigpipeBlock {
    fn new() -> Self {
        // SAFETY: sigset_t is plain data manipulated through libc; pthread_sigmask only
        // affects this thread.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGPIPE);
            let mut old: libc::sigset_t = std::mem::zeroed();
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old);
            SigpipeBlock { old }
        }
    }
}

impl Drop for SigpipeBlock {
    fn drop(&mut self) {
        // SAFETY: as above; a zero timeout makes sigtimedwait a non-blocking check.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGPIPE);
            let zero = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            if libc::sigismember(&self.old, libc::SIGPIPE) == 0 {
                while libc::sigtimedwait(&set, std::ptr::null_mut(), &zero) == libc::SIGPIPE {}
            }
            libc::pthread_sigmask(libc::SIG_SETMASK, &self.old, std::ptr::null_mut());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capture_caps_and_marks() {
        let mut c = Capture::new(4);
        assert_eq!(c.push(b"ab"), b"ab");
        assert_eq!(c.push(b"cdef"), b"cd");
        assert_eq!(c.push(b"gh"), b"");
        assert!(c.truncated());
        let (b, t) = c.finish();
        assert!(t);
        assert!(b.starts_with(b"abcd\n[kernos sandbox: output truncated at 4 bytes; 4 more"));
        let (b, t) = Capture::new(10).finish();
        assert!(!t && b.is_empty());
    }

    #[test]
    fn env_is_filtered_to_the_allow_list() {
        let r = SandboxRunner::with_helper("/nonexistent").with_base_env([
            ("PATH", "/bin"),
            ("LD_PRELOAD", "/evil.so"),
            ("HOME", "/root"),
        ]);
        let mut req = ExecRequest::new(&["true"], Default::default());
        req.env.push(("EXTRA".into(), "1".into()));
        req.env.push(("HOME".into(), "/tmp/h".into()));
        let env = r.child_env(&req).unwrap();
        assert!(env.contains(&("PATH".into(), "/bin".into())));
        assert!(env.contains(&("EXTRA".into(), "1".into())));
        assert!(env.contains(&("HOME".into(), "/tmp/h".into())));
        assert!(!env.iter().any(|(k, _)| k == "LD_PRELOAD"));
        req.env.push(("A=B".into(), "x".into()));
        assert!(matches!(
            r.child_env(&req),
            Err(ExecError::InvalidPolicy(_))
        ));
    }

    #[test]
    fn missing_helper_is_a_clear_error() {
        let r = SandboxRunner::with_helper("/nonexistent/kernos-sandbox");
        let req = ExecRequest::new(&["true"], Default::default());
        let e = r.run(&req, &CancelToken::new()).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("cargo build -p kernos-sandbox"), "{msg}");
    }
}
