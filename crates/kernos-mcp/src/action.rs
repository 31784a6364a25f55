//! One tool of a trusted server as a catalog action, `mcp.<server>.<tool>`: its spec from the
//! reviewed snapshot and the config's declaration, its effects from the server's declared
//! paths and peers, and a call that runs in the sandbox through the driver.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kernos_core::{ActionSpec, Column, ColumnKind, Effect, ProcessRunner, Reversibility};
use kernos_tools::{Change, Ctx, DynAction, Output, Recorder, RunOpts, ToolError};
use serde_json::{Map, Value};

use crate::config::{ServerConfig, ToolDecl};
use crate::driver::{DRIVER_ARG, DriverReply, DriverRequest, Op};
use crate::effects::call_effects;
use crate::error::McpError;
use crate::snapshot::{Snapshot, ToolInfo, diff};

/// What every action of one server shares.
#[derive(Debug)]
pub struct Server {
    /// Its config entry.
    pub config: ServerConfig,
    /// The reviewed snapshot its tools come from.
    pub snapshot: Snapshot,
    /// The driver program (the `kernos` binary).
    pub driver: PathBuf,
    /// Set once a call saw the live tools differ from the pin: later calls of this process
    /// fail at once, naming the change.
    changed: Mutex<Option<Vec<String>>>,
    /// Whether the front end has taken the change to journal it.
    reported: AtomicBool,
}

impl Server {
    /// A trusted server.
    pub fn new(config: ServerConfig, snapshot: Snapshot, driver: PathBuf) -> Server {
        Server {
            config,
            snapshot,
            driver,
            changed: Mutex::new(None),
            reported: AtomicBool::new(false),
        }
    }

    /// What changed in the server's tools since the pin, if a call of this process saw a
    /// change (the front end journals it as `mcp.changed`).
    pub fn changed(&self) -> Option<Vec<String>> {
        self.changed.lock().ok().and_then(|c| c.clone())
    }

    /// The change, the first time it is asked for after a call saw one: what the front end
    /// journals as `mcp.changed` (the confined call itself cannot write the journal).
    pub fn take_change_report(&self) -> Option<Vec<String>> {
        let c = self.changed()?;
        (!self.reported.swap(true, Ordering::SeqCst)).then_some(c)
    }

    fn changed_error(&self, changes: Vec<String>) -> ToolError {
        ToolError::Refused(
            McpError::Changed {
                server: self.config.name.clone(),
                changes,
            }
            .to_string(),
        )
    }
}

/// One tool of a server.
pub struct McpAction {
    server: Arc<Server>,
    tool: ToolInfo,
    decl: ToolDecl,
    spec: ActionSpec,
}

impl McpAction {
    /// The action for `tool` of `server`.
    pub fn new(server: Arc<Server>, tool: ToolInfo) -> McpAction {
        let decl = server.config.decl(&tool.name);
        let reads = decl.reads_only();
        let mut summary = tool.summary();
        if !reads {
            summary.push_str(" (external MCP tool: Kernos cannot undo it)");
        }
        let spec = ActionSpec {
            name: tool.name.clone(),
            summary,
            args_schema: tool.input_schema.clone(),
            effects: decl.effects.clone(),
            reversibility: if reads {
                Reversibility::ReadOnly
            } else {
                Reversibility::Irreversible
            },
            output: Vec::new(),
            risk_floor: decl.risk,
        };
        McpAction {
            server,
            tool,
            decl,
            spec,
        }
    }

    fn changes(&self, args: &Value) -> Vec<Change> {
        if self.decl.reads_only() {
            return Vec::new();
        }
        vec![Change::Exec {
            command: format!(
                "mcp.{}.{} {}",
                self.server.config.name,
                self.tool.name,
                serde_json::to_string(args).unwrap_or_default()
            ),
        }]
    }
}

impl DynAction for McpAction {
    fn spec(&self) -> &ActionSpec {
        &self.spec
    }

    fn check_args(&self, args: &Value) -> Result<(), String> {
        crate::args::check(&self.tool.input_schema, args)
    }

