//! The names on the broker. Every one holds the organisation, so a controller of one
//! organisation never addresses another's nodes even on a shared account; deployments put
//! each organisation in its own NATS account as well (README "Fleet"), which makes the other
//! organisation's subjects not exist for it at all.

use crate::{FleetError, Result};

/// Checks a name used inside subjects, stream and bucket names.
pub fn check(what: &'static str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(FleetError::BadName {
            what,
            name: name.to_owned(),
        })
    }
}

/// The names of one organisation's fleet.
#[derive(Debug, Clone)]
pub struct Names {
    org: String,
}

impl Names {
    /// The names for `org` (checked).
    pub fn new(org: &str) -> Result<Self> {
        check("organisation", org)?;
        Ok(Names {
            org: org.to_owned(),
        })
    }

    /// The organisation.
    pub fn org(&self) -> &str {
        &self.org
    }

    /// The stream of dispatches (a work queue: a plan is removed once its node acks it).
    pub fn plans_stream(&self) -> String {
        format!("KERNOS_{}_PLANS", self.org)
    }

    /// Where dispatches to `node` are published.
    pub fn plan(&self, node: &str) -> String {
        format!("kernos.{}.plan.{node}", self.org)
    }

    /// Every dispatch subject.
    pub fn plans(&self) -> String {
        format!("kernos.{}.plan.>", self.org)
    }

    /// The stream of results (kept a week: a controller that was away reads them later).
    pub fn results_stream(&self) -> String {
        format!("KERNOS_{}_RESULTS", self.org)
    }

    /// Where `node` reports on fan-out `fanout`.
    pub fn result(&self, fanout: &str, node: &str) -> String {
        format!("kernos.{}.result.{fanout}.{node}", self.org)
    }

    /// Every result subject.
    pub fn results(&self) -> String {
        format!("kernos.{}.result.>", self.org)
    }

    /// The node's durable consumer (survives the node's and the broker's restarts).
    pub fn node_consumer(&self, node: &str) -> String {
        format!("node-{node}")
    }

    /// The controller's durable consumer of results.
    pub fn controller_consumer(&self, controller: &str) -> String {
        format!("controller-{controller}")
    }

    /// The key-value bucket of node inventories (a put is the heartbeat).
    pub fn nodes_bucket(&self) -> String {
        format!("kernos_{}_nodes", self.org)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_could_escape_a_subject_are_refused() {
        for bad in ["", "a.b", "a*", "a>", "a b", &"x".repeat(65)] {
            assert!(check("node", bad).is_err(), "{bad:?}");
        }
        check("node", "web-1_a").expect("plain names pass");
    }

    #[test]
    fn every_name_holds_the_organisation() {
        let n = Names::new("acme").expect("name");
        assert_eq!(n.plan("web-1"), "kernos.acme.plan.web-1");
        assert_eq!(n.result("f1", "web-1"), "kernos.acme.result.f1.web-1");
        assert_eq!(n.plans_stream(), "KERNOS_acme_PLANS");
        assert_eq!(n.nodes_bucket(), "kernos_acme_nodes");
    }
}
