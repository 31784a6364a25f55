//! The step's Landlock rules: which Landlock ABI there is, what the network policy becomes
//! (TCP bind/connect handling and allowed ports), and the filesystem rules over the mount view.

use std::ffi::CString;
use std::io;

use kernos_core::sandbox::NetworkPolicy;

use super::fail::{Failure, Weakened};
use super::kernel::Probed;
use crate::landlock::{self, PathRule, Ruleset};
use crate::protocol::FailKind;

/// The Landlock ABI to use, or `None` (when allowed) if this kernel has no Landlock.
pub(super) fn landlock_abi(
    kernel: &Probed,
    weakened: &mut Weakened,
) -> Result<Option<u32>, Failure> {
    let why = match kernel
        .landlock_abi
        .as_ref()
        .map_err(|e| io::Error::from_raw_os_error(*e))
    {
        Ok(v) if *v >= 1 => return Ok(Some(*v)),
        Err(e) => e.to_string(),
        Ok(v) => format!("ABI {v}"),
    };
    weakened.skip(
        (
            FailKind::Unavailable,
            format!(
                "Landlock is not available on this kernel ({why}); it needs Linux 5.13+ with lsm=landlock"
            ),
        ),
        format!("Landlock ({why})"),
    )?;
    Ok(None)
}

/// What Landlock does about the network.
#[derive(Default)]
pub(super) struct NetRules {
    /// `landlock::NET_*` rights Landlock handles (denies unless a port allows them).
    handled: u64,
    /// TCP ports the command may connect to.
    connect_ports: Vec<u16>,
}

/// The network policy as Landlock rules: no network at all, or connecting only to declared
/// ports when every declared host names one. Host names cannot be enforced by the kernel.
pub(super) fn network_rules(
    network: &NetworkPolicy,
    abi: Option<u32>,
    weakened: &mut Weakened,
) -> Result<NetRules, Failure> {
    let hosts = match network {
        NetworkPolicy::Deny => {
            return Ok(NetRules {
                handled: landlock::NET_BIND_TCP | landlock::NET_CONNECT_TCP,
                connect_ports: Vec::new(),
            });
        }
        NetworkPolicy::Allow { hosts } => hosts,
    };
    let any = |h: &str| h.is_empty() || h == "*";
    let unrestricted = hosts.is_empty() || hosts.iter().any(|h| any(&h.host) && h.port.is_none());
    if unrestricted {
        return Ok(NetRules::default());
    }
    let named: Vec<&str> = hosts
        .iter()
        .filter(|h| !any(&h.host))
        .map(|h| h.host.as_str())
        .collect();
    if !named.is_empty() {
        let why = format!(
            "host filtering for {} (the kernel can restrict TCP ports, not host \
             names; declare hosts as \"*\" with ports to have them enforced)",
            named.join(", ")
        );
        weakened.skip((FailKind::Unavailable, why.clone()), why)?;
    }
    if !hosts.iter().all(|h| h.port.is_some()) {
        return Ok(NetRules::default());
    }
    if abi.unwrap_or(0) >= 4 {
        return Ok(NetRules {
            handled: landlock::NET_CONNECT_TCP,
            connect_ports: hosts.iter().filter_map(|h| h.port).collect(),
        });
    }
    weakened.skip(
        (
            FailKind::Unavailable,
            "TCP port filtering (needs Landlock ABI 4, Linux 6.7+)".into(),
        ),
        "TCP port filtering (Landlock ABI < 4)",
    )?;
    Ok(NetRules::default())
}

/// The Landlock ruleset: read everything, write only the `writable` paths (the declared ones
/// and the private temp dir), the private /dev/shm and a few harmless devices.
pub(super) fn ruleset(abi: u32, writable: &[CString], net: &NetRules, service: bool) -> Ruleset {
    let all = landlock::fs_rights_for(abi);
    let mut rules = vec![PathRule {
        path: c"/".into(),
        access: landlock::FS_READ_RIGHTS,
        required: true,
    }];
    for w in writable {
        rules.push(PathRule {
            path: w.clone(),
            access: all,
            required: true,
        });
    }
    // The private /dev/shm (a tmpfs of our own; dropped if there is no mount namespace, when
    // /dev/shm would be the host's).
    rules.push(PathRule {
        path: c"/dev/shm".into(),
        access: all,
        required: false,
    });
    for dev in [c"/dev/null", c"/dev/zero", c"/dev/full"] {
        rules.push(PathRule {
            path: dev.into(),
            access: landlock::FS_READ_FILE | landlock::FS_WRITE_FILE | landlock::FS_TRUNCATE,
            required: false,
        });
    }
    Ruleset {
        abi,
        handled_fs: all,
        handled_net: net.handled,
        rules,
        connect_ports: net.connect_ports.clone(),
        scope_signals: !service,
    }
}
