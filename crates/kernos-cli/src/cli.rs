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
#[command(
    name = "kernos",
    version = crate::version::SHORT,
    long_version = crate::version::LONG,
    about,
    long_about,
    verbatim_doc_comment
)]
pub struct Cli {
    /// Options that apply to every command.
    #[command(flatten)]
    pub global: Global,

    /// Options of the request form (`kernos [OPTIONS] "<request>"`, and the prompt).
    #[command(flatten)]
    pub opts: RequestOpts,

    /// What to do.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// A request in plain language, e.g. "show the 5 largest files in /var/log".
    #[arg(value_name = "REQUEST")]
    pub request: Vec<String>,
}

/// Options that apply to every command, before or after its name.
#[derive(Debug, Clone, Args)]
pub struct Global {
    /// Print machine-readable JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,

    /// Where Kernos keeps its journal and snapshots [default: $XDG_DATA_HOME/kernos].
    #[arg(long, global = true, env = "KERNOS_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Merge the config file's `[profile.NAME]` tables over the rest (e.g. `prod`).
    #[arg(long, global = true, env = "KERNOS_PROFILE", value_name = "NAME")]
    pub profile: Option<String>,
}

/// How a request's changes are approved: for the request form, `undo` and `agent`.
#[derive(Debug, Clone, Default, Args)]
pub struct Approval {
    /// Run steps that need confirmation without asking (policy denials still stand).
    #[arg(short = 'y', long)]
    pub yes: bool,

    /// Show what would happen; change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// How a request is planned and the plan shown: for the request form, `plan` and `agent`.
#[derive(Debug, Clone, Default, Args)]
pub struct Planning {
    /// Show why each step is there (from the model, or from the offline planner).
    #[arg(long)]
    pub explain: bool,

    /// Ask this model (skips the offline planner's confident answer).
    #[arg(long, value_name = "MODEL", help_heading = "Language models")]
    pub model: Option<String>,

    /// Ask only this provider (skips the offline planner's confident answer).
    #[arg(long, value_name = "NAME", help_heading = "Language models")]
    pub provider: Option<String>,

    /// Neither read nor write the plan cache.
    #[arg(long, help_heading = "Language models")]
    pub no_cache: bool,
}

/// Agent mode's budgets: for the request form with `--agent`, and `agent`.
#[derive(Debug, Clone, Default, Args)]
pub struct AgentBudget {
    /// Agent mode: most steps to run.
    #[arg(long, value_name = "N", help_heading = "Language models")]
    pub max_steps: Option<usize>,

    /// Agent mode: most tokens (prompt + completion) to spend.
    #[arg(long, value_name = "N", help_heading = "Language models")]
    pub max_tokens: Option<u64>,

    /// Agent mode: most wall time, e.g. 90s, 5m.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration, help_heading = "Language models")]
    pub time: Option<std::time::Duration>,
}

/// Everything that shapes a request. At the top level all of it; a subcommand takes the
/// groups that apply to it, and [`Cli::request_opts`] puts the two together.
#[derive(Debug, Clone, Default, Args)]
pub struct RequestOpts {
    /// `--yes`, `--dry-run`.
    #[command(flatten)]
    pub approval: Approval,

    /// `--explain`, `--model`, `--provider`, `--no-cache`.
    #[command(flatten)]
    pub planning: Planning,

    /// Agent mode: observe with read-only steps, propose, ask, run, repeat (same as
    /// `kernos agent`).
    #[arg(long, help_heading = "Language models")]
    pub agent: bool,

    /// `--max-steps`, `--max-tokens`, `--time`.
    #[command(flatten)]
    pub budget: AgentBudget,

    /// `--on`, `--batch`, `--max-failures`, `--node-timeout`, `--deadline`.
    #[command(flatten)]
    pub fleet: FleetOpts,
}

/// Running a request on the fleet's nodes instead of here (through the daemon).
#[derive(Debug, Clone, Default, Args)]
pub struct FleetOpts {
    /// Run it on the nodes this selects: `all`, `role=web`, `name=web-*`, `disk./var>90%`
    /// (terms joined by `,` must all hold). Planned and approved here once; each node checks
    /// it again with its own policy.
    #[arg(long, value_name = "SELECTOR", help_heading = "Fleet")]
    pub on: Option<String>,

    /// At most this many nodes run it at once (default: all).
    #[arg(long, value_name = "N", requires = "on", help_heading = "Fleet")]
    pub batch: Option<usize>,

    /// Stop sending to more nodes after this many failures.
    #[arg(long, value_name = "N", requires = "on", help_heading = "Fleet")]
    pub max_failures: Option<usize>,

    /// How long to wait for one node's result, e.g. 30s (default 60s).
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration, requires = "on", help_heading = "Fleet")]
    pub node_timeout: Option<std::time::Duration>,

    /// How long a node that is offline now may still run it when it returns (default 1h).
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration, requires = "on", help_heading = "Fleet")]
    pub deadline: Option<std::time::Duration>,
}

impl Approval {
    /// Adds flags given in another place on the command line (`kernos --yes undo`).
    fn merge(&mut self, other: &Approval) {
        self.yes |= other.yes;
        self.dry_run |= other.dry_run;
    }
}

