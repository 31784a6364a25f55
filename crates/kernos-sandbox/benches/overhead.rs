//! Sandbox overhead per step: `/bin/true` through the library's runner under the full policy,
//! vs plain fork/exec, vs `bwrap --ro-bind / / --unshare-all /bin/true`, interleaved in the same
//! run. Prints medians and checks the budget (≤ 3 ms over plain, faster than bwrap).
//!
//! `cargo bench -p kernos-sandbox --bench overhead` (see bench/overhead.sh);
//! `BENCH_ITERS` sets the number of rounds (default 300).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kernos_core::exec::{CancelToken, ExecRequest, ProcessRunner};
use kernos_core::sandbox::SandboxPolicy;
use kernos_sandbox::SandboxRunner;

fn stats(name: &str, v: &mut [Duration]) -> f64 {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let med = ms(v[v.len() / 2]);
    println!(
        "{name:<34} median {med:7.3} ms   p10 {:7.3}   p90 {:7.3}   min {:7.3}",
        ms(v[v.len() / 10]),
        ms(v[v.len() * 9 / 10]),
        ms(v[0]),
    );
    med
}

fn main() {
    let iters: usize = std::env::var("BENCH_ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    let helper = env!("CARGO_BIN_EXE_kernos-sandbox");
    let runner = SandboxRunner::with_helper(helper);
    let tree = tempfile::tempdir().unwrap();
    let work = tree.path().join("work");
    let ssh = tree.path().join("home/.ssh");
    let data = tree.path().join("data/kernos");
    for d in [&work, &ssh, &data] {
        std::fs::create_dir_all(d).unwrap();
    }
    // The full policy a typical step gets: one writable dir, hidden secrets, no network, all
    // default limits (memory, pids, cpu, wall, file size, fds, output).
    let policy = SandboxPolicy {
        write: vec![work.clone()],
        deny_read: vec![ssh.clone(), data.clone()],
        ..SandboxPolicy::default()
    };
    let req = ExecRequest::new(&["/bin/true"], policy);
    let cancel = CancelToken::new();
    let bwrap = ["/usr/bin/bwrap", "/bin/bwrap"]
        .into_iter()
        .find(|p| Path::new(p).exists());
    if bwrap.is_none() {
        println!("bwrap not found: install bubblewrap for the comparison");
    }

    let sandboxed = || {
        let o = runner.run(&req, &cancel).expect("sandboxed run");
        assert!(o.success(), "{o:?}");
    };
    let plain = || {
        let s = Command::new("/bin/true")
            .stdin(Stdio::null())
            .status()
            .unwrap();
        assert!(s.success());
    };
    let bw = |b: &str| {
        let s = Command::new(b)
            .args(["--ro-bind", "/", "/", "--unshare-all", "/bin/true"])
            .stdin(Stdio::null())
            .status()
            .unwrap();
        assert!(s.success());
    };

    for _ in 0..10 {
        sandboxed();
        plain();
        if let Some(b) = bwrap {
            bw(b);
        }
    }
    let (mut a, mut p, mut w) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..iters {
        let t = Instant::now();
        plain();
        p.push(t.elapsed());
        let t = Instant::now();
        sandboxed();
        a.push(t.elapsed());
        if let Some(b) = bwrap {
            let t = Instant::now();
            bw(b);
            w.push(t.elapsed());
        }
    }
    println!("{iters} rounds, interleaved");
    let plain_med = stats("plain fork/exec /bin/true", &mut p);
    let sb_med = stats("kernos sandbox (full policy)", &mut a);
    let overhead = sb_med - plain_med;
    println!("overhead per step (median)          {overhead:7.3} ms   (budget 3.000 ms)");
    let mut ok = overhead <= 3.0;
    if bwrap.is_some() {
        let bw_med = stats("bwrap --ro-bind / / --unshare-all", &mut w);
        println!(
            "kernos vs bwrap                     {:7.3} ms faster",
            bw_med - sb_med
        );
        ok &= sb_med < bw_med;
    }
    println!("{}", if ok { "BUDGET OK" } else { "OVER BUDGET" });
}
