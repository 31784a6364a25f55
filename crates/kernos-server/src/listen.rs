//! Listeners and the process around the router: TCP (TLS via rustls when configured), the Unix
//! socket with peer credentials, signals and graceful shutdown.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use tokio::net::{TcpListener, TcpStream, UnixListener};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::{Daemon, DaemonOptions, ServerError};

/// The daemon's socket file inside the data directory.
pub const SOCKET_FILE: &str = "kernos.sock";

/// Where a request came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Peer {
    /// A TCP client.
    Tcp {
        /// Its address.
        addr: SocketAddr,
        /// Whether the connection is TLS.
        tls: bool,
    },
    /// A local process on the Unix socket, identified by the kernel.
    Unix {
        /// Its user id.
        uid: u32,
        /// Its process id, when known.
        pid: Option<i32>,
    },
}

impl std::fmt::Display for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Peer::Tcp { addr, tls } => write!(f, "{}{addr}", if *tls { "tls:" } else { "" }),
            Peer::Unix { uid, pid } => match pid {
                Some(p) => write!(f, "unix:uid={uid},pid={p}"),
                None => write!(f, "unix:uid={uid}"),
            },
        }
    }
}

impl Connected<IncomingStream<'_, TcpListener>> for Peer {
    fn connect_info(s: IncomingStream<'_, TcpListener>) -> Self {
        Peer::Tcp {
            addr: *s.remote_addr(),
            tls: false,
        }
    }
}

/// The plain TCP listener, with Nagle's algorithm off on every connection. Responses and SSE
/// events are small writes that must leave at once: with Nagle, a write waits while the
/// previous one is unacknowledged, and the client may delay its ACK for tens of milliseconds,
/// so events on a busy stream arrived in bursts, up to 15 ms late.
pub(crate) struct NoDelayListener(TcpListener);

impl Listener for NoDelayListener {
    type Io = TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (s, addr) = Listener::accept(&mut self.0).await;
        if let Err(e) = s.set_nodelay(true) {
            tracing::debug!(%addr, "cannot set TCP_NODELAY: {e}");
        }
        (s, addr)
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.0.local_addr()
    }
}

impl Connected<IncomingStream<'_, NoDelayListener>> for Peer {
    fn connect_info(s: IncomingStream<'_, NoDelayListener>) -> Self {
        Peer::Tcp {
            addr: *s.remote_addr(),
            tls: false,
        }
    }
}

impl Connected<IncomingStream<'_, UnixListener>> for Peer {
    fn connect_info(s: IncomingStream<'_, UnixListener>) -> Self {
        match s.io().peer_cred() {
            Ok(c) => Peer::Unix {
                uid: c.uid(),
                pid: c.pid(),
            },
            // No credentials: an impossible uid, so it is never taken for the owner.
            Err(_) => Peer::Unix {
                uid: u32::MAX,
                pid: None,
            },
        }
    }
}

/// A TLS listener: handshakes run in their own tasks so a slow client cannot stall accepts.
pub struct TlsListener {
    rx: tokio::sync::mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    fn new(tcp: TcpListener, acceptor: TlsAcceptor) -> std::io::Result<Self> {
        let local = tcp.local_addr()?;
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        tokio::spawn(async move {
            loop {
                let Ok((s, addr)) = tcp.accept().await else {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                // As for plain TCP (see `NoDelayListener`): small writes leave at once.
                if let Err(e) = s.set_nodelay(true) {
                    tracing::debug!(%addr, "cannot set TCP_NODELAY: {e}");
                }
                let acc = acceptor.clone();
                let tx2 = tx.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(Duration::from_secs(10), acc.accept(s)).await {
                        Ok(Ok(tls)) => {
                            let _ = tx2.send((tls, addr)).await;
                        }
                        Ok(Err(e)) => tracing::debug!(%addr, "TLS handshake failed: {e}"),
                        Err(_) => tracing::debug!(%addr, "TLS handshake timed out"),
                    }
                });
                if tx.is_closed() {
                    return;
                }
            }
        });
        Ok(TlsListener { rx, local })
    }
}

