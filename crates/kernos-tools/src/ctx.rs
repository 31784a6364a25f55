//! What an action gets to work with: the user's environment, the sandboxed process runner, the
//! blob store for undo snapshots, cancellation and progress.

use std::path::PathBuf;
use std::time::Duration;

use kernos_core::{CancelToken, Effect, ExecOutcome, ExecRequest, ProcessRunner};
use kernos_journal::BlobStore;

use crate::env::Env;
use crate::error::{Result, ToolError};
use crate::sandbox::{policy_for, read_only_policy_for};

/// Reports progress of long work (a progress bar in the CLI, events in the daemon).
pub trait Progress: Send + Sync {
    /// `done` of `total` units (bytes or items); `what` names the current item.
    fn update(&self, done: u64, total: Option<u64>, what: &str);
}

/// Progress that goes nowhere.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn update(&self, _: u64, _: Option<u64>, _: &str) {}
}

/// Options for a confined child process.
#[derive(Debug, Clone, Default)]
pub struct RunOpts {
    /// Bytes for standard input.
    pub stdin: Option<Vec<u8>>,
    /// Working directory (default: the environment's cwd).
    pub cwd: Option<PathBuf>,
    /// Wall-clock limit (default: the policy's).
    pub timeout: Option<Duration>,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
}

/// Everything an action needs while planning effects, dry-running or executing.
pub struct Ctx<'a> {
    /// The user's environment.
    pub env: &'a Env,
    /// Runs child processes confined.
    pub runner: &'a dyn ProcessRunner,
    /// Stop request.
    pub cancel: &'a CancelToken,
    /// Where undo snapshots go.
    pub blobs: &'a BlobStore,
    /// Progress sink.
    pub progress: &'a dyn Progress,
    /// The concrete effects the engine computed and policy approved for this step. Child
    /// processes get a sandbox derived from exactly these.
    pub effects: &'a [Effect],
}

impl Ctx<'_> {
    /// Fails with [`ToolError::Cancelled`] once a stop was requested. Long loops call it.
    pub fn check_cancel(&self) -> Result<()> {
        if self.cancel.is_cancelled() {
            Err(ToolError::Cancelled)
        } else {
            Ok(())
        }
    }

    /// Runs `argv` in the sandbox, confined to this step's approved effects.
    pub fn run(&self, argv: &[&str], opts: RunOpts) -> Result<ExecOutcome> {
        let policy = policy_for(self.effects, self.env);
        self.run_with(argv, opts, policy)
    }

    /// Runs `argv` in the sandbox with no write and no network access at all: for the reads a
    /// dry run or an effects query needs (`apt-get -s`, `systemctl show`). It keeps the step's
    /// reads, and may ask the service manager about a service the step has an effect on.
    pub fn run_read_only(&self, argv: &[&str], opts: RunOpts) -> Result<ExecOutcome> {
        let policy = read_only_policy_for(self.effects, self.env);
        self.run_with(argv, opts, policy)
    }

    fn run_with(
        &self,
        argv: &[&str],
        opts: RunOpts,
        mut policy: kernos_core::SandboxPolicy,
    ) -> Result<ExecOutcome> {
        self.check_cancel()?;
        policy.cwd = Some(opts.cwd.unwrap_or_else(|| self.env.cwd.clone()));
        if let Some(t) = opts.timeout {
            policy.limits.wall_ms = Some(t.as_millis() as u64);
        }
        let mut req = ExecRequest::new(argv, policy);
        req.stdin = opts.stdin;
        req.env = opts.env;
        let out = self.runner.run(&req, self.cancel)?;
        // A child stopped because we asked is a cancellation of the step, whatever the tool
        // would make of its exit status.
        if out.stopped == Some(kernos_core::StopReason::Cancelled) {
            return Err(ToolError::Cancelled);
        }
        Ok(out)
    }
}
