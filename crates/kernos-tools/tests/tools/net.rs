//! `net.*` against sockets and a tiny HTTP server that the tests open on loopback.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use kernos_core::{EffectKind, Target};
use kernos_tools::ToolError;
use kernos_tools::output::Change;
use kernos_tools::testing::World;
use serde_json::json;

#[test]
fn ports_finds_our_listener_and_its_process() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let u = UdpSocket::bind("127.0.0.1:0").unwrap();
    let uport = u.local_addr().unwrap().port();
    let w = World::new();
    let out = w.execute("net.ports", json!({"port": port})).unwrap().0;
    assert_eq!(out.rows.len(), 1, "{:?}", out.rows);
    let r = &out.rows[0];
    assert_eq!(r["protocol"], "tcp");
    assert_eq!(r["address"], "127.0.0.1");
    assert_eq!(r["port"], port);
    assert_eq!(r["pid"], std::process::id());
    // The test binary's file name (its 15-byte command name is a prefix of it).
    let exe = std::env::current_exe().unwrap();
    assert_eq!(
        r["process"],
        json!(exe.file_name().unwrap().to_str().unwrap())
    );
    assert!(out.summary.unwrap().contains(&format!("tcp {port} by")));
    let udp = w.execute("net.ports", json!({"port": uport})).unwrap().0;
    assert!(
        udp.rows
            .iter()
            .any(|r| r["protocol"] == "udp" && r["pid"] == std::process::id())
    );
    drop(l);
    let gone = w.execute("net.ports", json!({"port": port})).unwrap().0;
    assert!(gone.rows.is_empty());
    assert_eq!(
        gone.summary.unwrap(),
        format!("nothing is listening on port {port}")
    );
    let all = w.execute("net.ports", json!({})).unwrap().0;
    assert!(all.rows.iter().any(|r| r["port"] == uport));
}

#[test]
fn connections_shows_both_ends_of_a_loopback_connection() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let client = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let (_server, _) = l.accept().unwrap();
    let cport = client.local_addr().unwrap().port();
    let w = World::new();
    let out = w
        .execute("net.connections", json!({"state": "ESTABLISHED"}))
        .unwrap()
        .0;
    let ours: Vec<_> = out
        .rows
        .iter()
        .filter(|r| {
            (r["local_port"] == port && r["remote_port"] == cport)
                || (r["local_port"] == cport && r["remote_port"] == port)
        })
        .collect();
    assert_eq!(ours.len(), 2, "{:?}", out.rows);
    for r in ours {
        assert_eq!(r["state"], "established");
        assert_eq!(r["pid"], std::process::id());
    }
    assert!(out.rows.iter().all(|r| r["state"] == "established"));
    let err = w
        .execute("net.connections", json!({"state": "sleepy"}))
        .unwrap_err();
    assert!(matches!(err, ToolError::InvalidArgs(_)), "{err}");
}

#[test]
fn interfaces_include_loopback() {
    let w = World::new();
    let out = w.execute("net.interfaces", json!({})).unwrap().0;
    let lo = out.rows.iter().find(|r| r["name"] == "lo").expect("lo");
    assert!(lo["ipv4"].as_str().unwrap().contains("127.0.0.1/8"));
    assert_eq!(lo["default_route"], false);
    let dev = std::fs::read_to_string("/proc/net/dev").unwrap();
    assert!(dev.contains("lo:"));
    assert!(out.summary.is_some());
}

#[test]
fn resolve_localhost() {
    let w = World::new();
    let out = w
        .execute("net.resolve", json!({"host": "localhost"}))
        .unwrap()
        .0;
    assert!(
        out.rows
            .iter()
            .any(|r| (r["address"] == "127.0.0.1" && r["type"] == "A")
                || (r["address"] == "::1" && r["type"] == "AAAA")),
        "{:?}",
        out.rows
    );
    let eff = w
        .effects("net.resolve", json!({"host": "localhost"}))
        .unwrap();
    let host = Target::Host {
        host: "localhost".into(),
        port: None,
    };
    assert!(
        eff.iter()
            .any(|e| e.kind == EffectKind::Network && e.target == host)
    );
    assert!(
        eff.iter()
            .any(|e| e.kind == EffectKind::Read && e.target == host)
    );
    let rev = w
        .execute("net.resolve", json!({"host": "127.0.0.1"}))
        .unwrap()
        .0;
    assert!(rev.summary.unwrap().starts_with("127.0.0.1"));
    let bad = w
        .execute("net.resolve", json!({"host": "no-such-host.invalid"}))
        .unwrap_err();
    assert!(bad.to_string().contains("cannot resolve"), "{bad}");
}

