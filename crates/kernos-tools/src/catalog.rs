//! The v1 catalog: every built-in tool registers its actions here. Kept apart from
//! `registry.rs` so the registry (which every tool module uses) does not use the tools back.

use crate::Registry;

impl Registry {
    /// The v1 catalog.
    pub fn builtin() -> Self {
        let mut r = Registry::empty();
        crate::fs::register(&mut r);
        crate::sys::register(&mut r);
        crate::proc::register(&mut r);
        crate::svc::register(&mut r);
        crate::pkg::register(&mut r);
        crate::net::register(&mut r);
        crate::logs::register(&mut r);
        crate::git::register(&mut r);
        crate::shell::register(&mut r);
        r
    }
}
