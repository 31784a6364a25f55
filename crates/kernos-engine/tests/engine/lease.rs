//! Steps under a capability lease: inside it they run without asking, outside it they are
//! asked about (even when policy alone would let them run), and once the lease is revoked no
//! new step starts.

use kernos_core::event::kind;
use kernos_core::{Capabilities, Lease, LeaseBudget, LeaseScope, LeaseUsage, Risk, Step};
use kernos_engine::{Approval, ApprovalRequest, Approver, StepStatus, TxStatus};

use crate::{Fixture, fixture, plan};

/// Holds a lease (revoked after `revoke_after` lookups, when given) and declines every step it
/// is asked about, counting them.
struct Leased {
    lease: Lease,
    lookups: usize,
    revoke_after: Option<usize>,
    asked: Vec<String>,
}

impl Approver for Leased {
    fn approve(&mut self, req: &ApprovalRequest<'_>) -> Approval {
        self.asked.push(req.assessment.reasons.join("; "));
        Approval::Decline("nobody is here".into())
    }

    fn lease(&mut self) -> Option<Lease> {
        self.lookups += 1;
        if self.revoke_after.is_some_and(|n| self.lookups > n) {
            self.lease.revoked = true;
        }
        Some(self.lease.clone())
    }
}

fn leased(f: &Fixture) -> Leased {
    Leased {
        lease: Lease {
            id: "ls_engine".into(),
            org: "local".into(),
            grantee: "agent:test".into(),
            capabilities: Capabilities {
                actions: vec!["t.*".into()],
                effects: vec![],
            },
            scope: LeaseScope {
                paths: vec![f.root.join("in")],
                ..LeaseScope::default()
            },
            max_risk: Risk::Medium,
            granted_ms: 0,
            expires_ms: i64::MAX,
            budget: LeaseBudget::default(),
            used: LeaseUsage::default(),
            granted_by: "user:admin".into(),
            revoked: false,
        },
        lookups: 0,
        revoke_after: None,
        asked: Vec::new(),
    }
}

fn write(path: &str) -> Step {
    Step::new("t", "write")
        .arg("path", path)
        .arg("content", "x")
}

#[test]
fn inside_the_lease_a_change_runs_without_asking_and_names_the_lease() {
    let f = fixture();
    std::fs::create_dir(f.root.join("in")).unwrap();
    let mut a = leased(&f);
    let report = f
        .engine
        .run(&plan(vec![write("in/a.txt")]), None, &f.session(), &mut a)
        .unwrap();
    assert_eq!(report.status, TxStatus::Committed, "{report:?}");
    assert!(a.asked.is_empty(), "nobody was asked: {:?}", a.asked);
    let events = f.engine.events_of(report.tx).unwrap();
    let decided = events
        .iter()
        .find(|e| e.kind == kind::STEP_DECIDED)
        .unwrap();
    assert_eq!(decided.payload["lease"], "ls_engine");
    assert_eq!(
        decided.payload["decision"], "ask",
        "policy's verdict is kept"
    );
    let approval = events
        .iter()
        .find(|e| e.kind == kind::APPROVAL_DECIDED)
        .unwrap();
    assert_eq!(approval.payload["approved"], true);
    assert!(
        approval.payload["reason"]
            .as_str()
            .unwrap()
            .contains("within lease ls_engine granted by user:admin"),
        "{}",
        approval.payload
    );
}

#[test]
fn one_path_outside_the_scope_asks_even_a_step_policy_would_allow() {
    let f = fixture();
    std::fs::create_dir(f.root.join("in")).unwrap();
    std::fs::create_dir(f.root.join("inside")).unwrap();
    let mut a = leased(&f);
    // `inside` shares a prefix with `in` as a string, not as a path.
    let report = f
        .engine
        .run(
            &plan(vec![write("inside/a.txt")]),
            None,
            &f.session(),
            &mut a,
        )
        .unwrap();
    assert_eq!(report.status, TxStatus::Declined);
    assert!(!f.root.join("inside/a.txt").exists());
    assert_eq!(a.asked.len(), 1);
    assert!(
        a.asked[0].starts_with("outside lease ls_engine: "),
        "{:?}",
        a.asked
    );

    // A read policy lets run unasked is asked about when the lease does not cover it.
    let read = plan(vec![
        Step::new("t", "find")
            .arg("path", ".")
            .arg("suffix", ".log"),
    ]);
    let report = f.engine.run(&read, None, &f.session(), &mut a).unwrap();
    assert_eq!(report.status, TxStatus::Declined, "{report:?}");
    assert_eq!(a.asked.len(), 2);
    let events = f.engine.events_of(report.tx).unwrap();
    let decided = events
        .iter()
        .find(|e| e.kind == kind::STEP_DECIDED)
        .unwrap();
    assert_eq!(decided.payload["decision"], "ask");
    assert!(
        decided.payload.get("lease").is_none(),
        "not admitted under it"
    );
}

#[test]
fn a_lease_revoked_between_two_steps_stops_the_second() {
    let f = fixture();
    std::fs::create_dir(f.root.join("in")).unwrap();
    let mut a = leased(&f);
    a.revoke_after = Some(1);
    let report = f
        .engine
        .run(
            &plan(vec![
                write("in/a.txt"),
                write("in/b.txt"),
                write("in/c.txt"),
            ]),
            None,
            &f.session(),
            &mut a,
        )
        .unwrap();
    assert_eq!(report.status, TxStatus::Declined);
    assert!(matches!(report.steps[0].status, StepStatus::Done));
    assert!(
        matches!(&report.steps[1].status, StepStatus::Declined { reason } if reason.contains("lease ls_engine was revoked")),
        "{:?}",
        report.steps[1].status
    );
    assert!(matches!(report.steps[2].status, StepStatus::Skipped { .. }));
    assert!(f.root.join("in/a.txt").exists() && !f.root.join("in/b.txt").exists());
    assert!(a.asked.is_empty(), "an inactive lease asks nobody");
}

#[test]
fn a_lease_never_turns_a_denial_into_a_yes() {
    let f = fixture();
    let mut a = leased(&f);
    // The journal lives in the data directory: policy refuses to touch it.
    a.lease.scope.paths = vec!["/".into()];
    a.lease.max_risk = Risk::High;
    let target = f.data.join("journal.db").display().to_string();
    let report = f
        .engine
        .run(&plan(vec![write(&target)]), None, &f.session(), &mut a)
        .unwrap();
    assert_eq!(report.status, TxStatus::Denied, "{report:?}");
}
