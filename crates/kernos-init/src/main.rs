//! `kernos-init`: PID 1 of a Kernos OS image, on Debian's stock kernel. It boots in timed
//! phases (mounts, hostname, modules, clock source, network, data disk, RNG), starts and
//! supervises `kernos serve` and the services the image declares, reaps every orphan, forwards
//! SIGTERM, and reboots or powers off when the daemon asks (POST /v1/system/{reboot,poweroff}).
//! It never exits: a fatal error is logged on the console and the machine reboots after a
//! delay. There is no shell: everything else goes through the daemon's API.

mod config;
mod disk;
mod log;
mod net;
mod notify;
mod supervise;
mod sys;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::json;

use crate::log::{Boot, say};
use crate::supervise::{Power, RUN_DIR, Supervisor};

/// The boot so far: its record, and what a fatal error needs (how long to show it, and the
/// data directory to leave it in for the daemon to journal at the next boot).
#[derive(Default)]
struct Booting {
    boot: Boot,
    fatal_delay: Option<Duration>,
    data_dir: Option<PathBuf>,
}

/// How long a fatal error stays on the console before the machine reboots, unless the
/// config says otherwise (`fatal_delay_s`, `kernos.fatal_delay=`).
const FATAL_DELAY: Duration = Duration::from_secs(10);

/// The file in the data directory a fatal error is left in: the daemon journals it
/// (`system.fatal`) when it next starts, then removes it.
const FATAL_RECORD: &str = "init-fatal.json";

fn main() {
    if std::process::id() != 1 {
        std::process::exit(not_pid1());
    }
    // The kernel started us as /init: take our own name, which the daemon checks (with its
    // parent's pid and KERNOS_INIT_DIR) before the reboot and power-off endpoints act.
    // SAFETY: PR_SET_NAME with a NUL-terminated name of at most 16 bytes.
    unsafe { libc::prctl(libc::PR_SET_NAME, c"kernos-init".as_ptr()) };
    std::panic::set_hook(Box::new(|info| say(&format!("PANIC: {info}"))));
    let mut b = Booting::default();
    let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| boot_and_run(&mut b)));
    match run {
        Ok(Ok(power)) => shutdown(power),
        Ok(Err(e)) => fatal(&format!("{e:#}"), &b),
        Err(_) => fatal("kernos-init panicked (see the line above)", &b),
    }
}

/// Run as an ordinary program: `--version`; `--make-orphans N`, which leaves N children
/// behind that end 300 ms after their parent, so they die as orphans PID 1 must reap (the
/// QEMU test declares it as a service and checks no zombie is left); `--exit CODE`, which
/// ends at once with CODE (a service that always fails, to watch the backoff).
fn not_pid1() -> i32 {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("--version") => {
            println!("kernos-init {}", env!("CARGO_PKG_VERSION"));
            0
        }
        // A service that always fails (the QEMU test's restart and backoff check).
        Some("--exit") => args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1),
        Some("--make-orphans") => {
            let n: u32 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1);
            for _ in 0..n {
                // SAFETY: this process is single-threaded; the child only sleeps and _exits.
                let pid = unsafe { libc::fork() };
                if pid == 0 {
                    std::thread::sleep(Duration::from_millis(300));
                    // SAFETY: ends the child without running the parent's exit handlers.
                    unsafe { libc::_exit(0) };
                }
                if pid < 0 {
                    eprintln!("fork: {}", std::io::Error::last_os_error());
                    return 1;
                }
            }
            println!("kernos-init: left {n} children to be orphaned");
            0
        }
        _ => {
            eprintln!(
                "kernos-init is PID 1 of a Kernos OS image: the kernel starts it (see the README's \"Kernos OS\" section). Options when run otherwise: --version, --make-orphans N, --exit CODE"
            );
            2
        }
    }
}

