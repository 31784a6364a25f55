//! The journal as a transparency log inside the daemon: the live tree (fed from the hub on
//! the writer thread, one leaf per published event), the checkpoint thread (every N events or
//! T seconds, and on demand), the push of each checkpoint to a configured witness, and this
//! daemon's own witness side (`POST /v1/log/witness`). The logic is `kernos-tlog-journal`'s;
//! this module only wires it to the daemon's store, config and threads.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use kernos_core::{Actor, NewEvent};
use kernos_journal::{Journal, JournalError};
use kernos_tlog::{KeySet, b64};
use kernos_tlog_journal::witness::{Refusal, WitnessBook, refused_event, seen_event};
use kernos_tlog_journal::{
    COSIGNED_KIND, JournalConfig, LiveLog, Log, LogError, SignedCheckpoint,
    WITNESS_PUSH_REFUSED_KIND, Wake, WitnessConfig, WitnessPush, tlog_dir,
};

use crate::hub::DaemonStore;

/// What the daemon's log is built from (`[journal]` and `[witness]` of the config file).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LogOptions {
    /// `[journal]`: checkpoints and the witness to push them to.
    pub journal: JournalConfig,
    /// `[witness]`: the logs this daemon witnesses.
    pub witness: WitnessConfig,
}

/// This daemon as a witness: its cosigning keys and what it saw of each log.
pub(crate) struct WitnessSide {
    pub(crate) keys: KeySet,
    pub(crate) book: Mutex<WitnessBook>,
    pub(crate) config: WitnessConfig,
}

/// The log's state in the daemon.
pub(crate) struct Tlog {
    pub(crate) live: Arc<LiveLog>,
    /// Set when `[[witness.logs]]` lists at least one log.
    pub(crate) witness: Option<WitnessSide>,
    push: Option<WitnessPush>,
    /// The size the configured witness last cosigned (the next push proves from there).
    pushed: Mutex<u64>,
}

/// Unix seconds now.
pub(crate) fn now_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn config_err(e: impl std::fmt::Display) -> crate::ServerError {
    crate::ServerError::Config(format!("transparency log: {e}"))
}

impl Tlog {
    /// Opens the keys and tiles and catches the tree up with the journal `boot` (at its head).
    pub(crate) fn open(
        data_dir: &std::path::Path,
        opts: &LogOptions,
        boot: &Journal,
    ) -> Result<Tlog, crate::ServerError> {
        opts.journal.validate().map_err(config_err)?;
        opts.witness.validate().map_err(config_err)?;
        let origin = opts.journal.checkpoints.origin_or_default();
        let log = Log::open_in(
            data_dir,
            &opts.journal.keys_dir_for(data_dir),
            &origin,
            boot,
            now_s(),
        )
        .map_err(config_err)?;
        let witness = if opts.witness.logs.is_empty() {
            None
        } else {
            let keys = KeySet::open_or_create(
                tlog_dir(data_dir).join("witness-keys"),
                &opts.witness.name_or_default(),
                now_s(),
            )
            .map_err(config_err)?;
            Some(WitnessSide {
                keys,
                book: Mutex::new(WitnessBook::load(boot).map_err(config_err)?),
                config: opts.witness.clone(),
            })
        };
        let pushed = last_cosigned_size(boot).map_err(config_err)?;
        Ok(Tlog {
            live: Arc::new(LiveLog::new(log, &opts.journal.checkpoints)),
            witness,
            push: opts.journal.witness.clone(),
            pushed: Mutex::new(pushed),
        })
    }

    /// Signs a checkpoint now, stores it, then pushes it to the witness (if one is set; a
    /// witness that cannot be reached is logged, the checkpoint stands).
    pub(crate) fn checkpoint_now(&self, store: &DaemonStore) -> Result<SignedCheckpoint, LogError> {
        let signed = self.live.checkpoint(
            now_s(),
            |ev| store.append_now(ev).map(|_| ()).map_err(LogError::Journal),
            Actor::system(),
        )?;
        if let Some(push) = &self.push {
            match self.push_to_witness(push, &signed) {
                Ok(ev) => {
                    store.append_now(ev).map_err(LogError::Journal)?;
                }
                Err(PushError::Unreachable(e)) => tracing::warn!("witness {}: {e}", push.url),
                Err(PushError::Refused {
                    status,
                    answer,
                    detail,
                }) => {
                    tracing::error!(
                        "witness {} refused the checkpoint of size {} ({status}): {detail}",
                        push.url,
                        signed.size
                    );
                    let ev = NewEvent::new(WITNESS_PUSH_REFUSED_KIND, Actor::system()).payload(
                        serde_json::json!({
                            "witness": push.url,
                            "size": signed.size,
                            "status": status,
                            "rollback": answer["rollback"] == true,
                            "known_size": answer["known_size"],
                            "detail": detail,
                        }),
                    );
                    store.append_now(ev).map_err(LogError::Journal)?;
                }
            }
        }
        Ok(signed)
    }

