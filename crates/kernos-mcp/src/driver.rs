//! The driver: the `kernos` binary started as `kernos __mcp-call` inside a step's sandbox.
//!
//! It reads one [`DriverRequest`] (JSON) on stdin, starts the stdio server as its own child
//! (which inherits the sandbox) or connects to the URL, initializes, lists the tools, and
//! either returns them (`List`, for `kernos mcp trust`) or, for a `Call`, compares them with
//! the pinned hash it was given and calls the tool only when they match. It prints one
//! [`DriverReply`] line on stdout. The sandbox helper's run-to-completion API is kept, and the
//! server still gets a real interactive session.

use std::borrow::Cow;
use std::io::Read;
use std::time::Duration;

use rmcp::ServiceExt;
use rmcp::model::{CallToolRequestParams, ContentBlock};
use rmcp::service::RunningService;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::config::ServerConfig;
use crate::error::McpError;
use crate::snapshot::{ToolInfo, tools_hash};

/// The hidden first argument that makes `kernos` the driver.
pub const DRIVER_ARG: &str = "__mcp-call";

/// What the driver is asked to do.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DriverRequest {
    /// The server (how to reach it; its environment was passed by the sandbox).
    pub server: ServerConfig,
    /// List or call.
    pub op: Op,
}

/// The driver's operations.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    /// Return the server's tools.
    List,
    /// Call `tool` if the live tool list still has the `pinned` hash.
    Call {
        /// The server's tool name.
        tool: String,
        /// Its arguments.
        arguments: Map<String, Value>,
        /// [`tools_hash`] of the reviewed snapshot.
        pinned: String,
    },
}

/// The driver's one line of answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum DriverReply {
    /// The live tool list.
    Tools {
        /// Tools, sorted by name.
        tools: Vec<ToolInfo>,
    },
    /// Not called: the live tools differ from the pin.
    Changed {
        /// The live tool list, so the caller can say what changed.
        tools: Vec<ToolInfo>,
    },
    /// The tool's result.
    Called {
        /// Text content blocks, in order (other kinds are described in one line).
        text: Vec<String>,
        /// `structuredContent`, when the tool returned one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        structured: Option<Value>,
        /// The tool reported an error (`isError`).
        #[serde(default)]
        is_error: bool,
    },
    /// The server could not be started, reached or asked.
    Failed {
        /// Why.
        message: String,
    },
}

/// The driver's whole life: one request in, one reply out. Returns the exit status.
pub fn driver_main() -> i32 {
    let mut input = String::new();
    let reply = match std::io::stdin().read_to_string(&mut input) {
        Err(e) => DriverReply::Failed {
            message: format!("cannot read the request: {e}"),
        },
        Ok(_) => match serde_json::from_str::<DriverRequest>(&input) {
            Err(e) => DriverReply::Failed {
                message: format!("not a driver request: {e}"),
            },
            Ok(req) => run_blocking(&req),
        },
    };
    match serde_json::to_string(&reply) {
        Ok(line) => {
            println!("{line}");
            0
        }
        Err(_) => 1,
    }
}

/// Answers `req` on a runtime of its own, within the server's time limit.
pub fn run_blocking(req: &DriverRequest) -> DriverReply {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            return DriverReply::Failed {
                message: format!("cannot start the async runtime: {e}"),
            };
        }
    };
    // reqwest (the HTTP transport) wants a crypto provider; the workspace's is ring.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let limit = Duration::from_secs(req.server.timeout_s);
    rt.block_on(async {
        match tokio::time::timeout(limit, answer(req)).await {
            Ok(Ok(reply)) => reply,
            Ok(Err(e)) => DriverReply::Failed {
                message: e.to_string(),
            },
            Err(_) => DriverReply::Failed {
                message: format!(
                    "MCP server {} did not answer within {} s (timeout_s)",
                    req.server.name, req.server.timeout_s
                ),
            },
        }
    })
}

async fn answer(req: &DriverRequest) -> Result<DriverReply, McpError> {
    let s = &req.server;
    let client = connect(s).await?;
    let fail = |e: rmcp::ServiceError| McpError::server(&s.name, e);
    let listed = client.list_all_tools().await.map_err(fail)?;
    let mut tools: Vec<ToolInfo> = listed.into_iter().map(tool_info).collect();
    tools.sort_by(|a, b| a.name.cmp(&b.name));
    let reply = match &req.op {
        Op::List => DriverReply::Tools { tools },
        Op::Call { pinned, .. } if tools_hash(&tools) != *pinned => DriverReply::Changed { tools },
        Op::Call {
            tool, arguments, ..
        } => {
            let mut params = CallToolRequestParams::new(Cow::Owned(tool.clone()));
            params.arguments = Some(arguments.clone());
            let r = client.call_tool(params).await.map_err(fail)?;
            DriverReply::Called {
                text: r.content.iter().map(content_text).collect(),
                structured: r.structured_content,
                is_error: r.is_error.unwrap_or(false),
            }
        }
    };
    let _ = client.cancel().await;
    Ok(reply)
}

/// Starts (stdio) or reaches (URL) the server and initializes the session.
async fn connect(s: &ServerConfig) -> Result<RunningService<rmcp::RoleClient, ()>, McpError> {
    let fail = |e: &dyn std::fmt::Display| McpError::server(&s.name, e);
    match (&s.command, &s.url) {
        (Some(argv), _) => {
            let (program, args) = argv
                .split_first()
                .ok_or_else(|| McpError::config(&s.name, "command is empty"))?;
            let mut cmd = tokio::process::Command::new(program);
            cmd.args(args);
            let child = TokioChildProcess::new(cmd)
                .map_err(|e| fail(&format!("cannot start {program}: {e}")))?;
            ().serve(child).await.map_err(|e| fail(&e))
        }
        (None, Some(url)) => {
            let t = StreamableHttpClientTransport::from_uri(url.as_str());
            ().serve(t).await.map_err(|e| fail(&e))
        }
        (None, None) => Err(McpError::config(&s.name, "no command and no url")),
    }
}

fn tool_info(t: rmcp::model::Tool) -> ToolInfo {
    ToolInfo {
        name: t.name.into_owned(),
        title: t.title,
        description: t.description.map(Cow::into_owned),
        input_schema: Value::Object((*t.input_schema).clone()),
        output_schema: t.output_schema.map(|s| Value::Object((*s).clone())),
        annotations: t
            .annotations
            .and_then(|a| serde_json::to_value(a).ok())
            .filter(|v| v.as_object().is_some_and(|m| !m.is_empty())),
    }
}

/// A content block as text: text as is, anything else (images, audio, resources) named in
/// one line by its type and MIME type.
fn content_text(c: &ContentBlock) -> String {
    if let ContentBlock::Text(t) = c {
        return t.text.clone();
    }
    let v = serde_json::to_value(c).unwrap_or(Value::Null);
    let kind = v["type"].as_str().unwrap_or("content");
    match v["mimeType"].as_str() {
        Some(m) => format!("[{kind}, {m}]"),
        None => format!("[{kind}]"),
    }
}