/// What the test server saw of one request.
#[derive(Debug)]
struct Seen {
    method: String,
    path: String,
    body: String,
}

/// Serves `n` requests on loopback, then stops; gives up after 10 s either way.
fn server(n: usize) -> (u16, mpsc::Receiver<Seen>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    l.set_nonblocking(true).unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut served = 0;
        while served < n && Instant::now() < deadline {
            let Ok((s, _)) = l.accept() else {
                std::thread::sleep(Duration::from_millis(5));
                continue;
            };
            s.set_nonblocking(false).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            let mut parts = line.split_whitespace();
            let method = parts.next().unwrap_or("").to_owned();
            let path = parts.next().unwrap_or("").to_owned();
            let mut len = 0;
            loop {
                let mut h = String::new();
                r.read_line(&mut h).unwrap();
                if h.trim().is_empty() {
                    break;
                }
                if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap();
                }
            }
            let mut body = vec![0; len];
            r.read_exact(&mut body).unwrap();
            let (status, headers, content) = match path.as_str() {
                "/hello" => (
                    "200 OK",
                    "Content-Type: text/plain\r\n".to_owned(),
                    "hello world",
                ),
                "/go" => (
                    "301 Moved Permanently",
                    "Location: /hello\r\n".to_owned(),
                    "",
                ),
                "/away" => (
                    "302 Found",
                    "Location: http://example.invalid/elsewhere\r\n".to_owned(),
                    "",
                ),
                "/echo" => (
                    "201 Created",
                    "Content-Type: text/plain\r\n".to_owned(),
                    "created",
                ),
                _ => ("404 Not Found", String::new(), "nope"),
            };
            let mut s = s;
            let _ = write!(
                s,
                "HTTP/1.1 {status}\r\n{headers}Content-Length: {}\r\nServer: kernos-test\r\nConnection: close\r\n\r\n{content}",
                content.len()
            );
            let _ = tx.send(Seen {
                method,
                path,
                body: String::from_utf8_lossy(&body).into_owned(),
            });
            served += 1;
        }
    });
    (port, rx)
}

#[test]
fn http_get_is_a_read_with_status_headers_and_body() {
    let (port, seen) = server(1);
    let w = World::new();
    let url = format!("http://127.0.0.1:{port}/hello");
    let args = json!({"url": url});
    let eff = w.effects("net.http", args.clone()).unwrap();
    let host = Target::Host {
        host: "127.0.0.1".into(),
        port: Some(port),
    };
    assert_eq!(
        eff.iter().map(|e| (e.kind, &e.target)).collect::<Vec<_>>(),
        vec![(EffectKind::Read, &host), (EffectKind::Network, &host)]
    );
    assert!(w.dry_run("net.http", args.clone()).unwrap().is_empty());
    let (out, _) = w.execute("net.http", args).unwrap();
    let r = &out.rows[0];
    assert_eq!(r["status"], 200);
    assert_eq!(r["content_type"], "text/plain");
    assert_eq!(r["bytes"], 11);
    assert!(r["time"].as_f64().unwrap() >= 0.0);
    let text = out.text.unwrap();
    assert!(text.contains("server: kernos-test"), "{text}");
    assert!(text.ends_with("hello world"), "{text}");
    assert!(out.changes.is_empty());
    let s = seen.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!((s.method.as_str(), s.path.as_str()), ("GET", "/hello"));
}

