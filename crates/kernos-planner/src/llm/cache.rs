//! The plan cache: request → validated plan from a model, in SQLite
//! (`<data_dir>/plan-cache.db`), least-recently-used eviction plus a time to live.
//!
//! The key ([`CacheKey`]) is a blake3 hash of everything the model was shown that can change
//! the plan — the normalised request, the tool catalog's version, the prompt version, the
//! machine facts (distribution, architecture, package and service managers), the home and
//! working directories, the previous request of the conversation, and `--provider` /
//! `--model` when given — and never a timestamp. Times live in the row (for LRU and TTL)
//! only. Only plans that passed validation and were made without untrusted data are stored.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use kernos_core::Plan;
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

/// Default time to live: a week. Plans do not go stale quickly (the catalog version guards
/// against tool changes), but the machine's state does slowly.
pub const DEFAULT_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
/// Default capacity (rows). A plan is a few hundred bytes.
pub const DEFAULT_CAPACITY: usize = 2_000;

/// A cache key (64 hex characters).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey(pub String);

impl CacheKey {
    /// Hashes the parts, each length-prefixed so no two different lists of parts collide.
    pub fn from_parts(parts: &[&str]) -> CacheKey {
        let mut h = blake3::Hasher::new();
        for p in parts {
            h.update(&(p.len() as u64).to_le_bytes());
            h.update(p.as_bytes());
        }
        CacheKey(h.finalize().to_hex().to_string())
    }
}

/// The request as the key sees it: surrounding space and sentence punctuation dropped, runs of
/// white space made one, a capital first letter lowered when the rest of that word is lower
/// case ("Show the logs." = "show the logs"). Nothing else is lowered: file, package and
/// service names are case-sensitive.
pub fn normalise(request: &str) -> String {
    let mut s = request.split_whitespace().collect::<Vec<_>>().join(" ");
    while s.ends_with(['.', '!', '?']) {
        s.pop();
    }
    let first_word_lower_after_first = s
        .split(' ')
        .next()
        .is_some_and(|w| w.chars().skip(1).all(|c| !c.is_uppercase()));
    if first_word_lower_after_first {
        let mut cs = s.chars();
        if let Some(c) = cs.next() {
            s = c.to_lowercase().chain(cs).collect();
        }
    }
    s
}

/// Why the cache could not be used (the planner then goes on without it).
#[derive(Debug, thiserror::Error)]
#[error("plan cache {path}: {source}")]
pub struct CacheError {
    path: PathBuf,
    #[source]
    source: rusqlite::Error,
}

/// Hit and miss counters and size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct CacheStats {
    /// Rows stored.
    pub entries: u64,
    /// Lookups that found a fresh plan.
    pub hits: u64,
    /// Lookups that found nothing (or only an expired plan).
    pub misses: u64,
}

impl CacheStats {
    /// `hits / (hits + misses)`, 0 when there were no lookups.
    pub fn hit_rate(&self) -> f64 {
        let n = self.hits + self.misses;
        if n == 0 {
            0.0
        } else {
            self.hits as f64 / n as f64
        }
    }
}

/// A cached plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Cached {
    /// The plan as stored.
    pub plan: Plan,
    /// When it was stored (ms since the epoch).
    pub created_ms: i64,
    /// Times it was served before this one.
    pub hits: u64,
}

type Clock = Box<dyn Fn() -> i64 + Send + Sync>;

/// The SQLite plan cache. `Send + Sync` (one connection behind a mutex).
pub struct PlanCache {
    conn: Mutex<Connection>,
    path: PathBuf,
    ttl: Duration,
    capacity: usize,
    now_ms: Clock,
}

impl std::fmt::Debug for PlanCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlanCache")
            .field("path", &self.path)
            .field("ttl", &self.ttl)
            .field("capacity", &self.capacity)
            .finish()
    }
}

use kernos_core::time::now_ms as system_now_ms;

impl PlanCache {
    /// Opens (creating) the cache at `path` with the default TTL and capacity.
    pub fn open(path: impl AsRef<Path>) -> Result<PlanCache, CacheError> {
        Self::open_with(path, DEFAULT_TTL, DEFAULT_CAPACITY)
    }

