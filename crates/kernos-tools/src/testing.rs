//! Test support (feature `testing`): a temporary world to run actions in, and the checks every
//! mutating action must pass — dry run equals what execute did, and undo restores the tree
//! byte for byte, modes and mtimes included.
//!
//! [`UnconfinedRunner`] runs child processes without the sandbox. It exists so tool logic can
//! be tested on its own; the engine always runs children through `kernos-sandbox`, and the
//! engine's and CLI's tests exercise that path. [`World::with_runner`] runs a world's children
//! through another runner, e.g. the real sandbox, for tools whose behaviour depends on it.

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kernos_core::{
    CancelToken, Effect, ExecError, ExecOutcome, ExecRequest, ProcessRunner, StopReason,
};
use kernos_journal::BlobStore;
use serde_json::Value;

use crate::ctx::{Ctx, NoProgress, Progress};
use crate::env::Env;
use crate::output::{Change, Output};
use crate::registry::Registry;
use crate::undo::{self, Fingerprint, MemorySink, Record, Recorder, StepRecords};

/// Runs commands as plain child processes (no confinement), honouring timeout, output cap and
/// cancellation. Test use only.
#[derive(Debug, Default, Clone, Copy)]
pub struct UnconfinedRunner;

impl ProcessRunner for UnconfinedRunner {
    fn run(&self, req: &ExecRequest, cancel: &CancelToken) -> Result<ExecOutcome, ExecError> {
        let Some((prog, args)) = req.argv.split_first() else {
            return Err(ExecError::InvalidPolicy("empty command".into()));
        };
        let mut cmd = Command::new(prog);
        cmd.args(args).env_clear();
        for k in &req.policy.env_allow {
            if let Some(v) = std::env::var_os(k) {
                cmd.env(k, v);
            }
        }
        cmd.envs(req.env.iter().map(|(k, v)| (k, v)));
        if let Some(cwd) = &req.policy.cwd {
            cmd.current_dir(cwd);
        }
        cmd.stdin(if req.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let start = Instant::now();
        let mut child = cmd.spawn().map_err(|e| ExecError::NotFound {
            program: prog.clone(),
            reason: e.to_string(),
        })?;
        if let (Some(input), Some(mut stdin)) = (req.stdin.clone(), child.stdin.take()) {
            std::thread::spawn(move || {
                use std::io::Write;
                let _ = stdin.write_all(&input);
            });
        }
        let cap = req.policy.limits.output_bytes.unwrap_or(u64::MAX);
        let drain = |r: Option<Box<dyn Read + Send>>| {
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                if let Some(mut r) = r {
                    let _ = r.read_to_end(&mut buf);
                }
                buf
            })
        };
        let out = drain(
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
        );
        let err = drain(
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
        );
        let limit = req.policy.limits.wall_ms.map(Duration::from_millis);
        let mut stopped = None;
        let status = loop {
            if let Some(s) = child.try_wait()? {
                break s;
            }
            if cancel.is_cancelled() {
                stopped = Some(StopReason::Cancelled);
                let _ = child.kill();
            } else if let Some(l) = limit.filter(|l| start.elapsed() > *l) {
                stopped = Some(StopReason::Timeout {
                    limit_ms: l.as_millis() as u64,
                });
                let _ = child.kill();
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let cut = |mut v: Vec<u8>| {
            let t = v.len() as u64 > cap;
            v.truncate(cap.min(v.len() as u64) as usize);
            (v, t)
        };
        let (stdout, stdout_truncated) = cut(out.join().unwrap_or_default());
        let (stderr, stderr_truncated) = cut(err.join().unwrap_or_default());
        use std::os::unix::process::ExitStatusExt;
        Ok(ExecOutcome {
            code: status.code(),
            signal: status.signal(),
            stdout,
            stderr,
            stdout_truncated,
            stderr_truncated,
            stopped,
            cpu_ms: 0,
            wall_ms: start.elapsed().as_millis() as u64,
        })
    }
}

/// A temporary world: a tree to work in (also the cwd and home), a data directory with a blob
/// store, and a registry.
pub struct World {
    _dir: tempfile::TempDir,
    /// The tree actions work in.
    pub root: PathBuf,
    /// Environment pointing at it.
    pub env: Env,
    /// Blob store in the data directory.
    pub blobs: BlobStore,
    /// All actions.
    pub registry: Registry,
    /// Cancellation for the next call.
    pub cancel: CancelToken,
    /// Where actions report progress (nowhere unless a test sets it, e.g. to cancel midway).
    pub progress: Box<dyn Progress>,
    /// Runs the actions' child processes.
    runner: Arc<dyn ProcessRunner>,
}

impl World {
    /// A fresh world with an empty tree, running child processes unconfined.
    pub fn new() -> Self {
        Self::with_runner(Arc::new(UnconfinedRunner))
    }

    /// A fresh world whose actions run their child processes through `runner` (e.g. a
    /// `kernos_sandbox::SandboxRunner`).
    pub fn with_runner(runner: Arc<dyn ProcessRunner>) -> Self {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let root = dir.path().join("tree");
        let data = dir.path().join("data");
        std::fs::create_dir(&root).unwrap_or_else(|e| panic!("mkdir: {e}"));
        let env = Env {
            cwd: root.clone(),
            home: root.clone(),
            data_dir: data.clone(),
            vault: data.clone(),
            scope: None,
            uid: 0,
        };
        let blobs =
            BlobStore::open(data.join("blobs"), false).unwrap_or_else(|e| panic!("blobs: {e}"));
        World {
            _dir: dir,
            root,
            env,
            blobs,
            registry: Registry::builtin(),
            cancel: CancelToken::new(),
            progress: Box::new(NoProgress),
            runner,
        }
    }

