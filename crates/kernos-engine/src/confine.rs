//! A step's in-process work — a file tool's execute or dry run — runs on a fresh thread that
//! the kernel confines to the step's view (`kernos_tools::sandbox::thread_view`: the
//! organisation's scope less the credential stores and Kernos's data; writes only where the
//! step declared them and in the session's vault). Policy already refused a step that names a
//! path outside that view; the confinement is what holds when a symlink, a walk or a bug
//! would reach further.
//!
//! The confined thread cannot open the journal or start the sandbox helper (Landlock forbids
//! the mounts it makes), so it asks this thread: undo records and child processes are
//! forwarded over a channel and answered here, in order, while the step runs. This thread also
//! enforces the step's wall-clock limit by cancelling the step's own token (a child of the
//! session's, so Ctrl-C still reaches it).

use std::sync::mpsc::{self, RecvTimeoutError, Sender, SyncSender};
use std::time::{Duration, Instant};

use kernos_core::{
    CancelToken, Effect, ExecError, ExecOutcome, ExecRequest, ProcessRunner, Target,
};
use kernos_journal::BlobStore;
use kernos_tools::undo::{Record, UndoSink};
use kernos_tools::{Ctx, Env, Progress, Result as ToolResult, ToolError};

use crate::{Engine, Session};

/// How long a step's in-process work may run unless the front end sets another limit: long
/// enough for a walk of a large disk, short enough that a step stuck on something slow ends.
pub const DEFAULT_STEP_TIME_LIMIT: Duration = Duration::from_secs(600);

/// What the confined thread asks of the thread that started it.
enum Call {
    Record(Vec<Record>, SyncSender<ToolResult<()>>),
    Run(
        Box<(ExecRequest, CancelToken)>,
        SyncSender<Result<ExecOutcome, ExecError>>,
    ),
}

/// The undo sink of a confined step: each batch is journaled by the starting thread before
/// the step goes on to make the change (records are durable first, as always).
struct ForwardSink(Sender<Call>);

impl UndoSink for ForwardSink {
    fn record(&mut self, records: Vec<Record>) -> ToolResult<()> {
        let (tx, rx) = mpsc::sync_channel(1);
        let gone =
            || ToolError::Failed("the step's journal link closed; nothing was changed".into());
        self.0.send(Call::Record(records, tx)).map_err(|_| gone())?;
        rx.recv().map_err(|_| gone())?
    }
}

/// The process runner of a confined step: children are started by the starting thread, in
/// the full sandbox, with the policy the tool derived from the step's effects.
struct ForwardRunner(Sender<Call>);

impl ProcessRunner for ForwardRunner {
    fn run(&self, req: &ExecRequest, cancel: &CancelToken) -> Result<ExecOutcome, ExecError> {
        let (tx, rx) = mpsc::sync_channel(1);
        let gone = || ExecError::Helper("the step's link to the sandbox closed".into());
        self.0
            .send(Call::Run(Box::new((req.clone(), cancel.clone())), tx))
            .map_err(|_| gone())?;
        rx.recv().map_err(|_| gone())?
    }
}

/// What confined work gets for its `Ctx`: the forwarding runner and the step's cancel token.
pub(crate) struct Confined<'a> {
    runner: &'a dyn ProcessRunner,
    cancel: &'a CancelToken,
}

impl<'a> Confined<'a> {
    /// The tool context of confined work.
    pub(crate) fn ctx(
        &self,
        env: &'a Env,
        progress: &'a dyn Progress,
        effects: &'a [Effect],
        blobs: &'a BlobStore,
    ) -> Ctx<'a> {
        Ctx {
            env,
            runner: self.runner,
            cancel: self.cancel,
            blobs,
            progress,
            effects,
        }
    }
}

impl Engine {
    /// Runs `work` on a thread confined to the view of a step with `effects`, answering its
    /// undo records with `sink` and its child processes with the engine's runner, and
    /// stopping it at the step time limit. An organisation with a filesystem scope never runs
    /// unconfined; the host operator's steps run unconfined (as before confinement existed)
    /// only where the kernel has no Landlock.
    pub(crate) fn confined<T: Send>(
        &self,
        s: &Session<'_>,
        effects: &[Effect],
        sink: &mut dyn UndoSink,
        work: impl FnOnce(&Confined<'_>, &mut dyn UndoSink) -> ToolResult<T> + Send,
    ) -> ToolResult<T> {
        if !effects
            .iter()
            .any(|e| matches!(e.target, Target::Path { .. }))
        {
            // A step that names no path (a system, process, service, package or network
            // query) reads only what its tool's code chooses and starts programs only through
            // the sandbox: nothing a plan says can aim it at a file, so it runs here, without
            // the cost of a thread. Its waits are bounded where they happen (network
            // timeouts, the sandbox's wall clock).
            let c = Confined {
                runner: self.runner.as_ref(),
                cancel: &s.cancel,
            };
            return work(&c, sink);
        }
        let view = kernos_tools::sandbox::thread_view(effects, &s.env);
        for d in kernos_tools::sandbox::vault_dirs(&s.env) {
            // The view can only grant what exists; a vault that cannot be made (a read-only
            // data directory) is simply not writable, and a change fails on it clearly.
            if !d.is_dir() {
                let _ = kernos_journal::create_private_dir(&d);
            }
        }
        let must_confine = s.env.scope.is_some();
        let cancel = s.cancel.child();
        let (tx, rx) = mpsc::channel::<Call>();
        let deadline = Instant::now() + self.step_time_limit;
        let mut timed_out = false;
        let result = std::thread::scope(|scope| {
            let thread_cancel = cancel.clone();
            let confiner = &self.confiner;
            let view = &view;
            let spawned = std::thread::Builder::new()
                .name("kernos-step".into())
                .spawn_scoped(scope, move || {
                    if let Err(e) = confiner.confine_current_thread(view) {
                        if must_confine
                            || !matches!(e, kernos_sandbox::ConfineError::Unavailable(_))
                        {
                            return Err(ToolError::Refused(e.to_string()));
                        }
                    }
                    let runner = ForwardRunner(tx.clone());
                    let mut sink = ForwardSink(tx);
                    let c = Confined {
                        runner: &runner,
                        cancel: &thread_cancel,
                    };
                    work(&c, &mut sink)
                });
            let handle = match spawned {
                Ok(h) => h,
                Err(e) => {
                    return Err(ToolError::Failed(format!(
                        "cannot start the step's thread: {e}; nothing was done"
                    )));
                }
            };
            loop {
                match rx.recv_timeout(Duration::from_millis(50)) {
                    Ok(Call::Record(records, reply)) => {
                        let _ = reply.send(sink.record(records));
                    }
                    Ok(Call::Run(call, reply)) => {
                        let (req, c) = *call;
                        let _ = reply.send(self.runner.run(&req, &c));
                    }
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => break,
                }
                // Checked after every call too: a step that records all the time never lets
                // the wait time out.
                if !timed_out && Instant::now() >= deadline {
                    timed_out = true;
                    cancel.cancel();
                }
            }
            handle.join().unwrap_or_else(|_| {
                Err(ToolError::Failed(
                    "the step failed unexpectedly (its thread panicked); nothing after the last \
                     recorded change was done"
                        .into(),
                ))
            })
        });
        match result {
            Err(ToolError::Cancelled) if timed_out && !s.cancel.is_cancelled() => {
                Err(ToolError::Failed(format!(
                    "stopped after {} s, the time limit of a step; what it changed before \
                     stopping is recorded and can be undone",
                    self.step_time_limit.as_secs()
                )))
            }
            r => r,
        }
    }
}
