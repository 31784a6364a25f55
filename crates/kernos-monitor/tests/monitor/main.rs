//! Integration tests of kernos-monitor against things the tests create: temp dirs and files,
//! loopback HTTP and TLS servers, child processes.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod probes;
mod runner;
mod spec;
mod support;
mod webhook;
