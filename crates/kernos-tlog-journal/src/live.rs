//! The log inside a running writer (the daemon). The writer thread only queues each committed
//! event's leaf bytes (a copy into one buffer); a feeder thread hashes them into the tree, and
//! a checkpoint thread signs — so neither hashing nor signing holds up a commit. The tree runs
//! a few events behind the journal at most; [`LiveLog::flush`] waits until it has caught up.

use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use kernos_core::NewEvent;
use kernos_tlog::Hash;

use crate::config::CheckpointConfig;
use crate::error::{LogError, Result};
use crate::log::{Log, SignedCheckpoint};

/// How long the feeder lets leaves gather after each batch.
const BATCH_PAUSE: Duration = Duration::from_micros(500);

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

/// One queued leaf: its event, where its bytes end in [`Inbox::bytes`], and whether it is one
/// of the log's own events (those do not count towards the next checkpoint).
#[derive(Debug, Clone, Copy)]
struct Queued {
    seq: u64,
    end: usize,
    own: bool,
}

/// Leaves the writer queued and the feeder has not taken yet.
#[derive(Debug, Default)]
struct Inbox {
    bytes: Vec<u8>,
    items: Vec<Queued>,
    /// The newest seq queued (what [`LiveLog::flush`] waits for).
    last: u64,
    /// The feeder sleeps on [`LiveLog::queued`]: only then does the writer pay for a wake-up.
    waiting: bool,
    stop: bool,
}

/// A [`Log`] shared between the writer thread (queues leaves), the feeder thread (hashes them
/// into the tree), the checkpoint thread and readers (proofs).
#[derive(Debug)]
pub struct LiveLog {
    log: Mutex<Log>,
    inbox: Mutex<Inbox>,
    /// The writer queued leaves (wakes the feeder).
    queued: Condvar,
    /// The feeder added leaves to the tree (wakes [`LiveLog::flush`]).
    absorbed: Condvar,
    /// The first leaf the feeder could not add (a gap or a repeat: a bug, never expected).
    failure: Mutex<Option<String>>,
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
            inbox: Mutex::new(Inbox::default()),
            queued: Condvar::new(),
            absorbed: Condvar::new(),
            failure: Mutex::new(None),
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

    /// Adds event `seq`'s leaf hash now, on the caller's thread, in journal order; wakes the
    /// checkpoint thread when `every_events` new events have come. (The daemon queues instead:
    /// [`LiveLog::enqueue`].)
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
        self.due_at(pending);
        Ok(())
    }

    fn due_at(&self, pending: u64) {
        if self.every_events > 0 && pending >= self.every_events {
            if let Ok(mut f) = self.flags.lock() {
                f.due = true;
            }
            self.wake.notify_all();
        }
    }

    /// Queues event `seq`'s leaf bytes (see `kernos_tlog::EventLeaf`) for the feeder thread,
    /// in journal order. The writer thread's whole share: one copy into a shared buffer.
    pub fn enqueue(&self, seq: u64, kind: &str, leaf_bytes: &[u8]) {
        self.queue(seq, kind, |buf| buf.extend_from_slice(leaf_bytes));
    }

    /// [`LiveLog::enqueue`] from the stored fields, writing the leaf bytes straight into the
    /// queue's buffer (no copy of its own).
    pub fn enqueue_leaf(&self, leaf: &kernos_tlog::EventLeaf<'_>) {
        self.queue(leaf.seq, leaf.kind, |buf| leaf.write_to(buf));
    }

    fn queue(&self, seq: u64, kind: &str, write: impl FnOnce(&mut Vec<u8>)) {
        let Ok(mut inbox) = self.inbox.lock() else {
            return;
        };
        let wake = std::mem::take(&mut inbox.waiting);
        write(&mut inbox.bytes);
        let end = inbox.bytes.len();
        inbox.items.push(Queued {
            seq,
            end,
            own: crate::is_log_kind(kind),
        });
        inbox.last = seq;
        drop(inbox);
        if wake {
            self.queued.notify_one();
        }
    }

    /// The feeder thread's loop: takes what the writer queued, hashes each leaf and appends
    /// them to the tree under one lock, until [`LiveLog::stop`] (draining what is queued).
    pub fn feed(&self) {
        let mut bytes = Vec::new();
        let mut items = Vec::new();
        loop {
            {
                let Ok(mut inbox) = self.inbox.lock() else {
                    return;
                };
                while inbox.items.is_empty() && !inbox.stop {
                    inbox.waiting = true;
                    inbox = match self.queued.wait(inbox) {
                        Ok(g) => g,
                        Err(_) => return,
                    };
                }
                if inbox.items.is_empty() {
                    // Stopped and drained: leave the tiles current for the next start.
                    drop(inbox);
                    if let Ok(mut log) = self.lock()
                        && let Err(e) = log.persist()
                        && let Ok(mut f) = self.failure.lock()
                    {
                        f.get_or_insert(e.to_string());
                    }
                    return;
                }
                // Swap buffers: the writer keeps queuing into the emptied pair meanwhile.
                std::mem::swap(&mut inbox.bytes, &mut bytes);
                std::mem::swap(&mut inbox.items, &mut items);
            }
            let mut start = 0;
            let hashed: Vec<(Queued, Hash)> = items
                .iter()
                .map(|q| {
                    let h = kernos_tlog::leaf_hash(&bytes[start..q.end]);
                    start = q.end;
                    (*q, h)
                })
                .collect();
            let pending = match self.lock() {
                Ok(mut log) => {
                    for (q, h) in &hashed {
                        if q.seq <= log.tree().size() {
                            continue; // already a leaf (caught up when the log was opened)
                        }
                        if let Err(e) = log.push_hashed(q.seq, q.own, *h)
                            && let Ok(mut f) = self.failure.lock()
                            && f.is_none()
                        {
                            *f = Some(e.to_string());
                        }
                    }
                    log.pending()
                }
                Err(_) => return,
            };
            bytes.clear();
            items.clear();
            self.absorbed.notify_all();
            self.due_at(pending);
            // Let a batch gather: under load the writer then queues without waking anyone (a
            // futex call per event cost more than the hashing); the tree lags by this much.
            std::thread::sleep(BATCH_PAUSE);
        }
    }

    /// Why the feeder stopped adding leaves, if it did (the daemon reports it).
    pub fn failure(&self) -> Option<String> {
        self.failure.lock().ok().and_then(|f| f.clone())
    }

    /// Waits until every leaf queued so far is in the tree (at most `patience`); answers
    /// whether it is. A checkpoint made after this covers every event committed before it.
    pub fn flush(&self, patience: Duration) -> bool {
        let target = self.inbox.lock().map_or(0, |i| i.last);
        let until = Instant::now() + patience;
        let Ok(mut log) = self.lock() else {
            return false;
        };
        while log.tree().size() < target {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            log = match self.absorbed.wait_timeout(log, left) {
                Ok((g, _)) => g,
                Err(_) => return false,
            };
        }
        true
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
        // Everything committed before this call is in the checkpoint (the feeder is at most a
        // batch behind; if it is stuck, sign what the tree holds rather than nothing).
        self.flush(Duration::from_secs(5));
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

    /// Ends [`LiveLog::wait`] and [`LiveLog::feed`] for good (the feeder first adds what is
    /// queued).
    pub fn stop(&self) {
        if let Ok(mut f) = self.flags.lock() {
            f.stop = true;
        }
        self.wake.notify_all();
        if let Ok(mut i) = self.inbox.lock() {
            i.stop = true;
        }
        self.queued.notify_all();
    }
}
