//! Monitor specifications: what to watch, when it counts as a problem, and what to propose.
//!
//! A spec is flat, so one reads naturally in TOML:
//!
//! ```toml
//! [[monitor]]
//! name = "scratch-full"
//! kind = "disk"
//! mount = "/srv/scratch"
//! threshold = 90        # per cent used: fires at or above
//! clear_below = 80      # re-arms only once usage is below 80 %
//! cooldown = "10m"      # never fires twice within 10 minutes
//! interval = "30s"      # how often it is read
//!
//! [monitor.remediation]
//! lease = "ls_01…"      # runs unasked when the lease covers the plan
//! max_risk = "medium"
//! plan = { steps = [{ tool = "fs", action = "clean", args = { path = "{mount}/cache" } }] }
//! ```
//!
//! The fields every monitor has (`name`, `threshold`, `clear_below`/`clear_above`, `cooldown`,
//! `interval`, `remediation`) sit beside the kind's own parameters; unknown fields are refused
//! with the monitor's name in the message, so a typo never silently disables a monitor.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use kernos_core::{Plan, Risk};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::error::SpecError;
use crate::template;

/// How often a monitor is read when the spec does not say.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
/// How long after firing a monitor stays quiet when the spec does not say.
pub const DEFAULT_COOLDOWN: Duration = Duration::from_secs(300);
/// The window of rate monitors (log pattern, file changes, journal events) by default.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(60);
/// The shortest interval accepted: faster polling costs more than it detects.
pub const MIN_INTERVAL: Duration = Duration::from_millis(100);

/// Placeholders every monitor's remediation may use, whatever its kind.
pub const COMMON_VARS: &[&str] = &["monitor", "value", "threshold"];

/// One monitor: a probe, its thresholds with hysteresis, its cool-down, and an optional
/// remediation. Build one from TOML with [`parse_monitors`] or from JSON with serde; both run
/// [`MonitorSpec::validate`].
#[derive(Debug, Clone, PartialEq)]
pub struct MonitorSpec {
    /// Unique name, used in events, notifications and placeholders (`{monitor}`).
    pub name: String,
    /// What is read and how.
    pub probe: Probe,
    /// The level at which the monitor fires (at or beyond it, in the kind's direction).
    pub threshold: f64,
    /// The level the value must pass back beyond before the monitor can fire again
    /// (`clear_below` for rising kinds, `clear_above` for falling ones). Equal to `threshold`
    /// when the spec gives none.
    pub clear: f64,
    /// After firing, the monitor does not fire again for this long, even if re-armed.
    pub cooldown: Duration,
    /// How often the value is read (push monitors are also re-evaluated at this pace, so a
    /// rate window that empties clears).
    pub interval: Duration,
    /// What to propose when it fires.
    pub remediation: Option<Remediation>,
}

/// Which way a value goes when things get worse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Higher is worse (disk used, load, matches per window): fires at `value >= threshold`,
    /// re-arms at `value < clear_below`.
    Rising,
    /// Lower is worse (days until a certificate expires): fires at `value <= threshold`,
    /// re-arms at `value > clear_above`.
    Falling,
}

/// Which of the load averages a load monitor reads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum LoadAverage {
    /// The one-minute average.
    #[default]
    #[serde(rename = "1m")]
    One,
    /// The five-minute average.
    #[serde(rename = "5m")]
    Five,
    /// The fifteen-minute average.
    #[serde(rename = "15m")]
    Fifteen,
}

