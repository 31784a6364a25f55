//! The daemon's event store and live event hub.
//!
//! Writes go through the journal's group-commit writer; its post-commit hook hands every
//! durable batch to the [`Hub`], which publishes events strictly in sequence order, once each,
//! to live subscribers (a bounded broadcast ring) and to the in-memory read models. Events
//! appended by other processes (`kernos keys create`, an embedded `kernos` run) are picked up
//! by a cheap poll of the chain head and published the same way, so the hub never skips a
//! sequence number.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use kernos_core::event::kind;
use kernos_core::{Event, NewEvent};
use kernos_engine::EventStore;
use kernos_journal::{
    Appended, Appender, GroupCommitter, GroupOptions, Journal, JournalError, JournalOptions, Link,
    PreparedEvent, Query,
};
use tokio::sync::broadcast;

/// An event as published: what filters need, plus its JSON (made once, sent to everyone).
#[derive(Debug, Clone)]
pub struct Published {
    /// Sequence number.
    pub seq: u64,
    /// Kind.
    pub kind: String,
    /// Organisation.
    pub org: String,
    /// Action id, if any.
    pub action: Option<String>,
    /// The whole event as JSON.
    pub json: String,
    /// The event's transparency-log leaf bytes, from its stored fields (see `kernos_tlog`):
    /// hashed into the tree by the log's feeder thread, not here on the writer thread. Only
    /// the listener sees them: what subscribers receive has them emptied.
    pub leaf: Vec<u8>,
}

impl Published {
    /// From a stored event.
    pub fn from_event(e: &Event) -> Self {
        Published {
            seq: e.seq,
            kind: e.kind.clone(),
            org: e.org.clone(),
            action: e.action.map(|a| a.to_string()),
            json: serde_json::to_string(e).unwrap_or_default(),
            leaf: kernos_tlog::EventLeaf {
                seq: e.seq,
                ts_ms: e.ts_ms,
                kind: &e.kind,
                actor: &e.actor.0,
                org: &e.org,
                action: e.action.map(|a| a.to_string()).as_deref(),
                tx: e.tx.map(|t| t.to_string()).as_deref(),
                payload: serde_json::to_string(&e.payload)
                    .unwrap_or_default()
                    .as_bytes(),
            }
            .leaf_bytes(),
        }
    }

    /// From what the writer just committed, without re-parsing the payload: it is already
    /// JSON text. Runs on the writer thread for every event, so it builds the text in one
    /// buffer instead of a string per field.
    pub fn from_prepared(p: &PreparedEvent, a: &Appended) -> Self {
        use std::fmt::Write;
        let mut json = String::with_capacity(
            p.payload.len()
                + p.kind.len()
                + p.actor.len()
                + p.org.len()
                + p.action.as_ref().map_or(0, String::len)
                + p.tx.as_ref().map_or(0, String::len)
                + 192,
        );
        let _ = write!(json, "{{\"seq\":{},\"ts_ms\":{},\"kind\":", a.seq, a.ts_ms);
        push_json_str(&mut json, &p.kind);
        json.push_str(",\"actor\":");
        push_json_str(&mut json, &p.actor);
        json.push_str(",\"org\":");
        push_json_str(&mut json, &p.org);
        if let Some(x) = &p.action {
            json.push_str(",\"action\":");
            push_json_str(&mut json, x);
        }
        if let Some(x) = &p.tx {
            json.push_str(",\"tx\":");
            push_json_str(&mut json, x);
        }
        json.push_str(",\"payload\":");
        json.push_str(&p.payload);
        json.push_str(",\"hash\":\"");
        const HEX: &[u8; 16] = b"0123456789abcdef";
        for b in a.hash {
            json.push(HEX[(b >> 4) as usize] as char);
            json.push(HEX[(b & 15) as usize] as char);
        }
        json.push_str("\"}");
        let leaf = kernos_tlog_journal::leaf_of_committed(p, a).leaf_bytes();
        Published {
            leaf,
            seq: a.seq,
            kind: p.kind.clone(),
            org: p.org.clone(),
            action: p.action.clone(),
            json,
        }
    }

    /// The full event (parsed on demand; only read models that need payloads call it).
    pub fn event(&self) -> Option<Event> {
        serde_json::from_str(&self.json).ok()
    }
}

/// Appends `s` as a JSON string, exactly as serde_json writes it.
fn push_json_str(out: &mut String, s: &str) {
    // Kinds, actors, orgs and ids almost never need escaping: copy them as they are.
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push('"');
        out.push_str(s);
        out.push('"');
    } else {
        out.push_str(&serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into()));
    }
}

