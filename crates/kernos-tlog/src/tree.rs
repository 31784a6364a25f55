//! The incremental Merkle tree: append leaf hashes, answer roots and proofs for any size up to
//! the current one.
//!
//! Every complete subtree hash is kept, per level: `levels[k][i]` is the root of leaves
//! `[i·2^k, (i+1)·2^k)`. Appending costs one leaf push plus one node hash per completed
//! subtree (amortised one), and any subtree the RFC's recursion asks for is either one stored
//! node (O(1)) or the right edge of a tree, assembled from at most log n stored nodes — so a
//! proof at a million leaves is a few dozen lookups. Memory: two hashes (64 bytes) per leaf,
//! unless the tree is pruned ([`MerkleTree::prune`]): the nodes below level 8 of full leaf
//! tiles that were written out are then dropped and read back (one tile of 256 leaf hashes,
//! checked against the level-8 node kept in memory) only when a proof needs them, which
//! leaves about a quarter of a byte per leaf in memory.

use std::sync::Arc;

use crate::error::{Result, TlogError};
use crate::hash::{Hash, empty_root, node_hash, root_of, split_point};
use crate::layout::{TILE_HEIGHT, TILE_WIDTH};

/// Reads the [`TILE_WIDTH`] leaf hashes of full leaf tile `n` (leaves `[256·n, 256·n + 256)`)
/// back from where they were written; asked only for tiles the tree dropped.
pub type TileSource = Arc<dyn Fn(u64) -> Result<Vec<Hash>> + Send + Sync>;

/// An append-only Merkle tree of leaf hashes (RFC 9162 §2.1), in memory.
#[derive(Clone, Default)]
pub struct MerkleTree {
    levels: Vec<Vec<Hash>>,
    /// Leading full leaf tiles whose nodes below level [`TILE_HEIGHT`] are not held: level
    /// `k < 8` holds its nodes from index `dropped · 256 >> k` on.
    dropped: u64,
    /// Where dropped tiles are read back from.
    source: Option<TileSource>,
}

impl std::fmt::Debug for MerkleTree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MerkleTree")
            .field("size", &self.size())
            .field("dropped_tiles", &self.dropped)
            .finish_non_exhaustive()
    }
}

/// Equal trees have the same leaves; compared as stored (a pruned tree differs from the same
/// tree unpruned).
impl PartialEq for MerkleTree {
    fn eq(&self, other: &Self) -> bool {
        self.dropped == other.dropped && self.levels == other.levels
    }
}

impl Eq for MerkleTree {}

impl MerkleTree {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// A tree over these leaf hashes (the interior nodes are computed once here).
    pub fn from_leaf_hashes(leaves: Vec<Hash>) -> Self {
        let mut levels = vec![leaves];
        loop {
            let below = &levels[levels.len() - 1];
            if below.len() < 2 {
                break;
            }
            let up: Vec<Hash> = below
                .chunks_exact(2)
                .map(|p| node_hash(&p[0], &p[1]))
                .collect();
            levels.push(up);
        }
        MerkleTree {
            levels,
            dropped: 0,
            source: None,
        }
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.levels
            .first()
            .map_or(0, |l| self.level_offset(0) + l.len() as u64)
    }

    /// The index of the first node of `level` held in memory ([`MerkleTree::level_hashes`]
    /// starts there): 0 unless the tree was pruned.
    pub fn level_offset(&self, level: usize) -> u64 {
        if level < TILE_HEIGHT {
            (self.dropped * TILE_WIDTH as u64) >> level
        } else {
            0
        }
    }

    /// Drops the nodes below level 8 of the first `tiles` full leaf tiles (never more than
    /// the tree's full tiles, never fewer than already dropped); `source` reads their leaf
    /// hashes back when a proof needs them. The tiles must already be stored where `source`
    /// reads. Nothing else changes: roots and proofs stay the same.
    pub fn prune(&mut self, tiles: u64, source: TileSource) {
        let tiles = tiles.min(self.size() / TILE_WIDTH as u64);
        self.source = Some(source);
        if tiles <= self.dropped {
            return;
        }
        for level in 0..TILE_HEIGHT.min(self.levels.len()) {
            let from = self.level_offset(level);
            let to = (tiles * TILE_WIDTH as u64) >> level;
            let n = usize::try_from(to - from).unwrap_or(usize::MAX);
            let row = &mut self.levels[level];
            row.drain(..n.min(row.len()));
        }
        self.dropped = tiles;
    }

