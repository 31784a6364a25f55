//! Webhook notifications: a JSON body, signed with HMAC-SHA256, retried with backoff.
//!
//! Each request carries
//!
//! - `X-Kernos-Timestamp`: seconds since the Unix epoch when this attempt was sent;
//! - `X-Kernos-Signature: sha256=<hex>`: HMAC-SHA256, keyed with the shared secret, of
//!   `<timestamp>.<body>` — the timestamp is signed too, so a captured request cannot be
//!   replayed later: a receiver refuses timestamps outside a few minutes ([`verify`]);
//! - `X-Kernos-Delivery`: one id for all attempts of a notification, so a receiver that got
//!   an attempt whose answer was lost can drop the repeat.
//!
//! Server errors (5xx), timeouts and connection failures are retried with exponential backoff
//! and jitter; a 4xx is the receiver saying no (bad signature, unknown hook) and is never
//! retried.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::error::WebhookError;

/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "x-kernos-signature";
/// The header carrying the signed timestamp.
pub const TIMESTAMP_HEADER: &str = "x-kernos-timestamp";
/// The header carrying the delivery id.
pub const DELIVERY_HEADER: &str = "x-kernos-delivery";
/// How far a timestamp may be from a receiver's clock before [`verify`] refuses it.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);

type HmacSha256 = Hmac<Sha256>;

/// Where and how to deliver notifications.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// The receiver's URL.
    pub url: String,
    /// The shared secret the signature is keyed with.
    pub secret: String,
    /// Attempts in all, the first included.
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
    /// The wait before the first retry, in milliseconds; it doubles per retry.
    #[serde(default = "default_backoff_ms")]
    pub backoff_ms: u64,
    /// The longest wait between retries, in milliseconds.
    #[serde(default = "default_max_backoff_ms")]
    pub max_backoff_ms: u64,
    /// How long one attempt may take, in milliseconds.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

fn default_attempts() -> u32 {
    5
}
fn default_backoff_ms() -> u64 {
    500
}
fn default_max_backoff_ms() -> u64 {
    60_000
}
fn default_timeout_ms() -> u64 {
    10_000
}

impl WebhookConfig {
    /// A hook to `url` with `secret` and the default retry schedule.
    pub fn new(url: impl Into<String>, secret: impl Into<String>) -> Self {
        WebhookConfig {
            url: url.into(),
            secret: secret.into(),
            max_attempts: default_attempts(),
            backoff_ms: default_backoff_ms(),
            max_backoff_ms: default_max_backoff_ms(),
            timeout_ms: default_timeout_ms(),
        }
    }
}

/// A notification as sent: what happened, when, and its data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// What happened: `monitor.fired`, `monitor.cleared`, `approval.waiting`, …
    pub event: String,
    /// When, in milliseconds since the Unix epoch.
    pub at_ms: i64,
    /// The event's data (a `Fired`, a `Cleared`, an approval…).
    pub data: serde_json::Value,
}

impl Notification {
    /// A notification of `event` now.
    pub fn new(event: impl Into<String>, data: serde_json::Value) -> Self {
        Notification {
            event: event.into(),
            at_ms: kernos_core::time::now_ms(),
            data,
        }
    }
}

/// A delivered notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    /// The receiver's status.
    pub status: u16,
    /// Attempts it took.
    pub attempts: u32,
    /// The delivery id sent.
    pub delivery: String,
}

/// `sha256=<hex>` of HMAC-SHA256 over `<timestamp>.<body>`.
pub fn sign(secret: &[u8], timestamp: u64, body: &[u8]) -> String {
    let tag = mac(secret, timestamp, body).finalize().into_bytes();
    format!("sha256={}", kernos_core::hex::encode(&tag))
}

fn mac(secret: &[u8], timestamp: u64, body: &[u8]) -> HmacSha256 {
    let mut m = match <HmacSha256 as Mac>::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC takes a key of any length"),
    };
    m.update(timestamp.to_string().as_bytes());
    m.update(b".");
    m.update(body);
    m
}

/// What a receiver checks: the signature matches (compared in constant time) and the
/// timestamp is within `tolerance` of `now`.
pub fn verify(
    secret: &[u8],
    timestamp: &str,
    body: &[u8],
    signature: &str,
    now: SystemTime,
    tolerance: Duration,
) -> bool {
    let Ok(ts) = timestamp.trim().parse::<u64>() else {
        return false;
    };
    let now_s = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    if now_s.abs_diff(ts) > tolerance.as_secs() {
        return false;
    }
    let Some(hex) = signature.trim().strip_prefix("sha256=") else {
        return false;
    };
    let Some(sig) = kernos_core::hex::decode32(hex) else {
        return false;
    };
    mac(secret, ts, body).verify_slice(&sig).is_ok()
}

/// Sends notifications to one webhook.
#[derive(Debug, Clone)]
pub struct Notifier {
    config: WebhookConfig,
    client: reqwest::Client,
}

/// How one attempt ended.
enum Attempt {
    Done(u16),
    Refused(u16),
    Retry(String),
}

