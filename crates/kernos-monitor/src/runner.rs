//! The runner: one thread with a small single-threaded tokio runtime that reads every monitor
//! at its interval, reacts to inotify and journal events as they come, and hands each
//! `Fired`/`Cleared` (and probe failure) to a callback.
//!
//! One loop owns all monitor state, so nothing is locked. It sleeps until the earliest due
//! monitor, an inotify event, a fed journal event, a network probe's answer, or stop — an
//! idle runner costs one sleeping thread. Local probes (statvfs, `/proc`) run inline: they
//! take microseconds. Network probes (HTTP health, a server's certificate) run as tasks on
//! the same thread and report back, so a slow server delays nothing else; a monitor whose
//! previous network probe has not answered skips its turn.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Instant, SystemTime};

use inotify::Inotify;
use regex::Regex;
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::sync::{mpsc, oneshot};

use crate::error::{ProbeError, RunnerError, SpecError};
use crate::fswatch::{FsEvent, Hit, Registry};
use crate::probe::journal::{FedEvent, matches};
use crate::probe::logtail::LogTail;
use crate::probe::window::RateWindow;
use crate::probe::{self, http, tls};
use crate::spec::{MonitorSpec, Probe, check_unique};
use crate::watch::{Cleared, Fired, Reading, Transition, Watch};

/// What the runner tells its callback.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "update", rename_all = "snake_case")]
pub enum Update {
    /// A monitor fired.
    Fired(Fired),
    /// A fired monitor cleared.
    Cleared(Cleared),
    /// A probe could not read (reported once per distinct error, again after a success).
    Failed {
        /// The monitor.
        monitor: String,
        /// What went wrong.
        error: String,
    },
}

/// The callback the runner calls on its own thread; it should hand work off, not block.
pub type Sink = Arc<dyn Fn(Update) + Send + Sync>;

/// A running set of monitors. Stops (and joins its thread) on [`Runner::stop`] or drop.
pub struct Runner {
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    feed: mpsc::UnboundedSender<FedEvent>,
    /// The journal monitors' (event pattern, org), so `feed` sends only events one counts.
    journal_patterns: Arc<Vec<(String, Option<String>)>>,
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner")
            .field("running", &self.thread.is_some())
            .finish()
    }
}

impl Runner {
    /// Validates `specs` and starts watching. Every monitor is read once right away.
    pub fn start(
        specs: Vec<MonitorSpec>,
        sink: impl Fn(Update) + Send + Sync + 'static,
    ) -> Result<Runner, RunnerError> {
        check_unique(&specs)?;
        specs.iter().try_for_each(MonitorSpec::validate)?;
        let journal_patterns = Arc::new(
            specs
                .iter()
                .filter_map(|s| match &s.probe {
                    Probe::JournalEvent { event, org, .. } => Some((event.clone(), org.clone())),
                    _ => None,
                })
                .collect::<Vec<_>>(),
        );
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(RunnerError::Start)?;
        let mut state = State::new(specs, Arc::new(sink))?;
        let ino = state.watch_files()?;
        let (stop_tx, stop_rx) = oneshot::channel();
        let (feed_tx, feed_rx) = mpsc::unbounded_channel();
        let thread = std::thread::Builder::new()
            .name("kernos-monitor".into())
            .spawn(move || rt.block_on(state.run(ino, feed_rx, stop_rx)))
            .map_err(RunnerError::Start)?;
        Ok(Runner {
            stop: Some(stop_tx),
            thread: Some(thread),
            feed: feed_tx,
            journal_patterns,
        })
    }

    /// Feeds one journal event to the journal-event monitors (cheap when none counts it).
    pub fn feed(&self, event: &kernos_core::Event) {
        let counted = self
            .journal_patterns
            .iter()
            .any(|(p, org)| matches(p, org.as_deref(), &event.kind, &event.org));
        if counted {
            // A closed channel means the runner is stopping: nothing left to count for.
            let _ = self.feed.send(FedEvent::from(event));
        }
    }

    /// Stops every monitor and waits for the runner's thread to end.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            // A panic in the runner has already been reported by the panic hook.
            let _ = t.join();
        }
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// What a push monitor keeps between events.
enum Push {
    /// A polled monitor.
    None,
    Log {
        tail: LogTail,
        regex: Regex,
        window: RateWindow,
        last_line: String,
    },
    Files {
        window: RateWindow,
        last_path: String,
    },
    Journal {
        window: RateWindow,
        last_kind: String,
    },
}