#[test]
fn http_post_is_a_change_and_sends_the_body() {
    let (port, seen) = server(1);
    let w = World::new();
    let url = format!("http://127.0.0.1:{port}/echo");
    let args = json!({"url": url, "method": "post", "body": "x=1"});
    let eff = w.effects("net.http", args.clone()).unwrap();
    assert!(eff.iter().any(|e| e.kind == EffectKind::Write));
    assert!(eff.iter().any(|e| e.kind == EffectKind::Network));
    assert!(!eff.iter().any(|e| e.kind == EffectKind::Read));
    let predicted = w.dry_run("net.http", args.clone()).unwrap();
    assert_eq!(
        predicted,
        vec![Change::Request {
            method: "POST".into(),
            url: url.clone()
        }]
    );
    assert!(
        seen.recv_timeout(Duration::from_millis(200)).is_err(),
        "the dry run sent nothing"
    );
    let (out, _) = w.execute("net.http", args).unwrap();
    assert_eq!(out.changes, predicted);
    assert_eq!(out.rows[0]["status"], 201);
    let s = seen.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!((s.method.as_str(), s.body.as_str()), ("POST", "x=1"));
}

#[test]
fn http_follows_redirects_only_within_the_declared_host() {
    let (port, seen) = server(3);
    let w = World::new();
    let (out, _) = w
        .execute(
            "net.http",
            json!({"url": format!("http://127.0.0.1:{port}/go")}),
        )
        .unwrap();
    assert_eq!(out.rows[0]["status"], 200);
    assert_eq!(out.rows[0]["url"], format!("http://127.0.0.1:{port}/hello"));
    let (out, _) = w
        .execute(
            "net.http",
            json!({"url": format!("http://127.0.0.1:{port}/away")}),
        )
        .unwrap();
    assert_eq!(out.rows[0]["status"], 302);
    assert_eq!(out.rows[0]["redirect"], "http://example.invalid/elsewhere");
    assert!(out.summary.unwrap().contains("not followed"));
    let paths: Vec<String> = (0..3)
        .map(|_| seen.recv_timeout(Duration::from_secs(5)).unwrap().path)
        .collect();
    assert_eq!(paths, ["/go", "/hello", "/away"]);
}

#[test]
fn http_errors_say_what_happened() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    let w = World::new();
    let err = w
        .execute(
            "net.http",
            json!({"url": format!("http://127.0.0.1:{port}/")}),
        )
        .unwrap_err();
    assert!(err.to_string().contains("cannot connect"), "{err}");
    let err = w
        .effects("net.http", json!({"url": "ftp://example.org/"}))
        .unwrap_err();
    assert!(matches!(err, ToolError::InvalidArgs(_)));
}

#[test]
fn ping_loopback() {
    let w = World::new();
    let args = json!({"host": "127.0.0.1", "count": 2});
    let eff = w.effects("net.ping", args.clone()).unwrap();
    assert!(eff.iter().any(|e| e.kind == EffectKind::Network
        && e.target
            == Target::Host {
                host: "127.0.0.1".into(),
                port: None
            }));
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    match w.execute("net.ping", args) {
        Ok((out, _)) => {
            let r = &out.rows[0];
            assert_eq!(r["received"], 2, "{:?}", out);
            assert_eq!(r["loss_percent"], 0.0);
            assert_eq!(r["reachable"], true);
            assert!(r["rtt_min_ms"].as_f64().unwrap() <= r["rtt_max_ms"].as_f64().unwrap());
            assert!(out.text.unwrap().contains("seq=2"));
        }
        // Only a user without CAP_NET_RAW outside ping_group_range may be refused, and then
        // the error says which setting to change.
        Err(e) => {
            assert!(!root, "root can always ping: {e}");
            assert!(matches!(e, ToolError::Unavailable(_)), "{e}");
            assert!(e.to_string().contains("ping_group_range"));
        }
    }
    let err = w
        .effects("net.ping", json!({"host": "127.0.0.1", "count": 0}))
        .unwrap_err();
    assert!(matches!(err, ToolError::InvalidArgs(_)));
}
