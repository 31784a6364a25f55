//! Small, read-only probes of the host: which programs exist, clocks, process start times.
//! Used to pick a backend (systemd or init scripts, apt or dnf or pacman) and to turn the
//! times system tools report into Unix seconds.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// Where programs are looked for when `PATH` does not have them (a daemon may run with a
/// minimal `PATH`; the system's managers live in the sbin directories).
const FALLBACK_DIRS: &[&str] = &[
    "/usr/local/sbin",
    "/usr/local/bin",
    "/usr/sbin",
    "/usr/bin",
    "/sbin",
    "/bin",
];

/// The full path of an executable program named `name`, if one exists.
pub(crate) fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(FALLBACK_DIRS.iter().map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

/// A regular file with an execute bit.
pub(crate) fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Seconds since the Unix epoch, now.
pub(crate) fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// `CLOCK_MONOTONIC` now, microseconds (the clock systemd's `*Monotonic` timestamps use).
pub(crate) fn monotonic_us() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux.
    let r = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    if r != 0 {
        return 0;
    }
    (ts.tv_sec as u64) * 1_000_000 + (ts.tv_nsec as u64) / 1_000
}

/// A monotonic timestamp (µs) as Unix seconds; `None` for 0 (systemd's "never").
pub(crate) fn monotonic_to_unix(us: u64) -> Option<i64> {
    if us == 0 {
        return None;
    }
    let now_mono = monotonic_us();
    if us > now_mono {
        return None;
    }
    Some(now_unix() - ((now_mono - us) / 1_000_000) as i64)
}

/// Whether a process exists and is not a zombie.
pub(crate) fn pid_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => {
            stat_fields(&s).is_some_and(|f| f.first().is_some_and(|st| *st != "Z" && *st != "X"))
        }
        Err(_) => false,
    }
}

/// Live processes whose executable is `exe` (as `pidof` finds a daemon: by `/proc/PID/exe`,
/// which reads " (deleted)" after the file was replaced by an upgrade). Processes whose
/// executable we may not read (another user's, when not root) are not counted.
pub(crate) fn pids_running(exe: &Path) -> Vec<u32> {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|l| {
                let l = l.to_string_lossy();
                Path::new(l.strip_suffix(" (deleted)").unwrap_or(&l)) == exe
            })
        })
        .filter(|pid| pid_alive(*pid))
        .collect()
}

/// The fields of `/proc/PID/stat` after the command name (which may contain spaces and
/// parentheses, hence the split at the last `)`): index 0 is the state.
fn stat_fields(s: &str) -> Option<Vec<&str>> {
    let (_, rest) = s.rsplit_once(')')?;
    Some(rest.split_whitespace().collect())
}

/// When a process started, Unix seconds.
pub(crate) fn process_start(pid: u32) -> Option<i64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Field 22 of stat (1-based) is the start time in clock ticks after boot; the fields after
    // the name start at field 3.
    let ticks: u64 = stat_fields(&stat)?.get(22 - 3)?.parse().ok()?;
    let btime: i64 = std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let hz = if hz > 0 { hz as u64 } else { 100 };
    Some(btime + (ticks / hz) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_sh_and_not_nonsense() {
        assert!(which("sh").is_some());
        assert!(which("kernos-no-such-program-xyz").is_none());
    }

    #[test]
    fn this_process_is_alive_and_started_recently() {
        let me = std::process::id();
        assert!(pid_alive(me));
        let start = process_start(me).unwrap();
        let now = now_unix();
        assert!(
            start <= now + 1 && start > now - 24 * 3600,
            "{start} vs {now}"
        );
    }

    #[test]
    fn processes_are_found_by_executable() {
        let me = std::process::id();
        let exe = std::fs::read_link("/proc/self/exe").unwrap();
        assert!(pids_running(&exe).contains(&me));
        assert!(pids_running(Path::new("/nonexistent/kernos-daemon")).is_empty());
    }

    #[test]
    fn monotonic_round_trip() {
        let now = monotonic_us();
        let t = monotonic_to_unix(now - 5_000_000).unwrap();
        assert!((now_unix() - 5 - t).abs() <= 1);
        assert_eq!(monotonic_to_unix(0), None);
    }

    #[test]
    fn stat_with_odd_names() {
        let f = stat_fields("42 (a) b (c)) S 1 2 3").unwrap();
        assert_eq!(f[0], "S");
    }
}
