//! `kernos`: say what you want; Kernos plans it, shows what will change, runs it confined,
//! journals it and can undo it.

mod agent_cmd;
mod agents_cmd;
mod app;
mod approvals_cmd;
mod cli;
mod config;
mod config_cmd;
mod daemon_client;
mod daemon_cmd;
mod doctor;
mod fleet_cmd;
mod front;
mod journal_cmd;
mod lease_cmd;
mod llm_cmd;
mod manpages;
mod mcp_cmd;
mod planning;
mod render;
mod repl;
mod request;
mod schedule_cmd;
mod show;
mod skill_cmd;
mod term;
mod tlog_cmd;
mod tools_cmd;
mod trash_cmd;
mod txn_cmd;
mod version;
mod watch_cmd;

use std::process::ExitCode;
use std::sync::Mutex;

use clap::CommandFactory;
use kernos_core::CancelToken;

use crate::app::App;
use crate::cli::{Cli, Command};

fn main() -> ExitCode {
    // The sandbox helper is this same binary started with a hidden first argument; it must take
    // over before anything else runs (no threads, no allocation-heavy setup).
    if std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == kernos_sandbox::HELPER_ARG)
    {
        kernos_sandbox::helper_main();
    }
    // The MCP driver: started confined by an `mcp.<server>.<tool>` step, it talks to the
    // external server and prints one JSON answer (see `kernos_mcp::driver`).
    if std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == kernos_mcp::DRIVER_ARG)
    {
        return ExitCode::from(u8::try_from(kernos_mcp::driver_main()).unwrap_or(1));
    }
    // For packagers: `kernos __manpages DIR` writes the man pages (see manpages.rs).
    if std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == manpages::ARG)
    {
        let dir = std::env::args_os().nth(2).unwrap_or_else(|| "man".into());
        return match manpages::write_all(std::path::Path::new(&dir)) {
            Ok(names) => {
                println!("{}", names.join("\n"));
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("kernos: {e:#}");
                ExitCode::from(1)
            }
        };
    }
    // For packagers: `kernos __config-template` prints the commented config the package ships.
    if std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == "__config-template")
    {
        print!("{}", config::template());
        return ExitCode::SUCCESS;
    }
    // The daemon logs its start-up stage by stage, from here (what came before is the
    // loading of the binary); for other commands this is one small allocation.
    kernos_server::startup::mark("main");
    quiet_on_closed_pipe();
    // One confined step: the start-up of this process is most of what it costs, so the
    // command tree is not built for it (see `cli::sandbox_exec_only`).
    if let Some(args) = cli::sandbox_exec_only(&std::env::args().collect::<Vec<_>>()) {
        let code = kernos_sandbox::run_exec_command(&args);
        return ExitCode::from(code.clamp(0, 255) as u8);
    }
    let cli = parse();
    config::set_profile(cli.global.profile.clone());
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

/// Ends the process the way every Unix filter ends when its reader goes away
/// (`kernos tools | head -1`): killed by SIGPIPE, silently, exit status 141 in the shell.
///
/// Why not simply restore SIGPIPE's default disposition at start-up: then *any* write to a
/// closed pipe or socket would kill Kernos — the sandbox helper's pipes, the daemon's socket —
/// in the middle of a step, before the journal records what happened. Keeping SIGPIPE ignored
/// leaves those as ordinary errors that are handled and recorded; only a failed print to our
/// own stdout/stderr, whose reader has gone (std panics with "failed printing to stdout"),
/// becomes the quiet signal death.
fn quiet_on_closed_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if msg.starts_with("failed printing to std") && msg.contains("Broken pipe") {
            // SAFETY: resetting a signal's disposition and raising it in our own process;
            // `_exit` is the fallback should the signal somehow be blocked.
            unsafe {
                libc::signal(libc::SIGPIPE, libc::SIG_DFL);
                libc::raise(libc::SIGPIPE);
                libc::_exit(141);
            }
        }
        default(info);
    }));
}

/// Parses the command line ([`Cli::parse_args`]); help, version and errors end the process.
fn parse() -> Cli {
    let argv: Vec<String> = std::env::args().collect();
    if let Some(c) = Cli::serve_only(&argv).or_else(|| Cli::request_only(&argv)) {
        return c;
    }
    Cli::parse_args(&argv).unwrap_or_else(|e| e.exit())
}

/// The request that Ctrl-C should stop. The first Ctrl-C cancels it (the step stops cleanly
/// and is journaled as cancelled, leaving an undoable state); a second one quits.
static CURRENT: Mutex<Option<CancelToken>> = Mutex::new(None);

/// Makes `t` the token Ctrl-C cancels.
pub fn set_current_cancel(t: &CancelToken) {
    if let Ok(mut c) = CURRENT.lock() {
        *c = Some(t.clone());
    }
}

fn install_ctrlc() {
    let _ = ctrlc::set_handler(|| {
        let token = CURRENT.lock().ok().and_then(|c| c.clone());
        match token {
            Some(t) if !t.is_cancelled() => {
                t.cancel();
                eprintln!("\nkernos: stopping the current step… (Ctrl-C again to quit at once)");
            }
            _ => std::process::exit(130),
        }
    });
}

