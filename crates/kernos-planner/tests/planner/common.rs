//! Shared helpers: one planner, a fixed home, and plan validation against the tool catalog.

use std::marker::PhantomData;
use std::sync::OnceLock;

use kernos_core::{ColumnKind, Effect, EffectKind, Plan, Reversibility};
use kernos_planner::{Outcome, PlanContext, Planner};
use kernos_tools::args::*;
use kernos_tools::output::Output;
use kernos_tools::{Action, Ctx, Meta, Recorder, Registry, ToolError};
use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// The home directory the tests plan with.
pub const HOME: &str = "/home/u";

/// One planner for the whole binary (building it is cheap, but there is no need to repeat it).
pub fn planner() -> &'static Planner {
    static P: OnceLock<Planner> = OnceLock::new();
    P.get_or_init(Planner::new)
}

/// A context without conversation.
pub fn ctx() -> PlanContext {
    PlanContext::new(HOME, "/home/u/work")
}

/// `~` in an expectation → the test home.
pub fn expand(s: &str) -> String {
    if s == "~" {
        HOME.to_owned()
    } else if let Some(r) = s.strip_prefix("~/") {
        format!("{HOME}/{r}")
    } else {
        s.to_owned()
    }
}

/// Every scalar among a value (arrays flattened; step references skipped).
pub fn flatten(v: &Value, out: &mut Vec<Value>) {
    match v {
        Value::Array(a) => a.iter().for_each(|x| flatten(x, out)),
        Value::Object(_) => {}
        other => out.push(other.clone()),
    }
}

/// Does `want` appear among `have` (numbers numerically, strings exactly after `~`)?
pub fn contains(have: &[Value], want: &Value) -> bool {
    have.iter().any(|h| match (h, want) {
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (Value::String(a), Value::String(b)) => *a == expand(b),
        // "600" as a mode string matches an expected 600 and the other way round.
        (Value::String(a), Value::Number(b)) => *a == b.to_string(),
        (Value::Number(a), Value::String(b)) => a.to_string() == *b,
        (a, b) => a == b,
    })
}

/// A stand-in action with the real argument type and output columns, so plans can be checked
/// against the catalog's contract while the tool implementations are written elsewhere.
struct Shape<A> {
    meta: Meta,
    _args: PhantomData<fn() -> A>,
}

impl<A> Action for Shape<A>
where
    A: DeserializeOwned + Serialize + JsonSchema + 'static,
{
    type Args = A;

    fn meta(&self) -> Meta {
        self.meta
    }

    fn effects(&self, _args: &A, _ctx: &Ctx<'_>) -> kernos_tools::Result<Vec<Effect>> {
        Ok(Vec::new())
    }

    fn execute(
        &self,
        _args: &A,
        _ctx: &Ctx<'_>,
        _undo: &mut Recorder<'_>,
    ) -> kernos_tools::Result<Output> {
        Err(ToolError::Unavailable("validation stand-in".into()))
    }
}

const PATH_ROWS: &[(&str, ColumnKind)] = &[("path", ColumnKind::Path), ("size", ColumnKind::Bytes)];
const NO_ROWS: &[(&str, ColumnKind)] = &[];

fn add<A>(r: &mut Registry, tool: &'static str, name: &'static str, rows: bool)
where
    A: DeserializeOwned + Serialize + JsonSchema + 'static,
{
    r.register(Shape::<A> {
        meta: Meta {
            tool,
            name,
            summary: "stand-in",
            effects: &[EffectKind::Read],
            reversibility: Reversibility::ReadOnly,
            output: if rows { PATH_ROWS } else { NO_ROWS },
        },
        _args: PhantomData,
    });
}

