//! The log's signing keys on disk: one Ed25519 and one ML-DSA-44 key per generation, with
//! rotation that keeps the old public keys (retired, with an overlap window) so checkpoints
//! signed before a rotation still verify.
//!
//! Layout of the key directory (mode 0700, created on first use):
//!
//! - `keys.json` (0600): the log's name and every generation's public keys, `created_at`,
//!   and for retired generations `retired_at` and `not_after` (end of the overlap window).
//! - `active.secret` (0600): the active generation's two 32-byte seeds (Ed25519 secret key,
//!   then the ML-DSA-44 key-generation seed ξ of FIPS 204). Nothing else is secret; retired
//!   seeds are deleted by `rotate`, so a rotated-out key cannot sign any more.
//!
//! A key file readable by group or others is refused with the `chmod` to run: a secret that
//! others could read may already be copied, and signing with it silently would hide that.

use std::fs;
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use ed25519_dalek::Signer as _;
use fips204::ml_dsa_44;
use fips204::traits::{KeyGen, SerDes, Signer as _};

use crate::error::{Alg, Result, TlogError};
use crate::note::{TrustedKeys, VerifierKey};

const KEYS_FILE: &str = "keys.json";
const SECRET_FILE: &str = "active.secret";
/// A rotation writes the new secret here first; see [`KeySet::rotate`].
const PENDING_SECRET: &str = "active.secret.new";
const FORMAT: &str = "kernos-tlog-keys/v1";

/// The overlap window `rotate` gives a retired key by default: a day, long enough for
/// checkpoints signed just before a rotation to be fetched and checked.
pub const DEFAULT_OVERLAP_S: u64 = 24 * 3600;

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct KeysFile {
    format: String,
    name: String,
    generations: Vec<Generation>,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Generation {
    created_at: u64,
    retired_at: Option<u64>,
    not_after: Option<u64>,
    ed25519: String,
    mldsa44: String,
}

/// The active generation's secret keys.
struct Secret {
    /// What `active.secret` holds; wiped from memory on drop.
    seeds: zeroize::Zeroizing<[u8; 64]>,
    ed: ed25519_dalek::SigningKey,
    ed_public: [u8; 32],
    /// The ML-DSA-44 key and its public key, generated from the seed on first use: key
    /// generation is most of opening the keys (about 30 ms of a daemon's start on an
    /// emulated CPU, Kernos OS under QEMU), and the first checkpoint comes later.
    ml: std::sync::OnceLock<MlKey>,
}

struct MlKey {
    private: ml_dsa_44::PrivateKey,
    public: Vec<u8>,
}

impl Secret {
    fn from_seeds(seeds: &[u8; 64]) -> Secret {
        let mut ed_seed = zeroize::Zeroizing::new([0u8; 32]);
        ed_seed.copy_from_slice(&seeds[..32]);
        let ed = ed25519_dalek::SigningKey::from_bytes(&ed_seed);
        Secret {
            seeds: zeroize::Zeroizing::new(*seeds),
            ed_public: ed.verifying_key().to_bytes(),
            ed,
            ml: std::sync::OnceLock::new(),
        }
    }

    fn ml(&self) -> &MlKey {
        self.ml.get_or_init(|| {
            let mut xi = zeroize::Zeroizing::new([0u8; 32]);
            xi.copy_from_slice(&self.seeds[32..]);
            let (pk, private) = ml_dsa_44::KG::keygen_from_seed(&xi);
            MlKey {
                private,
                public: pk.into_bytes().to_vec(),
            }
        })
    }

    fn generation(&self, now: u64) -> Generation {
        Generation {
            created_at: now,
            retired_at: None,
            not_after: None,
            ed25519: crate::hash::b64(&self.ed_public),
            mldsa44: crate::hash::b64(&self.ml().public),
        }
    }

    /// Whether these are `g`'s keys, told by the Ed25519 half: both seeds were written
    /// together, so it tells the active secret from a pending one. The ML-DSA half is checked
    /// against `g` when it is first used ([`KeySet::sign_mldsa44`]).
    fn matches(&self, g: &Generation) -> bool {
        g.ed25519 == crate::hash::b64(&self.ed_public)
    }
}

/// The log's keys: the active generation's secrets and every generation's public keys.
pub struct KeySet {
    dir: PathBuf,
    file: KeysFile,
    secret: Secret,
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeySet")
            .field("dir", &self.dir)
            .field("name", &self.file.name)
            .field("generations", &self.file.generations.len())
            .finish_non_exhaustive()
    }
}

