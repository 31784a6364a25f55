//! Kernos OS (the daemon as the one service of a machine whose PID 1 is `kernos-init`): what
//! the daemon does only there. At start it journals the boot record init left (one writer:
//! init never opens the journal) and the owner key provisioned into the image; the reboot and
//! power-off endpoints act only there, and refuse on any other host.

use std::path::{Path, PathBuf};

use kernos_core::{Actor, NewEvent};
use serde_json::{Value, json};

use crate::State;
use crate::auth::KEY_CREATED;

/// Kind of the event recording one boot's phases and timings.
pub const SYSTEM_BOOTED: &str = "system.booted";

/// Kind of the event recording a boot kernos-init gave up on (its error and phases), journaled
/// at the next boot from the record init left in the data directory.
pub const SYSTEM_FATAL: &str = "system.fatal";

/// The file kernos-init leaves a fatal boot error in (in the data directory).
const FATAL_RECORD: &str = "init-fatal.json";

/// The run directory of the kernos-init this daemon runs under, or `None` on any other host.
/// Three things must agree, so an ordinary host never qualifies by accident: init set
/// `KERNOS_INIT_DIR`, our parent is PID 1, and PID 1 calls itself `kernos-init`.
pub fn init_dir() -> Option<PathBuf> {
    // SAFETY: getppid has no preconditions and cannot fail.
    let ppid = unsafe { libc::getppid() };
    gate(
        std::env::var("KERNOS_INIT_DIR").ok().as_deref(),
        ppid,
        &std::fs::read_to_string("/proc/1/comm").unwrap_or_default(),
    )
}

fn gate(env: Option<&str>, ppid: i32, pid1_comm: &str) -> Option<PathBuf> {
    let dir = env.filter(|d| !d.is_empty() && d.starts_with('/'))?;
    (ppid == 1 && pid1_comm.trim() == "kernos-init").then(|| PathBuf::from(dir))
}

/// At start, under kernos-init: journal this boot (once per boot, however often the daemon
/// restarts) and the provisioned owner key (once ever). Problems are logged, not fatal: a
/// machine that cannot record its boot must still answer its API.
pub(crate) fn on_start(st: &State) {
    let Some(dir) = init_dir() else {
        return;
    };
    journal_fatal(st);
    if let Err(e) = journal_boot(st, &dir) {
        tracing::warn!("cannot journal the boot record: {e}");
    }
    if let Some(p) = std::env::var_os("KERNOS_PROVISION_KEY") {
        if let Err(e) = provision_key(st, Path::new(&p)) {
            tracing::warn!("cannot journal the provisioned owner key: {e}");
        }
    }
}

/// Why a record init left could not be journaled (logged; the daemon starts regardless).
#[derive(Debug, thiserror::Error)]
enum RecordError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} is not the JSON expected ({reason}); rebuild the image", path.display())]
    Invalid { path: PathBuf, reason: String },
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the journal refused it: {0}")]
    Journal(#[from] kernos_journal::JournalError),
}

/// Reads and parses a JSON record init (or the image) left.
fn read_record(path: &Path) -> Result<Value, RecordError> {
    let text = std::fs::read_to_string(path).map_err(|source| RecordError::Read {
        path: path.to_owned(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|e| RecordError::Invalid {
        path: path.to_owned(),
        reason: e.to_string(),
    })
}

fn journal_boot(st: &State, dir: &Path) -> Result<(), RecordError> {
    let rec = read_record(&dir.join("boot.json"))?;
    let id = rec["boot_id"].as_str().unwrap_or_default().to_owned();
    let marker = dir.join("boot.journaled");
    if std::fs::read_to_string(&marker).is_ok_and(|m| m == id) {
        return Ok(());
    }
    st.store
        .append_now(NewEvent::new(SYSTEM_BOOTED, Actor::system()).payload(rec))?;
    std::fs::write(&marker, &id).map_err(|source| RecordError::Write {
        path: marker,
        source,
    })
}

/// Journals the fatal error an earlier boot left, then removes its file (kept if the journal
/// refuses it, so the next start tries again).
fn journal_fatal(st: &State) {
    let path = st.data_dir.join(FATAL_RECORD);
    let Ok(text) = std::fs::read_to_string(&path) else {
        return;
    };
    let rec: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| json!({"error": format!("unreadable record ({e}): {text}")}));
    tracing::warn!(
        "an earlier boot failed: {}",
        rec["error"].as_str().unwrap_or("?")
    );
    match st
        .store
        .append_now(NewEvent::new(SYSTEM_FATAL, Actor::system()).payload(rec))
    {
        Ok(_) => {
            if let Err(e) = std::fs::remove_file(&path) {
                tracing::warn!("cannot remove {}: {e}", path.display());
            }
        }
        Err(e) => tracing::warn!("cannot journal {}: {e}", path.display()),
    }
}

fn provision_key(st: &State, path: &Path) -> Result<(), RecordError> {
    let k = read_record(path)?;
    let (Some(id), Some(sha)) = (k["key_id"].as_str(), k["sha256"].as_str()) else {
        return Err(RecordError::Invalid {
            path: path.to_owned(),
            reason: "key_id and sha256 are needed".into(),
        });
    };
    // A poisoned lock only means another thread panicked while holding it: the table is
    // still the one the journal built.
    let known = st
        .keys
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get(id)
        .is_some();
    if known {
        return Ok(());
    }
    let label = k["label"].as_str().unwrap_or("provisioned owner key");
    st.store
        .append_now(
            NewEvent::new(KEY_CREATED, Actor::system())
                .org(kernos_core::LOCAL_ORG)
                .payload(json!({
                    "key_id": id,
                    "sha256": sha,
                    "org": kernos_core::LOCAL_ORG,
                    "role": "owner",
                    "label": label,
                    "actor": Actor::system(),
                    "source": format!("image provisioning ({})", path.display()),
                    "after": {"key_id": id, "org": kernos_core::LOCAL_ORG, "role": "owner", "label": label, "revoked": false},
                })),
        )?;
    Ok(())
}

/// Zombie processes on the machine right now (`Z` in /proc/<pid>/stat): under kernos-init,
/// orphans that ended and were not reaped.
pub fn zombies() -> Vec<i32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        // `pid (comm) S ppid …`: the state follows the last ')' (comm may hold anything).
        if stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
        {
            out.push(pid);
        }
    }
    out
}

/// PID 1's resident memory in kB (VmRSS of /proc/1/status).
pub fn pid1_rss_kb() -> Option<u64> {
    std::fs::read_to_string("/proc/1/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_all_three_signs_make_a_kernos_os_machine() {
        assert_eq!(
            gate(Some("/run/kernos-init"), 1, "kernos-init\n"),
            Some(PathBuf::from("/run/kernos-init"))
        );
        // A host whose systemd runs the daemon, even with the variable set by mistake.
        assert_eq!(gate(Some("/run/kernos-init"), 1, "systemd\n"), None);
        assert_eq!(gate(Some("/run/kernos-init"), 4242, "kernos-init\n"), None);
        assert_eq!(gate(None, 1, "kernos-init\n"), None);
        assert_eq!(gate(Some("relative"), 1, "kernos-init\n"), None);
    }

    #[test]
    fn this_test_process_is_not_under_kernos_init() {
        assert_eq!(init_dir(), None);
        // Not a zombie itself, and the scan reads /proc.
        assert!(!zombies().contains(&(std::process::id() as i32)));
    }
}
