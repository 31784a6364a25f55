//! Retries, Retry-After, timeouts, cut-off streams, malformed bodies, circuit breakers, the
//! retry budget, fallback and the "everything failed" report.

use std::time::{Duration, Instant};

use kernos_llm::{BreakerState, LlmError, RouteOpts};

use crate::fixtures::*;
use crate::*;
use kernos_llm::testing::{FakeServer, Reply};

fn sse(v: &[String]) -> Reply {
    Reply::sse(&v.iter().map(String::as_str).collect::<Vec<_>>())
}

fn ok_server() -> FakeServer {
    FakeServer::always(Reply::json(openai_text("fallback answer")))
}

#[test]
fn rate_limit_waits_for_retry_after() {
    let s = FakeServer::start(vec![
        Reply::status_json(429, OPENAI_429).with_header("retry-after", "1"),
        Reply::json(openai_text("after the wait")),
    ]);
    let r = router(config(vec![openai("oai", &s.v1())]));
    let t = Instant::now();
    let resp = r
        .complete("fast", &text_req(false), &RouteOpts::default())
        .unwrap();
    let took = t.elapsed();
    assert_eq!(resp.text, "after the wait");
    assert!(took >= Duration::from_secs(1), "waited only {took:?}");
    assert!(took < Duration::from_secs(4), "waited {took:?}");
    let first = resp.attempts[0].error.as_deref().unwrap();
    assert!(
        first.contains("rate limited (HTTP 429, retry after 1 s)"),
        "{first}"
    );
}

