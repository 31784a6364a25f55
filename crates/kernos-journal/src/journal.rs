//! The journal: an append-only, hash-chained event log in one SQLite database.

use std::fs;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use kernos_core::{Actor, Event, NewEvent};
use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};

use crate::blob::BlobStore;
use crate::chain::{self, GENESIS, RowRef};
use crate::error::{JournalError, Result};
use crate::schema;

/// The database file name inside the data directory.
pub const DB_FILE: &str = "journal.db";

/// Largest payload stored inline in a row; bigger data belongs in the blob store.
pub const MAX_PAYLOAD_BYTES: usize = 4 << 20;

/// How hard an append works to survive failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Every commit is fsynced before the append returns: survives power loss and kernel
    /// crashes as well as a killed process. The default.
    #[default]
    Full,
    /// Commits reach the operating system before the append returns but are fsynced only at
    /// checkpoints: survives a killed process, may lose the newest events on power loss.
    Normal,
}

/// How to open a journal.
#[derive(Debug, Clone)]
pub struct JournalOptions {
    /// Sync policy for appends.
    pub durability: Durability,
    /// How long to wait for another writer before giving up with [`JournalError::Busy`].
    pub busy_timeout: Duration,
    /// Open for reading only: appends fail, and the database must already exist.
    pub read_only: bool,
}

impl Default for JournalOptions {
    fn default() -> Self {
        JournalOptions {
            durability: Durability::Full,
            busy_timeout: Duration::from_secs(5),
            read_only: false,
        }
    }
}

/// What the journal assigned to an appended event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// Sequence number.
    pub seq: u64,
    /// Timestamp, ms since the Unix epoch.
    pub ts_ms: i64,
    /// Chained hash.
    pub hash: [u8; 32],
}

impl Appended {
    /// The hash as hex.
    pub fn hash_hex(&self) -> String {
        chain::to_hex(&self.hash)
    }
}

/// An event with its payload already serialised: the form the writer stores. Preparing on the
/// caller's thread keeps JSON work off the single writer.
#[derive(Debug, Clone, PartialEq)]
pub struct PreparedEvent {
    /// Kind.
    pub kind: String,
    /// Actor.
    pub actor: String,
    /// Organisation.
    pub org: String,
    /// Action id text.
    pub action: Option<String>,
    /// Transaction id text.
    pub tx: Option<String>,
    /// Payload, JSON text.
    pub payload: String,
}

impl PreparedEvent {
    /// Serialises an event, refusing oversized payloads.
    pub fn new(ev: &NewEvent) -> Result<Self> {
        let payload = serde_json::to_string(&ev.payload).map_err(|e| JournalError::Corrupt {
            seq: 0,
            reason: format!("payload does not serialise: {e}"),
        })?;
        if payload.len() > MAX_PAYLOAD_BYTES {
            return Err(JournalError::PayloadTooLarge {
                size: payload.len(),
                limit: MAX_PAYLOAD_BYTES,
            });
        }
        Ok(PreparedEvent {
            kind: ev.kind.clone(),
            actor: ev.actor.0.clone(),
            org: ev.org.clone(),
            action: ev.action.map(|a| a.to_string()),
            tx: ev.tx.map(|t| t.to_string()),
            payload,
        })
    }

    /// The event as stored, given what the journal assigned.
    pub fn to_event(&self, a: &Appended) -> Result<Event> {
        decode_event(RawRow {
            seq: a.seq,
            ts_ms: a.ts_ms,
            kind: self.kind.clone(),
            actor: self.actor.clone(),
            org: self.org.clone(),
            action: self.action.clone(),
            tx: self.tx.clone(),
            payload: self.payload.clone(),
            hash: a.hash.to_vec(),
        })
    }
}

