//! The `sys` tool: the machine itself — OS, disks, memory, CPU, uptime, logged-in users.
//!
//! Everything here is read natively from /proc, /sys and libc, never by running `df`, `free`
//! or `who`: a sandboxed child lives in its own PID and mount view and would describe the
//! sandbox, not the machine.

use kernos_core::{Effect, EffectKind, Target};

use crate::registry::Registry;
use crate::{Result, ToolError};

pub(crate) mod account;
mod cpu;
mod disk;
mod info;
mod memory;
pub(crate) mod time;
mod uptime;
mod users;

pub use cpu::Cpu;
pub use disk::Disk;
pub use info::Info;
pub use memory::Memory;
pub use uptime::Uptime;
pub use users::Users;

pub(crate) use memory::meminfo;

/// Registers the `sys` actions.
pub fn register(r: &mut Registry) {
    r.register(Info);
    r.register(Disk);
    r.register(Memory);
    r.register(Cpu);
    r.register(Uptime);
    r.register(Users::default());
}

/// The effect of every pure inspection of the machine.
pub(crate) fn system_read() -> Vec<Effect> {
    vec![Effect {
        kind: EffectKind::Read,
        target: Target::System,
    }]
}

/// Reads a kernel interface file, with an error that names it.
pub(crate) fn read_file(path: &str) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| ToolError::io("read", std::path::Path::new(path), e))
}

/// `part` of `whole` in percent, one decimal; 0 when `whole` is 0.
pub(crate) fn pct(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        (part as f64 * 1000.0 / whole as f64).round() / 10.0
    }
}

/// Where `program` is installed, searching `PATH` (with the usual system directories as a
/// fallback when `PATH` is unset), so a missing tool can be named before anything runs.
pub(crate) fn which(program: &str) -> Option<std::path::PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn which_finds_sh_and_not_nonsense() {
        assert!(which("sh").is_some());
        assert!(which("kernos-no-such-program").is_none());
        assert_eq!(pct(1, 3), 33.3);
        assert_eq!(pct(1, 0), 0.0);
    }
}
