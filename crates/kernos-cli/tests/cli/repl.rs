//! The REPL in a real terminal: tmux runs `kernos` with no arguments, the test types a
//! request, answers the prompt, and reads the screen. tmux gets a private socket, so the
//! user's own tmux server is never touched.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::World;

pub(crate) struct Tmux {
    socket: String,
}

impl Tmux {
    /// Starts `shell_cmd` (a shell command line) in a 160×50 tmux session in `w`'s working
    /// directory on a private server; `None` (the test skips) when tmux is not installed.
    pub(crate) fn start(w: &World, tag: &str, shell_cmd: &str) -> Option<Tmux> {
        if Command::new("tmux").arg("-V").output().is_err() {
            eprintln!("skipped: tmux is not installed (./scripts/test installs it)");
            return None;
        }
        let tmux = Tmux {
            socket: format!("kernos-test-{tag}-{}", std::process::id()),
        };
        let cwd = w.cwd.display().to_string();
        let started = tmux.cmd(&[
            "new-session",
            "-d",
            "-s",
            "main",
            "-x",
            "160",
            "-y",
            "50",
            "-c",
            &cwd,
            shell_cmd,
        ]);
        assert!(started.status.success(), "{}", crate::text(&started.stderr));
        Some(tmux)
    }

    /// The command line that runs `kernos` with `args` (already quoted for the shell) in `w`'s
    /// private environment.
    pub(crate) fn kernos_line(w: &World, args: &str) -> String {
        let path = std::env::var("PATH").unwrap_or_default();
        format!(
            "env -i PATH='{path}' HOME='{}' XDG_CONFIG_HOME='{}' KERNOS_DATA_DIR='{}' USER=tester NO_COLOR=1 TERM=xterm '{}' {args}",
            w.home.display(),
            w.home.join(".config").display(),
            w.data.display(),
            env!("CARGO_BIN_EXE_kernos")
        )
    }

    fn cmd(&self, args: &[&str]) -> std::process::Output {
        Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .unwrap()
    }

    pub(crate) fn screen(&self) -> String {
        crate::text(
            &self
                .cmd(&["capture-pane", "-p", "-t", "main", "-S", "-200"])
                .stdout,
        )
    }

    pub(crate) fn send(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "main"];
        args.extend_from_slice(keys);
        assert!(self.cmd(&args).status.success());
    }

    /// Waits until the screen satisfies `f`, failing with the screen after 20 s.
    pub(crate) fn wait(&self, what: &str, f: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let s = self.screen();
            if f(&s) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; screen:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd(&["kill-server"]);
    }
}

#[test]
fn repl_plans_asks_runs_and_undoes() {
    let w = World::new();
    w.file("big.bin", &"x".repeat(3000));
    let Some(tmux) = Tmux::start(&w, "repl", &Tmux::kernos_line(&w, "")) else {
        return;
    };

    tmux.wait("the prompt", |s| s.contains("kernos>"));
    tmux.send(&["create a folder called reports", "Enter"]);
    tmux.wait("the confirmation prompt", |s| s.contains("Run it?"));
    assert!(
        !w.cwd.join("reports").exists(),
        "nothing runs before the answer"
    );
    tmux.send(&["y"]);
    tmux.wait("the result", |s| s.contains("undo with"));
    assert!(w.cwd.join("reports").is_dir());

    // Conversation context: "undo that" refers to what just ran.
    tmux.send(&["undo that", "Enter"]);
    tmux.wait("the undo prompt", |s| s.contains("Undo this?"));
    tmux.send(&["y"]);
    tmux.wait("the undo result", |s| s.contains("undone:"));
    assert!(!w.cwd.join("reports").exists());

    // A read runs without asking and renders a table.
    tmux.send(&["show the largest files here", "Enter"]);
    let s = tmux.wait("the table", |s| s.contains("big.bin"));
    assert!(s.contains("2.9 KiB"), "{s}");

    tmux.send(&["C-d"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while tmux.cmd(&["has-session", "-t", "main"]).status.success() {
        assert!(Instant::now() < deadline, "the REPL did not exit on Ctrl-D");
        std::thread::sleep(Duration::from_millis(50));
    }
    let history = std::fs::read_to_string(w.data.join("repl_history")).unwrap();
    assert!(
        history.contains("create a folder called reports"),
        "{history}"
    );
}
