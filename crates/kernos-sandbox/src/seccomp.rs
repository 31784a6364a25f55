//! The seccomp filter, built as classic BPF by hand.
//!
//! Why not `seccompiler`/libseccomp: the filter is a short deny-list plus three argument checks,
//! and writing it directly lets us (a) reject the x32 ABI on x86-64, which a per-number deny-list
//! would otherwise miss, (b) reject foreign architectures (32-bit `int 0x80`), and (c) build the
//! program once in the helper before cloning, so the child only makes one syscall to install it.
//!
//! Denied calls return `EPERM` rather than killing the process, so programs fail with a clear
//! "Operation not permitted" and the step's output says what was refused. `clone3` returns
//! `ENOSYS` instead, because its flags live in memory a filter cannot read: libc then falls back
//! to `clone`, whose flags we can check.

use libc::sock_filter;

const BPF_LD: u16 = 0x00;
const BPF_W: u16 = 0x00;
const BPF_ABS: u16 = 0x20;
const BPF_JMP: u16 = 0x05;
const BPF_JEQ: u16 = 0x10;
const BPF_JGE: u16 = 0x30;
const BPF_JSET: u16 = 0x40;
const BPF_K: u16 = 0x00;
const BPF_RET: u16 = 0x06;

const RET_ALLOW: u32 = 0x7fff_0000;
const RET_ERRNO: u32 = 0x0005_0000;

// struct seccomp_data: int nr; u32 arch; u64 instruction_pointer; u64 args[6].
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
const fn off_arg_lo(i: u32) -> u32 {
    16 + 8 * i
}
const fn off_arg_hi(i: u32) -> u32 {
    16 + 8 * i + 4
}

#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xC000_003E; // AUDIT_ARCH_X86_64
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xC000_00B7; // AUDIT_ARCH_AARCH64

/// x32 system calls arrive with this bit set and the x86-64 audit arch.
#[cfg(target_arch = "x86_64")]
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// Namespace-creating clone/unshare flags: a confined process may not build itself new
/// namespaces (a fresh user namespace would hand it capabilities over new mounts etc.).
const NAMESPACE_FLAGS: u32 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWCGROUP
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET) as u32
    | 0x80; // CLONE_NEWTIME

/// open_tree_attr (Linux 6.15) is newer than the libc crate's tables; the number is the same on
/// every architecture that uses the unified syscall table.
const SYS_OPEN_TREE_ATTR: libc::c_long = 467;

/// Calls denied to every confined step, with the reason each is on the list.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
fn always_denied() -> Vec<libc::c_long> {
    let mut v = vec![
        // Inspecting or steering other processes.
        libc::SYS_ptrace,
        libc::SYS_process_vm_readv,
        libc::SYS_process_vm_writev,
        libc::SYS_pidfd_getfd,
        // io_uring bypasses seccomp for the operations it performs.
        libc::SYS_io_uring_setup,
        libc::SYS_io_uring_enter,
        libc::SYS_io_uring_register,
        // Changing the mount table would undo the read-only view and the hidden paths.
        libc::SYS_mount,
        libc::SYS_umount2,
        libc::SYS_pivot_root,
        libc::SYS_fsopen,
        libc::SYS_fsconfig,
        libc::SYS_fsmount,
        libc::SYS_fspick,
        libc::SYS_move_mount,
        libc::SYS_open_tree,
        SYS_OPEN_TREE_ATTR,
        libc::SYS_mount_setattr,
        // Kernel attack surface no tool step needs.
        libc::SYS_bpf,
        libc::SYS_kexec_load,
        libc::SYS_kexec_file_load,
        libc::SYS_init_module,
        libc::SYS_finit_module,
        libc::SYS_delete_module,
        libc::SYS_perf_event_open,
        libc::SYS_keyctl,
        libc::SYS_add_key,
        libc::SYS_request_key,
        libc::SYS_userfaultfd,
        libc::SYS_reboot,
        libc::SYS_swapon,
        libc::SYS_swapoff,
        libc::SYS_acct,
        libc::SYS_quotactl,
        libc::SYS_open_by_handle_at,
        libc::SYS_syslog,
        libc::SYS_vhangup,
        // Joining someone else's namespaces.
        libc::SYS_setns,
    ];
    #[cfg(target_arch = "x86_64")]
    v.extend([libc::SYS_iopl, libc::SYS_ioperm, libc::SYS_uselib]);
    v
}

