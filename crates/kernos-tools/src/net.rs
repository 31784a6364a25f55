//! The `net` tool.

use crate::registry::Registry;

/// Registers the `net` actions.
pub fn register(_r: &mut Registry) {}
