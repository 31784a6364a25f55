//! Which nodes a request is for: `all`, or terms joined by `,` that must all hold —
//! a label (`role=web`, `role!=db`), the name (`name=web-*`), a fact (`os`, `kernel`, `arch`,
//! `hostname`, `service=nginx`, `package=nginx`), or a measure compared with `<`, `<=`, `>`,
//! `>=` (`disk./var>90%`, `mem>80%`, `cpus>=4`).

use std::fmt;

use crate::wire::NodeInfo;
use crate::{FleetError, Result};

/// A parsed selector.
#[derive(Debug, Clone, PartialEq)]
pub struct Selector {
    text: String,
    terms: Vec<Term>,
}

#[derive(Debug, Clone, PartialEq)]
enum Term {
    /// A label, the name or a text fact, equal (or not) to a value with `*` wildcards.
    Text {
        key: String,
        value: String,
        negate: bool,
    },
    /// A number compared: a disk's or memory's fill in percent, the CPU count.
    Measure { what: Measure, op: Op, value: f64 },
}

#[derive(Debug, Clone, PartialEq)]
enum Measure {
    Disk(String),
    Memory,
    Cpus,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
}

impl Selector {
    /// Parses `text`.
    pub fn parse(text: &str) -> Result<Self> {
        let text = text.trim();
        let bad = |why: &str| FleetError::BadSelector {
            selector: text.to_owned(),
            why: why.to_owned(),
        };
        if text.is_empty() {
            return Err(bad("it is empty"));
        }
        let mut terms = Vec::new();
        if text != "all" {
            for part in text.split(',') {
                terms.push(term(part.trim()).map_err(|why| bad(&why))?);
            }
        }
        Ok(Selector {
            text: text.to_owned(),
            terms,
        })
    }

