//! The evaluation state machine: readings in, `Fired`/`Cleared` out, with hysteresis and a
//! cool-down so a value hovering around its threshold does not flap.
//!
//! A [`Watch`] is armed at first. An armed watch fires when a reading crosses the threshold
//! (at or beyond it in the kind's direction) and the cool-down since its last firing has
//! passed; it is then disarmed until a reading passes back beyond the clear level
//! (`clear_below` / `clear_above`), which reports `Cleared` and re-arms it. A crossing within
//! the cool-down does not fire; a later reading still beyond the threshold fires once the
//! cool-down is over, because the condition is real and persistent.
//!
//! Pure: the caller passes the time of each reading, so tests drive the clock.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use kernos_core::{Plan, Risk};
use serde::{Deserialize, Serialize};

use crate::spec::{Direction, MonitorSpec};
use crate::template;

/// One reading of a monitor's value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reading {
    /// The value compared with the thresholds (per cent, count, days, 1 = down…).
    pub value: f64,
    /// What was seen, for people: `/srv is 93.2 % full`.
    pub detail: String,
    /// Named values for remediation placeholders (`mount`, `used_pct`, …).
    pub vars: BTreeMap<String, String>,
}

impl Reading {
    /// A reading with no placeholder values yet.
    pub fn new(value: f64, detail: impl Into<String>) -> Self {
        Reading {
            value,
            detail: detail.into(),
            vars: BTreeMap::new(),
        }
    }

    /// Adds a placeholder value.
    pub fn var(mut self, name: &str, value: impl ToString) -> Self {
        self.vars.insert(name.to_owned(), value.to_string());
        self
    }
}

/// What a remediation proposes, with its placeholders filled from the reading.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Proposal {
    /// A plan to submit as an action.
    Plan {
        /// The filled plan.
        plan: Plan,
        /// The lease to run it under.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        lease: Option<String>,
        /// The highest risk it may run at unasked.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_risk: Option<Risk>,
    },
    /// A goal for an agent or the planner.
    Agent {
        /// The filled goal.
        goal: String,
        /// The lease the agent runs under.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        lease: Option<String>,
        /// The highest risk it may run at unasked.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_risk: Option<Risk>,
    },
}

/// A monitor crossed its threshold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fired {
    /// The monitor's name.
    pub monitor: String,
    /// The value that crossed.
    pub value: f64,
    /// What happened, for people.
    pub message: String,
    /// The filled remediation, when the monitor has one and it could be filled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remediation: Option<Proposal>,
    /// Why the remediation could not be filled, when it could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remediation_error: Option<String>,
    /// The reading's placeholder values.
    pub vars: BTreeMap<String, String>,
}

/// A fired monitor's value passed back beyond its clear level; it is armed again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cleared {
    /// The monitor's name.
    pub monitor: String,
    /// The value that cleared it.
    pub value: f64,
    /// What was seen, for people.
    pub message: String,
}

/// A change of a monitor's state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Transition {
    /// It fired.
    Fired(Fired),
    /// It cleared.
    Cleared(Cleared),
}

/// One monitor's hysteresis and cool-down state.
#[derive(Debug, Clone, Default)]
pub struct Watch {
    /// Fired and not yet cleared.
    firing: bool,
    /// When it last fired.
    last_fired: Option<Instant>,
}

impl Watch {
    /// An armed watch that has never fired.
    pub fn new() -> Self {
        Watch::default()
    }

    /// Whether the monitor has fired and not cleared.
    pub fn is_firing(&self) -> bool {
        self.firing
    }