/// Called for every published event, in order (read models, metrics).
pub type Listener = Box<dyn Fn(&Published) + Send + Sync>;

struct PubState {
    last: u64,
    reader: Option<Journal>,
}

/// Publishes durable events in order to subscribers and listeners.
pub struct Hub {
    tx: broadcast::Sender<Arc<Published>>,
    state: Mutex<PubState>,
    head: AtomicU64,
    listener: Mutex<Option<Listener>>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("head", &self.head())
            .finish_non_exhaustive()
    }
}

impl Hub {
    /// A hub whose published history starts after `last` (the head at start), reading gaps
    /// from `reader`, with a live ring of `buffer` events.
    pub fn new(last: u64, reader: Journal, buffer: usize) -> Self {
        let (tx, _) = broadcast::channel(buffer.max(16));
        Hub {
            tx,
            state: Mutex::new(PubState {
                last,
                reader: Some(reader),
            }),
            head: AtomicU64::new(last),
            listener: Mutex::new(None),
        }
    }

    /// Sets the read-model listener.
    pub fn set_listener(&self, l: Listener) {
        if let Ok(mut g) = self.listener.lock() {
            *g = Some(l);
        }
    }

    /// The newest published sequence number.
    pub fn head(&self) -> u64 {
        self.head.load(Ordering::Acquire)
    }

    /// A live subscription (subscribe first, then replay from the journal).
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Published>> {
        self.tx.subscribe()
    }

    fn emit(&self, st: &mut PubState, mut p: Published) {
        st.last = p.seq;
        if let Ok(l) = self.listener.lock() {
            if let Some(l) = l.as_ref() {
                l(&p);
            }
        }
        // The leaf bytes were for the listener (the log's queue copies them); subscribers
        // never read them, and the ring keeps the last `sse_buffer` events: without them it
        // holds about a third less (measured: ~300 of ~1,000 bytes per event).
        p.leaf = Vec::new();
        self.head.store(p.seq, Ordering::Release);
        let _ = self.tx.send(Arc::new(p));
    }

    /// Reads and publishes everything in `(st.last, upto]` from the journal, from the rows as
    /// stored (the payload text as written, so the JSON and the log's leaf are exact).
    fn catch_up(&self, st: &mut PubState, upto: u64) {
        while st.last < upto {
            let mut rows = Vec::new();
            let read = st.reader.as_ref().map(|r| {
                r.for_each_row(st.last, Some(upto), |row, hash| {
                    rows.push((
                        PreparedEvent {
                            kind: row.kind.to_string(),
                            actor: row.actor.to_string(),
                            org: row.org.to_string(),
                            action: row.action.map(str::to_string),
                            tx: row.tx.map(str::to_string),
                            payload: String::from_utf8_lossy(row.payload).into_owned(),
                        },
                        Appended {
                            seq: row.seq,
                            ts_ms: row.ts_ms,
                            hash: *hash,
                        },
                    ));
                    rows.len() < 1000
                })
            });
            match read {
                Some(Ok(())) => {}
                Some(Err(e)) => {
                    tracing::error!("cannot read journal events after {}: {e}", st.last);
                    return;
                }
                None => return,
            }
            if rows.is_empty() {
                return;
            }
            for (p, a) in rows {
                if a.seq > st.last {
                    self.emit(st, Published::from_prepared(&p, &a));
                }
            }
        }
    }

    /// Publishes a committed batch (called on the writer thread by the commit hook).
    pub fn publish_batch(&self, batch: &[(PreparedEvent, Appended)]) {
        let Ok(mut st) = self.state.lock() else {
            return;
        };
        for (p, a) in batch {
            if a.seq <= st.last {
                continue;
            }
            if a.seq > st.last + 1 {
                // Another process appended in between: publish its events first.
                self.catch_up(&mut st, a.seq - 1);
            }
            if a.seq == st.last + 1 {
                self.emit(&mut st, Published::from_prepared(p, a));
            }
        }
    }

    /// Publishes events other processes appended (cheap when there are none).
    pub fn poll_external(&self) {
        let Ok(mut st) = self.state.lock() else {
            return;
        };
        let head = match st.reader.as_ref().map(|r| r.head()) {
            Some(Ok((seq, _))) => seq,
            _ => return,
        };
        if head > st.last {
            self.catch_up(&mut st, head);
        }
    }

    /// Closes the reader (at shutdown).
    pub fn close(&self) {
        if let Ok(mut st) = self.state.lock() {
            st.reader = None;
        }
    }
}

