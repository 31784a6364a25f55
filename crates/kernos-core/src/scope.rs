//! An organisation's filesystem scope on a shared host: the trees its steps may read and the
//! trees they may change. Policy denies a step whose declared paths fall outside it, and the
//! engine runs the step's in-process work on a thread the kernel confines to it (Landlock), so
//! a symlink or a bug cannot reach further than the declaration did.
//!
//! The host operator's organisation has no scope (`Option::None` where one is expected): the
//! whole machine, less the secret locations every step is kept from (see [`crate::secret`]).

use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The trees an organisation's steps may reach. Paths are absolute.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FsScope {
    /// Trees its steps may read (the writable trees are readable too).
    #[serde(default)]
    pub read: Vec<PathBuf>,
    /// Trees its steps may create, change and delete in.
    #[serde(default)]
    pub write: Vec<PathBuf>,
}

impl FsScope {
    /// Whether a step may read `path`.
    pub fn may_read(&self, path: &Path) -> bool {
        self.read
            .iter()
            .chain(&self.write)
            .any(|r| path.starts_with(r))
    }

    /// Whether a step may change `path`.
    pub fn may_write(&self, path: &Path) -> bool {
        self.write.iter().any(|r| path.starts_with(r))
    }

    /// Every root, readable and writable, for messages.
    pub fn describe(&self) -> String {
        let list = |v: &[PathBuf]| {
            if v.is_empty() {
                "nothing".to_owned()
            } else {
                v.iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        };
        format!("read {}; write {}", list(&self.read), list(&self.write))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writable_trees_are_readable_and_nothing_else_is() {
        let s = FsScope {
            read: vec!["/srv/shared".into()],
            write: vec!["/data/orgs/a/work".into()],
        };
        assert!(s.may_read(Path::new("/srv/shared/x")));
        assert!(s.may_read(Path::new("/data/orgs/a/work/f")));
        assert!(!s.may_write(Path::new("/srv/shared/x")));
        assert!(s.may_write(Path::new("/data/orgs/a/work")));
        assert!(!s.may_read(Path::new("/data/orgs/b/work/f")));
        assert!(!s.may_read(Path::new("/srv/shared-not")));
    }
}
