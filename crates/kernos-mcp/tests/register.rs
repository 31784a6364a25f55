//! Which configured servers' tools join the catalog: only pinned ones, under
//! `mcp.<server>.<tool>`, with the config's declarations; nothing is started to find out.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::path::Path;

use kernos_core::{EffectKind, Reversibility, Risk};
use kernos_mcp::snapshot::{self, Snapshot, ToolInfo, tools_hash};
use kernos_mcp::{McpConfig, Status, register};
use kernos_tools::Registry;
use serde_json::json;

fn config() -> McpConfig {
    toml::from_str(
        r#"
        [[servers]]
        name = "files"
        command = ["/nonexistent/never-started"]
        write = ["/srv/inbox"]
        [servers.tools.read]
        effects = ["read"]
        [servers.tools.put]
        effects = ["write"]
        risk = "medium"

        [[servers]]
        name = "unreviewed"
        command = ["/nonexistent/never-started"]

        [[servers]]
        name = "broken"
        url = "http://127.0.0.1:9/mcp"
        "#,
    )
    .unwrap()
}

fn tool(name: &str) -> ToolInfo {
    ToolInfo {
        name: name.into(),
        title: None,
        description: Some(format!("The {name} tool.\nMore words.")),
        input_schema: json!({"type": "object", "properties": {"path": {"type": "string"}}}),
        output_schema: None,
        annotations: Some(json!({"readOnlyHint": true})),
    }
}

fn pin(data: &Path, server: &str, tools: Vec<ToolInfo>) {
    let snap = Snapshot {
        server: server.into(),
        hash: tools_hash(&tools),
        trusted_by: "user:ann".into(),
        trusted_at_ms: 1,
        tools,
    };
    snapshot::save(data, &snap).unwrap();
}

#[test]
fn only_pinned_servers_join_the_catalog_with_their_declarations() {
    let data = tempfile::tempdir().unwrap();
    pin(
        data.path(),
        "files",
        vec![tool("read"), tool("put"), tool("other")],
    );
    std::fs::write(snapshot::snapshot_path(data.path(), "broken"), "{").unwrap();
    let mut registry = Registry::builtin();
    let builtin = registry.names().count();
    let servers = register(
        &mut registry,
        &config(),
        data.path(),
        Path::new("/usr/bin/kernos"),
    );

    let status: Vec<(&str, &Status)> = servers
        .iter()
        .map(|r| (r.name.as_str(), &r.status))
        .collect();
    assert!(matches!(
        status[0],
        ("files", Status::Trusted { tools: 3, .. })
    ));
    assert_eq!(status[1], ("unreviewed", &Status::NotReviewed));
    assert!(
        matches!(status[2], ("broken", Status::Broken(why)) if why.contains("kernos mcp trust"))
    );
    assert_eq!(registry.names().count(), builtin + 3);

    let (full, read) = registry.get_name("mcp.files.read").unwrap();
    assert_eq!(registry.split_name(full), Some(("mcp.files", "read")));
    let spec = read.spec();
    assert_eq!(spec.summary, "The read tool.");
    assert_eq!(spec.effects, vec![EffectKind::Read]);
    assert_eq!(spec.reversibility, Reversibility::ReadOnly);

    let put = registry.get("mcp.files", "put").unwrap().spec().clone();
    assert_eq!(put.risk_floor, Some(Risk::Medium));
    assert_eq!(put.reversibility, Reversibility::Irreversible);
    assert!(put.summary.contains("Kernos cannot undo it"));

    // Declared by nobody: may change anything, at high risk.
    let other = registry.get("mcp.files", "other").unwrap().spec().clone();
    assert!(other.effects.contains(&EffectKind::Exec));
    assert_eq!(other.risk_floor, Some(Risk::High));
    assert_eq!(kernos_policy::risk_class(&other), Risk::High);

    let tools = registry.tools();
    let files = tools.iter().find(|t| t.name == "mcp.files").unwrap();
    assert_eq!(files.actions.len(), 3);
    assert!(files.summary.contains("External MCP server files"));
    assert!(registry.get_name("mcp.unreviewed.anything").is_none());
}
