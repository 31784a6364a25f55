//! Types on the wire: every request and response body and every query string of the API.
//! They are also the OpenAPI document's schemas, so the document says exactly what the
//! handlers accept and return.

use kernos_core::{Event, Plan, Risk};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::auth::Role;
use crate::limits::UsageMonth;

/// Where an action stands or how it ended: the engine's one outcome enum.
pub use kernos_engine::ActionStatus;

/// POST /v1/actions: a request in plain language, or a plan.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitRequest {
    /// What to do, in plain language (give this or `plan`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<String>,
    /// A plan to run as it is (give this or `request`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<Plan>,
    /// Absolute working directory relative paths refer to (default: the daemon's home).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// Only preview: plan and dry-run, change nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// Approve at once every step the submitter's role may approve (like `--yes`); other
    /// steps still wait for an approval.
    #[serde(default)]
    pub auto_approve: bool,
    /// Follow-up context from an earlier request ("them", "undo that"), as the planner
    /// returned it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<Value>,
    /// Undo a transaction instead (give this alone): its id or a unique part of it (at least 4
    /// characters), or `last` for the newest one of the organisation that changed something
    /// and was not undone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub undo: Option<String>,
    /// Run it on the fleet's nodes this selects instead of here: `all`, `role=web`,
    /// `name=web-*`, `disk./var>90%` (terms joined by `,` must all hold). Planned, judged by
    /// policy and approved here once; each node checks it again with its own policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on: Option<String>,
    /// How a fan-out rolls out (with `on`): batch size, failures before it stops, per-node
    /// timeout, how long an offline node may still run it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<kernos_fleet::Rollout>,
}

/// 202 answer to a submission.
// Doc comments are also the OpenAPI descriptions, where `<id>` is meant literally.
#[allow(rustdoc::invalid_html_tags)]
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct Accepted {
    /// The action id: follow it with GET /v1/events?action=<id>.
    pub action: String,
    /// Always `queued`.
    pub status: ActionStatus,
    /// Where its events stream.
    pub events: String,
    /// True when an earlier submission with the same Idempotency-Key is answered again.
    pub replayed: bool,
}

/// A step waiting for an answer.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ApprovalView {
    /// Id to answer with POST /v1/approvals/{id}.
    pub approval: String,
    /// Action.
    pub action: String,
    /// Transaction.
    pub tx: String,
    /// Step index.
    pub step: usize,
    /// `tool.action`.
    pub name: String,
    /// Resolved arguments.
    pub args: Value,
    /// Risk computed by policy.
    pub risk: Risk,
    /// Why it has that risk / why policy asks.
    pub reasons: Vec<String>,
    /// What it would change, when the preview could say.
    pub changes: Vec<String>,
    /// Who submitted the action.
    pub requested_by: String,
    /// When it started waiting, ms.
    pub requested_ms: i64,
    /// When it will be declined without an answer, ms.
    pub expires_ms: i64,
    /// The lowest role that may approve it.
    pub min_role: Role,
    /// The agent whose plan this step belongs to, when an agent asks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
}

/// POST /v1/approvals/{id} body.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApprovalAnswer {
    /// Run the step (true) or not (false).
    pub approve: bool,
    /// Why (journaled).
    #[serde(default)]
    pub reason: Option<String>,
}

/// Answer to an approval decision.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct Decided {
    /// The approval.
    pub approval: String,
    /// What was decided.
    pub approved: bool,
}

/// POST /v1/undo/{tx} body (optional).
#[derive(Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UndoRequest {
    /// Working directory for inverse steps that need one.
    #[serde(default)]
    pub cwd: Option<String>,
}

/// An action in a listing.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct ActionSummary {
    /// Id.
    pub action: String,
    /// Organisation.
    pub org: String,
    /// Who submitted it.
    pub actor: String,
    /// When, ms.
    pub submitted_ms: i64,
    /// The request text, when there was one.
    pub request: Option<String>,
    /// `queued`, `running`, or how it ended (`committed`, `failed`, `declined`, `denied`,
    /// `cancelled`, `not_understood`, `invalid`, `previewed`, `undone`, `aborted`,
    /// `interrupted`, `error`).
    pub status: ActionStatus,
    /// Its transaction, once it ran.
    pub tx: Option<String>,
    /// Run units charged.
    pub units: Option<f64>,
    /// What went wrong, if something did.
    pub error: Option<String>,
}

