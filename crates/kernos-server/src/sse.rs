//! The event stream behind GET /v1/events: Server-Sent Events, each with its journal sequence
//! number as `id:`.
//!
//! Resuming (Last-Event-ID or `?after=`) subscribes to the live ring *first*, then replays the
//! missed events from the journal, then forwards live ones, skipping any sequence number
//! already sent: no gap, no duplicate. A subscriber that falls behind the ring replays from the
//! journal again from where it was (events are durable before they are published). A gap
//! larger than `replay_limit` gets an explicit `resync` event instead of a replay. A stream
//! that follows one action (`?action=`) starts at that action's first event.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use kernos_journal::Query;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;

use crate::error::{ApiError, ApiResult};
use crate::{Published, State};

/// Events per journal page while replaying.
const PAGE: usize = 1000;

/// Which events a stream carries.
pub(crate) struct Filter {
    /// The caller's organisation: a stream never crosses organisations.
    pub(crate) org: String,
    /// Only kinds starting with this.
    pub(crate) prefix: Option<String>,
    /// Only this action's events.
    pub(crate) action: Option<String>,
    /// Whether `audit.*` events are included (admins and owners only).
    pub(crate) audit: bool,
    /// The API key the stream was opened with: the stream ends when it is revoked.
    pub(crate) key_id: Option<String>,
    /// The browser session it was opened through: the stream ends when it is signed out or
    /// expires.
    pub(crate) session: Option<String>,
}

impl Filter {
    fn matches(&self, p: &Published) -> bool {
        p.org == self.org
            && self.prefix.as_ref().is_none_or(|x| p.kind.starts_with(x))
            && self
                .action
                .as_ref()
                .is_none_or(|a| p.action.as_deref() == Some(a))
            && (self.audit || !p.kind.starts_with("audit."))
    }

    fn query(&self, after: u64, until: u64) -> Query {
        Query {
            after: Some(after),
            until: Some(until),
            org: Some(self.org.clone()),
            kind_prefix: self.prefix.clone(),
            action: self.action.clone(),
            limit: Some(PAGE),
            ..Query::default()
        }
    }
}

fn frame(p: &Published) -> SseEvent {
    SseEvent::default()
        .id(p.seq.to_string())
        .event(p.kind.as_str())
        .data(p.json.as_str())
}

/// Opens a stream of the events `filter` lets through, resuming after `start` when given;
/// 503 when `server.sse_streams` streams are open already.
pub(crate) fn stream(st: Arc<State>, filter: Filter, start: Option<u64>) -> ApiResult<Response> {
    let open = st.streams.fetch_add(1, Ordering::AcqRel);
    let guard = StreamSlot(st.clone());
    if open >= st.config().sse_streams {
        return Err(ApiError::unavailable(
            format!(
                "{open} event streams are open already (server.sse_streams); retry later or close one",
            ),
            5,
        ));
    }
    // "Now", for a stream without a resume point, is the head *before* subscribing: an event
    // published in between is then both after it (so the replay picks it up from the journal)
    // and possibly in the live ring (where the cursor drops the duplicate). Read after
    // subscribing, such an event would count as already seen and be lost.
    let now = st.hub.head();
    // Subscribe before anything is read, so nothing published from here on is missed.
    let live = st.hub.subscribe();
    let (tx, rx) = mpsc::channel::<SseEvent>(256);
    // Set when the stream's key is revoked: nothing more is sent, not even what is buffered.
    let revoked = Arc::new(AtomicBool::new(false));
    let ended = revoked.clone();
    tokio::spawn(async move {
        pump(st.clone(), filter, live, start, now, tx, ended).await;
        drop(guard);
    });
    let stream = futures_util::stream::unfold((rx, revoked), |(mut rx, revoked)| async move {
        let e = rx.recv().await?;
        if revoked.load(Ordering::Acquire) {
            return None;
        }
        Some((Ok::<_, Infallible>(e), (rx, revoked)))
    });
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response())
}

