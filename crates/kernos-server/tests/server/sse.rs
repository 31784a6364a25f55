//! Server-Sent Events: ids are journal sequence numbers, resume is exact (every event once, in
//! order, across a reconnect in the middle of 10,000 events), slow subscribers fall back to the
//! journal, and a gap beyond the replay limit gets an explicit resync.

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use kernos_core::{Actor, NewEvent};
use kernos_journal::Journal;
use kernos_server::{Peer, Role, ServerConfig};
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::{Auth, T};

/// One received event.
#[derive(Debug, Clone)]
pub(crate) struct SseEv {
    pub(crate) id: Option<u64>,
    pub(crate) event: String,
    pub(crate) data: Value,
}

/// An open event stream.
pub(crate) struct Stream {
    body: Body,
    buf: String,
}

impl Stream {
    pub(crate) async fn open(
        t: &T,
        path: &str,
        auth: Auth<'_>,
        headers: &[(&str, &str)],
    ) -> Stream {
        let mut b = Request::get(path);
        if let Auth::Key(k) = auth {
            b = b.header("authorization", format!("Bearer {k}"));
        }
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let mut req = b.body(Body::empty()).unwrap();
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
        let r = t.app.clone().oneshot(req).await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()["content-type"], "text/event-stream");
        Stream {
            body: r.into_body(),
            buf: String::new(),
        }
    }

    /// Opens a stream, or `None` when the daemon refuses.
    pub(crate) async fn try_open(t: &T, path: &str, auth: Auth<'_>) -> Option<Stream> {
        let mut req = Request::get(path).body(Body::empty()).unwrap();
        if let Auth::Key(k) = auth {
            req.headers_mut()
                .insert("authorization", format!("Bearer {k}").parse().unwrap());
        }
        req.extensions_mut().insert(ConnectInfo(Peer::Unix {
            // SAFETY: geteuid cannot fail.
            uid: unsafe { libc::geteuid() },
            pid: None,
        }));
        let r = t.app.clone().oneshot(req).await.unwrap();
        (r.status() == StatusCode::OK).then(|| Stream {
            body: r.into_body(),
            buf: String::new(),
        })
    }

    /// The next event, or `None` after `wait` without one.
    pub(crate) async fn next(&mut self, wait: Duration) -> Option<SseEv> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(i) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..i + 2).collect();
                let mut ev = SseEv {
                    id: None,
                    event: "message".into(),
                    data: Value::Null,
                };
                let mut data = String::new();
                let mut any = false;
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        ev.id = v.trim().parse().ok();
                        any = true;
                    } else if let Some(v) = line.strip_prefix("event:") {
                        ev.event = v.trim().to_owned();
                        any = true;
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.strip_prefix(' ').unwrap_or(v));
                        any = true;
                    }
                }
                if !any {
                    continue; // a keep-alive comment
                }
                ev.data = serde_json::from_str(&data).unwrap_or(Value::String(data));
                return Some(ev);
            }
            let frame = tokio::time::timeout_at(deadline, self.body.frame()).await;
            match frame {
                Ok(Some(Ok(f))) => {
                    if let Ok(d) = f.into_data() {
                        self.buf.push_str(&String::from_utf8_lossy(&d));
                    }
                }
                _ => return None,
            }
        }
    }
}