/// One action in full.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct ActionDetail {
    /// Summary.
    #[serde(flatten)]
    pub summary: ActionSummary,
    /// Every event of the action, in order.
    pub events: Vec<Event>,
}

/// POST /v1/actions/{id}/cancel answer.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct Cancelled {
    /// The action.
    pub action: String,
    /// `cancelling` (a running step stops cleanly) or `cancelled` (it had not started).
    pub status: String,
}

/// GET /v1/state/usage.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct UsageView {
    /// Organisation.
    pub org: String,
    /// Current month (UTC), `YYYY-MM`.
    pub month: String,
    /// Run units used this month.
    pub units: f64,
    /// Monthly quota, if one is set.
    pub quota: Option<f64>,
    /// What is left of it.
    pub remaining: Option<f64>,
    /// Every month with use, newest first.
    pub months: Vec<UsageMonth>,
}

/// GET /v1/state/usage/daily parameters.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct UsageDailyParams {
    /// How many UTC days, ending today (default 30, 1 to 366).
    pub days: Option<i64>,
}

/// GET /v1/state/usage/daily: one organisation's use, day by day.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct UsageDaily {
    /// Organisation (always the caller's).
    pub org: String,
    /// Every UTC day of the window, oldest first, today last; days without use are there
    /// with zeros.
    pub days: Vec<UsageDay>,
}

/// One organisation's use in one UTC day.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct UsageDay {
    /// `YYYY-MM-DD` (UTC).
    pub day: String,
    /// Actions that ended this day (`action.finished`, any outcome).
    pub actions: u64,
    /// Run units charged to those actions.
    pub units: f64,
    /// Prompt tokens sent to language models (`llm.call`, planning and agents).
    pub tokens_in: u64,
    /// Completion tokens received from language models.
    pub tokens_out: u64,
    /// What the model calls cost, US dollars, from the configured prices.
    pub cost_usd: f64,
    /// Requests that reached the model tier and were answered from the plan cache.
    pub cache_hits: u64,
    /// Requests that reached the model tier, looked in the plan cache and missed.
    pub cache_misses: u64,
    /// Median request latency, ms: from `action.submitted` to `action.finished` of the
    /// actions that ended this day (within about 3 %: a histogram, see the daemon's
    /// `daily` module). Null when no action ended this day.
    pub latency_p50_ms: Option<u64>,
    /// 95th percentile of the same latencies, ms. Null when no action ended this day.
    pub latency_p95_ms: Option<u64>,
    /// Language-model use by provider and model, most expensive first.
    pub models: Vec<ModelDay>,
}

/// One provider/model's use in one day.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct ModelDay {
    /// Provider, as configured (`openai`, `local`…).
    pub provider: String,
    /// Model name.
    pub model: String,
    /// Tries (`llm.call` events, failed ones included).
    pub calls: u64,
    /// Prompt tokens.
    pub tokens_in: u64,
    /// Completion tokens.
    pub tokens_out: u64,
    /// Cost, US dollars.
    pub cost_usd: f64,
}

/// GET /v1/state/journal parameters.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct JournalParams {
    /// Only events with a sequence number below this one (the previous page's `next_before`).
    pub before: Option<u64>,
    /// How many, newest first (default 100, at most 1000).
    pub limit: Option<usize>,
    /// Only kinds starting with this prefix (e.g. `action.`, `audit.key.`).
    pub kind: Option<String>,
}

/// GET /v1/state/journal: a page of the caller's organisation's journal, newest first.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct JournalPage {
    /// Organisation (always the caller's).
    pub org: String,
    /// Events, newest first, each as the event stream sends it, with its chain hash.
    pub events: Vec<Event>,
    /// Pass as `before` for the next (older) page; null when this page is the last.
    pub next_before: Option<u64>,
}

/// GET /v1/state/journal/verify parameters.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct VerifyParams {
    /// Verify now instead of answering a result up to 30 s old (admins and owners only).
    #[serde(default)]
    pub fresh: bool,
}

