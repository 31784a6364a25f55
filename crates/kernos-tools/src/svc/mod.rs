//! The `svc` tool: system services through the machine's own service manager.
//!
//! Two backends, chosen at run time:
//!
//! - **systemd** when the machine was booted with it (`/run/systemd/system` exists, as
//!   `sd_booted()` checks) and `systemctl` is installed: `systemctl` and `journalctl`.
//! - **init scripts** (SysV style, `/etc/init.d/NAME start|stop`) otherwise — containers and
//!   machines whose PID 1 is not systemd. State and main pid come from the script's pid file
//!   (or its `DAEMON=` executable), read in-process; enabled means an `S` link in
//!   `/etc/rc[2-5].d` (changed with `update-rc.d`); logs come from the log file the script
//!   names or `/var/log/NAME.log`.
//!
//! Changes run in the sandbox derived from their effects: a privileged effect on the service
//! gives the service lifetime (a daemon an init script starts outlives the step, confined to
//! what the step declared), and any effect on a service lets `systemctl` reach systemd's
//! private socket or the D-Bus system bus (see `crate::sandbox`).
//!
//! When neither applies, every action says so: "no systemd on this machine and no init script
//! for NAME: svc.* is unavailable".
//!
//! Changes (`start`, `stop`, `restart`, `enable`, `disable`) query the current state first
//! (read-only), do nothing when the service is already there, record the inverse step for undo
//! before acting (`stop` → `start` when it was running, `start` → `stop`, `enable` ↔ `disable`;
//! a restart of a running service, or a stop of one whose state cannot be read, has no
//! inverse), then act and verify the new state.
//!
//! Rows (every action but `logs`): `name`, `state` (`active`, `inactive`, `failed`,
//! `activating`, … or `unknown`), `sub` (systemd's sub-state such as `running` or `exited`;
//! for an init script, what its state was read from), `enabled` (`enabled`, `disabled`, `static`, `masked`, … or
//! `unknown`), `pid`, `since` (when the current state began, or when the main process
//! started), `description`. `logs` rows: `time`, `source`, `message`.

mod systemd;
mod sysv;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use kernos_core::{ColumnKind, Effect, EffectKind, Reversibility, Target};
use serde_json::{Map, Value, json};

use crate::args::{SvcList, SvcLogs, SvcName};
use crate::ctx::Ctx;
use crate::error::{Result, ToolError};
use crate::output::{Change, Output, row};
use crate::registry::{Action, Meta, Registry};
use crate::undo::Recorder;

use sysv::SysV;

/// Registers the `svc` actions (backend detected on each call).
pub fn register(r: &mut Registry) {
    register_config(r, Config::default());
}

/// Test support: registers the `svc` actions with the init-script backend forced to the
/// scripts in `init_dir` (runlevel links in `init_dir/../rcN.d`), whatever the machine runs.
/// Tests use it to drive a service they wrote in a temporary directory; it never touches
/// `/etc/init.d`. Only in builds with the `testing` feature.
#[cfg(feature = "testing")]
pub fn register_with_init_dir(r: &mut Registry, init_dir: impl Into<PathBuf>) {
    register_config(
        r,
        Config {
            init_dir: Some(init_dir.into()),
        },
    );
}

fn register_config(r: &mut Registry, cfg: Config) {
    let cfg = Arc::new(cfg);
    r.register(List(cfg.clone()));
    r.register(StatusOf(cfg.clone()));
    for op in [Op::Start, Op::Stop, Op::Restart, Op::Enable, Op::Disable] {
        r.register(Change1 {
            cfg: cfg.clone(),
            op,
        });
    }
    r.register(Logs(cfg));
}

/// Backend selection.
#[derive(Debug, Clone, Default)]
struct Config {
    /// Force the init-script backend with this script directory (tests only).
    init_dir: Option<PathBuf>,
}

/// The service manager in use.
enum Backend {
    Systemd,
    SysV(SysV),
}

const INIT_DIR: &str = "/etc/init.d";

fn systemd_booted() -> bool {
    Path::new("/run/systemd/system").is_dir() && crate::probe::which("systemctl").is_some()
}

