//! An installed generated skill as an ordinary catalog action, `skill.<name>`: its declared
//! effects (with the arguments put into its declared paths) are what policy scores and what
//! the step's sandbox is derived from; its script runs through `ctx.run`, the sandbox helper;
//! a reversible one snapshots its declared write paths first, so undo puts them back.

use std::path::{Path, PathBuf};

use kernos_core::{ActionSpec, Effect, EffectKind, Reversibility, Target};
use kernos_tools::{Change, Ctx, DynAction, Output, Recorder, Registry, RunOpts, ToolError};
use serde_json::{Map, Value};

use crate::bundle::{Body, Bundle, Kind, Language};
use crate::template::fill;

/// The tool generated skills are registered under.
pub const TOOL: &str = "skill";

/// One generated skill.
pub struct SkillAction {
    bundle: Bundle,
    spec: ActionSpec,
}

impl SkillAction {
    /// The action for an installed generated skill (`None` for a taught one: those are
    /// plans, not actions).
    pub fn new(bundle: Bundle) -> Option<SkillAction> {
        if bundle.manifest.kind != Kind::Generated {
            return None;
        }
        let m = &bundle.manifest;
        let mut effects = m.effects.clone();
        for k in [EffectKind::Exec]
            .into_iter()
            .chain((!m.write.is_empty()).then_some(EffectKind::Write))
            .chain((!m.network.is_empty()).then_some(EffectKind::Network))
        {
            if !effects.contains(&k) {
                effects.push(k);
            }
        }
        let changes = effects
            .iter()
            .any(|k| !matches!(k, EffectKind::Read | EffectKind::Exec));
        let reversibility = match (changes, m.reversible) {
            (false, _) => Reversibility::ReadOnly,
            (true, true) => Reversibility::Reversible,
            (true, false) => Reversibility::Irreversible,
        };
        let spec = ActionSpec {
            name: m.name.clone(),
            summary: format!("{} (generated skill v{})", m.summary, m.version),
            args_schema: bundle.args_schema(),
            effects,
            reversibility,
            output: Vec::new(),
            risk_floor: None,
        };
        Some(SkillAction { bundle, spec })
    }

    fn paths(&self, list: &[String], args: &Value, ctx: &Ctx<'_>) -> Vec<PathBuf> {
        let empty = Map::new();
        let args = args.as_object().unwrap_or(&empty);
        list.iter()
            .map(|p| match fill(p, args) {
                Value::String(s) => ctx.env.resolve(&s),
                other => ctx.env.resolve(&other.to_string()),
            })
            .collect()
    }
}

/// The concrete effects of running `bundle` with `args` (paths resolved by `resolve`).
pub fn effects_of(
    bundle: &Bundle,
    args: &Map<String, Value>,
    resolve: &dyn Fn(&str) -> PathBuf,
) -> Vec<Effect> {
    let m = &bundle.manifest;
    let path = |p: &String| match fill(p, args) {
        Value::String(s) => resolve(&s),
        other => resolve(&other.to_string()),
    };
    let mut v = vec![Effect {
        kind: EffectKind::Exec,
        target: Target::Command {
            line: format!("generated skill {} v{}", m.name, m.version),
        },
    }];
    for p in &m.read {
        v.push(Effect::path(EffectKind::Read, path(p), true));
    }
    for p in &m.write {
        v.push(Effect::path(EffectKind::Write, path(p), true));
    }
    for peer in &m.network {
        let (host, port) = match peer.rsplit_once(':') {
            Some((h, p)) => (h.to_owned(), p.parse().ok()),
            None => (peer.clone(), None),
        };
        v.push(Effect {
            kind: EffectKind::Network,
            target: Target::Host { host, port },
        });
    }
    v
}

/// The script's environment: each argument as `KS_<NAME>` (upper case).
pub fn script_env(args: &Map<String, Value>) -> Vec<(String, String)> {
    args.iter()
        .map(|(k, v)| {
            let text = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (format!("KS_{}", k.to_uppercase()), text)
        })
        .collect()
}

/// Every file and directory beneath `root` (and `root`), parents before children, with
/// whether it is a directory and its mtime; symlinks are not followed.
fn entries_under(root: &Path) -> Vec<(PathBuf, bool, i64)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(p) = stack.pop() {
        let Ok(m) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        let t = kernos_tools::undo::mtime_ns(&m);
        if m.is_file() {
            out.push((p, false, t));
        } else if m.is_dir() {
            if let Ok(rd) = std::fs::read_dir(&p) {
                stack.extend(rd.flatten().map(|e| e.path()));
            }
            out.push((p, true, t));
        }
    }
    out.sort();
    out
}

impl DynAction for SkillAction {
    fn spec(&self) -> &ActionSpec {
        &self.spec
    }

    fn check_args(&self, args: &Value) -> Result<(), String> {
        let empty = Map::new();
        let a = match args {
            Value::Object(m) => m,
            Value::Null => &empty,
            _ => return Err("arguments must be an object".into()),
        };
        for p in &self.bundle.manifest.params {
            match a.get(&p.name) {
                None => return Err(format!("missing argument {}", p.name)),
                Some(v) => {
                    let ok = match p.kind.as_str() {
                        "integer" => v.is_i64() || v.is_u64(),
                        "number" => v.is_number(),
                        "boolean" => v.is_boolean(),
                        _ => v.is_string(),
                    };
                    if !ok {
                        return Err(format!("argument {} must be a {}", p.name, p.kind));
                    }
                }
            }
        }
        if let Some(k) = a
            .keys()
            .find(|k| !self.bundle.manifest.params.iter().any(|p| &p.name == *k))
        {
            return Err(format!("unknown argument {k}"));
        }
        Ok(())
    }