impl KeySet {
    /// Opens the keys in `dir`, or makes a first generation named `name` (the log's origin)
    /// if there are none. `now` is Unix seconds.
    pub fn open_or_create(dir: impl Into<PathBuf>, name: &str, now: u64) -> Result<Self> {
        let dir = dir.into();
        if dir.join(KEYS_FILE).exists() {
            let ks = Self::open(dir)?;
            if ks.file.name != name {
                return Err(TlogError::KeyFile {
                    path: ks.dir.join(KEYS_FILE),
                    reason: format!(
                        "the keys are for the log {:?}, not {name:?}; use another key directory",
                        ks.file.name
                    ),
                });
            }
            return Ok(ks);
        }
        if name.is_empty() || name.contains(char::is_whitespace) || name.contains('+') {
            return Err(TlogError::BadKey {
                key: name.to_string(),
                reason: "a key name must be non-empty, without spaces or '+'".into(),
            });
        }
        fs::create_dir_all(&dir).map_err(|e| TlogError::io("create", &dir, e))?;
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))
            .map_err(|e| TlogError::io("chmod", &dir, e))?;
        let secret = Secret::from_seeds(&*fresh_seeds()?);
        write_private(&dir.join(SECRET_FILE), secret.seeds.as_slice())?;
        let file = KeysFile {
            format: FORMAT.into(),
            name: name.into(),
            generations: vec![secret.generation(now)],
        };
        write_private(&dir.join(KEYS_FILE), &serde_json::to_vec_pretty(&file)?)?;
        Ok(KeySet { dir, file, secret })
    }

    /// Opens existing keys; refuses key files others can read.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self> {
        let dir = dir.into();
        check_private(&dir, 0o700)?;
        let keys_path = dir.join(KEYS_FILE);
        check_private(&keys_path, 0o600)?;
        let bytes = fs::read(&keys_path).map_err(|e| TlogError::io("read", &keys_path, e))?;
        let file: KeysFile = serde_json::from_slice(&bytes).map_err(|e| TlogError::KeyFile {
            path: keys_path.clone(),
            reason: e.to_string(),
        })?;
        let well_formed = file.generations.iter().all(|g| {
            crate::hash::unb64(&g.ed25519).is_some_and(|k| k.len() == Alg::Ed25519.public_len())
                && crate::hash::unb64(&g.mldsa44)
                    .is_some_and(|k| k.len() == Alg::MlDsa44.public_len())
        });
        if !well_formed {
            return Err(TlogError::KeyFile {
                path: keys_path,
                reason: "a public key is not base64 of the right length; restore it from a backup"
                    .into(),
            });
        }
        let active = file
            .generations
            .last()
            .filter(|g| g.retired_at.is_none() && file.format == FORMAT)
            .ok_or_else(|| TlogError::KeyFile {
                path: keys_path.clone(),
                reason: "no active generation (or an unknown format)".into(),
            })?;
        let secret = match read_secret(&dir.join(SECRET_FILE))? {
            s if s.matches(active) => s,
            _ => {
                // A rotation stopped after recording the new keys but before moving the new
                // secret into place: finish it.
                let pending = dir.join(PENDING_SECRET);
                match pending
                    .exists()
                    .then(|| read_secret(&pending))
                    .transpose()?
                {
                    Some(s) if s.matches(active) => {
                        let to = dir.join(SECRET_FILE);
                        fs::rename(&pending, &to).map_err(|e| TlogError::io("rename", to, e))?;
                        s
                    }
                    _ => {
                        return Err(TlogError::KeyFile {
                            path: dir.join(SECRET_FILE),
                            reason: "it does not hold the active keys listed in keys.json".into(),
                        });
                    }
                }
            }
        };
        Ok(KeySet { dir, file, secret })
    }

    /// The key name (the log's origin).
    pub fn name(&self) -> &str {
        &self.file.name
    }

    /// Makes a new active generation and retires the current one at `now`; the retired keys'
    /// signatures dated up to `now + overlap_s` still verify. The retired secret is deleted.
    pub fn rotate(&mut self, now: u64, overlap_s: u64) -> Result<()> {
        let secret = Secret::from_seeds(&*fresh_seeds()?);
        let pending = self.dir.join(PENDING_SECRET);
        write_private(&pending, secret.seeds.as_slice())?;
        let mut file = self.file.clone();
        if let Some(g) = file.generations.last_mut() {
            g.retired_at = Some(now);
            g.not_after = Some(now.saturating_add(overlap_s));
        }
        file.generations.push(secret.generation(now));
        // keys.json first, then the secret: a crash in between leaves the pending secret that
        // `open` recognises by its public keys and moves into place.
        write_private(
            &self.dir.join(KEYS_FILE),
            &serde_json::to_vec_pretty(&file)?,
        )?;
        let to = self.dir.join(SECRET_FILE);
        fs::rename(&pending, &to).map_err(|e| TlogError::io("rename", to, e))?;
        self.file = file;
        self.secret = secret;
        Ok(())
    }

    /// Every generation's public keys with their rotation status: what verifiers trust.
    pub fn public(&self) -> TrustedKeys {
        let mut keys = Vec::new();
        for g in &self.file.generations {
            for (alg, b) in [(Alg::Ed25519, &g.ed25519), (Alg::MlDsa44, &g.mldsa44)] {
                keys.push(VerifierKey {
                    name: self.file.name.clone(),
                    alg,
                    // Checked when the file was loaded or written.
                    public: crate::hash::unb64(b).unwrap_or_default(),
                    retired_at: g.retired_at,
                    not_after: g.not_after,
                });
            }
        }
        TrustedKeys(keys)
    }

    /// The active keys' signed-note verifier keys (`<name>+<id>+<base64>`), Ed25519 first.
    pub fn vkeys(&self) -> Vec<String> {
        self.public()
            .0
            .iter()
            .filter(|k| k.retired_at.is_none())
            .map(VerifierKey::vkey)
            .collect()
    }

    /// The active Ed25519 key's signature over `msg` (base64) and its verifier key: for
    /// records outside the log that its keys attest (an installed skill's hash). The caller
    /// labels `msg` so it can never be read as a checkpoint.
    pub fn sign_detached(&self, msg: &[u8]) -> (String, String) {
        let (sig, key) = self.sign_ed25519(msg);
        (crate::hash::b64(&sig), key.vkey())
    }

    /// Ed25519 signature over `msg` with the active key.
    pub(crate) fn sign_ed25519(&self, msg: &[u8]) -> ([u8; 64], VerifierKey) {
        let sig = self.secret.ed.sign(msg).to_bytes();
        (
            sig,
            self.active(Alg::Ed25519, self.secret.ed_public.to_vec()),
        )
    }

    /// Hedged ML-DSA-44 signature (fresh randomness, empty context) over `msg`.
    pub(crate) fn sign_mldsa44(&self, msg: &[u8]) -> Result<(Vec<u8>, VerifierKey)> {
        let mut rnd = [0u8; 32];
        getrandom::fill(&mut rnd).map_err(TlogError::Random)?;
        let ml = self.secret.ml();
        let listed = self.file.generations.last().map(|g| g.mldsa44.as_str());
        if listed != Some(crate::hash::b64(&ml.public).as_str()) {
            return Err(TlogError::KeyFile {
                path: self.dir.join(SECRET_FILE),
                reason: "its ML-DSA-44 seed does not give the active key listed in keys.json; restore both from a backup".into(),
            });
        }
        let sig = ml
            .private
            .try_sign_with_seed(&rnd, msg, &[])
            .map_err(TlogError::Signing)?;
        Ok((sig.to_vec(), self.active(Alg::MlDsa44, ml.public.clone())))
    }

    fn active(&self, alg: Alg, public: Vec<u8>) -> VerifierKey {
        VerifierKey {
            name: self.file.name.clone(),
            alg,
            public,
            retired_at: None,
            not_after: None,
        }
    }
}

