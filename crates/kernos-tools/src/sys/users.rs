//! `sys.users`: who is logged in, on which terminal, from where, in which session.
//!
//! Login records come from utmp, read directly with the C library's own record layout (so the
//! file can be read without touching libc's global utmp state), joined with systemd-logind's
//! session files when logind runs. Entries whose login process has died are stale and dropped.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use kernos_core::{ColumnKind, Effect, EffectKind, Reversibility};
use serde_json::{Value, json};

use super::system_read;
use super::time::{format_local, now};
use crate::args::NoArgs;
use crate::output::{Output, row};
use crate::registry::{Action, Meta};
use crate::undo::Recorder;
use crate::{Ctx, Result, ToolError};

/// Where glibc keeps utmp (`_PATH_UTMP`).
pub(crate) const UTMP: &str = "/var/run/utmp";
/// Where systemd-logind describes its sessions.
const LOGIND_SESSIONS: &str = "/run/systemd/sessions";

/// One logged-in session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Session {
    pub user: String,
    pub tty: String,
    pub host: String,
    pub login: i64,
    pub pid: u32,
    pub session: String,
}

fn c_str(chars: &[libc::c_char]) -> String {
    let bytes: Vec<u8> = chars
        .iter()
        .map(|c| *c as u8)
        .take_while(|b| *b != 0)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The `USER_PROCESS` records of a utmp file.
pub(crate) fn parse_utmp(bytes: &[u8]) -> Vec<Session> {
    let size = std::mem::size_of::<libc::utmpx>();
    bytes
        .chunks_exact(size)
        .filter_map(|chunk| {
            // SAFETY: `chunk` holds exactly size_of::<utmpx>() bytes; utmpx consists only of
            // integers and char arrays, for which every bit pattern is valid, and the read is
            // unaligned-safe.
            let u: libc::utmpx = unsafe { std::ptr::read_unaligned(chunk.as_ptr().cast()) };
            if u.ut_type != libc::USER_PROCESS {
                return None;
            }
            Some(Session {
                user: c_str(&u.ut_user),
                tty: c_str(&u.ut_line),
                host: c_str(&u.ut_host),
                login: i64::from(u.ut_tv.tv_sec),
                pid: u32::try_from(u.ut_pid).unwrap_or(0),
                session: if u.ut_session == 0 {
                    String::new()
                } else {
                    u.ut_session.to_string()
                },
            })
        })
        .collect()
}

/// A logind session file: `KEY=value` lines.
pub(crate) fn parse_logind(id: &str, s: &str) -> Option<Session> {
    let kv: HashMap<&str, &str> = s.lines().filter_map(|l| l.split_once('=')).collect();
    let user = (*kv.get("USER")?).to_owned();
    Some(Session {
        user,
        tty: kv.get("TTY").copied().unwrap_or("").to_owned(),
        host: kv.get("REMOTE_HOST").copied().unwrap_or("").to_owned(),
        login: kv
            .get("REALTIME")
            .and_then(|v| v.parse::<i64>().ok())
            .map(|us| us / 1_000_000)
            .unwrap_or(0),
        pid: kv.get("LEADER").and_then(|v| v.parse().ok()).unwrap_or(0),
        session: id.to_owned(),
    })
}

fn logind_sessions(dir: &Path) -> Vec<Session> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    rd.flatten()
        .filter_map(|e| {
            let id = e.file_name().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(e.path()).ok()?;
            parse_logind(&id, &text)
        })
        .collect()
}

/// utmp sessions whose login process still runs, with logind's session id filled in, plus
/// logind sessions that utmp does not know. Fails when neither source exists.
pub(crate) fn sessions(utmp: &Path) -> std::io::Result<Vec<Session>> {
    let logind = logind_sessions(Path::new(LOGIND_SESSIONS));
    let records = match std::fs::read(utmp) {
        Ok(b) => parse_utmp(&b),
        Err(e) if logind.is_empty() => return Err(e),
        Err(_) => Vec::new(),
    };
    Ok(merge(records, logind, |pid| {
        Path::new(&format!("/proc/{pid}")).exists()
    }))
}

