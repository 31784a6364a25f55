//! The attack suite: every case runs the real helper (`kernos-sandbox`) through the library's
//! runner and asserts both that the operation failed *and* that the host is unchanged.
//!
//! Safety of the suite itself: every file case works in a temp tree the test created; every
//! process killed was started by the test (or inside the sandbox); nothing touches the real
//! home directory, /tmp at large or system paths (system paths are only stat'ed/read to prove
//! they did not change).
//!
//! Needs (Debian packages): python3, curl, netcat-openbsd, iputils-ping, strace (optional),
//! gcc (cc), coreutils, util-linux (unshare, setpriv). Tests run as root, as in CI.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeMap;
use std::io::Read;
use std::net::{TcpListener, UdpSocket};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use kernos_core::exec::{
    CancelToken, ExecError, ExecOutcome, ExecRequest, ProcessRunner, StopReason,
};
use kernos_core::sandbox::{HostPort, Lifetime, Limits, NetworkPolicy, SandboxPolicy};
use kernos_sandbox::{RunReport, SandboxRunner};

// ------------------------------------------------------------------------------------------
// Fixtures
// ------------------------------------------------------------------------------------------

const SECRET: &str = "KERNOS-TEST-SECRET-d41d8cd9";

fn runner() -> SandboxRunner {
    SandboxRunner::with_helper(env!("CARGO_BIN_EXE_kernos-sandbox"))
}

fn python() -> &'static str {
    static P: OnceLock<String> = OnceLock::new();
    P.get_or_init(|| {
        for p in ["/usr/bin/python3", "/usr/local/bin/python3"] {
            if Path::new(p).exists() {
                return p.to_owned();
            }
        }
        "python3".to_owned()
    })
}

fn have(tool: &str) -> Option<PathBuf> {
    for dir in ["/usr/bin", "/bin", "/usr/sbin", "/sbin", "/usr/local/bin"] {
        let p = Path::new(dir).join(tool);
        if p.exists() {
            return Some(p);
        }
    }
    None
}

/// A temp tree standing in for the host:
/// ```text
/// root/                       (0755 so an unprivileged uid can traverse it)
///   work/                     the step's declared writable root
///   outside/victim.txt        must never change
///   outside/dir/
///   home/.ssh/id_rsa          stand-in for ~/.ssh (denied)
///   home/.ssh/known_hosts
///   home/notes.txt            readable
///   data/kernos/journal.db    stand-in for the journal (denied)
///   bin/                      programs compiled for the test
/// ```
/// path → (mode, uid, gid, size, mtime, content).
type Snapshot = BTreeMap<PathBuf, (u32, u32, u32, u64, i64, Vec<u8>)>;

struct Tree {
    _dir: tempfile::TempDir,
    root: PathBuf,
}

impl Tree {
    fn new() -> Tree {
        let dir = tempfile::Builder::new()
            .prefix("kernos-attack-")
            .tempdir()
            .unwrap();
        let root = dir.path().to_path_buf();
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)).unwrap();
        for d in ["work", "outside/dir", "home/.ssh", "data/kernos", "bin"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        std::fs::write(root.join("outside/victim.txt"), "original contents\n").unwrap();
        std::fs::write(root.join("outside/dir/keep.txt"), "keep\n").unwrap();
        std::fs::write(root.join("home/.ssh/id_rsa"), format!("{SECRET}\n")).unwrap();
        std::fs::write(
            root.join("home/.ssh/known_hosts"),
            "host ssh-ed25519 AAAA\n",
        )
        .unwrap();
        std::fs::write(root.join("home/notes.txt"), "notes\n").unwrap();
        std::fs::write(
            root.join("data/kernos/journal.db"),
            format!("{SECRET} journal\n"),
        )
        .unwrap();
        Tree { _dir: dir, root }
    }

    fn p(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    fn s(&self, rel: &str) -> String {
        self.p(rel).display().to_string()
    }

    /// A step policy: `work/` writable, `~/.ssh` and the journal dir hidden, no network; the
    /// working directory is the (read-only) tree root, so scripts say `work/…`.
    fn policy(&self) -> SandboxPolicy {
        SandboxPolicy {
            write: vec![self.p("work")],
            deny_read: vec![self.p("home/.ssh"), self.p("data/kernos")],
            cwd: Some(self.root.clone()),
            limits: Limits {
                wall_ms: Some(30_000),
                ..Limits::default()
            },
            ..SandboxPolicy::default()
        }
    }

    /// Everything outside `work/` (and `bin/`): path → (mode, uid, gid, size, mtime, content).
    fn snapshot(&self) -> Snapshot {
        let mut m = BTreeMap::new();
        fn walk(base: &Path, p: &Path, m: &mut Snapshot) {
            let md = std::fs::symlink_metadata(p).unwrap();
            let content = if md.is_file() {
                std::fs::read(p).unwrap()
            } else {
                Vec::new()
            };
            m.insert(
                p.strip_prefix(base).unwrap().to_path_buf(),
                (
                    md.mode(),
                    md.uid(),
                    md.gid(),
                    md.size(),
                    md.mtime(),
                    content,
                ),
            );
            if md.is_dir() {
                for e in std::fs::read_dir(p).unwrap() {
                    let e = e.unwrap();
                    let name = e.file_name();
                    if p == base && (name == "work" || name == "bin") {
                        continue;
                    }
                    walk(base, &e.path(), m);
                }
            }
        }
        walk(&self.root, &self.root, &mut m);
        m
    }

    /// Compiles C source into bin/NAME with the host compiler.
    fn cc(&self, name: &str, src: &str, extra: &[&str]) -> PathBuf {
        let c = self.p(&format!("bin/{name}.c"));
        let out = self.p(&format!("bin/{name}"));
        std::fs::write(&c, src).unwrap();
        let st = Command::new("cc")
            .args(["-O1", "-o"])
            .arg(&out)
            .arg(&c)
            .args(extra)
            .status()
            .expect("cc is needed to build attack programs");
        assert!(st.success(), "compiling {name}");
        out
    }
}

fn run_report(req: &ExecRequest) -> RunReport {
    runner()
        .run_detailed(req, &CancelToken::new())
        .unwrap_or_else(|e| panic!("sandbox refused {:?}: {e}", req.argv))
}

fn run(argv: &[&str], policy: SandboxPolicy) -> ExecOutcome {
    let o = run_report(&ExecRequest::new(argv, policy)).outcome;
    eprintln!(
        "$ {argv:?}\n  code={:?} signal={:?} stopped={:?}\n  stdout={}\n  stderr={}",
        o.code,
        o.signal,
        o.stopped,
        o.stdout_text().chars().take(2000).collect::<String>(),
        o.stderr_text().chars().take(2000).collect::<String>()
    );
    o
}

fn sh(t: &Tree, script: &str) -> ExecOutcome {
    run(&["/bin/sh", "-c", script], t.policy())
}

fn sh_with(policy: SandboxPolicy, script: &str) -> ExecOutcome {
    run(&["/bin/sh", "-c", script], policy)
}

fn py(t: &Tree, code: &str) -> ExecOutcome {
    run(&[python(), "-c", code], t.policy())
}

fn py_with(policy: SandboxPolicy, code: &str) -> ExecOutcome {
    run(&[python(), "-c", code], policy)
}

/// Runs the attack, asserts it failed (non-zero or killed) and the host tree is unchanged.
fn attack(t: &Tree, script: &str) -> ExecOutcome {
    let before = t.snapshot();
    let o = sh(t, script);
    assert!(!o.success(), "attack succeeded: {script}");
    assert_eq!(before, t.snapshot(), "host tree changed by: {script}");
    o
}

/// Host processes whose command line contains `marker`.
fn host_processes_with(marker: &str) -> Vec<i32> {
    let mut v = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if let Ok(c) = std::fs::read(e.path().join("cmdline")) {
            if String::from_utf8_lossy(&c).contains(marker) && pid != std::process::id() as i32 {
                v.push(pid);
            }
        }
    }
    v
}