impl Config {
    /// The backend for the machine, or why there is none.
    fn backend(&self) -> Result<Backend> {
        if let Some(d) = &self.init_dir {
            return Ok(Backend::SysV(SysV::new(d, false)));
        }
        if systemd_booted() {
            return Ok(Backend::Systemd);
        }
        if Path::new(INIT_DIR).is_dir() {
            return Ok(Backend::SysV(SysV::new(Path::new(INIT_DIR), true)));
        }
        Err(ToolError::Unavailable(
            "no systemd on this machine and no /etc/init.d: svc.* is unavailable".into(),
        ))
    }

    /// The backend that can handle service `name`, or the error saying none can.
    fn backend_for(&self, name: &str) -> Result<Backend> {
        let b = self.backend().map_err(|_| unavailable(name))?;
        if let Backend::SysV(s) = &b {
            if s.script(name).is_none() {
                return Err(unavailable(name));
            }
        }
        Ok(b)
    }
}

fn unavailable(name: &str) -> ToolError {
    ToolError::Unavailable(format!(
        "no systemd on this machine and no init script for {name}: svc.* is unavailable"
    ))
}

/// Checks a service name before it reaches any command line.
fn valid_name(name: &str) -> Result<&str> {
    let ok = !name.is_empty()
        && name.len() <= 255
        && !name.starts_with(['-', '.'])
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ":_.@-\\".contains(c));
    if ok {
        Ok(name)
    } else {
        Err(ToolError::InvalidArgs(format!(
            "{name:?} is not a service name: use letters, digits and : _ . @ - (e.g. nginx or ssh.service)"
        )))
    }
}

/// One service's state.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Status {
    name: String,
    state: String,
    sub: Option<String>,
    enabled: String,
    pid: Option<u32>,
    since: Option<i64>,
    description: Option<String>,
}

impl Status {
    fn row(&self) -> Map<String, Value> {
        row([
            ("name", json!(self.name)),
            ("state", json!(self.state)),
            ("sub", json!(self.sub)),
            ("enabled", json!(self.enabled)),
            ("pid", json!(self.pid)),
            ("since", json!(self.since)),
            ("description", json!(self.description)),
        ])
    }

    fn running(&self) -> bool {
        matches!(self.state.as_str(), "active" | "activating" | "reloading")
    }

    fn line(&self) -> String {
        let mut s = format!("{}: {}", self.name, self.state);
        if let Some(sub) = &self.sub {
            s.push_str(&format!(" ({sub})"));
        }
        if let Some(p) = self.pid {
            s.push_str(&format!(", pid {p}"));
        }
        s.push_str(&format!(", {}", self.enabled));
        s
    }
}

const STATUS_COLUMNS: &[(&str, ColumnKind)] = &[
    ("name", ColumnKind::Text),
    ("state", ColumnKind::Text),
    ("sub", ColumnKind::Text),
    ("enabled", ColumnKind::Text),
    ("pid", ColumnKind::Pid),
    ("since", ColumnKind::Time),
    ("description", ColumnKind::Text),
];

impl Backend {
    fn status(&self, ctx: &Ctx<'_>, name: &str) -> Result<Status> {
        match self {
            Backend::Systemd => systemd::status(ctx, name),
            Backend::SysV(s) => s.status(ctx, name),
        }
    }

    fn list(&self, ctx: &Ctx<'_>) -> Result<Vec<Status>> {
        match self {
            Backend::Systemd => systemd::list(ctx),
            Backend::SysV(s) => s.list(ctx),
        }
    }
}

// ----------------------------------------------------------------------------- list/status

/// `svc.list`.
struct List(Arc<Config>);

/// A row filter.
type Keep = Box<dyn Fn(&Status) -> bool>;

/// Which rows a `state` filter keeps.
fn state_filter(f: &str) -> Result<Keep> {
    let f = f.trim().to_ascii_lowercase();
    Ok(match f.as_str() {
        "running" | "active" | "started" | "up" => Box::new(|s: &Status| s.running()),
        "stopped" | "inactive" | "dead" | "down" | "not running" => {
            Box::new(|s: &Status| s.state == "inactive")
        }
        "failed" | "failing" | "broken" => Box::new(|s: &Status| s.state == "failed"),
        "enabled" => Box::new(|s: &Status| s.enabled.starts_with("enabled")),
        "disabled" => Box::new(|s: &Status| s.enabled == "disabled"),
        "unknown" => Box::new(|s: &Status| s.state == "unknown"),
        other => {
            return Err(ToolError::InvalidArgs(format!(
                "unknown state {other:?}: use running, stopped, failed, enabled, disabled or unknown"
            )));
        }
    })
}

