//! Capability leases as the daemon knows them: a read model rebuilt from the journal on start
//! and kept current from the published stream, like the key table.
//!
//! Every change is an audit event (`audit.lease.granted`, `audit.lease.renewed`,
//! `audit.lease.revoked`, with the actor and organisation); usage is rebuilt from the steps
//! the engine admitted under a lease (`step.decided` with `lease`) and the run units of the
//! actions that ran them (`action.finished`). The worker's approver looks a lease up here
//! before every step, so a revocation is seen by the next step.
//!
//! Steps of a plan that only reads are journaled together when the action ends, so their
//! count reaches the budget then: a read-only plan may overrun a step budget by its own length.

use std::collections::HashMap;

use kernos_core::event::kind;
use kernos_core::prom::{Kind, Writer};
use kernos_core::{ActionId, Event, Lease};
use kernos_journal::{Journal, JournalError, Query};

/// Kind of the event that grants a lease (payload: `lease`, the whole lease).
pub const LEASE_GRANTED: &str = "audit.lease.granted";
/// Kind of the event that renews a lease (payload: `lease_id`, `expires_ms`).
pub const LEASE_RENEWED: &str = "audit.lease.renewed";
/// Kind of the event that revokes a lease (payload: `lease_id`).
pub const LEASE_REVOKED: &str = "audit.lease.revoked";

/// The lease read model.
#[derive(Debug, Default)]
pub struct LeaseTable {
    leases: HashMap<String, Lease>,
    /// Actions that ran a step under a lease and have not finished: their run units are
    /// charged to it when they do.
    running: HashMap<ActionId, String>,
}

impl LeaseTable {
    /// Rebuilds the table from the journal: lease events, then (only when there are leases)
    /// the steps admitted under them and the units of the actions that ran those steps.
    pub fn load(j: &Journal) -> Result<LeaseTable, JournalError> {
        let mut t = LeaseTable::default();
        j.for_each(&Query::kind_prefix("audit.lease."), |e| {
            t.apply(&e);
            true
        })?;
        if t.leases.is_empty() {
            return Ok(t);
        }
        j.for_each(&Query::kind(kind::STEP_DECIDED), |e| {
            t.apply(&e);
            true
        })?;
        j.for_each(&Query::kind(kind::ACTION_FINISHED), |e| {
            t.apply(&e);
            true
        })?;
        Ok(t)
    }

    /// Applies one journal event (ignores what does not concern leases). A change only counts
    /// from the lease's own organisation.
    pub fn apply(&mut self, e: &Event) {
        let p = &e.payload;
        match e.kind.as_str() {
            LEASE_GRANTED => {
                let Some(lease) = p
                    .get("lease")
                    .and_then(|l| serde_json::from_value::<Lease>(l.clone()).ok())
                    .filter(|l| l.org == e.org)
                else {
                    return;
                };
                self.leases.insert(lease.id.clone(), lease);
            }
            LEASE_RENEWED | LEASE_REVOKED => {
                let Some(l) = p
                    .get("lease_id")
                    .and_then(|v| v.as_str())
                    .and_then(|id| self.leases.get_mut(id))
                    .filter(|l| l.org == e.org)
                else {
                    return;
                };
                if e.kind == LEASE_REVOKED {
                    l.revoked = true;
                } else if let Some(ms) = p.get("expires_ms").and_then(|v| v.as_i64()) {
                    l.expires_ms = ms;
                }
            }
            kind::STEP_DECIDED => {
                let Some(l) = p
                    .get("lease")
                    .and_then(|v| v.as_str())
                    .and_then(|id| self.leases.get_mut(id))
                    .filter(|l| l.org == e.org)
                else {
                    return;
                };
                l.used.steps += 1;
                if let Some(a) = e.action {
                    self.running.insert(a, l.id.clone());
                }
            }
            kind::ACTION_FINISHED => {
                let Some(id) = e.action.and_then(|a| self.running.remove(&a)) else {
                    return;
                };
                let units = p.get("units").and_then(|v| v.as_f64()).unwrap_or(0.0);
                if let Some(l) = self.leases.get_mut(&id) {
                    l.used.units += units;
                }
            }
            _ => {}
        }
    }

    /// Whether applying an event of this kind could change the table, judged without parsing
    /// it (the writer thread calls this for every event).
    pub(crate) fn concerns(&self, kind_: &str, json: &str, action: Option<&str>) -> bool {
        match kind_ {
            LEASE_GRANTED | LEASE_RENEWED | LEASE_REVOKED => true,
            kind::STEP_DECIDED => !self.leases.is_empty() && json.contains("\"lease\":"),
            kind::ACTION_FINISHED => action.is_some_and(|a| {
                a.parse::<ActionId>()
                    .is_ok_and(|a| self.running.contains_key(&a))
            }),
            _ => false,
        }
    }

    /// A lease by id.
    pub fn get(&self, id: &str) -> Option<&Lease> {
        self.leases.get(id)
    }

    /// Leases of one organisation (only those of `grantee` when given), oldest first.
    pub fn list(&self, org: &str, grantee: Option<&str>) -> Vec<Lease> {
        let mut v: Vec<Lease> = self
            .leases
            .values()
            .filter(|l| l.org == org && grantee.is_none_or(|g| l.grantee == g))
            .cloned()
            .collect();
        v.sort_by(|a, b| (a.granted_ms, &a.id).cmp(&(b.granted_ms, &b.id)));
        v
    }

