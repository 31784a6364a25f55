//! `net.ports` and `net.connections`: sockets from /proc/net/{tcp,tcp6,udp,udp6}, each mapped
//! to the process holding it through the socket inodes in /proc/<pid>/fd.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use kernos_core::{ColumnKind, Effect, EffectKind, Reversibility};
use serde_json::{Map, Value, json};

use crate::args::{NetConnections, NetPorts};
use crate::output::{Output, row};
use crate::proc::procfs;
use crate::registry::{Action, Meta};
use crate::sys::account::Names;
use crate::sys::system_read;
use crate::undo::Recorder;
use crate::{Ctx, Result, ToolError};

/// TCP states in the kernel's numbering (include/net/tcp_states.h).
const TCP_STATES: &[(u8, &str)] = &[
    (0x01, "established"),
    (0x02, "syn_sent"),
    (0x03, "syn_recv"),
    (0x04, "fin_wait1"),
    (0x05, "fin_wait2"),
    (0x06, "time_wait"),
    (0x07, "close"),
    (0x08, "close_wait"),
    (0x09, "last_ack"),
    (0x0A, "listen"),
    (0x0B, "closing"),
];

const LISTEN: u8 = 0x0A;
const CLOSE: u8 = 0x07;
const ESTABLISHED: u8 = 0x01;

/// One socket line of /proc/net/*.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Socket {
    pub proto: &'static str,
    pub local: IpAddr,
    pub local_port: u16,
    pub remote: IpAddr,
    pub remote_port: u16,
    pub state: u8,
    pub uid: u32,
    pub inode: u64,
}

/// Decodes the kernel's hex address: 32-bit words printed in host byte order.
fn parse_addr(hex: &str) -> Option<(IpAddr, u16)> {
    let (a, p) = hex.split_once(':')?;
    let port = u16::from_str_radix(p, 16).ok()?;
    let word = |i: usize| -> Option<[u8; 4]> {
        Some(
            u32::from_str_radix(a.get(i * 8..i * 8 + 8)?, 16)
                .ok()?
                .to_ne_bytes(),
        )
    };
    let ip = match a.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(0)?)),
        32 => {
            let mut b = [0u8; 16];
            for i in 0..4 {
                b[i * 4..i * 4 + 4].copy_from_slice(&word(i)?);
            }
            IpAddr::V6(Ipv6Addr::from(b))
        }
        _ => return None,
    };
    Some((ip, port))
}

/// Parses one /proc/net/{tcp,udp}[6] table.
pub(crate) fn parse_table(proto: &'static str, s: &str) -> Vec<Socket> {
    s.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (local, local_port) = parse_addr(f.get(1)?)?;
            let (remote, remote_port) = parse_addr(f.get(2)?)?;
            Some(Socket {
                proto,
                local,
                local_port,
                remote,
                remote_port,
                state: u8::from_str_radix(f.get(3)?, 16).ok()?,
                uid: f.get(7)?.parse().ok()?,
                inode: f.get(9)?.parse().ok()?,
            })
        })
        .collect()
}

/// Every TCP and UDP socket of this network namespace.
fn all_sockets() -> Vec<Socket> {
    let mut v = Vec::new();
    for (proto, file) in [
        ("tcp", "/proc/net/tcp"),
        ("tcp6", "/proc/net/tcp6"),
        ("udp", "/proc/net/udp"),
        ("udp6", "/proc/net/udp6"),
    ] {
        // A kernel without IPv6 has no tcp6/udp6 files; that is not an error.
        if let Ok(s) = std::fs::read_to_string(file) {
            v.extend(parse_table(proto, &s));
        }
    }
    v
}

impl Socket {
    /// Listening: a TCP socket in LISTEN, or a bound UDP socket with no peer.
    pub(crate) fn listening(&self) -> bool {
        if self.proto.starts_with("tcp") {
            self.state == LISTEN
        } else {
            self.state == CLOSE && self.remote_port == 0
        }
    }

