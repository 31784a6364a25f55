//! `kernos journal keys | checkpoint | prove | export | verify --checkpoints`: the journal as
//! a transparency log. Reading (prove, export, verify) works on the journal directly, daemon
//! or not, like the other journal commands; what writes (a checkpoint) goes through the daemon
//! when one runs, since SQLite has one writer and the daemon holds the live tree and keys.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use kernos_journal::{DB_FILE, Journal};
use kernos_tlog::KeySet;
use kernos_tlog_journal::cosigned::{self, CosignedStatus};
use kernos_tlog_journal::read::{self, CheckpointStatus};
use kernos_tlog_journal::{Log, tlog_dir};

use crate::cli::Global;
use crate::daemon_client as client;
use crate::render;

fn now_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The configured origin (for keys made on first use).
fn origin() -> String {
    crate::config::load_salvaged()
        .config
        .journal
        .checkpoints
        .origin_or_default()
}

/// `[journal] keys_dir`, else `<data dir>/tlog/keys`.
fn keys_dir(dir: &Path) -> PathBuf {
    crate::config::load_salvaged()
        .config
        .journal
        .keys_dir_for(dir)
}

/// The log's keys, which must exist (made by the daemon or `kernos journal keys`).
fn open_keys(dir: &Path) -> anyhow::Result<KeySet> {
    let k = keys_dir(dir);
    if !k.join("keys.json").exists() {
        bail!(
            "the journal has no log keys yet in {}: run `kernos journal keys` or `kernos journal checkpoint`",
            k.display()
        );
    }
    KeySet::open(&k).with_context(|| format!("cannot open the log's keys in {}", k.display()))
}

fn open_journal(dir: &Path) -> anyhow::Result<Journal> {
    if !dir.join(DB_FILE).exists() {
        bail!(
            "the journal is empty: nothing has been recorded in {} yet",
            dir.display()
        );
    }
    Journal::open_read_only(dir)
        .with_context(|| format!("cannot read the journal in {}", dir.display()))
}

