//! The command line, defined once: help, completions and the man page all come from here.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Kernos: an AI-native operating layer for Linux.
///
/// Say what you want in plain language; Kernos turns it into a plan of tool calls, shows what
/// each step changes and how risky it is, asks where policy says to ask, runs every step in a
/// sandbox, records everything in a tamper-evident journal, and can undo it.
///
/// Examples:
///   kernos "show the 5 largest files in /var/log"
///   kernos "find .tmp files in ./cache and delete them"
///   kernos undo
///   kernos            (opens the interactive prompt)
#[derive(Debug, Parser)]
#[command(name = "kernos", version, about, long_about, verbatim_doc_comment)]
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

    /// Run steps that need confirmation without asking (policy denials still stand).
    #[arg(short = 'y', long, global = true)]
    pub yes: bool,

    /// Show what would happen; change nothing.
    #[arg(long, global = true)]
    pub dry_run: bool,

    /// Where Kernos keeps its journal and snapshots [default: $XDG_DATA_HOME/kernos].
    #[arg(long, global = true, env = "KERNOS_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    // ---- language models (issue 7): see llm_cmd.rs -------------------------------------
    /// Show why each step is there (from the model, or from the offline planner).
    #[arg(long, global = true)]
    pub explain: bool,

    /// Ask this model (skips the offline planner's confident answer).
    #[arg(
        long,
        global = true,
        value_name = "MODEL",
        help_heading = "Language models"
    )]
    pub model: Option<String>,

    /// Ask only this provider (skips the offline planner's confident answer).
    #[arg(
        long,
        global = true,
        value_name = "NAME",
        help_heading = "Language models"
    )]
    pub provider: Option<String>,

    /// Neither read nor write the plan cache.
    #[arg(long, global = true, help_heading = "Language models")]
    pub no_cache: bool,

    /// Agent mode: observe with read-only steps, propose, ask, run, repeat (same as
    /// `kernos agent`).
    #[arg(long, global = true, help_heading = "Language models")]
    pub agent: bool,

    /// Agent mode: most steps to run.
    #[arg(
        long,
        global = true,
        value_name = "N",
        help_heading = "Language models"
    )]
    pub max_steps: Option<usize>,

    /// Agent mode: most tokens (prompt + completion) to spend.
    #[arg(
        long,
        global = true,
        value_name = "N",
        help_heading = "Language models"
    )]
    pub max_tokens: Option<u64>,

    /// Agent mode: most wall time, e.g. 90s, 5m.
    #[arg(long, global = true, value_name = "DURATION", value_parser = humantime::parse_duration, help_heading = "Language models")]
    pub time: Option<std::time::Duration>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the plan for a request without running it.
    Plan {
        /// The request.
        #[arg(required = true, value_name = "REQUEST")]
        request: Vec<String>,
    },
    /// List what Kernos can do: every tool action with its summary, effects and risk class.
    Tools {
        /// One tool (`fs`) or action (`fs.find`).
        name: Option<String>,
        /// Print the action's argument JSON schema.
        #[arg(long)]
        schema: bool,
    },
    /// The transactions Kernos ran, newest first.
    History {
        /// How many.
        #[arg(short = 'n', long, default_value_t = 20)]
        limit: usize,
    },
    /// One transaction in full: plan, decisions, approvals, results.
    Show {
        /// Transaction id (or its last characters, as `kernos history` shows them).
        id: String,
    },
    /// Undo a transaction (default: the last one that changed something).
    Undo {
        /// Transaction id (or its last characters).
        id: Option<String>,
    },
    /// Check what works on this machine: sandbox features, service and package managers,
    /// data directory.
    Doctor,
    /// Show, check or edit the configuration file.
    Config {
        /// What to do.
        #[command(subcommand)]
        action: Option<ConfigCmd>,
    },
    /// Print shell completions.
    Completions {
        /// Shell.
        shell: clap_complete::Shell,
    },
    /// Read and check the journal of everything Kernos did.
    #[command(subcommand)]
    Journal(JournalCmd),
    /// Run a command under an explicit sandbox policy (for debugging confinement).
    #[command(subcommand)]
    Sandbox(SandboxCmd),
    // ---- language models (issue 7): see llm_cmd.rs and agent_cmd.rs --------------------
    /// The configured language models: list them, test one, choose the preferred provider.
    Models {
        /// What to do (default: list).
        #[command(subcommand)]
        action: Option<ModelsCmd>,
    },
    /// Language-model usage from the journal: calls, tokens and cost per provider and model,
    /// plan cache hit rate.
    Usage,
    /// Work towards a goal that needs looking first ("why is nginx failing?"): observe with
    /// read-only steps, propose the next steps, ask, run, repeat — within step, token and time
    /// budgets (--max-steps, --max-tokens, --time).
    Agent {
        /// The goal.
        #[arg(required = true, value_name = "GOAL")]
        goal: Vec<String>,
    },
    // --- the daemon (kernos-server) ---
    /// Run the daemon: the HTTP/SSE API on --listen (default from [server] in the config)
    /// and always on the Unix socket <data_dir>/kernos.sock. Stops cleanly on SIGTERM.
    Serve {
        /// Address to listen on, e.g. 127.0.0.1:7878 (non-loopback needs TLS or --insecure).
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
        /// Allow a non-loopback address without TLS (only behind something that encrypts).
        #[arg(long)]
        insecure: bool,
    },
    /// Manage the daemon's API keys (through the daemon when it runs, else in the journal).
    #[command(subcommand)]
    Keys(KeysCmd),
}

