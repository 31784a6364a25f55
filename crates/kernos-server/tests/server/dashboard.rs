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
