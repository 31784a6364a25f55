//! `net.resolve`: look a name up through the system resolver (getaddrinfo, so /etc/hosts,
//! nsswitch and systemd-resolved all answer as they do for every other program), or an address
//! back to its name.

use std::ffi::CStr;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::time::Duration;

use kernos_core::{ColumnKind, Effect, EffectKind, Reversibility};
use serde_json::json;

use super::{bare_host, host_effects};
use crate::args::NetResolve;
use crate::output::{Output, row};
use crate::registry::{Action, Meta};
use crate::undo::Recorder;
use crate::{Ctx, Result, ToolError};

/// How long a lookup may take before the answer is "the resolver does not respond".
const TIMEOUT: Duration = Duration::from_secs(10);

/// Addresses of `host`, each once, in the resolver's order of preference.
pub(crate) fn lookup(host: &str, ctx: &Ctx<'_>) -> Result<Vec<IpAddr>> {
    let (tx, rx) = std::sync::mpsc::channel();
    let h = host.to_owned();
    // getaddrinfo cannot be interrupted; a thread lets the step give up (and honour Ctrl-C)
    // while a slow resolver finishes in the background.
    std::thread::spawn(move || {
        let _ = tx.send((h.as_str(), 0u16).to_socket_addrs().map(|it| {
            let mut v: Vec<IpAddr> = Vec::new();
            for a in it.map(|a: SocketAddr| a.ip()) {
                if !v.contains(&a) {
                    v.push(a);
                }
            }
            v
        }));
    });
    let start = std::time::Instant::now();
    loop {
        ctx.check_cancel()?;
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(Ok(v)) if !v.is_empty() => return Ok(v),
            Ok(Ok(_)) => return Err(not_found(host, "no addresses")),
            Ok(Err(e)) => return Err(not_found(host, &e.to_string())),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) if start.elapsed() < TIMEOUT => {}
            Err(_) => {
                return Err(ToolError::Failed(format!(
                    "looking up {host} took more than {} s: the DNS resolver does not respond; \
                     check /etc/resolv.conf and the network",
                    TIMEOUT.as_secs()
                )));
            }
        }
    }
}

fn not_found(host: &str, why: &str) -> ToolError {
    ToolError::Failed(format!(
        "cannot resolve {host}: {why}; check the spelling, or whether this machine has DNS \
         (net.interfaces shows whether it is online)"
    ))
}

/// The name of an address (reverse lookup), if it has one.
fn reverse(ip: IpAddr) -> Option<String> {
    let sa: SocketAddr = (ip, 0).into();
    let (storage, len) = socket2_addr(&sa);
    let mut host = [0 as libc::c_char; 1025];
    // SAFETY: `storage` holds a valid sockaddr of `len` bytes; `host` is writable for its
    // length; the service buffer is null with length 0.
    let rc = unsafe {
        libc::getnameinfo(
            (&storage as *const libc::sockaddr_storage).cast(),
            len,
            host.as_mut_ptr(),
            host.len() as libc::socklen_t,
            std::ptr::null_mut(),
            0,
            libc::NI_NAMEREQD,
        )
    };
    if rc != 0 {
        return None;
    }
    // SAFETY: getnameinfo NUL-terminates the name within the buffer on success.
    Some(
        unsafe { CStr::from_ptr(host.as_ptr()) }
            .to_string_lossy()
            .into_owned(),
    )
}

/// A socket address as C's sockaddr_storage and its length.
pub(crate) fn socket2_addr(sa: &SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: an all-zero sockaddr_storage is valid.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match sa {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than sockaddr_in and suitably aligned.
            unsafe {
                std::ptr::write(
                    (&mut storage as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in>(),
                    sin,
                )
            };
            std::mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: sockaddr_storage is larger than sockaddr_in6 and suitably aligned.
            unsafe {
                std::ptr::write(
                    (&mut storage as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in6>(),
                    sin6,
                )
            };
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

/// `net.resolve`.
#[derive(Debug, Clone, Copy)]
pub struct Resolve;

impl Action for Resolve {
    type Args = NetResolve;

    fn meta(&self) -> Meta {
        Meta {
            tool: "net",
            name: "resolve",
            summary: "Look up a host name's IPv4 (A) and IPv6 (AAAA) addresses, or an address's name",
            effects: &[EffectKind::Read, EffectKind::Network],
            reversibility: Reversibility::ReadOnly,
            output: &[
                ("host", ColumnKind::Text),
                ("address", ColumnKind::Text),
                ("type", ColumnKind::Text),
            ],
        }
    }

    fn effects(&self, args: &NetResolve, _: &Ctx<'_>) -> Result<Vec<Effect>> {
        Ok(host_effects(&bare_host(&args.host)?, None, false))
    }

    fn execute(&self, args: &NetResolve, ctx: &Ctx<'_>, _: &mut Recorder<'_>) -> Result<Output> {
        let host = bare_host(&args.host)?;
        if let Ok(ip) = host.parse::<IpAddr>() {
            let name = reverse(ip);
            let summary = match &name {
                Some(n) => format!("{ip} is {n}"),
                None => format!("{ip} has no name (no reverse DNS entry)"),
            };
            let rows = name
                .iter()
                .map(|n| {
                    row([
                        ("host", json!(n)),
                        ("address", json!(ip.to_string())),
                        ("type", json!("PTR")),
                    ])
                })
                .collect();
            return Ok(Output::table(Vec::new(), rows).with_summary(summary));
        }
        let addrs = lookup(&host, ctx)?;
        let kind = |a: &IpAddr| if a.is_ipv4() { "A" } else { "AAAA" };
        let rows = addrs
            .iter()
            .map(|a| {
                row([
                    ("host", json!(host)),
                    ("address", json!(a.to_string())),
                    ("type", json!(kind(a))),
                ])
            })
            .collect();
        let list = |v4: bool| {
            addrs
                .iter()
                .filter(|a| a.is_ipv4() == v4)
                .map(IpAddr::to_string)
                .collect::<Vec<_>>()
        };
        let (a, aaaa) = (list(true), list(false));
        let mut parts = Vec::new();
        if !a.is_empty() {
            parts.push(format!("IPv4 {}", a.join(", ")));
        }
        if !aaaa.is_empty() {
            parts.push(format!("IPv6 {}", aaaa.join(", ")));
        }
        Ok(Output::table(Vec::new(), rows)
            .with_summary(format!("{host} resolves to {}", parts.join("; "))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reverse_of_loopback_and_sockaddr_layout() {
        // /etc/hosts names 127.0.0.1 on every normal system.
        assert!(reverse("127.0.0.1".parse().unwrap()).is_some());
        let (s, len) = socket2_addr(&"[::1]:80".parse().unwrap());
        assert_eq!(len as usize, std::mem::size_of::<libc::sockaddr_in6>());
        assert_eq!(i32::from(s.ss_family), libc::AF_INET6);
    }
}
