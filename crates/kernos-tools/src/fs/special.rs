//! What reads must not open: special files (devices, FIFOs, sockets), the kernel's own file
//! systems (`/proc`, `/sys`, debugfs, …) below a walked tree, and the kernel files that block
//! or never end even when named directly (`/proc/kmsg` waits for the next kernel message and
//! takes it from the system log; `/proc/kcore` is as large as the address space).

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::{self, FileType};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// `statfs` magic numbers of file systems whose files are the kernel talking, not data: walks
/// do not descend into them, and their blocking files are never read.
const KERNEL_FS: &[i64] = &[
    0x9fa0,      // proc
    0x6265_6572, // sysfs
    0x6462_6720, // debugfs
    0x7472_6163, // tracefs
    0x7363_6673, // securityfs
    0x0027_e0eb, // cgroup
    0x6367_7270, // cgroup2
    0x6165_676c, // pstore
    0xcafe_4a11, // bpf
    0x6265_6570, // configfs
    0xde5e_81e4, // efivarfs
    0x1cd1,      // devpts
    0x1980_0202, // mqueue
    0x4249_4e4d, // binfmt_misc
    0x6573_5543, // fusectl
];

/// Names of kernel files that block on read or never end. Only refused on a kernel file
/// system (a user's own file called `kmsg` is just a file).
const BLOCKING_NAMES: &[&str] = &["kmsg", "kcore", "trace_pipe", "trace_pipe_raw"];

/// Whether `p` lies on one of the kernel's file systems.
pub(crate) fn on_kernel_fs(p: &Path) -> bool {
    let Ok(c) = std::ffi::CString::new(p.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: statfs is plain data; `c` is a valid NUL-terminated path.
    let mut s: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` and `s` are valid for the call.
    if unsafe { libc::statfs(c.as_ptr(), &mut s) } != 0 {
        return false;
    }
    #[allow(clippy::unnecessary_cast)] // f_type is i64 or u32 depending on the platform
    let magic = s.f_type as i64;
    KERNEL_FS.contains(&magic)
}

/// Whether a file type is a device, FIFO or socket: opening one may block, and reading it
/// may never end.
pub(crate) fn is_special(ft: FileType) -> bool {
    ft.is_char_device() || ft.is_block_device() || ft.is_fifo() || ft.is_socket()
}

/// Whether a file on a kernel file system (see [`on_kernel_fs`]) is one that blocks or never
/// ends when read.
pub(crate) fn blocking_name(name: &OsStr) -> bool {
    BLOCKING_NAMES.iter().any(|b| name == OsStr::new(b))
}

/// Why the regular file `p` must not be read, when it is a blocking kernel file.
pub(crate) fn blocking_kernel_file(p: &Path) -> Option<String> {
    let name = p.file_name()?;
    (blocking_name(name) && on_kernel_fs(p)).then(|| {
        format!(
            "{} is a kernel file that blocks or never ends when read; Kernos does not read it \
             (for kernel messages, ask for the kernel log: `logs.errors` or `dmesg`)",
            p.display()
        )
    })
}

/// Opens a file for reading without ever blocking in `open` or in a later `read` on a file
/// that supports non-blocking reads (a kernel file with nothing to say answers "try again",
/// which readers treat as unreadable). On ordinary files the flag changes nothing.
pub(crate) fn open_read(p: &Path) -> io::Result<fs::File> {
    fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(p)
}

/// Per device, whether it is a kernel file system: a walk asks once per file system, not
/// once per directory.
#[derive(Default)]
pub(crate) struct KernelFsCache(HashMap<u64, bool>);

impl KernelFsCache {
    /// A cache that treats `dev` (the walked root's device) as ordinary: a walk the user
    /// started inside `/proc` walks `/proc`.
    pub(crate) fn allowing(dev: Option<u64>) -> Self {
        let mut c = KernelFsCache::default();
        if let Some(d) = dev {
            c.0.insert(d, false);
        }
        c
    }

    /// Whether the directory `p` on device `dev` is on a kernel file system.
    pub(crate) fn is_kernel(&mut self, dev: u64, p: &Path) -> bool {
        *self.0.entry(dev).or_insert_with(|| on_kernel_fs(p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_is_a_kernel_file_system_and_kmsg_blocks() {
        assert!(on_kernel_fs(Path::new("/proc")));
        assert!(!on_kernel_fs(&std::env::temp_dir()));
        assert!(blocking_kernel_file(Path::new("/proc/kmsg")).is_some());
        assert!(blocking_kernel_file(Path::new("/proc/cpuinfo")).is_none());
        let d = tempfile::tempdir().unwrap();
        let own = d.path().join("kmsg");
        fs::write(&own, b"mine").unwrap();
        assert!(
            blocking_kernel_file(&own).is_none(),
            "a user's kmsg is a file"
        );
    }
}
