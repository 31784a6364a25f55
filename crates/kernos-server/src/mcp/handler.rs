//! The rmcp `ServerHandler`: who calls (the HTTP request's principal, or the local owner on
//! stdio), and which module answers each MCP request.

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, GetPromptRequestParams, GetPromptResponse,
    Implementation, ListPromptsResult, ListResourceTemplatesResult, ListResourcesResult,
    ListToolsResult, PaginatedRequestParams, ReadResourceRequestParams, ReadResourceResponse,
    ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler};

use super::catalog::HISTORY;
use super::{Caller, call, resources};
use crate::St;
use crate::auth::{Perm, Principal};

/// The handler of one MCP session.
#[derive(Debug, Clone, Default)]
pub(crate) struct KernosMcp {
    /// Set on stdio, where one caller owns the whole session; over HTTP each request says
    /// who it is (the `/mcp` route puts it in the request).
    bound: Option<Caller>,
}

impl KernosMcp {
    /// A handler for a stdio session acting as `principal`.
    pub(crate) fn bound(st: St, principal: Principal) -> Self {
        KernosMcp {
            bound: Some(Caller { st, principal }),
        }
    }

    /// The caller of this request: over HTTP, the daemon state and principal the route put in
    /// the request's extensions (authenticated like every endpoint, per request).
    fn caller(&self, ctx: &RequestContext<RoleServer>) -> Result<Caller, McpError> {
        if let Some(c) = &self.bound {
            return Ok(c.clone());
        }
        let parts = ctx.extensions.get::<axum::http::request::Parts>();
        let st = parts.and_then(|p| p.extensions.get::<St>());
        let principal = parts.and_then(|p| p.extensions.get::<Principal>());
        match (st, principal) {
            (Some(st), Some(p)) => Ok(Caller {
                st: st.clone(),
                principal: p.clone(),
            }),
            _ => Err(McpError::internal_error(
                "this request reached the MCP handler without an authenticated caller; report it as a bug",
                None,
            )),
        }
    }
}

impl ServerHandler for KernosMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_resources()
                .enable_prompts()
                .build(),
        )
        .with_server_info(
            Implementation::new("kernos", env!("CARGO_PKG_VERSION")).with_title("Kernos"),
        )
        .with_instructions(
            "Kernos runs every tool call on one path: policy decides the risk, a person approves where policy asks (you may be asked), each step runs confined in a sandbox, everything is journaled, and changes can be undone with kernos_undo and the transaction id a result names. Prefer kernos_plan to preview before kernos_request changes anything.",
        )
    }

    async fn list_tools(
        &self,
        _req: Option<PaginatedRequestParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        let c = self.caller(&ctx)?;
        let tools = if c.principal.role.allows(Perm::Submit) {
            c.st.mcp.get().tools.to_vec()
        } else {
            // A viewer can only read: offering what it may not call would only mislead it.
            c.st.mcp
                .get()
                .tools
                .iter()
                .filter(|t| t.name == HISTORY)
                .cloned()
                .collect()
        };
        Ok(ListToolsResult::with_all_items(tools))
    }

    async fn call_tool(
        &self,
        req: CallToolRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let c = self.caller(&ctx)?;
        call::call(&c, req, &ctx).await
    }

    async fn list_resources(
        &self,
        _req: Option<PaginatedRequestParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        self.caller(&ctx)?;
        Ok(ListResourcesResult::with_all_items(resources::list()))
    }

    async fn list_resource_templates(
        &self,
        _req: Option<PaginatedRequestParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, McpError> {
        self.caller(&ctx)?;
        Ok(ListResourceTemplatesResult::with_all_items(
            resources::templates(),
        ))
    }

    async fn read_resource(
        &self,
        req: ReadResourceRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        let c = self.caller(&ctx)?;
        resources::read(&c.st, &c.principal, &req.uri)
            .await
            .map(Into::into)
    }

    async fn list_prompts(
        &self,
        _req: Option<PaginatedRequestParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, McpError> {
        self.caller(&ctx)?;
        Ok(ListPromptsResult::with_all_items(resources::prompts()))
    }

    async fn get_prompt(
        &self,
        req: GetPromptRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, McpError> {
        self.caller(&ctx)?;
        resources::prompt(&req.name, &req.arguments.unwrap_or_default()).map(Into::into)
    }
}
