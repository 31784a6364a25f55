//! What can go wrong between Kernos and the broker, said so that the operator knows what to do.

/// A fleet error.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    /// The broker could not be reached or refused the connection.
    #[error(
        "cannot connect to the NATS broker at {url}: {why} (is nats-server running with JetStream, and are the credentials right?)"
    )]
    Connect {
        /// The broker's address.
        url: String,
        /// The client's reason.
        why: String,
    },
    /// A credentials or key file could not be read.
    #[error("cannot read the fleet credentials {path}: {why}")]
    Credentials {
        /// The file.
        path: String,
        /// Why.
        why: String,
    },
    /// The broker answered a JetStream request with an error (a permission violation, a
    /// stream it does not know, no JetStream).
    #[error("the broker refused {what}: {why}")]
    Broker {
        /// What was asked.
        what: String,
        /// The broker's reason.
        why: String,
    },
    /// A name that cannot be part of a subject (org or node names use letters, digits, `-`, `_`).
    #[error("{what} {name:?} cannot be used on the broker: use 1-64 letters, digits, '-' or '_'")]
    BadName {
        /// Which name (an organisation, a node).
        what: &'static str,
        /// The name.
        name: String,
    },
    /// A selector that does not parse.
    #[error(
        "bad node selector {selector:?}: {why}; write e.g. `all`, `role=web`, `name=web-1`, `disk./var>90%`"
    )]
    BadSelector {
        /// The selector as written.
        selector: String,
        /// What is wrong.
        why: String,
    },
    /// A message that is not what this version sends.
    #[error("cannot read a fleet message on {subject}: {why}")]
    BadMessage {
        /// Where it came from.
        subject: String,
        /// Why.
        why: String,
    },
}

impl FleetError {
    /// A broker refusal of `what`.
    pub(crate) fn broker(what: impl Into<String>, why: impl std::fmt::Display) -> Self {
        FleetError::Broker {
            what: what.into(),
            why: why.to_string(),
        }
    }
}

/// Results of this crate.
pub type Result<T, E = FleetError> = std::result::Result<T, E>;
