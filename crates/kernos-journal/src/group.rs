//! Group commit: many producers, one writer thread, one transaction (and one sync) per batch.
//!
//! With durable appends the cost of an append is dominated by the sync at commit. When many
//! threads append at once (the daemon serving many clients), the writer takes everything that is
//! waiting, commits it in one transaction and then answers each producer: the sync cost is shared
//! and every producer still gets its answer only once its events are durable.

use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TryRecvError};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

use kernos_core::NewEvent;

use crate::error::{JournalError, Result};
use crate::journal::{Appended, Journal, PreparedEvent};

/// Called after each commit with the events just made durable, in order. The daemon uses it to
/// publish events to live subscribers only after they are persisted.
pub type CommitHook = Box<dyn FnMut(&[(PreparedEvent, Appended)]) + Send>;

/// Runs on the writer thread with the outcome of one request.
pub type Reply = Box<dyn FnOnce(Result<Vec<Appended>>) + Send>;

struct Request {
    events: Vec<PreparedEvent>,
    reply: Reply,
    link: Option<Link>,
}

/// Ties a producer's appends together so that it can queue them without waiting for each
/// (see [`Appender::submit_linked`]): once one linked append fails, the writer refuses every
/// later one with [`JournalError::EarlierAppendFailed`]. The journal therefore never holds a
/// later event of the sequence without all the earlier ones, and the producer learns of the
/// failure at its next waited-for append.
#[derive(Debug, Clone, Default)]
pub struct Link {
    // Set once, by the writer, with the first failure's message.
    failed: Arc<OnceLock<String>>,
}

impl Link {
    /// A new, unbroken link.
    pub fn new() -> Self {
        Link::default()
    }

    /// Why an append on this link failed, if one did.
    pub fn failure(&self) -> Option<&str> {
        self.failed.get().map(String::as_str)
    }

    fn check(&self) -> Result<()> {
        match self.failure() {
            Some(why) => Err(JournalError::EarlierAppendFailed(why.to_owned())),
            None => Ok(()),
        }
    }
}

/// Tuning for the writer.
#[derive(Debug, Clone)]
pub struct GroupOptions {
    /// Most events committed in one transaction.
    pub max_batch: usize,
    /// Most requests waiting; producers block (back-pressure) beyond it.
    pub queue: usize,
    /// Checkpoint the WAL on a background thread instead of in the writer. A checkpoint syncs
    /// the WAL and the database file (milliseconds); done by the writer, as SQLite does by
    /// default, every producer waiting on the next commit waits for those syncs too. The
    /// writer keeps its own checkpoint only as a backstop, when the WAL grows past
    /// [`BACKSTOP_PAGES`] because the background one cannot keep up.
    pub background_checkpoint: bool,
}

impl Default for GroupOptions {
    fn default() -> Self {
        GroupOptions {
            max_batch: 4096,
            queue: 8192,
            background_checkpoint: true,
        }
    }
}

/// WAL size (pages) at which the writer checkpoints itself although a background checkpointer
/// runs: bounds the WAL when commits never pause long enough for the background checkpoint to
/// catch up (SQLite can restart the WAL only then).
pub const BACKSTOP_PAGES: u32 = 8000;

/// Commits between two requests to the background checkpointer. Each commit adds a few to a
/// few dozen pages to the WAL; requests made while a checkpoint runs are merged into one.
const COMMITS_PER_CHECKPOINT: u32 = 32;

/// Owns the writer thread. Dropping it (after every [`Appender`] is gone) drains the queue and
/// stops the thread.
pub struct GroupCommitter {
    appender: Appender,
    thread: Option<JoinHandle<()>>,
    checkpointer: Option<JoinHandle<()>>,
}

/// A cheap, clonable handle producers append through.
#[derive(Clone)]
pub struct Appender {
    tx: SyncSender<Request>,
}

