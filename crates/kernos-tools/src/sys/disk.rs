//! `sys.disk`: mounted filesystems and their space, from /proc/self/mountinfo and statvfs.

use std::collections::HashSet;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use kernos_core::{ColumnKind, Effect, EffectKind, Reversibility};
use serde_json::{Value, json};

use super::{pct, read_file, system_read};
use crate::args::SysDisk;
use crate::output::{Output, human_bytes, row};
use crate::registry::{Action, Meta};
use crate::undo::Recorder;
use crate::{Ctx, Result, ToolError};

/// One line of /proc/self/mountinfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mount {
    pub dev: String,
    pub mount_point: PathBuf,
    pub fs_type: String,
    pub source: String,
}

/// Kernel-internal and memory-backed filesystems: not what anyone means by "disk space".
const PSEUDO: &[&str] = &[
    "proc",
    "sysfs",
    "devtmpfs",
    "devpts",
    "tmpfs",
    "ramfs",
    "cgroup",
    "cgroup2",
    "securityfs",
    "debugfs",
    "tracefs",
    "pstore",
    "bpf",
    "mqueue",
    "hugetlbfs",
    "configfs",
    "fusectl",
    "autofs",
    "binfmt_misc",
    "rpc_pipefs",
    "nsfs",
    "selinuxfs",
    "efivarfs",
    "squashfs",
    "fuse.gvfsd-fuse",
    "fuse.portal",
    "fuse.lxcfs",
    "fuse.snapfuse",
];

/// Filesystems whose statvfs can block for a long time when the server is gone.
const NETWORK: &[&str] = &[
    "nfs",
    "nfs4",
    "cifs",
    "smb3",
    "smbfs",
    "fuse.sshfs",
    "sshfs",
    "9p",
    "ceph",
    "glusterfs",
    "fuse.glusterfs",
    "afs",
];

/// Undoes mountinfo's octal escapes (`\040` for a space).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses /proc/self/mountinfo.
pub(crate) fn parse_mountinfo(s: &str) -> Vec<Mount> {
    s.lines()
        .filter_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            let f: Vec<&str> = left.split(' ').collect();
            let r: Vec<&str> = right.split(' ').collect();
            Some(Mount {
                dev: (*f.get(2)?).to_owned(),
                mount_point: PathBuf::from(unescape(f.get(4)?)),
                fs_type: (*r.first()?).to_owned(),
                source: unescape(r.get(1)?),
            })
        })
        .collect()
}

/// The mount holding `path` (an absolute, symlink-free path): the longest mount point above
/// it, the last mounted when several sit on the same point.
pub(crate) fn mount_of<'a>(mounts: &'a [Mount], path: &Path) -> Option<&'a Mount> {
    mounts
        .iter()
        .enumerate()
        .filter(|(_, m)| path.starts_with(&m.mount_point))
        .max_by_key(|(i, m)| (m.mount_point.components().count(), *i))
        .map(|(_, m)| m)
}

/// The filesystems worth showing: real ones, each device once (its shortest mount point).
pub(crate) fn real_mounts(mounts: &[Mount]) -> Vec<&Mount> {
    let mut seen = HashSet::new();
    let mut list: Vec<&Mount> = mounts
        .iter()
        .filter(|m| !PSEUDO.contains(&m.fs_type.as_str()))
        .collect();
    list.sort_by_key(|m| m.mount_point.as_os_str().len());
    list.retain(|m| seen.insert(m.dev.clone()));
    list.sort_by(|a, b| a.mount_point.cmp(&b.mount_point));
    list
}

/// Space of one filesystem, bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Space {
    pub size: u64,
    pub used: u64,
    pub free: u64,
    pub inodes: u64,
    pub inodes_free: u64,
}

