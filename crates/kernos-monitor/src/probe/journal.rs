//! Matching journal events the daemon feeds in against a monitor's `event` pattern.

/// The parts of a journal event a monitor looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FedEvent {
    /// Dotted kind (`step.failed`).
    pub kind: String,
    /// Organisation.
    pub org: String,
}

impl From<&kernos_core::Event> for FedEvent {
    fn from(e: &kernos_core::Event) -> Self {
        FedEvent {
            kind: e.kind.clone(),
            org: e.org.clone(),
        }
    }
}

/// Whether an event of `kind` in `org` is one a monitor with `pattern` and `org_filter` counts.
/// `pattern` is a kind (`step.failed`), a prefix ending in `.*` (`approval.*` matches
/// `approval.requested`, not `approvals.x`), or `*` for every kind.
pub fn matches(pattern: &str, org_filter: Option<&str>, kind: &str, org: &str) -> bool {
    if org_filter.is_some_and(|o| o != org) {
        return false;
    }
    match pattern.strip_suffix('*') {
        Some("") => true,
        Some(prefix) if prefix.ends_with('.') => kind.starts_with(prefix),
        _ => pattern == kind,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_prefixes_and_orgs() {
        assert!(matches("step.failed", None, "step.failed", "local"));
        assert!(!matches("step.failed", None, "step.failed.x", "local"));
        assert!(matches("approval.*", None, "approval.requested", "a"));
        assert!(!matches("approval.*", None, "approvals.x", "a"));
        assert!(matches("*", None, "anything", "a"));
        assert!(!matches("*", Some("b"), "anything", "a"));
        assert!(matches("*", Some("a"), "anything", "a"));
    }
}