impl Planning {
    /// Adds flags given in another place; a value there wins.
    fn merge(&mut self, other: &Planning) {
        self.explain |= other.explain;
        self.no_cache |= other.no_cache;
        if other.model.is_some() {
            self.model.clone_from(&other.model);
        }
        if other.provider.is_some() {
            self.provider.clone_from(&other.provider);
        }
    }
}

impl AgentBudget {
    /// Adds flags given in another place; a value there wins.
    fn merge(&mut self, other: &AgentBudget) {
        self.max_steps = other.max_steps.or(self.max_steps);
        self.max_tokens = other.max_tokens.or(self.max_tokens);
        self.time = other.time.or(self.time);
    }
}

/// `kernos sandbox exec [--json] [OPTIONS] -- CMD…` alone, without the rest of the CLI.
#[derive(Debug, Parser)]
#[command(name = "kernos sandbox exec", no_binary_name = true)]
struct SandboxExecOnly {
    #[arg(long)]
    json: bool,
    /// The other global flags, accepted after `exec` as the full CLI does (and, as there,
    /// of no use to `sandbox exec`): unknown here, they would be read as the command.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    #[arg(long, value_name = "NAME")]
    profile: Option<String>,
    #[command(flatten)]
    exec: kernos_sandbox::ExecArgs,
}

/// `kernos sandbox exec …` parsed without building the whole command tree (every subcommand,
/// flag and help text: ~0.35 ms of a one-step process's start). Only the plain form is taken:
/// anything this parser does not accept (`--help`, a global flag before `sandbox`, an error)
/// returns `None`, and the full parser then answers exactly as before.
pub fn sandbox_exec_only(argv: &[String]) -> Option<kernos_sandbox::ExecArgs> {
    if argv.get(1).map(String::as_str) != Some("sandbox")
        || argv.get(2).map(String::as_str) != Some("exec")
    {
        return None;
    }
    let parsed = SandboxExecOnly::try_parse_from(&argv[3..]).ok()?;
    let mut exec = parsed.exec;
    exec.json = parsed.json;
    Some(exec)
}

/// `kernos serve [--listen ADDR] [--insecure]` alone, with the global flags after `serve`.
#[derive(Debug, Parser)]
#[command(name = "kernos serve", no_binary_name = true)]
struct ServeOnly {
    #[command(flatten)]
    global: Global,
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    #[arg(long)]
    insecure: bool,
}

/// `kernos "a request in plain words"`: the request form's flags and a request, no subcommands.
#[derive(Debug, Parser)]
#[command(name = "kernos", no_binary_name = true)]
struct RequestOnly {
    #[command(flatten)]
    global: Global,
    #[command(flatten)]
    opts: RequestOpts,
    #[arg(value_name = "REQUEST")]
    request: Vec<String>,
}

impl Cli {
    /// `kernos "show the 5 largest files in /var/log"` — one quoted argument with a space in
    /// it, which no subcommand or flag can be — parsed without building the whole command
    /// tree (~0.2 ms of CPU, ~3 % of such a request's whole process). Anything else returns
    /// `None`, and the full parser answers exactly as before.
    pub fn request_only(argv: &[String]) -> Option<Cli> {
        let [_, request] = argv else {
            return None;
        };
        if request.starts_with('-') || !request.contains(char::is_whitespace) {
            return None;
        }
        let p = RequestOnly::try_parse_from(&argv[1..]).ok()?;
        Some(Cli {
            global: p.global,
            opts: p.opts,
            command: None,
            request: p.request,
        })
    }

    /// `kernos serve …` parsed without building the whole command tree: that tree is ~0.4 ms
    /// natively, but under an emulated CPU (Kernos OS booted under QEMU's TCG, where running
    /// code for the first time is what costs) about 70 ms of the daemon's start. Only the
    /// plain form is taken: anything else (`--help`, a global flag before `serve`, an error)
    /// returns `None`, and the full parser then answers exactly as before.
    pub fn serve_only(argv: &[String]) -> Option<Cli> {
        if argv.get(1).map(String::as_str) != Some("serve") {
            return None;
        }
        let p = ServeOnly::try_parse_from(&argv[2..]).ok()?;
        Some(Cli {
            global: p.global,
            opts: RequestOpts::default(),
            command: Some(Command::Serve {
                listen: p.listen,
                insecure: p.insecure,
            }),
            request: Vec::new(),
        })
    }

