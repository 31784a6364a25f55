//! Behaviour tests of the built-in tools: real files in temporary trees, real undo.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod fs;