/// What a monitor reads: the kind (`kind = "disk"`) and its parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Probe {
    /// Per cent of a filesystem's blocks in use (as `df` counts: of what non-root users can use).
    Disk {
        /// Any path on the filesystem, usually its mount point.
        mount: PathBuf,
    },
    /// Per cent of a filesystem's inodes in use.
    Inodes {
        /// Any path on the filesystem.
        mount: PathBuf,
    },
    /// Per cent of memory in use (`MemTotal - MemAvailable`).
    Memory {},
    /// Per cent of swap in use (0 when there is no swap).
    Swap {},
    /// Load average divided by the CPUs this process may use.
    Load {
        /// Which average (`"1m"`, `"5m"`, `"15m"`).
        #[serde(default)]
        average: LoadAverage,
    },
    /// Fires (value 1) when no process has this name (its `comm`, or its `argv[0]`'s file name).
    Process {
        /// The process name, e.g. `nginx` (`name` is the monitor's own).
        process: String,
    },
    /// Fires (value 1) when a service is not running. Without systemd to ask, a service is
    /// "active" when its pidfile names a live process or, without a pidfile, when a process
    /// of its name runs (`process`, else the unit name without `.service`).
    Service {
        /// The unit name, e.g. `nginx.service`.
        unit: String,
        /// A pidfile whose process must be alive.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pidfile: Option<PathBuf>,
        /// The process name to look for when there is no pidfile.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        process: Option<String>,
    },
    /// Fires (value 1) when nothing listens on a TCP port (read from `/proc/net/tcp{,6}`).
    Port {
        /// The port.
        port: u16,
        /// Only a listener bound to this address (or to the wildcard address) counts.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        address: Option<IpAddr>,
    },
    /// Fires (value 1) when a URL does not answer healthily: unreachable, an unexpected status,
    /// or slower than `max_latency`.
    Http {
        /// The health URL (`http://` or `https://`).
        url: String,
        /// Statuses that count as healthy; any 2xx or 3xx when empty.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        expect_status: Vec<u16>,
        /// How long to wait for an answer.
        #[serde(default = "default_http_timeout", with = "human")]
        timeout: Duration,
        /// Slower answers count as unhealthy.
        #[serde(default, with = "human_opt", skip_serializing_if = "Option::is_none")]
        max_latency: Option<Duration>,
    },
    /// Days until a TLS certificate expires (falling: fires at or below `threshold` days).
    /// Reads the certificate a server presents (`url`) or the certificates in a PEM file
    /// (`file`, the earliest expiry counts); exactly one of the two.
    TlsExpiry {
        /// `https://host[:port]` or `host:port`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        url: Option<String>,
        /// A PEM file of one or more certificates.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        file: Option<PathBuf>,
        /// How long to wait for the handshake.
        #[serde(default = "default_http_timeout", with = "human")]
        timeout: Duration,
    },
    /// Lines matching a regular expression per window, in a file followed across rotation
    /// and truncation. Only lines written after the monitor starts count.
    LogPattern {
        /// The log file.
        path: PathBuf,
        /// A regular expression (Rust `regex` syntax: linear time, no backreferences).
        pattern: String,
        /// The window matches are counted over.
        #[serde(default = "default_window", with = "human")]
        window: Duration,
    },
    /// Changes (created, written, removed, renamed, attributes) under a path per window,
    /// seen through inotify.
    FileChanges {
        /// A file or directory.
        path: PathBuf,
        /// Watch subdirectories too (including ones created later).
        #[serde(default = "yes")]
        recursive: bool,
        /// The window changes are counted over.
        #[serde(default = "default_window", with = "human")]
        window: Duration,
    },
    /// Journal events of a kind per window; the daemon feeds events in
    /// ([`crate::Runner::feed`]).
    JournalEvent {
        /// An event kind (`step.failed`), a prefix (`approval.*`) or `*`.
        event: String,
        /// Only events of this organisation.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        org: Option<String>,
        /// The window events are counted over.
        #[serde(default = "default_window", with = "human")]
        window: Duration,
    },
}

fn default_http_timeout() -> Duration {
    Duration::from_secs(5)
}

fn default_window() -> Duration {
    DEFAULT_WINDOW
}

fn yes() -> bool {
    true
}

