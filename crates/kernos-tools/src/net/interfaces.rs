//! `net.interfaces`: network interfaces with their addresses, hardware address, state, MTU and
//! traffic — and the answer to "what is my IP address" (the address on the default route).

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};

use kernos_core::{ColumnKind, Effect, EffectKind, Reversibility};
use serde_json::{Value, json};

use crate::args::NoArgs;
use crate::output::{Output, human_bytes, row};
use crate::registry::{Action, Meta};
use crate::sys::system_read;
use crate::undo::Recorder;
use crate::{Ctx, Result, ToolError};

/// One interface as getifaddrs and /sys describe it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Iface {
    pub name: String,
    pub flags: u32,
    pub v4: Vec<(Ipv4Addr, u8)>,
    pub v6: Vec<(Ipv6Addr, u8)>,
    pub mac: Option<String>,
}

fn prefix_len(mask: &[u8]) -> u8 {
    mask.iter().map(|b| b.count_ones() as u8).sum()
}

/// Reads every interface and address with getifaddrs(3).
fn interfaces() -> std::io::Result<BTreeMap<String, Iface>> {
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: `head` is valid for writes; on success it must be freed with freeifaddrs.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let mut map: BTreeMap<String, Iface> = BTreeMap::new();
    let mut cur = head;
    while !cur.is_null() {
        // SAFETY: `cur` is a node of the list getifaddrs returned, alive until freeifaddrs.
        let ifa = unsafe { &*cur };
        cur = ifa.ifa_next;
        if ifa.ifa_name.is_null() {
            continue;
        }
        // SAFETY: ifa_name is a NUL-terminated string owned by the list.
        let name = unsafe { std::ffi::CStr::from_ptr(ifa.ifa_name) }
            .to_string_lossy()
            .into_owned();
        let e = map.entry(name.clone()).or_insert_with(|| Iface {
            name,
            ..Iface::default()
        });
        e.flags = ifa.ifa_flags;
        if ifa.ifa_addr.is_null() {
            continue;
        }
        // SAFETY: ifa_addr is non-null and points to a sockaddr of at least its family's size.
        let family = i32::from(unsafe { (*ifa.ifa_addr).sa_family });
        match family {
            libc::AF_INET => {
                // SAFETY: family AF_INET means the storage is a sockaddr_in.
                let a = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in) };
                let ip = Ipv4Addr::from(a.sin_addr.s_addr.to_ne_bytes());
                let plen = if ifa.ifa_netmask.is_null() {
                    32
                } else {
                    // SAFETY: the netmask of an AF_INET address is a sockaddr_in too.
                    let m = unsafe { &*(ifa.ifa_netmask as *const libc::sockaddr_in) };
                    prefix_len(&m.sin_addr.s_addr.to_ne_bytes())
                };
                e.v4.push((ip, plen));
            }
            libc::AF_INET6 => {
                // SAFETY: family AF_INET6 means the storage is a sockaddr_in6.
                let a = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in6) };
                let plen = if ifa.ifa_netmask.is_null() {
                    128
                } else {
                    // SAFETY: the netmask of an AF_INET6 address is a sockaddr_in6 too.
                    let m = unsafe { &*(ifa.ifa_netmask as *const libc::sockaddr_in6) };
                    prefix_len(&m.sin6_addr.s6_addr)
                };
                e.v6.push((Ipv6Addr::from(a.sin6_addr.s6_addr), plen));
            }
            libc::AF_PACKET => {
                // SAFETY: family AF_PACKET means the storage is a sockaddr_ll.
                let a = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_ll) };
                let n = usize::from(a.sll_halen).min(a.sll_addr.len());
                if n > 0 && a.sll_addr[..n].iter().any(|b| *b != 0) {
                    e.mac = Some(
                        a.sll_addr[..n]
                            .iter()
                            .map(|b| format!("{b:02x}"))
                            .collect::<Vec<_>>()
                            .join(":"),
                    );
                }
            }
            _ => {}
        }
    }
    // SAFETY: `head` came from getifaddrs and is freed once; no reference into it survives.
    unsafe { libc::freeifaddrs(head) };
    Ok(map)
}

/// Received and sent bytes per interface, from /proc/net/dev.
pub(crate) fn parse_net_dev(s: &str) -> BTreeMap<String, (u64, u64)> {
    s.lines()
        .skip(2)
        .filter_map(|l| {
            let (name, rest) = l.split_once(':')?;
            let f: Vec<u64> = rest
                .split_whitespace()
                .map(|x| x.parse().unwrap_or(0))
                .collect();
            Some((name.trim().to_owned(), (*f.first()?, *f.get(8)?)))
        })
        .collect()
}

