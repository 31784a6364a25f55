//! `kernos config [show|path|check|edit]`.

use std::process::ExitCode;

use anyhow::Context;

use crate::app::App;
use crate::config;

/// Runs a config subcommand (default: show).
pub fn run(app: Option<&App>, action: Option<crate::cli::ConfigCmd>) -> anyhow::Result<ExitCode> {
    use crate::cli::ConfigCmd;
    let path = config::path()?;
    match action.unwrap_or(ConfigCmd::Show) {
        ConfigCmd::Path => println!("{}", path.display()),
        ConfigCmd::Show => {
            let cfg = config::load()?;
            if app.is_some_and(|a| a.global.json) {
                println!("{}", serde_json::to_string_pretty(&cfg)?);
            } else {
                println!(
                    "# {} ({})",
                    path.display(),
                    if path.exists() {
                        "with environment overrides"
                    } else {
                        "not created yet: defaults"
                    }
                );
                println!("{}", toml::to_string_pretty(&cfg)?);
            }
        }
        ConfigCmd::Check => match config::load() {
            Ok(_) => println!("ok: {}", path.display()),
            Err(e) => {
                eprintln!("kernos: {e}");
                return Ok(ExitCode::from(1));
            }
        },
        ConfigCmd::Edit => {
            if !path.exists() {
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent)
                        .with_context(|| format!("cannot create {}", parent.display()))?;
                }
                std::fs::write(&path, config::template())
                    .with_context(|| format!("cannot write {}", path.display()))?;
            }
            loop {
                edit_file(&path)?;
                match config::load() {
                    Ok(_) => {
                        println!("ok: {} is valid", path.display());
                        break;
                    }
                    Err(e) => {
                        eprintln!("kernos: {e}");
                        if !crate::term::interactive()
                            || crate::term::ask_key("Edit again? [y/n] ", &['y', 'n'], Some('y'))?
                                != 'y'
                        {
                            return Ok(ExitCode::from(1));
                        }
                    }
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Opens `path` in `$VISUAL`/`$EDITOR` (default `vi`) and waits.
pub fn edit_file(path: &std::path::Path) -> anyhow::Result<()> {
    let editor = std::env::var("VISUAL")
        .or_else(|_| std::env::var("EDITOR"))
        .unwrap_or_else(|_| "vi".into());
    // The editor setting may carry arguments ("code --wait"), so let the shell split it.
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{editor} \"$1\""))
        .arg("kernos-editor")
        .arg(path)
        .status()
        .with_context(|| format!("cannot start the editor {editor:?}; set EDITOR"))?;
    anyhow::ensure!(
        status.success(),
        "the editor {editor:?} exited with {status}"
    );
    Ok(())
}
