//! The `proc` tool: running processes — list, find, signal.
//!
//! Processes are read from /proc in this process, never through `ps`: a sandboxed child has
//! its own PID namespace and would see only itself.

use std::time::Duration;

use kernos_core::{ColumnKind, Effect, EffectKind, Reversibility, Target};
use serde_json::{Map, Value, json};

use crate::args::{ProcFind, ProcList, ProcSort};
use crate::output::{Output, human_bytes, row};
use crate::registry::{Action, Meta, Registry};
use crate::sys::account::{Names, user_id};
use crate::sys::{meminfo, system_read};
use crate::undo::Recorder;
use crate::{Ctx, Result, ToolError};

mod kill;
pub(crate) mod procfs;

pub use kill::Kill;
use procfs::Proc;

/// How long CPU use is measured over. `top` needs two readings; this keeps the whole action
/// under a quarter of a second.
const CPU_SAMPLE: Duration = Duration::from_millis(200);

/// Registers the `proc` actions.
pub fn register(r: &mut Registry) {
    r.register(List);
    r.register(Find);
    r.register(Kill);
}

const COLUMNS: &[(&str, ColumnKind)] = &[
    ("pid", ColumnKind::Pid),
    ("ppid", ColumnKind::Pid),
    ("user", ColumnKind::Text),
    ("name", ColumnKind::Text),
    ("state", ColumnKind::Text),
    ("cpu_percent", ColumnKind::Percent),
    ("memory", ColumnKind::Bytes),
    ("memory_percent", ColumnKind::Percent),
    ("threads", ColumnKind::Int),
    ("started", ColumnKind::Time),
    ("command", ColumnKind::Text),
];

/// Rows for sampled processes.
fn rows(list: &[(Proc, f64)]) -> Vec<Map<String, Value>> {
    let total = meminfo()
        .ok()
        .and_then(|m| m.get("MemTotal").copied())
        .unwrap_or(0);
    let boot = procfs::boot_time();
    let hz = procfs::clk_tck();
    let mut names = Names::default();
    list.iter()
        .map(|(p, cpu)| {
            row([
                ("pid", json!(p.pid)),
                ("ppid", json!(p.ppid)),
                ("user", json!(names.get(p.uid))),
                ("name", json!(p.name)),
                ("state", json!(procfs::state_name(p.state))),
                ("cpu_percent", json!(cpu)),
                ("memory", json!(p.rss)),
                ("memory_percent", json!(crate::sys::pct(p.rss, total))),
                ("threads", json!(p.threads)),
                ("started", json!(p.started(boot, hz))),
                ("command", json!(p.command())),
            ])
        })
        .collect()
}

/// `proc.list`.
#[derive(Debug, Clone, Copy)]
pub struct List;

impl Action for List {
    type Args = ProcList;

    fn meta(&self) -> Meta {
        Meta {
            tool: "proc",
            name: "list",
            summary: "Running processes with CPU and memory use, sorted, optionally of one user",
            effects: &[EffectKind::Read],
            reversibility: Reversibility::ReadOnly,
            output: COLUMNS,
        }
    }

    fn effects(&self, args: &ProcList, _: &Ctx<'_>) -> Result<Vec<Effect>> {
        if let Some(u) = &args.user {
            user_id(u).ok_or_else(|| no_such_user(u))?;
        }
        Ok(system_read())
    }

    fn execute(&self, args: &ProcList, ctx: &Ctx<'_>, _: &mut Recorder<'_>) -> Result<Output> {
        let uid = match &args.user {
            Some(u) => Some(user_id(u).ok_or_else(|| no_such_user(u))?),
            None => None,
        };
        // Kernel threads own no memory and cannot be managed from user space; they would bury
        // the processes people ask about.
        let mut list = procfs::sample(CPU_SAMPLE, |p| {
            !p.kernel_thread && uid.is_none_or(|u| p.uid == u)
        });
        ctx.check_cancel()?;
        match args.sort {
            ProcSort::Cpu => list.sort_by(|a, b| {
                b.1.total_cmp(&a.1)
                    .then(b.0.rss.cmp(&a.0.rss))
                    .then(a.0.pid.cmp(&b.0.pid))
            }),
            ProcSort::Memory => {
                list.sort_by(|a, b| b.0.rss.cmp(&a.0.rss).then(a.0.pid.cmp(&b.0.pid)))
            }
            ProcSort::Pid => list.sort_by_key(|p| p.0.pid),
            ProcSort::Name => list.sort_by(|a, b| {
                a.0.name
                    .to_lowercase()
                    .cmp(&b.0.name.to_lowercase())
                    .then(a.0.pid.cmp(&b.0.pid))
            }),
        }
        let total = list.len();
        let cpu: f64 = list.iter().map(|p| p.1).sum();
        let mem: u64 = list.iter().map(|p| p.0.rss).sum();
        let limit = args.limit.unwrap_or(usize::MAX);
        let truncated = total > limit;
        list.truncate(limit);
        let who = args
            .user
            .as_deref()
            .map(|u| format!(" of {u}"))
            .unwrap_or_default();
        let shown = if truncated {
            format!("top {} of {total} processes{who}", list.len())
        } else {
            format!("{total} processes{who}")
        };
        let mut out = Output::table(Vec::new(), rows(&list)).with_summary(format!(
            "{shown}; together {:.1}% CPU, {} memory",
            cpu,
            human_bytes(mem)
        ));
        out.truncated = truncated;
        Ok(out)
    }
}