    /// The newest lease of `org` attached to `grantee` that covers steps at `now_ms`.
    pub fn active_for(&self, org: &str, grantee: &str, now_ms: i64) -> Option<&Lease> {
        self.leases
            .values()
            .filter(|l| l.org == org && l.grantee == grantee && l.is_active(now_ms))
            .max_by(|a, b| (a.granted_ms, &a.id).cmp(&(b.granted_ms, &b.id)))
    }

    /// `kernos_leases_active{org=…}`: leases covering steps now, by organisation.
    pub(crate) fn prometheus(&self, now_ms: i64) -> String {
        let mut by_org: std::collections::BTreeMap<&str, usize> = Default::default();
        for l in self.leases.values().filter(|l| l.is_active(now_ms)) {
            *by_org.entry(l.org.as_str()).or_default() += 1;
        }
        let mut w = Writer::with_capacity(256);
        w.family(
            "kernos_leases_active",
            Kind::Gauge,
            "Capability leases that cover steps now (not revoked, expired or spent), by organisation.",
        );
        for (org, n) in by_org {
            w.sample("kernos_leases_active", &[("org", org)], n);
        }
        w.finish()
    }
}

#[cfg(test)]
mod tests {
    use kernos_core::{Actor, Capabilities, LeaseBudget, LeaseScope, LeaseUsage, Risk};
    use serde_json::{Value, json};

    use super::*;

    fn ev(kind_: &str, org: &str, action: Option<ActionId>, payload: Value) -> Event {
        Event {
            seq: 1,
            ts_ms: 5,
            kind: kind_.into(),
            actor: Actor::user("root"),
            org: org.into(),
            action,
            tx: None,
            payload,
            hash: String::new(),
        }
    }

    fn lease(id: &str, org: &str) -> Lease {
        Lease {
            id: id.into(),
            org: org.into(),
            grantee: "key:k1".into(),
            capabilities: Capabilities {
                actions: vec!["fs.*".into()],
                effects: vec![],
            },
            scope: LeaseScope::default(),
            max_risk: Risk::Medium,
            granted_ms: 1,
            expires_ms: 1_000,
            budget: LeaseBudget {
                max_steps: Some(2),
                max_units: None,
            },
            used: LeaseUsage::default(),
            granted_by: "key:admin".into(),
            revoked: false,
        }
    }

    #[test]
    fn grants_renewals_revocations_and_usage_rebuild_the_table() {
        let mut t = LeaseTable::default();
        t.apply(&ev(
            LEASE_GRANTED,
            "acme",
            None,
            json!({"lease": lease("ls_a", "acme")}),
        ));
        // A grant journaled in another org than the lease names is ignored.
        t.apply(&ev(
            LEASE_GRANTED,
            "globex",
            None,
            json!({"lease": lease("ls_b", "acme")}),
        ));
        assert!(t.get("ls_b").is_none());
        assert_eq!(t.active_for("acme", "key:k1", 10).unwrap().id, "ls_a");
        assert!(t.active_for("globex", "key:k1", 10).is_none());

        let a = ActionId::generate();
        let decided = ev(
            kind::STEP_DECIDED,
            "acme",
            Some(a),
            json!({"step": 0, "lease": "ls_a"}),
        );
        assert!(t.concerns(
            kind::STEP_DECIDED,
            &serde_json::to_string(&decided).unwrap(),
            None
        ));
        t.apply(&decided);
        t.apply(&ev(kind::STEP_DECIDED, "acme", Some(a), json!({"step": 1})));
        assert_eq!(t.get("ls_a").unwrap().used.steps, 1);
        assert!(t.concerns(kind::ACTION_FINISHED, "", Some(&a.to_string())));
        t.apply(&ev(
            kind::ACTION_FINISHED,
            "acme",
            Some(a),
            json!({"units": 0.5}),
        ));
        assert_eq!(t.get("ls_a").unwrap().used.units, 0.5);
        t.apply(&decided);
        assert_eq!(t.get("ls_a").unwrap().used.steps, 2);
        assert!(t.active_for("acme", "key:k1", 10).is_none(), "budget spent");

        t.apply(&ev(
            LEASE_RENEWED,
            "acme",
            None,
            json!({"lease_id": "ls_a", "expires_ms": 5_000}),
        ));
        assert_eq!(t.get("ls_a").unwrap().expires_ms, 5_000);
        t.apply(&ev(
            LEASE_REVOKED,
            "globex",
            None,
            json!({"lease_id": "ls_a"}),
        ));
        assert!(
            !t.get("ls_a").unwrap().revoked,
            "only its own org revokes it"
        );
        t.apply(&ev(
            LEASE_REVOKED,
            "acme",
            None,
            json!({"lease_id": "ls_a"}),
        ));
        assert!(t.get("ls_a").unwrap().revoked);
        assert_eq!(t.list("acme", Some("key:k1")).len(), 1);
        assert!(t.list("acme", Some("agent:x")).is_empty());
    }
}
