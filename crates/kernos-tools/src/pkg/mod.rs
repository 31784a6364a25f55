//! The `pkg` tool.

use crate::registry::Registry;

/// Registers the `pkg` actions.
pub fn register(_r: &mut Registry) {}
