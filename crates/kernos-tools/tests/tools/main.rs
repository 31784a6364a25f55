//! Behaviour tests of the built-in tools, run against real files, processes and sockets that
//! each test creates for itself.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod git;
mod logs;
mod net;
mod proc;
mod sys;
