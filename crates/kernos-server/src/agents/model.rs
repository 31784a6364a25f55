//! The agent table: a read model of the `agent.*` events, rebuilt from the journal at start and
//! kept current from the published stream, so what the API shows is what the journal says.

use std::collections::HashMap;

use kernos_core::{ActionId, AgentId, AgentState, Event, Wait};
use serde::{Deserialize, Serialize};

use crate::auth::Role;
use crate::wire::{AgentLimits, AgentUsed, AgentView};

/// Kind of the event that creates an agent.
pub const AGENT_SPAWNED: &str = "agent.spawned";
/// Kind of the event that moves an agent to another state.
pub const AGENT_STATE: &str = "agent.state";
/// Kind of the event that records where an agent's memory is (after every turn and plan).
pub const AGENT_SNAPSHOT: &str = "agent.snapshot";

/// `agent.spawned`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Spawned {
    pub(crate) agent: AgentId,
    pub(crate) goal: String,
    pub(crate) lane: String,
    pub(crate) budget: AgentLimits,
    #[serde(default)]
    pub(crate) cwd: Option<String>,
    #[serde(default)]
    pub(crate) parent: Option<AgentId>,
    /// The spawner's role and key: its steps are asked for as that principal's.
    pub(crate) role: Role,
    #[serde(default)]
    pub(crate) key_id: Option<String>,
}

/// `agent.state`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct StateChanged {
    pub(crate) agent: AgentId,
    pub(crate) state: AgentState,
    #[serde(default)]
    pub(crate) wait: Option<Wait>,
    #[serde(default)]
    pub(crate) reason: Option<String>,
    #[serde(default)]
    pub(crate) answer: Option<String>,
}

/// `agent.snapshot`: the memory's blob, what was used, and the action the agent was about to
/// submit or waiting on (recovery looks it up in the journal rather than running it again).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Snapshot {
    pub(crate) agent: AgentId,
    pub(crate) blob: String,
    pub(crate) used: AgentUsed,
    #[serde(default)]
    pub(crate) pending: Option<ActionId>,
}

/// One agent as the table knows it.
#[derive(Debug, Clone)]
pub(crate) struct Record {
    pub(crate) view: AgentView,
    pub(crate) spawned: Spawned,
    pub(crate) actor: kernos_core::Actor,
    /// The newest snapshot's blob, if any.
    pub(crate) snapshot: Option<String>,
    /// The action of the newest snapshot.
    pub(crate) pending: Option<ActionId>,
    /// Every action it submitted, oldest first.
    pub(crate) actions: Vec<ActionId>,
}

/// Every agent, by id.
#[derive(Debug, Default)]
pub(crate) struct Table {
    pub(crate) agents: HashMap<AgentId, Record>,
}

impl Table {
    /// Applies one journaled event (others are ignored).
    pub(crate) fn apply(&mut self, e: &Event) {
        match e.kind.as_str() {
            AGENT_SPAWNED => {
                let Ok(s) = serde_json::from_value::<Spawned>(e.payload.clone()) else {
                    return;
                };
                let view = AgentView {
                    agent: s.agent.to_string(),
                    org: e.org.clone(),
                    owner: e.actor.0.clone(),
                    goal: s.goal.clone(),
                    state: AgentState::Created,
                    waiting_on: None,
                    reason: None,
                    answer: None,
                    lane: s.lane.clone(),
                    budget: s.budget.clone(),
                    used: AgentUsed::default(),
                    action: None,
                    lease: None,
                    parent: s.parent.map(|p| p.to_string()),
                    created_ms: e.ts_ms,
                    updated_ms: e.ts_ms,
                };
                self.agents.insert(
                    s.agent,
                    Record {
                        view,
                        spawned: s,
                        actor: e.actor.clone(),
                        snapshot: None,
                        pending: None,
                        actions: Vec::new(),
                    },
                );
            }
            AGENT_STATE => {
                let Ok(c) = serde_json::from_value::<StateChanged>(e.payload.clone()) else {
                    return;
                };
                if let Some(r) = self.agents.get_mut(&c.agent) {
                    r.view.state = c.state;
                    r.view.waiting_on = c.wait;
                    r.view.reason = c.reason;
                    if c.answer.is_some() {
                        r.view.answer = c.answer;
                    }
                    if c.state.is_final() {
                        r.view.action = None;
                    }
                    r.view.updated_ms = e.ts_ms;
                }
            }
            AGENT_SNAPSHOT => {
                let Ok(s) = serde_json::from_value::<Snapshot>(e.payload.clone()) else {
                    return;
                };
                if let Some(r) = self.agents.get_mut(&s.agent) {
                    r.view.used = s.used;
                    r.snapshot = Some(s.blob);
                    if let Some(a) = s.pending {
                        if r.actions.last() != Some(&a) {
                            r.actions.push(a);
                        }
                    }
                    r.pending = s.pending;
                    if !r.view.state.is_final() {
                        r.view.action = s.pending.map(|a| a.to_string());
                    }
                    r.view.updated_ms = e.ts_ms;
                }
            }
            _ => {}
        }
    }
}
