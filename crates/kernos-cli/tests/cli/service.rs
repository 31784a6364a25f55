//! `kernos serve` as a system service: live config reloads (SIGHUP and `kernos config edit`)
//! with an event stream and an action in flight, refused configs, `--profile`, and systemd's
//! readiness and watchdog notifications over a real Unix datagram socket.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::daemon::{Daemon, new_key};
use crate::{World, text};

/// An event stream over the Unix socket (the owner's view: every event), read line by line.
struct Stream {
    r: BufReader<UnixStream>,
}

impl Stream {
    fn open(w: &World) -> Stream {
        let s = UnixStream::connect(w.data.join("kernos.sock")).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut s2 = s.try_clone().unwrap();
        s2.write_all(b"GET /v1/events?prefix=config. HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        let mut r = BufReader::new(s);
        // Past the response head: the daemon has subscribed this stream by then.
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        assert!(line.contains(" 200 "), "{line}");
        while line != "\r\n" {
            line.clear();
            assert!(r.read_line(&mut line).unwrap() > 0, "no response head");
        }
        Stream { r }
    }

    /// The next event on the stream; panics if the stream ends (the reload dropped it).
    fn next(&mut self) -> Value {
        let mut line = String::new();
        loop {
            line.clear();
            assert!(
                self.r.read_line(&mut line).unwrap() > 0,
                "the event stream ended"
            );
            if let Some(v) = line.trim_end().strip_prefix("data: ") {
                return serde_json::from_str(v).unwrap();
            }
        }
    }
}

fn hup(d: &Daemon) {
    // SAFETY: signalling the daemon this test started.
    assert_eq!(unsafe { libc::kill(d.pid(), libc::SIGHUP) }, 0);
}

/// Organisations acme (the one with a quota) and beta (none) work in the world's tree.
fn scope(w: &World) -> String {
    let home = w.home.display();
    format!(
        "[server.scopes.acme]\nwrite = [\"{home}\"]\n[server.scopes.beta]\nwrite = [\"{home}\"]\n"
    )
}

#[test]
fn a_reload_changes_quotas_and_limits_refuses_a_bad_file_and_drops_nothing() {
    let w = World::new();
    w.file("old.log", "keep");
    let base = |quota: f64, rate: &str| {
        format!(
            "[server]\nrate_per_sec = {rate}\nrate_burst = 1000.0\nstep_overhead_units = 0.01\n[server.quotas]\nacme = {quota}\n{}",
            scope(&w)
        )
    };
    w.config(&base(0.01, "100.0"));
    let d = Daemon::start(&w, &[]);
    let op = new_key(&w, "acme", "operator");
    let beta = new_key(&w, "beta", "operator");
    let cwd = w.cwd.display().to_string();
    let mut stream = Stream::open(&w);

    // In flight across every reload: an action of another organisation (no quota) waiting
    // for its approval, and the event stream above.
    let r = d.http(
        "POST",
        "/v1/actions",
        Some(&beta),
        Some(json!({"request": "delete old.log", "cwd": cwd})),
    );
    assert_eq!(r.status, 202, "{}", text(&r.body));
    let waiting = r.json()["action"].as_str().unwrap().to_owned();
    let until = Instant::now() + Duration::from_secs(30);
    let approval = loop {
        let v = d
            .http("GET", "/v1/state/approvals", Some(&beta), None)
            .json();
        if let Some(a) = v
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["action"] == waiting)
        {
            break a["approval"].as_str().unwrap().to_owned();
        }
        assert!(Instant::now() < until, "no approval for {waiting}");
        std::thread::sleep(Duration::from_millis(20));
    };
    let list = json!({"request": "list files in .", "cwd": cwd});
    let run = |d: &Daemon| {
        let r = d.http("POST", "/v1/actions", Some(&op), Some(list.clone()));
        (r.status, text(&r.body))
    };
    // acme's quota is spent by its first run …
    let (s, b) = run(&d);
    assert_eq!(s, 202, "{b}");
    let until = Instant::now() + Duration::from_secs(30);
    while run(&d).0 != 402 {
        assert!(Instant::now() < until, "the quota never ran out");
        std::thread::sleep(Duration::from_millis(50));
    }

    // A valid reload: a bigger quota applies at once, and is journaled with what changed.
    w.config(&base(100.0, "100.0"));
    hup(&d);
    let e = stream.next();
    assert_eq!(e["kind"], "config.reloaded", "{e}");
    let p = &e["payload"];
    assert_eq!(p["source"], "SIGHUP");
    assert_eq!(p["changed"], json!(["server.quotas"]), "{p}");
    assert_eq!(p["applied"], json!(["server.quotas"]));
    assert_eq!(p["sha256"].as_str().unwrap().len(), 64);
    let (s, b) = run(&d);
    assert_eq!(s, 202, "the new quota is in force: {b}");

