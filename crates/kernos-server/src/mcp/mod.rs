//! Kernos as an MCP server: every catalog action and four Kernos tools (`kernos_request`,
//! `kernos_plan`, `kernos_undo`, `kernos_history`) offered to MCP clients, each call a thin
//! adapter over the daemon's one path.
//!
//! ```text
//! streamable HTTP  POST/GET/DELETE /mcp ─► auth + role (as any endpoint) ─► rmcp service ─┐
//! stdio            kernos mcp serve ─► in-process daemon, the local owner ────────────────┤
//!                                                                                         ▼
//!   KernosMcp (handler) ─► call: submission ─► check_submission + submit_checked (quota,
//!   queue, action.submitted as mcp:<client>@<who>) ─► worker: plan → policy → approval →
//!   sandbox → journal ─► follow (journal + hub) ─► approval: input-required / elicitation /
//!   the daemon's queue ─► outcome: structured result + transaction for kernos_undo
//! ```
//!
//! Modules: `catalog` (what is offered), `call` (one tools/call), `follow` (an action until it
//! ends or asks), `outcome` (the result), `resources` (history, transactions, machine facts,
//! prompts), `handler` (the rmcp `ServerHandler`), `http` (the `/mcp` route), `stdio`.

mod call;
mod catalog;
pub(crate) mod follow;
mod handler;
mod http;
pub(crate) mod outcome;
mod resources;
mod stdio;

use std::collections::HashSet;
use std::sync::Arc;

use kernos_tools::Registry;
use rmcp::model::Tool;

use crate::St;
use crate::auth::Principal;
use crate::config::McpServe;

pub(crate) use http::{Http, handle};
pub use stdio::serve_stdio;

/// What the daemon offers over MCP, built on the first MCP request and kept: the catalog and
/// `[server.mcp]` as the daemon started with them do not change while it runs. Not at start:
/// it is every action's schema, and most daemons are never asked.
pub(crate) struct LazyOffered {
    registry: Arc<Registry>,
    cfg: McpServe,
    built: std::sync::OnceLock<Offered>,
}

impl LazyOffered {
    /// What to build it from.
    pub(crate) fn new(registry: &Arc<Registry>, cfg: &McpServe) -> Self {
        LazyOffered {
            registry: registry.clone(),
            cfg: cfg.clone(),
            built: std::sync::OnceLock::new(),
        }
    }

    /// The offer, built now if this is the first use.
    pub(crate) fn get(&self) -> &Offered {
        self.built
            .get_or_init(|| Offered::new(&self.registry, &self.cfg))
    }
}

/// What the daemon offers over MCP.
#[derive(Debug)]
pub(crate) struct Offered {
    /// Every tool offered, in list order.
    tools: Arc<Vec<Tool>>,
    /// Their names.
    names: HashSet<String>,
    /// Most rows per step in a result.
    max_rows: usize,
}

impl Offered {
    /// From the registry and `[server.mcp]`.
    pub(crate) fn new(registry: &Registry, cfg: &McpServe) -> Self {
        let tools = catalog::tools(registry, &catalog::Offer::new(cfg));
        let names = tools.iter().map(|t| t.name.to_string()).collect();
        Offered {
            tools,
            names,
            max_rows: cfg.max_rows,
        }
    }
}

/// Who calls: the daemon and the principal the request authenticated as.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    st: St,
    principal: Principal,
}

impl Caller {
    fn offer_has(&self, name: &str) -> bool {
        self.st.mcp.get().names.contains(name)
    }

    fn max_rows(&self) -> usize {
        self.st.mcp.get().max_rows
    }
}