/// A host TCP listener on loopback that records whether anyone connected.
struct Listener {
    port: u16,
    hit: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Listener {
    fn new() -> Listener {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let hit = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let h = hit.clone();
        l.set_nonblocking(true).unwrap();
        std::thread::spawn(move || {
            let end = Instant::now() + Duration::from_secs(60);
            while Instant::now() < end {
                if let Ok((mut s, _)) = l.accept() {
                    h.store(true, std::sync::atomic::Ordering::SeqCst);
                    let _ = s.set_nonblocking(false);
                    let mut b = [0u8; 64];
                    let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
                    let _ = s.read(&mut b);
                    use std::io::Write;
                    let _ = s.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok");
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        Listener { port, hit }
    }

    fn was_hit(&self) -> bool {
        std::thread::sleep(Duration::from_millis(100));
        self.hit.load(std::sync::atomic::Ordering::SeqCst)
    }
}

fn features() -> &'static kernos_sandbox::Features {
    static F: OnceLock<kernos_sandbox::Features> = OnceLock::new();
    F.get_or_init(kernos_sandbox::probe)
}

// ------------------------------------------------------------------------------------------
// The machine must offer full confinement (CI runs here); otherwise say exactly what is missing.
// ------------------------------------------------------------------------------------------

#[test]
fn probe_reports_full_confinement() {
    let f = features();
    eprintln!("{f}");
    assert!(f.missing().is_empty(), "missing: {:?}", f.missing());
    assert!(f.landlock_abi.unwrap_or(0) >= 1);
}

// ------------------------------------------------------------------------------------------
// Filesystem: writes outside the declared roots
// ------------------------------------------------------------------------------------------

mod fs_writes {
    use super::*;

    #[test]
    fn overwrite_file_outside_writable_root() {
        let t = Tree::new();
        attack(&t, &format!("echo pwned > {}", t.s("outside/victim.txt")));
    }

    #[test]
    fn append_to_file_outside() {
        let t = Tree::new();
        attack(&t, &format!("echo pwned >> {}", t.s("outside/victim.txt")));
    }

    #[test]
    fn create_file_outside() {
        let t = Tree::new();
        attack(&t, &format!("touch {}", t.s("outside/new-file")));
        assert!(!t.p("outside/new-file").exists());
    }

    #[test]
    fn delete_file_outside() {
        let t = Tree::new();
        attack(&t, &format!("rm -f {}", t.s("outside/victim.txt")));
        attack(&t, &format!("rm -rf {}", t.s("outside/dir")));
        attack(&t, &format!("rmdir {}", t.s("outside/dir")));
    }

    #[test]
    fn mkdir_outside() {
        let t = Tree::new();
        attack(&t, &format!("mkdir {}", t.s("outside/newdir")));
    }

    #[test]
    fn rename_out_of_writable_root() {
        let t = Tree::new();
        attack(
            &t,
            &format!("echo x > work/f && mv work/f {}", t.s("outside/moved")),
        );
        assert!(!t.p("outside/moved").exists());
    }

    #[test]
    fn rename_into_writable_root() {
        let t = Tree::new();
        // mv falls back to copy + unlink across mounts: the copy may land in work/ (reading is
        // allowed), but the original must stay where it is (checked by `attack`).
        attack(&t, &format!("mv {} work/stolen", t.s("outside/victim.txt")));
        assert!(t.p("outside/victim.txt").exists());
        attack(&t, &format!("mv {} work/stolen-dir", t.s("outside/dir")));
    }

    #[test]
    fn symlink_created_inside_pointing_out() {
        let t = Tree::new();
        attack(
            &t,
            &format!(
                "ln -s {} work/link && echo pwned > work/link",
                t.s("outside/victim.txt")
            ),
        );
        attack(
            &t,
            "ln -s ../outside work/dirlink && touch work/dirlink/new",
        );
    }

    #[test]
    fn symlink_planted_by_host_pointing_out() {
        let t = Tree::new();
        std::os::unix::fs::symlink(t.p("outside/victim.txt"), t.p("work/evil")).unwrap();
        std::os::unix::fs::symlink(t.p("outside/dir"), t.p("work/evil-dir")).unwrap();
        attack(&t, "echo pwned > work/evil");
        attack(&t, "touch work/evil-dir/new");
        attack(&t, "rm work/evil-dir/keep.txt");
    }

    #[test]
    fn hard_link_out_of_the_root() {
        let t = Tree::new();
        // Linking an outside file into the writable root would make it writable there.
        attack(
            &t,
            &format!(
                "ln {} work/hl && echo pwned > work/hl",
                t.s("outside/victim.txt")
            ),
        );
        assert!(!t.p("work/hl").exists());
    }

    #[test]
    fn metadata_changes_outside() {
        let t = Tree::new();
        attack(&t, &format!("chmod 777 {}", t.s("outside/victim.txt")));
        attack(&t, &format!("chown 65534 {}", t.s("outside/victim.txt")));
        attack(
            &t,
            &format!("touch -d 2001-01-01 {}", t.s("outside/victim.txt")),
        );
        attack(&t, &format!("truncate -s 0 {}", t.s("outside/victim.txt")));
        let o = py(
            &t,
            &format!(
                "import os; os.setxattr({:?}, 'user.pwn', b'1')",
                t.s("outside/victim.txt")
            ),
        );
        assert!(!o.success());
    }

    #[test]
    fn write_through_proc_self_root_and_dotdot() {
        let t = Tree::new();
        attack(
            &t,
            &format!("echo pwned > /proc/self/root{}", t.s("outside/victim.txt")),
        );
        attack(&t, "echo pwned > work/../outside/victim.txt");
        attack(&t, "echo pwned > /proc/self/cwd/outside/victim.txt");
    }

    #[test]
    fn working_directory_outside_is_not_writable() {
        let t = Tree::new();
        let before = t.snapshot();
        let mut p = t.policy();
        p.cwd = Some(t.p("outside"));
        let o = sh_with(p, "touch ./x");
        assert!(!o.success());
        assert_eq!(before, t.snapshot());
    }

    #[test]
    fn system_paths_and_tmp_are_read_only() {
        let t = Tree::new();
        let name = format!("kernos-attack-{}", std::process::id());
        attack(&t, &format!("touch /etc/{name}"));
        attack(&t, &format!("touch /tmp/{name}"));
        attack(&t, &format!("mkdir /var/tmp/{name}"));
        assert!(!Path::new(&format!("/etc/{name}")).exists());
        assert!(!Path::new(&format!("/tmp/{name}")).exists());
        assert!(!Path::new(&format!("/var/tmp/{name}")).exists());
    }

    #[test]
    fn device_nodes_cannot_be_changed_or_created() {
        let t = Tree::new();
        let before = std::fs::metadata("/dev/null").unwrap().mode();
        attack(&t, "chmod 000 /dev/null");
        assert_eq!(std::fs::metadata("/dev/null").unwrap().mode(), before);
        attack(&t, "mknod work/sda b 8 0");
        assert!(!t.p("work/sda").exists());
    }

    #[test]
    fn raw_disk_is_not_reachable() {
        let t = Tree::new();
        // Whatever block device backs / on the host does not exist in the sandbox's /dev.
        let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
        let dev = mounts
            .lines()
            .find_map(|l| {
                let mut f = l.split(' ');
                let (d, m) = (f.next()?, f.next()?);
                (m == "/" && d.starts_with("/dev/")).then(|| d.to_owned())
            })
            .unwrap_or_else(|| "/dev/sda".into());
        let o = attack(&t, &format!("head -c 512 {dev} > /dev/null"));
        assert!(
            o.stderr_text().contains("No such file"),
            "{}",
            o.stderr_text()
        );
        attack(&t, &format!("test -e {dev}"));
    }

    #[test]
    fn sysctl_and_cgroup_files_are_read_only() {
        let t = Tree::new();
        let swappiness = std::fs::read_to_string("/proc/sys/vm/swappiness").unwrap();
        attack(&t, "echo 1 > /proc/sys/vm/swappiness");
        assert_eq!(
            swappiness,
            std::fs::read_to_string("/proc/sys/vm/swappiness").unwrap()
        );
        // Raising one's own pids limit, or the v1 release_agent escape.
        attack(
            &t,
            "cg=$(grep -E ':pids:' /proc/self/cgroup | cut -d: -f3); \
             echo max > /sys/fs/cgroup/pids$cg/pids.max",
        );
        attack(
            &t,
            "echo /bin/sh > /sys/fs/cgroup/pids/release_agent; \
             echo 1 > /sys/fs/cgroup/pids/notify_on_release && exit 0; exit 1",
        );
    }

    #[test]
    fn leaked_descriptor_does_not_reach_the_command() {
        let t = Tree::new();
        let f = std::fs::OpenOptions::new()
            .append(true)
            .open(t.p("outside/victim.txt"))
            .unwrap();
        use std::os::fd::AsRawFd;
        let fd = f.as_raw_fd();
        // Simulate a bug in the caller: a writable descriptor without close-on-exec.
        unsafe { libc::fcntl(fd, libc::F_SETFD, 0) };
        let before = t.snapshot();
        let o = sh(&t, &format!("echo pwned >&{fd}"));
        assert!(!o.success());
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
        drop(f);
        assert_eq!(before, t.snapshot());
    }
}

// ------------------------------------------------------------------------------------------
// Filesystem: reading what is denied
// ------------------------------------------------------------------------------------------

mod fs_reads {
    use super::*;

    #[test]
    fn ssh_key_is_unreadable() {
        let t = Tree::new();
        let o = attack(&t, &format!("cat {}", t.s("home/.ssh/id_rsa")));
        assert!(!o.stdout_text().contains(SECRET));
        // The directory is still there (so `ls ~` works), just empty.
        let o = sh(
            &t,
            &format!("ls -A {}; ls {}", t.s("home/.ssh"), t.s("home")),
        );
        assert!(o.success());
        assert!(!o.stdout_text().contains("id_rsa"));
        assert!(o.stdout_text().contains("notes.txt"));
    }

    #[test]
    fn journal_is_unreadable() {
        let t = Tree::new();
        let o = attack(&t, &format!("cat {}", t.s("data/kernos/journal.db")));
        assert!(!o.stdout_text().contains(SECRET));
    }

    #[test]
    fn secrets_do_not_show_up_in_a_recursive_grep() {
        let t = Tree::new();
        let o = sh(&t, &format!("grep -r {SECRET} {} ; true", t.s("")));
        assert!(!o.stdout_text().contains("id_rsa"), "{}", o.stdout_text());
        assert!(!o.stdout_text().contains("journal"), "{}", o.stdout_text());
    }

    #[test]
    fn symlink_to_a_denied_file() {
        let t = Tree::new();
        std::os::unix::fs::symlink(t.p("home/.ssh/id_rsa"), t.p("work/key")).unwrap();
        let o = attack(&t, "cat work/key");
        assert!(!o.stdout_text().contains(SECRET));
        let o = attack(
            &t,
            &format!(
                "ln -s {} work/k2 && cat work/k2",
                t.s("data/kernos/journal.db")
            ),
        );
        assert!(!o.stdout_text().contains(SECRET));
    }

    #[test]
    fn denied_single_file() {
        let t = Tree::new();
        std::fs::write(t.p("home/token"), SECRET).unwrap();
        let mut p = t.policy();
        p.deny_read.push(t.p("home/token"));
        let o = sh_with(p, &format!("cat {}", t.s("home/token")));
        assert!(!o.success());
        assert!(!o.stdout_text().contains(SECRET));
    }

    #[test]
    fn declared_path_inside_a_denied_dir_is_readable_the_rest_is_not() {
        let t = Tree::new();
        let mut p = t.policy();
        p.read.push(t.p("home/.ssh/known_hosts"));
        let o = sh_with(p.clone(), &format!("cat {}", t.s("home/.ssh/known_hosts")));
        assert!(o.success());
        assert!(o.stdout_text().contains("ssh-ed25519"));
        let o = sh_with(p, &format!("cat {}", t.s("home/.ssh/id_rsa")));
        assert!(!o.success());
        assert!(!o.stdout_text().contains(SECRET));
    }
}

// ------------------------------------------------------------------------------------------
// Processes: /proc, ptrace, signals
// ------------------------------------------------------------------------------------------

mod procs {
    use super::*;

    /// A host process started by the test, killed when dropped.
    struct HostSleeper(std::process::Child);
    impl HostSleeper {
        fn new() -> Self {
            HostSleeper(Command::new("sleep").arg("300").spawn().unwrap())
        }
        fn pid(&self) -> u32 {
            self.0.id()
        }
        fn alive(&mut self) -> bool {
            self.0.try_wait().unwrap().is_none()
        }
    }
    impl Drop for HostSleeper {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    #[test]
    fn host_processes_are_invisible_and_untouchable() {
        let t = Tree::new();
        let mut h = HostSleeper::new();
        let pid = h.pid();
        attack(&t, &format!("ls /proc/{pid}/root/"));
        attack(&t, &format!("cat /proc/{pid}/environ"));
        attack(&t, &format!("cat /proc/{pid}/cmdline"));
        attack(&t, &format!("kill -9 {pid}"));
        let o = py(
            &t,
            &format!(
                "import ctypes,sys; l=ctypes.CDLL(None,use_errno=True); \
                 r=l.ptrace(16,{pid},0,0); sys.exit(0 if r==0 else 1)"
            ),
        );
        assert!(!o.success());
        assert!(h.alive(), "the host process was killed");
        // Only the sandbox's own processes are visible.
        let o = sh(&t, "ls /proc | grep -E '^[0-9]+$' | wc -l");
        let n: u32 = o.stdout_text().trim().parse().unwrap();
        assert!(n < 10, "saw {n} processes");
    }

    #[test]
    fn proc_mem_of_the_namespace_init_is_off_limits() {
        let t = Tree::new();
        // PID 1 is the sandbox's init, outside the command's Landlock domain.
        attack(
            &t,
            "printf 'xxxx' | dd of=/proc/1/mem bs=1 seek=4194304 conv=notrunc",
        );
        attack(&t, "cat /proc/1/environ");
        attack(&t, "ls -l /proc/1/root/");
        let o = py(
            &t,
            "import sys\n\
             try:\n  f=open('/proc/1/mem','r+b')\nexcept OSError as e:\n  sys.exit(1)\n\
             sys.exit(0)",
        );
        assert!(!o.success());
    }

    #[test]
    fn ptrace_of_a_sibling_is_denied() {
        let t = Tree::new();
        let o = py(
            &t,
            "import ctypes,os,sys,time\n\
             l=ctypes.CDLL(None,use_errno=True)\n\
             pid=os.fork()\n\
             if pid==0:\n  time.sleep(5); os._exit(0)\n\
             r=l.ptrace(16,pid,0,0)\n\
             e=ctypes.get_errno()\n\
             os.kill(pid,9)\n\
             print('ptrace',r,e)\n\
             sys.exit(0 if r==0 else 3)",
        );
        assert_eq!(o.code, Some(3), "{}", o.stdout_text());
        assert!(o.stdout_text().contains("ptrace -1 1"), "expected EPERM");
        if let Some(strace) = have("strace") {
            let o = run(&[strace.to_str().unwrap(), "-f", "true"], t.policy());
            assert!(!o.success());
        } else {
            eprintln!("skipping the strace variant: strace not installed");
        }
    }

    #[test]
    fn process_vm_readv_of_a_sibling_is_denied() {
        let t = Tree::new();
        let o = py(
            &t,
            "import ctypes,os,sys,time\n\
             l=ctypes.CDLL(None,use_errno=True)\n\
             pid=os.fork()\n\
             if pid==0:\n  time.sleep(5); os._exit(0)\n\
             buf=ctypes.create_string_buffer(16)\n\
             class iov(ctypes.Structure): _fields_=[('b',ctypes.c_void_p),('n',ctypes.c_size_t)]\n\
             local=iov(ctypes.addressof(buf),16); remote=iov(0x400000,16)\n\
             r=l.process_vm_readv(pid,ctypes.byref(local),1,ctypes.byref(remote),1,0)\n\
             e=ctypes.get_errno(); os.kill(pid,9)\n\
             sys.exit(3 if (r==-1 and e==1) else 0)",
        );
        assert_eq!(o.code, Some(3));
    }

    #[test]
    fn signalling_the_sandbox_init_does_nothing() {
        let t = Tree::new();
        let o = sh(&t, "kill -9 1; kill -TERM 1; echo still-here");
        assert!(o.stdout_text().contains("still-here"));
        assert!(o.stopped.is_none());
    }
}

// ------------------------------------------------------------------------------------------
// Network
// ------------------------------------------------------------------------------------------

mod network {
    use super::*;

    #[test]
    fn inet_sockets_are_refused() {
        let t = Tree::new();
        for fam in ["AF_INET", "AF_INET6", "AF_NETLINK", "AF_PACKET"] {
            let o = py(
                &t,
                &format!(
                    "import socket,sys\ntry:\n  socket.socket(socket.{fam}, socket.SOCK_RAW if '{fam}'=='AF_PACKET' else socket.SOCK_DGRAM)\nexcept PermissionError:\n  sys.exit(7)\nsys.exit(0)"
                ),
            );
            assert_eq!(o.code, Some(7), "{fam} was not refused with EPERM");
        }
    }

    #[test]
    fn tcp_connect_to_host_loopback_fails() {
        let t = Tree::new();
        let l = Listener::new();
        let o = py(
            &t,
            &format!(
                "import socket; s=socket.create_connection(('127.0.0.1',{}),2)",
                l.port
            ),
        );
        assert!(!o.success());
        assert!(!l.was_hit(), "the host listener got a connection");
    }

    #[test]
    fn bash_dev_tcp_fails() {
        let t = Tree::new();
        let l = Listener::new();
        let o = run(
            &[
                "/bin/bash",
                "-c",
                &format!("echo hi > /dev/tcp/127.0.0.1/{}", l.port),
            ],
            t.policy(),
        );
        assert!(!o.success());
        assert!(!l.was_hit());
    }

    #[test]
    fn curl_fails() {
        let t = Tree::new();
        let Some(curl) = have("curl") else {
            panic!("curl is needed (apt-get install curl)");
        };
        let l = Listener::new();
        let o = run(
            &[
                curl.to_str().unwrap(),
                "-sS",
                "-m",
                "3",
                &format!("http://127.0.0.1:{}/", l.port),
            ],
            t.policy(),
        );
        assert!(!o.success());
        assert!(!l.was_hit());
    }

    #[test]
    fn netcat_fails() {
        let t = Tree::new();
        let Some(nc) = have("nc") else {
            panic!("nc is needed (apt-get install netcat-openbsd)");
        };
        let l = Listener::new();
        let o = run(
            &[
                nc.to_str().unwrap(),
                "-z",
                "-w",
                "2",
                "127.0.0.1",
                &l.port.to_string(),
            ],
            t.policy(),
        );
        assert!(!o.success());
        assert!(!l.was_hit());
    }

    #[test]
    fn ping_fails() {
        let t = Tree::new();
        let Some(ping) = have("ping") else {
            panic!("ping is needed (apt-get install iputils-ping)");
        };
        let o = run(
            &[ping.to_str().unwrap(), "-c", "1", "-W", "1", "127.0.0.1"],
            t.policy(),
        );
        assert!(!o.success());
    }

    #[test]
    fn dns_lookups_fail() {
        let t = Tree::new();
        // A resolver on the host loopback: nothing may reach it.
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        udp.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let port = udp.local_addr().unwrap().port();
        let o = py(
            &t,
            &format!(
                "import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n\
                 s.sendto(b'\\x12\\x34'+b'\\x01\\x00'+b'\\x00\\x01'+b'\\x00'*6+b'\\x07example\\x03com\\x00\\x00\\x01\\x00\\x01',('127.0.0.1',{port}))"
            ),
        );
        assert!(!o.success());
        let mut b = [0u8; 512];
        assert!(
            udp.recv_from(&mut b).is_err(),
            "the host resolver got a query"
        );
        let o = py(
            &t,
            "import socket; socket.getaddrinfo('deb.debian.org', 443)",
        );
        assert!(!o.success());
        let o = sh(&t, "getent hosts deb.debian.org");
        assert!(!o.success());
    }

    #[test]
    fn io_uring_is_refused() {
        let t = Tree::new();
        let o = py(
            &t,
            "import ctypes,sys\nl=ctypes.CDLL(None,use_errno=True)\n\
             p=ctypes.create_string_buffer(120)\n\
             r=l.syscall(425,8,p)\n\
             sys.exit(7 if (r==-1 and ctypes.get_errno()==1) else 0)",
        );
        assert_eq!(o.code, Some(7));
    }

    #[test]
    fn hidden_host_control_socket_is_unreachable_even_with_network() {
        // Stand-in for /run/docker.sock: a root-owned daemon socket on the host.
        let t = Tree::new();
        let path = t.p("outside/daemon.sock");
        let l = std::os::unix::net::UnixListener::bind(&path).unwrap();
        l.set_nonblocking(true).unwrap();
        let code = format!(
            "import socket,sys\ns=socket.socket(socket.AF_UNIX)\n\
             try:\n  s.connect({:?})\nexcept OSError as e:\n  print(e); sys.exit(7)\nsys.exit(0)",
            path.display().to_string()
        );
        let mut p = t.policy();
        p.network = NetworkPolicy::Allow { hosts: vec![] };
        // Control: with the network effect, connect(2) is allowed, so only hiding protects.
        let mut visible = p.clone();
        visible.deny_read.clear();
        assert_eq!(py_with(visible, &code).code, Some(0));
        assert!(l.accept().is_ok(), "control connection did not arrive");
        // Hidden (as default_deny_read() does for the real daemon sockets): unreachable.
        p.deny_read.push(path.clone());
        assert_eq!(py_with(p.clone(), &code).code, Some(7));
        // Without the network effect, connect(2) itself is refused.
        let mut no_net = t.policy();
        no_net.deny_read.clear();
        assert_eq!(py_with(no_net, &code).code, Some(7));
        assert!(l.accept().is_err(), "the host socket got a connection");
        assert!(
            kernos_sandbox::default_deny_read()
                .iter()
                .any(|p| p == Path::new("/run/docker.sock"))
        );
    }

    #[test]
    fn host_abstract_unix_socket_is_unreachable_even_with_network() {
        let t = Tree::new();
        let name = format!("kernos-attack-{}", std::process::id());
        use std::os::linux::net::SocketAddrExt;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let l = std::os::unix::net::UnixListener::bind_addr(&addr).unwrap();
        l.set_nonblocking(true).unwrap();
        let code = format!(
            "import socket,sys\ns=socket.socket(socket.AF_UNIX)\n\
             try:\n  s.connect('\\0{name}')\nexcept OSError as e:\n  print(e); sys.exit(7)\nsys.exit(0)"
        );
        // Without the network effect: a separate network namespace.
        assert_eq!(py(&t, &code).code, Some(7));
        // With it (same network namespace as the host): Landlock's abstract-socket scope.
        let mut p = t.policy();
        p.network = NetworkPolicy::Allow { hosts: vec![] };
        if features().landlock_abi.unwrap_or(0) >= 6 {
            assert_eq!(py_with(p, &code).code, Some(7));
        } else {
            eprintln!("skipping the networked variant: Landlock ABI < 6 has no scoping");
        }
        assert!(l.accept().is_err(), "the host socket got a connection");
    }
}

// ------------------------------------------------------------------------------------------
// Resources
// ------------------------------------------------------------------------------------------

mod resources {
    use super::*;

    #[test]
    fn fork_bomb_hits_the_process_limit() {
        let t = Tree::new();
        let marker = format!("kbomb{}", std::process::id());
        let bomb = t.cc(
            &marker,
            "#include <unistd.h>\nint main(){for(;;){fork();}}",
            &[],
        );
        let mut p = t.policy();
        p.limits.max_processes = Some(64);
        p.limits.wall_ms = Some(3000);
        let started = Instant::now();
        let o = run(&[bomb.to_str().unwrap()], p);
        assert!(
            matches!(
                o.stopped,
                Some(StopReason::ProcessLimit { limit: 64 }) | Some(StopReason::Timeout { .. })
            ),
            "{:?}",
            o.stopped
        );
        assert!(started.elapsed() < Duration::from_secs(15));
        assert!(
            host_processes_with(&marker).is_empty(),
            "bomb processes survived"
        );
        // The host can still fork.
        assert!(Command::new("true").status().unwrap().success());
    }

    #[test]
    fn memory_bomb_is_stopped_and_host_is_fine() {
        let t = Tree::new();
        let mut p = t.policy();
        p.limits.memory_bytes = Some(256 << 20);
        // One huge allocation: refused outright.
        let o = py_with(p.clone(), "b = bytearray(4 << 30)");
        assert!(!o.success());
        assert!(o.stderr_text().contains("MemoryError") || o.stopped.is_some());
        // Touching memory in chunks: the memory cgroup (when there is one) kills it.
        let o = py_with(
            p,
            "chunks=[]\nfor i in range(64):\n  chunks.append(bytearray(64<<20))",
        );
        assert!(!o.success());
        if features()
            .cgroup
            .as_ref()
            .is_some_and(|c| c.controllers.iter().any(|x| x == "memory"))
        {
            assert!(
                matches!(o.stopped, Some(StopReason::MemoryLimit { .. }))
                    || o.stderr_text().contains("MemoryError"),
                "{:?}",
                o.stopped
            );
        }
        assert!(Command::new("true").status().unwrap().success());
    }

    #[test]
    fn cpu_spin_hits_the_cpu_limit() {
        let t = Tree::new();
        let mut p = t.policy();
        p.limits.cpu_seconds = Some(1);
        p.limits.wall_ms = Some(20_000);
        let started = Instant::now();
        let o = sh_with(p, "while :; do :; done");
        assert!(
            matches!(o.stopped, Some(StopReason::CpuLimit { limit_s: 1 })),
            "{:?}",
            o.stopped
        );
        assert!(started.elapsed() < Duration::from_secs(10));
        assert!(o.cpu_ms >= 900, "cpu_ms = {} ({o:?})", o.cpu_ms);
    }

    #[test]
    fn wall_clock_timeout_kills_everything() {
        let t = Tree::new();
        let mut p = t.policy();
        p.limits.wall_ms = Some(500);
        let started = Instant::now();
        let o = sh_with(p.clone(), "sleep 100");
        assert_eq!(o.stopped, Some(StopReason::Timeout { limit_ms: 500 }));
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(o.wall_ms >= 500);
        // CPU burnt before the kill is still accounted (the daemon bills on it).
        p.limits.wall_ms = Some(800);
        let o = sh_with(p, "while :; do :; done");
        assert_eq!(o.stopped, Some(StopReason::Timeout { limit_ms: 800 }));
        assert!(o.cpu_ms >= 100, "cpu_ms = {}", o.cpu_ms);
    }

    #[test]
    fn sigterm_ignoring_daemon_dies_with_the_step() {
        let t = Tree::new();
        let marker = format!("kdaemon{}", std::process::id());
        // A daemon that ignores SIGTERM and leaves the session, and a main process that
        // hangs until the wall clock runs out.
        let script = format!(
            "trap '' TERM HUP; \
             setsid sh -c \"trap '' TERM HUP; exec -a {marker}-a sleep 300\" & \
             (trap '' TERM HUP; exec -a {marker}-b sleep 300) & \
             sleep 300"
        );
        let mut p = t.policy();
        p.limits.wall_ms = Some(1000);
        let o = run(&["/bin/bash", "-c", &script], p.clone());
        assert!(matches!(o.stopped, Some(StopReason::Timeout { .. })));
        assert!(
            host_processes_with(&marker).is_empty(),
            "daemon survived the timeout"
        );

        // And one whose main process exits at once, leaving the daemon behind.
        let script = format!(
            "setsid sh -c \"trap '' TERM HUP; exec -a {marker}-c sleep 300\" & echo started"
        );
        let o = run(&["/bin/bash", "-c", &script], p);
        assert!(o.success());
        assert!(
            host_processes_with(&marker).is_empty(),
            "daemon outlived the step"
        );
    }

    #[test]
    fn huge_output_is_capped_with_a_marker() {
        let t = Tree::new();
        let mut p = t.policy();
        p.limits.output_bytes = Some(1 << 20);
        let o = sh_with(p.clone(), "head -c 50000000 /dev/zero; echo done >&2");
        assert!(o.success(), "the command must not block on a full pipe");
        assert!(o.stdout_truncated);
        assert!(o.stdout.len() < (1 << 20) + 200);
        assert!(o.stdout_text().contains("output truncated"));
        assert!(o.stderr_text().contains("done"));
        // Endless output: capped, and stopped by the clock.
        p.limits.wall_ms = Some(1500);
        let o = sh_with(p, "yes");
        assert!(matches!(o.stopped, Some(StopReason::Timeout { .. })));
        assert!(o.stdout_truncated);
        assert!(o.stdout.len() < (1 << 20) + 200);
    }

    #[test]
    fn file_size_limit() {
        let t = Tree::new();
        let mut p = t.policy();
        p.limits.file_size_bytes = Some(1 << 20);
        let o = run(
            &["dd", "if=/dev/zero", "of=work/big", "bs=1M", "count=10"],
            p.clone(),
        );
        assert!(
            matches!(o.stopped, Some(StopReason::FileSizeLimit { .. })),
            "{:?}",
            o.stopped
        );
        // Through a shell (as shell.run does), which reports the signal as 128+SIGXFSZ.
        let o = sh_with(p, "head -c 10000000 /dev/zero > work/big");
        assert!(
            matches!(o.stopped, Some(StopReason::FileSizeLimit { .. })),
            "{:?}",
            o.stopped
        );
        assert!(std::fs::metadata(t.p("work/big")).unwrap().len() <= 1 << 20);
    }
}

// ------------------------------------------------------------------------------------------
// Privilege: environment, setuid, kernel interfaces
// ------------------------------------------------------------------------------------------

mod privilege {
    use super::*;

    #[test]
    fn ld_preload_and_secrets_in_the_environment_are_scrubbed() {
        let t = Tree::new();
        let evil = t.cc(
            "evil.so",
            "#include <stdio.h>\n__attribute__((constructor)) static void pwn(void){fputs(\"PWNED\\n\",stderr);}",
            &["-shared", "-fPIC"],
        );
        let r = runner().with_base_env([
            ("PATH", "/usr/bin:/bin"),
            ("LD_PRELOAD", evil.to_str().unwrap()),
            ("LD_LIBRARY_PATH", t.s("bin").as_str()),
            ("http_proxy", "http://evil:3128"),
            ("HTTPS_PROXY", "http://evil:3128"),
            ("GITHUB_TOKEN", SECRET),
            ("AWS_SECRET_ACCESS_KEY", SECRET),
            ("LANG", "C.UTF-8"),
        ]);
        let o = r
            .run_detailed(
                &ExecRequest::new(&["/bin/sh", "-c", "env; /bin/true"], t.policy()),
                &CancelToken::new(),
            )
            .unwrap()
            .outcome;
        assert!(o.success());
        let env = o.stdout_text();
        for bad in [
            "LD_PRELOAD",
            "LD_LIBRARY_PATH",
            "http_proxy",
            "HTTPS_PROXY",
            SECRET,
        ] {
            assert!(!env.contains(bad), "{bad} leaked into the environment");
        }
        assert!(env.contains("LANG=C.UTF-8"));
        assert!(env.contains("TMPDIR="));
        assert!(!o.stderr_text().contains("PWNED"));
    }

    #[test]
    fn setuid_binaries_do_not_gain_privileges() {
        let t = Tree::new();
        let showid = t.cc(
            "showid",
            "#include <stdio.h>\n#include <unistd.h>\nint main(){printf(\"euid=%d\\n\",(int)geteuid());return 0;}",
            &[],
        );
        std::fs::set_permissions(&showid, std::fs::Permissions::from_mode(0o4755)).unwrap();
        let dropper = t.cc(
            "dropper",
            "#include <unistd.h>\n#include <stdio.h>\n#include <grp.h>\nint main(int c,char**v){\
             if(setgroups(0,0)||setgid(65534)||setuid(65534)){perror(\"drop\");return 2;}\
             execv(v[1],v+1);perror(\"exec\");return 3;}",
            &[],
        );
        std::fs::set_permissions(t.p("bin"), std::fs::Permissions::from_mode(0o755)).unwrap();
        // Control: on the host the setuid bit works, so the test means something.
        let host = Command::new(&dropper).arg(&showid).output().unwrap();
        assert_eq!(String::from_utf8_lossy(&host.stdout).trim(), "euid=0");
        let o = run(
            &[dropper.to_str().unwrap(), showid.to_str().unwrap()],
            t.policy(),
        );
        assert_eq!(o.stdout_text().trim(), "euid=65534", "{}", o.stderr_text());
    }

    #[test]
    fn mounting_is_refused() {
        let t = Tree::new();
        attack(&t, "mkdir -p work/m && mount -t tmpfs none work/m");
        attack(&t, &format!("mount --bind work {}", t.s("outside/dir")));
        attack(&t, "umount /proc");
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(!mounts.contains(&t.s("")), "a mount leaked to the host");
    }

    #[test]
    fn new_namespaces_are_refused() {
        let t = Tree::new();
        attack(&t, "unshare -r true");
        attack(&t, "unshare --user --map-root-user --mount true");
        attack(&t, "unshare -n true");
    }

    /// Calls a raw syscall with harmless arguments; the filter must answer EPERM.
    fn assert_eperm(t: &Tree, name: &str, call: &str) {
        let o = py(
            t,
            &format!(
                "import ctypes,sys\nl=ctypes.CDLL(None,use_errno=True)\n\
                 r=l.syscall({call})\nsys.exit(7 if (r==-1 and ctypes.get_errno()==1) else 0)"
            ),
        );
        assert_eq!(o.code, Some(7), "{name} was not refused with EPERM");
    }

    #[test]
    fn kernel_interfaces_are_refused() {
        let t = Tree::new();
        // x86-64 numbers; arguments chosen so that even an allowed call would be harmless.
        #[cfg(target_arch = "x86_64")]
        let calls: &[(&str, &str)] = &[
            ("kexec_load", "246, 0, 0, 0, 0xdead"),
            ("kexec_file_load", "320, -1, -1, 0, 0, 0xdead"),
            ("init_module", "175, 0, 0, b''"),
            ("finit_module", "313, -1, b'', 0"),
            ("delete_module", "176, b'kernos_no_such_module', 2048"),
            ("bpf", "321, 0, 0, 0"),
            ("perf_event_open", "298, 0, 0, -1, -1, 0"),
            ("keyctl", "250, 0, 0, 0, 0, 0"),
            ("add_key", "248, b'user', b'k', b'v', 1, -4"),
            ("request_key", "249, b'user', b'k', 0, 0"),
            ("userfaultfd", "323, 0"),
            ("reboot", "169, 0, 0, 0, 0"),
            ("swapon", "167, b'/nonexistent', 0"),
            ("swapoff", "168, b'/nonexistent'"),
            ("setns", "308, -1, 0"),
            ("pivot_root", "155, b'/nonexistent', b'/nonexistent'"),
            ("unshare(CLONE_NEWUSER)", "272, 0x10000000"),
            ("mount", "165, b'none', b'/nonexistent', b'tmpfs', 0, 0"),
            ("umount2", "166, b'/nonexistent', 0"),
            ("io_uring_setup", "425, 1, 0"),
            ("open_by_handle_at", "304, -1, 0, 0"),
        ];
        #[cfg(not(target_arch = "x86_64"))]
        let calls: &[(&str, &str)] = &[];
        for (name, call) in calls {
            assert_eperm(&t, name, call);
        }
    }
}

// ------------------------------------------------------------------------------------------
// Isolation that must not leak to the host
// ------------------------------------------------------------------------------------------

mod isolation {
    use super::*;

    #[test]
    fn dev_shm_is_private() {
        let t = Tree::new();
        let name = format!("kernos-attack-{}", std::process::id());
        let o = sh(
            &t,
            &format!("echo x > /dev/shm/{name} && cat /dev/shm/{name}"),
        );
        assert!(o.success());
        assert!(!Path::new(&format!("/dev/shm/{name}")).exists());
    }

    #[test]
    fn private_tmp_is_writable_and_removed() {
        let t = Tree::new();
        let o = sh(
            &t,
            "echo x > $TMPDIR/f && mkdir $TMPDIR/d && chmod 000 $TMPDIR/d && echo $TMPDIR",
        );
        assert!(o.success());
        let tmp = PathBuf::from(o.stdout_text().trim());
        assert!(tmp.starts_with("/tmp") || tmp.starts_with(std::env::temp_dir()));
        assert!(!tmp.exists(), "private temp dir {tmp:?} was left behind");
    }

    #[test]
    fn hostname_change_stays_inside() {
        let t = Tree::new();
        let before = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
        let _ = sh(&t, "hostname pwned-host");
        assert_eq!(
            before,
            std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap()
        );
    }
}

// ------------------------------------------------------------------------------------------
// What a step may do
// ------------------------------------------------------------------------------------------

mod allowed {
    use super::*;

    #[test]
    fn declared_writes_work() {
        let t = Tree::new();
        let o = sh(
            &t,
            "cd work && echo hello > a.txt && mkdir -p d/e && echo x > d/e/f && mv a.txt b.txt && \
             ln -s b.txt l && chmod 600 b.txt && rm d/e/f && cat b.txt",
        );
        assert!(o.success(), "{}", o.stderr_text());
        assert_eq!(
            std::fs::read_to_string(t.p("work/b.txt")).unwrap(),
            "hello\n"
        );
        assert!(t.p("work/d/e").is_dir());
        // Files are written with the caller's identity.
        assert_eq!(
            std::fs::metadata(t.p("work/b.txt")).unwrap().uid(),
            unsafe { libc::geteuid() }
        );
    }

    #[test]
    fn declared_writable_file_only() {
        let t = Tree::new();
        std::fs::write(t.p("outside/allowed.txt"), "a\n").unwrap();
        let mut p = t.policy();
        p.write = vec![t.p("outside/allowed.txt")];
        let o = sh_with(
            p,
            &format!(
                "echo b >> {} && ! echo c > {}",
                t.s("outside/allowed.txt"),
                t.s("outside/victim.txt")
            ),
        );
        assert!(o.success(), "{}", o.stderr_text());
        assert_eq!(
            std::fs::read_to_string(t.p("outside/allowed.txt")).unwrap(),
            "a\nb\n"
        );
        assert_eq!(
            std::fs::read_to_string(t.p("outside/victim.txt")).unwrap(),
            "original contents\n"
        );
    }

    #[test]
    fn declared_network_works() {
        let t = Tree::new();
        let l = Listener::new();
        let mut p = t.policy();
        p.network = NetworkPolicy::Allow { hosts: vec![] };
        let o = run(
            &[
                "curl",
                "-sS",
                "-m",
                "5",
                &format!("http://127.0.0.1:{}/", l.port),
            ],
            p,
        );
        assert!(o.success(), "{}", o.stderr_text());
        assert_eq!(o.stdout_text(), "ok");
        assert!(l.was_hit());
    }

    #[test]
    fn declared_ports_are_enforced() {
        if features().landlock_abi.unwrap_or(0) < 4 {
            eprintln!("skipping: Landlock ABI < 4 cannot filter TCP ports");
            return;
        }
        let t = Tree::new();
        let ok = Listener::new();
        let other = Listener::new();
        let mut p = t.policy();
        p.network = NetworkPolicy::Allow {
            hosts: vec![HostPort {
                host: "*".into(),
                port: Some(ok.port),
            }],
        };
        let code =
            |port: u16| format!("import socket; socket.create_connection(('127.0.0.1',{port}),3)");
        assert!(py_with(p.clone(), &code(ok.port)).success());
        assert!(!py_with(p, &code(other.port)).success());
        assert!(ok.was_hit());
        assert!(!other.was_hit());
    }

    #[test]
    fn named_hosts_fail_closed_without_allow_weaker() {
        let t = Tree::new();
        let mut p = t.policy();
        p.network = NetworkPolicy::Allow {
            hosts: vec![HostPort {
                host: "deb.debian.org".into(),
                port: Some(443),
            }],
        };
        let e = runner()
            .run(&ExecRequest::new(&["true"], p.clone()), &CancelToken::new())
            .unwrap_err();
        assert!(matches!(e, ExecError::Unavailable(_)), "{e}");
        p.allow_weaker = true;
        let r = runner()
            .run_detailed(&ExecRequest::new(&["true"], p), &CancelToken::new())
            .unwrap();
        assert!(r.outcome.success());
        assert!(!r.weakened.is_empty());
    }

    #[test]
    fn stdin_is_fed() {
        let t = Tree::new();
        let mut req = ExecRequest::new(
            &["/bin/sh", "-c", "wc -c; head -c 5 /dev/stdin"],
            t.policy(),
        );
        let big = vec![b'a'; 3 << 20];
        req.stdin = Some(big);
        let o = run_report(&req).outcome;
        assert!(o.success());
        assert_eq!(o.stdout_text().trim(), (3 << 20).to_string());
        let mut req = ExecRequest::new(&["cat"], t.policy());
        req.stdin = Some(b"hello stdin".to_vec());
        assert_eq!(run_report(&req).outcome.stdout_text(), "hello stdin");
        // A command that ignores its input still finishes.
        let mut req = ExecRequest::new(&["true"], t.policy());
        req.stdin = Some(vec![0; 8 << 20]);
        assert!(run_report(&req).outcome.success());
    }

    #[test]
    fn exit_codes_and_signals_propagate() {
        let t = Tree::new();
        assert_eq!(sh(&t, "exit 42").code, Some(42));
        let o = sh(&t, "kill -TERM $$");
        assert_eq!(o.signal, Some(libc::SIGTERM));
        assert_eq!(
            o.stopped,
            Some(StopReason::Signal {
                signal: libc::SIGTERM
            })
        );
        assert!(sh(&t, "true").success());
    }

    #[test]
    fn environment_allow_list() {
        let t = Tree::new();
        let r = runner().with_base_env([("FOO", "bar"), ("BAR", "baz"), ("PATH", "/usr/bin:/bin")]);
        let mut p = t.policy();
        p.env_allow = vec!["FOO".into(), "PATH".into()];
        let mut req = ExecRequest::new(&["/bin/sh", "-c", "env"], p);
        req.env.push(("EXPLICIT".into(), "1".into()));
        let o = r.run(&req, &CancelToken::new()).unwrap();
        let env = o.stdout_text();
        assert!(env.contains("FOO=bar"));
        assert!(env.contains("EXPLICIT=1"));
        assert!(!env.contains("BAR=baz"));
    }

    #[test]
    fn concurrent_steps_share_one_runner() {
        let t = Tree::new();
        let r = runner();
        std::thread::scope(|s| {
            for i in 0..8 {
                let (r, t) = (&r, &t);
                s.spawn(move || {
                    let o = r
                        .run(
                            &ExecRequest::new(
                                &[
                                    "/bin/sh",
                                    "-c",
                                    &format!("echo {i} > work/{i}; cat work/{i}"),
                                ],
                                t.policy(),
                            ),
                            &CancelToken::new(),
                        )
                        .unwrap();
                    assert!(o.success(), "{}", o.stderr_text());
                    assert_eq!(o.stdout_text().trim(), i.to_string());
                });
            }
        });
    }

    #[test]
    fn cancel_stops_the_step() {
        let t = Tree::new();
        let cancel = CancelToken::new();
        let c2 = cancel.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            c2.cancel();
        });
        let started = Instant::now();
        let o = runner()
            .run(&ExecRequest::new(&["sleep", "100"], t.policy()), &cancel)
            .unwrap();
        assert_eq!(o.stopped, Some(StopReason::Cancelled));
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn usage_is_measured() {
        let t = Tree::new();
        // Spin until 0.3 s of CPU (not wall) time, so a loaded machine cannot starve it.
        let o = py(
            &t,
            "import time\nt=time.time()\nwhile time.process_time()<0.3: pass",
        );
        assert!(o.success());
        assert!(o.cpu_ms >= 200, "cpu_ms = {}", o.cpu_ms);
        assert!(o.wall_ms >= 300);
    }

    #[test]
    fn errors_say_what_to_do() {
        let t = Tree::new();
        let e = runner()
            .run(
                &ExecRequest::new(&["kernos-no-such-program"], t.policy()),
                &CancelToken::new(),
            )
            .unwrap_err();
        assert!(matches!(e, ExecError::NotFound { .. }), "{e}");
        let mut p = t.policy();
        p.write.push(t.p("does/not/exist"));
        let e = runner()
            .run(&ExecRequest::new(&["true"], p), &CancelToken::new())
            .unwrap_err();
        assert!(matches!(e, ExecError::InvalidPolicy(_)), "{e}");
        assert!(e.to_string().contains("create it first"));
        let mut p = t.policy();
        p.write.push("relative/path".into());
        let e = runner()
            .run(&ExecRequest::new(&["true"], p), &CancelToken::new())
            .unwrap_err();
        assert!(matches!(e, ExecError::InvalidPolicy(_)), "{e}");
    }

    #[test]
    fn confinement_is_in_place() {
        let t = Tree::new();
        let o = sh(
            &t,
            "grep -E '^(NoNewPrivs|Seccomp):' /proc/self/status; cat /proc/self/uid_map",
        );
        let s = o.stdout_text();
        assert!(s.contains("NoNewPrivs:\t1"), "{s}");
        assert!(s.contains("Seccomp:\t2"), "{s}");
        let r = run_report(&ExecRequest::new(&["true"], t.policy()));
        assert!(r.weakened.is_empty(), "{:?}", r.weakened);
    }
}

// ------------------------------------------------------------------------------------------
// Service lifetime: what the command starts outlives the step, still confined
// ------------------------------------------------------------------------------------------

mod service {
    use super::*;

    impl Tree {
        /// The step policy with the service lifetime.
        fn service_policy(&self) -> SandboxPolicy {
            SandboxPolicy {
                lifetime: Lifetime::Service,
                ..self.policy()
            }
        }
    }

    /// A host process the test started (or that a service step started for it): SIGKILLed
    /// when dropped, whatever the test's outcome.
    struct Reaped(i32);
    impl Drop for Reaped {
        fn drop(&mut self) {
            if self.0 > 1 {
                // SAFETY: kill(2) of a process this test created.
                unsafe { libc::kill(self.0, libc::SIGKILL) };
            }
        }
    }

    /// Alive and not a zombie (the host's init reaps orphans in its own time).
    fn alive(pid: i32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
            let state = s.rsplit_once(')').map(|x| x.1.trim_start()).unwrap_or("");
            !state.starts_with('Z') && !state.starts_with('X')
        })
    }

    fn eventually(secs: u64, cond: impl Fn() -> bool) -> bool {
        let until = Instant::now() + Duration::from_secs(secs);
        while !cond() {
            if Instant::now() > until {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        true
    }

    fn status_field(pid: i32, key: &str) -> String {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .map(|v| v.trim().to_owned())
            .unwrap_or_default()
    }

    fn read_pid(p: &Path) -> i32 {
        std::fs::read_to_string(p)
            .unwrap_or_default()
            .trim()
            .parse()
            .unwrap_or(0)
    }

    #[test]
    fn daemon_outlives_the_step_with_its_real_pid_and_stays_confined() {
        let t = Tree::new();
        let before = t.snapshot();
        // The daemon waits until the step is over (the test creates work/go), then tries what
        // it must not be able to do and reports each result in work/report.
        let me = std::process::id();
        let daemon = format!(
            "while [ ! -e {work}/go ]; do sleep 0.05; done\n\
             r() {{ if sh -c \"$2\" >/dev/null 2>&1; then echo \"$1 ALLOWED\"; else echo \"$1 denied\"; fi; }}\n\
             {{\n\
             r write-outside 'echo pwned > {victim}'\n\
             r create-outside 'echo x > {outside}/dir/new'\n\
             r read-denied 'cat {key}'\n\
             r via-host-proc-root 'cat /proc/{me}/root{key}'\n\
             r write-declared 'echo ok > {work}/inside.txt'\n\
             }} > {work}/report.tmp\n\
             mv {work}/report.tmp {work}/report\n\
             exec sleep 300\n",
            work = t.s("work"),
            victim = t.s("outside/victim.txt"),
            outside = t.s("outside"),
            key = t.s("home/.ssh/id_rsa"),
        );
        std::fs::write(t.p("work/daemon.sh"), daemon).unwrap();
        let control = format!(
            "setsid /bin/sh {w}/daemon.sh </dev/null >/dev/null 2>&1 &\n\
             echo $! > {w}/daemon.pid\n\
             echo control-done",
            w = t.s("work")
        );
        let started = Instant::now();
        let o = sh_with(t.service_policy(), &control);
        assert!(o.success(), "{}", o.stderr_text());
        assert_eq!(o.stdout_text().trim(), "control-done");
        assert!(started.elapsed() < Duration::from_secs(10));
        let pid = read_pid(&t.p("work/daemon.pid"));
        let _reap = Reaped(pid);
        assert!(pid > 1, "no pid file");
        // A real host pid: the test sees it, and it is the daemon the step started.
        assert!(alive(pid), "the daemon died with the step");
        // `$!` is written right after the fork: the child may still be the control shell's
        // copy or setsid (whose command lines name daemon.sh too), or be mid-exec (empty).
        let cmdline = || std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let is_daemon = || {
            let c = cmdline();
            let mut args = c.split(|b| *b == 0);
            args.next() == Some(b"/bin/sh")
                && args.next().is_some_and(|a| a.ends_with(b"daemon.sh"))
        };
        assert!(
            eventually(5, is_daemon),
            "pid {pid} is not the daemon: {:?}",
            String::from_utf8_lossy(&cmdline())
        );
        assert_eq!(status_field(pid, "NoNewPrivs:"), "1");
        assert_eq!(status_field(pid, "Seccomp:"), "2");
        // Now, after the step: the daemon tries.
        std::fs::write(t.p("work/go"), "").unwrap();
        assert!(eventually(10, || t.p("work/report").exists()), "no report");
        let report = std::fs::read_to_string(t.p("work/report")).unwrap();
        eprintln!("{report}");
        for line in [
            "write-outside denied",
            "create-outside denied",
            "read-denied denied",
            "via-host-proc-root denied",
            "write-declared ALLOWED",
        ] {
            assert!(report.contains(line), "expected {line:?} in:\n{report}");
        }
        assert_eq!(before, t.snapshot(), "the daemon changed the host tree");
        assert!(alive(pid));
        // The daemon is in the host's PID namespace but not the host's mount namespace.
        let ns = |p: &str| std::fs::read_link(format!("/proc/{p}/ns/pid")).unwrap();
        assert_eq!(ns(&pid.to_string()), ns("self"));
        let mnt = |p: &str| std::fs::read_link(format!("/proc/{p}/ns/mnt")).unwrap();
        assert_ne!(mnt(&pid.to_string()), mnt("self"));
    }

    #[test]
    fn step_lifetime_still_kills_the_same_daemon() {
        let t = Tree::new();
        let marker = format!("ksvcstep{}", std::process::id());
        let control = format!(
            "setsid /bin/bash -c 'exec -a {marker} sleep 300' </dev/null >/dev/null 2>&1 &\n\
             echo $! > {w}/daemon.pid; echo started",
            w = t.s("work")
        );
        let o = sh_with(t.policy(), &control);
        assert!(o.success());
        // Everything in the step's namespace is dead before the step returns.
        assert!(
            host_processes_with(&marker).is_empty(),
            "a step-lifetime daemon outlived the step"
        );
        // The same under the service lifetime survives (and is killed here). The pid file
        // holds its host pid; it may still be between its two execs when the step returns.
        let o = sh_with(t.service_policy(), &control);
        assert!(o.success());
        let pid = read_pid(&t.p("work/daemon.pid"));
        let _reap = Reaped(pid);
        assert!(pid > 1 && alive(pid), "the daemon did not outlive the step");
        assert!(
            eventually(5, || std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| c.starts_with(marker.as_bytes()))),
            "pid {pid} is not the daemon"
        );
        assert_eq!(host_processes_with(&marker), vec![pid]);
    }

    #[test]
    fn control_command_that_never_exits_is_stopped_by_the_wall_clock() {
        let t = Tree::new();
        let marker = format!("ksvcwall{}", std::process::id());
        // A daemon (own session), a background child that stayed in the command's process
        // group, and a foreground that never ends.
        let control = format!(
            "setsid /bin/bash -c 'exec -a {marker}-daemon sleep 300' </dev/null >/dev/null 2>&1 &\n\
             (exec -a {marker}-child sleep 300) </dev/null >/dev/null 2>&1 &\n\
             exec -a {marker}-fg sleep 300"
        );
        let mut p = t.service_policy();
        p.limits.wall_ms = Some(1000);
        let started = Instant::now();
        let o = run(&["/bin/bash", "-c", &control], p);
        let reap: Vec<Reaped> = host_processes_with(&marker)
            .into_iter()
            .map(Reaped)
            .collect();
        assert_eq!(o.stopped, Some(StopReason::Timeout { limit_ms: 1000 }));
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        // The control command's group is gone; the daemon that left it is the service.
        let gone = |suffix: &str| {
            eventually(3, || {
                host_processes_with(&format!("{marker}-{suffix}"))
                    .iter()
                    .all(|p| !alive(*p))
            })
        };
        assert!(gone("fg"), "the control command survived the timeout");
        assert!(gone("child"), "its process group survived the timeout");
        let daemons: Vec<i32> = host_processes_with(&format!("{marker}-daemon"))
            .into_iter()
            .filter(|p| alive(*p))
            .collect();
        assert_eq!(
            daemons.len(),
            1,
            "the started daemon should stay: {daemons:?}"
        );
        drop(reap);
    }

    #[test]
    fn daemon_holding_the_output_pipes_does_not_hang_the_step() {
        let t = Tree::new();
        // The daemon keeps the step's stdout and stderr open for 300 s.
        let control = format!(
            "setsid sleep 300 & echo $! > {w}/daemon.pid; echo hello; echo oops >&2",
            w = t.s("work")
        );
        let started = Instant::now();
        let o = sh_with(t.service_policy(), &control);
        let _reap = Reaped(read_pid(&t.p("work/daemon.pid")));
        assert!(o.success(), "{o:?}");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(o.stdout_text().trim(), "hello");
        assert_eq!(o.stderr_text().trim(), "oops");
        assert!(alive(read_pid(&t.p("work/daemon.pid"))));
    }

    /// Runs a service-lifetime attack: it must fail and leave the host tree unchanged.
    fn attack_service(t: &Tree, script: &str) -> ExecOutcome {
        let before = t.snapshot();
        let o = sh_with(t.service_policy(), script);
        assert!(!o.success(), "attack succeeded: {script}");
        assert_eq!(before, t.snapshot(), "host tree changed by: {script}");
        o
    }

    #[test]
    fn service_lifetime_still_denies_writes_reads_mounts_and_namespaces() {
        let t = Tree::new();
        attack_service(&t, &format!("echo pwned > {}", t.s("outside/victim.txt")));
        attack_service(&t, &format!("rm {}", t.s("outside/victim.txt")));
        attack_service(&t, &format!("chmod 777 {}", t.s("outside/victim.txt")));
        attack_service(&t, &format!("mkdir {}", t.s("outside/new")));
        let name = format!("kernos-attack-{}", std::process::id());
        attack_service(&t, &format!("touch /etc/{name}"));
        attack_service(&t, &format!("touch /tmp/{name}"));
        assert!(!Path::new(&format!("/etc/{name}")).exists());
        assert!(!Path::new(&format!("/tmp/{name}")).exists());
        let o = attack_service(&t, &format!("cat {}", t.s("home/.ssh/id_rsa")));
        assert!(!o.stdout_text().contains(SECRET));
        let o = attack_service(&t, &format!("grep -r {SECRET} {}", t.s("data")));
        assert!(!o.stdout_text().contains(SECRET));
        // The host /proc is visible, but not other processes' roots or descriptors.
        let me = std::process::id();
        let o = attack_service(
            &t,
            &format!("cat /proc/{me}/root{}", t.s("home/.ssh/id_rsa")),
        );
        assert!(!o.stdout_text().contains(SECRET));
        attack_service(
            &t,
            &format!("echo pwned > /proc/{me}/root{}", t.s("outside/victim.txt")),
        );
        // Files this process holds open: not reachable through its /proc/PID/fd either.
        use std::os::fd::AsRawFd;
        let victim = std::fs::File::open(t.p("outside/victim.txt")).unwrap();
        let key = std::fs::File::open(t.p("home/.ssh/id_rsa")).unwrap();
        let (vfd, kfd) = (victim.as_raw_fd(), key.as_raw_fd());
        attack_service(&t, &format!("echo pwned > /proc/{me}/fd/{vfd}"));
        let o = attack_service(&t, &format!("cat /proc/{me}/fd/{kfd}"));
        assert!(!o.stdout_text().contains(SECRET));
        attack_service(&t, &format!("cat /proc/{me}/environ"));
        attack_service(&t, "mkdir -p work/m && mount -t tmpfs none work/m");
        attack_service(&t, &format!("mount --bind work {}", t.s("outside/dir")));
        attack_service(&t, "umount /proc");
        attack_service(&t, "unshare -r true");
        attack_service(&t, "unshare -m true");
        // No UTS namespace here, so a working write would reach the host: write back the
        // same name, which is refused all the same (read-only /proc/sys, Landlock).
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
        attack_service(
            &t,
            "cat /proc/sys/kernel/hostname > /proc/sys/kernel/hostname",
        );
        assert_eq!(
            host,
            std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap()
        );
        // kill(-1) (signal 0: harmless if it were allowed).
        attack_service(&t, "kill -0 -1");
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(!mounts.contains(&t.s("")), "a mount leaked to the host");
    }

    #[test]
    fn service_lifetime_still_denies_ptrace_and_kernel_interfaces() {
        let t = Tree::new();
        let mut victim = Command::new("sleep").arg("300").spawn().unwrap();
        let pid = victim.id();
        let ptrace = |req: i32| {
            format!(
                "import ctypes,sys; l=ctypes.CDLL(None,use_errno=True); \
                 r=l.ptrace({req},{pid},0,0); sys.exit(7 if (r==-1 and ctypes.get_errno()==1) else 0)"
            )
        };
        // PTRACE_ATTACH and PTRACE_SEIZE of a host process.
        for req in [16, 0x4206] {
            let o = py_with(t.service_policy(), &ptrace(req));
            assert_eq!(o.code, Some(7), "ptrace request {req:#x} was not refused");
        }
        let o = py_with(
            t.service_policy(),
            &format!(
                "import ctypes,sys\nl=ctypes.CDLL(None,use_errno=True)\n\
                 buf=ctypes.create_string_buffer(8)\n\
                 class iov(ctypes.Structure): _fields_=[('b',ctypes.c_void_p),('n',ctypes.c_size_t)]\n\
                 a=iov(ctypes.cast(buf,ctypes.c_void_p),8); b=iov(0x400000,8)\n\
                 r=l.process_vm_readv({pid},ctypes.byref(a),1,ctypes.byref(b),1,0)\n\
                 sys.exit(7 if (r==-1 and ctypes.get_errno()==1) else 0)"
            ),
        );
        assert_eq!(o.code, Some(7), "process_vm_readv was not refused");
        assert!(victim.try_wait().unwrap().is_none());
        // Signals are what a service step is for: the host process can be stopped.
        let o = sh_with(t.service_policy(), &format!("kill {pid}"));
        assert!(o.success(), "{}", o.stderr_text());
        let st = victim.wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(st.signal(), Some(libc::SIGTERM));
        // io_uring and bpf stay refused; so do new namespaces through clone.
        let o = py_with(
            t.service_policy(),
            "import ctypes,sys\nl=ctypes.CDLL(None,use_errno=True)\n\
             p=ctypes.create_string_buffer(120)\n\
             r1=l.syscall(425,8,p); e1=ctypes.get_errno()\n\
             r2=l.syscall(321,0,p,0); e2=ctypes.get_errno()\n\
             sys.exit(7 if (r1==-1 and e1==1 and r2==-1 and e2==1) else 0)",
        );
        assert_eq!(o.code, Some(7));
    }

    #[test]
    fn root_runs_a_service_with_host_ids_but_without_the_dangerous_capabilities() {
        // SAFETY: geteuid has no arguments.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipped: only root runs a service without a user namespace");
            return;
        }
        let t = Tree::new();
        let o = sh_with(
            t.service_policy(),
            "grep -E '^Cap(Bnd|Eff|Inh):' /proc/self/status; readlink /proc/self/ns/user",
        );
        assert!(o.success(), "{}", o.stderr_text());
        let out = o.stdout_text();
        let user_ns = std::fs::read_link("/proc/self/ns/user").unwrap();
        assert!(
            out.contains(&*user_ns.to_string_lossy()),
            "not the host user namespace: {out}"
        );
        for line in out.lines().filter(|l| l.starts_with("Cap")) {
            let mask = u64::from_str_radix(line.split_whitespace().nth(1).unwrap(), 16).unwrap();
            for (cap, name) in [
                (21, "SYS_ADMIN"),
                (16, "SYS_MODULE"),
                (17, "SYS_RAWIO"),
                (19, "SYS_PTRACE"),
                (27, "MKNOD"),
                (39, "BPF"),
            ] {
                assert_eq!(mask & (1 << cap), 0, "{name} still in {line}");
            }
        }
        // What a daemon needs is still there: binding a low port, changing ids.
        let eff = out.lines().find(|l| l.starts_with("CapEff:")).unwrap();
        let eff = u64::from_str_radix(eff.split_whitespace().nth(1).unwrap(), 16).unwrap();
        for (cap, name) in [
            (10, "NET_BIND_SERVICE"),
            (6, "SETGID"),
            (7, "SETUID"),
            (5, "KILL"),
        ] {
            assert_ne!(eff & (1 << cap), 0, "{name} missing");
        }
    }

    #[test]
    fn service_step_reports_no_weakening_and_no_cgroup() {
        let t = Tree::new();
        let r = run_report(&ExecRequest::new(&["true"], t.service_policy()));
        assert!(r.outcome.success());
        assert!(r.weakened.is_empty(), "{:?}", r.weakened);
        assert_eq!(r.cgroup, None);
    }
}

// ------------------------------------------------------------------------------------------
// Declared Unix sockets without the network effect
// ------------------------------------------------------------------------------------------

mod unix_sockets {
    use super::*;
    use std::os::unix::net::UnixListener;

    /// A Unix socket server the test started in its tree; records connections.
    struct Server {
        path: PathBuf,
        l: UnixListener,
    }

    impl Server {
        fn new(path: PathBuf) -> Server {
            let l = UnixListener::bind(&path).unwrap();
            l.set_nonblocking(true).unwrap();
            Server { path, l }
        }

        /// Whether a connection arrived since the last call.
        fn was_hit(&self) -> bool {
            let mut hit = false;
            while self.l.accept().is_ok() {
                hit = true;
            }
            hit
        }
    }

    /// Python that connects to `path`: exit 0 on success, 7 when refused.
    fn connect_code(path: &Path) -> String {
        format!(
            "import socket,sys\ns=socket.socket(socket.AF_UNIX)\n\
             try:\n  s.connect({:?})\nexcept OSError as e:\n  print(e); sys.exit(7)\nsys.exit(0)",
            path.display().to_string()
        )
    }

    /// Whether the tree lies where the sandbox searches for undeclared sockets.
    fn tree_is_searched(t: &Tree) -> bool {
        let root = std::fs::canonicalize(&t.root).unwrap();
        ["/run", "/tmp", "/var/tmp"]
            .iter()
            .any(|d| root.starts_with(std::fs::canonicalize(d).unwrap_or_else(|_| d.into())))
    }

    #[test]
    fn declared_socket_is_reachable_without_network_and_nothing_else() {
        let t = Tree::new();
        let a = Server::new(t.p("outside/a.sock"));
        let b = Server::new(t.p("outside/b.sock"));

        // Not declared: connect(2) is refused outright.
        assert_eq!(py(&t, &connect_code(&a.path)).code, Some(7));
        assert!(!a.was_hit());

        let mut p = t.policy();
        p.unix_sockets = vec![a.path.clone()];
        assert_eq!(py_with(p.clone(), &connect_code(&a.path)).code, Some(0));
        assert!(a.was_hit(), "the declared server got no connection");
        // Declaring it beats a deny_read entry for the same path (as the installation's
        // default_deny_read() lists /run/systemd/private and the D-Bus socket for every step).
        let mut both = p.clone();
        both.deny_read.push(a.path.clone());
        assert_eq!(py_with(both, &connect_code(&a.path)).code, Some(0));
        assert!(a.was_hit());

        // Another server, hidden the way default_deny_read() hides the host's: unreachable.
        let mut hidden = p.clone();
        hidden.deny_read.push(b.path.clone());
        assert_eq!(py_with(hidden, &connect_code(&b.path)).code, Some(7));
        // And even when nobody listed it: every undeclared socket where sockets live is
        // covered.
        if tree_is_searched(&t) {
            assert_eq!(py_with(p.clone(), &connect_code(&b.path)).code, Some(7));
        } else {
            eprintln!("skipping the unlisted case: the temp dir is outside /run, /tmp, /var/tmp");
        }
        assert!(!b.was_hit(), "an undeclared socket got a connection");

        // Still no network: AF_INET sockets, bind and listen are refused.
        let l = Listener::new();
        let o = py_with(
            p.clone(),
            &format!(
                "import socket,sys\ntry:\n  s=socket.socket(); s.connect(('127.0.0.1',{}))\n\
                 except OSError as e:\n  print(e); sys.exit(7)\nsys.exit(0)",
                l.port
            ),
        );
        assert_eq!(o.code, Some(7));
        assert!(!l.was_hit());
        let o = py_with(
            p,
            &format!(
                "import socket,sys\ns=socket.socket(socket.AF_UNIX)\n\
                 try:\n  s.bind({:?}); s.listen()\nexcept OSError as e:\n  print(e); sys.exit(7)\nsys.exit(0)",
                t.s("work/mine.sock")
            ),
        );
        assert_eq!(o.code, Some(7));
    }

    #[test]
    fn declaring_a_path_does_not_declare_the_sockets_in_it() {
        let t = Tree::new();
        if !tree_is_searched(&t) {
            eprintln!("skipped: the temp dir is outside /run, /tmp, /var/tmp");
            return;
        }
        std::fs::create_dir(t.p("home/.ssh/cm")).unwrap();
        let a = Server::new(t.p("outside/a.sock"));
        // In a writable dir, declared readable by its exact path, and in a declared dir that
        // is re-exposed inside a denied one (an ssh ControlMaster socket, say).
        let others = [
            Server::new(t.p("work/w.sock")),
            Server::new(t.p("outside/dir/r.sock")),
            Server::new(t.p("home/.ssh/cm/master.sock")),
        ];
        let mut p = t.policy();
        p.unix_sockets = vec![a.path.clone()];
        p.read.push(others[1].path.clone());
        p.read.push(t.p("home/.ssh/cm"));
        for s in &others {
            assert_eq!(
                py_with(p.clone(), &connect_code(&s.path)).code,
                Some(7),
                "{} was reachable",
                s.path.display()
            );
            assert!(!s.was_hit(), "{} got a connection", s.path.display());
        }
        assert_eq!(py_with(p.clone(), &connect_code(&a.path)).code, Some(0));
        assert!(a.was_hit());
        // The writable dir holding a covered socket is still writable.
        let o = sh_with(p, "echo x > work/new.txt && cat work/new.txt");
        assert!(o.success(), "{}", o.stderr_text());
        assert_eq!(std::fs::read_to_string(t.p("work/new.txt")).unwrap(), "x\n");
    }

    #[test]
    fn declared_socket_inside_a_denied_directory_is_bound_back_in() {
        let t = Tree::new();
        let agent = Server::new(t.p("home/.ssh/agent.sock"));
        let mut p = t.policy();
        p.unix_sockets = vec![agent.path.clone()];
        assert_eq!(py_with(p.clone(), &connect_code(&agent.path)).code, Some(0));
        assert!(agent.was_hit());
        // The rest of the directory stays hidden.
        let o = sh_with(p, &format!("cat {}", t.s("home/.ssh/id_rsa")));
        assert!(!o.success());
        assert!(!o.stdout_text().contains(SECRET));
    }

    #[test]
    fn host_abstract_sockets_stay_unreachable() {
        let t = Tree::new();
        let a = Server::new(t.p("outside/a.sock"));
        let name = format!("kernos-attack-unix-{}", std::process::id());
        use std::os::linux::net::SocketAddrExt;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let abs = UnixListener::bind_addr(&addr).unwrap();
        abs.set_nonblocking(true).unwrap();
        let code = format!(
            "import socket,sys\ns=socket.socket(socket.AF_UNIX)\n\
             try:\n  s.connect('\\0{name}')\nexcept OSError as e:\n  print(e); sys.exit(7)\nsys.exit(0)"
        );
        for lifetime in [Lifetime::Step, Lifetime::Service] {
            let mut p = t.policy();
            p.lifetime = lifetime;
            p.unix_sockets = vec![a.path.clone()];
            assert_eq!(py_with(p, &code).code, Some(7), "{lifetime:?}");
        }
        assert!(
            abs.accept().is_err(),
            "the host's abstract socket got a connection"
        );
    }

    #[test]
    fn service_lifetime_with_declared_socket() {
        let t = Tree::new();
        let a = Server::new(t.p("outside/a.sock"));
        let b = Server::new(t.p("outside/b.sock"));
        let mut p = t.policy();
        p.lifetime = Lifetime::Service;
        p.unix_sockets = vec![a.path.clone()];
        p.deny_read.push(b.path.clone());
        assert_eq!(py_with(p.clone(), &connect_code(&a.path)).code, Some(0));
        assert!(a.was_hit());
        assert_eq!(py_with(p, &connect_code(&b.path)).code, Some(7));
        assert!(!b.was_hit());
    }

    #[test]
    fn a_declared_socket_must_be_a_socket() {
        let t = Tree::new();
        let mut p = t.policy();
        p.unix_sockets = vec![t.p("home/.ssh/id_rsa")];
        let e = runner()
            .run(&ExecRequest::new(&["true"], p), &CancelToken::new())
            .unwrap_err();
        assert!(matches!(e, ExecError::InvalidPolicy(_)), "{e}");
        assert!(e.to_string().contains("not one"), "{e}");
        // A declared socket that does not exist is simply not there to reach.
        let mut p = t.policy();
        p.unix_sockets = vec![t.p("outside/none.sock")];
        assert!(run(&["true"], p).success());
    }
}
