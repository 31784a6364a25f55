//! Behaviour tests of the built-in tools, run against real files, processes and sockets that
//! each test creates for itself, with real undo.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod fs;
mod git;
mod logs;
mod net;
mod pkg;
mod proc;
mod shell;
mod svc;
mod sys;