/// GET /v1/state/journal/verify: whether the journal's hash chain is intact. The chain covers
/// every organisation's events, so this says only counts, sequence numbers and a hash —
/// nothing of any event's content.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct JournalVerify {
    /// True when every event matches its hash and the chain reaches the recorded head.
    pub ok: bool,
    /// Events verified (on a broken chain: those before the first bad one).
    pub events: u64,
    /// The recorded head: the newest sequence number when the walk began.
    pub head_seq: u64,
    /// Hex SHA-256 chain hash stored with the event at `head_seq` (the chain head when `ok`);
    /// null for an empty journal or when that event is missing.
    pub head_hash: Option<String>,
    /// The first sequence number that is wrong, when one is.
    pub bad_seq: Option<u64>,
    /// What is wrong there (`content does not match its hash…`, `event 7 is missing…`).
    pub problem: Option<String>,
    /// When the walk ended, ms since the epoch (a result is reused for 30 s).
    pub checked_ms: i64,
    /// How long the walk took, ms.
    pub took_ms: u64,
}

/// POST /v1/keys body.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyCreate {
    /// Organisation (default: the caller's; another only for the host operator).
    #[serde(default)]
    pub org: Option<String>,
    /// Role of the new key (at most the caller's).
    pub role: Role,
    /// Free text, e.g. what uses the key.
    #[serde(default)]
    pub label: Option<String>,
}

/// POST /v1/session body: sign in with an API key.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    /// The API key (`kn_…`). It is checked and forgotten: the browser keeps only the session
    /// cookie.
    pub key: String,
}

/// Who a request is, and for a browser session what it needs to act.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct SessionView {
    /// Organisation.
    pub org: String,
    /// Role.
    pub role: Role,
    /// The API key acting.
    pub key_id: Option<String>,
    /// The browser session, when the request came with its cookie.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// When the session ends, ms since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_ms: Option<i64>,
    /// The token to send as X-CSRF-Token with every change made through the session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub csrf: Option<String>,
}

/// 201 answer: the key, shown this once.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct KeyCreated {
    /// The secret key. It is not stored (only its SHA-256) and cannot be shown again.
    pub key: String,
    /// Public id (for listing and revoking).
    pub id: String,
    /// Organisation.
    pub org: String,
    /// Role.
    pub role: Role,
    /// Label.
    pub label: String,
}

/// Listing parameters.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct ListParams {
    /// How many, newest first (default 50, at most 1000).
    pub limit: Option<usize>,
}

/// GET /v1/keys parameters.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct KeyListParams {
    /// Organisation (only the host operator may name another than its own).
    pub org: Option<String>,
}

/// GET /v1/audit parameters.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct AuditParams {
    /// Only this actor (e.g. `key:01j…`, `user:alice`).
    pub actor: Option<String>,
    /// Only this mutation: an event kind with or without `audit.` (`key.created`,
    /// `approval.decided`, `undo.requested`, `config.changed`, `action.submitted`).
    pub action: Option<String>,
    /// From this time (RFC 3339 or ms since the epoch).
    pub since: Option<String>,
    /// Before this time (RFC 3339 or ms since the epoch).
    pub until: Option<String>,
    /// At most this many, oldest first (default 1000, at most 10000).
    pub limit: Option<usize>,
}

/// GET /v1/events parameters.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct EventParams {
    /// Resume after this sequence number (same as the Last-Event-ID header; the header wins).
    pub after: Option<u64>,
    /// Only kinds starting with this prefix (e.g. `step.`).
    pub prefix: Option<String>,
    /// Only events of this action. Without a resume point the stream then starts at the
    /// action's first event (so it shows the whole action, however long ago it ran).
    pub action: Option<String>,
    /// Only this organisation (it must be the caller's own).
    pub org: Option<String>,
}

/// One audit record.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct AuditRecord {
    /// Journal sequence number.
    pub seq: u64,
    /// When, ms.
    pub ts_ms: i64,
    /// Kind.
    pub kind: String,
    /// Who.
    pub actor: String,
    /// Organisation.
    pub org: String,
    /// Role of the actor.
    pub role: Option<String>,
    /// Where the request came from.
    pub source: Option<String>,
    /// What it acted on (key, approval, transaction, action).
    pub target: Option<String>,
    /// State before, where it applies.
    pub before: Option<Value>,
    /// State after, where it applies.
    pub after: Option<Value>,
}

/// Health answer.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct Health {
    /// `ok`, `ready` or `stopping`.
    pub status: String,
    /// Newest journal sequence number published.
    pub head: u64,
}

/// A reboot or power-off accepted (POST /v1/system/reboot, /v1/system/poweroff).
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct PowerAccepted {
    /// `reboot` or `poweroff`.
    pub action: String,
    /// What happens next.
    pub detail: String,
}

