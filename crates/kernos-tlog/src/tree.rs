//! The incremental Merkle tree: append leaf hashes, answer roots and proofs for any size up to
//! the current one.
//!
//! Every complete subtree hash is kept, per level: `levels[k][i]` is the root of leaves
//! `[i·2^k, (i+1)·2^k)`. Appending costs one leaf push plus one node hash per completed
//! subtree (amortised one), and any subtree the RFC's recursion asks for is either one stored
//! node (O(1)) or the right edge of a tree, assembled from at most log n stored nodes — so a
//! proof at a million leaves is a few dozen lookups. Memory: two hashes (64 bytes) per leaf.

use crate::error::{Result, TlogError};
use crate::hash::{Hash, empty_root, node_hash, split_point};

/// An append-only Merkle tree of leaf hashes (RFC 9162 §2.1), in memory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MerkleTree {
    levels: Vec<Vec<Hash>>,
}

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
        MerkleTree { levels }
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.levels.first().map_or(0, |l| l.len() as u64)
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
            let row = &mut self.levels[level];
            row.push(h);
            if row.len() % 2 == 1 {
                break;
            }
            h = node_hash(&row[row.len() - 2], &row[row.len() - 1]);
            level += 1;
        }
        index
    }

    /// The hash of leaf `index`.
    pub fn leaf_hash(&self, index: u64) -> Option<Hash> {
        self.levels
            .first()?
            .get(usize::try_from(index).ok()?)
            .copied()
    }

    /// The stored complete-subtree hashes of one level (`level_hashes(0)` are the leaves).
    pub fn level_hashes(&self, level: usize) -> &[Hash] {
        self.levels.get(level).map_or(&[], Vec::as_slice)
    }

    /// The root of the tree formed by the first `size` leaves.
    pub fn root_at(&self, size: u64) -> Result<Hash> {
        self.check_size(size)?;
        Ok(self.subtree(0, size))
    }

    /// The root of the whole tree.
    pub fn root(&self) -> Hash {
        self.subtree(0, self.size())
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
                proof.push(self.subtree(lo + k, hi));
                hi = lo + k;
            } else {
                proof.push(self.subtree(lo, lo + k));
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
                    proof.push(self.subtree(lo, hi));
                }
                break;
            }
            let k = split_point(hi - lo);
            if m <= k {
                proof.push(self.subtree(lo + k, hi));
                hi = lo + k;
            } else {
                proof.push(self.subtree(lo, lo + k));
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
        self.range_walk(0, size, start, end, &mut proof);
        Ok(proof)
    }

    fn range_walk(&self, lo: u64, hi: u64, start: u64, end: u64, out: &mut Vec<Hash>) {
        if hi <= start || lo >= end {
            out.push(self.subtree(lo, hi));
        } else if lo < start || hi > end {
            let k = split_point(hi - lo);
            self.range_walk(lo, lo + k, start, end, out);
            self.range_walk(lo + k, hi, start, end, out);
        }
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
    fn subtree(&self, lo: u64, hi: u64) -> Hash {
        let w = hi - lo;
        if w == 0 {
            return empty_root();
        }
        if w.is_power_of_two() && lo % w == 0 {
            let level = w.trailing_zeros() as usize;
            return self.levels[level][(lo >> level) as usize];
        }
        let k = split_point(w);
        node_hash(&self.subtree(lo, lo + k), &self.subtree(lo + k, hi))
    }
}
