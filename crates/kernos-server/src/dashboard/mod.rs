//! The web dashboard: one page of HTML, JavaScript and CSS embedded in the binary, served at
//! `/` by the daemon itself, working only through the public API and event stream (signed in
//! with a browser session, see `sessions`). Nothing is fetched from elsewhere: the Content-
//! Security-Policy allows this origin only, no inline script or style, no framing.
//!
//! The assets are plain files under `assets/` (no build step, so what is reviewed is what
//! runs); each is gzip-compressed once, on first request, and sent compressed to browsers that
//! accept it.

use std::sync::OnceLock;

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::St;

/// One embedded file.
struct Asset {
    name: &'static str,
    mime: &'static str,
    body: &'static [u8],
    gzip: OnceLock<Vec<u8>>,
    etag: OnceLock<HeaderValue>,
}

/// Declares an embedded asset from `assets/NAME`.
macro_rules! asset {
    ($name:literal, $mime:literal) => {
        Asset {
            name: $name,
            mime: $mime,
            body: include_bytes!(concat!("assets/", $name)),
            gzip: OnceLock::new(),
            etag: OnceLock::new(),
        }
    };
}

/// The page first, then every file it loads: the views are ES modules, one job each.
static ASSETS: [Asset; 13] = [
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("app.css", "text/css; charset=utf-8"),
    asset!("app.js", "text/javascript; charset=utf-8"),
    asset!("core.js", "text/javascript; charset=utf-8"),
    asset!("stream.js", "text/javascript; charset=utf-8"),
    asset!("activity.js", "text/javascript; charset=utf-8"),
    asset!("ask.js", "text/javascript; charset=utf-8"),
    asset!("inbox.js", "text/javascript; charset=utf-8"),
    asset!("history.js", "text/javascript; charset=utf-8"),
    asset!("journal.js", "text/javascript; charset=utf-8"),
    asset!("ops.js", "text/javascript; charset=utf-8"),
    asset!("usage.js", "text/javascript; charset=utf-8"),
    asset!("keys.js", "text/javascript; charset=utf-8"),
];

/// This origin only; no inline code, no plugins, no framing, no form posts elsewhere.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The dashboard's routes: the page and its assets, public (the page signs in through the API).
pub(crate) fn router() -> Router<St> {
    Router::new()
        .route("/", get(page))
        .route("/assets/{name}", get(asset))
}

async fn page(headers: HeaderMap) -> Response {
    serve(&ASSETS[0], &headers)
}

async fn asset(Path(name): Path<String>, headers: HeaderMap) -> Response {
    match ASSETS[1..].iter().find(|a| a.name == name) {
        Some(a) => serve(a, &headers),
        None => (StatusCode::NOT_FOUND, "no such asset").into_response(),
    }
}

fn serve(a: &Asset, req: &HeaderMap) -> Response {
    let etag = a.etag.get_or_init(|| etag_of(a.body));
    // Revalidation is cheap: the same binary answers 304 and the browser keeps its copy.
    if req
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == etag.as_bytes())
    {
        let mut resp = StatusCode::NOT_MODIFIED.into_response();
        resp.headers_mut().insert(header::ETAG, etag.clone());
        return resp;
    }
    let gzip_ok = req
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|e| e.trim().starts_with("gzip")));
    let (body, encoded) = match gzip_ok.then(|| a.gzip.get_or_init(|| gzip(a.body))) {
        Some(z) => (z.clone(), true),
        None => (a.body.to_vec(), false),
    };
    let mut resp = body.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(a.mime));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // Small and versioned with the binary: always revalidate, never serve a stale page.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    h.insert(header::ETAG, etag.clone());
    if encoded {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    resp
}

/// A weak validator from the content's hash: weak because the same content goes out gzip-
/// encoded or not, and a 304 is right for either.
fn etag_of(body: &[u8]) -> HeaderValue {
    use sha2::Digest;
    let hash = sha2::Sha256::digest(body);
    let hex: String = hash[..12].iter().map(|b| format!("{b:02x}")).collect();
    HeaderValue::from_str(&format!("W/\"{hex}\""))
        .unwrap_or_else(|_| HeaderValue::from_static("W/\"0\""))
}

fn gzip(body: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    // Writing to a Vec cannot fail.
    if z.write_all(body).is_err() {
        return body.to_vec();
    }
    z.finish().unwrap_or_else(|_| body.to_vec())
}

/// Bytes of the first load (page, script, style), gzip-compressed as a browser receives them.
pub fn first_load_bytes() -> usize {
    ASSETS
        .iter()
        .map(|a| a.gzip.get_or_init(|| gzip(a.body)).len())
        .sum()
}