impl Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(x) => x,
            // The accept loop never ends while the listener lives; park if it somehow did.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

impl Connected<IncomingStream<'_, TlsListener>> for Peer {
    fn connect_info(s: IncomingStream<'_, TlsListener>) -> Self {
        Peer::Tcp {
            addr: *s.remote_addr(),
            tls: true,
        }
    }
}

fn tls_acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, ServerError> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let _ = rustls::crypto::ring::default_provider().install_default();
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| {
            ServerError::Tls(format!(
                "cannot read the certificate chain {}: {e}",
                cert.display()
            ))
        })?;
    if certs.is_empty() {
        return Err(ServerError::Tls(format!(
            "{} holds no PEM certificate",
            cert.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
        ServerError::Tls(format!(
            "cannot read the private key {}: {e}",
            key.display()
        ))
    })?;
    let mut cfg = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| ServerError::Tls(format!("certificate and key do not work together: {e}")))?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(cfg)))
}

/// How `kernos serve` was asked to listen.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// TCP address (overrides `server.listen`); `None` uses the config's.
    pub listen: Option<String>,
    /// Allow a non-loopback address without TLS.
    pub insecure: bool,
    /// Also listen on TCP at all (the Unix socket is always on).
    pub tcp: bool,
}

pub(crate) fn bind_unix(path: &Path) -> Result<UnixListener, ServerError> {
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(ServerError::Config(format!(
                "a daemon is already running on {}; stop it first (it answers on that socket)",
                path.display()
            )));
        }
        // A stale socket from a daemon that was killed.
        let _ = std::fs::remove_file(path);
    }
    let l = UnixListener::bind(path).map_err(|e| ServerError::Io {
        what: format!("cannot listen on {}", path.display()),
        source: e,
    })?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(|e| {
        ServerError::Io {
            what: format!("cannot restrict {}", path.display()),
            source: e,
        }
    })?;
    Ok(l)
}

/// Starts the daemon and serves until SIGTERM or SIGINT, then shuts down gracefully: stops
/// accepting, ends event streams, cancels running steps cleanly, flushes the journal. Prints
/// `listening on …` lines on stdout once ready.
pub fn serve(opts: DaemonOptions, serve: ServeOptions) -> Result<(), ServerError> {
    // Before any thread of ours starts: the variables are read once and cleared (see notify).
    let notify = crate::notify::Notify::from_env();
    crate::notify::clear_env();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(runtime_threads())
        .max_blocking_threads(16)
        .enable_all()
        .build()
        .map_err(|e| ServerError::Io {
            what: "cannot start the async runtime".into(),
            source: e,
        })?;
    rt.block_on(serve_async(opts, serve, notify))
}

/// Threads of the async runtime (HTTP, SSE): one on a host of one or two cores, two on a
/// bigger one. On two cores a second runtime thread mostly wakes up to find nothing to steal:
/// measured with `scripts/bench-daemon 50 40000` on a 2-core host, it doubled the daemon's
/// context switches (~8.5 instead of ~4.6 per action) and cost ~18 % more daemon CPU per
/// action at saturation, for no throughput; the journal writer and the action workers need
/// that core. Nothing blocking runs on these threads (that goes to `spawn_blocking`), so one
/// is enough to serve every connection.
fn runtime_threads() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    if cores <= 2 { 1 } else { 2 }
}

