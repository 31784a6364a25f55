//! The driver against a real server written with the Python `mcp` SDK (installed by
//! `scripts/test` under `$HOME/.cache/kernos-test/mcp-py`), over stdio and over streamable
//! HTTP on loopback. Unconfined here: confinement is tested through `kernos` itself
//! (`crates/kernos-cli/tests/cli/mcp.rs`). Skips, saying so, only when the SDK is missing.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kernos_mcp::ServerConfig;
use kernos_mcp::driver::{DriverReply, DriverRequest, Op, run_blocking};
use kernos_mcp::snapshot::tools_hash;
use serde_json::{Map, Value, json};

fn python() -> Option<PathBuf> {
    let cache = std::env::var_os("KERNOS_TEST_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(&std::env::var_os("HOME").unwrap_or_default()).join(".cache/kernos-test")
        });
    let p = cache.join("mcp-py/bin/python");
    if p.exists() {
        Some(p)
    } else {
        eprintln!(
            "SKIPPED: {} is missing; scripts/test installs it",
            p.display()
        );
        None
    }
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/tools_from_file.py")
}

fn tools_file(dir: &Path) -> PathBuf {
    let f = dir.join("tools.json");
    std::fs::write(
        &f,
        json!([
            {"name": "echo", "description": "Says the text back."},
            {"name": "broken", "description": "Always fails.", "fails": true}
        ])
        .to_string(),
    )
    .unwrap();
    f
}

fn server(command: Option<Vec<String>>, url: Option<String>) -> ServerConfig {
    let mut s: ServerConfig =
        serde_json::from_value(json!({"name": "t", "command": ["x"]})).unwrap();
    s.command = command;
    s.url = url;
    s.timeout_s = 20;
    s
}

fn ask(s: &ServerConfig, op: Op) -> DriverReply {
    run_blocking(&DriverRequest {
        server: s.clone(),
        op,
    })
}

fn call(tool: &str, text: &str, pinned: &str) -> Op {
    let mut arguments = Map::new();
    arguments.insert("text".into(), Value::from(text));
    Op::Call {
        tool: tool.into(),
        arguments,
        pinned: pinned.into(),
    }
}

/// Lists, calls under the right pin, refuses under a wrong one, reports a tool's error.
fn the_driver_lists_calls_and_checks_the_pin(s: &ServerConfig) {
    let DriverReply::Tools { tools } = ask(s, Op::List) else {
        panic!("no tool list");
    };
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["broken", "echo"], "sorted by name");
    assert_eq!(tools[1].summary(), "Says the text back.");
    assert!(tools[1].input_schema["properties"]["text"].is_object());
    let pin = tools_hash(&tools);

    match ask(s, call("echo", "hi", &pin)) {
        DriverReply::Called { text, is_error, .. } => {
            assert!(!is_error);
            assert_eq!(text, ["echo: hi"]);
        }
        other => panic!("{other:?}"),
    }
    match ask(s, call("echo", "hi", "not-the-pin")) {
        DriverReply::Changed { tools: live } => assert_eq!(live, tools),
        other => panic!("a call under a stale pin must not be made: {other:?}"),
    }
    match ask(s, call("broken", "boom", &pin)) {
        DriverReply::Called { text, is_error, .. } => {
            assert!(is_error);
            assert!(text.join(" ").contains("broken failed: boom"), "{text:?}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn over_stdio_the_driver_lists_calls_and_checks_the_pin() {
    let Some(python) = python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let tools = tools_file(dir.path());
    let argv = [python.as_path(), &script(), &tools].map(|p| p.display().to_string());
    the_driver_lists_calls_and_checks_the_pin(&server(Some(argv.to_vec()), None));
}

/// Kills the HTTP server this test started when the test ends.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn over_streamable_http_the_driver_lists_calls_and_checks_the_pin() {
    let Some(python) = python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let tools = tools_file(dir.path());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let _server = Killed(
        Command::new(&python)
            .arg(script())
            .arg(&tools)
            .arg(port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the HTTP server never listened");
        std::thread::sleep(Duration::from_millis(50));
    }
    let url = format!("http://127.0.0.1:{port}/mcp");
    the_driver_lists_calls_and_checks_the_pin(&server(None, Some(url)));
}

#[test]
fn a_server_that_cannot_start_is_a_failure_naming_it() {
    let s = server(Some(vec!["/nonexistent/mcp-server".into()]), None);
    match ask(&s, Op::List) {
        DriverReply::Failed { message } => {
            assert!(message.contains("/nonexistent/mcp-server"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}
