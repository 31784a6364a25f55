//! The daemon's router, driven in process with `tower::ServiceExt::oneshot`: a real journal in a
//! temporary directory, real workers running the real engine, real read models.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod agents;
mod daily;
mod dashboard;
mod edges;
mod fairness;
mod flows;
mod isolation;
mod journal;
mod leases;
mod llm;
mod matrix;
mod mcp;
mod monitors;
mod os;
mod schedules;
mod sessions;
mod sse;
mod tenancy;
mod tlog;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use kernos_core::{CancelToken, ExecError, ExecOutcome, ExecRequest, ProcessRunner};
use kernos_server::{Daemon, DaemonOptions, Peer, Role, ServerConfig, State};
use serde_json::{Value, json};
use tower::ServiceExt;

/// Tools used here run in process; anything that would spawn a child is refused, so a test can
/// never run a real command on the host. One exception runs nothing either: a command line
/// naming [`HOLD`] stands for a long step, held (holding its run slot) until the test lets it
/// go or the action is cancelled.
#[derive(Debug, Default)]
struct NoChildren {
    /// Held steps so far.
    entered: AtomicUsize,
    /// Whether held steps may end.
    open: AtomicBool,
}

/// The word that makes a `shell.run` step a held one (see [`NoChildren`]).
pub(crate) const HOLD: &str = "kernos-test-hold";

impl ProcessRunner for NoChildren {
    fn run(&self, req: &ExecRequest, cancel: &CancelToken) -> Result<ExecOutcome, ExecError> {
        if !req.argv.iter().any(|a| a.contains(HOLD)) {
            return Err(ExecError::Unavailable(
                "tests run no child processes".into(),
            ));
        }
        self.entered.fetch_add(1, Ordering::AcqRel);
        let until = Instant::now() + Duration::from_secs(60);
        while !self.open.load(Ordering::Acquire) && Instant::now() < until {
            if cancel.is_cancelled() {
                return Ok(ExecOutcome {
                    stopped: Some(kernos_core::StopReason::Cancelled),
                    ..ExecOutcome::default()
                });
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(ExecOutcome {
            code: Some(0),
            ..ExecOutcome::default()
        })
    }
}

/// How every test daemon is started: a real journal under `data`, tools that run no child
/// processes.
fn options(
    data: &std::path::Path,
    home: &std::path::Path,
    mut config: ServerConfig,
    planner: kernos_planner::llm::Cascade,
    runner: Arc<NoChildren>,
) -> DaemonOptions {
    // The organisations most tests use work in `home`, as if the operator had granted them
    // that tree; organisations without an entry reach only their own workspace.
    for org in ["acme", "globex"] {
        config
            .scopes
            .entry(org.into())
            .or_insert_with(|| kernos_core::FsScope {
                read: vec![],
                write: vec![home.to_path_buf()],
            });
    }
    DaemonOptions {
        data_dir: data.to_path_buf(),
        config,
        // `home/sys` stands in for a system path: changes there are high risk.
        policy: kernos_policy::Config {
            system: vec![home.join("sys")],
            ..kernos_policy::Config::default()
        },
        runner,
        home: home.to_path_buf(),
        config_text: None,
        planner,
        trash_budget: kernos_tools::trash::Budget::default(),
        registry: Arc::new(kernos_tools::Registry::builtin()),
        org_tools: None,
        log: kernos_server::LogOptions::default(),
        fleet: None,
        live: None,
    }
}

/// Who calls.
#[derive(Clone, Copy)]
pub(crate) enum Auth<'a> {
    /// Nobody.
    None,
    /// An API key.
    Key(&'a str),
    /// The daemon's own user on the Unix socket.
    Local,
}

/// An answer.
pub(crate) struct Resp {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Vec<u8>,
}

impl Resp {
    /// Fails, showing the body (a problem document says why), unless the status is `want`.
    #[track_caller]
    pub(crate) fn expect(&self, want: StatusCode) -> &Self {
        assert_eq!(self.status, want, "{}", String::from_utf8_lossy(&self.body));
        self
    }

    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}): {} {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

/// A daemon over a fresh data directory.
pub(crate) struct T {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) home: PathBuf,
    daemon: Option<Daemon>,
    runner: Arc<NoChildren>,
    pub(crate) st: Arc<State>,
    pub(crate) app: Router,
}

/// Org `blue`'s workspace with a file holding `secret`, written through the API as blue's
/// owner `key`; the attacks of another organisation aim at it.
pub(crate) async fn blue_secret(t: &T, key: &str, secret: &str) -> PathBuf {
    let r = t
        .call(
            "POST",
            "/v1/actions",
            Auth::Key(key),
            Some(json!({"auto_approve": true, "plan": {"steps": [
                {"tool": "fs", "action": "write", "args": {"path": "secret.txt", "content": secret}}
            ]}})),
        )
        .await;
    t.finished(Auth::Key(key), r.json()["action"].as_str().unwrap())
        .await;
    let file = t.data_dir().join("orgs/blue/work/secret.txt");
    assert!(std::fs::read_to_string(&file).unwrap().contains(secret));
    file
}

/// What another organisation tries, by any way in: blue's file and workspace, the daemon's
/// data, the host's credential store.
pub(crate) fn cross_org_attacks(data: &Path, blue_file: &Path) -> Vec<(&'static str, Value)> {
    vec![
        ("fs.read", json!({"path": blue_file})),
        (
            "fs.write",
            json!({"path": data.join("orgs/blue/work/pwned.txt"), "content": "x"}),
        ),
        ("fs.list", json!({"path": data})),
        ("fs.read", json!({"path": "/etc/shadow"})),
        ("fs.delete", json!({"path": blue_file})),
    ]
}

impl T {
    pub(crate) fn start() -> T {
        Self::with(ServerConfig::default())
    }

