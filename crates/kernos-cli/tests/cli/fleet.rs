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
        Broker::start_with(root, accounts, "")
    }

    /// With more server settings (`tls { … }`).
    fn start_with(root: &Path, accounts: &[(&str, Vec<&User>)], more: &str) -> Broker {
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
                "listen: 127.0.0.1:{port}\njetstream {{ store_dir: \"{}\" }}\naccounts {{\n{acc}}}\n{more}\n",
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
        Machine::node_with(url, who, name, labels, "")
    }

    /// A node with more `[fleet]` settings.
    fn node_with(url: &str, who: &User, name: &str, labels: &str, more: &str) -> Machine {
        let w = World::new();
        w.config(&format!(
            "[fleet]\nurl = \"{url}\"\nnkey = \"{}\"\nnode = \"{name}\"\nheartbeat_s = 1\ncwd = \"{}\"\nlabels = {{ {labels} }}\n{more}\n",
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

/// Starts `kernos args…` on `m` in the background (its result is read with `finish`).
fn start(m: &Machine, args: &[&str]) -> std::process::Child {
    m.w.cmd(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn finish(c: std::process::Child) -> (Value, bool) {
    let out = c.wait_with_output().unwrap();
    (json(&out), out.status.success())
}

/// Waits until home has journaled `kind` for `node`.
fn wait_home(home: &Machine, kind: &str, node: &str, secs: u64) -> Value {
    let until = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(e) = home
            .events(kind)
            .into_iter()
            .find(|e| e["payload"]["node"] == node)
        {
            return e;
        }
        assert!(
            Instant::now() < until,
            "home never journaled {kind} for {node}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The number of times `m` started a step of an action the fleet sent it.
fn fleet_steps_started(m: &Machine) -> usize {
    let fleet: Vec<String> = m
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
    m.events("step.started")
        .iter()
        .filter(|e| fleet.contains(&e["action"].as_str().unwrap().to_owned()))
        .count()
}

#[test]
fn a_node_killed_mid_run_is_reported_lost_and_its_redelivery_never_runs_the_step_again() {
    let root = tempfile::tempdir().unwrap();
    let (_broker, mut nodes, home) = fleet_of_three(root.path());
    // About seven seconds of real work on each node.
    let run = start(
        &home,
        &[
            "--json",
            "--yes",
            "--on",
            "all",
            "net.ping host=127.0.0.1 count=8",
        ],
    );
    wait_home(&home, "fleet.node.started", "web-2", 20);
    let killed_at = Instant::now();
    nodes[1].d.as_mut().unwrap().signal(libc::SIGKILL);
    nodes[1].d = None;
    let (v, ok) = finish(run);
    assert!(!ok, "not every node did it: {v}");
    let lost = result_of(&v, "web-2");
    assert_eq!(lost["outcome"], "lost", "{lost}");
    assert!(
        killed_at.elapsed() < Duration::from_secs(20),
        "waited on a dead node"
    );
    for n in ["web-1", "web-3"] {
        assert_eq!(result_of(&v, n)["outcome"], "ok", "{v}");
    }
    assert_eq!(v["fleet"]["summary"], "2 ok, 1 lost", "{v}");

    // The node comes back: the broker delivers the dispatch again (it was never
    // acknowledged); the node finds the action its crash interrupted, reports it, and does
    // not run the step a second time.
    nodes[1].d = Some(Daemon::start(&nodes[1].w, &[]));
    let late = wait_home(&home, "fleet.node.late", "web-2", 40);
    assert_eq!(late["payload"]["status"], "interrupted", "{late}");
    assert_eq!(fleet_steps_started(&nodes[1]), 1, "the step ran once");
}

#[test]
fn a_partitioned_node_catches_up_when_the_network_heals() {
    let root = tempfile::tempdir().unwrap();
    let users: Vec<User> = (0..3)
        .map(|i| user(root.path(), &format!("u{i}")))
        .collect();
    let broker = Broker::start(root.path(), &[("LOCAL", users.iter().collect())]);
    let cable = Cable::to(broker.port);
    let _near = Machine::node(&broker.url(), &users[1], "near", "role = \"web\"");
    let far = Machine::node(&cable.url(), &users[2], "far", "role = \"web\"");
    let home = Machine::home(&broker.url(), &users[0]);
    wait_for_nodes(&home, 2);

    cable.cut();
    wait_for_nodes(&home, 1);
    let (v, ok) = home.kernos(&["--json", "--on", "all", "how much memory is used"]);
    assert!(!ok, "{v}");
    assert_eq!(result_of(&v, "near")["outcome"], "ok");
    assert_eq!(result_of(&v, "far")["outcome"], "unreachable", "{v}");
    assert!(far.fleet_actions().is_empty(), "nothing reached it");

    // Healed, the node reconnects by itself, its consumer resumes (it must not stall), and
    // it runs what waited for it; home journals the late result.
    cable.heal();
    let late = wait_home(&home, "fleet.node.late", "far", 30);
    assert_eq!(late["payload"]["outcome"], "ok", "{late}");
    assert_eq!(far.fleet_actions(), ["committed"]);
    // And later fan-outs reach it as usual.
    wait_for_nodes(&home, 2);
    let (v, ok) = home.kernos(&["--json", "--on", "all", "how much memory is used"]);
    assert!(ok, "{v}");
}

#[test]
fn a_broker_restart_mid_fan_out_loses_no_result() {
    let root = tempfile::tempdir().unwrap();
    let (mut broker, nodes, home) = fleet_of_three(root.path());
    let run = start(
        &home,
        &[
            "--json",
            "--yes",
            "--on",
            "all",
            "net.ping host=127.0.0.1 count=4",
        ],
    );
    for n in ["web-1", "web-2", "web-3"] {
        wait_home(&home, "fleet.node.started", n, 20);
    }
    broker.restart();
    let (v, ok) = finish(run);
    assert!(ok, "every result came home across the restart: {v}");
    assert_eq!(v["fleet"]["summary"], "3 ok", "{v}");
    for m in &nodes {
        assert_eq!(m.fleet_actions(), ["committed"]);
    }
}

#[test]
fn an_organisation_cannot_reach_another_organisations_nodes() {
    let root = tempfile::tempdir().unwrap();
    let users: Vec<User> = (0..3)
        .map(|i| user(root.path(), &format!("u{i}")))
        .collect();
    let broker = Broker::start(
        root.path(),
        &[
            ("LOCAL", vec![&users[0], &users[1]]),
            ("OTHER", vec![&users[2]]),
        ],
    );
    let node = Machine::node(&broker.url(), &users[1], "web-1", "role = \"web\"");
    let home = Machine::home(&broker.url(), &users[0]);
    let other = Machine::home(&broker.url(), &users[2]);
    wait_for_nodes(&home, 1);

    // The other organisation's controller sees no node and reaches none.
    let listed = other.daemon().local("GET", "/v1/fleet/nodes", None).json();
    assert_eq!(listed["nodes"], json!([]), "{listed}");
    let (v, ok) = other.kernos(&[
        "--json",
        "--yes",
        "--on",
        "all",
        "write 'x' to intruder.txt",
    ]);
    assert!(!ok, "{v}");
    assert_eq!(v["fleet"]["total"], 0, "{v}");
    assert!(node.fleet_actions().is_empty());
    assert!(!node.w.cwd.join("intruder.txt").exists());

    // On the controller, an API key of another Kernos organisation may not fan out.
    let key = new_key(&home.w, "acme", "admin");
    let r = home.daemon().http(
        "POST",
        "/v1/actions",
        Some(&key),
        Some(json!({"request": "how much memory is used", "on": "all"})),
    );
    assert_eq!(r.status, 422, "{}", text(&r.body));
    let r = home
        .daemon()
        .http("GET", "/v1/fleet/nodes", Some(&key), None);
    assert_eq!(r.json()["nodes"], json!([]));
    assert!(node.fleet_actions().is_empty());
}

#[test]
fn bad_selectors_and_fan_out_without_a_fleet_are_refused_before_anything_runs() {
    let w = World::new();
    let out = w.run(&["--on", "all", "how much memory is used"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("through the daemon"),
        "{}",
        text(&out.stderr)
    );
    let d = Daemon::start(&w, &[]);
    let r = d.local(
        "POST",
        "/v1/actions",
        Some(json!({"request": "how much memory is used", "on": "disk.var>9"})),
    );
    assert_eq!(r.status, 422, "{}", text(&r.body));
    assert!(text(&r.body).contains("disk./var"), "{}", text(&r.body));
    let r = d.local(
        "POST",
        "/v1/actions",
        Some(json!({"request": "how much memory is used", "on": "all"})),
    );
    assert_eq!(r.status, 422, "no fleet here: {}", text(&r.body));
    d.stop();
}

#[test]
fn a_node_stricter_than_home_refuses_what_home_approved_and_changes_nothing() {
    let root = tempfile::tempdir().unwrap();
    let users: Vec<User> = (0..3)
        .map(|i| user(root.path(), &format!("u{i}")))
        .collect();
    let broker = Broker::start(root.path(), &[("LOCAL", users.iter().collect())]);
    let lenient = Machine::node(&broker.url(), &users[1], "lenient", "role = \"web\"");
    let strict = Machine::node_with(
        &broker.url(),
        &users[2],
        "strict",
        "role = \"web\"",
        "max_risk = \"low\"",
    );
    let home = Machine::home(&broker.url(), &users[0]);
    wait_for_nodes(&home, 2);

    // Home approves a medium-risk write (--yes); the strict node runs nothing above low.
    let (v, ok) = home.kernos(&[
        "--json",
        "--yes",
        "--on",
        "role=web",
        "write 'x' to strict.txt",
    ]);
    assert!(!ok, "{v}");
    assert_eq!(result_of(&v, "lenient")["outcome"], "ok", "{v}");
    let refused = result_of(&v, "strict");
    assert_eq!(refused["outcome"], "failed", "{refused}");
    assert_eq!(refused["status"], "declined", "{refused}");
    assert!(
        refused["error"]
            .as_str()
            .unwrap()
            .contains("above what this node runs from the fleet"),
        "{refused}"
    );
    assert!(lenient.w.cwd.join("strict.txt").exists());
    assert!(
        !strict.w.cwd.join("strict.txt").exists(),
        "the strict node changed nothing"
    );
    // Its own journal says why, like any declined step.
    let decided = strict.events("approval.decided");
    assert_eq!(decided.len(), 1, "{decided:?}");
    assert_eq!(decided[0]["payload"]["approved"], false);
}

#[test]
fn a_machine_joins_with_the_cli_is_selected_by_its_label_and_leaves() {
    let root = tempfile::tempdir().unwrap();
    let users: Vec<User> = (0..2)
        .map(|i| user(root.path(), &format!("u{i}")))
        .collect();
    let broker = Broker::start(root.path(), &[("LOCAL", users.iter().collect())]);
    let home = Machine::home(&broker.url(), &users[0]);
    let w = World::new();
    let seed = users[1].seed.display().to_string();
    let out = w.run(&[
        "node",
        "join",
        &broker.url(),
        "--nkey",
        &seed,
        "--name",
        "db-1",
        "--label",
        "role=db",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let mut d = Some(Daemon::start(&w, &[]));
    let listed = wait_for_nodes(&home, 1);
    assert_eq!(listed["nodes"][0]["labels"]["role"], "db", "{listed}");
    let (v, ok) = home.kernos(&["--json", "--on", "role=db", "how much memory is used"]);
    assert!(ok, "{v}");
    let (v, ok) = home.kernos(&["--json", "--on", "role=web", "how much memory is used"]);
    assert!(!ok && v["fleet"]["total"] == 0, "no web node: {v}");

    let refused = w.run(&["node", "leave"]);
    assert!(!refused.status.success(), "not while its daemon runs");
    d.take().unwrap().stop();
    let out = w.run(&["node", "leave"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let listed = home.daemon().local("GET", "/v1/fleet/nodes", None).json();
    assert_eq!(listed["nodes"][0]["status"], "left", "{listed}");
    let (v, ok) = home.kernos(&["--json", "--on", "all", "how much memory is used"]);
    assert!(
        !ok && v["fleet"]["total"] == 0,
        "a node that left is never picked: {v}"
    );
}

#[test]
fn a_rollout_in_batches_stops_after_too_many_failures() {
    let root = tempfile::tempdir().unwrap();
    let (_broker, nodes, home) = fleet_of_three(root.path());
    // Fails on every node (the file is nowhere); one node at a time, stop after one failure.
    let (v, ok) = home.kernos(&[
        "--json",
        "--on",
        "all",
        "--batch",
        "1",
        "--max-failures",
        "1",
        "fs.read path=/nonexistent/kernos-fleet.txt",
    ]);
    assert!(!ok, "{v}");
    assert_eq!(v["fleet"]["summary"], "0 ok, 1 failed, 2 skipped", "{v}");
    assert_eq!(result_of(&v, "web-1")["outcome"], "failed", "{v}");
    assert_eq!(nodes[0].fleet_actions(), ["failed"]);
    for m in &nodes[1..] {
        assert!(
            m.fleet_actions().is_empty(),
            "a skipped node was never sent the plan"
        );
    }
}

#[test]
fn a_node_back_after_the_deadline_reports_expired_and_runs_nothing() {
    let root = tempfile::tempdir().unwrap();
    let (_broker, mut nodes, home) = fleet_of_three(root.path());
    nodes[2].d.take().unwrap().stop();
    wait_for_nodes(&home, 2);
    let (v, ok) = home.kernos(&[
        "--json",
        "--yes",
        "--on",
        "all",
        "--deadline",
        "1s",
        "write 'late' to late.txt",
    ]);
    assert!(!ok, "{v}");
    assert_eq!(result_of(&v, "web-3")["outcome"], "unreachable", "{v}");
    std::thread::sleep(Duration::from_millis(1500));
    nodes[2].d = Some(Daemon::start(&nodes[2].w, &[]));
    let late = wait_home(&home, "fleet.node.late", "web-3", 30);
    assert_eq!(late["payload"]["outcome"], "expired", "{late}");
    assert!(!nodes[2].w.cwd.join("late.txt").exists());
    assert!(nodes[2].fleet_actions().is_empty(), "it ran nothing");
    assert!(
        nodes[0].w.cwd.join("late.txt").exists(),
        "the others did it in time"
    );
}

/// A private CA and a certificate for 127.0.0.1 signed by it (openssl, as the daemon's own
/// TLS test makes its certificate).
fn private_ca(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            text(&out.stderr)
        );
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=kernos test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        "broker.key",
        "-out",
        "broker.csr",
    ]);
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "broker.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "san.ext",
        "-out",
        "broker.pem",
    ]);
    (
        dir.join("ca.pem"),
        dir.join("broker.pem"),
        dir.join("broker.key"),
    )
}

#[test]
fn nodes_and_the_controller_reach_a_tls_broker_through_its_private_ca() {
    let root = tempfile::tempdir().unwrap();
    let (ca, cert, key) = private_ca(root.path());
    let users: Vec<User> = (0..2)
        .map(|i| user(root.path(), &format!("u{i}")))
        .collect();
    let tls = format!(
        "tls {{ cert_file: \"{}\", key_file: \"{}\" }}",
        cert.display(),
        key.display()
    );
    let broker = Broker::start_with(root.path(), &[("LOCAL", users.iter().collect())], &tls);
    let url = broker.url().replace("nats://", "tls://");
    let extra = format!("tls_ca = \"{}\"", ca.display());
    let node = Machine::node_with(&url, &users[1], "tls-1", "role = \"web\"", &extra);
    let w = World::new();
    w.config(&format!(
        "[fleet]\nurl = \"{url}\"\nnkey = \"{}\"\ncontroller = true\n{extra}\n",
        users[0].seed.display()
    ));
    let home = Machine {
        d: Some(Daemon::start(&w, &[])),
        w,
    };
    wait_for_nodes(&home, 1);
    let (v, ok) = home.kernos(&["--json", "--on", "all", "how much memory is used"]);
    assert!(ok, "{v}");
    assert_eq!(node.fleet_actions(), ["committed"]);
}
