//! Behaviour of the planners: the offline planner's catalog, paraphrases, follow-ups and
//! refusals, and the LLM tier end to end (`llm/`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod catalog;
mod common;
mod conversation;
mod grounded;
mod llm;
mod negatives;
mod paraphrases;
