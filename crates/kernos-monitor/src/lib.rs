//! Kernos monitors: watch the machine, notice when something crosses a line, propose a fix.
//!
//! - [`MonitorSpec`] ([`spec`]): what to watch — disk and inode usage, memory, swap, load, a
//!   process or service down, a port not listening, an HTTP health URL, a certificate's
//!   expiry, a log pattern's rate, file changes, journal events — with a threshold, a clear
//!   level (hysteresis), a cool-down, an interval and an optional remediation (a plan template
//!   or an agent goal, data only). Parsed from `[[monitor]]` TOML by [`parse_monitors`].
//! - [`Watch`] ([`watch`]): the pure state machine turning [`Reading`]s into
//!   [`Transition::Fired`] (with the remediation's placeholders filled) and
//!   [`Transition::Cleared`].
//! - [`probe`]: one function per kind reading the real machine.
//! - [`Runner`]: one thread that polls, follows inotify and fed journal events, and hands
//!   each [`Update`] to a callback.
//! - [`webhook`]: signed JSON notifications with retries.
//!
//! What happens to a fired monitor's proposal — policy, leases, the approval queue — is the
//! daemon's business: this crate never runs anything.

mod error;
mod fswatch;
pub mod probe;
mod runner;
pub mod spec;
pub mod template;
pub mod watch;
pub mod webhook;

pub use error::{ProbeError, RunnerError, SpecError, TemplateError, WebhookError};
pub use probe::journal::FedEvent;
pub use runner::{Runner, Sink, Update};
pub use spec::{Direction, LoadAverage, MonitorSpec, Probe, Remediation, parse_monitors};
pub use watch::{Cleared, Fired, Proposal, Reading, Transition, Watch};
pub use webhook::{Delivered, Notification, Notifier, WebhookConfig};
