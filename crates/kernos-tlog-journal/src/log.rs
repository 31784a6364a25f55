//! The live log of one data directory.

use std::path::{Path, PathBuf};

use kernos_core::{Actor, NewEvent};
use kernos_journal::Journal;
use kernos_journal::chain::RowRef;
use kernos_tlog::{Checkpoint, EventLeaf, Hash, KeySet, MerkleTree, TiledTree, TlogError, b64};

use crate::error::{LogError, Result};
use crate::{CHECKPOINT_KIND, is_log_kind};

/// `<data dir>/tlog`: keys in `keys/`, tiles in `tiles/`.
pub fn tlog_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("tlog")
}

/// The leaf of a stored row.
pub fn leaf_of<'a>(r: &RowRef<'a>) -> EventLeaf<'a> {
    EventLeaf {
        seq: r.seq,
        ts_ms: r.ts_ms,
        kind: r.kind,
        actor: r.actor,
        org: r.org,
        action: r.action,
        tx: r.tx,
        payload: r.payload,
    }
}

/// The leaf of an event the writer just committed (the commit hook's view of it).
pub fn leaf_of_committed<'a>(
    p: &'a kernos_journal::PreparedEvent,
    a: &kernos_journal::Appended,
) -> EventLeaf<'a> {
    EventLeaf {
        seq: a.seq,
        ts_ms: a.ts_ms,
        kind: &p.kind,
        actor: &p.actor,
        org: &p.org,
        action: p.action.as_deref(),
        tx: p.tx.as_deref(),
        payload: p.payload.as_bytes(),
    }
}

/// A checkpoint just signed, to be stored as a [`CHECKPOINT_KIND`] event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCheckpoint {
    /// The signed note text.
    pub note: String,
    /// Tree size.
    pub size: u64,
    /// Root at that size.
    pub root: Hash,
}

impl SignedCheckpoint {
    /// The journal event that stores it (org `local`: the log spans every organisation).
    pub fn event(&self, actor: Actor) -> NewEvent {
        NewEvent::new(CHECKPOINT_KIND, actor).payload(serde_json::json!({
            "note": self.note,
            "size": self.size,
            "root": b64(&self.root),
        }))
    }
}

/// The log of a data directory: its keys, its tree (on disk as tiles), and how many events
/// came since the last checkpoint.
#[derive(Debug)]
pub struct Log {
    tiles: TiledTree,
    keys: KeySet,
    /// Events (not counting the log's own) appended since the last checkpoint was signed.
    pending: u64,
    /// Size of the newest signed checkpoint.
    last_size: u64,
    /// The tree's size when the tiles were last written.
    persisted: u64,
    /// The tree's size at which the feeder next writes the tiles and prunes the tree.
    spill_at: u64,
}

/// Leaves between two writes of the tiles while running (they are also written on open and at
/// a clean stop). The tiles are a cache of the journal: a crash loses only time — the leaves
/// since the last write are rehashed from the rows on open, ~0.4 s per million — while writing
/// them at every checkpoint cost a file per 256 leaves on the signing path (measured: 10 % of
/// the append bench's CPU on this machine's ext4).
pub const PERSIST_EVERY: u64 = 1 << 20;

/// Leaves after which the feeder writes the tiles and drops the full ones from memory
/// ([`kernos_tlog::TiledTree::prune`]), whatever the checkpoint schedule. Held whole, the tree
/// costs 64 bytes per event for as long as the daemon runs (measured: 44 MiB of a 58 MiB heap
/// after 100,000 actions, 700,000 events); pruned, at most about this many leaves' worth
/// (~1 MiB) plus a quarter of a byte per leaf. Every full tile is written once either way, so
/// writing them in smaller groups costs only the partial tiles, a few files per group.
pub const SPILL_EVERY: u64 = 1 << 14;