    /// A connection: a TCP socket past listening, or a UDP socket with a fixed peer.
    pub(crate) fn is_connection(&self) -> bool {
        if self.proto.starts_with("tcp") {
            self.state != LISTEN
        } else {
            self.state == ESTABLISHED
        }
    }

    pub(crate) fn state_name(&self) -> &'static str {
        if self.proto.starts_with("udp") {
            return if self.state == ESTABLISHED {
                "established"
            } else {
                "unconnected"
            };
        }
        TCP_STATES
            .iter()
            .find(|(n, _)| *n == self.state)
            .map(|(_, s)| *s)
            .unwrap_or("unknown")
    }
}

/// Who holds each socket: pid and process name.
struct Owners {
    by_inode: HashMap<u64, u32>,
    hidden: usize,
    procs: HashMap<u32, String>,
    users: Names,
}

impl Owners {
    fn load() -> Self {
        let (by_inode, hidden) = procfs::socket_owners();
        Owners {
            by_inode,
            hidden,
            procs: HashMap::new(),
            users: Names::default(),
        }
    }

    fn pid(&self, s: &Socket) -> Option<u32> {
        self.by_inode.get(&s.inode).copied()
    }

    fn name(&mut self, pid: u32) -> Option<String> {
        if let Some(n) = self.procs.get(&pid) {
            return Some(n.clone());
        }
        let n = procfs::read(pid)?.name;
        self.procs.insert(pid, n.clone());
        Some(n)
    }

    /// A note for the summary when some owners could not be seen.
    fn hidden_note(&self, unknown: usize) -> String {
        if unknown > 0 && self.hidden > 0 {
            // SAFETY: geteuid has no preconditions.
            let why = if unsafe { libc::geteuid() } == 0 {
                "the kernel does not let even root read some processes' descriptors"
            } else {
                "it belongs to another user: run as root to see it"
            };
            format!(
                "; the process behind {unknown} socket{} is hidden ({why})",
                if unknown == 1 { "" } else { "s" }
            )
        } else {
            String::new()
        }
    }
}

fn proto_name(p: &str) -> &'static str {
    if p.starts_with("tcp") { "tcp" } else { "udp" }
}

