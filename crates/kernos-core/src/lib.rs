//! Kernos domain types, shared by every other crate: plans and steps, what tools declare about
//! themselves, risk and decisions, journal events, ids and the sandbox policy.
//!
//! This crate does no I/O and has no opinion about how things run; it only says what things are.

pub mod agent;
pub mod canonical;
pub mod event;
pub mod exec;
pub mod hex;
pub mod id;
pub mod lease;
pub mod plan;
pub mod prom;
pub mod risk;
pub mod sandbox;
pub mod scope;
pub mod secret;
pub mod time;
pub mod tool;

pub use agent::{AgentState, Wait};
pub use canonical::canonical_json;
pub use event::{Actor, Event, LOCAL_ORG, NewEvent};
pub use exec::{CancelToken, ExecError, ExecOutcome, ExecRequest, ProcessRunner, StopReason};
pub use id::{ActionId, AgentId, ApprovalId, IdError, RawId, TxId};
pub use lease::{Capabilities, Lease, LeaseBudget, LeaseScope, LeaseUsage};
pub use plan::{MAX_STEPS, Plan, PlanIssue, Step, StepRef};
pub use risk::{Decision, Risk};
pub use sandbox::{HostPort, Lifetime, Limits, NetworkPolicy, SandboxPolicy, ThreadView};
pub use scope::FsScope;
pub use tool::{
    ActionSpec, Column, ColumnKind, Effect, EffectKind, Reversibility, Target, ToolSpec,
};

/// JSON schemas of the core types, by name, for documentation and for `kernos` to print.
pub fn schemas() -> Vec<(&'static str, serde_json::Value)> {
    fn s<T: schemars::JsonSchema>() -> serde_json::Value {
        serde_json::to_value(schemars::schema_for!(T)).unwrap_or(serde_json::Value::Null)
    }
    vec![
        ("Plan", s::<Plan>()),
        ("Step", s::<Step>()),
        ("StepRef", s::<StepRef>()),
        ("ToolSpec", s::<ToolSpec>()),
        ("Effect", s::<Effect>()),
        ("Risk", s::<Risk>()),
        ("Decision", s::<Decision>()),
        ("Event", s::<Event>()),
        ("NewEvent", s::<NewEvent>()),
        ("SandboxPolicy", s::<SandboxPolicy>()),
        ("ExecRequest", s::<ExecRequest>()),
        ("ExecOutcome", s::<ExecOutcome>()),
        ("Lease", s::<Lease>()),
    ]
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_schema_is_an_object_schema() {
        for (name, schema) in super::schemas() {
            assert!(schema.is_object(), "{name} schema is not an object");
            assert!(
                schema.get("type").is_some()
                    || schema.get("oneOf").is_some()
                    || schema.get("anyOf").is_some(),
                "{name} schema says nothing: {schema}"
            );
        }
    }
}
