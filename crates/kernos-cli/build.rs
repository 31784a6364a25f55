//! Build facts for `kernos --version`: the git commit the binary was built from and the cargo
//! features it was built with.
//!
//! The commit comes from `$KERNOS_GIT_COMMIT` when set (a packager building from a tarball
//! names it), else from `git` when the source is a checkout, else `unknown`: a tarball without
//! `.git` and a machine without git both build.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (!s.is_empty()).then_some(s)
}

fn main() {
    // Relative relocations packed as RELR (glibc ≥ 2.36, binutils ≥ 2.38): the PIE binary's
    // 80,000 relocations are 1.9 MB of RELA entries the loader reads at every start; packed,
    // a few KB. Still a PIE (ASLR stays); under emulation (Kernos OS booting in QEMU) start-up
    // page faults are expensive. Other targets and toolchains link as before.
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux")
        && std::env::var("CARGO_CFG_TARGET_ENV").as_deref() == Ok("gnu")
    {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
    println!("cargo:rerun-if-env-changed=KERNOS_GIT_COMMIT");
    let commit = std::env::var("KERNOS_GIT_COMMIT")
        .ok()
        .filter(|c| !c.is_empty())
        .or_else(|| {
            let c = git(&["rev-parse", "--short=12", "HEAD"])?;
            // Rebuild when HEAD moves: HEAD itself (a checkout), the branch it points at (a
            // commit), packed refs (a gc). In a worktree these live under the common git dir,
            // which `--git-path` resolves.
            let mut watch = vec![git(&["rev-parse", "--git-path", "HEAD"])];
            if let Some(r) = git(&["symbolic-ref", "-q", "HEAD"]) {
                watch.push(git(&["rev-parse", "--git-path", &r]));
            }
            watch.push(git(&["rev-parse", "--git-path", "packed-refs"]));
            for p in watch.into_iter().flatten() {
                if std::path::Path::new(&p).exists() {
                    println!("cargo:rerun-if-changed={p}");
                }
            }
            Some(c)
        })
        .unwrap_or_else(|| "unknown".into());
    let mut features: Vec<String> = std::env::vars()
        .filter_map(|(k, _)| k.strip_prefix("CARGO_FEATURE_").map(str::to_owned))
        .map(|f| f.to_ascii_lowercase().replace('_', "-"))
        .collect();
    features.sort();
    let features = if features.is_empty() {
        "none".to_owned()
    } else {
        features.join(",")
    };
    let profile = std::env::var("PROFILE").unwrap_or_default();
    let target = std::env::var("TARGET").unwrap_or_default();
    println!("cargo:rustc-env=KERNOS_GIT_COMMIT={commit}");
    println!("cargo:rustc-env=KERNOS_FEATURES={features}");
    println!("cargo:rustc-env=KERNOS_BUILD_PROFILE={profile}");
    println!("cargo:rustc-env=KERNOS_TARGET={target}");
}
