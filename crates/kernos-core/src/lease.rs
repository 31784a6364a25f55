//! Capability leases: a standing, bounded "yes" granted in advance.
//!
//! A lease says which steps a grantee (an agent, a schedule, an API key) may run without a
//! person being asked: steps of certain actions or effect kinds, touching only what its scope
//! names, up to a risk, until it expires, is revoked or its budget is spent. Policy checks every
//! step against it (`kernos_policy::check_lease`); a step outside it is asked about as usual,
//! so a lease can only spare asking, never widen what policy allows.
//!
//! The lease is data only. Who may grant one, where it is stored and how its usage is counted
//! is the daemon's business.

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::id::RawId;
use crate::risk::Risk;
use crate::tool::EffectKind;

/// Prefix of every lease id, so one is recognised in logs and on the command line.
pub const LEASE_ID_PREFIX: &str = "ls_";

/// Makes a new lease id: `ls_` and a time-sortable id.
pub fn new_lease_id() -> String {
    format!("{LEASE_ID_PREFIX}{}", RawId::generate())
}

/// What kinds of step a lease covers. A step is covered when its action matches one of
/// `actions` (if any are given) and every effect kind it has is one of `effects` (if any are
/// given); a lease names at least one of the two.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Capabilities {
    /// Action patterns: `fs.list`, `fs.*` (every action of a tool), `*` (every action).
    #[serde(default)]
    pub actions: Vec<String>,
    /// Effect kinds a covered step may have (`read`, `write`, …).
    #[serde(default)]
    pub effects: Vec<EffectKind>,
}

impl Capabilities {
    /// Whether this names nothing at all (such a lease covers no step).
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty() && self.effects.is_empty()
    }
}

/// What a covered step may touch. Each kind of target a step has must be named here; an empty
/// list allows none of that kind (a step that has no target of that kind needs none).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LeaseScope {
    /// Absolute path prefixes, matched by whole components: `/srv/app` covers `/srv/app/x`,
    /// not `/srv/apps`.
    #[serde(default)]
    pub paths: Vec<PathBuf>,
    /// Service names (`nginx`), or a prefix ending in `*` (`app-*`).
    #[serde(default)]
    pub services: Vec<String>,
    /// Package names, or a prefix ending in `*`.
    #[serde(default)]
    pub packages: Vec<String>,
    /// Host names or addresses, or a suffix starting with `*.` (`*.example.org`).
    #[serde(default)]
    pub hosts: Vec<String>,
    /// Ports a network step may use when it names one.
    #[serde(default)]
    pub ports: Vec<u16>,
}

/// How much a lease may be used before it is spent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LeaseBudget {
    /// Steps that may run under the lease.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_steps: Option<u64>,
    /// Run units (as `action.finished` charges them) actions using the lease may spend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_units: Option<f64>,
}

/// How much of a lease's budget has been used, as counted from the journal.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LeaseUsage {
    /// Steps admitted under the lease.
    pub steps: u64,
    /// Run units of finished actions that ran steps under the lease.
    pub units: f64,
}

/// A granted lease.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Lease {
    /// `ls_` and a time-sortable id.
    pub id: String,
    /// Organisation it belongs to: it only ever covers that organisation's steps.
    pub org: String,
    /// Who it is attached to: `agent:<id>`, `key:<id>` or `schedule:<id>`.
    pub grantee: String,
    /// What kinds of step it covers.
    pub capabilities: Capabilities,
    /// What those steps may touch.
    pub scope: LeaseScope,
    /// The highest step risk it approves; riskier steps are asked about.
    pub max_risk: Risk,
    /// When it was granted, ms since the epoch.
    pub granted_ms: i64,
    /// When it stops covering steps, ms since the epoch.
    pub expires_ms: i64,
    /// Its budget.
    #[serde(default)]
    pub budget: LeaseBudget,
    /// What of the budget is used.
    #[serde(default)]
    pub used: LeaseUsage,
    /// Who granted it (the journal's actor).
    pub granted_by: String,
    /// Whether it was revoked.
    #[serde(default)]
    pub revoked: bool,
}

impl Lease {
    /// Why the lease covers no step at `now_ms`, if it does not: revoked, expired, or its
    /// budget spent.
    pub fn inactive_reason(&self, now_ms: i64) -> Option<String> {
        if self.revoked {
            return Some(format!("lease {} was revoked", self.id));
        }
        if now_ms >= self.expires_ms {
            return Some(format!(
                "lease {} expired {} s ago",
                self.id,
                (now_ms - self.expires_ms) / 1000
            ));
        }
        if let Some(max) = self.budget.max_steps
            && self.used.steps >= max
        {
            return Some(format!(
                "lease {} has run its {max} steps; grant another",
                self.id
            ));
        }
        if let Some(max) = self.budget.max_units
            && self.used.units >= max
        {
            return Some(format!(
                "lease {} has spent its {max} run units; grant another",
                self.id
            ));
        }
        None
    }

    /// Whether the lease covers steps at `now_ms`.
    pub fn is_active(&self, now_ms: i64) -> bool {
        self.inactive_reason(now_ms).is_none()
    }

    /// `active`, `revoked`, `expired` or `spent`, for listings.
    pub fn state(&self, now_ms: i64) -> &'static str {
        if self.revoked {
            "revoked"
        } else if now_ms >= self.expires_ms {
            "expired"
        } else if self.is_active(now_ms) {
            "active"
        } else {
            "spent"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease() -> Lease {
        Lease {
            id: new_lease_id(),
            org: "acme".into(),
            grantee: "key:k1".into(),
            capabilities: Capabilities {
                actions: vec!["fs.*".into()],
                effects: vec![],
            },
            scope: LeaseScope::default(),
            max_risk: Risk::Medium,
            granted_ms: 1_000,
            expires_ms: 61_000,
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
    fn a_lease_is_active_until_revoked_expired_or_spent() {
        let mut l = lease();
        assert!(l.id.starts_with(LEASE_ID_PREFIX) && l.id.len() == 3 + 26);
        assert_eq!(l.state(2_000), "active");
        assert_eq!(l.state(61_000), "expired");
        assert!(l.inactive_reason(61_000).unwrap().contains("expired"));
        l.used.steps = 2;
        assert_eq!(l.state(2_000), "spent");
        l.revoked = true;
        assert_eq!(l.state(2_000), "revoked");
        assert!(l.inactive_reason(2_000).unwrap().contains("revoked"));
    }

    #[test]
    fn wire_form_round_trips_and_refuses_unknown_scope_fields() {
        let l = lease();
        let j = serde_json::to_value(&l).unwrap();
        assert_eq!(j["max_risk"], "medium");
        assert_eq!(serde_json::from_value::<Lease>(j).unwrap(), l);
        assert!(serde_json::from_str::<LeaseScope>(r#"{"pathz": ["/x"]}"#).is_err());
    }
}
