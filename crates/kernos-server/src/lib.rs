//! The Kernos daemon: the same engine as the CLI behind an HTTP/SSE API for teams,
//! dashboards and other agents.
//!
//! ```text
//! HTTP ─► auth (API key hash / Unix peer) ─► role check ─► rate limit ─► handler
//!   POST /v1/actions ─► journal action.submitted ─► per-org queue ─► run slot (round robin,
//!        per-org cap) ─► worker: the engine's request path; a step waiting for
//!        POST /v1/approvals/{id} gives its slot back; quota reserved before each step
//!   every append ─► group commit ─► commit hook ─► hub ─► SSE subscribers, read models
//! ```
//!
//! [`Daemon::start`] builds everything from a data directory and a [`ServerConfig`];
//! [`app`] is the router (tested with `tower::ServiceExt::oneshot`), built from the route
//! table [`ROUTES`] that also makes the OpenAPI document; [`serve`] runs it on TCP
//! (optionally TLS) and on the Unix socket until SIGTERM/SIGINT, then shuts down gracefully.
//!
//! Modules: [`routes`] (the table and one handler module per resource) → [`wire`] (request
//! and response types), `authn`/`middleware`/`extract` (around handlers), `idempotency`,
//! `quota`; `sched` shares the run slots between organisations; `worker` runs queued actions
//! and keeps the read models (`limits`, `daily`) current; `verify` checks the journal's chain;
//! `openapi` reads the table.

mod agents;
mod approve;
pub mod auth;
mod authn;
pub mod config;
mod daily;
pub mod dashboard;
mod error;
mod extract;
mod fleet;
mod hub;
mod idempotency;
pub mod leases;
pub mod limits;
mod listen;
mod mcp;
mod metrics;
mod middleware;
mod monitors;
mod notify;
mod openapi;
pub mod os;
mod quota;
pub mod reload;
pub mod routes;
mod sched;
mod schedules;
mod scope;
mod sessions;
mod sse;
pub mod startup;
mod submit;
mod tlog;
mod verify;
pub mod wire;
mod worker;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use kernos_core::{ActionId, Actor, ApprovalId, CancelToken, NewEvent, ProcessRunner};
use kernos_engine::{Engine, EventStore};
use kernos_journal::{Journal, JournalOptions, Query};
use kernos_planner::llm::Cascade;
use kernos_tools::Registry;

pub use agents::{AGENT_SNAPSHOT, AGENT_SPAWNED, AGENT_STATE};
pub use auth::{Access, KeyInfo, KeyTable, NewKey, Perm, Principal, Role, generate_key, hash_key};
pub use config::ServerConfig;
pub use error::{ApiError, PROBLEM_JSON, Problem};
pub use fleet::{FleetConfig, leave as fleet_leave};
pub use hub::{DaemonStore, Hub, Published};
pub use listen::{Peer, SOCKET_FILE, ServeOptions, daemon_running, serve};
pub use mcp::serve_stdio;
pub use monitors::{MONITOR_CLEARED, MONITOR_FAILED, MONITOR_FIRED, MonitorStatus};
pub use notify::Notify;
pub use openapi::openapi;
pub use reload::{CONFIG_REJECTED, CONFIG_RELOADED, Loader, NewConfig, ReloadReport};
pub use routes::{ROUTES, app};
pub use schedules::model::{SCHEDULE_CREATED, SCHEDULE_REMOVED, SCHEDULE_TRANSITION};
pub use sessions::{SESSION_CREATED, SESSION_ENDED};
pub use tlog::LogOptions;
pub use wire::{ActionStatus, SubmitRequest};
pub use worker::{ACTION_FINISHED, ACTION_INTERRUPTED, ACTION_PREVIEWED};

/// Kind of the event journaled when the daemon starts.
pub const DAEMON_STARTED: &str = "daemon.started";
/// Kind of the event journaled when the daemon stops cleanly.
pub const DAEMON_STOPPED: &str = "daemon.stopped";