/// Reads up to `want` events, for at most `max_ms`.
pub(crate) async fn read_events(
    t: &T,
    path: &str,
    auth: Auth<'_>,
    headers: &[(&str, &str)],
    want: usize,
    max_ms: u64,
) -> Vec<SseEv> {
    let mut s = Stream::open(t, path, auth, headers).await;
    let until = Instant::now() + Duration::from_millis(max_ms);
    let mut out = Vec::new();
    while out.len() < want {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        match s.next(left).await {
            Some(e) => out.push(e),
            None => break,
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_across_a_reconnect_in_10000_events_gets_each_exactly_once_in_order() {
    // A small live ring, so the subscriber also falls behind it and has to catch up from the
    // journal while events keep coming.
    let t = T::with(ServerConfig {
        sse_buffer: 64,
        ..ServerConfig::default()
    });
    let start = t.st.hub_head();
    const N: usize = 10_000;
    // Another process-like writer appends 10,000 events in batches while we read.
    let dir = t.data_dir();
    let writer = std::thread::spawn(move || {
        let mut j = Journal::open(&dir).unwrap();
        for b in 0..(N / 100) {
            let evs: Vec<NewEvent> = (0..100)
                .map(|i| {
                    NewEvent::new("test.tick", Actor::system()).payload(json!({"n": b * 100 + i}))
                })
                .collect();
            j.append_batch(&evs).unwrap();
            std::thread::sleep(Duration::from_millis(2));
        }
    });
    let local = Auth::Local;
    let path = format!("/v1/events?after={start}&prefix=test.");
    let mut s = Stream::open(&t, &path, local, &[]).await;
    let mut got: Vec<(u64, u64)> = Vec::new();
    while got.len() < 4_000 {
        let e = s
            .next(Duration::from_secs(20))
            .await
            .expect("events stopped coming");
        got.push((e.id.unwrap(), e.data["payload"]["n"].as_u64().unwrap()));
    }
    drop(s); // the connection drops in the middle of the stream
    let last = got.last().unwrap().0.to_string();
    let mut s = Stream::open(
        &t,
        "/v1/events?prefix=test.",
        local,
        &[("last-event-id", &last)],
    )
    .await;
    while got.len() < N {
        let e = s
            .next(Duration::from_secs(20))
            .await
            .expect("events stopped coming after resume");
        got.push((e.id.unwrap(), e.data["payload"]["n"].as_u64().unwrap()));
    }
    writer.join().unwrap();
    let ns: Vec<u64> = got.iter().map(|g| g.1).collect();
    assert_eq!(
        ns,
        (0..N as u64).collect::<Vec<_>>(),
        "every event once, in order"
    );
    assert!(got.windows(2).all(|w| w[0].0 < w[1].0), "ids increase");
    assert!(
        s.next(Duration::from_millis(300)).await.is_none(),
        "nothing more, nothing twice"
    );
    // Each id is the event's journal sequence number, and the event is in the journal.
    let j = Journal::open_read_only(t.data_dir()).unwrap();
    for (seq, n) in got.iter().step_by(997) {
        let e = j.get(*seq).unwrap().unwrap();
        assert_eq!(e.payload["n"].as_u64(), Some(*n));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gap_beyond_the_replay_limit_gets_a_resync_event() {
    let t = T::with(ServerConfig {
        replay_limit: 50,
        ..ServerConfig::default()
    });
    let mut j = Journal::open(t.data_dir()).unwrap();
    let evs: Vec<NewEvent> = (0..200)
        .map(|_| NewEvent::new("test.tick", Actor::system()))
        .collect();
    j.append_batch(&evs).unwrap();
    let head = j.head().unwrap().0;
    // Wait until the daemon has published them.
    let until = Instant::now() + Duration::from_secs(5);
    while t.st.hub_head() < head {
        assert!(Instant::now() < until);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let evs = read_events(&t, "/v1/events?after=0", Auth::Local, &[], 1, 2000).await;
    assert_eq!(evs[0].event, "resync");
    assert_eq!(evs[0].id, Some(head));
    assert!(
        evs[0].data["detail"]
            .as_str()
            .unwrap()
            .contains("replay limit")
    );
    // Within the limit, a plain replay.
    let after = (head - 10).to_string();
    let evs = read_events(
        &t,
        "/v1/events",
        Auth::Local,
        &[("last-event-id", &after)],
        10,
        2000,
    )
    .await;
    assert_eq!(evs.len(), 10);
    assert_eq!(evs[0].id, Some(head - 9));
    assert!(evs.iter().all(|e| e.event == "test.tick"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_actions_events_stream_live_and_are_durable_when_sent() {
    let t = T::start();
    let k = t.key("acme", Role::Operator).await;
    let mut s = Stream::open(&t, "/v1/events?prefix=", Auth::Key(&k), &[]).await;
    let a = t
        .submit(
            Auth::Key(&k),
            json!({"request": "list files in .", "cwd": t.cwd()}),
        )
        .await;
    let mut kinds = Vec::new();
    let j = Journal::open_read_only(t.data_dir()).unwrap();
    loop {
        let e = s.next(Duration::from_secs(20)).await.expect("no event");
        assert_eq!(e.data["action"], a);
        // Persisted before it was sent.
        let stored = j
            .get(e.id.unwrap())
            .unwrap()
            .expect("sent before it was journaled");
        assert_eq!(stored.kind, e.event);
        kinds.push(e.event.clone());
        if e.event == "action.finished" {
            break;
        }
    }
    assert_eq!(kinds[0], "action.submitted");
    assert!(kinds.contains(&"tx.finished".to_owned()), "{kinds:?}");
    // A filter by action gives exactly that action's events.
    let by_action = read_events(
        &t,
        &format!("/v1/events?after=0&action={a}"),
        Auth::Key(&k),
        &[],
        1000,
        500,
    )
    .await;
    assert_eq!(
        by_action
            .iter()
            .map(|e| e.event.clone())
            .collect::<Vec<_>>(),
        kinds
    );
    // Following an action that has already ended, with no resume point, shows it all from
    // its first event (what the 202's `events` link promises); an action of another org
    // shows nothing.
    let whole = read_events(
        &t,
        &format!("/v1/events?action={a}"),
        Auth::Key(&k),
        &[],
        1000,
        500,
    )
    .await;
    assert_eq!(
        whole.iter().map(|e| e.event.clone()).collect::<Vec<_>>(),
        kinds
    );
    let other = t.key("globex", Role::Operator).await;
    let none = read_events(
        &t,
        &format!("/v1/events?action={a}"),
        Auth::Key(&other),
        &[],
        1000,
        300,
    )
    .await;
    assert!(none.is_empty(), "{none:?}");
    // A malformed Last-Event-ID is a problem document, not a silent restart.
    let r = t
        .call_with(
            "GET",
            "/v1/events",
            Auth::Key(&k),
            None,
            &[("last-event-id", "x")],
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_streams_are_limited_and_a_closed_one_frees_its_slot() {
    let t = T::with(ServerConfig {
        sse_streams: 2,
        ..ServerConfig::default()
    });
    let a = Stream::open(&t, "/v1/events", Auth::Local, &[]).await;
    let _b = Stream::open(&t, "/v1/events", Auth::Local, &[]).await;
    let r = t.call("GET", "/v1/events", Auth::Local, None).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        r.json()["detail"]
            .as_str()
            .unwrap()
            .contains("server.sse_streams")
    );
    drop(a);
    // The stream's task notices the closed connection on its next event; make one.
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        let mut j = Journal::open(t.data_dir()).unwrap();
        j.append(&NewEvent::new("test.tick", Actor::system()))
            .unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut s = Stream::try_open(&t, "/v1/events", Auth::Local).await;
        if s.is_some() {
            s.take();
            break;
        }
        assert!(Instant::now() < until, "the slot was never freed");
    }
}
