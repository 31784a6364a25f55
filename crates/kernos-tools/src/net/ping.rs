//! `net.ping`: ICMP echo from this process.
//!
//! Why not the `ping` binary through the sandbox: the sandboxed child gets `no_new_privs`, so
//! ping's file capability (cap_net_raw) does not apply, and it runs in its own network
//! namespace. It can then only use an unprivileged ICMP datagram socket, which the kernel allows
//! just for groups in `net.ipv4.ping_group_range` (on many machines, including Debian's
//! default, for nobody). In this process the same datagram socket is tried first, then a raw
//! socket where Kernos holds CAP_NET_RAW (as root), and when neither is allowed the error says
//! exactly which setting to change.

use std::collections::BTreeMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use kernos_core::{ColumnKind, Effect, EffectKind, Reversibility};
use serde_json::{Value, json};

use super::resolve::{lookup, socket2_addr};
use super::{bare_host, host_effects};
use crate::args::NetPing;
use crate::output::{Output, row};
use crate::registry::{Action, Meta};
use crate::undo::Recorder;
use crate::{Ctx, Result, ToolError};

/// Time between echo requests, as ping(8) sends them.
const INTERVAL: Duration = Duration::from_secs(1);
/// How long to wait for late replies after the last request.
const LINGER: Duration = Duration::from_secs(1);
/// Payload size: ping(8)'s default, 64 bytes with the ICMP header.
const PAYLOAD: usize = 56;
const MAX_COUNT: u32 = 100;

/// Which kind of ICMP socket is in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Unprivileged ping socket: the kernel owns the identifier and filters replies.
    Dgram,
    /// Raw socket (CAP_NET_RAW): sees every ICMP packet; IPv4 ones include the IP header.
    Raw,
}

/// The Internet checksum (RFC 1071).
pub(crate) fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for c in data.chunks(2) {
        let word = u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]);
        sum = sum.wrapping_add(u32::from(word));
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An echo request.
pub(crate) fn echo_request(v6: bool, ident: u16, seq: u16) -> Vec<u8> {
    let mut p = vec![0u8; 8 + PAYLOAD];
    p[0] = if v6 { 128 } else { 8 };
    p[4..6].copy_from_slice(&ident.to_be_bytes());
    p[6..8].copy_from_slice(&seq.to_be_bytes());
    for (i, b) in p[8..].iter_mut().enumerate() {
        *b = (i as u8).wrapping_add(0x10);
    }
    // The kernel fills in the ICMPv6 checksum itself (it covers a pseudo-header we lack).
    if !v6 {
        let c = checksum(&p);
        p[2..4].copy_from_slice(&c.to_be_bytes());
    }
    p
}

/// What an incoming ICMP message means for us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Incoming {
    /// An echo reply with this sequence number (and identifier, when the socket is raw).
    Reply { ident: u16, seq: u16 },
    /// An error (unreachable, time exceeded) about our request with this id and sequence.
    Error {
        ident: u16,
        seq: u16,
        kind: &'static str,
    },
    /// Someone else's traffic.
    Other,
}

/// Classifies an ICMP message (starting at the ICMP header).
pub(crate) fn classify(v6: bool, icmp: &[u8]) -> Incoming {
    if icmp.len() < 8 {
        return Incoming::Other;
    }
    let id_seq = |b: &[u8]| -> Option<(u16, u16)> {
        Some((
            u16::from_be_bytes([*b.get(4)?, *b.get(5)?]),
            u16::from_be_bytes([*b.get(6)?, *b.get(7)?]),
        ))
    };
    let (reply, unreach, exceeded, request) = if v6 { (129, 1, 3, 128) } else { (0, 3, 11, 8) };
    let t = icmp[0];
    if t == reply {
        let (ident, seq) = id_seq(icmp).unwrap_or((0, 0));
        return Incoming::Reply { ident, seq };
    }
    if t == unreach || t == exceeded {
        // The error quotes the IP header of our request, then its first 8 ICMP bytes.
        let inner = &icmp[8..];
        let hdr = if v6 {
            40
        } else {
            usize::from(inner.first().copied().unwrap_or(0) & 0x0f) * 4
        };
        let Some(orig) = inner.get(hdr..) else {
            return Incoming::Other;
        };
        if orig.first() != Some(&request) {
            return Incoming::Other;
        }
        if let Some((ident, seq)) = id_seq(orig) {
            let kind = if t == exceeded {
                "time exceeded"
            } else {
                "unreachable"
            };
            return Incoming::Error { ident, seq, kind };
        }
    }
    Incoming::Other
}

