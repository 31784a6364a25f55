//! The facts a node announces about itself: what a person picks machines by (`os`, `kernel`,
//! a disk's fill, memory) and what fleet tools show (CPU count, services, packages). Read
//! from /proc, /etc and statvfs — cheap enough to refresh with every heartbeat.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What a machine is.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Facts {
    /// Its host name.
    pub hostname: String,
    /// The distribution (`Debian GNU/Linux 12 (bookworm)`).
    pub os: String,
    /// The kernel release.
    pub kernel: String,
    /// The machine architecture (`x86_64`).
    pub arch: String,
    /// Online CPUs.
    pub cpus: usize,
    /// Memory in bytes.
    pub memory_total: u64,
    /// Memory available in bytes.
    pub memory_available: u64,
    /// Mounted disk filesystems.
    pub disks: Vec<Disk>,
    /// Of the services asked about (`[fleet] services`), those running (by process name).
    #[serde(default)]
    pub services: Vec<String>,
    /// Of the packages asked about (`[fleet] packages`), the installed version of each.
    #[serde(default)]
    pub packages: BTreeMap<String, String>,
}

/// One mounted filesystem.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Disk {
    /// Where it is mounted.
    pub mount: String,
    /// Its size in bytes.
    pub total: u64,
    /// Used, in percent of what an unprivileged user may use.
    pub used_pct: f64,
}

impl Facts {
    /// Memory in use, in percent.
    pub fn memory_used_pct(&self) -> f64 {
        if self.memory_total == 0 {
            return 0.0;
        }
        100.0 * (self.memory_total - self.memory_available.min(self.memory_total)) as f64
            / self.memory_total as f64
    }

    /// The disk holding `path`: the longest mount point that is a prefix of it.
    pub fn disk_of(&self, path: &str) -> Option<&Disk> {
        self.disks
            .iter()
            .filter(|d| {
                path == d.mount
                    || d.mount == "/"
                    || path
                        .strip_prefix(d.mount.as_str())
                        .is_some_and(|rest| rest.starts_with('/'))
            })
            .max_by_key(|d| d.mount.len())
    }
}

/// Reads this machine's facts; `services` and `packages` name what to look for.
pub fn collect(services: &[String], packages: &[String]) -> Facts {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let kib = |key: &str| -> u64 {
        meminfo
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
            .unwrap_or(0)
            * 1024
    };
    Facts {
        hostname: read_trim("/proc/sys/kernel/hostname"),
        os: os_name(),
        kernel: read_trim("/proc/sys/kernel/osrelease"),
        arch: std::env::consts::ARCH.to_owned(),
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        memory_total: kib("MemTotal:"),
        memory_available: kib("MemAvailable:"),
        disks: disks(),
        services: running(services),
        packages: installed(packages),
    }
}

fn read_trim(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

fn os_name() -> String {
    let rel = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    rel.lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_owned())
        .unwrap_or_else(|| "Linux".into())
}

/// Filesystems on block devices (and the root), not the pseudo ones.
fn disks() -> Vec<Disk> {
    const REAL: &[&str] = &[
        "ext2", "ext3", "ext4", "xfs", "btrfs", "vfat", "zfs", "f2fs", "overlay",
    ];
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    let mut out: Vec<Disk> = Vec::new();
    for line in mounts.lines() {
        let mut f = line.split_whitespace();
        let (Some(_dev), Some(mount), Some(fs)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        let mount = mount.replace("\\040", " ");
        if !REAL.contains(&fs) || out.iter().any(|d| d.mount == mount) {
            continue;
        }
        if let Some(d) = statvfs(&mount) {
            out.push(d);
        }
    }
    out.sort_by(|a, b| a.mount.cmp(&b.mount));
    out
}

fn statvfs(mount: &str) -> Option<Disk> {
    let c = std::ffi::CString::new(mount).ok()?;
    // SAFETY: statvfs writes into the zeroed struct we own; the path is a valid C string.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 || st.f_blocks == 0 {
        return None;
    }
    let frsize = st.f_frsize as u64;
    let total = st.f_blocks as u64 * frsize;
    let used = (st.f_blocks - st.f_bfree) as u64 * frsize;
    let avail = st.f_bavail as u64 * frsize;
    // As df computes it: used over what users can have (used + available).
    let used_pct = if used + avail == 0 {
        0.0
    } else {
        100.0 * used as f64 / (used + avail) as f64
    };
    Some(Disk {
        mount: mount.to_owned(),
        total,
        used_pct: (used_pct * 10.0).round() / 10.0,
    })
}

/// Of `names`, those with a running process of that name.
fn running(names: &[String]) -> Vec<String> {
    if names.is_empty() {
        return Vec::new();
    }
    let mut seen = std::collections::BTreeSet::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            let comm = e.path().join("comm");
            if let Ok(c) = std::fs::read_to_string(comm) {
                seen.insert(c.trim().to_owned());
            }
        }
    }
    names
        .iter()
        .filter(|n| seen.contains(*n))
        .cloned()
        .collect()
}

/// Of `names`, the installed version of each Debian package (from dpkg's status file).
fn installed(names: &[String]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if names.is_empty() {
        return out;
    }
    let status = std::fs::read_to_string("/var/lib/dpkg/status").unwrap_or_default();
    for para in status.split("\n\n") {
        let field = |k: &str| {
            para.lines()
                .find_map(|l| l.strip_prefix(k))
                .map(|v| v.trim().to_owned())
        };
        let (Some(pkg), Some(st), Some(ver)) =
            (field("Package:"), field("Status:"), field("Version:"))
        else {
            continue;
        };
        if st.ends_with(" installed") && names.contains(&pkg) {
            out.insert(pkg, ver);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_machine_has_a_root_disk_memory_and_a_kernel() {
        let f = collect(&[], &["libc6".into()]);
        assert!(f.cpus >= 1 && f.memory_total > 0 && !f.kernel.is_empty());
        assert!(f.disk_of("/var/log").is_some(), "{:?}", f.disks);
        assert!(f.packages.contains_key("libc6"), "{:?}", f.packages);
    }

    #[test]
    fn the_longest_mount_holding_a_path_is_its_disk() {
        let f = Facts {
            disks: vec![
                Disk {
                    mount: "/".into(),
                    total: 1,
                    used_pct: 10.0,
                },
                Disk {
                    mount: "/var".into(),
                    total: 1,
                    used_pct: 95.0,
                },
                Disk {
                    mount: "/variant".into(),
                    total: 1,
                    used_pct: 50.0,
                },
            ],
            ..Facts::default()
        };
        assert_eq!(f.disk_of("/var").map(|d| d.used_pct), Some(95.0));
        assert_eq!(f.disk_of("/var/log").map(|d| d.used_pct), Some(95.0));
        assert_eq!(f.disk_of("/variable").map(|d| d.used_pct), Some(10.0));
    }
}
