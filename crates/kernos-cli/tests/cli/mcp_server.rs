//! Kernos as an MCP server, driven by a real MCP client from outside the project (the Python
//! `mcp` SDK from PyPI, `tests/mcp/client.py`), over stdio (`kernos mcp serve`, with and
//! without a running daemon) and streamable HTTP (`/mcp` of `kernos serve`, behind API keys),
//! in both protocol generations: `legacy` (initialize; approvals as elicitation requests) and
//! `auto` (2026-07-28; approvals as input-required results).

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use kernos_journal::{Journal, Query};
use serde_json::{Value, json};

use crate::daemon::{Daemon, new_key};
pub(crate) use crate::mcp::python_sdk;
use crate::{World, text};

const CLIENT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/mcp/client.py");

/// The client started with `args` (see `client.py`), not yet waited for.
pub(crate) fn client(w: &World, py: &Path, args: &[&str]) -> std::process::Child {
    client_with(w.program(py.to_str().unwrap()), args)
}

/// The client started with `args` from `c`, the Python command set up by the caller.
pub(crate) fn client_with(mut c: std::process::Command, args: &[&str]) -> std::process::Child {
    c.arg(CLIENT)
        .args(args)
        .env("KERNOS_BIN", env!("CARGO_BIN_EXE_kernos"))
        .env("KERNOS_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c.spawn().unwrap()
}

/// What the client saw, once it ended.
pub(crate) fn report(child: std::process::Child) -> Value {
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the MCP client failed:\n{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", text(&out.stdout), text(&out.stderr)))
}

fn structured(v: &Value) -> &Value {
    &v["structuredContent"]
}

/// The full scenario's report, checked against what happened on the host: the read shows
/// the file, bad arguments are refused before anything runs, the approved write happened and
/// its undo put the tree back, the declined write never happened.
fn check_full(w: &World, r: &Value, mode: &str) {
    let want = if mode == "auto" {
        "2026-07-28"
    } else {
        "2025-11-25"
    };
    assert_eq!(r["protocol"], want, "{r}");

    let tools = &r["tools"];
    for name in [
        "fs.read",
        "fs.write",
        "kernos_request",
        "kernos_plan",
        "kernos_undo",
    ] {
        assert!(tools.get(name).is_some(), "{name} missing from {tools}");
    }
    assert_eq!(tools["fs.read"]["annotations"]["readOnlyHint"], true);
    assert_eq!(tools["fs.delete"]["annotations"]["destructiveHint"], true);
    assert_eq!(tools["fs.write"]["annotations"]["readOnlyHint"], false);
    assert_eq!(
        tools["fs.write"]["inputSchema"]["required"],
        json!(["path", "content"])
    );

    let read = &r["read"];
    assert_ne!(read["isError"], true, "{read}");
    assert_eq!(structured(read)["status"], "committed");
    assert!(
        structured(read)["steps"][0]["text"]
            .as_str()
            .unwrap()
            .contains("hello from the host")
    );

    assert_eq!(r["bad_args"]["isError"], true);
    assert!(
        text_of(&r["bad_args"]).contains("bad arguments for fs.read"),
        "{r}"
    );

    let write = &r["write"];
    assert_eq!(structured(write)["status"], "committed", "{write}");
    assert_eq!(r["b_after_write"], "from mcp\n");
    let tx = structured(write)["transaction"].as_str().unwrap();
    assert!(text_of(write).contains(&format!("kernos_undo {{\"transaction\": \"{tx}\"}}")));

    assert_eq!(structured(&r["undo"])["status"], "undone", "{r}");
    assert!(
        !w.cwd.join("b.txt").exists(),
        "undo removed what the write created"
    );

    let declined = &r["declined"];
    assert_eq!(declined["isError"], true);
    assert_eq!(structured(declined)["status"], "declined", "{declined}");
    assert!(!w.cwd.join("c.txt").exists(), "a declined step never runs");

    let asked: Vec<&str> = r["asked"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(asked.len(), 3, "{asked:?}");
    assert!(
        asked[0].contains("fs.write") && asked[0].contains("b.txt"),
        "{asked:?}"
    );
    assert!(asked[1].contains("undo"), "{asked:?}");

    let history = structured(&r["history"])["transactions"]
        .as_array()
        .unwrap();
    assert!(history.iter().any(|t| t["tx"] == tx), "{history:?}");
    assert!(text_of(&r["history_resource"]).contains(tx));
    assert!(text_of(&r["machine"]).contains("catalog_actions"));
    assert_eq!(
        r["prompts"],
        json!(["free_disk_space", "what_changed", "check_service"])
    );
}

fn text_of(v: &Value) -> String {
    v["content"]
        .as_array()
        .or_else(|| v["contents"].as_array())
        .into_iter()
        .flatten()
        .filter_map(|c| c["text"].as_str())
        .collect()
}

/// Who the journal says asked for each action: the MCP client, then who it acted for.
fn submitters(w: &World) -> Vec<String> {
    let j = Journal::open_read_only(&w.data).unwrap();
    j.query(&Query::kind("action.submitted"))
        .unwrap()
        .iter()
        .map(|e| e.actor.as_str().to_owned())
        .collect()
}

fn world() -> World {
    let w = World::new();
    w.file("a.txt", "hello from the host\n");
    w
}

#[test]
fn stdio_list_read_approve_undo_and_decline_in_both_protocol_generations() {
    let Some(py) = python_sdk() else { return };
    for mode in ["legacy", "auto"] {
        let w = world();
        let cwd = w.cwd.to_str().unwrap().to_owned();
        let r = report(client(&w, &py, &["stdio", mode, "full", &cwd]));
        check_full(&w, &r, mode);
        let who = submitters(&w);
        assert!(!who.is_empty());
        assert!(
            who.iter()
                .all(|a| a.starts_with("mcp:kernos-test-client@user:")),
            "every action is journaled as the MCP client: {who:?}"
        );
        assert!(
            !w.data.join("kernos.sock").exists(),
            "the in-process daemon removes its socket when the client leaves"
        );
        // Nothing waits without a daemon, and `kernos approvals` says how to get one.
        let out = w.run(&["approvals"]);
        assert!(!out.status.success());
        assert!(
            text(&out.stderr).contains("kernos serve"),
            "{}",
            text(&out.stderr)
        );
    }
}

#[test]
fn stdio_beside_a_running_daemon_relays_to_it() {
    let Some(py) = python_sdk() else { return };
    let w = world();
    let d = Daemon::start(&w, &[]);
    let cwd = w.cwd.to_str().unwrap().to_owned();
    let r = report(client(&w, &py, &["stdio", "auto", "full", &cwd]));
    check_full(&w, &r, "auto");
    // The daemon ran them: its action list has them.
    let listed = d.local("GET", "/v1/state/actions?limit=50", None).json();
    let tx = structured(&r["write"])["action"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        listed.as_array().unwrap().iter().any(|a| a["action"] == tx),
        "{listed}"
    );
}

#[test]
fn http_behind_api_keys_with_roles_and_organisations() {
    let Some(py) = python_sdk() else { return };
    let w = world();
    let operator = new_key(&w, "local", "operator");
    let viewer = new_key(&w, "local", "viewer");
    let other = new_key(&w, "acme", "operator");
    let d = Daemon::start(&w, &[]);
    let url = format!("http://{}/mcp", d.addr);
    let cwd = w.cwd.to_str().unwrap().to_owned();

    // No key: refused before MCP sees anything.
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "x", "version": "1"}}});
    assert_eq!(d.http("POST", "/mcp", None, Some(init)).status, 401);

    for mode in ["legacy", "auto"] {
        std::fs::remove_file(w.cwd.join("b.txt")).ok();
        let r = report(client(
            &w,
            &py,
            &["http", mode, "full", &cwd, &url, &operator],
        ));
        check_full(&w, &r, mode);
    }
    let who = submitters(&w);
    assert!(
        who.iter()
            .all(|a| a.starts_with("mcp:kernos-test-client@key:")),
        "{who:?}"
    );

    // A viewer is offered only what it may do, and cannot act.
    let r = report(client(
        &w,
        &py,
        &["http", "auto", "viewer", &cwd, &url, &viewer],
    ));
    assert_eq!(r["tools"], json!(["kernos_history"]), "{r}");
    assert_eq!(r["read"]["isError"], true);
    assert!(text_of(&r["read"]).contains("viewer"), "{r}");
    assert!(
        !structured(&r["history"])["transactions"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    // Another organisation sees only its own history: the one read it just made.
    let r = report(client(
        &w,
        &py,
        &["http", "auto", "viewer", &cwd, &url, &other],
    ));
    let own = structured(&r["read"])["transaction"].clone();
    let seen = &structured(&r["history"])["transactions"];
    assert_eq!(seen.as_array().unwrap().len(), 1, "{seen}");
    assert_eq!(seen[0]["tx"], own, "{seen}");
}

#[test]
fn a_client_that_cannot_ask_leaves_the_step_in_the_daemons_queue() {
    let Some(py) = python_sdk() else { return };
    let w = world();
    let key = new_key(&w, "local", "operator");
    let d = Daemon::start(&w, &[]);
    let url = format!("http://{}/mcp", d.addr);
    let cwd = w.cwd.to_str().unwrap().to_owned();
    let child = client(&w, &py, &["http", "auto", "queue", &cwd, &url, &key]);

    // The step waits in the queue, where a person answers it (here with `kernos approve`).
    let until = Instant::now() + Duration::from_secs(30);
    let pending = loop {
        let v = d
            .http("GET", "/v1/state/approvals", Some(&key), None)
            .json();
        if let Some(a) = v.as_array().unwrap().first() {
            break a.clone();
        }
        assert!(Instant::now() < until, "no approval appeared");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(pending["name"], "fs.write");
    assert!(
        !w.cwd.join("d.txt").exists(),
        "nothing ran before the answer"
    );
    let id = pending["approval"].as_str().unwrap();
    let listed = w.run(&["approvals"]);
    let listed = text(&listed.stdout);
    assert!(
        listed.contains(id) && listed.contains("fs.write"),
        "{listed}"
    );
    let out = w.run(&["approve", id, "--reason", "checked"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), format!("approved {id}"));

    let r = report(child);
    assert_eq!(structured(&r["write"])["status"], "committed", "{r}");
    assert_eq!(
        std::fs::read_to_string(w.cwd.join("d.txt")).unwrap(),
        "queued\n"
    );
}
