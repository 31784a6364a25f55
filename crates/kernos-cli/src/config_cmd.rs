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
        ConfigCmd::Check => match config::load().and_then(|_| check_profiles(&path)) {
            Ok(()) => println!("ok: {}", path.display()),
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
                        if let Some(app) = app {
                            return reload_daemon(&app.data_dir);
                        }
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

/// Checks every `[profile.NAME]` of the file merged over the rest, so a broken profile is
/// found before `--profile NAME` (or a reload under it) meets it.
fn check_profiles(path: &std::path::Path) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let table: toml::Table = toml::from_str(&text).unwrap_or_default();
    if let Some(toml::Value::Table(profiles)) = table.get("profile") {
        for name in profiles.keys() {
            config::parse_profile(&text, path, std::env::vars(), Some(name))?;
        }
    }
    Ok(())
}

/// Has a daemon running on `data_dir` take the edited config: SIGHUP to the process that
/// answers on its socket (the kernel names it, `SO_PEERCRED`), then waits for the daemon's
/// verdict in the journal (`config.reloaded` or `config.rejected`) and prints it. No daemon:
/// nothing to do.
pub fn reload_daemon(data_dir: &std::path::Path) -> anyhow::Result<ExitCode> {
    let sock = kernos_server::socket_path(data_dir);
    let Ok(stream) = std::os::unix::net::UnixStream::connect(&sock) else {
        return Ok(ExitCode::SUCCESS);
    };
    let pid = peer_pid(&stream).context("cannot tell which process runs the daemon")?;
    drop(stream);
    let journal = kernos_journal::Journal::open_read_only(data_dir)
        .with_context(|| format!("cannot read the journal in {}", data_dir.display()))?;
    let head = journal.head()?.0;
    // SAFETY: kill(2) with a pid the kernel gave for the socket's peer, and SIGHUP.
    if unsafe { libc::kill(pid, libc::SIGHUP) } != 0 {
        let e = std::io::Error::last_os_error();
        anyhow::bail!(
            "cannot ask the daemon (pid {pid}) to reload: {e}; as its user run `systemctl reload kernos` or `kill -HUP {pid}`"
        );
    }
    let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::time::Instant::now() < until {
        let found = journal.query(&kernos_journal::Query {
            after: Some(head),
            kind_prefix: Some("config.re".into()),
            limit: Some(1),
            ..kernos_journal::Query::default()
        })?;
        if let Some(e) = found.first() {
            let p = &e.payload;
            if e.kind == kernos_server::CONFIG_RELOADED {
                let list = |k: &str| {
                    p[k].as_array()
                        .map(|a| {
                            a.iter()
                                .filter_map(|v| v.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        })
                        .filter(|s| !s.is_empty())
                        .unwrap_or_else(|| "nothing".into())
                };
                println!(
                    "daemon (pid {pid}): config reloaded; changed: {}",
                    list("changed")
                );
                if p["restart_required"]
                    .as_array()
                    .is_some_and(|a| !a.is_empty())
                {
                    println!("  needs a restart to apply: {}", list("restart_required"));
                }
                return Ok(ExitCode::SUCCESS);
            }
            eprintln!(
                "kernos: the daemon (pid {pid}) refused the new config and keeps the old one: {}",
                p["error"].as_str().unwrap_or("")
            );
            return Ok(ExitCode::from(1));
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    anyhow::bail!("the daemon (pid {pid}) did not answer the reload within 10 s; see its log")
}

/// The process at the other end of a Unix socket.
fn peer_pid(s: &std::os::unix::net::UnixStream) -> anyhow::Result<i32> {
    use std::os::fd::AsRawFd;
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: getsockopt(SO_PEERCRED) writes at most `len` bytes into the ucred we own.
    let rc = unsafe {
        libc::getsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    anyhow::ensure!(
        rc == 0 && cred.pid > 0,
        "{}",
        std::io::Error::last_os_error()
    );
    Ok(cred.pid)
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
