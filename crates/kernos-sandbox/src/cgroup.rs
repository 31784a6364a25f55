//! Per-step cgroups: memory, process count and CPU bandwidth for the whole process tree.
//!
//! Preference order, found out at run time rather than assumed:
//! 1. cgroup v2 where our own cgroup delegates the controllers to children (its
//!    `cgroup.subtree_control` lists them and we may create a child) — e.g. kernos running as a
//!    systemd service with `Delegate=yes`.
//! 2. cgroup v1 hierarchies we may create a child in (root on a v1/hybrid host, as on the
//!    development machine, whose v2 mount carries only `hugetlb`).
//! 3. Nothing: rlimits only. The helper then reports what could not be enforced.
//!
//! A step cgroup is always created *below the cgroup we already run in*, so it stays inside
//! whatever limits our supervisor set for us, and is removed when the step ends.

use std::fs;
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Which cgroup interface is used for a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CgroupVersion {
    /// The unified hierarchy.
    V2,
    /// Legacy per-controller hierarchies.
    V1,
}

/// Where step cgroups can be created, per controller.
#[derive(Debug, Clone, Default)]
pub(crate) struct CgroupSetup {
    /// v2: the directory of our own cgroup (children are created in it) and its delegated
    /// controllers.
    pub v2: Option<(PathBuf, Vec<String>)>,
    /// v1: controller name → directory of our cgroup in that controller's hierarchy.
    pub v1: Vec<(String, PathBuf)>,
}

const WANTED: [&str; 4] = ["memory", "pids", "cpu", "cpuacct"];