/// A received ICMP message: who sent it, its ICMP bytes, and its TTL / hop limit.
struct Packet {
    src: IpAddr,
    icmp: Vec<u8>,
    ttl: Option<u8>,
}

struct Pinger {
    fd: OwnedFd,
    mode: Mode,
    v6: bool,
    ident: u16,
    dest: SocketAddr,
}

fn open(ip: IpAddr) -> io::Result<Pinger> {
    let v6 = ip.is_ipv6();
    let (domain, proto) = if v6 {
        (libc::AF_INET6, libc::IPPROTO_ICMPV6)
    } else {
        (libc::AF_INET, libc::IPPROTO_ICMP)
    };
    let try_open = |ty: libc::c_int| -> io::Result<OwnedFd> {
        // SAFETY: socket has no memory preconditions; a non-negative result is a new fd we own.
        let fd = unsafe { libc::socket(domain, ty | libc::SOCK_CLOEXEC, proto) };
        if fd < 0 {
            Err(io::Error::last_os_error())
        } else {
            // SAFETY: `fd` was just returned by socket and is owned by nobody else.
            Ok(unsafe { OwnedFd::from_raw_fd(fd) })
        }
    };
    let (fd, mode) = match try_open(libc::SOCK_DGRAM) {
        Ok(fd) => (fd, Mode::Dgram),
        Err(dgram) => match try_open(libc::SOCK_RAW) {
            Ok(fd) => (fd, Mode::Raw),
            Err(raw) => {
                return Err(io::Error::new(
                    raw.kind(),
                    format!("datagram socket: {dgram}; raw socket: {raw}"),
                ));
            }
        },
    };
    let one: libc::c_int = 1;
    let (level, opt) = if v6 {
        (libc::IPPROTO_IPV6, libc::IPV6_RECVHOPLIMIT)
    } else {
        (libc::IPPROTO_IP, libc::IP_RECVTTL)
    };
    // SAFETY: `one` is a valid c_int for the option's length. Failure only loses the TTL.
    unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            opt,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    // A per-request identifier so a raw socket can tell our replies from other pings'.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let ident = (std::process::id() ^ nanos ^ (nanos >> 16)) as u16;
    Ok(Pinger {
        fd,
        mode,
        v6,
        ident,
        dest: SocketAddr::new(ip, 0),
    })
}