/// Errors starting the daemon.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The configuration is not usable.
    #[error("{0}")]
    Config(String),
    /// The journal could not be opened or read.
    #[error(transparent)]
    Journal(#[from] kernos_journal::JournalError),
    /// A socket or file problem.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Cause.
        source: std::io::Error,
    },
    /// TLS setup failed.
    #[error("TLS: {0}")]
    Tls(String),
}

/// What the daemon is built from.
pub struct DaemonOptions {
    /// Data directory (journal, blobs, socket).
    pub data_dir: PathBuf,
    /// `[server]` settings.
    pub config: ServerConfig,
    /// `[policy]` settings, the same the CLI uses.
    pub policy: kernos_policy::Config,
    /// The process runner (the sandbox).
    pub runner: Arc<dyn ProcessRunner>,
    /// Home directory for requests (`~`), and default working directory.
    pub home: PathBuf,
    /// The config as text, to journal `audit.config.changed` when it differs from last start.
    pub config_text: Option<String>,
    /// How text requests are planned: the same cascade as the CLI (offline planner, then the
    /// configured language models and the plan cache). `Cascade::offline()` for none.
    pub planner: Cascade,
    /// How much the trash may keep (`[trash]`, the same the CLI uses).
    pub trash_budget: kernos_tools::trash::Budget,
    /// The tool catalog: the built-in tools and the trusted tools of configured external MCP
    /// servers (the CLI builds it from the config, so both front ends see the same one).
    pub registry: Arc<Registry>,
    /// Each organisation's own tools on top of `registry` (its installed generated skills),
    /// looked up for the asking organisation at each request; `None`: there are none.
    pub org_tools: Option<Arc<dyn kernos_engine::OrgTools>>,
    /// The journal as a transparency log: `[journal]` (checkpoints, the witness to push to)
    /// and `[witness]` (the logs this daemon witnesses).
    pub log: LogOptions,
    /// `[fleet]`: the broker, and whether this daemon is a node, a controller or both.
    pub fleet: Option<FleetConfig>,
    /// Where a new config comes from on SIGHUP (`kernos config edit` sends one), and the whole
    /// config this one was loaded with (to say what a reload changed); `None`: no live reload.
    pub live: Option<reload::LiveSource>,
}

/// A step waiting for POST /v1/approvals/{id}.
#[derive(Debug)]
pub(crate) struct Pending {
    pub(crate) org: String,
    pub(crate) view: wire::ApprovalView,
    pub(crate) risk: kernos_core::Risk,
    pub(crate) answer: std::sync::mpsc::SyncSender<worker::Answer>,
}

/// The state as handlers and middleware hold it.
pub(crate) type St = Arc<State>;

