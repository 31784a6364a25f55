//! `/mcp`: the streamable HTTP transport, mounted behind the daemon's authentication. The
//! route table gives it an access check like any endpoint, so by the time rmcp sees a request
//! its principal is known; the route adds the daemon's state next to it, where the handler
//! finds both.

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use tokio_util::sync::CancellationToken;
use tower::Service as _;

use super::handler::KernosMcp;
use crate::St;
use crate::error::ApiError;

/// The rmcp service and what stops it.
pub(crate) struct Http {
    service: StreamableHttpService<KernosMcp, LocalSessionManager>,
    stop: CancellationToken,
}

impl std::fmt::Debug for Http {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Http").finish_non_exhaustive()
    }
}

impl Http {
    /// The service, with sessions for clients of revisions before 2026-07-28 (which need them
    /// for elicitation) and stateless requests for later ones.
    pub(crate) fn new() -> Self {
        let stop = CancellationToken::new();
        // Host checks guard a server on loopback against DNS rebinding; here every request
        // is authenticated first (an API key, or the socket's peer), and the daemon may listen
        // on a real name. A browser's Origin is refused: the dashboard has its own routes.
        let config = StreamableHttpServerConfig::default()
            .disable_allowed_hosts()
            .enforce_origin_validation()
            .with_cancellation_token(stop.child_token());
        Http {
            service: StreamableHttpService::new(
                || Ok(KernosMcp::default()),
                LocalSessionManager::default().into(),
                config,
            ),
            stop,
        }
    }

    /// Ends every MCP session and stream (the daemon is stopping).
    pub(crate) fn stop(&self) {
        self.stop.cancel();
    }
}

/// POST, GET and DELETE /mcp.
pub(crate) async fn handle(State(st): State<St>, mut req: Request) -> Response {
    if !st.config().mcp.enabled {
        return ApiError::not_found("MCP is off here ([server.mcp] enabled = false)")
            .into_response();
    }
    req.extensions_mut().insert(st.clone());
    let mut service = st.mcp_http.service.clone();
    match service.call(req).await {
        Ok(r) => r.map(axum::body::Body::new),
        Err(never) => match never {},
    }
}
