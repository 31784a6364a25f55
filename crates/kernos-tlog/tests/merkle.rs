//! The Merkle tree and its proofs, as a specification: the RFC 6962 test vectors (from
//! transparency-dev/merkle's test data), then every size 1..=64 and every index and pair
//! cross-checked against the RFC's recursive definitions written out naively here.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use kernos_tlog::{
    Hash, MerkleTree, TlogError, empty_root, leaf_hash, node_hash, root_from_inclusion,
    verify_consistency, verify_inclusion, verify_range,
};

fn hx(s: &str) -> Hash {
    let b: Vec<u8> = (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect();
    b.try_into().unwrap()
}

/// RFC 6962 test data: eight leaf inputs and the roots of trees of size 0..=8.
const LEAVES: [&str; 8] = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
];
const ROOTS: [&str; 9] = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

fn vector_tree() -> MerkleTree {
    let mut t = MerkleTree::new();
    for l in LEAVES {
        let bytes: Vec<u8> = (0..l.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&l[i..i + 2], 16).unwrap())
            .collect();
        t.append(leaf_hash(&bytes));
    }
    t
}

#[test]
fn roots_match_the_rfc6962_vectors_at_every_size() {
    let t = vector_tree();
    assert_eq!(empty_root(), hx(ROOTS[0]));
    for (size, want) in ROOTS.iter().enumerate() {
        assert_eq!(t.root_at(size as u64).unwrap(), hx(want), "size {size}");
    }
}

