//! `fs.chmod`, and parsing of `chmod`-style modes.
//!
//! Modes are octal (`600`, `0755`: all twelve bits set exactly) or symbolic as in GNU chmod:
//! comma-separated clauses of `[ugoa]*` then one or more `[+-=]` each followed by `[rwxXst]*` or
//! one of `u`/`g`/`o` (copy that class's bits). Without `u`/`g`/`o`/`a`, the clause applies to
//! everyone but leaves out the bits the process's umask masks — so `+w` with umask 022 makes a
//! file writable by its owner only, never world-writable by accident. Symlinks are followed
//! for named paths (a link's own mode means nothing on Linux) and skipped inside trees, as
//! `chmod -R` does.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use kernos_core::{ColumnKind, Effect, EffectKind, Reversibility};
use serde_json::Value;

use crate::args::FsChmod;
use crate::ctx::Ctx;
use crate::error::{Result, ToolError};
use crate::output::{Change, Output, row};
use crate::registry::{Action, Meta};
use crate::undo::Recorder;

use super::ops::{self, Op};
use super::{DataDir, TICK, arg_paths, guard_write, lstat_or_err, mode_str};

/// A parsed mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ModeSpec {
    /// Exact bits.
    Octal(u32),
    /// Clauses applied in order.
    Symbolic(Vec<Clause>),
}

/// One `who op perms [op perms…]` clause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Clause {
    /// Bits the clause may touch (u: 0o4700, g: 0o2070, o: 0o1007); `None` = not given.
    who: Option<u32>,
    actions: Vec<(char, Perms)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Perms {
    /// Letters from `rwxXst`.
    Letters(String),
    /// Copy the bits of `u`, `g` or `o`.
    Copy(char),
}

const WHO_U: u32 = 0o4700;
const WHO_G: u32 = 0o2070;
const WHO_O: u32 = 0o1007;
const WHO_A: u32 = WHO_U | WHO_G | WHO_O;

fn invalid(s: &str, why: &str) -> String {
    format!(
        "mode {s:?} is not valid ({why}); use octal like 644 or 0755, or symbolic like +x, \
         u+rw,go-w or a=r (who: u g o a; op: + - =; permissions: r w x X s t)"
    )
}

impl ModeSpec {
    /// Parses a mode; the error says what a valid one looks like.
    pub(crate) fn parse(s: &str) -> std::result::Result<Self, String> {
        let t = s.trim();
        if t.is_empty() {
            return Err(invalid(s, "it is empty"));
        }
        if t.bytes().all(|b| b.is_ascii_digit()) {
            if t.len() > 4 || t.bytes().any(|b| b > b'7') {
                return Err(invalid(s, "octal modes have at most four digits 0-7"));
            }
            return u32::from_str_radix(t, 8)
                .map(ModeSpec::Octal)
                .map_err(|_| invalid(s, "not an octal number"));
        }
        let mut clauses = Vec::new();
        for part in t.split(',') {
            let mut chars = part.chars().peekable();
            let mut who = None;
            while let Some(&c) = chars.peek() {
                let bits = match c {
                    'u' => WHO_U,
                    'g' => WHO_G,
                    'o' => WHO_O,
                    'a' => WHO_A,
                    _ => break,
                };
                who = Some(who.unwrap_or(0) | bits);
                chars.next();
            }
            let mut actions = Vec::new();
            while let Some(op) = chars.next() {
                if !matches!(op, '+' | '-' | '=') {
                    return Err(invalid(s, &format!("unexpected {op:?}")));
                }
                let mut letters = String::new();
                let mut copy = None;
                while let Some(&c) = chars.peek() {
                    match c {
                        'r' | 'w' | 'x' | 'X' | 's' | 't' if copy.is_none() => letters.push(c),
                        'u' | 'g' | 'o' if letters.is_empty() && copy.is_none() => copy = Some(c),
                        '+' | '-' | '=' => break,
                        _ => return Err(invalid(s, &format!("unexpected {c:?}"))),
                    }
                    chars.next();
                }
                actions.push((op, copy.map_or(Perms::Letters(letters), Perms::Copy)));
            }
            if actions.is_empty() {
                return Err(invalid(s, &format!("{part:?} has no + - or =")));
            }
            clauses.push(Clause { who, actions });
        }
        Ok(ModeSpec::Symbolic(clauses))
    }