    /// Whether `node` is selected.
    pub fn matches(&self, node: &NodeInfo) -> bool {
        self.terms.iter().all(|t| t.matches(node))
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

fn term(part: &str) -> std::result::Result<Term, String> {
    if part.is_empty() {
        return Err("a term between commas is empty".into());
    }
    // Longest operators first, so `>=` is not read as `>`.
    let ops = [
        (">=", Op::Ge),
        ("<=", Op::Le),
        ("!=", Op::Eq),
        (">", Op::Gt),
        ("<", Op::Lt),
        ("=", Op::Eq),
    ];
    let (at, sym, op) = ops
        .iter()
        .filter_map(|(s, o)| part.find(s).map(|i| (i, *s, *o)))
        .min_by_key(|(i, s, _)| (*i, std::cmp::Reverse(s.len())))
        .ok_or_else(|| format!("{part:?} has no operator (=, !=, <, <=, >, >=)"))?;
    let key = part[..at].trim();
    let value = part[at + sym.len()..].trim();
    if key.is_empty() || value.is_empty() {
        return Err(format!("{part:?} needs a name and a value"));
    }
    let measure = if let Some(path) = key.strip_prefix("disk.") {
        if !path.starts_with('/') {
            return Err(format!(
                "{key:?}: a disk is named by its path, e.g. disk./var"
            ));
        }
        Some(Measure::Disk(path.to_owned()))
    } else if key == "mem" || key == "memory" {
        Some(Measure::Memory)
    } else if key == "cpus" {
        Some(Measure::Cpus)
    } else {
        None
    };
    match measure {
        Some(what) => {
            if sym == "!=" {
                return Err(format!("{part:?}: compare measures with <, <=, >, >= or ="));
            }
            let num = value.strip_suffix('%').unwrap_or(value);
            let value: f64 = num
                .parse()
                .map_err(|_| format!("{value:?} is not a number"))?;
            Ok(Term::Measure { what, op, value })
        }
        None if op == Op::Eq => Ok(Term::Text {
            key: key.to_owned(),
            value: value.to_owned(),
            negate: sym == "!=",
        }),
        None => Err(format!(
            "{key:?} is a label or a text fact: use = or != (measures are disk./path, mem, cpus)"
        )),
    }
}

impl Term {
    fn matches(&self, n: &NodeInfo) -> bool {
        match self {
            Term::Text { key, value, negate } => {
                let f = &n.facts;
                let hit = match key.as_str() {
                    "name" => glob(value, &n.name),
                    "os" => glob(value, &f.os),
                    "kernel" => glob(value, &f.kernel),
                    "arch" => glob(value, &f.arch),
                    "hostname" => glob(value, &f.hostname),
                    "version" => glob(value, &n.version),
                    "service" => f.services.iter().any(|s| glob(value, s)),
                    "package" => f.packages.keys().any(|p| glob(value, p)),
                    label => n.labels.get(label).is_some_and(|v| glob(value, v)),
                };
                hit != *negate
            }
            Term::Measure { what, op, value } => {
                let have = match what {
                    Measure::Disk(path) => match n.facts.disk_of(path) {
                        Some(d) => d.used_pct,
                        None => return false,
                    },
                    Measure::Memory => n.facts.memory_used_pct(),
                    Measure::Cpus => n.facts.cpus as f64,
                };
                match op {
                    Op::Lt => have < *value,
                    Op::Le => have <= *value,
                    Op::Gt => have > *value,
                    Op::Ge => have >= *value,
                    Op::Eq => (have - *value).abs() < f64::EPSILON,
                }
            }
        }
    }
}

/// `*` matches any run of characters; everything else matches itself.
fn glob(pattern: &str, s: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == s,
        Some((head, rest)) => {
            let Some(tail) = s.strip_prefix(head) else {
                return false;
            };
            (0..=tail.len())
                .filter(|i| tail.is_char_boundary(*i))
                .any(|i| glob(rest, &tail[i..]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::{Disk, Facts};
    use crate::wire::NodeState;

    fn node(name: &str, role: &str, var_pct: f64) -> NodeInfo {
        NodeInfo {
            name: name.into(),
            labels: [("role".to_owned(), role.to_owned())].into(),
            state: NodeState::Up,
            last_seen_ms: 0,
            heartbeat_s: 5,
            started_ms: 0,
            version: "0.1.0".into(),
            max_risk: kernos_core::Risk::High,
            facts: Facts {
                os: "Debian GNU/Linux 12 (bookworm)".into(),
                cpus: 4,
                disks: vec![
                    Disk {
                        mount: "/".into(),
                        total: 1,
                        used_pct: 40.0,
                    },
                    Disk {
                        mount: "/var".into(),
                        total: 1,
                        used_pct: var_pct,
                    },
                ],
                ..Facts::default()
            },
        }
    }

    fn pick<'a>(sel: &str, nodes: &'a [NodeInfo]) -> Vec<&'a str> {
        let s = Selector::parse(sel).expect("parses");
        nodes
            .iter()
            .filter(|n| s.matches(n))
            .map(|n| n.name.as_str())
            .collect()
    }

    #[test]
    fn selectors_pick_by_label_name_fact_and_measure() {
        let nodes = [
            node("web-1", "web", 95.0),
            node("web-2", "web", 20.0),
            node("db-1", "db", 91.0),
        ];
        assert_eq!(pick("all", &nodes), ["web-1", "web-2", "db-1"]);
        assert_eq!(pick("role=web", &nodes), ["web-1", "web-2"]);
        assert_eq!(pick("role!=web", &nodes), ["db-1"]);
        assert_eq!(pick("name=web-*", &nodes), ["web-1", "web-2"]);
        assert_eq!(pick("disk./var>90%", &nodes), ["web-1", "db-1"]);
        assert_eq!(pick("disk./var/log>90%", &nodes), ["web-1", "db-1"]);
        assert_eq!(pick("role=web, disk./var>=95", &nodes), ["web-1"]);
        assert_eq!(pick("os=Debian*", &nodes).len(), 3);
        assert_eq!(pick("cpus>=8", &nodes).len(), 0);
    }

    #[test]
    fn bad_selectors_say_what_to_write() {
        for bad in [
            "",
            "role",
            "role>web",
            "disk.var>9",
            "disk./var>lots",
            "mem!=3",
            "a=1,,b=2",
        ] {
            let e = Selector::parse(bad).expect_err(bad).to_string();
            assert!(e.contains("e.g. `all`"), "{bad}: {e}");
        }
    }
}
