//! The tree on disk as C2SP tlog-tiles (<https://c2sp.org/tlog-tiles>), so a restart reloads
//! leaf hashes instead of re-reading and re-hashing every journal event.
//!
//! `tile/<L>/<N>` holds 256 consecutive hashes of tree level 8·L (level 0: leaf hashes);
//! the rightmost, incomplete tile of each level is `tile/<L>/<N>.p/<W>` with its width `W`.
//! Full tiles never change; a partial one is replaced by a wider one (then the full tile) and
//! the narrower file removed. Files are written to a temporary name and renamed, so a reader
//! never sees half a tile. The same layout is what a tlog-tiles client fetches over HTTP, so
//! serving the log later is a static file server away.
//!
//! The tiles are a cache of the journal, which stays the source of truth: loading recomputes
//! the interior levels from the leaf tiles and checks every higher tile against them, and
//! [`TiledTree::check_leaves`] compares the newest leaves with the journal's events.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use crate::error::{Result, TlogError};
use crate::hash::Hash;
use crate::layout::{TILE_HEIGHT, TILE_WIDTH, tile_path};
use crate::tree::MerkleTree;

/// A [`MerkleTree`] kept on disk as tlog-tiles under one directory.
#[derive(Debug)]
pub struct TiledTree {
    tree: MerkleTree,
    dir: PathBuf,
    /// Per tile level: how many full tiles are on disk.
    full_on_disk: Vec<u64>,
    /// Per tile level: the partial tile on disk (index, width), if any.
    partial_on_disk: Vec<Option<(u64, usize)>>,
}

impl TiledTree {
    /// Loads the tree from the tiles under `dir` (an empty tree if there are none yet).
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self> {
        let dir = dir.into();
        let (leaves, full0, partial0) = read_level(&dir, 0)?;
        let tree = MerkleTree::from_leaf_hashes(leaves);
        let mut full_on_disk = vec![full0];
        let partial_on_disk = vec![partial0];
        for level in 1.. {
            let computed = tree.level_hashes(level * TILE_HEIGHT);
            if computed.is_empty() {
                break;
            }
            full_on_disk.push(check_level(&dir, level as u64, computed)?);
        }
        let mut partial_on_disk = partial_on_disk;
        partial_on_disk.resize(full_on_disk.len(), None);
        Ok(TiledTree {
            tree,
            dir,
            full_on_disk,
            partial_on_disk,
        })
    }

    /// The tree (roots and proofs).
    pub fn tree(&self) -> &MerkleTree {
        &self.tree
    }

    /// The directory holding `tile/`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Appends a leaf hash in memory; [`TiledTree::persist`] writes it out.
    pub fn append(&mut self, leaf_hash: Hash) -> u64 {
        self.tree.append(leaf_hash)
    }

    /// The first leaf index of the newest leaf tile: the leaves a loader should compare with
    /// the journal ([`TiledTree::check_leaves`]) before trusting the tiles.
    pub fn last_tile_start(&self) -> u64 {
        let size = self.tree.size();
        if size == 0 {
            return 0;
        }
        (size - 1) / TILE_WIDTH as u64 * TILE_WIDTH as u64
    }

    /// Checks that leaves `start..start + hashes.len()` equal `hashes` (the leaf hashes of the
    /// journal's events with seq = index + 1).
    pub fn check_leaves(&self, start: u64, hashes: &[Hash]) -> Result<()> {
        for (i, h) in hashes.iter().enumerate() {
            let index = start + i as u64;
            match self.tree.leaf_hash(index) {
                Some(t) if &t == h => {}
                Some(_) => {
                    return Err(TlogError::TileMismatch {
                        index,
                        seq: index + 1,
                    });
                }
                None => {
                    return Err(TlogError::OutOfRange {
                        what: "leaf index",
                        value: index,
                        size: self.tree.size(),
                    });
                }
            }
        }
        Ok(())
    }

    /// Writes every tile that changed since the last call: new full tiles, and the current
    /// partial tile of each level (removing the ones it replaces). Call it before publishing
    /// a checkpoint, so the tiles of every published size exist.
    pub fn persist(&mut self) -> Result<()> {
        for level in 0.. {
            let hashes = self.tree.level_hashes(level * TILE_HEIGHT);
            if hashes.is_empty() {
                break;
            }
            if self.full_on_disk.len() == level {
                self.full_on_disk.push(0);
                self.partial_on_disk.push(None);
            }
            let l = level as u64;
            // A pruned tree holds level 0 from a tile boundary on, and only tiles already
            // written were dropped: `n · 256 ≥ off` for every tile written below.
            let off = self.tree.level_offset(level * TILE_HEIGHT) as usize;
            let full = ((off + hashes.len()) / TILE_WIDTH) as u64;
            for n in self.full_on_disk[level]..full {
                let at = n as usize * TILE_WIDTH - off;
                write_atomic(
                    &self.dir.join(tile_path(l, n, None)),
                    &hashes[at..at + TILE_WIDTH],
                )?;
            }
            self.full_on_disk[level] = full;
            if let Some((n, _)) = self.partial_on_disk[level]
                && n < full
            {
                remove_partials(&self.dir, l, n, None)?;
                self.partial_on_disk[level] = None;
            }
            let width = (off + hashes.len()) % TILE_WIDTH;
            if width > 0 && self.partial_on_disk[level] != Some((full, width)) {
                let at = full as usize * TILE_WIDTH - off;
                let path = self.dir.join(tile_path(l, full, Some(width)));
                write_atomic(&path, &hashes[at..])?;
                remove_partials(&self.dir, l, full, Some(width))?;
                self.partial_on_disk[level] = Some((full, width));
            }
        }
        Ok(())
    }
}

