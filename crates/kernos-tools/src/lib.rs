//! The Kernos tool catalog: every action with typed arguments, declared effects, a dry run that
//! says exactly what would change, structured output, and undo recorded before each change.
//!
//! Tools are plain Rust where a well-kept crate or `/proc` does the job; they spawn a child
//! process only to talk to the system's own managers (apt, systemctl, journalctl, git) or
//! to run `shell.run`, and then always through [`Ctx::run`], which confines the child to the
//! step's approved effects.

pub mod args;
mod catalog;
mod ctx;
mod env;
mod error;
pub mod output;
mod probe;
mod registry;
pub mod sandbox;
pub mod undo;

pub mod fs;
pub mod git;
pub mod logs;
pub mod net;
pub mod pkg;
pub mod proc;
pub mod shell;
pub mod svc;
pub mod sys;
pub mod trash;

#[cfg(feature = "testing")]
pub mod testing;

pub use ctx::{Ctx, NoProgress, Progress, RunOpts};
pub use env::{Env, normalize};
pub use error::{Result, ToolError};
pub use output::{Change, Output, human_bytes, row};
pub use registry::{Action, DynAction, Meta, Registry, edit_distance};
pub use undo::{Fingerprint, Record, Recorder, StepRecords, UndoSink};
