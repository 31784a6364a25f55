//! `kernos mcp serve`: MCP on stdin/stdout, for clients that start their servers as child
//! processes. With a daemon running on the data directory, every message is relayed to its
//! `/mcp` over the Unix socket (so approvals, quotas and the journal are the daemon's); without
//! one, the daemon runs in this process for as long as the client keeps stdin open, with its
//! Unix socket up so `kernos approvals` can answer what the client cannot.

use std::time::Duration;

use kernos_core::LOCAL_ORG;
use rmcp::ServiceExt as _;
use rmcp::transport::{StreamableHttpClientTransport, Transport};

use super::handler::KernosMcp;
use crate::auth::{Principal, Role};
use crate::{Daemon, DaemonOptions, ServerError, daemon_running, socket_path};

/// Serves MCP on stdio until the client closes stdin. Nothing but MCP is written to stdout;
/// diagnostics go to stderr.
pub fn serve_stdio(opts: DaemonOptions) -> Result<(), ServerError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(16)
        .enable_all()
        .build()
        .map_err(|e| io("cannot start the async runtime", e))?;
    if daemon_running(&opts.data_dir) {
        rt.block_on(relay(&opts))
    } else {
        rt.block_on(in_process(opts))
    }
}

fn io(what: &str, e: impl std::fmt::Display) -> ServerError {
    ServerError::Config(format!("{what}: {e}"))
}

/// Relays stdio to the running daemon's `/mcp`, message by message, until either side ends.
async fn relay(opts: &DaemonOptions) -> Result<(), ServerError> {
    let socket = socket_path(&opts.data_dir);
    let mut daemon = StreamableHttpClientTransport::from_unix_socket(
        &socket.to_string_lossy(),
        "http://localhost/mcp",
    );
    let mut client = rmcp::transport::async_rw::AsyncRwTransport::<rmcp::RoleServer, _, _>::new(
        tokio::io::stdin(),
        tokio::io::stdout(),
    );
    tracing::info!(socket = %socket.display(), "relaying MCP on stdio to the running daemon");
    loop {
        tokio::select! {
            m = client.receive() => match m {
                Some(m) => daemon.send(m).await.map_err(|e| io("the daemon refused a message", e))?,
                None => break,
            },
            m = daemon.receive() => match m {
                Some(m) => client.send(m).await.map_err(|e| io("cannot write to stdout", e))?,
                None => {
                    tracing::warn!("the daemon ended the MCP session");
                    break;
                }
            },
        }
    }
    let _ = daemon.close().await;
    Ok(())
}

/// Runs the daemon here, serving MCP on stdio as its owner and the API on its Unix socket.
async fn in_process(opts: DaemonOptions) -> Result<(), ServerError> {
    kernos_journal::create_private_dir(&opts.data_dir)
        .map_err(|e| io(&format!("cannot create {}", opts.data_dir.display()), e))?;
    crate::refuse_shared_data_dir(&opts.data_dir)?;
    let socket = socket_path(&opts.data_dir);
    let unix = crate::listen::bind_unix(&socket)?;
    let daemon = Daemon::start(opts)?;
    let state = daemon.state();
    let router = crate::app(state.clone());
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let api = tokio::spawn(async move {
        let svc = router.into_make_service_with_connect_info::<crate::Peer>();
        axum::serve(unix, svc)
            .with_graceful_shutdown(async move {
                let _ = stop_rx.wait_for(|v| *v).await;
            })
            .await
    });
    let owner = Principal {
        actor: state.local_actor.clone(),
        org: LOCAL_ORG.into(),
        role: Role::Owner,
        key_id: None,
        source: "stdio".into(),
    };
    let served = KernosMcp::bound(state.clone(), owner)
        .serve(rmcp::transport::stdio())
        .await;
    match served {
        Ok(running) => {
            if let Err(e) = running.waiting().await {
                tracing::warn!("the MCP session ended with an error: {e}");
            }
        }
        Err(e) => tracing::warn!("the MCP client did not complete the handshake: {e}"),
    }
    drop(state);
    crate::listen::stop_daemon(daemon, &stop_tx).await?;
    let _ = tokio::time::timeout(Duration::from_secs(1), api).await;
    let _ = std::fs::remove_file(&socket);
    Ok(())
}