/// The v1 catalog's argument types and path-producing outputs.
pub fn shape_registry() -> &'static Registry {
    static R: OnceLock<Registry> = OnceLock::new();
    R.get_or_init(|| {
        let mut r = Registry::empty();
        add::<FsList>(&mut r, "fs", "list", true);
        add::<FsFind>(&mut r, "fs", "find", true);
        add::<FsLargest>(&mut r, "fs", "largest", true);
        add::<FsUsage>(&mut r, "fs", "usage", false);
        add::<FsRead>(&mut r, "fs", "read", false);
        add::<FsSearch>(&mut r, "fs", "search", true);
        add::<FsWrite>(&mut r, "fs", "write", false);
        add::<FsAppend>(&mut r, "fs", "append", false);
        add::<FsMkdir>(&mut r, "fs", "mkdir", false);
        add::<FsCopy>(&mut r, "fs", "copy", false);
        add::<FsMove>(&mut r, "fs", "move", false);
        add::<FsDelete>(&mut r, "fs", "delete", false);
        add::<FsChmod>(&mut r, "fs", "chmod", false);
        add::<FsArchive>(&mut r, "fs", "archive", false);
        add::<FsExtract>(&mut r, "fs", "extract", false);
        add::<FsChecksum>(&mut r, "fs", "checksum", false);
        add::<FsCount>(&mut r, "fs", "count", false);
        add::<FsDuplicates>(&mut r, "fs", "duplicates", true);
        for n in ["info", "memory", "cpu", "uptime", "users"] {
            add::<NoArgs>(&mut r, "sys", n, false);
        }
        add::<SysDisk>(&mut r, "sys", "disk", false);
        add::<ProcList>(&mut r, "proc", "list", false);
        add::<ProcFind>(&mut r, "proc", "find", false);
        add::<ProcKill>(&mut r, "proc", "kill", false);
        add::<SvcList>(&mut r, "svc", "list", false);
        for n in ["status", "start", "stop", "restart", "enable", "disable"] {
            add::<SvcName>(&mut r, "svc", n, false);
        }
        add::<SvcLogs>(&mut r, "svc", "logs", false);
        add::<PkgSearch>(&mut r, "pkg", "search", false);
        add::<PkgInfo>(&mut r, "pkg", "info", false);
        add::<PkgNames>(&mut r, "pkg", "install", false);
        add::<PkgNames>(&mut r, "pkg", "remove", false);
        add::<PkgList>(&mut r, "pkg", "list", false);
        add::<NoArgs>(&mut r, "pkg", "upgradable", false);
        add::<NoArgs>(&mut r, "net", "interfaces", false);
        add::<NetPorts>(&mut r, "net", "ports", false);
        add::<NetConnections>(&mut r, "net", "connections", false);
        add::<NetResolve>(&mut r, "net", "resolve", false);
        add::<NetHttp>(&mut r, "net", "http", false);
        add::<NetPing>(&mut r, "net", "ping", false);
        add::<LogsErrors>(&mut r, "logs", "errors", false);
        add::<LogsTail>(&mut r, "logs", "tail", false);
        add::<GitRepo>(&mut r, "git", "status", false);
        add::<GitLog>(&mut r, "git", "log", false);
        add::<GitDiff>(&mut r, "git", "diff", false);
        add::<GitRepo>(&mut r, "git", "branches", false);
        add::<ShellRun>(&mut r, "shell", "run", false);
        r
    })
}

/// Problems with a plan: against `Registry::builtin()` for every action it already has, and
/// against the argument types of the whole v1 catalog.
pub fn validate(plan: &Plan) -> Vec<String> {
    static BUILTIN: OnceLock<Registry> = OnceLock::new();
    let builtin = BUILTIN.get_or_init(Registry::builtin);
    let mut out: Vec<String> = Vec::new();
    for issue in builtin.validate(plan) {
        // Actions still being written elsewhere are checked by the stand-ins below.
        let step = issue
            .pointer
            .strip_prefix("/steps/")
            .and_then(|r| r.split('/').next())
            .and_then(|i| i.parse::<usize>().ok())
            .and_then(|i| plan.steps.get(i));
        let missing_here = step.is_some_and(|s| builtin.get(&s.tool, &s.action).is_none())
            || plan
                .steps
                .iter()
                .any(|s| builtin.get(&s.tool, &s.action).is_none())
                && issue.message.contains("has no");
        if !missing_here {
            out.push(format!("builtin: {issue}"));
        }
    }
    out.extend(
        shape_registry()
            .validate(plan)
            .into_iter()
            .map(|i| format!("catalog: {i}")),
    );
    out
}

/// Plans a request; panics with the outcome when it is not a plan.
pub fn plan_with(req: &str, ctx: &PlanContext) -> Plan {
    match planner().plan(req, ctx) {
        Outcome::Plan { plan, .. } => plan,
        other => panic!("{req:?}: expected a plan, got {other:?}"),
    }
}