#[test]
fn service_unavailable_honours_retry_after_ms() {
    // OpenAI's SDKs read `retry-after-ms` before `Retry-After`; so do we.
    let s = FakeServer::start(vec![
        Reply::status_json(503, OPENAI_500)
            .with_header("retry-after-ms", "700")
            .with_header("retry-after", "30"),
        Reply::json(openai_text("back")),
    ]);
    let r = router(config(vec![openai("oai", &s.v1())]));
    let t = Instant::now();
    let resp = r
        .complete("fast", &text_req(false), &RouteOpts::default())
        .unwrap();
    let took = t.elapsed();
    assert_eq!(resp.text, "back");
    assert!(took >= Duration::from_millis(700), "{took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    let first = resp.attempts[0].error.as_deref().unwrap();
    assert!(
        first.contains("server error (HTTP 503, retry after 1 s)"),
        "{first}"
    );
}

#[test]
fn retry_after_beyond_the_budget_moves_on_at_once() {
    let primary =
        FakeServer::always(Reply::status_json(429, OPENAI_429).with_header("retry-after", "120"));
    let secondary = ok_server();
    let mut cfg = config(vec![
        openai("primary", &primary.v1()),
        openai("secondary", &secondary.v1()),
    ]);
    cfg.retry.budget_ms = 5_000;
    let r = router(cfg);
    let t = Instant::now();
    let resp = r
        .complete("fast", &text_req(false), &RouteOpts::default())
        .unwrap();
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    assert_eq!(resp.provider, "secondary");
    assert_eq!(primary.count(), 1, "no pointless retry");
    assert!(
        resp.attempts[0]
            .error
            .as_deref()
            .unwrap()
            .contains("retry after 120 s")
    );
}

#[test]
fn server_errors_are_retried_then_the_secondary_answers() {
    let primary = FakeServer::always(Reply::status_json(500, OPENAI_500));
    let secondary = ok_server();
    let r = router(config(vec![
        openai("primary", &primary.v1()),
        openai("secondary", &secondary.v1()),
    ]));
    let resp = r
        .complete("fast", &text_req(false), &RouteOpts::default())
        .unwrap();
    assert_eq!(resp.provider, "secondary");
    assert_eq!(resp.text, "fallback answer");
    assert_eq!(primary.count(), 3, "max_attempts = 3");
    assert_eq!(resp.attempts.len(), 4);
    assert!(resp.attempts[..3].iter().all(|a| {
        a.error
            .as_deref()
            .unwrap()
            .contains("server error (HTTP 500)")
    }));
    assert!(
        (resp.total_cost_usd() - resp.cost_usd).abs() < 1e-15,
        "5xx answers cost nothing"
    );
}

#[test]
fn a_server_that_never_answers_times_out_then_falls_back() {
    let primary = FakeServer::always(Reply::Hang);
    let secondary = ok_server();
    let mut p = openai("primary", &primary.v1());
    p.timeout_ms = 300;
    let mut cfg = config(vec![p, openai("secondary", &secondary.v1())]);
    cfg.retry.max_attempts = 2;
    let r = router(cfg);
    let t = Instant::now();
    let resp = r
        .complete("fast", &text_req(false), &RouteOpts::default())
        .unwrap();
    let took = t.elapsed();
    assert_eq!(resp.provider, "secondary");
    assert!(took >= Duration::from_millis(600), "{took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    for a in &resp.attempts[..2] {
        let e = a.error.as_deref().unwrap();
        assert!(e.contains("no complete answer within 300 ms"), "{e}");
        assert!(a.latency_ms >= 300);
    }
}

#[test]
fn a_connection_lost_mid_stream_is_a_truncated_stream() {
    let mut pieces = openai_stream(&["Hel", "lo"]);
    pieces.truncate(2);
    let s = FakeServer::always(Reply::Stream {
        pieces,
        delay: Duration::ZERO,
        complete: false,
    });
    let mut cfg = config(vec![openai("oai", &s.v1())]);
    cfg.retry.max_attempts = 2;
    let r = router(cfg);
    let (res, seen) = complete_collecting(&r, &text_req(true));
    let e = res.unwrap_err();
    let LlmError::AllFailed { failures, .. } = &e else {
        panic!("{e}")
    };
    assert!(
        matches!(&failures[0].error, LlmError::TruncatedStream { .. }),
        "{e}"
    );
    assert!(e.to_string().contains("cut off before it finished"), "{e}");
    assert_eq!(s.count(), 2, "cut-off streams are retried");
    assert_eq!(seen.iter().filter(|e| e.starts_with("started:")).count(), 2);
}

#[test]
fn a_stream_closed_without_its_end_marker_is_truncated_for_both_apis() {
    let mut oa = openai_stream(&["partial"]);
    oa.truncate(2); // no finish chunk, no [DONE], but a well-formed HTTP body
    let mut an = anthropic_stream(&["partial"]);
    an.truncate(4); // stops after a delta, no message_delta / message_stop
    let so = FakeServer::always(sse(&oa));
    let sa = FakeServer::always(sse(&an));
    let mut cfg = config(vec![
        openai("oai", &so.v1()),
        anthropic("claude", &sa.root()),
    ]);
    cfg.retry.max_attempts = 1;
    let r = router(cfg);
    let e = r
        .complete("fast", &text_req(true), &RouteOpts::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("oai (gpt-4.1-mini): the answer stream was cut off"),
        "{e}"
    );
    assert!(e.contains("neither a finish_reason nor [DONE]"), "{e}");
    assert!(
        e.contains("claude (claude-haiku-4-5): the answer stream was cut off"),
        "{e}"
    );
    assert!(e.contains("without message_stop"), "{e}");
}

#[test]
fn a_body_that_is_not_the_api_format_is_malformed_and_not_retried() {
    let s = FakeServer::always(Reply::Full {
        status: 200,
        headers: Vec::new(),
        content_type: "text/html".into(),
        body: b"<html><body>Welcome to nginx!</body></html>".to_vec(),
        delay: std::time::Duration::ZERO,
    });
    let r = router(config(vec![openai("oai", &s.v1())]));
    let e = r
        .complete("fast", &text_req(false), &RouteOpts::default())
        .unwrap_err();
    let LlmError::AllFailed { failures, .. } = &e else {
        panic!("{e}")
    };
    assert!(matches!(
        failures[0].error,
        LlmError::MalformedResponse { .. }
    ));
    assert!(e.to_string().contains("Welcome to nginx"), "{e}");
    assert_eq!(s.count(), 1);
}

#[test]
fn breaker_opens_half_opens_and_closes() {
    let primary = FakeServer::start(vec![
        Reply::status_json(500, OPENAI_500),
        Reply::status_json(500, OPENAI_500),
    ]);
    let secondary = ok_server();
    let mut cfg = config(vec![
        openai("primary", &primary.v1()),
        openai("secondary", &secondary.v1()),
    ]);
    cfg.retry.max_attempts = 1;
    cfg.breaker.failure_threshold = 2;
    cfg.breaker.cooldown_ms = 400;
    let r = router(cfg);
    let call = || {
        r.complete("fast", &text_req(false), &RouteOpts::default())
            .unwrap()
    };
    let state = || r.router().health()[0].breaker;

    assert_eq!(call().provider, "secondary");
    assert_eq!(state(), BreakerState::Closed);
    assert_eq!(call().provider, "secondary");
    assert_eq!(state(), BreakerState::Open, "two consecutive failures");

    // Open: the primary is skipped without a request.
    let skipped = call();
    assert_eq!(skipped.provider, "secondary");
    assert_eq!(primary.count(), 2);
    assert_eq!(skipped.attempts.len(), 1);

    // After the cool-down one probe goes through; it succeeds and closes the circuit.
    std::thread::sleep(Duration::from_millis(450));
    primary.push(Reply::json(openai_text("primary is back")));
    let probe = call();
    assert_eq!(probe.provider, "primary");
    assert_eq!(state(), BreakerState::Closed);
    assert_eq!(r.router().health()[0].consecutive_failures, 0);

    // Open again; a failed probe re-opens it for a full cool-down.
    primary.push(Reply::status_json(500, OPENAI_500));
    primary.push(Reply::status_json(500, OPENAI_500));
    call();
    call();
    assert_eq!(state(), BreakerState::Open);
    std::thread::sleep(Duration::from_millis(450));
    primary.push(Reply::status_json(503, OPENAI_500));
    assert_eq!(call().provider, "secondary", "the probe failed");
    assert_eq!(state(), BreakerState::Open);
    let before = primary.count();
    call();
    assert_eq!(primary.count(), before, "skipped again right after");
}

#[test]
fn an_open_circuit_is_named_in_the_failure_report() {
    let s = FakeServer::always(Reply::status_json(500, OPENAI_500));
    let mut cfg = config(vec![openai("oai", &s.v1())]);
    cfg.retry.max_attempts = 1;
    cfg.breaker.failure_threshold = 1;
    cfg.breaker.cooldown_ms = 60_000;
    let r = router(cfg);
    r.complete("fast", &text_req(false), &RouteOpts::default())
        .unwrap_err();
    let e = r
        .complete("fast", &text_req(false), &RouteOpts::default())
        .unwrap_err();
    let LlmError::AllFailed { failures, .. } = &e else {
        panic!("{e}")
    };
    assert!(matches!(
        failures[0].error,
        LlmError::CircuitOpen { failures: 1, .. }
    ));
    assert!(
        e.to_string()
            .contains("skipped, circuit open after 1 consecutive failures"),
        "{e}"
    );
    assert_eq!(s.count(), 1);
}

#[test]
fn the_retry_budget_bounds_tries_and_time() {
    let s = FakeServer::always(Reply::status_json(500, OPENAI_500));
    let mut cfg = config(vec![openai("oai", &s.v1())]);
    cfg.retry.max_attempts = 10;
    cfg.retry.base_delay_ms = 100;
    cfg.retry.max_delay_ms = 400;
    cfg.retry.budget_ms = 700;
    let r = router(cfg);
    let t = Instant::now();
    let e = r
        .complete("fast", &text_req(false), &RouteOpts::default())
        .unwrap_err();
    let took = t.elapsed();
    assert!(took < Duration::from_millis(1500), "{took:?}");
    let n = s.count();
    // Back-off of 50–100, 100–200, 200–400 ms fits two to four tries in 700 ms, never ten.
    assert!((2..=5).contains(&n), "{n} tries");
    let LlmError::AllFailed { failures, .. } = &e else {
        panic!("{e}")
    };
    match &failures[0].error {
        LlmError::BudgetExhausted { attempts, last } => {
            assert_eq!(*attempts as usize, n);
            // the last try hit a 500, or (on a slow machine) the budget's end mid-request
            assert!(
                matches!(
                    **last,
                    LlmError::Server { status: 500, .. } | LlmError::Timeout { .. }
                ),
                "{last}"
            );
        }
        other => panic!("{other}"),
    }
    assert!(e.to_string().contains("retry budget is spent"), "{e}");
}

#[test]
fn everything_failed_lists_each_provider_and_why() {
    let unauthorized = FakeServer::always(Reply::status_json(401, OPENAI_401));
    // A port with nothing listening: bind, note it, close.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let mut nokey = openai("nokey", "http://127.0.0.1:9/v1");
    nokey.api_key_env = Some("FAKE_UNSET_KEY".into());
    let mut cfg = config(vec![
        nokey,
        openai("badkey", &unauthorized.v1()),
        local("dead", &format!("http://{dead}/v1"), "m"),
    ]);
    cfg.retry.max_attempts = 2;
    let r = router(cfg);
    let e = r
        .complete("fast", &text_req(false), &RouteOpts::default())
        .unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.starts_with("every language-model provider failed for lane \"fast\":"),
        "{msg}"
    );
    for needle in [
        "- nokey (gpt-4.1-mini): the API key variable FAKE_UNSET_KEY is not set",
        "- badkey (gpt-4.1-mini): request rejected (HTTP 401)",
        "- dead (m): ",
        "cannot reach",
        "kernos models test NAME",
    ] {
        assert!(msg.contains(needle), "missing {needle:?} in:\n{msg}");
    }
    let LlmError::AllFailed {
        failures, attempts, ..
    } = &e
    else {
        panic!()
    };
    let kinds: Vec<&str> = failures.iter().map(|f| f.error.kind()).collect();
    assert_eq!(kinds, ["missing_api_key", "rejected", "connect"]);
    // the unreachable one was retried (connection errors are transient), the others not
    assert_eq!(attempts.len(), 1 + 1 + 2);
}