fn merge(utmp: Vec<Session>, logind: Vec<Session>, alive: impl Fn(u32) -> bool) -> Vec<Session> {
    let mut out: Vec<Session> = utmp
        .into_iter()
        .filter(|s| s.pid == 0 || alive(s.pid))
        .collect();
    for l in logind {
        let same = out.iter_mut().find(|s| {
            (l.pid != 0 && s.pid == l.pid)
                || (!l.tty.is_empty() && s.tty == l.tty && s.user == l.user)
        });
        match same {
            Some(s) => s.session = l.session,
            None => out.push(l),
        }
    }
    out.sort_by(|a, b| (a.login, &a.tty).cmp(&(b.login, &b.tty)));
    out
}

/// Seconds since the terminal last saw input (its access time), like `w`'s IDLE.
fn idle(tty: &str) -> Option<i64> {
    if tty.is_empty() || (tty.contains('/') && !tty.starts_with("pts/")) {
        return None;
    }
    let m = std::fs::metadata(PathBuf::from("/dev").join(tty)).ok()?;
    Some((now() - m.atime()).max(0))
}

/// `sys.users`.
#[derive(Debug, Clone)]
pub struct Users {
    utmp: PathBuf,
}

impl Default for Users {
    fn default() -> Self {
        Users {
            utmp: PathBuf::from(UTMP),
        }
    }
}

impl Users {
    /// Reads login records from another utmp file (tests).
    pub fn with_utmp(path: impl Into<PathBuf>) -> Self {
        Users { utmp: path.into() }
    }
}

impl Action for Users {
    type Args = NoArgs;

    fn meta(&self) -> Meta {
        Meta {
            tool: "sys",
            name: "users",
            summary: "Who is logged in: user, terminal, remote host, login time, session",
            effects: &[EffectKind::Read],
            reversibility: Reversibility::ReadOnly,
            output: &[
                ("user", ColumnKind::Text),
                ("tty", ColumnKind::Text),
                ("host", ColumnKind::Text),
                ("login", ColumnKind::Time),
                ("idle", ColumnKind::Duration),
                ("pid", ColumnKind::Pid),
                ("session", ColumnKind::Text),
            ],
        }
    }

    fn effects(&self, _: &NoArgs, _: &Ctx<'_>) -> Result<Vec<Effect>> {
        let mut e = system_read();
        e.push(Effect::path(EffectKind::Read, &self.utmp, false));
        Ok(e)
    }

