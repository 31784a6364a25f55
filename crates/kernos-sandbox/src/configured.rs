//! Installation-wide settings applied to every request a runner executes.

use std::path::PathBuf;

use kernos_core::{CancelToken, ExecError, ExecOutcome, ExecRequest, ProcessRunner};

use crate::{SandboxRunner, default_deny_read};

/// A [`SandboxRunner`] plus what the configuration says for every step: whether weaker
/// confinement is acceptable on a kernel missing a feature, and the paths no step may read
/// unless it declared them (credentials, Kernos's own data, host control sockets).
#[derive(Clone)]
pub struct Configured {
    inner: SandboxRunner,
    allow_weaker: bool,
    deny_read: Vec<PathBuf>,
}

impl std::fmt::Debug for Configured {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Configured")
            .field("allow_weaker", &self.allow_weaker)
            .field("deny_read", &self.deny_read)
            .finish_non_exhaustive()
    }
}

impl Configured {
    /// Wraps `inner`; `allow_weaker` comes from the configuration.
    pub fn new(inner: SandboxRunner, allow_weaker: bool) -> Self {
        Configured {
            inner,
            allow_weaker,
            deny_read: default_deny_read(),
        }
    }

    /// Also hides `path` (e.g. a data directory set with `--data-dir`).
    pub fn deny_read(mut self, path: PathBuf) -> Self {
        if !self.deny_read.contains(&path) {
            self.deny_read.push(path);
        }
        self
    }
}

impl ProcessRunner for Configured {
    fn run(&self, req: &ExecRequest, cancel: &CancelToken) -> Result<ExecOutcome, ExecError> {
        let mut r = req.clone();
        r.policy.allow_weaker |= self.allow_weaker;
        for d in &self.deny_read {
            if !r.policy.deny_read.contains(d) {
                r.policy.deny_read.push(d.clone());
            }
        }
        self.inner.run(&r, cancel)
    }
}
