//! `kernos doctor`: what works on this machine, and what to do about what does not.

use std::path::Path;
use std::process::ExitCode;

use serde::Serialize;

use crate::app::App;

/// One check.
#[derive(Debug, Serialize)]
pub struct Check {
    /// What was checked.
    pub name: String,
    /// `ok`, `warn` or `fail`.
    pub status: &'static str,
    /// What was found.
    pub detail: String,
    /// What to do, when something is missing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

fn check(name: &str, status: &'static str, detail: impl Into<String>, fix: Option<&str>) -> Check {
    Check {
        name: name.into(),
        status,
        detail: detail.into(),
        fix: fix.map(str::to_owned),
    }
}

/// Finds a program on `PATH`.
pub fn which(prog: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(prog))
        .find(|p| p.is_file())
}

/// Whether PID 1 is systemd.
fn systemd_is_init() -> bool {
    std::fs::read_to_string("/proc/1/comm")
        .map(|c| c.trim() == "systemd")
        .unwrap_or(false)
}

/// Runs every check.
pub fn checks(app: &App) -> Vec<Check> {
    let mut out = Vec::new();
    // Data directory and journal.
    let dir = &app.data_dir;
    let probe = dir.join(".doctor-probe");
    let writable = std::fs::create_dir_all(dir)
        .and_then(|_| std::fs::write(&probe, b"x"))
        .and_then(|_| std::fs::remove_file(&probe));
    out.push(match writable {
        Ok(()) => check(
            "data directory",
            "ok",
            format!("{} is writable", dir.display()),
            None,
        ),
        Err(e) => check(
            "data directory",
            "fail",
            format!("{}: {e}", dir.display()),
            Some("set KERNOS_DATA_DIR to a writable directory"),
        ),
    });
    if dir.join(kernos_journal::DB_FILE).exists() {
        out.push(
            match kernos_journal::Journal::open_read_only(dir).and_then(|j| j.verify()) {
                Ok(r) if r.is_ok() => check(
                    "journal",
                    "ok",
                    format!("{} events, hash chain intact", r.checked),
                    None,
                ),
                Ok(r) => check(
                    "journal",
                    "fail",
                    format!("tampered: {:?}", r.first_bad),
                    Some(
                        "run `kernos journal verify` for details; restore journal.db from a backup",
                    ),
                ),
                Err(e) => check("journal", "fail", e.to_string(), None),
            },
        );
    } else {
        out.push(check("journal", "ok", "empty (created on first use)", None));
    }
    // Configuration.
    out.push(match crate::config::load() {
        Ok(_) => check(
            "config",
            "ok",
            crate::config::path()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            None,
        ),
        Err(e) => check(
            "config",
            "fail",
            e.to_string(),
            Some("fix the line named, or run `kernos config edit`"),
        ),
    });
    // Sandbox.
    out.extend(sandbox_checks(app));
    // Services.
    out.push(if systemd_is_init() && which("systemctl").is_some() {
        check("services", "ok", "systemd (systemctl, journalctl)", None)
    } else if which("service").is_some() || Path::new("/etc/init.d").is_dir() {
        check(
            "services",
            "warn",
            "no systemd as PID 1: svc.* uses init scripts (service, /etc/init.d)",
            None,
        )
    } else {
        check(
            "services",
            "fail",
            "no systemd on this machine and no init scripts: svc.* is unavailable",
            None,
        )
    });
    // Packages.
    let pm = ["apt-get", "dnf", "pacman"]
        .into_iter()
        .find(|p| which(p).is_some());
    out.push(match pm {
        Some(p) => check("packages", "ok", p.to_string(), None),
        None => check(
            "packages",
            "fail",
            "no apt-get, dnf or pacman: pkg.* is unavailable",
            None,
        ),
    });
    for (prog, what, fix) in [
        ("git", "git.*", "apt-get install git"),
        ("ping", "net.ping", "apt-get install iputils-ping"),
        (
            "journalctl",
            "logs.errors from the journal (falls back to /var/log files)",
            "part of systemd",
        ),
    ] {
        out.push(match which(prog) {
            Some(p) => check(prog, "ok", p.display().to_string(), None),
            None => check(
                prog,
                "warn",
                format!("not installed: {what} is limited"),
                Some(fix),
            ),
        });
    }
    out.push(check(
        "planner",
        "ok",
        "offline planner built in (no model or network needed)",
        None,
    ));
    out
}

fn sandbox_checks(app: &App) -> Vec<Check> {
    let _ = app;
    vec![check(
        "sandbox",
        "fail",
        "the sandbox helper is not part of this build",
        Some("build kernos with the sandbox"),
    )]
}

/// `kernos doctor`
pub fn run(app: &App) -> anyhow::Result<ExitCode> {
    let all = checks(app);
    let failed = all.iter().any(|c| c.status == "fail");
    if app.global.json {
        println!("{}", serde_json::to_string_pretty(&all)?);
    } else {
        let s = app.style;
        for c in &all {
            let mark = match c.status {
                "ok" => s.green("ok  "),
                "warn" => s.yellow("warn"),
                _ => s.red("FAIL"),
            };
            println!("{mark}  {:<16} {}", c.name, c.detail);
            if let Some(f) = &c.fix {
                println!("      {:<16} {}", "", s.dim(&format!("fix: {f}")));
            }
        }
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
