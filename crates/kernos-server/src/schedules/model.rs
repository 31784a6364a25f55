//! The schedule table: a read model of the journal's `schedule.*` events, rebuilt at start and
//! kept current from the published stream. A schedule's state changes only by the
//! [`Transition`]s journaled for it, so a restart rebuilds exactly what was decided.

use std::collections::HashMap;

use kernos_core::{Actor, Event, Plan};
use kernos_schedule::{ScheduleState, Transition};
use serde::{Deserialize, Serialize};

use crate::auth::Role;

/// Kind of the event that creates a schedule.
pub const SCHEDULE_CREATED: &str = "schedule.created";
/// Kind of the event that records a change of a schedule's state.
pub const SCHEDULE_TRANSITION: &str = "schedule.transition";
/// Kind of the event that removes a schedule.
pub const SCHEDULE_REMOVED: &str = "schedule.removed";

/// `schedule.created`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Created {
    pub(crate) schedule: String,
    pub(crate) initial: ScheduleState,
    pub(crate) plan: Plan,
    #[serde(default)]
    pub(crate) request: Option<String>,
    #[serde(default)]
    pub(crate) cwd: Option<String>,
    /// The creator's role and key: runs are asked for as that principal's.
    pub(crate) role: Role,
    #[serde(default)]
    pub(crate) key_id: Option<String>,
}

/// `schedule.transition`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Changed {
    pub(crate) schedule: String,
    pub(crate) transition: Transition,
}

/// One schedule as the table knows it.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) created: Created,
    pub(crate) state: ScheduleState,
    pub(crate) org: String,
    pub(crate) actor: Actor,
    pub(crate) created_ms: i64,
}

/// Every schedule that was not removed, by id.
#[derive(Debug, Default)]
pub(crate) struct Table {
    pub(crate) schedules: HashMap<String, Entry>,
}

impl Table {
    /// Applies one journaled event (others are ignored).
    pub(crate) fn apply(&mut self, e: &Event) {
        match e.kind.as_str() {
            SCHEDULE_CREATED => {
                if let Ok(c) = serde_json::from_value::<Created>(e.payload.clone()) {
                    self.schedules.insert(
                        c.schedule.clone(),
                        Entry {
                            state: c.initial.clone(),
                            created: c,
                            org: e.org.clone(),
                            actor: e.actor.clone(),
                            created_ms: e.ts_ms,
                        },
                    );
                }
            }
            SCHEDULE_TRANSITION => {
                if let Ok(c) = serde_json::from_value::<Changed>(e.payload.clone()) {
                    if let Some(s) = self.schedules.get_mut(&c.schedule) {
                        s.state.apply(&c.transition);
                    }
                }
            }
            SCHEDULE_REMOVED => {
                if let Some(id) = e.payload.get("schedule").and_then(|s| s.as_str()) {
                    self.schedules.remove(id);
                }
            }
            _ => {}
        }
    }

    /// The schedule whose run in progress is `action`, if any.
    pub(crate) fn running(&self, action: &str) -> Option<&Entry> {
        self.schedules
            .values()
            .find(|s| s.state.running.as_ref().is_some_and(|r| r.run == action))
    }
}
