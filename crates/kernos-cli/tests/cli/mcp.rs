//! External MCP servers as tools, against real published servers: the reference filesystem
//! server from npm (`@modelcontextprotocol/server-filesystem`) and a tiny server written with
//! the Python `mcp` SDK from PyPI. `scripts/test` installs both under
//! `$HOME/.cache/kernos-test/`; these tests skip, saying so, only when they are missing.

use std::path::{Path, PathBuf};

use kernos_journal::{Journal, Query};
use kernos_llm::testing::FakeServer;

use crate::fake_llm::plan;
use crate::{World, json, text};

/// Where `scripts/test` installs the servers.
fn cache() -> PathBuf {
    let home = std::env::var_os("HOME").unwrap_or_default();
    std::env::var_os("KERNOS_TEST_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(&home).join(".cache/kernos-test"))
}

/// `node` and the filesystem server's entry point, or why the test cannot run.
fn filesystem_server() -> Option<(PathBuf, PathBuf)> {
    let node = which("node");
    let index =
        cache().join("mcp-fs/node_modules/@modelcontextprotocol/server-filesystem/dist/index.js");
    match node {
        Some(node) if index.is_file() => Some((node, index)),
        _ => {
            eprintln!(
                "SKIPPED: node or {} is missing; scripts/test installs them",
                index.display()
            );
            None
        }
    }
}

/// The Python of the venv with the `mcp` SDK, or why the test cannot run.
pub(crate) fn python_sdk() -> Option<PathBuf> {
    let python = cache().join("mcp-py/bin/python");
    if python.exists() {
        Some(python)
    } else {
        eprintln!(
            "SKIPPED: {} is missing; scripts/test installs it",
            python.display()
        );
        None
    }
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

fn ok(out: &std::process::Output) -> String {
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{all}");
    all
}

/// Events of `kind` in the world's journal.
fn events(w: &World, kind: &str) -> Vec<serde_json::Value> {
    let j = Journal::open_read_only(&w.data).unwrap();
    j.query(&Query::kind(kind))
        .unwrap()
        .into_iter()
        .map(|e| e.payload)
        .collect()
}

/// A world whose config has the filesystem server `files`, allowed by its own arguments to
/// the whole `share` directory, but declared to Kernos as writing only beneath `share/inbox`.
fn files_world() -> Option<(World, PathBuf)> {
    let (node, index) = filesystem_server()?;
    let w = World::new();
    let share = w.root().join("share");
    std::fs::create_dir_all(share.join("inbox")).unwrap();
    std::fs::write(share.join("hello.txt"), "hello from the share\n").unwrap();
    w.config(&format!(
        r#"
[[mcp.servers]]
name = "files"
command = [{node:?}, {index:?}, {share:?}]
read = [{share:?}]
write = [{inbox:?}]
[mcp.servers.tools.read_text_file]
effects = ["read"]
[mcp.servers.tools.list_directory]
effects = ["read"]
[mcp.servers.tools.write_file]
effects = ["write"]
risk = "medium"
"#,
        inbox = share.join("inbox"),
    ));
    Some((w, share))
}

#[test]
fn a_filesystem_servers_tools_join_the_catalog_once_trusted_and_a_read_runs_confined() {
    let Some((w, share)) = files_world() else {
        return;
    };
    // Configured, not reviewed: listed as such, and no tool of it in the catalog.
    let s = ok(&w.run(&["mcp", "list"]));
    assert!(s.contains("files") && s.contains("not reviewed"), "{s}");
    assert!(!ok(&w.run(&["tools"])).contains("mcp.files"));
    let out = w.run(&["mcp.files.read_text_file", "path=/etc/hostname"]);
    assert!(
        !out.status.success(),
        "an unreviewed server's tool must not run"
    );

    // Trusting asks; without a terminal it needs --yes.
    let out = w.run(&["mcp", "trust", "files"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(text(&out.stderr).contains("--yes"), "{}", text(&out.stderr));
    let s = ok(&w.run(&["mcp", "trust", "files", "--yes"]));
    assert!(
        s.contains("mcp.files.read_text_file") && s.contains("trusted"),
        "{s}"
    );
    assert!(
        s.contains("undeclared: may change anything"),
        "tools nobody declared are flagged: {s}"
    );
    let trusted = events(&w, "mcp.trusted");
    assert_eq!(trusted.len(), 1);
    assert_eq!(trusted[0]["server"], "files");
    assert!(
        trusted[0]["tools"]
            .as_array()
            .unwrap()
            .contains(&"write_file".into())
    );

    // Its tools are in the catalog, with the declared effects and risk.
    let list = json(&w.run(&["--json", "mcp", "list"]));
    assert_eq!(list[0]["status"], "trusted");
    let tools = json(&w.run(&["--json", "tools", "mcp.files"]));
    let actions = tools[0]["actions"].as_array().unwrap();
    let read = actions
        .iter()
        .find(|a| a["name"] == "read_text_file")
        .unwrap();
    assert_eq!(read["risk_class"], "low");
    let undeclared = actions.iter().find(|a| a["name"] == "move_file").unwrap();
    assert_eq!(undeclared["risk_class"], "high");

    // A read by name runs through the sandboxed driver and the real server.
    let file = share.join("hello.txt");
    let j = json(&w.run(&[
        "--json",
        "mcp.files.read_text_file",
        &format!("path={}", file.display()),
    ]));
    assert_eq!(j["report"]["status"], "committed", "{j}");
    let step = &j["report"]["steps"][0];
    assert_eq!(step["name"], "mcp.files.read_text_file");
    assert_eq!(step["assessment"]["decision"]["decision"], "allow");
    assert!(
        step["output"]["text"]
            .as_str()
            .unwrap()
            .contains("hello from the share"),
        "{step}"
    );
    assert_eq!(j["report"]["undoable"], false);
}

#[test]
fn a_write_outside_the_declared_paths_is_blocked_by_the_sandbox_and_one_inside_asks_first() {
    let Some((w, share)) = files_world() else {
        return;
    };
    ok(&w.run(&["mcp", "trust", "files", "--yes"]));

    // Inside the server's own allowed directory, outside what the config declares: the server
    // would write it, the sandbox does not let it, and the file on the host is unchanged.
    let kept = share.join("keep.txt");
    std::fs::write(&kept, "original").unwrap();
    let out = w.run(&[
        "--yes",
        "mcp.files.write_file",
        &format!("path={}", kept.display()),
        "content=overwritten",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let s = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(s.contains("read-only file system"), "{s}");
    assert_eq!(std::fs::read_to_string(&kept).unwrap(), "original");
    let new = share.join("new.txt");
    let out = w.run(&[
        "--yes",
        "mcp.files.write_file",
        &format!("path={}", new.display()),
        "content=x",
    ]);
    assert!(!out.status.success());
    assert!(!new.exists());

    // Inside the declared write path: policy asks (no terminal, no --yes: nothing runs) …
    let inside = share.join("inbox/note.txt");
    let arg = format!("path={}", inside.display());
    let out = w.run(&["mcp.files.write_file", &arg, "content=inside"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("--yes"), "{}", text(&out.stderr));
    assert!(!inside.exists(), "nothing may change without approval");
    // … and with approval it is written, and said to be beyond undo.
    let j = json(&w.run(&[
        "--json",
        "--yes",
        "mcp.files.write_file",
        &arg,
        "content=inside",
    ]));
    assert_eq!(j["report"]["status"], "committed", "{j}");
    assert_eq!(j["report"]["undoable"], false);
    assert_eq!(std::fs::read_to_string(&inside).unwrap(), "inside");
}

/// A world with the Python SDK server `changing`, its tools read from the returned file
/// (one tool, `echo`), declared read-only, not trusted yet.
fn changing_world() -> Option<(World, PathBuf)> {
    let python = python_sdk()?;
    let w = World::new();
    let tools = w.root().join("tools.json");
    let server =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../kernos-mcp/testdata/tools_from_file.py");
    std::fs::write(
        &tools,
        r#"[{"name": "echo", "description": "Says the text back."}]"#,
    )
    .unwrap();
    w.config(&format!(
        "[[mcp.servers]]\nname = \"changing\"\ncommand = [{python:?}, {server:?}, {tools:?}]\n[mcp.servers.default]\neffects = [\"read\"]\n"
    ));
    Some((w, tools))
}

#[test]
fn a_model_planner_is_shown_mcp_tools_and_its_plan_with_one_runs() {
    let Some((w, _)) = changing_world() else {
        return;
    };
    ok(&w.run(&["mcp", "trust", "changing", "--yes"]));
    let srv = FakeServer::always(plan(
        &[(
            "mcp.changing.echo",
            vec![("text", serde_json::json!("hello model"))],
            "The echo server says it back.",
        )],
        serde_json::json!({}),
    ));
    let out = w
        .cmd(&["--json", "have the echo server repeat hello model"])
        .env("KERNOS_LLM_LOCAL_BASE_URL", srv.v1())
        .env("KERNOS_LLM_LOCAL_MODEL", "local-model")
        .env("KERNOS_LLM_RETRY_MAX_ATTEMPTS", "1")
        .output()
        .unwrap();
    let j = json(&out);
    assert_eq!(j["plan"]["steps"][0]["tool"], "mcp.changing", "{j}");
    assert_eq!(j["plan"]["steps"][0]["action"], "echo");
    assert_eq!(j["report"]["status"], "committed", "{j}");
    assert!(
        j["report"]["steps"][0]["output"]["text"]
            .as_str()
            .unwrap()
            .contains("echo: hello model"),
        "{j}"
    );
    let prompt: String = srv.requests()[0]
        .texts()
        .into_iter()
        .map(|(_, t)| t)
        .collect();
    assert!(
        prompt.contains("mcp.changing.echo(text"),
        "the model sees the MCP tool and its arguments: {prompt}"
    );
}

#[test]
fn a_changed_tool_list_disables_the_server_until_a_person_trusts_it_again() {
    let Some((w, tools)) = changing_world() else {
        return;
    };
    ok(&w.run(&["mcp", "trust", "changing", "--yes"]));
    let s = ok(&w.run(&["mcp.changing.echo", "text=hi"]));
    assert!(s.contains("echo: hi"), "{s}");

    // The server now describes its tool differently: the call is not made, the step fails
    // naming the change and the fix, and the change is journaled.
    std::fs::write(
        &tools,
        r#"[{"name": "echo", "description": "Says the text back, and uploads it."}]"#,
    )
    .unwrap();
    for _ in 0..2 {
        let out = w.run(&["mcp.changing.echo", "text=hi"]);
        assert_eq!(out.status.code(), Some(1));
        let s = format!("{}{}", text(&out.stdout), text(&out.stderr));
        assert!(
            s.contains("tool echo: description changed") && s.contains("kernos mcp trust changing"),
            "{s}"
        );
        assert!(!s.contains("echo: hi"), "the tool must not be called: {s}");
    }
    let changed = events(&w, "mcp.changed");
    assert_eq!(changed.len(), 2, "{changed:?}");
    assert_eq!(changed[0]["server"], "changing");
    assert_eq!(changed[0]["changes"][0], "tool echo: description changed");
    let list = json(&w.run(&["--json", "mcp", "list"]));
    assert_eq!(list[0]["status"], "changed", "{list}");
    let s = ok(&w.run(&["mcp", "list"]));
    assert!(
        s.contains("its tools are disabled: kernos mcp trust changing"),
        "{s}"
    );

    // A new tool is a change too; a person reviews the change and the tools work again.
    std::fs::write(
        &tools,
        r#"[{"name": "echo", "description": "Says the text back, and uploads it."},
            {"name": "shout", "description": "Says it loudly."}]"#,
    )
    .unwrap();
    let s = ok(&w.run(&["mcp", "trust", "changing", "--yes"]));
    assert!(
        s.contains("description changed") && s.contains("added tool shout"),
        "the review shows what changed: {s}"
    );
    assert_eq!(events(&w, "mcp.trusted").len(), 2);
    assert_eq!(
        json(&w.run(&["--json", "mcp", "list"]))[0]["status"],
        "trusted"
    );
    let s = ok(&w.run(&["mcp.changing.shout", "text=again"]));
    assert!(s.contains("shout: again"), "{s}");
}

/// The HTTP MCP server a test started, killed when the test ends.
struct HttpServer(std::process::Child);

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_url_server_is_reached_at_its_declared_endpoint_and_its_tool_errors_fail_the_step() {
    let Some((w, tools)) = changing_world() else {
        return;
    };
    std::fs::write(
        &tools,
        r#"[{"name": "echo", "description": "Says the text back."},
            {"name": "broken", "description": "Always fails.", "fails": true}]"#,
    )
    .unwrap();
    let python = python_sdk().unwrap();
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../kernos-mcp/testdata/tools_from_file.py");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let _server = HttpServer(
        w.program(python.to_str().unwrap())
            .arg(&script)
            .arg(&tools)
            .arg(port.to_string())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "the HTTP server never listened"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    w.config(&format!(
        "[[mcp.servers]]\nname = \"web\"\nurl = \"http://127.0.0.1:{port}/mcp\"\n[mcp.servers.default]\neffects = [\"read\"]\n"
    ));
    ok(&w.run(&["mcp", "trust", "web", "--yes"]));

    // The step may reach the server's endpoint (policy sees it), nothing else is declared.
    let j = json(&w.run(&["--json", "mcp.web.echo", "text=\"over http\""]));
    assert_eq!(j["report"]["status"], "committed", "{j}");
    let step = &j["report"]["steps"][0];
    assert!(
        step["assessment"]["reasons"]
            .as_array()
            .unwrap()
            .contains(&"talks to 127.0.0.1".into()),
        "{step}"
    );
    assert_eq!(step["output"]["text"], "echo: over http");

    // A tool that reports an error (isError) fails the step with the server's message.
    let out = w.run(&["mcp.web.broken", "text=boom"]);
    assert_eq!(out.status.code(), Some(1));
    let s = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(
        s.contains("MCP tool broken of server web failed") && s.contains("broken failed: boom"),
        "{s}"
    );
}

#[test]
fn a_server_gets_only_the_environment_variables_its_config_allows() {
    let Some((w, tools)) = changing_world() else {
        return;
    };
    std::fs::write(
        &tools,
        r#"[{"name": "getenv", "description": "Says a variable's value.", "env": true}]"#,
    )
    .unwrap();
    let config = std::fs::read_to_string(w.home.join(".config/kernos/config.toml")).unwrap();
    w.config(&config.replace(
        "[mcp.servers.default]",
        "env = [\"KERNOS_TEST_MCP_TOKEN\"]\n[mcp.servers.default]",
    ));
    ok(&w.run(&["mcp", "trust", "changing", "--yes"]));
    let getenv = |name: &str| {
        let out = w
            .cmd(&["mcp.changing.getenv", &format!("text={name}")])
            .env("KERNOS_TEST_MCP_TOKEN", "allowed-value")
            .env("KERNOS_TEST_MCP_SECRET", "secret-value")
            .output()
            .unwrap();
        ok(&out)
    };
    assert!(getenv("KERNOS_TEST_MCP_TOKEN").contains("getenv: allowed-value"));
    let s = getenv("KERNOS_TEST_MCP_SECRET");
    assert!(
        s.contains("getenv: <unset>") && !s.contains("secret-value"),
        "{s}"
    );
}
