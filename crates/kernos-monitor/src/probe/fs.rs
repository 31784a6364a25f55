//! Disk and inode usage of a filesystem, from `statvfs(2)`.
//!
//! The figures come through [`FsStats`] so the threshold logic can be tested with made-up
//! filesystems (a test cannot mount a tmpfs unprivileged, nor fill a real disk).

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::error::ProbeError;
use crate::watch::{Reading, number};

/// The counts of one filesystem, as `statvfs` gives them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FsUsage {
    /// Fragment size: the unit of the block counts.
    pub block_size: u64,
    /// Blocks in all.
    pub blocks: u64,
    /// Free blocks, counting the ones reserved for root.
    pub blocks_free: u64,
    /// Blocks free for unprivileged users.
    pub blocks_avail: u64,
    /// Inodes in all (0 on filesystems without a fixed inode table).
    pub files: u64,
    /// Free inodes.
    pub files_free: u64,
}

/// Where filesystem counts come from.
pub trait FsStats {
    /// The counts of the filesystem holding `path`.
    fn stat(&self, path: &Path) -> Result<FsUsage, ProbeError>;
}

/// The real machine's `statvfs`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Statvfs;

impl FsStats for Statvfs {
    fn stat(&self, path: &Path) -> Result<FsUsage, ProbeError> {
        let c = CString::new(path.as_os_str().as_bytes()).map_err(|_| {
            ProbeError::io(
                "statvfs",
                path,
                std::io::Error::from(std::io::ErrorKind::InvalidInput),
            )
        })?;
        // SAFETY: a zeroed statvfs is a valid out-parameter.
        let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
        // SAFETY: `c` is a NUL-terminated path and `st` is live for the call.
        let rc = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
        if rc != 0 {
            return Err(ProbeError::io(
                "statvfs",
                path,
                std::io::Error::last_os_error(),
            ));
        }
        // The field types differ between libcs; all are unsigned and fit in u64.
        #[allow(clippy::unnecessary_cast)]
        Ok(FsUsage {
            block_size: st.f_frsize as u64,
            blocks: st.f_blocks as u64,
            blocks_free: st.f_bfree as u64,
            blocks_avail: st.f_bavail as u64,
            files: st.f_files as u64,
            files_free: st.f_ffree as u64,
        })
    }
}

/// Per cent of blocks in use, as `df` shows it: used / (used + available to users), so the
/// blocks reserved for root count as neither.
pub fn disk(mount: &Path, fs: &dyn FsStats) -> Result<Reading, ProbeError> {
    let u = fs.stat(mount)?;
    let used = u.blocks.saturating_sub(u.blocks_free);
    let usable = used + u.blocks_avail;
    let pct = if usable == 0 {
        0.0
    } else {
        used as f64 * 100.0 / usable as f64
    };
    let pct_text = number(pct);
    Ok(
        Reading::new(pct, format!("{} is {pct_text} % full", mount.display()))
            .var("mount", mount.display())
            .var("used_pct", pct_text)
            .var("free_bytes", u.blocks_avail.saturating_mul(u.block_size))
            .var("size_bytes", u.blocks.saturating_mul(u.block_size)),
    )
}

/// Per cent of inodes in use (0 where the filesystem has no inode limit).
pub fn inodes(mount: &Path, fs: &dyn FsStats) -> Result<Reading, ProbeError> {
    let u = fs.stat(mount)?;
    let used = u.files.saturating_sub(u.files_free);
    let pct = if u.files == 0 {
        0.0
    } else {
        used as f64 * 100.0 / u.files as f64
    };
    let pct_text = number(pct);
    Ok(Reading::new(
        pct,
        format!("{} has {pct_text} % of its inodes in use", mount.display()),
    )
    .var("mount", mount.display())
    .var("used_pct", pct_text)
    .var("free_inodes", u.files_free)
    .var("total_inodes", u.files))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fake(FsUsage);

    impl FsStats for Fake {
        fn stat(&self, _: &Path) -> Result<FsUsage, ProbeError> {
            Ok(self.0)
        }
    }

    #[test]
    fn usage_counts_like_df_leaving_out_roots_reserve() {
        // 1000 blocks, 100 free of which 50 only for root: 900 used of 950 usable.
        let fs = Fake(FsUsage {
            block_size: 4096,
            blocks: 1000,
            blocks_free: 100,
            blocks_avail: 50,
            files: 200,
            files_free: 50,
        });
        let r = disk(Path::new("/srv"), &fs).unwrap();
        assert!((r.value - 900.0 * 100.0 / 950.0).abs() < 1e-9);
        assert_eq!(r.vars["free_bytes"], (50 * 4096).to_string());
        assert_eq!(r.vars["mount"], "/srv");
        let i = inodes(Path::new("/srv"), &fs).unwrap();
        assert_eq!(i.value, 75.0);
    }

    #[test]
    fn an_empty_filesystem_reads_zero_not_nan() {
        let fs = Fake(FsUsage {
            block_size: 4096,
            blocks: 0,
            blocks_free: 0,
            blocks_avail: 0,
            files: 0,
            files_free: 0,
        });
        assert_eq!(disk(Path::new("/x"), &fs).unwrap().value, 0.0);
        assert_eq!(inodes(Path::new("/x"), &fs).unwrap().value, 0.0);
    }
}
