//! Behaviour of the offline planner: the shared catalog, paraphrases, follow-ups, refusals.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod catalog;
mod common;
mod conversation;
mod negatives;
mod paraphrases;
