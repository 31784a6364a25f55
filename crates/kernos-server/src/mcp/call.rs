//! One `tools/call`: the arguments become a submission on the daemon's one path (the same
//! checks, quota, queue, policy, sandbox and journal as POST /v1/actions), and the call
//! follows the action to its end. A step that waits for approval is put to the person behind
//! the MCP client when the client can ask them (the protocol's input-required round trip, or
//! an elicitation request on older revisions); otherwise it stays in the daemon's approval
//! queue until someone answers or it times out.

use std::time::Duration;

use kernos_core::{ActionId, Actor, Plan, Step};
use kernos_tools::Registry;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, ElicitRequest,
    ElicitRequestParams, ElicitResult, ElicitationAction, ElicitationSchema, InputRequest,
    InputRequests, InputRequiredResult, InputResponses, ProtocolVersion,
};
use rmcp::service::{ElicitationError, RequestContext};
use rmcp::{ErrorData as McpError, RoleServer};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use super::Caller;
use super::catalog::{HISTORY, HistoryArgs, PLAN, REQUEST, RequestArgs, UNDO, UndoArgs};
use super::follow::{Follower, Stop};
use super::outcome;
use crate::St;
use crate::auth::{Perm, Principal};
use crate::submit::{check_submission, submit_checked};
use crate::wire::{ApprovalView, SubmitRequest};

/// The form an MCP client shows to approve one step.
#[derive(Debug, Deserialize, JsonSchema)]
pub(crate) struct ApproveForm {
    /// Run this step?
    pub(crate) approve: bool,
}
rmcp::elicit_safe!(ApproveForm);

/// The key of the approval in an input-required round trip.
const APPROVE_KEY: &str = "approve";

/// Runs `params` for caller `c`.
pub(crate) async fn call(
    c: &Caller,
    params: CallToolRequestParams,
    ctx: &RequestContext<RoleServer>,
) -> Result<CallToolResponse, McpError> {
    let p = mcp_principal(&c.principal, ctx);
    if let Some(state) = params.request_state.as_deref() {
        return resume(c, &p, state, params.input_responses.as_ref(), ctx).await;
    }
    let name = params.name.as_ref();
    let args = Value::Object(params.arguments.unwrap_or_default());
    if name == HISTORY {
        return history(&c.st, &p, args).await.map(Into::into);
    }
    if !c.offer_has(name) {
        return Err(McpError::invalid_params(
            format!("no tool {name}; tools/list shows what this server offers"),
            None,
        ));
    }
    if let Err(e) = p.require(Perm::Submit) {
        return Ok(refused(format!(
            "{}; a viewer may only read (kernos_history and the resources)",
            e.detail
        ))
        .into());
    }
    let req = match submission(c.st.engine.registry(), name, args) {
        Ok(r) => r,
        Err(why) => return Ok(refused(why).into()),
    };
    if let Err(e) = check_submission(&req) {
        return Ok(refused(e.detail).into());
    }
    let action = ActionId::generate();
    let follower = Follower::new(&c.st, action);
    if let Err(e) = submit_checked(&c.st, p.clone(), req, action, None).await {
        return Ok(refused(e.detail).into());
    }
    follow(c, &p, follower, ctx).await
}

/// The principal an MCP call acts as: the key's (or socket user's) organisation and role,
/// journaled as `mcp:<client>@<who>` so the audit trail names the agent that asked.
fn mcp_principal(p: &Principal, ctx: &RequestContext<RoleServer>) -> Principal {
    let client = ctx
        .client_info()
        .map(|i| sanitize(&i.name))
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "client".into());
    let mut m = p.clone();
    m.actor = Actor(format!("mcp:{client}@{}", p.actor.as_str()));
    m.source = format!("mcp:{client} {}", p.source);
    m
}

/// A client's self-chosen name, as it may appear in the journal: 40 characters of
/// `[A-Za-z0-9._-]`.
fn sanitize(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        .take(40)
        .collect()
}

/// A tool error the model reads (nothing was journaled or run).
fn refused(why: impl Into<String>) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(why.into())])
}