/// What a filter refuses beyond the calls every step is denied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct FilterOpts {
    /// No network effect: sockets other than `AF_UNIX`, `connect`, `bind`, `listen`, `accept`,
    /// `sendmmsg`/`recvmmsg` and `sendto` with an address are refused.
    pub deny_network: bool,
    /// With `deny_network`: `connect` is allowed after all, because the policy declares Unix
    /// sockets. Only `AF_UNIX` sockets can exist, and the mount view decides which socket
    /// paths can be reached (the filter cannot read the address).
    pub unix_connect: bool,
    /// No `kill(-1, …)`: a service-lifetime step shares the host's PID namespace, where "every
    /// process I may signal" means the whole machine.
    pub no_kill_all: bool,
}

/// Calls denied when the step has no network effect (socket/socketpair/sendto are checked by
/// argument separately). `connect` is only on the list without declared Unix sockets.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
fn network_denied(unix_connect: bool) -> Vec<libc::c_long> {
    let mut v = vec![
        libc::SYS_bind,
        libc::SYS_listen,
        libc::SYS_accept,
        libc::SYS_accept4,
        libc::SYS_sendmmsg,
        libc::SYS_recvmmsg,
    ];
    if !unix_connect {
        v.push(libc::SYS_connect);
    }
    v
}

