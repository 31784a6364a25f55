//! Kernos OS endpoints on an ordinary host: the reboot and power-off endpoints must refuse
//! and change nothing here (the tests run on a developer's or CI machine). The QEMU test
//! (crates/kernos-init/tests/qemu.rs) checks them under kernos-init.

use axum::http::StatusCode;
use kernos_server::Role;

use crate::{Auth, T};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reboot_and_poweroff_refuse_on_a_host_that_is_not_kernos_os() {
    let t = T::start();
    let owner = t.key("local", Role::Owner).await;
    for what in ["reboot", "poweroff"] {
        for auth in [Auth::Local, Auth::Key(&owner)] {
            let r = t
                .call("POST", &format!("/v1/system/{what}"), auth, None)
                .await;
            assert_eq!(r.status, StatusCode::CONFLICT, "{what}");
            let detail = r.json()["detail"].as_str().unwrap_or_default().to_owned();
            assert!(detail.contains("not running under kernos-init"), "{detail}");
        }
    }
    // Nothing was journaled as done, and the daemon still serves.
    let audit = t.call("GET", "/v1/audit", Auth::Key(&owner), None).await;
    assert_eq!(audit.status, StatusCode::OK);
    assert!(
        !String::from_utf8_lossy(&audit.body).contains("audit.system."),
        "a refused reboot must not be journaled as requested"
    );
    t.call("GET", "/readyz", Auth::None, None)
        .await
        .expect(StatusCode::OK);
    let s = t
        .call("GET", "/v1/system/status", Auth::Key(&owner), None)
        .await;
    assert_eq!(s.status, StatusCode::OK);
    let s = s.json();
    assert_eq!(s["under_init"], false);
    assert!(s["boot"].is_null() && s["pid1_rss_kb"].is_null(), "{s}");
}