fn fresh_seeds() -> Result<zeroize::Zeroizing<[u8; 64]>> {
    let mut s = zeroize::Zeroizing::new([0u8; 64]);
    getrandom::fill(s.as_mut_slice()).map_err(TlogError::Random)?;
    Ok(s)
}

fn read_secret(path: &Path) -> Result<Secret> {
    check_private(path, 0o600)?;
    let bytes = fs::read(path).map_err(|e| TlogError::io("read", path, e))?;
    let seeds: zeroize::Zeroizing<[u8; 64]> = bytes
        .try_into()
        .map(zeroize::Zeroizing::new)
        .map_err(|_| TlogError::KeyFile {
            path: path.to_path_buf(),
            reason: "not 64 bytes; restore it from a backup or remove the key directory".into(),
        })?;
    Ok(Secret::from_seeds(&seeds))
}

/// Refuses `path` if group or others have any access to it.
fn check_private(path: &Path, fix: u32) -> Result<()> {
    let meta = fs::metadata(path).map_err(|e| TlogError::io("stat", path, e))?;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(TlogError::InsecurePermissions {
            path: path.to_path_buf(),
            mode,
            fix,
        });
    }
    Ok(())
}

/// Writes a 0600 file under a temporary name, syncs it and renames it into place.
fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    match fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(TlogError::io("remove", &tmp, e)),
    }
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| TlogError::io("create", &tmp, e))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| TlogError::io("write", &tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| TlogError::io("rename", path, e))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a panic is a failed test

    use super::*;

    #[test]
    fn a_detached_signature_verifies_with_the_active_public_key_only() {
        let d = tempfile::tempdir().unwrap();
        let ks = KeySet::open_or_create(d.path().join("keys"), "example.org/log", 1).unwrap();
        let (sig, vkey) = ks.sign_detached(b"skill attestation");
        assert!(ks.vkeys().contains(&vkey));
        let key = VerifierKey::from_vkey(&vkey).unwrap();
        let pk = ed25519_dalek::VerifyingKey::from_bytes(
            &<[u8; 32]>::try_from(key.public.as_slice()).unwrap(),
        )
        .unwrap();
        let sig = ed25519_dalek::Signature::from_bytes(
            &<[u8; 64]>::try_from(crate::hash::unb64(&sig).unwrap().as_slice()).unwrap(),
        );
        assert!(pk.verify_strict(b"skill attestation", &sig).is_ok());
        assert!(pk.verify_strict(b"another message", &sig).is_err());
    }

    #[test]
    fn a_secret_whose_ml_dsa_seed_was_altered_never_signs_with_the_wrong_key() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("keys");
        let ks = KeySet::open_or_create(&dir, "example.org/log", 1).unwrap();
        assert!(ks.sign_mldsa44(b"checkpoint").is_ok());
        let path = dir.join(SECRET_FILE);
        let mut seeds = fs::read(&path).unwrap();
        seeds[40] ^= 1;
        fs::write(&path, &seeds).unwrap();
        // The key is generated on first use, so opening still works (and Ed25519 signs) ...
        let ks = KeySet::open(&dir).unwrap();
        assert!(ks.sign_detached(b"x").0.len() > 10);
        // ... but the ML-DSA half is checked against keys.json before it signs anything.
        let err = ks.sign_mldsa44(b"checkpoint").unwrap_err();
        assert!(
            err.to_string().contains("does not give the active key"),
            "{err}"
        );
    }
}
