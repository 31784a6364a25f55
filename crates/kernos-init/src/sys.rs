//! The kernel-facing phases: mounts, hostname, modules, clock source, the console.

use std::ffi::CString;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

fn cstr(s: &str) -> Result<CString> {
    CString::new(s).with_context(|| format!("{s:?} holds a NUL byte"))
}

fn errno() -> std::io::Error {
    std::io::Error::last_os_error()
}

/// mount(2), creating the target directory first.
pub fn mount(
    src: &str,
    target: &str,
    fstype: &str,
    flags: libc::c_ulong,
    data: &str,
) -> Result<()> {
    std::fs::create_dir_all(target).with_context(|| format!("cannot create {target}"))?;
    let (s, t, f, d) = (cstr(src)?, cstr(target)?, cstr(fstype)?, cstr(data)?);
    // SAFETY: every pointer is a valid NUL-terminated string that outlives the call.
    let rc = unsafe {
        libc::mount(
            s.as_ptr(),
            t.as_ptr(),
            f.as_ptr(),
            flags,
            if data.is_empty() {
                std::ptr::null()
            } else {
                d.as_ptr().cast()
            },
        )
    };
    if rc != 0 {
        let e = errno();
        // Already mounted (a restarted init, or the kernel mounted devtmpfs): fine.
        if e.raw_os_error() == Some(libc::EBUSY) {
            return Ok(());
        }
        bail!("cannot mount {fstype} on {target}: {e}");
    }
    Ok(())
}

/// The early mounts every later phase needs.
pub fn mount_early() -> Result<String> {
    let nodev = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
    mount("proc", "/proc", "proc", nodev, "")?;
    mount("sysfs", "/sys", "sysfs", nodev, "")?;
    mount("devtmpfs", "/dev", "devtmpfs", libc::MS_NOSUID, "mode=0755")?;
    mount(
        "devpts",
        "/dev/pts",
        "devpts",
        libc::MS_NOSUID | libc::MS_NOEXEC,
        "gid=5,mode=620,ptmxmode=000",
    )?;
    mount(
        "tmpfs",
        "/dev/shm",
        "tmpfs",
        libc::MS_NOSUID | libc::MS_NODEV,
        "mode=1777",
    )?;
    mount(
        "tmpfs",
        "/run",
        "tmpfs",
        libc::MS_NOSUID | libc::MS_NODEV,
        "mode=0755",
    )?;
    mount(
        "tmpfs",
        "/tmp",
        "tmpfs",
        libc::MS_NOSUID | libc::MS_NODEV,
        "mode=1777",
    )?;
    mount("cgroup2", "/sys/fs/cgroup", "cgroup2", nodev, "nsdelegate")?;
    Ok("/proc /sys /dev /dev/pts /dev/shm /run /tmp /sys/fs/cgroup".into())
}

/// Makes ctrl-alt-del send SIGINT to PID 1 (which stops everything cleanly and reboots)
/// instead of the kernel rebooting at once.
pub fn disable_cad() {
    // SAFETY: reboot(2) with RB_DISABLE_CAD only changes that setting.
    unsafe { libc::reboot(libc::RB_DISABLE_CAD) };
}

/// Points stdin, stdout and stderr at /dev/console (an initramfs has no console node of its
/// own until devtmpfs is mounted, so the kernel may have given PID 1 nothing).
pub fn attach_console() {
    let Ok(c) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/console")
    else {
        return;
    };
    for fd in 0..3 {
        // SAFETY: dup2 onto the standard descriptors of our own process.
        unsafe { libc::dup2(c.as_raw_fd(), fd) };
    }
}

/// sethostname(2).
pub fn set_hostname(name: &str) -> Result<String> {
    // SAFETY: the pointer and length describe `name`'s bytes.
    if unsafe { libc::sethostname(name.as_ptr().cast(), name.len()) } != 0 {
        bail!("cannot set the hostname {name:?}: {}", errno());
    }
    Ok(name.into())
}

/// The running kernel's release (`uname -r`).
pub fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

/// Module name as the kernel spells it (`-` and `_` are the same).
fn norm(name: &str) -> String {
    name.replace('-', "_")
}

