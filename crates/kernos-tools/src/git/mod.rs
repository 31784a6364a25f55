//! The `git` tool: status, log, diff and branches of a repository, through the git CLI run
//! confined with read access to the repository.
//!
//! A repository's own config can name programs git runs (`core.fsmonitor`, external diff and
//! textconv drivers, clean/smudge filters); these read-only actions switch them off, so looking
//! at an untrusted repository does not run code from it. (Submodules' own configs are not
//! inspected; the sandbox still confines whatever git runs.)

use std::path::{Path, PathBuf};

use kernos_core::{ColumnKind, Effect, EffectKind, ExecError, Reversibility};
use serde_json::{Value, json};

use crate::args::{GitDiff, GitLog, GitRepo};
use crate::output::{Output, row};
use crate::registry::{Action, Meta, Registry};
use crate::sys::which;
use crate::undo::Recorder;
use crate::{Ctx, Result, RunOpts, ToolError};

mod parse;

/// The most diff text returned.
const MAX_DIFF: usize = 256 * 1024;
const MAX_COUNT: usize = 10_000;

/// Registers the `git` actions.
pub fn register(r: &mut Registry) {
    r.register(Status);
    r.register(Log);
    r.register(Diff);
    r.register(Branches);
}

/// A repository found from a directory inside it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Repo {
    /// The top of the working tree.
    top: PathBuf,
    /// Git directories outside the working tree (a linked worktree's and its common one).
    extra: Vec<PathBuf>,
}

/// Walks up from `dir` to the directory holding `.git`, as git itself does.
fn discover(dir: &Path) -> Option<Repo> {
    let mut cur = Some(dir);
    while let Some(d) = cur {
        let dotgit = d.join(".git");
        if dotgit.is_dir() {
            return Some(Repo {
                top: d.to_path_buf(),
                extra: Vec::new(),
            });
        }
        if dotgit.is_file() {
            // A linked worktree or submodule: `.git` says `gitdir: <path>`.
            let mut extra = Vec::new();
            if let Some(gd) = std::fs::read_to_string(&dotgit).ok().and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("gitdir:").map(|p| p.trim().to_owned()))
            }) {
                let gd = if Path::new(&gd).is_absolute() {
                    PathBuf::from(gd)
                } else {
                    crate::normalize(&d.join(gd))
                };
                if let Some(common) = std::fs::read_to_string(gd.join("commondir"))
                    .ok()
                    .map(|c| crate::normalize(&gd.join(c.trim())))
                {
                    extra.push(common);
                }
                extra.push(gd);
            }
            extra.retain(|e| !e.starts_with(d));
            return Some(Repo {
                top: d.to_path_buf(),
                extra,
            });
        }
        cur = d.parent();
    }
    None
}

fn repo_of(arg: &str, ctx: &Ctx<'_>) -> Result<Repo> {
    let dir = ctx.env.resolve(arg);
    let meta = std::fs::metadata(&dir).map_err(|e| ToolError::io("open", &dir, e))?;
    if !meta.is_dir() {
        return Err(ToolError::InvalidArgs(format!(
            "{} is a file; give the repository's directory",
            dir.display()
        )));
    }
    discover(&dir).ok_or_else(|| {
        ToolError::Failed(format!(
            "{} is not inside a git repository; give the repository's directory (or create one \
             with `git init`)",
            dir.display()
        ))
    })
}

fn repo_effects(repo: &Repo) -> Vec<Effect> {
    std::iter::once(&repo.top)
        .chain(&repo.extra)
        .map(|p| Effect::path(EffectKind::Read, p, true))
        .collect()
}

/// The git CLI, run confined in one repository.
struct Git<'a> {
    ctx: &'a Ctx<'a>,
    repo: &'a Repo,
    /// `-c` settings that blank the repository's own filter drivers.
    overrides: Vec<String>,
}