    fn execute(&self, _: &NoArgs, _: &Ctx<'_>, _: &mut Recorder<'_>) -> Result<Output> {
        let list = match sessions(&self.utmp) {
            Ok(l) => l,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Output::default().with_summary(format!(
                    "no login records: {} does not exist and systemd-logind is not running, so \
                     this system does not track logins (common in containers)",
                    self.utmp.display()
                )));
            }
            Err(e) => return Err(ToolError::io("read", &self.utmp, e)),
        };
        let rows: Vec<_> = list
            .iter()
            .map(|s| {
                let text = |v: &str| {
                    if v.is_empty() { Value::Null } else { json!(v) }
                };
                row([
                    ("user", json!(s.user)),
                    ("tty", text(&s.tty)),
                    ("host", text(&s.host)),
                    ("login", json!(s.login)),
                    (
                        "idle",
                        idle(&s.tty).map(|i| json!(i)).unwrap_or(Value::Null),
                    ),
                    (
                        "pid",
                        if s.pid == 0 {
                            Value::Null
                        } else {
                            json!(s.pid)
                        },
                    ),
                    ("session", text(&s.session)),
                ])
            })
            .collect();
        let mut names: Vec<&str> = list.iter().map(|s| s.user.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        let summary = match list.first() {
            None => "nobody is logged in".to_owned(),
            Some(first) => format!(
                "{} session{} of {} user{} ({}); earliest login {}",
                list.len(),
                if list.len() == 1 { "" } else { "s" },
                names.len(),
                if names.len() == 1 { "" } else { "s" },
                names.join(", "),
                format_local(first.login)
            ),
        };
        Ok(Output::table(Vec::new(), rows).with_summary(summary))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sess(user: &str, tty: &str, pid: u32, login: i64) -> Session {
        Session {
            user: user.into(),
            tty: tty.into(),
            host: String::new(),
            login,
            pid,
            session: String::new(),
        }
    }

    /// Writes records with glibc's own `pututxline`, so the sample has the real on-disk layout
    /// of this platform rather than one we made up.
    #[cfg(target_env = "gnu")]
    #[test]
    fn reads_records_written_by_glibc() {
        use std::ffi::CString;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("utmp");
        std::fs::write(&file, b"").unwrap();
        let cpath = CString::new(file.to_str().unwrap()).unwrap();
        let put = |ty: libc::c_short, user: &str, line: &str, host: &str, pid: i32, sec: i64| {
            // SAFETY: zeroed utmpx is valid; the strings fit their arrays.
            let mut u: libc::utmpx = unsafe { std::mem::zeroed() };
            u.ut_type = ty;
            u.ut_pid = pid;
            for (dst, src) in [
                (&mut u.ut_user[..], user),
                (&mut u.ut_line[..], line),
                (&mut u.ut_host[..], host),
            ] {
                for (d, s) in dst.iter_mut().zip(src.bytes()) {
                    *d = s as libc::c_char;
                }
            }
            u.ut_id = [
                b'k' as libc::c_char,
                b'1' as libc::c_char,
                line.len() as libc::c_char,
                0,
            ];
            u.ut_tv.tv_sec = sec as _;
            u.ut_session = 7;
            // SAFETY: glibc utmp calls on our own file; this test is the only user of them.
            unsafe {
                libc::utmpxname(cpath.as_ptr());
                libc::setutxent();
                assert!(!libc::pututxline(&u).is_null());
                libc::endutxent();
            }
        };
        put(libc::BOOT_TIME, "reboot", "~", "6.1.0", 0, 1_700_000_000);
        put(
            libc::USER_PROCESS,
            "ann",
            "pts/0",
            "192.0.2.7",
            4242,
            1_700_000_100,
        );
        put(libc::USER_PROCESS, "bob", "tty1", "", 4343, 1_700_000_200);
        let bytes = std::fs::read(&file).unwrap();
        assert_eq!(bytes.len(), 3 * std::mem::size_of::<libc::utmpx>());
        let got = parse_utmp(&bytes);
        assert_eq!(
            got,
            vec![
                Session {
                    host: "192.0.2.7".into(),
                    session: "7".into(),
                    ..sess("ann", "pts/0", 4242, 1_700_000_100)
                },
                Session {
                    session: "7".into(),
                    ..sess("bob", "tty1", 4343, 1_700_000_200)
                },
            ]
        );
    }

    #[test]
    fn logind_file() {
        let s = "# This is private data. Do not parse.\nUID=1000\nUSER=ann\nACTIVE=1\nSTATE=active\n\
                 REMOTE=1\nTYPE=tty\nCLASS=user\nSCOPE=session-3.scope\nSERVICE=sshd\nLEADER=4242\n\
                 TTY=pts/0\nREMOTE_HOST=192.0.2.7\nREALTIME=1700000100123456\n";
        let got = parse_logind("3", s).unwrap();
        assert_eq!(
            got,
            Session {
                host: "192.0.2.7".into(),
                session: "3".into(),
                ..sess("ann", "pts/0", 4242, 1_700_000_100)
            }
        );
        assert_eq!(parse_logind("4", "UID=0\n"), None);
    }

    #[test]
    fn merge_drops_stale_and_joins_sessions() {
        let utmp = vec![
            sess("ann", "pts/0", 10, 100),
            sess("old", "pts/1", 11, 50),
            sess("bob", "tty1", 12, 200),
        ];
        let logind = vec![
            Session {
                session: "3".into(),
                ..sess("ann", "pts/0", 10, 100)
            },
            Session {
                session: "c2".into(),
                ..sess("cat", "", 13, 300)
            },
        ];
        let got = merge(utmp, logind, |pid| pid != 11);
        let ids: Vec<(&str, &str)> = got
            .iter()
            .map(|s| (s.user.as_str(), s.session.as_str()))
            .collect();
        assert_eq!(ids, [("ann", "3"), ("bob", ""), ("cat", "c2")]);
    }
}