impl Log {
    /// Opens (or makes) the keys and the tiles under `<data_dir>/tlog` and catches the tree
    /// up with `journal`. `origin` names new keys; existing keys keep theirs, and an explicit
    /// origin that differs from them is refused. `now` is Unix seconds.
    pub fn open(data_dir: &Path, origin: &str, journal: &Journal, now: u64) -> Result<Log> {
        Self::open_in(
            data_dir,
            &tlog_dir(data_dir).join("keys"),
            origin,
            journal,
            now,
        )
    }

    /// [`Log::open`] with the keys in `keys_dir` (`[journal] keys_dir`) instead of the data
    /// directory.
    pub fn open_in(
        data_dir: &Path,
        keys_dir: &Path,
        origin: &str,
        journal: &Journal,
        now: u64,
    ) -> Result<Log> {
        let dir = tlog_dir(data_dir);
        kernos_journal::create_private_dir(&dir)
            .map_err(|e| LogError::Invalid(format!("cannot create {}: {e}", dir.display())))?;
        let keys = KeySet::open_or_create(keys_dir, origin, now)?;
        if keys.name() != origin {
            return Err(LogError::Invalid(format!(
                "the log's keys in {} are for origin {:?}, not {origin:?}: checkpoints already published name it; set journal.checkpoints.origin = {:?}",
                keys_dir.display(),
                keys.name(),
                keys.name()
            )));
        }
        let tiles = open_tiles(&dir.join("tiles"), journal)?;
        let mut log = Log {
            tiles,
            keys,
            pending: 0,
            last_size: 0,
            persisted: 0,
            spill_at: 0,
        };
        log.catch_up(journal)?;
        log.persist()?;
        // The tiles were loaded whole: give back what the prune in `persist` dropped.
        log.tiles.shrink_to_fit();
        let newest = journal.query(&kernos_journal::Query {
            newest_first: true,
            limit: Some(1),
            ..kernos_journal::Query::kind(CHECKPOINT_KIND)
        })?;
        let newest = newest.first();
        let after = newest.map_or(0, |e| e.seq);
        log.last_size = newest.and_then(|e| e.payload["size"].as_u64()).unwrap_or(0);
        journal.for_each_row(after, None, |r, _| {
            if !is_log_kind(r.kind) {
                log.pending += 1;
            }
            true
        })?;
        Ok(log)
    }

    /// Appends the journal's events after the tree's size.
    pub fn catch_up(&mut self, journal: &Journal) -> Result<u64> {
        let before = self.tiles.tree().size();
        let mut err = None;
        journal.for_each_row(before, None, |r, _| match self.push_row(r) {
            Ok(()) => true,
            Err(e) => {
                err = Some(e);
                false
            }
        })?;
        match err {
            Some(e) => Err(e),
            None => Ok(self.tiles.tree().size() - before),
        }
    }

    /// Appends one stored row (it must be the next seq).
    pub fn push_row(&mut self, r: &RowRef<'_>) -> Result<()> {
        self.push(r.seq, r.kind, leaf_of(r).leaf_hash())
    }

    /// Appends the leaf hash of event `seq` of kind `kind`; `seq` must be the tree's size + 1
    /// (events arrive in journal order, once each).
    pub fn push(&mut self, seq: u64, kind: &str, leaf: Hash) -> Result<()> {
        self.push_hashed(seq, is_log_kind(kind), leaf)
    }

    /// [`Log::push`] with the kind already classified: `own` for the log's own events, which
    /// do not count towards the next checkpoint.
    pub fn push_hashed(&mut self, seq: u64, own: bool, leaf: Hash) -> Result<()> {
        let size = self.tiles.tree().size();
        if seq != size + 1 {
            return Err(LogError::Invalid(format!(
                "event {seq} reached the log out of order: it holds events 1..={size}"
            )));
        }
        self.tiles.append(leaf);
        if !own {
            self.pending += 1;
        }
        if size + 1 >= self.spill_at {
            // The leaf is in the tree whatever happens here. If the tiles cannot be written
            // (disk full), the tree just keeps them in memory and tries again later; the next
            // checkpoint's or stop's `persist` reports the error.
            let _ = self.persist();
            self.spill_at = size + 1 + SPILL_EVERY;
        }
        Ok(())
    }