#[test]
fn proofs_match_the_rfc6962_vectors() {
    let t = vector_tree();
    // (leaf index, tree size, proof)
    let inclusion: [(u64, u64, &[&str]); 4] = [
        (
            0,
            8,
            &[
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            5,
            8,
            &[
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
        (
            2,
            3,
            &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
        ),
        (
            1,
            5,
            &[
                "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ],
        ),
    ];
    for (index, size, want) in inclusion {
        let want: Vec<Hash> = want.iter().map(|h| hx(h)).collect();
        assert_eq!(
            t.inclusion_proof(index, size).unwrap(),
            want,
            "{index}@{size}"
        );
        let leaf = t.leaf_hash(index).unwrap();
        verify_inclusion(&leaf, index, size, &want, &hx(ROOTS[size as usize])).unwrap();
    }
    let consistency: [(u64, u64, &[&str]); 4] = [
        (
            1,
            8,
            &[
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            6,
            8,
            &[
                "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
        (
            2,
            5,
            &[
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ],
        ),
        (
            6,
            7,
            &[
                "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
    ];
    for (s1, s2, want) in consistency {
        let want: Vec<Hash> = want.iter().map(|h| hx(h)).collect();
        assert_eq!(t.consistency_proof(s1, s2).unwrap(), want, "{s1}->{s2}");
        verify_consistency(
            s1,
            s2,
            &want,
            &hx(ROOTS[s1 as usize]),
            &hx(ROOTS[s2 as usize]),
        )
        .unwrap();
    }
}

#[test]
fn trivial_consistency_cases_follow_the_rfc() {
    let (a, b) = ([1u8; 32], [2u8; 32]);
    assert!(
        verify_consistency(0, 0, &[], &a, &a).is_ok(),
        "equal empty trees"
    );
    assert!(
        verify_consistency(0, 5, &[], &a, &b).is_ok(),
        "the empty tree precedes all"
    );
    assert!(verify_consistency(3, 3, &[], &b, &b).is_ok());
    assert!(
        verify_consistency(3, 3, &[], &a, &b).is_err(),
        "same size, other root"
    );
    assert!(
        verify_consistency(3, 3, &[a], &a, &a).is_err(),
        "same size needs no proof"
    );
    assert!(verify_consistency(0, 1, &[a], &a, &a).is_err());
    assert!(
        verify_consistency(2, 1, &[], &a, &b).is_err(),
        "time travel"
    );
    assert!(
        verify_consistency(1, 2, &[], &a, &b).is_err(),
        "empty proof"
    );
}

/// Leaf data for the naive cross-check: distinct per index.
fn leaves(n: u64) -> Vec<Hash> {
    (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect()
}

/// RFC 9162 §2.1.1 MTH, by the definition.
fn mth(d: &[Hash]) -> Hash {
    match d.len() {
        0 => empty_root(),
        1 => d[0],
        n => {
            let k = split(n);
            node_hash(&mth(&d[..k]), &mth(&d[k..]))
        }
    }
}

/// The largest power of two below n, naively.
fn split(n: usize) -> usize {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

/// RFC 9162 §2.1.3.1 PATH, by the definition.
fn path(m: usize, d: &[Hash]) -> Vec<Hash> {
    if d.len() <= 1 {
        return vec![];
    }
    let k = split(d.len());
    if m < k {
        let mut p = path(m, &d[..k]);
        p.push(mth(&d[k..]));
        p
    } else {
        let mut p = path(m - k, &d[k..]);
        p.push(mth(&d[..k]));
        p
    }
}

/// RFC 9162 §2.1.4.1 SUBPROOF, by the definition.
fn subproof(m: usize, d: &[Hash], b: bool) -> Vec<Hash> {
    let n = d.len();
    if m == n {
        return if b { vec![] } else { vec![mth(d)] };
    }
    let k = split(n);
    if m <= k {
        let mut p = subproof(m, &d[..k], b);
        p.push(mth(&d[k..]));
        p
    } else {
        let mut p = subproof(m - k, &d[k..], false);
        p.push(mth(&d[..k]));
        p
    }
}

#[test]
fn every_root_and_proof_up_to_64_leaves_matches_the_rfc_definitions() {
    let d = leaves(64);
    let mut t = MerkleTree::new();
    for h in &d {
        t.append(*h);
    }
    for n in 1..=64usize {
        let root = mth(&d[..n]);
        assert_eq!(t.root_at(n as u64).unwrap(), root, "root of {n}");
        for m in 0..n {
            let p = t.inclusion_proof(m as u64, n as u64).unwrap();
            assert_eq!(p, path(m, &d[..n]), "PATH({m}, {n})");
            verify_inclusion(&d[m], m as u64, n as u64, &p, &root).unwrap();
            // A proof for one index never proves another, nor another leaf.
            if n > 1 {
                let other = (m + 1) % n;
                assert!(verify_inclusion(&d[m], other as u64, n as u64, &p, &root).is_err());
                assert!(verify_inclusion(&d[other], m as u64, n as u64, &p, &root).is_err());
            }
        }
        for m in 1..n {
            let p = t.consistency_proof(m as u64, n as u64).unwrap();
            assert_eq!(p, subproof(m, &d[..n], true), "PROOF({m}, {n})");
            let r1 = mth(&d[..m]);
            verify_consistency(m as u64, n as u64, &p, &r1, &root).unwrap();
            assert!(
                verify_consistency(m as u64, n as u64, &p, &root, &r1).is_err(),
                "swapped roots {m} {n}"
            );
            for (i, _) in p.iter().enumerate() {
                let mut bad = p.clone();
                bad[i][0] ^= 16;
                assert!(
                    verify_consistency(m as u64, n as u64, &bad, &r1, &root).is_err(),
                    "flipped bit in proof[{i}] of {m}->{n}"
                );
            }
        }
    }
}

#[test]
fn range_proofs_cover_every_range_up_to_40_leaves() {
    let d = leaves(40);
    let t = MerkleTree::from_leaf_hashes(d.clone());
    for n in 1..=40usize {
        let root = mth(&d[..n]);
        for start in 0..n {
            for end in start + 1..=n {
                let p = t.range_proof(start as u64, end as u64, n as u64).unwrap();
                verify_range(start as u64, &d[start..end], n as u64, &p, &root).unwrap();
                // Dropping the last leaf of the run, or altering one, breaks it.
                if end - start > 1 {
                    assert!(
                        verify_range(start as u64, &d[start..end - 1], n as u64, &p, &root)
                            .is_err()
                    );
                }
                let mut bad = d[start..end].to_vec();
                bad[0][5] ^= 1;
                assert!(verify_range(start as u64, &bad, n as u64, &p, &root).is_err());
            }
        }
        assert!(
            t.range_proof(0, n as u64, n as u64).unwrap().is_empty(),
            "whole tree: no proof"
        );
    }
}

#[test]
fn built_and_appended_trees_agree() {
    let d = leaves(1000);
    let mut t = MerkleTree::new();
    for h in &d {
        t.append(*h);
    }
    assert_eq!(t, MerkleTree::from_leaf_hashes(d.clone()));
    assert_eq!(t.root(), mth(&d));
}

#[test]
fn out_of_range_requests_are_errors_not_panics() {
    let t = MerkleTree::from_leaf_hashes(leaves(5));
    assert!(matches!(t.root_at(6), Err(TlogError::OutOfRange { .. })));
    assert!(t.inclusion_proof(5, 5).is_err());
    assert!(t.inclusion_proof(0, 6).is_err());
    assert!(t.consistency_proof(4, 6).is_err());
    assert!(t.consistency_proof(5, 4).is_err());
    assert!(t.range_proof(3, 3, 5).is_err());
    assert_eq!(root_from_inclusion(&[0; 32], 0, 0, &[]), None);
}
