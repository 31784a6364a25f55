//! Probes against the real machine and things the tests make: a temp dir's filesystem, a
//! made-up filesystem being filled, loopback HTTP and TLS servers, certificate files.

use std::cell::Cell;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use kernos_monitor::probe::fs::{FsStats, FsUsage, Statvfs, disk};
use kernos_monitor::probe::{http, tls};
use kernos_monitor::{MonitorSpec, ProbeError, Proposal, Transition, Watch, parse_monitors};

use crate::support::{HttpServer, Reply, fixture};

/// notAfter of `tests/fixtures/localhost-cert.pem` (see the fixtures' README).
const LOCALHOST_NOT_AFTER: &str = "2046-12-02T06:11:50Z";
/// notAfter of `tests/fixtures/expired-2020-03-01.pem`.
const EXPIRED_NOT_AFTER: &str = "2020-03-01T00:00:00Z";

fn days_until(rfc3339: &str, now: SystemTime) -> f64 {
    let at = humantime::parse_rfc3339(rfc3339).unwrap();
    let secs = at.duration_since(UNIX_EPOCH).unwrap().as_secs_f64()
        - now.duration_since(UNIX_EPOCH).unwrap().as_secs_f64();
    secs / 86_400.0
}

#[test]
fn the_disk_probe_reads_the_filesystem_of_a_temp_dir() {
    let d = tempfile::tempdir().unwrap();
    let r = disk(d.path(), &Statvfs).unwrap();
    assert!((0.0..=100.0).contains(&r.value), "{}", r.value);
    let size: u64 = r.vars["size_bytes"].parse().unwrap();
    let free: u64 = r.vars["free_bytes"].parse().unwrap();
    assert!(size > 0 && free <= size, "{size} {free}");
    assert_eq!(r.vars["mount"], d.path().display().to_string());
}

#[test]
fn a_missing_mount_is_a_probe_error_naming_it() {
    let e = disk(Path::new("/kernos/no/such/mount"), &Statvfs).unwrap_err();
    assert!(matches!(e, ProbeError::Io { .. }));
    assert!(e.to_string().contains("/kernos/no/such/mount"), "{e}");
}

/// A filesystem a test fills and empties: `used` blocks of 1000, none reserved.
struct FillableFs {
    used: Cell<u64>,
}

impl FsStats for FillableFs {
    fn stat(&self, _: &Path) -> Result<FsUsage, ProbeError> {
        let used = self.used.get();
        Ok(FsUsage {
            block_size: 4096,
            blocks: 1000,
            blocks_free: 1000 - used,
            blocks_avail: 1000 - used,
            files: 100,
            files_free: 50,
        })
    }
}

fn scratch_monitor() -> MonitorSpec {
    parse_monitors(
        r#"
[[monitor]]
name = "scratch"
kind = "disk"
mount = "/srv/scratch"
threshold = 90
clear_below = 70
cooldown = "0s"
[monitor.remediation]
lease = "ls_scratch"
max_risk = "medium"
plan = { steps = [{ tool = "fs", action = "delete", args = { path = "{mount}/fill", why = "{mount} was {used_pct}% full" } }] }
"#,
    )
    .unwrap()
    .remove(0)
}

#[test]
fn filling_a_filesystem_fires_once_with_a_cleanup_plan_and_emptying_it_clears() {
    let spec = scratch_monitor();
    let fs = FillableFs { used: Cell::new(0) };
    let mut watch = Watch::new();
    let t0 = Instant::now();
    let mut seen = Vec::new();
    // Filling to 95 %, hovering around the threshold, then the cleanup frees it.
    for (i, used) in [100, 500, 880, 950, 890, 930, 899, 910, 710, 200]
        .into_iter()
        .enumerate()
    {
        fs.used.set(used);
        let r = disk(Path::new("/srv/scratch"), &fs).unwrap();
        if let Some(t) = watch.observe(&spec, &r, t0 + Duration::from_secs(i as u64)) {
            seen.push((used, t));
        }
    }
    assert_eq!(seen.len(), 2, "{seen:?}");
    let (at, Transition::Fired(f)) = &seen[0] else {
        panic!("fires first: {seen:?}");
    };
    assert_eq!(*at, 950);
    let Some(Proposal::Plan {
        plan,
        lease,
        max_risk,
    }) = &f.remediation
    else {
        panic!("a cleanup plan: {f:?}");
    };
    assert_eq!(plan.steps[0].args["path"], "/srv/scratch/fill");
    assert_eq!(plan.steps[0].args["why"], "/srv/scratch was 95% full");
    assert_eq!(lease.as_deref(), Some("ls_scratch"));
    assert_eq!(*max_risk, Some(kernos_core::Risk::Medium));
    assert!(matches!(seen[1], (200, Transition::Cleared(_))), "{seen:?}");
}

