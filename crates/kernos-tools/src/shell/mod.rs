//! The `shell` tool: `shell.run` runs a command line with `sh -c`, confined by the sandbox to
//! the effects its classification declares.
//!
//! The line is parsed and classified ([`classify`]) — never matched with regular expressions.
//! A line whose every command is known to only read declares only reads (policy scores it
//! low); anything else declares `exec` of the line, writes to the working directory (and to
//! any file it visibly writes or path it names), and network or privilege as seen. The
//! sandbox then allows exactly that, so an unexpected write elsewhere fails instead of
//! happening.
//!
//! Output: one row (`exit_code`, `duration`, `stdout_bytes`, `stderr_bytes`), the text of
//! standard output followed by standard error under a `[stderr]` marker, and a summary line.
//! A non-zero exit, a signal or a limit is an error ([`ToolError::Failed`]) whose message is
//! `` `LINE` exited with status N`` (or the stop reason), then the last 20 lines of standard
//! error and of standard output, so what the command said is never lost.

mod classify;
pub mod parse;

use std::path::{Path, PathBuf};
use std::time::Duration;

use kernos_core::{ColumnKind, Effect, EffectKind, Reversibility, Target};
use serde_json::json;

pub use classify::{Classification, CommandInfo, classify};

use crate::args::ShellRun;
use crate::ctx::{Ctx, RunOpts};
use crate::env::{Env, normalize};
use crate::error::{Result, ToolError};
use crate::output::{Change, Output, row};
use crate::registry::{Action, Meta, Registry};
use crate::undo::Recorder;

/// Registers the `shell` actions.
pub fn register(r: &mut Registry) {
    r.register(Run);
}

/// `shell.run`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Run;

/// Lines of standard error / output kept in a failure message.
const TAIL_LINES: usize = 20;

fn command(args: &ShellRun) -> Result<&str> {
    let line = args.command.as_str();
    if line.trim().is_empty() {
        return Err(ToolError::InvalidArgs(
            "command is empty: give the command line to run".into(),
        ));
    }
    if line.contains('\0') {
        return Err(ToolError::InvalidArgs(
            "command contains a NUL byte, which no shell can run".into(),
        ));
    }
    Ok(line)
}

fn workdir(args: &ShellRun, env: &Env) -> PathBuf {
    match &args.cwd {
        Some(c) => env.resolve(c),
        None => env.cwd.clone(),
    }
}

/// `p` as the shell in `cwd` would see it (`~` expanded, relative joined, `..` folded).
fn resolve_in(p: &str, cwd: &Path, env: &Env) -> PathBuf {
    if p == "~" || p.starts_with("~/") || Path::new(p).is_absolute() {
        env.resolve(p)
    } else {
        normalize(&cwd.join(p))
    }
}

/// Whether a word from the classification is a usable path (not computed, not a glob).
fn concrete(p: &str) -> bool {
    !p.is_empty() && p != "?" && !p.contains(['$', '`', '*', '?', '[', '"', '\''])
}