impl CgroupSetup {
    /// Reads `/proc/self/mountinfo` and `/proc/self/cgroup`. Cheap; does not create anything.
    pub(crate) fn detect() -> CgroupSetup {
        let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let ours = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        let mut setup = CgroupSetup::default();
        for line in mounts.lines() {
            // mountinfo: id parent maj:min root mountpoint opts [optional...] - fstype source superopts
            let Some((left, right)) = line.split_once(" - ") else {
                continue;
            };
            let lf: Vec<&str> = left.split(' ').collect();
            let rf: Vec<&str> = right.split(' ').collect();
            if lf.len() < 5 || rf.len() < 3 {
                continue;
            }
            let (root, mountpoint) = (lf[3], unescape(lf[4]));
            match rf[0] {
                "cgroup2" => {
                    let Some(rel) = ours.lines().find_map(|l| l.strip_prefix("0::")) else {
                        continue;
                    };
                    let Some(dir) = cgroup_dir(&mountpoint, root, rel) else {
                        continue;
                    };
                    let subtree =
                        fs::read_to_string(dir.join("cgroup.subtree_control")).unwrap_or_default();
                    let ctrls: Vec<String> = subtree
                        .split_whitespace()
                        .filter(|c| ["memory", "pids", "cpu"].contains(c))
                        .map(str::to_owned)
                        .collect();
                    if !ctrls.is_empty() && writable_dir(&dir) {
                        setup.v2 = Some((dir, ctrls));
                    }
                }
                "cgroup" => {
                    let opts: Vec<&str> = rf[2].split(',').collect();
                    for ctrl in WANTED {
                        if !opts.contains(&ctrl) || setup.v1.iter().any(|(c, _)| c == ctrl) {
                            continue;
                        }
                        // /proc/self/cgroup v1 line: "N:ctrl1,ctrl2:/path".
                        let rel = ours.lines().find_map(|l| {
                            let mut it = l.splitn(3, ':');
                            let (_, names, path) = (it.next()?, it.next()?, it.next()?);
                            names.split(',').any(|n| n == ctrl).then_some(path)
                        });
                        if let Some(dir) = rel.and_then(|r| cgroup_dir(&mountpoint, root, r)) {
                            if writable_dir(&dir) {
                                setup.v1.push((ctrl.to_owned(), dir));
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        setup
    }

    /// Which interface would be used, and with which controllers.
    pub(crate) fn summary(&self) -> Option<(CgroupVersion, Vec<String>)> {
        if let Some((_, c)) = &self.v2 {
            return Some((CgroupVersion::V2, c.clone()));
        }
        if self.v1.is_empty() {
            return None;
        }
        Some((
            CgroupVersion::V1,
            self.v1.iter().map(|(c, _)| c.clone()).collect(),
        ))
    }

    /// Whether a process-count limit can be enforced by a cgroup.
    pub(crate) fn has(&self, ctrl: &str) -> bool {
        match &self.v2 {
            Some((_, c)) => c
                .iter()
                .any(|x| x == ctrl || (ctrl == "cpuacct" && x == "cpu")),
            None => self.v1.iter().any(|(c, _)| c == ctrl),
        }
    }
}

/// `mountpoint` + (our cgroup path relative to the mount's root).
fn cgroup_dir(mountpoint: &str, mount_root: &str, ours: &str) -> Option<PathBuf> {
    let rel = if mount_root == "/" {
        ours
    } else {
        ours.strip_prefix(mount_root)?
    };
    let dir = Path::new(mountpoint).join(rel.trim_start_matches('/'));
    dir.is_dir().then_some(dir)
}

fn writable_dir(dir: &Path) -> bool {
    let Ok(c) = crate::sys::cpath(dir) else {
        return false;
    };
    // SAFETY: valid C string; access has no other side effects.
    unsafe { libc::access(c.as_ptr(), libc::W_OK) == 0 }
}

/// mountinfo escapes spaces etc. as octal (`\040`).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() {
            let oct = &s[i + 1..i + 4];
            if let Ok(v) = u8::from_str_radix(oct, 8) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Limits to put on a step cgroup.
#[derive(Debug, Clone, Default)]
pub(crate) struct CgroupLimits {
    pub memory_bytes: Option<u64>,
    pub max_pids: Option<u64>,
    /// CPU bandwidth as a number of CPUs (cpu.max quota / period).
    pub cpus: Option<u64>,
}

/// A created step cgroup (one directory per v1 controller, or one v2 directory).
#[derive(Debug, Default)]
pub(crate) struct StepCgroup {
    pub version: Option<CgroupVersion>,
    /// (controller or "" for v2, directory)
    pub dirs: Vec<(String, PathBuf)>,
}

/// What a step cgroup saw, read before it is removed.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct CgroupEvents {
    pub oom_kills: u64,
    pub memory_limit_hits: u64,
    pub pids_limit_hits: u64,
}

const PERIOD_US: u64 = 100_000;

impl StepCgroup {
    /// Creates the step cgroup named `name` with `limits`. Only the controllers needed for the
    /// given limits are created, because each v1 directory costs a mkdir/rmdir per step.
    pub(crate) fn create(
        setup: &CgroupSetup,
        name: &str,
        limits: &CgroupLimits,
        want_cpu_accounting: bool,
    ) -> io::Result<StepCgroup> {
        let mut cg = StepCgroup::default();
        let result = cg.create_inner(setup, name, limits, want_cpu_accounting);
        match result {
            Ok(()) => Ok(cg),
            Err(e) => {
                cg.remove();
                Err(e)
            }
        }
    }

    fn create_inner(
        &mut self,
        setup: &CgroupSetup,
        name: &str,
        limits: &CgroupLimits,
        want_cpu_accounting: bool,
    ) -> io::Result<()> {
        if let Some((parent, ctrls)) = &setup.v2 {
            let dir = parent.join(name);
            create_fresh(&dir)?;
            self.version = Some(CgroupVersion::V2);
            self.dirs.push((String::new(), dir.clone()));
            let has = |c: &str| ctrls.iter().any(|x| x == c);
            if let (Some(m), true) = (limits.memory_bytes, has("memory")) {
                fs::write(dir.join("memory.max"), m.to_string())?;
                // Swap would let a step exceed its memory limit silently.
                let _ = fs::write(dir.join("memory.swap.max"), "0");
            }
            if let (Some(p), true) = (limits.max_pids, has("pids")) {
                fs::write(dir.join("pids.max"), p.to_string())?;
            }
            if let (Some(c), true) = (limits.cpus, has("cpu")) {
                fs::write(
                    dir.join("cpu.max"),
                    format!("{} {PERIOD_US}", c * PERIOD_US),
                )?;
            }
            return Ok(());
        }
        self.version = Some(CgroupVersion::V1);
        for (ctrl, parent) in &setup.v1 {
            let needed = match ctrl.as_str() {
                "memory" => limits.memory_bytes.is_some(),
                "pids" => limits.max_pids.is_some(),
                "cpu" => limits.cpus.is_some(),
                "cpuacct" => want_cpu_accounting,
                _ => false,
            };
            if !needed {
                continue;
            }
            let dir = parent.join(name);
            create_fresh(&dir)?;
            self.dirs.push((ctrl.clone(), dir.clone()));
            match ctrl.as_str() {
                "memory" => {
                    if let Some(m) = limits.memory_bytes {
                        fs::write(dir.join("memory.limit_in_bytes"), m.to_string())?;
                        let _ = fs::write(dir.join("memory.memsw.limit_in_bytes"), m.to_string());
                    }
                }
                "pids" => {
                    if let Some(p) = limits.max_pids {
                        fs::write(dir.join("pids.max"), p.to_string())?;
                    }
                }
                "cpu" => {
                    if let Some(c) = limits.cpus {
                        fs::write(dir.join("cpu.cfs_period_us"), PERIOD_US.to_string())?;
                        fs::write(dir.join("cpu.cfs_quota_us"), (c * PERIOD_US).to_string())?;
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// v1 only: descriptors on each step directory's `tasks` file and on its parent's, for the
    /// namespace init to join (and later leave) by writing "0" itself. Moving *only the calling
    /// thread* is the one migration that skips the global threadgroup lock, whose write side
    /// waits for an RCU grace period: writing another process's pid into `cgroup.procs` costs
    /// 5–20 ms per step on the development machine, this costs microseconds.
    pub(crate) fn self_move_fds(&self) -> io::Result<Option<(Vec<OwnedFd>, Vec<OwnedFd>)>> {
        if self.version != Some(CgroupVersion::V1) {
            return Ok(None);
        }
        let open = |p: PathBuf| -> io::Result<OwnedFd> {
            let f = fs::OpenOptions::new().write(true).open(p)?;
            Ok(OwnedFd::from(f))
        };
        let mut join = Vec::new();
        let mut leave = Vec::new();
        for (_, dir) in &self.dirs {
            join.push(open(dir.join("tasks"))?);
            if let Some(parent) = dir.parent() {
                leave.push(open(parent.join("tasks"))?);
            }
        }
        Ok(Some((join, leave)))
    }

    /// Moves process `pid` (and so everything it will fork) into the step cgroup.
    pub(crate) fn attach(&self, pid: libc::pid_t) -> io::Result<()> {
        for (_, dir) in &self.dirs {
            fs::write(dir.join("cgroup.procs"), pid.to_string())?;
        }
        Ok(())
    }

    /// Total CPU time of the tree so far, microseconds, if accounted.
    pub(crate) fn cpu_usage_us(&self) -> Option<u64> {
        for (ctrl, dir) in &self.dirs {
            match (self.version, ctrl.as_str()) {
                (Some(CgroupVersion::V2), _) => {
                    let s = fs::read_to_string(dir.join("cpu.stat")).ok()?;
                    return keyed(&s, "usage_usec");
                }
                (Some(CgroupVersion::V1), "cpuacct") => {
                    let s = fs::read_to_string(dir.join("cpuacct.usage")).ok()?;
                    return s.trim().parse::<u64>().ok().map(|ns| ns / 1000);
                }
                _ => {}
            }
        }
        None
    }

    /// Limit events seen so far.
    pub(crate) fn events(&self) -> CgroupEvents {
        let mut ev = CgroupEvents::default();
        for (ctrl, dir) in &self.dirs {
            let read = |f: &str| fs::read_to_string(dir.join(f)).unwrap_or_default();
            match (self.version, ctrl.as_str()) {
                (Some(CgroupVersion::V2), _) => {
                    let m = read("memory.events");
                    ev.oom_kills = keyed(&m, "oom_kill").unwrap_or(0);
                    ev.memory_limit_hits = keyed(&m, "max").unwrap_or(0);
                    ev.pids_limit_hits = keyed(&read("pids.events"), "max").unwrap_or(0);
                }
                (Some(CgroupVersion::V1), "memory") => {
                    ev.oom_kills = keyed(&read("memory.oom_control"), "oom_kill").unwrap_or(0);
                    ev.memory_limit_hits = read("memory.failcnt").trim().parse().unwrap_or(0);
                }
                (Some(CgroupVersion::V1), "pids") => {
                    ev.pids_limit_hits = keyed(&read("pids.events"), "max").unwrap_or(0);
                }
                _ => {}
            }
        }
        ev
    }

    /// Removes the directories. All processes must be gone; a cgroup that is still busy for a
    /// moment after its last process was reaped is retried briefly.
    pub(crate) fn remove(&mut self) {
        for (_, dir) in self.dirs.drain(..) {
            for attempt in 0..50 {
                match fs::remove_dir(&dir) {
                    Ok(()) => break,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => break,
                    Err(_) if attempt < 49 => {
                        std::thread::sleep(std::time::Duration::from_millis(2));
                    }
                    Err(_) => {}
                }
            }
        }
    }
}

/// Creates a step cgroup directory. Its name carries the helper's pid, so one that exists
/// already was left behind by an earlier helper with the same pid (pids are reused), which is
/// dead: remove it (the kernel refuses unless it is empty) and create ours.
fn create_fresh(dir: &Path) -> io::Result<()> {
    match fs::create_dir(dir) {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            fs::remove_dir(dir)?;
            fs::create_dir(dir)
        }
        other => other,
    }
}

/// Removes step cgroup directories given by path (the library's clean-up when the helper died).
pub(crate) fn remove_dirs(dirs: &[PathBuf]) {
    for d in dirs {
        let _ = fs::remove_dir(d);
    }
}

/// `key value` lines (cgroup stat and event files).
fn keyed(s: &str, key: &str) -> Option<u64> {
    s.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stale_empty_directory_of_the_same_name_is_replaced() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("kernos-sbx-42");
        create_fresh(&dir).unwrap();
        // Left behind by a dead helper that had the same pid.
        create_fresh(&dir).unwrap();
        assert!(dir.is_dir());
        // One that is not empty (in a cgroup: still has processes) is not ours to take.
        std::fs::write(dir.join("x"), "").unwrap();
        assert!(create_fresh(&dir).is_err());
    }

    #[test]
    fn parses_keyed_files() {
        let s = "low 0\nhigh 0\nmax 3\noom 1\noom_kill 2\n";
        assert_eq!(keyed(s, "max"), Some(3));
        assert_eq!(keyed(s, "oom_kill"), Some(2));
        assert_eq!(keyed(s, "nope"), None);
    }

    #[test]
    fn unescapes_mountinfo() {
        assert_eq!(unescape("/a\\040b"), "/a b");
        assert_eq!(unescape("/plain"), "/plain");
    }

    #[test]
    fn detect_does_not_panic() {
        let s = CgroupSetup::detect();
        let _ = s.summary();
    }
}
