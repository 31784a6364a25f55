//! Attacks on a confined thread (`ThreadConfiner`), the confinement of steps' in-process work:
//! each tries to reach a hidden file (standing in for `/etc/shadow` or the journal) or to
//! write outside the granted tree by a route other than opening it by name, and asserts both
//! that it failed and that the tree is unchanged. Everything happens in a temp tree the test
//! made.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::fs;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use kernos_core::ThreadView;
use kernos_sandbox::ThreadConfiner;

const SECRET: &str = "HIDDEN-a1b2c3";

/// A tree: `open/` (readable and writable), `hidden.txt` (hidden), `other/` (readable only).
struct Tree {
    _dir: tempfile::TempDir,
    root: PathBuf,
}

impl Tree {
    fn new() -> Tree {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        fs::create_dir_all(root.join("open")).unwrap();
        fs::create_dir_all(root.join("other")).unwrap();
        fs::write(root.join("hidden.txt"), SECRET).unwrap();
        fs::write(root.join("other/keep.txt"), "keep").unwrap();
        Tree { _dir: dir, root }
    }

    fn view(&self) -> ThreadView {
        ThreadView {
            read: vec![self.root.clone()],
            write: vec![self.root.join("open")],
            hide: vec![self.root.join("hidden.txt")],
            show: vec![],
        }
    }

    fn p(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    /// The tree is as made, apart from what `open/` may now hold.
    fn unchanged(&self) {
        assert_eq!(fs::read_to_string(self.p("hidden.txt")).unwrap(), SECRET);
        assert_eq!(
            fs::read_to_string(self.p("other/keep.txt")).unwrap(),
            "keep"
        );
        let mut top: Vec<String> = fs::read_dir(&self.root)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        top.sort();
        assert_eq!(top, ["hidden.txt", "open", "other"]);
    }
}

/// Runs `f` on a fresh thread confined to `view`; `None` when this kernel has no Landlock.
fn confined<T: Send>(view: ThreadView, f: impl FnOnce() -> T + Send) -> Option<T> {
    if !ThreadConfiner::available() {
        eprintln!("skipped: this kernel has no Landlock");
        return None;
    }
    let c = ThreadConfiner::new();
    Some(std::thread::scope(|s| {
        s.spawn(|| {
            c.confine_current_thread(&view).expect("confine");
            f()
        })
        .join()
        .expect("thread")
    }))
}

fn leaked(r: std::io::Result<String>) -> bool {
    r.is_ok_and(|s| s.contains(SECRET))
}

#[test]
fn a_hard_link_to_a_hidden_file_cannot_be_made() {
    let t = Tree::new();
    let (from, to) = (t.p("hidden.txt"), t.p("open/link.txt"));
    let r = confined(t.view(), || {
        let linked = fs::hard_link(&from, &to).is_ok();
        (linked, leaked(fs::read_to_string(&to)))
    });
    if let Some((linked, leak)) = r {
        assert!(!linked && !leak);
        assert!(!t.p("open/link.txt").exists());
        t.unchanged();
    }
}

#[test]
fn a_hidden_file_cannot_be_moved_into_view() {
    let t = Tree::new();
    let (from, to) = (t.p("hidden.txt"), t.p("open/moved.txt"));
    if let Some(moved) = confined(t.view(), || fs::rename(&from, &to).is_ok()) {
        assert!(!moved);
        t.unchanged();
    }
}

#[test]
fn a_symlink_made_in_the_writable_tree_does_not_lead_to_a_hidden_file() {
    let t = Tree::new();
    let (target, link) = (t.p("hidden.txt"), t.p("open/ln"));
    let r = confined(t.view(), || {
        let _ = std::os::unix::fs::symlink(&target, &link);
        leaked(fs::read_to_string(&link))
    });
    if let Some(leak) = r {
        assert!(!leak);
        t.unchanged();
    }
}

#[test]
fn proc_self_root_and_a_reopened_descriptor_do_not_lead_to_a_hidden_file() {
    let t = Tree::new();
    // The process already has the hidden file open (as the daemon has its journal open);
    // the confined thread tries to reopen it through /proc.
    let held = fs::File::open(t.p("hidden.txt")).unwrap();
    let via_fd = PathBuf::from(format!("/proc/self/fd/{}", held.as_raw_fd()));
    let via_root = Path::new("/proc/self/root").join(t.p("hidden.txt").strip_prefix("/").unwrap());
    let r = confined(t.view(), || {
        (
            leaked(fs::read_to_string(&via_fd)),
            leaked(fs::read_to_string(&via_root)),
        )
    });
    if let Some((fd, root)) = r {
        assert!(!fd, "reopened through /proc/self/fd");
        assert!(!root, "read through /proc/self/root");
        t.unchanged();
    }
}

#[test]
fn a_hidden_file_cannot_be_truncated_overwritten_or_removed() {
    let t = Tree::new();
    let hidden = t.p("hidden.txt");
    let r = confined(t.view(), || {
        let trunc = fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&hidden)
            .is_ok();
        let write = fs::write(&hidden, "x").is_ok();
        let remove = fs::remove_file(&hidden).is_ok();
        (trunc, write, remove)
    });
    if let Some((trunc, write, remove)) = r {
        assert!(!trunc && !write && !remove);
        t.unchanged();
    }
}

#[test]
fn a_readable_tree_is_not_writable_and_nothing_can_be_executed() {
    let t = Tree::new();
    let keep = t.p("other/keep.txt");
    let new = t.p("other/new.txt");
    let r = confined(t.view(), || {
        let write = fs::write(&keep, "x").is_ok();
        let create = fs::write(&new, "x").is_ok();
        let exec = std::process::Command::new("/bin/true").status().is_ok();
        (write, create, exec)
    });
    if let Some((write, create, exec)) = r {
        assert!(!write && !create);
        assert!(!exec, "a confined thread asks its parent to run programs");
        assert!(!new.exists());
        t.unchanged();
    }
}
