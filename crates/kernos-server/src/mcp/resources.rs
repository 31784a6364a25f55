//! What an MCP client may read without acting: the organisation's history, one transaction's
//! events, the machine's facts; and a few prompts that start common work the Kernos way.

use kernos_engine::TxSummary;
use rmcp::ErrorData as McpError;
use rmcp::model::{
    GetPromptResult, Prompt, PromptArgument, PromptMessage, ReadResourceResult, Resource,
    ResourceContents, ResourceTemplate, Role as MsgRole,
};
use serde_json::{Map, Value, json};

use crate::St;
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::worker::org_transaction;

/// The organisation's recent transactions.
pub(crate) const HISTORY_URI: &str = "kernos://history";
/// One transaction's events: `kernos://transactions/<id>`.
pub(crate) const TX_PREFIX: &str = "kernos://transactions/";
/// Facts about the machine.
pub(crate) const MACHINE_URI: &str = "kernos://machine";

/// The fixed resources.
pub(crate) fn list() -> Vec<Resource> {
    vec![
        Resource::new(HISTORY_URI, "history")
            .with_title("Kernos history")
            .with_description("The 50 most recent transactions of your organisation: what was asked, by whom, status, whether it can be undone.")
            .with_mime_type("application/json"),
        Resource::new(MACHINE_URI, "machine")
            .with_title("This machine")
            .with_description("Host name, operating system, kernel, CPUs, memory, uptime, and the Kernos catalog size.")
            .with_mime_type("application/json"),
    ]
}

/// The templates.
pub(crate) fn templates() -> Vec<ResourceTemplate> {
    vec![
        ResourceTemplate::new(format!("{TX_PREFIX}{{id}}"), "transaction")
            .with_title("One transaction")
            .with_description("Every journaled event of a transaction (its id or a unique part of at least 4 characters), as kernos_history and tool results name it.")
            .with_mime_type("application/json"),
    ]
}

/// Reads `uri` as `p`.
pub(crate) async fn read(
    st: &St,
    p: &Principal,
    uri: &str,
) -> Result<ReadResourceResult, McpError> {
    let value = if uri == HISTORY_URI {
        json!(history(st, &p.org, 50).await.map_err(internal)?)
    } else if uri == MACHINE_URI {
        machine(st)
    } else if let Some(id) = uri.strip_prefix(TX_PREFIX) {
        transaction(st, &p.org, id)
            .await
            .map_err(|e| McpError::resource_not_found(e.detail, Some(json!({ "uri": uri }))))?
    } else {
        return Err(McpError::resource_not_found(
            format!("no resource {uri}; resources/list and resources/templates/list show them"),
            None,
        ));
    };
    let text = serde_json::to_string_pretty(&value).unwrap_or_default();
    Ok(ReadResourceResult::new(vec![
        ResourceContents::text(text, uri).with_mime_type("application/json"),
    ]))
}

fn internal(e: ApiError) -> McpError {
    McpError::internal_error(e.detail, None)
}

/// The organisation's newest `limit` transactions.
pub(crate) async fn history(st: &St, org: &str, limit: usize) -> ApiResult<Vec<TxSummary>> {
    let st2 = st.clone();
    let org = org.to_owned();
    tokio::task::spawn_blocking(move || st2.engine.history(limit, Some(&org)))
        .await
        .map_err(|e| ApiError::internal(format!("history failed: {e}; retry")))?
        .map_err(ApiError::from)
}

/// One line of history, as a model reads it.
pub(crate) fn history_line(t: &TxSummary) -> String {
    format!(
        "{} {} by {}: {} [{}]{}{}",
        t.tx,
        t.started_ms,
        t.actor,
        t.request.as_deref().unwrap_or("(plan)"),
        t.steps.join(", "),
        t.status
            .map(|s| format!(" {}", json!(s).as_str().unwrap_or_default()))
            .unwrap_or_default(),
        if t.undone {
            " (undone)"
        } else if t.undoable {
            " (undoable)"
        } else {
            ""
        }
    )
}

