//! `kernos-sandbox`: the sandbox helper, plus `kernos-sandbox exec -- CMD` and
//! `kernos-sandbox probe [--json]` for debugging without the full CLI.

use clap::Parser;

/// Run a command confined (the same as `kernos sandbox exec`).
#[derive(Parser)]
#[command(name = "kernos-sandbox exec", version)]
struct ExecCli {
    /// Print the outcome as JSON instead of streaming the output.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    exec: kernos_sandbox::ExecArgs,
}

fn main() {
    let mut args = std::env::args_os();
    let _argv0 = args.next();
    let first = args.next();
    if first.as_ref().is_some_and(|a| a == "probe") {
        // `kernos-sandbox probe [--json]`: what `kernos doctor` reports.
        let f = kernos_sandbox::probe();
        if args.next().is_some_and(|a| a == "--json") {
            println!("{}", f.to_json());
        } else {
            println!("{f}");
        }
        std::process::exit(if f.missing().is_empty() { 0 } else { 1 });
    }
    if first.is_some_and(|a| a == "exec") {
        let mut cli = ExecCli::parse_from(std::env::args_os().skip(1));
        cli.exec.json = cli.json;
        // The helper is this very binary.
        let runner = match std::env::current_exe() {
            // One step, then exit: fork this process as the helper (see `one_shot`).
            Ok(exe) => kernos_sandbox::SandboxRunner::with_helper(exe).one_shot(),
            Err(e) => {
                eprintln!("kernos-sandbox: cannot locate myself: {e}");
                std::process::exit(125);
            }
        };
        std::process::exit(kernos_sandbox::run_exec_command_with(&runner, &cli.exec));
    }
    kernos_sandbox::helper_main()
}
