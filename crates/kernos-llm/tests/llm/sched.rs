//! The fair scheduler in front of each provider, against the slot-modelling fake server over
//! real loopback HTTP: fair order by tokens, no banked credit, `Retry-After` pauses, and never
//! more calls at the server than its slots. Assertions are on order and counts, never on
//! speed.

use std::time::{Duration, Instant};

use kernos_llm::testing::{FakeServer, Reply, SlotModel};
use kernos_llm::{ChatRequest, Message, RouteOpts, Router};
use tokio::task::JoinHandle;

use crate::{async_router, config, local};

/// Answer tokens of every call: asked for as `max_tokens` and given, so the scheduler's
/// estimate is about what the call really costs.
const OUT: u32 = 20;

/// One slot-limited server: `slots` at once, `ms` per answer token.
fn server(slots: usize, ms: u64) -> FakeServer {
    FakeServer::with_slots(SlotModel {
        slots,
        queue_limit: 1000,
        per_prompt_token: Duration::ZERO,
        per_output_token: Duration::from_millis(ms),
        output_tokens: OUT,
    })
}

/// A router with one local provider at `s` sending `slots` calls at once.
fn sched_router(s: &FakeServer, slots: u32) -> Router {
    let mut p = local("local", &s.v1(), "m");
    p.slots = Some(slots);
    async_router(config(vec![p]))
}

/// Starts one call for `client`, its message being `label` (the server sees them in order).
fn call(r: &Router, client: &str, label: &str) -> JoinHandle<()> {
    let r = r.clone();
    let opts = RouteOpts {
        client: Some(client.to_owned()),
        ..RouteOpts::default()
    };
    let req = ChatRequest {
        system: "s".into(),
        messages: vec![Message::user(label)],
        max_tokens: Some(OUT),
        ..ChatRequest::default()
    };
    tokio::spawn(async move {
        let resp = r.complete("", &req, &opts).await;
        assert!(resp.is_ok(), "{resp:?}");
    })
}

/// Waits (bounded) until `n` calls wait for a slot at the first provider.
async fn until_queued(r: &Router, n: usize) {
    for _ in 0..2000 {
        if r.scheduler()[0].queued == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("never saw {n} queued calls: {:?}", r.scheduler());
}

/// Labels in the order the server received them (with one slot: the order served).
fn served(s: &FakeServer) -> Vec<String> {
    s.requests().iter().map(|r| r.last_user()).collect()
}

async fn join(hs: Vec<JoinHandle<()>>) {
    for h in hs {
        h.await.unwrap();
    }
}

#[tokio::test]
async fn a_late_client_is_served_before_the_floods_later_calls() {
    let s = server(1, 2);
    let r = sched_router(&s, 1);
    let mut hs: Vec<_> = (0..10).map(|i| call(&r, "a", &format!("a{i}"))).collect();
    until_queued(&r, 9).await;
    hs.extend((0..2).map(|i| call(&r, "b", &format!("b{i}"))));
    join(hs).await;
    let order = served(&s);
    assert_eq!(order.len(), 12);
    let pos: Vec<usize> = order
        .iter()
        .enumerate()
        .filter(|(_, l)| l.starts_with('b'))
        .map(|(i, _)| i)
        .collect();
    // First come, first served would put b at 10 and 11; fair share interleaves it with a.
    assert!(pos.iter().all(|&p| p < 6), "order {order:?}");
    let st = &r.scheduler()[0];
    let b = st.clients.iter().find(|c| c.client == "b").unwrap();
    assert_eq!((b.calls, b.output_tokens), (2, 2 * u64::from(OUT)));
}

#[tokio::test]
async fn an_idle_client_banks_no_credit() {
    let s = server(1, 1);
    let r = sched_router(&s, 1);
    join((0..6).map(|i| call(&r, "a", &format!("a{i}"))).collect()).await;
    let mut hs: Vec<_> = (6..12).map(|i| call(&r, "a", &format!("a{i}"))).collect();
    until_queued(&r, 5).await;
    hs.extend((0..4).map(|i| call(&r, "b", &format!("b{i}"))));
    join(hs).await;
    let order = served(&s);
    let phase2 = &order[6..];
    let last_b = phase2.iter().rposition(|l| l.starts_with('b')).unwrap();
    let a_before = phase2[..last_b]
        .iter()
        .filter(|l| l.starts_with('a'))
        .count();
    // With credit banked while idle, b (counter 0) would take its four calls in a row right
    // after a's running one; lifted to a's counter, it alternates with a.
    assert!(a_before >= 3, "order {order:?}");
}

#[tokio::test]
async fn retry_after_pauses_dispatch_and_every_call_completes() {
    let s = server(2, 1);
    s.push(
        Reply::status_json(429, r#"{"error":{"message":"slow down"}}"#)
            .with_header("retry-after-ms", "300"),
    );
    let r = sched_router(&s, 2);
    let start = Instant::now();
    let hs: Vec<_> = (0..6).map(|i| call(&r, "a", &format!("a{i}"))).collect();
    join(hs).await;
    assert!(start.elapsed() >= Duration::from_millis(300));
    assert_eq!(s.count(), 7, "six calls and the one retry");
    let st = &r.scheduler()[0];
    assert_eq!(st.paused, 1);
    assert_eq!((st.in_flight, st.queued), (0, 0));
    assert_eq!(st.clients[0].calls, 7);
}

#[tokio::test]
async fn the_server_never_sees_more_calls_than_slots() {
    let s = server(64, 1);
    let r = sched_router(&s, 2);
    let hs: Vec<_> = (0..12)
        .map(|i| call(&r, ["x", "y", "z"][i % 3], &format!("c{i}")))
        .collect();
    join(hs).await;
    assert_eq!(s.count(), 12);
    assert!(s.max_concurrency() <= 2, "{}", s.max_concurrency());
    let st = &r.scheduler()[0];
    assert!(st.max_in_flight <= 2);
    assert_eq!(st.dispatched, 12);
    let tokens: u64 = st.clients.iter().map(|c| c.output_tokens).sum();
    assert_eq!(tokens, 12 * u64::from(OUT));
}

#[tokio::test]
async fn slots_come_from_llama_cpp_props_unless_configured() {
    let s = server(3, 1).with_context(4096);
    let r = async_router(config(vec![local("local", &s.v1(), "m")]));
    assert_eq!(r.scheduler()[0].slots, 4);
    join(vec![call(&r, "a", "x")]).await;
    assert_eq!(r.scheduler()[0].slots, 3);
    let pinned = sched_router(&s, 7);
    join(vec![call(&pinned, "a", "x")]).await;
    assert_eq!(pinned.scheduler()[0].slots, 7);
}
