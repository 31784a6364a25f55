//! Content-addressed blob store for payloads too large for a journal row: command output, file
//! snapshots kept for undo.
//!
//! A blob's name is the blake3 hash of its content. Writing goes to a temporary file in
//! `blobs/tmp/`, which is fsynced and then renamed into place (and the directory fsynced), so a
//! crash at any moment leaves either the whole blob under its real name or nothing there —
//! never a partial file that claims to be complete. Reads check the content against the name.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use crate::chain;
use crate::error::{JournalError, Result};

/// The id of a blob: the blake3 hash of its content.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlobId(pub [u8; 32]);

impl BlobId {
    /// The id `content` would get.
    pub fn of(content: &[u8]) -> Self {
        BlobId(*blake3::hash(content).as_bytes())
    }

    /// 64 hex characters.
    pub fn to_hex(&self) -> String {
        chain::to_hex(&self.0)
    }
}

impl fmt::Display for BlobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for BlobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BlobId({})", self.to_hex())
    }
}

impl FromStr for BlobId {
    type Err = JournalError;
    fn from_str(s: &str) -> Result<Self> {
        chain::from_hex(s)
            .map(BlobId)
            .ok_or_else(|| JournalError::BadBlobId(s.to_owned()))
    }
}

impl serde::Serialize for BlobId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> serde::Deserialize<'de> for BlobId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = std::borrow::Cow::<str>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The blob store: `root/<first two hex chars>/<full hex>`, temporaries in `root/tmp/`.
#[derive(Debug, Clone)]
pub struct BlobStore {
    root: PathBuf,
}

/// Temporaries older than this are leftovers of a crashed writer and are removed on open.
const STALE_TEMP: Duration = Duration::from_secs(3600);

impl BlobStore {
    /// Opens (creating unless `read_only`) the store at `root`.
    pub fn open(root: impl Into<PathBuf>, read_only: bool) -> Result<Self> {
        let root = root.into();
        let store = BlobStore { root };
        if !read_only {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(store.tmp_dir())
                .map_err(|e| JournalError::io("cannot create blob store", store.tmp_dir(), e))?;
            // Best effort: a leftover temporary wastes space but is never mistaken for a blob.
            let _ = store.clean_temp(STALE_TEMP);
        }
        Ok(store)
    }

    /// The store's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// Where the blob `id` lives (whether or not it exists).
    pub fn path_of(&self, id: &BlobId) -> PathBuf {
        let hex = id.to_hex();
        self.root.join(&hex[..2]).join(hex)
    }

    /// Whether the store holds `id`.
    pub fn contains(&self, id: &BlobId) -> bool {
        self.path_of(id).is_file()
    }

    /// Stores `content`, returning its id. Storing the same content twice is a no-op.
    pub fn put(&self, content: &[u8]) -> Result<BlobId> {
        self.put_reader(content).map(|(id, _)| id)
    }

    /// Stores the file at `path` (streamed, any size), returning its id and size.
    pub fn put_file(&self, path: &Path) -> Result<(BlobId, u64)> {
        let f = File::open(path).map_err(|e| JournalError::io("cannot read", path, e))?;
        self.put_reader(BufReader::with_capacity(256 * 1024, f))
    }

    /// Stores everything `r` yields, returning its id and size.
    pub fn put_reader(&self, mut r: impl Read) -> Result<(BlobId, u64)> {
        let tmp_path = self.tmp_dir().join(format!("{}.tmp", random_hex()));
        let mut tmp = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp_path)
            .map_err(|e| JournalError::io("cannot create temporary blob", &tmp_path, e))?;
        let result = (|| {
            let mut hasher = blake3::Hasher::new();
            let mut buf = vec![0u8; 256 * 1024];
            let mut size: u64 = 0;
            loop {
                let n = match r.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        return Err(JournalError::io("cannot read blob source", &tmp_path, e));
                    }
                };
                hasher.update(&buf[..n]);
                tmp.write_all(&buf[..n])
                    .map_err(|e| JournalError::io("cannot write", &tmp_path, e))?;
                size += n as u64;
            }
            tmp.sync_all()
                .map_err(|e| JournalError::io("cannot sync", &tmp_path, e))?;
            let id = BlobId(*hasher.finalize().as_bytes());
            let dest = self.path_of(&id);
            if dest.is_file() {
                return Ok((id, size));
            }
            let parent = dest.parent().unwrap_or(&self.root).to_path_buf();
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&parent)
                .map_err(|e| JournalError::io("cannot create", &parent, e))?;
            // Read-only on disk: a blob is immutable, its name is its content.
            let _ = fs::set_permissions(&tmp_path, fs::Permissions::from_mode(0o400));
            fs::rename(&tmp_path, &dest)
                .map_err(|e| JournalError::io("cannot move blob into place", &dest, e))?;
            sync_dir(&parent)?;
            Ok((id, size))
        })();
        // Whether it failed or the blob already existed, the temporary must not linger.
        let _ = fs::remove_file(&tmp_path);
        result
    }

    /// Reads a whole blob, checking its content against its id.
    pub fn get(&self, id: &BlobId) -> Result<Vec<u8>> {
        let path = self.path_of(id);
        let bytes = fs::read(&path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => JournalError::BlobNotFound(id.to_hex()),
            _ => JournalError::io("cannot read blob", &path, e),
        })?;
        let actual = BlobId::of(&bytes);
        if actual != *id {
            return Err(JournalError::BlobCorrupt {
                id: id.to_hex(),
                actual: actual.to_hex(),
            });
        }
        Ok(bytes)
    }

    /// Copies a blob to `dest` (streamed), checking its content on the way. `dest` is written
    /// through a temporary beside it and renamed, so it is never left half-written; the
    /// temporary is removed if the blob turns out to be corrupt.
    pub fn copy_to(&self, id: &BlobId, dest: &Path) -> Result<u64> {
        let src_path = self.path_of(id);
        let mut src = File::open(&src_path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => JournalError::BlobNotFound(id.to_hex()),
            _ => JournalError::io("cannot read blob", &src_path, e),
        })?;
        let dir = dest
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let tmp_path = dir.join(format!(".kernos-restore-{}", random_hex()));
        let mut out = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp_path)
            .map_err(|e| JournalError::io("cannot create", &tmp_path, e))?;
        let result = (|| {
            let mut hasher = blake3::Hasher::new();
            let mut buf = vec![0u8; 256 * 1024];
            let mut size = 0u64;
            loop {
                let n = match src.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(JournalError::io("cannot read blob", &src_path, e)),
                };
                hasher.update(&buf[..n]);
                out.write_all(&buf[..n])
                    .map_err(|e| JournalError::io("cannot write", &tmp_path, e))?;
                size += n as u64;
            }
            let actual = BlobId(*hasher.finalize().as_bytes());
            if actual != *id {
                return Err(JournalError::BlobCorrupt {
                    id: id.to_hex(),
                    actual: actual.to_hex(),
                });
            }
            out.sync_all()
                .map_err(|e| JournalError::io("cannot sync", &tmp_path, e))?;
            fs::rename(&tmp_path, dest)
                .map_err(|e| JournalError::io("cannot move into place", dest, e))?;
            sync_dir(dir)?;
            Ok(size)
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp_path);
        }
        result
    }

    /// Removes temporaries older than `age` (leftovers of writers that crashed). Returns how
    /// many were removed.
    pub fn clean_temp(&self, age: Duration) -> Result<usize> {
        let dir = self.tmp_dir();
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(JournalError::io("cannot list", &dir, e)),
        };
        let now = SystemTime::now();
        let mut removed = 0;
        for entry in entries.flatten() {
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|m| now.duration_since(m).ok())
                .is_some_and(|d| d >= age);
            if old && fs::remove_file(entry.path()).is_ok() {
                removed += 1;
            }
        }
        Ok(removed)
    }
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| JournalError::io("cannot sync directory", dir, e))
}