impl Probe {
    /// The kind's name as written in specs (`disk`, `log_pattern`, …).
    pub fn kind(&self) -> &'static str {
        match self {
            Probe::Disk { .. } => "disk",
            Probe::Inodes { .. } => "inodes",
            Probe::Memory {} => "memory",
            Probe::Swap {} => "swap",
            Probe::Load { .. } => "load",
            Probe::Process { .. } => "process",
            Probe::Service { .. } => "service",
            Probe::Port { .. } => "port",
            Probe::Http { .. } => "http",
            Probe::TlsExpiry { .. } => "tls_expiry",
            Probe::LogPattern { .. } => "log_pattern",
            Probe::FileChanges { .. } => "file_changes",
            Probe::JournalEvent { .. } => "journal_event",
        }
    }

    /// Which way the value goes when things get worse.
    pub fn direction(&self) -> Direction {
        match self {
            Probe::TlsExpiry { .. } => Direction::Falling,
            _ => Direction::Rising,
        }
    }

    /// The threshold used when the spec gives none: 1 for the yes/no kinds (down = 1) and the
    /// counting kinds (one match fires); the measuring kinds need one.
    pub fn default_threshold(&self) -> Option<f64> {
        match self {
            Probe::Process { .. }
            | Probe::Service { .. }
            | Probe::Port { .. }
            | Probe::Http { .. }
            | Probe::LogPattern { .. }
            | Probe::FileChanges { .. }
            | Probe::JournalEvent { .. } => Some(1.0),
            Probe::TlsExpiry { .. } => Some(14.0),
            _ => None,
        }
    }

    /// Whether the value is pushed by events (inotify, the journal) rather than polled only.
    pub fn is_push(&self) -> bool {
        matches!(
            self,
            Probe::LogPattern { .. } | Probe::FileChanges { .. } | Probe::JournalEvent { .. }
        )
    }

    /// The placeholders a reading of this kind fills, besides [`COMMON_VARS`].
    pub fn vars(&self) -> &'static [&'static str] {
        match self {
            Probe::Disk { .. } => &["mount", "used_pct", "free_bytes", "size_bytes"],
            Probe::Inodes { .. } => &["mount", "used_pct", "free_inodes", "total_inodes"],
            Probe::Memory {} => &["used_pct", "available_bytes", "total_bytes"],
            Probe::Swap {} => &["used_pct", "free_bytes", "total_bytes"],
            Probe::Load { .. } => &["load", "cores"],
            Probe::Process { .. } => &["process", "count"],
            Probe::Service { .. } => &["unit", "how"],
            Probe::Port { .. } => &["port", "address"],
            Probe::Http { .. } => &["url", "status", "latency_ms", "error"],
            Probe::TlsExpiry { .. } => &["source", "days_left", "not_after", "subject"],
            Probe::LogPattern { .. } => &["path", "pattern", "matches", "last_line"],
            Probe::FileChanges { .. } => &["path", "changes", "last_path"],
            Probe::JournalEvent { .. } => &["event", "org", "count", "last_kind"],
        }
    }

    fn check(&self) -> Result<(), String> {
        match self {
            Probe::Disk { mount } | Probe::Inodes { mount } if !mount.is_absolute() => Err(
                format!("mount {} must be an absolute path", mount.display()),
            ),
            Probe::Process { process } if process.is_empty() || process.contains('/') => Err(
                format!("process {process:?} must be a program name, not empty or a path"),
            ),
            Probe::Service { unit, .. } if unit.is_empty() => Err("unit must not be empty".into()),
            Probe::Port { port: 0, .. } => Err("port 0 is not a port".into()),
            Probe::Http { url, .. } => match reqwest::Url::parse(url) {
                Ok(u) if matches!(u.scheme(), "http" | "https") => Ok(()),
                Ok(u) => Err(format!(
                    "url {url:?} has scheme {:?}; use http or https",
                    u.scheme()
                )),
                Err(e) => Err(format!("url {url:?}: {e}")),
            },
            Probe::TlsExpiry { url, file, .. } => match (url, file) {
                (Some(_), Some(_)) | (None, None) => {
                    Err("tls_expiry needs exactly one of url and file".into())
                }
                (Some(u), None) => split_host_port(u).map(|_| ()),
                (None, Some(_)) => Ok(()),
            },
            Probe::LogPattern { window, .. }
            | Probe::FileChanges { window, .. }
            | Probe::JournalEvent { window, .. }
                if window.is_zero() =>
            {
                Err("window must be longer than zero".into())
            }
            Probe::LogPattern { pattern, .. } => regex::Regex::new(pattern)
                .map(|_| ())
                .map_err(|e| format!("pattern {pattern:?}: {e}")),
            _ => Ok(()),
        }
    }
}

/// What to propose when a monitor fires. Data only: the daemon turns it into an action that
/// goes through policy like any other (within `lease` and `max_risk` it runs unasked,
/// otherwise it waits for approval). Never a shell string.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Remediation {
    /// A plan template; `{name}` in any string is replaced by the reading's value of that name
    /// (`{{` and `}}` write literal braces).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<Plan>,
    /// A goal for an agent (or the planner), with the same placeholders.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// The lease the remediation runs under; without one every changing step is asked about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<String>,
    /// The highest risk a step may have to run without asking, even within the lease.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_risk: Option<Risk>,
}

