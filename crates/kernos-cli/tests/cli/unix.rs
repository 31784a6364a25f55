//! The `kernos` binary as a careful Unix tool: quiet on a closed pipe, output to a pipe never
//! cut, a broken config file does not block the commands that fix or inspect.

use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;

use crate::{World, text};

/// The write end of a pipe whose read end is already closed, like `| head -1` after `head`
/// has gone.
fn closed_pipe() -> Stdio {
    let mut fds = [0; 2];
    // SAFETY: pipe(2) fills two new descriptors we then own.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: both descriptors were just created and are owned here only.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    drop(read);
    Stdio::from(write)
}

#[test]
fn a_closed_pipe_ends_the_command_quietly() {
    let w = World::new();
    assert!(w.run(&["show the 2 largest files in ."]).status.success());
    for args in [
        &["tools"][..],
        &["doctor"],
        &["--json", "history"],
        &["journal", "tail"],
    ] {
        let out = w.cmd(args).stdout(closed_pipe()).output().unwrap();
        let err = text(&out.stderr);
        assert_eq!(
            out.status.signal(),
            Some(libc::SIGPIPE),
            "{args:?}: {:?} {err}",
            out.status
        );
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(!err.contains("Broken pipe"), "{args:?}: {err}");
    }
}

#[test]
fn piped_output_is_not_cut_at_any_width() {
    let w = World::new();
    let long = format!("{}.txt", "n".repeat(150));
    w.file(&long, "hello");
    let out = w
        .cmd(&["show the 3 largest files in ."])
        .env("COLUMNS", "60")
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains(&long), "cut:\n{stdout}");
    assert!(!stdout.contains('…'), "cut:\n{stdout}");
}

#[test]
fn a_broken_config_does_not_block_the_way_to_fix_it() {
    let w = World::new();
    let config = w.home.join(".config/kernos/config.toml");
    std::fs::create_dir_all(config.parent().unwrap()).unwrap();
    w.file("a.txt", "one");
    // A change made while the config was fine, to undo once it is broken.
    let done = w.run(&["--yes", "rename a.txt to b.txt"]);
    assert!(done.status.success(), "{}", text(&done.stderr));
    std::fs::write(&config, "[polcy]\nallow_medium = true\n").unwrap();

    // Requests refuse, with the parse error.
    let refused = w.run(&["show the 2 largest files in ."]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(text(&refused.stderr).contains("polcy"));

    // The doctor runs every check; the config one fails, with the parse error.
    let doctor = w.run(&["doctor"]);
    assert_eq!(doctor.status.code(), Some(1));
    assert!(text(&doctor.stdout).contains("journal"));
    assert!(text(&doctor.stdout).contains("polcy"));

    for args in [&["history"][..], &["--yes", "undo"], &["config", "path"]] {
        let out = w.run(args);
        let err = text(&out.stderr);
        assert!(
            out.status.success(),
            "{args:?} blocked by the config: {}{err}",
            text(&out.stdout)
        );
        if args != ["config", "path"] {
            assert!(err.contains("polcy"), "{args:?} hides the error: {err}");
        }
    }
    assert!(w.cwd.join("a.txt").exists(), "undo ran");

    // `config edit` runs the editor on the broken file and checks the result.
    let out = w
        .cmd(&["config", "edit"])
        .env("EDITOR", "sed -i s/polcy/policy/")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("is valid"));
}

#[test]
fn proc_find_does_not_match_kernos_or_its_wrappers() {
    let w = World::new();
    let kernos = env!("CARGO_BIN_EXE_kernos");
    // `timeout` and `sh -c` carry the request in their command lines.
    let line = format!("timeout 60 '{kernos}' 'is zzkernostestd running'");
    let out = w.program("sh").args(["-c", &line]).output().unwrap();
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains("no running process matches"),
        "a wrapper was taken for the process:\n{stdout}"
    );
}

#[test]
fn risk_labels_tell_the_truth() {
    let w = World::new();
    // Refused in the preview, by rule, not previewed as a medium-risk reversible change.
    let out = w.run(&["--dry-run", "rm -rf /"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("refused"), "{stdout}");
    assert!(!stdout.contains("risk medium"), "{stdout}");

    // An HTTP GET reads: not "high, irreversible".
    let out = w.run(&["--dry-run", "check that http://127.0.0.1:9/health responds"]);
    let stdout = text(&out.stdout);
    assert!(stdout.contains("risk low"), "{stdout}");
    assert!(!stdout.contains("irreversible"), "{stdout}");

    // Resolving a name reads, so it runs without a terminal like any read.
    let out = w.run(&["resolve localhost"]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(!stderr.contains("changes things"), "{stderr}");
    assert!(stdout.contains("127.0.0.1"), "{stdout}");
}
