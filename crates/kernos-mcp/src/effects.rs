//! A call's concrete effects: the tool's declared kinds on the server's declared paths and
//! peers. Policy judges these, and the sandbox the driver and its server run in is derived
//! from exactly these (`kernos_tools::sandbox::policy_for`): writes only beneath `write`,
//! the network only to `network` and a URL server's endpoint.

use kernos_core::{Effect, EffectKind, Target};

use crate::config::{ServerConfig, ToolDecl};

/// The effects of one call of a tool declared `decl` on server `s`.
pub fn call_effects(s: &ServerConfig, decl: &ToolDecl) -> Vec<Effect> {
    let mut v = Vec::new();
    let mut add = |e: Effect| {
        if !v.contains(&e) {
            v.push(e);
        }
    };
    for kind in &decl.effects {
        match kind {
            EffectKind::Read => {
                for p in s.read.iter().chain(&s.write) {
                    add(Effect::path(EffectKind::Read, p.clone(), true));
                }
                if s.read.is_empty() && s.write.is_empty() {
                    add(Effect {
                        kind: EffectKind::Read,
                        target: Target::System,
                    });
                }
            }
            EffectKind::Write | EffectKind::Delete => {
                for p in &s.write {
                    add(Effect::path(*kind, p.clone(), true));
                }
                if s.write.is_empty() {
                    // A change with nowhere declared to make it: policy still sees a change,
                    // and the sandbox gives the server no writable path at all.
                    add(Effect {
                        kind: *kind,
                        target: Target::System,
                    });
                }
            }
            EffectKind::Exec => add(Effect {
                kind: EffectKind::Exec,
                target: Target::Command {
                    line: format!("a tool of MCP server {}", s.name),
                },
            }),
            EffectKind::Privileged => add(Effect {
                kind: EffectKind::Privileged,
                target: Target::System,
            }),
            EffectKind::Network => {}
        }
    }
    // The peers are reachable whatever the tool: a URL server is reached over the network for
    // every call, and a stdio server's declared peers are what its process may use.
    for (host, port) in s.peers() {
        add(Effect {
            kind: EffectKind::Network,
            target: Target::Host {
                host,
                port: Some(port),
            },
        });
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use kernos_core::Risk;
    use std::path::PathBuf;

    fn server() -> ServerConfig {
        ServerConfig {
            name: "files".into(),
            command: Some(vec!["node".into()]),
            url: None,
            env: Vec::new(),
            read: vec![PathBuf::from("/srv/share")],
            write: vec![PathBuf::from("/srv/share/inbox")],
            network: Vec::new(),
            timeout_s: 30,
            tools: Default::default(),
            default: None,
        }
    }

    #[test]
    fn a_read_tool_reads_the_declared_paths_and_reaches_nothing() {
        let d = ToolDecl {
            effects: vec![EffectKind::Read],
            risk: None,
        };
        let e = call_effects(&server(), &d);
        assert!(e.iter().all(|e| e.kind == EffectKind::Read), "{e:?}");
        let policy = kernos_tools::sandbox::policy_for(
            &e,
            &kernos_tools::Env::current("/nonexistent/kernos".into()),
        );
        assert!(policy.write.is_empty());
        assert_eq!(policy.network, kernos_core::NetworkPolicy::Deny);
    }

    #[test]
    fn a_write_tool_may_write_only_beneath_the_declared_write_paths() {
        let d = ToolDecl {
            effects: vec![EffectKind::Write],
            risk: Some(Risk::Medium),
        };
        // The sandbox makes existing directories writable: declare a real one.
        let inbox = tempfile::tempdir().unwrap();
        let mut s = server();
        s.write = vec![inbox.path().to_path_buf()];
        let e = call_effects(&s, &d);
        let policy = kernos_tools::sandbox::policy_for(
            &e,
            &kernos_tools::Env::current("/nonexistent/kernos".into()),
        );
        assert_eq!(policy.write, vec![inbox.path().to_path_buf()]);
    }

    #[test]
    fn an_undeclared_tool_runs_something_unknown_and_a_url_server_reaches_its_endpoint() {
        let mut s = server();
        s.command = None;
        s.url = Some("http://127.0.0.1:8931/mcp".into());
        let e = call_effects(&s, &ToolDecl::undeclared());
        assert!(e.iter().any(|e| e.kind == EffectKind::Exec));
        assert!(e.contains(&Effect {
            kind: EffectKind::Network,
            target: Target::Host {
                host: "127.0.0.1".into(),
                port: Some(8931)
            }
        }));
    }
}
