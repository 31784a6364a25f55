//! The runner end to end: real inotify on temp dirs, a followed log file, fed journal events,
//! polled probes, loopback health URLs; what reaches the callback.

use std::io::Write;
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use kernos_monitor::{MonitorSpec, Proposal, Runner, Update, parse_monitors};

use crate::support::{HttpServer, Reply, next};

/// Long enough for any detection the runner promises within 1 s, on a loaded CI machine.
const WAIT: Duration = Duration::from_secs(10);

fn start(toml: &str) -> (Runner, mpsc::Receiver<Update>) {
    let specs = parse_monitors(toml).unwrap();
    start_specs(specs)
}

fn start_specs(specs: Vec<MonitorSpec>) -> (Runner, mpsc::Receiver<Update>) {
    let (tx, rx) = mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    let runner = Runner::start(specs, move |u| {
        let _ = tx.lock().unwrap().send(u);
    })
    .unwrap();
    (runner, rx)
}

fn fired(u: Option<Update>) -> kernos_monitor::Fired {
    match u {
        Some(Update::Fired(f)) => f,
        other => panic!("expected a firing, got {other:?}"),
    }
}

fn append(p: &Path, s: &str) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(p)
        .unwrap();
    f.write_all(s.as_bytes()).unwrap();
}

#[test]
fn a_file_created_under_a_watched_tree_fires_and_the_empty_window_clears() {
    let d = tempfile::tempdir().unwrap();
    let (runner, rx) = start(&format!(
        "[[monitor]]\nname = \"tree\"\nkind = \"file_changes\"\npath = \"{}\"\n\
         window = \"1s\"\ninterval = \"200ms\"\ncooldown = \"0s\"\n",
        d.path().display()
    ));
    std::fs::create_dir(d.path().join("sub")).unwrap();
    let f = fired(next(&rx, WAIT));
    assert_eq!(f.monitor, "tree");
    assert_eq!(
        f.vars["last_path"],
        d.path().join("sub").display().to_string()
    );
    assert!(matches!(next(&rx, WAIT), Some(Update::Cleared(_))));
    // The new subdirectory is watched too.
    std::fs::write(d.path().join("sub/new.txt"), "x").unwrap();
    let f = fired(next(&rx, WAIT));
    assert_eq!(
        f.vars["last_path"],
        d.path().join("sub/new.txt").display().to_string()
    );
    runner.stop();
}

#[test]
fn matching_log_lines_are_counted_across_rotation() {
    let d = tempfile::tempdir().unwrap();
    let log = d.path().join("app.log");
    append(&log, "ERROR before the monitor started\n");
    let (runner, rx) = start(&format!(
        "[[monitor]]\nname = \"errors\"\nkind = \"log_pattern\"\npath = \"{}\"\n\
         pattern = \"ERROR \\\\d+\"\nthreshold = 3\nwindow = \"1m\"\n",
        log.display()
    ));
    // Let the runner take its first reading before writing.
    std::thread::sleep(Duration::from_millis(200));
    append(&log, "ERROR 1\ninfo\nERROR x\nERROR 2\n");
    assert!(next(&rx, Duration::from_millis(700)).is_none(), "2 of 3");
    std::fs::rename(&log, d.path().join("app.log.1")).unwrap();
    append(&log, "info\nERROR 3 disk gone\n");
    let f = fired(next(&rx, WAIT));
    assert_eq!(f.value, 3.0);
    assert_eq!(f.vars["last_line"], "ERROR 3 disk gone");
    runner.stop();
}