    /// The new permission bits for an entry with `mode` (only the low 12 bits are used).
    pub(crate) fn apply(&self, mode: u32, is_dir: bool, umask: u32) -> u32 {
        let mut mode = mode & 0o7777;
        let clauses = match self {
            ModeSpec::Octal(m) => return *m,
            ModeSpec::Symbolic(c) => c,
        };
        for c in clauses {
            let who = c.who.unwrap_or(WHO_A);
            for (op, perms) in &c.actions {
                let mut bits = match perms {
                    Perms::Letters(l) => l.chars().fold(0, |acc, ch| {
                        acc | match ch {
                            'r' => 0o444,
                            'w' => 0o222,
                            'x' => 0o111,
                            'X' if is_dir || mode & 0o111 != 0 => 0o111,
                            's' => 0o6000,
                            't' => 0o1000,
                            _ => 0,
                        }
                    }),
                    Perms::Copy(from) => {
                        let b = match from {
                            'u' => (mode >> 6) & 7,
                            'g' => (mode >> 3) & 7,
                            _ => mode & 7,
                        };
                        b * 0o111
                    }
                };
                bits &= who;
                if c.who.is_none() {
                    bits &= !(umask & 0o777);
                }
                mode = match op {
                    '+' => mode | bits,
                    '-' => mode & !bits,
                    _ => {
                        // `=` resets the classes named; directories keep set-id bits (GNU
                        // does the same: they steer group ownership of new files).
                        let mut clear = who & 0o7777;
                        if is_dir {
                            clear &= !0o6000;
                        }
                        (mode & !clear) | bits
                    }
                };
            }
        }
        mode
    }
}

/// The process's umask, read without changing it (`umask(2)` can only be read by setting it,
/// which would race with other threads creating files).
fn current_umask() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Umask:"))
                .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
        })
        .unwrap_or(0o022)
}

/// `fs.chmod`.
pub(crate) struct Chmod;

fn spec(a: &FsChmod) -> Result<ModeSpec> {
    ModeSpec::parse(&a.mode).map_err(ToolError::InvalidArgs)
}

fn plan(ctx: &Ctx<'_>, a: &FsChmod) -> Result<(Vec<Op>, usize)> {
    let spec = spec(a)?;
    let umask = current_umask();
    let mut ops = Vec::new();
    let mut seen = 0usize;
    let mut done: std::collections::HashSet<PathBuf> = std::collections::HashSet::new();
    let mut visit = |path: PathBuf, m: &fs::Metadata, ops: &mut Vec<Op>| {
        seen += 1;
        let from = m.permissions().mode() & 0o7777;
        let to = spec.apply(from, m.is_dir(), umask);
        if to != from && done.insert(path.clone()) {
            ops.push(Op::Chmod { path, from, to });
        }
    };
    for p in arg_paths(ctx, &a.path, "path")? {
        lstat_or_err(&p)?;
        let path = ctx.env.real(&p);
        guard_write(ctx, &path)?;
        let m = fs::metadata(&path).map_err(|_| {
            ToolError::Refused(format!(
                "{} is a symbolic link to something that does not exist; nothing to change",
                p.display()
            ))
        })?;
        visit(path.clone(), &m, &mut ops);
        if a.recursive && m.is_dir() {
            let data = DataDir::of(ctx);
            let walk = walkdir::WalkDir::new(&path)
                .min_depth(1)
                .follow_links(false)
                .sort_by_file_name()
                .into_iter()
                // Kernos's own data is never touched, even by a recursive chmod of home.
                .filter_entry(move |e| !data.contains(e.path()));
            for (i, e) in walk.enumerate() {
                if i as u64 % TICK == 0 {
                    ctx.check_cancel()?;
                }
                let e = e.map_err(|e| {
                    let p = e.path().map(PathBuf::from).unwrap_or_default();
                    ToolError::io(
                        "cannot read",
                        &p,
                        e.into_io_error()
                            .unwrap_or_else(|| std::io::Error::other("filesystem loop")),
                    )
                })?;
                if e.file_type().is_symlink() {
                    continue;
                }
                let m = e
                    .metadata()
                    .map_err(|err| ToolError::Failed(format!("{}: {err}", e.path().display())))?;
                visit(e.into_path(), &m, &mut ops);
            }
        }
    }
    Ok((ops, seen))
}

impl Action for Chmod {
    type Args = FsChmod;