impl GroupCommitter {
    /// Starts the writer thread on `journal`.
    pub fn start(journal: Journal, opts: GroupOptions) -> Result<Self> {
        Self::start_with_hook(journal, opts, None)
    }

    /// Starts the writer thread with a hook run after every commit.
    pub fn start_with_hook(
        journal: Journal,
        opts: GroupOptions,
        hook: Option<CommitHook>,
    ) -> Result<Self> {
        let (tx, rx) = mpsc::sync_channel(opts.queue.max(1));
        let (poke, checkpointer) = if opts.background_checkpoint {
            let other = journal.reopen()?;
            journal.set_wal_autocheckpoint(BACKSTOP_PAGES)?;
            let (poke, woken) = mpsc::sync_channel(1);
            let t = std::thread::Builder::new()
                .name("kernos-journal-ckpt".into())
                .spawn(move || checkpoint_loop(other, woken))
                .map_err(|e| {
                    JournalError::WriterGone(format!("cannot start checkpoint thread: {e}"))
                })?;
            (Some(poke), Some(t))
        } else {
            (None, None)
        };
        let thread = std::thread::Builder::new()
            .name("kernos-journal-writer".into())
            .spawn(move || writer_loop(journal, rx, opts.max_batch.max(1), hook, poke))
            .map_err(|e| JournalError::WriterGone(format!("cannot start writer thread: {e}")))?;
        Ok(GroupCommitter {
            appender: Appender { tx },
            thread: Some(thread),
            checkpointer,
        })
    }

    /// A handle to append through.
    pub fn appender(&self) -> Appender {
        self.appender.clone()
    }

    /// Stops accepting, commits what is queued and waits for the writer to finish.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        // Replace our sender with a dead one so the channel closes once producers are gone.
        let (dead, _) = mpsc::sync_channel(1);
        self.appender = Appender { tx: dead };
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        // The writer dropped its end of the poke channel: the checkpointer makes a last
        // checkpoint and stops.
        if let Some(t) = self.checkpointer.take() {
            let _ = t.join();
        }
    }
}

impl Drop for GroupCommitter {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Appender {
    /// Appends one event and waits until it is durable.
    pub fn append(&self, ev: &NewEvent) -> Result<Appended> {
        let mut v = self.append_many(std::slice::from_ref(ev))?;
        v.pop()
            .ok_or_else(|| JournalError::WriterGone("empty reply".into()))
    }

    /// Appends events (kept together and in order) and waits until they are durable.
    pub fn append_many(&self, evs: &[NewEvent]) -> Result<Vec<Appended>> {
        self.append_many_in(evs, None)
    }

    /// Appends events on `link` (if any) and waits until they are durable. Because the writer
    /// takes requests in order, when this returns every append queued earlier on the same
    /// thread has been committed or has failed; with a link, a failure of any of them makes
    /// this one fail too.
    pub fn append_many_in(&self, evs: &[NewEvent], link: Option<&Link>) -> Result<Vec<Appended>> {
        let prepared = evs
            .iter()
            .map(PreparedEvent::new)
            .collect::<Result<Vec<_>>>()?;
        let (tx, rx) = mpsc::sync_channel(1);
        self.send(
            prepared,
            link,
            Box::new(move |r| {
                let _ = tx.send(r);
            }),
        )?;
        rx.recv()
            .map_err(|_| JournalError::WriterGone("writer stopped before answering".into()))?
    }

    /// Queues already-prepared events and returns at once; `reply` runs on the writer thread
    /// once they are durable (or failed). For async callers that must not block.
    pub fn submit(&self, events: Vec<PreparedEvent>, reply: Reply) -> Result<()> {
        self.send(events, None, reply)
    }

    /// Queues events on `link` and returns at once, failing at once if the link is already
    /// broken. `reply` runs on the writer thread once they are durable (or failed).
    pub fn submit_linked(
        &self,
        events: Vec<PreparedEvent>,
        link: &Link,
        reply: Reply,
    ) -> Result<()> {
        self.send(events, Some(link), reply)
    }

