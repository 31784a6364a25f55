//! `net.http`: one HTTP request, made in this process with reqwest's blocking client over
//! rustls (the same HTTP and TLS stack the LLM and server crates use).
//!
//! GET and HEAD are reads. Any other method may change remote state: the dry run lists it as a
//! [`Change::Request`], its effects include a write on the host, and it cannot be undone.
//! Redirects are followed only within the host the effects name, so the request never reaches
//! a peer policy did not see; a redirect elsewhere is reported instead of followed.

use std::io::Read;
use std::time::{Duration, Instant};

use kernos_core::{ColumnKind, Effect, EffectKind, Reversibility};
use reqwest::Url;
use serde_json::{Value, json};

use super::host_effects;
use crate::args::NetHttp;
use crate::output::{Change, Output, human_bytes, row};
use crate::registry::{Action, Meta};
use crate::undo::Recorder;
use crate::{Ctx, Result, ToolError};

/// How much of the body is read and shown.
const PREVIEW_BYTES: usize = 8 * 1024;
/// The longest timeout accepted.
const MAX_TIMEOUT: u64 = 300;
/// Response headers worth showing.
const SHOWN_HEADERS: &[&str] = &[
    "content-type",
    "content-length",
    "location",
    "server",
    "date",
    "last-modified",
    "etag",
    "cache-control",
    "content-encoding",
    "www-authenticate",
    "retry-after",
];

/// A checked request: method, URL, whether it is a read.
struct Request {
    method: reqwest::Method,
    url: Url,
    read: bool,
}

fn is_loopback_or_ip(host: &str) -> bool {
    host == "localhost"
        || host.ends_with(".localhost")
        || host.parse::<std::net::IpAddr>().is_ok()
        || host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .is_some_and(|h| h.parse::<std::net::Ipv6Addr>().is_ok())
}