    /// Opens (creating) the cache with a TTL and a capacity (at least 1 row).
    pub fn open_with(
        path: impl AsRef<Path>,
        ttl: Duration,
        capacity: usize,
    ) -> Result<PlanCache, CacheError> {
        let path = path.as_ref().to_path_buf();
        let err = |source| CacheError {
            path: path.clone(),
            source,
        };
        if let Some(dir) = path.parent() {
            // Best effort: opening reports the real problem if the directory is missing.
            // Private, like the rest of the data directory it lives in.
            let _ = std::os::unix::fs::DirBuilderExt::mode(
                std::fs::DirBuilder::new().recursive(true),
                0o700,
            )
            .create(dir);
        }
        let conn = match init(&path) {
            Ok(c) => c,
            // A cache is disposable: one that is damaged (it is written without fsync, see
            // `init`) or not a database at all is replaced by an empty one.
            Err(rusqlite::Error::SqliteFailure(e, _))
                if matches!(
                    e.code,
                    rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase
                ) =>
            {
                for suffix in ["", "-wal", "-shm"] {
                    let mut p = path.clone().into_os_string();
                    p.push(suffix);
                    let _ = std::fs::remove_file(p);
                }
                init(&path).map_err(err)?
            }
            Err(e) => return Err(err(e)),
        };
        Ok(PlanCache {
            conn: Mutex::new(conn),
            path,
            ttl,
            capacity: capacity.max(1),
            now_ms: Box::new(system_now_ms),
        })
    }

    /// Replaces the clock (tests of the TTL).
    pub fn with_clock(mut self, now_ms: impl Fn() -> i64 + Send + Sync + 'static) -> Self {
        self.now_ms = Box::new(now_ms);
        self
    }

    /// Where the database is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves at worst an unfinished statement, which SQLite
        // rolls back; the connection is still usable.
        self.conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn err(&self, source: rusqlite::Error) -> CacheError {
        CacheError {
            path: self.path.clone(),
            source,
        }
    }

    /// Looks a plan up, counting a hit or a miss. An expired row is deleted and is a miss; a
    /// row that no longer parses as a plan is deleted too.
    pub fn get(&self, key: &CacheKey) -> Result<Option<Cached>, CacheError> {
        let now = (self.now_ms)();
        let conn = self.conn();
        let row: Option<(String, i64, i64)> = conn
            .query_row(
                "SELECT plan, created_ms, hits FROM plans WHERE key = ?1",
                params![key.0],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(|e| self.err(e))?;
        let ttl = i64::try_from(self.ttl.as_millis()).unwrap_or(i64::MAX);
        let fresh = match row {
            Some((text, created, hits)) if now.saturating_sub(created) < ttl => {
                match serde_json::from_str::<Plan>(&text) {
                    Ok(plan) => Some(Cached {
                        plan,
                        created_ms: created,
                        hits: u64::try_from(hits).unwrap_or(0),
                    }),
                    Err(_) => None,
                }
            }
            _ => None,
        };
        match &fresh {
            Some(_) => {
                conn.execute(
                    "UPDATE plans SET used_ms = ?2, hits = hits + 1 WHERE key = ?1",
                    params![key.0, now],
                )
                .map_err(|e| self.err(e))?;
                bump(&conn, "hits").map_err(|e| self.err(e))?;
            }
            None => {
                conn.execute("DELETE FROM plans WHERE key = ?1", params![key.0])
                    .map_err(|e| self.err(e))?;
                bump(&conn, "misses").map_err(|e| self.err(e))?;
            }
        }
        Ok(fresh)
    }

    /// Stores a plan, then evicts the least recently used rows beyond the capacity and every
    /// expired row.
    pub fn put(&self, key: &CacheKey, request: &str, plan: &Plan) -> Result<(), CacheError> {
        let now = (self.now_ms)();
        let text = serde_json::to_string(plan).unwrap_or_default();
        let ttl = i64::try_from(self.ttl.as_millis()).unwrap_or(i64::MAX);
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        tx.execute(
            "INSERT INTO plans (key, request, plan, created_ms, used_ms, hits)
             VALUES (?1, ?2, ?3, ?4, ?4, 0)
             ON CONFLICT(key) DO UPDATE SET request = ?2, plan = ?3, created_ms = ?4,
                 used_ms = ?4, hits = 0",
            params![key.0, request, text, now],
        )
        .map_err(|e| self.err(e))?;
        tx.execute(
            "DELETE FROM plans WHERE created_ms <= ?1",
            params![now.saturating_sub(ttl)],
        )
        .map_err(|e| self.err(e))?;
        tx.execute(
            "DELETE FROM plans WHERE key IN (
                 SELECT key FROM plans ORDER BY used_ms DESC, rowid DESC LIMIT -1 OFFSET ?1)",
            params![i64::try_from(self.capacity).unwrap_or(i64::MAX)],
        )
        .map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))
    }

    /// Counters and size.
    pub fn stats(&self) -> Result<CacheStats, CacheError> {
        let conn = self.conn();
        let count = |name: &str| -> rusqlite::Result<u64> {
            let v: Option<i64> = conn
                .query_row(
                    "SELECT value FROM counters WHERE name = ?1",
                    params![name],
                    |r| r.get(0),
                )
                .optional()?;
            Ok(u64::try_from(v.unwrap_or(0)).unwrap_or(0))
        };
        let entries: i64 = conn
            .query_row("SELECT count(*) FROM plans", [], |r| r.get(0))
            .map_err(|e| self.err(e))?;
        Ok(CacheStats {
            entries: u64::try_from(entries).unwrap_or(0),
            hits: count("hits").map_err(|e| self.err(e))?,
            misses: count("misses").map_err(|e| self.err(e))?,
        })
    }

    /// Forgets every plan (counters too).
    pub fn clear(&self) -> Result<(), CacheError> {
        self.conn()
            .execute_batch("DELETE FROM plans; DELETE FROM counters;")
            .map_err(|e| self.err(e))
    }
}