/// `kernos models …`
#[derive(Debug, Subcommand)]
pub enum ModelsCmd {
    /// Every configured provider, lane and model, in cascade order, with prices and whether
    /// the API key is set.
    List,
    /// One tiny call ("reply ok") to a provider; reports latency, tokens and cost.
    Test {
        /// Provider name, or provider/model.
        name: String,
    },
    /// Put a provider first in the cascade (written to the config file, validated).
    Use {
        /// Provider name.
        name: String,
    },
}

/// `kernos keys …`
#[derive(Debug, Subcommand)]
pub enum KeysCmd {
    /// Create a key bound to an organisation and a role; it is printed once.
    Create {
        /// Organisation, e.g. acme.
        #[arg(long)]
        org: String,
        /// viewer, operator, admin or owner.
        #[arg(long)]
        role: kernos_server::Role,
        /// What the key is for.
        #[arg(long, default_value = "")]
        label: String,
    },
    /// List keys (never their secrets).
    List {
        /// Only this organisation.
        #[arg(long)]
        org: Option<String>,
    },
    /// Revoke a key at once.
    Revoke {
        /// Key id (as `kernos keys list` shows it).
        id: String,
    },
}

/// `kernos sandbox …`
#[derive(Debug, Subcommand)]
pub enum SandboxCmd {
    /// Run CMD confined: read-only root, writes only where --write says, no network unless
    /// --net; prints why it was stopped, if it was.
    Exec(Box<kernos_sandbox::ExecArgs>),
    /// What confinement this kernel supports.
    Probe,
}

/// `kernos config …`
#[derive(Debug, Subcommand)]
pub enum ConfigCmd {
    /// Print the effective configuration (file plus environment overrides).
    Show,
    /// Print where the configuration file is.
    Path,
    /// Validate the file; exits 1 with the line of the first problem.
    Check,
    /// Open the file in $EDITOR (created from a commented template if missing), then validate.
    Edit,
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
        // Global options before or after the subcommand keep it a subcommand.
        let c = Cli::try_parse_from(["kernos", "--data-dir", "/x", "journal", "verify"]).unwrap();
        assert!(matches!(
            c.command,
            Some(Command::Journal(JournalCmd::Verify))
        ));
        assert!(c.request.is_empty());
        let c = Cli::try_parse_from(["kernos", "journal", "verify", "--data-dir", "/x"]).unwrap();
        assert!(matches!(
            c.command,
            Some(Command::Journal(JournalCmd::Verify))
        ));
        let c = Cli::try_parse_from(["kernos", "--json", "list", "files", "in", "/etc"]).unwrap();
        assert_eq!(c.request, vec!["list", "files", "in", "/etc"]);
        let c = Cli::try_parse_from(["kernos", "--yes", "delete old.log"]).unwrap();
        assert!(c.global.yes);
        let c = Cli::try_parse_from(["kernos", "plan", "--json", "list files"]).unwrap();
        assert!(matches!(c.command, Some(Command::Plan { .. })) && c.global.json);
        let c = Cli::try_parse_from([
            "kernos",
            "agent",
            "why is nginx failing?",
            "--max-steps",
            "4",
            "--time",
            "90s",
        ])
        .unwrap();
        assert!(matches!(c.command, Some(Command::Agent { .. })));
        assert_eq!(c.global.max_steps, Some(4));
        assert_eq!(c.global.time, Some(std::time::Duration::from_secs(90)));
        let c = Cli::try_parse_from(["kernos", "--model", "m", "--no-cache", "--explain", "x y"])
            .unwrap();
        assert_eq!(c.global.model.as_deref(), Some("m"));
        assert!(c.global.no_cache && c.global.explain);
        let c = Cli::try_parse_from(["kernos", "models", "test", "local"]).unwrap();
        assert!(matches!(
            c.command,
            Some(Command::Models {
                action: Some(ModelsCmd::Test { .. })
            })
        ));
    }
}
