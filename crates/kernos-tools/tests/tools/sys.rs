//! `sys.*`: values are sane and agree with what the kernel reports directly.

use std::collections::HashMap;

use kernos_core::{EffectKind, Target};
use kernos_tools::testing::World;
use kernos_tools::{Output, ToolError};
use serde_json::json;

fn meminfo_kib() -> HashMap<String, u64> {
    std::fs::read_to_string("/proc/meminfo")
        .unwrap()
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            Some((k.to_owned(), v.split_whitespace().next()?.parse().ok()?))
        })
        .collect()
}

fn run(w: &World, name: &str, args: serde_json::Value) -> Output {
    w.execute(name, args)
        .unwrap_or_else(|e| panic!("{name}: {e}"))
        .0
}

#[test]
fn memory_total_is_memtotal_and_parts_add_up() {
    let w = World::new();
    let out = run(&w, "sys.memory", json!({}));
    let m = meminfo_kib();
    let mem = &out.rows[0];
    assert_eq!(mem["kind"], "memory");
    assert_eq!(mem["total"], json!(m["MemTotal"] * 1024));
    let total = mem["total"].as_u64().unwrap();
    let used = mem["used"].as_u64().unwrap();
    let available = mem["available"].as_u64().unwrap();
    assert_eq!(used + available, total);
    assert!(mem["free"].as_u64().unwrap() <= total);
    let swap = &out.rows[1];
    assert_eq!(swap["kind"], "swap");
    assert_eq!(swap["total"], json!(m["SwapTotal"] * 1024));
    assert!(out.summary.unwrap().contains("memory used"));
    assert_eq!(out.columns.len(), 8, "declared columns are filled in");
    assert!(out.changes.is_empty());
}

#[test]
fn info_matches_the_kernel() {
    let w = World::new();
    let out = run(&w, "sys.info", json!({}));
    let r = &out.rows[0];
    let read = |p: &str| std::fs::read_to_string(p).unwrap().trim().to_owned();
    assert_eq!(r["hostname"], json!(read("/proc/sys/kernel/hostname")));
    assert_eq!(r["kernel"], json!(read("/proc/sys/kernel/osrelease")));
    assert_eq!(r["arch"], json!(std::env::consts::ARCH));
    assert_eq!(r["memory"], json!(meminfo_kib()["MemTotal"] * 1024));
    assert!(r["cores"].as_u64().unwrap() >= 1);
    assert!(!r["os"].as_str().unwrap().is_empty());
    assert!(!r["virtualization"].as_str().unwrap().is_empty());
    let eff = w.effects("sys.info", json!({})).unwrap();
    assert_eq!(eff.len(), 1);
    assert_eq!(
        (eff[0].kind, &eff[0].target),
        (EffectKind::Read, &Target::System)
    );
}

#[test]
fn disk_lists_real_filesystems_and_finds_the_one_holding_a_path() {
    let w = World::new();
    let all = run(&w, "sys.disk", json!({}));
    assert!(!all.rows.is_empty(), "at least one real filesystem");
    for r in &all.rows {
        let (size, used, free) = (
            r["size"].as_u64().unwrap(),
            r["used"].as_u64().unwrap(),
            r["free"].as_u64().unwrap(),
        );
        assert!(size > 0 && used <= size && free <= size, "{r:?}");
        let p = r["use_percent"].as_f64().unwrap();
        assert!((0.0..=100.0).contains(&p));
        for pseudo in ["proc", "sysfs", "cgroup2", "devpts"] {
            assert_ne!(r["type"], pseudo);
        }
    }
    let one = run(&w, "sys.disk", json!({"path": "."}));
    assert_eq!(one.rows.len(), 1);
    let mount = one.rows[0]["mount"].as_str().unwrap();
    let real = std::fs::canonicalize(&w.root).unwrap();
    assert!(
        real.starts_with(mount),
        "{} not under {mount}",
        real.display()
    );
    let eff = w.effects("sys.disk", json!({"path": "."})).unwrap();
    assert!(eff.iter().any(|e| e.target
        == Target::Path {
            path: w.root.clone(),
            recursive: false
        }));
    let err = w
        .execute("sys.disk", json!({"path": "no/such/dir"}))
        .unwrap_err();
    assert!(matches!(err, ToolError::NotFound(_)), "{err}");
}