impl Action for List {
    type Args = SvcList;

    fn meta(&self) -> Meta {
        Meta {
            tool: "svc",
            name: "list",
            summary: "List system services with their state, enabled status and main process",
            effects: &[EffectKind::Read],
            reversibility: Reversibility::ReadOnly,
            output: STATUS_COLUMNS,
        }
    }

    fn effects(&self, args: &SvcList, _ctx: &Ctx<'_>) -> Result<Vec<Effect>> {
        // A bad filter is an argument error before anything runs.
        if let Some(f) = &args.state {
            let _ = state_filter(f)?;
        }
        // Every service: a read of the service manager, whose control socket the query needs.
        Ok(vec![Effect {
            kind: EffectKind::Read,
            target: Target::Service { name: "*".into() },
        }])
    }

    fn execute(&self, args: &SvcList, ctx: &Ctx<'_>, _undo: &mut Recorder<'_>) -> Result<Output> {
        let keep = match &args.state {
            Some(f) => state_filter(f)?,
            None => Box::new(|_: &Status| true),
        };
        let all = self.0.backend()?.list(ctx)?;
        let total = all.len();
        let rows: Vec<_> = all.iter().filter(|s| keep(s)).map(Status::row).collect();
        let running = all.iter().filter(|s| s.running()).count();
        let failed = all.iter().filter(|s| s.state == "failed").count();
        let summary = match &args.state {
            Some(f) => format!("{} {f} of {total} services", rows.len()),
            None => format!("{total} services: {running} running, {failed} failed"),
        };
        Ok(Output::table(Vec::new(), rows).with_summary(summary))
    }
}

/// `svc.status`.
struct StatusOf(Arc<Config>);

impl Action for StatusOf {
    type Args = SvcName;

    fn meta(&self) -> Meta {
        Meta {
            tool: "svc",
            name: "status",
            summary: "Show one service: running or not, enabled, main process, since when",
            effects: &[EffectKind::Read],
            reversibility: Reversibility::ReadOnly,
            output: STATUS_COLUMNS,
        }
    }

    fn effects(&self, args: &SvcName, _ctx: &Ctx<'_>) -> Result<Vec<Effect>> {
        let name = valid_name(&args.name)?;
        Ok(vec![Effect {
            kind: EffectKind::Read,
            target: Target::Service {
                name: name.to_owned(),
            },
        }])
    }

    fn execute(&self, args: &SvcName, ctx: &Ctx<'_>, _undo: &mut Recorder<'_>) -> Result<Output> {
        let name = valid_name(&args.name)?;
        let st = self.0.backend_for(name)?.status(ctx, name)?;
        Ok(Output::table(Vec::new(), vec![st.row()]).with_summary(st.line()))
    }
}

// --------------------------------------------------------------------------------- changes

/// A state change of one service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Start,
    Stop,
    Restart,
    Enable,
    Disable,
}

impl Op {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Op::Start => "start",
            Op::Stop => "stop",
            Op::Restart => "restart",
            Op::Enable => "enable",
            Op::Disable => "disable",
        }
    }

    fn summary(self) -> &'static str {
        match self {
            Op::Start => "Start a service (undo stops it again)",
            Op::Stop => "Stop a running service (undo starts it again)",
            Op::Restart => "Restart a service (starts it if it was stopped)",
            Op::Enable => "Enable a service at boot (undo disables it)",
            Op::Disable => "Disable a service at boot (undo enables it)",
        }
    }

    /// Whether it changes the running state (as opposed to the boot configuration).
    fn runtime(self) -> bool {
        matches!(self, Op::Start | Op::Stop | Op::Restart)
    }
}

/// A state change: (from, to).
type Transition = (String, String);

