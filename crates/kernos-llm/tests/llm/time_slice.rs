//! Time slicing of streamed generations (`time_slice_tokens`) against the slot-modelling fake
//! server over loopback HTTP: a long streamed answer gives its only slot up to another
//! client's calls and is resumed by re-sending the request with the partial answer as a
//! trailing assistant message, which the server continues. The caller gets the same answer,
//! whole, in one stream. Assertions are on order, text and counts, never on speed.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use kernos_llm::testing::{FakeServer, SlotModel};
use kernos_llm::{ChatRequest, Message, RouteOpts, Router, StreamEvent};

use crate::{async_router, config, local};

/// Answer tokens of the long generation.
const LONG: u32 = 120;

fn server() -> FakeServer {
    FakeServer::with_slots(SlotModel {
        slots: 1,
        queue_limit: 1000,
        per_prompt_token: Duration::ZERO,
        per_output_token: Duration::from_millis(3),
        output_tokens: LONG,
    })
}

fn sliced_router(s: &FakeServer, slice: Option<u32>) -> Router {
    let mut p = local("local", &s.v1(), "m");
    p.slots = Some(1);
    p.time_slice_tokens = slice;
    async_router(config(vec![p]))
}

/// What the unsliced server says in full: `t0 t1 … t119 `.
fn whole_answer() -> String {
    (0..LONG).map(|k| format!("t{k} ")).collect()
}

fn opts(client: &str) -> RouteOpts {
    RouteOpts {
        client: Some(client.to_owned()),
        ..RouteOpts::default()
    }
}

/// Runs the long streamed call for client `long` while client `short` sends two short
/// unstreamed calls once the long one holds the slot; returns the long answer's text, what
/// its stream callback saw (`started` for each `Started`, then the deltas) and its usage.
async fn long_beside_short(r: &Router) -> (String, Vec<String>, u64) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let long = {
        let r = r.clone();
        let seen = seen.clone();
        tokio::spawn(async move {
            let req = ChatRequest {
                messages: vec![Message::user("long")],
                max_tokens: Some(LONG),
                stream: true,
                ..ChatRequest::default()
            };
            let mut sink = |e: StreamEvent<'_>| {
                let mut v = seen.lock().unwrap();
                match e {
                    StreamEvent::Started { .. } => v.push("started".to_owned()),
                    StreamEvent::Delta(d) => v.push(d.to_owned()),
                }
            };
            r.complete_with("", &req, &opts("long"), &mut sink).await
        })
    };
    for _ in 0..2000 {
        if seen.lock().unwrap().len() > 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    for i in 0..2 {
        let req = ChatRequest {
            messages: vec![Message::user(format!("short{i}"))],
            max_tokens: Some(4),
            ..ChatRequest::default()
        };
        r.complete("", &req, &opts("short")).await.unwrap();
    }
    let resp = long.await.unwrap().unwrap();
    let seen = seen.lock().unwrap().clone();
    (resp.text, seen, resp.usage.output_tokens)
}

#[tokio::test]
async fn a_long_stream_makes_way_for_another_client_and_resumes_where_it_stopped() {
    let s = server();
    let r = sliced_router(&s, Some(8));
    let (text, seen, output_tokens) = long_beside_short(&r).await;
    assert_eq!(text, whole_answer());
    assert_eq!(output_tokens, u64::from(LONG), "every slice's tokens, once");
    // One stream for the caller: started once, then deltas that add up to the answer.
    assert_eq!(seen[0], "started");
    assert!(!seen[1..].iter().any(|e| e == "started"), "{seen:?}");
    assert_eq!(seen[1..].concat(), whole_answer());

    let reqs = s.requests();
    let labels: Vec<String> = reqs.iter().map(|q| q.last_user()).collect();
    let first_short = labels.iter().position(|l| l == "short0").unwrap();
    let last_long = labels.iter().rposition(|l| l == "long").unwrap();
    assert!(
        first_short < last_long,
        "the short call ran while the long one was unfinished: {labels:?}"
    );
    // Each continuation carries the answer so far as a trailing assistant message.
    for q in reqs.iter().filter(|q| q.last_user() == "long").skip(1) {
        let texts = q.texts();
        let (role, prefix) = texts.last().unwrap();
        assert_eq!(role, "assistant");
        assert!(whole_answer().starts_with(prefix.as_str()), "{prefix:?}");
        assert!(!prefix.is_empty());
        let left = q.body["max_tokens"].as_u64().unwrap();
        let said = prefix.split_whitespace().count() as u64;
        assert_eq!(
            left,
            u64::from(LONG) - said,
            "the rest of the answer budget"
        );
    }
    let st = &r.scheduler()[0];
    assert!(st.preempted >= 1, "{st:?}");
    assert_eq!(
        st.preempted as usize,
        labels.iter().filter(|l| *l == "long").count() - 1
    );
}

#[tokio::test]
async fn without_a_time_slice_the_long_stream_keeps_its_slot() {
    let s = server();
    let r = sliced_router(&s, None);
    let (text, seen, _) = long_beside_short(&r).await;
    assert_eq!(text, whole_answer());
    assert_eq!(seen.iter().filter(|e| *e == "started").count(), 1);
    let labels: Vec<String> = s.requests().iter().map(|q| q.last_user()).collect();
    assert_eq!(labels, ["long", "short0", "short1"]);
    assert_eq!(r.scheduler()[0].preempted, 0);
}