    /// Gives back the memory of levels that shrank (after a first [`MerkleTree::prune`] of a
    /// tree loaded whole).
    pub fn shrink_to_fit(&mut self) {
        for row in &mut self.levels {
            row.shrink_to_fit();
        }
    }

    /// Node `index` of `level` (the root of leaves `[index·2^level, (index+1)·2^level)`),
    /// which must be complete: from memory, or from its dropped leaf tile.
    fn node(&self, level: usize, index: u64) -> Result<Hash> {
        let off = self.level_offset(level);
        if index >= off {
            return usize::try_from(index - off)
                .ok()
                .and_then(|i| self.levels.get(level)?.get(i).copied())
                .ok_or(TlogError::OutOfRange {
                    what: "node index",
                    value: index,
                    size: self.size(),
                });
        }
        // A dropped tile (level < 8 here): read its leaves back and check them against the
        // level-8 node still held, so a damaged or replaced tile is never served.
        let tile = (index << level) / TILE_WIDTH as u64;
        let unreadable = |reason: String| TlogError::TileCorrupt {
            path: crate::layout::tile_path(0, tile, None),
            reason,
        };
        let source = self
            .source
            .as_ref()
            .ok_or_else(|| unreadable("dropped from memory with nowhere to read it".into()))?;
        let leaves = source(tile)?;
        if leaves.len() != TILE_WIDTH {
            return Err(unreadable(format!(
                "{} leaf hashes, expected {TILE_WIDTH}",
                leaves.len()
            )));
        }
        if Some(root_of(&leaves)) != self.node(TILE_HEIGHT, tile).ok() {
            return Err(unreadable(
                "its hashes differ from the tree's node over them".into(),
            ));
        }
        let width = 1usize << level;
        let at = usize::try_from((index << level) % TILE_WIDTH as u64).unwrap_or(0);
        Ok(root_of(&leaves[at..at + width]))
    }

    /// Appends one leaf hash (see [`crate::EventLeaf::leaf_hash`]); returns its index.
    pub fn append(&mut self, leaf_hash: Hash) -> u64 {
        let index = self.size();
        let mut h = leaf_hash;
        let mut level = 0;
        loop {
            if self.levels.len() == level {
                self.levels.push(Vec::new());
            }
            let off = self.level_offset(level);
            let row = &mut self.levels[level];
            row.push(h);
            // Dropped nodes come in whole tiles: an even number on every level below 8.
            if (off + row.len() as u64) % 2 == 1 {
                break;
            }
            h = node_hash(&row[row.len() - 2], &row[row.len() - 1]);
            level += 1;
        }
        index
    }

    /// The hash of leaf `index` (read back if its tile was dropped).
    pub fn leaf_hash(&self, index: u64) -> Option<Hash> {
        if index >= self.size() {
            return None;
        }
        self.node(0, index).ok()
    }

    /// The complete-subtree hashes of one level held in memory (`level_hashes(0)` are the
    /// leaves), from index [`MerkleTree::level_offset`] on.
    pub fn level_hashes(&self, level: usize) -> &[Hash] {
        self.levels.get(level).map_or(&[], Vec::as_slice)
    }

    /// The root of the tree formed by the first `size` leaves.
    pub fn root_at(&self, size: u64) -> Result<Hash> {
        self.check_size(size)?;
        self.subtree(0, size)
    }

    /// The root of the whole tree. Never reads a dropped tile: the whole tree's pieces are
    /// nodes of level 8 and up, and nodes of the newest, partial leaf tile, never dropped.
    pub fn root(&self) -> Hash {
        self.subtree(0, self.size())
            .unwrap_or_else(|_| empty_root())
    }