/// The machine under kernos-init (GET /v1/system/status).
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct SystemStatus {
    /// Whether PID 1 is kernos-init (a Kernos OS machine); false on an ordinary host.
    pub under_init: bool,
    /// This boot's record as kernos-init wrote it: phases with their timings, the kernel's share.
    pub boot: Option<Value>,
    /// kernos-init's live counters: orphans reaped, services and their starts.
    pub init: Option<Value>,
    /// PID 1's resident memory, kB (from /proc/1/status).
    pub pid1_rss_kb: Option<u64>,
    /// Zombie processes right now, as /proc shows them (empty when PID 1 reaps).
    pub zombies: Vec<i32>,
}

/// A listing's `limit` parameter: `default` when absent, kept within 1..=`max`.
pub(crate) fn clamp_limit(limit: Option<usize>, default: usize, max: usize) -> usize {
    limit.unwrap_or(default).clamp(1, max)
}

/// An agent's limits as asked for at spawn; what is left out takes the daemon's default.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentBudgetRequest {
    /// Most steps it may run (default 30).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_steps: Option<usize>,
    /// Most model tokens, prompt plus answer (default 200,000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
    /// Most seconds of work, waits included, restarts not (default 3,600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_time_s: Option<u64>,
    /// Most run units its actions may use (default: the organisation's quota only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_units: Option<f64>,
    /// Most US dollars its model calls may cost (default: no limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_cost_usd: Option<f64>,
}

/// POST /v1/agents: a goal for a new agent.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentSpawn {
    /// What to achieve, in plain language ("find out why the nightly backup fails").
    pub goal: String,
    /// Model lane (default: chosen from the goal as for a request).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lane: Option<String>,
    /// Limits.
    #[serde(default)]
    pub budget: AgentBudgetRequest,
    /// Absolute working directory its plans start in (default: the organisation's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// Create it paused: it starts on POST /v1/agents/{id}/resume.
    #[serde(default)]
    pub paused: bool,
}

/// An agent's limits.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct AgentLimits {
    /// Most steps.
    pub max_steps: usize,
    /// Most model tokens.
    pub max_tokens: u64,
    /// Most seconds of work.
    pub max_time_s: u64,
    /// Most run units, if limited.
    pub max_units: Option<f64>,
    /// Most US dollars, if limited.
    pub max_cost_usd: Option<f64>,
}

/// What an agent has used so far.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct AgentUsed {
    /// Model turns that produced a plan or an answer.
    pub turns: u32,
    /// Steps run.
    pub steps: usize,
    /// Model tokens.
    pub tokens: u64,
    /// Run units of its actions.
    pub units: f64,
    /// US dollars of its model calls.
    pub cost_usd: f64,
    /// Seconds worked.
    pub time_s: f64,
}

/// An agent in a listing.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct AgentView {
    /// Id.
    pub agent: String,
    /// Organisation.
    pub org: String,
    /// Who spawned it (its steps are asked for and approved as this principal's).
    pub owner: String,
    /// The goal.
    pub goal: String,
    /// `created`, `running`, `waiting`, `paused`, `finished`, `failed` or `killed`.
    pub state: kernos_core::AgentState,
    /// What a waiting agent waits for: `approval`, `model`, `schedule` or `lease`.
    pub waiting_on: Option<kernos_core::Wait>,
    /// Why it is in this state (the budget that ran out, who paused it, …).
    pub reason: Option<String>,
    /// The model's answer, once finished.
    pub answer: Option<String>,
    /// Model lane.
    pub lane: String,
    /// Limits.
    pub budget: AgentLimits,
    /// Used so far.
    pub used: AgentUsed,
    /// The action it is running or waiting on, if any.
    pub action: Option<String>,
    /// Its active capability lease (granted to `agent:<id>`), if any: steps inside it run
    /// without asking.
    pub lease: Option<String>,
    /// The agent it was cloned from, if any.
    pub parent: Option<String>,
    /// Created, ms since the epoch.
    pub created_ms: i64,
    /// Last change of state or snapshot, ms since the epoch.
    pub updated_ms: i64,
}

/// One agent with its memory.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct AgentDetail {
    /// Summary.
    #[serde(flatten)]
    pub view: AgentView,
    /// What its steps showed, oldest first (`step`, `text`).
    pub observations: Vec<Value>,
    /// The model's messages, one per turn that had one.
    pub notes: Vec<String>,
    /// Every plan it proposed, in order.
    pub plans: Vec<Plan>,
    /// The actions it submitted, oldest first.
    pub actions: Vec<String>,
}