/// Shared state of a running daemon.
pub struct State {
    /// The `[server]` settings in force: a snapshot swapped whole by a reload (see
    /// [`reload`]); read it with [`State::config`].
    pub(crate) config: RwLock<Arc<ServerConfig>>,
    /// What live reloads need: the loader and the last accepted config.
    pub(crate) live: Mutex<Option<reload::LiveSource>>,
    pub(crate) engine: Engine,
    pub(crate) store: Arc<DaemonStore>,
    pub(crate) hub: Arc<Hub>,
    pub(crate) keys: RwLock<KeyTable>,
    /// Dashboard sign-ins (hashes only), from the journal.
    pub(crate) sessions: RwLock<sessions::SessionTable>,
    /// Capability leases, with their usage.
    pub(crate) leases: RwLock<leases::LeaseTable>,
    pub(crate) usage: Mutex<limits::Usage>,
    /// Use per organisation and day (GET /v1/state/usage/daily), from the journal.
    pub(crate) daily: Mutex<daily::Daily>,
    /// The journal as a transparency log: the live tree, checkpoints, the witness side.
    pub(crate) tlog: tlog::Tlog,
    /// The journal's chain check (GET /v1/state/journal/verify): one walk at a time, cached.
    pub(crate) verifier: verify::Verifier,
    pub(crate) approvals: Mutex<HashMap<ApprovalId, Pending>>,
    /// Run slots and the per-organisation queues.
    pub(crate) sched: sched::Scheduler,
    /// Agents: their table (from the journal) and the threads working for them.
    pub(crate) agents: agents::Agents,
    /// Schedules: their table (from the journal), the timer and the thread that runs them.
    pub(crate) schedules: schedules::Schedules,
    /// Monitors: the runner, their states, their remediations in flight.
    pub(crate) monitors: monitors::Monitors,
    pub(crate) in_flight: AtomicUsize,
    pub(crate) streams: AtomicUsize,
    /// Actions taken off the queue and not ended: holding a slot, or parked on an approval.
    pub(crate) running: Mutex<HashMap<ActionId, (String, CancelToken)>>,
    /// Queued actions asked to stop before they started (removed when dequeued).
    pub(crate) cancelled: Mutex<std::collections::HashSet<ActionId>>,
    pub(crate) idem: Mutex<limits::IdemCache>,
    pub(crate) limiter: Mutex<limits::RateLimiter>,
    pub(crate) metrics: metrics::Metrics,
    pub(crate) shutting_down: AtomicBool,
    pub(crate) shutdown_tx: tokio::sync::watch::Sender<bool>,
    /// Bumped each time a key is revoked: open event streams check whether it was theirs.
    pub(crate) revocations: tokio::sync::watch::Sender<u64>,
    pub(crate) uid: u32,
    pub(crate) home: PathBuf,
    pub(crate) data_dir: PathBuf,
    pub(crate) local_actor: Actor,
    pub(crate) started: Instant,
    /// The OpenAPI document, serialized once on first request: it depends only on the code,
    /// and building it is most of the daemon's start-up CPU (which counts under emulation:
    /// Kernos OS's boot to API-ready).
    pub(crate) openapi: std::sync::OnceLock<Vec<u8>>,
    /// What MCP clients are offered (built on the first MCP request: the catalog does not
    /// change while it runs).
    pub(crate) mcp: mcp::LazyOffered,
    /// The streamable HTTP transport behind `/mcp`.
    pub(crate) mcp_http: mcp::Http,
    /// The fleet: node agent, controller (`[fleet]`).
    pub(crate) fleet: fleet::Fleet,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("data_dir", &self.data_dir)
            .finish_non_exhaustive()
    }
}

impl State {
    /// The `[server]` settings in force now. A reload swaps the snapshot; a caller keeps the
    /// one it read for the whole of what it is doing, so one request never sees two configs.
    pub fn config(&self) -> Arc<ServerConfig> {
        self.config
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Requests being answered right now (what the concurrency limit counts).
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    /// Appends an event from async code (waits for durability without blocking a thread).
    pub(crate) async fn append(
        &self,
        ev: NewEvent,
    ) -> Result<kernos_core::Event, kernos_journal::JournalError> {
        self.store.append_async(ev).await
    }

    /// Runs a blocking journal read off the async threads.
    pub(crate) async fn read<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&Journal) -> Result<T, kernos_journal::JournalError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let st = self.clone();
        tokio::task::spawn_blocking(move || st.store.with_reader(f))
            .await
            .map_err(|e| ApiError::internal(format!("a read task failed: {e}; retry")))?
            .map_err(ApiError::from)
    }

    /// The newest journal sequence number published to subscribers.
    pub fn hub_head(&self) -> u64 {
        self.hub.head()
    }

    /// Whether a shutdown has begun.
    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Acquire)
    }
}

/// A running daemon: state, workers, the external-append poller.
pub struct Daemon {
    state: Arc<State>,
    poller: Option<std::thread::JoinHandle<()>>,
    /// The transparency log's threads (leaf feeder, checkpoints).
    log_threads: Vec<std::thread::JoinHandle<()>>,
    /// Actions found interrupted by a crash at start: `(action, org)`.
    pub recovered: Vec<(ActionId, String)>,
}

