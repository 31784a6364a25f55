//! Schema migrations, tracked with SQLite's `user_version`.
//!
//! Migrations only ever append to this list; a released migration is never edited, because
//! journals written by older versions must open with newer ones.

use std::path::Path;

use rusqlite::Connection;

use crate::error::{JournalError, Result};

/// The migrations, in order. Index `i` moves the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    // v1: the event log, its head, and append-only guards.
    r#"
    CREATE TABLE events (
        seq     INTEGER PRIMARY KEY,
        ts_ms   INTEGER NOT NULL,
        kind    TEXT    NOT NULL,
        actor   TEXT    NOT NULL,
        org     TEXT    NOT NULL,
        action  TEXT,
        tx      TEXT,
        payload TEXT    NOT NULL,
        hash    BLOB    NOT NULL
    );
    CREATE INDEX events_by_kind   ON events(kind, seq);
    CREATE INDEX events_by_actor  ON events(actor, seq);
    CREATE INDEX events_by_action ON events(action, seq) WHERE action IS NOT NULL;
    CREATE INDEX events_by_tx     ON events(tx, seq) WHERE tx IS NOT NULL;

    -- The newest event's position and hash, updated in the same transaction as every append,
    -- so that cutting events off the end of the log is detected too.
    CREATE TABLE chain_head (
        id   INTEGER PRIMARY KEY CHECK (id = 1),
        seq  INTEGER NOT NULL,
        hash BLOB    NOT NULL
    );
    INSERT INTO chain_head (id, seq, hash) VALUES (1, 0, zeroblob(32));

    -- Kernos itself never changes or removes an event; these stop accidents. Deliberate
    -- tampering (dropping the triggers first) is what the hash chain is for.
    CREATE TRIGGER events_append_only_update BEFORE UPDATE ON events
        BEGIN SELECT RAISE(ABORT, 'journal events are append-only'); END;
    CREATE TRIGGER events_append_only_delete BEFORE DELETE ON events
        BEGIN SELECT RAISE(ABORT, 'journal events are append-only'); END;
    "#,
];

/// The schema version this build writes.
pub const CURRENT: i64 = MIGRATIONS.len() as i64;

/// Brings the database up to [`CURRENT`], refusing databases from the future.
pub fn migrate(conn: &mut Connection, path: &Path) -> Result<()> {
    let found: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if found > CURRENT {
        return Err(JournalError::TooNew {
            path: path.to_owned(),
            found,
            supported: CURRENT,
        });
    }
    if found == CURRENT {
        return Ok(());
    }
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    // Re-read inside the write lock: another process may have migrated meanwhile.
    let found: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found.max(0) as usize) {
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i as i64 + 1)?;
    }
    tx.commit()?;
    Ok(())
}
