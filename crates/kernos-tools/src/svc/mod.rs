//! The `svc` tool.

use crate::registry::Registry;

/// Registers the `svc` actions.
pub fn register(_r: &mut Registry) {}
