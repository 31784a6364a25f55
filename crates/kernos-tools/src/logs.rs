//! The `logs` tool.

use crate::registry::Registry;

/// Registers the `logs` actions.
pub fn register(_r: &mut Registry) {}
