//! systemd's service notifications (`sd_notify(3)`): `READY=1` once the API answers, `WATCHDOG=1`
//! pings, `RELOADING=1`/`STOPPING=1`, `STATUS=` lines.
//!
//! A few lines over a Unix datagram socket rather than the `sd-notify` crate on purpose: the
//! protocol is one datagram of `KEY=value` lines to the path (or abstract name, `@…`) in
//! `$NOTIFY_SOCKET`, std has the socket, and owning the code lets the daemon take the variables
//! once at start and clear them, so the programs its steps run never inherit them and never
//! speak for the daemon.

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

/// Where notifications go; `None` when not started by systemd with `Type=notify`.
#[derive(Debug)]
pub struct Notify {
    socket: UnixDatagram,
    addr: std::os::unix::net::SocketAddr,
    watchdog: Option<Duration>,
}

impl Notify {
    /// Takes `$NOTIFY_SOCKET` and `$WATCHDOG_USEC` (for this process: `$WATCHDOG_PID`, when
    /// set, must be ours) from the environment; `None` when there is no socket to notify.
    pub fn from_env() -> Option<Notify> {
        let path = std::env::var_os("NOTIFY_SOCKET")?;
        let watchdog = std::env::var("WATCHDOG_USEC")
            .ok()
            .and_then(|u| u.parse::<u64>().ok())
            .filter(|u| *u > 0)
            .filter(|_| {
                std::env::var("WATCHDOG_PID")
                    .ok()
                    .and_then(|p| p.parse::<u32>().ok())
                    .is_none_or(|p| p == std::process::id())
            })
            .map(Duration::from_micros);
        let addr = socket_addr(path.as_encoded_bytes())?;
        let socket = UnixDatagram::unbound().ok()?;
        Some(Notify {
            socket,
            addr,
            watchdog,
        })
    }

    /// Sends `state` (`KEY=value` lines). Failures are logged, never fatal: the service
    /// manager going away must not stop the daemon.
    pub fn send(&self, state: &str) {
        if let Err(e) = self.socket.send_to_addr(state.as_bytes(), &self.addr) {
            tracing::warn!("cannot notify the service manager ({state:?}): {e}");
        }
    }

    /// How often to ping the watchdog: half of `WatchdogSec=`, as sd_watchdog_enabled(3) says.
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.watchdog.map(|w| w / 2)
    }
}

/// `$NOTIFY_SOCKET` as an address: a path, or `@name` for an abstract socket.
fn socket_addr(raw: &[u8]) -> Option<std::os::unix::net::SocketAddr> {
    use std::os::linux::net::SocketAddrExt;
    match raw {
        [] => None,
        [b'@', name @ ..] => std::os::unix::net::SocketAddr::from_abstract_name(name).ok(),
        _ => {
            use std::os::unix::ffi::OsStrExt;
            std::os::unix::net::SocketAddr::from_pathname(std::ffi::OsStr::from_bytes(raw)).ok()
        }
    }
}

/// The monotonic clock in microseconds, as `RELOADING=1` wants it in `MONOTONIC_USEC=`.
pub fn monotonic_usec() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64) * 1_000_000 + (ts.tv_nsec as u64) / 1000
}

/// Forgets the notification variables so processes the daemon starts do not inherit them.
pub fn clear_env() {
    // SAFETY: called once at start, before the daemon starts threads of its own.
    unsafe {
        std::env::remove_var("NOTIFY_SOCKET");
        std::env::remove_var("WATCHDOG_USEC");
        std::env::remove_var("WATCHDOG_PID");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_paths_or_abstract_names() {
        assert!(socket_addr(b"").is_none());
        let a = socket_addr(b"/run/systemd/notify").unwrap();
        assert_eq!(
            a.as_pathname(),
            Some(std::path::Path::new("/run/systemd/notify"))
        );
        use std::os::linux::net::SocketAddrExt;
        let a = socket_addr(b"@kernos-test").unwrap();
        assert_eq!(a.as_abstract_name(), Some(&b"kernos-test"[..]));
    }

    #[test]
    fn a_datagram_reaches_the_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let rx = UnixDatagram::bind(&path).unwrap();
        let n = Notify {
            socket: UnixDatagram::unbound().unwrap(),
            addr: socket_addr(path.as_os_str().as_encoded_bytes()).unwrap(),
            watchdog: Some(Duration::from_secs(4)),
        };
        n.send("READY=1\nSTATUS=ok");
        let mut buf = [0u8; 64];
        let len = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"READY=1\nSTATUS=ok");
        assert_eq!(n.watchdog_interval(), Some(Duration::from_secs(2)));
    }
}
