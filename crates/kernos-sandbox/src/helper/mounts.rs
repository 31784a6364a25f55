//! Building the mount view (see [`MountPlan`]) inside the init's new mount namespace. Why
//! mounts and not only Landlock: Landlock cannot take something away from a readable root (so
//! it cannot hide `deny_read` paths inside it), and it does not govern chmod/chown/utime/xattr
//! at all. A read-only mount covers both gaps, and an empty tmpfs over a hidden directory makes
//! it unreadable while `ls ~` still works.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use super::status::status;
use super::view::{Hide, MountPlan};
use crate::protocol::FailKind;
use crate::sys;

const MOUNT_ATTR_RDONLY: u64 = 0x1;
const MOUNT_ATTR_NOSUID: u64 = 0x2;
const MOUNT_ATTR_NODEV: u64 = 0x4;
const AT_RECURSIVE: libc::c_uint = 0x8000;

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// Device nodes the command gets in its private /dev; everything else (disks, /dev/mem, …) is
/// absent, because a read-only view of a raw disk would bypass every hidden path.
const DEVICES: [&CStr; 5] = [c"null", c"zero", c"full", c"random", c"urandom"];

fn mount_setattr(path: &CStr, recursive: bool, set: u64, clr: u64) -> io::Result<()> {
    let attr = MountAttr {
        attr_set: set,
        attr_clr: clr,
        propagation: 0,
        userns_fd: 0,
    };
    // SAFETY: valid C string and pointer to a local attr struct of the given size.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            path.as_ptr(),
            if recursive { AT_RECURSIVE } else { 0 },
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    sys::cvt_l(r).map(|_| ())
}

fn mount(
    src: Option<&CStr>,
    target: &CStr,
    fstype: Option<&CStr>,
    flags: libc::c_ulong,
    data: Option<&CStr>,
) -> io::Result<()> {
    let p = |c: Option<&CStr>| c.map_or(std::ptr::null(), |c| c.as_ptr());
    // SAFETY: every pointer is NULL or a valid C string.
    let r = unsafe {
        libc::mount(
            p(src),
            target.as_ptr(),
            p(fstype),
            flags,
            p(data).cast::<libc::c_void>(),
        )
    };
    sys::cvt(r).map(|_| ())
}