/// Counts an open stream; the count drops when the stream's task ends.
struct StreamSlot(Arc<State>);

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.0.streams.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Replays then forwards live events into `tx` until the client goes away or the daemon stops.
async fn pump(
    st: Arc<State>,
    filter: Filter,
    mut live: tokio::sync::broadcast::Receiver<Arc<Published>>,
    start: Option<u64>,
    now: u64,
    tx: mpsc::Sender<SseEvent>,
    revoked: Arc<AtomicBool>,
) {
    let mut stop = st.shutdown_tx.subscribe();
    let mut revocations = st.revocations.subscribe();
    let key_id = filter.key_id.clone();
    let session = filter.session.clone();
    let key_gone = |st: &State| {
        let key = key_id.as_deref().is_some_and(|id| {
            st.keys
                .read()
                .map(|k| k.get(id).is_none_or(|k| k.revoked))
                .unwrap_or(true)
        });
        let now = kernos_core::time::now_ms();
        key || session
            .as_deref()
            .is_some_and(|id| st.sessions.read().map(|t| !t.live(id, now)).unwrap_or(true))
    };
    let filter = Arc::new(filter);
    // Without a resume point the stream starts `now` — except when it follows one action: then
    // it starts at that action's first event, so `GET /v1/events?action=<id>` right after the
    // 202 (or long after the action ended) shows the whole action. Its events are few and
    // found by index, so the replay limit does not apply to them.
    let (mut cursor, bounded) = match (start, &filter.action) {
        (Some(s), _) => (s, false),
        (None, Some(a)) => {
            let q = Query {
                action: Some(a.clone()),
                org: Some(filter.org.clone()),
                limit: Some(1),
                ..Query::default()
            };
            match st.read(move |j| j.query(&q)).await {
                Ok(first) => match first.first() {
                    Some(e) => (e.seq.saturating_sub(1), true),
                    None => (now, false),
                },
                Err(e) => {
                    tracing::warn!("SSE replay failed: {}", e.detail);
                    return;
                }
            }
        }
        (None, None) => (now, false),
    };
    let head = st.hub.head();
    if !bounded && head.saturating_sub(cursor) > st.config().replay_limit {
        let data = serde_json::json!({
            "from": cursor,
            "to": head,
            "detail": format!(
                "{} events were missed, more than the replay limit of {}; reload state from GET /v1/state/… and continue from id {head}",
                head - cursor, st.config().replay_limit
            ),
        });
        let ev = SseEvent::default()
            .id(head.to_string())
            .event("resync")
            .data(data.to_string());
        if tx.send(ev).await.is_err() {
            return;
        }
        cursor = head;
    }
    loop {
        if key_gone(&st) {
            revoked.store(true, Ordering::Release);
            return;
        }
        // Replay (cursor, head] from the journal.
        let target = st.hub.head();
        while cursor < target {
            let f = filter.clone();
            let from = cursor;
            let page = st.read(move |j| j.query(&f.query(from, target))).await;
            let page = match page {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!("SSE replay failed: {}", e.detail);
                    return;
                }
            };
            let full = page.len() == PAGE;
            for e in &page {
                let p = Published::from_event(e);
                if filter.matches(&p) && tx.send(frame(&p)).await.is_err() {
                    return;
                }
                cursor = e.seq;
            }
            if !full {
                cursor = target;
            }
        }
        // Live.
        loop {
            let r = tokio::select! {
                r = live.recv() => r,
                _ = stop.changed() => return,
                _ = tx.closed() => return,
                _ = revocations.changed() => {
                    if key_gone(&st) {
                        revoked.store(true, Ordering::Release);
                        return;
                    }
                    continue;
                }
            };
            match r {
                Ok(p) => {
                    if p.seq <= cursor {
                        continue;
                    }
                    cursor = p.seq;
                    if filter.matches(&p) && tx.send(frame(&p)).await.is_err() {
                        return;
                    }
                }
                // Fell behind the ring: what was skipped is in the journal.
                Err(RecvError::Lagged(_)) => break,
                Err(RecvError::Closed) => return,
            }
        }
    }
}
