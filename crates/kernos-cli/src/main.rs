//! `kernos`: say what you want; Kernos plans it, shows what will change, runs it confined,
//! journals it and can undo it.

mod cli;
mod journal_cmd;
mod render;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            // One readable line (plus causes), never a stack trace.
            eprintln!("kernos: {e}");
            for cause in e.chain().skip(1) {
                eprintln!("  because: {cause}");
            }
            ExitCode::from(1)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let global = cli.global.clone();
    match cli.command {
        Some(Command::Journal(cmd)) => journal_cmd::run(&global, cmd),
        None => {
            if cli.request.is_empty() {
                use clap::CommandFactory;
                Cli::command().print_help()?;
                return Ok(ExitCode::SUCCESS);
            }
            anyhow::bail!(
                "cannot run {:?} yet: this build has the journal but not the planner",
                cli.request.join(" ")
            )
        }
    }
}