impl Pinger {
    fn send(&self, seq: u16) -> io::Result<()> {
        let pkt = echo_request(self.v6, self.ident, seq);
        let (sa, len) = socket2_addr(&self.dest);
        // SAFETY: `pkt` and `sa` are valid for the lengths passed.
        let n = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                pkt.as_ptr().cast(),
                pkt.len(),
                0,
                (&sa as *const libc::sockaddr_storage).cast(),
                len,
            )
        };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }

    /// Waits up to `timeout` for one packet: its source, ICMP bytes and TTL / hop limit.
    fn recv(&self, timeout: Duration) -> io::Result<Option<Packet>> {
        let mut pfd = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let r = unsafe { libc::poll(&mut pfd, 1, timeout.as_millis().min(60_000) as libc::c_int) };
        if r < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::Interrupted {
                Ok(None)
            } else {
                Err(e)
            };
        }
        if r == 0 {
            return Ok(None);
        }
        let mut buf = [0u8; 2048];
        let mut ctrl = [0u64; 32];
        // SAFETY: all-zero sockaddr_storage and msghdr are valid; fields are set below.
        let mut from: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        // SAFETY: see above.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_name = (&mut from as *mut libc::sockaddr_storage).cast();
        msg.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = ctrl.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&ctrl) as _;
        // SAFETY: `msg` points at buffers that live through the call.
        let n = unsafe { libc::recvmsg(self.fd.as_raw_fd(), &mut msg, libc::MSG_DONTWAIT) };
        if n < 0 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(None),
                _ => Err(e),
            };
        }
        let data = &buf[..n as usize];
        let mut ttl = None;
        // SAFETY: CMSG_* walk the control buffer recvmsg filled, within msg_controllen.
        unsafe {
            let mut c = libc::CMSG_FIRSTHDR(&msg);
            while !c.is_null() {
                let h = &*c;
                let is_ttl = (h.cmsg_level == libc::IPPROTO_IP && h.cmsg_type == libc::IP_TTL)
                    || (h.cmsg_level == libc::IPPROTO_IPV6 && h.cmsg_type == libc::IPV6_HOPLIMIT);
                if is_ttl {
                    let v = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<libc::c_int>());
                    ttl = u8::try_from(v).ok();
                }
                c = libc::CMSG_NXTHDR(&msg, c);
            }
        }
        let src = match i32::from(from.ss_family) {
            libc::AF_INET => {
                // SAFETY: the family says the storage holds a sockaddr_in.
                let a = unsafe {
                    &*(&from as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>()
                };
                IpAddr::from(a.sin_addr.s_addr.to_ne_bytes())
            }
            libc::AF_INET6 => {
                // SAFETY: the family says the storage holds a sockaddr_in6.
                let a = unsafe {
                    &*(&from as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>()
                };
                IpAddr::from(a.sin6_addr.s6_addr)
            }
            _ => return Ok(None),
        };
        // Raw IPv4 sockets deliver the IP header too.
        let icmp = if self.mode == Mode::Raw && !self.v6 {
            let ihl = usize::from(data.first().copied().unwrap_or(0) & 0x0f) * 4;
            if ttl.is_none() {
                ttl = data.get(8).copied();
            }
            data.get(ihl..).unwrap_or(&[]).to_vec()
        } else {
            data.to_vec()
        };
        Ok(Some(Packet { src, icmp, ttl }))
    }
}

/// What became of one echo request.
#[derive(Debug, Clone, PartialEq)]
enum Fate {
    Reply { rtt: Duration, ttl: Option<u8> },
    Error(&'static str, IpAddr),
}

fn ping(ip: IpAddr, count: u32, ctx: &Ctx<'_>) -> Result<(BTreeMap<u16, Fate>, Mode)> {
    let p = open(ip).map_err(|e| {
        let denied = matches!(e.kind(), io::ErrorKind::PermissionDenied)
            || matches!(e.raw_os_error(), Some(libc::EPERM | libc::EACCES));
        if denied {
            ToolError::Unavailable(format!(
                "this user may not send ICMP echo requests ({e}). Allow unprivileged ping with \
                 `sysctl -w net.ipv4.ping_group_range=\"0 2147483647\"` (persist it in \
                 /etc/sysctl.d/), or run Kernos as root"
            ))
        } else {
            ToolError::Failed(format!("cannot open an ICMP socket: {e}"))
        }
    })?;
    let mut sent: BTreeMap<u16, Instant> = BTreeMap::new();
    let mut fates: BTreeMap<u16, Fate> = BTreeMap::new();
    for i in 0..count {
        let seq = (i + 1) as u16;
        let now = Instant::now();
        match p.send(seq) {
            Ok(()) => {
                sent.insert(seq, now);
            }
            Err(e) if e.raw_os_error() == Some(libc::ENETUNREACH) => {
                return Err(ToolError::Failed(format!(
                    "network unreachable: no route to {ip}; net.interfaces shows whether this \
                     machine is online"
                )));
            }
            Err(e) => return Err(ToolError::Failed(format!("sending to {ip} failed: {e}"))),
        }
        let last = i + 1 == count;
        let until = now + if last { LINGER } else { INTERVAL };
        loop {
            ctx.check_cancel()?;
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() || (last && fates.len() == sent.len()) {
                break;
            }
            let Some(Packet { src, icmp, ttl }) = p
                .recv(left.min(Duration::from_millis(100)))
                .map_err(|e| ToolError::Failed(format!("receiving from {ip} failed: {e}")))?
            else {
                continue;
            };
            let arrived = Instant::now();
            let ours = |ident: u16| p.mode == Mode::Dgram || ident == p.ident;
            match classify(p.v6, &icmp) {
                Incoming::Reply { ident, seq } if ours(ident) && src == ip => {
                    if let Some(t) = sent.get(&seq) {
                        fates.entry(seq).or_insert(Fate::Reply {
                            rtt: arrived - *t,
                            ttl,
                        });
                    }
                }
                Incoming::Error { ident, seq, kind } if ours(ident) && sent.contains_key(&seq) => {
                    fates.entry(seq).or_insert(Fate::Error(kind, src));
                }
                _ => {}
            }
        }
    }
    Ok((fates, p.mode))
}

/// `net.ping`.
#[derive(Debug, Clone, Copy)]
pub struct Ping;

impl Action for Ping {
    type Args = NetPing;

