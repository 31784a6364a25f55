//! `proc.kill`: send a signal to a process by id, or to every process with a name.
//!
//! Safety rests on two rules. The effects name every process that would be signalled, so
//! policy sees (and the user approves) exactly those; and execute signals only processes that
//! appear in the step's approved effects and still are what they were — a process that started
//! since with the same name, or took over a recycled pid, is never touched. Signals go through
//! a pidfd where the kernel has them, so a pid recycled between the check and the signal cannot
//! redirect it.

use std::time::{Duration, Instant};

use kernos_core::{ColumnKind, Effect, EffectKind, Reversibility, Target};
use serde_json::json;

use super::process_effects;
use super::procfs::{self, Proc};
use crate::args::ProcKill;
use crate::output::{Change, Output, row};
use crate::registry::{Action, Meta};
use crate::sys::account::{Names, uid_min};
use crate::undo::Recorder;
use crate::{Ctx, Result, ToolError};

/// Signals by name, as `kill -l` lists them on Linux.
const SIGNALS: &[(&str, i32)] = &[
    ("HUP", libc::SIGHUP),
    ("INT", libc::SIGINT),
    ("QUIT", libc::SIGQUIT),
    ("ILL", libc::SIGILL),
    ("TRAP", libc::SIGTRAP),
    ("ABRT", libc::SIGABRT),
    ("BUS", libc::SIGBUS),
    ("FPE", libc::SIGFPE),
    ("KILL", libc::SIGKILL),
    ("USR1", libc::SIGUSR1),
    ("SEGV", libc::SIGSEGV),
    ("USR2", libc::SIGUSR2),
    ("PIPE", libc::SIGPIPE),
    ("ALRM", libc::SIGALRM),
    ("TERM", libc::SIGTERM),
    ("CHLD", libc::SIGCHLD),
    ("CONT", libc::SIGCONT),
    ("STOP", libc::SIGSTOP),
    ("TSTP", libc::SIGTSTP),
    ("TTIN", libc::SIGTTIN),
    ("TTOU", libc::SIGTTOU),
    ("URG", libc::SIGURG),
    ("XCPU", libc::SIGXCPU),
    ("XFSZ", libc::SIGXFSZ),
    ("VTALRM", libc::SIGVTALRM),
    ("PROF", libc::SIGPROF),
    ("WINCH", libc::SIGWINCH),
    ("IO", libc::SIGIO),
    ("PWR", libc::SIGPWR),
    ("SYS", libc::SIGSYS),
];

/// A parsed signal: its number and the name shown in changes (`TERM`, or the number).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Signal {
    pub number: i32,
    pub name: String,
}

/// Parses `TERM`, `SIGTERM`, `sigterm`, `-9`, `9`, `IOT`, `CLD`, `POLL`.
pub(crate) fn parse_signal(s: &str) -> Result<Signal> {
    let t = s.trim().trim_start_matches('-');
    let upper = t.to_ascii_uppercase();
    let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
    let by_name = |n: &str| SIGNALS.iter().find(|(name, _)| *name == n).map(|(_, v)| *v);
    let number = if let Ok(n) = bare.parse::<i32>() {
        Some(n)
    } else {
        by_name(bare).or(match bare {
            "IOT" => Some(libc::SIGABRT),
            "CLD" => Some(libc::SIGCHLD),
            "POLL" => Some(libc::SIGIO),
            _ => None,
        })
    };
    match number {
        Some(0) => Err(ToolError::InvalidArgs(
            "signal 0 only checks that a process exists; use proc.find for that".into(),
        )),
        // 64 is SIGRTMAX on Linux.
        Some(n) if (1..=64).contains(&n) => Ok(Signal {
            number: n,
            name: SIGNALS
                .iter()
                .find(|(_, v)| *v == n)
                .map(|(name, _)| (*name).to_owned())
                .unwrap_or_else(|| n.to_string()),
        }),
        _ => Err(ToolError::InvalidArgs(format!(
            "unknown signal {s:?}: use a name like TERM (ask to stop), KILL (force), HUP, INT, \
             STOP, CONT, USR1, or a number from 1 to 64"
        ))),
    }
}

/// The processes these arguments name, now.
fn targets(args: &ProcKill) -> Result<Vec<Proc>> {
    let me = std::process::id();
    let name = args.name.as_deref().map(str::trim);
    if name == Some("") {
        return Err(ToolError::InvalidArgs(
            "name is empty: give the exact process name, or a pid".into(),
        ));
    }
    let list = match (args.pid, name) {
        (Some(pid), name) => {
            let p = procfs::read(pid)
                .filter(|p| p.state != 'Z')
                .ok_or_else(|| {
                    ToolError::Failed(format!(
                        "no process with pid {pid} is running (it may have exited); proc.find or \
                         proc.list show what runs"
                    ))
                })?;
            if let Some(n) = name {
                if !p.is_named(n) {
                    return Err(ToolError::Failed(format!(
                        "process {pid} is {:?}, not {n:?}; nothing was signalled",
                        p.name
                    )));
                }
            }
            vec![p]
        }
        (None, Some(n)) => {
            let v: Vec<Proc> = procfs::all()
                .into_iter()
                .filter(|p| p.pid != me && p.state != 'Z' && p.is_named(n))
                .collect();
            if v.is_empty() {
                return Err(ToolError::Failed(format!(
                    "no running process is named exactly {n:?}; proc.find {n:?} lists processes \
                     whose name or command line contains it"
                )));
            }
            v
        }
        (None, None) => {
            return Err(ToolError::InvalidArgs(
                "say which process: give its pid, or its exact name".into(),
            ));
        }
    };
    if list.iter().any(|p| p.pid == me) {
        return Err(ToolError::Refused(
            "that is Kernos itself; stop it with Ctrl-C or `kernos serve` shutdown instead".into(),
        ));
    }
    Ok(list)
}

