//! An agent's life: the states it goes through and which moves between them are allowed.
//!
//! ```text
//! created ─► running ⇄ waiting (approval, model, lease)
//!               │  ▲          │
//!               ▼  │          ▼
//!              paused ◄───────┘
//! running | waiting | paused ─► finished | failed | killed   (final)
//! ```
//!
//! The daemon journals every move (`agent.state`), so the state of every agent can be rebuilt
//! from the journal after a restart; this module only says which moves make sense, so a
//! request to resume a finished agent is refused with a reason instead of corrupting it.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Where an agent is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AgentState {
    /// Spawned, not started yet.
    Created,
    /// Thinking or running a step.
    Running,
    /// Blocked on something outside it (see [`Wait`]).
    Waiting,
    /// Stopped by a person between steps; resumes where it was.
    Paused,
    /// The goal is reached (or the model said there is nothing to do).
    Finished,
    /// Ended without reaching the goal: a budget ran out, the model failed, a step was refused.
    Failed,
    /// Stopped by a person for good; its running step was cancelled.
    Killed,
}

/// What a waiting agent waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Wait {
    /// A person to approve one of its steps.
    Approval,
    /// A model server slot and its answer.
    Model,
    /// A run slot for its action (the daemon's queue).
    Schedule,
    /// Its lease to be renewed or replaced (it expired or was revoked).
    Lease,
}

impl AgentState {
    /// Lower-case name, as on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            AgentState::Created => "created",
            AgentState::Running => "running",
            AgentState::Waiting => "waiting",
            AgentState::Paused => "paused",
            AgentState::Finished => "finished",
            AgentState::Failed => "failed",
            AgentState::Killed => "killed",
        }
    }

    /// Whether the agent has ended for good.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            AgentState::Finished | AgentState::Failed | AgentState::Killed
        )
    }

    /// Whether the agent should be working (a daemon restart picks these up again).
    pub fn is_live(self) -> bool {
        matches!(
            self,
            AgentState::Created | AgentState::Running | AgentState::Waiting
        )
    }

    /// Whether moving to `to` is allowed. Staying in the same state is allowed (a waiting agent
    /// may start waiting for something else).
    pub fn can_become(self, to: AgentState) -> bool {
        use AgentState::*;
        if self == to {
            return !self.is_final();
        }
        match self {
            Created => matches!(to, Running | Paused | Killed | Failed),
            Running | Waiting => {
                matches!(to, Running | Waiting | Paused | Finished | Failed | Killed)
            }
            Paused => matches!(to, Running | Killed | Failed),
            Finished | Failed | Killed => false,
        }
    }
}

impl std::fmt::Display for AgentState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Wait {
    /// Lower-case name, as on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Wait::Approval => "approval",
            Wait::Model => "model",
            Wait::Schedule => "schedule",
            Wait::Lease => "lease",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::AgentState::*;

    #[test]
    fn final_states_never_move_again() {
        for from in [Finished, Failed, Killed] {
            for to in [Created, Running, Waiting, Paused, Finished, Failed, Killed] {
                assert!(!from.can_become(to), "{from} → {to}");
            }
        }
    }

    #[test]
    fn pause_and_resume_go_through_running() {
        assert!(Running.can_become(Paused));
        assert!(Waiting.can_become(Paused));
        assert!(Paused.can_become(Running));
        assert!(
            !Paused.can_become(Waiting),
            "a paused agent waits for nothing"
        );
        assert!(
            !Paused.can_become(Finished),
            "a paused agent does not finish by itself"
        );
        assert!(Paused.can_become(Killed));
    }

    #[test]
    fn created_agents_start_or_are_killed() {
        assert!(Created.can_become(Running));
        assert!(Created.can_become(Killed));
        assert!(!Created.can_become(Finished));
    }
}
