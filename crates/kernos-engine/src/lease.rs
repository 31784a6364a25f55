//! A step under a capability lease: how the lease the approver holds changes how the step's
//! approval is obtained. Policy's verdict comes first; a lease only decides whether a person
//! is asked.
//!
//! - inside the lease and within its risk: a step policy asks about is approved by the lease
//!   (journaled as `approval.decided`, with a reason naming it);
//! - outside it: a step policy would let run is asked about instead (a lease never widens);
//! - the lease is revoked, expired or spent: the step does not start (journaled as a declined
//!   approval), and so no later step runs either;
//! - a denial stays a denial.

use kernos_core::{Decision, Effect, Lease};
use kernos_policy::{Assessment, LeaseVerdict};

use crate::Approval;

/// How a step refused because its lease expired, was revoked or is spent ends its reason, so a
/// front end (an agent) can tell it from a person's "no" and wait for a new lease instead.
pub const LEASE_INACTIVE: &str =
    "no new step starts under it; renew it or grant a new one, then submit again";

/// What the lease made of one step.
#[derive(Debug, Default)]
pub(crate) struct LeaseStep {
    /// The lease the step was admitted under (recorded on `step.decided`, so usage under a
    /// lease can be rebuilt from the journal).
    pub(crate) id: Option<String>,
    /// The answer the lease gives in place of the approver's, when policy asks.
    pub(crate) answer: Option<Approval>,
}

/// Checks the step against `lease` (as it stands now) and adjusts `assessment`: see the
/// module documentation.
pub(crate) fn apply(
    lease: Option<&Lease>,
    name: &str,
    effects: &[Effect],
    assessment: &mut Assessment,
) -> LeaseStep {
    let Some(lease) = lease else {
        return LeaseStep::default();
    };
    if matches!(assessment.decision, Decision::Deny { .. }) {
        return LeaseStep::default();
    }
    let now = kernos_core::time::now_ms();
    match kernos_policy::check_lease(lease, name, effects, assessment.risk, now) {
        LeaseVerdict::Inside => {
            let answer = matches!(assessment.decision, Decision::Ask { .. }).then(|| {
                Approval::Approve(format!(
                    "within lease {} granted by {} (up to {} risk)",
                    lease.id, lease.granted_by, lease.max_risk
                ))
            });
            LeaseStep {
                id: Some(lease.id.clone()),
                answer,
            }
        }
        LeaseVerdict::Outside { reason } => {
            assessment.reasons.insert(0, reason.clone());
            if assessment.decision == Decision::Allow {
                assessment.decision = Decision::ask(reason);
            }
            LeaseStep::default()
        }
        LeaseVerdict::Inactive { reason } => {
            let why = format!("{reason}: {LEASE_INACTIVE}");
            assessment.reasons.insert(0, why.clone());
            assessment.decision = Decision::ask(why.clone());
            LeaseStep {
                id: None,
                answer: Some(Approval::Decline(why)),
            }
        }
    }
}
