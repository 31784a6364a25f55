//! Prompts in a real terminal (tmux): keys typed before a prompt was shown never answer it,
//! and a recursive or high-risk change needs a typed word, not one key.

use std::time::Duration;

use crate::World;
use crate::repl::Tmux;

/// `kernos 'delete the folder old'` in tmux, started after `delay_s` so that keys sent at once
/// are typed ahead.
fn delete_old(w: &World, tag: &str, delay_s: u32) -> Option<Tmux> {
    let line = format!(
        "sleep {delay_s}; {}; sleep 30",
        Tmux::kernos_line(w, "'delete the folder old'")
    );
    Tmux::start(w, tag, &line)
}

fn tree(w: &World) {
    for f in ["a", "b", "c"] {
        w.file(&format!("old/{f}"), f);
    }
}

#[test]
fn keys_typed_ahead_do_not_answer_the_prompt() {
    let w = World::new();
    tree(&w);
    let Some(tmux) = delete_old(&w, "ahead", 2) else {
        return;
    };
    // Typed while Kernos was still starting: the `y` in "stay" must not run the delete.
    tmux.send(&["-l", "stay"]);
    tmux.wait("the confirmation prompt", |s| s.contains("Run it?"));
    std::thread::sleep(Duration::from_millis(500));
    let s = tmux.screen();
    assert!(
        w.cwd.join("old/a").exists(),
        "typed-ahead keys ran it:\n{s}"
    );
    assert!(!s.contains("Type 4"), "typed-ahead keys answered:\n{s}");
    assert!(
        !s.contains("nothing done"),
        "typed-ahead keys answered:\n{s}"
    );
    tmux.send(&["n"]);
    tmux.wait("the refusal", |s| s.contains("nothing done"));
    assert!(w.cwd.join("old/a").exists());
}

#[test]
fn a_recursive_delete_needs_the_number_typed() {
    let w = World::new();
    tree(&w);
    let Some(tmux) = delete_old(&w, "word", 0) else {
        return;
    };
    tmux.wait("the confirmation prompt", |s| s.contains("Run it?"));
    tmux.send(&["y"]);
    tmux.wait("the typed-word prompt", |s| s.contains("Type 4 to run it"));
    // A wrong word (here the key that used to be enough) cancels.
    tmux.send(&["y", "Enter"]);
    tmux.wait("the refusal", |s| s.contains("nothing done"));
    assert!(w.cwd.join("old/a").exists());
    drop(tmux);

    let Some(tmux) = delete_old(&w, "word2", 0) else {
        return;
    };
    tmux.wait("the confirmation prompt", |s| s.contains("Run it?"));
    tmux.send(&["y"]);
    tmux.wait("the typed-word prompt", |s| s.contains("Type 4 to run it"));
    tmux.send(&["4", "Enter"]);
    tmux.wait("the result", |s| s.contains("undo with"));
    assert!(!w.cwd.join("old").exists());
}
