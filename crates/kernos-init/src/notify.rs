//! The readiness socket: services started with `notify = true` get `NOTIFY_SOCKET` and tell
//! PID 1 `READY=1` once they serve and `WATCHDOG=1` while they are alive — the protocol the
//! daemon already speaks to systemd (`sd_notify`), so the same binary is supervised the same
//! way on a host and on Kernos OS. The kernel stamps each datagram with its sender's pid
//! (SO_PASSCRED), so a message counts only for the process that sent it.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

/// A bound, non-blocking datagram socket.
pub struct NotifySocket {
    fd: OwnedFd,
    path: PathBuf,
}

/// One datagram: who sent it and its `KEY=value` lines.
#[derive(Debug, PartialEq, Eq)]
pub struct Message {
    /// The sender's pid as the kernel saw it (0 when it sent no credentials).
    pub pid: i32,
    /// The text.
    pub text: String,
}

impl Message {
    /// Whether a line `KEY=value` is present.
    pub fn has(&self, line: &str) -> bool {
        self.text.lines().any(|l| l == line)
    }
}

impl NotifySocket {
    /// Binds `path` (mode 0600: only root's processes may speak to PID 1).
    pub fn bind(path: &Path) -> Result<NotifySocket> {
        // SAFETY: socket(2) with constant arguments; the descriptor is owned below.
        let raw = unsafe {
            libc::socket(
                libc::AF_UNIX,
                libc::SOCK_DGRAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                0,
            )
        };
        if raw < 0 {
            bail!("socket(AF_UNIX): {}", std::io::Error::last_os_error());
        }
        // SAFETY: `raw` is a fresh descriptor nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let _ = std::fs::remove_file(path);
        // SAFETY: an all-zero sockaddr_un is valid; the path is copied within its bounds.
        let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
        addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
        let bytes = path.as_os_str().as_encoded_bytes();
        if bytes.len() >= addr.sun_path.len() {
            bail!("the notify socket path {} is too long", path.display());
        }
        for (d, s) in addr.sun_path.iter_mut().zip(bytes) {
            *d = *s as libc::c_char;
        }
        let len = std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
        // SAFETY: a valid address of the stated length.
        if unsafe { libc::bind(fd.as_raw_fd(), (&raw const addr).cast(), len) } != 0 {
            bail!(
                "bind {}: {}",
                path.display(),
                std::io::Error::last_os_error()
            );
        }
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        let one: libc::c_int = 1;
        // SAFETY: SO_PASSCRED with an int option of the right size.
        let rc = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_PASSCRED,
                (&raw const one).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            bail!("SO_PASSCRED: {}", std::io::Error::last_os_error());
        }
        Ok(NotifySocket {
            fd,
            path: path.to_owned(),
        })
    }

    /// Where it is bound (the value of `NOTIFY_SOCKET`).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The descriptor, for poll(2).
    pub fn raw_fd(&self) -> i32 {
        self.fd.as_raw_fd()
    }

    /// The next waiting datagram, if any.
    pub fn recv(&self) -> Option<Message> {
        let mut buf = [0u8; 4096];
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        // Room for one SCM_CREDENTIALS message, aligned as cmsg(3) requires.
        let mut control = [0u64; 8];
        // SAFETY: an all-zero msghdr is valid; its pointers are set to live buffers below.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &raw mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&control);
        // SAFETY: `msg` points at buffers that outlive the call.
        let n = unsafe { libc::recvmsg(self.fd.as_raw_fd(), &raw mut msg, libc::MSG_DONTWAIT) };
        if n < 0 {
            return None;
        }
        let mut pid = 0;
        // SAFETY: walking the control buffer the kernel filled, with the cmsg(3) macros.
        unsafe {
            let mut c = libc::CMSG_FIRSTHDR(&raw const msg);
            while !c.is_null() {
                if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_CREDENTIALS {
                    let cred: libc::ucred = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast());
                    pid = cred.pid;
                }
                c = libc::CMSG_NXTHDR(&raw const msg, c);
            }
        }
        Some(Message {
            pid,
            text: String::from_utf8_lossy(&buf[..n as usize]).into_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_datagram_arrives_with_its_senders_pid() {
        let dir = tempfile::tempdir().unwrap();
        let s = NotifySocket::bind(&dir.path().join("notify")).unwrap();
        assert!(s.recv().is_none(), "nothing sent yet");
        let c = std::os::unix::net::UnixDatagram::unbound().unwrap();
        c.send_to(b"READY=1\nSTATUS=serving", s.path()).unwrap();
        let m = s.recv().unwrap();
        assert_eq!(m.pid, std::process::id() as i32);
        assert!(m.has("READY=1"));
        assert!(!m.has("WATCHDOG=1"));
    }
}