impl<'a> Git<'a> {
    /// Prepares to run git in `repo`. Filter drivers (`filter.<name>.clean|smudge|process`)
    /// defined in the repository's own config are programs git would run while comparing
    /// files; each is blanked for every later command, which turns it off.
    fn open(ctx: &'a Ctx<'a>, repo: &'a Repo) -> Result<Self> {
        if which("git").is_none() {
            return Err(not_installed());
        }
        let mut g = Git {
            ctx,
            repo,
            overrides: Vec::new(),
        };
        // Exit status 1 means "no such keys": nothing to blank.
        let out = g.raw(&[
            "config",
            "--local",
            "--name-only",
            "--get-regexp",
            r"^filter\..*\.(clean|smudge|process)$",
        ])?;
        if out.success() {
            g.overrides = out
                .stdout_text()
                .lines()
                .filter(|k| !k.is_empty())
                .map(|k| format!("{k}="))
                .collect();
        }
        Ok(g)
    }

    fn raw(&self, args: &[&str]) -> Result<kernos_core::ExecOutcome> {
        let top = self.repo.top.to_string_lossy();
        let mut argv: Vec<&str> = vec![
            "git",
            "--no-pager",
            // Reads must not take the index lock or refresh the index (the sandbox makes the
            // repository read-only anyway).
            "--no-optional-locks",
            "-C",
            &top,
            "-c",
            "core.quotepath=off",
            "-c",
            "core.fsmonitor=false",
            "-c",
            "color.ui=false",
            "-c",
            "log.showSignature=false",
        ];
        for o in &self.overrides {
            argv.extend(["-c", o.as_str()]);
        }
        argv.extend_from_slice(args);
        self.ctx
            .run(
                &argv,
                RunOpts {
                    cwd: Some(self.repo.top.clone()),
                    env: vec![
                        ("GIT_TERMINAL_PROMPT".into(), "0".into()),
                        ("LC_ALL".into(), "C".into()),
                    ],
                    ..RunOpts::default()
                },
            )
            .map_err(|e| match e {
                ToolError::Exec(ExecError::NotFound { .. }) => not_installed(),
                other => other,
            })
    }

    /// Runs `git <args>` and returns its standard output, or an error that says what to do.
    fn run(&self, args: &[&str]) -> Result<Vec<u8>> {
        let out = self.raw(args)?;
        let top = self.repo.top.display();
        if let Some(stop) = &out.stopped {
            return Err(ToolError::Failed(format!("git {}: {stop}", args[0])));
        }
        if !out.success() {
            let err = out.stderr_text();
            let err = err.trim();
            if err.contains("dubious ownership") {
                return Err(ToolError::Failed(format!(
                    "git refuses to read {top}: it belongs to another user. If you trust it: git \
                     config --global --add safe.directory {top}"
                )));
            }
            if err.contains("not a git repository") {
                return Err(ToolError::Failed(format!(
                    "{top} is not a git repository; give the repository's directory"
                )));
            }
            return Err(ToolError::Failed(format!("git {} failed: {err}", args[0])));
        }
        Ok(out.stdout)
    }
}

fn not_installed() -> ToolError {
    ToolError::Unavailable("git is not installed: apt-get install git".into())
}

/// Whether the failure is git saying the repository has no commits.
fn no_commits(e: &ToolError) -> bool {
    let m = e.to_string();
    m.contains("does not have any commits yet")
        || m.contains("bad default revision 'HEAD'")
        || m.contains("ambiguous argument 'HEAD'")
}

fn text(v: Option<&str>) -> Value {
    v.map(|s| json!(s)).unwrap_or(Value::Null)
}

