//! The Debian package: `scripts/build-deb` around this build's binary, installed with
//! `dpkg --root` into a private Debian 12 root in a temporary directory (never onto the host),
//! then checked: `kernos --version` runs from it, the unit, man pages, completions and the
//! config are where Debian keeps them, and the unit passes `systemd-analyze verify`.
//!
//! Needs root (dpkg writes its database and owner-root files) and dpkg, systemd-analyze and
//! man (`scripts/test` installs them); CI runs as root. `KERNOS_SKIP_DEB=1` skips it locally.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::text;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn skip() -> bool {
    if std::env::var_os("KERNOS_SKIP_DEB").is_some_and(|v| v == "1") {
        eprintln!("KERNOS_SKIP_DEB=1: package test skipped");
        return true;
    }
    // SAFETY: geteuid has no preconditions.
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "the package test installs with dpkg --root and needs root (as CI runs); set KERNOS_SKIP_DEB=1 to skip it"
    );
    false
}

fn run(c: &mut Command) -> String {
    let out = c.output().unwrap_or_else(|e| panic!("{c:?}: {e}"));
    assert!(
        out.status.success(),
        "{c:?}: {}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// Builds the package from the test build's binary, into `out`.
fn build_deb(out: &Path) -> PathBuf {
    let said = run(Command::new(repo().join("scripts/build-deb"))
        .args([
            "--bin",
            env!("CARGO_BIN_EXE_kernos"),
            "--compress",
            "none",
            "--out",
        ])
        .arg(out));
    PathBuf::from(said.trim())
}

/// A private Debian root: dpkg's database with the host's package list (so `Depends: libc6` is
/// met, as on the Debian 12 host it comes from) and nothing else installed in it.
fn private_root(dir: &Path) -> PathBuf {
    let root = dir.join("root");
    for d in [
        "var/lib/dpkg/info",
        "var/lib/dpkg/updates",
        "var/lib/dpkg/triggers",
    ] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::copy("/var/lib/dpkg/status", root.join("var/lib/dpkg/status")).unwrap();
    std::fs::write(root.join("var/lib/dpkg/available"), "").unwrap();
    root
}

#[test]
fn the_deb_installs_into_a_private_root_with_unit_man_pages_and_completions() {
    if skip() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let deb = build_deb(&tmp.path().join("out"));
    assert!(deb.exists(), "{}", deb.display());
    let info = run(Command::new("dpkg-deb").arg("--info").arg(&deb));
    assert!(info.contains("Package: kernos"), "{info}");
    assert!(!info.contains("postinst"), "no maintainer scripts: {info}");

    let root = private_root(tmp.path());
    run(Command::new("dpkg")
        .arg(format!("--root={}", root.display()))
        .args(["--log=/dev/null", "-i"])
        .arg(&deb));
    // Installed in the private root, and only there.
    let host = Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", "kernos"])
        .output()
        .unwrap();
    assert!(
        !text(&host.stdout).contains("install ok installed"),
        "the host must not have kernos installed by this test"
    );
    let status = run(Command::new("dpkg-query")
        .arg(format!(
            "--admindir={}",
            root.join("var/lib/dpkg").display()
        ))
        .args(["-W", "-f=${Status} ${Version}", "kernos"]));
    assert!(status.starts_with("install ok installed"), "{status}");

    // The installed binary runs and says what it is.
    let v = run(Command::new(root.join("usr/bin/kernos")).arg("--version"));
    assert!(
        v.starts_with("kernos 0.") && v.contains("\ncommit: "),
        "{v}"
    );
    assert!(status.ends_with(v.lines().next().unwrap().trim_start_matches("kernos ")));

    for f in [
        "lib/systemd/system/kernos.service",
        "usr/share/man/man1/kernos.1.gz",
        "usr/share/man/man1/kernos-serve.1.gz",
        "usr/share/man/man1/kernos-config.1.gz",
        "usr/share/man/man1/kernos-journal.1.gz",
        "usr/share/man/man5/kernos.toml.5.gz",
        "usr/share/bash-completion/completions/kernos",
        "usr/share/zsh/vendor-completions/_kernos",
        "usr/share/fish/vendor_completions.d/kernos.fish",
        "etc/kernos/config.toml",
        "usr/share/doc/kernos/examples/config.toml",
        "usr/share/doc/kernos/copyright",
    ] {
        assert!(root.join(f).is_file(), "{f} is missing from the package");
    }
    let conffiles = std::fs::read_to_string(root.join("var/lib/dpkg/info/kernos.conffiles"))
        .unwrap_or_default();
    assert!(conffiles.contains("/etc/kernos/config.toml"), "{conffiles}");
    // The shipped config is the template: it parses to the defaults.
    let check = run(Command::new(root.join("usr/bin/kernos"))
        .args(["config", "check"])
        .env("KERNOS_CONFIG", root.join("etc/kernos/config.toml")));
    assert!(check.starts_with("ok:"), "{check}");

    // man finds and formats the installed pages.
    let page = run(Command::new("man")
        .args(["--no-hyphenation", "-P", "cat", "-l"])
        .arg(root.join("usr/share/man/man5/kernos.toml.5.gz"))
        .env("MANWIDTH", "100"));
    for s in [
        "[server]",
        "server.rate_per_sec",
        "PROFILES",
        "RELOADING",
        "[witness]",
    ] {
        assert!(page.contains(s), "kernos.toml(5) lacks {s}");
    }

    verify_unit(&root);

    // Removing it leaves the conffile (Debian's rule) and takes the rest.
    run(Command::new("dpkg")
        .arg(format!("--root={}", root.display()))
        .args(["--log=/dev/null", "-r", "kernos"]));
    assert!(!root.join("usr/bin/kernos").exists());
    assert!(root.join("etc/kernos/config.toml").exists());
}

/// `systemd-analyze verify` on the installed unit. PID 1 here is not systemd, so nothing is
/// started: verify loads the unit as systemd would (every directive known and well-formed,
/// its dependencies loadable, `ExecStart=`/`ExecReload=` executables present, the
/// `Documentation=` man pages found by man), under `--root` so it looks in the private root.
/// The private root gets the host's targets and `kill` (what a real Debian root has); the man
/// pages are found through MANPATH in the root. A broken copy of the unit must fail, so this
/// check can fail.
fn verify_unit(root: &Path) {
    let units = root.join("lib/systemd/system");
    for t in std::fs::read_dir("/lib/systemd/system").unwrap() {
        let t = t.unwrap().path();
        if t.extension().is_some_and(|e| e == "target") && !t.is_symlink() {
            std::fs::copy(&t, units.join(t.file_name().unwrap())).unwrap();
        }
    }
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::copy("/bin/kill", root.join("bin/kill")).unwrap();
    let verify = |unit: &str| {
        Command::new("systemd-analyze")
            .arg("verify")
            .arg(format!("--root={}", root.display()))
            .arg(unit)
            .env("MANPATH", root.join("usr/share/man"))
            .output()
            .unwrap()
    };
    let out = verify("/lib/systemd/system/kernos.service");
    let said = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(out.status.success() && said.trim().is_empty(), "{said}");

    let unit = std::fs::read_to_string(units.join("kernos.service")).unwrap();
    std::fs::write(
        units.join("kernos-broken.service"),
        unit.replace("NoNewPrivileges=", "NoNewPrivilege=")
            .replace("/usr/bin/kernos serve", "/usr/bin/kernos-missing serve"),
    )
    .unwrap();
    let out = verify("/lib/systemd/system/kernos-broken.service");
    let said = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(
        !out.status.success(),
        "a broken unit must fail verify: {said}"
    );
    assert!(
        said.contains("NoNewPrivilege") && said.contains("kernos-missing"),
        "{said}"
    );
}
