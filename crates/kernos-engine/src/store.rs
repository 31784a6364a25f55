//! Where the engine writes and reads events.

use std::sync::Mutex;

use kernos_core::{Event, NewEvent};
use kernos_journal::{Journal, JournalError, Query};

/// The journal as the engine sees it. The CLI uses one [`Journal`] behind a mutex; the daemon
/// plugs in its group-commit writer and a reader, and publishes events to live subscribers
/// only after `append` has made them durable.
pub trait EventStore: Send + Sync {
    /// Appends an event durably and returns it as stored.
    fn append(&self, ev: NewEvent) -> Result<Event, JournalError>;
    /// Reads events.
    fn query(&self, q: &Query) -> Result<Vec<Event>, JournalError>;
}

/// Builds the stored form of an appended event without re-reading it.
pub fn stored(ev: NewEvent, a: &kernos_journal::Appended) -> Event {
    Event {
        seq: a.seq,
        ts_ms: a.ts_ms,
        kind: ev.kind,
        actor: ev.actor,
        org: ev.org,
        action: ev.action,
        tx: ev.tx,
        payload: ev.payload,
        hash: a.hash_hex(),
    }
}

impl EventStore for Mutex<Journal> {
    fn append(&self, ev: NewEvent) -> Result<Event, JournalError> {
        let mut j = self
            .lock()
            .map_err(|_| JournalError::WriterGone("journal lock poisoned".into()))?;
        let a = j.append(&ev)?;
        Ok(stored(ev, &a))
    }

    fn query(&self, q: &Query) -> Result<Vec<Event>, JournalError> {
        let j = self
            .lock()
            .map_err(|_| JournalError::WriterGone("journal lock poisoned".into()))?;
        j.query(q)
    }
}