impl Notifier {
    /// A notifier for `config`.
    pub fn new(config: WebhookConfig) -> Result<Self, WebhookError> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .user_agent(concat!("kernos-monitor/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| WebhookError::Client(e.to_string()))?;
        Ok(Notifier { config, client })
    }

    /// Delivers `notification`, retrying server errors and timeouts.
    pub async fn send(&self, notification: &Notification) -> Result<Delivered, WebhookError> {
        let body = serde_json::to_vec(notification)
            .map_err(|e| WebhookError::Client(format!("cannot serialise: {e}")))?;
        let delivery = kernos_core::RawId::generate().to_string();
        let attempts = self.config.max_attempts.max(1);
        let mut last = String::new();
        for attempt in 1..=attempts {
            match self.attempt(&body, &delivery).await {
                Attempt::Done(status) => {
                    return Ok(Delivered {
                        status,
                        attempts: attempt,
                        delivery,
                    });
                }
                Attempt::Refused(status) => {
                    return Err(WebhookError::Refused {
                        url: self.config.url.clone(),
                        status,
                    });
                }
                Attempt::Retry(why) => last = why,
            }
            if attempt < attempts {
                tokio::time::sleep(self.backoff(attempt)).await;
            }
        }
        Err(WebhookError::Exhausted {
            url: self.config.url.clone(),
            attempts,
            last,
        })
    }

    async fn attempt(&self, body: &[u8], delivery: &str) -> Attempt {
        let ts = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let sent = self
            .client
            .post(&self.config.url)
            .timeout(Duration::from_millis(self.config.timeout_ms))
            .header("content-type", "application/json")
            .header(TIMESTAMP_HEADER, ts.to_string())
            .header(
                SIGNATURE_HEADER,
                sign(self.config.secret.as_bytes(), ts, body),
            )
            .header(DELIVERY_HEADER, delivery)
            .body(body.to_vec())
            .send()
            .await;
        match sent {
            Ok(r) if r.status().is_success() => Attempt::Done(r.status().as_u16()),
            Ok(r) if r.status().is_client_error() => Attempt::Refused(r.status().as_u16()),
            Ok(r) => Attempt::Retry(format!("status {}", r.status().as_u16())),
            Err(e) if e.is_timeout() => {
                Attempt::Retry(format!("no answer within {} ms", self.config.timeout_ms))
            }
            Err(e) => Attempt::Retry(e.to_string()),
        }
    }

    /// The wait after failed attempt `n` (1-based): `backoff · 2^(n-1)`, capped, then a random
    /// point in its upper half, so many notifiers failing together do not retry in step.
    fn backoff(&self, n: u32) -> Duration {
        let base = self
            .config
            .backoff_ms
            .saturating_mul(1u64 << (n - 1).min(30))
            .min(self.config.max_backoff_ms);
        let half = base / 2;
        let jitter = if half == 0 {
            0
        } else {
            getrandom::u64().unwrap_or(0) % (half + 1)
        };
        Duration::from_millis(half + jitter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_and_any_change_breaks_it() {
        let now = SystemTime::now();
        let ts = now.duration_since(UNIX_EPOCH).unwrap().as_secs();
        let body = br#"{"event":"monitor.fired"}"#;
        let sig = sign(b"s3cret", ts, body);
        assert!(sig.starts_with("sha256=") && sig.len() == 7 + 64);
        let t = ts.to_string();
        assert!(verify(b"s3cret", &t, body, &sig, now, DEFAULT_TOLERANCE));
        assert!(!verify(b"other", &t, body, &sig, now, DEFAULT_TOLERANCE));
        assert!(!verify(b"s3cret", &t, b"{}", &sig, now, DEFAULT_TOLERANCE));
        assert!(!verify(
            b"s3cret",
            &(ts + 1).to_string(),
            body,
            &sig,
            now,
            DEFAULT_TOLERANCE
        ));
    }

    #[test]
    fn an_old_request_is_refused_even_with_a_good_signature() {
        let now = SystemTime::now();
        let old = now.duration_since(UNIX_EPOCH).unwrap().as_secs() - 600;
        let sig = sign(b"k", old, b"x");
        assert!(!verify(
            b"k",
            &old.to_string(),
            b"x",
            &sig,
            now,
            DEFAULT_TOLERANCE
        ));
        assert!(verify(
            b"k",
            &old.to_string(),
            b"x",
            &sig,
            now,
            Duration::from_secs(700)
        ));
    }

    #[test]
    fn backoff_doubles_within_jitter_and_is_capped() {
        let mut c = WebhookConfig::new("http://127.0.0.1:9/", "k");
        c.backoff_ms = 100;
        c.max_backoff_ms = 1000;
        let n = Notifier::new(c).unwrap();
        for _ in 0..50 {
            let b1 = n.backoff(1).as_millis();
            let b3 = n.backoff(3).as_millis();
            let b9 = n.backoff(9).as_millis();
            assert!((50..=100).contains(&b1), "{b1}");
            assert!((200..=400).contains(&b3), "{b3}");
            assert!((500..=1000).contains(&b9), "{b9}");
        }
    }
}
