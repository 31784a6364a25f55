//! `pkg.*` on this machine's real package manager (apt on Debian). Reads and simulations run
//! everywhere apt exists; installing and removing a real package runs only as root with
//! `KERNOS_TEST_PKG=1` (CI), and only removes what the test itself installed.

use std::collections::BTreeMap;
use std::process::Command;

use kernos_core::{EffectKind, Target};
use kernos_tools::Change;
use kernos_tools::testing::World;
use kernos_tools::undo::Inverse;
use serde_json::json;

fn have_apt() -> bool {
    let ok = |p: &str| Command::new(p).arg("--version").output().is_ok();
    if ok("apt-get") && ok("dpkg-query") {
        true
    } else {
        eprintln!("skipped: no apt on this machine");
        false
    }
}

/// Installed packages and versions, straight from dpkg (independent of the code under test).
fn dpkg_installed() -> BTreeMap<String, String> {
    let out = Command::new("dpkg-query")
        .args([
            "-W",
            "-f",
            "${db:Status-Abbrev}\t${binary:Package}\t${Version}\n",
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let c: Vec<&str> = l.split('\t').collect();
            (c.len() == 3 && c[0].chars().nth(1) == Some('i'))
                .then(|| (c[1].split(':').next().unwrap().to_owned(), c[2].to_owned()))
        })
        .collect()
}

fn is_installed(name: &str) -> bool {
    dpkg_installed().contains_key(name)
}

#[test]
fn info_on_an_installed_package() {
    if !have_apt() {
        return;
    }
    let w = World::new();
    let (out, records) = w.execute("pkg.info", json!({ "name": "bash" })).unwrap();
    assert!(records.is_empty());
    let r = &out.rows[0];
    assert_eq!(r["name"], "bash");
    assert_eq!(r["installed"], true);
    assert_eq!(r["version"], json!(dpkg_installed()["bash"]));
    assert!(r["size"].as_u64().unwrap() > 100_000);
    assert!(r["description"].as_str().unwrap().contains("Bourne"));
    assert!(out.summary.unwrap().contains("installed"));

    let e = w
        .execute("pkg.info", json!({ "name": "kernos-no-such-package" }))
        .unwrap_err();
    assert!(e.to_string().contains("pkg.search"), "{e}");
}

#[test]
fn search_ranks_the_exact_name_first() {
    if !have_apt() {
        return;
    }
    let w = World::new();
    let (out, _) = w.execute("pkg.search", json!({ "query": "bash" })).unwrap();
    assert_eq!(out.rows[0]["name"], "bash");
    assert_eq!(out.rows[0]["installed"], true);
    assert!(out.rows.len() > 1);
    // An option-looking query is a search term, not an option.
    let (out, _) = w
        .execute("pkg.search", json!({ "query": "-oDebug::x=1" }))
        .unwrap();
    assert!(out.rows.is_empty());
}

#[test]
fn list_installed_with_a_pattern() {
    if !have_apt() {
        return;
    }
    let w = World::new();
    let (out, _) = w.execute("pkg.list", json!({ "pattern": "bash" })).unwrap();
    let names = out.column_values("name");
    assert!(names.contains(&json!("bash")), "{names:?}");
    assert!(names.iter().all(|n| n.as_str().unwrap().contains("bash")));
    let (all, _) = w.execute("pkg.list", json!({})).unwrap();
    assert_eq!(all.rows.len(), dpkg_installed().len());
    let (up, _) = w.execute("pkg.upgradable", json!({})).unwrap();
    for r in &up.rows {
        assert_ne!(r["version"], r["candidate"]);
    }
}

#[test]
fn names_that_could_be_options_are_refused() {
    let w = World::new();
    if !have_apt() {
        return;
    }
    for bad in ["-oAPT::Get::Simulate=0", "Hello", "x;rm -rf /", "foo=1.0"] {
        let e = w
            .effects("pkg.install", json!({ "packages": [bad] }))
            .unwrap_err();
        assert!(
            e.to_string().contains("not a valid apt package name"),
            "{e}"
        );
        assert!(w.dry_run("pkg.remove", json!({ "packages": bad })).is_err());
    }
}