/// The effects a line with this classification declares, run in `cwd`.
pub fn effects_of(c: &Classification, line: &str, cwd: &Path, env: &Env) -> Vec<Effect> {
    let mut out: Vec<Effect> = Vec::new();
    let mut push = |e: Effect| {
        if !out.contains(&e) {
            out.push(e);
        }
    };
    let path_effect = |kind: EffectKind, p: &Path| {
        let recursive = p.is_dir();
        Effect::path(kind, p, recursive)
    };
    if c.read_only {
        push(Effect::path(EffectKind::Read, cwd, true));
        for cmd in &c.commands {
            for p in cmd.paths.iter().filter(|p| concrete(p)) {
                push(path_effect(EffectKind::Read, &resolve_in(p, cwd, env)));
            }
        }
        return out;
    }
    push(Effect {
        kind: EffectKind::Exec,
        target: Target::Command {
            line: line.to_owned(),
        },
    });
    push(Effect::path(EffectKind::Write, cwd, true));
    for w in c.writes.iter().filter(|p| concrete(p)) {
        push(Effect::path(
            EffectKind::Write,
            resolve_in(w, cwd, env),
            false,
        ));
    }
    for cmd in &c.commands {
        // After `cd DIR` the line's relative writes land in DIR.
        let kind = if cmd.read_only && !matches!(cmd.name.as_str(), "cd" | "pushd") {
            EffectKind::Read
        } else {
            EffectKind::Write
        };
        for p in cmd.paths.iter().filter(|p| concrete(p)) {
            push(path_effect(kind, &resolve_in(p, cwd, env)));
        }
    }
    if c.network {
        if c.hosts.is_empty() {
            push(Effect {
                kind: EffectKind::Network,
                target: Target::Host {
                    host: "*".into(),
                    port: None,
                },
            });
        }
        for h in &c.hosts {
            push(Effect {
                kind: EffectKind::Network,
                target: Target::Host {
                    host: h.clone(),
                    port: None,
                },
            });
        }
    }
    if c.privileged {
        push(Effect {
            kind: EffectKind::Privileged,
            target: Target::Command {
                line: line.to_owned(),
            },
        });
    }
    out
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(n);
    lines[start..].join("\n")
}

impl Action for Run {
    type Args = ShellRun;

    fn meta(&self) -> Meta {
        Meta {
            tool: "shell",
            name: "run",
            summary: "Run a command line with sh -c, confined to its effects (read-only commands are low risk)",
            effects: &[
                EffectKind::Read,
                EffectKind::Write,
                EffectKind::Exec,
                EffectKind::Network,
                EffectKind::Privileged,
            ],
            reversibility: Reversibility::Irreversible,
            output: &[
                ("exit_code", ColumnKind::Int),
                ("duration", ColumnKind::Duration),
                ("stdout_bytes", ColumnKind::Bytes),
                ("stderr_bytes", ColumnKind::Bytes),
            ],
        }
    }

    fn effects(&self, args: &ShellRun, ctx: &Ctx<'_>) -> Result<Vec<Effect>> {
        let line = command(args)?;
        let cwd = workdir(args, ctx.env);
        Ok(effects_of(&classify(line), line, &cwd, ctx.env))
    }

    fn dry_run(&self, args: &ShellRun, _ctx: &Ctx<'_>) -> Result<Vec<Change>> {
        let line = command(args)?;
        Ok(changes(line))
    }

    fn execute(&self, args: &ShellRun, ctx: &Ctx<'_>, _undo: &mut Recorder<'_>) -> Result<Output> {
        let line = command(args)?;
        let cwd = workdir(args, ctx.env);
        if !cwd.is_dir() {
            return Err(ToolError::NotFound(cwd));
        }
        let timeout = match args.timeout {
            Some(0) => {
                return Err(ToolError::InvalidArgs(
                    "timeout must be at least 1 second".into(),
                ));
            }
            t => t.map(Duration::from_secs),
        };
        let res = ctx.run(
            &["sh", "-c", line],
            RunOpts {
                cwd: Some(cwd),
                timeout,
                ..RunOpts::default()
            },
        )?;
        let stdout = res.stdout_text();
        let stderr = res.stderr_text();
        let failure = if let Some(stop) = &res.stopped {
            Some(format!("`{line}` {stop}"))
        } else if let Some(sig) = res.signal {
            Some(format!("`{line}` was killed by signal {sig}"))
        } else {
            match res.code {
                Some(0) => None,
                Some(c) => Some(format!("`{line}` exited with status {c}")),
                None => Some(format!("`{line}` ended without an exit status")),
            }
        };
        if let Some(mut msg) = failure {
            if !stderr.trim().is_empty() {
                msg.push_str(&format!(
                    "\nstderr (last {TAIL_LINES} lines):\n{}",
                    tail(&stderr, TAIL_LINES)
                ));
            }
            if !stdout.trim().is_empty() {
                msg.push_str(&format!(
                    "\nstdout (last {TAIL_LINES} lines):\n{}",
                    tail(&stdout, TAIL_LINES)
                ));
            }
            return Err(ToolError::Failed(msg));
        }
        let mut text = stdout;
        if !stderr.is_empty() {
            if !text.is_empty() && !text.ends_with('\n') {
                text.push('\n');
            }
            text.push_str("[stderr]\n");
            text.push_str(&stderr);
        }
        let secs = res.wall_ms as f64 / 1000.0;
        let r = row([
            ("exit_code", json!(res.code)),
            ("duration", json!(secs)),
            ("stdout_bytes", json!(res.stdout.len())),
            ("stderr_bytes", json!(res.stderr.len())),
        ]);
        Ok(Output {
            rows: vec![r],
            text: Some(text),
            summary: Some(format!("exit 0 in {secs:.2} s")),
            changes: changes(line),
            truncated: res.stdout_truncated || res.stderr_truncated,
            cpu_ms: res.cpu_ms,
            ..Output::default()
        })
    }
}

