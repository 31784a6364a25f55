//! How a step fails before its command runs, and the "fail closed unless weaker confinement
//! is allowed" rule every part of the confinement plan follows.

use std::ffi::CString;
use std::io;
use std::path::Path;

use crate::protocol::FailKind;
use crate::sys;

/// A request the helper refuses, with the kind the library maps to an `ExecError`.
pub(super) type Failure = (FailKind, String);

/// Confinement the policy asked for but this machine cannot give. The step fails (closed)
/// unless the policy allows weaker confinement; then what was skipped is recorded here and
/// reported with the outcome.
pub(super) struct Weakened {
    allowed: bool,
    notes: Vec<String>,
}

impl Weakened {
    /// Nothing skipped yet; `allowed` is the policy's `allow_weaker`.
    pub(super) fn new(allowed: bool) -> Self {
        Weakened {
            allowed,
            notes: Vec::new(),
        }
    }

    /// `failure`, unless the policy allows weaker confinement: then `note` is recorded and
    /// the step goes on without what it describes.
    pub(super) fn skip(
        &mut self,
        failure: Failure,
        note: impl Into<String>,
    ) -> Result<(), Failure> {
        if !self.allowed {
            return Err(failure);
        }
        self.notes.push(note.into());
        Ok(())
    }

    /// Records `note` whatever the policy says (for confinement that is best effort).
    pub(super) fn note(&mut self, note: impl Into<String>) {
        self.notes.push(note.into());
    }

    /// Everything skipped, in the order it was decided.
    pub(super) fn into_notes(self) -> Vec<String> {
        self.notes
    }
}

/// Maps an I/O error of the helper's own machinery (pipes, poll, clone…) to a failure.
pub(super) fn helper_err(what: &'static str) -> impl Fn(io::Error) -> Failure {
    move |e| (FailKind::Helper, format!("{what}: {e}"))
}

/// `s` as a C string; a NUL byte in it is the policy's (or command line's) fault.
pub(super) fn cstring(s: &str) -> Result<CString, Failure> {
    CString::new(s).map_err(|_| {
        (
            FailKind::InvalidPolicy,
            format!("{s:?} contains a NUL byte"),
        )
    })
}

/// `p` as a C string; a NUL byte in it is the policy's fault.
pub(super) fn cpath(p: &Path) -> Result<CString, Failure> {
    sys::cpath(p).map_err(|e| (FailKind::InvalidPolicy, e.to_string()))
}