#[test]
fn journal_events_fed_in_are_counted_by_kind_and_org() {
    let (runner, rx) = start(
        "[[monitor]]\nname = \"failures\"\nkind = \"journal_event\"\nevent = \"step.*\"\n\
         org = \"acme\"\nthreshold = 2\n",
    );
    let ev = |kind: &str, org: &str| kernos_core::Event {
        seq: 1,
        ts_ms: 0,
        kind: kind.into(),
        actor: kernos_core::Actor::system(),
        org: org.into(),
        action: None,
        tx: None,
        payload: serde_json::Value::Null,
        hash: String::new(),
    };
    runner.feed(&ev("step.failed", "acme"));
    runner.feed(&ev("step.failed", "other-org"));
    runner.feed(&ev("action.finished", "acme"));
    assert!(next(&rx, Duration::from_millis(500)).is_none());
    runner.feed(&ev("step.denied", "acme"));
    let f = fired(next(&rx, WAIT));
    assert_eq!(f.value, 2.0);
    assert_eq!(f.vars["last_kind"], "step.denied");
    runner.stop();
}

#[test]
fn a_full_disk_monitor_fires_at_start_with_its_cleanup_plan() {
    let d = tempfile::tempdir().unwrap();
    // Threshold 0: any filesystem is "full", so the real statvfs path fires.
    let (runner, rx) = start(&format!(
        r#"
[[monitor]]
name = "scratch"
kind = "disk"
mount = "{}"
threshold = 0
[monitor.remediation]
lease = "ls_scratch"
plan = {{ steps = [{{ tool = "fs", action = "delete", args = {{ path = "{{mount}}/fill" }} }}] }}
"#,
        d.path().display()
    ));
    let f = fired(next(&rx, WAIT));
    let Some(Proposal::Plan { plan, lease, .. }) = f.remediation else {
        panic!("{f:?}");
    };
    assert_eq!(
        plan.steps[0].args["path"],
        d.path().join("fill").display().to_string()
    );
    assert_eq!(lease.as_deref(), Some("ls_scratch"));
    runner.stop();
}

#[test]
fn a_probe_that_keeps_failing_is_reported_once() {
    let (runner, rx) = start(
        "[[monitor]]\nname = \"gone\"\nkind = \"disk\"\nmount = \"/kernos/no/such\"\n\
         threshold = 90\ninterval = \"100ms\"\n",
    );
    match next(&rx, WAIT) {
        Some(Update::Failed { monitor, error }) => {
            assert_eq!(monitor, "gone");
            assert!(error.contains("/kernos/no/such"), "{error}");
        }
        other => panic!("{other:?}"),
    }
    assert!(
        next(&rx, Duration::from_millis(600)).is_none(),
        "the same error is not repeated every 100 ms"
    );
    runner.stop();
}

#[test]
fn an_unhealthy_url_fires_through_the_runner() {
    let server = HttpServer::start(|_, _| Reply::status(500));
    let (runner, rx) = start(&format!(
        "[[monitor]]\nname = \"health\"\nkind = \"http\"\nurl = \"{}\"\n",
        server.url("/health")
    ));
    let f = fired(next(&rx, WAIT));
    assert!(f.message.contains("500"), "{}", f.message);
    assert_eq!(f.vars["status"], "500");
    runner.stop();
}

#[test]
fn a_port_monitor_fires_when_its_listener_goes_away() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let (runner, rx) = start(&format!(
        "[[monitor]]\nname = \"p\"\nkind = \"port\"\nport = {port}\ninterval = \"100ms\"\n"
    ));
    assert!(next(&rx, Duration::from_millis(400)).is_none(), "listening");
    drop(l);
    let f = fired(next(&rx, WAIT));
    assert!(f.message.contains(&format!("port {port}")), "{}", f.message);
    runner.stop();
}

#[test]
fn stopping_returns_promptly_and_nothing_is_reported_after() {
    let d = tempfile::tempdir().unwrap();
    let (runner, rx) = start(&format!(
        "[[monitor]]\nname = \"t\"\nkind = \"file_changes\"\npath = \"{}\"\n",
        d.path().display()
    ));
    let t = std::time::Instant::now();
    runner.stop();
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    std::fs::write(d.path().join("after"), "x").unwrap();
    assert!(next(&rx, Duration::from_millis(300)).is_none());
}