impl std::fmt::Debug for Daemon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Daemon")
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl Daemon {
    /// Opens the journal, rebuilds the read models, reports actions a crash interrupted,
    /// starts the workers.
    pub fn start(opts: DaemonOptions) -> Result<Daemon, ServerError> {
        opts.config.validate().map_err(ServerError::Config)?;
        if let Some(f) = &opts.fleet {
            f.validate().map_err(ServerError::Config)?;
        }
        scope::check_roots(&opts.config.scopes, &opts.data_dir).map_err(ServerError::Config)?;
        refuse_shared_data_dir(&opts.data_dir)?;
        let cfg = opts.config.clone();
        let jopts = JournalOptions {
            durability: cfg.journal_durability(),
            ..JournalOptions::default()
        };
        startup::mark("runtime, TLS, sockets");
        let boot = Journal::open_with(&opts.data_dir, jopts.clone())?;
        let head = boot.head()?.0;
        startup::mark("journal");

        // Read models from the journal: keys, usage.
        let mut keys = KeyTable::default();
        boot.for_each(&Query::kind_prefix("audit.key."), |e| {
            keys.apply(&e);
            true
        })?;
        let mut session_table = sessions::SessionTable::default();
        boot.for_each(&Query::kind_prefix("audit.session."), |e| {
            session_table.apply(&e);
            true
        })?;
        let agents = agents::Agents::load(&boot)?;
        let schedules = schedules::Schedules::load(&boot)?;
        let monitors = monitors::Monitors::load(&boot)?;
        let lease_table = leases::LeaseTable::load(&boot)?;
        let metrics = metrics::Metrics::default();
        let mut usage = limits::Usage::default();
        boot.for_each(&Query::kind(worker::ACTION_FINISHED), |e| {
            worker::account(&mut usage, &metrics, &e);
            true
        })?;
        let daily = daily::Daily::load(&boot, head, limits::now_ms())?;
        startup::mark("read models");
        let tlog = tlog::Tlog::open(&opts.data_dir, &opts.log, &boot)?;
        startup::mark("transparency log");

        let hub = Arc::new(Hub::new(
            head,
            Journal::open_read_only(&opts.data_dir)?,
            cfg.sse_buffer,
        ));
        let store = Arc::new(DaemonStore::open(&opts.data_dir, jopts, hub.clone())?);
        let blobs = kernos_journal::BlobStore::open(opts.data_dir.join("blobs"), false)?;
        let mut engine = Engine::new(
            opts.registry.clone(),
            store.clone() as Arc<dyn EventStore>,
            blobs,
            opts.runner.clone(),
            opts.policy.clone(),
            opts.data_dir.clone(),
        );
        if let Some(t) = opts.org_tools.clone() {
            engine = engine.with_org_tools(t);
        }
        let engine = engine
            .with_planner(opts.planner)
            .with_step_units(cfg.step_overhead_units)
            .with_trash_budget(opts.trash_budget);
        startup::mark("engine");
        let (shutdown_tx, _) = tokio::sync::watch::channel(false);
        let (revocations, _) = tokio::sync::watch::channel(0u64);
        // SAFETY: geteuid has no preconditions and cannot fail.
        let uid = unsafe { libc::geteuid() };
        let state = Arc::new(State {
            engine,
            store: store.clone(),
            hub: hub.clone(),
            keys: RwLock::new(keys),
            sessions: RwLock::new(session_table),
            leases: RwLock::new(lease_table),
            usage: Mutex::new(usage),
            daily: Mutex::new(daily),
            tlog,
            verifier: verify::Verifier::new(opts.data_dir.clone()),
            approvals: Mutex::new(HashMap::new()),
            sched: sched::Scheduler::new(
                cfg.workers,
                cfg.running_cap(),
                cfg.queue,
                cfg.max_waiting,
                cfg.max_waiting_per_org,
            ),
            agents,
            schedules,
            monitors,
            in_flight: AtomicUsize::new(0),
            streams: AtomicUsize::new(0),
            running: Mutex::new(HashMap::new()),
            cancelled: Mutex::new(std::collections::HashSet::new()),
            idem: Mutex::new(limits::IdemCache::new(
                cfg.idempotency_keys,
                Duration::from_secs(cfg.idempotency_ttl_s),
            )),
            limiter: Mutex::new(limits::RateLimiter::new(cfg.rate_per_sec, cfg.rate_burst)),
            metrics,
            shutting_down: AtomicBool::new(false),
            shutdown_tx,
            revocations,
            uid,
            home: opts.home.clone(),
            data_dir: opts.data_dir.clone(),
            local_actor: Actor::current_user(),
            started: Instant::now(),
            config: RwLock::new(Arc::new(cfg.clone())),
            live: Mutex::new(opts.live),
            openapi: std::sync::OnceLock::new(),
            mcp: mcp::LazyOffered::new(&opts.registry, &cfg.mcp),
            mcp_http: mcp::Http::new(),
            fleet: fleet::Fleet::new(opts.fleet.clone()).map_err(|e| ServerError::Io {
                what: "cannot start the fleet's runtime".into(),
                source: e,
            })?,
        });
        startup::mark("state");

        // Keep the read models current from every published event. A weak reference: the
        // hub lives inside the state.
        let weak = Arc::downgrade(&state);
        hub.set_listener(Box::new(move |p| {
            if let Some(st) = weak.upgrade() {
                worker::on_published(&st, p);
            }
        }));

        let recovered = worker::recover(&state, &boot)?;
        idempotency::restore_idempotency(&state, &boot)?;
        drop(boot);
        worker::journal_start(&state, opts.config_text.as_deref())?;
        // Kernos OS only (under kernos-init): the boot record and the provisioned owner key.
        os::on_start(&state);
        startup::mark("recovery and start events");

        for _ in 0..cfg.workers {
            state.sched.thread_started();
            if let Err(e) = worker::spawn(&state) {
                state.sched.spawn_failed();
                state.sched.close();
                return Err(ServerError::Io {
                    what: "cannot start a worker thread".into(),
                    source: e,
                });
            }
        }

        // After the workers: an agent's first act may be to queue its pending action.
        agents::resume_all(&state);
        schedules::start(&state).map_err(|e| ServerError::Io {
            what: "cannot start the schedule thread".into(),
            source: e,
        })?;
        monitors::start(&state).map_err(|e| ServerError::Io {
            what: "cannot start the monitors".into(),
            source: e,
        })?;
        fleet::start(&state);

        let log_threads = tlog::start(&state).map_err(|e| ServerError::Io {
            what: "cannot start the transparency log's threads".into(),
            source: e,
        })?;

        let poll_state = Arc::downgrade(&state);
        let poller = std::thread::Builder::new()
            .name("kernos-journal-poll".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(Duration::from_millis(100));
                    let Some(st) = poll_state.upgrade() else {
                        return;
                    };
                    if st.is_shutting_down() {
                        return;
                    }
                    st.hub.poll_external();
                }
            })
            .map_err(|e| ServerError::Io {
                what: "cannot start the journal poller".into(),
                source: e,
            })?;

        startup::mark("threads");
        Ok(Daemon {
            state,
            poller: Some(poller),
            log_threads,
            recovered,
        })
    }

    /// The shared state (for [`app`]).
    pub fn state(&self) -> Arc<State> {
        self.state.clone()
    }

    /// Stops: refuses new work, marks queued actions aborted, cancels running steps (they
    /// stop cleanly and are journaled as cancelled), declines waiting approvals, waits for the
    /// workers up to `grace`, journals `daemon.stopped`, flushes the journal.
    pub fn shutdown(mut self, grace: Duration) {
        let st = self.state.clone();
        st.shutting_down.store(true, Ordering::Release);
        let _ = st.shutdown_tx.send(true);
        monitors::stop(&st);
        st.fleet.stop();
        let queued = st.sched.close();
        worker::abort_queued(&st, &queued);
        if let Ok(r) = st.running.lock() {
            for (_, c) in r.values() {
                c.cancel();
            }
        }
        if let Ok(mut a) = st.approvals.lock() {
            for (_, p) in a.drain() {
                let _ = p.answer.try_send(worker::Answer {
                    approved: false,
                    reason: "the daemon is shutting down".into(),
                });
            }
        }
        // Idle workers end at once; busy ones when their action has ended (parked ones take a
        // slot again to journal the decline).
        if !st.sched.wait_stopped(Instant::now() + grace) {
            tracing::warn!("some actions did not stop within {grace:?}");
        }
        let _ = st
            .store
            .append(
                NewEvent::new(DAEMON_STOPPED, Actor::system()).payload(serde_json::json!({
                    "pid": std::process::id(),
                    "uptime_ms": st.started.elapsed().as_millis() as u64,
                })),
            );
        if let Some(p) = self.poller.take() {
            let _ = p.join();
        }
        st.tlog.live.stop();
        for t in self.log_threads.drain(..) {
            let _ = t.join();
        }
        st.store.shutdown();
        st.hub.close();
    }
}

