//! The fleet for real: a nats-server with JetStream on loopback (file storage in a temp dir,
//! one NATS account per organisation, an NKEY user per daemon), real `kernos serve` nodes with
//! their own data dirs, and a home daemon fanning requests out. Each test checks what came
//! home *and* what each node's own journal and files say.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::daemon::{Daemon, new_key};
use crate::{World, json, text};

/// The nats-server the tests use: the pinned one `scripts/test` installs from PyPI, else one
/// on PATH (Debian's works too). Missing, the test fails saying how to get it.
fn nats_server() -> PathBuf {
    if let Some(p) = std::env::var_os("KERNOS_TEST_NATS") {
        return PathBuf::from(p);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    let pinned = home.join(".cache/kernos-test/nats/bin/nats-server");
    if pinned.is_file() {
        return pinned;
    }
    for dir in std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()) {
        if dir.join("nats-server").is_file() {
            return dir.join("nats-server");
        }
    }
    panic!("no nats-server: run scripts/test (it installs one) or `apt install nats-server`");
}

/// A free loopback port (bound and released; the server binds it right after).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A user's NKEY: the seed file a daemon reads, and the public key the server lists.
struct User {
    public: String,
    seed: PathBuf,
}

fn user(root: &Path, name: &str) -> User {
    let kp = nkeys::KeyPair::new_user();
    let seed = root.join(format!("{name}.nk"));
    std::fs::write(&seed, kp.seed().unwrap()).unwrap();
    User {
        public: kp.public_key(),
        seed,
    }
}

/// A nats-server with JetStream; each account is an organisation's, with its users.
struct Broker {
    child: Option<Child>,
    port: u16,
    conf: PathBuf,
}

impl Broker {
    fn start(root: &Path, accounts: &[(&str, Vec<&User>)]) -> Broker {
        let store = root.join("jetstream");
        let mut acc = String::new();
        for (name, users) in accounts {
            let list: Vec<String> = users
                .iter()
                .map(|u| format!("{{ nkey: {} }}", u.public))
                .collect();
            acc.push_str(&format!(
                "  {name}: {{ jetstream: enabled, users: [ {} ] }}\n",
                list.join(", ")
            ));
        }
        let port = free_port();
        let conf = root.join("nats.conf");
        std::fs::write(
            &conf,
            format!(
                "listen: 127.0.0.1:{port}\njetstream {{ store_dir: \"{}\" }}\naccounts {{\n{acc}}}\n",
                store.display()
            ),
        )
        .unwrap();
        let mut b = Broker {
            child: None,
            port,
            conf,
        };
        b.spawn();
        b
    }