/// The engine's event store in the daemon: group-commit writes, pooled read connections.
pub struct DaemonStore {
    committer: Mutex<Option<GroupCommitter>>,
    // Taken away at shutdown: the writer only stops once every appender is gone.
    appender: std::sync::RwLock<Option<Appender>>,
    dir: std::path::PathBuf,
    readers: Mutex<Vec<Journal>>,
}

impl std::fmt::Debug for DaemonStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DaemonStore")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// Read connections kept open for reuse.
const KEEP_READERS: usize = 4;

thread_local! {
    /// The link of the deferral scope open on this thread, if any.
    ///
    /// While a scope is open ([`EventStore::hold`] until [`EventStore::release`] or
    /// [`EventStore::append_closing`]), [`EventStore::append`] on this thread queues the event
    /// without waiting for it to be durable, and returns it with `seq` 0 and an empty `hash`
    /// (the journal has not assigned them yet). The engine holds around planning and read-only
    /// runs: they change nothing, so nothing has to be on disk before a step runs, and a whole
    /// action then costs one wait for the writer instead of one per event.
    ///
    /// Guarantees kept: events are still published only once committed; they are queued on
    /// one channel and committed in order; the appends are linked, so if one fails the later
    /// ones are refused (no holes in the action's record) and the next waited-for append on
    /// this thread, [`DaemonStore::append_now`], reports the failure. Undo records are never
    /// deferred: they must be durable before the change they describe.
    static DEFERRED: RefCell<Option<Link>> = const { RefCell::new(None) };
}

fn deferred_link() -> Option<Link> {
    DEFERRED.with(|d| d.borrow().clone())
}

impl DaemonStore {
    /// Opens the journal in `dir` for writing through a group committer whose commits are
    /// published by `hub`.
    pub fn open(
        dir: &std::path::Path,
        opts: JournalOptions,
        hub: Arc<Hub>,
    ) -> Result<Self, JournalError> {
        let journal = Journal::open_with(dir, opts)?;
        let hook: kernos_journal::CommitHook = Box::new(move |batch| hub.publish_batch(batch));
        let committer = GroupCommitter::start_with_hook(
            journal,
            GroupOptions {
                max_batch: 4096,
                queue: 8192,
                background_checkpoint: true,
            },
            Some(hook),
        )?;
        let appender = committer.appender();
        Ok(DaemonStore {
            committer: Mutex::new(Some(committer)),
            appender: std::sync::RwLock::new(Some(appender)),
            dir: dir.to_path_buf(),
            readers: Mutex::new(Vec::new()),
        })
    }

    /// Runs `f` with a read connection from the pool.
    pub fn with_reader<T>(
        &self,
        f: impl FnOnce(&Journal) -> Result<T, JournalError>,
    ) -> Result<T, JournalError> {
        let conn = self.readers.lock().ok().and_then(|mut v| v.pop());
        let conn = match conn {
            Some(c) => c,
            None => Journal::open_read_only(&self.dir)?,
        };
        let out = f(&conn);
        if let Ok(mut v) = self.readers.lock() {
            if v.len() < KEEP_READERS {
                v.push(conn);
            }
        }
        out
    }

    /// Appends without blocking the caller's thread; resolves once durable (and published).
    pub async fn append_async(&self, ev: NewEvent) -> Result<Event, JournalError> {
        let p = PreparedEvent::new(&ev)?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.appender()?.submit(
            vec![p],
            Box::new(move |r| {
                let _ = tx.send(r);
            }),
        )?;
        let mut appended = rx
            .await
            .map_err(|_| JournalError::WriterGone("writer stopped before answering".into()))??;
        let a = appended
            .pop()
            .ok_or_else(|| JournalError::WriterGone("empty reply".into()))?;
        Ok(kernos_engine::stored(ev, &a))
    }

    /// Appends and waits until the event is durable, even inside a deferral scope. There it
    /// also waits for every event deferred before it, and fails if any of them failed.
    pub fn append_now(&self, ev: NewEvent) -> Result<Event, JournalError> {
        self.append_in(ev, deferred_link().as_ref())
    }

    /// Appends on `link` (or on none) and waits until the event is durable.
    pub(crate) fn append_in(
        &self,
        ev: NewEvent,
        link: Option<&Link>,
    ) -> Result<Event, JournalError> {
        let mut a = self
            .appender()?
            .append_many_in(std::slice::from_ref(&ev), link)?;
        let a = a
            .pop()
            .ok_or_else(|| JournalError::WriterGone("empty reply".into()))?;
        Ok(kernos_engine::stored(ev, &a))
    }

