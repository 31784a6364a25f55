//! MCP is one more way to act: over `/mcp`, a tool call meets the same walls as any request
//! (another organisation's files, the daemon's data, the host's credential stores), and what
//! it answers leaks nothing of them.

use kernos_server::Role;
use serde_json::json;

use crate::{Auth, T};

/// One stateless MCP request (revision 2026-07-28) as `auth`, and the JSON-RPC answer (the
/// response is JSON or an event stream holding it).
pub(crate) async fn mcp(
    t: &T,
    auth: Auth<'_>,
    method: &str,
    params: serde_json::Value,
) -> serde_json::Value {
    let mut params = params;
    params["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "isolation", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {"elicitation": {"form": {}}},
    });
    // The 2026-07-28 routing headers: the method, and the tool or resource it names.
    let name = params["name"]
        .as_str()
        .or(params["uri"].as_str())
        .unwrap_or_default()
        .to_owned();
    let body = json!({"jsonrpc": "2.0", "id": 7, "method": method, "params": params});
    let r = t
        .call_with(
            "POST",
            "/mcp",
            auth,
            Some(body),
            &[
                ("host", "localhost"),
                ("accept", "application/json, text/event-stream"),
                ("mcp-protocol-version", "2026-07-28"),
                ("mcp-method", method),
                ("mcp-name", &name),
            ],
        )
        .await;
    let text = String::from_utf8_lossy(&r.body).to_string();
    let json = text
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .map(str::trim)
        .find(|d| d.contains("\"id\":7"))
        .map(str::to_owned)
        .unwrap_or(text.clone());
    serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {} {text}", r.status))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_an_mcp_client_calls_meets_the_same_walls_as_any_request() {
    const BLUE_SECRET: &str = "blue-secret-mcp-7c2a";
    let t = T::start();
    let red = t.key("red", Role::Owner).await;
    let blue = t.key("blue", Role::Owner).await;
    let data = t.data_dir();
    let blue_file = crate::blue_secret(&t, &blue, BLUE_SECRET).await;
    let mut attacks = crate::cross_org_attacks(&data, &blue_file);
    attacks.push(("fs.read", json!({"path": "../blue/work/secret.txt"})));
    for (tool, args) in attacks {
        let r = mcp(
            &t,
            Auth::Key(&red),
            "tools/call",
            json!({"name": tool, "arguments": args}),
        )
        .await;
        let result = &r["result"];
        assert_eq!(result["isError"], true, "{tool} {args}: {r}");
        let status = result["structuredContent"]["status"].as_str().unwrap_or("");
        assert!(
            status == "denied" || status == "failed",
            "{tool} {args}: {r}"
        );
        assert!(!r.to_string().contains(BLUE_SECRET), "{tool} leaked: {r}");
    }
    // Plain language takes the same path: planned, then refused the same way.
    let r = mcp(
        &t,
        Auth::Key(&red),
        "tools/call",
        json!({"name": "kernos_request", "arguments": {"request": format!("show {}", blue_file.display())}}),
    )
    .await;
    assert_eq!(r["result"]["isError"], true, "{r}");
    assert!(!r.to_string().contains(BLUE_SECRET), "{r}");
    // The host is unchanged: blue's file is whole and nothing was written beside it.
    assert_eq!(
        std::fs::read_to_string(&blue_file).unwrap(),
        format!("{BLUE_SECRET}\n")
    );
    assert!(!data.join("orgs/blue/work/pwned.txt").exists());
}
