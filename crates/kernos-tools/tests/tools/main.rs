//! Behaviour tests of the built-in tools, one module per tool, all in one test binary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod pkg;
mod shell;
mod svc;
