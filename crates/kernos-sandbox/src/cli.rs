//! `kernos sandbox exec`: run one command under an explicit policy, for debugging policies and
//! for seeing what the sandbox refuses.

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::time::Duration;

use kernos_core::exec::{CancelToken, ExecError, ExecRequest, StopReason};
use kernos_core::sandbox::{Lifetime, Limits, NetworkPolicy, SandboxPolicy};

use crate::runner::{OutputSink, SandboxRunner};

/// Flags of `kernos sandbox exec [OPTIONS] -- CMD ARGS…`.
#[derive(Debug, Clone, clap::Args)]
pub struct ExecArgs {
    /// Let the command change PATH (a file or a directory tree); repeatable.
    #[arg(long = "write", value_name = "PATH")]
    pub write: Vec<PathBuf>,
    /// Declare PATH readable (needed to read inside a hidden path); repeatable.
    #[arg(long = "read", value_name = "PATH")]
    pub read: Vec<PathBuf>,
    /// Hide PATH from the command, on top of ~/.ssh, ~/.gnupg, ~/.aws and kernos's own
    /// config and data directories; repeatable.
    #[arg(long = "deny-read", value_name = "PATH")]
    pub deny_read: Vec<PathBuf>,
    /// Allow network access.
    #[arg(long)]
    pub net: bool,
    /// Let the command connect to the Unix socket PATH without --net (every other socket is
    /// hidden from it); repeatable.
    #[arg(long = "unix-socket", value_name = "PATH")]
    pub unix_socket: Vec<PathBuf>,
    /// Service lifetime: what the command starts may outlive it, in the host's PID
    /// namespace, still confined (for starting and stopping system services).
    #[arg(long)]
    pub service: bool,
    /// Memory limit, e.g. 256M, 2G.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub mem: Option<u64>,
    /// Wall-clock limit, e.g. 10s, 500ms, 2m.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub timeout: Option<Duration>,
    /// CPU-time limit in seconds.
    #[arg(long, value_name = "SECONDS")]
    pub cpu: Option<u64>,
    /// Maximum number of processes.
    #[arg(long, value_name = "N")]
    pub pids: Option<u64>,
    /// Cut captured stdout and stderr at SIZE each.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub output_limit: Option<u64>,
    /// Pass environment variable NAME through (PATH, HOME, LANG, LC_ALL, TERM, USER and TZ
    /// always are); repeatable.
    #[arg(long = "env", value_name = "NAME")]
    pub env: Vec<String>,
    /// Working directory (default: the current one).
    #[arg(long, value_name = "DIR")]
    pub cwd: Option<PathBuf>,
    /// Run even if this kernel lacks a confinement feature.
    #[arg(long)]
    pub allow_weaker: bool,
    /// Print the outcome as JSON instead of streaming the output. Not a flag of its own: the
    /// `kernos` binary sets it from its global `--json`.
    #[arg(skip)]
    pub json: bool,
    /// The command and its arguments.
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CMD"
    )]
    pub command: Vec<String>,
}

/// Parses `256M`, `1G`, `512k`, `4096` (powers of 1024).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (num, mult) = match s.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((i, _)) => {
            let unit = s[i..].to_ascii_lowercase();
            let m: u64 = match unit.trim_end_matches("ib").trim_end_matches('b') {
                "" => 1,
                "k" => 1 << 10,
                "m" => 1 << 20,
                "g" => 1 << 30,
                "t" => 1 << 40,
                _ => return Err(format!("unknown size unit in {s:?} (use k, M, G or T)")),
            };
            (&s[..i], m)
        }
        None => (s, 1),
    };
    let n: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a size like 256M"))?;
    if n.is_nan() || n < 0.0 {
        return Err(format!("{s:?} is not a size like 256M"));
    }
    Ok((n * mult as f64) as u64)
}

/// Parses `10s`, `500ms`, `2m`; a bare number means seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    if let Ok(secs) = s.trim().parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    humantime::parse_duration(s).map_err(|e| format!("{s:?} is not a duration like 10s: {e}"))
}