impl TiledTree {
    /// Drops from memory the nodes below level 8 of every full leaf tile written to disk
    /// (see [`MerkleTree::prune`]): a proof that needs them reads that tile back. Keeps the
    /// tree's memory to what came since the last [`TiledTree::persist`] plus a quarter of a
    /// byte per leaf, instead of 64 bytes per leaf.
    pub fn prune(&mut self) {
        let dir = self.dir.clone();
        let written = self.full_on_disk.first().copied().unwrap_or(0);
        self.tree.prune(
            written,
            std::sync::Arc::new(move |n| {
                read_tile(&dir, 0, n, None)?.ok_or_else(|| TlogError::TileCorrupt {
                    path: dir.join(tile_path(0, n, None)),
                    reason: "missing".into(),
                })
            }),
        );
    }

    /// Gives back the memory a [`TiledTree::prune`] freed (once, after loading the tree
    /// whole; later prunes reuse it for the next leaves).
    pub fn shrink_to_fit(&mut self) {
        self.tree.shrink_to_fit();
    }
}

/// A level's hashes as read, the number of its full tiles, and its partial tile (index, width).
type LevelOnDisk = (Vec<Hash>, u64, Option<(u64, usize)>);

/// Reads the full tiles of a level from index 0 until one is missing, then the widest
/// partial tile after them. Returns the hashes, the number of full tiles and the partial.
fn read_level(dir: &Path, level: u64) -> Result<LevelOnDisk> {
    let mut hashes = Vec::new();
    let mut n = 0;
    while let Some(t) = read_tile(dir, level, n, None)? {
        hashes.extend(t);
        n += 1;
    }
    let partial_dir = dir.join(tile_path(level, n, Some(1)));
    let partial_dir = partial_dir.parent().unwrap_or(dir);
    let widest = match fs::read_dir(partial_dir) {
        Ok(rd) => rd
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<usize>().ok())
            .filter(|w| (1..TILE_WIDTH).contains(w))
            .max(),
        Err(e) if e.kind() == ErrorKind::NotFound => None,
        Err(e) => return Err(TlogError::io("read", partial_dir, e)),
    };
    let partial = match widest {
        Some(w) => match read_tile(dir, level, n, Some(w))? {
            Some(t) => {
                hashes.extend(t);
                Some((n, w))
            }
            None => None,
        },
        None => None,
    };
    Ok((hashes, n, partial))
}

/// Checks the full tiles of a level above 0 against the hashes computed from the leaves;
/// returns how many full tiles are on disk.
fn check_level(dir: &Path, level: u64, computed: &[Hash]) -> Result<u64> {
    let mut n = 0;
    while let Some(t) = read_tile(dir, level, n, None)? {
        let at = n as usize * TILE_WIDTH;
        if computed.get(at..at + TILE_WIDTH) != Some(t.as_slice()) {
            return Err(TlogError::TileCorrupt {
                path: dir.join(tile_path(level, n, None)),
                reason: "its hashes differ from those computed from the leaf tiles".into(),
            });
        }
        n += 1;
    }
    Ok(n)
}

/// One tile's hashes, `None` if the file does not exist.
fn read_tile(dir: &Path, level: u64, n: u64, width: Option<usize>) -> Result<Option<Vec<Hash>>> {
    let path = dir.join(tile_path(level, n, width));
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(TlogError::io("read", path, e)),
    };
    let want = width.unwrap_or(TILE_WIDTH) * 32;
    if bytes.len() != want {
        return Err(TlogError::TileCorrupt {
            path,
            reason: format!("{} bytes, expected {want}", bytes.len()),
        });
    }
    Ok(Some(
        bytes
            .chunks_exact(32)
            .map(|c| {
                let mut h = [0u8; 32];
                h.copy_from_slice(c);
                h
            })
            .collect(),
    ))
}

/// Removes the partial tiles of tile `n` (all of them, or all but width `keep`).
fn remove_partials(dir: &Path, level: u64, n: u64, keep: Option<usize>) -> Result<()> {
    let any = dir.join(tile_path(level, n, Some(1)));
    let Some(pdir) = any.parent() else {
        return Ok(());
    };
    let rd = match fs::read_dir(pdir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(TlogError::io("read", pdir, e)),
    };
    for e in rd.flatten() {
        let name = e.file_name();
        if keep.is_some_and(|w| name.to_str() == Some(w.to_string().as_str())) {
            continue;
        }
        let p = e.path();
        match fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(TlogError::io("remove", p, e)),
        }
    }
    if keep.is_none() {
        // Best effort: an empty `.p` directory left behind is harmless.
        let _ = fs::remove_dir(pdir);
    }
    Ok(())
}

/// Writes a tile under a temporary name and renames it into place.
fn write_atomic(path: &Path, hashes: &[Hash]) -> Result<()> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(|e| TlogError::io("create", parent, e))?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    fs::write(&tmp, hashes.concat()).map_err(|e| TlogError::io("write", &tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| TlogError::io("rename", path, e))
}
