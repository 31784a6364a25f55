//! The systemd backend: `systemctl` for state and changes, `journalctl` for logs.
//!
//! This machine (the development container) does not run systemd, so the parsers below are
//! tested with output in the exact formats systemd 252 (Debian 12) prints, written out by
//! hand, and the commands themselves run only where systemd is PID 1.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use super::{LogLine, Op, Status};
use crate::ctx::{Ctx, RunOpts};
use crate::error::{Result, ToolError};
use crate::probe::monotonic_to_unix;

/// Unit types `systemctl` accepts; a name without one of these suffixes is a service.
const UNIT_SUFFIXES: &[&str] = &[
    ".service",
    ".socket",
    ".timer",
    ".target",
    ".mount",
    ".automount",
    ".path",
    ".slice",
    ".scope",
    ".swap",
    ".device",
];

/// `nginx` → `nginx.service`.
pub(crate) fn unit(name: &str) -> String {
    if UNIT_SUFFIXES.iter().any(|s| name.ends_with(s)) {
        name.to_owned()
    } else {
        format!("{name}.service")
    }
}

const PROPS: &str = "Id,Description,LoadState,ActiveState,SubState,UnitFileState,MainPID,StateChangeTimestampMonotonic";

fn systemctl(ctx: &Ctx<'_>, args: &[&str]) -> Result<String> {
    let mut argv = vec!["systemctl", "--no-pager"];
    argv.extend_from_slice(args);
    let out = ctx.run_read_only(&argv, RunOpts::default())?;
    if !out.success() {
        return Err(ToolError::Failed(format!(
            "`{}` failed: {}",
            argv.join(" "),
            out.stderr_text().trim()
        )));
    }
    Ok(out.stdout_text())
}

/// `systemctl show` output: blocks of `Key=Value` lines separated by blank lines.
pub(crate) fn parse_show(text: &str) -> Vec<BTreeMap<String, String>> {
    let mut blocks = Vec::new();
    let mut cur = BTreeMap::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            if !cur.is_empty() {
                blocks.push(std::mem::take(&mut cur));
            }
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            cur.insert(k.to_owned(), v.to_owned());
        }
    }
    if !cur.is_empty() {
        blocks.push(cur);
    }
    blocks
}

fn status_from(props: &BTreeMap<String, String>, name: &str) -> Status {
    let get = |k: &str| props.get(k).filter(|v| !v.is_empty()).cloned();
    Status {
        name: name.to_owned(),
        state: get("ActiveState").unwrap_or_else(|| "unknown".into()),
        sub: get("SubState"),
        enabled: get("UnitFileState").unwrap_or_else(|| "unknown".into()),
        pid: get("MainPID")
            .and_then(|p| p.parse::<u32>().ok())
            .filter(|p| *p != 0),
        since: get("StateChangeTimestampMonotonic")
            .and_then(|t| t.parse::<u64>().ok())
            .and_then(monotonic_to_unix),
        description: get("Description"),
    }
}

pub(crate) fn status(ctx: &Ctx<'_>, name: &str) -> Result<Status> {
    let u = unit(name);
    let text = systemctl(ctx, &["show", "--property", PROPS, &u])?;
    let blocks = parse_show(&text);
    let props = blocks.first().cloned().unwrap_or_default();
    if props.get("LoadState").map(String::as_str) == Some("not-found") {
        return Err(ToolError::InvalidArgs(format!(
            "no service named {name} on this machine; `svc.list` shows the services that exist"
        )));
    }
    Ok(status_from(&props, name))
}

/// `systemctl list-units --plain --no-legend`: (unit, load, active, sub, description).
pub(crate) fn parse_list_units(text: &str) -> Vec<(String, String, String, String, String)> {
    text.lines()
        .filter_map(|l| {
            // Failed units carry a bullet in front on some versions.
            let l = l.trim_start().trim_start_matches(['●', '*']).trim_start();
            let mut it = l.split_whitespace();
            let unit = it.next()?.to_owned();
            let load = it.next()?.to_owned();
            let active = it.next()?.to_owned();
            let sub = it.next()?.to_owned();
            let desc = it.collect::<Vec<_>>().join(" ");
            Some((unit, load, active, sub, desc))
        })
        .collect()
}

