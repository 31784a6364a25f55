//! `[mcp]` in the config file: the external MCP servers, how each is reached, what its process
//! may touch in the sandbox, and what each of its tools is declared to do.
//!
//! ```toml
//! [[mcp.servers]]
//! name = "files"
//! command = ["node", "/opt/mcp/server-filesystem/dist/index.js", "/srv/share"]
//! read = ["/srv/share"]
//! write = ["/srv/share/inbox"]
//! [mcp.servers.tools.read_text_file]
//! effects = ["read"]
//! [mcp.servers.default]
//! effects = ["write"]
//! risk = "medium"
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;

use kernos_core::{EffectKind, Risk};
use serde::{Deserialize, Serialize};

use crate::error::McpError;

/// The `[mcp]` section.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McpConfig {
    /// `[[mcp.servers]]`, in file order.
    #[serde(default)]
    pub servers: Vec<ServerConfig>,
}

/// One external MCP server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Its name in Kernos (`[a-z0-9_-]+`): its tools are `mcp.<name>.<tool>`.
    pub name: String,
    /// A stdio server: the program and its arguments, started inside the sandbox.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    /// A streamable HTTP server: its endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Names of environment variables passed from Kernos's environment (nothing else is).
    #[serde(default)]
    pub env: Vec<String>,
    /// Paths the server's tools read.
    #[serde(default)]
    pub read: Vec<PathBuf>,
    /// Paths beneath which the server's changing tools may write: the sandbox allows writes
    /// there and nowhere else.
    #[serde(default)]
    pub write: Vec<PathBuf>,
    /// `host:port` peers the server process may reach (a URL server's own endpoint is added).
    #[serde(default)]
    pub network: Vec<String>,
    /// Seconds one call (start, list, call) may take.
    #[serde(default = "default_timeout")]
    pub timeout_s: u64,
    /// Per-tool declarations, by the server's tool name.
    #[serde(default)]
    pub tools: BTreeMap<String, ToolDecl>,
    /// The declaration for tools not named in `tools`. Without one such a tool may change
    /// anything: write, delete and exec on the server's paths, at high risk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<ToolDecl>,
}

fn default_timeout() -> u64 {
    30
}

/// What an operator declares one tool does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolDecl {
    /// Effect kinds: `read`, `write`, `delete`, `exec`, `network`, `privileged`.
    pub effects: Vec<EffectKind>,
    /// The least risk policy may assess (it may find more, never less).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub risk: Option<Risk>,
}

impl ToolDecl {
    /// A tool nobody declared: it may change anything, so policy asks, at high risk.
    pub fn undeclared() -> ToolDecl {
        ToolDecl {
            effects: vec![EffectKind::Write, EffectKind::Delete, EffectKind::Exec],
            risk: Some(Risk::High),
        }
    }

    /// Whether a call only reads (talking to the network included).
    pub fn reads_only(&self) -> bool {
        self.effects
            .iter()
            .all(|e| matches!(e, EffectKind::Read | EffectKind::Network))
    }
}

impl McpConfig {
    /// Checks every server (see [`ServerConfig::validate`]) and that names are unique.
    pub fn validate(&self) -> Result<(), McpError> {
        let mut seen = std::collections::BTreeSet::new();
        for s in &self.servers {
            s.validate()?;
            if !seen.insert(s.name.as_str()) {
                return Err(McpError::config(
                    &s.name,
                    "two [[mcp.servers]] have this name",
                ));
            }
        }
        Ok(())
    }

    /// The server called `name`.
    pub fn server(&self, name: &str) -> Option<&ServerConfig> {
        self.servers.iter().find(|s| s.name == name)
    }
}

impl ServerConfig {
    /// The declaration that applies to `tool`.
    pub fn decl(&self, tool: &str) -> ToolDecl {
        self.tools
            .get(tool)
            .or(self.default.as_ref())
            .cloned()
            .unwrap_or_else(ToolDecl::undeclared)
    }

    /// Checks the name, the transport, paths and peers; the error says which field and why.
    pub fn validate(&self) -> Result<(), McpError> {
        let bad = |why: String| Err(McpError::config(&self.name, why));
        if self.name.is_empty()
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
        {
            return bad("name must be lowercase letters, digits, '_' or '-'".into());
        }
        match (&self.command, &self.url) {
            (Some(_), Some(_)) | (None, None) => {
                return bad("give exactly one of command = [..] or url = \"..\"".into());
            }
            (Some(c), None) if c.first().is_none_or(|p| p.is_empty()) => {
                return bad("command is empty: give the program and its arguments".into());
            }
            (None, Some(u)) if url_peer(u).is_none() => {
                return bad(format!(
                    "url {u:?} is not an http:// or https:// URL with a host"
                ));
            }
            _ => {}
        }
        for p in self.read.iter().chain(&self.write) {
            if !p.is_absolute() {
                return bad(format!("path {} is not absolute", p.display()));
            }
        }
        for n in &self.network {
            if parse_peer(n).is_none() {
                return bad(format!("network entry {n:?} is not host:port"));
            }
        }
        for v in &self.env {
            if v.is_empty() || v.contains('=') {
                return bad(format!("env entry {v:?} is not a variable name"));
            }
        }
        if self.timeout_s == 0 {
            return bad("timeout_s must be at least 1".into());
        }
        Ok(())
    }