fn owner_cols(o: &mut Owners, s: &Socket) -> [(&'static str, Value); 3] {
    let pid = o.pid(s);
    let name = pid.and_then(|p| o.name(p));
    [
        ("pid", pid.map(|p| json!(p)).unwrap_or(Value::Null)),
        ("process", name.map(|n| json!(n)).unwrap_or(Value::Null)),
        ("user", json!(o.users.get(s.uid))),
    ]
}

fn with(mut base: Map<String, Value>, extra: [(&'static str, Value); 3]) -> Map<String, Value> {
    for (k, v) in extra {
        base.insert(k.to_owned(), v);
    }
    base
}

/// `net.ports`.
#[derive(Debug, Clone, Copy)]
pub struct Ports;

impl Action for Ports {
    type Args = NetPorts;

    fn meta(&self) -> Meta {
        Meta {
            tool: "net",
            name: "ports",
            summary: "Listening TCP and UDP ports and the processes behind them",
            effects: &[EffectKind::Read],
            reversibility: Reversibility::ReadOnly,
            output: &[
                ("protocol", ColumnKind::Text),
                ("address", ColumnKind::Text),
                ("port", ColumnKind::Int),
                ("pid", ColumnKind::Pid),
                ("process", ColumnKind::Text),
                ("user", ColumnKind::Text),
            ],
        }
    }

    fn effects(&self, _: &NetPorts, _: &Ctx<'_>) -> Result<Vec<Effect>> {
        Ok(system_read())
    }

    fn execute(&self, args: &NetPorts, _: &Ctx<'_>, _: &mut Recorder<'_>) -> Result<Output> {
        let mut list: Vec<Socket> = all_sockets()
            .into_iter()
            .filter(|s| s.listening() && args.port.is_none_or(|p| s.local_port == p))
            .collect();
        list.sort_by(|a, b| {
            (a.local_port, proto_name(a.proto), a.proto, a.local).cmp(&(
                b.local_port,
                proto_name(b.proto),
                b.proto,
                b.local,
            ))
        });
        let mut owners = Owners::load();
        let mut unknown = 0;
        let mut rows = Vec::new();
        let mut who: Vec<String> = Vec::new();
        for s in &list {
            let cols = owner_cols(&mut owners, s);
            if cols[0].1.is_null() {
                unknown += 1;
            }
            let desc = match (&cols[1].1, &cols[0].1) {
                (Value::String(n), Value::Number(p)) => format!("{n} (pid {p})"),
                _ => "an unknown process".to_owned(),
            };
            let line = format!("{} {} by {desc}", proto_name(s.proto), s.local_port);
            if !who.contains(&line) {
                who.push(line);
            }
            rows.push(with(
                row([
                    ("protocol", json!(proto_name(s.proto))),
                    ("address", json!(s.local.to_string())),
                    ("port", json!(s.local_port)),
                ]),
                cols,
            ));
        }
        let mut summary = match (args.port, list.is_empty()) {
            (Some(p), true) => format!("nothing is listening on port {p}"),
            (Some(p), false) => format!("port {p}: {}", who.join("; ")),
            (None, true) => "no listening sockets".to_owned(),
            (None, false) => {
                let mut ports: Vec<u16> = list.iter().map(|s| s.local_port).collect();
                ports.dedup();
                format!(
                    "{} listening socket{} on {} port{}",
                    list.len(),
                    if list.len() == 1 { "" } else { "s" },
                    ports.len(),
                    if ports.len() == 1 { "" } else { "s" }
                )
            }
        };
        summary.push_str(&owners.hidden_note(unknown));
        Ok(Output::table(Vec::new(), rows).with_summary(summary))
    }
}

/// Accepts `established`, `ESTABLISHED`, `time-wait`, `TIME_WAIT`, `fin-wait-1`.
fn parse_state(s: &str) -> Result<&'static str> {
    let norm: String = s
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            '-' | ' ' | '_' => None,
            c => Some(c),
        })
        .collect();
    let extra = [("unconnected", "unconnected")];
    TCP_STATES
        .iter()
        .map(|(_, n)| (*n, *n))
        .chain(extra)
        .find(|(n, _)| n.replace('_', "") == norm)
        .map(|(_, n)| n)
        .ok_or_else(|| {
            ToolError::InvalidArgs(format!(
                "unknown connection state {s:?}; use one of: {}",
                TCP_STATES
                    .iter()
                    .map(|(_, n)| *n)
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })
}

/// `net.connections`.
#[derive(Debug, Clone, Copy)]
pub struct Connections;

impl Action for Connections {
    type Args = NetConnections;

    fn meta(&self) -> Meta {
        Meta {
            tool: "net",
            name: "connections",
            summary: "Open network connections (not listening sockets), optionally in one state",
            effects: &[EffectKind::Read],
            reversibility: Reversibility::ReadOnly,
            output: &[
                ("protocol", ColumnKind::Text),
                ("local_address", ColumnKind::Text),
                ("local_port", ColumnKind::Int),
                ("remote_address", ColumnKind::Text),
                ("remote_port", ColumnKind::Int),
                ("state", ColumnKind::Text),
                ("pid", ColumnKind::Pid),
                ("process", ColumnKind::Text),
                ("user", ColumnKind::Text),
            ],
        }
    }

    fn effects(&self, args: &NetConnections, _: &Ctx<'_>) -> Result<Vec<Effect>> {
        if let Some(s) = &args.state {
            parse_state(s)?;
        }
        Ok(system_read())
    }

    fn execute(&self, args: &NetConnections, _: &Ctx<'_>, _: &mut Recorder<'_>) -> Result<Output> {
        let want = args.state.as_deref().map(parse_state).transpose()?;
        let mut list: Vec<Socket> = all_sockets()
            .into_iter()
            .filter(|s| match want {
                Some(w) => s.state_name() == w,
                // Without a filter: connections, not listeners or idle UDP sockets.
                None => s.is_connection(),
            })
            .collect();
        list.sort_by(|a, b| {
            (a.state, a.remote, a.remote_port, a.local_port).cmp(&(
                b.state,
                b.remote,
                b.remote_port,
                b.local_port,
            ))
        });
        let mut owners = Owners::load();
        let mut unknown = 0;
        let mut by_state: Vec<(&str, usize)> = Vec::new();
        let mut rows = Vec::new();
        for s in &list {
            let cols = owner_cols(&mut owners, s);
            if cols[0].1.is_null() {
                unknown += 1;
            }
            match by_state.iter_mut().find(|(n, _)| *n == s.state_name()) {
                Some((_, c)) => *c += 1,
                None => by_state.push((s.state_name(), 1)),
            }
            rows.push(with(
                row([
                    ("protocol", json!(proto_name(s.proto))),
                    ("local_address", json!(s.local.to_string())),
                    ("local_port", json!(s.local_port)),
                    ("remote_address", json!(s.remote.to_string())),
                    ("remote_port", json!(s.remote_port)),
                    ("state", json!(s.state_name())),
                ]),
                cols,
            ));
        }
        let mut summary = if list.is_empty() {
            match want {
                Some(w) => format!("no connections in state {w}"),
                None => "no open connections".to_owned(),
            }
        } else {
            format!(
                "{} connection{}: {}",
                list.len(),
                if list.len() == 1 { "" } else { "s" },
                by_state
                    .iter()
                    .map(|(n, c)| format!("{c} {n}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        summary.push_str(&owners.hidden_note(unknown));
        Ok(Output::table(Vec::new(), rows).with_summary(summary))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // /proc/net/tcp and tcp6 captured from the development VM, plus one established line.
    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:07E8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 637 1 0000000078a44878 100 0 0 10 0
   1: 0100007F:1F90 0100007F:B0A2 01 00000000:00000000 00:00000000 00000000  1000        0 9911 1 0000000000000000 20 4 30 10 -1
";
    const TCP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:0016 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0000000000000000 100 0 0 10 0
";
    const UDP: &str = "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  120: 3500007F:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000   101        0 5555 2 0000000000000000 0
";

    #[test]
    fn parses_ipv4_tables() {
        let v = parse_table("tcp", TCP);
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].local, IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        assert_eq!(v[0].local_port, 2024);
        assert!(v[0].listening());
        assert_eq!(v[0].inode, 637);
        assert_eq!(v[1].local, IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert_eq!((v[1].local_port, v[1].remote_port), (8080, 45218));
        assert_eq!((v[1].state_name(), v[1].uid), ("established", 1000));
        assert!(!v[1].listening());
    }

    #[test]
    fn parses_ipv6_and_udp() {
        let v = parse_table("tcp6", TCP6);
        assert_eq!(v[0].local, IpAddr::V6(Ipv6Addr::LOCALHOST));
        assert_eq!(v[0].local_port, 22);
        let u = parse_table("udp", UDP);
        assert_eq!(u[0].local, IpAddr::V4(Ipv4Addr::new(127, 0, 0, 53)));
        assert_eq!(u[0].local_port, 53);
        assert!(u[0].listening());
        assert_eq!(u[0].state_name(), "unconnected");
    }

    #[test]
    fn state_spellings() {
        assert_eq!(parse_state("ESTABLISHED").unwrap(), "established");
        assert_eq!(parse_state("time-wait").unwrap(), "time_wait");
        assert_eq!(parse_state("Fin Wait 1").unwrap(), "fin_wait1");
        assert!(parse_state("sleepy").is_err());
    }
}