/// What `op` changes for a service in state `st`: `None` when there is nothing to do.
fn transition(op: Op, st: &Status) -> Result<Option<Transition>> {
    let from = || st.state.clone();
    match op {
        Op::Start => Ok((!st.running()).then(|| (from(), "active".into()))),
        // A service whose state cannot be read may be running: stopping is what was asked,
        // and an init script's stop is harmless when it is not.
        Op::Stop => {
            Ok((st.running() || st.state == "unknown").then(|| (from(), "inactive".into())))
        }
        Op::Restart if st.running() => Ok(Some((from(), "restarted".into()))),
        Op::Restart => Ok(Some((from(), "active".into()))),
        Op::Enable | Op::Disable => {
            let enable = op == Op::Enable;
            let name = &st.name;
            match st.enabled.as_str() {
                "enabled" | "enabled-runtime" if enable => Ok(None),
                "enabled" | "enabled-runtime" => Ok(Some((st.enabled.clone(), "disabled".into()))),
                "disabled" if enable => Ok(Some(("disabled".into(), "enabled".into()))),
                "disabled" => Ok(None),
                "masked" | "masked-runtime" => Err(ToolError::Refused(format!(
                    "{name} is masked, so it cannot be {}d: unmask it first (systemctl unmask {name})",
                    op.as_str()
                ))),
                "static" | "indirect" | "generated" | "transient" | "alias" | "linked"
                | "linked-runtime" => Err(ToolError::Refused(format!(
                    "{name} is {}: it has no install section of its own, so it cannot be {}d; it runs when another unit needs it",
                    st.enabled,
                    op.as_str()
                ))),
                other => Err(ToolError::Failed(format!(
                    "cannot tell whether {name} is enabled (the service manager says {other:?}), so it is left as it is"
                ))),
            }
        }
    }
}

/// `svc.start|stop|restart|enable|disable`.
struct Change1 {
    cfg: Arc<Config>,
    op: Op,
}

impl Change1 {
    fn plan(&self, name: &str, ctx: &Ctx<'_>) -> Result<(Backend, Status, Option<Transition>)> {
        let b = self.cfg.backend_for(name)?;
        let st = b.status(ctx, name)?;
        let t = transition(self.op, &st)?;
        Ok((b, st, t))
    }
}

impl Action for Change1 {
    type Args = SvcName;

    fn meta(&self) -> Meta {
        let (effects, reversibility): (&'static [EffectKind], _) = match self.op {
            // Init scripts start daemons that inherit the step's confinement, so a start may
            // need the network the daemon serves.
            Op::Start | Op::Restart => (
                &[
                    EffectKind::Write,
                    EffectKind::Privileged,
                    EffectKind::Exec,
                    EffectKind::Network,
                ],
                if self.op == Op::Start {
                    Reversibility::Reversible
                } else {
                    Reversibility::Irreversible
                },
            ),
            _ => (
                &[EffectKind::Write, EffectKind::Privileged, EffectKind::Exec],
                Reversibility::Reversible,
            ),
        };
        Meta {
            tool: "svc",
            name: self.op.as_str(),
            summary: self.op.summary(),
            effects,
            reversibility,
            output: STATUS_COLUMNS,
        }
    }

    fn effects(&self, args: &SvcName, _ctx: &Ctx<'_>) -> Result<Vec<Effect>> {
        let name = valid_name(&args.name)?;
        let service = Target::Service {
            name: name.to_owned(),
        };
        let mut v = vec![
            Effect {
                kind: EffectKind::Privileged,
                target: service.clone(),
            },
            Effect {
                kind: EffectKind::Write,
                target: service,
            },
        ];
        match self.cfg.backend_for(name)? {
            Backend::Systemd => {
                if !self.op.runtime() {
                    // systemd itself writes the links, but policy should see where they go.
                    v.push(Effect::path(EffectKind::Write, "/etc/systemd/system", true));
                }
            }
            Backend::SysV(s) => v.extend(s.effects(name, self.op)),
        }
        Ok(v)
    }

    fn dry_run(&self, args: &SvcName, ctx: &Ctx<'_>) -> Result<Vec<Change>> {
        let name = valid_name(&args.name)?;
        let (_, _, t) = self.plan(name, ctx)?;
        Ok(t.into_iter()
            .map(|(from, to)| Change::Service {
                name: name.to_owned(),
                from,
                to,
            })
            .collect())
    }

