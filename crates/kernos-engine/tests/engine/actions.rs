//! Small real actions for testing the engine apart from the catalog.

use std::path::PathBuf;

use kernos_core::{ColumnKind, Effect, EffectKind, Reversibility};
use kernos_tools::args::Paths;
use kernos_tools::{Action, Change, Ctx, Meta, Output, Recorder, Registry, Result, ToolError, row};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

pub fn register(r: &mut Registry) {
    r.register(Find);
    r.register(Write);
    r.register(Delete);
    r.register(Slow);
    r.register(Stray);
}

#[derive(Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FindArgs {
    path: String,
    suffix: String,
}

/// Lists files under a directory whose names end with a suffix.
pub struct Find;

impl Action for Find {
    type Args = FindArgs;
    fn meta(&self) -> Meta {
        Meta {
            tool: "t",
            name: "find",
            summary: "find files by suffix",
            effects: &[EffectKind::Read],
            reversibility: Reversibility::ReadOnly,
            output: &[("path", ColumnKind::Path)],
        }
    }
    fn effects(&self, a: &FindArgs, ctx: &Ctx<'_>) -> Result<Vec<Effect>> {
        Ok(vec![Effect::path(
            EffectKind::Read,
            ctx.env.resolve(&a.path),
            true,
        )])
    }
    fn execute(&self, a: &FindArgs, ctx: &Ctx<'_>, _: &mut Recorder<'_>) -> Result<Output> {
        let dir = ctx.env.resolve(&a.path);
        let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map_err(|e| ToolError::io("cannot list", &dir, e))?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.to_string_lossy().ends_with(&a.suffix))
            .collect();
        paths.sort();
        Ok(Output::table(
            vec![],
            paths.iter().map(|p| row([("path", json!(p))])).collect(),
        ))
    }
}

#[derive(Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WriteArgs {
    path: String,
    content: String,
}

/// Writes a file, creating parents.
pub struct Write;

impl Action for Write {
    type Args = WriteArgs;
    fn meta(&self) -> Meta {
        Meta {
            tool: "t",
            name: "write",
            summary: "write a file",
            effects: &[EffectKind::Write],
            reversibility: Reversibility::Reversible,
            output: &[("path", ColumnKind::Path)],
        }
    }
    fn effects(&self, a: &WriteArgs, ctx: &Ctx<'_>) -> Result<Vec<Effect>> {
        Ok(vec![Effect::path(
            EffectKind::Write,
            ctx.env.real(&ctx.env.resolve(&a.path)),
            false,
        )])
    }
    fn dry_run(&self, a: &WriteArgs, ctx: &Ctx<'_>) -> Result<Vec<Change>> {
        let p = ctx.env.resolve(&a.path);
        Ok(vec![match std::fs::metadata(&p) {
            Ok(m) => Change::Overwrite {
                path: p,
                old_bytes: m.len(),
                new_bytes: a.content.len() as u64,
            },
            Err(_) => Change::Create {
                path: p,
                bytes: Some(a.content.len() as u64),
                dir: false,
            },
        }])
    }
    fn execute(&self, a: &WriteArgs, ctx: &Ctx<'_>, undo: &mut Recorder<'_>) -> Result<Output> {
        let changes = self.dry_run(a, ctx)?;
        let p = ctx.env.resolve(&a.path);
        if let Some(parent) = p.parent() {
            undo.before_mkdir(parent)?;
            std::fs::create_dir_all(parent)
                .map_err(|e| ToolError::io("cannot create", parent, e))?;
        }
        undo.before_write(&p)?;
        std::fs::write(&p, &a.content).map_err(|e| ToolError::io("cannot write", &p, e))?;
        Ok(Output {
            changes,
            ..Output::table(vec![], vec![row([("path", json!(p))])])
        })
    }
}

#[derive(Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteArgs {
    path: Paths,
}

/// Moves paths to the trash.
pub struct Delete;

