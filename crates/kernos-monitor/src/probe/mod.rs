//! Probes: one function per kind of monitor, reading the real machine.
//!
//! Polled kinds (disk, inodes, memory, swap, load, process, service, port, a PEM file's
//! expiry) read synchronously and quickly from `/proc` and system calls; network kinds (HTTP
//! health, a server's certificate) are async. Push kinds (log pattern, file changes, journal
//! events) are fed by the runner; their pieces live here too (a log follower, a rate window,
//! the event matcher).

pub mod fs;
pub mod host;
pub mod http;
pub mod journal;
pub mod logtail;
pub mod port;
pub mod procs;
pub mod snapshot;
pub mod tls;
pub mod window;

use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use snapshot::Snapshot;

use crate::error::ProbeError;
use crate::spec::Probe;
use crate::watch::Reading;

/// How long one walk of `/proc` serves every monitor due meanwhile.
pub const SNAPSHOT_AGE: Duration = Duration::from_millis(250);

/// Readings of the whole machine that several monitors share (see [`snapshot`]).
#[derive(Debug)]
pub struct Shared {
    procs: Snapshot<procs::ProcTable>,
    listeners: Snapshot<port::Listeners>,
}

impl Shared {
    /// Snapshots reused for `max_age`.
    pub fn new(max_age: Duration) -> Self {
        Shared {
            procs: Snapshot::new(max_age),
            listeners: Snapshot::new(max_age),
        }
    }
}

/// Reads a polled kind that needs no network, or `None` for the network and push kinds.
pub fn read_local(
    probe: &Probe,
    shared: &mut Shared,
    now: Instant,
    wall: SystemTime,
) -> Option<Result<Reading, ProbeError>> {
    Some(match probe {
        Probe::Disk { mount } => fs::disk(mount, &fs::Statvfs),
        Probe::Inodes { mount } => fs::inodes(mount, &fs::Statvfs),
        Probe::Memory {} => host::memory(),
        Probe::Swap {} => host::swap(),
        Probe::Load { average } => host::load(*average),
        Probe::Process { process } => shared
            .procs
            .get(now, || procs::ProcTable::read(Path::new("/proc")))
            .and_then(|t| procs::process(t, process)),
        Probe::Service {
            unit,
            pidfile,
            process,
        } => procs::service(
            &mut shared.procs,
            now,
            unit,
            pidfile.as_deref(),
            process.as_deref(),
        ),
        Probe::Port { port, address } => shared
            .listeners
            .get(now, || port::Listeners::read(Path::new("/proc/net")))
            .map(|l| port::port(l, *port, *address)),
        Probe::TlsExpiry {
            file: Some(path), ..
        } => tls::file(path, wall),
        _ => return None,
    })
}