/// The interface and gateway of the IPv4 default route, from /proc/net/route.
pub(crate) fn parse_default_route(s: &str) -> Option<(String, Ipv4Addr)> {
    const RTF_UP: u32 = 0x1;
    s.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        let dest = u32::from_str_radix(f.get(1)?, 16).ok()?;
        let gw = u32::from_str_radix(f.get(2)?, 16).ok()?;
        let flags = u32::from_str_radix(f.get(3)?, 16).ok()?;
        let mask = u32::from_str_radix(f.get(7)?, 16).ok()?;
        let name = (*f.first()?).to_owned();
        (dest == 0 && mask == 0 && flags & RTF_UP != 0)
            .then(|| (name, Ipv4Addr::from(gw.to_ne_bytes())))
    })
}

/// The interface of the IPv6 default route, from /proc/net/ipv6_route (reject routes skipped).
pub(crate) fn parse_default_route6(s: &str) -> Option<String> {
    const RTF_UP: u32 = 0x1;
    const RTF_REJECT: u32 = 0x200;
    s.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        let flags = u32::from_str_radix(f.get(8)?, 16).ok()?;
        let name = (*f.get(9)?).to_owned();
        (f.first()?.bytes().all(|b| b == b'0')
            && *f.get(1)? == "00"
            && flags & RTF_UP != 0
            && flags & RTF_REJECT == 0)
            .then_some(name)
    })
}

fn sys_net(name: &str, attr: &str) -> Option<String> {
    std::fs::read_to_string(format!("/sys/class/net/{name}/{attr}"))
        .ok()
        .map(|s| s.trim().to_owned())
}

/// Global (not link-local) addresses first: they are the ones people mean.
fn is_link_local6(a: &Ipv6Addr) -> bool {
    a.segments()[0] & 0xffc0 == 0xfe80
}

/// `net.interfaces`.
#[derive(Debug, Clone, Copy)]
pub struct Interfaces;

impl Action for Interfaces {
    type Args = NoArgs;

    fn meta(&self) -> Meta {
        Meta {
            tool: "net",
            name: "interfaces",
            summary: "Network interfaces: IP addresses, MAC, up/down, traffic; which one is the default route",
            effects: &[EffectKind::Read],
            reversibility: Reversibility::ReadOnly,
            output: &[
                ("name", ColumnKind::Text),
                ("state", ColumnKind::Text),
                ("ipv4", ColumnKind::Text),
                ("ipv6", ColumnKind::Text),
                ("mac", ColumnKind::Text),
                ("mtu", ColumnKind::Int),
                ("rx_bytes", ColumnKind::Bytes),
                ("tx_bytes", ColumnKind::Bytes),
                ("default_route", ColumnKind::Bool),
                ("gateway", ColumnKind::Text),
            ],
        }
    }

    fn effects(&self, _: &NoArgs, _: &Ctx<'_>) -> Result<Vec<Effect>> {
        Ok(system_read())
    }