/// An approved target: what policy saw.
struct Approved {
    pid: u32,
    name: String,
    uid: Option<u32>,
}

fn approved(effects: &[Effect]) -> Vec<Approved> {
    effects
        .iter()
        .filter_map(|e| match (&e.kind, &e.target) {
            (EffectKind::Write, Target::Process { pid, name, uid }) => Some(Approved {
                pid: *pid,
                name: name.clone().unwrap_or_default(),
                uid: *uid,
            }),
            _ => None,
        })
        .collect()
}

/// How sending one signal went.
enum Sent {
    Ok,
    Gone,
    Denied,
    Other(std::io::Error),
}

fn errno_result(rc: libc::c_long) -> Sent {
    if rc == 0 {
        return Sent::Ok;
    }
    let e = std::io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::ESRCH) => Sent::Gone,
        Some(libc::EPERM) => Sent::Denied,
        _ => Sent::Other(e),
    }
}

/// Opens a pidfd, checks the process behind the pid is still the approved one, and signals
/// through the pidfd. Falls back to kill(2) on kernels without pidfds (before 5.3).
fn send(a: &Approved, sig: i32) -> Sent {
    let still_same =
        |p: &Proc| p.state != 'Z' && p.is_named(&a.name) && a.uid.is_none_or(|u| u == p.uid);
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, a.pid as libc::pid_t, 0) };
    if fd < 0 {
        let e = std::io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::ESRCH) => Sent::Gone,
            Some(libc::ENOSYS) => match procfs::read(a.pid) {
                Some(p) if still_same(&p) => {
                    // SAFETY: kill has no memory preconditions.
                    errno_result(unsafe { libc::kill(a.pid as libc::pid_t, sig) }.into())
                }
                _ => Sent::Gone,
            },
            _ => Sent::Other(e),
        };
    }
    let fd = fd as libc::c_int;
    let result = match procfs::read(a.pid) {
        Some(p) if still_same(&p) => {
            // SAFETY: `fd` is our open pidfd; a null siginfo means "like kill(2)".
            errno_result(unsafe {
                libc::syscall(
                    libc::SYS_pidfd_send_signal,
                    fd,
                    sig,
                    std::ptr::null::<libc::siginfo_t>(),
                    0,
                )
            })
        }
        _ => Sent::Gone,
    };
    // SAFETY: `fd` is ours and closed exactly once.
    unsafe { libc::close(fd) };
    result
}

/// Whether the process has exited (gone, or a zombie waiting for its parent).
fn exited(pid: u32) -> bool {
    procfs::read(pid).is_none_or(|p| p.state == 'Z')
}

/// `proc.kill`.
#[derive(Debug, Clone, Copy)]
pub struct Kill;

impl Action for Kill {
    type Args = ProcKill;

    fn meta(&self) -> Meta {
        Meta {
            tool: "proc",
            name: "kill",
            summary: "Send a signal (default TERM) to a process by pid, or to every process with an exact name",
            effects: &[EffectKind::Write, EffectKind::Privileged],
            reversibility: Reversibility::Irreversible,
            output: &[
                ("pid", ColumnKind::Pid),
                ("name", ColumnKind::Text),
                ("user", ColumnKind::Text),
                ("signal", ColumnKind::Text),
                ("result", ColumnKind::Text),
            ],
        }
    }

    fn effects(&self, args: &ProcKill, ctx: &Ctx<'_>) -> Result<Vec<Effect>> {
        parse_signal(&args.signal)?;
        let min = uid_min();
        Ok(targets(args)?
            .iter()
            .flat_map(|p| process_effects(p, ctx.env.uid, min))
            .collect())
    }

    fn dry_run(&self, args: &ProcKill, _: &Ctx<'_>) -> Result<Vec<Change>> {
        let sig = parse_signal(&args.signal)?;
        Ok(targets(args)?
            .into_iter()
            .map(|p| Change::Signal {
                pid: p.pid,
                name: p.name,
                signal: sig.name.clone(),
            })
            .collect())
    }