/// One monitor's spec and state.
struct Slot {
    spec: MonitorSpec,
    watch: Watch,
    push: Push,
    last_error: Option<String>,
    in_flight: bool,
}

/// A network probe's answer for monitor number `.0`.
type ProbeResult = (usize, Result<Reading, ProbeError>);

/// Everything the runner's loop owns.
struct State {
    slots: Vec<Slot>,
    due: BinaryHeap<Reverse<(Instant, usize)>>,
    sink: Sink,
    registry: Registry,
    shared: probe::Shared,
    http: Option<reqwest::Client>,
    results: (
        mpsc::UnboundedSender<ProbeResult>,
        mpsc::UnboundedReceiver<ProbeResult>,
    ),
}

impl State {
    fn new(specs: Vec<MonitorSpec>, sink: Sink) -> Result<State, RunnerError> {
        let now = Instant::now();
        let needs_http = specs.iter().any(|s| matches!(s.probe, Probe::Http { .. }));
        let http = if needs_http {
            Some(http::client().map_err(|e| RunnerError::Start(std::io::Error::other(e)))?)
        } else {
            None
        };
        let slots = specs
            .into_iter()
            .map(|spec| {
                let push = match &spec.probe {
                    Probe::LogPattern {
                        path,
                        pattern,
                        window,
                    } => Push::Log {
                        tail: LogTail::at_end(path),
                        regex: Regex::new(pattern).map_err(|e| SpecError::Invalid {
                            monitor: spec.name.clone(),
                            reason: e.to_string(),
                        })?,
                        window: RateWindow::new(*window),
                        last_line: String::new(),
                    },
                    Probe::FileChanges { window, .. } => Push::Files {
                        window: RateWindow::new(*window),
                        last_path: String::new(),
                    },
                    Probe::JournalEvent { window, .. } => Push::Journal {
                        window: RateWindow::new(*window),
                        last_kind: String::new(),
                    },
                    _ => Push::None,
                };
                Ok(Slot {
                    spec,
                    watch: Watch::new(),
                    push,
                    last_error: None,
                    in_flight: false,
                })
            })
            .collect::<Result<Vec<_>, SpecError>>()?;
        let due = (0..slots.len()).map(|i| Reverse((now, i))).collect();
        Ok(State {
            slots,
            due,
            sink,
            registry: Registry::default(),
            shared: probe::Shared::new(probe::SNAPSHOT_AGE),
            http,
            results: mpsc::unbounded_channel(),
        })
    }

    /// Sets up inotify for the file-change and log monitors, if there are any.
    fn watch_files(&mut self) -> Result<Option<Inotify>, RunnerError> {
        if !self.slots.iter().any(|s| {
            matches!(
                s.spec.probe,
                Probe::FileChanges { .. } | Probe::LogPattern { .. }
            )
        }) {
            return Ok(None);
        }
        let mut ino = Inotify::init().map_err(RunnerError::Start)?;
        for i in 0..self.slots.len() {
            let added = match &self.slots[i].spec.probe {
                Probe::FileChanges {
                    path, recursive, ..
                } => self.registry.watch_path(&mut ino, i, path, *recursive),
                Probe::LogPattern { path, .. } => self.registry.watch_entry(&mut ino, i, path),
                _ => continue,
            };
            if let Err(e) = added {
                let path = match &self.slots[i].spec.probe {
                    Probe::FileChanges { path, .. } | Probe::LogPattern { path, .. } => {
                        path.clone()
                    }
                    _ => continue,
                };
                self.report_error(i, &ProbeError::io("watch", path, e));
            }
        }
        Ok(Some(ino))
    }