/// The daemon serves many users and organisations from one data directory: if other local
/// users can read it, they can read every journal event, output and deleted file. Refuses to
/// start then, with the fix; a directory that does not exist yet is created private.
pub(crate) fn refuse_shared_data_dir(dir: &Path) -> Result<(), ServerError> {
    use std::os::unix::fs::PermissionsExt;
    let Ok(meta) = std::fs::metadata(dir) else {
        return Ok(());
    };
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(ServerError::Config(format!(
            "the data directory {} can be read by other users (mode {mode:o}): they could read the journal, command output and the trash. Make it private with `chmod 700 {}` and start again",
            dir.display(),
            dir.display()
        )));
    }
    Ok(())
}

/// Sets up the daemon's logs; `KERNOS_LOG` picks the level (`info` by default, e.g.
/// `KERNOS_LOG=debug` for every request). Under systemd, whose journal took our stderr
/// ([`stderr_is_journal`]), they go to journald's native protocol: each field (`sha256`,
/// `changed`, a request's `path`) becomes a journal field `journalctl -o verbose` shows and
/// `journalctl KERNOS_…=` filters on, with the level as its priority. Anywhere else, and when
/// the journal's socket cannot be opened, plain lines on stderr.
pub fn init_logging() {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = tracing_subscriber::EnvFilter::try_from_env("KERNOS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    if stderr_is_journal() {
        if let Ok(journald) = tracing_journald::layer() {
            let _ = tracing_subscriber::registry()
                .with(filter)
                .with(
                    journald
                        .with_syslog_identifier("kernos".into())
                        .with_field_prefix(Some("KERNOS".into())),
                )
                .try_init();
            return;
        }
    }
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
}