    // An invalid file is refused with the error; the config in force stays (the quota
    // still admits, the rate is not zero), and the refusal is journaled.
    w.config(&base(100.0, "-1.0"));
    hup(&d);
    let e = stream.next();
    assert_eq!(e["kind"], "config.rejected", "{e}");
    let err = e["payload"]["error"].as_str().unwrap();
    assert!(err.contains("rate_per_sec"), "{err}");
    assert_eq!(run(&d).0, 202, "the old config stays in force");

    // A lower rate limit applies at once too.
    w.config(&base(100.0, "0.001"));
    hup(&d);
    let e = stream.next();
    assert_eq!(e["kind"], "config.reloaded", "{e}");
    let p = &e["payload"];
    assert!(
        p["changed"]
            .as_array()
            .unwrap()
            .contains(&json!("server.rate_per_sec")),
        "{p}"
    );
    w.config(&base(100.0, "0.001").replace("rate_burst = 1000.0", "rate_burst = 1.0"));
    hup(&d);
    assert_eq!(stream.next()["kind"], "config.reloaded");
    let mut limited = false;
    for _ in 0..3 {
        if d.http("GET", "/v1/state/usage", Some(&op), None).status == 429 {
            limited = true;
            break;
        }
    }
    assert!(limited, "the lower rate limit is in force");

