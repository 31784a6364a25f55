//! The fork server a runner keeps: one pristine helper process that forks a copy of itself
//! for every step.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use super::control::is_socket;
use super::{kernel, step};
use crate::protocol::CONTROL_FD;
use crate::sys;

/// Second argument that selects fork-server mode.
pub(crate) const SERVER_ARG: &str = "--server";

/// The fork server: a pristine single-threaded helper that, for each request (four descriptors:
/// the step's stdin, stdout, stderr and control socket), forks a copy of itself to run that
/// step. A fork of this tiny process costs ~0.1 ms where exec'ing a fresh helper costs ~1 ms,
/// and every step still starts from the same untouched state: the server itself never runs
/// step code. It exits when the library closes the socket (e.g. because the library died).
pub(super) fn serve() -> Result<(), String> {
    if !is_socket(CONTROL_FD) {
        return Err("no request socket on fd 3 (fork-server mode)".into());
    }
    // Steps are reaped automatically; each step resets this before it needs wait().
    // SAFETY: setting a signal disposition.
    unsafe { libc::signal(libc::SIGCHLD, libc::SIG_IGN) };
    let _ = kernel::probed();
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
            let code = match step::run_step(main_us) {
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
