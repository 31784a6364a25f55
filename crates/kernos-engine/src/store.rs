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
    /// From now until [`EventStore::release`], appends may be held and committed together
    /// (one sync instead of one per event); what `append` returns meanwhile has `seq` 0 and
    /// no hash. Only for runs that change nothing, where no step depends on an earlier event
    /// being on disk. Stores that cannot hold ignore it.
    fn hold(&self) {}
    /// Commits what was held, in order, in one transaction, and stops holding.
    fn release(&self) -> Result<(), JournalError> {
        Ok(())
    }
    /// Appends the last event of an action and returns once it and everything held before it
    /// are durable; holding stops. Fails with [`JournalError::EarlierAppendFailed`] when a held
    /// event could not be written (the record of the action would have a hole).
    fn append_closing(&self, ev: NewEvent) -> Result<Event, JournalError> {
        let stored = self.append(ev)?;
        self.release()?;
        Ok(stored)
    }
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

/// What a store that holds (or defers) an event returns for it until it is written: the event
/// as given, with `seq` 0, no hash, and the time it was handed over.
pub fn held(ev: NewEvent) -> Event {
    let ts_ms = kernos_core::time::now_ms();
    Event {
        seq: 0,
        ts_ms,
        kind: ev.kind,
        actor: ev.actor,
        org: ev.org,
        action: ev.action,
        tx: ev.tx,
        payload: ev.payload,
        hash: String::new(),
    }
}

/// The CLI's store: one [`Journal`], and the events of a read-only run held in memory until
/// the run ends, then committed in one transaction.
#[derive(Debug)]
pub struct JournalStore {
    journal: Mutex<Journal>,
    held: Mutex<Option<Vec<NewEvent>>>,
}

impl JournalStore {
    /// Over `journal`.
    pub fn new(journal: Journal) -> Self {
        JournalStore {
            journal: Mutex::new(journal),
            held: Mutex::new(None),
        }
    }

    fn journal(&self) -> Result<std::sync::MutexGuard<'_, Journal>, JournalError> {
        self.journal
            .lock()
            .map_err(|_| JournalError::WriterGone("journal lock poisoned".into()))
    }

    fn held(&self) -> Result<std::sync::MutexGuard<'_, Option<Vec<NewEvent>>>, JournalError> {
        self.held
            .lock()
            .map_err(|_| JournalError::WriterGone("journal lock poisoned".into()))
    }

    /// Commits what is held; keeps holding if it was.
    fn flush(&self) -> Result<(), JournalError> {
        let mut held = self.held()?;
        if let Some(evs) = held.as_mut().filter(|e| !e.is_empty()) {
            self.journal()?.append_batch(evs)?;
            evs.clear();
        }
        Ok(())
    }
}

impl EventStore for JournalStore {
    fn append(&self, ev: NewEvent) -> Result<Event, JournalError> {
        {
            let mut waiting = self.held()?;
            if let Some(evs) = waiting.as_mut() {
                let placeholder = held(ev.clone());
                evs.push(ev);
                return Ok(placeholder);
            }
        }
        let a = self.journal()?.append(&ev)?;
        Ok(stored(ev, &a))
    }

    fn query(&self, q: &Query) -> Result<Vec<Event>, JournalError> {
        // What is held is part of the record: a reader must see it.
        self.flush()?;
        self.journal()?.query(q)
    }

    fn hold(&self) {
        if let Ok(mut h) = self.held() {
            h.get_or_insert_with(Vec::new);
        }
    }

    fn release(&self) -> Result<(), JournalError> {
        let r = self.flush();
        if let Ok(mut h) = self.held() {
            *h = None;
        }
        r
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use kernos_core::Actor;

    fn ev(n: u64) -> NewEvent {
        NewEvent::new("test.n", Actor::system()).payload(serde_json::json!({ "n": n }))
    }

    fn count(dir: &std::path::Path) -> usize {
        Journal::open_read_only(dir)
            .unwrap()
            .query(&Query::default())
            .unwrap()
            .len()
    }

    #[test]
    fn held_events_are_committed_together_in_order_and_visible_to_readers() {
        let d = tempfile::tempdir().unwrap();
        let s = JournalStore::new(Journal::open(d.path()).unwrap());
        s.append(ev(0)).unwrap();
        s.hold();
        let placeholder = s.append(ev(1)).unwrap();
        assert_eq!((placeholder.seq, placeholder.hash.as_str()), (0, ""));
        s.append(ev(2)).unwrap();
        assert_eq!(count(d.path()), 1, "held, not yet written");
        // A reader through the store sees everything, held or not.
        assert_eq!(s.query(&Query::default()).unwrap().len(), 3);
        s.append(ev(3)).unwrap();
        s.release().unwrap();
        let all = Journal::open_read_only(d.path())
            .unwrap()
            .query(&Query::default())
            .unwrap();
        let ns: Vec<u64> = all
            .iter()
            .map(|e| e.payload["n"].as_u64().unwrap())
            .collect();
        assert_eq!(ns, [0, 1, 2, 3]);
        // After release, appends are durable when they return again.
        let e = s.append(ev(4)).unwrap();
        assert_eq!(e.seq, 5);
        assert_eq!(count(d.path()), 5);
        assert!(
            Journal::open_read_only(d.path())
                .unwrap()
                .verify()
                .unwrap()
                .is_ok()
        );
    }
}

/// A store that records nothing, for when the journal cannot be written (a read-only data
/// directory): events are handed back as given and reads find nothing. An engine on it only
/// reads — see [`crate::Engine::unrecorded`].
#[derive(Debug, Default, Clone, Copy)]
pub struct Unrecorded;

impl EventStore for Unrecorded {
    fn append(&self, ev: NewEvent) -> Result<Event, JournalError> {
        Ok(held(ev))
    }

    fn query(&self, _: &Query) -> Result<Vec<Event>, JournalError> {
        Ok(Vec::new())
    }
}
