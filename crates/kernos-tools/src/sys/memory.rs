//! `sys.memory`: RAM and swap from /proc/meminfo, counted the way `free` counts them.

use std::collections::HashMap;

use kernos_core::{ColumnKind, Effect, EffectKind, Reversibility};
use serde_json::{Value, json};

use super::{pct, read_file, system_read};
use crate::args::NoArgs;
use crate::output::{Output, human_bytes, row};
use crate::registry::{Action, Meta};
use crate::undo::Recorder;
use crate::{Ctx, Result};

/// Fields of /proc/meminfo in bytes, by name.
pub(crate) fn parse_meminfo(s: &str) -> HashMap<String, u64> {
    s.lines()
        .filter_map(|l| {
            let (k, rest) = l.split_once(':')?;
            let mut it = rest.split_whitespace();
            let n: u64 = it.next()?.parse().ok()?;
            let mult = match it.next() {
                Some("kB") => 1024,
                Some(_) => return None,
                None => 1,
            };
            Some((k.trim().to_owned(), n.saturating_mul(mult)))
        })
        .collect()
}

/// /proc/meminfo of this machine.
pub(crate) fn meminfo() -> Result<HashMap<String, u64>> {
    Ok(parse_meminfo(&read_file("/proc/meminfo")?))
}

/// Rows for memory and swap.
pub(crate) fn memory_rows(m: &HashMap<String, u64>) -> Vec<serde_json::Map<String, Value>> {
    let g = |k: &str| m.get(k).copied().unwrap_or(0);
    let total = g("MemTotal");
    let buff_cache = g("Buffers") + g("Cached") + g("SReclaimable");
    // Kernels before 3.14 have no MemAvailable; free + cache is what `free` used then.
    let available = m
        .get("MemAvailable")
        .copied()
        .unwrap_or(g("MemFree") + buff_cache);
    let used = total.saturating_sub(available);
    let swap_total = g("SwapTotal");
    let swap_used = swap_total.saturating_sub(g("SwapFree"));
    vec![
        row([
            ("kind", json!("memory")),
            ("total", json!(total)),
            ("used", json!(used)),
            ("free", json!(g("MemFree"))),
            ("shared", json!(g("Shmem"))),
            ("buff_cache", json!(buff_cache)),
            ("available", json!(available)),
            ("use_percent", json!(pct(used, total))),
        ]),
        row([
            ("kind", json!("swap")),
            ("total", json!(swap_total)),
            ("used", json!(swap_used)),
            ("free", json!(g("SwapFree"))),
            ("shared", Value::Null),
            ("buff_cache", Value::Null),
            ("available", Value::Null),
            ("use_percent", json!(pct(swap_used, swap_total))),
        ]),
    ]
}

/// `sys.memory`.
#[derive(Debug, Clone, Copy)]
pub struct Memory;

impl Action for Memory {
    type Args = NoArgs;

    fn meta(&self) -> Meta {
        Meta {
            tool: "sys",
            name: "memory",
            summary: "Memory and swap: total, used, free, available",
            effects: &[EffectKind::Read],
            reversibility: Reversibility::ReadOnly,
            output: &[
                ("kind", ColumnKind::Text),
                ("total", ColumnKind::Bytes),
                ("used", ColumnKind::Bytes),
                ("free", ColumnKind::Bytes),
                ("shared", ColumnKind::Bytes),
                ("buff_cache", ColumnKind::Bytes),
                ("available", ColumnKind::Bytes),
                ("use_percent", ColumnKind::Percent),
            ],
        }
    }

    fn effects(&self, _: &NoArgs, _: &Ctx<'_>) -> Result<Vec<Effect>> {
        Ok(system_read())
    }

    fn execute(&self, _: &NoArgs, _: &Ctx<'_>, _: &mut Recorder<'_>) -> Result<Output> {
        let m = meminfo()?;
        let rows = memory_rows(&m);
        let g = |k: &str| m.get(k).copied().unwrap_or(0);
        let used = rows[0]["used"].as_u64().unwrap_or(0);
        let avail = rows[0]["available"].as_u64().unwrap_or(0);
        let swap = if g("SwapTotal") == 0 {
            "no swap".to_owned()
        } else {
            format!(
                "swap {} of {} used",
                human_bytes(rows[1]["used"].as_u64().unwrap_or(0)),
                human_bytes(g("SwapTotal"))
            )
        };
        let summary = format!(
            "{} of {} memory used ({}%), {} available; {swap}",
            human_bytes(used),
            human_bytes(g("MemTotal")),
            pct(used, g("MemTotal")),
            human_bytes(avail),
        );
        Ok(Output::table(Vec::new(), rows).with_summary(summary))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Captured from the development VM (abridged).
    const SAMPLE: &str = "MemTotal:       24684112 kB
MemFree:        23631840 kB
MemAvailable:   24302432 kB
Buffers:            2716 kB
Cached:           844248 kB
SwapCached:            0 kB
Shmem:              9176 kB
SReclaimable:      40000 kB
SwapTotal:       2097148 kB
SwapFree:        1048574 kB
HugePages_Total:       0
";

    #[test]
    fn parses_and_counts_like_free() {
        let m = parse_meminfo(SAMPLE);
        assert_eq!(m["MemTotal"], 24_684_112 * 1024);
        assert_eq!(m["HugePages_Total"], 0);
        let rows = memory_rows(&m);
        assert_eq!(rows[0]["used"], json!((24_684_112u64 - 24_302_432) * 1024));
        assert_eq!(
            rows[0]["buff_cache"],
            json!((2716u64 + 844_248 + 40_000) * 1024)
        );
        assert_eq!(rows[1]["used"], json!(1_048_574u64 * 1024));
        assert_eq!(rows[1]["use_percent"], json!(50.0));
    }

    #[test]
    fn old_kernels_without_mem_available() {
        let m =
            parse_meminfo("MemTotal: 1000 kB\nMemFree: 100 kB\nBuffers: 100 kB\nCached: 200 kB\n");
        let rows = memory_rows(&m);
        assert_eq!(rows[0]["available"], json!(400 * 1024));
        assert_eq!(rows[1]["use_percent"], json!(0.0));
    }
}