    fn appender(&self) -> Result<Appender, JournalError> {
        self.appender
            .read()
            .ok()
            .and_then(|a| a.clone())
            .ok_or_else(|| JournalError::WriterGone("the daemon is shutting down".into()))
    }

    /// Commits what is queued and stops the writer.
    pub fn shutdown(&self) {
        if let Ok(mut a) = self.appender.write() {
            *a = None;
        }
        let c = self.committer.lock().ok().and_then(|mut c| c.take());
        if let Some(c) = c {
            c.shutdown();
        }
    }
}

impl EventStore for DaemonStore {
    fn append(&self, ev: NewEvent) -> Result<Event, JournalError> {
        let link = match deferred_link() {
            Some(l) if ev.kind != kind::STEP_UNDO_RECORDED => l,
            _ => return self.append_now(ev),
        };
        let p = PreparedEvent::new(&ev)?;
        // Nobody waits for the reply: a failure breaks the link, which the writer records.
        self.appender()?
            .submit_linked(vec![p], &link, Box::new(|_| {}))?;
        Ok(kernos_engine::held(ev))
    }

    /// Opens a deferral scope on this thread (see `DEFERRED`): the engine holds the events of
    /// planning and of read-only runs.
    fn hold(&self) {
        DEFERRED.with(|d| *d.borrow_mut() = Some(Link::new()));
    }

    /// Waits until everything deferred on this thread is durable (an empty request on the same
    /// link is answered only after the ones queued before it), then ends the scope.
    fn release(&self) -> Result<(), JournalError> {
        let Some(link) = DEFERRED.with(|d| d.borrow_mut().take()) else {
            return Ok(());
        };
        self.appender()?.append_many_in(&[], Some(&link))?;
        Ok(())
    }

    fn append_closing(&self, ev: NewEvent) -> Result<Event, JournalError> {
        let r = self.append_now(ev);
        DEFERRED.with(|d| d.borrow_mut().take());
        r
    }

    fn query(&self, q: &Query) -> Result<Vec<Event>, JournalError> {
        self.with_reader(|j| j.query(q))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kernos_core::Actor;

    #[test]
    fn prepared_json_matches_the_stored_event() {
        let d = tempfile::tempdir().unwrap();
        let mut j = Journal::open(d.path()).unwrap();
        let ev = NewEvent::new("a.b", Actor::user("x\"y"))
            .org("acme")
            .action(kernos_core::ActionId::generate())
            .payload(serde_json::json!({"k": [1, "two"]}));
        let p = PreparedEvent::new(&ev).unwrap();
        let a = j.append_prepared(std::slice::from_ref(&p)).unwrap()[0];
        let published = Published::from_prepared(&p, &a);
        let stored = j.get(a.seq).unwrap().unwrap();
        assert_eq!(published.event().unwrap(), stored);
        assert_eq!(published.json, serde_json::to_string(&stored).unwrap());
        assert_eq!(Published::from_event(&stored).event().unwrap(), stored);
    }

    #[test]
    fn external_appends_are_published_in_order_without_gaps() {
        let d = tempfile::tempdir().unwrap();
        Journal::open(d.path()).unwrap();
        let hub = Arc::new(Hub::new(0, Journal::open_read_only(d.path()).unwrap(), 64));
        let mut rx = hub.subscribe();
        let store = DaemonStore::open(d.path(), JournalOptions::default(), hub.clone()).unwrap();
        store.append(NewEvent::new("one", Actor::system())).unwrap();
        // Another process appends two events...
        let mut other = Journal::open(d.path()).unwrap();
        other
            .append(&NewEvent::new("two", Actor::system()))
            .unwrap();
        other
            .append(&NewEvent::new("three", Actor::system()))
            .unwrap();
        // ...and the daemon's next commit publishes them before its own.
        store
            .append(NewEvent::new("four", Actor::system()))
            .unwrap();
        other
            .append(&NewEvent::new("five", Actor::system()))
            .unwrap();
        hub.poll_external();
        hub.poll_external();
        let got: Vec<(u64, String)> = (0..5)
            .map(|_| {
                let p = rx.try_recv().unwrap();
                (p.seq, p.kind.clone())
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (1, "one".into()),
                (2, "two".into()),
                (3, "three".into()),
                (4, "four".into()),
                (5, "five".into())
            ]
        );
        assert!(rx.try_recv().is_err(), "nothing twice");
        store.shutdown();
    }
}
