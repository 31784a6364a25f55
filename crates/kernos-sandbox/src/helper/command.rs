//! The command a step runs: its environment (the caller's, filtered, with the private temp
//! dir) and the program, found like execvp would before any namespace is built.

use std::ffi::CString;
use std::io;
use std::path::Path;

use super::fail::{Failure, cpath};
use crate::protocol::{FailKind, HelperRequest};
use crate::sys;

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The program to exec and the environment to give it.
pub(super) struct Command {
    pub program: CString,
    pub env: Vec<(String, String)>,
}

impl Command {
    /// The request's environment with TMPDIR pointing at `tmpdir` (and a default PATH), and
    /// its program resolved against that PATH, relative to `cwd`.
    pub(super) fn resolve(
        req: &HelperRequest,
        tmpdir: &Path,
        cwd: Option<&Path>,
    ) -> Result<Command, Failure> {
        let mut env: Vec<(String, String)> = req
            .env
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "TMPDIR" | "TMP" | "TEMP"))
            .cloned()
            .collect();
        env.push(("TMPDIR".into(), tmpdir.to_string_lossy().into_owned()));
        if !env.iter().any(|(k, _)| k == "PATH") {
            env.push(("PATH".into(), DEFAULT_PATH.into()));
        }
        let path_var = env
            .iter()
            .rev()
            .find(|(k, _)| k == "PATH")
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| DEFAULT_PATH.into());
        let program = req
            .argv
            .first()
            .ok_or((FailKind::InvalidPolicy, "empty command line".to_owned()))?;
        let program = resolve_program(program, &path_var, cwd)?;
        Ok(Command { program, env })
    }
}

/// Finds the program like execvp would, so a missing program is reported before any namespace
/// is built.
fn resolve_program(prog: &str, path_var: &str, cwd: Option<&Path>) -> Result<CString, Failure> {
    let not_found = |reason: String| (FailKind::NotFound, reason);
    if prog.is_empty() {
        return Err(not_found("empty program name".into()));
    }
    let check = |p: &Path| -> Result<(), String> {
        let md = std::fs::metadata(p).map_err(|e| e.to_string())?;
        if md.is_dir() {
            return Err("is a directory".into());
        }
        let c = sys::cpath(p).map_err(|e| e.to_string())?;
        // SAFETY: valid C string.
        if unsafe { libc::access(c.as_ptr(), libc::X_OK) } != 0 {
            return Err(io::Error::last_os_error().to_string());
        }
        Ok(())
    };
    if prog.contains('/') {
        let p = Path::new(prog);
        let full = if p.is_absolute() {
            p.to_path_buf()
        } else {
            match cwd {
                Some(c) => c.join(p),
                None => std::env::current_dir()
                    .map(|d| d.join(p))
                    .unwrap_or_else(|_| p.to_path_buf()),
            }
        };
        check(&full).map_err(not_found)?;
        return cpath(&full);
    }
    for dir in path_var.split(':').filter(|d| !d.is_empty()) {
        let cand = Path::new(dir).join(prog);
        if check(&cand).is_ok() {
            return cpath(&cand);
        }
    }
    Err(not_found(format!(
        "not found in PATH ({path_var}); give a full path or add its directory to PATH"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_programs() {
        assert!(resolve_program("sh", DEFAULT_PATH, None).is_ok());
        let e = resolve_program("definitely-not-a-program-xyz", DEFAULT_PATH, None).unwrap_err();
        assert_eq!(e.0, FailKind::NotFound);
        assert!(resolve_program("/bin/sh", "", None).is_ok());
        assert_eq!(
            resolve_program("/etc", "", None).unwrap_err().0,
            FailKind::NotFound
        );
    }
}