impl Action for Delete {
    type Args = DeleteArgs;
    fn meta(&self) -> Meta {
        Meta {
            tool: "t",
            name: "delete",
            summary: "delete paths",
            effects: &[EffectKind::Delete],
            reversibility: Reversibility::Reversible,
            output: &[("path", ColumnKind::Path)],
        }
    }
    fn effects(&self, a: &DeleteArgs, ctx: &Ctx<'_>) -> Result<Vec<Effect>> {
        Ok(a.path
            .list()
            .iter()
            .map(|p| {
                let p = ctx.env.real(&ctx.env.resolve(p));
                let rec = p.is_dir();
                Effect::path(EffectKind::Delete, p, rec)
            })
            .collect())
    }
    fn dry_run(&self, a: &DeleteArgs, ctx: &Ctx<'_>) -> Result<Vec<Change>> {
        a.path
            .list()
            .iter()
            .map(|p| {
                let p = ctx.env.resolve(p);
                let m = std::fs::metadata(&p).map_err(|e| ToolError::io("cannot delete", &p, e))?;
                Ok(Change::Delete {
                    path: p,
                    bytes: m.len(),
                    entries: 1,
                })
            })
            .collect()
    }
    fn execute(&self, a: &DeleteArgs, ctx: &Ctx<'_>, undo: &mut Recorder<'_>) -> Result<Output> {
        let changes = self.dry_run(a, ctx)?;
        for p in a.path.list() {
            undo.trash(&ctx.env.resolve(p))?;
        }
        Ok(Output {
            changes,
            ..Output::default()
        })
    }
}

#[derive(Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SlowArgs {
    dir: String,
    count: usize,
}

/// Writes many small files slowly, checking for cancellation: for Ctrl-C and crash tests.
pub struct Slow;

impl Action for Slow {
    type Args = SlowArgs;
    fn meta(&self) -> Meta {
        Meta {
            tool: "t",
            name: "slow",
            summary: "write files slowly",
            effects: &[EffectKind::Write],
            reversibility: Reversibility::Reversible,
            output: &[],
        }
    }
    fn effects(&self, a: &SlowArgs, ctx: &Ctx<'_>) -> Result<Vec<Effect>> {
        Ok(vec![Effect::path(
            EffectKind::Write,
            ctx.env.resolve(&a.dir),
            true,
        )])
    }
    fn execute(&self, a: &SlowArgs, ctx: &Ctx<'_>, undo: &mut Recorder<'_>) -> Result<Output> {
        let dir = ctx.env.resolve(&a.dir);
        undo.before_mkdir(&dir)?;
        std::fs::create_dir_all(&dir).map_err(|e| ToolError::io("cannot create", &dir, e))?;
        for i in 0..a.count {
            ctx.check_cancel()?;
            let p = dir.join(format!("f{i:06}"));
            undo.before_write(&p)?;
            std::fs::write(&p, format!("{i}")).map_err(|e| ToolError::io("cannot write", &p, e))?;
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        Ok(Output::default())
    }
}

#[derive(Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StrayArgs {
    /// What it declares it touches.
    path: String,
    /// What it really touches.
    actual: String,
    /// Write `actual` instead of reading it.
    #[serde(default)]
    write: bool,
}

/// A tool with a bug (or worse): it declares one path and touches another. Only the engine's
/// confinement of the step's thread stands in its way.
pub struct Stray;

impl Action for Stray {
    type Args = StrayArgs;
    fn meta(&self) -> Meta {
        Meta {
            tool: "t",
            name: "stray",
            summary: "touch a path other than the declared one",
            effects: &[EffectKind::Read, EffectKind::Write],
            reversibility: Reversibility::Reversible,
            output: &[],
        }
    }
    fn effects(&self, a: &StrayArgs, ctx: &Ctx<'_>) -> Result<Vec<Effect>> {
        let kind = if a.write {
            EffectKind::Write
        } else {
            EffectKind::Read
        };
        Ok(vec![Effect::path(kind, ctx.env.resolve(&a.path), false)])
    }
    fn execute(&self, a: &StrayArgs, ctx: &Ctx<'_>, _: &mut Recorder<'_>) -> Result<Output> {
        let p = ctx.env.resolve(&a.actual);
        if a.write {
            std::fs::write(&p, "stray").map_err(|e| ToolError::io("cannot write", &p, e))?;
            return Ok(Output::default());
        }
        let text = std::fs::read_to_string(&p).map_err(|e| ToolError::io("cannot read", &p, e))?;
        Ok(Output::text(text))
    }
}
