//! The persistent disk (formatted on first boot when it is empty, never when it holds
//! something else) and the RNG seed kept on it.

use std::io::Read;
use std::path::Path;

use anyhow::{Context, Result, bail};

/// Where the persistent disk (or the tmpfs standing in for it) is mounted.
pub const PERSIST: &str = "/persist";
/// The RNG seed saved across boots.
pub const SEED: &str = "/persist/random-seed";

/// What the first MiB of a disk says about it.
#[derive(Debug, PartialEq, Eq)]
pub enum Contents {
    /// All zeroes: a new disk, safe to format.
    Empty,
    /// An ext4 (or ext2/3) file system.
    Ext,
    /// Something else: never formatted over.
    Other,
}

/// Classifies the start of a disk.
pub fn classify(head: &[u8]) -> Contents {
    // The ext superblock is at 1024; its magic 0xEF53 at offset 56 in it.
    if head.len() > 1081 && head[1080] == 0x53 && head[1081] == 0xEF {
        Contents::Ext
    } else if head.iter().all(|b| *b == 0) {
        Contents::Empty
    } else {
        Contents::Other
    }
}

fn wait_for(dev: &Path, secs: u64) -> bool {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while std::time::Instant::now() < until {
        if dev.exists() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    dev.exists()
}

/// The data-disk phase: the disk mounted on /persist (formatted first if empty), else a tmpfs
/// with a loud warning (everything is lost at power-off). Returns whether the disk is
/// persistent.
pub fn mount_data(dev: Option<&Path>, mkfs: &Path) -> Result<(bool, String)> {
    let fallback = |why: String| -> Result<(bool, String)> {
        crate::sys::mount(
            "tmpfs",
            PERSIST,
            "tmpfs",
            libc::MS_NOSUID | libc::MS_NODEV,
            "mode=0755",
        )?;
        let msg = format!(
            "WARNING: {why}; the data directory is on a tmpfs: the journal is LOST at power-off"
        );
        crate::log::warn_loud(&msg);
        Ok((false, msg))
    };
    let Some(dev) = dev else {
        return fallback("no data disk is configured".into());
    };
    if !wait_for(dev, 3) {
        return fallback(format!("the data disk {} is not there", dev.display()));
    }
    let mut head = vec![0u8; 1 << 20];
    let n = std::fs::File::open(dev)
        .and_then(|mut f| f.read(&mut head))
        .with_context(|| format!("cannot read {}", dev.display()))?;
    head.truncate(n);
    let mut did = String::new();
    match classify(&head) {
        Contents::Ext => {}
        Contents::Empty => {
            crate::log::say(&format!("{} is empty: formatting it (ext4)", dev.display()));
            let st = std::process::Command::new(mkfs)
                .args(["-q", "-F", "-L", "kernos-data"])
                .arg(dev)
                .status()
                .with_context(|| format!("cannot run {}", mkfs.display()))?;
            if !st.success() {
                bail!("{} {} failed: {st}", mkfs.display(), dev.display());
            }
            did = "formatted, ".into();
        }
        Contents::Other => {
            return fallback(format!(
                "{} holds something that is not ext4; it is left untouched",
                dev.display()
            ));
        }
    }
    crate::sys::mount(
        &dev.to_string_lossy(),
        PERSIST,
        "ext4",
        libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOATIME,
        "",
    )?;
    Ok((true, format!("{} {did}mounted on {PERSIST}", dev.display())))
}

/// RNDADDENTROPY: `_IOW('R', 0x03, int[2])`.
const RNDADDENTROPY: libc::Ioctl = 0x4008_5203;

/// Credits the saved seed to the kernel's pool; [`save_seed`] replaces it with fresh bytes
/// (once the daemon is ready) so the same seed is not credited twice.
pub fn credit_seed() -> Result<String> {
    let mut detail = String::new();
    if let Ok(seed) = std::fs::read(SEED) {
        if !seed.is_empty() {
            let mut buf = Vec::with_capacity(8 + seed.len());
            buf.extend_from_slice(&((seed.len() * 8) as i32).to_ne_bytes());
            buf.extend_from_slice(&(seed.len() as i32).to_ne_bytes());
            buf.extend_from_slice(&seed);
            let f = std::fs::OpenOptions::new()
                .write(true)
                .open("/dev/urandom")
                .context("cannot open /dev/urandom")?;
            use std::os::fd::AsRawFd;
            // SAFETY: `buf` is a rand_pool_info header followed by its bytes.
            if unsafe { libc::ioctl(f.as_raw_fd(), RNDADDENTROPY, buf.as_ptr()) } != 0 {
                bail!("RNDADDENTROPY: {}", std::io::Error::last_os_error());
            }
            detail = format!("{} seed bytes credited; ", seed.len());
        }
    }
    Ok(format!(
        "{detail}a new seed is saved once the daemon is ready"
    ))
}

/// Writes 512 fresh bytes from getrandom(2) to the seed file (at boot and at shutdown).
pub fn save_seed() -> Result<()> {
    let mut fresh = [0u8; 512];
    // SAFETY: the buffer is writable for its whole length.
    let n = unsafe { libc::getrandom(fresh.as_mut_ptr().cast(), fresh.len(), 0) };
    if n != fresh.len() as isize {
        bail!("getrandom: {}", std::io::Error::last_os_error());
    }
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = format!("{SEED}.new");
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| std::io::Write::write_all(&mut f, &fresh).and_then(|_| f.sync_all()))
        .with_context(|| format!("cannot write {tmp}"))?;
    std::fs::rename(&tmp, SEED).with_context(|| format!("cannot replace {SEED}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_all_zero_disk_is_empty() {
        let mut head = vec![0u8; 4096];
        assert_eq!(classify(&head), Contents::Empty);
        head[1080] = 0x53;
        head[1081] = 0xEF;
        assert_eq!(classify(&head), Contents::Ext);
        head[1080] = 0;
        assert_eq!(classify(&head), Contents::Other);
    }
}