    fn meta(&self) -> Meta {
        Meta {
            tool: "net",
            name: "ping",
            summary: "Check whether a host answers ICMP echo: packet loss and round-trip times",
            effects: &[EffectKind::Read, EffectKind::Network],
            reversibility: Reversibility::ReadOnly,
            output: &[
                ("host", ColumnKind::Text),
                ("address", ColumnKind::Text),
                ("sent", ColumnKind::Int),
                ("received", ColumnKind::Int),
                ("loss_percent", ColumnKind::Percent),
                ("rtt_min_ms", ColumnKind::Float),
                ("rtt_avg_ms", ColumnKind::Float),
                ("rtt_max_ms", ColumnKind::Float),
                ("reachable", ColumnKind::Bool),
            ],
        }
    }

    fn effects(&self, args: &NetPing, _: &Ctx<'_>) -> Result<Vec<Effect>> {
        check_count(args.count)?;
        Ok(host_effects(&bare_host(&args.host)?, None, false))
    }

    fn execute(&self, args: &NetPing, ctx: &Ctx<'_>, _: &mut Recorder<'_>) -> Result<Output> {
        check_count(args.count)?;
        let host = bare_host(&args.host)?;
        let ip = match host.parse::<IpAddr>() {
            Ok(ip) => ip,
            Err(_) => lookup(&host, ctx)?[0],
        };
        let (fates, mode) = ping(ip, args.count, ctx)?;
        let rtts: Vec<f64> = fates
            .values()
            .filter_map(|f| match f {
                Fate::Reply { rtt, .. } => Some(rtt.as_secs_f64() * 1000.0),
                Fate::Error(..) => None,
            })
            .collect();
        let received = rtts.len() as u32;
        let round = |v: f64| (v * 1000.0).round() / 1000.0;
        let stat = |f: fn(&[f64]) -> f64| {
            if rtts.is_empty() {
                Value::Null
            } else {
                json!(round(f(&rtts)))
            }
        };
        let loss = crate::sys::pct(u64::from(args.count - received), u64::from(args.count));
        let mut text = format!(
            "PING {host} ({ip}) {PAYLOAD} bytes of data, {} ICMP socket\n",
            if mode == Mode::Dgram {
                "datagram"
            } else {
                "raw"
            }
        );
        for seq in 1..=args.count as u16 {
            text.push_str(&match fates.get(&seq) {
                Some(Fate::Reply { rtt, ttl }) => format!(
                    "reply from {ip}: seq={seq}{} time={:.3} ms\n",
                    ttl.map(|t| format!(" ttl={t}")).unwrap_or_default(),
                    rtt.as_secs_f64() * 1000.0
                ),
                Some(Fate::Error(kind, from)) => format!("from {from}: seq={seq} {kind}\n"),
                None => format!("seq={seq}: no reply\n"),
            });
        }
        let errors: Vec<&str> = fates
            .values()
            .filter_map(|f| match f {
                Fate::Error(k, _) => Some(*k),
                Fate::Reply { .. } => None,
            })
            .collect();
        let summary = if received > 0 {
            format!(
                "{host} ({ip}) is reachable: {received}/{} replies, {loss}% loss, rtt min/avg/max \
                 {:.3}/{:.3}/{:.3} ms",
                args.count,
                min(&rtts),
                avg(&rtts),
                max(&rtts)
            )
        } else if let Some(k) = errors.first() {
            format!("{host} ({ip}) is not reachable: {k}")
        } else {
            format!(
                "{host} ({ip}) did not answer {} echo request{} (100% loss): it is down, or \
                 ICMP is filtered on the way",
                args.count,
                if args.count == 1 { "" } else { "s" }
            )
        };
        let mut out = Output::table(
            Vec::new(),
            vec![row([
                ("host", json!(host)),
                ("address", json!(ip.to_string())),
                ("sent", json!(args.count)),
                ("received", json!(received)),
                ("loss_percent", json!(loss)),
                ("rtt_min_ms", stat(min)),
                ("rtt_avg_ms", stat(avg)),
                ("rtt_max_ms", stat(max)),
                ("reachable", json!(received > 0)),
            ])],
        )
        .with_summary(summary);
        out.text = Some(text);
        Ok(out)
    }
}

fn min(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::INFINITY, f64::min)
}