/// Control sockets of host daemons that are root on the host (container engines, systemd,
/// D-Bus). Hiding a socket file also makes it impossible to connect to, which matters for
/// steps with the network effect: they may call connect(2), and Landlock does not govern
/// connecting to existing Unix sockets.
const HOST_CONTROL_SOCKETS: [&str; 7] = [
    "/run/docker.sock",
    "/run/containerd/containerd.sock",
    "/run/podman/podman.sock",
    "/run/snapd.socket",
    "/run/systemd/private",
    "/run/dbus/system_bus_socket",
    "/run/systemd/journal/stdout",
];

/// The paths every step is kept away from unless it declares them: private keys and cloud
/// credentials, kernos's own config (API keys) and data (the journal), and host control
/// sockets (see above). Paths that do not exist are skipped by the helper.
pub fn default_deny_read() -> Vec<PathBuf> {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let mut v = Vec::new();
    if let Some(h) = &home {
        for d in [".ssh", ".gnupg", ".aws"] {
            v.push(h.join(d));
        }
    }
    let xdg = |var: &str, fallback: &str| {
        std::env::var_os(var)
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
            .or_else(|| home.as_ref().map(|h| h.join(fallback)))
    };
    if let Some(d) = xdg("XDG_CONFIG_HOME", ".config") {
        v.push(d.join("kernos"));
    }
    if let Some(d) = xdg("XDG_DATA_HOME", ".local/share") {
        v.push(d.join("kernos"));
    }
    v.extend(HOST_CONTROL_SOCKETS.iter().map(PathBuf::from));
    v
}

impl ExecArgs {
    /// The request these flags describe (relative paths are taken from the current directory).
    pub fn to_request(&self) -> Result<ExecRequest, ExecError> {
        let here = std::env::current_dir().map_err(ExecError::Io)?;
        let abs = |p: &PathBuf| {
            if p.is_absolute() {
                p.clone()
            } else {
                here.join(p)
            }
        };
        let defaults = Limits::default();
        let unix_sockets = self.unix_socket.iter().map(abs).collect();
        let mut policy = SandboxPolicy {
            read: self.read.iter().map(abs).collect(),
            write: self.write.iter().map(abs).collect(),
            deny_read: default_deny_read()
                .into_iter()
                .chain(self.deny_read.iter().map(abs))
                .collect(),
            network: if self.net {
                NetworkPolicy::Allow { hosts: Vec::new() }
            } else {
                NetworkPolicy::Deny
            },
            limits: Limits {
                memory_bytes: self.mem.or(defaults.memory_bytes),
                max_processes: self.pids.or(defaults.max_processes),
                cpu_seconds: self.cpu.or(defaults.cpu_seconds),
                wall_ms: self
                    .timeout
                    .map(|d| d.as_millis() as u64)
                    .or(defaults.wall_ms),
                output_bytes: self.output_limit.or(defaults.output_bytes),
                ..defaults
            },
            cwd: Some(self.cwd.as_ref().map(abs).unwrap_or(here)),
            allow_weaker: self.allow_weaker,
            lifetime: if self.service {
                Lifetime::Service
            } else {
                Lifetime::Step
            },
            unix_sockets,
            ..SandboxPolicy::default()
        };
        policy.env_allow.extend(self.env.iter().cloned());
        let mut req = ExecRequest::new(&self.command, policy);
        let stdin = std::io::stdin();
        if !stdin.is_terminal() {
            let mut input = Vec::new();
            stdin
                .lock()
                .read_to_end(&mut input)
                .map_err(ExecError::Io)?;
            if !input.is_empty() {
                req.stdin = Some(input);
            }
        }
        Ok(req)
    }
}

struct Terminal;

impl OutputSink for Terminal {
    fn stdout(&mut self, chunk: &[u8]) {
        let mut o = std::io::stdout().lock();
        let _ = o.write_all(chunk);
        let _ = o.flush();
    }
    fn stderr(&mut self, chunk: &[u8]) {
        let _ = std::io::stderr().lock().write_all(chunk);
    }
}