async fn serve_async(
    opts: DaemonOptions,
    so: ServeOptions,
    notify: Option<crate::notify::Notify>,
) -> Result<(), ServerError> {
    let signals = StopSignals::register();
    // SIGHUP reloads the config; caught from the start like the stop signals, so one sent
    // right after readiness is a reload, never the default action (the daemon killed).
    let hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup());
    let mut cfg = opts.config.clone();
    if let Some(l) = &so.listen {
        cfg.listen = l.clone();
    }
    cfg.validate().map_err(ServerError::Config)?;
    let addr = cfg.listen_addr().map_err(ServerError::Config)?;
    let tls = match (&cfg.tls_cert, &cfg.tls_key) {
        (Some(c), Some(k)) => Some(tls_acceptor(c, k)?),
        _ => None,
    };
    if so.tcp && !addr.ip().is_loopback() && tls.is_none() && !so.insecure {
        return Err(ServerError::Config(format!(
            "refusing to listen on {addr} without TLS: API keys would cross the network in clear text. Set server.tls_cert and server.tls_key, listen on 127.0.0.1, or pass --insecure if something else encrypts the traffic"
        )));
    }
    let socket: PathBuf = crate::socket_path(&opts.data_dir);
    kernos_journal::create_private_dir(&opts.data_dir).map_err(|e| ServerError::Io {
        what: format!("cannot create {}", opts.data_dir.display()),
        source: e,
    })?;
    // Before the socket exists: a refused start leaves nothing behind.
    crate::refuse_shared_data_dir(&opts.data_dir)?;
    let unix = bind_unix(&socket)?;
    let tcp = if so.tcp {
        Some(TcpListener::bind(addr).await.map_err(|e| ServerError::Io {
            what: format!("cannot listen on {addr}"),
            source: e,
        })?)
    } else {
        None
    };

    // A reload reads the file again; `--listen` given at start stays what it was.
    let live = opts.live.clone().map(|mut l| {
        let listen = so.listen.clone();
        let load = l.loader.clone();
        l.loader = Arc::new(move || {
            load().map(|mut n| {
                if let Some(a) = &listen {
                    n.server.listen = a.clone();
                }
                n
            })
        });
        l
    });
    let daemon = Daemon::start(DaemonOptions {
        config: cfg,
        live,
        ..opts
    })?;
    for (a, org) in &daemon.recovered {
        println!("kernos: action {a} (org {org}) was interrupted by a crash; marked interrupted");
    }
    let state = daemon.state();
    let router = crate::app(state.clone());
    crate::startup::mark("router");
    let (stop_tx, _) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|v| *v).await;
    };
    let mut servers = Vec::new();
    if let Some(tcp) = tcp {
        let local = tcp.local_addr().map_err(|e| ServerError::Io {
            what: "cannot read the bound address".into(),
            source: e,
        })?;
        let rx = stop_tx.subscribe();
        match tls {
            Some(acc) => {
                let l = TlsListener::new(tcp, acc).map_err(|e| ServerError::Io {
                    what: "cannot start the TLS listener".into(),
                    source: e,
                })?;
                println!("kernos: listening on https://{local}");
                let svc = router.clone().into_make_service_with_connect_info::<Peer>();
                servers.push(tokio::spawn(async move {
                    axum::serve(l, svc)
                        .with_graceful_shutdown(stopped(rx))
                        .await
                }));
            }
            None => {
                println!("kernos: listening on http://{local}");
                let svc = router.clone().into_make_service_with_connect_info::<Peer>();
                let tcp = NoDelayListener(tcp);
                servers.push(tokio::spawn(async move {
                    axum::serve(tcp, svc)
                        .with_graceful_shutdown(stopped(rx))
                        .await
                }));
            }
        }
    }
    println!("kernos: socket {}", socket.display());
    {
        let rx = stop_tx.subscribe();
        let svc = router.into_make_service_with_connect_info::<Peer>();
        servers.push(tokio::spawn(async move {
            axum::serve(unix, svc)
                .with_graceful_shutdown(stopped(rx))
                .await
        }));
    }
    use std::io::Write;
    let _ = std::io::stdout().flush();
    crate::startup::mark("listeners");
    tracing::info!("{}", crate::startup::summary());

    // Every listener is bound and served: systemd may start what depends on us.
    let notify = notify.map(Arc::new);
    if let Some(n) = &notify {
        n.send(&format!(
            "READY=1\nMAINPID={}\nSTATUS=serving on {}",
            std::process::id(),
            socket.display()
        ));
        if let Some(every) = n.watchdog_interval() {
            tokio::spawn(watchdog(n.clone(), state.clone(), every));
        }
    }
    match hangups {
        Ok(h) => {
            tokio::spawn(reload_on_hangup(h, state.clone(), notify.clone()));
        }
        Err(e) => tracing::warn!("cannot catch SIGHUP, config reloads need a restart: {e}"),
    }

    signals.wait().await;
    if let Some(n) = &notify {
        n.send("STOPPING=1\nSTATUS=stopping");
    }
    tracing::info!("stopping: no new requests, finishing or cancelling running steps");
    stop_daemon(daemon, &stop_tx).await?;
    for s in servers {
        let _ = tokio::time::timeout(Duration::from_secs(1), s).await;
    }
    let _ = std::fs::remove_file(&socket);
    println!("kernos: stopped");
    let _ = std::io::stdout().flush();
    Ok(())
}

