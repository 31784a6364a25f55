//! Processes and services: is a process of a name running, is a service's process alive.
//!
//! There is no systemd to ask here (it is not PID 1 on every host Kernos runs on, and its
//! D-Bus API is not available to an unprivileged daemon in a container), so a service is
//! judged by its pidfile or, without one, by a process of its name. This is what the
//! `service` monitor means by "active"; it cannot see a unit that is activating, failed or
//! masked.

use std::path::Path;
use std::time::Instant;

use super::snapshot::Snapshot;
use crate::error::ProbeError;
use crate::watch::Reading;

/// The kernel keeps at most this many bytes of a process name in `comm`.
const COMM_LEN: usize = 15;

/// One live process: its `comm` and the file name of its `argv[0]`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ProcEntry {
    comm: Vec<u8>,
    argv0: Vec<u8>,
}

/// A snapshot of the live (not zombie) processes, read once and shared by every process
/// and service monitor due at about the same time: one walk of `/proc` instead of one each.
#[derive(Debug, Clone, Default)]
pub struct ProcTable {
    procs: Vec<ProcEntry>,
}

impl ProcTable {
    /// Reads the processes under `proc_root` (two small reads each: `stat`, `cmdline`).
    pub fn read(proc_root: &Path) -> Result<ProcTable, ProbeError> {
        let dir = std::fs::read_dir(proc_root).map_err(|e| ProbeError::io("read", proc_root, e))?;
        let mut procs = Vec::new();
        for entry in dir.flatten() {
            let file_name = entry.file_name();
            if !file_name.as_encoded_bytes().iter().all(u8::is_ascii_digit) {
                continue;
            }
            let p = entry.path();
            // A process can exit while it is being looked at: a failed read means it is gone.
            let Ok(stat) = std::fs::read(p.join("stat")) else {
                continue;
            };
            let Some((comm, zombie)) = parse_stat(&stat) else {
                continue;
            };
            if zombie {
                continue;
            }
            let cmdline = std::fs::read(p.join("cmdline")).unwrap_or_default();
            let argv0 = cmdline.split(|b| *b == 0).next().unwrap_or_default();
            let base = argv0.rsplit(|b| *b == b'/').next().unwrap_or_default();
            procs.push(ProcEntry {
                comm: comm.to_vec(),
                argv0: base.to_vec(),
            });
        }
        Ok(ProcTable { procs })
    }

    /// How many processes are called `name`: their `comm` (which the kernel truncates to 15
    /// bytes) or the file name of their `argv[0]`.
    pub fn count(&self, name: &str) -> usize {
        let comm_name = &name.as_bytes()[..name.len().min(COMM_LEN)];
        self.procs
            .iter()
            .filter(|p| p.comm == comm_name || p.argv0 == name.as_bytes())
            .count()
    }
}

/// The name and whether the process is a zombie (`Z`) or dead (`X`), from `/proc/<pid>/stat`.
fn parse_stat(stat: &[u8]) -> Option<(&[u8], bool)> {
    // `pid (comm) S …`: the name may itself contain ')' so the state follows the last one.
    let open = stat.iter().position(|b| *b == b'(')?;
    let close = stat.iter().rposition(|b| *b == b')')?;
    let comm = stat.get(open + 1..close)?;
    Some((comm, matches!(stat.get(close + 2), Some(b'Z' | b'X'))))
}

/// Value 1 when no process in `table` is called `name`, else 0.
pub fn process(table: &ProcTable, name: &str) -> Result<Reading, ProbeError> {
    let n = table.count(name);
    let detail = match n {
        0 => format!("no process named {name} is running"),
        1 => format!("{name} is running"),
        n => format!("{n} processes named {name} are running"),
    };
    Ok(Reading::new(if n == 0 { 1.0 } else { 0.0 }, detail)
        .var("process", name)
        .var("count", n))
}

/// Whether the process a pidfile names is alive.
pub fn pidfile_alive(proc_root: &Path, pidfile: &Path) -> Result<bool, ProbeError> {
    let text = match std::fs::read_to_string(pidfile) {
        Ok(t) => t,
        // No pidfile: the service is not running (daemons remove it when they stop).
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(ProbeError::io("read", pidfile, e)),
    };
    let Ok(pid) = text.trim().parse::<u32>() else {
        return Err(ProbeError::format(
            pidfile.display().to_string(),
            format!("{:?} is not a process id", text.trim()),
        ));
    };
    let stat = std::fs::read(proc_root.join(pid.to_string()).join("stat"));
    Ok(stat.is_ok_and(|s| parse_stat(&s).is_some_and(|(_, zombie)| !zombie)))
}

/// Value 1 when the service is not active: its pidfile's process is gone or, without a
/// pidfile, no process of its name (`process`, else the unit without `.service`) runs.
pub fn service(
    procs: &mut Snapshot<ProcTable>,
    now: Instant,
    unit: &str,
    pidfile: Option<&Path>,
    process_name: Option<&str>,
) -> Result<Reading, ProbeError> {
    let proc_root = Path::new("/proc");
    let (up, how) = match pidfile {
        Some(pf) => (
            pidfile_alive(proc_root, pf)?,
            format!("pidfile {}", pf.display()),
        ),
        None => {
            let name = process_name.unwrap_or_else(|| unit.trim_end_matches(".service"));
            let table = procs.get(now, || ProcTable::read(proc_root))?;
            (table.count(name) > 0, format!("process {name}"))
        }
    };
    let detail = if up {
        format!("{unit} is active ({how})")
    } else {
        format!("{unit} is not active ({how})")
    };
    Ok(Reading::new(if up { 0.0 } else { 1.0 }, detail)
        .var("unit", unit)
        .var("how", how))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn zombies_are_told_apart_even_with_parentheses_in_the_name() {
        assert_eq!(parse_stat(b"42 (a) b) Z 1 2 3"), Some((&b"a) b"[..], true)));
        assert_eq!(
            parse_stat(b"42 (a) b) S 1 2 3"),
            Some((&b"a) b"[..], false))
        );
    }

    #[test]
    fn a_child_we_start_is_found_by_name_and_gone_after_it_exits() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        assert!(ProcTable::read(Path::new("/proc")).unwrap().count("sleep") >= 1);
        let pidfile = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(pidfile.path(), format!("{}\n", child.id())).unwrap();
        assert!(pidfile_alive(Path::new("/proc"), pidfile.path()).unwrap());
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(!pidfile_alive(Path::new("/proc"), pidfile.path()).unwrap());
        let mut cache = Snapshot::new(Duration::ZERO);
        let r = service(
            &mut cache,
            Instant::now(),
            "web.service",
            Some(pidfile.path()),
            None,
        )
        .unwrap();
        assert_eq!(r.value, 1.0);
    }

    #[test]
    fn a_name_nothing_runs_under_reads_down() {
        let mut cache = Snapshot::new(Duration::from_secs(1));
        let now = Instant::now();
        let table = ProcTable::read(Path::new("/proc")).unwrap();
        let r = process(&table, "kernos-no-such-process").unwrap();
        assert_eq!(r.value, 1.0);
        assert_eq!(r.vars["count"], "0");
        let r = service(&mut cache, now, "kernos-no-such.service", None, None).unwrap();
        assert_eq!(r.value, 1.0);
    }
}
