//! The log inside a running writer (the daemon): fed one leaf per committed event on the
//! writer thread, checkpointed on its own thread so signing never holds up a commit.

use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

use kernos_core::NewEvent;
use kernos_tlog::Hash;

use crate::config::CheckpointConfig;
use crate::error::{LogError, Result};
use crate::log::{Log, SignedCheckpoint};

/// Why the checkpoint thread woke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// Enough events, or enough time with some events: sign one.
    Due,
    /// Nothing to do yet (time passed without new events).
    Idle,
    /// Stop the thread.
    Stop,
}

#[derive(Debug, Default)]
struct Flags {
    due: bool,
    stop: bool,
}

/// A [`Log`] shared between the writer thread (leaves), the checkpoint thread and readers
/// (proofs).
#[derive(Debug)]
pub struct LiveLog {
    log: Mutex<Log>,
    flags: Mutex<Flags>,
    wake: Condvar,
    /// One checkpoint at a time (on demand and scheduled), in the order they are stored.
    signing: Mutex<()>,
    every_events: u64,
    every_s: u64,
}

impl LiveLog {
    /// Wraps an opened log with the checkpoint schedule of `cfg`.
    pub fn new(log: Log, cfg: &CheckpointConfig) -> Self {
        LiveLog {
            log: Mutex::new(log),
            flags: Mutex::new(Flags::default()),
            wake: Condvar::new(),
            signing: Mutex::new(()),
            every_events: cfg.every_events,
            every_s: cfg.every_s,
        }
    }

    fn lock(&self) -> Result<MutexGuard<'_, Log>> {
        self.log
            .lock()
            .map_err(|_| LogError::Invalid("the log's lock was poisoned by a panic".into()))
    }

    /// Adds event `seq`'s leaf (on the writer thread, in journal order); wakes the checkpoint
    /// thread when `every_events` new events have come.
    pub fn on_event(&self, seq: u64, kind: &str, leaf: Hash) -> Result<()> {
        let pending = {
            let mut log = self.lock()?;
            if seq <= log.tree().size() {
                // Appended before the log was opened and caught up: already a leaf.
                return Ok(());
            }
            log.push(seq, kind, leaf)?;
            log.pending()
        };
        if self.every_events > 0 && pending == self.every_events {
            if let Ok(mut f) = self.flags.lock() {
                f.due = true;
            }
            self.wake.notify_all();
        }
        Ok(())
    }

    /// Runs `f` on the log (for proofs and roots).
    pub fn with<T>(&self, f: impl FnOnce(&Log) -> T) -> Result<T> {
        Ok(f(&*self.lock()?))
    }

    /// Runs `f` on the log mutably (key rotation).
    pub fn with_mut<T>(&self, f: impl FnOnce(&mut Log) -> T) -> Result<T> {
        Ok(f(&mut *self.lock()?))
    }

    /// Signs a checkpoint of the whole tree dated `now` and stores it with `store` (which
    /// appends the event and waits until it is durable). The tree lock is held only to sign;
    /// the store happens after, so the writer thread is never waiting on it.
    pub fn checkpoint(
        &self,
        now: u64,
        store: impl FnOnce(NewEvent) -> Result<()>,
        actor: kernos_core::Actor,
    ) -> Result<SignedCheckpoint> {
        let _one = self
            .signing
            .lock()
            .map_err(|_| LogError::Invalid("the checkpoint lock was poisoned".into()))?;
        let signed = self.lock()?.checkpoint(now)?;
        store(signed.event(actor))?;
        Ok(signed)
    }

    /// Blocks until a checkpoint is due, `every_s` passed, or [`LiveLog::stop`].
    pub fn wait(&self) -> Wake {
        let Ok(mut f) = self.flags.lock() else {
            return Wake::Stop;
        };
        if !f.due && !f.stop {
            let timeout = if self.every_s > 0 {
                Duration::from_secs(self.every_s)
            } else {
                Duration::from_secs(3600)
            };
            f = match self.wake.wait_timeout(f, timeout) {
                Ok((g, _)) => g,
                Err(_) => return Wake::Stop,
            };
        }
        if f.stop {
            return Wake::Stop;
        }
        let due = std::mem::take(&mut f.due);
        drop(f);
        let timed = self.every_s > 0 && self.with(|l| l.pending() > 0).unwrap_or(false);
        if due || timed { Wake::Due } else { Wake::Idle }
    }

    /// Ends [`LiveLog::wait`] for good.
    pub fn stop(&self) {
        if let Ok(mut f) = self.flags.lock() {
            f.stop = true;
        }
        self.wake.notify_all();
    }
}