/// The submission a tool call stands for. Catalog actions are checked against their schema
/// here, so bad arguments are answered before anything is journaled.
fn submission(reg: &Registry, name: &str, args: Value) -> Result<SubmitRequest, String> {
    let parse = |e: serde_json::Error| format!("bad arguments for {name}: {e}");
    let mut req = SubmitRequest::default();
    match name {
        REQUEST | PLAN => {
            let a: RequestArgs = serde_json::from_value(args).map_err(parse)?;
            req.request = Some(a.request);
            req.cwd = a.cwd;
            req.dry_run = name == PLAN;
        }
        UNDO => {
            let a: UndoArgs = serde_json::from_value(args).map_err(parse)?;
            req.undo = Some(a.transaction.unwrap_or_else(|| "last".into()));
        }
        _ => {
            let (tool, action) = catalog_action(reg, name)
                .ok_or_else(|| format!("no tool {name}; tools/list shows what is offered"))?;
            let act = reg
                .get(&tool, &action)
                .ok_or_else(|| format!("no tool {name}"))?;
            act.check_args(&args)
                .map_err(|e| format!("bad arguments for {name}: {e}"))?;
            let mut step = Step::new(&tool, &action);
            if let Value::Object(m) = args {
                step.args = m;
            }
            req.plan = Some(Plan {
                steps: vec![step],
                request: None,
                planner: Some("mcp".into()),
                untrusted_input: false,
            });
        }
    }
    Ok(req)
}

/// `(tool, action)` of the catalog action offered as `name` (`tool.action`; a tool's own
/// name may contain dots, as `mcp.<server>` does).
fn catalog_action(reg: &Registry, name: &str) -> Option<(String, String)> {
    reg.tools().iter().find_map(|t| {
        let action = name.strip_prefix(t.name.as_str())?.strip_prefix('.')?;
        t.actions
            .iter()
            .any(|a| a.name == action)
            .then(|| (t.name.clone(), action.to_owned()))
    })
}

/// Follows the action until it ends; at each approval, asks the person behind the client
/// when it can, otherwise leaves the step to the daemon's queue.
async fn follow(
    c: &Caller,
    p: &Principal,
    mut f: Follower,
    ctx: &RequestContext<RoleServer>,
) -> Result<CallToolResponse, McpError> {
    let action = f.action().to_string();
    loop {
        let stop = tokio::select! {
            s = f.next() => s.map_err(|e| McpError::internal_error(e.detail, None))?,
            _ = ctx.ct.cancelled() => {
                cancel(&c.st, f.action());
                return Err(McpError::internal_error(
                    format!("the call was cancelled; action {action} was asked to stop"),
                    None,
                ));
            }
        };
        let view = match stop {
            Stop::Finished(events) => {
                return Ok(outcome::finished(&c.st, &action, &events, c.max_rows()).into());
            }
            Stop::Approval(v) => v,
        };
        f.handled(&view.approval);
        if p.role.max_approvable().is_none_or(|m| view.risk > m) {
            // This caller may not answer it: it waits for someone who may.
            continue;
        }
        match approval_mode(ctx) {
            Mode::InputRequired => {
                return Ok(input_required(&view).into());
            }
            Mode::Elicit => {
                let timeout = Duration::from_secs(c.st.config().approval_timeout_s);
                match ctx
                    .peer
                    .elicit_with_timeout::<ApproveForm>(question(&view), Some(timeout))
                    .await
                {
                    Ok(Some(form)) => answer(c, p, &view.approval, form.approve).await,
                    Ok(None) | Err(ElicitationError::UserDeclined) => {
                        answer(c, p, &view.approval, false).await;
                    }
                    Err(ElicitationError::UserCancelled) => {
                        answer(c, p, &view.approval, false).await;
                    }
                    // No answer from the client: the step stays in the daemon's queue.
                    Err(e) => tracing::debug!(%action, "elicitation failed: {e}"),
                }
            }
            Mode::Queue => {}
        }
    }
}

/// How a step's approval reaches a person.
enum Mode {
    /// Answer with input-required; the client asks and calls again (2026-07-28 and later).
    InputRequired,
    /// Send the client an elicitation request (older revisions).
    Elicit,
    /// The client cannot ask anyone: the daemon's approval queue.
    Queue,
}

fn approval_mode(ctx: &RequestContext<RoleServer>) -> Mode {
    let can_elicit = ctx
        .client_capabilities()
        .is_some_and(|c| c.elicitation.is_some());
    let modern = ctx
        .protocol_version()
        .is_some_and(|v| v.as_str() >= ProtocolVersion::V_2026_07_28.as_str());
    match (can_elicit, modern) {
        (false, _) => Mode::Queue,
        (true, true) => Mode::InputRequired,
        (true, false) => Mode::Elicit,
    }
}