    fn effects(&self, _args: &Value, _ctx: &Ctx<'_>) -> kernos_tools::Result<Vec<Effect>> {
        Ok(call_effects(&self.server.config, &self.decl))
    }

    fn dry_run(&self, args: &Value, _ctx: &Ctx<'_>) -> kernos_tools::Result<Vec<Change>> {
        Ok(self.changes(args))
    }

    fn take_notices(&self) -> Vec<(String, Value)> {
        let Some(changes) = self.server.take_change_report() else {
            return Vec::new();
        };
        let name = &self.server.config.name;
        vec![(
            crate::MCP_CHANGED.to_owned(),
            serde_json::json!({
                "server": name,
                "changes": changes,
                "fix": format!("kernos mcp trust {name}"),
            }),
        )]
    }

    fn execute(
        &self,
        args: &Value,
        ctx: &Ctx<'_>,
        _undo: &mut Recorder<'_>,
    ) -> kernos_tools::Result<Output> {
        if let Some(c) = self.server.changed() {
            return Err(self.server.changed_error(c));
        }
        let arguments = match args {
            Value::Object(m) => m.clone(),
            _ => Map::new(),
        };
        let op = Op::Call {
            tool: self.tool.name.clone(),
            arguments,
            pinned: self.server.snapshot.hash.clone(),
        };
        let (reply, cpu_ms) = call_driver(&self.server, op, |argv, opts| ctx.run(argv, opts))?;
        match reply {
            DriverReply::Changed { tools } => {
                let changes = diff(&self.server.snapshot.tools, &tools);
                if let Ok(mut c) = self.server.changed.lock() {
                    *c = Some(changes.clone());
                }
                Err(self.server.changed_error(changes))
            }
            DriverReply::Called { text, is_error, .. } if is_error => {
                Err(ToolError::Failed(format!(
                    "MCP tool {} of server {} failed: {}",
                    self.tool.name,
                    self.server.config.name,
                    text.join("\n")
                )))
            }
            DriverReply::Called {
                text, structured, ..
            } => {
                let mut out = output(text, structured);
                out.changes = self.changes(args);
                out.cpu_ms = cpu_ms;
                Ok(out)
            }
            DriverReply::Tools { .. } => Err(ToolError::Failed(
                "the MCP driver answered a call with a tool list".into(),
            )),
            DriverReply::Failed { message } => Err(ToolError::Failed(message)),
        }
    }
}

/// Runs the driver for `op` through `run` (a step's `ctx.run`, or a runner for `kernos mcp
/// trust`) and reads its one reply line; also returns the CPU time it used.
pub fn call_driver(
    server: &Server,
    op: Op,
    run: impl FnOnce(&[&str], RunOpts) -> kernos_tools::Result<kernos_core::ExecOutcome>,
) -> kernos_tools::Result<(DriverReply, u64)> {
    let req = DriverRequest {
        server: server.config.clone(),
        op,
    };
    let stdin = serde_json::to_vec(&req).map_err(|e| ToolError::Failed(e.to_string()))?;
    let driver = server.driver.to_string_lossy().into_owned();
    let opts = RunOpts {
        stdin: Some(stdin),
        cwd: None,
        // The driver keeps its own limit; the sandbox's is a little longer, as a backstop.
        timeout: Some(Duration::from_secs(server.config.timeout_s + 5)),
        env: passed_env(&server.config),
    };
    let out = run(&[driver.as_str(), DRIVER_ARG], opts)?;
    let stdout = out.stdout_text();
    let reply = stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str::<DriverReply>(l).ok());
    match reply {
        Some(r) => Ok((r, out.cpu_ms)),
        None => Err(ToolError::Failed(format!(
            "the MCP driver for {} ended without an answer (exit {:?}, signal {:?}): {}",
            server.config.name,
            out.code,
            out.signal,
            String::from_utf8_lossy(&out.stderr).trim()
        ))),
    }
}