    /// Writes a file (creating parents) relative to the tree.
    pub fn file(&self, rel: &str, content: &[u8]) -> PathBuf {
        let p = self.root.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).unwrap_or_else(|e| panic!("mkdir: {e}"));
        }
        std::fs::write(&p, content).unwrap_or_else(|e| panic!("write: {e}"));
        p
    }

    fn ctx<'a>(&'a self, effects: &'a [Effect]) -> Ctx<'a> {
        Ctx {
            env: &self.env,
            runner: &*self.runner,
            cancel: &self.cancel,
            blobs: &self.blobs,
            progress: &*self.progress,
            effects,
        }
    }

    /// The effects of `tool.action` with `args`.
    pub fn effects(&self, name: &str, args: Value) -> crate::Result<Vec<Effect>> {
        let a = self.action(name);
        a.effects(&args, &self.ctx(&[]))
    }

    /// Dry-runs `tool.action`.
    pub fn dry_run(&self, name: &str, args: Value) -> crate::Result<Vec<Change>> {
        let a = self.action(name);
        let effects = a.effects(&args, &self.ctx(&[]))?;
        a.dry_run(&args, &self.ctx(&effects))
    }

    /// Executes `tool.action`, returning its output, undo records and their after-states.
    pub fn execute(&self, name: &str, args: Value) -> crate::Result<(Output, StepRecords)> {
        let (out, records) = self.execute_recorded(name, args);
        out.map(|o| (o, records))
    }

    /// Executes `tool.action` and keeps its undo records whatever the outcome, as the engine
    /// does: a step that failed or was stopped midway is undone from what it recorded.
    pub fn execute_recorded(
        &self,
        name: &str,
        args: Value,
    ) -> (crate::Result<Output>, StepRecords) {
        let a = self.action(name);
        let effects = match a.effects(&args, &self.ctx(&[])) {
            Ok(e) => e,
            Err(e) => return (Err(e), StepRecords::default()),
        };
        let mut sink = MemorySink::default();
        let ctx = self.ctx(&effects);
        let mut rec = Recorder::new(&mut sink, &self.env, &self.blobs);
        let out = a.execute(&args, &ctx, &mut rec);
        sink.0.finish();
        (out, sink.0)
    }

    /// Undoes records as the engine does: in reverse, checking each against its after-state
    /// right before applying it. Returns the conflicts and failures.
    pub fn undo(&self, records: &[Record], after: &[Option<Fingerprint>]) -> Vec<String> {
        let mut problems = Vec::new();
        for (r, a) in records.iter().zip(after).rev() {
            if let Some(c) = undo::check(r, a.as_ref()) {
                problems.push(c);
            } else if let Err(e) = undo::apply(r, &self.env, &self.blobs) {
                problems.push(e.to_string());
            }
        }
        problems
    }

    /// The full round trip every reversible action must pass: dry run, execute (its changes
    /// must equal the dry run), undo (the tree must equal the original exactly). Returns the
    /// execution's output.
    pub fn round_trip(&self, name: &str, args: Value) -> Output {
        let before = tree_state(&self.root);
        let predicted = self
            .dry_run(name, args.clone())
            .unwrap_or_else(|e| panic!("{name} dry run: {e}"));
        // Changes land on a later mtime than the originals.
        std::thread::sleep(Duration::from_millis(15));
        let (out, step) = self
            .execute(name, args)
            .unwrap_or_else(|e| panic!("{name} execute: {e}"));
        assert_eq!(
            out.changes, predicted,
            "{name}: dry run differs from what execute did"
        );
        assert_ne!(
            tree_state(&self.root),
            before,
            "{name}: execute changed nothing"
        );
        let conflicts = self.undo(&step.records, &step.after);
        assert!(
            conflicts.is_empty(),
            "{name}: undo conflicts: {conflicts:?}"
        );
        assert_eq!(
            tree_state(&self.root),
            before,
            "{name}: undo did not restore the tree"
        );
        out
    }

    fn action(&self, name: &str) -> &dyn crate::registry::DynAction {
        let (t, a) = name.split_once('.').unwrap_or((name, ""));
        self.registry
            .get(t, a)
            .unwrap_or_else(|| panic!("no action {name}"))
    }
}

impl Default for World {
    fn default() -> Self {
        Self::new()
    }
}

/// Everything undo promises about a tree: per path, kind, mode, mtime (ns), owner and content
/// hash (symlink target for links). Directory mtimes included.
pub fn tree_state(root: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(p) = stack.pop() {
        let Ok(m) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        let ft = m.file_type();
        let content = if ft.is_file() {
            blake3::hash(&std::fs::read(&p).unwrap_or_default())
                .to_hex()
                .to_string()
        } else if ft.is_symlink() {
            std::fs::read_link(&p)
                .map(|t| t.display().to_string())
                .unwrap_or_default()
        } else {
            String::new()
        };
        if ft.is_dir() {
            if let Ok(rd) = std::fs::read_dir(&p) {
                stack.extend(rd.flatten().map(|e| e.path()));
            }
        }
        let kind = if ft.is_dir() {
            "d"
        } else if ft.is_symlink() {
            "l"
        } else {
            "f"
        };
        out.insert(
            p.strip_prefix(root)
                .map(Path::to_path_buf)
                .unwrap_or(p.clone()),
            format!(
                "{kind} {:o} {} {}:{} {content}",
                m.mode(),
                undo::mtime_ns(&m),
                m.uid(),
                m.gid()
            ),
        );
    }
    out
}