/// `systemctl list-unit-files --no-legend`: unit → state.
pub(crate) fn parse_unit_files(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            Some((it.next()?.to_owned(), it.next()?.to_owned()))
        })
        .collect()
}

pub(crate) fn list(ctx: &Ctx<'_>) -> Result<Vec<Status>> {
    let units = parse_list_units(&systemctl(
        ctx,
        &[
            "list-units",
            "--type=service",
            "--all",
            "--plain",
            "--no-legend",
        ],
    )?);
    let files = parse_unit_files(&systemctl(
        ctx,
        &["list-unit-files", "--type=service", "--no-legend"],
    )?);
    let mut out: BTreeMap<String, Status> = BTreeMap::new();
    for (u, load, active, sub, desc) in &units {
        if load == "not-found" {
            continue;
        }
        let name = u.strip_suffix(".service").unwrap_or(u).to_owned();
        out.insert(
            u.clone(),
            Status {
                name,
                state: active.clone(),
                sub: Some(sub.clone()),
                enabled: files.get(u).cloned().unwrap_or_else(|| "unknown".into()),
                pid: None,
                since: None,
                description: (!desc.is_empty()).then(|| desc.clone()),
            },
        );
    }
    // Installed but never loaded (typically disabled) services.
    for (u, state) in &files {
        if u.contains("@.") || out.contains_key(u) {
            continue;
        }
        out.insert(
            u.clone(),
            Status {
                name: u.strip_suffix(".service").unwrap_or(u).to_owned(),
                state: "inactive".into(),
                sub: Some("dead".into()),
                enabled: state.clone(),
                ..Status::default()
            },
        );
    }
    // Main pids and state-change times of the loaded ones, in one call.
    let loaded: Vec<&str> = units
        .iter()
        .filter(|u| u.1 != "not-found")
        .map(|u| u.0.as_str())
        .collect();
    if !loaded.is_empty() {
        let mut args = vec![
            "show",
            "--property",
            "Id,MainPID,StateChangeTimestampMonotonic",
        ];
        args.extend(loaded);
        if let Ok(text) = systemctl(ctx, &args) {
            for b in parse_show(&text) {
                if let Some(s) = b.get("Id").and_then(|id| out.get_mut(id)) {
                    let full = status_from(&b, &s.name);
                    s.pid = full.pid;
                    s.since = full.since;
                }
            }
        }
    }
    Ok(out.into_values().collect())
}

pub(crate) fn act(ctx: &Ctx<'_>, name: &str, op: Op) -> Result<()> {
    let u = unit(name);
    let out = ctx.run(
        &[
            "systemctl",
            "--no-pager",
            "--no-ask-password",
            op.as_str(),
            &u,
        ],
        RunOpts {
            // systemd's own start/stop timeout is 90 s by default.
            timeout: Some(Duration::from_secs(180)),
            ..RunOpts::default()
        },
    )?;
    if out.success() {
        Ok(())
    } else {
        Err(ToolError::Failed(format!(
            "systemctl {} {u} failed{}: {}",
            op.as_str(),
            out.code.map(|c| format!(" (exit {c})")).unwrap_or_default(),
            out.stderr_text().trim()
        )))
    }
}

/// One `journalctl -o json` line.
pub(crate) fn parse_journal_line(line: &str) -> Option<LogLine> {
    let v: Value = serde_json::from_str(line).ok()?;
    let message = match v.get("MESSAGE")? {
        Value::String(s) => s.clone(),
        // Non-UTF-8 messages come as byte arrays.
        Value::Array(bytes) => {
            let b: Vec<u8> = bytes
                .iter()
                .filter_map(|x| x.as_u64().map(|n| n as u8))
                .collect();
            String::from_utf8_lossy(&b).into_owned()
        }
        _ => return None,
    };
    let time = v
        .get("__REALTIME_TIMESTAMP")
        .and_then(Value::as_str)
        .and_then(|t| t.parse::<i64>().ok())
        .map(|us| us / 1_000_000);
    let ident = v
        .get("SYSLOG_IDENTIFIER")
        .or_else(|| v.get("_COMM"))
        .and_then(Value::as_str)
        .unwrap_or("?");
    let source = match v.get("_PID").and_then(Value::as_str) {
        Some(p) => format!("{ident}[{p}]"),
        None => ident.to_owned(),
    };
    Some(LogLine {
        time,
        source,
        message,
    })
}