/// A selection of events. Every field narrows the selection; the default selects everything.
#[derive(Debug, Clone, Default)]
pub struct Query {
    /// Only events with `seq > after`.
    pub after: Option<u64>,
    /// Only events with `seq <= until`.
    pub until: Option<u64>,
    /// Only this exact kind.
    pub kind: Option<String>,
    /// Only kinds starting with this prefix (e.g. `step.`).
    pub kind_prefix: Option<String>,
    /// Only this actor.
    pub actor: Option<String>,
    /// Only this organisation.
    pub org: Option<String>,
    /// Only this action.
    pub action: Option<String>,
    /// Only this transaction.
    pub tx: Option<String>,
    /// Only events at or after this time (ms).
    pub since_ms: Option<i64>,
    /// Only events before this time (ms).
    pub until_ms: Option<i64>,
    /// At most this many events.
    pub limit: Option<usize>,
    /// Newest first instead of oldest first.
    pub newest_first: bool,
}

impl Query {
    /// Everything after `seq`.
    pub fn after(seq: u64) -> Self {
        Query {
            after: Some(seq),
            ..Query::default()
        }
    }

    /// The events of one transaction, in order.
    pub fn tx(tx: impl ToString) -> Self {
        Query {
            tx: Some(tx.to_string()),
            ..Query::default()
        }
    }

    /// The events of one action, in order.
    pub fn action(action: impl ToString) -> Self {
        Query {
            action: Some(action.to_string()),
            ..Query::default()
        }
    }

    /// Events of one exact kind.
    pub fn kind(kind: &str) -> Self {
        Query {
            kind: Some(kind.to_owned()),
            ..Query::default()
        }
    }

    /// Events whose kind starts with `prefix`.
    pub fn kind_prefix(prefix: &str) -> Self {
        Query {
            kind_prefix: Some(prefix.to_owned()),
            ..Query::default()
        }
    }

    /// Events caused by `actor`.
    pub fn actor(actor: &str) -> Self {
        Query {
            actor: Some(actor.to_owned()),
            ..Query::default()
        }
    }

    /// Limits the count.
    pub fn limit(mut self, n: usize) -> Self {
        self.limit = Some(n);
        self
    }

    /// Newest first.
    pub fn newest_first(mut self) -> Self {
        self.newest_first = true;
        self
    }

    fn to_sql(&self) -> (String, Vec<rusqlite::types::Value>) {
        use rusqlite::types::Value as V;
        let mut sql = String::from(
            "SELECT seq, ts_ms, kind, actor, org, action, tx, payload, hash FROM events WHERE 1=1",
        );
        let mut args: Vec<V> = Vec::new();
        let mut push = |cond: &str, v: V| {
            sql.push_str(" AND ");
            sql.push_str(cond);
            args.push(v);
        };
        if let Some(a) = self.after {
            push("seq > ?", V::Integer(a as i64));
        }
        if let Some(u) = self.until {
            push("seq <= ?", V::Integer(u as i64));
        }
        if let Some(k) = &self.kind {
            push("kind = ?", V::Text(k.clone()));
        }
        if let Some(p) = &self.kind_prefix {
            // A range on the index instead of LIKE, which would not use it and treats `_` and
            // `%` as wildcards.
            push("kind >= ?", V::Text(p.clone()));
            if let Some(end) = prefix_end(p) {
                push("kind < ?", V::Text(end));
            }
        }
        if let Some(a) = &self.actor {
            push("actor = ?", V::Text(a.clone()));
        }
        if let Some(o) = &self.org {
            push("org = ?", V::Text(o.clone()));
        }
        if let Some(a) = &self.action {
            push("action = ?", V::Text(a.clone()));
        }
        if let Some(t) = &self.tx {
            push("tx = ?", V::Text(t.clone()));
        }
        if let Some(s) = self.since_ms {
            push("ts_ms >= ?", V::Integer(s));
        }
        if let Some(u) = self.until_ms {
            push("ts_ms < ?", V::Integer(u));
        }
        sql.push_str(if self.newest_first {
            " ORDER BY seq DESC"
        } else {
            " ORDER BY seq ASC"
        });
        if let Some(n) = self.limit {
            sql.push_str(&format!(" LIMIT {n}"));
        }
        (sql, args)
    }
}

