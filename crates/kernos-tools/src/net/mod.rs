//! The `net` tool: interfaces, listening ports, connections, DNS, HTTP, ping.
//!
//! Sockets and interfaces are read natively (/proc/net, getifaddrs): a sandboxed child runs in
//! its own network namespace and would see only its own loopback. DNS, HTTP and ICMP run in
//! this process too; their effects name the host they talk to, so policy sees exactly where a
//! step reaches out.

use kernos_core::{Effect, EffectKind, Target};

use crate::registry::Registry;
use crate::{Result, ToolError};

mod http;
mod interfaces;
mod ping;
mod resolve;
mod sockets;

pub use http::Http;
pub use interfaces::Interfaces;
pub use ping::Ping;
pub use resolve::Resolve;
pub use sockets::{Connections, Ports};

/// Registers the `net` actions.
pub fn register(r: &mut Registry) {
    r.register(Interfaces);
    r.register(Ports);
    r.register(Connections);
    r.register(Resolve);
    r.register(Http);
    r.register(Ping);
}

/// The host part of what a user may type for a host: `example.org`, `https://example.org/x`,
/// `example.org:8080`, `[::1]:80`, `::1`, `user@host`.
pub(crate) fn bare_host(s: &str) -> Result<String> {
    let t = s.trim();
    let t = t.split_once("://").map(|(_, r)| r).unwrap_or(t);
    let t = t.split(['/', '?', '#']).next().unwrap_or("");
    let t = t.rsplit_once('@').map(|(_, h)| h).unwrap_or(t);
    let host = if let Some(rest) = t.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else if t.matches(':').count() == 1 {
        t.split(':').next().unwrap_or("")
    } else {
        t
    };
    if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ToolError::InvalidArgs(format!(
            "{s:?} is not a host name or address; give one like example.org or 192.0.2.7"
        )));
    }
    Ok(host.trim_end_matches('.').to_ascii_lowercase())
}

/// The effects of talking to a host: a read (or, for requests that may change remote state,
/// a write) on it, and network access to it.
pub(crate) fn host_effects(host: &str, port: Option<u16>, write: bool) -> Vec<Effect> {
    let target = Target::Host {
        host: host.to_owned(),
        port,
    };
    vec![
        Effect {
            kind: if write {
                EffectKind::Write
            } else {
                EffectKind::Read
            },
            target: target.clone(),
        },
        Effect {
            kind: EffectKind::Network,
            target,
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_from_what_people_type() {
        for (input, want) in [
            ("example.org", "example.org"),
            ("Example.ORG.", "example.org"),
            ("https://example.org/a?b", "example.org"),
            ("example.org:8080", "example.org"),
            ("http://user:pw@example.org:81/", "example.org"),
            ("[::1]:80", "::1"),
            ("::1", "::1"),
            ("fe80::1", "fe80::1"),
            ("192.0.2.7", "192.0.2.7"),
        ] {
            assert_eq!(bare_host(input).unwrap(), want, "{input}");
        }
        for bad in ["", "  ", "http://", "a b"] {
            assert!(bare_host(bad).is_err(), "{bad:?}");
        }
    }
}