    pub(crate) fn with(config: ServerConfig) -> T {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        std::fs::create_dir_all(home.join("work")).unwrap();
        std::fs::create_dir_all(home.join("sys")).unwrap();
        Self::open(dir, home, config)
    }

    pub(crate) fn open(dir: tempfile::TempDir, home: PathBuf, config: ServerConfig) -> T {
        Self::open_with(dir, home, config, kernos_planner::llm::Cascade::offline())
    }

    /// With this planner cascade (a model tier, a plan cache).
    pub(crate) fn open_with(
        dir: tempfile::TempDir,
        home: PathBuf,
        config: ServerConfig,
        planner: kernos_planner::llm::Cascade,
    ) -> T {
        let runner = Arc::new(NoChildren::default());
        let opts = options(
            &dir.path().join("data"),
            &home,
            config,
            planner,
            runner.clone(),
        );
        Self::from_options(dir, home, runner, opts)
    }

    /// Starts a daemon with `opts` (built by [`options`] over `dir` and `home`).
    fn from_options(
        dir: tempfile::TempDir,
        home: PathBuf,
        runner: Arc<NoChildren>,
        opts: DaemonOptions,
    ) -> T {
        let daemon = Daemon::start(opts).unwrap();
        let st = daemon.state();
        let app = kernos_server::app(st.clone());
        T {
            dir,
            home,
            daemon: Some(daemon),
            runner,
            st,
            app,
        }
    }

    /// Stops the daemon and starts a new one on the same data directory (default config,
    /// offline planner).
    pub(crate) fn restart(&mut self) {
        self.restart_with(kernos_planner::llm::Cascade::offline());
    }

    /// Stops the daemon and starts a new one on the same data directory with this planner.
    pub(crate) fn restart_with(&mut self, planner: kernos_planner::llm::Cascade) {
        self.restart_configured(ServerConfig::default(), planner);
    }

    /// Stops the daemon and starts a new one on the same data directory with this config and
    /// planner.
    pub(crate) fn restart_configured(
        &mut self,
        config: ServerConfig,
        planner: kernos_planner::llm::Cascade,
    ) {
        self.stop();
        let daemon = Daemon::start(options(
            &self.data_dir(),
            &self.home,
            config,
            planner,
            self.runner.clone(),
        ))
        .unwrap();
        self.st = daemon.state();
        self.app = kernos_server::app(self.st.clone());
        self.daemon = Some(daemon);
    }

    /// A daemon with these transparency-log options (`[journal]`, `[witness]`).
    pub(crate) fn logged(log: kernos_server::LogOptions) -> T {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        std::fs::create_dir_all(home.join("work")).unwrap();
        let runner = Arc::new(NoChildren::default());
        let mut opts = options(
            &dir.path().join("data"),
            &home,
            ServerConfig::default(),
            kernos_planner::llm::Cascade::offline(),
            runner.clone(),
        );
        opts.log = log;
        Self::from_options(dir, home, runner, opts)
    }