    async fn run(
        mut self,
        ino: Option<Inotify>,
        mut feed: mpsc::UnboundedReceiver<FedEvent>,
        mut stop: oneshot::Receiver<()>,
    ) {
        let register = |ino: Inotify| -> std::io::Result<AsyncFd<Inotify>> {
            // SAFETY: `Inotify` owns its descriptor, keeps it open until dropped and never
            // replaces it, so it stays the same open descriptor for the AsyncFd's lifetime.
            Ok(unsafe { AsyncFd::register_with_interest(ino, Interest::READABLE)? })
        };
        let mut afd = match ino.map(register).transpose() {
            Ok(a) => a,
            Err(e) => {
                for i in 0..self.slots.len() {
                    if matches!(
                        self.slots[i].spec.probe,
                        Probe::FileChanges { .. } | Probe::LogPattern { .. }
                    ) {
                        self.report_error(i, &ProbeError::io("watch", "inotify", e.kind().into()));
                    }
                }
                None
            }
        };
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let next = self.due.peek().map(|Reverse((t, _))| *t);
            let sleep_until =
                next.unwrap_or_else(|| Instant::now() + std::time::Duration::from_secs(3600));
            tokio::select! {
                _ = &mut stop => break,
                Some(ev) = feed.recv() => self.on_journal(ev),
                Some((i, r)) = self.results.1.recv() => {
                    self.slots[i].in_flight = false;
                    self.evaluate(i, r, Instant::now());
                }
                evs = next_fs_events(&mut afd, &mut buf) => match evs {
                    Ok(evs) => {
                        if let Some(a) = afd.as_mut() {
                            self.on_fs_events(a.get_mut(), &evs);
                        }
                    }
                    Err(e) => {
                        // inotify failed for good (should not happen): poll only from now on.
                        afd = None;
                        let msg = ProbeError::io("read", "inotify", e);
                        for i in 0..self.slots.len() {
                            if matches!(self.slots[i].push, Push::Log { .. } | Push::Files { .. }) {
                                self.report_error(i, &msg);
                            }
                        }
                    }
                },
                _ = tokio::time::sleep_until(sleep_until.into()) => self.run_due(),
            }
        }
    }

    /// Reads every monitor that is due and schedules its next turn.
    fn run_due(&mut self) {
        let now = Instant::now();
        while let Some(Reverse((t, i))) = self.due.peek().copied() {
            if t > now {
                break;
            }
            self.due.pop();
            let next = (t + self.slots[i].spec.interval).max(now);
            self.due.push(Reverse((next, i)));
            self.read(i, now);
        }
    }

    /// Takes one reading of monitor `i` (or starts one, for a network probe).
    fn read(&mut self, i: usize, now: Instant) {
        let slot = &mut self.slots[i];
        if slot.in_flight {
            return;
        }
        if let Some(r) =
            probe::read_local(&slot.spec.probe, &mut self.shared, now, SystemTime::now())
        {
            self.evaluate(i, r, now);
            return;
        }
        match &slot.spec.probe {
            Probe::Http {
                url,
                expect_status,
                timeout,
                max_latency,
            } => {
                let Some(client) = self.http.clone() else {
                    return;
                };
                let (url, expect, timeout, max_latency) =
                    (url.clone(), expect_status.clone(), *timeout, *max_latency);
                let tx = self.results.0.clone();
                slot.in_flight = true;
                tokio::spawn(async move {
                    let r = http::http(&client, &url, &expect, timeout, max_latency).await;
                    let _ = tx.send((i, Ok(r)));
                });
            }
            Probe::TlsExpiry {
                url: Some(url),
                timeout,
                ..
            } => {
                let (url, timeout) = (url.clone(), *timeout);
                let tx = self.results.0.clone();
                slot.in_flight = true;
                tokio::spawn(async move {
                    let r = tls::url(&url, timeout, SystemTime::now()).await;
                    let _ = tx.send((i, r));
                });
            }
            _ => {
                let r = self.push_reading(i, now);
                self.evaluate(i, r, now);
            }
        }
    }

    /// The current reading of a push monitor (a log monitor reads its new lines first).
    fn push_reading(&mut self, i: usize, now: Instant) -> Result<Reading, ProbeError> {
        let slot = &mut self.slots[i];
        let window_text = |w: std::time::Duration| humantime::format_duration(w).to_string();
        match (&slot.spec.probe, &mut slot.push) {
            (
                Probe::LogPattern {
                    path,
                    pattern,
                    window: w,
                },
                Push::Log {
                    tail,
                    regex,
                    window,
                    last_line,
                },
            ) => {
                let mut hits = 0;
                tail.read_new(|line| {
                    let text = String::from_utf8_lossy(line);
                    if regex.is_match(&text) {
                        hits += 1;
                        *last_line = text.into_owned();
                    }
                })?;
                window.add(now, hits);
                let n = window.count(now);
                Ok(Reading::new(
                    n as f64,
                    format!(
                        "{n} lines of {} matched {pattern:?} in the last {}",
                        path.display(),
                        window_text(*w)
                    ),
                )
                .var("path", path.display())
                .var("pattern", pattern)
                .var("matches", n)
                .var("last_line", last_line.as_str()))
            }
            (
                Probe::FileChanges {
                    path, window: w, ..
                },
                Push::Files { window, last_path },
            ) => {
                let n = window.count(now);
                Ok(Reading::new(
                    n as f64,
                    format!(
                        "{n} changes under {} in the last {}",
                        path.display(),
                        window_text(*w)
                    ),
                )
                .var("path", path.display())
                .var("changes", n)
                .var("last_path", last_path.as_str()))
            }
            (
                Probe::JournalEvent {
                    event,
                    org,
                    window: w,
                },
                Push::Journal { window, last_kind },
            ) => {
                let n = window.count(now);
                Ok(Reading::new(
                    n as f64,
                    format!("{n} {event} events in the last {}", window_text(*w)),
                )
                .var("event", event)
                .var("org", org.as_deref().unwrap_or("*"))
                .var("count", n)
                .var("last_kind", last_kind.as_str()))
            }
            (p, _) => Err(ProbeError::format(
                p.kind(),
                "this kind is read neither locally, over the network nor by events",
            )),
        }
    }

    fn on_fs_events(&mut self, ino: &mut Inotify, evs: &[FsEvent]) {
        let now = Instant::now();
        let mut touched = BTreeSet::new();
        for ev in evs {
            for (i, hit) in self.registry.route(ino, ev) {
                if let Push::Files { window, last_path } = &mut self.slots[i].push {
                    window.add(now, 1);
                    if let Hit::Changed(p) = hit {
                        *last_path = p.display().to_string();
                    }
                }
                touched.insert(i);
            }
        }
        for i in touched {
            let r = self.push_reading(i, now);
            self.evaluate(i, r, now);
        }
    }

    fn on_journal(&mut self, ev: FedEvent) {
        let now = Instant::now();
        for i in 0..self.slots.len() {
            let slot = &mut self.slots[i];
            let (Probe::JournalEvent { event, org, .. }, Push::Journal { window, last_kind }) =
                (&slot.spec.probe, &mut slot.push)
            else {
                continue;
            };
            if matches(event, org.as_deref(), &ev.kind, &ev.org) {
                window.add(now, 1);
                last_kind.clone_from(&ev.kind);
                let r = self.push_reading(i, now);
                self.evaluate(i, r, now);
            }
        }
    }

    /// Feeds a reading to monitor `i`'s watch and reports what changed.
    fn evaluate(&mut self, i: usize, r: Result<Reading, ProbeError>, now: Instant) {
        let reading = match r {
            Ok(r) => r,
            Err(e) => return self.report_error(i, &e),
        };
        let slot = &mut self.slots[i];
        slot.last_error = None;
        match slot.watch.observe(&slot.spec, &reading, now) {
            Some(Transition::Fired(f)) => (self.sink)(Update::Fired(f)),
            Some(Transition::Cleared(c)) => (self.sink)(Update::Cleared(c)),
            None => {}
        }
    }

    fn report_error(&mut self, i: usize, e: &ProbeError) {
        let slot = &mut self.slots[i];
        let text = e.to_string();
        if slot.last_error.as_deref() != Some(text.as_str()) {
            slot.last_error = Some(text.clone());
            (self.sink)(Update::Failed {
                monitor: slot.spec.name.clone(),
                error: text,
            });
        }
    }
}

/// The next batch of inotify events; never completes when there is no inotify instance.
async fn next_fs_events(
    afd: &mut Option<AsyncFd<Inotify>>,
    buf: &mut [u8],
) -> std::io::Result<Vec<FsEvent>> {
    let Some(afd) = afd else {
        return std::future::pending().await;
    };
    loop {
        let mut guard = afd.readable_mut().await?;
        let read = guard.try_io(|inner| {
            let events = inner.get_mut().read_events(buf)?;
            Ok(events
                .map(|e| FsEvent {
                    wd: e.wd,
                    mask: e.mask,
                    name: e.name.map(std::ffi::OsStr::to_owned),
                })
                .collect::<Vec<_>>())
        });
        match read {
            Ok(Ok(evs)) if !evs.is_empty() => return Ok(evs),
            Ok(Ok(_)) | Err(_) => continue,
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Ok(Err(e)) => return Err(e),
        }
    }
}