fn check(args: &NetHttp) -> Result<Request> {
    let raw = args.url.trim();
    // Without a scheme: https for names on the internet, http for local and literal
    // addresses, which rarely have certificates.
    let with_scheme = if raw.contains("://") {
        raw.to_owned()
    } else {
        let host_part = raw.split(['/', ':', '?']).next().unwrap_or("");
        if is_loopback_or_ip(host_part) || raw.starts_with('[') {
            format!("http://{raw}")
        } else {
            format!("https://{raw}")
        }
    };
    let url = Url::parse(&with_scheme).map_err(|e| {
        ToolError::InvalidArgs(format!(
            "{:?} is not a valid URL ({e}); write it like https://example.org/path",
            args.url
        ))
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ToolError::InvalidArgs(format!(
            "net.http speaks http and https, not {}:",
            url.scheme()
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(ToolError::InvalidArgs(format!(
            "{:?} names no host; write it like https://example.org/path",
            args.url
        )));
    }
    let m = args.method.trim().to_ascii_uppercase();
    let method = reqwest::Method::from_bytes(m.as_bytes()).map_err(|_| {
        ToolError::InvalidArgs(format!(
            "{:?} is not an HTTP method; use GET, HEAD, POST, PUT, PATCH or DELETE",
            args.method
        ))
    })?;
    if args.timeout == 0 || args.timeout > MAX_TIMEOUT {
        return Err(ToolError::InvalidArgs(format!(
            "timeout must be between 1 and {MAX_TIMEOUT} seconds"
        )));
    }
    let read = method == reqwest::Method::GET || method == reqwest::Method::HEAD;
    Ok(Request { method, url, read })
}

fn host_of(url: &Url) -> String {
    url.host_str()
        .unwrap_or("")
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned()
}

/// The causes of an error, outermost first, without repeats.
fn chain(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(s) = cur {
        let t = s.to_string();
        if !parts.iter().any(|p| p.contains(&t)) {
            parts.push(t);
        }
        cur = s.source();
    }
    parts.join(": ")
}

fn looks_textual(content_type: &str, body: &[u8]) -> bool {
    let ct = content_type.to_ascii_lowercase();
    let text_type = ct.starts_with("text/")
        || [
            "json",
            "xml",
            "javascript",
            "x-www-form-urlencoded",
            "yaml",
            "csv",
        ]
        .iter()
        .any(|k| ct.contains(k));
    let printable = !body.contains(&0)
        && (std::str::from_utf8(body).is_ok()
            // A cut may split a multi-byte character at the very end.
            || std::str::from_utf8(&body[..body.len().saturating_sub(3)]).is_ok());
    printable && (text_type || ct.is_empty() || body.len() < 4096)
}

/// `net.http`.
#[derive(Debug, Clone, Copy)]
pub struct Http;

impl Action for Http {
    type Args = NetHttp;

    fn meta(&self) -> Meta {
        Meta {
            tool: "net",
            name: "http",
            summary: "Make an HTTP request and show status, time, headers and the start of the body",
            effects: &[EffectKind::Read, EffectKind::Network, EffectKind::Write],
            reversibility: Reversibility::Irreversible,
            output: &[
                ("status", ColumnKind::Int),
                ("reason", ColumnKind::Text),
                ("url", ColumnKind::Text),
                ("time", ColumnKind::Duration),
                ("content_type", ColumnKind::Text),
                ("bytes", ColumnKind::Bytes),
                ("redirect", ColumnKind::Text),
            ],
        }
    }

    fn effects(&self, args: &NetHttp, _: &Ctx<'_>) -> Result<Vec<Effect>> {
        let r = check(args)?;
        Ok(host_effects(
            &host_of(&r.url),
            r.url.port_or_known_default(),
            !r.read,
        ))
    }

    fn dry_run(&self, args: &NetHttp, _: &Ctx<'_>) -> Result<Vec<Change>> {
        let r = check(args)?;
        Ok(if r.read {
            Vec::new()
        } else {
            vec![Change::Request {
                method: r.method.to_string(),
                url: r.url.to_string(),
            }]
        })
    }

    fn execute(&self, args: &NetHttp, ctx: &Ctx<'_>, _: &mut Recorder<'_>) -> Result<Output> {
        let r = check(args)?;
        ctx.check_cancel()?;
        let origin = (host_of(&r.url), r.url.port_or_known_default());
        let same = origin.clone();
        // reqwest is built without a default crypto provider (see the workspace Cargo.toml);
        // install ring once per process. Failing means one is already installed: fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(args.timeout))
            .user_agent(concat!("kernos/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::custom(move |attempt| {
                let u = attempt.url();
                if attempt.previous().len() >= 10 {
                    attempt.error("more than 10 redirects")
                } else if (host_of(u), u.port_or_known_default()) == same {
                    attempt.follow()
                } else {
                    attempt.stop()
                }
            }))
            .build()
            .map_err(|e| {
                ToolError::Failed(format!("cannot set up the HTTP client: {}", chain(&e)))
            })?;
        let mut req = client.request(r.method.clone(), r.url.clone());
        if let Some(b) = &args.body {
            req = req.body(b.clone());
        }
        let start = Instant::now();
        let resp = req.send().map_err(|e| {
            let target = format!("{}:{}", origin.0, origin.1.unwrap_or(0));
            if e.is_timeout() {
                ToolError::Failed(format!(
                    "no answer from {target} within {} s; the host may be down or filtered, or \
                     give a longer timeout",
                    args.timeout
                ))
            } else if e.is_connect() {
                ToolError::Failed(format!(
                    "cannot connect to {target}: {}; check the URL, and whether the server runs \
                     and this machine is online",
                    chain(&e)
                ))
            } else {
                ToolError::Failed(format!("request to {} failed: {}", r.url, chain(&e)))
            }
        })?;
        let status = resp.status();
        let final_url = resp.url().to_string();
        let headers = resp.headers().clone();
        let header = |k: &str| {
            headers
                .get(k)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let content_type = header("content-type").unwrap_or_default();
        let mut body = Vec::new();
        let mut more = false;
        if r.method != reqwest::Method::HEAD {
            let mut limited = resp.take(PREVIEW_BYTES as u64 + 1);
            limited
                .read_to_end(&mut body)
                .map_err(|e| ToolError::Failed(format!("reading the response failed: {e}")))?;
            more = body.len() > PREVIEW_BYTES;
            body.truncate(PREVIEW_BYTES);
        }
        let elapsed = start.elapsed();
        let length = header("content-length").and_then(|v| v.parse::<u64>().ok());
        let bytes = length.unwrap_or(body.len() as u64);
        let redirect = status
            .is_redirection()
            .then(|| header("location"))
            .flatten();
        let mut text = String::new();
        text.push_str(&format!(
            "HTTP {} {}\n",
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        ));
        for k in SHOWN_HEADERS {
            for v in headers.get_all(*k) {
                text.push_str(&format!("{k}: {}\n", v.to_str().unwrap_or("(binary)")));
            }
        }
        if !body.is_empty() {
            text.push('\n');
            if looks_textual(&content_type, &body) {
                text.push_str(&String::from_utf8_lossy(&body));
                if more {
                    text.push_str(&format!(
                        "\n… (first {} shown)",
                        human_bytes(PREVIEW_BYTES as u64)
                    ));
                }
            } else {
                text.push_str(&format!("(binary body, {}, not shown)", human_bytes(bytes)));
            }
        }
        let secs = (elapsed.as_secs_f64() * 1000.0).round() / 1000.0;
        let mut summary = format!(
            "{} {} → {} {} in {} ms, {}{}",
            r.method,
            r.url,
            status.as_u16(),
            status.canonical_reason().unwrap_or(""),
            elapsed.as_millis(),
            human_bytes(bytes),
            if content_type.is_empty() {
                String::new()
            } else {
                format!(" of {content_type}")
            }
        );
        if let Some(loc) = &redirect {
            summary.push_str(&format!(
                "; redirects to {loc} (another host: not followed, ask for that URL to go there)"
            ));
        }
        let nullable = |v: Option<String>| v.map(|s| json!(s)).unwrap_or(Value::Null);
        let mut out = Output::table(
            Vec::new(),
            vec![row([
                ("status", json!(status.as_u16())),
                ("reason", json!(status.canonical_reason().unwrap_or(""))),
                ("url", json!(final_url)),
                ("time", json!(secs)),
                (
                    "content_type",
                    nullable((!content_type.is_empty()).then_some(content_type.clone())),
                ),
                ("bytes", json!(bytes)),
                ("redirect", nullable(redirect)),
            ])],
        )
        .with_summary(summary);
        out.text = Some(text);
        out.truncated = more;
        if !r.read {
            out.changes = vec![Change::Request {
                method: r.method.to_string(),
                url: r.url.to_string(),
            }];
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(url: &str, method: &str) -> NetHttp {
        NetHttp {
            url: url.into(),
            method: method.into(),
            body: None,
            timeout: 10,
        }
    }

    #[test]
    fn urls_and_methods() {
        let r = check(&args("example.org/x", "get")).unwrap();
        assert_eq!(r.url.as_str(), "https://example.org/x");
        assert!(r.read);
        let r = check(&args("localhost:8080/health", "POST")).unwrap();
        assert_eq!(r.url.as_str(), "http://localhost:8080/health");
        assert!(!r.read);
        let r = check(&args("127.0.0.1:9", "HEAD")).unwrap();
        assert_eq!(r.url.as_str(), "http://127.0.0.1:9/");
        assert!(check(&args("ftp://example.org/", "GET")).is_err());
        assert!(check(&args("http://", "GET")).is_err());
        assert!(check(&args("http://example.org", "GE T")).is_err());
        let mut a = args("http://example.org", "GET");
        a.timeout = 0;
        assert!(check(&a).is_err());
        assert_eq!(host_of(&Url::parse("http://[::1]:8/").unwrap()), "::1");
    }

    #[test]
    fn text_or_binary() {
        assert!(looks_textual("text/html; charset=utf-8", b"<p>hi</p>"));
        assert!(looks_textual("application/json", b"{}"));
        assert!(!looks_textual("image/png", b"\x89PNG\r\n\x1a\n\0\0"));
        assert!(looks_textual("", b"plain"));
    }
}
