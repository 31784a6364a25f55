//! Reading processes from /proc: identity, owner, memory, CPU time, and which sockets they hold.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

/// Fields of /proc/<pid>/stat that the tools use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stat {
    pub pid: u32,
    pub comm: String,
    pub state: char,
    pub ppid: u32,
    pub flags: u64,
    pub utime: u64,
    pub stime: u64,
    pub threads: u64,
    pub starttime: u64,
    pub rss_pages: u64,
}

/// The kernel marks its own threads with PF_KTHREAD.
const PF_KTHREAD: u64 = 0x0020_0000;

/// Parses /proc/<pid>/stat. The command name sits in parentheses and may itself contain spaces
/// and parentheses, so the fields are split after the *last* `)`.
pub(crate) fn parse_stat(s: &str) -> Option<Stat> {
    let open = s.find('(')?;
    let close = s.rfind(')')?;
    let pid = s[..open].trim().parse().ok()?;
    let comm = s.get(open + 1..close)?.to_owned();
    let f: Vec<&str> = s.get(close + 1..)?.split_whitespace().collect();
    let n = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok());
    Some(Stat {
        pid,
        comm,
        state: f.first()?.chars().next()?,
        ppid: n(1)? as u32,
        flags: n(6)?,
        utime: n(11)?,
        stime: n(12)?,
        threads: n(17)?,
        starttime: n(19)?,
        // rss is signed in the kernel's format string; a negative value is not a size.
        rss_pages: f
            .get(21)
            .and_then(|v| v.parse::<i64>().ok())
            .unwrap_or(0)
            .max(0) as u64,
    })
}

/// The effective user id from /proc/<pid>/status (`Uid: real effective saved fs`).
pub(crate) fn parse_status_uid(s: &str) -> Option<u32> {
    let line = s.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

/// What a process state letter means.
pub(crate) fn state_name(c: char) -> &'static str {
    match c {
        'R' => "running",
        'S' => "sleeping",
        'D' => "disk_wait",
        'Z' => "zombie",
        'T' => "stopped",
        't' => "traced",
        'X' | 'x' => "dead",
        'I' => "idle",
        'P' => "parked",
        'W' => "waking",
        'K' => "wakekill",
        _ => "unknown",
    }
}

/// Clock ticks per second (USER_HZ) for the times in /proc/<pid>/stat.
pub(crate) fn clk_tck() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let v = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if v > 0 { v as u64 } else { 100 }
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let v = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if v > 0 { v as u64 } else { 4096 }
}

/// Boot time, seconds since the epoch (`btime` of /proc/stat).
pub(crate) fn boot_time() -> i64 {
    std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("btime ")?.trim().parse().ok())
        })
        .unwrap_or(0)
}

/// One process, as the tools show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Proc {
    pub pid: u32,
    pub ppid: u32,
    /// The kernel's command name (at most 15 bytes).
    pub comm: String,
    /// The full name: `comm`, or the program's file name when `comm` is a cut-off prefix of it.
    pub name: String,
    pub state: char,
    pub uid: u32,
    pub cmdline: Vec<String>,
    pub rss: u64,
    pub threads: u64,
    /// Start time, ticks after boot (identifies the process together with its pid).
    pub starttime: u64,
    /// CPU time used so far, ticks.
    pub ticks: u64,
    pub kernel_thread: bool,
}

impl Proc {
    /// The command line as one string; `[comm]` for kernel threads, as `ps` shows them.
    pub(crate) fn command(&self) -> String {
        if self.cmdline.is_empty() {
            format!("[{}]", self.comm)
        } else {
            self.cmdline.join(" ")
        }
    }

    /// Start time, seconds since the epoch.
    pub(crate) fn started(&self, boot: i64, hz: u64) -> i64 {
        boot + (self.starttime / hz.max(1)) as i64
    }

    /// Whether `name` names this process exactly (as `killall` matches: the command name, or
    /// the program's file name).
    pub(crate) fn is_named(&self, name: &str) -> bool {
        self.comm == name
            || self.name == name
            || self
                .cmdline
                .first()
                .and_then(|a| Path::new(a).file_name())
                .is_some_and(|f| f.to_string_lossy() == name)
    }
}

/// The full name of a process: the kernel cuts `comm` to 15 bytes, so when it is a prefix of
/// the program's file name, that file name is the real one.
fn full_name(comm: &str, cmdline: &[String]) -> String {
    if comm.len() >= 15 {
        if let Some(base) = cmdline
            .first()
            .and_then(|a| Path::new(a.split(' ').next().unwrap_or(a)).file_name())
        {
            let base = base.to_string_lossy();
            if base.starts_with(comm) {
                return base.into_owned();
            }
        }
    }
    comm.to_owned()
}

