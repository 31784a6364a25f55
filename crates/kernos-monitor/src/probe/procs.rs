//! Processes and services: is a process of a name running, is a service's process alive.
//!
//! There is no systemd to ask here (it is not PID 1 on every host Kernos runs on, and its
//! D-Bus API is not available to an unprivileged daemon in a container), so a service is
//! judged by its pidfile or, without one, by a process of its name. This is what the
//! `service` monitor means by "active"; it cannot see a unit that is activating, failed or
//! masked.

use std::path::Path;

use crate::error::ProbeError;
use crate::watch::Reading;

/// The kernel keeps at most this many bytes of a process name in `comm`.
const COMM_LEN: usize = 15;

/// How many live (not zombie) processes are called `name`: their `comm` (which the kernel
/// truncates to 15 bytes) or the file name of their `argv[0]`.
pub fn count_named(proc_root: &Path, name: &str) -> Result<usize, ProbeError> {
    let comm_name = &name.as_bytes()[..name.len().min(COMM_LEN)];
    let dir = std::fs::read_dir(proc_root).map_err(|e| ProbeError::io("read", proc_root, e))?;
    let mut n = 0;
    for entry in dir.flatten() {
        let file_name = entry.file_name();
        if !file_name.as_encoded_bytes().iter().all(u8::is_ascii_digit) {
            continue;
        }
        let p = entry.path();
        // A process can exit while it is being looked at: any read failing means "not it".
        let Ok(stat) = std::fs::read(p.join("stat")) else {
            continue;
        };
        if is_zombie(&stat) {
            continue;
        }
        let comm_matches = std::fs::read(p.join("comm"))
            .is_ok_and(|c| c.strip_suffix(b"\n").unwrap_or(&c) == comm_name);
        if comm_matches || argv0_matches(&p, name) {
            n += 1;
        }
    }
    Ok(n)
}

/// Whether `/proc/<pid>/stat` says the process is a zombie (state `Z`) or dead (`X`).
fn is_zombie(stat: &[u8]) -> bool {
    // The state follows the last ')' (the name in parentheses may itself contain one).
    let Some(close) = stat.iter().rposition(|b| *b == b')') else {
        return false;
    };
    matches!(stat.get(close + 2), Some(b'Z' | b'X'))
}

fn argv0_matches(dir: &Path, name: &str) -> bool {
    let Ok(cmdline) = std::fs::read(dir.join("cmdline")) else {
        return false;
    };
    let argv0 = cmdline.split(|b| *b == 0).next().unwrap_or_default();
    let base = argv0.rsplit(|b| *b == b'/').next().unwrap_or_default();
    base == name.as_bytes()
}

/// Value 1 when no process is called `name`, else 0.
pub fn process(name: &str) -> Result<Reading, ProbeError> {
    let n = count_named(Path::new("/proc"), name)?;
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
    Ok(std::fs::read(proc_root.join(pid.to_string()).join("stat")).is_ok_and(|s| !is_zombie(&s)))
}

/// Value 1 when the service is not active: its pidfile's process is gone or, without a
/// pidfile, no process of its name (`process`, else the unit without `.service`) runs.
pub fn service(
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
            (count_named(proc_root, name)? > 0, format!("process {name}"))
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
    use super::*;

    #[test]
    fn zombies_are_told_apart_even_with_parentheses_in_the_name() {
        assert!(is_zombie(b"42 (a) b) Z 1 2 3"));
        assert!(!is_zombie(b"42 (a) b) S 1 2 3"));
    }

    #[test]
    fn a_child_we_start_is_found_by_name_and_gone_after_it_exits() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        assert!(count_named(Path::new("/proc"), "sleep").unwrap() >= 1);
        let pidfile = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(pidfile.path(), format!("{}\n", child.id())).unwrap();
        assert!(pidfile_alive(Path::new("/proc"), pidfile.path()).unwrap());
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(!pidfile_alive(Path::new("/proc"), pidfile.path()).unwrap());
        let r = service("web.service", Some(pidfile.path()), None).unwrap();
        assert_eq!(r.value, 1.0);
    }

    #[test]
    fn a_name_nothing_runs_under_reads_down() {
        let r = process("kernos-no-such-process").unwrap();
        assert_eq!(r.value, 1.0);
        assert_eq!(r.vars["count"], "0");
        let r = service("kernos-no-such.service", None, None).unwrap();
        assert_eq!(r.value, 1.0);
    }
}