    fn meta(&self) -> Meta {
        Meta {
            tool: "fs",
            name: "chmod",
            summary: "Change permissions (octal like 644, or symbolic like +x, go-w)",
            effects: &[EffectKind::Write],
            reversibility: Reversibility::Reversible,
            output: &[
                ("path", ColumnKind::Path),
                ("from", ColumnKind::Text),
                ("to", ColumnKind::Text),
            ],
        }
    }

    fn effects(&self, a: &FsChmod, ctx: &Ctx<'_>) -> Result<Vec<Effect>> {
        spec(a)?;
        let mut out = Vec::new();
        for p in arg_paths(ctx, &a.path, "path")? {
            let path = ctx.env.real(&p);
            guard_write(ctx, &path)?;
            let deep = a.recursive && fs::metadata(&path).is_ok_and(|m| m.is_dir());
            out.push(Effect::path(EffectKind::Write, path, deep));
        }
        Ok(out)
    }

    fn dry_run(&self, a: &FsChmod, ctx: &Ctx<'_>) -> Result<Vec<Change>> {
        Ok(ops::changes(&plan(ctx, a)?.0))
    }

    fn execute(&self, a: &FsChmod, ctx: &Ctx<'_>, undo: &mut Recorder<'_>) -> Result<Output> {
        let (plan, seen) = plan(ctx, a)?;
        let changes = ops::run(&plan, ctx, undo)?;
        let rows = plan
            .iter()
            .filter_map(|op| match op {
                Op::Chmod { path, from, to } => Some(row([
                    ("path", Value::from(path.display().to_string())),
                    ("from", Value::from(mode_str(*from))),
                    ("to", Value::from(mode_str(*to))),
                ])),
                _ => None,
            })
            .collect();
        let summary = format!(
            "changed the mode of {} of {} entr{} ({})",
            changes.len(),
            seen,
            if seen == 1 { "y" } else { "ies" },
            a.mode.trim()
        );
        let mut out = Output::table(Vec::new(), rows).with_summary(summary);
        out.changes = changes;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ap(s: &str, mode: u32, dir: bool) -> u32 {
        ModeSpec::parse(s).unwrap().apply(mode, dir, 0o022)
    }

    #[test]
    fn octal_modes() {
        assert_eq!(ModeSpec::parse("600").unwrap(), ModeSpec::Octal(0o600));
        assert_eq!(ModeSpec::parse("0755").unwrap(), ModeSpec::Octal(0o755));
        assert_eq!(ModeSpec::parse("4755").unwrap(), ModeSpec::Octal(0o4755));
        assert_eq!(ap("0", 0o644, false), 0);
        for bad in [
            "", "8", "0789", "77777", "+q", "u", "x+", "u+r,", "u+rg", "u*x",
        ] {
            let e = ModeSpec::parse(bad).unwrap_err();
            assert!(e.contains("octal like 644"), "{bad}: {e}");
        }
    }

    #[test]
    fn symbolic_modes() {
        assert_eq!(ap("+x", 0o644, false), 0o755);
        assert_eq!(ap("a+x", 0o600, false), 0o711);
        assert_eq!(ap("u+rw,go-w", 0o466, false), 0o644);
        assert_eq!(ap("a=r", 0o755, false), 0o444);
        assert_eq!(ap("go=", 0o777, false), 0o700);
        assert_eq!(ap("u=rwx,g=rx,o=", 0o000, false), 0o750);
        assert_eq!(ap("g=u", 0o640, false), 0o660);
        assert_eq!(ap("o+t", 0o777, true), 0o1777);
        assert_eq!(ap("u+s", 0o755, false), 0o4755);
        assert_eq!(
            ap("u-x+w", 0o500, false),
            0o600,
            "several ops in one clause"
        );
    }

    #[test]
    fn no_who_respects_umask() {
        // umask 022: +w only for the owner, never world-writable by accident.
        assert_eq!(ap("+w", 0o444, false), 0o644);
        assert_eq!(
            ap("-w", 0o666, false),
            0o466,
            "- without who also keeps umask bits"
        );
        assert_eq!(ap("=r", 0o777, false), 0o444);
    }

    #[test]
    fn capital_x_only_for_dirs_or_executables() {
        assert_eq!(ap("a+X", 0o644, false), 0o644);
        assert_eq!(ap("a+X", 0o744, false), 0o755);
        assert_eq!(ap("a+X", 0o700, true), 0o711);
    }

    #[test]
    fn equals_keeps_setgid_on_directories() {
        assert_eq!(ap("g=rx", 0o2775, true), 0o2755);
        assert_eq!(ap("u=rw", 0o4755, false), 0o0655);
    }
}