/// GET /v1/agents query.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentListParams {
    /// Only agents in this state.
    pub state: Option<kernos_core::AgentState>,
}

/// POST /v1/leases body: a capability lease to grant.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LeaseGrant {
    /// Who it is attached to: `agent:<id>`, `key:<id>` (a key of your organisation) or
    /// `schedule:<id>`.
    pub grantee: String,
    /// What kinds of step it covers: action patterns (`fs.*`, `svc.restart`) and/or effect
    /// kinds.
    pub capabilities: kernos_core::Capabilities,
    /// What those steps may touch: absolute path prefixes, services, packages, hosts, ports.
    /// An empty list allows none of that kind.
    #[serde(default)]
    pub scope: kernos_core::LeaseScope,
    /// The highest step risk it approves, at most what your role may approve.
    pub max_risk: Risk,
    /// How long it lasts, seconds (at most 90 days).
    pub ttl_s: u64,
    /// Steps and run units it may be used for.
    #[serde(default)]
    pub budget: kernos_core::LeaseBudget,
}

/// POST /v1/leases/{id}/renew body.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LeaseRenew {
    /// How long it lasts from now, seconds (at most 90 days).
    pub ttl_s: u64,
}

/// GET /v1/leases parameters.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct LeaseListParams {
    /// Only leases attached to this grantee (`agent:<id>`, `key:<id>`, `schedule:<id>`).
    pub grantee: Option<String>,
}

/// A lease as the API shows it: the lease and where it stands now.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct LeaseView {
    /// The lease.
    #[serde(flatten)]
    pub lease: kernos_core::Lease,
    /// `active`, `expired`, `revoked` or `spent` (its budget used up).
    pub state: String,
}

/// POST /v1/schedules: routine work at set times.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleCreate {
    /// When: plain language ("every day at 03:00 in Europe/Paris", "every 5 minutes",
    /// "weekly on monday at 9:30") or a cron expression (seconds, `L`, `W`, `#`, a zone).
    pub when: String,
    /// What to do, in plain language: planned now, and that plan is what runs (give this or
    /// `plan`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<String>,
    /// The plan to run (give this or `request`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<Plan>,
    /// Absolute working directory of its runs (default: the organisation's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// Fire times missed while the daemon was down: `run_once` (default: one run for all of
    /// them after the restart) or `skip`.
    #[serde(default)]
    pub missed: Option<String>,
    /// Up to this many seconds of randomized delay after each fire time (the same after a
    /// restart), so many schedules do not all start at once.
    #[serde(default)]
    pub random_delay_s: Option<u64>,
    /// Only plan and describe it: nothing is stored (to show the plan before saving it).
    #[serde(default)]
    pub dry_run: bool,
}

/// A schedule.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ScheduleView {
    /// Id (empty for a dry run).
    pub schedule: String,
    /// Organisation.
    pub org: String,
    /// Who created it (its runs are asked for and approved as this principal's).
    pub owner: String,
    /// When, as written.
    pub when: String,
    /// When, in plain words.
    pub describe: String,
    /// The request it was planned from, if any.
    pub request: Option<String>,
    /// The approved plan each run runs.
    pub plan: Plan,
    /// `run_once` or `skip`.
    pub missed: String,
    /// Randomized delay bound, seconds.
    pub random_delay_s: u64,
    /// Paused schedules do not fire on their own (run-now still runs).
    pub paused: bool,
    /// The next fire time, RFC 3339 (none: it never fires again).
    pub next_due: Option<String>,
    /// The run (action id) in progress, if any.
    pub running: Option<String>,
    /// The latest run: its action, when it ended and how.
    pub last_run: Option<Value>,
    /// Its active capability lease (granted to `schedule:<id>`), if any.
    pub lease: Option<String>,
    /// Created, ms since the epoch.
    pub created_ms: i64,
}

