//! Landlock through its three raw syscalls.
//!
//! Why not the `landlock` crate: we need exactly one policy shape (read-only root, a few writable
//! trees, optional TCP port rules, scoping) and full control of which ABI features are asked for,
//! so that "enforced" means what we say it means. The raw API is three syscalls and a few
//! structs; writing them here keeps the helper small and dependency-free.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use crate::sys;

// Filesystem access rights (include/uapi/linux/landlock.h), with the ABI that introduced them.
pub(crate) const FS_EXECUTE: u64 = 1 << 0;
pub(crate) const FS_WRITE_FILE: u64 = 1 << 1;
pub(crate) const FS_READ_FILE: u64 = 1 << 2;
pub(crate) const FS_READ_DIR: u64 = 1 << 3;
const FS_REMOVE_DIR: u64 = 1 << 4;
const FS_REMOVE_FILE: u64 = 1 << 5;
const FS_MAKE_CHAR: u64 = 1 << 6;
const FS_MAKE_DIR: u64 = 1 << 7;
const FS_MAKE_REG: u64 = 1 << 8;
const FS_MAKE_SOCK: u64 = 1 << 9;
const FS_MAKE_FIFO: u64 = 1 << 10;
const FS_MAKE_BLOCK: u64 = 1 << 11;
const FS_MAKE_SYM: u64 = 1 << 12;
/// ABI 2: link/rename into another directory.
pub(crate) const FS_REFER: u64 = 1 << 13;
/// ABI 3: truncate.
pub(crate) const FS_TRUNCATE: u64 = 1 << 14;
/// ABI 5: ioctl on device files.
pub(crate) const FS_IOCTL_DEV: u64 = 1 << 15;

/// ABI 4: TCP bind / connect.
pub(crate) const NET_BIND_TCP: u64 = 1 << 0;
pub(crate) const NET_CONNECT_TCP: u64 = 1 << 1;

/// ABI 6: no connecting to abstract Unix sockets created outside the domain.
const SCOPE_ABSTRACT_UNIX_SOCKET: u64 = 1 << 0;
/// ABI 6: no signals to processes outside the domain.
const SCOPE_SIGNAL: u64 = 1 << 1;

/// ABI 7: also log denials of programs started after `landlock_restrict_self` (the sandboxed
/// command itself), so that audit shows what a step tried.
const RESTRICT_SELF_LOG_NEW_EXEC_ON: u32 = 1 << 1;

const CREATE_RULESET_VERSION: u32 = 1 << 0;
const RULE_PATH_BENEATH: libc::c_int = 1;
const RULE_NET_PORT: libc::c_int = 2;

/// Rights that make sense on a regular file (the kernel rejects directory-only rights there).
pub(crate) const FS_FILE_RIGHTS: u64 =
    FS_EXECUTE | FS_WRITE_FILE | FS_READ_FILE | FS_TRUNCATE | FS_IOCTL_DEV;
/// Reading and executing: what the root of the filesystem gets.
pub(crate) const FS_READ_RIGHTS: u64 = FS_EXECUTE | FS_READ_FILE | FS_READ_DIR;

#[repr(C)]
struct RulesetAttr {
    handled_access_fs: u64,
    handled_access_net: u64,
    scoped: u64,
}

#[repr(C, packed)]
struct PathBeneathAttr {
    allowed_access: u64,
    parent_fd: i32,
}

#[repr(C)]
struct NetPortAttr {
    allowed_access: u64,
    port: u64,
}

/// The Landlock ABI version of the running kernel, or the reason there is none
/// (ENOSYS: not built in; EOPNOTSUPP: built in but disabled at boot).
pub(crate) fn abi() -> io::Result<u32> {
    // SAFETY: the documented ABI query: NULL attr, size 0, version flag.
    let r = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<RulesetAttr>(),
            0usize,
            CREATE_RULESET_VERSION,
        )
    };
    sys::cvt_l(r).map(|v| v as u32)
}

