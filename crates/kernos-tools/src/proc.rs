//! The `proc` tool.

use crate::registry::Registry;

/// Registers the `proc` actions.
pub fn register(_r: &mut Registry) {}