    fn execute(&self, _: &NoArgs, _: &Ctx<'_>, _: &mut Recorder<'_>) -> Result<Output> {
        let ifaces = interfaces()
            .map_err(|e| ToolError::Failed(format!("cannot list network interfaces: {e}")))?;
        let traffic = parse_net_dev(&std::fs::read_to_string("/proc/net/dev").unwrap_or_default());
        let route4 =
            parse_default_route(&std::fs::read_to_string("/proc/net/route").unwrap_or_default());
        let route6 = parse_default_route6(
            &std::fs::read_to_string("/proc/net/ipv6_route").unwrap_or_default(),
        );
        let mut rows = Vec::new();
        let mut primary: Vec<String> = Vec::new();
        let mut others: Vec<String> = Vec::new();
        for i in ifaces.values() {
            let up = i.flags & libc::IFF_UP as u32 != 0;
            let running = i.flags & libc::IFF_RUNNING as u32 != 0;
            let state = match (up, running) {
                (true, true) => "up",
                (true, false) => "up, no carrier",
                _ => "down",
            };
            let mut v6 = i.v6.clone();
            v6.sort_by_key(|(a, _)| is_link_local6(a));
            let v4s: Vec<String> = i.v4.iter().map(|(a, p)| format!("{a}/{p}")).collect();
            let v6s: Vec<String> = v6.iter().map(|(a, p)| format!("{a}/{p}")).collect();
            let is_default4 = route4.as_ref().is_some_and(|(n, _)| *n == i.name);
            let is_default = is_default4 || route6.as_deref() == Some(i.name.as_str());
            let gateway = route4
                .as_ref()
                .filter(|(n, _)| *n == i.name)
                .map(|(_, g)| g.to_string());
            let loopback = i.flags & libc::IFF_LOOPBACK as u32 != 0;
            let plain: Vec<String> =
                i.v4.iter()
                    .map(|(a, _)| a.to_string())
                    .chain(
                        v6.iter()
                            .filter(|(a, _)| !is_link_local6(a))
                            .map(|(a, _)| a.to_string()),
                    )
                    .collect();
            if !plain.is_empty() {
                let line = format!("{} on {}", plain.join(", "), i.name);
                if is_default {
                    primary.push(line);
                } else if !loopback {
                    others.push(line);
                }
            }
            let (rx, tx) = traffic.get(&i.name).copied().unwrap_or((0, 0));
            let text = |v: Vec<String>| {
                if v.is_empty() {
                    Value::Null
                } else {
                    json!(v.join(", "))
                }
            };
            rows.push(row([
                ("name", json!(i.name)),
                ("state", json!(state)),
                ("ipv4", text(v4s)),
                ("ipv6", text(v6s)),
                (
                    "mac",
                    i.mac.as_ref().map(|m| json!(m)).unwrap_or(Value::Null),
                ),
                (
                    "mtu",
                    sys_net(&i.name, "mtu")
                        .and_then(|m| m.parse::<u64>().ok())
                        .map(|m| json!(m))
                        .unwrap_or(Value::Null),
                ),
                ("rx_bytes", json!(rx)),
                ("tx_bytes", json!(tx)),
                ("default_route", json!(is_default)),
                ("gateway", gateway.map(|g| json!(g)).unwrap_or(Value::Null)),
            ]));
        }
        let mut summary = if !primary.is_empty() {
            format!("your IP address: {} (default route)", primary.join("; "))
        } else if !others.is_empty() {
            format!("no default route; addresses: {}", others.join("; "))
        } else {
            "no network address besides loopback: this machine is offline".to_owned()
        };
        if !primary.is_empty() && !others.is_empty() {
            summary.push_str(&format!("; also {}", others.join("; ")));
        }
        if let Some((_, gw)) = &route4 {
            summary.push_str(&format!("; gateway {gw}"));
        }
        let total: u64 = traffic.values().map(|(r, t)| r + t).sum();
        summary.push_str(&format!("; {} moved since boot", human_bytes(total)));
        Ok(Output::table(Vec::new(), rows).with_summary(summary))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Captured from the development VM.
    const DEV: &str = "Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:    6977      88    0    0    0     0          0         0     6977      88    0    0    0     0       0          0
  ifb0:       0       0    0    0    0     0          0         0        0       0    0    0    0     0       0          0
  eth0: 79718726    4488    0    0    0     0          0         0   284478    2616    0    0    0     0       0          0
";
    const ROUTE: &str =
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0
eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
";
    const ROUTE6: &str = "fd000000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0
00000000000000000000000000000000 00 00000000000000000000000000000000 00 fd000000000000000000000000000001 00000400 00000002 00000000 00000003     eth0
00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo
";

    #[test]
    fn traffic_counters() {
        let t = parse_net_dev(DEV);
        assert_eq!(t["eth0"], (79_718_726, 284_478));
        assert_eq!(t["lo"], (6977, 6977));
        assert_eq!(t.len(), 3);
    }

    #[test]
    fn default_routes() {
        assert_eq!(
            parse_default_route(ROUTE),
            Some(("eth0".into(), Ipv4Addr::new(192, 0, 2, 1)))
        );
        assert_eq!(parse_default_route6(ROUTE6).as_deref(), Some("eth0"));
        // Only the reject route: no IPv6 default.
        let reject: String = ROUTE6.lines().skip(2).collect();
        assert_eq!(parse_default_route6(&reject), None);
    }

    #[test]
    fn loopback_is_listed() {
        let m = interfaces().unwrap();
        let lo = m.get("lo").unwrap();
        assert!(lo.v4.contains(&(Ipv4Addr::LOCALHOST, 8)), "{lo:?}");
        assert_eq!(prefix_len(&[255, 255, 255, 0]), 24);
    }
}
