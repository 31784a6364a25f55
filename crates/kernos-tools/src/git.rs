//! The `git` tool.

use crate::registry::Registry;

/// Registers the `git` actions.
pub fn register(_r: &mut Registry) {}