#[test]
fn install_dry_run_and_effects_from_the_simulation() {
    if !have_apt() {
        return;
    }
    if is_installed("hello") {
        eprintln!("skipped: hello is already installed here");
        return;
    }
    let w = World::new();
    let args = json!({ "packages": "hello" });
    let changes = w.dry_run("pkg.install", args.clone()).unwrap();
    assert_eq!(
        changes,
        vec![Change::PackageInstall {
            name: "hello".into()
        }]
    );
    let e = w.effects("pkg.install", args).unwrap();
    let pkg = Target::Package {
        name: "hello".into(),
    };
    assert!(
        e.iter()
            .any(|e| e.kind == EffectKind::Privileged && e.target == pkg)
    );
    assert!(
        e.iter()
            .any(|e| e.kind == EffectKind::Write && e.target == pkg)
    );
    assert!(e.iter().any(|e| e.kind == EffectKind::Write
        && e.target
            == Target::Path {
                path: "/var/lib/dpkg".into(),
                recursive: true
            }));
    // Network: exactly the configured repository hosts.
    let hosts: Vec<_> = e
        .iter()
        .filter(|e| e.kind == EffectKind::Network)
        .map(|e| e.target.clone())
        .collect();
    assert!(!hosts.is_empty());
    assert_eq!(
        hosts,
        kernos_tools::pkg::apt_hosts()
            .into_iter()
            .map(|(host, port)| Target::Host { host, port })
            .collect::<Vec<_>>()
    );
    // Removing something not installed changes nothing.
    assert!(
        w.dry_run("pkg.remove", json!({ "packages": ["hello"] }))
            .unwrap()
            .is_empty()
    );
    let e = w
        .effects("pkg.remove", json!({ "packages": ["hello"] }))
        .unwrap();
    assert!(e.iter().all(|e| e.kind != EffectKind::Network));
}

#[test]
fn unknown_packages_fail_early_with_a_hint() {
    if !have_apt() {
        return;
    }
    let w = World::new();
    let e = w
        .dry_run(
            "pkg.install",
            json!({ "packages": "kernos-no-such-package" }),
        )
        .unwrap_err();
    let m = e.to_string();
    assert!(
        m.contains("Unable to locate package") && m.contains("pkg.search"),
        "{m}"
    );
}

/// Installs a tiny real package, checks it, undoes through the recorded inverse step, and
/// verifies that exactly the newly installed packages are gone again.
#[test]
fn install_then_undo_removes_exactly_what_was_new() {
    if std::env::var("KERNOS_TEST_PKG").as_deref() != Ok("1") {
        eprintln!(
            "skipped: set KERNOS_TEST_PKG=1 (as root, with network) to install and remove a real package"
        );
        return;
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: installing packages needs root");
        return;
    }
    if !have_apt() {
        return;
    }
    let Some(pkg) = ["hello", "sl"].into_iter().find(|p| !is_installed(p)) else {
        eprintln!(
            "skipped: hello and sl are both installed already; nothing safe to remove afterwards"
        );
        return;
    };
    let w = World::new();
    let args = json!({ "packages": [pkg] });
    let before = dpkg_installed();
    let predicted = w.dry_run("pkg.install", args.clone()).unwrap();
    let (out, records) = w.execute("pkg.install", args).unwrap();
    assert_eq!(out.changes, predicted, "dry run and execution differ");
    let after = dpkg_installed();
    assert!(after.contains_key(pkg));
    let new: Vec<String> = after
        .keys()
        .filter(|k| !before.contains_key(*k))
        .cloned()
        .collect();
    assert!(new.contains(&pkg.to_owned()));
    assert_eq!(records.len(), 1);
    let Inverse::Step { tool, action, args } = &records[0].inverse else {
        panic!("expected an inverse step, got {:?}", records[0].inverse);
    };
    assert_eq!((tool.as_str(), action.as_str()), ("pkg", "remove"));
    let mut recorded: Vec<String> = serde_json::from_value(args["packages"].clone()).unwrap();
    recorded.sort();
    assert_eq!(
        recorded, new,
        "undo must remove exactly what was newly installed"
    );

    // Undo, as the engine would: run the inverse step through the registry.
    w.execute("pkg.remove", args.clone()).unwrap();
    let restored = dpkg_installed();
    assert!(!restored.contains_key(pkg));
    assert_eq!(
        restored.keys().collect::<Vec<_>>(),
        before.keys().collect::<Vec<_>>(),
        "the installed set is what it was"
    );
}
