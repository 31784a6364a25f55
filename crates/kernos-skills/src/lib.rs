//! Skills: Kernos learns new tools.
//!
//! A skill is a [`Bundle`]: a manifest (name, summary, parameters with their types, phrasings
//! the offline planner understands, declared effects and paths, reversibility, tests) and a
//! body. Two kinds:
//!
//! - **taught** ([`template`]): a plan template made from a plan a person ran (`kernos skill
//!   save`) or written by hand. It can do only what catalog tools can: the planner fills it
//!   into an ordinary plan, which takes the one path (policy, approval, sandbox, journal,
//!   undo) like any other.
//! - **generated** ([`generate`], [`validate`], [`action`]): a `sh` or `python3` script a
//!   model wrote for what the catalog cannot do, validated by running its tests in the
//!   sandbox with exactly its declared effects, with bounded repairs. Installed, it is an
//!   ordinary catalog action `skill.<name>` whose declared effects give its risk and its
//!   sandbox.
//!
//! The [`store`] keeps every version per organisation with its lifecycle (draft → validated →
//! approved → installed), the content hash that attests it, and the installed pointer that
//! rollback moves. This crate journals nothing itself: each change returns a
//! [`Transition`] the front end appends as a `skill.*` event.

pub mod action;
mod bundle;
mod error;
pub mod generate;
pub mod store;
pub mod template;
pub mod validate;

pub use bundle::{Body, Bundle, Kind, Language, Manifest, Param, TestCase, canonical, check_name};
pub use error::{Result, SkillError};
pub use store::{Entry, Installed, Signature, State, Status, Store, TestResult, Transition};
