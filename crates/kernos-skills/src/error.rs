//! Skill errors: each says what went wrong and what to do about it.

use std::path::PathBuf;

/// Anything the skill store or a skill's lifecycle can fail with.
#[derive(Debug, thiserror::Error)]
pub enum SkillError {
    /// The manifest or body is not a usable skill.
    #[error("invalid skill: {0}")]
    Invalid(String),
    /// No such skill (or version) in this organisation.
    #[error("no skill {0} here: `kernos skill list` shows the skills of this organisation")]
    NotFound(String),
    /// A lifecycle step out of order (approve before validated, install before approved).
    #[error("{0}")]
    State(String),
    /// The bundle on disk is not the one that was validated.
    #[error(
        "refused: the bundle of {name} v{version} was altered after validation (validated {validated}, now {now}); save or generate it again"
    )]
    Altered {
        /// Skill name.
        name: String,
        /// Its version.
        version: u32,
        /// The hash that was validated.
        validated: String,
        /// The hash of what is on disk now.
        now: String,
    },
    /// A template's arguments do not fit.
    #[error("{0}")]
    Args(String),
    /// A file of the store.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// Which file.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// A stored file that is not the JSON it should be.
    #[error("{} is not a valid skill file: {source}", path.display())]
    Json {
        /// Which file.
        path: PathBuf,
        /// Cause.
        source: serde_json::Error,
    },
}

impl SkillError {
    pub(crate) fn io(op: &'static str, path: &std::path::Path, source: std::io::Error) -> Self {
        SkillError::Io {
            op,
            path: path.to_owned(),
            source,
        }
    }
}

/// Result alias.
pub type Result<T, E = SkillError> = std::result::Result<T, E>;
