//! The `shell` tool.

use crate::registry::Registry;

/// Registers the `shell` actions.
pub fn register(_r: &mut Registry) {}