    /// Stops the daemon and starts a new one on the same data directory with these
    /// transparency-log options.
    pub(crate) fn restart_logged(&mut self, log: kernos_server::LogOptions) {
        self.stop();
        let mut opts = options(
            &self.data_dir(),
            &self.home,
            ServerConfig::default(),
            kernos_planner::llm::Cascade::offline(),
            self.runner.clone(),
        );
        opts.log = log;
        let daemon = Daemon::start(opts).unwrap();
        self.st = daemon.state();
        self.app = kernos_server::app(self.st.clone());
        self.daemon = Some(daemon);
    }

    pub(crate) fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Stops the daemon (as SIGTERM would).
    pub(crate) fn stop(&mut self) {
        if let Some(d) = self.daemon.take() {
            d.shutdown(Duration::from_secs(3));
        }
    }

    pub(crate) async fn call(
        &self,
        method: &str,
        path: &str,
        auth: Auth<'_>,
        body: Option<Value>,
    ) -> Resp {
        self.call_with(method, path, auth, body, &[]).await
    }

    pub(crate) async fn call_with(
        &self,
        method: &str,
        path: &str,
        auth: Auth<'_>,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Resp {
        let mut b = Request::builder().method(method).uri(path);
        match auth {
            Auth::Key(k) => b = b.header("authorization", format!("Bearer {k}")),
            Auth::Local => {}
            Auth::None => {}
        }
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let mut req = match body {
            Some(v) => b
                .header("content-type", "application/json")
                .body(Body::from(v.to_string()))
                .unwrap(),
            None => b.body(Body::empty()).unwrap(),
        };
        let peer = match auth {
            Auth::Local => Peer::Unix {
                // SAFETY: geteuid cannot fail.
                uid: unsafe { libc::geteuid() },
                pid: None,
            },
            _ => Peer::Tcp {
                addr: "127.0.0.1:40000".parse().unwrap(),
                tls: false,
            },
        };
        req.extensions_mut().insert(ConnectInfo(peer));
        let resp = self.app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec();
        Resp {
            status,
            headers,
            body,
        }
    }

    /// Answers a pending approval with `key`.
    pub(crate) async fn answer(&self, key: &str, approval: &str, approve: bool) -> Resp {
        self.call(
            "POST",
            &format!("/v1/approvals/{approval}"),
            Auth::Key(key),
            Some(json!({"approve": approve})),
        )
        .await
    }

    /// A new key (made by the host operator over the socket).
    pub(crate) async fn key(&self, org: &str, role: Role) -> String {
        let r = self
            .call(
                "POST",
                "/v1/keys",
                Auth::Local,
                Some(json!({"org": org, "role": role, "label": "test"})),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::CREATED,
            "{}",
            String::from_utf8_lossy(&r.body)
        );
        r.json()["key"].as_str().unwrap().to_owned()
    }

    /// Submits and returns the action id.
    pub(crate) async fn submit(&self, auth: Auth<'_>, body: Value) -> String {
        let r = self.call("POST", "/v1/actions", auth, Some(body)).await;
        assert_eq!(
            r.status,
            StatusCode::ACCEPTED,
            "{}",
            String::from_utf8_lossy(&r.body)
        );
        r.json()["action"].as_str().unwrap().to_owned()
    }