/// Pings systemd's watchdog every `every` (half of `WatchdogSec=`) from the async runtime
/// that answers requests, while the daemon is not stopping: a runtime that stalls, or a daemon
/// stuck in its shutdown, stops the pings and systemd restarts it.
async fn watchdog(n: Arc<crate::notify::Notify>, state: Arc<crate::State>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        if state.is_shutting_down() {
            return;
        }
        n.send("WATCHDOG=1");
    }
}

/// Reloads the config at each SIGHUP (see [`crate::reload`]), telling systemd it is
/// reloading and ready again (`RELOADING=1` … `READY=1`), on a blocking thread: loading reads
/// the file and journals the outcome.
async fn reload_on_hangup(
    mut hangups: tokio::signal::unix::Signal,
    state: Arc<crate::State>,
    notify: Option<Arc<crate::notify::Notify>>,
) {
    while hangups.recv().await.is_some() {
        if let Some(n) = &notify {
            n.send(&format!(
                "RELOADING=1\nMONOTONIC_USEC={}",
                crate::notify::monotonic_usec()
            ));
        }
        let st = state.clone();
        let report = tokio::task::spawn_blocking(move || st.reload("SIGHUP")).await;
        let status = match report {
            Ok(Some(r)) if r.accepted => format!("config reloaded ({})", r.sha256),
            Ok(Some(r)) => format!("config refused: {}", r.error.unwrap_or_default()),
            Ok(None) => "no config to reload".to_owned(),
            Err(e) => format!("reload failed: {e}"),
        };
        if let Some(n) = &notify {
            n.send(&format!("READY=1\nSTATUS={}", status.replace('\n', " ")));
        }
    }
}

/// Stops a daemon gracefully: refuses new work, ends event streams and MCP sessions, tells
/// the listeners behind `stop_listeners` to stop accepting, then (on a blocking thread) cancels
/// running steps cleanly and flushes the journal.
pub(crate) async fn stop_daemon(
    daemon: Daemon,
    stop_listeners: &tokio::sync::watch::Sender<bool>,
) -> Result<(), ServerError> {
    let state = daemon.state();
    state
        .shutting_down
        .store(true, std::sync::atomic::Ordering::Release);
    let _ = state.shutdown_tx.send(true);
    let _ = stop_listeners.send(true);
    state.mcp_http.stop();
    tokio::task::spawn_blocking(move || daemon.shutdown(Duration::from_secs(3)))
        .await
        .map_err(|e| ServerError::Config(format!("shutdown failed: {e}")))
}

/// SIGTERM and SIGINT, caught from the moment this is built: the daemon registers them
/// before it says it is ready, so a stop signal sent right after readiness is a clean
/// shutdown, never the default action (killed mid-way, exit by signal).
struct StopSignals {
    term: std::io::Result<tokio::signal::unix::Signal>,
    int: std::io::Result<tokio::signal::unix::Signal>,
}

impl StopSignals {
    fn register() -> Self {
        use tokio::signal::unix::{SignalKind, signal};
        StopSignals {
            term: signal(SignalKind::terminate()),
            int: signal(SignalKind::interrupt()),
        }
    }

    async fn wait(self) {
        match (self.term, self.int) {
            (Ok(mut t), Ok(mut i)) => {
                tokio::select! {
                    _ = t.recv() => {},
                    _ = i.recv() => {},
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
}

/// Whether a daemon answers on the socket of `data_dir`.
pub fn daemon_running(data_dir: &Path) -> bool {
    std::os::unix::net::UnixStream::connect(crate::socket_path(data_dir)).is_ok()
}
