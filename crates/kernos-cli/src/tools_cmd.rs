//! `kernos tools [NAME] [--schema]`: the catalog, with summaries, effects and risk classes.

use std::process::ExitCode;

use anyhow::bail;

use crate::app::App;

/// Lists the catalog, one tool, or one action (with `--schema`, its argument JSON schema).
pub fn run(app: &App, name: Option<&str>, schema: bool) -> anyhow::Result<ExitCode> {
    let registry = app.registry_for(kernos_core::LOCAL_ORG);
    let tools = registry.tools();
    let style = app.style;
    // A tool's name may hold dots (`mcp.files`): a whole tool name first, then a catalog
    // action's own split, then `tool.action` at the first dot.
    let (tool_filter, action_filter) = match name {
        None => (None, None),
        Some(n) if tools.iter().any(|t| t.name == n) => (Some(n), None),
        Some(n) => match registry.split_name(n).or_else(|| n.split_once('.')) {
            Some((t, a)) => (Some(t), Some(a)),
            None => (Some(n), None),
        },
    };
    if let Some(t) = tool_filter {
        let known = tools.iter().any(|x| x.name == t);
        let action_known = action_filter.is_none_or(|a| registry.get(t, a).is_some());
        if !known || !action_known {
            bail!(
                "no tool or action {:?}; closest: {}",
                name.unwrap_or(""),
                registry.closest(name.unwrap_or(""), 3).join(", ")
            );
        }
    }
    if schema {
        let (Some(t), Some(a)) = (tool_filter, action_filter) else {
            bail!("--schema needs one action, e.g. `kernos tools fs.find --schema`");
        };
        let spec = registry.get(t, a).map(|x| x.spec().clone());
        println!(
            "{}",
            serde_json::to_string_pretty(&spec.map(|s| s.args_schema))?
        );
        return Ok(ExitCode::SUCCESS);
    }
    if app.global.json {
        let selected: Vec<_> = tools
            .into_iter()
            .filter(|t| tool_filter.is_none_or(|f| f == t.name))
            .map(|mut t| {
                t.actions
                    .retain(|a| action_filter.is_none_or(|f| f == a.name));
                let actions: Vec<serde_json::Value> = t
                    .actions
                    .iter()
                    .map(|a| {
                        let mut v = serde_json::to_value(a).unwrap_or_default();
                        v["risk_class"] = kernos_policy::risk_class(a).as_str().into();
                        v
                    })
                    .collect();
                serde_json::json!({"name": t.name, "summary": t.summary, "actions": actions})
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&selected)?);
        return Ok(ExitCode::SUCCESS);
    }
    for t in tools
        .iter()
        .filter(|t| tool_filter.is_none_or(|f| f == t.name))
    {
        println!("{}  {}", style.bold(&t.name), style.dim(&t.summary));
        for a in t
            .actions
            .iter()
            .filter(|a| action_filter.is_none_or(|f| f == a.name))
        {
            let effects: Vec<&str> = a.effects.iter().map(|e| e.as_str()).collect();
            let risk = kernos_policy::risk_class(a);
            let pad = 6usize.saturating_sub(risk.as_str().len());
            println!(
                "  {:<18} {}{}  {:<12}  {:<28} {}",
                format!("{}.{}", t.name, a.name),
                style.risk(risk),
                " ".repeat(pad),
                a.reversibility.as_str(),
                effects.join(","),
                a.summary
            );
        }
    }
    if action_filter.is_some() {
        println!(
            "\n(arguments: `kernos tools {} --schema`)",
            name.unwrap_or("")
        );
    }
    Ok(ExitCode::SUCCESS)
}