fn boot_and_run(b: &mut Booting) -> Result<Power> {
    b.boot.kernel_ms = log::boottime_ms();
    let boot = &mut b.boot;
    boot.phase("mount", || sys::mount_early().map(|d| ((), d)))
        .context("the early mounts failed")?;
    sys::attach_console();
    // Ctrl-alt-del becomes SIGINT to us (a clean reboot) instead of an immediate one.
    sys::disable_cad();
    say(&format!(
        "kernos-init {} started {} ms after the kernel",
        env!("CARGO_PKG_VERSION"),
        boot.kernel_ms
    ));
    boot.boot_id = boot_id();
    let mut cfg = config::InitConfig::load(std::path::Path::new(config::CONFIG_PATH))?;
    cfg.apply_cmdline(&std::fs::read_to_string("/proc/cmdline").unwrap_or_default());
    b.fatal_delay = Some(Duration::from_secs(cfg.fatal_delay_s));
    let boot = &mut b.boot;
    let hostname = cfg.hostname.clone();
    boot.phase("hostname", || sys::set_hostname(&hostname).map(|h| ((), h)))?;
    let modules = cfg.modules.clone();
    boot.phase("modules", || sys::load_modules(&modules).map(|d| ((), d)))?;
    let cs = cfg.clocksource.clone();
    // A clock source the kernel refuses is not worth a reboot: it keeps its own choice.
    let _ = boot.phase("clock", || sys::clocksource(&cs).map(|d| ((), d)));
    // The disk before the network: from here on a fatal error is left on the disk for the
    // daemon to journal at the next boot.
    let (dev, mkfs) = (cfg.data_disk.clone(), cfg.mkfs.clone());
    let persistent = boot.phase("disk", || disk::mount_data(dev.as_deref(), &mkfs))?;
    let data_dir = cfg.data_dir.clone();
    boot.phase("datadir", || {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&data_dir)
            .with_context(|| format!("cannot create {}", data_dir.display()))?;
        Ok(((), data_dir.display().to_string()))
    })?;
    b.data_dir = persistent.then(|| data_dir.clone());
    let boot = &mut b.boot;
    // The kernel's own entropy (jitter, RDRAND) suffices to boot; a failed seed is a warning.
    let _ = boot.phase("rng", || disk::credit_seed().map(|d| ((), d)));
    let net = cfg.network.clone();
    boot.phase("network", || net::bring_up(&net).map(|d| ((), d)))
        .context("the network is how this machine is managed; without it there is no API")?;
    std::fs::create_dir_all(RUN_DIR).with_context(|| format!("cannot create {RUN_DIR}"))?;
    let record = json!({
        "boot_id": boot.boot_id,
        "hostname": cfg.hostname,
        "kernel": sys::kernel_release(),
        "kernel_ms": boot.kernel_ms,
        "init_ms": log::boottime_ms().saturating_sub(boot.kernel_ms),
        "persistent": persistent,
        "phases": boot.phases,
    });
    supervise::write_atomic(
        &std::path::Path::new(RUN_DIR).join("boot.json"),
        serde_json::to_string_pretty(&record)?.as_bytes(),
    )
    .with_context(|| format!("cannot write {RUN_DIR}/boot.json"))?;
    say(&format!(
        "boot phases done in {} ms (kernel {} ms); PID 1 RSS {} kB; starting the daemon",
        log::boottime_ms().saturating_sub(boot.kernel_ms),
        boot.kernel_ms,
        own_rss_kb()
    ));
    // The credited seed is replaced once the daemon is ready: writing and syncing it is
    // ~40-60 ms under TCG that the daemon's start does not need. A crash before then leaves
    // the old seed to be credited again at the next boot (mixed with that boot's own
    // entropy), the same window systemd-random-seed leaves while other units start.
    Ok(Supervisor::new(&cfg, boot.boot_id.clone())
        .after_daemon_ready(|| match disk::save_seed() {
            Ok(()) => say("new RNG seed saved"),
            Err(e) => say(&format!("cannot save a new RNG seed: {e:#}")),
        })
        .run())
}

fn boot_id() -> String {
    let mut b = [0u8; 16];
    // SAFETY: writable buffer; GRND_INSECURE never blocks early in boot (an id, not a key).
    unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), libc::GRND_INSECURE) };
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn own_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

