//! The `logs` tool: the system log's errors, and the end of any log file.

use crate::registry::Registry;

mod errors;
mod tail;

pub use errors::Errors;
pub use tail::Tail;

/// Registers the `logs` actions.
pub fn register(r: &mut Registry) {
    r.register(Errors::default());
    r.register(Tail);
}