    /// The inclusion proof of leaf `index` in the tree of the first `size` leaves
    /// (RFC 9162 §2.1.3.1), nearest sibling first.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>> {
        self.check_size(size)?;
        if index >= size {
            return Err(TlogError::OutOfRange {
                what: "leaf index",
                value: index,
                size,
            });
        }
        let (mut lo, mut hi) = (0, size);
        let mut proof = Vec::new();
        while hi - lo > 1 {
            let k = split_point(hi - lo);
            if index < lo + k {
                proof.push(self.subtree(lo + k, hi)?);
                hi = lo + k;
            } else {
                proof.push(self.subtree(lo, lo + k)?);
                lo += k;
            }
        }
        proof.reverse();
        Ok(proof)
    }

    /// The consistency proof from the tree of `size1` leaves to the tree of `size2` leaves
    /// (RFC 9162 §2.1.4.1). Empty when `size1` is 0 or equals `size2`.
    pub fn consistency_proof(&self, size1: u64, size2: u64) -> Result<Vec<Hash>> {
        self.check_size(size2)?;
        if size1 > size2 {
            return Err(TlogError::OutOfRange {
                what: "earlier tree size",
                value: size1,
                size: size2,
            });
        }
        let mut proof = Vec::new();
        if size1 == 0 || size1 == size2 {
            return Ok(proof);
        }
        let (mut lo, mut hi, mut m, mut whole) = (0, size2, size1, true);
        loop {
            if m == hi - lo {
                if !whole {
                    proof.push(self.subtree(lo, hi)?);
                }
                break;
            }
            let k = split_point(hi - lo);
            if m <= k {
                proof.push(self.subtree(lo + k, hi)?);
                hi = lo + k;
            } else {
                proof.push(self.subtree(lo, lo + k)?);
                lo += k;
                m -= k;
                whole = false;
            }
        }
        proof.reverse();
        Ok(proof)
    }

    /// The range proof for leaves `[start, end)` in the tree of the first `size` leaves: the
    /// hashes of the maximal subtrees outside the range, left to right (see
    /// [`crate::root_from_range`]). Empty when the range is the whole tree.
    pub fn range_proof(&self, start: u64, end: u64, size: u64) -> Result<Vec<Hash>> {
        self.check_size(size)?;
        if start >= end || end > size {
            return Err(TlogError::OutOfRange {
                what: "range end",
                value: end,
                size,
            });
        }
        let mut proof = Vec::new();
        self.range_walk(0, size, start, end, &mut proof)?;
        Ok(proof)
    }

    fn range_walk(
        &self,
        lo: u64,
        hi: u64,
        start: u64,
        end: u64,
        out: &mut Vec<Hash>,
    ) -> Result<()> {
        if hi <= start || lo >= end {
            out.push(self.subtree(lo, hi)?);
        } else if lo < start || hi > end {
            let k = split_point(hi - lo);
            self.range_walk(lo, lo + k, start, end, out)?;
            self.range_walk(lo + k, hi, start, end, out)?;
        }
        Ok(())
    }

    fn check_size(&self, size: u64) -> Result<()> {
        if size > self.size() {
            return Err(TlogError::OutOfRange {
                what: "tree size",
                value: size,
                size: self.size(),
            });
        }
        Ok(())
    }

    /// MTH(D[lo:hi]) for a range the RFC's recursion produces (`hi ≤ size`): a stored node
    /// when the range is an aligned power of two, else split like the RFC does.
    fn subtree(&self, lo: u64, hi: u64) -> Result<Hash> {
        let w = hi - lo;
        if w == 0 {
            return Ok(empty_root());
        }
        if w.is_power_of_two() && lo % w == 0 {
            let level = w.trailing_zeros() as usize;
            return self.node(level, lo >> level);
        }
        let k = split_point(w);
        Ok(node_hash(
            &self.subtree(lo, lo + k)?,
            &self.subtree(lo + k, hi)?,
        ))
    }
}
