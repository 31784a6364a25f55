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

/// The addresses listening on `port` in one `/proc/net/tcp{,6}` table.
pub fn listeners(table: &str, port: u16) -> Vec<IpAddr> {
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
            (u16::from_str_radix(p, 16).ok()? == port).then(|| parse_addr(addr))?
        })
        .collect()
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

/// Value 1 when nothing listens on `port` (at `address` or the wildcard address), else 0.
pub fn port(port: u16, address: Option<IpAddr>) -> Result<Reading, ProbeError> {
    port_in(Path::new("/proc/net"), port, address)
}

/// [`port`] over the tables in `net_dir`.
pub fn port_in(net_dir: &Path, port: u16, address: Option<IpAddr>) -> Result<Reading, ProbeError> {
    let mut found = Vec::new();
    for name in ["tcp", "tcp6"] {
        let path = net_dir.join(name);
        match std::fs::read_to_string(&path) {
            Ok(t) => found.extend(listeners(&t, port)),
            // A kernel without IPv6 has no tcp6 table.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && name == "tcp6" => {}
            Err(e) => return Err(ProbeError::io("read", path, e)),
        }
    }
    let up = found.iter().any(|a| serves(*a, address));
    let at = address.map_or_else(|| "any address".to_owned(), |a| a.to_string());
    let detail = if up {
        format!("port {port} is listening ({at})")
    } else {
        format!("nothing listens on port {port} ({at})")
    };
    Ok(Reading::new(if up { 0.0 } else { 1.0 }, detail)
        .var("port", port)
        .var("address", at))
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
        assert_eq!(listeners(t, 8080), vec![IpAddr::from([127, 0, 0, 1])]);
        assert_eq!(listeners(t, 22), vec![IpAddr::from([0, 0, 0, 0])]);
        assert!(
            listeners(t, 8081).is_empty(),
            "an established socket is not a listener"
        );
        let t6 = "sl local\n 0: 00000000000000000000000001000000:1F90 x 0A\n";
        assert_eq!(listeners(t6, 8080), vec!["::1".parse::<IpAddr>().unwrap()]);
    }

    #[test]
    fn a_loopback_listener_is_seen_and_its_absence_too() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let p = l.local_addr().unwrap().port();
        assert_eq!(port(p, None).unwrap().value, 0.0);
        assert_eq!(port(p, Some([127, 0, 0, 1].into())).unwrap().value, 0.0);
        assert_eq!(
            port(p, Some([127, 0, 0, 2].into())).unwrap().value,
            1.0,
            "bound to 127.0.0.1 only"
        );
        drop(l);
        assert_eq!(port(p, None).unwrap().value, 1.0);
    }
}
