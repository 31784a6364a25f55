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
pub mod tls;
pub mod window;

use std::time::SystemTime;

use crate::error::ProbeError;
use crate::spec::Probe;
use crate::watch::Reading;

/// Reads a polled kind that needs no network, or `None` for the network and push kinds.
pub fn read_local(probe: &Probe, now: SystemTime) -> Option<Result<Reading, ProbeError>> {
    Some(match probe {
        Probe::Disk { mount } => fs::disk(mount, &fs::Statvfs),
        Probe::Inodes { mount } => fs::inodes(mount, &fs::Statvfs),
        Probe::Memory {} => host::memory(),
        Probe::Swap {} => host::swap(),
        Probe::Load { average } => host::load(*average),
        Probe::Process { process } => procs::process(process),
        Probe::Service {
            unit,
            pidfile,
            process,
        } => procs::service(unit, pidfile.as_deref(), process.as_deref()),
        Probe::Port { port, address } => port::port(*port, *address),
        Probe::TlsExpiry {
            file: Some(path), ..
        } => tls::file(path, now),
        _ => return None,
    })
}
