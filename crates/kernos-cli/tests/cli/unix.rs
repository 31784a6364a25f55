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
