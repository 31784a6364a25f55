//! Finding the helper binary.

use std::path::{Path, PathBuf};

use kernos_core::exec::ExecError;

/// Environment variable naming the helper binary explicitly.
pub const HELPER_ENV: &str = "KERNOS_SANDBOX_HELPER";

/// Name of the standalone helper binary.
pub const HELPER_BIN: &str = "kernos-sandbox";

/// Finds the helper: `$KERNOS_SANDBOX_HELPER`, else the running executable when it is `kernos`
/// (which answers `kernos __sandbox-helper`), else a `kernos-sandbox` next to the running
/// executable or one directory up (so test binaries in `target/debug/deps` find
/// `target/debug/kernos-sandbox`).
pub fn find_helper() -> Result<PathBuf, ExecError> {
    if let Some(p) = std::env::var_os(HELPER_ENV).filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        return if is_executable(&p) {
            Ok(p)
        } else {
            Err(ExecError::Helper(format!(
                "{HELPER_ENV} is set to {}, which is not an executable file; fix or unset it",
                p.display()
            )))
        };
    }
    let exe = std::env::current_exe()
        .map_err(|e| ExecError::Helper(format!("cannot locate the running executable: {e}")))?;
    if exe.file_name().is_some_and(|n| n == "kernos") {
        return Ok(exe);
    }
    let mut looked = Vec::new();
    let dir = exe.parent();
    for d in [dir, dir.and_then(Path::parent)].into_iter().flatten() {
        let cand = d.join(HELPER_BIN);
        if is_executable(&cand) {
            return Ok(cand);
        }
        looked.push(d.display().to_string());
    }
    Err(ExecError::Helper(format!(
        "cannot find the sandbox helper `{HELPER_BIN}` (looked in {}); build it with `cargo \
         build -p kernos-sandbox`, or set {HELPER_ENV} to its path",
        looked.join(", ")
    )))
}

/// The helper for a binary that embeds it (calls `helper_main` when started with the helper
/// argument, as `kernos` does): `$KERNOS_SANDBOX_HELPER` if set, else the running executable
/// itself — whatever it is called, so a renamed or copied `kernos` keeps its sandbox.
pub fn embedded_helper() -> Result<PathBuf, ExecError> {
    if std::env::var_os(HELPER_ENV).is_some_and(|p| !p.is_empty()) {
        return find_helper();
    }
    std::env::current_exe()
        .map_err(|e| ExecError::Helper(format!("cannot locate the running executable: {e}")))
}

fn is_executable(p: &Path) -> bool {
    let Ok(c) = crate::sys::cpath(p) else {
        return false;
    };
    // SAFETY: valid C string; access has no side effects.
    p.is_file() && unsafe { libc::access(c.as_ptr(), libc::X_OK) } == 0
}
