//! Proof verification, independent of any tree: what a third party runs with nothing but
//! hashes, sizes and a signed root.
//!
//! Inclusion and consistency follow RFC 9162 §2.1.3.2 and §2.1.4.2 step by step. The range
//! proof is Kernos's own (documented in docs/TLOG.md): it proves that a contiguous run of
//! leaves is exactly `[start, end)` of a tree, with O(log n) hashes for the whole run.

use crate::error::{Result, TlogError};
use crate::hash::{Hash, node_hash, root_of, split_point};

/// Checks that `leaf_hash` is leaf `index` of the tree of `size` leaves whose root is `root`.
pub fn verify_inclusion(
    leaf_hash: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<()> {
    match root_from_inclusion(leaf_hash, index, size, proof) {
        Some(r) if &r == root => Ok(()),
        _ => Err(TlogError::Inclusion { index, size }),
    }
}

/// The root an inclusion proof leads to (RFC 9162 §2.1.3.2), or `None` if the proof has the
/// wrong shape for this index and size.
pub fn root_from_inclusion(
    leaf_hash: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
) -> Option<Hash> {
    if index >= size {
        return None;
    }
    let (mut f, mut s) = (index, size - 1);
    let mut r = *leaf_hash;
    for p in proof {
        if s == 0 {
            return None;
        }
        if f & 1 == 1 || f == s {
            r = node_hash(p, &r);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    (s == 0).then_some(r)
}

/// Checks that the tree of `size2` leaves with root `root2` extends the tree of `size1` leaves
/// with root `root1` (RFC 9162 §2.1.4.2). An empty tree is extended by every tree; equal sizes
/// need equal roots and an empty proof.
pub fn verify_consistency(
    size1: u64,
    size2: u64,
    proof: &[Hash],
    root1: &Hash,
    root2: &Hash,
) -> Result<()> {
    let fail = || TlogError::Consistency { size1, size2 };
    if size1 > size2 {
        return Err(fail());
    }
    if size1 == size2 {
        return if proof.is_empty() && root1 == root2 {
            Ok(())
        } else {
            Err(fail())
        };
    }
    if size1 == 0 {
        return if proof.is_empty() {
            Ok(())
        } else {
            Err(fail())
        };
    }
    let Some((first, rest)) = proof.split_first() else {
        return Err(fail());
    };
    // When size1 is a power of two its root is itself a node of the second tree, and the RFC
    // leaves it out of the proof: start from it.
    let (start, rest) = if size1.is_power_of_two() {
        (root1, proof)
    } else {
        (first, rest)
    };
    let (mut f, mut s) = (size1 - 1, size2 - 1);
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    let (mut fr, mut sr) = (*start, *start);
    for c in rest {
        if s == 0 {
            return Err(fail());
        }
        if f & 1 == 1 || f == s {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f >>= 1;
        s >>= 1;
    }
    if s == 0 && &fr == root1 && &sr == root2 {
        Ok(())
    } else {
        Err(fail())
    }
}

/// The root of the tree of `size` leaves whose leaves `[start, start + leaves.len())` are
/// `leaves`, given the range proof: the hashes of the maximal subtrees (in the RFC's split,
/// left to right) that lie wholly outside the range.
pub fn root_from_range(start: u64, leaves: &[Hash], size: u64, proof: &[Hash]) -> Result<Hash> {
    let end = start + leaves.len() as u64;
    let fail = || TlogError::Range { start, end, size };
    if leaves.is_empty() || end > size {
        return Err(fail());
    }
    let mut next = proof.iter();
    let root = range_node(0, size, start, leaves, &mut next).ok_or_else(fail)?;
    match next.next() {
        None => Ok(root),
        Some(_) => Err(fail()),
    }
}

/// Checks a range proof against a root (see [`root_from_range`]).
pub fn verify_range(
    start: u64,
    leaves: &[Hash],
    size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<()> {
    if &root_from_range(start, leaves, size, proof)? == root {
        Ok(())
    } else {
        Err(TlogError::Range {
            start,
            end: start + leaves.len() as u64,
            size,
        })
    }
}

/// The hash of the subtree `[lo, hi)`: from the leaves if it lies inside the range, from the
/// proof if it lies outside, split by the RFC's rule otherwise.
fn range_node<'a>(
    lo: u64,
    hi: u64,
    start: u64,
    leaves: &[Hash],
    proof: &mut impl Iterator<Item = &'a Hash>,
) -> Option<Hash> {
    let end = start + leaves.len() as u64;
    if hi <= start || lo >= end {
        return proof.next().copied();
    }
    if start <= lo && hi <= end {
        return Some(root_of(
            &leaves[(lo - start) as usize..(hi - start) as usize],
        ));
    }
    let k = split_point(hi - lo);
    let left = range_node(lo, lo + k, start, leaves, proof)?;
    let right = range_node(lo + k, hi, start, leaves, proof)?;
    Some(node_hash(&left, &right))
}
