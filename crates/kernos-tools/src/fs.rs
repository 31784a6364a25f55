//! The `fs` tool.

use crate::registry::Registry;

/// Registers the `fs` actions.
pub fn register(_r: &mut Registry) {}