/// The fields every monitor has, as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Common {
    name: String,
    #[serde(default)]
    threshold: Option<f64>,
    #[serde(default)]
    clear_below: Option<f64>,
    #[serde(default)]
    clear_above: Option<f64>,
    #[serde(default, with = "human_opt")]
    cooldown: Option<Duration>,
    #[serde(default, with = "human_opt")]
    interval: Option<Duration>,
    #[serde(default)]
    remediation: Option<Remediation>,
}

const COMMON_FIELDS: &[&str] = &[
    "name",
    "threshold",
    "clear_below",
    "clear_above",
    "cooldown",
    "interval",
    "remediation",
];

impl MonitorSpec {
    /// Checks what serde cannot: thresholds against the kind's direction, parameters, and that
    /// the remediation uses only placeholders this kind provides.
    pub fn validate(&self) -> Result<(), SpecError> {
        let bad = |reason: String| SpecError::Invalid {
            monitor: self.name.clone(),
            reason,
        };
        if self.name.trim().is_empty() {
            return Err(SpecError::Parse("a monitor needs a non-empty name".into()));
        }
        self.probe.check().map_err(bad)?;
        if !self.threshold.is_finite() || !self.clear.is_finite() {
            return Err(bad(
                "threshold and clear level must be finite numbers".into()
            ));
        }
        match self.probe.direction() {
            Direction::Rising if self.clear > self.threshold => Err(bad(format!(
                "clear_below {} is above threshold {}; it must be at or below it",
                self.clear, self.threshold
            ))),
            Direction::Falling if self.clear < self.threshold => Err(bad(format!(
                "clear_above {} is below threshold {}; it must be at or above it",
                self.clear, self.threshold
            ))),
            _ => Ok(()),
        }?;
        if self.interval < MIN_INTERVAL {
            return Err(bad(format!(
                "interval {} is shorter than the minimum {}",
                humantime::format_duration(self.interval),
                humantime::format_duration(MIN_INTERVAL)
            )));
        }
        if let Some(r) = &self.remediation {
            self.check_remediation(r).map_err(bad)?;
        }
        Ok(())
    }

    fn check_remediation(&self, r: &Remediation) -> Result<(), String> {
        let known: BTreeSet<&str> = COMMON_VARS
            .iter()
            .chain(self.probe.vars())
            .copied()
            .collect();
        match (&r.plan, &r.agent) {
            (Some(_), Some(_)) | (None, None) => {
                Err("remediation needs exactly one of plan and agent".into())
            }
            (Some(plan), None) => {
                if plan.steps.is_empty() {
                    return Err("remediation plan has no steps".into());
                }
                let v = serde_json::to_value(plan).map_err(|e| e.to_string())?;
                template::check_value(&v, &known).map_err(|e| format!("remediation: {e}"))
            }
            (None, Some(goal)) if goal.trim().is_empty() => {
                Err("remediation agent goal is empty".into())
            }
            (None, Some(goal)) => {
                template::check_str(goal, &known).map_err(|e| format!("remediation: {e}"))
            }
        }
    }

    fn from_parts(mut fields: Map<String, Value>) -> Result<MonitorSpec, SpecError> {
        let name = fields
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("(unnamed)")
            .to_owned();
        let mut common = Map::new();
        for k in COMMON_FIELDS {
            if let Some(v) = fields.remove(*k) {
                common.insert((*k).to_owned(), v);
            }
        }
        let invalid = |e: serde_json::Error| SpecError::Invalid {
            monitor: name.clone(),
            reason: e.to_string(),
        };
        let c = Common::deserialize(Value::Object(common)).map_err(invalid)?;
        if !fields.contains_key("kind") {
            return Err(SpecError::Invalid {
                monitor: name,
                reason: "missing `kind` (disk, inodes, memory, swap, load, process, service, \
                         port, http, tls_expiry, log_pattern, file_changes, journal_event)"
                    .into(),
            });
        }
        let probe = Probe::deserialize(Value::Object(fields)).map_err(invalid)?;
        let bad = |reason: String| SpecError::Invalid {
            monitor: c.name.clone(),
            reason,
        };
        let threshold = match (c.threshold, probe.default_threshold()) {
            (Some(t), _) | (None, Some(t)) => t,
            (None, None) => {
                return Err(bad(format!("a {} monitor needs a threshold", probe.kind())));
            }
        };
        let clear = match (probe.direction(), c.clear_below, c.clear_above) {
            (Direction::Rising, _, Some(_)) => {
                return Err(bad(format!(
                    "{} rises when things get worse: use clear_below, not clear_above",
                    probe.kind()
                )));
            }
            (Direction::Falling, Some(_), _) => {
                return Err(bad(format!(
                    "{} falls when things get worse: use clear_above, not clear_below",
                    probe.kind()
                )));
            }
            (_, Some(v), None) | (_, None, Some(v)) => v,
            _ => threshold,
        };
        let spec = MonitorSpec {
            name: c.name,
            probe,
            threshold,
            clear,
            cooldown: c.cooldown.unwrap_or(DEFAULT_COOLDOWN),
            interval: c.interval.unwrap_or(DEFAULT_INTERVAL),
            remediation: c.remediation,
        };
        spec.validate()?;
        Ok(spec)
    }
}