/// `kernos journal keys [--rotate]`.
pub fn keys(g: &Global, dir: &Path, rotate: bool, overlap: u64) -> anyhow::Result<ExitCode> {
    let daemon = client::available(dir);
    let v = if rotate && daemon {
        // The daemon holds the live keys: it rotates them and journals who asked.
        let v = client::call(
            dir,
            "POST",
            "/v1/log/keys/rotate",
            Some(&serde_json::json!({"overlap_s": overlap})),
        )?
        .ok()?
        .json()?;
        eprintln!(
            "rotated (by the daemon): new keys sign from now on; checkpoints by the old ones dated up to {overlap} s from now still verify"
        );
        v
    } else if daemon {
        client::call(dir, "GET", "/v1/log/keys", None)?
            .ok()?
            .json()?
    } else {
        kernos_journal::create_private_dir(dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        kernos_journal::create_private_dir(&tlog_dir(dir))?;
        let mut ks = KeySet::open_or_create(keys_dir(dir), &origin(), now_s())?;
        if rotate {
            let (now, retired) = (now_s(), ks.vkeys());
            ks.rotate(now, overlap)?;
            // Journaled as the daemon does it, so an auditor sees every rotation.
            let mut j = Journal::open(dir)
                .with_context(|| format!("cannot open the journal in {}", dir.display()))?;
            j.append(&kernos_tlog_journal::keys_rotated_event(
                kernos_core::Actor::current_user(),
                ks.name(),
                &retired,
                &ks.vkeys(),
                now,
                overlap,
            ))?;
            eprintln!(
                "rotated: new keys sign from now on; checkpoints by the old ones dated up to {overlap} s from now still verify"
            );
        }
        serde_json::json!({
            "origin": ks.name(),
            "vkeys": ks.vkeys(),
            "keys": ks.public(),
        })
    };
    if g.json {
        render::json_line(&v)?;
    } else {
        for k in v["vkeys"].as_array().into_iter().flatten() {
            println!("{}", k.as_str().unwrap_or_default());
        }
        for k in v["witness_vkeys"].as_array().into_iter().flatten() {
            println!("witness {}", k.as_str().unwrap_or_default());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `kernos journal checkpoint`.
pub fn checkpoint(g: &Global, dir: &Path) -> anyhow::Result<ExitCode> {
    let (size, note) = if client::available(dir) {
        let v = client::call(dir, "POST", "/v1/log/checkpoint", None)?
            .ok()?
            .json()?;
        (
            v["size"].as_u64().unwrap_or(0),
            v["note"].as_str().unwrap_or_default().to_string(),
        )
    } else {
        kernos_journal::create_private_dir(dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let mut j = Journal::open(dir)
            .with_context(|| format!("cannot open the journal in {}", dir.display()))?;
        let mut log = Log::open_in(dir, &keys_dir(dir), &origin(), &j, now_s())?;
        let signed = log.checkpoint(now_s())?;
        j.append(&signed.event(kernos_core::Actor::current_user()))?;
        (signed.size, signed.note)
    };
    if g.json {
        render::json_line(&serde_json::json!({"size": size, "note": note}))?;
    } else {
        print!("{note}");
    }
    Ok(ExitCode::SUCCESS)
}

/// `kernos journal prove SEQ [--size N]`.
pub fn prove(g: &Global, dir: &Path, seq: u64, size: Option<u64>) -> anyhow::Result<ExitCode> {
    let j = open_journal(dir)?;
    let keys = open_keys(dir)?;
    let stored = read::stored_checkpoints(&j)?;
    let cp = read::pick_checkpoint(&stored, size)?;
    let tree = read::load_tree(dir, &j)?;
    let leaf = read::leaf_hash_of(&j, seq)?;
    let proof = read::prove(&tree, &keys.public(), &cp.note, seq, leaf)
        .context("the proof did not verify")?;
    if g.json {
        render::json_line(&proof)?;
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "event {seq} is leaf {} of the checkpoint of size {} (root {}), signed Ed25519 + ML-DSA-44; proof verified",
        proof.index, proof.size, proof.root
    );
    println!("leaf hash {}", proof.leaf_hash);
    for (i, h) in proof.hashes.iter().enumerate() {
        println!("proof[{i}] {h}");
    }
    println!();
    print!("{}", proof.checkpoint);
    Ok(ExitCode::SUCCESS)
}

/// `--since SEQ|TIME` as a seq.
fn since_seq(j: &Journal, since: Option<&str>) -> anyhow::Result<u64> {
    let Some(s) = since else { return Ok(1) };
    if let Ok(n) = s.parse::<u64>() {
        return Ok(n.max(1));
    }
    let t = humantime::parse_rfc3339_weak(s).with_context(|| {
        format!("--since {s:?} is neither a seq nor a time like 2026-01-31T00:00:00Z")
    })?;
    let ms = t
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    read::first_seq_since(j, ms)?.with_context(|| format!("no event since {s}"))
}

/// `kernos journal export [--since SEQ|TIME]`.
pub fn export(dir: &Path, since: Option<&str>) -> anyhow::Result<ExitCode> {
    let j = open_journal(dir)?;
    let keys = open_keys(dir)?;
    let since = since_seq(&j, since)?;
    let tree = read::load_tree(dir, &j)?;
    let bundle = read::export(&j, &tree, keys.public(), keys.name(), since)?;
    let report = kernos_tlog::verify_bundle(&bundle, &keys.public())
        .context("the bundle did not verify against this log's keys")?;
    let mut out = std::io::stdout().lock();
    out.write_all(&bundle.to_json()?)?;
    out.write_all(b"\n")?;
    eprintln!("{report}");
    Ok(ExitCode::SUCCESS)
}

/// `kernos journal verify --checkpoints [--against NOTE]`: prints one line per checkpoint;
/// true when all checked out.
pub fn verify_checkpoints(g: &Global, dir: &Path, against: &[PathBuf]) -> anyhow::Result<bool> {
    let j = open_journal(dir)?;
    let keys = open_keys(dir)?;
    let supplied = against
        .iter()
        .map(|p| std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display())))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let report = read::verify_checkpoints(&j, &keys.public(), &supplied)?;
    if g.json {
        render::json_line(&report)?;
        return Ok(report.is_ok());
    }
    for c in &report.checkpoints {
        let at = c
            .seq
            .map_or_else(|| "supplied".to_string(), |s| format!("event {s}"));
        let what = match &c.status {
            CheckpointStatus::Ok { retired_key: false } => "ok".to_string(),
            CheckpointStatus::Ok { retired_key: true } => {
                "ok (signed by a retired key inside its overlap window)".to_string()
            }
            CheckpointStatus::RotatedOut { detail } => {
                format!("SIGNED BY A ROTATED-OUT KEY: {detail}")
            }
            CheckpointStatus::BadSignature { detail } => format!("BAD SIGNATURE: {detail}"),
            CheckpointStatus::RootMismatch { journal_root } => format!(
                "REWRITTEN: the journal's root at this size is {journal_root}, not the signed one"
            ),
            CheckpointStatus::BeyondJournal { journal_size } => {
                format!("TRUNCATED: the journal has only {journal_size} events")
            }
            CheckpointStatus::Inconsistent { detail } => format!("INCONSISTENT: {detail}"),
        };
        println!("checkpoint size {:>8} ({at}): {what}", c.size);
    }
    let bad = report
        .checkpoints
        .iter()
        .filter(|c| c.status.failed())
        .count();
    if bad == 0 {
        println!(
            "ok: {} checkpoint(s) match the journal's {} events (root {})",
            report.checkpoints.len(),
            report.journal_size,
            report.root
        );
    } else {
        println!(
            "FAILED: {bad} of {} checkpoint(s) do not match the journal",
            report.checkpoints.len()
        );
    }
    Ok(report.is_ok())
}

/// `kernos journal verify --checkpoints --witness VKEY…`: one line per stored `log.cosigned`
/// event, checked against the given witness keys; true when every one carries an Ed25519 and
/// an ML-DSA-44 cosignature by them (and there is at least one).
pub fn verify_cosigned(g: &Global, dir: &Path, witness: &[String]) -> anyhow::Result<bool> {
    let keys = witness
        .iter()
        .map(|k| {
            kernos_tlog::WitnessKey::from_vkey(k)
                .with_context(|| format!("--witness {k:?} is not a witness key"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let j = open_journal(dir)?;
    let checks = cosigned::verify_cosigned(&j, &keys)?;
    let bad = checks.iter().filter(|c| c.status.failed()).count();
    let ok = bad == 0 && !checks.is_empty();
    if g.json {
        render::json_line(&serde_json::json!({"ok": ok, "cosigned": checks}))?;
        return Ok(ok);
    }
    for c in &checks {
        let what = match &c.status {
            CosignedStatus::Ok { witness, timestamp } => format!(
                "ok: cosigned by {witness} at {} (Ed25519 cosignature/v1 + ML-DSA-44)",
                render::time_ms(*timestamp as i64 * 1000)
            ),
            CosignedStatus::BadCosignature { detail } => format!("BAD COSIGNATURE: {detail}"),
            CosignedStatus::NotCosigned { detail } => format!("NOT COSIGNED: {detail}"),
        };
        println!("cosigned size {:>8} (event {}): {what}", c.size, c.seq);
    }
    if checks.is_empty() {
        println!("FAILED: the journal holds no witness cosignature (log.cosigned)");
    } else if bad == 0 {
        println!(
            "ok: {} cosigned checkpoint(s) verify with the given witness key(s)",
            checks.len()
        );
    } else {
        println!(
            "FAILED: {bad} of {} cosigned checkpoint(s) do not verify with the given witness key(s)",
            checks.len()
        );
    }
    Ok(ok)
}