    /// Rotates the log's keys while the daemon runs (the live log holds them): a new
    /// generation signs from now on, the old one's signatures dated up to `now + overlap_s`
    /// still verify. Journals `log.keys_rotated` by `actor` with the old and new vkeys.
    pub(crate) fn rotate_keys(
        &self,
        store: &DaemonStore,
        actor: Actor,
        overlap_s: u64,
    ) -> Result<(), LogError> {
        let now = now_s();
        let (origin, retired, vkeys) = self.live.with_mut(|l| -> Result<_, LogError> {
            let retired = l.keys().vkeys();
            l.rotate(now, overlap_s)?;
            Ok((l.origin().to_string(), retired, l.keys().vkeys()))
        })??;
        let ev = kernos_tlog_journal::keys_rotated_event(
            actor, &origin, &retired, &vkeys, now, overlap_s,
        );
        store.append_now(ev).map_err(LogError::Journal)?;
        Ok(())
    }

    /// Sends `signed` with a consistency proof from the size the witness last cosigned;
    /// once more from the witness's own size if it says it saw another. Returns the
    /// `log.cosigned` event to store.
    fn push_to_witness(
        &self,
        push: &WitnessPush,
        signed: &SignedCheckpoint,
    ) -> Result<NewEvent, PushError> {
        let u = PushError::Unreachable;
        let mut old = self.pushed.lock().map(|g| *g).unwrap_or(0);
        for _ in 0..2 {
            let proof = self
                .live
                .with(|l| {
                    l.tree()
                        .consistency_proof(old.min(signed.size), signed.size)
                })
                .map_err(|e| u(e.to_string()))?
                .map_err(|e| u(e.to_string()))?;
            let body = serde_json::json!({
                "checkpoint": signed.note,
                "old_size": old,
                "consistency": proof.iter().map(|h| b64(h)).collect::<Vec<_>>(),
            });
            let (status, answer) = post_json(push, &body).map_err(u)?;
            if status == 200 {
                let lines: Vec<String> = answer["cosignatures"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|v| v.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default();
                let note = with_lines(&signed.note, &lines);
                if !push.vkeys.is_empty() {
                    let keys = push
                        .vkeys
                        .iter()
                        .map(|k| kernos_tlog::WitnessKey::from_vkey(k))
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(|e| u(e.to_string()))?;
                    let ok = kernos_tlog::verify_cosignatures(&note, &keys)
                        .map_err(|e| u(format!("the witness's cosignature: {e}")))?;
                    if ok.is_empty() {
                        return Err(u(
                            "the witness answered without a cosignature by its configured keys"
                                .into(),
                        ));
                    }
                }
                if let Ok(mut g) = self.pushed.lock() {
                    *g = signed.size;
                }
                return Ok(NewEvent::new(COSIGNED_KIND, Actor::system()).payload(
                    serde_json::json!({
                        "witness": push.url,
                        "size": signed.size,
                        "cosignatures": lines,
                        "note": note,
                    }),
                ));
            }
            match answer["known_size"].as_u64() {
                Some(k)
                    if status == 409
                        && k != old
                        && k <= signed.size
                        && answer["rollback"] != true =>
                {
                    old = k
                }
                _ => {
                    let detail = answer["detail"].as_str().unwrap_or("no detail").to_string();
                    return Err(PushError::Refused {
                        status,
                        answer,
                        detail,
                    });
                }
            }
        }
        Err(u("the witness kept answering with another size".into()))
    }

    /// Checks a checkpoint pushed to this daemon as a witness; journals a larger tree or a
    /// refused rollback, and answers the cosignature lines.
    pub(crate) fn witness(
        &self,
        store: &DaemonStore,
        note: &str,
        old_size: u64,
        proof: &[String],
    ) -> Result<Vec<String>, WitnessRefused> {
        let refused = |status, detail: String| WitnessRefused {
            status,
            detail,
            known_size: None,
            rollback: false,
        };
        let Some(w) = &self.witness else {
            return Err(refused(
                404,
                "this daemon witnesses no log: add [[witness.logs]] to its config".into(),
            ));
        };
        let internal = |e: String| refused(500, e);
        let mut book = w
            .book
            .lock()
            .map_err(|_| internal("the witness book's lock was poisoned".into()))?;
        match book.check(&w.config.logs, note, old_size, proof) {
            Ok(acc) => {
                if acc.grew {
                    store
                        .append_now(seen_event(Actor::system(), &acc.origin, &acc.seen, note))
                        .map_err(|e| internal(e.to_string()))?;
                    book.record(&acc.origin, acc.seen.clone());
                }
                drop(book);
                let sigs = kernos_tlog::cosign(&w.keys, note, now_s())
                    .map_err(|e| internal(e.to_string()))?;
                let signed = kernos_tlog::add_signatures(note, &sigs)
                    .map_err(|e| internal(e.to_string()))?;
                // The lines this witness added, as they appear in the note.
                let base_lines = note.lines().count();
                Ok(signed
                    .lines()
                    .skip(base_lines)
                    .map(str::to_string)
                    .collect())
            }
            Err(r) => {
                let rollback = matches!(r, Refusal::Rollback { .. });
                let known = match &r {
                    Refusal::Stale { known_size } | Refusal::Rollback { known_size, .. } => {
                        Some(*known_size)
                    }
                    _ => None,
                };
                if rollback {
                    store
                        .append_now(refused_event(
                            Actor::system(),
                            known.unwrap_or(0),
                            &r.detail(),
                            note,
                        ))
                        .map_err(|e| internal(e.to_string()))?;
                }
                Err(WitnessRefused {
                    status: r.status(),
                    detail: r.detail(),
                    known_size: known,
                    rollback,
                })
            }
        }
    }
}

/// Why a push to the configured witness gave no cosignature.
#[derive(Debug)]
enum PushError {
    /// The witness could not be reached, or answered something unusable: logged only (the
    /// next checkpoint tries again).
    Unreachable(String),
    /// The witness answered with an error status (a 409 rollback above all): journaled.
    Refused {
        status: u16,
        answer: serde_json::Value,
        detail: String,
    },
}

/// Why this daemon, as a witness, refused a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WitnessRefused {
    /// HTTP status: 400 malformed, 403 bad signature, 404 unknown log, 409 stale or rollback.
    pub(crate) status: u16,
    /// What is wrong.
    pub(crate) detail: String,
    /// The size this witness saw last (409).
    pub(crate) known_size: Option<u64>,
    /// A rollback or fork (journaled), not a merely stale `old_size`.
    pub(crate) rollback: bool,
}