/// Every filesystem right the given ABI knows about.
pub(crate) fn fs_rights_for(abi: u32) -> u64 {
    let mut r = FS_EXECUTE
        | FS_WRITE_FILE
        | FS_READ_FILE
        | FS_READ_DIR
        | FS_REMOVE_DIR
        | FS_REMOVE_FILE
        | FS_MAKE_CHAR
        | FS_MAKE_DIR
        | FS_MAKE_REG
        | FS_MAKE_SOCK
        | FS_MAKE_FIFO
        | FS_MAKE_BLOCK
        | FS_MAKE_SYM;
    if abi >= 2 {
        r |= FS_REFER;
    }
    if abi >= 3 {
        r |= FS_TRUNCATE;
    }
    if abi >= 5 {
        r |= FS_IOCTL_DEV;
    }
    r
}

/// What is weaker than the newest ABI we know, for reporting (`kernos doctor`).
pub(crate) fn missing_for(abi: u32) -> Vec<&'static str> {
    let mut m = Vec::new();
    if abi < 2 {
        m.push("cross-directory link/rename control (ABI 2)");
    }
    if abi < 3 {
        m.push("truncate control (ABI 3)");
    }
    if abi < 4 {
        m.push("TCP port rules (ABI 4)");
    }
    if abi < 5 {
        m.push("device ioctl control (ABI 5)");
    }
    if abi < 6 {
        m.push("signal and abstract-socket scoping (ABI 6)");
    }
    m
}

/// One path rule: `access` (masked by what is handled) beneath `path`.
#[derive(Debug, Clone)]
pub(crate) struct PathRule {
    pub path: CString,
    pub access: u64,
    /// A required rule that cannot be added is an error; an optional one is skipped (e.g. a
    /// device node that does not exist on this machine).
    pub required: bool,
}

/// A complete ruleset, prepared in the helper before cloning and applied in the child.
#[derive(Debug, Clone)]
pub(crate) struct Ruleset {
    pub abi: u32,
    pub handled_fs: u64,
    pub handled_net: u64,
    pub rules: Vec<PathRule>,
    /// TCP ports that may be connected to when `handled_net` includes connect.
    pub connect_ports: Vec<u16>,
    /// Scope signals to the domain (ABI 6). Off for service-lifetime steps, whose whole job
    /// is signalling daemons started outside the domain (at boot, or by an earlier step).
    pub scope_signals: bool,
}

impl Ruleset {
    /// Creates the ruleset, adds the rules and restricts the calling thread. The caller must
    /// have set `no_new_privs` (or hold CAP_SYS_ADMIN). Returns a message naming what failed.
    pub(crate) fn restrict_self(&self) -> Result<(), String> {
        let attr = RulesetAttr {
            handled_access_fs: self.handled_fs,
            handled_access_net: if self.abi >= 4 { self.handled_net } else { 0 },
            scoped: if self.abi >= 6 {
                SCOPE_ABSTRACT_UNIX_SOCKET | if self.scope_signals { SCOPE_SIGNAL } else { 0 }
            } else {
                0
            },
        };
        // Older kernels reject a larger struct only if the extra fields are non-zero, but pass
        // the size the ABI knows so the call is exactly what that kernel documents.
        let size = match self.abi {
            0..=3 => 8,
            4 | 5 => 16,
            _ => std::mem::size_of::<RulesetAttr>(),
        };
        // SAFETY: `attr` is a valid repr(C) struct at least `size` bytes long.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_landlock_create_ruleset,
                &attr as *const RulesetAttr,
                size,
                0u32,
            )
        };
        let fd = sys::cvt_l(fd).map_err(|e| format!("landlock_create_ruleset: {e}"))?;
        // SAFETY: the kernel returned a fresh descriptor (close-on-exec by default).
        let ruleset = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };

        for rule in &self.rules {
            let target = match sys::open(&rule.path, libc::O_PATH, 0) {
                Ok(fd) => fd,
                Err(e) if !rule.required => {
                    let _ = e;
                    continue;
                }
                Err(e) => return Err(format!("Landlock rule for {:?}: {e}", rule.path)),
            };
            if let Err(e) = add_path_rule(&ruleset, &target, rule.access & self.handled_fs) {
                if rule.required {
                    return Err(format!("Landlock rule for {:?}: {e}", rule.path));
                }
            }
        }

        if self.abi >= 4 && self.handled_net & NET_CONNECT_TCP != 0 {
            for port in &self.connect_ports {
                let attr = NetPortAttr {
                    allowed_access: NET_CONNECT_TCP,
                    port: u64::from(*port),
                };
                // SAFETY: valid pointer to the net port attr struct.
                let r = unsafe {
                    libc::syscall(
                        libc::SYS_landlock_add_rule,
                        ruleset.as_raw_fd(),
                        RULE_NET_PORT,
                        &attr as *const NetPortAttr,
                        0u32,
                    )
                };
                sys::cvt_l(r).map_err(|e| format!("Landlock rule for TCP port {port}: {e}"))?;
            }
        }

        let flags = if self.abi >= 7 {
            RESTRICT_SELF_LOG_NEW_EXEC_ON
        } else {
            0
        };
        // SAFETY: plain syscall on the ruleset descriptor.
        let r =
            unsafe { libc::syscall(libc::SYS_landlock_restrict_self, ruleset.as_raw_fd(), flags) };
        sys::cvt_l(r).map_err(|e| format!("landlock_restrict_self: {e}"))?;
        Ok(())
    }
}