    // Back to a generous rate, then the action that waited through four reloads is approved
    // and runs to its end.
    w.config(&base(100.0, "100.0"));
    hup(&d);
    assert_eq!(stream.next()["kind"], "config.reloaded");
    std::thread::sleep(Duration::from_millis(100));
    let r = d.http(
        "POST",
        &format!("/v1/approvals/{approval}"),
        Some(&beta),
        Some(json!({"approve": true})),
    );
    assert_eq!(r.status, 200, "{}", text(&r.body));
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let v = d
            .http(
                "GET",
                &format!("/v1/state/actions/{waiting}"),
                Some(&beta),
                None,
            )
            .json();
        if v["status"] == "committed" {
            break;
        }
        assert!(
            Instant::now() < until,
            "the waiting action did not finish: {v}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!w.cwd.join("old.log").exists());
    d.stop();
}

#[test]
fn config_edit_has_the_running_daemon_reload_and_says_what_changed() {
    let w = World::new();
    w.config("[server]\nrate_per_sec = 100.0\n");
    let d = Daemon::start(&w, &[]);
    // The "editor" writes a new file: a quota and a new profile.
    let next = w.root().join("next.toml");
    std::fs::write(
        &next,
        format!(
            "[server]\nrate_per_sec = 100.0\n[server.quotas]\nacme = 5.0\n{}",
            scope(&w)
        ),
    )
    .unwrap();
    let out = w
        .cmd(&["config", "edit"])
        .env("EDITOR", format!("cp {}", next.display()))
        .output()
        .unwrap();
    let said = text(&out.stdout);
    assert!(out.status.success(), "{said}{}", text(&out.stderr));
    assert!(said.contains("config reloaded"), "{said}");
    // The scope of acme was there already (the test daemon grants it): only the quota and
    // beta's scope changed.
    assert!(
        said.contains("server.quotas") && said.contains("server.scopes"),
        "{said}"
    );
    let usage = d.local("GET", "/v1/state/usage", None);
    assert_eq!(usage.status, 200);
    d.stop();
}

#[test]
fn profiles_select_overlays_and_reloads_keep_the_profile() {
    let w = World::new();
    w.config(
        "[server]\nrate_per_sec = 100.0\n[profile.prod.server.quotas]\nacme = 7.0\n[profile.dev.server]\nrate_per_sec = 5.0\n",
    );
    let out = w.run(&["--profile", "prod", "config", "show", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["server"]["quotas"]["acme"], 7.0);
    assert_eq!(v["server"]["rate_per_sec"], 100.0);
    let out = w.run(&["config", "show", "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["server"]["quotas"].as_object().unwrap().is_empty());
    let out = w.run(&["--profile", "staging", "config", "check"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("profile.staging"),
        "{}",
        text(&out.stderr)
    );
    assert!(w.run(&["config", "check"]).status.success());
    // `config check` tries every profile, not only the one in force.
    let good = std::fs::read_to_string(w.home.join(".config/kernos/config.toml")).unwrap();
    w.config(&format!("{good}[profile.broken.server]\nworkers = 0\n"));
    let out = w.run(&["config", "check"]);
    assert!(!out.status.success());
    let said = text(&out.stderr);
    assert!(said.contains("server.workers"), "{said}");
    w.config(&good);
    // The daemon started with a profile reloads with it.
    let d = Daemon::start(&w, &["--profile", "prod"]);
    let mut stream = Stream::open(&w);
    let cfg = std::fs::read_to_string(w.home.join(".config/kernos/config.toml")).unwrap();
    w.config(&cfg.replace("acme = 7.0", "acme = 8.0"));
    hup(&d);
    let e = stream.next();
    assert_eq!(e["kind"], "config.reloaded", "{e}");
    assert_eq!(e["payload"]["changed"], json!(["server.quotas"]), "{e}");
    d.stop();
}

/// Reads datagrams until one holds `want`, collecting what came.
fn until_datagram(rx: &UnixDatagram, want: &str, seen: &mut Vec<String>) {
    let mut buf = [0u8; 4096];
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        assert!(Instant::now() < until, "no {want:?} in {seen:?}");
        match rx.recv(&mut buf) {
            Ok(n) => {
                let m = String::from_utf8_lossy(&buf[..n]).into_owned();
                let hit = m.lines().any(|l| l == want);
                seen.push(m);
                if hit {
                    return;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(e) => panic!("{e}"),
        }
    }
}

#[test]
fn sd_notify_ready_only_once_the_api_listens_then_watchdog_reload_and_stop() {
    let w = World::new();
    let path = w.root().join("notify.sock");
    let rx = UnixDatagram::bind(&path).unwrap();
    rx.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut child = w
        .cmd(&["serve", "--listen", "127.0.0.1:0"])
        .env("NOTIFY_SOCKET", &path)
        // WatchdogSec=0.4s: pings every 0.2 s.
        .env("WATCHDOG_USEC", "400000")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let sock = w.data.join("kernos.sock");
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    // The first notification is READY=1, and when it comes the API already answers.
    let until = Instant::now() + Duration::from_secs(20);
    let first = loop {
        assert!(Instant::now() < until, "no notification");
        if let Ok(n) = rx.recv(&mut buf) {
            break String::from_utf8_lossy(&buf[..n]).into_owned();
        }
    };
    assert!(first.lines().any(|l| l == "READY=1"), "{first}");
    assert!(
        first.contains(&format!("MAINPID={}", child.id())),
        "{first}"
    );
    let mut s = UnixStream::connect(&sock).expect("READY=1 came before the API listened");
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut head = String::new();
    BufReader::new(s).read_line(&mut head).unwrap();
    assert!(head.contains("200"), "{head}");
    // Watchdog pings keep coming, about every 0.2 s.
    let start = Instant::now();
    until_datagram(&rx, "WATCHDOG=1", &mut seen);
    until_datagram(&rx, "WATCHDOG=1", &mut seen);
    until_datagram(&rx, "WATCHDOG=1", &mut seen);
    assert!(start.elapsed() < Duration::from_secs(5), "{seen:?}");
    // A reload says so, then ready again.
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGHUP) };
    until_datagram(&rx, "RELOADING=1", &mut seen);
    until_datagram(&rx, "READY=1", &mut seen);
    // A stop says so, and the daemon ends cleanly.
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    until_datagram(&rx, "STOPPING=1", &mut seen);
    let until = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < until, "the daemon did not stop");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}");
}

#[test]
fn version_names_the_commit_and_the_features() {
    let w = World::new();
    let out = w.run(&["--version"]);
    assert!(out.status.success());
    let v = text(&out.stdout);
    let mut lines = v.lines();
    assert_eq!(
        lines.next(),
        Some(format!("kernos {}", env!("CARGO_PKG_VERSION")).as_str())
    );
    let commit = lines.next().unwrap().strip_prefix("commit: ").unwrap();
    assert!(
        commit == "unknown" || (commit.len() >= 7 && commit.chars().all(|c| c.is_ascii_hexdigit())),
        "{commit}"
    );
    assert!(lines.next().unwrap().starts_with("features: "), "{v}");
    let short = text(&w.run(&["-V"]).stdout);
    assert_eq!(
        short.trim(),
        format!("kernos {} ({commit})", env!("CARGO_PKG_VERSION"))
    );
    // doctor --json carries the same facts first.
    let d = w.run(&["doctor", "--json"]);
    let checks: Value = serde_json::from_slice(&d.stdout).unwrap();
    assert_eq!(checks[0]["name"], "kernos");
    assert!(checks[0]["detail"].as_str().unwrap().contains(commit));
}

#[test]
fn a_reload_swaps_the_model_providers() {
    let w = World::new();
    w.config("[server]\nrate_per_sec = 100.0\n");
    let d = Daemon::start(&w, &[]);
    let mut stream = Stream::open(&w);
    let goal = json!({"goal": "tell me the uptime"});
    let r = d.local("POST", "/v1/agents", Some(goal.clone()));
    assert_eq!(r.status, 409, "no model yet: {}", text(&r.body));
    // A provider added to the file is in force after the reload, without a restart.
    let cfg = std::fs::read_to_string(w.home.join(".config/kernos/config.toml")).unwrap();
    w.config(&format!(
        "{cfg}\n[[llm.providers]]\nname = \"local\"\nbase_url = \"http://127.0.0.1:9/v1\"\nlanes = {{ fast = \"m\" }}\n"
    ));
    hup(&d);
    let e = stream.next();
    assert_eq!(e["kind"], "config.reloaded", "{e}");
    assert_eq!(e["payload"]["applied"], json!(["llm"]), "{e}");
    assert_eq!(e["payload"]["restart_required"], json!([]), "{e}");
    let r = d.local("POST", "/v1/agents", Some(goal));
    assert_eq!(
        r.status,
        201,
        "the new provider is in force: {}",
        text(&r.body)
    );
    d.stop();
}
