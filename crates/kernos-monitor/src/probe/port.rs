//! Is anything listening on a TCP port: `/proc/net/tcp` and `/proc/net/tcp6`, state `0A`.
//!
//! Reading the tables sees every listener in this network namespace without connecting (a
//! connect would show up in the service's logs and could be refused by a firewall rule that
//! says nothing about whether the service is up).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

use crate::error::ProbeError;
use crate::watch::Reading;

/// The kernel's code for a socket in the LISTEN state.
const LISTEN: &str = "0A";

/// The (address, port) of every listening socket in one `/proc/net/tcp{,6}` table.
pub fn listeners(table: &str) -> Vec<(IpAddr, u16)> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let mut cols = line.split_whitespace();
            let local = cols.nth(1)?;
            let state = cols.nth(1)?;
            if state != LISTEN {
                return None;
            }
            let (addr, p) = local.split_once(':')?;
            Some((parse_addr(addr)?, u16::from_str_radix(p, 16).ok()?))
        })
        .collect()
}

/// Every listening TCP socket of this network namespace, read once and shared by the port
/// monitors due at about the same time: reading the tables walks the kernel's whole socket
/// hash, which costs far more than anything else a monitor does.
#[derive(Debug, Clone, Default)]
pub struct Listeners(Vec<(IpAddr, u16)>);

impl Listeners {
    /// Reads `tcp` and `tcp6` under `net_dir` (`/proc/net`).
    pub fn read(net_dir: &Path) -> Result<Listeners, ProbeError> {
        let mut all = Vec::new();
        for name in ["tcp", "tcp6"] {
            let path = net_dir.join(name);
            match std::fs::read_to_string(&path) {
                Ok(t) => all.extend(listeners(&t)),
                // A kernel without IPv6 has no tcp6 table.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && name == "tcp6" => {}
                Err(e) => return Err(ProbeError::io("read", path, e)),
            }
        }
        Ok(Listeners(all))
    }
}

/// The kernel prints addresses as 32-bit words in host byte order (little-endian here).
fn parse_addr(hex: &str) -> Option<IpAddr> {
    let word = |i: usize| -> Option<[u8; 4]> {
        u32::from_str_radix(hex.get(i * 8..i * 8 + 8)?, 16)
            .ok()
            .map(|w| w.to_ne_bytes())
    };
    match hex.len() {
        8 => Some(IpAddr::V4(Ipv4Addr::from(word(0)?))),
        32 => {
            let mut b = [0u8; 16];
            for i in 0..4 {
                b[i * 4..i * 4 + 4].copy_from_slice(&word(i)?);
            }
            let v6 = Ipv6Addr::from(b);
            Some(v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4))
        }
        _ => None,
    }
}

/// Whether a listener bound to `bound` accepts connections for `wanted`.
fn serves(bound: IpAddr, wanted: Option<IpAddr>) -> bool {
    match wanted {
        None => true,
        Some(w) => bound == w || bound.is_unspecified(),
    }
}

/// Value 1 when nothing in `listeners` listens on `port` (at `address` or the wildcard
/// address), else 0.
pub fn port(listeners: &Listeners, port: u16, address: Option<IpAddr>) -> Reading {
    let up = listeners
        .0
        .iter()
        .any(|(a, p)| *p == port && serves(*a, address));
    let at = address.map_or_else(|| "any address".to_owned(), |a| a.to_string());
    let detail = if up {
        format!("port {port} is listening ({at})")
    } else {
        format!("nothing listens on port {port} ({at})")
    };
    Reading::new(if up { 0.0 } else { 1.0 }, detail)
        .var("port", port)
        .var("address", at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_rows_are_decoded() {
        let t = "  sl  local_address rem_address   st tx_queue rx_queue\n\
           0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000\n\
           1: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000\n\
           2: 0100007F:1F91 0100007F:9C40 01 00000000:00000000 00:00000000 00000000\n";
        assert_eq!(
            listeners(t),
            vec![
                (IpAddr::from([127, 0, 0, 1]), 8080),
                (IpAddr::from([0, 0, 0, 0]), 22)
            ],
            "an established socket is not a listener"
        );
        let t6 = "sl local\n 0: 00000000000000000000000001000000:1F90 x 0A\n";
        assert_eq!(
            listeners(t6),
            vec![("::1".parse::<IpAddr>().unwrap(), 8080)]
        );
    }

    #[test]
    fn a_loopback_listener_is_seen_and_its_absence_too() {
        let now = || Listeners::read(Path::new("/proc/net")).unwrap();
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let p = l.local_addr().unwrap().port();
        assert_eq!(port(&now(), p, None).value, 0.0);
        assert_eq!(port(&now(), p, Some([127, 0, 0, 1].into())).value, 0.0);
        assert_eq!(
            port(&now(), p, Some([127, 0, 0, 2].into())).value,
            1.0,
            "bound to 127.0.0.1 only"
        );
        drop(l);
        assert_eq!(port(&now(), p, None).value, 1.0);
    }
}