/// POST /v1/schedules/{id}/run answer.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ScheduleRun {
    /// The schedule.
    pub schedule: String,
    /// `requested` (it starts at once), `already_running` or `already_requested` (this request
    /// joins that run: never two copies at once).
    pub status: String,
    /// The run in progress this request joined, if any.
    pub run: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The strings the worker journals in `action.finished` (and the engine's transaction
    /// statuses it passes through) are exactly the enum's names.
    #[test]
    fn action_statuses_serialize_as_the_journaled_strings() {
        let named = [
            ("queued", ActionStatus::Queued),
            ("running", ActionStatus::Running),
            ("committed", ActionStatus::Committed),
            ("failed", ActionStatus::Failed),
            ("cancelled", ActionStatus::Cancelled),
            ("denied", ActionStatus::Denied),
            ("declined", ActionStatus::Declined),
            ("not_understood", ActionStatus::NotUnderstood),
            ("invalid", ActionStatus::Invalid),
            ("previewed", ActionStatus::Previewed),
            ("undone", ActionStatus::Undone),
            ("interrupted", ActionStatus::Interrupted),
            ("aborted", ActionStatus::Aborted),
            ("error", ActionStatus::Error),
            ("unknown", ActionStatus::Unknown),
        ];
        for (s, v) in named {
            assert_eq!(serde_json::to_value(v).unwrap(), json!(s));
            assert_eq!(serde_json::from_value::<ActionStatus>(json!(s)).unwrap(), v);
        }
        use kernos_engine::TxStatus as T;
        for t in [
            T::Committed,
            T::Failed,
            T::Cancelled,
            T::Denied,
            T::Declined,
        ] {
            let v: ActionStatus = serde_json::from_value(json!(t.as_str())).unwrap();
            assert_ne!(v, ActionStatus::Unknown, "{}", t.as_str());
        }
        let later: ActionStatus = serde_json::from_value(json!("paused")).unwrap();
        assert_eq!(later, ActionStatus::Unknown);
    }

    /// Until the worker journals the enum itself, its literals are checked here: each
    /// `"status": "…"` it writes must be one of the enum's names.
    #[test]
    fn the_workers_status_literals_are_action_statuses() {
        let src = include_str!("worker.rs");
        for rest in src.split("\"status\": \"").skip(1) {
            let lit = rest.split('"').next().unwrap();
            let v: ActionStatus = serde_json::from_value(json!(lit)).unwrap();
            assert_ne!(
                v,
                ActionStatus::Unknown,
                "worker.rs journals status {lit:?}"
            );
        }
    }

    #[test]
    fn limits_default_and_clamp() {
        assert_eq!(clamp_limit(None, 50, 1000), 50);
        assert_eq!(clamp_limit(Some(0), 50, 1000), 1);
        assert_eq!(clamp_limit(Some(5000), 50, 1000), 1000);
    }
}

/// A signed checkpoint of the journal's transparency log, as stored (a `log.checkpoint`
/// event).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct LogCheckpoint {
    /// The seq of the event that stores it.
    pub seq: u64,
    /// Tree size: it covers events 1..=size.
    pub size: u64,
    /// The C2SP signed note: origin, size, base64 root, then an Ed25519 and an ML-DSA-44
    /// signature line by the log's keys.
    pub note: String,
}

/// GET /v1/log/proof/inclusion parameters.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct InclusionParams {
    /// The event to prove.
    pub seq: u64,
    /// The size of the stored checkpoint to prove it in; the newest when left out.
    #[serde(default)]
    pub size: Option<u64>,
}

/// An inclusion proof of one event in a signed checkpoint (RFC 9162 §2.1.3), checked by the
/// daemon before answering.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct LogInclusion {
    /// The event.
    pub seq: u64,
    /// Its leaf index (seq − 1).
    pub index: u64,
    /// Its leaf hash, base64 (SHA-256 of 0x00 ‖ the leaf bytes, docs/TLOG.md).
    pub leaf_hash: String,
    /// The checkpoint's tree size.
    pub size: u64,
    /// The checkpoint's root, base64.
    pub root: String,
    /// The signed checkpoint.
    pub checkpoint: String,
    /// Proof hashes, base64, leaf to root.
    pub hashes: Vec<String>,
}

/// GET /v1/log/proof/consistency parameters.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct ConsistencyParams {
    /// The earlier tree size.
    pub from: u64,
    /// The later tree size.
    pub to: u64,
}

/// A consistency proof between two tree sizes (RFC 9162 §2.1.4).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct LogConsistency {
    /// The earlier size.
    pub from: u64,
    /// The later size.
    pub to: u64,
    /// The root at `from`, base64.
    pub from_root: String,
    /// The root at `to`, base64.
    pub to_root: String,
    /// Proof hashes, base64.
    pub hashes: Vec<String>,
}

