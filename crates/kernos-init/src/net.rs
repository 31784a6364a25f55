//! Loopback and the first NIC: up, a static address, a default route (ioctls on a datagram
//! socket, the way ifconfig/route do it; no netlink library needed for this much).

use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use anyhow::{Context, Result, bail};

fn sock() -> Result<OwnedFd> {
    // SAFETY: plain socket(2); the descriptor is owned right away.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        bail!("cannot open a socket: {}", std::io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn ifreq(name: &str) -> Result<libc::ifreq> {
    if name.is_empty() || name.len() >= libc::IFNAMSIZ {
        bail!("{name:?} is not an interface name");
    }
    // SAFETY: ifreq is plain data; all zeroes is a valid value.
    let mut r: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in r.ifr_name.iter_mut().zip(name.bytes()) {
        *d = s as libc::c_char;
    }
    Ok(r)
}

fn sockaddr(ip: Ipv4Addr) -> libc::sockaddr {
    let sin = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: 0,
        sin_addr: libc::in_addr {
            s_addr: u32::from(ip).to_be(),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: sockaddr_in and sockaddr have the same size; this is how the API is used.
    unsafe { std::mem::transmute::<libc::sockaddr_in, libc::sockaddr>(sin) }
}

fn ioctl(fd: &OwnedFd, req: libc::Ioctl, arg: *mut libc::c_void, what: &str) -> Result<()> {
    // SAFETY: `arg` points at the structure `req` expects, alive for the call.
    if unsafe { libc::ioctl(fd.as_raw_fd(), req, arg) } != 0 {
        bail!("{what}: {}", std::io::Error::last_os_error());
    }
    Ok(())
}

/// Brings `name` up.
pub fn up(name: &str) -> Result<()> {
    let s = sock()?;
    let mut r = ifreq(name)?;
    ioctl(
        &s,
        libc::SIOCGIFFLAGS,
        (&mut r as *mut libc::ifreq).cast(),
        "SIOCGIFFLAGS",
    )?;
    // SAFETY: SIOCGIFFLAGS filled the flags member of the union.
    unsafe { r.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short };
    ioctl(
        &s,
        libc::SIOCSIFFLAGS,
        (&mut r as *mut libc::ifreq).cast(),
        &format!("cannot bring {name} up"),
    )
}

/// Parses `a.b.c.d/prefix`.
pub fn parse_cidr(s: &str) -> Result<(Ipv4Addr, Ipv4Addr)> {
    let (ip, prefix) = s.split_once('/').unwrap_or((s, "24"));
    let ip: Ipv4Addr = ip
        .parse()
        .with_context(|| format!("{s:?} is not an IPv4 address"))?;
    let p: u32 = prefix
        .parse()
        .ok()
        .filter(|p| *p <= 32)
        .with_context(|| format!("{s:?}: the prefix must be 0-32"))?;
    let mask = if p == 0 { 0 } else { u32::MAX << (32 - p) };
    Ok((ip, Ipv4Addr::from(mask)))
}

/// Gives `name` an address and brings it up, with an optional default route.
pub fn configure(name: &str, cidr: &str, gateway: &str) -> Result<()> {
    let (ip, mask) = parse_cidr(cidr)?;
    let s = sock()?;
    let mut r = ifreq(name)?;
    r.ifr_ifru.ifru_addr = sockaddr(ip);
    ioctl(
        &s,
        libc::SIOCSIFADDR,
        (&mut r as *mut libc::ifreq).cast(),
        &format!("cannot set {name}'s address {ip}"),
    )?;
    let mut r = ifreq(name)?;
    r.ifr_ifru.ifru_netmask = sockaddr(mask);
    ioctl(
        &s,
        libc::SIOCSIFNETMASK,
        (&mut r as *mut libc::ifreq).cast(),
        &format!("cannot set {name}'s netmask"),
    )?;
    up(name)?;
    if !gateway.is_empty() {
        let gw: Ipv4Addr = gateway
            .parse()
            .with_context(|| format!("{gateway:?} is not an IPv4 gateway"))?;
        // SAFETY: rtentry is plain data; all zeroes is a valid value.
        let mut rt: libc::rtentry = unsafe { std::mem::zeroed() };
        rt.rt_dst = sockaddr(Ipv4Addr::UNSPECIFIED);
        rt.rt_genmask = sockaddr(Ipv4Addr::UNSPECIFIED);
        rt.rt_gateway = sockaddr(gw);
        rt.rt_flags = libc::RTF_UP | libc::RTF_GATEWAY;
        ioctl(
            &s,
            libc::SIOCADDRT,
            (&mut rt as *mut libc::rtentry).cast(),
            &format!("cannot add the default route via {gw}"),
        )?;
    }
    Ok(())
}

/// The first interface that is not loopback, waiting up to `wait` for the driver to make one.
pub fn first_nic(wait: std::time::Duration) -> Option<String> {
    let until = std::time::Instant::now() + wait;
    loop {
        let mut names: Vec<String> = std::fs::read_dir("/sys/class/net")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| n != "lo")
            .collect();
        names.sort();
        if let Some(n) = names.into_iter().next() {
            return Some(n);
        }
        if std::time::Instant::now() >= until {
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// The network phase.
pub fn bring_up(net: &crate::config::Network) -> Result<String> {
    up("lo").context("loopback")?;
    if net.address.is_empty() {
        return Ok(
            "WARNING: lo up; no address configured for a NIC (kernos.ip= or [network] address)"
                .into(),
        );
    }
    let nic = if net.interface.is_empty() {
        first_nic(std::time::Duration::from_secs(3))
            .context("no network interface appeared: is the NIC's driver in the image's modules?")?
    } else {
        net.interface.clone()
    };
    configure(&nic, &net.address, &net.gateway)?;
    Ok(format!(
        "lo up; {nic} {} via {}",
        net.address,
        if net.gateway.is_empty() {
            "-"
        } else {
            &net.gateway
        }
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr() {
        assert_eq!(
            parse_cidr("10.0.2.15/24").unwrap(),
            (Ipv4Addr::new(10, 0, 2, 15), Ipv4Addr::new(255, 255, 255, 0))
        );
        assert_eq!(parse_cidr("1.2.3.4/0").unwrap().1, Ipv4Addr::UNSPECIFIED);
        assert!(parse_cidr("1.2.3.4/33").is_err());
        assert!(parse_cidr("nope/8").is_err());
    }
}
