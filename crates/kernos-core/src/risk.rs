//! Risk classes and policy decisions.

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How much harm a step could do. Computed by the kernel from declared effects and concrete
/// arguments; a planner never sets it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Risk {
    /// Reads only.
    Low,
    /// Reversible changes in the user's own space.
    Medium,
    /// Irreversible, privileged, system-wide or wide-reaching changes.
    High,
}

impl Risk {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Risk::Low => "low",
            Risk::Medium => "medium",
            Risk::High => "high",
        }
    }
}

impl fmt::Display for Risk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Risk {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "low" => Ok(Risk::Low),
            "medium" => Ok(Risk::Medium),
            "high" => Ok(Risk::High),
            other => Err(format!(
                "unknown risk {other:?}: expected low, medium or high"
            )),
        }
    }
}

/// What policy says about a step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    /// Run it without asking.
    Allow,
    /// Ask a person first.
    Ask {
        /// Why it needs a yes.
        reason: String,
    },
    /// Never run it.
    Deny {
        /// Why it is refused.
        reason: String,
    },
}

impl Decision {
    /// An `Ask` with a reason.
    pub fn ask(reason: impl Into<String>) -> Self {
        Decision::Ask {
            reason: reason.into(),
        }
    }

    /// A `Deny` with a reason.
    pub fn deny(reason: impl Into<String>) -> Self {
        Decision::Deny {
            reason: reason.into(),
        }
    }

    /// The stricter of two decisions (deny > ask > allow); on a tie the first is kept.
    pub fn stricter(self, other: Decision) -> Decision {
        if other.rank() > self.rank() {
            other
        } else {
            self
        }
    }

    fn rank(&self) -> u8 {
        match self {
            Decision::Allow => 0,
            Decision::Ask { .. } => 1,
            Decision::Deny { .. } => 2,
        }
    }

    /// The reason, if there is one.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Decision::Allow => None,
            Decision::Ask { reason } | Decision::Deny { reason } => Some(reason),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn risk_orders_and_parses() {
        assert!(Risk::Low < Risk::Medium && Risk::Medium < Risk::High);
        assert_eq!("HIGH".parse::<Risk>(), Ok(Risk::High));
        assert!("severe".parse::<Risk>().is_err());
        assert_eq!(serde_json::to_string(&Risk::Medium).unwrap(), "\"medium\"");
    }

    #[test]
    fn decision_wire_format_and_strictness() {
        let d = Decision::ask("writes to /etc");
        let j = serde_json::to_value(&d).unwrap();
        assert_eq!(
            j,
            serde_json::json!({"decision": "ask", "reason": "writes to /etc"})
        );
        assert_eq!(serde_json::from_value::<Decision>(j).unwrap(), d);
        assert_eq!(
            serde_json::to_value(Decision::Allow).unwrap(),
            serde_json::json!({"decision": "allow"})
        );
        let s = Decision::Allow
            .stricter(Decision::ask("a"))
            .stricter(Decision::deny("b"));
        assert_eq!(s, Decision::deny("b"));
        assert_eq!(
            Decision::deny("x").stricter(Decision::ask("y")).reason(),
            Some("x")
        );
    }
}