fn max(v: &[f64]) -> f64 {
    v.iter().copied().fold(0.0, f64::max)
}

fn avg(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

fn check_count(n: u32) -> Result<()> {
    if n == 0 || n > MAX_COUNT {
        return Err(ToolError::InvalidArgs(format!(
            "count must be between 1 and {MAX_COUNT}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_of_a_known_packet() {
        // Echo request id 0x1234 seq 1, no payload: checksum 0xE5CA.
        let mut p = vec![8, 0, 0, 0, 0x12, 0x34, 0, 1];
        assert_eq!(checksum(&p), 0xE5CA);
        p[2..4].copy_from_slice(&0xE5CAu16.to_be_bytes());
        // A packet with its checksum in place sums to zero.
        assert_eq!(checksum(&p), 0);
        let full = echo_request(false, 7, 3);
        assert_eq!(full.len(), 64);
        assert_eq!(checksum(&full), 0);
    }

    #[test]
    fn classifies_replies_and_errors() {
        let reply = [0u8, 0, 0, 0, 0x12, 0x34, 0, 9];
        assert_eq!(
            classify(false, &reply),
            Incoming::Reply {
                ident: 0x1234,
                seq: 9
            }
        );
        // Destination unreachable quoting a 20-byte IP header and our echo request.
        let mut err = vec![3u8, 1, 0, 0, 0, 0, 0, 0];
        let mut ip = vec![0x45u8];
        ip.resize(20, 0);
        err.extend(ip);
        err.extend([8u8, 0, 0, 0, 0x12, 0x34, 0, 2]);
        assert_eq!(
            classify(false, &err),
            Incoming::Error {
                ident: 0x1234,
                seq: 2,
                kind: "unreachable"
            }
        );
        // Our own request seen on a raw socket over loopback is not a reply.
        assert_eq!(classify(false, &echo_request(false, 1, 1)), Incoming::Other);
        let v6 = [129u8, 0, 0, 0, 0, 5, 0, 1];
        assert_eq!(classify(true, &v6), Incoming::Reply { ident: 5, seq: 1 });
    }
}
