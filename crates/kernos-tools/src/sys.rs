//! The `sys` tool.

use crate::registry::Registry;

/// Registers the `sys` actions.
pub fn register(_r: &mut Registry) {}
