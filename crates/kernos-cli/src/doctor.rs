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
    // First, what is being checked: this build (what a bug report needs).
    let mut out = vec![check(
        "kernos",
        "ok",
        crate::version::LONG.replace('\n', ", "),
        None,
    )];
    // Data directory and journal. Checked without creating anything: the nearest existing
    // directory on the way must be writable by us.
    let dir = &app.data_dir;
    let existing = dir
        .ancestors()
        .find(|p| p.exists())
        .unwrap_or(std::path::Path::new("/"));
    // SAFETY: access(2) with a valid NUL-terminated path.
    let writable = std::ffi::CString::new(existing.as_os_str().as_encoded_bytes())
        .map(|c| unsafe { libc::access(c.as_ptr(), libc::W_OK) } == 0)
        .unwrap_or(false);
    out.push(if !existing.is_dir() {
        check(
            "data directory",
            "fail",
            format!(
                "{} cannot be created: {} is not a directory",
                dir.display(),
                existing.display()
            ),
            Some("set KERNOS_DATA_DIR to a writable directory"),
        )
    } else if writable {
        let how = if existing == dir.as_path() {
            "is writable"
        } else {
            "will be created"
        };
        check(
            "data directory",
            "ok",
            format!("{} {how}", dir.display()),
            None,
        )
    } else {
        check(
            "data directory",
            "fail",
            format!("{} is not writable by this user", existing.display()),
            Some("set KERNOS_DATA_DIR to a writable directory"),
        )
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
            match crate::config::path() {
                Ok(p) if p.exists() => p.display().to_string(),
                Ok(p) => format!("{} not present: built-in defaults", p.display()),
                Err(e) => format!("built-in defaults ({e})"),
            },
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
    out.extend(model_checks(app));
    out
}

/// The model tier as configured: no network call (`kernos models test NAME` makes one), only
/// what can be known locally — which providers, and whether the API key each names is set.
fn model_checks(app: &App) -> Vec<Check> {
    let providers = &app.config.llm.providers;
    if providers.is_empty() {
        return vec![check(
            "models",
            "ok",
            "none configured: the offline planner answers alone ([[llm.providers]] in the config adds one)",
            None,
        )];
    }
    providers
        .iter()
        .map(|p| {
            let name = format!("model {}", p.name);
            let target = p
                .base_url
                .clone()
                .unwrap_or_else(|| format!("{:?} default endpoint", p.kind).to_lowercase());
            match &p.api_key_env {
                Some(var) if std::env::var_os(var).is_none_or(|v| v.is_empty()) => check(
                    &name,
                    "warn",
                    format!("{target}: ${var} is not set, so calls will be refused"),
                    Some("export the key, or remove api_key_env for a keyless local server"),
                ),
                _ => check(
                    &name,
                    "ok",
                    format!(
                        "{target} (not contacted; `kernos models test {}` calls it)",
                        p.name
                    ),
                    None,
                ),
            }
        })
        .collect()
}

fn sandbox_checks(app: &App) -> Vec<Check> {
    let f = kernos_sandbox::probe();
    let missing = f.missing();
    let detail = f
        .to_string()
        .lines()
        .skip(1)
        // The probe's table pads names into columns; one line wants single spaces.
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("; ");
    let mut out = vec![if missing.is_empty() {
        check("sandbox", "ok", format!("full confinement: {detail}"), None)
    } else if app.config.sandbox.allow_weaker {
        check(
            "sandbox",
            "warn",
            format!(
                "weaker confinement allowed by config; missing: {}",
                missing.join(", ")
            ),
            None,
        )
    } else {
        check(
            "sandbox",
            "fail",
            format!(
                "missing {}: steps that run programs are refused",
                missing.join(", ")
            ),
            Some(
                "use a kernel with these features, or set sandbox.allow_weaker = true (weaker confinement)",
            ),
        )
    }];
    out.push(match kernos_sandbox::find_helper() {
        Ok(p) => check("sandbox helper", "ok", p.display().to_string(), None),
        Err(e) => check("sandbox helper", "fail", e.to_string(), None),
    });
    out
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