/// A transaction's events, when it is the organisation's.
async fn transaction(st: &St, org: &str, id: &str) -> ApiResult<Value> {
    let st2 = st.clone();
    let org2 = org.to_owned();
    let wanted = id.to_owned();
    let events = tokio::task::spawn_blocking(move || org_transaction(&st2, &wanted, &org2))
        .await
        .map_err(|e| ApiError::internal(format!("reading the transaction failed: {e}; retry")))??;
    events.map(|e| json!(e)).ok_or_else(|| {
        ApiError::not_found(format!(
            "no transaction {id} in org {org}; read {HISTORY_URI} for the list"
        ))
    })
}

/// Facts about the host, read from /proc and /etc (nothing is run).
fn machine(st: &St) -> Value {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let os = read("/etc/os-release")
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_owned());
    let mem_kib = read("/proc/meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok());
    let uptime_s = read("/proc/uptime")
        .split_whitespace()
        .next()
        .and_then(|v| v.parse::<f64>().ok())
        .map(|v| v as u64);
    let catalog: usize = st
        .engine
        .registry()
        .tools()
        .iter()
        .map(|t| t.actions.len())
        .sum();
    json!({
        "hostname": read("/proc/sys/kernel/hostname").trim(),
        "os": os,
        "kernel": read("/proc/sys/kernel/osrelease").trim(),
        "arch": std::env::consts::ARCH,
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "memory_bytes": mem_kib.map(|k| k * 1024),
        "uptime_s": uptime_s,
        "kernos_version": env!("CARGO_PKG_VERSION"),
        "catalog_actions": catalog,
    })
}

/// The prompts, each naming the Kernos tools it leads to.
pub(crate) fn prompts() -> Vec<Prompt> {
    let arg = |name: &str, what: &str, required: bool| {
        PromptArgument::new(name)
            .with_description(what)
            .with_required(required)
    };
    vec![
        Prompt::new(
            "free_disk_space",
            Some("Find what fills a directory and free space safely, with undo."),
            Some(vec![arg(
                "path",
                "Directory to look at, e.g. /var/log",
                true,
            )]),
        ),
        Prompt::new(
            "what_changed",
            Some("Summarise what was done on this machine recently, and what can be undone."),
            None::<Vec<PromptArgument>>,
        ),
        Prompt::new(
            "check_service",
            Some("Look into a misbehaving service: its status, recent logs, what to do."),
            Some(vec![arg("service", "Service name, e.g. nginx", true)]),
        ),
    ]
}

/// One prompt filled in.
pub(crate) fn prompt(name: &str, args: &Map<String, Value>) -> Result<GetPromptResult, McpError> {
    let get = |k: &str| -> Result<String, McpError> {
        args.get(k)
            .and_then(Value::as_str)
            .filter(|v| !v.trim().is_empty())
            .map(str::to_owned)
            .ok_or_else(|| McpError::invalid_params(format!("prompt {name} needs `{k}`"), None))
    };
    let text = match name {
        "free_disk_space" => {
            let path = get("path")?;
            format!(
                "Use kernos_plan with \"show the 10 largest files in {path}\" and tell me what takes the space. Then propose what to remove; run it with kernos_request only after I agree. Everything Kernos removes goes to its trash and can be put back with kernos_undo."
            )
        }
        "what_changed" => "Call kernos_history and summarise, newest first, what was done on this machine, by whom, and which transactions can still be undone with kernos_undo.".to_owned(),
        "check_service" => {
            let svc = get("service")?;
            format!(
                "Use kernos_request to show the status of the service {svc} and its last 50 log lines. Explain what is wrong in plain words and propose a fix; do not change anything before I agree."
            )
        }
        other => {
            return Err(McpError::invalid_params(
                format!("no prompt {other}; prompts/list shows them"),
                None,
            ));
        }
    };
    Ok(GetPromptResult::new(vec![PromptMessage::new_text(
        MsgRole::User,
        text,
    )]))
}