    /// The peers the server's process may reach: `network`, plus a URL server's endpoint.
    pub fn peers(&self) -> Vec<(String, u16)> {
        let mut v: Vec<(String, u16)> = self.network.iter().filter_map(|n| parse_peer(n)).collect();
        if let Some(p) = self.url.as_deref().and_then(url_peer) {
            v.push(p);
        }
        v
    }
}

/// `host:port` (an IPv6 host in brackets).
fn parse_peer(s: &str) -> Option<(String, u16)> {
    let (host, port) = s.rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return None;
    }
    Some((host.to_owned(), port.parse().ok()?))
}

/// The host and port a URL connects to.
fn url_peer(url: &str) -> Option<(String, u16)> {
    let (scheme, rest) = url.split_once("://")?;
    let default = match scheme {
        "http" => 80,
        "https" => 443,
        _ => return None,
    };
    let authority = rest.split(['/', '?', '#']).next()?;
    let authority = authority.rsplit('@').next()?;
    if authority.is_empty() {
        return None;
    }
    if authority.ends_with(']') || !authority.contains(':') {
        return Some((authority.trim_matches(['[', ']']).to_owned(), default));
    }
    parse_peer(authority)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<McpConfig, String> {
        let c: McpConfig = toml::from_str(s).map_err(|e| e.to_string())?;
        c.validate().map_err(|e| e.to_string())?;
        Ok(c)
    }

    #[test]
    fn a_stdio_server_with_declared_tools_and_a_default() {
        let c = parse(
            r#"
            [[servers]]
            name = "files"
            command = ["node", "index.js", "/srv"]
            env = ["LANG"]
            read = ["/srv"]
            write = ["/srv/inbox"]
            [servers.tools.read_text_file]
            effects = ["read"]
            [servers.default]
            effects = ["write"]
            risk = "medium"
            "#,
        )
        .unwrap();
        let s = c.server("files").unwrap();
        assert_eq!(s.timeout_s, 30);
        assert!(s.decl("read_text_file").reads_only());
        assert_eq!(s.decl("write_file").effects, vec![EffectKind::Write]);
        assert_eq!(s.decl("write_file").risk, Some(Risk::Medium));
    }

    #[test]
    fn an_undeclared_tool_without_a_default_may_change_anything_at_high_risk() {
        let c = parse("[[servers]]\nname = \"x\"\nurl = \"https://mcp.example.com/mcp\"").unwrap();
        let d = c.servers[0].decl("anything");
        assert!(!d.reads_only());
        assert!(d.effects.contains(&EffectKind::Exec));
        assert_eq!(d.risk, Some(Risk::High));
        assert_eq!(c.servers[0].peers(), vec![("mcp.example.com".into(), 443)]);
    }

    #[test]
    fn mistakes_are_named() {
        for (toml, want) in [
            ("name = \"Files\"\ncommand = [\"x\"]", "lowercase"),
            ("name = \"f\"", "exactly one of"),
            (
                "name = \"f\"\ncommand = [\"x\"]\nurl = \"http://h\"",
                "exactly one of",
            ),
            ("name = \"f\"\ncommand = []", "command is empty"),
            ("name = \"f\"\nurl = \"ftp://h\"", "not an http"),
            (
                "name = \"f\"\ncommand = [\"x\"]\nwrite = [\"rel\"]",
                "not absolute",
            ),
            (
                "name = \"f\"\ncommand = [\"x\"]\nnetwork = [\"h\"]",
                "host:port",
            ),
            (
                "name = \"f\"\ncommand = [\"x\"]\ntimeout_s = 0",
                "timeout_s",
            ),
            (
                "name = \"f\"\ncommand = [\"x\"]\ncolour = 1",
                "unknown field",
            ),
            (
                "name = \"f\"\ncommand = [\"x\"]\n[servers.tools.t]\neffects = [\"fly\"]",
                "unknown variant",
            ),
        ] {
            let err = parse(&format!("[[servers]]\n{toml}")).unwrap_err();
            assert!(err.contains(want), "{toml}: {err}");
        }
        let twice = "[[servers]]\nname = \"a\"\ncommand = [\"x\"]\n[[servers]]\nname = \"a\"\ncommand = [\"y\"]";
        assert!(parse(twice).unwrap_err().contains("two [[mcp.servers]]"));
    }

    #[test]
    fn peers_come_from_network_and_the_url() {
        assert_eq!(
            url_peer("http://127.0.0.1:8931/mcp"),
            Some(("127.0.0.1".into(), 8931))
        );
        assert_eq!(url_peer("https://u@[::1]/x"), Some(("::1".into(), 443)));
        assert_eq!(parse_peer("[::1]:80"), Some(("::1".into(), 80)));
        assert_eq!(url_peer("http:///x"), None);
    }
}