/// Runs `kernos sandbox exec` in a binary that embeds the helper (see
/// [`crate::embedded_helper`]: `kernos`, under whatever name it was installed); returns the
/// process exit code (the command's, 128+signal when killed, 124 on timeout, 125 when the
/// sandbox could not run it, 127 when the program was not found). The step's helper is a
/// fork of this process ([`SandboxRunner::one_shot`]): it runs one step and exits.
pub fn run_exec_command(args: &ExecArgs) -> i32 {
    match crate::discover::embedded_helper() {
        Ok(h) => run_exec_command_with(&SandboxRunner::with_helper(h).one_shot(), args),
        Err(e) => {
            eprintln!("kernos: {e}");
            125
        }
    }
}

/// [`run_exec_command`] with an explicit runner.
pub fn run_exec_command_with(runner: &SandboxRunner, args: &ExecArgs) -> i32 {
    let req = match args.to_request() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("kernos: {e}");
            return 125;
        }
    };
    // Ctrl-C reaches only us (the helper runs in its own session); dying then makes the helper
    // tear the sandbox down through its parent-death signal.
    let cancel = CancelToken::new();
    let result = if args.json {
        runner.run_detailed(&req, &cancel)
    } else {
        runner.run_streaming(&req, &cancel, &mut Terminal)
    };
    let report = match result {
        Ok(r) => r,
        Err(e) => {
            eprintln!("kernos: {e}");
            return match e {
                ExecError::NotFound { .. } => 127,
                _ => 125,
            };
        }
    };
    let o = &report.outcome;
    if args.json {
        let v = serde_json::json!({
            "code": o.code,
            "signal": o.signal,
            "stopped": o.stopped,
            "stop_message": o.stopped.as_ref().map(ToString::to_string),
            "stdout": o.stdout_text(),
            "stderr": o.stderr_text(),
            "stdout_truncated": o.stdout_truncated,
            "stderr_truncated": o.stderr_truncated,
            "cpu_ms": o.cpu_ms,
            "wall_ms": o.wall_ms,
            "weakened": report.weakened,
            "cgroup": report.cgroup,
        });
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    } else {
        for w in &report.weakened {
            eprintln!("kernos: weaker confinement: {w}");
        }
        if let Some(s) = &o.stopped {
            eprintln!("kernos: {s}");
        }
    }
    match (&o.stopped, o.code, o.signal) {
        (Some(StopReason::Timeout { .. }), _, _) => 124,
        (_, Some(c), _) => c,
        (_, None, Some(s)) => 128 + s,
        _ => 125,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        exec: ExecArgs,
    }

    #[test]
    fn sizes_and_durations() {
        assert_eq!(parse_size("256M").unwrap(), 256 << 20);
        assert_eq!(parse_size("1G").unwrap(), 1 << 30);
        assert_eq!(parse_size("1.5k").unwrap(), 1536);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert_eq!(parse_size("2MiB").unwrap(), 2 << 20);
        assert!(parse_size("12X").is_err());
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("3").unwrap(), Duration::from_secs(3));
    }

    #[test]
    fn flags_parse_into_a_policy() {
        let cli = Cli::try_parse_from([
            "x",
            "--write",
            "/tmp/a",
            "--net",
            "--mem",
            "256M",
            "--timeout",
            "10s",
            "--",
            "ls",
            "-l",
        ])
        .unwrap();
        assert_eq!(cli.exec.command, vec!["ls", "-l"]);
        assert!(cli.exec.net);
        assert_eq!(cli.exec.mem, Some(256 << 20));
        assert_eq!(cli.exec.timeout, Some(Duration::from_secs(10)));
        assert!(!cli.exec.service);
        let p = cli.exec.to_request().unwrap().policy;
        assert_eq!(p.lifetime, Lifetime::Step);
        assert!(p.unix_sockets.is_empty());

        let cli = Cli::try_parse_from([
            "x",
            "--service",
            "--unix-socket",
            "/run/systemd/private",
            "--",
            "/etc/init.d/x",
            "start",
        ])
        .unwrap();
        let p = cli.exec.to_request().unwrap().policy;
        assert_eq!(p.lifetime, Lifetime::Service);
        assert_eq!(p.unix_sockets, vec![PathBuf::from("/run/systemd/private")]);
        assert_eq!(p.network, NetworkPolicy::Deny);
    }
}