/// Stops everything, saves the RNG seed, syncs, unmounts, then reboot(2). Never returns.
fn shutdown(power: Power) -> ! {
    say(&format!(
        "shutting down for {power:?}: stopping every process"
    ));
    // SAFETY: kill(-1) from PID 1 signals every other process.
    unsafe { libc::kill(-1, libc::SIGTERM) };
    let until = std::time::Instant::now() + Duration::from_secs(3);
    while std::time::Instant::now() < until && reap_all() {
        std::thread::sleep(Duration::from_millis(50));
    }
    // SAFETY: as above.
    unsafe { libc::kill(-1, libc::SIGKILL) };
    std::thread::sleep(Duration::from_millis(100));
    reap_all();
    if let Err(e) = disk::save_seed() {
        say(&format!("cannot save the RNG seed: {e:#}"));
    }
    // SAFETY: sync(2) has no preconditions.
    unsafe { libc::sync() };
    let target = c"/persist";
    // SAFETY: a valid NUL-terminated path.
    if unsafe { libc::umount2(target.as_ptr(), 0) } != 0 {
        let e = std::io::Error::last_os_error();
        say(&format!(
            "cannot unmount {}: {e}; remounting read-only",
            disk::PERSIST
        ));
        // SAFETY: remount of an existing mount point, no data.
        unsafe {
            libc::mount(
                std::ptr::null(),
                target.as_ptr(),
                std::ptr::null(),
                libc::MS_REMOUNT | libc::MS_RDONLY,
                std::ptr::null(),
            )
        };
    }
    // SAFETY: as above.
    unsafe { libc::sync() };
    say(&format!("{power:?} now"));
    reboot(match power {
        Power::Reboot => libc::RB_AUTOBOOT,
        Power::PowerOff => libc::RB_POWER_OFF,
    })
}

/// Reaps what has ended; true while other processes remain.
fn reap_all() -> bool {
    loop {
        let mut st = 0;
        // SAFETY: waitpid with a valid status pointer.
        let pid = unsafe { libc::waitpid(-1, &mut st, libc::WNOHANG) };
        if pid == 0 {
            return true;
        }
        if pid < 0 {
            return false;
        }
    }
}

fn reboot(cmd: libc::c_int) -> ! {
    // SAFETY: reboot(2) as PID 1, after sync.
    unsafe { libc::reboot(cmd) };
    say(&format!(
        "reboot(2) failed: {}",
        std::io::Error::last_os_error()
    ));
    loop {
        std::thread::sleep(Duration::from_secs(3600));
        reap_all();
    }
}

/// A fatal error: logged on the console and, once the persistent data directory is mounted,
/// left there for the daemon to journal at the next boot; then a reboot after a delay (PID 1
/// never exits: the kernel would panic).
fn fatal(msg: &str, b: &Booting) -> ! {
    let delay = b.fatal_delay.unwrap_or(FATAL_DELAY);
    log::warn_loud(&format!("FATAL: {msg}; rebooting in {} s", delay.as_secs()));
    if let Some(dir) = &b.data_dir {
        let rec = json!({
            "boot_id": b.boot.boot_id,
            "error": msg,
            "at_ms": log::boottime_ms(),
            "kernel_ms": b.boot.kernel_ms,
            "phases": b.boot.phases,
        });
        let path = dir.join(FATAL_RECORD);
        match supervise::write_atomic(&path, rec.to_string().as_bytes()) {
            Ok(()) => say(&format!(
                "the error is saved in {} for the journal",
                path.display()
            )),
            Err(e) => say(&format!("cannot save the error in {}: {e}", path.display())),
        }
    }
    let until = std::time::Instant::now() + delay;
    while std::time::Instant::now() < until {
        std::thread::sleep(Duration::from_millis(200));
        reap_all();
    }
    // SAFETY: sync(2) has no preconditions.
    unsafe { libc::sync() };
    reboot(libc::RB_AUTOBOOT)
}