/// Whether stderr is the journal's stream: systemd sets `$JOURNAL_STREAM` to the
/// `device:inode` of the stream it connected (systemd.exec(5)); comparing it with stderr's
/// tells a service from a child that merely inherited the variable with stderr redirected.
pub fn stderr_is_journal() -> bool {
    std::env::var_os("JOURNAL_STREAM").is_some_and(|v| is_stream(&v.to_string_lossy(), 2))
}

/// Whether `fd` is the stream a `$JOURNAL_STREAM` value (`device:inode`) names.
fn is_stream(journal_stream: &str, fd: i32) -> bool {
    let Some((dev, ino)) = journal_stream.split_once(':') else {
        return false;
    };
    // SAFETY: fstat on an fd into a zeroed stat buffer we own; a bad fd is an error return.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        return false;
    }
    dev.parse::<u64>().ok() == Some(st.st_dev) && ino.parse::<u64>().ok() == Some(st.st_ino)
}

/// The socket path of the daemon for a data directory.
pub fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join(SOCKET_FILE)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_journal_stream_is_recognised_by_device_and_inode() {
        use std::os::fd::AsRawFd;
        use std::os::unix::fs::MetadataExt;
        let f = tempfile::tempfile().unwrap();
        let m = f.metadata().unwrap();
        let fd = f.as_raw_fd();
        assert!(super::is_stream(&format!("{}:{}", m.dev(), m.ino()), fd));
        assert!(!super::is_stream(
            &format!("{}:{}", m.dev(), m.ino() + 1),
            fd
        ));
        assert!(!super::is_stream("", fd));
        assert!(!super::is_stream("1:2", -1));
    }
}