/// Commands that inspect the record or put things back: they run with a broken config file
/// (see [`App::salvaged`]), so the way to fix it or to undo is never blocked.
fn repairs(c: &Command) -> bool {
    matches!(
        c,
        Command::History { .. } | Command::Show { .. } | Command::Undo { .. }
    )
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let global = cli.global.clone();
    let opts = cli.request_opts();
    let command = match cli.command {
        Some(c) => c,
        None => {
            let app = App::new(&global, &opts)?;
            let cancel = CancelToken::new();
            set_current_cancel(&cancel);
            install_ctrlc();
            if cli.request.is_empty() {
                if !term::interactive() {
                    Cli::command().print_help()?;
                    return Ok(ExitCode::SUCCESS);
                }
                return repl::run(&app, &cancel);
            }
            let text = cli.request.join(" ");
            if opts.agent {
                return agent_cmd::run(&app, &text, &cancel);
            }
            let store = request::ContextStore::for_cwd(&app);
            let mut conversation = store.load();
            let code = request::run(
                &app,
                kernos_engine::Ask::Text(text),
                &mut conversation,
                &cancel,
            )?;
            if let Some(c) = &conversation {
                store.save(c);
            }
            return Ok(code);
        }
    };
    match command {
        Command::Journal(cmd) => journal_cmd::run(&global, cmd),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "kernos", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
        Command::Sandbox(cli::SandboxCmd::Exec(mut args)) => {
            args.json = global.json;
            let code = kernos_sandbox::run_exec_command(&args);
            Ok(ExitCode::from(code.clamp(0, 255) as u8))
        }
        Command::Sandbox(cli::SandboxCmd::Probe) => {
            let f = kernos_sandbox::probe();
            if global.json {
                println!("{}", f.to_json());
            } else {
                print!("{f}");
            }
            Ok(if f.missing().is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Command::Config { action } => {
            // `config check/edit/show` report a broken file themselves.
            let app = App::with_config(&global, &opts, config::load_salvaged().config).ok();
            config_cmd::run(app.as_ref(), action)
        }
        other => {
            let app = if matches!(other, Command::Doctor) {
                // Its "config" check shows the parse error, and fails the doctor.
                App::with_config(&global, &opts, config::load_salvaged().config)?
            } else if repairs(&other) {
                App::salvaged(&global, &opts)?
            } else {
                App::new(&global, &opts)?
            };
            match other {
                Command::Tools { name, schema } => tools_cmd::run(&app, name.as_deref(), schema),
                Command::History { limit } => txn_cmd::history(&app, limit),
                Command::Show { id } => txn_cmd::show(&app, &id),
                Command::Undo { id, .. } => {
                    let cancel = CancelToken::new();
                    set_current_cancel(&cancel);
                    install_ctrlc();
                    request::run(&app, kernos_engine::Ask::Undo(id), &mut None, &cancel)
                }
                Command::Doctor => doctor::run(&app),
                Command::Plan { request, .. } => {
                    request::plan_only(&app, &app.cascade(), &request.join(" "))
                }
                Command::Models { action } => llm_cmd::models(&app, action),
                Command::Usage => llm_cmd::usage(&app),
                Command::Agent {
                    manage: Some(cmd), ..
                } => agents_cmd::run(&app, cmd),
                Command::Schedule(cmd) => schedule_cmd::run(&app, cmd),
                Command::Watch { all } => watch_cmd::run(&app, all),
                Command::Node(cmd) => fleet_cmd::node(&app, cmd),
                Command::Fleet(cmd) => fleet_cmd::fleet(&app, cmd),
                Command::Agents { state } => agents_cmd::run(&app, cli::AgentCmd::List { state }),
                Command::Agent { goal, .. } => {
                    let cancel = CancelToken::new();
                    set_current_cancel(&cancel);
                    install_ctrlc();
                    agent_cmd::run(&app, &goal.join(" "), &cancel)
                }
                Command::Serve { listen, insecure } => daemon_cmd::serve(&app, listen, insecure),
                Command::Keys(cli::KeysCmd::Create { org, role, label }) => {
                    daemon_cmd::keys_create(&app, &org, role, &label)
                }
                Command::Keys(cli::KeysCmd::List { org }) => {
                    daemon_cmd::keys_list(&app, org.as_deref())
                }
                Command::Keys(cli::KeysCmd::Revoke { id }) => daemon_cmd::keys_revoke(&app, &id),
                Command::Approvals => approvals_cmd::list(&app),
                Command::Approve { id, no, reason } => {
                    approvals_cmd::answer(&app, &id, !no, reason.as_deref())
                }
                Command::Leases { grantee } => lease_cmd::list(&app, grantee.as_deref()),
                Command::Lease(cmd) => lease_cmd::run(&app, cmd),
                Command::Trash(cmd) => trash_cmd::run(&app, cmd),
                Command::Mcp(cmd) => mcp_cmd::run(&app, cmd),
                Command::Skill(cmd) => skill_cmd::run(&app, cmd),
                Command::Journal(_)
                | Command::Completions { .. }
                | Command::Config { .. }
                | Command::Sandbox(_) => Ok(ExitCode::SUCCESS),
            }
        }
    }
}