/// The smallest string greater than every string starting with `p`, if there is one.
fn prefix_end(p: &str) -> Option<String> {
    let mut chars: Vec<char> = p.chars().collect();
    while let Some(last) = chars.pop() {
        if let Some(next) = char::from_u32(last as u32 + 1) {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// The outcome of walking the chain.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VerifyReport {
    /// Rows checked.
    pub checked: u64,
    /// The recorded head sequence number.
    pub head_seq: u64,
    /// The first problem, if any. `None` means the chain is intact.
    pub first_bad: Option<Tamper>,
}

impl VerifyReport {
    /// True when nothing was wrong.
    pub fn is_ok(&self) -> bool {
        self.first_bad.is_none()
    }
}

/// Where the chain breaks and how.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Tamper {
    /// The first sequence number that is wrong (missing, edited, out of place).
    pub seq: u64,
    /// What is wrong there.
    pub problem: String,
}

/// A row as stored.
struct RawRow {
    seq: u64,
    ts_ms: i64,
    kind: String,
    actor: String,
    org: String,
    action: Option<String>,
    tx: Option<String>,
    payload: String,
    hash: Vec<u8>,
}

fn read_raw(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawRow> {
    Ok(RawRow {
        seq: r.get::<_, i64>(0)? as u64,
        ts_ms: r.get(1)?,
        kind: r.get(2)?,
        actor: r.get(3)?,
        org: r.get(4)?,
        action: r.get(5)?,
        tx: r.get(6)?,
        payload: r.get(7)?,
        hash: r.get(8)?,
    })
}

fn decode_event(raw: RawRow) -> Result<Event> {
    let corrupt = |reason: String| JournalError::Corrupt {
        seq: raw.seq,
        reason,
    };
    let payload =
        serde_json::from_str(&raw.payload).map_err(|e| corrupt(format!("payload: {e}")))?;
    let action = raw
        .action
        .as_deref()
        .map(str::parse)
        .transpose()
        .map_err(|e| corrupt(format!("action id: {e}")))?;
    let tx = raw
        .tx
        .as_deref()
        .map(str::parse)
        .transpose()
        .map_err(|e| corrupt(format!("tx id: {e}")))?;
    let hash: [u8; 32] = raw
        .hash
        .as_slice()
        .try_into()
        .map_err(|_| corrupt("hash is not 32 bytes".into()))?;
    Ok(Event {
        seq: raw.seq,
        ts_ms: raw.ts_ms,
        kind: raw.kind,
        actor: Actor(raw.actor),
        org: raw.org,
        action,
        tx,
        payload,
        hash: chain::to_hex(&hash),
    })
}

use kernos_core::time::now_ms;

/// Creates `dir` and any missing parents readable by their owner only (0700): the data
/// directory and everything Kernos keeps in it are private, whatever the umask. Existing
/// directories are left as they are.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// Makes the database file private (0600) before SQLite opens it, creating it empty when it
/// is new: SQLite gives its `-wal` and `-shm` files the database file's mode, so all three
/// stay unreadable to other users even where the directory or the umask is loose.
fn private_db_file(db_path: &Path) -> Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let io = |e| JournalError::io("cannot make the journal private", db_path, e);
    match fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(db_path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let mode = fs::metadata(db_path).map_err(io)?.permissions().mode();
            if mode & 0o077 != 0 {
                fs::set_permissions(db_path, fs::Permissions::from_mode(0o600)).map_err(io)?;
            }
            Ok(())
        }
        Err(e) => Err(io(e)),
    }
}

/// Past any WAL a journal reaches between checkpoints: SQLite only truncates a WAL larger than
/// this when it restarts it, so in use nothing changes.
const WAL_SIZE_LIMIT: i64 = 64 << 20;

/// Keeps the `-wal` and `-shm` files when the last connection closes, the WAL emptied (cut to
/// zero bytes after the closing checkpoint), instead of deleting both. Every CLI command is a
/// connection of its own, and deleting and re-creating the two files cost each command two
/// unlinks and two file creations (~0.3 ms of a ~6 ms `kernos "how much memory is used"`).
/// What is durable and when is unchanged: the closing checkpoint and its fsync still run, and
/// an empty WAL holds nothing to recover. The files keep the database file's mode (0600).
fn keep_wal_files(conn: &Connection) -> rusqlite::Result<()> {
    let mut persist = 1;
    conn.file_control(
        Some(rusqlite::MAIN_DB),
        rusqlite::FileControl::PersistWal(&mut persist),
    )?;
    // Without a limit a persistent WAL is left full at close, and the next open would read
    // all of it back (recovery) only to find it checkpointed already.
    conn.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT)
}