    fn execute(&self, args: &SvcName, ctx: &Ctx<'_>, undo: &mut Recorder<'_>) -> Result<Output> {
        let name = valid_name(&args.name)?;
        let (b, before, t) = self.plan(name, ctx)?;
        let Some((from, to)) = t else {
            let what = match self.op {
                Op::Start => "already running",
                Op::Stop => "not running",
                Op::Enable => "already enabled",
                Op::Disable => "already disabled",
                Op::Restart => "unchanged",
            };
            return Ok(Output::table(Vec::new(), vec![before.row()])
                .with_summary(format!("{name} is {what}; nothing to do")));
        };
        // The way back, journaled before anything changes.
        let inverse = match self.op {
            Op::Start => Some("stop"),
            // Undo must not start a service nobody knew was running.
            Op::Stop if !before.running() => None,
            Op::Stop => Some("start"),
            Op::Restart if !before.running() => Some("stop"),
            Op::Restart => None,
            Op::Enable => Some("disable"),
            Op::Disable => Some("enable"),
        };
        if let Some(inv) = inverse {
            undo.inverse_step("svc", inv, json!({ "name": name }))?;
        }
        match &b {
            Backend::Systemd => systemd::act(ctx, name, self.op)?,
            Backend::SysV(s) => s.act(ctx, name, self.op)?,
        }
        let after = b.status(ctx, name)?;
        let reached = match self.op {
            Op::Start | Op::Restart => after.running() || after.state == "unknown",
            Op::Stop => !after.running(),
            Op::Enable => after.enabled.starts_with("enabled"),
            Op::Disable => after.enabled == "disabled",
        };
        if !reached {
            return Err(ToolError::Failed(format!(
                "{} did not take effect: now {}; `svc.logs {name}` may say why",
                self.op.as_str(),
                after.line()
            )));
        }
        let mut summary = format!("{name}: {from} -> {to}");
        if after.state == "unknown" && self.op.runtime() {
            summary.push_str(" (its init script cannot report status, so this is unverified)");
        }
        Ok(Output {
            rows: vec![after.row()],
            summary: Some(summary),
            changes: vec![Change::Service {
                name: name.to_owned(),
                from,
                to,
            }],
            ..Output::default()
        })
    }
}

// ------------------------------------------------------------------------------------ logs

/// `svc.logs`.
struct Logs(Arc<Config>);

/// Most lines one call returns.
const MAX_LOG_LINES: usize = 10_000;

/// One log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LogLine {
    time: Option<i64>,
    source: String,
    message: String,
}

impl Action for Logs {
    type Args = SvcLogs;

    fn meta(&self) -> Meta {
        Meta {
            tool: "svc",
            name: "logs",
            summary: "Show a service's recent log lines (journal, or its log file)",
            effects: &[EffectKind::Read],
            reversibility: Reversibility::ReadOnly,
            output: &[
                ("time", ColumnKind::Time),
                ("source", ColumnKind::Text),
                ("message", ColumnKind::Text),
            ],
        }
    }

    fn effects(&self, args: &SvcLogs, _ctx: &Ctx<'_>) -> Result<Vec<Effect>> {
        let name = valid_name(&args.name)?;
        let mut v = vec![Effect {
            kind: EffectKind::Read,
            target: Target::Service {
                name: name.to_owned(),
            },
        }];
        if let Ok(Backend::SysV(s)) = self.cfg_backend(name) {
            if let Some(p) = s.log_file(name) {
                v.push(Effect::path(EffectKind::Read, p, false));
            }
        }
        Ok(v)
    }

