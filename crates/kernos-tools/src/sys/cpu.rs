//! `sys.cpu`: utilisation per core and overall, sampled from /proc/stat over a short interval,
//! plus load averages and the core count.

use std::time::Duration;

use kernos_core::{ColumnKind, Effect, EffectKind, Reversibility};
use serde_json::{Value, json};

use super::{read_file, system_read};
use crate::args::NoArgs;
use crate::output::{Output, row};
use crate::registry::{Action, Meta};
use crate::undo::Recorder;
use crate::{Ctx, Result, ToolError};

/// How long utilisation is measured over: long enough to be meaningful, short enough that the
/// answer feels instant.
const SAMPLE: Duration = Duration::from_millis(200);

/// Jiffy counters of one `cpu` line of /proc/stat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Times {
    pub user: u64,
    pub nice: u64,
    pub system: u64,
    pub idle: u64,
    pub iowait: u64,
    pub irq: u64,
    pub softirq: u64,
    pub steal: u64,
}

impl Times {
    fn total(&self) -> u64 {
        // guest and guest_nice are already counted in user and nice.
        self.user
            + self.nice
            + self.system
            + self.idle
            + self.iowait
            + self.irq
            + self.softirq
            + self.steal
    }
}

/// The `cpu` (overall, name `all`) and `cpuN` lines of /proc/stat.
pub(crate) fn parse_stat(s: &str) -> Vec<(String, Times)> {
    s.lines()
        .filter(|l| l.starts_with("cpu"))
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let name = it.next()?;
            let v: Vec<u64> = it.map(|x| x.parse().unwrap_or(0)).collect();
            let f = |i: usize| v.get(i).copied().unwrap_or(0);
            let name = if name == "cpu" { "all" } else { name };
            Some((
                name.to_owned(),
                Times {
                    user: f(0),
                    nice: f(1),
                    system: f(2),
                    idle: f(3),
                    iowait: f(4),
                    irq: f(5),
                    softirq: f(6),
                    steal: f(7),
                },
            ))
        })
        .collect()
}

/// Percent of the interval between two samples spent in each state.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Usage {
    pub busy: f64,
    pub user: f64,
    pub system: f64,
    pub iowait: f64,
    pub steal: f64,
    pub idle: f64,
}

pub(crate) fn usage(a: &Times, b: &Times) -> Usage {
    let total = b.total().saturating_sub(a.total());
    let p = |x: u64, y: u64| {
        if total == 0 {
            0.0
        } else {
            (y.saturating_sub(x) as f64 * 1000.0 / total as f64).round() / 10.0
        }
    };
    let idle = p(a.idle, b.idle);
    let iowait = p(a.iowait, b.iowait);
    Usage {
        busy: if total == 0 {
            0.0
        } else {
            ((100.0 - idle - iowait) * 10.0).round().max(0.0) / 10.0
        },
        user: p(a.user + a.nice, b.user + b.nice),
        system: p(a.system + a.irq + a.softirq, b.system + b.irq + b.softirq),
        iowait,
        steal: p(a.steal, b.steal),
        idle,
    }
}

/// Load averages over 1, 5 and 15 minutes.
pub(crate) fn parse_loadavg(s: &str) -> Option<[f64; 3]> {
    let mut it = s.split_whitespace().map(|x| x.parse::<f64>().ok());
    Some([it.next()??, it.next()??, it.next()??])
}

/// Load averages of this machine.
pub(crate) fn loadavg() -> Result<[f64; 3]> {
    parse_loadavg(&read_file("/proc/loadavg")?)
        .ok_or_else(|| ToolError::Failed("cannot parse /proc/loadavg".into()))
}

/// Processors online.
pub(crate) fn cores() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    if n > 0 { n as u64 } else { 1 }
}

/// `sys.cpu`.
#[derive(Debug, Clone, Copy)]
pub struct Cpu;

impl Action for Cpu {
    type Args = NoArgs;