    fn effects(&self, args: &Value, ctx: &Ctx<'_>) -> kernos_tools::Result<Vec<Effect>> {
        let empty = Map::new();
        let a = args.as_object().unwrap_or(&empty);
        Ok(effects_of(&self.bundle, a, &|p| ctx.env.resolve(p)))
    }

    fn dry_run(&self, args: &Value, _ctx: &Ctx<'_>) -> kernos_tools::Result<Vec<Change>> {
        if self.spec.reversibility == Reversibility::ReadOnly {
            return Ok(Vec::new());
        }
        Ok(vec![Change::Exec {
            command: format!(
                "skill.{} {}",
                self.bundle.manifest.name,
                serde_json::to_string(args).unwrap_or_default()
            ),
        }])
    }

    fn execute(
        &self,
        args: &Value,
        ctx: &Ctx<'_>,
        undo: &mut Recorder<'_>,
    ) -> kernos_tools::Result<Output> {
        let m = &self.bundle.manifest;
        let Body::Script { code } = &self.bundle.body else {
            return Err(ToolError::Failed(format!("{} has no script", m.name)));
        };
        let language = m.language.unwrap_or(Language::Sh);
        let empty = Map::new();
        let a = args.as_object().unwrap_or(&empty);
        let writes = self.paths(&m.write, args, ctx);
        // Undo: every file the script could overwrite or delete is snapshotted first, and
        // every directory's time noted, to put back once what it created is removed.
        let before: Vec<(PathBuf, bool, i64)> =
            writes.iter().flat_map(|w| entries_under(w)).collect();
        if m.reversible {
            for (f, dir, _) in &before {
                if !dir {
                    undo.before_write(f)?;
                }
            }
        }
        let argv = language.argv(code, &m.name);
        let out = ctx.run(
            &argv,
            RunOpts {
                stdin: Some(serde_json::to_vec(args).unwrap_or_default()),
                env: script_env(a),
                ..RunOpts::default()
            },
        )?;
        let mut changes = Vec::new();
        // Parents before children, so undo (in reverse) removes children first.
        for (p, dir, _) in writes.iter().flat_map(|w| entries_under(w)) {
            if before.iter().any(|(b, _, _)| *b == p) {
                continue;
            }
            if m.reversible {
                let parent = p.parent().and_then(|d| {
                    before
                        .iter()
                        .find(|(b, is_dir, _)| *is_dir && b == d)
                        .map(|(b, _, t)| kernos_tools::undo::DirStamp {
                            path: b.clone(),
                            mtime_ns: *t,
                        })
                });
                undo.created(&p, parent)?;
            }
            changes.push(Change::Create {
                path: p,
                bytes: None,
                dir,
            });
        }
        if out.code != Some(0) {
            return Err(ToolError::Failed(format!(
                "skill {} failed (exit {:?}, signal {:?}): {}",
                m.name,
                out.code,
                out.signal,
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        let text = out.stdout_text();
        Ok(Output {
            text: (!text.trim().is_empty()).then(|| text.trim_end().to_owned()),
            changes,
            cpu_ms: out.cpu_ms,
            ..Output::default()
        })
    }
}

/// Adds the installed generated skills to `registry` as `skill.<name>`; returns their names.
pub fn register(registry: &mut Registry, installed: &[Bundle]) -> Vec<String> {
    let mut names = Vec::new();
    for b in installed {
        if let Some(a) = SkillAction::new(b.clone()) {
            if names.is_empty() {
                registry.add_tool(TOOL, "Skills Kernos was taught or generated and installed");
            }
            names.push(format!("{TOOL}.{}", b.manifest.name));
            registry.register_dyn(TOOL, Box::new(a));
        }
    }
    names
}

/// The catalog built for an organisation and the hashes of the bundles it was built from.
type Built = (Vec<String>, std::sync::Arc<Registry>);

/// Each organisation's catalog: the process's, plus that organisation's installed generated
/// skills as `skill.<name>`. Read from the store at each lookup (a directory listing and the
/// bundles' hashes, as the taught-skill planner does), so an install, rollback or removal
/// counts from the next request, in a running daemon too; the catalog built for a set of
/// bundles is kept until that set changes.
#[derive(Debug)]
pub struct OrgCatalogs {
    store: crate::Store,
    /// Per organisation: the hashes of the bundles its catalog was built from, and it.
    built: std::sync::Mutex<std::collections::HashMap<String, Built>>,
}

impl OrgCatalogs {
    /// Catalogs over the skill store of `data_dir`.
    pub fn new(data_dir: &Path) -> OrgCatalogs {
        OrgCatalogs {
            store: crate::Store::new(data_dir),
            built: std::sync::Mutex::default(),
        }
    }

    /// `base` plus `org`'s installed (and still attested) generated skills; `None` when it
    /// has none.
    pub fn catalog(
        &self,
        base: &std::sync::Arc<Registry>,
        org: &str,
    ) -> Option<std::sync::Arc<Registry>> {
        let (installed, _) = self.store.installed_bundles(org);
        let generated: Vec<Bundle> = installed
            .into_iter()
            .filter(|b| b.manifest.kind == Kind::Generated)
            .collect();
        if generated.is_empty() {
            return None;
        }
        let hashes: Vec<String> = generated.iter().map(Bundle::hash).collect();
        let mut built = self
            .built
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((h, r)) = built.get(org)
            && *h == hashes
        {
            return Some(r.clone());
        }
        let mut registry = base.extended();
        register(&mut registry, &generated);
        let registry = std::sync::Arc::new(registry);
        built.insert(org.to_owned(), (hashes, registry.clone()));
        Some(registry)
    }
}