    fn execute(&self, args: &ProcKill, ctx: &Ctx<'_>, _: &mut Recorder<'_>) -> Result<Output> {
        let sig = parse_signal(&args.signal)?;
        let list = approved(ctx.effects);
        if list.is_empty() {
            return Err(ToolError::Refused(
                "this step has no approved target processes; proc.kill signals only the \
                 processes listed in its approved effects"
                    .into(),
            ));
        }
        let mut names = Names::default();
        let mut changes = Vec::new();
        let mut results = Vec::new();
        let mut denied = Vec::new();
        for a in &list {
            ctx.check_cancel()?;
            let result = match send(a, sig.number) {
                Sent::Ok => {
                    changes.push(Change::Signal {
                        pid: a.pid,
                        name: a.name.clone(),
                        signal: sig.name.clone(),
                    });
                    "sent".to_owned()
                }
                Sent::Gone => "not sent: it had already exited".to_owned(),
                Sent::Denied => {
                    denied.push(a.pid);
                    "not sent: permission denied (another user's process; run as root)".to_owned()
                }
                Sent::Other(e) => format!("not sent: {e}"),
            };
            results.push((a, result));
        }
        // For signals that end a process, wait briefly so the answer can say whether it did.
        let ends = [
            libc::SIGTERM,
            libc::SIGKILL,
            libc::SIGINT,
            libc::SIGQUIT,
            libc::SIGABRT,
        ];
        if ends.contains(&sig.number) && !changes.is_empty() {
            let deadline = Instant::now() + Duration::from_millis(500);
            while Instant::now() < deadline
                && results.iter().any(|(a, r)| r == "sent" && !exited(a.pid))
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            for (a, r) in &mut results {
                if r == "sent" {
                    *r = if exited(a.pid) {
                        "sent; it exited".to_owned()
                    } else {
                        "sent; still running".to_owned()
                    };
                }
            }
        }
        if changes.is_empty() && !denied.is_empty() {
            return Err(ToolError::Failed(format!(
                "permission denied signalling {}: they belong to another user; run Kernos as \
                 root or as their owner",
                denied
                    .iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let rows = results
            .iter()
            .map(|(a, r)| {
                row([
                    ("pid", json!(a.pid)),
                    ("name", json!(a.name)),
                    (
                        "user",
                        a.uid.map(|u| json!(names.get(u))).unwrap_or(json!(null)),
                    ),
                    ("signal", json!(sig.name)),
                    ("result", json!(r)),
                ])
            })
            .collect();
        let skipped = list.len() - changes.len();
        let mut summary = format!(
            "sent SIG{} to {} process{}",
            sig.name,
            changes.len(),
            if changes.len() == 1 { "" } else { "es" }
        );
        if skipped > 0 {
            summary.push_str(&format!("; {skipped} not signalled (see result)"));
        }
        // Anything with this name that appeared after approval is left alone, and said so.
        if let Some(n) = &args.name {
            let fresh = procfs::all()
                .into_iter()
                .filter(|p| p.state != 'Z' && p.is_named(n) && !list.iter().any(|a| a.pid == p.pid))
                .count();
            if fresh > 0 {
                summary.push_str(&format!(
                    "; {fresh} other process{} named {n:?} started after approval and {} left alone",
                    if fresh == 1 { "" } else { "es" },
                    if fresh == 1 { "was" } else { "were" }
                ));
            }
        }
        let mut out = Output::table(Vec::new(), rows).with_summary(summary);
        out.changes = changes;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_spellings() {
        for s in [
            "TERM",
            "SIGTERM",
            "sigterm",
            "term",
            "15",
            "-15",
            " -SIGTERM ",
        ] {
            assert_eq!(
                parse_signal(s).unwrap(),
                Signal {
                    number: libc::SIGTERM,
                    name: "TERM".into()
                },
                "{s}"
            );
        }
        assert_eq!(parse_signal("9").unwrap().name, "KILL");
        assert_eq!(parse_signal("IOT").unwrap().name, "ABRT");
        assert_eq!(parse_signal("40").unwrap().name, "40");
        for bad in ["0", "65", "FOO", "", "-"] {
            assert!(parse_signal(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn approved_takes_write_targets_once() {
        let t = |pid| Target::Process {
            pid,
            name: Some("x".into()),
            uid: Some(0),
        };
        let effects = vec![
            Effect {
                kind: EffectKind::Write,
                target: t(5),
            },
            Effect {
                kind: EffectKind::Privileged,
                target: t(5),
            },
            Effect {
                kind: EffectKind::Write,
                target: t(7),
            },
            Effect {
                kind: EffectKind::Read,
                target: Target::System,
            },
        ];
        let a = approved(&effects);
        assert_eq!(a.iter().map(|a| a.pid).collect::<Vec<_>>(), [5, 7]);
    }

    #[test]
    fn refuses_to_signal_kernos_itself() {
        let args = ProcKill {
            pid: Some(std::process::id()),
            name: None,
            signal: "TERM".into(),
        };
        assert!(matches!(targets(&args), Err(ToolError::Refused(_))));
        let none = ProcKill {
            pid: None,
            name: None,
            signal: "TERM".into(),
        };
        assert!(matches!(targets(&none), Err(ToolError::InvalidArgs(_))));
    }
}
