//! The scheduling disciplines (`sched = "fifo" | "round_robin" | "priority"`, beside the
//! default fair share) over real loopback HTTP: one slot, so the order the fake server
//! receives calls is the order the scheduler gave the slot. A first call whose answer comes
//! late holds the slot while the others queue one by one in a known order. Assertions are on
//! order and counts, never on speed.

use std::time::Duration;

use kernos_llm::testing::{FakeServer, Reply, SlotModel};
use kernos_llm::{ChatRequest, LlmConfig, Message, RouteOpts, Router, SchedPolicy};
use tokio::task::JoinHandle;

use crate::{async_router, config, local};

/// One slot, 2 ms per answer token, 10-token answers; the first request is answered late.
fn gated_server() -> FakeServer {
    let s = FakeServer::with_slots(SlotModel {
        slots: 1,
        queue_limit: 1000,
        per_prompt_token: Duration::ZERO,
        per_output_token: Duration::from_millis(2),
        output_tokens: 10,
    });
    s.push(
        Reply::json(
            r#"{"id":"g","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}"#,
        )
        .after(Duration::from_millis(1500)),
    );
    s
}

fn router_with(s: &FakeServer, policy: SchedPolicy) -> Router {
    let mut p = local("local", &s.v1(), "m");
    p.slots = Some(1);
    p.sched = Some(policy);
    async_router(config(vec![p]))
}

/// One call for `client` at `priority`, its user message being `label`.
fn call(r: &Router, client: &str, label: &str, priority: u8) -> JoinHandle<()> {
    let opts = RouteOpts {
        client: Some(client.to_owned()),
        priority,
        ..RouteOpts::default()
    };
    call_with(r, label, opts)
}

/// One call with these options, its user message being `label`.
fn call_with(r: &Router, label: &str, opts: RouteOpts) -> JoinHandle<()> {
    let r = r.clone();
    let req = ChatRequest {
        system: "s".into(),
        messages: vec![Message::user(label)],
        max_tokens: Some(10),
        ..ChatRequest::default()
    };
    tokio::spawn(async move {
        let resp = r.complete("", &req, &opts).await;
        assert!(resp.is_ok(), "{resp:?}");
    })
}