    /// Feeds one reading taken at `now`; returns the transition it causes, if any.
    pub fn observe(
        &mut self,
        spec: &MonitorSpec,
        reading: &Reading,
        now: Instant,
    ) -> Option<Transition> {
        let v = reading.value;
        let (crossed, cleared) = match spec.probe.direction() {
            Direction::Rising => (v >= spec.threshold, v < spec.clear),
            Direction::Falling => (v <= spec.threshold, v > spec.clear),
        };
        if self.firing {
            if !cleared {
                return None;
            }
            self.firing = false;
            return Some(Transition::Cleared(Cleared {
                monitor: spec.name.clone(),
                value: v,
                message: format!("{}: {} (cleared)", spec.name, reading.detail),
            }));
        }
        if !crossed || self.cooling(spec.cooldown, now) {
            return None;
        }
        self.firing = true;
        self.last_fired = Some(now);
        Some(Transition::Fired(fire(spec, reading)))
    }

    fn cooling(&self, cooldown: Duration, now: Instant) -> bool {
        self.last_fired
            .is_some_and(|at| now.saturating_duration_since(at) < cooldown)
    }
}

/// Builds the `Fired` for a reading that crossed: message, placeholders, remediation.
fn fire(spec: &MonitorSpec, reading: &Reading) -> Fired {
    let op = match spec.probe.direction() {
        Direction::Rising => ">=",
        Direction::Falling => "<=",
    };
    let mut vars = reading.vars.clone();
    vars.insert("monitor".into(), spec.name.clone());
    vars.insert("value".into(), number(reading.value));
    vars.insert("threshold".into(), number(spec.threshold));
    let (remediation, remediation_error) =
        match spec.remediation.as_ref().map(|r| propose(r, &vars)) {
            Some(Ok(p)) => (Some(p), None),
            Some(Err(e)) => (None, Some(e.to_string())),
            None => (None, None),
        };
    Fired {
        monitor: spec.name.clone(),
        value: reading.value,
        message: format!(
            "{}: {} ({} {op} {})",
            spec.name,
            reading.detail,
            spec.probe.kind(),
            number(spec.threshold)
        ),
        remediation,
        remediation_error,
        vars,
    }
}

fn propose(
    r: &crate::spec::Remediation,
    vars: &BTreeMap<String, String>,
) -> Result<Proposal, crate::error::TemplateError> {
    match (&r.plan, &r.agent) {
        (Some(plan), _) => Ok(Proposal::Plan {
            plan: template::fill_plan(plan, vars)?,
            lease: r.lease.clone(),
            max_risk: r.max_risk,
        }),
        (None, Some(goal)) => Ok(Proposal::Agent {
            goal: template::fill_str(goal, vars)?,
            lease: r.lease.clone(),
            max_risk: r.max_risk,
        }),
        (None, None) => Err(crate::error::TemplateError::NotAPlan(
            "the remediation has neither a plan nor an agent goal".into(),
        )),
    }
}