/// The directory Kernos keeps its data in: `$KERNOS_DATA_DIR`, else `$XDG_DATA_HOME/kernos`,
/// else `~/.local/share/kernos`.
pub fn default_data_dir() -> Result<PathBuf> {
    let nonempty = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(d) = nonempty("KERNOS_DATA_DIR") {
        return Ok(d);
    }
    if let Some(d) = nonempty("XDG_DATA_HOME") {
        return Ok(d.join("kernos"));
    }
    nonempty("HOME")
        .map(|h| h.join(".local/share/kernos"))
        .ok_or(JournalError::NoDataDir)
}

/// The event journal of one data directory.
///
/// One `Journal` is one SQLite connection: use it from one thread at a time (it is `Send`).
/// Several processes may open the same journal; appends serialise on SQLite's write lock and
/// read the chain head inside it, so the chain never forks.
pub struct Journal {
    conn: Connection,
    dir: PathBuf,
    db_path: PathBuf,
    blobs: BlobStore,
    read_only: bool,
    opts: JournalOptions,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal")
            .field("db", &self.db_path)
            .field("read_only", &self.read_only)
            .finish()
    }
}

impl Journal {
    /// Opens (creating if needed) the journal in `dir` with default options.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(dir, JournalOptions::default())
    }

    /// Opens an existing journal for reading only.
    pub fn open_read_only(dir: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(
            dir,
            JournalOptions {
                read_only: true,
                ..JournalOptions::default()
            },
        )
    }

    /// Opens the journal in `dir` with explicit options.
    pub fn open_with(dir: impl AsRef<Path>, opts: JournalOptions) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        let db_path = dir.join(DB_FILE);
        if !opts.read_only {
            // Private by default: the journal records what users did and command output.
            create_private_dir(&dir)
                .map_err(|e| JournalError::io("cannot create data directory", &dir, e))?;
            private_db_file(&db_path)?;
        }
        let flags = if opts.read_only {
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
        } else {
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
        };
        let open_err = |source| JournalError::Open {
            path: db_path.clone(),
            source,
        };
        let mut conn = Connection::open_with_flags(&db_path, flags).map_err(open_err)?;
        conn.busy_timeout(opts.busy_timeout).map_err(open_err)?;
        // SQLite quietly opens a file it cannot write read-only (a read-only mount, a file
        // made read-only): say so now, not at the first append, so the caller can fall back
        // to reading.
        if !opts.read_only && conn.is_readonly(rusqlite::MAIN_DB).map_err(open_err)? {
            return Err(JournalError::io(
                "cannot write the journal",
                &db_path,
                std::io::Error::from(std::io::ErrorKind::ReadOnlyFilesystem),
            ));
        }
        if !opts.read_only {
            conn.pragma_update(None, "journal_mode", "WAL")
                .map_err(open_err)?;
            let sync = match opts.durability {
                Durability::Full => "FULL",
                Durability::Normal => "NORMAL",
            };
            conn.pragma_update(None, "synchronous", sync)
                .map_err(open_err)?;
            keep_wal_files(&conn).map_err(open_err)?;
            schema::migrate(&mut conn, &db_path)?;
        } else {
            let v: i64 = conn
                .query_row("PRAGMA user_version", [], |r| r.get(0))
                .map_err(open_err)?;
            if v > schema::CURRENT {
                return Err(JournalError::TooNew {
                    path: db_path,
                    found: v,
                    supported: schema::CURRENT,
                });
            }
            if v == 0 {
                return Err(open_err(rusqlite::Error::QueryReturnedNoRows));
            }
        }
        conn.set_prepared_statement_cache_capacity(32);
        let blobs = BlobStore::open(dir.join("blobs"), opts.read_only)?;
        Ok(Journal {
            conn,
            dir,
            db_path,
            blobs,
            read_only: opts.read_only,
            opts,
        })
    }

    /// Another connection to the same journal, with the same options.
    pub fn reopen(&self) -> Result<Self> {
        Self::open_with(&self.dir, self.opts.clone())
    }

    /// How many WAL pages a commit on this connection may leave before the committing
    /// connection checkpoints them into the database itself (SQLite's default is 1000).
    pub fn set_wal_autocheckpoint(&self, pages: u32) -> Result<()> {
        self.conn
            .pragma_update(None, "wal_autocheckpoint", pages)
            .map_err(JournalError::from)
    }

    /// Copies committed WAL pages into the database without waiting for writers or readers
    /// (a passive checkpoint), syncing as the journal's durability asks. Returns how many
    /// pages the WAL holds and how many of them are now in the database.
    pub fn checkpoint(&self) -> Result<(u64, u64)> {
        let (_busy, log, done): (i64, i64, i64) =
            self.conn
                .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })?;
        Ok((log.max(0) as u64, done.max(0) as u64))
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The database file.
    pub fn db_path(&self) -> &Path {
        &self.db_path
    }

    /// The blob store beside the database.
    pub fn blobs(&self) -> &BlobStore {
        &self.blobs
    }

    /// Appends one event; when this returns, the event is durable (see [`Durability`]).
    pub fn append(&mut self, ev: &NewEvent) -> Result<Appended> {
        let p = PreparedEvent::new(ev)?;
        let mut out = self.append_prepared(std::slice::from_ref(&p))?;
        out.pop()
            .ok_or_else(|| JournalError::WriterGone("append returned nothing".into()))
    }

    /// Appends several events in one transaction (one sync), all or nothing.
    pub fn append_batch(&mut self, evs: &[NewEvent]) -> Result<Vec<Appended>> {
        let prepared = evs
            .iter()
            .map(PreparedEvent::new)
            .collect::<Result<Vec<_>>>()?;
        self.append_prepared(&prepared)
    }

    /// Appends already-serialised events in one transaction, all or nothing.
    pub fn append_prepared(&mut self, evs: &[PreparedEvent]) -> Result<Vec<Appended>> {
        if self.read_only {
            return Err(JournalError::ReadOnly);
        }
        if evs.is_empty() {
            return Ok(Vec::new());
        }
        // IMMEDIATE takes the write lock before reading the head, so two writers (threads or
        // processes) can never both extend the same head.
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let (mut seq, mut prev) = read_head(&tx)?;
        let ts_ms = now_ms();
        let mut out = Vec::with_capacity(evs.len());
        {
            let mut ins = tx.prepare_cached(
                "INSERT INTO events (seq, ts_ms, kind, actor, org, action, tx, payload, hash) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?;
            for e in evs {
                seq += 1;
                let hash = chain::hash_row(
                    &prev,
                    &RowRef {
                        seq,
                        ts_ms,
                        kind: &e.kind,
                        actor: &e.actor,
                        org: &e.org,
                        action: e.action.as_deref(),
                        tx: e.tx.as_deref(),
                        payload: e.payload.as_bytes(),
                    },
                );
                ins.execute(params![
                    seq as i64,
                    ts_ms,
                    e.kind,
                    e.actor,
                    e.org,
                    e.action,
                    e.tx,
                    e.payload,
                    &hash[..]
                ])?;
                out.push(Appended { seq, ts_ms, hash });
                prev = hash;
            }
            let mut head =
                tx.prepare_cached("UPDATE chain_head SET seq = ?1, hash = ?2 WHERE id = 1")?;
            head.execute(params![seq as i64, &prev[..]])?;
        }
        tx.commit()?;
        Ok(out)
    }

    /// The newest sequence number (0 when empty) and its hash.
    pub fn head(&self) -> Result<(u64, [u8; 32])> {
        read_head(&self.conn)
    }

    /// The event at `seq`, if there is one.
    pub fn get(&self, seq: u64) -> Result<Option<Event>> {
        let mut st = self.conn.prepare_cached(
            "SELECT seq, ts_ms, kind, actor, org, action, tx, payload, hash FROM events WHERE seq = ?1",
        )?;
        let raw = st.query_row([seq as i64], read_raw).optional()?;
        raw.map(decode_event).transpose()
    }

    /// The events `q` selects.
    pub fn query(&self, q: &Query) -> Result<Vec<Event>> {
        let mut out = Vec::new();
        self.for_each(q, |e| {
            out.push(e);
            true
        })?;
        Ok(out)
    }

    /// Streams the events `q` selects to `f` without collecting them; `f` returns `false` to
    /// stop early.
    pub fn for_each(&self, q: &Query, mut f: impl FnMut(Event) -> bool) -> Result<()> {
        let (sql, args) = q.to_sql();
        let mut st = self.conn.prepare_cached(&sql)?;
        let mut rows = st.query(rusqlite::params_from_iter(args))?;
        while let Some(r) = rows.next()? {
            if !f(decode_event(read_raw(r)?)?) {
                break;
            }
        }
        Ok(())
    }

    /// Streams the stored rows with `after < seq <= until` (all after `after` when `until` is
    /// `None`), in order, exactly as stored: the payload is the stored text, not a parsed and
    /// re-serialised value. For consumers that must hash what the chain hashes (the
    /// transparency log's leaves) and for publishing without a JSON round trip. `f` gets the
    /// row and its stored chain hash and returns `false` to stop early.
    ///
    /// One read transaction: the rows are one snapshot even while another connection appends.
    pub fn for_each_row(
        &self,
        after: u64,
        until: Option<u64>,
        mut f: impl FnMut(&RowRef<'_>, &[u8; 32]) -> bool,
    ) -> Result<()> {
        let snapshot = self.conn.unchecked_transaction()?;
        let mut st = snapshot.prepare_cached(
            "SELECT seq, ts_ms, kind, actor, org, action, tx, payload, hash FROM events \
             WHERE seq > ?1 AND seq <= ?2 ORDER BY seq",
        )?;
        let until = until.map_or(i64::MAX, |u| u.min(i64::MAX as u64) as i64);
        let mut rows = st.query(params![after.min(i64::MAX as u64) as i64, until])?;
        while let Some(r) = rows.next()? {
            let seq = r.get::<_, i64>(0)? as u64;
            let corrupt = |reason: String| JournalError::Corrupt { seq, reason };
            let text = |i: usize| -> Result<&str> {
                r.get_ref(i)?
                    .as_str()
                    .map_err(|e| corrupt(format!("column {i}: {e}")))
            };
            let opt_text = |i: usize| -> Result<Option<&str>> {
                r.get_ref(i)?
                    .as_str_or_null()
                    .map_err(|e| corrupt(format!("column {i}: {e}")))
            };
            let row = RowRef {
                seq,
                ts_ms: r.get(1)?,
                kind: text(2)?,
                actor: text(3)?,
                org: text(4)?,
                action: opt_text(5)?,
                tx: opt_text(6)?,
                payload: text(7)?.as_bytes(),
            };
            let hash: [u8; 32] = r
                .get_ref(8)?
                .as_blob()
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| corrupt("hash is not 32 bytes".into()))?;
            if !f(&row, &hash) {
                break;
            }
        }
        Ok(())
    }

    /// Counts the events `q` selects (ignoring its limit and order).
    pub fn count(&self, q: &Query) -> Result<u64> {
        let (sql, args) = Query {
            limit: None,
            ..q.clone()
        }
        .to_sql();
        let sql = sql.replacen(
            "SELECT seq, ts_ms, kind, actor, org, action, tx, payload, hash FROM",
            "SELECT count(*) FROM",
            1,
        );
        let n: i64 = self
            .conn
            .query_row(&sql, rusqlite::params_from_iter(args), |r| r.get(0))?;
        Ok(n as u64)
    }

    /// Walks the whole chain and reports the first event that was edited, deleted, inserted or
    /// moved — or that the newest events were cut off.
    ///
    /// The head and the rows are read in one read transaction (one snapshot), so events
    /// another connection appends meanwhile are neither walked nor mistaken for rows added
    /// behind the head: a live journal verifies as it stood when the walk began.
    pub fn verify(&self) -> Result<VerifyReport> {
        let snapshot = self.conn.unchecked_transaction()?;
        let (head_seq, head_hash) = read_head(&snapshot)?;
        let mut st = snapshot.prepare(
            "SELECT seq, ts_ms, kind, actor, org, action, tx, payload, hash FROM events ORDER BY seq",
        )?;
        let mut rows = st.query([])?;
        let mut prev = GENESIS;
        let mut expected: u64 = 1;
        let mut checked: u64 = 0;
        let bad = |seq: u64, problem: String, checked: u64| VerifyReport {
            checked,
            head_seq,
            first_bad: Some(Tamper { seq, problem }),
        };
        while let Some(r) = rows.next()? {
            let seq = r.get::<_, i64>(0)? as u64;
            if seq != expected {
                let problem = if seq > expected {
                    if seq == expected + 1 {
                        format!("event {expected} is missing (deleted)")
                    } else {
                        format!("events {expected}..{} are missing (deleted)", seq - 1)
                    }
                } else {
                    format!("unexpected sequence number {seq} (rows renumbered)")
                };
                return Ok(bad(expected.min(seq), problem, checked));
            }
            // Borrow the stored bytes directly: no allocation per row on this hot path.
            let text = |i: usize| -> rusqlite::Result<&str> {
                r.get_ref(i)?.as_str().map_err(|e| {
                    rusqlite::Error::FromSqlConversionFailure(
                        i,
                        rusqlite::types::Type::Text,
                        Box::new(e),
                    )
                })
            };
            let opt_text = |i: usize| -> rusqlite::Result<Option<&str>> {
                r.get_ref(i)?.as_str_or_null().map_err(|e| {
                    rusqlite::Error::FromSqlConversionFailure(
                        i,
                        rusqlite::types::Type::Text,
                        Box::new(e),
                    )
                })
            };
            let row = match (|| -> rusqlite::Result<RowRef<'_>> {
                Ok(RowRef {
                    seq,
                    ts_ms: r.get(1)?,
                    kind: text(2)?,
                    actor: text(3)?,
                    org: text(4)?,
                    action: opt_text(5)?,
                    tx: opt_text(6)?,
                    payload: r.get_ref(7)?.as_bytes().map_err(|e| {
                        rusqlite::Error::FromSqlConversionFailure(
                            7,
                            rusqlite::types::Type::Text,
                            Box::new(e),
                        )
                    })?,
                })
            })() {
                Ok(row) => row,
                Err(e) => return Ok(bad(seq, format!("row has the wrong shape: {e}"), checked)),
            };
            let stored = r.get_ref(8)?.as_blob().unwrap_or(&[]);
            let computed = chain::hash_row(&prev, &row);
            if stored != computed {
                return Ok(bad(
                    seq,
                    "content does not match its hash (edited, inserted or moved)".into(),
                    checked,
                ));
            }
            prev = computed;
            checked += 1;
            expected += 1;
        }
        let last = expected - 1;
        if last != head_seq {
            let problem = if head_seq > last {
                format!(
                    "events {}..{head_seq} were removed from the end of the journal",
                    last + 1
                )
            } else {
                format!("events after {head_seq} were added outside the journal")
            };
            return Ok(bad(last.min(head_seq) + 1, problem, checked));
        }
        if prev != head_hash {
            return Ok(bad(
                last.max(1),
                "newest event does not match the recorded head".into(),
                checked,
            ));
        }
        Ok(VerifyReport {
            checked,
            head_seq,
            first_bad: None,
        })
    }
}