/// A new ruleset handling `handled_fs` (filesystem rights only; no network, no scoping).
pub(crate) fn create_fs_ruleset(handled_fs: u64) -> io::Result<OwnedFd> {
    let attr = RulesetAttr {
        handled_access_fs: handled_fs,
        handled_access_net: 0,
        scoped: 0,
    };
    // SAFETY: `attr` is a valid repr(C) struct; 8 bytes is the ABI 1 size, which every
    // version accepts when the later fields are zero.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            &attr as *const RulesetAttr,
            8usize,
            0u32,
        )
    };
    let fd = sys::cvt_l(fd)?;
    // SAFETY: the kernel returned a fresh descriptor (close-on-exec by default).
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Grants `access` beneath `target` (an `O_PATH` descriptor) in `ruleset`; rights that make no
/// sense on a regular file are dropped when `target` is one. Nothing to grant is not an error.
pub(crate) fn add_path_rule(ruleset: &OwnedFd, target: &OwnedFd, access: u64) -> io::Result<()> {
    let mut access = access;
    if !is_dir(target.as_raw_fd()) {
        access &= FS_FILE_RIGHTS;
    }
    if access == 0 {
        return Ok(());
    }
    let attr = PathBeneathAttr {
        allowed_access: access,
        parent_fd: target.as_raw_fd(),
    };
    // SAFETY: valid pointer to a packed attr struct for RULE_PATH_BENEATH.
    let r = unsafe {
        libc::syscall(
            libc::SYS_landlock_add_rule,
            ruleset.as_raw_fd(),
            RULE_PATH_BENEATH,
            &attr as *const PathBeneathAttr,
            0u32,
        )
    };
    sys::cvt_l(r).map(|_| ())
}

/// Restricts the calling thread by `ruleset` (which stays usable for other threads). The
/// thread must have `no_new_privs` set.
pub(crate) fn restrict_thread(ruleset: &OwnedFd) -> io::Result<()> {
    // SAFETY: plain syscall on a ruleset descriptor.
    let r = unsafe { libc::syscall(libc::SYS_landlock_restrict_self, ruleset.as_raw_fd(), 0u32) };
    sys::cvt_l(r).map(|_| ())
}

fn is_dir(fd: RawFd) -> bool {
    // SAFETY: stat is plain old data; fstat fills it.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: valid descriptor and pointer.
    let r = unsafe { libc::fstat(fd, &mut st) };
    r == 0 && (st.st_mode & libc::S_IFMT) == libc::S_IFDIR
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rights_grow_with_abi() {
        assert_eq!(fs_rights_for(1) & FS_REFER, 0);
        assert_ne!(fs_rights_for(2) & FS_REFER, 0);
        assert_ne!(fs_rights_for(5) & FS_IOCTL_DEV, 0);
        assert!(missing_for(7).is_empty());
        assert_eq!(missing_for(1).len(), 5);
    }

    #[test]
    fn struct_layout_matches_uapi() {
        assert_eq!(std::mem::size_of::<PathBeneathAttr>(), 12);
        assert_eq!(std::mem::size_of::<RulesetAttr>(), 24);
        assert_eq!(std::mem::size_of::<NetPortAttr>(), 16);
    }
}