/// `note` with signature lines added at its end.
fn with_lines(note: &str, lines: &[String]) -> String {
    let mut s = note.to_string();
    for l in lines {
        s.push_str(l);
        s.push('\n');
    }
    s
}

/// POSTs `body` to the witness's `/v1/log/witness`; the status and the JSON answer.
fn post_json(
    push: &WitnessPush,
    body: &serde_json::Value,
) -> Result<(u16, serde_json::Value), String> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| e.to_string())?;
    let mut req = client
        .post(format!("{}/v1/log/witness", push.url.trim_end_matches('/')))
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(var) = &push.key_env {
        let key = std::env::var(var).map_err(|_| {
            format!("the environment variable {var} (journal.witness.key_env) is not set")
        })?;
        req = req.bearer_auth(key);
    }
    let resp = req
        .send()
        .map_err(|e| format!("cannot reach the witness: {e}"))?;
    let status = resp.status().as_u16();
    let v = resp
        .bytes()
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(serde_json::Value::Null);
    Ok((status, v))
}

/// The size the witness last cosigned, from the newest `log.cosigned` event.
fn last_cosigned_size(j: &Journal) -> Result<u64, JournalError> {
    let q = kernos_journal::Query {
        newest_first: true,
        limit: Some(1),
        ..kernos_journal::Query::kind(COSIGNED_KIND)
    };
    Ok(j.query(&q)?
        .first()
        .and_then(|e| e.payload["size"].as_u64())
        .unwrap_or(0))
}

/// Starts the log's two threads: the feeder (hashes the leaves the writer queued into the
/// tree) and the checkpoint thread (signs when [`LiveLog::wait`] says one is due), until the
/// daemon stops.
pub(crate) fn start(st: &crate::St) -> std::io::Result<Vec<std::thread::JoinHandle<()>>> {
    let live = st.tlog.live.clone();
    let feeder = std::thread::Builder::new()
        .name("kernos-tlog-leaves".into())
        .spawn(move || {
            live.feed();
            if let Some(e) = live.failure() {
                tracing::error!("transparency log: a leaf could not be added: {e}");
            }
        })?;
    let weak = Arc::downgrade(st);
    let live = st.tlog.live.clone();
    let checkpointer = std::thread::Builder::new()
        .name("kernos-tlog-checkpoint".into())
        .spawn(move || {
            loop {
                match live.wait() {
                    Wake::Stop => return,
                    Wake::Idle => {}
                    Wake::Due => {
                        let Some(st) = weak.upgrade() else { return };
                        if st.is_shutting_down() {
                            return;
                        }
                        if let Err(e) = st.tlog.checkpoint_now(&st.store) {
                            tracing::error!("cannot sign a checkpoint: {e}");
                        }
                        if let Some(e) = st.tlog.live.failure() {
                            tracing::error!("transparency log: a leaf could not be added: {e}");
                        }
                    }
                }
            }
        })?;
    Ok(vec![feeder, checkpointer])
}