/// The allow-listed variables, with their values in Kernos's environment.
fn passed_env(s: &ServerConfig) -> Vec<(String, String)> {
    s.env
        .iter()
        .filter_map(|n| std::env::var(n).ok().map(|v| (n.clone(), v)))
        .collect()
}

/// The step's output: the text blocks as text, `structuredContent` as rows (an array of
/// objects is one row each, an object one row, anything else a `value` row).
fn output(text: Vec<String>, structured: Option<Value>) -> Output {
    let rows: Vec<Map<String, Value>> = match structured {
        Some(Value::Array(items)) => items
            .into_iter()
            .map(|v| match v {
                Value::Object(m) => m,
                other => kernos_tools::row([("value", other)]),
            })
            .collect(),
        Some(Value::Object(m)) => vec![m],
        Some(Value::Null) | None => Vec::new(),
        Some(other) => vec![kernos_tools::row([("value", other)])],
    };
    let mut columns: Vec<Column> = Vec::new();
    for r in &rows {
        for (k, v) in r {
            if !columns.iter().any(|c| &c.name == k) {
                let kind = match v {
                    Value::Number(n) if n.is_f64() => ColumnKind::Float,
                    Value::Number(_) => ColumnKind::Int,
                    Value::Bool(_) => ColumnKind::Bool,
                    _ => ColumnKind::Text,
                };
                columns.push(Column::new(k, kind));
            }
        }
    }
    let text = text.join("\n");
    Output {
        columns,
        rows,
        text: (!text.is_empty()).then_some(text),
        ..Output::default()
    }
}

/// Lists a server's live tools through the driver, confined by `runner` to the server's
/// declared reads and peers (no writes): what `kernos mcp trust` shows before pinning.
pub fn list_tools(
    config: &ServerConfig,
    driver: PathBuf,
    runner: &dyn ProcessRunner,
    env: &kernos_tools::Env,
) -> Result<Vec<ToolInfo>, McpError> {
    let read_only = ToolDecl {
        effects: vec![kernos_core::EffectKind::Read],
        risk: None,
    };
    let effects = call_effects(config, &read_only);
    let server = Server {
        config: config.clone(),
        snapshot: Snapshot {
            server: config.name.clone(),
            hash: String::new(),
            trusted_by: String::new(),
            trusted_at_ms: 0,
            tools: Vec::new(),
        },
        driver,
        changed: Mutex::new(None),
        reported: AtomicBool::new(false),
    };
    let cancel = kernos_core::CancelToken::new();
    let run = |argv: &[&str], opts: RunOpts| {
        let mut policy = kernos_tools::sandbox::policy_for(&effects, env);
        policy.cwd = Some(env.cwd.clone());
        if let Some(t) = opts.timeout {
            policy.limits.wall_ms = Some(t.as_millis() as u64);
        }
        let mut req = kernos_core::ExecRequest::new(argv, policy);
        req.stdin = opts.stdin;
        req.env = opts.env;
        runner.run(&req, &cancel).map_err(ToolError::from)
    };
    let fail = |e: &dyn std::fmt::Display| McpError::server(&config.name, e);
    match call_driver(&server, Op::List, run).map_err(|e| fail(&e))? {
        (DriverReply::Tools { tools }, _) => Ok(tools),
        // The driver's message already names the server.
        (DriverReply::Failed { message }, _) => {
            let prefix = format!("MCP server {}: ", config.name);
            Err(fail(&message.strip_prefix(&prefix).unwrap_or(&message)))
        }
        (other, _) => Err(fail(&format!("unexpected answer {other:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn structured_content_becomes_rows_and_text_stays_text() {
        let o = output(
            vec!["a".into(), "b".into()],
            Some(json!([{"name": "x", "size": 3}, {"name": "y", "size": 1.5}])),
        );
        assert_eq!(o.text.as_deref(), Some("a\nb"));
        assert_eq!(o.rows.len(), 2);
        assert_eq!(o.columns[0].name, "name");
        let o = output(Vec::new(), Some(json!("plain")));
        assert_eq!(o.rows[0]["value"], "plain");
        assert_eq!(output(Vec::new(), None), Output::default());
    }
}