/// One public key of the log, with its rotation status.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct LogKey {
    /// Signed-note verifier key: `<name>+<hex key ID>+<base64(type ‖ key)>`.
    pub vkey: String,
    /// When it was rotated out (Unix seconds).
    pub retired_at: Option<u64>,
    /// Its signatures dated after this are refused (Unix seconds).
    pub not_after: Option<u64>,
}

/// GET /v1/log/keys: the log's public keys, and this daemon's witness keys if it is one.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct LogKeys {
    /// The log's origin (the keys' name).
    pub origin: String,
    /// The active keys (Ed25519, ML-DSA-44): what a verifier should hold.
    pub vkeys: Vec<String>,
    /// Every generation, retired ones with their overlap window.
    pub keys: Vec<LogKey>,
    /// This daemon's cosigning keys as a witness (`cosignature/v1` Ed25519 and ML-DSA-44),
    /// when it witnesses any log.
    pub witness_vkeys: Vec<String>,
}

/// POST /v1/log/keys/rotate: a new generation of the log's keys.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LogKeyRotate {
    /// How long (seconds) checkpoints signed by the old keys still verify; a day if left out.
    #[serde(default)]
    pub overlap_s: Option<u64>,
}

/// POST /v1/log/witness: a log asks this daemon, as its witness, to cosign a checkpoint.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct WitnessRequest {
    /// The log's signed checkpoint.
    pub checkpoint: String,
    /// The tree size the log believes this witness saw last (0 the first time).
    pub old_size: u64,
    /// Consistency proof from `old_size` to the checkpoint's size, base64 hashes.
    #[serde(default)]
    pub consistency: Vec<String>,
}

/// The witness's answer: its cosignature lines to add to the checkpoint.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct WitnessCosigned {
    /// C2SP tlog-cosignature lines (`— <witness> <base64>`): Ed25519 `cosignature/v1`, then
    /// ML-DSA-44.
    pub cosignatures: Vec<String>,
}

/// GET /v1/fleet/nodes.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct FleetNodes {
    /// Whether this daemon controls your organisation's fleet.
    pub controlled: bool,
    /// Whether it is connected to the broker now.
    pub connected: bool,
    /// The nodes, by name.
    pub nodes: Vec<FleetNode>,
}

/// One node as GET /v1/fleet/nodes shows it.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct FleetNode {
    /// What it announced.
    #[serde(flatten)]
    pub info: kernos_fleet::NodeInfo,
    /// `up`, `unreachable` (three heartbeats missed) or `left`.
    pub status: kernos_fleet::NodeStatus,
    /// Memory in use, percent.
    pub memory_used_pct: f64,
}

/// One version of one of the organisation's skills (`GET /v1/skills`).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct SkillView {
    /// The skill's name (`skill.<name>` when it is a generated one).
    pub name: String,
    /// The version.
    pub version: u32,
    /// `taught` (a plan of catalog steps) or `generated` (a script run in the sandbox).
    pub kind: String,
    /// What it does.
    pub summary: String,
    /// `draft`, `validated` or `approved`.
    pub status: String,
    /// Whether this is the version in use.
    pub installed: bool,
    /// SHA-256 of the bundle as it is on disk now (`sha256:…`).
    pub hash: String,
    /// The hash validation recorded; when it differs from `hash` the bundle was altered and
    /// cannot be approved or installed.
    pub validated_hash: Option<String>,
    /// Who approved it.
    pub approved_by: Option<String>,
}

/// One version in full (`GET /v1/skills/{name}`): what an approver reviews.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct SkillDetail {
    /// The bundle: manifest (parameters, declared effects and paths, tests) and body.
    pub bundle: Value,
    /// Its lifecycle state: status, validated hash, test results, approver, signature.
    pub state: Value,
    /// SHA-256 of the bundle as it is on disk now.
    pub hash: String,
    /// Whether this is the version in use.
    pub installed: bool,
}

/// Which version a lifecycle change applies to.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct SkillVersion {
    /// The version; absent: the newest.
    #[serde(default)]
    pub version: Option<u32>,
}

/// A lifecycle change made (`POST /v1/skills/{name}/…`, `DELETE /v1/skills/{name}`): the
/// event journaled and its payload.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct SkillChanged {
    /// The `skill.*` event journaled.
    pub event: String,
    /// Its payload: org, name, version, hash, who (`by`) and what else the change has.
    pub payload: Value,
}