/// Waits (bounded) until the first provider's scheduler shows `running` and `queued` calls.
async fn until(r: &Router, running: usize, queued: usize) {
    for _ in 0..2000 {
        let st = &r.scheduler()[0];
        if st.in_flight == running && st.queued == queued {
            return;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    panic!(
        "never saw {running} running and {queued} queued: {:?}",
        r.scheduler()
    );
}

/// Starts the gate call, then queues `calls` (client, label) one at a time, each only once the
/// one before waits, so their arrival order is the list's.
async fn gate_then(r: &Router, calls: &[(&str, &str)]) -> Vec<JoinHandle<()>> {
    let mut hs = vec![call(r, "gate", "gate", 0)];
    until(r, 1, 0).await;
    for (n, (client, label)) in calls.iter().enumerate() {
        hs.push(call(r, client, label, 0));
        until(r, 1, n + 1).await;
    }
    hs
}

async fn join(hs: Vec<JoinHandle<()>>) {
    for h in hs {
        h.await.unwrap();
    }
}

/// Labels in the order the server received them, the gate left out.
fn served(s: &FakeServer) -> Vec<String> {
    s.requests()
        .iter()
        .map(|r| r.last_user())
        .filter(|l| l != "gate")
        .collect()
}

#[tokio::test]
async fn fifo_serves_calls_in_arrival_order_whoever_sent_them() {
    let s = gated_server();
    let r = router_with(&s, SchedPolicy::Fifo);
    let arrivals = [
        ("a", "a0"),
        ("a", "a1"),
        ("a", "a2"),
        ("b", "b0"),
        ("a", "a3"),
    ];
    join(gate_then(&r, &arrivals).await).await;
    // Fair share would move b0 ahead of a's later calls; first come, first served does not.
    assert_eq!(served(&s), ["a0", "a1", "a2", "b0", "a3"]);
    assert_eq!(r.scheduler()[0].policy, SchedPolicy::Fifo);
}

#[tokio::test]
async fn round_robin_serves_the_clients_in_turn() {
    let s = gated_server();
    let r = router_with(&s, SchedPolicy::RoundRobin);
    let arrivals = [
        ("a", "a0"),
        ("a", "a1"),
        ("a", "a2"),
        ("a", "a3"),
        ("b", "b0"),
        ("b", "b1"),
        ("c", "c0"),
    ];
    join(gate_then(&r, &arrivals).await).await;
    assert_eq!(served(&s), ["a0", "b0", "c0", "a1", "b1", "a2", "a3"]);
    let st = &r.scheduler()[0];
    let calls: Vec<(&str, u64)> = st
        .clients
        .iter()
        .map(|c| (c.client.as_str(), c.calls))
        .collect();
    assert_eq!(calls, [("a", 4), ("b", 2), ("c", 1), ("gate", 1)]);
}

#[tokio::test]
async fn priority_goes_first_and_ageing_keeps_a_low_call_from_starving() {
    const HIGH: u8 = 3;
    const LOOPS: usize = 20;
    let s = gated_server();
    let r = router_with(&s, SchedPolicy::Priority);
    let mut hs = vec![call(&r, "gate", "gate", 0)];
    until(&r, 1, 0).await;
    // Two clients that always have a high-priority call waiting: each sends its next call as
    // soon as the one before is answered.
    for h in ["h1", "h2"] {
        let r = r.clone();
        hs.push(tokio::spawn(async move {
            let opts = RouteOpts {
                client: Some(h.to_owned()),
                priority: HIGH,
                ..RouteOpts::default()
            };
            for i in 0..LOOPS {
                let req = ChatRequest {
                    messages: vec![Message::user(format!("{h}-{i}"))],
                    max_tokens: Some(10),
                    ..ChatRequest::default()
                };
                r.complete("", &req, &opts).await.unwrap();
            }
        }));
    }
    until(&r, 1, 2).await;
    hs.push(call(&r, "low", "low", 0));
    until(&r, 1, 3).await;
    join(hs).await;
    let order = served(&s);
    assert_eq!(order.len(), 2 * LOOPS + 1);
    let low = order.iter().position(|l| l == "low").unwrap();
    // Without ageing the low call would be served last, after all 40 high ones. It gains a
    // level per AGING_DISPATCHES dispatches it waits through, so it overtakes the fresh high
    // calls after about AGING_DISPATCHES × HIGH of them.
    let bound = SchedPolicy::AGING_DISPATCHES as usize * usize::from(HIGH);
    assert!(low >= 2, "the higher priority went first: {order:?}");
    assert!(
        low <= bound + 2,
        "served at {low}, bound {bound}: {order:?}"
    );
}

#[tokio::test]
async fn the_discipline_comes_from_llm_sched_unless_a_provider_sets_its_own() {
    let cfg: LlmConfig = toml::from_str(
        r#"
        sched = "round_robin"
        [[providers]]
        name = "a"
        base_url = "http://127.0.0.1:9/v1"
        model = "m"
        [[providers]]
        name = "b"
        base_url = "http://127.0.0.1:9/v1"
        model = "m"
        sched = "priority"
        time_slice_tokens = 64
        "#,
    )
    .unwrap();
    let r = Router::new(cfg).unwrap();
    let policies: Vec<SchedPolicy> = r.scheduler().iter().map(|s| s.policy).collect();
    assert_eq!(policies, [SchedPolicy::RoundRobin, SchedPolicy::Priority]);
    assert!(
        toml::from_str::<LlmConfig>("sched = \"lottery\"").is_err(),
        "an unknown discipline is refused"
    );
}

#[tokio::test]
async fn stats_sum_tokens_per_organisation_and_bucket_every_wait() {
    let s = gated_server();
    let r = router_with(&s, SchedPolicy::Fair);
    let arrivals = [("acme/a1", "x0"), ("acme/a2", "x1"), ("globex", "x2")];
    join(gate_then(&r, &arrivals).await).await;
    let st = &r.scheduler()[0];
    let orgs: Vec<(String, u64, u64)> = st
        .orgs()
        .into_iter()
        .map(|o| (o.org, o.calls, o.output_tokens))
        .collect();
    assert_eq!(
        orgs,
        [
            ("acme".to_owned(), 2, 20),
            ("gate".to_owned(), 1, 1),
            ("globex".to_owned(), 1, 10)
        ]
    );
    let (bound, total) = *st.wait_buckets.last().unwrap();
    assert_eq!((bound, total), (u64::MAX, st.dispatched));
    assert!(st.wait_buckets.windows(2).all(|w| w[0].1 <= w[1].1));
}

#[tokio::test]
async fn fair_share_serves_a_clients_oldest_work_first() {
    let s = gated_server();
    let r = router_with(&s, SchedPolicy::Fair);
    let mut hs = vec![call(&r, "gate", "gate", 0)];
    until(&r, 1, 0).await;
    // One organisation's agents, spawned at 10, 20 and 30 ms; their calls arrive newest first,
    // then a call that belongs to no task (it counts from now, so it is the youngest).
    let arrivals = [
        ("new", Some(30)),
        ("old", Some(10)),
        ("mid", Some(20)),
        ("plain", None),
    ];
    for (n, (label, at)) in arrivals.iter().enumerate() {
        let opts = RouteOpts {
            client: Some("acme".into()),
            task: at.map(kernos_llm::task_key),
            ..RouteOpts::default()
        };
        hs.push(call_with(&r, label, opts));
        until(&r, 1, n + 1).await;
    }
    join(hs).await;
    assert_eq!(served(&s), ["old", "mid", "new", "plain"]);
}