fn s(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// A path argument as git should see it: absolute (it runs with `-C <top>`).
fn pathspec(arg: &str, ctx: &Ctx<'_>) -> String {
    ctx.env.resolve(arg).to_string_lossy().into_owned()
}

/// `git.status`.
#[derive(Debug, Clone, Copy)]
pub struct Status;

impl Action for Status {
    type Args = GitRepo;

    fn meta(&self) -> Meta {
        Meta {
            tool: "git",
            name: "status",
            summary: "Changed, staged and untracked files, the branch and how far it is ahead of or behind its upstream",
            effects: &[EffectKind::Read],
            reversibility: Reversibility::ReadOnly,
            output: &[
                ("path", ColumnKind::Path),
                ("index", ColumnKind::Text),
                ("worktree", ColumnKind::Text),
                ("orig_path", ColumnKind::Path),
            ],
        }
    }

    fn effects(&self, args: &GitRepo, ctx: &Ctx<'_>) -> Result<Vec<Effect>> {
        Ok(repo_effects(&repo_of(&args.repo, ctx)?))
    }

    fn execute(&self, args: &GitRepo, ctx: &Ctx<'_>, _: &mut Recorder<'_>) -> Result<Output> {
        let repo = repo_of(&args.repo, ctx)?;
        let out = Git::open(ctx, &repo)?.run(&["status", "--porcelain=v2", "--branch", "-z"])?;
        let (branch, files) = parse::parse_status(&out);
        let abs = |p: &str| json!(repo.top.join(p));
        let rows = files
            .iter()
            .map(|f| {
                row([
                    ("path", abs(&f.path)),
                    ("index", text(f.index)),
                    ("worktree", text(f.worktree)),
                    (
                        "orig_path",
                        f.orig_path.as_deref().map(abs).unwrap_or(Value::Null),
                    ),
                ])
            })
            .collect();
        let mut head = match (&branch.head, &branch.oid) {
            (Some(h), None) => format!("on branch {h} (no commits yet)"),
            (Some(h), Some(_)) => format!("on branch {h}"),
            (None, Some(oid)) => format!("HEAD detached at {}", &oid[..oid.len().min(12)]),
            (None, None) => "HEAD detached".to_owned(),
        };
        if let Some(u) = &branch.upstream {
            head.push_str(&match (branch.ahead, branch.behind) {
                (0, 0) => format!(", up to date with {u}"),
                (a, 0) => format!(", {} ahead of {u}", s(a as usize, "commit", "commits")),
                (0, b) => format!(", {} behind {u}", s(b as usize, "commit", "commits")),
                (a, b) => format!(", {a} ahead and {b} behind {u}"),
            });
        }
        let staged = files
            .iter()
            .filter(|f| f.index.is_some() && f.index != Some("unmerged"))
            .count();
        let changed = files
            .iter()
            .filter(|f| {
                f.worktree.is_some()
                    && f.index != Some("unmerged")
                    && f.worktree != Some("untracked")
            })
            .count();
        let untracked = files
            .iter()
            .filter(|f| f.worktree == Some("untracked"))
            .count();
        let conflicts = files.iter().filter(|f| f.index == Some("unmerged")).count();
        let mut parts = Vec::new();
        if conflicts > 0 {
            parts.push(s(conflicts, "conflict", "conflicts"));
        }
        if staged > 0 {
            parts.push(format!("{staged} staged"));
        }
        if changed > 0 {
            parts.push(format!("{changed} modified"));
        }
        if untracked > 0 {
            parts.push(format!("{untracked} untracked"));
        }
        let summary = if parts.is_empty() {
            format!("{head}; working tree clean")
        } else {
            format!("{head}; {}", parts.join(", "))
        };
        Ok(Output::table(Vec::new(), rows).with_summary(summary))
    }
}

/// `git.log`.
#[derive(Debug, Clone, Copy)]
pub struct Log;

impl Action for Log {
    type Args = GitLog;

    fn meta(&self) -> Meta {
        Meta {
            tool: "git",
            name: "log",
            summary: "Recent commits: hash, author, date, subject; optionally only those touching a path",
            effects: &[EffectKind::Read],
            reversibility: Reversibility::ReadOnly,
            output: &[
                ("hash", ColumnKind::Text),
                ("author", ColumnKind::Text),
                ("email", ColumnKind::Text),
                ("date", ColumnKind::Time),
                ("subject", ColumnKind::Text),
            ],
        }
    }

    fn effects(&self, args: &GitLog, ctx: &Ctx<'_>) -> Result<Vec<Effect>> {
        check_count(args.count)?;
        Ok(repo_effects(&repo_of(&args.repo, ctx)?))
    }

    fn execute(&self, args: &GitLog, ctx: &Ctx<'_>, _: &mut Recorder<'_>) -> Result<Output> {
        check_count(args.count)?;
        let repo = repo_of(&args.repo, ctx)?;
        let n = format!("-n{}", args.count);
        let mut argv = vec!["log", n.as_str(), parse::LOG_FORMAT, "--no-color"];
        let spec = args.path.as_deref().map(|p| pathspec(p, ctx));
        if let Some(p) = &spec {
            argv.extend(["--", p.as_str()]);
        }
        let out = match Git::open(ctx, &repo)?.run(&argv) {
            Ok(o) => o,
            Err(e) if no_commits(&e) => {
                return Ok(Output::default().with_summary("no commits yet"));
            }
            Err(e) => return Err(e),
        };
        let commits = parse::parse_log(&String::from_utf8_lossy(&out));
        let rows = commits
            .iter()
            .map(|c| {
                row([
                    ("hash", json!(c.hash)),
                    ("author", json!(c.author)),
                    ("email", json!(c.email)),
                    ("date", json!(c.date)),
                    ("subject", json!(c.subject)),
                ])
            })
            .collect();
        let on = args
            .path
            .as_deref()
            .map(|p| format!(" touching {p}"))
            .unwrap_or_default();
        let summary = match commits.first() {
            None => format!("no commits{on}"),
            Some(c) => format!(
                "{}{on}; latest {} \"{}\" by {}, {}",
                s(commits.len(), "commit", "commits"),
                c.hash,
                c.subject,
                c.author,
                crate::sys::time::format_local(c.date)
            ),
        };
        let mut out = Output::table(Vec::new(), rows).with_summary(summary);
        out.truncated = commits.len() >= args.count;
        Ok(out)
    }
}

fn check_count(n: usize) -> Result<()> {
    if n == 0 || n > MAX_COUNT {
        return Err(ToolError::InvalidArgs(format!(
            "count must be between 1 and {MAX_COUNT}"
        )));
    }
    Ok(())
}

/// `git.diff`.
#[derive(Debug, Clone, Copy)]
pub struct Diff;

impl Action for Diff {
    type Args = GitDiff;

    fn meta(&self) -> Meta {
        Meta {
            tool: "git",
            name: "diff",
            summary: "Uncommitted changes (or staged ones) as a patch, with lines added and removed per file",
            effects: &[EffectKind::Read],
            reversibility: Reversibility::ReadOnly,
            output: &[
                ("path", ColumnKind::Path),
                ("added", ColumnKind::Int),
                ("removed", ColumnKind::Int),
                ("orig_path", ColumnKind::Path),
            ],
        }
    }

    fn effects(&self, args: &GitDiff, ctx: &Ctx<'_>) -> Result<Vec<Effect>> {
        Ok(repo_effects(&repo_of(&args.repo, ctx)?))
    }

    fn execute(&self, args: &GitDiff, ctx: &Ctx<'_>, _: &mut Recorder<'_>) -> Result<Output> {
        let repo = repo_of(&args.repo, ctx)?;
        let spec = args.path.as_deref().map(|p| pathspec(p, ctx));
        let build = |extra: &[&'static str]| {
            let mut v: Vec<&str> = vec!["diff", "--no-color", "--no-ext-diff", "--no-textconv"];
            if args.staged {
                v.push("--cached");
            }
            v.extend_from_slice(extra);
            if let Some(p) = &spec {
                v.extend(["--", p.as_str()]);
            }
            v
        };
        let git = Git::open(ctx, &repo)?;
        let numstat = git.run(&build(&["--numstat", "-z"]))?;
        let stats = parse::parse_numstat(&numstat);
        let mut patch = git.run(&build(&[]))?;
        let truncated = patch.len() > MAX_DIFF;
        patch.truncate(MAX_DIFF);
        let mut text = String::from_utf8_lossy(&patch).into_owned();
        if truncated {
            text.push_str("\n… (diff cut at 256 KiB; give a path to see one file's changes)\n");
        }
        let abs = |p: &str| json!(repo.top.join(p));
        let rows = stats
            .iter()
            .map(|n| {
                row([
                    ("path", abs(&n.path)),
                    ("added", n.added.map(|v| json!(v)).unwrap_or(Value::Null)),
                    (
                        "removed",
                        n.removed.map(|v| json!(v)).unwrap_or(Value::Null),
                    ),
                    (
                        "orig_path",
                        n.orig_path.as_deref().map(abs).unwrap_or(Value::Null),
                    ),
                ])
            })
            .collect();
        let added: u64 = stats.iter().filter_map(|n| n.added).sum();
        let removed: u64 = stats.iter().filter_map(|n| n.removed).sum();
        let what = if args.staged { "staged" } else { "unstaged" };
        let summary = if stats.is_empty() {
            let hint = if args.staged {
                "; unstaged changes: git.diff without staged"
            } else {
                "; staged changes: git.diff with staged, new files: git.status"
            };
            format!("no {what} changes{hint}")
        } else {
            format!(
                "{} changed ({what}), +{added} −{removed}",
                s(stats.len(), "file", "files")
            )
        };
        let mut out = Output::table(Vec::new(), rows).with_summary(summary);
        out.text = Some(text);
        out.truncated = truncated;
        Ok(out)
    }
}

/// `git.branches`.
#[derive(Debug, Clone, Copy)]
pub struct Branches;

impl Action for Branches {
    type Args = GitRepo;

    fn meta(&self) -> Meta {
        Meta {
            tool: "git",
            name: "branches",
            summary: "Local branches: which is current, upstream and ahead/behind, last commit",
            effects: &[EffectKind::Read],
            reversibility: Reversibility::ReadOnly,
            output: &[
                ("name", ColumnKind::Text),
                ("current", ColumnKind::Bool),
                ("upstream", ColumnKind::Text),
                ("ahead", ColumnKind::Int),
                ("behind", ColumnKind::Int),
                ("commit", ColumnKind::Text),
                ("date", ColumnKind::Time),
                ("subject", ColumnKind::Text),
            ],
        }
    }

    fn effects(&self, args: &GitRepo, ctx: &Ctx<'_>) -> Result<Vec<Effect>> {
        Ok(repo_effects(&repo_of(&args.repo, ctx)?))
    }

    fn execute(&self, args: &GitRepo, ctx: &Ctx<'_>, _: &mut Recorder<'_>) -> Result<Output> {
        let repo = repo_of(&args.repo, ctx)?;
        let out = Git::open(ctx, &repo)?.run(&[
            "for-each-ref",
            "--sort=-committerdate",
            parse::BRANCH_FORMAT,
            "refs/heads",
        ])?;
        let list = parse::parse_branches(&String::from_utf8_lossy(&out));
        let rows = list
            .iter()
            .map(|b| {
                row([
                    ("name", json!(b.name)),
                    ("current", json!(b.current)),
                    (
                        "upstream",
                        match (&b.upstream, b.gone) {
                            (Some(u), true) => json!(format!("{u} (gone)")),
                            (u, _) => text(u.as_deref()),
                        },
                    ),
                    ("ahead", json!(b.ahead)),
                    ("behind", json!(b.behind)),
                    ("commit", json!(b.commit)),
                    ("date", b.date.map(|d| json!(d)).unwrap_or(Value::Null)),
                    ("subject", json!(b.subject)),
                ])
            })
            .collect();
        let current = list
            .iter()
            .find(|b| b.current)
            .map(|b| format!("current: {}", b.name))
            .unwrap_or_else(|| "HEAD is detached (no current branch)".to_owned());
        let summary = if list.is_empty() {
            "no branches yet (no commits)".to_owned()
        } else {
            format!("{}; {current}", s(list.len(), "branch", "branches"))
        };
        Ok(Output::table(Vec::new(), rows).with_summary(summary))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discovers_plain_repos_and_linked_worktrees() {
        let d = tempfile::tempdir().unwrap();
        let top = d.path().join("proj");
        std::fs::create_dir_all(top.join(".git")).unwrap();
        std::fs::create_dir_all(top.join("src/deep")).unwrap();
        let r = discover(&top.join("src/deep")).unwrap();
        assert_eq!(r.top, top);
        assert!(r.extra.is_empty());
        // A linked worktree: `.git` is a file pointing into the main repository.
        let wt = d.path().join("wt");
        std::fs::create_dir_all(&wt).unwrap();
        let gd = top.join(".git/worktrees/wt");
        std::fs::create_dir_all(&gd).unwrap();
        std::fs::write(gd.join("commondir"), "../..\n").unwrap();
        std::fs::write(wt.join(".git"), format!("gitdir: {}\n", gd.display())).unwrap();
        let r = discover(&wt).unwrap();
        assert_eq!(r.top, wt);
        assert_eq!(r.extra, vec![top.join(".git"), gd]);
        assert!(discover(Path::new("/proc/self")).is_none() || Path::new("/.git").exists());
    }
}