/// Opens the database and makes sure the tables exist. A cache needs no durability: it is
/// written without fsync (`synchronous=OFF`) and without the checkpoint on close, so a cache
/// hit costs no disk flush; a cache damaged by a power loss is detected and replaced.
fn init(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(2))?;
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
        true,
    )?;
    conn.execute_batch(
        "PRAGMA journal_mode=WAL;
         PRAGMA synchronous=OFF;
         CREATE TABLE IF NOT EXISTS plans (
             key TEXT PRIMARY KEY,
             request TEXT NOT NULL,
             plan TEXT NOT NULL,
             created_ms INTEGER NOT NULL,
             used_ms INTEGER NOT NULL,
             hits INTEGER NOT NULL DEFAULT 0
         );
         CREATE INDEX IF NOT EXISTS plans_used ON plans(used_ms);
         CREATE TABLE IF NOT EXISTS counters (
             name TEXT PRIMARY KEY,
             value INTEGER NOT NULL
         );",
    )?;
    Ok(conn)
}

fn bump(conn: &Connection, name: &str) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO counters (name, value) VALUES (?1, 1)
         ON CONFLICT(name) DO UPDATE SET value = value + 1",
        params![name],
    )
    .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicI64, Ordering};

    fn plan(n: usize) -> Plan {
        Plan::new(vec![
            kernos_core::Step::new("fs", "list").arg("path", format!("/d{n}")),
        ])
    }

    #[test]
    fn normalisation_keeps_names() {
        assert_eq!(normalise("  Show   the logs. "), "show the logs");
        assert_eq!(normalise("why is nginx failing??"), "why is nginx failing");
        assert_eq!(normalise("README.md size"), "README.md size");
        assert_eq!(normalise("Delete Foo.txt"), "delete Foo.txt");
        assert_ne!(
            CacheKey::from_parts(&["ab", "c"]),
            CacheKey::from_parts(&["a", "bc"])
        );
    }

    #[test]
    fn hit_miss_ttl_and_lru() {
        let dir = tempfile::tempdir().unwrap();
        let now = Arc::new(AtomicI64::new(1_000_000));
        let clock = now.clone();
        let c = PlanCache::open_with(dir.path().join("c.db"), Duration::from_secs(60), 2)
            .unwrap()
            .with_clock(move || clock.load(Ordering::SeqCst));
        let k = |i: usize| CacheKey::from_parts(&[&i.to_string()]);
        assert!(c.get(&k(1)).unwrap().is_none());
        c.put(&k(1), "r1", &plan(1)).unwrap();
        assert_eq!(c.get(&k(1)).unwrap().unwrap().plan, plan(1));
        // LRU: 1 was used after 2 was stored, so 2 goes when 3 arrives.
        now.fetch_add(10, Ordering::SeqCst);
        c.put(&k(2), "r2", &plan(2)).unwrap();
        now.fetch_add(10, Ordering::SeqCst);
        assert!(c.get(&k(1)).unwrap().is_some());
        now.fetch_add(10, Ordering::SeqCst);
        c.put(&k(3), "r3", &plan(3)).unwrap();
        assert!(
            c.get(&k(2)).unwrap().is_none(),
            "least recently used evicted"
        );
        assert!(c.get(&k(1)).unwrap().is_some());
        assert!(c.get(&k(3)).unwrap().is_some());
        // TTL.
        now.fetch_add(61_000, Ordering::SeqCst);
        assert!(c.get(&k(1)).unwrap().is_none(), "expired");
        let s = c.stats().unwrap();
        assert_eq!((s.hits, s.misses), (4, 3));
        assert_eq!(s.entries, 1, "the expired row read was deleted");
        assert!((s.hit_rate() - 4.0 / 7.0).abs() < 1e-9);
        // Reopening keeps everything.
        drop(c);
        let c = PlanCache::open(dir.path().join("c.db")).unwrap();
        assert_eq!(c.stats().unwrap().hits, 4);
        c.clear().unwrap();
        assert_eq!(c.stats().unwrap(), CacheStats::default());
    }

    #[test]
    fn a_damaged_cache_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.db");
        std::fs::write(&p, b"this is not a database, just text that is long enough to matter..........................................").unwrap();
        let c = PlanCache::open(&p).unwrap();
        c.put(&CacheKey::from_parts(&["k"]), "r", &plan(1)).unwrap();
        assert_eq!(c.stats().unwrap().entries, 1);
    }
}
