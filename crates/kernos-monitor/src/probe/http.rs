//! HTTP health: does a URL answer with an expected status, quickly enough.
//!
//! An unreachable server is a reading (value 1, "down"), not a probe error: being down is what
//! the monitor watches for.

use std::time::{Duration, Instant};

use crate::error::ProbeError;
use crate::watch::Reading;

/// The HTTP client probes share. reqwest is built without a default crypto provider (see the
/// workspace Cargo.toml), so this installs ring first; failing means one is installed already.
pub fn client() -> Result<reqwest::Client, ProbeError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .user_agent(concat!("kernos-monitor/", env!("CARGO_PKG_VERSION")))
        // A health check follows no redirects: a 302 to a login page is an answer in itself.
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| ProbeError::network("http client", e))
}

/// Whether `status` is healthy: one of `expect`, or any 2xx/3xx when `expect` is empty.
fn healthy_status(status: u16, expect: &[u16]) -> bool {
    if expect.is_empty() {
        (200..400).contains(&status)
    } else {
        expect.contains(&status)
    }
}

/// Value 1 when `url` is unhealthy (no answer within `timeout`, an unexpected status, or an
/// answer slower than `max_latency`), else 0.
pub async fn http(
    client: &reqwest::Client,
    url: &str,
    expect: &[u16],
    timeout: Duration,
    max_latency: Option<Duration>,
) -> Reading {
    let start = Instant::now();
    let answer = client.get(url).timeout(timeout).send().await;
    let latency = start.elapsed();
    let ms = latency.as_millis();
    let (down, detail, status, error) = match answer {
        Ok(resp) => {
            let status = resp.status().as_u16();
            if !healthy_status(status, expect) {
                (
                    true,
                    format!("{url} answered {status} in {ms} ms"),
                    status,
                    String::new(),
                )
            } else if max_latency.is_some_and(|m| latency > m) {
                (
                    true,
                    format!("{url} answered {status} but took {ms} ms"),
                    status,
                    String::new(),
                )
            } else {
                (
                    false,
                    format!("{url} is healthy ({status}, {ms} ms)"),
                    status,
                    String::new(),
                )
            }
        }
        Err(e) => {
            let why = if e.is_timeout() {
                format!("no answer within {} ms", timeout.as_millis())
            } else {
                error_chain(&e)
            };
            (true, format!("{url} is down: {why}"), 0, why)
        }
    };
    Reading::new(if down { 1.0 } else { 0.0 }, detail)
        .var("url", url)
        .var("status", status)
        .var("latency_ms", ms)
        .var("error", error)
}

/// An error with its causes, so "connection refused" is not hidden behind "error sending request".
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn healthy_statuses() {
        assert!(healthy_status(204, &[]));
        assert!(healthy_status(301, &[]));
        assert!(!healthy_status(500, &[]));
        assert!(healthy_status(503, &[503]));
        assert!(!healthy_status(200, &[204]));
    }
}