    fn meta(&self) -> Meta {
        Meta {
            tool: "sys",
            name: "cpu",
            summary: "CPU utilisation per core and overall, load averages, core count",
            effects: &[EffectKind::Read],
            reversibility: Reversibility::ReadOnly,
            output: &[
                ("cpu", ColumnKind::Text),
                ("busy_percent", ColumnKind::Percent),
                ("user_percent", ColumnKind::Percent),
                ("system_percent", ColumnKind::Percent),
                ("iowait_percent", ColumnKind::Percent),
                ("steal_percent", ColumnKind::Percent),
                ("idle_percent", ColumnKind::Percent),
                ("load_1", ColumnKind::Float),
                ("load_5", ColumnKind::Float),
                ("load_15", ColumnKind::Float),
                ("cores", ColumnKind::Int),
            ],
        }
    }

    fn effects(&self, _: &NoArgs, _: &Ctx<'_>) -> Result<Vec<Effect>> {
        Ok(system_read())
    }

    fn execute(&self, _: &NoArgs, ctx: &Ctx<'_>, _: &mut Recorder<'_>) -> Result<Output> {
        let first = parse_stat(&read_file("/proc/stat")?);
        std::thread::sleep(SAMPLE);
        ctx.check_cancel()?;
        let second = parse_stat(&read_file("/proc/stat")?);
        let load = loadavg()?;
        let cores = cores();
        let mut rows = Vec::new();
        let mut overall = None;
        for (name, b) in &second {
            let Some((_, a)) = first.iter().find(|(n, _)| n == name) else {
                continue;
            };
            let u = usage(a, b);
            let all = name == "all";
            if all {
                overall = Some(u);
            }
            let opt = |v: Value| if all { v } else { Value::Null };
            rows.push(row([
                ("cpu", json!(name)),
                ("busy_percent", json!(u.busy)),
                ("user_percent", json!(u.user)),
                ("system_percent", json!(u.system)),
                ("iowait_percent", json!(u.iowait)),
                ("steal_percent", json!(u.steal)),
                ("idle_percent", json!(u.idle)),
                ("load_1", opt(json!(load[0]))),
                ("load_5", opt(json!(load[1]))),
                ("load_15", opt(json!(load[2]))),
                ("cores", opt(json!(cores))),
            ]));
        }
        let busy = overall.map(|u| u.busy).unwrap_or(0.0);
        let summary = format!(
            "{busy}% busy over {} ms; load {:.2} {:.2} {:.2} on {cores} core{}",
            SAMPLE.as_millis(),
            load[0],
            load[1],
            load[2],
            if cores == 1 { "" } else { "s" }
        );
        Ok(Output::table(Vec::new(), rows).with_summary(summary))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Two samples captured from the development VM, 200 ms apart (abridged).
    const A: &str = "cpu  143646 0 29428 272408 10124 0 807 3394 0 0
cpu0 63305 0 8833 155680 1400 0 83 1629 0 0
cpu1 80340 0 20595 116728 8724 0 724 1764 0 0
intr 3841775 0 0 0
btime 1795354399
";
    const B: &str = "cpu  143656 0 29438 272438 10124 0 807 3394 0 0
cpu0 63305 0 8833 155700 1400 0 83 1629 0 0
cpu1 80350 0 20605 116738 8724 0 724 1764 0 0
intr 3841999 0 0 0
btime 1795354399
";

    #[test]
    fn samples_to_percentages() {
        let a = parse_stat(A);
        let b = parse_stat(B);
        assert_eq!(
            a.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
            ["all", "cpu0", "cpu1"]
        );
        assert_eq!(a[1].1.steal, 1629);
        let all = usage(&a[0].1, &b[0].1);
        assert_eq!(all.busy, 40.0);
        assert_eq!(all.user, 20.0);
        assert_eq!(all.idle, 60.0);
        let c0 = usage(&a[1].1, &b[1].1);
        assert_eq!((c0.busy, c0.idle), (0.0, 100.0));
        let c1 = usage(&a[2].1, &b[2].1);
        assert_eq!((c1.busy, c1.user, c1.system), (66.7, 33.3, 33.3));
        // No time passed: nothing to divide by, and no NaN.
        assert_eq!(usage(&a[0].1, &a[0].1).busy, 0.0);
    }

    #[test]
    fn load_averages() {
        assert_eq!(
            parse_loadavg("1.62 2.71 1.99 1/93 22659\n"),
            Some([1.62, 2.71, 1.99])
        );
        assert_eq!(parse_loadavg("garbage"), None);
    }
}