pub(crate) fn logs(
    ctx: &Ctx<'_>,
    name: &str,
    lines: usize,
    since: Option<u64>,
) -> Result<Vec<LogLine>> {
    let u = unit(name);
    let n = lines.to_string();
    let mut argv = vec!["journalctl", "--no-pager", "-o", "json", "-u", &u, "-n", &n];
    let since_arg;
    if let Some(s) = since {
        since_arg = format!("@{}", crate::probe::now_unix() - s as i64);
        argv.push("--since");
        argv.push(&since_arg);
    }
    let out = ctx.run_read_only(&argv, RunOpts::default())?;
    if !out.success() {
        return Err(ToolError::Failed(format!(
            "journalctl -u {u} failed: {}",
            out.stderr_text().trim()
        )));
    }
    Ok(out
        .stdout_text()
        .lines()
        .filter_map(parse_journal_line)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    // `systemctl show --property … cron.service` on Debian 12 (systemd 252).
    const SHOW: &str = "Id=cron.service
Description=Regular background program processing daemon
LoadState=loaded
ActiveState=active
SubState=running
UnitFileState=enabled
MainPID=612
StateChangeTimestampMonotonic=9182736
";

    #[test]
    fn show_is_parsed() {
        let b = parse_show(SHOW);
        assert_eq!(b.len(), 1);
        let s = status_from(&b[0], "cron");
        assert_eq!(s.state, "active");
        assert_eq!(s.sub.as_deref(), Some("running"));
        assert_eq!(s.enabled, "enabled");
        assert_eq!(s.pid, Some(612));
        assert!(s.since.is_some());
        assert_eq!(
            s.description.as_deref(),
            Some("Regular background program processing daemon")
        );
    }

    #[test]
    fn inactive_unit_has_no_pid_or_time() {
        let b = parse_show(
            "Id=x.service\nActiveState=inactive\nSubState=dead\nMainPID=0\nUnitFileState=\nStateChangeTimestampMonotonic=0\n",
        );
        let s = status_from(&b[0], "x");
        assert_eq!(
            (s.pid, s.since, s.enabled.as_str()),
            (None, None, "unknown")
        );
    }

    #[test]
    fn several_show_blocks() {
        let b = parse_show("Id=a.service\nMainPID=1\n\nId=b.service\nMainPID=0\n");
        assert_eq!(b.len(), 2);
        assert_eq!(b[1]["Id"], "b.service");
    }

    #[test]
    fn list_units_lines() {
        let text = "cron.service                     loaded    active   running Regular background program processing daemon
● nginx.service                  loaded    failed   failed  A high performance web server
ssh.service                      loaded    inactive dead    OpenBSD Secure Shell server
";
        let u = parse_list_units(text);
        assert_eq!(u.len(), 3);
        assert_eq!(u[1].0, "nginx.service");
        assert_eq!(u[1].2, "failed");
        assert_eq!(u[0].4, "Regular background program processing daemon");
    }

    #[test]
    fn unit_files_lines() {
        let f = parse_unit_files(
            "cron.service enabled enabled\ngetty@.service enabled enabled\nssh.service disabled enabled\nsystemd-journald.service static -\n",
        );
        assert_eq!(f["ssh.service"], "disabled");
        assert_eq!(f["systemd-journald.service"], "static");
    }

    #[test]
    fn journal_json_lines() {
        let l = parse_journal_line(r#"{"__REALTIME_TIMESTAMP":"1716200000123456","MESSAGE":"Started cron.","SYSLOG_IDENTIFIER":"systemd","_PID":"1","PRIORITY":"6"}"#).unwrap();
        assert_eq!(l.time, Some(1_716_200_000));
        assert_eq!(l.source, "systemd[1]");
        assert_eq!(l.message, "Started cron.");
        let l = parse_journal_line(r#"{"MESSAGE":[104,105,255],"_COMM":"x"}"#).unwrap();
        assert_eq!(l.message, "hi\u{fffd}");
        assert!(parse_journal_line("not json").is_none());
    }

    #[test]
    fn unit_names() {
        assert_eq!(unit("nginx"), "nginx.service");
        assert_eq!(unit("nginx.service"), "nginx.service");
        assert_eq!(unit("apt-daily.timer"), "apt-daily.timer");
    }
}
