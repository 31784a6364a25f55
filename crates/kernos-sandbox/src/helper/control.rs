//! The helper's side of the control socket (fd 3): the request comes in on it, messages go
//! out on it, and a byte or end of file on it later means "stop". Termination signals are
//! turned into a descriptor too, so the supervision loop polls both.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use crate::protocol::{CONTROL_FD, HelperMessage};
use crate::sys;

/// One newline-terminated JSON message to the caller on the control socket.
pub(super) fn send(msg: &HelperMessage) {
    if let Ok(mut line) = serde_json::to_vec(msg) {
        line.push(b'\n');
        let _ = sys::write_all(CONTROL_FD, &line);
    }
}

/// Reads the length-prefixed request from the control socket. The socket then stays open:
/// a byte from the caller later means "cancel", and end of file means the caller is gone.
pub(super) fn read_request() -> Result<Vec<u8>, String> {
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

/// Whether `fd` is a socket (the helper refuses to run without its control socket).
pub(super) fn is_socket(fd: RawFd) -> bool {
    // SAFETY: stat is plain data; fstat only writes it.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: pointer to a local.
    unsafe { libc::fstat(fd, &mut st) == 0 && (st.st_mode & libc::S_IFMT) == libc::S_IFSOCK }
}

/// Blocks TERM/INT/HUP and returns a signalfd for them, so cancellation is just another
/// descriptor in the poll loop.
pub(super) fn signal_fd() -> io::Result<OwnedFd> {
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
