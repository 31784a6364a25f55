//! The `kernos` binary, run for real: every test gets its own home, config and data
//! directories and a working tree it created, so nothing outside them is touched.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod browser;
mod daemon;
mod dashboard;
mod dashboard_views;
mod fake_llm;
mod fleet;
mod journal;
mod lifetime;
mod llm;
mod mcp;
mod mcp_server;
mod package;
mod prompt;
mod repl;
mod request;
mod service;
mod skills;
mod tlog;
mod trash;
mod unix;
mod witness;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// Output bytes as text.
pub(crate) fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The JSON a command printed: the whole of stdout, or its last line.
pub(crate) fn json(out: &std::process::Output) -> serde_json::Value {
    let s = text(&out.stdout);
    if let Ok(v) = serde_json::from_str(&s) {
        return v;
    }
    let line = s
        .lines()
        .last()
        .unwrap_or_else(|| panic!("no output; stderr: {}", text(&out.stderr)));
    serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

/// A private world for one test: home, config, data and a working directory.
pub(crate) struct World {
    _dir: tempfile::TempDir,
    /// The working directory requests run in.
    pub(crate) cwd: PathBuf,
    /// `$HOME`.
    pub(crate) home: PathBuf,
    /// `$KERNOS_DATA_DIR`.
    pub(crate) data: PathBuf,
}

impl World {
    /// A fresh world.
    pub(crate) fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        let cwd = home.join("work");
        let data = dir.path().join("data");
        std::fs::create_dir_all(&cwd).unwrap();
        World {
            _dir: dir,
            cwd,
            home,
            data,
        }
    }

    /// The root of everything this world owns.
    pub(crate) fn root(&self) -> &Path {
        self._dir.path()
    }

    /// A `kernos` command set up for this world (no TTY: stdin is null).
    pub(crate) fn cmd(&self, args: &[&str]) -> Command {
        let mut c = self.program(env!("CARGO_BIN_EXE_kernos"));
        c.args(args);
        c
    }

    /// Any program, in this world's private environment (no TTY).
    pub(crate) fn program(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.current_dir(&self.cwd)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &self.home)
            .env("XDG_CONFIG_HOME", self.home.join(".config"))
            .env("KERNOS_DATA_DIR", &self.data)
            .env("NO_COLOR", "1")
            .env("USER", "tester")
            .stdin(Stdio::null());
        c
    }

    /// Runs `kernos args…` and waits.
    pub(crate) fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    /// Writes this world's config file.
    pub(crate) fn config(&self, toml: &str) {
        let dir = self.home.join(".config/kernos");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("config.toml"), toml).unwrap();
    }

    /// Writes a file relative to the working directory.
    pub(crate) fn file(&self, rel: &str, content: &str) -> PathBuf {
        let p = self.cwd.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, content).unwrap();
        p
    }
}

#[test]
fn version_and_help_are_quick_and_need_no_data_dir() {
    let w = World::new();
    let v = w.run(&["--version"]);
    assert!(v.status.success());
    assert!(text(&v.stdout).starts_with("kernos "));
    let h = w.run(&["--help"]);
    assert!(text(&h.stdout).contains("journal"));
    assert!(
        !w.data.exists(),
        "--version and --help must not create anything"
    );
}

#[test]
fn doctor_says_what_works_and_what_to_fix() {
    let w = World::new();
    let out = w.run(&["doctor", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stdout));
    let checks: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let by_name = |n: &str| {
        checks
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == n)
            .unwrap_or_else(|| panic!("no {n} check in {checks}"))
            .clone()
    };
    for n in [
        "data directory",
        "journal",
        "config",
        "sandbox",
        "services",
        "packages",
        "planner",
        "models",
    ] {
        by_name(n);
    }
    assert!(
        by_name("data directory")["detail"]
            .as_str()
            .unwrap()
            .ends_with("will be created")
    );
    assert!(!w.data.exists(), "doctor creates nothing");

    // A journal in use is verified; a provider whose key is missing is a warning.
    assert!(w.run(&["journal", "tail"]).status.success());
    w.run(&["show the 2 largest files in ."]);
    let cfg = w.home.join(".config/kernos/config.toml");
    std::fs::create_dir_all(cfg.parent().unwrap()).unwrap();
    std::fs::write(
        &cfg,
        "[[llm.providers]]\nname = \"claude\"\nkind = \"anthropic\"\napi_key_env = \"KERNOS_TEST_NO_SUCH_KEY\"\nmodel = \"claude-haiku-4-5\"\n",
    )
    .unwrap();
    let out = w.run(&["doctor"]);
    let s = text(&out.stdout);
    assert!(s.contains("hash chain intact"), "{s}");
    assert!(
        s.contains("warn  model claude") && s.contains("$KERNOS_TEST_NO_SUCH_KEY is not set"),
        "{s}"
    );

    // A data directory that cannot be created fails, exit 1, with the fix.
    let file = w.root().join("a-file");
    std::fs::write(&file, "").unwrap();
    let out = w
        .cmd(&["doctor"])
        .env("KERNOS_DATA_DIR", file.join("data"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let s = text(&out.stdout);
    assert!(
        s.contains("is not a directory") && s.contains("fix: set KERNOS_DATA_DIR"),
        "{s}"
    );
}

/// Waits until the journal of `w` has a `step.started` event.
pub(crate) fn wait_for_step(w: &World) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let j = kernos_journal::Journal::open_read_only(&w.data).ok();
        let started = j
            .and_then(|j| j.query(&kernos_journal::Query::kind("step.started")).ok())
            .is_some_and(|e| !e.is_empty());
        if started {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the step never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