fn changes(line: &str) -> Vec<Change> {
    if classify(line).read_only {
        Vec::new()
    } else {
        vec![Change::Exec {
            command: line.to_owned(),
        }]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Env {
        Env {
            cwd: "/w".into(),
            home: "/home/u".into(),
            data_dir: "/home/u/.local/share/kernos".into(),
            vault: "/home/u/.local/share/kernos".into(),
            scope: None,
            uid: 1000,
        }
    }

    #[test]
    fn read_only_lines_declare_only_reads() {
        let line = "cat /etc/hostname ~/notes.txt | wc -l";
        let e = effects_of(&classify(line), line, Path::new("/w"), &env());
        assert!(e.iter().all(|e| e.kind == EffectKind::Read), "{e:?}");
        assert!(e.contains(&Effect::path(EffectKind::Read, "/w", true)));
        assert!(e.contains(&Effect::path(EffectKind::Read, "/etc/hostname", false)));
        assert!(e.contains(&Effect::path(EffectKind::Read, "/home/u/notes.txt", false)));
    }

    #[test]
    fn mutations_declare_exec_writes_network_and_privilege() {
        let line = "sudo curl -o /opt/x https://example.com/x > log.txt";
        let e = effects_of(&classify(line), line, Path::new("/w"), &env());
        let has = |k: EffectKind, t: Target| e.contains(&Effect { kind: k, target: t });
        assert!(has(EffectKind::Exec, Target::Command { line: line.into() }));
        assert!(e.contains(&Effect::path(EffectKind::Write, "/w", true)));
        assert!(e.contains(&Effect::path(EffectKind::Write, "/w/log.txt", false)));
        assert!(e.contains(&Effect::path(EffectKind::Write, "/opt/x", false)));
        assert!(has(
            EffectKind::Network,
            Target::Host {
                host: "example.com".into(),
                port: None
            }
        ));
        assert!(has(
            EffectKind::Privileged,
            Target::Command { line: line.into() }
        ));
    }

    #[test]
    fn cd_targets_of_a_mutating_line_are_writable() {
        let line = "cd /srv/app && rm -f cache.db";
        let e = effects_of(&classify(line), line, Path::new("/w"), &env());
        assert!(
            e.contains(&Effect::path(EffectKind::Write, "/srv/app", false)),
            "{e:?}"
        );
        let line = "cd /srv/app && ls";
        let e = effects_of(&classify(line), line, Path::new("/w"), &env());
        assert!(e.iter().all(|e| e.kind == EffectKind::Read));
    }

    #[test]
    fn unknown_network_is_any_host() {
        let line = "apt-get update";
        let e = effects_of(&classify(line), line, Path::new("/w"), &env());
        assert!(e.contains(&Effect {
            kind: EffectKind::Network,
            target: Target::Host {
                host: "*".into(),
                port: None
            }
        }));
    }

    #[test]
    fn changes_only_for_mutations() {
        assert!(changes("ls -l").is_empty());
        assert_eq!(
            changes("rm x"),
            vec![Change::Exec {
                command: "rm x".into()
            }]
        );
    }

    #[test]
    fn tails_keep_the_end() {
        let t: String = (1..=30).map(|i| format!("l{i}\n")).collect();
        let s = tail(&t, 3);
        assert_eq!(s, "l28\nl29\nl30");
    }
}
