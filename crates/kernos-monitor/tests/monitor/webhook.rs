//! Webhook delivery against a loopback receiver that checks signatures and fails on purpose.

use std::time::{Duration, SystemTime};

use kernos_monitor::webhook::{
    DEFAULT_TOLERANCE, DELIVERY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, verify,
};
use kernos_monitor::{Notification, Notifier, WebhookConfig, WebhookError};

use crate::support::{HttpServer, Reply};

const SECRET: &str = "hook-secret";

fn notifier(url: String, attempts: u32) -> Notifier {
    let mut c = WebhookConfig::new(url, SECRET);
    c.max_attempts = attempts;
    c.backoff_ms = 20;
    c.max_backoff_ms = 100;
    c.timeout_ms = 500;
    Notifier::new(c).unwrap()
}

fn notification() -> Notification {
    Notification::new(
        "monitor.fired",
        serde_json::json!({"monitor": "scratch", "value": 95.0}),
    )
}

/// Whether the receiver would accept `req`: a fresh timestamp and a valid signature.
fn signed(req: &crate::support::Request) -> bool {
    verify(
        SECRET.as_bytes(),
        req.header(TIMESTAMP_HEADER).unwrap_or(""),
        &req.body,
        req.header(SIGNATURE_HEADER).unwrap_or(""),
        SystemTime::now(),
        DEFAULT_TOLERANCE,
    )
}

#[tokio::test]
async fn server_errors_are_retried_until_a_signed_delivery_succeeds() {
    let server = HttpServer::start(|n, req| {
        if !signed(req) {
            Reply::status(401)
        } else if n < 2 {
            Reply::status(503)
        } else {
            Reply::status(200)
        }
    });
    let sent = notification();
    let d = notifier(server.url("/hook"), 5).send(&sent).await.unwrap();
    assert_eq!((d.status, d.attempts), (200, 3));
    let reqs = server.requests();
    assert_eq!(reqs.len(), 3);
    for r in &reqs {
        assert_eq!(r.method, "POST");
        assert!(signed(r), "every attempt is signed");
        assert_eq!(r.header(DELIVERY_HEADER), Some(d.delivery.as_str()));
        assert_eq!(r.header("content-type"), Some("application/json"));
    }
    let got: Notification = serde_json::from_slice(&reqs[2].body).unwrap();
    assert_eq!(got, sent);
}

#[tokio::test]
async fn a_client_error_is_never_retried() {
    let server = HttpServer::start(|_, _| Reply::status(401));
    let e = notifier(server.url("/hook"), 5)
        .send(&notification())
        .await
        .unwrap_err();
    assert!(
        matches!(e, WebhookError::Refused { status: 401, .. }),
        "{e}"
    );
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn a_timeout_is_retried() {
    let server = HttpServer::start(|n, _| Reply {
        status: 200,
        delay: if n == 0 {
            Duration::from_millis(900)
        } else {
            Duration::ZERO
        },
    });
    let d = notifier(server.url("/hook"), 3)
        .send(&notification())
        .await
        .unwrap();
    assert_eq!(d.attempts, 2);
}

#[tokio::test]
async fn it_gives_up_after_the_last_attempt_saying_why() {
    let server = HttpServer::start(|_, _| Reply::status(500));
    let e = notifier(server.url("/hook"), 3)
        .send(&notification())
        .await
        .unwrap_err();
    match e {
        WebhookError::Exhausted { attempts, last, .. } => {
            assert_eq!(attempts, 3);
            assert!(last.contains("500"), "{last}");
        }
        other => panic!("{other}"),
    }
    assert_eq!(server.requests().len(), 3);
}

#[test]
fn a_replayed_request_fails_verification() {
    let body = br#"{"event":"monitor.fired"}"#;
    let old = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 3600;
    let sig = kernos_monitor::webhook::sign(SECRET.as_bytes(), old, body);
    assert!(!verify(
        SECRET.as_bytes(),
        &old.to_string(),
        body,
        &sig,
        SystemTime::now(),
        DEFAULT_TOLERANCE
    ));
}
