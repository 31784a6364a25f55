//! `sys.uptime`: how long the machine has been up, when it booted, and its load.

use kernos_core::{ColumnKind, Effect, EffectKind, Reversibility};
use serde_json::json;

use super::cpu::loadavg;
use super::time::{format_local, now};
use super::{read_file, system_read};
use crate::args::NoArgs;
use crate::output::{Output, row};
use crate::registry::{Action, Meta};
use crate::undo::Recorder;
use crate::{Ctx, Result, ToolError};

/// Seconds since boot, from the first field of /proc/uptime.
pub(crate) fn parse_uptime(s: &str) -> Option<f64> {
    s.split_whitespace().next()?.parse().ok()
}

/// Seconds since boot.
pub(crate) fn uptime_secs() -> Result<f64> {
    parse_uptime(&read_file("/proc/uptime")?)
        .ok_or_else(|| ToolError::Failed("cannot parse /proc/uptime".into()))
}

/// `3 days, 4 h 5 min` style.
pub(crate) fn human_duration(secs: u64) -> String {
    let (d, h, m) = (secs / 86_400, secs % 86_400 / 3600, secs % 3600 / 60);
    let mut parts = Vec::new();
    if d > 0 {
        parts.push(format!("{d} day{}", if d == 1 { "" } else { "s" }));
    }
    if h > 0 {
        parts.push(format!("{h} h"));
    }
    if m > 0 || parts.is_empty() {
        if d == 0 && h == 0 && m == 0 {
            parts.push(format!("{secs} s"));
        } else {
            parts.push(format!("{m} min"));
        }
    }
    parts.join(" ")
}

/// `sys.uptime`.
#[derive(Debug, Clone, Copy)]
pub struct Uptime;

impl Action for Uptime {
    type Args = NoArgs;

    fn meta(&self) -> Meta {
        Meta {
            tool: "sys",
            name: "uptime",
            summary: "How long the system has been running, when it booted, load averages",
            effects: &[EffectKind::Read],
            reversibility: Reversibility::ReadOnly,
            output: &[
                ("uptime", ColumnKind::Duration),
                ("booted", ColumnKind::Time),
                ("load_1", ColumnKind::Float),
                ("load_5", ColumnKind::Float),
                ("load_15", ColumnKind::Float),
                ("users", ColumnKind::Int),
            ],
        }
    }

    fn effects(&self, _: &NoArgs, _: &Ctx<'_>) -> Result<Vec<Effect>> {
        Ok(system_read())
    }

    fn execute(&self, _: &NoArgs, _: &Ctx<'_>, _: &mut Recorder<'_>) -> Result<Output> {
        let up = uptime_secs()?;
        let load = loadavg()?;
        let booted = now() - up as i64;
        let users = super::users::sessions(std::path::Path::new(super::users::UTMP))
            .map(|s| {
                let mut names: Vec<&str> = s.iter().map(|s| s.user.as_str()).collect();
                names.sort_unstable();
                names.dedup();
                names.len()
            })
            .unwrap_or(0);
        let summary = format!(
            "up {}, since {}; load {:.2} {:.2} {:.2}",
            human_duration(up as u64),
            format_local(booted),
            load[0],
            load[1],
            load[2]
        );
        Ok(Output::table(
            Vec::new(),
            vec![row([
                ("uptime", json!(up.floor())),
                ("booted", json!(booted)),
                ("load_1", json!(load[0])),
                ("load_5", json!(load[1])),
                ("load_15", json!(load[2])),
                ("users", json!(users)),
            ])],
        )
        .with_summary(summary))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_uptime() {
        assert_eq!(parse_uptime("2328.85 2724.09\n"), Some(2328.85));
        assert_eq!(parse_uptime(""), None);
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(human_duration(42), "42 s");
        assert_eq!(human_duration(2328), "38 min");
        assert_eq!(human_duration(90_061), "1 day 1 h 1 min");
        assert_eq!(human_duration(3 * 86_400), "3 days");
        assert_eq!(human_duration(7200), "2 h");
    }
}