impl<'de> Deserialize<'de> for MonitorSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let fields = Map::<String, Value>::deserialize(d)?;
        MonitorSpec::from_parts(fields).map_err(D::Error::custom)
    }
}

impl Serialize for MonitorSpec {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::Error as _;
        let mut m = match serde_json::to_value(&self.probe).map_err(S::Error::custom)? {
            Value::Object(m) => m,
            _ => return Err(S::Error::custom("a probe serialises to a table")),
        };
        m.insert("name".into(), self.name.clone().into());
        m.insert("threshold".into(), self.threshold.into());
        let clear = match self.probe.direction() {
            Direction::Rising => "clear_below",
            Direction::Falling => "clear_above",
        };
        m.insert(clear.into(), self.clear.into());
        m.insert("cooldown".into(), human_string(self.cooldown).into());
        m.insert("interval".into(), human_string(self.interval).into());
        if let Some(r) = &self.remediation {
            m.insert(
                "remediation".into(),
                serde_json::to_value(r).map_err(S::Error::custom)?,
            );
        }
        m.serialize(s)
    }
}

/// A monitors file: `[[monitor]]` tables.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct MonitorsFile {
    #[serde(default)]
    monitor: Vec<MonitorSpec>,
}

/// Parses `[[monitor]]` tables from TOML and checks that names are unique.
pub fn parse_monitors(toml_text: &str) -> Result<Vec<MonitorSpec>, SpecError> {
    let file: MonitorsFile =
        toml::from_str(toml_text).map_err(|e| SpecError::Parse(e.to_string()))?;
    check_unique(&file.monitor)?;
    Ok(file.monitor)
}

/// Refuses two monitors of one name.
pub fn check_unique(specs: &[MonitorSpec]) -> Result<(), SpecError> {
    let mut seen = BTreeSet::new();
    for s in specs {
        if !seen.insert(s.name.as_str()) {
            return Err(SpecError::Duplicate(s.name.clone()));
        }
    }
    Ok(())
}

/// Splits `https://host[:port][/…]` or `host:port` into host and port (443 by default).
pub(crate) fn split_host_port(target: &str) -> Result<(String, u16), String> {
    let with_scheme = if target.contains("://") {
        target.to_owned()
    } else {
        format!("https://{target}")
    };
    let url = reqwest::Url::parse(&with_scheme).map_err(|e| format!("url {target:?}: {e}"))?;
    let host = url
        .host_str()
        .ok_or_else(|| format!("url {target:?} has no host"))?;
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    Ok((host, url.port_or_known_default().unwrap_or(443)))
}

fn human_string(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

fn parse_human(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{s:?} is not a duration like 30s or 5m: {e}"))
}

/// Durations as human strings (`"30s"`, `"5m"`, `"1h 30m"`).
mod human {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::human_string(*d))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        super::parse_human(&s).map_err(serde::de::Error::custom)
    }
}

/// Optional durations as human strings.
mod human_opt {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&super::human_string(*d)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        match Option::<String>::deserialize(d)? {
            Some(s) => super::parse_human(&s)
                .map(Some)
                .map_err(serde::de::Error::custom),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_split_into_host_and_port() {
        assert_eq!(
            split_host_port("https://example.org/health").unwrap(),
            ("example.org".into(), 443)
        );
        assert_eq!(
            split_host_port("127.0.0.1:8443").unwrap(),
            ("127.0.0.1".into(), 8443)
        );
        assert_eq!(split_host_port("[::1]:9").unwrap(), ("::1".into(), 9));
        assert!(split_host_port("https://").is_err());
    }
}