    fn spawn(&mut self) {
        let child = Command::new(nats_server())
            .arg("-c")
            .arg(&self.conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let until = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < until, "nats-server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Stops it (SIGTERM: it syncs its file store) and starts it again on the same port.
    fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: signalling our own child.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let _ = c.wait();
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A TCP relay between a node and the broker that a test can cut and heal: a partition of
/// that one node, with its process still running.
struct Cable {
    port: u16,
    cut: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

impl Cable {
    fn to(upstream: u16) -> Cable {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let cut = Arc::new(AtomicBool::new(false));
        let open: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (c2, o2) = (cut.clone(), open.clone());
        std::thread::spawn(move || {
            for s in l.incoming() {
                let Ok(down) = s else { return };
                if c2.load(Ordering::SeqCst) {
                    let _ = down.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(up) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                let mut o = o2.lock().unwrap();
                o.push(down.try_clone().unwrap());
                o.push(up.try_clone().unwrap());
                pump(down.try_clone().unwrap(), up.try_clone().unwrap());
                pump(up, down);
            }
        });
        Cable { port, cut, open }
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for s in self.open.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    fn heal(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

fn pump(mut from: TcpStream, mut to: TcpStream) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 16384];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = to.shutdown(Shutdown::Both);
    });
}

/// A machine: its world and, while it runs, its daemon.
struct Machine {
    w: World,
    d: Option<Daemon>,
}

impl Machine {
    /// A node named `name` with `labels`, reaching the broker at `url` as `who`.
    fn node(url: &str, who: &User, name: &str, labels: &str) -> Machine {
        let w = World::new();
        w.config(&format!(
            "[fleet]\nurl = \"{url}\"\nnkey = \"{}\"\nnode = \"{name}\"\nheartbeat_s = 1\ncwd = \"{}\"\nlabels = {{ {labels} }}\n",
            who.seed.display(),
            w.cwd.display()
        ));
        let d = Some(Daemon::start(&w, &[]));
        Machine { w, d }
    }

    /// A controller of organisation `local`'s fleet.
    fn home(url: &str, who: &User) -> Machine {
        let w = World::new();
        w.config(&format!(
            "[fleet]\nurl = \"{url}\"\nnkey = \"{}\"\ncontroller = true\n",
            who.seed.display()
        ));
        let d = Some(Daemon::start(&w, &[]));
        Machine { w, d }
    }

    fn daemon(&self) -> &Daemon {
        self.d.as_ref().unwrap()
    }

    /// `kernos args…` through this machine's daemon; its JSON answer and whether it succeeded.
    fn kernos(&self, args: &[&str]) -> (Value, bool) {
        let out = self.w.run(args);
        let v = if out.stdout.is_empty() {
            json!({"stderr": text(&out.stderr)})
        } else {
            json(&out)
        };
        (v, out.status.success())
    }

    /// This machine's events of one kind, oldest first.
    fn events(&self, kind: &str) -> Vec<Value> {
        let r = self.daemon().local(
            "GET",
            &format!("/v1/state/journal?kind={kind}&limit=500"),
            None,
        );
        assert_eq!(r.status, 200, "{}", text(&r.body));
        let mut v = r.json()["events"].as_array().cloned().unwrap_or_default();
        v.reverse();
        v
    }

    /// Its actions submitted by the fleet that ended, with their status.
    fn fleet_actions(&self) -> Vec<String> {
        let submitted: Vec<String> = self
            .events("action.submitted")
            .iter()
            .filter(|e| {
                e["payload"]["source"]
                    .as_str()
                    .unwrap_or("")
                    .starts_with("fleet:")
            })
            .map(|e| e["action"].as_str().unwrap().to_owned())
            .collect();
        self.events("action.finished")
            .iter()
            .filter(|e| submitted.contains(&e["action"].as_str().unwrap().to_owned()))
            .map(|e| e["payload"]["status"].as_str().unwrap().to_owned())
            .collect()
    }
}

/// Waits until the home daemon lists `n` nodes up.
fn wait_for_nodes(home: &Machine, n: usize) -> Value {
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let r = home.daemon().local("GET", "/v1/fleet/nodes", None);
        let v = r.json();
        let up = v["nodes"]
            .as_array()
            .map(|a| a.iter().filter(|x| x["status"] == "up").count())
            .unwrap_or(0);
        if up == n {
            return v;
        }
        assert!(Instant::now() < until, "{n} nodes never came up: {v}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// One node's result in a fan-out's JSON answer.
fn result_of<'a>(v: &'a Value, node: &str) -> &'a Value {
    v["fleet"]["results"]
        .as_array()
        .and_then(|a| a.iter().find(|r| r["node"] == node))
        .unwrap_or_else(|| panic!("no result for {node}: {v}"))
}

/// Three web nodes and a home controller in organisation `local` (one NATS account).
fn fleet_of_three(root: &Path) -> (Broker, Vec<Machine>, Machine) {
    let users: Vec<User> = (0..4).map(|i| user(root, &format!("u{i}"))).collect();
    let broker = Broker::start(root, &[("LOCAL", users.iter().collect())]);
    let nodes: Vec<Machine> = (1..=3)
        .map(|i| {
            Machine::node(
                &broker.url(),
                &users[i],
                &format!("web-{i}"),
                "role = \"web\"",
            )
        })
        .collect();
    let home = Machine::home(&broker.url(), &users[0]);
    wait_for_nodes(&home, 3);
    (broker, nodes, home)
}

#[test]
fn a_read_and_a_change_fan_out_to_every_node_and_the_change_is_undone_on_each() {
    let root = tempfile::tempdir().unwrap();
    let (_broker, nodes, home) = fleet_of_three(root.path());

    // Inventory: what each node announced.
    let listed = home.daemon().local("GET", "/v1/fleet/nodes", None).json();
    let first = &listed["nodes"][0];
    assert_eq!(first["labels"]["role"], "web", "{listed}");
    assert!(
        first["facts"]["memory_total"].as_u64().unwrap() > 0,
        "{listed}"
    );
    assert!(
        first["facts"]["disks"]
            .as_array()
            .is_some_and(|d| !d.is_empty())
    );

    // A read: every node runs it and its rows come home.
    let (v, ok) = home.kernos(&["--json", "--on", "all", "how much memory is used"]);
    assert!(ok, "{v}");
    for n in ["web-1", "web-2", "web-3"] {
        let r = result_of(&v, n);
        assert_eq!(r["outcome"], "ok", "{r}");
        assert_eq!(r["status"], "committed", "{r}");
        assert!(
            r["steps"][0]["rows"]
                .as_array()
                .is_some_and(|x| !x.is_empty()),
            "{r}"
        );
    }
    // Home journaled each node's result in the fan-out's transaction; each node journaled
    // its own run.
    let homed = home.events("fleet.node.finished");
    assert_eq!(homed.len(), 3, "{homed:?}");
    assert!(homed.iter().all(|e| e["tx"] == v["tx"]), "{homed:?}");
    for m in &nodes {
        assert_eq!(m.fleet_actions(), ["committed"]);
    }

    // A change, approved at home once (--yes), then undone on the nodes that changed.
    let (v, ok) = home.kernos(&[
        "--json",
        "--yes",
        "--on",
        "role=web",
        "write 'hello fleet' to fleet.txt",
    ]);
    assert!(ok, "{v}");
    for m in &nodes {
        assert_eq!(
            std::fs::read_to_string(m.w.cwd.join("fleet.txt")).unwrap(),
            "hello fleet\n"
        );
    }
    let tx = v["tx"].as_str().unwrap().to_owned();
    let (u, ok) = home.kernos(&["--json", "--yes", "undo", &tx]);
    assert!(ok, "{u}");
    for (i, m) in nodes.iter().enumerate() {
        assert!(
            !m.w.cwd.join("fleet.txt").exists(),
            "web-{} still has the file",
            i + 1
        );
        assert_eq!(m.fleet_actions(), ["committed", "committed", "undone"]);
    }
    // A second undo finds nothing left to undo.
    let (_, ok) = home.kernos(&["--yes", "undo", &tx]);
    assert!(!ok);
}