#[tokio::test]
async fn http_health_is_healthy_on_2xx_and_down_otherwise() {
    let server = HttpServer::start(|_, req| match req.path.as_str() {
        "/ok" => Reply::status(200),
        "/slow" => Reply {
            status: 200,
            delay: Duration::from_millis(300),
        },
        _ => Reply::status(503),
    });
    let client = http::client().unwrap();
    let t = Duration::from_secs(5);
    let ok = http::http(&client, &server.url("/ok"), &[], t, None).await;
    assert_eq!(ok.value, 0.0, "{}", ok.detail);
    assert_eq!(ok.vars["status"], "200");
    let bad = http::http(&client, &server.url("/fail"), &[], t, None).await;
    assert_eq!(bad.value, 1.0);
    assert!(bad.detail.contains("503"), "{}", bad.detail);
    let expected = http::http(&client, &server.url("/fail"), &[503], t, None).await;
    assert_eq!(expected.value, 0.0, "503 was asked for");
    let slow = http::http(
        &client,
        &server.url("/slow"),
        &[],
        t,
        Some(Duration::from_millis(100)),
    )
    .await;
    assert_eq!(slow.value, 1.0, "{}", slow.detail);
    assert!(slow.detail.contains("took"), "{}", slow.detail);
}

#[tokio::test]
async fn an_unreachable_health_url_reads_down_with_the_cause() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let client = http::client().unwrap();
    let url = format!("http://127.0.0.1:{port}/health");
    let r = http::http(&client, &url, &[], Duration::from_secs(2), None).await;
    assert_eq!(r.value, 1.0);
    assert!(
        r.vars["error"].to_lowercase().contains("refused"),
        "{:?}",
        r.vars
    );
}

#[test]
fn a_pem_files_days_left_come_from_its_not_after() {
    let now = SystemTime::now();
    let r = tls::file(&fixture("localhost-cert.pem"), now).unwrap();
    assert!((r.value - days_until(LOCALHOST_NOT_AFTER, now)).abs() < 1e-6);
    assert_eq!(r.vars["not_after"], LOCALHOST_NOT_AFTER);
    assert_eq!(r.vars["subject"], "CN=localhost");
    let e = tls::file(&fixture("expired-2020-03-01.pem"), now).unwrap();
    assert!(e.value < 0.0);
    assert!((e.value - days_until(EXPIRED_NOT_AFTER, now)).abs() < 1e-6);
    assert!(e.detail.contains("expired on 2020-03-01"), "{}", e.detail);
}

#[test]
fn in_a_chain_file_the_earliest_expiry_counts() {
    let d = tempfile::tempdir().unwrap();
    let chain = d.path().join("chain.pem");
    let mut text = std::fs::read(fixture("localhost-cert.pem")).unwrap();
    text.extend(std::fs::read(fixture("expired-2020-03-01.pem")).unwrap());
    std::fs::write(&chain, text).unwrap();
    let r = tls::file(&chain, SystemTime::now()).unwrap();
    assert_eq!(r.vars["subject"], "CN=expired.test");
}

#[test]
fn a_file_without_a_certificate_is_an_error() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("empty.pem");
    std::fs::write(&p, "not a certificate\n").unwrap();
    let e = tls::file(&p, SystemTime::now()).unwrap_err().to_string();
    assert!(e.contains("no CERTIFICATE"), "{e}");
    let e = tls::file(&fixture("localhost-key.pem"), SystemTime::now()).unwrap_err();
    assert!(
        e.to_string().contains("no CERTIFICATE"),
        "a key is not a certificate: {e}"
    );
}

/// A TLS server on loopback presenting the localhost fixture; accepts `n` handshakes.
async fn tls_server(n: usize) -> u16 {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let _ = rustls::crypto::ring::default_provider().install_default();
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(fixture("localhost-cert.pem"))
            .unwrap()
            .map(Result::unwrap)
            .collect();
    let key = PrivateKeyDer::from_pem_file(fixture("localhost-key.pem")).unwrap();
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        for _ in 0..n {
            let (tcp, _) = listener.accept().await.unwrap();
            let _ = acceptor.accept(tcp).await;
        }
    });
    port
}

#[tokio::test]
async fn a_servers_certificate_is_read_over_a_handshake_even_self_signed() {
    let port = tls_server(2).await;
    let now = SystemTime::now();
    let r = tls::url(&format!("127.0.0.1:{port}"), Duration::from_secs(5), now)
        .await
        .unwrap();
    assert!((r.value - days_until(LOCALHOST_NOT_AFTER, now)).abs() < 1e-6);
    assert_eq!(r.vars["subject"], "CN=localhost");
    let r = tls::url(
        &format!("https://localhost:{port}/"),
        Duration::from_secs(5),
        now,
    )
    .await
    .unwrap();
    assert_eq!(r.vars["not_after"], LOCALHOST_NOT_AFTER);
}

#[tokio::test]
async fn a_server_that_never_handshakes_times_out() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let e = tls::url(
        &format!("127.0.0.1:{port}"),
        Duration::from_millis(300),
        SystemTime::now(),
    )
    .await
    .unwrap_err();
    assert!(e.to_string().contains("no handshake within 300 ms"), "{e}");
    drop(listener);
}
