//! The journal's chain check for GET /v1/state/journal/verify. Walking the whole chain can
//! take seconds on a big journal, so it runs on a blocking thread with its own read-only
//! connection (not one of the pool's, which requests share), one run at a time: callers that
//! arrive while it runs wait for that run and share its result, and a result is answered
//! again for [`FRESH_FOR`] without walking anything.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kernos_journal::Journal;
use tokio::sync::watch;

use crate::error::{ApiError, ApiResult};
use crate::limits::now_ms;
use crate::wire::JournalVerify;

/// How long a result is answered again.
pub(crate) const FRESH_FOR: Duration = Duration::from_secs(30);

type Outcome = Option<ApiResult<JournalVerify>>;

#[derive(Debug, Default)]
struct Inner {
    /// The last finished run and when it finished.
    last: Option<(Instant, JournalVerify)>,
    /// The run in progress: it sends its outcome here.
    running: Option<watch::Receiver<Outcome>>,
}

/// Single-flight, cached chain verification of one data directory.
#[derive(Debug)]
pub(crate) struct Verifier {
    data_dir: PathBuf,
    inner: Arc<Mutex<Inner>>,
}

impl Verifier {
    /// For the journal in `data_dir`.
    pub(crate) fn new(data_dir: PathBuf) -> Self {
        Verifier {
            data_dir,
            inner: Arc::new(Mutex::new(Inner::default())),
        }
    }

    /// The chain's status: the last result if it is under [`FRESH_FOR`] old and `fresh` is
    /// not asked, else the run in progress's, else a new run's. The run belongs to no
    /// caller: one that goes away does not stop it, and the others still get its result.
    pub(crate) async fn status(&self, fresh: bool) -> ApiResult<JournalVerify> {
        let mut rx = {
            let mut g = self
                .inner
                .lock()
                .map_err(|_| ApiError::internal("the verifier is unavailable; retry"))?;
            if let Some((at, r)) = &g.last {
                if !fresh && at.elapsed() < FRESH_FOR {
                    return Ok(r.clone());
                }
            }
            match &g.running {
                Some(rx) => rx.clone(),
                None => {
                    let (tx, rx) = watch::channel(None);
                    g.running = Some(rx.clone());
                    let inner = self.inner.clone();
                    let dir = self.data_dir.clone();
                    tokio::task::spawn_blocking(move || {
                        // Cleared however the run ends (a panic too), so the next caller
                        // starts a new run instead of waiting on a dead one.
                        let _done = Done(inner.clone());
                        let outcome = walk(&dir);
                        if let (Ok(r), Ok(mut g)) = (&outcome, inner.lock()) {
                            g.last = Some((Instant::now(), r.clone()));
                        }
                        let _ = tx.send(Some(outcome));
                    });
                    rx
                }
            }
        };
        let seen = rx
            .wait_for(Option::is_some)
            .await
            .map_err(|_| ApiError::internal("the journal check stopped; retry"))?;
        match &*seen {
            Some(outcome) => outcome.clone(),
            None => Err(ApiError::internal("the journal check stopped; retry")),
        }
    }
}

/// Marks the run in progress as ended when dropped.
struct Done(Arc<Mutex<Inner>>);

impl Drop for Done {
    fn drop(&mut self) {
        if let Ok(mut g) = self.0.lock() {
            g.running = None;
        }
    }
}

/// Walks the chain once with a connection of its own.
fn walk(dir: &std::path::Path) -> ApiResult<JournalVerify> {
    let started = Instant::now();
    let j = Journal::open_read_only(dir)?;
    let report = j.verify()?;
    // The hash stored with the head event, as the chain recorded it when the walk began.
    let head_hash = match report.head_seq {
        0 => None,
        seq => j.get(seq).ok().flatten().map(|e| e.hash),
    };
    Ok(JournalVerify {
        ok: report.is_ok(),
        events: report.checked,
        head_seq: report.head_seq,
        head_hash,
        bad_seq: report.first_bad.as_ref().map(|t| t.seq),
        problem: report
            .first_bad
            .map(|t| format!("event {}: {}", t.seq, t.problem)),
        checked_ms: now_ms(),
        took_ms: started.elapsed().as_millis() as u64,
    })
}