fn statvfs(path: &Path) -> std::io::Result<Space> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    // SAFETY: an all-zero statvfs is a valid value of this plain C struct.
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is NUL-terminated and `s` is valid for writes.
    if unsafe { libc::statvfs(c.as_ptr(), &mut s) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let f = s.f_frsize as u64;
    Ok(Space {
        size: s.f_blocks as u64 * f,
        used: (s.f_blocks as u64).saturating_sub(s.f_bfree as u64) * f,
        free: s.f_bavail as u64 * f,
        inodes: s.f_files as u64,
        inodes_free: s.f_ffree as u64,
    })
}

/// statvfs, given up on after a while for network filesystems whose server may be gone (the
/// blocked thread is left behind rather than hanging the step).
fn space(m: &Mount) -> std::io::Result<Space> {
    if !NETWORK.contains(&m.fs_type.as_str()) {
        return statvfs(&m.mount_point);
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let p = m.mount_point.clone();
    std::thread::spawn(move || {
        let _ = tx.send(statvfs(&p));
    });
    rx.recv_timeout(Duration::from_secs(3)).unwrap_or_else(|_| {
        Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "not responding",
        ))
    })
}

/// df's use%: used over what users can have (used + available), rounded up like df.
fn use_percent(s: &Space) -> f64 {
    let denom = s.used + s.free;
    if denom == 0 { 0.0 } else { pct(s.used, denom) }
}

/// `sys.disk`.
#[derive(Debug, Clone, Copy)]
pub struct Disk;

impl Action for Disk {
    type Args = SysDisk;

    fn meta(&self) -> Meta {
        Meta {
            tool: "sys",
            name: "disk",
            summary: "Mounted filesystems and their size, used and free space",
            effects: &[EffectKind::Read],
            reversibility: Reversibility::ReadOnly,
            output: &[
                ("filesystem", ColumnKind::Text),
                ("mount", ColumnKind::Path),
                ("type", ColumnKind::Text),
                ("size", ColumnKind::Bytes),
                ("used", ColumnKind::Bytes),
                ("free", ColumnKind::Bytes),
                ("use_percent", ColumnKind::Percent),
                ("inode_use_percent", ColumnKind::Percent),
            ],
        }
    }

    fn effects(&self, args: &SysDisk, ctx: &Ctx<'_>) -> Result<Vec<Effect>> {
        let mut e = system_read();
        if let Some(p) = &args.path {
            e.push(Effect::path(EffectKind::Read, ctx.env.resolve(p), false));
        }
        Ok(e)
    }

