//! The dashboard's page and assets: served by the daemon from the binary, locked down by the
//! Content-Security-Policy, compressed for browsers that accept it.

use axum::http::StatusCode;

use crate::{Auth, T};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_and_its_assets_come_from_the_binary_under_a_strict_policy() {
    let t = T::start();
    for (path, mime) in [
        ("/", "text/html"),
        ("/assets/app.js", "text/javascript"),
        ("/assets/app.css", "text/css"),
    ] {
        let r = t.call("GET", path, Auth::None, None).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert!(
            r.headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with(mime)
        );
        let csp = r.headers["content-security-policy"].to_str().unwrap();
        for rule in [
            "default-src 'none'",
            "script-src 'self'",
            "frame-ancestors 'none'",
        ] {
            assert!(csp.contains(rule), "{path}: {csp}");
        }
        assert!(
            !csp.contains("unsafe-inline") && !csp.contains("http"),
            "{csp}"
        );
        assert_eq!(r.headers["x-content-type-options"], "nosniff");
        let gz = t
            .call_with(
                "GET",
                path,
                Auth::None,
                None,
                &[("accept-encoding", "gzip, br")],
            )
            .await;
        assert_eq!(gz.headers["content-encoding"], "gzip", "{path}");
        assert!(gz.body.len() < r.body.len(), "{path} is smaller compressed");
    }
    // The page loads nothing from elsewhere and runs no inline script.
    let page = String::from_utf8(t.call("GET", "/", Auth::None, None).await.body).unwrap();
    assert!(!page.contains("http://") && !page.contains("https://"));
    assert!(
        !page.contains("<script>"),
        "inline script would be refused by the policy"
    );
    let r = t.call("GET", "/assets/nothing.js", Auth::None, None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // The first load stays far under the 150 KB budget.
    let bytes = kernos_server::dashboard::first_load_bytes();
    assert!(bytes < 150 * 1024, "{bytes}");
}

/// The files a document names: `/assets/NAME` in the page, `from "./NAME"` in a module.
fn referenced(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (open, close) in [("\"/assets/", '"'), ("from \"./", '"')] {
        let mut rest = text;
        while let Some(i) = rest.find(open) {
            rest = &rest[i + open.len()..];
            if let Some(j) = rest.find(close) {
                out.push(rest[..j].to_owned());
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_file_the_page_loads_is_served_and_a_reload_revalidates_with_304() {
    let t = T::start();
    let page = String::from_utf8(t.call("GET", "/", Auth::None, None).await.body).unwrap();
    let mut todo = referenced(&page);
    let mut seen = std::collections::BTreeSet::new();
    while let Some(name) = todo.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        let path = format!("/assets/{name}");
        let r = t.call("GET", &path, Auth::None, None).await;
        assert_eq!(
            r.status,
            StatusCode::OK,
            "{path}, named by the page, is served"
        );
        if name.ends_with(".js") {
            todo.extend(referenced(&String::from_utf8(r.body).unwrap()));
        }
        let etag = r.headers["etag"].to_str().unwrap().to_owned();
        let again = t
            .call_with("GET", &path, Auth::None, None, &[("if-none-match", &etag)])
            .await;
        assert_eq!(again.status, StatusCode::NOT_MODIFIED, "{path}");
        assert!(again.body.is_empty());
    }
    assert!(
        seen.len() >= 10,
        "the page, its style and every view module: {seen:?}"
    );
    // A stale validator gets the content.
    let r = t
        .call_with(
            "GET",
            "/assets/app.js",
            Auth::None,
            None,
            &[("if-none-match", "W/\"0000\"")],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
}