    /// Parses `argv` (the program name first). A request typed without quotes whose first
    /// word is also a subcommand (`kernos show the 5 largest files in /var/log`) fails to parse
    /// as that subcommand; it is then read as a request. A flag the subcommand does not take
    /// is not such a failure: `kernos history --yes` says so rather than running the request
    /// "history --yes".
    pub fn parse_args(argv: &[String]) -> Result<Cli, clap::Error> {
        use clap::error::{ContextKind, ContextValue, ErrorKind};
        let e = match Cli::try_parse_from(argv) {
            Ok(c) => return Ok(c),
            Err(e) => e,
        };
        let unknown_flag = e.kind() == ErrorKind::UnknownArgument
            && matches!(e.get(ContextKind::InvalidArg),
                        Some(ContextValue::String(a)) if a.starts_with('-'));
        if unknown_flag || matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
            return Err(e);
        }
        let first_word = argv
            .iter()
            .skip(1)
            .position(|a| !a.starts_with('-'))
            .map(|i| i + 1);
        let words = first_word.map(|i| argv.len() - i).unwrap_or(0);
        if let Some(i) = first_word.filter(|_| words >= 2) {
            let mut again = argv[..i].to_vec();
            again.push("--".into());
            again.extend_from_slice(&argv[i..]);
            if let Ok(c) = Cli::try_parse_from(&again) {
                return Ok(c);
            }
        }
        Err(e)
    }

    /// The request options in force: those given before the subcommand (`kernos --yes undo`)
    /// with the subcommand's own (`kernos undo --yes`) added.
    pub fn request_opts(&self) -> RequestOpts {
        let mut opts = self.opts.clone();
        match &self.command {
            Some(Command::Plan { planning, .. }) => opts.planning.merge(planning),
            Some(Command::Undo { approval, .. }) => opts.approval.merge(approval),
            Some(Command::Agent {
                approval,
                planning,
                budget,
                ..
            }) => {
                opts.approval.merge(approval);
                opts.planning.merge(planning);
                opts.budget.merge(budget);
            }
            _ => {}
        }
        opts
    }
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the plan for a request without running it.
    Plan {
        /// How to plan.
        #[command(flatten)]
        planning: Planning,
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
        /// How to approve.
        #[command(flatten)]
        approval: Approval,
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
    /// budgets (--max-steps, --max-tokens, --time). `kernos agent spawn|list|show|logs|pause|
    /// resume|kill|clone` manage agents that work in the daemon, outliving the prompt.
    #[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
    Agent {
        /// Manage the daemon's agents instead of working here.
        #[command(subcommand)]
        manage: Option<AgentCmd>,
        /// How to approve.
        #[command(flatten)]
        approval: Approval,
        /// How to plan.
        #[command(flatten)]
        planning: Planning,
        /// The budgets.
        #[command(flatten)]
        budget: AgentBudget,
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
    /// This machine as a node of a fleet: `join` a NATS broker, `leave` it.
    #[command(subcommand)]
    Node(NodeCmd),
    /// The fleet this daemon controls: its nodes (state, last seen, labels, facts).
    #[command(subcommand)]
    Fleet(FleetCmd),
    /// What the daemon is doing, live: monitors firing and clearing, schedules running,
    /// agents changing state, steps waiting for approval, actions ending (Ctrl-C to stop).
    Watch {
        /// Every event of the organisation, not only those.
        #[arg(long)]
        all: bool,
    },
    /// Routine work at set times, run by the daemon with nobody connected: add (plan shown,
    /// then stored as approved), list, show, pause, resume, remove, run-now.
    #[command(subcommand)]
    Schedule(ScheduleCmd),
    /// The daemon's agents: state, budget used, what each waits for (same as `kernos agent
    /// list`).
    Agents {
        /// Only agents in this state (running, waiting, paused, finished, failed, killed).
        #[arg(long)]
        state: Option<String>,
    },
    /// Steps waiting in the daemon for a person (from agents, schedules, monitors, API and
    /// MCP clients that cannot ask): what each would do, its risk, when it is declined.
    Approvals,
    /// Answer a step waiting in the daemon: approve it, or `--no` to decline it.
    Approve {
        /// The approval id (as `kernos approvals` shows it).
        id: String,
        /// Decline instead.
        #[arg(long)]
        no: bool,
        /// Why (journaled with the answer).
        #[arg(long)]
        reason: Option<String>,
    },
    /// List the daemon's capability leases (of org `local` on the socket).
    Leases {
        /// Only leases attached to this grantee: agent:ID, key:ID or schedule:ID.
        #[arg(long)]
        grantee: Option<String>,
    },
    /// Grant, show, renew or revoke a capability lease (through the running daemon): a
    /// standing, bounded approval for an agent, a schedule or an API key.
    #[command(subcommand)]
    Lease(LeaseCmd),
    /// Model Context Protocol: serve Kernos to MCP clients (Claude Desktop, IDEs, other
    /// agents) with every tool call on the one path, and use external MCP servers as tools.
    #[command(subcommand)]
    Mcp(McpCmd),
    /// What deletes keep so undo can bring it back: list it, see its size, empty it.
    #[command(subcommand)]
    Trash(TrashCmd),
    /// Skills: plans you taught Kernos (`skill save`) and tools a model wrote for it (`skill
    /// new`), validated in the sandbox, approved, installed, versioned (`skill_cmd.rs`).
    #[command(subcommand)]
    Skill(SkillCmd),
}

/// `kernos skill …` (`skill_cmd.rs`).
#[derive(Debug, Subcommand)]
pub enum SkillCmd {
    /// Turn the last transaction's plan into a skill NAME: each --param name=value names a
    /// literal value of the plan that becomes a parameter. Saved as a draft and validated
    /// against the catalog; then `skill approve` and `skill install`.
    Save {
        /// The skill's name (lowercase letters, digits, - and _).
        name: String,
        /// A parameter: its name and the value it had in the plan, e.g. dir=/srv/notes.
        #[arg(long = "param", value_name = "NAME=VALUE")]
        params: Vec<String>,
        /// A sentence the planner should understand as this skill, with {param} slots, e.g.
        /// "back up the notes in {dir}". Repeat for more.
        #[arg(long = "phrase", value_name = "TEXT")]
        phrasings: Vec<String>,
        /// One line saying what it does (default: the request it was made from).
        #[arg(long)]
        summary: Option<String>,
        /// Use this transaction's plan instead of the last one.
        #[arg(long, value_name = "TX")]
        tx: Option<String>,
    },
    /// Have the configured model write a skill for DESCRIPTION (a sh or python3 script with a
    /// manifest and tests); its tests run in the sandbox, failures go back for repair.
    New {
        /// At most this many repairs (default 3).
        #[arg(long, value_name = "N", default_value_t = 3)]
        repairs: u32,
        /// What it should do.
        #[arg(required = true, value_name = "DESCRIPTION")]
        description: Vec<String>,
    },
    /// Review a validated version (manifest, code, test results, declared effects) and approve
    /// it; signs the attestation with the journal's checkpoint keys when they exist.
    Approve {
        /// Skill name.
        name: String,
        /// Version (default: the newest).
        #[arg(long)]
        version: Option<u32>,
        /// Approve without asking.
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// Install an approved version whose bundle still has the validated hash.
    Install {
        /// Skill name.
        name: String,
        /// Version (default: the newest).
        #[arg(long)]
        version: Option<u32>,
    },
    /// Every skill of this organisation: versions, status, which one is installed.
    List,
    /// One version: manifest, body, state.
    Show {
        /// Skill name.
        name: String,
        /// Version (default: the installed one, else the newest).
        #[arg(long)]
        version: Option<u32>,
    },
    /// What changed between two versions.
    Diff {
        /// Skill name.
        name: String,
        /// The older version.
        from: u32,
        /// The newer version.
        to: u32,
    },
    /// Go back to the version installed before (no rebuild).
    Rollback {
        /// Skill name.
        name: String,
    },
    /// Remove one version, or the whole skill.
    Remove {
        /// Skill name.
        name: String,
        /// Only this version.
        #[arg(long)]
        version: Option<u32>,
    },
    /// Write a validated version to a file another organisation can import.
    Export {
        /// Skill name.
        name: String,
        /// Version (default: the installed one, else the newest).
        #[arg(long)]
        version: Option<u32>,
        /// The file (default: standard output).
        #[arg(long, short = 'o')]
        out: Option<std::path::PathBuf>,
    },
    /// Import an exported skill (its hash is checked) or a bundle written by hand (JSON with
    /// "manifest" and "body") as a new draft, and validate it here.
    Import {
        /// The export or bundle file.
        file: std::path::PathBuf,
    },
}

/// `kernos trash …`
#[derive(Debug, Subcommand)]
pub enum TrashCmd {
    /// Every item in the trash, oldest first: where it came from, the transaction that
    /// deleted it, its size and age.
    List,
    /// The trash's total size and item count.
    Size,
    /// Remove items for good. Their transactions can no longer be undone (journaled as
    /// `trash.emptied`). Without a filter, everything.
    Empty {
        /// Only items deleted longer ago than this, e.g. 7d, 12h, 30m.
        #[arg(long, value_name = "DUR", value_parser = parse_age)]
        older_than: Option<std::time::Duration>,
        /// Only items larger than this, e.g. 100M, 2G.
        #[arg(long, value_name = "SIZE", value_parser = kernos_sandbox::parse_size)]
        larger_than: Option<u64>,
        /// Do not ask.
        #[arg(long, short = 'y')]
        yes: bool,
    },
}

/// `7d`, `12h`, `30m`, `2w`; a bare number means days.
fn parse_age(s: &str) -> Result<std::time::Duration, String> {
    let t = s.trim();
    if let Ok(days) = t.parse::<u64>() {
        return Ok(std::time::Duration::from_secs(days * 86_400));
    }
    humantime::parse_duration(t).map_err(|e| format!("{s:?} is not an age like 7d or 12h: {e}"))
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

/// `kernos agent …`: agents that work in the daemon (`agents_cmd.rs` runs them).
#[derive(Debug, Subcommand)]
pub enum AgentCmd {
    /// Start an agent in the daemon on GOAL; it works on after this command returns. Its plans
    /// are ordinary actions of yours: changes wait for approval (`kernos approvals`, `kernos approve`).
    Spawn {
        /// Most steps (default 30).
        #[arg(long, value_name = "N")]
        max_steps: Option<usize>,
        /// Most model tokens (default 200000).
        #[arg(long, value_name = "N")]
        max_tokens: Option<u64>,
        /// Most time working, e.g. 10m, 2h (default 1h).
        #[arg(long, value_name = "DUR", value_parser = humantime::parse_duration)]
        time: Option<std::time::Duration>,
        /// Most run units its actions may use.
        #[arg(long, value_name = "UNITS")]
        max_units: Option<f64>,
        /// Most US dollars its model calls may cost.
        #[arg(long, value_name = "USD")]
        max_cost: Option<f64>,
        /// Model lane (default: chosen from the goal).
        #[arg(long)]
        lane: Option<String>,
        /// Create it paused (`kernos agent resume ID` starts it).
        #[arg(long)]
        paused: bool,
        /// The goal.
        #[arg(required = true, value_name = "GOAL")]
        goal: Vec<String>,
    },
    /// List the daemon's agents.
    List {
        /// Only agents in this state.
        #[arg(long)]
        state: Option<String>,
    },
    /// One agent: state, budget used, what it observed, its plans and actions.
    Show {
        /// Agent id, or a unique part of it.
        id: String,
    },
    /// An agent's events: its states, model calls and every event of its actions.
    Logs {
        /// Agent id, or a unique part of it.
        id: String,
    },
    /// Pause at the next step boundary (a running step finishes).
    Pause {
        /// Agent id, or a unique part of it.
        id: String,
    },
    /// Go on where it was paused.
    Resume {
        /// Agent id, or a unique part of it.
        id: String,
    },
    /// Stop for good, now: its running step is cancelled.
    Kill {
        /// Agent id, or a unique part of it.
        id: String,
    },
    /// A new agent with the same goal and limits, and a fresh budget.
    Clone {
        /// Agent id, or a unique part of it.
        id: String,
    },
}

/// `kernos mcp …` (`mcp_cmd.rs`).
#[derive(Debug, Subcommand)]
pub enum McpCmd {
    /// Serve Kernos to an MCP client over stdin/stdout: every catalog action as a tool, plus
    /// kernos_request, kernos_plan, kernos_undo and kernos_history. Through the running
    /// daemon when there is one; else this process is the daemon while the client is
    /// connected.
    Serve,
    /// The external MCP servers in the config (`[[mcp.servers]]`) and whether their tools are
    /// trusted, changed since trusted, or not reviewed yet.
    List,
    /// Review a server's tools (names, schemas, annotations) and pin them: its tools join the
    /// catalog as `mcp.<server>.<tool>`. Run it again after the server's tools changed.
    Trust {
        /// The server's name in the config.
        server: String,
        /// Pin without asking.
        #[arg(long, short = 'y')]
        yes: bool,
    },
}

/// `kernos schedule …` (`schedule_cmd.rs`).
#[derive(Debug, Subcommand)]
pub enum ScheduleCmd {
    /// Plan REQUEST now, show the plan and when it runs, and store it once you agree: e.g.
    /// `kernos schedule add "every day at 03:00" "compress logs older than 7 days in
    /// /var/log/app"`. WHEN is plain language or cron (seconds, L, W, #, a zone).
    Add {
        /// When it runs.
        when: String,
        /// What to do, in plain language.
        #[arg(required = true, value_name = "REQUEST")]
        request: Vec<String>,
        /// Fire times missed while the daemon was down: once (one run after the restart) or
        /// skip.
        #[arg(long, default_value = "once", value_parser = ["once", "skip"])]
        missed: String,
        /// Up to this much randomized delay after each fire time, e.g. 5m.
        #[arg(long, value_name = "DUR", value_parser = humantime::parse_duration)]
        random_delay: Option<std::time::Duration>,
        /// Store it without asking.
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// Every schedule: when, next run, last run.
    List,
    /// One schedule with its plan.
    Show {
        /// Schedule id, or a unique part of it.
        id: String,
    },
    /// Stop it firing on its own (run-now still runs it).
    Pause {
        /// Schedule id, or a unique part of it.
        id: String,
    },
    /// Fire again from the next fire time.
    Resume {
        /// Schedule id, or a unique part of it.
        id: String,
    },
    /// Never fire again.
    Remove {
        /// Schedule id, or a unique part of it.
        id: String,
    },
    /// Run it now (joins a run in progress: never two at once).
    RunNow {
        /// Schedule id, or a unique part of it.
        id: String,
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

/// `kernos lease …`
#[derive(Debug, Subcommand)]
pub enum LeaseCmd {
    /// Grant a lease: steps inside it run without asking until it expires, is revoked or its
    /// budget is spent; steps outside it are asked about as usual.
    Grant(Box<LeaseGrantArgs>),
    /// One lease in full, with its usage.
    Show {
        /// Lease id (`ls_…`, as `kernos leases` shows it).
        id: String,
    },
    /// Set a new expiry, --ttl from now.
    Renew {
        /// Lease id.
        id: String,
        /// How long from now, e.g. 1h, 7d.
        #[arg(long, value_parser = humantime::parse_duration)]
        ttl: std::time::Duration,
    },
    /// Revoke a lease at once: no further step starts under it.
    Revoke {
        /// Lease id.
        id: String,
    },
}

/// `kernos lease grant …`
#[derive(Debug, Args)]
pub struct LeaseGrantArgs {
    /// Who it is for: agent:ID, key:ID or schedule:ID.
    #[arg(long)]
    pub grantee: String,
    /// An action it covers: fs.list, fs.* or * (repeat for more).
    #[arg(long, value_name = "PATTERN")]
    pub action: Vec<String>,
    /// An effect kind it covers: read, write, delete, exec, network, privileged (repeat).
    #[arg(long, value_name = "KIND")]
    pub effect: Vec<String>,
    /// A path prefix its steps may touch (repeat).
    #[arg(long)]
    pub path: Vec<PathBuf>,
    /// A service its steps may touch (repeat; `app-*` for a prefix).
    #[arg(long)]
    pub service: Vec<String>,
    /// A package its steps may touch (repeat).
    #[arg(long)]
    pub package: Vec<String>,
    /// A host its steps may talk to (repeat; `*.example.org` for a domain).
    #[arg(long)]
    pub host: Vec<String>,
    /// A port its network steps may use (repeat).
    #[arg(long)]
    pub port: Vec<u16>,
    /// The highest step risk it approves: low, medium or high (at most what you may approve).
    #[arg(long, default_value = "low")]
    pub max_risk: kernos_core::Risk,
    /// How long it lasts, e.g. 30m, 8h, 7d.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub ttl: std::time::Duration,
    /// At most this many steps under it.
    #[arg(long)]
    pub max_steps: Option<u64>,
    /// At most this many run units for the actions using it.
    #[arg(long)]
    pub max_units: Option<f64>,
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
    Verify(VerifyArgs),
    /// The log's public keys as signed-note verifier keys: give them to verifiers out of band.
    Keys {
        /// Make a new generation of keys; the old ones' signatures stay valid for `--overlap`.
        #[arg(long)]
        rotate: bool,
        /// With `--rotate`: how long (seconds) checkpoints signed by the old keys still verify.
        #[arg(long, value_name = "SECONDS", default_value_t = kernos_tlog::DEFAULT_OVERLAP_S)]
        overlap: u64,
    },
    /// Sign a checkpoint of the whole journal now (through the daemon when it runs).
    Checkpoint,
    /// Prove that event SEQ is in a signed checkpoint (the newest, or the one of size N);
    /// the proof is checked before it is printed.
    Prove {
        /// The event.
        seq: u64,
        /// The size of the stored checkpoint to prove it in.
        #[arg(long, value_name = "N")]
        size: Option<u64>,
    },
    /// Write events, checkpoints and proofs as a bundle (JSON) that `scripts/verify-bundle`
    /// checks without the database.
    Export {
        /// From this seq, or from this time (RFC 3339, e.g. 2026-01-31T00:00:00Z).
        #[arg(long, value_name = "SEQ|TIME")]
        since: Option<String>,
    },
}

/// `kernos journal verify` options.
#[derive(Debug, Default, PartialEq, Eq, Args)]
pub struct VerifyArgs {
    /// Also rebuild the transparency log from the journal and check every stored checkpoint:
    /// both signatures (a rotated-out key is named as such), its root, and consistency with
    /// the one before.
    #[arg(long)]
    pub checkpoints: bool,
    /// With `--checkpoints`: also check a checkpoint kept from before (a published note, a
    /// witness's copy): a rewritten or truncated journal cannot match it.
    #[arg(long = "against", value_name = "NOTE_FILE")]
    pub against: Vec<PathBuf>,
    /// With `--checkpoints`: also check every stored witness cosignature (`log.cosigned`)
    /// against this witness key (`witness …` lines of `kernos journal keys` on the witness;
    /// repeat for its Ed25519 and ML-DSA-44 keys): each must carry both cosignatures by them.
    #[arg(long = "witness", value_name = "WITNESS_VKEY")]
    pub witness: Vec<String>,
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
    fn sandbox_exec_alone_parses_like_the_full_cli_or_leaves_it_to_it() {
        let full = |args: &[&str]| match parse(args).unwrap().command {
            Some(Command::Sandbox(SandboxCmd::Exec(e))) => *e,
            _ => panic!("not sandbox exec"),
        };
        for args in [
            &["sandbox", "exec", "--", "ls", "-l"][..],
            &[
                "sandbox", "exec", "--json", "--net", "--mem", "64M", "--", "echo", "--json",
            ],
            &[
                "sandbox", "exec", "--write", "/tmp/x", "echo", "hi", "--net",
            ],
            &[
                "sandbox",
                "exec",
                "--data-dir",
                "/tmp",
                "--profile",
                "p",
                "--",
                "ls",
            ],
            &["sandbox", "exec", "--bogus", "--", "ls"],
        ] {
            let fast = sandbox_exec_only(&argv(args)).unwrap();
            let full = full(args);
            assert_eq!(fast.command, full.command, "{args:?}");
            assert_eq!(fast.net, full.net, "{args:?}");
            assert_eq!(fast.mem, full.mem, "{args:?}");
            assert_eq!(fast.write, full.write, "{args:?}");
            let json = parse(args).unwrap().global.json;
            assert_eq!(fast.json, json, "{args:?}");
        }
        // Help, global flags, errors and other commands go to the full parser.
        for args in [
            &["sandbox", "exec", "--help"][..],
            &["sandbox", "exec"],
            &["sandbox", "probe"],
            &["--json", "sandbox", "exec", "--", "ls"],
            &["show", "the", "sandbox", "exec"],
        ] {
            assert!(sandbox_exec_only(&argv(args)).is_none(), "{args:?}");
        }
    }

    #[test]
    fn serve_fast_parser_agrees_with_the_full_one() {
        for args in [
            &["serve"][..],
            &["serve", "--listen", "0.0.0.0:7878"],
            &["serve", "--insecure", "--listen=127.0.0.1:1"],
            &["serve", "--data-dir", "/d", "--profile", "prod", "--json"],
        ] {
            let fast = Cli::serve_only(&argv(args)).unwrap();
            let full = parse(args).unwrap();
            assert_eq!(format!("{fast:?}"), format!("{full:?}"), "{args:?}");
        }
        for args in [
            &["serve", "--help"][..],
            &["serve", "--bogus"],
            &["serve", "now"],
            &["--json", "serve"],
            &["show", "serve"],
        ] {
            assert!(Cli::serve_only(&argv(args)).is_none(), "{args:?}");
        }
    }

    #[test]
    fn request_fast_parser_agrees_with_the_full_one() {
        for args in [
            &["how much memory is used"][..],
            &["show the 5 largest files in /var/log"],
            &["serve now please"],
            &["history of my requests"],
        ] {
            let fast = Cli::request_only(&argv(args)).unwrap();
            let full = parse(args).unwrap();
            assert_eq!(format!("{fast:?}"), format!("{full:?}"), "{args:?}");
        }
        for args in [
            &["history"][..],
            &["serve"],
            &["--yes", "remove the old logs"],
            &["-y remove it"],
            &["show", "the", "files"],
            &["how much memory is used", "--json"],
            &[],
        ] {
            assert!(Cli::request_only(&argv(args)).is_none(), "{args:?}");
        }
    }

    /// `kernos ARGS…` as the process would see it.
    fn argv(args: &[&str]) -> Vec<String> {
        std::iter::once("kernos")
            .chain(args.iter().copied())
            .map(String::from)
            .collect()
    }

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::parse_args(&argv(args))
    }

    #[test]
    fn request_and_subcommands_parse() {
        let c = parse(&["show the 5 largest files in /var/log"]).unwrap();
        assert_eq!(c.request, vec!["show the 5 largest files in /var/log"]);
        assert!(c.command.is_none());
        let c = parse(&["journal", "tail", "-n", "5", "--json"]).unwrap();
        assert!(c.global.json);
        assert!(matches!(
            c.command,
            Some(Command::Journal(JournalCmd::Tail(TailArgs {
                lines: 5,
                ..
            })))
        ));
        // Global options before or after the subcommand keep it a subcommand.
        let c = parse(&["--data-dir", "/x", "journal", "verify"]).unwrap();
        assert!(matches!(
            c.command,
            Some(Command::Journal(JournalCmd::Verify(VerifyArgs {
                checkpoints: false,
                ..
            })))
        ));
        assert!(c.request.is_empty());
        let c = parse(&["journal", "verify", "--data-dir", "/x"]).unwrap();
        assert!(matches!(
            c.command,
            Some(Command::Journal(JournalCmd::Verify(VerifyArgs {
                checkpoints: false,
                ..
            })))
        ));
        let c = parse(&["--json", "list", "files", "in", "/etc"]).unwrap();
        assert_eq!(c.request, vec!["list", "files", "in", "/etc"]);
        let c = parse(&["--json", "history"]).unwrap();
        assert!(matches!(c.command, Some(Command::History { .. })) && c.global.json);
        let c = parse(&["--yes", "delete old.log"]).unwrap();
        assert!(c.request_opts().approval.yes);
        let c = parse(&["--dry-run", "delete old.log"]).unwrap();
        assert!(c.request_opts().approval.dry_run);
        let c = parse(&["plan", "--json", "list files"]).unwrap();
        assert!(matches!(c.command, Some(Command::Plan { .. })) && c.global.json);
        let c = parse(&[
            "agent",
            "why is nginx failing?",
            "--max-steps",
            "4",
            "--time",
            "90s",
        ])
        .unwrap();
        assert!(matches!(c.command, Some(Command::Agent { .. })));
        let o = c.request_opts();
        assert_eq!(o.budget.max_steps, Some(4));
        assert_eq!(o.budget.time, Some(std::time::Duration::from_secs(90)));
        let c = parse(&["--model", "m", "--no-cache", "--explain", "x y"]).unwrap();
        let o = c.request_opts();
        assert_eq!(o.planning.model.as_deref(), Some("m"));
        assert!(o.planning.no_cache && o.planning.explain);
        let c = parse(&["--agent", "--max-steps", "3", "why is this box slow"]).unwrap();
        assert!(c.request_opts().agent);
        assert_eq!(c.request_opts().budget.max_steps, Some(3));
        let c = parse(&["models", "test", "local"]).unwrap();
        assert!(matches!(
            c.command,
            Some(Command::Models {
                action: Some(ModelsCmd::Test { .. })
            })
        ));
    }

    #[test]
    fn request_flags_count_before_or_after_their_subcommand() {
        for args in [
            &["--yes", "undo"][..],
            &["undo", "--yes"],
            &["undo", "-y", "abc"],
        ] {
            let c = parse(args).unwrap();
            assert!(matches!(c.command, Some(Command::Undo { .. })), "{args:?}");
            assert!(c.request_opts().approval.yes, "{args:?}");
        }
        let c = parse(&["undo", "--dry-run"]).unwrap();
        assert!(c.request_opts().approval.dry_run);
        let c = parse(&["--yes", "agent", "--max-steps", "3", "summarise notes.txt"]).unwrap();
        let o = c.request_opts();
        assert!(o.approval.yes && o.budget.max_steps == Some(3));
        let c = parse(&["--provider", "a", "plan", "--provider", "b", "list files"]).unwrap();
        assert_eq!(c.request_opts().planning.provider.as_deref(), Some("b"));
        let c = parse(&["plan", "--explain", "--no-cache", "list files"]).unwrap();
        assert!(c.request_opts().planning.explain && c.request_opts().planning.no_cache);
    }

    #[test]
    fn a_subcommand_word_with_more_words_is_a_request_but_a_foreign_flag_is_an_error() {
        let c = parse(&["show", "the", "5", "largest", "files", "in", "/var/log"]).unwrap();
        assert!(c.command.is_none());
        assert_eq!(c.request.join(" "), "show the 5 largest files in /var/log");
        let c = parse(&["--yes", "undo", "the", "last", "thing"]).unwrap();
        assert!(c.command.is_none() && c.request_opts().approval.yes);
        let e = parse(&["history", "--yes"]).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::UnknownArgument);
        let e = parse(&["sandbox", "probe", "--max-steps", "3"]).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::UnknownArgument);
    }

    /// The help `kernos <args> --help` prints.
    fn help(args: &[&str]) -> String {
        let mut args = args.to_vec();
        args.push("--help");
        let e = parse(&args).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::DisplayHelp, "{args:?}");
        e.to_string()
    }

    #[test]
    fn each_command_documents_only_its_own_flags() {
        let top = help(&[]);
        for flag in [
            "--yes",
            "--dry-run",
            "--explain",
            "--provider",
            "--model",
            "--no-cache",
            "--agent",
            "--max-steps",
            "--max-tokens",
            "--time",
            "--json",
            "--data-dir",
        ] {
            assert!(top.contains(flag), "kernos --help lacks {flag}");
        }
        let request_flags = [
            "--yes",
            "--dry-run",
            "--explain",
            "--provider",
            "--model",
            "--no-cache",
            "--agent",
            "--max-steps",
            "--max-tokens",
        ];
        for cmd in [
            &["sandbox", "exec"][..],
            &["sandbox", "probe"],
            &["history"],
            &["journal", "tail"],
            &["serve"],
        ] {
            let h = help(cmd);
            for flag in request_flags {
                assert!(
                    !h.contains(flag),
                    "kernos {cmd:?} --help mentions {flag}:\n{h}"
                );
            }
            assert!(h.contains("--json") && h.contains("--data-dir"), "{cmd:?}");
        }
        let plan = help(&["plan"]);
        assert!(plan.contains("--provider") && plan.contains("--explain"));
        assert!(!plan.contains("--yes") && !plan.contains("--max-steps"));
        let undo = help(&["undo"]);
        assert!(undo.contains("--yes") && undo.contains("--dry-run"));
        assert!(!undo.contains("--provider") && !undo.contains("--max-steps"));
        let agent = help(&["agent"]);
        for flag in [
            "--yes",
            "--provider",
            "--max-steps",
            "--max-tokens",
            "--time",
        ] {
            assert!(agent.contains(flag), "kernos agent --help lacks {flag}");
        }
        assert!(!agent.contains("--agent"));
    }
}

/// `kernos node …`
#[derive(Debug, Subcommand)]
pub enum NodeCmd {
    /// Make this machine a node: writes `<data dir>/fleet.toml`; `kernos serve` then
    /// announces it, beats and runs the plans its organisation's controller sends.
    Join {
        /// The broker, e.g. nats://broker.example:4222.
        url: String,
        /// A NATS credentials file (JWT + NKEY seed).
        #[arg(long, value_name = "FILE")]
        creds: Option<PathBuf>,
        /// A file with the user's NKEY seed.
        #[arg(long, value_name = "FILE")]
        nkey: Option<PathBuf>,
        /// Require TLS to the broker, trusting this CA (PEM).
        #[arg(long, value_name = "FILE")]
        tls_ca: Option<PathBuf>,
        /// The node's name [default: the host name].
        #[arg(long)]
        name: Option<String>,
        /// The fleet's organisation.
        #[arg(long, default_value = "local")]
        org: String,
        /// A label selectors match, e.g. role=web (repeatable).
        #[arg(long = "label", value_name = "KEY=VALUE")]
        labels: Vec<String>,
        /// Also fan out this organisation's requests from here.
        #[arg(long)]
        controller: bool,
    },
    /// Stop being a node: removes `<data dir>/fleet.toml` (the daemon stops taking plans when
    /// it restarts).
    Leave,
}

/// `kernos fleet …`
#[derive(Debug, Subcommand)]
pub enum FleetCmd {
    /// The nodes: state, last seen, labels, what they are.
    Nodes,
}