    /// Events (other than the log's own) since the last checkpoint.
    pub fn pending(&self) -> u64 {
        self.pending
    }

    /// Writes the tiles that changed, now (on open, at a clean stop, every [`SPILL_EVERY`]
    /// leaves), and drops the full tiles just written from memory: a proof that needs them
    /// reads them back.
    pub fn persist(&mut self) -> Result<()> {
        self.tiles.persist()?;
        self.persisted = self.tiles.tree().size();
        self.spill_at = self.persisted + SPILL_EVERY;
        self.tiles.prune();
        Ok(())
    }

    /// Signs a checkpoint of the whole tree dated `now` (Unix seconds), writing the tiles first
    /// when [`PERSIST_EVERY`] leaves have come since they were last written. Store the result
    /// with [`SignedCheckpoint::event`].
    pub fn checkpoint(&mut self, now: u64) -> Result<SignedCheckpoint> {
        if self.tiles.tree().size() - self.persisted >= PERSIST_EVERY {
            self.persist()?;
        }
        let tree = self.tiles.tree();
        let cp = Checkpoint {
            origin: self.keys.name().to_string(),
            size: tree.size(),
            // `root_at`, not `root`: a root that could not be computed is an error here,
            // never a checkpoint.
            root: tree.root_at(tree.size())?,
            extensions: Vec::new(),
        };
        let note = cp.sign(&self.keys, now)?;
        self.pending = 0;
        self.last_size = cp.size;
        Ok(SignedCheckpoint {
            note,
            size: cp.size,
            root: cp.root,
        })
    }

    /// Size of the newest checkpoint signed (0 before the first).
    pub fn last_checkpoint_size(&self) -> u64 {
        self.last_size
    }

    /// The tree.
    pub fn tree(&self) -> &MerkleTree {
        self.tiles.tree()
    }

    /// The origin (the keys' name).
    pub fn origin(&self) -> &str {
        self.keys.name()
    }

    /// The keys.
    pub fn keys(&self) -> &KeySet {
        &self.keys
    }

    /// Rotates the keys: a new generation signs from now on; the old one's signatures dated
    /// up to `now + overlap_s` still verify.
    pub fn rotate(&mut self, now: u64, overlap_s: u64) -> Result<()> {
        Ok(self.keys.rotate(now, overlap_s)?)
    }
}

/// Loads the tiles under `dir` if they agree with the journal; otherwise removes them and
/// starts an empty tree (the caller catches it up). The tiles are a cache of the journal.
fn open_tiles(dir: &Path, journal: &Journal) -> Result<TiledTree> {
    match check_tiles(dir, journal) {
        Ok(t) => Ok(t),
        Err(LogError::Tlog(
            TlogError::TileCorrupt { .. }
            | TlogError::TileMismatch { .. }
            | TlogError::OutOfRange { .. },
        ))
        | Err(LogError::Invalid(_)) => {
            std::fs::remove_dir_all(dir).map_err(|e| {
                LogError::Invalid(format!("cannot remove stale tiles {}: {e}", dir.display()))
            })?;
            Ok(TiledTree::open(dir)?)
        }
        Err(e) => Err(e),
    }
}

/// The tiles under `dir`, checked against the journal: not longer than it, and the newest
/// leaf tile equal to its events' leaves.
fn check_tiles(dir: &Path, journal: &Journal) -> Result<TiledTree> {
    let tiles = TiledTree::open(dir)?;
    let size = tiles.tree().size();
    let (head, _) = journal.head()?;
    if size > head {
        return Err(LogError::Invalid(format!(
            "the tiles hold {size} leaves but the journal only {head} events"
        )));
    }
    let start = tiles.last_tile_start();
    let mut hashes = Vec::new();
    journal.for_each_row(start, Some(size), |r, _| {
        hashes.push(leaf_of(r).leaf_hash());
        true
    })?;
    tiles.check_leaves(start, &hashes)?;
    Ok(tiles)
}
