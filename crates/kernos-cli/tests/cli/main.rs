//! The `kernos` binary, run for real: every test gets its own home, config and data
//! directories and a working tree it created, so nothing outside them is touched.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod daemon;
mod fake_llm;
mod journal;
mod llm;
mod repl;
mod request;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// Output bytes as text.
pub(crate) fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
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
        let mut c = Command::new(env!("CARGO_BIN_EXE_kernos"));
        c.args(args)
            .current_dir(&self.cwd)
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