    /// GETs `path` until `ok` holds for its JSON answer (30 s at most); returns that answer.
    pub(crate) async fn until(
        &self,
        path: &str,
        auth: Auth<'_>,
        what: &str,
        ok: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let r = self.call("GET", path, auth, None).await;
            assert_eq!(
                r.status,
                StatusCode::OK,
                "{path}: {}",
                String::from_utf8_lossy(&r.body)
            );
            let v = r.json();
            if ok(&v) {
                return v;
            }
            assert!(Instant::now() < deadline, "{what} never happened: {v}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until the action has ended; returns its detail.
    pub(crate) async fn finished(&self, auth: Auth<'_>, action: &str) -> Value {
        let path = format!("/v1/state/actions/{action}");
        self.until(&path, auth, &format!("the end of action {action}"), |v| {
            !matches!(v["status"].as_str(), Some("queued" | "running"))
        })
        .await
    }

    /// Waits until the action has a step waiting for approval; returns it.
    pub(crate) async fn pending(&self, auth: Auth<'_>, action: &str) -> Value {
        let what = format!("an approval for {action}");
        let all = self
            .until("/v1/state/approvals", auth, &what, |v| {
                v.as_array().unwrap().iter().any(|a| a["action"] == action)
            })
            .await;
        let found = all
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["action"] == action);
        found.unwrap().clone()
    }

    /// With one worker: a delete of `file` waiting for approval (holding no slot), a held
    /// step holding the only slot, and a read queued behind it. Returns the waiting and the
    /// queued action ids.
    pub(crate) async fn waiting_and_queued(&self, op: &str, file: &str) -> (String, String) {
        let waiting = self
            .submit(
                Auth::Key(op),
                json!({"request": format!("delete {file}"), "cwd": self.cwd()}),
            )
            .await;
        self.pending(Auth::Key(op), &waiting).await;
        self.hold(Auth::Key(op)).await;
        let queued = self
            .submit(
                Auth::Key(op),
                json!({"request": "list files in .", "cwd": self.cwd()}),
            )
            .await;
        (waiting, queued)
    }

    /// Submits a plan whose one step is held (see [`NoChildren`]) and waits until it holds
    /// its run slot; returns the action id.
    pub(crate) async fn hold(&self, auth: Auth<'_>) -> String {
        let before = self.runner.entered.load(Ordering::Acquire);
        let a = self.submit(auth, Self::held_plan()).await;
        let until = Instant::now() + Duration::from_secs(30);
        while self.runner.entered.load(Ordering::Acquire) == before {
            assert!(Instant::now() < until, "the held step never started");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        a
    }

    /// A plan whose one step is held until [`T::let_go`] (or cancellation).
    pub(crate) fn held_plan() -> Value {
        json!({"plan": {"steps": [{"tool": "shell", "action": "run", "args": {"command": format!("echo {HOLD}")}}]}})
    }

    /// Held steps that have started so far.
    pub(crate) fn held(&self) -> usize {
        self.runner.entered.load(Ordering::Acquire)
    }

    /// Waits (10 s at most) until a held step has started.
    pub(crate) async fn until_held(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.held() == 0 {
            assert!(Instant::now() < deadline, "no held step started");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Lets every held step (now and later) end.
    pub(crate) fn let_go(&self) {
        self.runner.open.store(true, Ordering::Release);
    }

    /// Writes a file under home/work.
    pub(crate) fn file(&self, rel: &str, content: &str) -> PathBuf {
        let p = self.home.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, content).unwrap();
        p
    }

    pub(crate) fn cwd(&self) -> String {
        self.home.join("work").display().to_string()
    }
}

impl Drop for T {
    fn drop(&mut self) {
        self.stop();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_runs_and_its_events_are_journaled_in_order() {
    let t = T::start();
    t.file("work/logs/big.log", &"x".repeat(3000));
    t.file("work/logs/small.log", "x");
    let k = t.key("acme", Role::Operator).await;
    let a = t
        .submit(
            Auth::Key(&k),
            json!({"request": "show the 2 largest files in logs", "cwd": t.cwd()}),
        )
        .await;
    let d = t.finished(Auth::Key(&k), &a).await;
    assert_eq!(d["status"], "committed", "{d}");
    let kinds: Vec<&str> = d["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.first(), Some(&"action.submitted"));
    assert!(kinds.contains(&"plan.created") && kinds.contains(&"step.finished"));
    assert_eq!(kinds.last(), Some(&"action.finished"));
    let out = d["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "step.finished")
        .unwrap();
    let rows = out["payload"]["result"]["output"]["rows"]
        .as_array()
        .unwrap();
    assert_eq!(rows.len(), 2);
    assert!(rows[0].to_string().contains("big.log"), "{rows:?}");
    let seqs: Vec<u64> = d["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]));
    // Metering: the action was charged its per-step overhead.
    assert!(d["units"].as_f64().unwrap() > 0.0, "{d}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_readiness_and_the_openapi_document_need_no_key() {
    let t = T::start();
    let h = t.call("GET", "/healthz", Auth::None, None).await;
    assert_eq!(h.status, StatusCode::OK);
    let r = t.call("GET", "/readyz", Auth::None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["status"], "ready");
    let d = t.call("GET", "/v1/openapi.json", Auth::None, None).await;
    assert_eq!(d.status, StatusCode::OK);
    let doc = d.json();
    assert_eq!(doc["openapi"], "3.1.0");
    for p in [
        "/v1/actions",
        "/v1/events",
        "/v1/state/actions/{id}",
        "/v1/approvals/{id}",
        "/v1/undo/{tx}",
        "/v1/audit.csv",
        "/metrics",
    ] {
        assert!(doc["paths"].get(p).is_some(), "{p} is not documented");
    }
}