fn random_hex() -> String {
    let mut b = [0u8; 16];
    if getrandom::fill(&mut b).is_err() {
        // Uniqueness still holds within the process thanks to the counter and pid; create_new
        // refuses any clash.
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        b[..8].copy_from_slice(&N.fetch_add(1, Ordering::Relaxed).to_le_bytes());
        b[8..12].copy_from_slice(&std::process::id().to_le_bytes());
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_get_dedupe() {
        let d = tempfile::tempdir().unwrap();
        let s = BlobStore::open(d.path().join("blobs"), false).unwrap();
        let id = s.put(b"hello").unwrap();
        assert_eq!(id, BlobId::of(b"hello"));
        assert_eq!(s.put(b"hello").unwrap(), id);
        assert_eq!(s.get(&id).unwrap(), b"hello");
        assert!(s.contains(&id));
        assert_eq!(
            fs::read_dir(s.tmp_dir()).unwrap().count(),
            0,
            "no temporaries left behind"
        );
        let missing = BlobId::of(b"nope");
        assert!(matches!(
            s.get(&missing),
            Err(JournalError::BlobNotFound(_))
        ));
    }

    #[test]
    fn corruption_is_detected_on_read_and_restore() {
        let d = tempfile::tempdir().unwrap();
        let s = BlobStore::open(d.path().join("blobs"), false).unwrap();
        let id = s.put(b"original").unwrap();
        let p = s.path_of(&id);
        fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
        fs::write(&p, b"tampered").unwrap();
        assert!(matches!(s.get(&id), Err(JournalError::BlobCorrupt { .. })));
        let dest = d.path().join("restored");
        assert!(matches!(
            s.copy_to(&id, &dest),
            Err(JournalError::BlobCorrupt { .. })
        ));
        assert!(!dest.exists(), "a corrupt blob must not be restored");
        assert_eq!(
            fs::read_dir(d.path()).unwrap().count(),
            1,
            "only blobs/ remains: no restore temporaries"
        );
    }

    #[test]
    fn copy_to_restores_bytes() {
        let d = tempfile::tempdir().unwrap();
        let s = BlobStore::open(d.path().join("blobs"), false).unwrap();
        let src = d.path().join("src");
        let data: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
        fs::write(&src, &data).unwrap();
        let (id, size) = s.put_file(&src).unwrap();
        assert_eq!(size, data.len() as u64);
        let dest = d.path().join("dest");
        fs::write(&dest, b"old").unwrap();
        s.copy_to(&id, &dest).unwrap();
        assert_eq!(fs::read(&dest).unwrap(), data);
    }

    #[test]
    fn stale_temporaries_are_cleaned() {
        let d = tempfile::tempdir().unwrap();
        let s = BlobStore::open(d.path().join("blobs"), false).unwrap();
        fs::write(s.tmp_dir().join("x.tmp"), b"partial").unwrap();
        assert_eq!(
            s.clean_temp(Duration::from_secs(3600)).unwrap(),
            0,
            "fresh temporaries are kept"
        );
        assert_eq!(s.clean_temp(Duration::ZERO).unwrap(), 1);
    }

    #[test]
    fn ids_parse_and_serialise() {
        let id = BlobId::of(b"x");
        assert_eq!(id.to_hex().parse::<BlobId>().unwrap(), id);
        assert!("xyz".parse::<BlobId>().is_err());
        let j = serde_json::to_string(&id).unwrap();
        assert_eq!(serde_json::from_str::<BlobId>(&j).unwrap(), id);
    }
}