/// `/proc/self/fd/N` for binding from a descriptor opened before its path was covered.
fn fd_path(fd: &OwnedFd) -> CString {
    CString::new(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap_or_default()
}

fn join(base: &CStr, rel: &[CString]) -> CString {
    let mut v = base.to_bytes().to_vec();
    for c in rel {
        v.push(b'/');
        v.extend_from_slice(c.to_bytes());
    }
    CString::new(v).unwrap_or_default()
}

fn make_mountpoint(path: &CStr, is_dir: bool) -> io::Result<()> {
    if is_dir {
        // SAFETY: valid C string.
        let r = unsafe { libc::mkdir(path.as_ptr(), 0o755) };
        if r != 0 && io::Error::last_os_error().raw_os_error() != Some(libc::EEXIST) {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    } else {
        sys::open(path, libc::O_CREAT | libc::O_WRONLY, 0o644).map(drop)
    }
}

type MountError = (FailKind, String);

fn unavailable(what: &str, e: io::Error) -> MountError {
    (FailKind::Unavailable, format!("{what}: {e}"))
}

/// Device nodes opened before /dev is covered, by name.
type Devices = Vec<(&'static CStr, Option<OwnedFd>)>;

/// Builds the view: private propagation, everything read-only, hidden paths (with declared
/// paths inside shown again), writable binds, covered sockets, a minimal /dev, a fresh /proc.
/// The order matters: each step must not undo an earlier one.
pub(super) fn setup_mounts(m: &MountPlan, allow_weaker: bool, st: RawFd) -> Result<(), MountError> {
    // Nothing we do here may propagate back to the host, and host mounts must not appear in
    // here later with their original (writable) flags.
    mount(None, c"/", None, libc::MS_REC | libc::MS_PRIVATE, None)
        .map_err(|e| unavailable("private mount propagation", e))?;
    // Open what we are about to cover while it is still reachable by path.
    let devices: Devices = DEVICES
        .iter()
        .map(|name| {
            let p = join(c"/dev", &[CString::from(*name)]);
            (*name, sys::open(&p, libc::O_PATH, 0).ok())
        })
        .collect();
    let reexpose_fds: Vec<Vec<Option<OwnedFd>>> = m
        .hide
        .iter()
        .map(|h| {
            h.reexpose
                .iter()
                .map(|(src, _, _)| sys::open(src, libc::O_PATH, 0).ok())
                .collect()
        })
        .collect();
    let null = devices
        .iter()
        .find(|(n, _)| *n == c"null")
        .and_then(|(_, fd)| fd.as_ref());
    read_only_everything(allow_weaker, st)?;
    for (h, fds) in m.hide.iter().zip(reexpose_fds) {
        hide(h, fds, null)?;
    }
    for w in &m.writable {
        make_writable(w)?;
    }
    cover_sockets(&m.cover_sockets, null)?;
    private_dev(&devices, m.shm_bytes)?;
    if m.fresh_proc {
        fresh_proc(allow_weaker, st)?;
    }
    Ok(())
}

/// Everything read-only, no setuid, no device nodes (the private /dev re-allows a few).
fn read_only_everything(allow_weaker: bool, st: RawFd) -> Result<(), MountError> {
    match mount_setattr(
        c"/",
        true,
        MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
        0,
    ) {
        Ok(()) => Ok(()),
        Err(e) if allow_weaker => {
            status(st, &format!("W read-only mounts ({e})"));
            Ok(())
        }
        Err(e) => Err(unavailable(
            "read-only mounts (mount_setattr, Linux 5.12+)",
            e,
        )),
    }
}

/// A path that has gone since the helper looked (a temp dir of someone else's, say) leaves
/// nothing to hide or cover.
fn gone(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR))
}

/// Hides one path: an empty read-only tmpfs over a directory (with the declared paths inside
/// bound back in from `fds`, opened before), a node-less /dev/null over a file (opening it
/// fails with EACCES).
fn hide(h: &Hide, fds: Vec<Option<OwnedFd>>, null: Option<&OwnedFd>) -> Result<(), MountError> {
    if !h.is_dir {
        let Some(null) = null else {
            return Err((FailKind::Unavailable, "no /dev/null to hide files".into()));
        };
        match mount(Some(&fd_path(null)), &h.path, None, libc::MS_BIND, None) {
            Ok(()) => {}
            Err(e) if gone(&e) => return Ok(()),
            Err(e) => return Err(unavailable(&format!("hiding {:?}", h.path), e)),
        }
        return mount_setattr(&h.path, false, MOUNT_ATTR_NODEV | MOUNT_ATTR_RDONLY, 0)
            .map_err(|e| unavailable("hiding a file", e));
    }
    match mount(
        Some(c"tmpfs"),
        &h.path,
        Some(c"tmpfs"),
        libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
        Some(c"size=64k,mode=0755"),
    ) {
        Ok(()) => {}
        Err(e) if gone(&e) => return Ok(()),
        Err(e) => return Err(unavailable(&format!("hiding {:?}", h.path), e)),
    }
    for ((_, rel, is_dir), fd) in h.reexpose.iter().zip(fds) {
        let Some(fd) = fd else { continue };
        for i in 1..rel.len() {
            make_mountpoint(&join(&h.path, &rel[..i]), true)
                .map_err(|e| unavailable("re-exposing a declared path", e))?;
        }
        let target = join(&h.path, rel);
        make_mountpoint(&target, *is_dir)
            .map_err(|e| unavailable("re-exposing a declared path", e))?;
        mount(
            Some(&fd_path(&fd)),
            &target,
            None,
            libc::MS_BIND | libc::MS_REC,
            None,
        )
        .map_err(|e| unavailable(&format!("re-exposing {target:?}"), e))?;
    }
    mount_setattr(&h.path, false, MOUNT_ATTR_RDONLY, 0)
        .map_err(|e| unavailable("read-only hidden path", e))
}

/// A writable path: bound onto itself (a new mount), which is made writable again.
fn make_writable(w: &CStr) -> Result<(), MountError> {
    mount(Some(w), w, None, libc::MS_BIND | libc::MS_REC, None)
        .map_err(|e| unavailable(&format!("writable bind of {w:?}"), e))?;
    if mount_setattr(w, true, 0, MOUNT_ATTR_RDONLY).is_err() {
        // A read-only submount locked by the host cannot be made writable; keep it
        // read-only and make only the declared path itself writable.
        mount_setattr(w, false, 0, MOUNT_ATTR_RDONLY)
            .map_err(|e| unavailable(&format!("making {w:?} writable"), e))?;
    }
    Ok(())
}

/// Undeclared Unix sockets: a node-less /dev/null over each one refuses connections. After
/// the writable binds and the re-exposed paths, so none of those brings one back; one that
/// is not visible any more (inside a hidden directory) needs nothing.
fn cover_sockets(sockets: &[CString], null: Option<&OwnedFd>) -> Result<(), MountError> {
    if sockets.is_empty() {
        return Ok(());
    }
    let null = null.ok_or((
        FailKind::Unavailable,
        "no /dev/null to cover Unix sockets with".to_owned(),
    ))?;
    for sock in sockets {
        match mount(Some(&fd_path(null)), sock, None, libc::MS_BIND, None) {
            Ok(()) => {}
            Err(e) if gone(&e) => continue,
            Err(e) => return Err(unavailable(&format!("covering the socket {sock:?}"), e)),
        }
        mount_setattr(sock, false, MOUNT_ATTR_NODEV | MOUNT_ATTR_RDONLY, 0)
            .map_err(|e| unavailable("covering a socket", e))?;
    }
    Ok(())
}

/// A minimal /dev: a few harmless device nodes, stdio links and a private /dev/shm.
fn private_dev(devices: &Devices, shm_bytes: u64) -> Result<(), MountError> {
    let dev = c"/dev";
    mount(
        Some(c"tmpfs"),
        dev,
        Some(c"tmpfs"),
        libc::MS_NOSUID | libc::MS_NOEXEC,
        Some(c"size=64k,mode=0755"),
    )
    .map_err(|e| unavailable("private /dev", e))?;
    for (name, fd) in devices {
        let Some(fd) = fd else { continue };
        let target = join(dev, &[CString::from(*name)]);
        make_mountpoint(&target, false).map_err(|e| unavailable("private /dev", e))?;
        mount(Some(&fd_path(fd)), &target, None, libc::MS_BIND, None)
            .map_err(|e| unavailable(&format!("binding {target:?}"), e))?;
        mount_setattr(&target, false, 0, MOUNT_ATTR_NODEV)
            .map_err(|e| unavailable(&format!("enabling {target:?}"), e))?;
    }
    for (link, to) in [
        (c"/dev/fd", c"/proc/self/fd"),
        (c"/dev/stdin", c"/proc/self/fd/0"),
        (c"/dev/stdout", c"/proc/self/fd/1"),
        (c"/dev/stderr", c"/proc/self/fd/2"),
    ] {
        // SAFETY: valid C strings.
        unsafe { libc::symlink(to.as_ptr(), link.as_ptr()) };
    }
    let shm = c"/dev/shm";
    make_mountpoint(shm, true).map_err(|e| unavailable("private /dev/shm", e))?;
    let shm_opts = CString::new(format!("size={shm_bytes},mode=1777")).unwrap_or_default();
    mount(
        Some(c"tmpfs"),
        shm,
        Some(c"tmpfs"),
        libc::MS_NOSUID | libc::MS_NODEV,
        Some(&shm_opts),
    )
    .map_err(|e| unavailable("private /dev/shm", e))?;
    mount_setattr(dev, false, MOUNT_ATTR_RDONLY, 0).map_err(|e| unavailable("read-only /dev", e))
}

/// A /proc that shows only this PID namespace (host command lines can carry secrets).
fn fresh_proc(allow_weaker: bool, st: RawFd) -> Result<(), MountError> {
    match mount(
        Some(c"proc"),
        c"/proc",
        Some(c"proc"),
        libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
        None,
    ) {
        Ok(()) => Ok(()),
        Err(e) if allow_weaker => {
            status(st, &format!("W private /proc ({e})"));
            Ok(())
        }
        Err(e) => Err(unavailable("private /proc", e)),
    }
}