    fn execute(&self, args: &SvcLogs, ctx: &Ctx<'_>, _undo: &mut Recorder<'_>) -> Result<Output> {
        let name = valid_name(&args.name)?;
        let n = args.lines.clamp(1, MAX_LOG_LINES);
        let (lines, source_note) = match self.cfg_backend(name)? {
            Backend::Systemd => (systemd::logs(ctx, name, n, args.since)?, None),
            Backend::SysV(s) => match s.log_file(name) {
                Some(p) => {
                    let lines = sysv::tail_file(&p, n)?;
                    let note = args.since.map(|_| {
                        "`since` is not applied: plain log files carry no reliable timestamps"
                            .to_owned()
                    });
                    (
                        lines
                            .into_iter()
                            .map(|m| LogLine {
                                time: None,
                                source: p.display().to_string(),
                                message: m,
                            })
                            .collect(),
                        note,
                    )
                }
                None => {
                    return Ok(Output::text(String::new()).with_summary(format!(
                        "no log known for {name}: this machine has no journal (no systemd) and its init script names no log file; look under /var/log"
                    )));
                }
            },
        };
        let text: String = lines.iter().map(|l| format!("{}\n", l.message)).collect();
        let mut summary = format!("{} log lines of {name}", lines.len());
        if let Some(n) = source_note {
            summary.push_str(&format!(" ({n})"));
        }
        let rows = lines
            .into_iter()
            .map(|l| {
                row([
                    ("time", json!(l.time)),
                    ("source", json!(l.source)),
                    ("message", json!(l.message)),
                ])
            })
            .collect();
        Ok(Output {
            rows,
            text: Some(text),
            summary: Some(summary),
            ..Output::default()
        })
    }
}

impl Logs {
    fn cfg_backend(&self, name: &str) -> Result<Backend> {
        self.0.backend_for(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(state: &str, enabled: &str) -> Status {
        Status {
            name: "web".into(),
            state: state.into(),
            enabled: enabled.into(),
            ..Status::default()
        }
    }

    fn t(op: Op, s: &Status) -> Option<(String, String)> {
        transition(op, s).unwrap()
    }

    #[test]
    fn transitions() {
        let pair = |a: &str, b: &str| Some((a.to_owned(), b.to_owned()));
        assert_eq!(
            t(Op::Start, &st("inactive", "disabled")),
            pair("inactive", "active")
        );
        assert_eq!(
            t(Op::Start, &st("failed", "enabled")),
            pair("failed", "active")
        );
        assert_eq!(t(Op::Start, &st("active", "enabled")), None);
        assert_eq!(
            t(Op::Stop, &st("active", "enabled")),
            pair("active", "inactive")
        );
        assert_eq!(t(Op::Stop, &st("inactive", "enabled")), None);
        assert_eq!(
            t(Op::Stop, &st("unknown", "enabled")),
            pair("unknown", "inactive")
        );
        assert_eq!(
            t(Op::Restart, &st("active", "x")),
            pair("active", "restarted")
        );
        assert_eq!(
            t(Op::Restart, &st("inactive", "x")),
            pair("inactive", "active")
        );
        assert_eq!(
            t(Op::Enable, &st("active", "disabled")),
            pair("disabled", "enabled")
        );
        assert_eq!(t(Op::Enable, &st("active", "enabled")), None);
        assert_eq!(
            t(Op::Disable, &st("active", "enabled")),
            pair("enabled", "disabled")
        );
        assert_eq!(t(Op::Disable, &st("active", "disabled")), None);
    }

    #[test]
    fn impossible_boot_changes_are_refused_with_the_reason() {
        let e = transition(Op::Enable, &st("active", "masked")).unwrap_err();
        assert!(e.to_string().contains("unmask"), "{e}");
        let e = transition(Op::Disable, &st("active", "static")).unwrap_err();
        assert!(e.to_string().contains("static"), "{e}");
    }

    #[test]
    fn names_are_checked() {
        assert!(valid_name("nginx").is_ok());
        assert!(valid_name("getty@tty1.service").is_ok());
        for bad in ["", "-o", "../x", "a b", "x;rm", ".hidden", "a/b"] {
            assert!(valid_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn state_filters() {
        assert!(state_filter("running").unwrap()(&st("active", "enabled")));
        assert!(!state_filter("running").unwrap()(&st("failed", "enabled")));
        assert!(state_filter("Stopped").unwrap()(&st("inactive", "enabled")));
        assert!(state_filter("disabled").unwrap()(&st(
            "inactive", "disabled"
        )));
        assert!(state_filter("sleeping").is_err());
    }
}