/// A number as people write it: no trailing `.0`, at most two decimals.
pub fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        let s = format!("{v:.2}");
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Probe;

    fn disk_spec(threshold: f64, clear: f64, cooldown: Duration) -> MonitorSpec {
        MonitorSpec {
            name: "scratch".into(),
            probe: Probe::Disk {
                mount: "/srv/scratch".into(),
            },
            threshold,
            clear,
            cooldown,
            interval: Duration::from_secs(1),
            remediation: None,
        }
    }

    fn reading(v: f64) -> Reading {
        Reading::new(v, format!("{v} % used")).var("mount", "/srv/scratch")
    }

    /// Feeds `values` one second apart and returns which transitions came out, as `F`/`C`/`.`.
    fn run(spec: &MonitorSpec, values: &[f64]) -> String {
        let mut w = Watch::new();
        let t0 = Instant::now();
        values
            .iter()
            .enumerate()
            .map(
                |(i, v)| match w.observe(spec, &reading(*v), t0 + Duration::from_secs(i as u64)) {
                    Some(Transition::Fired(_)) => 'F',
                    Some(Transition::Cleared(_)) => 'C',
                    None => '.',
                },
            )
            .collect()
    }

    #[test]
    fn a_value_flapping_around_the_threshold_fires_once() {
        let spec = disk_spec(90.0, 80.0, Duration::ZERO);
        let flapping = [85.0, 91.0, 89.0, 92.0, 88.0, 90.0, 81.0, 95.0, 89.9];
        assert_eq!(run(&spec, &flapping), ".F.......");
    }

    #[test]
    fn it_re_arms_only_below_clear_and_then_fires_again() {
        let spec = disk_spec(90.0, 80.0, Duration::ZERO);
        assert_eq!(run(&spec, &[95.0, 80.0, 79.9, 85.0, 90.0]), "F.C.F");
    }

    #[test]
    fn without_hysteresis_it_re_arms_just_below_the_threshold() {
        let spec = disk_spec(90.0, 90.0, Duration::ZERO);
        assert_eq!(run(&spec, &[90.0, 89.0, 90.0]), "FCF");
    }

    #[test]
    fn the_cool_down_holds_a_re_armed_monitor_until_it_is_over() {
        // Fires at t=0, clears at t=1, crosses again at t=2..4 within the 5 s cool-down, then
        // fires at t=5 because the value is still over the threshold.
        let spec = disk_spec(90.0, 80.0, Duration::from_secs(5));
        assert_eq!(run(&spec, &[95.0, 70.0, 95.0, 96.0, 97.0, 98.0]), "FC...F");
    }

    #[test]
    fn a_crossing_that_ends_within_the_cool_down_is_never_reported() {
        let spec = disk_spec(90.0, 80.0, Duration::from_secs(5));
        assert_eq!(run(&spec, &[95.0, 70.0, 95.0, 70.0, 70.0, 70.0]), "FC....");
    }

    #[test]
    fn a_falling_kind_fires_at_or_below_and_clears_above() {
        let spec = MonitorSpec {
            name: "cert".into(),
            probe: Probe::TlsExpiry {
                url: None,
                file: Some("/etc/ssl/site.pem".into()),
                timeout: Duration::from_secs(5),
            },
            threshold: 14.0,
            clear: 30.0,
            cooldown: Duration::ZERO,
            interval: Duration::from_secs(1),
            remediation: None,
        };
        assert_eq!(run(&spec, &[40.0, 14.0, 20.0, 30.0, 31.0, 2.0]), ".F..CF");
    }

    #[test]
    fn firing_fills_the_remediation_from_the_reading() {
        let mut spec = disk_spec(90.0, 80.0, Duration::ZERO);
        let plan: Plan = serde_json::from_value(serde_json::json!({
            "steps": [{"tool": "fs", "action": "clean",
                       "args": {"path": "{mount}/cache", "why": "{monitor} at {value}%"}}]
        }))
        .unwrap();
        spec.remediation = Some(crate::spec::Remediation {
            plan: Some(plan),
            agent: None,
            lease: Some("ls_1".into()),
            max_risk: Some(Risk::Medium),
        });
        let mut w = Watch::new();
        let Some(Transition::Fired(f)) = w.observe(&spec, &reading(93.5), Instant::now()) else {
            panic!("93.5 >= 90 fires");
        };
        let Some(Proposal::Plan {
            plan,
            lease,
            max_risk,
        }) = f.remediation
        else {
            panic!("a plan is proposed: {:?}", f.remediation_error);
        };
        assert_eq!(plan.steps[0].args["path"], "/srv/scratch/cache");
        assert_eq!(plan.steps[0].args["why"], "scratch at 93.5%");
        assert_eq!(lease.as_deref(), Some("ls_1"));
        assert_eq!(max_risk, Some(Risk::Medium));
        assert!(f.message.contains("disk >= 90"), "{}", f.message);
    }

    #[test]
    fn numbers_print_without_noise() {
        assert_eq!(number(90.0), "90");
        assert_eq!(number(93.456), "93.46");
        assert_eq!(number(0.5), "0.5");
    }
}
