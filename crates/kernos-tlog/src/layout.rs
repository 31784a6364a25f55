//! The tlog-tiles layout (C2SP tlog-tiles): how many hashes a tile holds, how many tree
//! levels a tile level spans, and where each tile lives. Below both the tree (which prunes in
//! whole leaf tiles) and the tiles on disk.

use std::path::PathBuf;

/// Hashes per full tile.
pub const TILE_WIDTH: usize = 256;
/// Tree levels spanned by one tile level (256 = 2^8).
pub(crate) const TILE_HEIGHT: usize = 8;

/// The path of a tile relative to the log's directory: `tile/<L>/<N>[.p/<W>]`, with `N` in
/// zero-padded groups of three digits, all but the last prefixed by `x` (1234067 →
/// `x001/x234/067`).
pub fn tile_path(level: u64, index: u64, width: Option<usize>) -> PathBuf {
    let mut groups = vec![format!("{:03}", index % 1000)];
    let mut rest = index / 1000;
    while rest > 0 {
        groups.push(format!("x{:03}", rest % 1000));
        rest /= 1000;
    }
    groups.reverse();
    let mut p = PathBuf::from("tile").join(level.to_string());
    let last = groups.len() - 1;
    for (i, g) in groups.iter().enumerate() {
        match width {
            Some(w) if i == last => p = p.join(format!("{g}.p")).join(w.to_string()),
            _ => p.push(g),
        }
    }
    p
}