fn parse_cmdline(b: &[u8]) -> Vec<String> {
    b.split(|c| *c == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

/// Reads one process; `None` when it is gone (or vanishes while being read).
pub(crate) fn read(pid: u32) -> Option<Proc> {
    let dir = format!("/proc/{pid}");
    let stat = parse_stat(&std::fs::read_to_string(format!("{dir}/stat")).ok()?)?;
    let uid = std::fs::read_to_string(format!("{dir}/status"))
        .ok()
        .and_then(|s| parse_status_uid(&s))?;
    let cmdline = parse_cmdline(&std::fs::read(format!("{dir}/cmdline")).unwrap_or_default());
    let kernel_thread = stat.flags & PF_KTHREAD != 0;
    Some(Proc {
        pid,
        ppid: stat.ppid,
        name: full_name(&stat.comm, &cmdline),
        comm: stat.comm,
        state: stat.state,
        uid,
        cmdline,
        rss: stat.rss_pages * page_size(),
        threads: stat.threads,
        starttime: stat.starttime,
        ticks: stat.utime + stat.stime,
        kernel_thread,
    })
}

/// Every process id in /proc.
pub(crate) fn pids() -> Vec<u32> {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut v: Vec<u32> = rd
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    v.sort_unstable();
    v
}

/// Every process.
pub(crate) fn all() -> Vec<Proc> {
    pids().into_iter().filter_map(read).collect()
}

/// Processes with their CPU use over `interval`, in percent of one core (like `top`).
///
/// Two readings of each process's CPU time are needed; `keep` filters before the wait so the
/// interval costs only as many reads as there are matching processes.
pub(crate) fn sample(interval: Duration, keep: impl Fn(&Proc) -> bool) -> Vec<(Proc, f64)> {
    let first: HashMap<u32, (u64, u64)> = all()
        .into_iter()
        .filter(|p| keep(p))
        .map(|p| (p.pid, (p.starttime, p.ticks)))
        .collect();
    let t0 = Instant::now();
    std::thread::sleep(interval);
    let secs = t0.elapsed().as_secs_f64().max(0.001);
    let hz = clk_tck() as f64;
    let mut pids: Vec<u32> = first.keys().copied().collect();
    pids.sort_unstable();
    pids.into_iter()
        .filter_map(|pid| {
            let p = read(pid)?;
            let (start, ticks) = first.get(&pid)?;
            // The same pid with another start time is a new process: no valid first sample.
            let used = if *start == p.starttime {
                p.ticks.saturating_sub(*ticks)
            } else {
                0
            };
            let cpu = ((used as f64 / hz / secs) * 1000.0).round() / 10.0;
            Some((p, cpu))
        })
        .collect()
}

/// The inode of a `socket:[12345]` link target.
pub(crate) fn socket_inode(link: &str) -> Option<u64> {
    link.strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// Which process holds each socket inode, and how many processes' descriptors could not be
/// read (other users' processes, unless running as root).
pub(crate) fn socket_owners() -> (HashMap<u64, u32>, usize) {
    let mut map = HashMap::new();
    let mut hidden = 0;
    for pid in pids() {
        let Ok(rd) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            hidden += 1;
            continue;
        };
        let mut denied = false;
        for e in rd.flatten() {
            match std::fs::read_link(e.path()) {
                Ok(t) => {
                    if let Some(ino) = t.to_str().and_then(socket_inode) {
                        map.entry(ino).or_insert(pid);
                    }
                }
                // Listing may be allowed while reading the links is not (ptrace rules).
                Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => denied = true,
                Err(_) => {}
            }
        }
        hidden += usize::from(denied);
    }
    (map, hidden)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Captured from the development VM: `cat /proc/self/stat`.
    const STAT: &str = "22651 (cat) R 22644 22644 20926 0 -1 4194304 99 0 0 0 0 0 0 0 20 0 1 0 232884 3133440 388 18446744073709551615 94134208425984 94134208445865 140723848959344 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0 94134208461872 94134208463488 94134211080192 140723848964831 140723848964851 140723848964851 140723848966123 0\n";

    #[test]
    fn parses_stat() {
        let s = parse_stat(STAT).unwrap();
        assert_eq!(
            s,
            Stat {
                pid: 22651,
                comm: "cat".into(),
                state: 'R',
                ppid: 22644,
                flags: 4_194_304,
                utime: 0,
                stime: 0,
                threads: 1,
                starttime: 232_884,
                rss_pages: 388,
            }
        );
    }

    #[test]
    fn comm_with_spaces_and_parens() {
        let line = STAT.replace("(cat)", "(a) b (c)");
        let s = parse_stat(&line).unwrap();
        assert_eq!((s.comm.as_str(), s.state, s.ppid), ("a) b (c", 'R', 22644));
        // A kernel thread: PF_KTHREAD set.
        let k = "2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0 0 0 0 0 0 20 0 1 0 3 0 0 18446744073709551615 0 0 0 0 0 0 0 2147483647 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0";
        assert_ne!(parse_stat(k).unwrap().flags & PF_KTHREAD, 0);
    }

    #[test]
    fn status_uid_is_the_effective_one() {
        let s = "Name:\tsudo\nUmask:\t0022\nState:\tS (sleeping)\nUid:\t1000\t0\t0\t0\nGid:\t1000\t1000\t1000\t1000\n";
        assert_eq!(parse_status_uid(s), Some(0));
    }

    #[test]
    fn full_names_survive_the_comm_cut() {
        let cmd = vec!["/opt/x/kernos-test-sleeper-123".to_owned(), "30".into()];
        assert_eq!(
            full_name("kernos-test-sle", &cmd),
            "kernos-test-sleeper-123"
        );
        assert_eq!(full_name("bash", &["/bin/bash".into()]), "bash");
        assert_eq!(
            full_name("abcdefghijklmno", &["/bin/other".into()]),
            "abcdefghijklmno"
        );
        assert_eq!(parse_cmdline(b"sleep\x0030\x00"), ["sleep", "30"]);
    }

    #[test]
    fn reads_this_process() {
        let me = read(std::process::id()).unwrap();
        assert_eq!(me.pid, std::process::id());
        // SAFETY: geteuid has no preconditions.
        assert_eq!(me.uid, unsafe { libc::geteuid() });
        assert!(me.rss > 0 && !me.cmdline.is_empty() && !me.kernel_thread);
        assert_eq!(socket_inode("socket:[637]"), Some(637));
        assert_eq!(socket_inode("pipe:[637]"), None);
    }
}