/// The question a person is asked about a step.
fn question(v: &ApprovalView) -> String {
    let mut q = format!(
        "Kernos asks before step {} {} ({} risk): {}",
        v.step + 1,
        v.name,
        v.risk,
        v.args
    );
    if !v.reasons.is_empty() {
        q.push_str(&format!("\nWhy: {}", v.reasons.join("; ")));
    }
    if !v.changes.is_empty() {
        q.push_str(&format!("\nIt would change: {}", v.changes.join("; ")));
    }
    q.push_str("\nApprove it?");
    q
}

fn input_required(v: &ApprovalView) -> InputRequiredResult {
    let schema = ElicitationSchema::from_type::<ApproveForm>().unwrap_or_else(|_| {
        ElicitationSchema::builder()
            .required_bool(APPROVE_KEY)
            .build_unchecked()
    });
    let ask = ElicitRequest::new(ElicitRequestParams::FormElicitationParams {
        meta: None,
        message: question(v),
        requested_schema: schema,
    });
    let mut inputs = InputRequests::new();
    inputs.insert(APPROVE_KEY.into(), InputRequest::Elicitation(ask));
    // Only handles: the approval itself stays in the daemon, checked again on the way back.
    InputRequiredResult::new(Some(inputs), Some(format!("{}.{}", v.action, v.approval)))
}

/// The second round of an input-required exchange: answer the approval, follow on.
async fn resume(
    c: &Caller,
    p: &Principal,
    state: &str,
    responses: Option<&InputResponses>,
    ctx: &RequestContext<RoleServer>,
) -> Result<CallToolResponse, McpError> {
    let bad = || McpError::invalid_params("requestState is not one this server gave out", None);
    let (action, approval) = state.split_once('.').ok_or_else(bad)?;
    let action: ActionId = action.parse().map_err(|_| bad())?;
    // Another organisation's action is answered exactly like one that does not exist.
    let org = p.org.clone();
    let ours =
        c.st.read(move |j| {
            Ok(j.query(&kernos_journal::Query::action(action))?
                .iter()
                .any(|e| e.org == org && e.kind == kernos_core::event::kind::ACTION_SUBMITTED))
        })
        .await
        .map_err(|e| McpError::internal_error(e.detail, None))?;
    if !ours {
        return Err(bad());
    }
    let approve = responses
        .and_then(|r| r.get(APPROVE_KEY))
        .and_then(|v| serde_json::from_value::<ElicitResult>(v.clone()).ok())
        .is_some_and(|r| {
            r.action == ElicitationAction::Accept
                && r.content.as_ref().and_then(|c| c["approve"].as_bool()) == Some(true)
        });
    answer(c, p, approval, approve).await;
    let mut f = Follower::new(&c.st, action);
    f.handled(approval);
    follow(c, p, f, ctx).await
}

/// Answers an approval as `p`. One already answered or timed out is not an error here: the
/// action's own events say what happened to the step.
async fn answer(c: &Caller, p: &Principal, approval: &str, approve: bool) {
    let why = if approve {
        "approved in the MCP client"
    } else {
        "declined in the MCP client"
    };
    if let Err(e) = crate::approve::answer(&c.st, p, approval, approve, Some(why)).await {
        tracing::debug!(approval, "MCP answer not taken: {}", e.detail);
    }
}

/// Stops an action whose call was cancelled: a running step stops cleanly, a queued action
/// never starts.
fn cancel(st: &St, action: ActionId) {
    let running = st
        .running
        .lock()
        .ok()
        .and_then(|r| r.get(&action).map(|(_, c)| c.clone()));
    match running {
        Some(c) => c.cancel(),
        None => {
            if let Ok(mut q) = st.cancelled.lock() {
                q.insert(action);
            }
        }
    }
}

/// `kernos_history`: the organisation's recent transactions, read only.
async fn history(st: &St, p: &Principal, args: Value) -> Result<CallToolResult, McpError> {
    let a: HistoryArgs = match serde_json::from_value(args) {
        Ok(a) => a,
        Err(e) => return Ok(refused(format!("bad arguments for {HISTORY}: {e}"))),
    };
    let limit = a.limit.unwrap_or(20).clamp(1, 200);
    let txs = super::resources::history(st, &p.org, limit)
        .await
        .map_err(|e| McpError::internal_error(e.detail, None))?;
    let mut text = String::new();
    for t in &txs {
        text.push_str(&super::resources::history_line(t));
        text.push('\n');
    }
    if text.is_empty() {
        text.push_str("no transactions yet");
    }
    let mut r = CallToolResult::success(vec![ContentBlock::text(text)]);
    r.structured_content = Some(json!({ "transactions": txs }));
    Ok(r)
}