    fn execute(&self, args: &SysDisk, ctx: &Ctx<'_>, _: &mut Recorder<'_>) -> Result<Output> {
        let mounts = parse_mountinfo(&read_file("/proc/self/mountinfo")?);
        let chosen: Vec<&Mount> = match &args.path {
            Some(p) => {
                let abs = ctx.env.resolve(p);
                let real =
                    std::fs::canonicalize(&abs).map_err(|e| ToolError::io("look up", &abs, e))?;
                let m = mount_of(&mounts, &real).ok_or_else(|| {
                    ToolError::Failed(format!("no mounted filesystem holds {}", real.display()))
                })?;
                vec![m]
            }
            None => real_mounts(&mounts),
        };
        let mut rows = Vec::new();
        let mut unreadable = Vec::new();
        let mut stats = Vec::new();
        for m in chosen {
            let s = match space(m) {
                Ok(s) => s,
                Err(e) => {
                    unreadable.push(format!("{} ({e})", m.mount_point.display()));
                    continue;
                }
            };
            // Filesystems with no blocks are virtual even when their type is not listed.
            if s.size == 0 && args.path.is_none() {
                continue;
            }
            rows.push(row([
                ("filesystem", json!(m.source)),
                ("mount", json!(m.mount_point)),
                ("type", json!(m.fs_type)),
                ("size", json!(s.size)),
                ("used", json!(s.used)),
                ("free", json!(s.free)),
                ("use_percent", json!(use_percent(&s))),
                (
                    "inode_use_percent",
                    if s.inodes == 0 {
                        Value::Null
                    } else {
                        json!(pct(s.inodes - s.inodes_free.min(s.inodes), s.inodes))
                    },
                ),
            ]));
            stats.push((m, s));
        }
        let mut summary = match stats.as_slice() {
            [] => "no filesystems".to_owned(),
            [(m, s)] => format!(
                "{} ({} on {}): {} of {} used ({}%), {} free",
                m.mount_point.display(),
                m.fs_type,
                m.source,
                human_bytes(s.used),
                human_bytes(s.size),
                use_percent(s),
                human_bytes(s.free)
            ),
            many => {
                let (m, s) = many
                    .iter()
                    .max_by(|a, b| use_percent(&a.1).total_cmp(&use_percent(&b.1)))
                    .copied()
                    .unwrap_or(many[0]);
                format!(
                    "{} filesystems; fullest is {} at {}% ({} free)",
                    many.len(),
                    m.mount_point.display(),
                    use_percent(&s),
                    human_bytes(s.free)
                )
            }
        };
        if !unreadable.is_empty() {
            summary.push_str(&format!("; could not read {}", unreadable.join(", ")));
        }
        Ok(Output::table(Vec::new(), rows).with_summary(summary))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Captured from the development VM (abridged), plus a bind mount and an escaped name.
    const SAMPLE: &str = "22 27 0:21 / /proc rw,relatime - proc proc rw
24 27 0:6 / /dev rw,relatime - devtmpfs devtmpfs rw,size=12332544k,nr_inodes=3083136,mode=755
25 24 0:23 / /dev/shm rw,relatime - tmpfs tmpfs rw,size=24684112k
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard,resv_strict,resuid=65534,resgid=65534
28 27 0:25 / /mnt/sandboxing/model_tools_env/v1/python ro,nosuid,nodev,relatime - tmpfs model_tools_unavailable ro,size=4k,mode=755
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
50 27 254:0 /srv/data /mnt/my\\040data rw,relatime shared:1 master:2 - ext4 /dev/vda rw
51 27 8:17 / /home rw,relatime - xfs /dev/sdb1 rw
";

    #[test]
    fn parses_mountinfo_with_optional_fields_and_escapes() {
        let m = parse_mountinfo(SAMPLE);
        assert_eq!(m.len(), 8);
        assert_eq!(
            m[3],
            Mount {
                dev: "254:0".into(),
                mount_point: "/".into(),
                fs_type: "ext4".into(),
                source: "/dev/vda".into()
            }
        );
        assert_eq!(m[6].mount_point, PathBuf::from("/mnt/my data"));
        assert_eq!(m[6].fs_type, "ext4");
    }

    #[test]
    fn real_mounts_skip_pseudo_and_bind_duplicates() {
        let m = parse_mountinfo(SAMPLE);
        let real: Vec<&str> = real_mounts(&m)
            .iter()
            .map(|m| m.mount_point.to_str().unwrap())
            .collect();
        assert_eq!(real, ["/", "/home"]);
    }

    #[test]
    fn the_mount_holding_a_path() {
        let m = parse_mountinfo(SAMPLE);
        let of = |p: &str| mount_of(&m, Path::new(p)).unwrap().mount_point.clone();
        assert_eq!(of("/home/ann/x"), PathBuf::from("/home"));
        assert_eq!(of("/homework"), PathBuf::from("/"));
        assert_eq!(of("/dev/shm/a"), PathBuf::from("/dev/shm"));
        assert_eq!(of("/"), PathBuf::from("/"));
    }

    #[test]
    fn statvfs_of_root_is_sane() {
        let s = statvfs(Path::new("/")).unwrap();
        assert!(s.size > 0 && s.used <= s.size && s.free <= s.size, "{s:?}");
        let p = use_percent(&s);
        assert!((0.0..=100.0).contains(&p));
    }
}
