//! The command line, defined once: help, completions and the man page all come from here.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Kernos: an AI-native operating layer for Linux.
///
/// Say what you want in plain language; Kernos turns it into a plan of tool calls, shows what
/// each step changes and how risky it is, asks where policy says to ask, runs every step in a
/// sandbox, records everything in a tamper-evident journal, and can undo it.
#[derive(Debug, Parser)]
#[command(name = "kernos", version, about, long_about)]
pub struct Cli {
    /// Options that apply to every command.
    #[command(flatten)]
    pub global: Global,

    /// What to do.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// A request in plain language, e.g. "show the 5 largest files in /var/log".
    #[arg(value_name = "REQUEST")]
    pub request: Vec<String>,
}

/// Options shared by every command.
#[derive(Debug, Clone, Args)]
pub struct Global {
    /// Print machine-readable JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,

    /// Where Kernos keeps its journal and snapshots [default: $XDG_DATA_HOME/kernos].
    #[arg(long, global = true, env = "KERNOS_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Read and check the journal of everything Kernos did.
    #[command(subcommand)]
    Journal(JournalCmd),
}

/// `kernos journal …`
#[derive(Debug, Subcommand)]
pub enum JournalCmd {
    /// Show the newest events, optionally following new ones as they are written.
    Tail(TailArgs),
    /// Show one event in full.
    Show {
        /// Its sequence number.
        seq: u64,
    },
    /// Check that no event was edited, deleted, inserted or reordered. Exits 1 and names the
    /// first bad sequence number if one was.
    Verify,
}

/// `kernos journal tail` options.
#[derive(Debug, Args)]
pub struct TailArgs {
    /// How many of the newest events to show.
    #[arg(short = 'n', long, default_value_t = 20)]
    pub lines: usize,
    /// Keep running and print new events as they arrive.
    #[arg(short, long)]
    pub follow: bool,
    /// Only kinds starting with this prefix (e.g. `step.`).
    #[arg(long, value_name = "PREFIX")]
    pub kind: Option<String>,
    /// Only this transaction.
    #[arg(long, value_name = "ID")]
    pub tx: Option<String>,
    /// Only this action.
    #[arg(long, value_name = "ID")]
    pub action: Option<String>,
    /// Only this actor (e.g. `user:alice`).
    #[arg(long)]
    pub actor: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_valid() {
        Cli::command().debug_assert();
    }

    #[test]
    fn request_and_subcommands_parse() {
        let c = Cli::try_parse_from(["kernos", "show the 5 largest files in /var/log"]).unwrap();
        assert_eq!(c.request, vec!["show the 5 largest files in /var/log"]);
        assert!(c.command.is_none());
        let c = Cli::try_parse_from(["kernos", "journal", "tail", "-n", "5", "--json"]).unwrap();
        assert!(c.global.json);
        assert!(matches!(
            c.command,
            Some(Command::Journal(JournalCmd::Tail(TailArgs {
                lines: 5,
                ..
            })))
        ));
    }
}
