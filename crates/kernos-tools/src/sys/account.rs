//! User names and ids through the C library, so NSS sources (LDAP, sssd, systemd-homed) answer
//! exactly as they do for `ps` and `ls`.

use std::collections::HashMap;
use std::ffi::{CStr, CString};

/// Looks up the name of a user id.
pub(crate) fn user_name(uid: u32) -> Option<String> {
    let mut buf = vec![0u8; 4096];
    loop {
        // SAFETY: an all-zero `passwd` is a valid value of this plain C struct.
        let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
        let mut out: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: every pointer is valid for the call and `buf.len()` is its real size.
        let rc =
            unsafe { libc::getpwuid_r(uid, &mut pw, buf.as_mut_ptr().cast(), buf.len(), &mut out) };
        if rc == libc::ERANGE && buf.len() < (1 << 20) {
            buf.resize(buf.len() * 4, 0);
            continue;
        }
        if rc != 0 || out.is_null() || pw.pw_name.is_null() {
            return None;
        }
        // SAFETY: on success pw_name points to a NUL-terminated string inside `buf`.
        let name = unsafe { CStr::from_ptr(pw.pw_name) };
        return Some(name.to_string_lossy().into_owned());
    }
}

/// Looks up the user id of a user name (a number is taken as the id itself).
pub(crate) fn user_id(name: &str) -> Option<u32> {
    if let Ok(n) = name.parse::<u32>() {
        return Some(n);
    }
    let cname = CString::new(name).ok()?;
    let mut buf = vec![0u8; 4096];
    loop {
        // SAFETY: an all-zero `passwd` is a valid value of this plain C struct.
        let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
        let mut out: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: every pointer is valid for the call and `buf.len()` is its real size.
        let rc = unsafe {
            libc::getpwnam_r(
                cname.as_ptr(),
                &mut pw,
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut out,
            )
        };
        if rc == libc::ERANGE && buf.len() < (1 << 20) {
            buf.resize(buf.len() * 4, 0);
            continue;
        }
        if rc != 0 || out.is_null() {
            return None;
        }
        return Some(pw.pw_uid);
    }
}

/// Memoises uid → name, since a process table repeats a handful of owners many times.
#[derive(Debug, Default)]
pub(crate) struct Names(HashMap<u32, String>);

impl Names {
    /// The user name of `uid`, or the number as text when it has none.
    pub(crate) fn get(&mut self, uid: u32) -> String {
        self.0
            .entry(uid)
            .or_insert_with(|| user_name(uid).unwrap_or_else(|| uid.to_string()))
            .clone()
    }
}

/// The lowest user id of ordinary (human) accounts: `UID_MIN` from /etc/login.defs, else 1000.
/// Processes of users below it are system processes.
pub(crate) fn uid_min() -> u32 {
    std::fs::read_to_string("/etc/login.defs")
        .ok()
        .and_then(|s| parse_uid_min(&s))
        .unwrap_or(1000)
}

fn parse_uid_min(s: &str) -> Option<u32> {
    s.lines().find_map(|l| {
        let mut it = l.split_whitespace();
        (it.next() == Some("UID_MIN")).then(|| it.next()?.parse().ok())?
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_round_trips() {
        assert_eq!(user_name(0).as_deref(), Some("root"));
        assert_eq!(user_id("root"), Some(0));
        assert_eq!(user_id("42"), Some(42));
        assert_eq!(user_id("no-such-user-kernos-test"), None);
        let mut n = Names::default();
        assert_eq!(n.get(0), "root");
        assert_eq!(n.get(4_000_000_000), "4000000000");
    }

    #[test]
    fn login_defs() {
        let sample =
            "# comment\nMAIL_DIR        /var/mail\nUID_MIN\t\t\t 1000\nUID_MAX\t\t\t60000\n";
        assert_eq!(parse_uid_min(sample), Some(1000));
        assert_eq!(parse_uid_min("#UID_MIN 500\n"), None);
    }
}
