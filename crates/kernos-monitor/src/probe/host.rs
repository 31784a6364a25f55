//! Memory, swap and load, from `/proc/meminfo` and `/proc/loadavg`.
//!
//! The parsers take the files' text so tests can give them any machine's figures.

use crate::error::ProbeError;
use crate::spec::LoadAverage;
use crate::watch::{Reading, number};

/// The `/proc/meminfo` figures the monitors use, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemInfo {
    /// `MemTotal`.
    pub total: u64,
    /// `MemAvailable`: what can be had without swapping.
    pub available: u64,
    /// `SwapTotal`.
    pub swap_total: u64,
    /// `SwapFree`.
    pub swap_free: u64,
}

/// Parses `/proc/meminfo` text.
pub fn parse_meminfo(text: &str) -> Result<MemInfo, ProbeError> {
    let field = |name: &str| -> Result<u64, ProbeError> {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .and_then(|rest| rest.split_whitespace().next()?.parse::<u64>().ok())
            .map(|kib| kib * 1024)
            .ok_or_else(|| ProbeError::format("/proc/meminfo", format!("no {name} line")))
    };
    Ok(MemInfo {
        total: field("MemTotal")?,
        available: field("MemAvailable")?,
        swap_total: field("SwapTotal")?,
        swap_free: field("SwapFree")?,
    })
}

fn read(path: &str) -> Result<String, ProbeError> {
    std::fs::read_to_string(path).map_err(|e| ProbeError::io("read", path, e))
}

/// Per cent of memory in use.
pub fn memory_from(m: &MemInfo) -> Reading {
    let used = m.total.saturating_sub(m.available);
    let pct = if m.total == 0 {
        0.0
    } else {
        used as f64 * 100.0 / m.total as f64
    };
    Reading::new(pct, format!("memory is {} % used", number(pct)))
        .var("used_pct", number(pct))
        .var("available_bytes", m.available)
        .var("total_bytes", m.total)
}

/// Per cent of swap in use (0 without swap).
pub fn swap_from(m: &MemInfo) -> Reading {
    let used = m.swap_total.saturating_sub(m.swap_free);
    let pct = if m.swap_total == 0 {
        0.0
    } else {
        used as f64 * 100.0 / m.swap_total as f64
    };
    Reading::new(pct, format!("swap is {} % used", number(pct)))
        .var("used_pct", number(pct))
        .var("free_bytes", m.swap_free)
        .var("total_bytes", m.swap_total)
}

/// This machine's memory use.
pub fn memory() -> Result<Reading, ProbeError> {
    Ok(memory_from(&parse_meminfo(&read("/proc/meminfo")?)?))
}

/// This machine's swap use.
pub fn swap() -> Result<Reading, ProbeError> {
    Ok(swap_from(&parse_meminfo(&read("/proc/meminfo")?)?))
}

/// The load average per CPU, from `/proc/loadavg` text and a CPU count.
pub fn load_from(loadavg: &str, which: LoadAverage, cores: usize) -> Result<Reading, ProbeError> {
    let idx = match which {
        LoadAverage::One => 0,
        LoadAverage::Five => 1,
        LoadAverage::Fifteen => 2,
    };
    let load: f64 = loadavg
        .split_whitespace()
        .nth(idx)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| ProbeError::format("/proc/loadavg", format!("{loadavg:?}")))?;
    let cores = cores.max(1);
    let per_core = load / cores as f64;
    Ok(Reading::new(
        per_core,
        format!(
            "load {} on {cores} CPUs ({} per CPU)",
            number(load),
            number(per_core)
        ),
    )
    .var("load", number(load))
    .var("cores", cores))
}

/// This machine's load per CPU this process may use (its affinity and cgroup quota count).
pub fn load(which: LoadAverage) -> Result<Reading, ProbeError> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    load_from(&read("/proc/loadavg")?, which, cores)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MEMINFO: &str = "MemTotal:        1000 kB\nMemFree:          100 kB\n\
        MemAvailable:     250 kB\nSwapTotal:        400 kB\nSwapFree:         300 kB\n";

    #[test]
    fn memory_counts_what_is_not_available() {
        let m = parse_meminfo(MEMINFO).unwrap();
        assert_eq!(m.total, 1000 * 1024);
        assert_eq!(memory_from(&m).value, 75.0);
        assert_eq!(swap_from(&m).value, 25.0);
    }

    #[test]
    fn no_swap_reads_zero() {
        let m = MemInfo {
            total: 1,
            available: 1,
            swap_total: 0,
            swap_free: 0,
        };
        assert_eq!(swap_from(&m).value, 0.0);
    }

    #[test]
    fn a_missing_field_is_named() {
        let e = parse_meminfo("MemTotal: 1 kB\n").unwrap_err().to_string();
        assert!(e.contains("MemAvailable"), "{e}");
    }

    #[test]
    fn load_is_divided_by_cores() {
        let r = load_from("3.00 2.00 1.00 2/300 1234\n", LoadAverage::Five, 4).unwrap();
        assert_eq!(r.value, 0.5);
        assert_eq!(r.vars["load"], "2");
    }

    #[test]
    fn the_real_machine_reads() {
        assert!(memory().unwrap().value > 0.0);
        assert!(swap().unwrap().value >= 0.0);
        assert!(load(LoadAverage::One).unwrap().value >= 0.0);
    }
}
