//! The tree on disk (C2SP tlog-tiles): the layout the spec names, a reload that equals what
//! was written, and damage found on load rather than served.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::path::{Path, PathBuf};

use kernos_tlog::{Hash, TiledTree, TlogError, leaf_hash, root_of, tile_path};

fn leaf(i: u64) -> Hash {
    leaf_hash(&i.to_be_bytes())
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                out.push(e.path().strip_prefix(dir).unwrap().to_path_buf());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn tile_paths_follow_the_spec() {
    assert_eq!(tile_path(0, 0, None), PathBuf::from("tile/0/000"));
    assert_eq!(
        tile_path(0, 1234067, None),
        PathBuf::from("tile/0/x001/x234/067")
    );
    assert_eq!(tile_path(2, 1000, None), PathBuf::from("tile/2/x001/000"));
    assert_eq!(tile_path(1, 5, Some(17)), PathBuf::from("tile/1/005.p/17"));
    assert_eq!(
        tile_path(0, 1234067, Some(3)),
        PathBuf::from("tile/0/x001/x234/067.p/3")
    );
}

#[test]
fn a_tree_of_70000_leaves_is_the_spec_example_and_reloads_identically() {
    let d = tempfile::tempdir().unwrap();
    let mut t = TiledTree::open(d.path()).unwrap();
    for i in 0..70_000 {
        t.append(leaf(i));
    }
    t.persist().unwrap();
    // The spec's example: 273 full level-0 tiles, a partial one of width 112, one full level-1
    // tile, a partial level-1 tile of width 17 and a partial level-2 tile of width 1.
    let files = files_under(d.path());
    let count = |prefix: &str| files.iter().filter(|p| p.starts_with(prefix)).count();
    assert_eq!(count("tile/0"), 274);
    assert!(files.contains(&PathBuf::from("tile/0/273.p/112")));
    assert_eq!(count("tile/1"), 2);
    assert!(files.contains(&PathBuf::from("tile/1/000")));
    assert!(files.contains(&PathBuf::from("tile/1/001.p/17")));
    assert_eq!(
        files
            .iter()
            .filter(|p| p.starts_with("tile/2"))
            .collect::<Vec<_>>(),
        [&PathBuf::from("tile/2/000.p/1")]
    );

    // A level-1 hash is the root of the corresponding full leaf tile.
    let l1 = std::fs::read(d.path().join("tile/1/000")).unwrap();
    let leaves: Vec<Hash> = (0..256).map(leaf).collect();
    assert_eq!(&l1[..32], root_of(&leaves).as_slice());

    let back = TiledTree::open(d.path()).unwrap();
    assert_eq!(back.tree(), t.tree());
    assert_eq!(
        back.tree().root_at(12_345).unwrap(),
        t.tree().root_at(12_345).unwrap()
    );
}

#[test]
fn growing_replaces_partial_tiles_and_keeps_full_ones() {
    let d = tempfile::tempdir().unwrap();
    let mut t = TiledTree::open(d.path()).unwrap();
    for i in 0..300 {
        t.append(leaf(i));
    }
    t.persist().unwrap();
    assert!(d.path().join("tile/0/001.p/44").exists());
    let full_before = std::fs::metadata(d.path().join("tile/0/000"))
        .unwrap()
        .modified()
        .unwrap();
    for i in 300..600 {
        t.append(leaf(i));
    }
    t.persist().unwrap();
    let files = files_under(d.path());
    assert!(
        !files.iter().any(|p| p.to_str().unwrap().contains("001.p")),
        "{files:?}"
    );
    assert!(files.contains(&PathBuf::from("tile/0/002.p/88")));
    assert_eq!(
        std::fs::metadata(d.path().join("tile/0/000"))
            .unwrap()
            .modified()
            .unwrap(),
        full_before,
        "full tiles are immutable"
    );
    let mut back = TiledTree::open(d.path()).unwrap();
    assert_eq!(back.tree().size(), 600);
    // A reopened tree goes on appending and persisting where it left off.
    back.append(leaf(600));
    back.persist().unwrap();
    assert!(d.path().join("tile/0/002.p/89").exists());
    assert!(!d.path().join("tile/0/002.p/88").exists());
    assert_eq!(TiledTree::open(d.path()).unwrap().tree().size(), 601);
}

#[test]
fn damaged_tiles_are_refused_on_load() {
    let d = tempfile::tempdir().unwrap();
    let mut t = TiledTree::open(d.path()).unwrap();
    for i in 0..(256 * 256 + 10) {
        t.append(leaf(i));
    }
    t.persist().unwrap();

    // A leaf tile whose hashes changed no longer matches the level-1 tile above it.
    let p = d.path().join("tile/0/007");
    let mut b = std::fs::read(&p).unwrap();
    b[40] ^= 1;
    std::fs::write(&p, &b).unwrap();
    let err = TiledTree::open(d.path()).unwrap_err();
    assert!(matches!(err, TlogError::TileCorrupt { .. }), "{err}");
    assert!(
        err.to_string().contains("rebuild it from the journal"),
        "{err}"
    );
    b[40] ^= 1;
    std::fs::write(&p, &b).unwrap();

    // A short tile.
    let p = d.path().join("tile/0/256.p/10");
    std::fs::write(&p, [0u8; 31]).unwrap();
    assert!(matches!(
        TiledTree::open(d.path()).unwrap_err(),
        TlogError::TileCorrupt { .. }
    ));
}

#[test]
fn the_newest_leaves_are_checked_against_the_journal() {
    let d = tempfile::tempdir().unwrap();
    let mut t = TiledTree::open(d.path()).unwrap();
    for i in 0..300 {
        t.append(leaf(i));
    }
    t.persist().unwrap();
    // Someone rewrote leaf 290 in the partial tile (no tile above covers it yet).
    let p = d.path().join("tile/0/001.p/44");
    let mut b = std::fs::read(&p).unwrap();
    b[34 * 32] ^= 1;
    std::fs::write(&p, &b).unwrap();

    let back = TiledTree::open(d.path()).unwrap();
    assert_eq!(back.last_tile_start(), 256);
    let journal: Vec<Hash> = (256..300).map(leaf).collect();
    let err = back.check_leaves(256, &journal).unwrap_err();
    assert!(
        matches!(
            err,
            TlogError::TileMismatch {
                index: 290,
                seq: 291
            }
        ),
        "{err}"
    );
    assert!(t.check_leaves(256, &journal).is_ok());
}

#[test]
fn a_pruned_tree_answers_every_root_and_proof_as_the_whole_tree_does() {
    let d = tempfile::tempdir().unwrap();
    let mut t = TiledTree::open(d.path()).unwrap();
    let mut whole = kernos_tlog::MerkleTree::new();
    let check = |t: &TiledTree, whole: &kernos_tlog::MerkleTree| {
        let (p, w) = (t.tree(), whole);
        let n = w.size();
        assert_eq!(p.size(), n);
        assert_eq!(p.root(), w.root());
        for size in [1, 255, 256, 257, 511, 512, 700, 1000, n - 1, n] {
            if size == 0 || size > n {
                continue;
            }
            assert_eq!(p.root_at(size).unwrap(), w.root_at(size).unwrap());
            for index in [0, 1, 100, 255, 256, 300, 511, 600, size - 1] {
                if index < size {
                    assert_eq!(
                        p.inclusion_proof(index, size).unwrap(),
                        w.inclusion_proof(index, size).unwrap(),
                        "inclusion {index} in {size}"
                    );
                }
            }
            for m in [1, 3, 200, 256, 300, 513, size] {
                if m <= size {
                    assert_eq!(
                        p.consistency_proof(m, size).unwrap(),
                        w.consistency_proof(m, size).unwrap(),
                        "consistency {m} -> {size}"
                    );
                }
            }
            for (s, e) in [(0, 1), (5, 300), (256, 512), (257, size)] {
                if s < e && e <= size {
                    assert_eq!(
                        p.range_proof(s, e, size).unwrap(),
                        w.range_proof(s, e, size).unwrap()
                    );
                }
            }
        }
        for i in [0, 7, 255, 256, n - 1] {
            assert_eq!(p.leaf_hash(i), w.leaf_hash(i));
        }
    };
    for i in 0..1000 {
        t.append(leaf(i));
        whole.append(leaf(i));
    }
    t.persist().unwrap();
    t.prune();
    assert_eq!(
        t.tree().level_offset(0),
        768,
        "the three full tiles dropped"
    );
    assert_eq!(t.tree().level_hashes(0).len(), 1000 - 768);
    check(&t, &whole);
    // It goes on growing, persisting and pruning; the tiles on disk stay complete.
    for i in 1000..1300 {
        t.append(leaf(i));
        whole.append(leaf(i));
    }
    check(&t, &whole);
    t.persist().unwrap();
    t.prune();
    assert_eq!(t.tree().level_offset(0), 1280);
    check(&t, &whole);
    assert_eq!(TiledTree::open(d.path()).unwrap().tree(), &whole);

    // A dropped tile that was damaged on disk is refused, never served.
    let p = d.path().join("tile/0/001");
    let mut b = std::fs::read(&p).unwrap();
    b[40] ^= 1;
    std::fs::write(&p, &b).unwrap();
    let err = t.tree().inclusion_proof(300, 1300).unwrap_err();
    assert!(matches!(err, TlogError::TileCorrupt { .. }), "{err}");
    std::fs::remove_file(&p).unwrap();
    assert!(t.tree().inclusion_proof(300, 1300).is_err());
    // Proofs that do not need it still answer.
    assert_eq!(
        t.tree().inclusion_proof(1290, 1300).unwrap(),
        whole.inclusion_proof(1290, 1300).unwrap()
    );
}