fn stmt(code: u16, k: u32) -> sock_filter {
    sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> sock_filter {
    sock_filter { code, jt, jf, k }
}

fn ld(off: u32) -> sock_filter {
    stmt(BPF_LD | BPF_W | BPF_ABS, off)
}

fn ret(v: u32) -> sock_filter {
    stmt(BPF_RET | BPF_K, v)
}

fn errno(e: i32) -> u32 {
    RET_ERRNO | (e as u32 & 0xffff)
}

/// Builds the filter program for `opts`.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
pub(crate) fn build(opts: FilterOpts) -> Result<Vec<sock_filter>, String> {
    let deny_network = opts.deny_network;
    let eperm = errno(libc::EPERM);
    let mut p = vec![
        // Wrong architecture (e.g. 32-bit syscalls from a 64-bit process): refuse everything,
        // since our syscall numbers mean nothing there.
        ld(OFF_ARCH),
        jump(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH, 1, 0),
        ret(eperm),
        ld(OFF_NR),
    ];
    #[cfg(target_arch = "x86_64")]
    {
        p.push(jump(BPF_JMP | BPF_JGE | BPF_K, X32_SYSCALL_BIT, 0, 1));
        p.push(ret(eperm));
    }
    let mut deny = always_denied();
    if deny_network {
        deny.extend(network_denied(opts.unix_connect));
    }
    for nr in deny {
        p.push(jump(BPF_JMP | BPF_JEQ | BPF_K, nr as u32, 0, 1));
        p.push(ret(eperm));
    }
    // clone3 → ENOSYS so libc falls back to clone (see module docs).
    p.push(jump(
        BPF_JMP | BPF_JEQ | BPF_K,
        libc::SYS_clone3 as u32,
        0,
        1,
    ));
    p.push(ret(errno(libc::ENOSYS)));
    // clone / unshare with namespace flags in the first argument → EPERM.
    for nr in [libc::SYS_clone, libc::SYS_unshare] {
        p.push(jump(BPF_JMP | BPF_JEQ | BPF_K, nr as u32, 0, 4));
        p.push(ld(off_arg_lo(0)));
        p.push(jump(BPF_JMP | BPF_JSET | BPF_K, NAMESPACE_FLAGS, 0, 1));
        p.push(ret(eperm));
        p.push(ret(RET_ALLOW));
    }
    if opts.no_kill_all {
        // kill(-1, sig) → EPERM. pid_t is 32 bits: the kernel ignores the upper half.
        p.push(jump(BPF_JMP | BPF_JEQ | BPF_K, libc::SYS_kill as u32, 0, 4));
        p.push(ld(off_arg_lo(0)));
        p.push(jump(BPF_JMP | BPF_JEQ | BPF_K, u32::MAX, 0, 1));
        p.push(ret(eperm));
        p.push(ret(RET_ALLOW));
    }
    if deny_network {
        // socket / socketpair: only AF_UNIX.
        for nr in [libc::SYS_socket, libc::SYS_socketpair] {
            p.push(jump(BPF_JMP | BPF_JEQ | BPF_K, nr as u32, 0, 4));
            p.push(ld(off_arg_lo(0)));
            p.push(jump(BPF_JMP | BPF_JEQ | BPF_K, libc::AF_UNIX as u32, 0, 1));
            p.push(ret(RET_ALLOW));
            p.push(ret(eperm));
        }
        // sendto with a destination address → EPERM; with NULL it is plain send(2) on an
        // already-connected (necessarily Unix) socket, which glibc implements as sendto.
        p.push(jump(
            BPF_JMP | BPF_JEQ | BPF_K,
            libc::SYS_sendto as u32,
            0,
            6,
        ));
        p.push(ld(off_arg_lo(4)));
        p.push(jump(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 3));
        p.push(ld(off_arg_hi(4)));
        p.push(jump(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 1));
        p.push(ret(RET_ALLOW));
        p.push(ret(eperm));
    }
    p.push(ret(RET_ALLOW));
    if p.len() > u16::MAX as usize {
        return Err("seccomp program too long".into());
    }
    Ok(p)
}

/// Architectures we have no syscall table for get no filter, which the helper reports as a
/// missing feature.
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
pub(crate) fn build(_opts: FilterOpts) -> Result<Vec<sock_filter>, String> {
    Err(format!(
        "no seccomp syscall table for {}",
        std::env::consts::ARCH
    ))
}

/// Whether the kernel supports seccomp filters at all.
pub(crate) fn available() -> bool {
    // SAFETY: PR_GET_SECCOMP takes no pointers; EINVAL means seccomp is not built in.
    unsafe { libc::prctl(libc::PR_GET_SECCOMP, 0, 0, 0, 0) >= 0 }
}

/// Installs `prog` on the calling thread. `no_new_privs` must already be set.
pub(crate) fn install(prog: &[sock_filter]) -> Result<(), String> {
    let fprog = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_ptr() as *mut sock_filter,
    };
    // SAFETY: `fprog` points at `prog`, which outlives the call; the kernel copies it.
    let r = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            0u32,
            &fprog as *const libc::sock_fprog,
        )
    };
    crate::sys::cvt_l(r)
        .map(|_| ())
        .map_err(|e| format!("seccomp: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `f` in a forked child with the filter installed; returns the child's exit code.
    fn in_filtered_child(deny_network: bool, f: fn() -> i32) -> i32 {
        in_child_with(
            FilterOpts {
                deny_network,
                ..FilterOpts::default()
            },
            f,
        )
    }

    fn in_child_with(opts: FilterOpts, f: fn() -> i32) -> i32 {
        let prog = build(opts).unwrap();
        // SAFETY: the child only makes raw syscalls and exits; no locks are taken.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            unsafe {
                libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
                if install(&prog).is_err() {
                    libc::_exit(99);
                }
                libc::_exit(f());
            }
        }
        let (status, _) = crate::sys::wait4(pid).unwrap();
        assert!(libc::WIFEXITED(status), "child died: {status:#x}");
        libc::WEXITSTATUS(status)
    }

    fn errno_of(r: libc::c_long) -> i32 {
        if r == -1 {
            std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
        } else {
            0
        }
    }

    #[test]
    fn denies_inet_sockets_but_not_unix() {
        let code = in_filtered_child(true, || unsafe {
            let inet = libc::syscall(libc::SYS_socket, libc::AF_INET, libc::SOCK_STREAM, 0);
            if errno_of(inet) != libc::EPERM {
                return 1;
            }
            let unix = libc::syscall(libc::SYS_socket, libc::AF_UNIX, libc::SOCK_STREAM, 0);
            if unix < 0 {
                return 2;
            }
            0
        });
        assert_eq!(code, 0);
    }

    #[test]
    fn allows_inet_with_network() {
        let code = in_filtered_child(false, || unsafe {
            let inet = libc::syscall(libc::SYS_socket, libc::AF_INET, libc::SOCK_DGRAM, 0);
            if inet < 0 { 1 } else { 0 }
        });
        assert_eq!(code, 0);
    }

    #[test]
    fn denies_ptrace_unshare_user_and_clone3() {
        let code = in_filtered_child(false, || unsafe {
            if errno_of(libc::syscall(
                libc::SYS_ptrace,
                libc::PTRACE_TRACEME,
                0,
                0,
                0,
            )) != libc::EPERM
            {
                return 1;
            }
            if errno_of(libc::syscall(libc::SYS_unshare, libc::CLONE_NEWUSER)) != libc::EPERM {
                return 2;
            }
            if errno_of(libc::syscall(libc::SYS_clone3, 0, 0)) != libc::ENOSYS {
                return 3;
            }
            // A plain fork (clone without namespace flags) still works.
            let pid = libc::fork();
            if pid == 0 {
                libc::_exit(0);
            }
            if pid < 0 {
                return 4;
            }
            let mut st = 0;
            libc::waitpid(pid, &mut st, 0);
            // x32 numbers are refused too.
            #[cfg(target_arch = "x86_64")]
            if errno_of(libc::syscall(0x4000_0000 | libc::SYS_getpid)) != libc::EPERM {
                return 5;
            }
            0
        });
        assert_eq!(code, 0);
    }

    /// connect(2) on a Unix socket to a path that does not exist: ENOENT when connect is
    /// allowed, EPERM when the filter refuses it. Exit code: 0 = ENOENT, 1 = EPERM, 2 = other.
    fn unix_connect_result() -> i32 {
        unsafe {
            let fd = libc::socket(libc::AF_UNIX, libc::SOCK_STREAM, 0);
            if fd < 0 {
                return 3;
            }
            let mut addr: libc::sockaddr_un = std::mem::zeroed();
            addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
            for (i, b) in b"/nonexistent/kernos-test.sock".iter().enumerate() {
                addr.sun_path[i] = *b as libc::c_char;
            }
            let r = libc::connect(
                fd,
                (&addr as *const libc::sockaddr_un).cast(),
                std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t,
            );
            match errno_of(r as libc::c_long) {
                libc::ENOENT => 0,
                libc::EPERM => 1,
                _ => 2,
            }
        }
    }

    #[test]
    fn unix_connect_opens_connect_but_not_other_sockets() {
        let no_net = FilterOpts {
            deny_network: true,
            ..FilterOpts::default()
        };
        assert_eq!(in_child_with(no_net, unix_connect_result), 1);
        let unix = FilterOpts {
            unix_connect: true,
            ..no_net
        };
        assert_eq!(in_child_with(unix, unix_connect_result), 0);
        let code = in_child_with(unix, || unsafe {
            let inet = libc::syscall(libc::SYS_socket, libc::AF_INET, libc::SOCK_STREAM, 0);
            let bind = libc::syscall(libc::SYS_bind, -1, 0, 0);
            let listen = libc::syscall(libc::SYS_listen, -1, 0);
            if errno_of(inet) != libc::EPERM {
                return 1;
            }
            if errno_of(bind) != libc::EPERM || errno_of(listen) != libc::EPERM {
                return 2;
            }
            0
        });
        assert_eq!(code, 0);
    }

    #[test]
    fn kill_all_is_refused_when_asked_and_other_kills_work() {
        let opts = FilterOpts {
            no_kill_all: true,
            ..FilterOpts::default()
        };
        // Signal 0 only checks permission, so even an unfiltered call would be harmless.
        let code = in_child_with(opts, || unsafe {
            if errno_of(libc::syscall(libc::SYS_kill, -1, 0) as libc::c_long) != libc::EPERM {
                return 1;
            }
            // The upper half of the argument is ignored by the kernel, and by the filter.
            if errno_of(libc::syscall(libc::SYS_kill, 0xdead_0000_ffff_ffffu64, 0)) != libc::EPERM {
                return 2;
            }
            if libc::syscall(libc::SYS_kill, libc::getpid(), 0) != 0 {
                return 3;
            }
            0
        });
        assert_eq!(code, 0);
        // Without the option kill(-1, 0) is not the filter's business.
        let code = in_filtered_child(false, || unsafe {
            if libc::syscall(libc::SYS_kill, -1, 0) == 0 {
                0
            } else {
                1
            }
        });
        assert_eq!(code, 0);
    }
}