fn no_such_user(u: &str) -> ToolError {
    ToolError::InvalidArgs(format!(
        "there is no user named {u:?} on this system; sys.users shows who is logged in"
    ))
}

/// `proc.find`.
#[derive(Debug, Clone, Copy)]
pub struct Find;

impl Action for Find {
    type Args = ProcFind;

    fn meta(&self) -> Meta {
        Meta {
            tool: "proc",
            name: "find",
            summary: "Processes whose name or command line contains a string",
            effects: &[EffectKind::Read],
            reversibility: Reversibility::ReadOnly,
            output: COLUMNS,
        }
    }

    fn effects(&self, args: &ProcFind, _: &Ctx<'_>) -> Result<Vec<Effect>> {
        if args.name.trim().is_empty() {
            return Err(ToolError::InvalidArgs(
                "name is empty: say what to look for, e.g. \"nginx\"".into(),
            ));
        }
        Ok(system_read())
    }

    fn execute(&self, args: &ProcFind, ctx: &Ctx<'_>, _: &mut Recorder<'_>) -> Result<Output> {
        let needle = args.name.trim().to_lowercase();
        if needle.is_empty() {
            return Err(ToolError::InvalidArgs(
                "name is empty: say what to look for, e.g. \"nginx\"".into(),
            ));
        }
        let me = std::process::id();
        let carriers = request_carriers();
        let list = procfs::sample(CPU_SAMPLE, |p| {
            if p.pid == me {
                return false;
            }
            let by_name = p.name.to_lowercase().contains(&needle);
            let by_command = p.command().to_lowercase().contains(&needle);
            // Kernos and its wrappers match only because they carry the request's words.
            by_name || (by_command && !carriers.contains(&p.pid))
        });
        ctx.check_cancel()?;
        let summary = match list.as_slice() {
            [] => format!(
                "no running process matches {:?}; proc.list shows all processes",
                args.name
            ),
            l => {
                let names: Vec<String> = l
                    .iter()
                    .take(5)
                    .map(|(p, _)| format!("{} ({})", p.name, p.pid))
                    .collect();
                format!(
                    "{} {} {:?}: {}{}",
                    l.len(),
                    if l.len() == 1 {
                        "process matches"
                    } else {
                        "processes match"
                    },
                    args.name,
                    names.join(", "),
                    if l.len() > 5 { ", …" } else { "" }
                )
            }
        };
        Ok(Output::table(Vec::new(), rows(&list)).with_summary(summary))
    }
}

/// Kernos's own process (never a match) and its ancestors (`timeout 60 kernos "is sshd running"`, `sh -c`,
/// `sudo`): their command lines hold the request, so a match on the command line alone says
/// nothing about what runs. They still match by name: an ancestor really named `sshd` (a login
/// over ssh) is an sshd that runs. PID 1 is never counted as a wrapper.
fn request_carriers() -> std::collections::HashSet<u32> {
    let mut out = std::collections::HashSet::new();
    let mut pid = std::process::id();
    while pid > 1 && out.insert(pid) {
        match procfs::read(pid) {
            Some(p) => pid = p.ppid,
            None => break,
        }
    }
    out
}

/// The concrete effects of signalling a process: a write on it, plus privileged when it is
/// not an ordinary process of the user Kernos acts for.
pub(crate) fn process_effects(p: &Proc, env_uid: u32, uid_min: u32) -> Vec<Effect> {
    let target = Target::Process {
        pid: p.pid,
        name: Some(p.name.clone()),
        uid: Some(p.uid),
    };
    let mut e = vec![Effect {
        kind: EffectKind::Write,
        target: target.clone(),
    }];
    let system = p.uid == 0 || p.uid < uid_min || p.kernel_thread || p.pid == 1;
    if system || p.uid != env_uid {
        e.push(Effect {
            kind: EffectKind::Privileged,
            target,
        });
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proc(pid: u32, uid: u32) -> Proc {
        Proc {
            pid,
            ppid: 1,
            comm: "x".into(),
            name: "x".into(),
            state: 'S',
            uid,
            cmdline: vec!["x".into()],
            rss: 0,
            threads: 1,
            starttime: 0,
            ticks: 0,
            kernel_thread: false,
        }
    }

    fn privileged(p: &Proc, env_uid: u32) -> bool {
        let e = process_effects(p, env_uid, 1000);
        assert_eq!(e[0].kind, EffectKind::Write);
        assert!(
            matches!(e[0].target, Target::Process { pid, uid: Some(u), .. } if pid == p.pid && u == p.uid)
        );
        e.iter().any(|e| e.kind == EffectKind::Privileged)
    }

    #[test]
    fn who_is_privileged_to_signal() {
        // One's own ordinary process: a plain write.
        assert!(!privileged(&proc(500, 1000), 1000));
        // Another user's, root's, a system account's, PID 1, a kernel thread: privileged.
        assert!(privileged(&proc(500, 1001), 1000));
        assert!(privileged(&proc(500, 0), 0));
        assert!(privileged(&proc(500, 33), 33));
        assert!(privileged(&proc(1, 1000), 1000));
        let mut k = proc(2, 1000);
        k.kernel_thread = true;
        assert!(privileged(&k, 1000));
    }
}