    fn send(&self, events: Vec<PreparedEvent>, link: Option<&Link>, reply: Reply) -> Result<()> {
        if let Some(l) = link {
            l.check()?;
        }
        self.tx
            .send(Request {
                events,
                reply,
                link: link.cloned(),
            })
            .map_err(|_| JournalError::WriterGone("writer thread has stopped".into()))
    }
}

/// Checkpoints when the writer asks, and once a second if anything was committed meanwhile,
/// until the writer stops.
fn checkpoint_loop(journal: Journal, woken: Receiver<()>) {
    loop {
        let last = match woken.recv_timeout(Duration::from_secs(1)) {
            Ok(()) | Err(RecvTimeoutError::Timeout) => false,
            Err(RecvTimeoutError::Disconnected) => true,
        };
        // Errors are not fatal: another process may be checkpointing (busy), and the writer's
        // backstop bounds the WAL whatever happens here.
        let _ = journal.checkpoint();
        if last {
            return;
        }
    }
}

fn writer_loop(
    mut journal: Journal,
    rx: Receiver<Request>,
    max_batch: usize,
    mut hook: Option<CommitHook>,
    checkpointer: Option<SyncSender<()>>,
) {
    let mut commits = 0u32;
    while let Ok(first) = rx.recv() {
        let mut batch = Vec::new();
        let mut n = 0;
        let mut next = Some(first);
        loop {
            if let Some(r) = next.take() {
                // A request whose link broke in an earlier batch is refused, not committed:
                // the journal must not hold it without the events that failed before it.
                match r.link.as_ref().map(Link::check) {
                    Some(Err(e)) => (r.reply)(Err(e)),
                    _ => {
                        n += r.events.len();
                        batch.push(r);
                    }
                }
            }
            if n >= max_batch {
                break;
            }
            match rx.try_recv() {
                Ok(r) => next = Some(r),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        if batch.is_empty() {
            continue;
        }
        // Move the events out of the requests: no copies on the writer's hot path.
        let mut all: Vec<PreparedEvent> = Vec::with_capacity(n);
        let mut replies: Vec<(usize, Reply, Option<Link>)> = Vec::with_capacity(batch.len());
        for r in batch {
            replies.push((r.events.len(), r.reply, r.link));
            all.extend(r.events);
        }
        match journal.append_prepared(&all) {
            Ok(appended) => {
                commits += 1;
                if commits >= COMMITS_PER_CHECKPOINT {
                    if let Some(c) = &checkpointer {
                        // Full means a request is already pending: this one is merged into it.
                        let _ = c.try_send(());
                    }
                    commits = 0;
                }
                if let Some(h) = hook.as_mut() {
                    let pairs: Vec<(PreparedEvent, Appended)> =
                        all.into_iter().zip(appended.iter().copied()).collect();
                    h(&pairs);
                }
                let mut rest = appended.as_slice();
                for (len, reply, _) in replies {
                    let (mine, tail) = rest.split_at(len.min(rest.len()));
                    rest = tail;
                    reply(Ok(mine.to_vec()));
                }
            }
            Err(e) => {
                // The whole transaction rolled back: nobody in the batch was recorded.
                let msg = e.to_string();
                let disk_full = matches!(e, JournalError::DiskFull);
                for (_, reply, link) in replies {
                    if let Some(l) = link {
                        let _ = l.failed.set(msg.clone());
                    }
                    let err = if disk_full {
                        JournalError::DiskFull
                    } else {
                        JournalError::WriterGone(msg.clone())
                    };
                    reply(Err(err));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kernos_core::Actor;
    use std::sync::{Arc, Mutex};

    #[test]
    fn many_threads_one_chain() {
        let d = tempfile::tempdir().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let seen2 = seen.clone();
        let hook: CommitHook = Box::new(move |evs| {
            seen2.lock().unwrap().extend(evs.iter().map(|(_, a)| a.seq));
        });
        let gc = GroupCommitter::start_with_hook(
            Journal::open(d.path()).unwrap(),
            GroupOptions::default(),
            Some(hook),
        )
        .unwrap();
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let a = gc.appender();
                std::thread::spawn(move || {
                    (0..200)
                        .map(|i| {
                            a.append(
                                &NewEvent::new("t", Actor::system())
                                    .payload(serde_json::json!([t, i])),
                            )
                            .unwrap()
                            .seq
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut all: Vec<u64> = threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect();
        gc.shutdown();
        all.sort_unstable();
        assert_eq!(all, (1..=1600).collect::<Vec<_>>());
        assert_eq!(
            *seen.lock().unwrap(),
            (1..=1600).collect::<Vec<_>>(),
            "hook sees every event once, in order"
        );
        let j = Journal::open(d.path()).unwrap();
        assert!(j.verify().unwrap().is_ok());
    }

    #[test]
    fn a_failed_linked_append_refuses_the_later_ones() {
        let d = tempfile::tempdir().unwrap();
        let journal = Journal::open_with(
            d.path(),
            crate::JournalOptions {
                busy_timeout: std::time::Duration::from_millis(50),
                ..crate::JournalOptions::default()
            },
        )
        .unwrap();
        // One request per batch, so the second linked request is taken after the first failed.
        let gc = GroupCommitter::start(
            journal,
            GroupOptions {
                max_batch: 1,
                queue: 16,
                background_checkpoint: false,
            },
        )
        .unwrap();
        // Another connection holds the write lock: the first batch fails (busy).
        let other = rusqlite::Connection::open(d.path().join(crate::DB_FILE)).unwrap();
        other.execute_batch("BEGIN IMMEDIATE").unwrap();
        let link = Link::new();
        let a = gc.appender();
        let (tx, rx) = mpsc::channel();
        for n in 0..2 {
            let tx = tx.clone();
            let p = PreparedEvent::new(&NewEvent::new("linked", Actor::system()).payload(n.into()))
                .unwrap();
            a.submit_linked(vec![p], &link, Box::new(move |r| tx.send(r).unwrap()))
                .unwrap();
        }
        let first = rx.recv().unwrap().unwrap_err();
        assert!(first.to_string().contains("busy"), "{first}");
        other.execute_batch("ROLLBACK").unwrap();
        let second = rx.recv().unwrap().unwrap_err();
        assert!(
            matches!(second, JournalError::EarlierAppendFailed(_)),
            "{second}"
        );
        assert!(link.failure().is_some());
        // Later linked appends fail at once; unlinked ones go through.
        assert!(matches!(
            a.append_many_in(&[NewEvent::new("linked", Actor::system())], Some(&link)),
            Err(JournalError::EarlierAppendFailed(_))
        ));
        assert_eq!(
            a.append(&NewEvent::new("free", Actor::system()))
                .unwrap()
                .seq,
            1
        );
        // The writer stops only once every appender is gone.
        drop(a);
        gc.shutdown();
        let j = Journal::open(d.path()).unwrap();
        let kinds: Vec<String> = j
            .query(&crate::Query::default())
            .unwrap()
            .into_iter()
            .map(|e| e.kind)
            .collect();
        assert_eq!(kinds, vec!["free".to_owned()]);
    }

    #[test]
    fn append_many_keeps_events_together() {
        let d = tempfile::tempdir().unwrap();
        let gc = GroupCommitter::start(Journal::open(d.path()).unwrap(), GroupOptions::default())
            .unwrap();
        let evs: Vec<_> = (0..5)
            .map(|_| NewEvent::new("x", Actor::system()))
            .collect();
        let out = gc.appender().append_many(&evs).unwrap();
        assert_eq!(
            out.iter().map(|a| a.seq).collect::<Vec<_>>(),
            vec![1, 2, 3, 4, 5]
        );
    }
}