#[test]
fn cpu_has_a_row_per_core_and_overall() {
    let w = World::new();
    let out = run(&w, "sys.cpu", json!({}));
    let cores_in_stat = std::fs::read_to_string("/proc/stat")
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("cpu") && !l.starts_with("cpu "))
        .count();
    assert_eq!(out.rows.len(), cores_in_stat + 1);
    let all = &out.rows[0];
    assert_eq!(all["cpu"], "all");
    assert!(all["load_1"].as_f64().unwrap() >= 0.0);
    assert!(all["cores"].as_u64().unwrap() >= 1);
    for r in &out.rows {
        let busy = r["busy_percent"].as_f64().unwrap();
        let idle = r["idle_percent"].as_f64().unwrap();
        assert!(
            (0.0..=100.0).contains(&busy) && (0.0..=100.0).contains(&idle),
            "{r:?}"
        );
        assert!(busy + idle <= 100.2, "{r:?}");
    }
}

#[test]
fn uptime_agrees_with_proc() {
    let w = World::new();
    let out = run(&w, "sys.uptime", json!({}));
    let r = &out.rows[0];
    let up: f64 = std::fs::read_to_string("/proc/uptime")
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!((r["uptime"].as_f64().unwrap() - up).abs() < 5.0);
    let btime: i64 = std::fs::read_to_string("/proc/stat")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("btime ")?.parse().ok())
        .unwrap();
    assert!((r["booted"].as_i64().unwrap() - btime).abs() <= 5);
    assert!(out.summary.unwrap().starts_with("up "));
}

#[test]
fn users_reads_utmp_records_of_live_sessions() {
    let mut w = World::new();
    // Records written by glibc itself into a utmp file of our own: one for this (live) test
    // process, one for a process that cannot exist.
    let file = w.root.join("utmp");
    std::fs::write(&file, b"").unwrap();
    write_utmp(
        &file,
        "ann",
        "pts/7",
        "192.0.2.9",
        std::process::id() as i32,
        1_700_000_000,
    );
    write_utmp(&file, "ghost", "pts/8", "", i32::MAX - 1, 1_700_000_100);
    w.registry
        .register(kernos_tools::sys::Users::with_utmp(&file));
    let out = run(&w, "sys.users", json!({}));
    assert_eq!(out.rows.len(), 1, "{:?}", out.rows);
    let r = &out.rows[0];
    assert_eq!(r["user"], "ann");
    assert_eq!(r["tty"], "pts/7");
    assert_eq!(r["host"], "192.0.2.9");
    assert_eq!(r["login"], 1_700_000_000);
    assert_eq!(r["pid"], std::process::id());
    assert!(out.summary.unwrap().contains("1 session of 1 user"));
    let eff = w.effects("sys.users", json!({})).unwrap();
    assert!(eff.iter().any(|e| e.target
        == Target::Path {
            path: file.clone(),
            recursive: false
        }));
    // The machine's own login records: whatever they are, the action answers.
    let real = World::new();
    let out = run(&real, "sys.users", json!({}));
    assert!(out.summary.is_some());
}

#[cfg(target_env = "gnu")]
fn write_utmp(file: &std::path::Path, user: &str, line: &str, host: &str, pid: i32, sec: i64) {
    use std::ffi::CString;
    // SAFETY: zeroed utmpx is valid; the strings fit their arrays.
    let mut u: libc::utmpx = unsafe { std::mem::zeroed() };
    u.ut_type = libc::USER_PROCESS;
    u.ut_pid = pid;
    for (dst, src) in [
        (&mut u.ut_user[..], user),
        (&mut u.ut_line[..], line),
        (&mut u.ut_host[..], host),
    ] {
        for (d, s) in dst.iter_mut().zip(src.bytes()) {
            *d = s as libc::c_char;
        }
    }
    let id = line.as_bytes();
    for (i, b) in id.iter().rev().take(4).enumerate() {
        u.ut_id[i] = *b as libc::c_char;
    }
    u.ut_tv.tv_sec = sec as _;
    let c = CString::new(file.to_str().unwrap()).unwrap();
    // SAFETY: glibc's utmp functions on our own file; only this test uses them in this binary.
    unsafe {
        libc::utmpxname(c.as_ptr());
        libc::setutxent();
        assert!(!libc::pututxline(&u).is_null());
        libc::endutxent();
    }
}