fn read_head(conn: &Connection) -> Result<(u64, [u8; 32])> {
    let mut st = conn.prepare_cached("SELECT seq, hash FROM chain_head WHERE id = 1")?;
    let (seq, hash): (i64, Vec<u8>) = st.query_row([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let hash: [u8; 32] = hash
        .as_slice()
        .try_into()
        .map_err(|_| JournalError::Corrupt {
            seq: seq as u64,
            reason: "chain head hash is not 32 bytes".into(),
        })?;
    Ok((seq as u64, hash))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kernos_core::{ActionId, TxId, event::kind};
    use serde_json::json;

    fn ev(kind: &str, n: u64) -> NewEvent {
        NewEvent::new(kind, Actor::user("t")).payload(json!({"n": n}))
    }

    #[test]
    fn append_assigns_consecutive_seqs_and_chains() {
        let d = tempfile::tempdir().unwrap();
        let mut j = Journal::open(d.path()).unwrap();
        let a = j.append(&ev("a.b", 1)).unwrap();
        let b = j.append_batch(&[ev("a.c", 2), ev("x.y", 3)]).unwrap();
        assert_eq!((a.seq, b[0].seq, b[1].seq), (1, 2, 3));
        assert_eq!(j.head().unwrap(), (3, b[1].hash));
        let e = j.get(2).unwrap().unwrap();
        assert_eq!(e.kind, "a.c");
        assert_eq!(e.payload, json!({"n": 2}));
        assert_eq!(e.hash, b[0].hash_hex());
        assert!(j.get(4).unwrap().is_none());
        assert!(j.verify().unwrap().is_ok());
        assert_eq!(j.verify().unwrap().checked, 3);
    }

    #[test]
    fn queries_filter_by_every_read_model() {
        let d = tempfile::tempdir().unwrap();
        let mut j = Journal::open(d.path()).unwrap();
        let (a1, t1) = (ActionId::generate(), TxId::generate());
        j.append(&ev(kind::ACTION_SUBMITTED, 1).action(a1)).unwrap();
        j.append(&ev(kind::STEP_STARTED, 2).action(a1).tx(t1))
            .unwrap();
        j.append(&ev(kind::STEP_FINISHED, 3).action(a1).tx(t1).org("acme"))
            .unwrap();
        j.append(&NewEvent::new("audit.key.created", Actor::user("root")))
            .unwrap();
        let seqs = |q: Query| {
            j.query(&q)
                .unwrap()
                .iter()
                .map(|e| e.seq)
                .collect::<Vec<_>>()
        };
        assert_eq!(seqs(Query::tx(t1)), vec![2, 3]);
        assert_eq!(seqs(Query::action(a1)), vec![1, 2, 3]);
        assert_eq!(seqs(Query::kind_prefix("step.")), vec![2, 3]);
        assert_eq!(seqs(Query::kind(kind::STEP_STARTED)), vec![2]);
        assert_eq!(seqs(Query::actor("user:root")), vec![4]);
        assert_eq!(
            seqs(Query {
                org: Some("acme".into()),
                ..Query::default()
            }),
            vec![3]
        );
        assert_eq!(seqs(Query::after(2)), vec![3, 4]);
        assert_eq!(
            seqs(Query {
                after: Some(1),
                until: Some(3),
                ..Query::default()
            }),
            vec![2, 3]
        );
        assert_eq!(seqs(Query::default().newest_first().limit(2)), vec![4, 3]);
        assert_eq!(j.count(&Query::kind_prefix("step.").limit(1)).unwrap(), 2);
        // Prefix matching is literal, not LIKE.
        assert_eq!(seqs(Query::kind_prefix("step_")), Vec::<u64>::new());
    }

    #[test]
    fn append_only_triggers_stop_accidents() {
        let d = tempfile::tempdir().unwrap();
        let mut j = Journal::open(d.path()).unwrap();
        j.append(&ev("a", 1)).unwrap();
        let err = j
            .conn
            .execute("UPDATE events SET kind = 'b'", [])
            .unwrap_err();
        assert!(err.to_string().contains("append-only"));
        assert!(j.conn.execute("DELETE FROM events", []).is_err());
    }

    #[test]
    fn oversized_payload_is_refused_and_nothing_is_written() {
        let d = tempfile::tempdir().unwrap();
        let mut j = Journal::open(d.path()).unwrap();
        let big =
            NewEvent::new("x", Actor::system()).payload(json!("a".repeat(MAX_PAYLOAD_BYTES + 1)));
        let err = j.append_batch(&[ev("ok", 1), big]).unwrap_err();
        assert!(matches!(err, JournalError::PayloadTooLarge { .. }), "{err}");
        assert_eq!(j.head().unwrap().0, 0);
    }

    #[test]
    fn read_only_cannot_append_or_create() {
        let d = tempfile::tempdir().unwrap();
        assert!(Journal::open_read_only(d.path().join("missing")).is_err());
        Journal::open(d.path())
            .unwrap()
            .append(&ev("a", 1))
            .unwrap();
        let mut r = Journal::open_read_only(d.path()).unwrap();
        assert_eq!(r.head().unwrap().0, 1);
        assert!(r.append(&ev("b", 2)).is_err());
    }

    #[test]
    fn prefix_end_is_the_next_string() {
        assert_eq!(prefix_end("step."), Some("step/".into()));
        assert_eq!(prefix_end(""), None);
    }
}