/// The files to load for `wanted`, dependencies first, from `modules.dep` text.
pub fn resolve_modules(dep_text: &str, wanted: &[String]) -> Result<Vec<String>> {
    let mut deps: std::collections::HashMap<String, (String, Vec<String>)> = Default::default();
    for line in dep_text.lines() {
        let Some((file, rest)) = line.split_once(':') else {
            continue;
        };
        let stem = Path::new(file)
            .file_name()
            .and_then(|f| f.to_str())
            .and_then(|f| f.split('.').next())
            .map(norm)
            .unwrap_or_default();
        deps.insert(
            stem,
            (
                file.to_owned(),
                rest.split_whitespace().map(str::to_owned).collect(),
            ),
        );
    }
    let by_file: std::collections::HashMap<String, Vec<String>> =
        deps.values().map(|(f, d)| (f.clone(), d.clone())).collect();
    let mut order = Vec::new();
    for w in wanted {
        let Some((file, _)) = deps.get(&norm(w)) else {
            bail!(
                "module {w} is not in modules.dep: is it built in (check /boot/config-*), or misspelt?"
            );
        };
        visit(file, &by_file, &mut order, 0)?;
    }
    Ok(order)
}

fn visit(
    file: &str,
    by_file: &std::collections::HashMap<String, Vec<String>>,
    order: &mut Vec<String>,
    depth: usize,
) -> Result<()> {
    if depth > 64 {
        bail!("modules.dep has a dependency loop at {file}");
    }
    if order.iter().any(|f| f == file) {
        return Ok(());
    }
    // modules.dep lists every dependency (transitively), deepest last: load them in reverse.
    if let Some(d) = by_file.get(file) {
        for dep in d.iter().rev() {
            visit(dep, by_file, order, depth + 1)?;
        }
    }
    order.push(file.to_owned());
    Ok(())
}

/// Loads the modules the image lists (and what they need) with finit_module(2).
pub fn load_modules(wanted: &[String]) -> Result<String> {
    if wanted.is_empty() {
        return Ok("none listed".into());
    }
    let dir = PathBuf::from("/lib/modules").join(kernel_release());
    let dep = std::fs::read_to_string(dir.join("modules.dep"))
        .with_context(|| format!("cannot read {}/modules.dep", dir.display()))?;
    let files = resolve_modules(&dep, wanted)?;
    let mut loaded = 0;
    let mut took = Vec::new();
    for f in &files {
        let path = dir.join(f);
        let t0 = std::time::Instant::now();
        let file = std::fs::File::open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        let empty = cstr("")?;
        // SAFETY: a valid descriptor and an empty parameter string.
        let rc =
            unsafe { libc::syscall(libc::SYS_finit_module, file.as_raw_fd(), empty.as_ptr(), 0) };
        if rc != 0 {
            let e = errno();
            if e.raw_os_error() != Some(libc::EEXIST) {
                bail!("cannot load {}: {e}", path.display());
            }
        } else {
            loaded += 1;
        }
        let name = f.rsplit('/').next().unwrap_or(f).trim_end_matches(".ko");
        took.push(format!("{name} {} ms", t0.elapsed().as_millis()));
    }
    // Each module's time (its init runs the driver's probe of the devices it finds).
    Ok(format!("{loaded} loaded: {}", took.join(", ")))
}

/// Selects the clock source, or reports the kernel's.
pub fn clocksource(wanted: &str) -> Result<String> {
    let base = Path::new("/sys/devices/system/clocksource/clocksource0");
    if !wanted.is_empty() {
        std::fs::write(base.join("current_clocksource"), wanted)
            .with_context(|| format!("cannot select the clock source {wanted}"))?;
    }
    let cur = std::fs::read_to_string(base.join("current_clocksource")).unwrap_or_default();
    let avail = std::fs::read_to_string(base.join("available_clocksource")).unwrap_or_default();
    Ok(format!("{} (available: {})", cur.trim(), avail.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dependencies_come_first_and_once() {
        let dep = "kernel/fs/ext4/ext4.ko: kernel/lib/crc16.ko kernel/fs/mbcache.ko kernel/fs/jbd2/jbd2.ko\n\
kernel/lib/crc16.ko:\nkernel/fs/mbcache.ko:\nkernel/fs/jbd2/jbd2.ko:\n\
kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko kernel/drivers/virtio/virtio.ko\n\
kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko\nkernel/net/core/failover.ko:\nkernel/drivers/virtio/virtio.ko:\n";
        let got = resolve_modules(dep, &["ext4".into(), "virtio-net".into()]).unwrap();
        assert_eq!(got.last().unwrap(), "kernel/drivers/net/virtio_net.ko");
        let pos = |f: &str| got.iter().position(|g| g == f).unwrap();
        assert!(pos("kernel/net/core/failover.ko") < pos("kernel/drivers/net/net_failover.ko"));
        assert!(pos("kernel/fs/jbd2/jbd2.ko") < pos("kernel/fs/ext4/ext4.ko"));
        assert_eq!(got.len(), 8);
        assert!(resolve_modules(dep, &["nosuch".into()]).is_err());
    }
}
