//! The skill store: per organisation, every version of every skill with its lifecycle state,
//! and a pointer to the installed version.
//!
//! ```text
//! <data_dir>/skills/<org>/<name>/<version>/bundle.json   the bundle as saved (pretty JSON)
//! <data_dir>/skills/<org>/<name>/<version>/state.json    status, validated hash, test results, approval, attestation
//! <data_dir>/skills/<org>/<name>/installed.json          the installed version and the versions installed before it
//! ```
//!
//! Versions are never rewritten: a new save or generation is a new version. Install checks
//! the bundle on disk against the hash recorded at validation; rollback only moves the pointer.
//! Every transition returns a [`Transition`] for the caller to journal (this crate has no
//! journal: the front end appends it as a `skill.*` event of the acting session).

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::bundle::{Bundle, check_name};
use crate::error::{Result, SkillError};

/// Where a version stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Saved, not (successfully) validated.
    Draft,
    /// Its tests (generated) or its plan (taught) passed; the hash is recorded.
    Validated,
    /// A person saw manifest, code, results and effects, and approved it.
    Approved,
}

/// One test's result, as validation recorded it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestResult {
    /// The test's name.
    pub name: String,
    /// Whether it passed.
    pub passed: bool,
    /// What happened, one paragraph (exit status, the relevant output).
    pub detail: String,
}

/// A signature over the attestation (the bundle's hash) with the journal's checkpoint keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Signature {
    /// The signer's verifier key (`<name>+<id>+<base64>`).
    pub key: String,
    /// Base64 Ed25519 signature over the attestation message.
    pub sig: String,
}

/// A version's lifecycle state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// Where it stands.
    pub status: Status,
    /// The hash of the bundle when it was validated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validated_hash: Option<String>,
    /// Its tests' results.
    #[serde(default)]
    pub tests: Vec<TestResult>,
    /// Who approved it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_by: Option<String>,
    /// The attestation's signature, when the journal's checkpoint keys exist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<Signature>,
    /// Where it came from: `taught`, `generated`, `import from <org>`, `hand`.
    #[serde(default)]
    pub origin: String,
}

/// The installed pointer of one skill.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Installed {
    /// The version in use.
    pub version: u32,
    /// Versions installed before, oldest first (what rollback walks back through).
    #[serde(default)]
    pub previous: Vec<u32>,
}

/// A lifecycle change the caller journals: `skill.<kind>` with this payload.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    /// Event kind, e.g. `skill.installed`.
    pub kind: String,
    /// Its payload (org, name, version, hash and what else the change has).
    pub payload: Value,
}

impl Transition {
    fn new(kind: &str, org: &str, name: &str, version: u32, hash: &str, extra: Value) -> Self {
        let mut payload = json!({"org": org, "name": name, "version": version, "hash": hash});
        if let (Some(p), Value::Object(e)) = (payload.as_object_mut(), extra) {
            p.extend(e);
        }
        Transition {
            kind: format!("skill.{kind}"),
            payload,
        }
    }
}

/// One version as listed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entry {
    /// Skill name.
    pub name: String,
    /// Version.
    pub version: u32,
    /// Its state.
    pub state: State,
    /// Whether it is the installed one.
    pub installed: bool,
    /// The bundle.
    pub bundle: Bundle,
    /// Hash of the bundle as it is on disk now.
    pub hash: String,
}

/// The store under a data directory.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

/// The message a signature is made over: the attestation, with a label so it can never be
/// taken for a checkpoint.
pub fn attestation_message(org: &str, name: &str, version: u32, hash: &str) -> String {
    format!("kernos skill attestation v1\n{org}\n{name}\n{version}\n{hash}\n")
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| SkillError::io("cannot write", &tmp, e))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| SkillError::io("cannot write", &tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| SkillError::io("cannot write", path, e))
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let bytes = fs::read(path).map_err(|e| SkillError::io("cannot read", path, e))?;
    serde_json::from_slice(&bytes).map_err(|source| SkillError::Json {
        path: path.to_owned(),
        source,
    })
}

fn mkdirs(path: &Path) -> Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(|e| SkillError::io("cannot create", path, e))
}

impl Store {
    /// The store of a data directory (`<data_dir>/skills`); nothing is created until saved.
    pub fn new(data_dir: &Path) -> Store {
        Store {
            root: data_dir.join("skills"),
        }
    }

    fn org_dir(&self, org: &str) -> Result<PathBuf> {
        // Org names come from keys and the config; still, never let one climb out.
        if org.is_empty() || org.contains('/') || org.starts_with('.') {
            return Err(SkillError::Invalid(format!(
                "{org:?} is not an organisation"
            )));
        }
        Ok(self.root.join(org))
    }

    fn skill_dir(&self, org: &str, name: &str) -> Result<PathBuf> {
        check_name(name)?;
        Ok(self.org_dir(org)?.join(name))
    }

    fn version_dir(&self, org: &str, name: &str, version: u32) -> Result<PathBuf> {
        Ok(self.skill_dir(org, name)?.join(version.to_string()))
    }

    /// The versions of a skill, ascending.
    pub fn versions(&self, org: &str, name: &str) -> Result<Vec<u32>> {
        let dir = self.skill_dir(org, name)?;
        let mut v: Vec<u32> = match fs::read_dir(&dir) {
            Ok(rd) => rd
                .flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(SkillError::io("cannot list", &dir, e)),
        };
        v.sort_unstable();
        Ok(v)
    }

    /// Saves `bundle` as a new draft version (the next number); returns it with the
    /// transition to journal.
    pub fn save_draft(
        &self,
        org: &str,
        mut bundle: Bundle,
        origin: &str,
    ) -> Result<(u32, Transition)> {
        bundle.check()?;
        let name = bundle.manifest.name.clone();
        let version = self.versions(org, &name)?.last().copied().unwrap_or(0) + 1;
        bundle.manifest.version = version;
        let dir = self.version_dir(org, &name, version)?;
        mkdirs(&dir)?;
        let pretty = serde_json::to_vec_pretty(&bundle).map_err(|source| SkillError::Json {
            path: dir.join("bundle.json"),
            source,
        })?;
        write_file(&dir.join("bundle.json"), &pretty)?;
        let state = State {
            status: Status::Draft,
            validated_hash: None,
            tests: Vec::new(),
            approved_by: None,
            signature: None,
            origin: origin.to_owned(),
        };
        self.write_state(org, &name, version, &state)?;
        let t = Transition::new(
            "drafted",
            org,
            &name,
            version,
            &bundle.hash(),
            json!({"kind": bundle.manifest.kind, "origin": origin}),
        );
        Ok((version, t))
    }

    fn write_state(&self, org: &str, name: &str, version: u32, s: &State) -> Result<()> {
        let path = self.version_dir(org, name, version)?.join("state.json");
        let bytes = serde_json::to_vec_pretty(s).map_err(|source| SkillError::Json {
            path: path.clone(),
            source,
        })?;
        write_file(&path, &bytes)
    }

    /// A version's bundle as it is on disk now.
    pub fn bundle(&self, org: &str, name: &str, version: u32) -> Result<Bundle> {
        let path = self.version_dir(org, name, version)?.join("bundle.json");
        if !path.exists() {
            return Err(SkillError::NotFound(format!("{name} v{version}")));
        }
        read_json(&path)
    }

    /// A version's state.
    pub fn state(&self, org: &str, name: &str, version: u32) -> Result<State> {
        let path = self.version_dir(org, name, version)?.join("state.json");
        if !path.exists() {
            return Err(SkillError::NotFound(format!("{name} v{version}")));
        }
        read_json(&path)
    }

    /// The installed pointer, if any.
    pub fn installed(&self, org: &str, name: &str) -> Result<Option<Installed>> {
        let path = self.skill_dir(org, name)?.join("installed.json");
        if !path.exists() {
            return Ok(None);
        }
        read_json(&path).map(Some)
    }

    /// `version`, or the newest when `None`.
    pub fn resolve(&self, org: &str, name: &str, version: Option<u32>) -> Result<u32> {
        let all = self.versions(org, name)?;
        match version {
            Some(v) if all.contains(&v) => Ok(v),
            Some(v) => Err(SkillError::NotFound(format!("{name} v{v}"))),
            None => all
                .last()
                .copied()
                .ok_or_else(|| SkillError::NotFound(name.to_owned())),
        }
    }

    /// Records the outcome of validation. Passed: validated, with the hash of the bundle as
    /// it is now. Failed: stays a draft, with the results.
    pub fn record_validation(
        &self,
        org: &str,
        name: &str,
        version: u32,
        tests: Vec<TestResult>,
        passed: bool,
    ) -> Result<Transition> {
        let bundle = self.bundle(org, name, version)?;
        let hash = bundle.hash();
        let mut state = self.state(org, name, version)?;
        state.tests = tests;
        state.status = if passed {
            Status::Validated
        } else {
            Status::Draft
        };
        state.validated_hash = passed.then(|| hash.clone());
        state.approved_by = None;
        state.signature = None;
        self.write_state(org, name, version, &state)?;
        let failed: Vec<&str> = state
            .tests
            .iter()
            .filter(|t| !t.passed)
            .map(|t| t.name.as_str())
            .collect();
        Ok(Transition::new(
            if passed {
                "validated"
            } else {
                "validation_failed"
            },
            org,
            name,
            version,
            &hash,
            json!({"tests": state.tests.len(), "failed": failed}),
        ))
    }

    /// Checks that the bundle on disk is the one validated; the hash.
    fn attested(&self, org: &str, name: &str, version: u32, state: &State) -> Result<String> {
        let Some(validated) = &state.validated_hash else {
            return Err(SkillError::State(format!(
                "{name} v{version} is a draft: it has not passed validation"
            )));
        };
        let now = self.bundle(org, name, version)?.hash();
        if &now != validated {
            return Err(SkillError::Altered {
                name: name.to_owned(),
                version,
                validated: validated.clone(),
                now,
            });
        }
        Ok(now)
    }

    /// A person approves a validated version (whose bundle must still be the one validated);
    /// `signature`, when given, signs the attestation.
    pub fn approve(
        &self,
        org: &str,
        name: &str,
        version: u32,
        by: &str,
        signature: Option<Signature>,
    ) -> Result<Transition> {
        let mut state = self.state(org, name, version)?;
        let hash = self.attested(org, name, version, &state)?;
        state.status = Status::Approved;
        state.approved_by = Some(by.to_owned());
        state.signature = signature.clone();
        self.write_state(org, name, version, &state)?;
        Ok(Transition::new(
            "approved",
            org,
            name,
            version,
            &hash,
            json!({"by": by, "signature": signature}),
        ))
    }

    /// Installs an approved version whose bundle is still the one validated: the pointer
    /// moves to it (the one before is kept for rollback). The error says why it is refused.
    pub fn install(&self, org: &str, name: &str, version: u32) -> Result<Transition> {
        let state = self.state(org, name, version)?;
        let hash = self.attested(org, name, version, &state)?;
        if state.status != Status::Approved {
            return Err(SkillError::State(format!(
                "{name} v{version} is validated but not approved: `kernos skill approve {name}` shows it for review"
            )));
        }
        let mut inst = self.installed(org, name)?.unwrap_or_default();
        if inst.version != 0 && inst.version != version {
            inst.previous.push(inst.version);
        }
        inst.version = version;
        self.write_installed(org, name, &inst)?;
        Ok(Transition::new(
            "installed",
            org,
            name,
            version,
            &hash,
            json!({"signature": state.signature}),
        ))
    }

    fn write_installed(&self, org: &str, name: &str, inst: &Installed) -> Result<()> {
        let path = self.skill_dir(org, name)?.join("installed.json");
        let bytes = serde_json::to_vec_pretty(inst).map_err(|source| SkillError::Json {
            path: path.clone(),
            source,
        })?;
        write_file(&path, &bytes)
    }

    /// Moves the pointer back to the version installed before, without rebuilding anything
    /// (that version's bundle must still match its validated hash).
    pub fn rollback(&self, org: &str, name: &str) -> Result<Transition> {
        let Some(mut inst) = self.installed(org, name)? else {
            return Err(SkillError::State(format!("{name} is not installed")));
        };
        let Some(prev) = inst.previous.pop() else {
            return Err(SkillError::State(format!(
                "{name} v{} is the first version installed: nothing to roll back to",
                inst.version
            )));
        };
        let state = self.state(org, name, prev)?;
        let hash = self.attested(org, name, prev, &state)?;
        let from = inst.version;
        inst.version = prev;
        self.write_installed(org, name, &inst)?;
        Ok(Transition::new(
            "rolled_back",
            org,
            name,
            prev,
            &hash,
            json!({"from": from}),
        ))
    }

    /// Removes one version (not the installed one), or the whole skill when `version` is
    /// `None`.
    pub fn remove(&self, org: &str, name: &str, version: Option<u32>) -> Result<Transition> {
        let dir = self.skill_dir(org, name)?;
        if !dir.exists() {
            return Err(SkillError::NotFound(name.to_owned()));
        }
        match version {
            None => {
                fs::remove_dir_all(&dir).map_err(|e| SkillError::io("cannot remove", &dir, e))?;
                Ok(Transition::new("removed", org, name, 0, "", json!({})))
            }
            Some(v) => {
                if self.installed(org, name)?.is_some_and(|i| i.version == v) {
                    return Err(SkillError::State(format!(
                        "{name} v{v} is installed: roll back or remove the whole skill"
                    )));
                }
                let hash = self.bundle(org, name, v)?.hash();
                let vd = self.version_dir(org, name, v)?;
                fs::remove_dir_all(&vd).map_err(|e| SkillError::io("cannot remove", &vd, e))?;
                if let Some(mut inst) = self.installed(org, name)? {
                    inst.previous.retain(|p| *p != v);
                    self.write_installed(org, name, &inst)?;
                }
                Ok(Transition::new("removed", org, name, v, &hash, json!({})))
            }
        }
    }

    /// Every version of every skill of `org`, by name then version.
    pub fn list(&self, org: &str) -> Result<Vec<Entry>> {
        let dir = self.org_dir(org)?;
        let mut names: Vec<String> = match fs::read_dir(&dir) {
            Ok(rd) => rd
                .flatten()
                .filter(|e| e.path().is_dir())
                .filter_map(|e| e.file_name().to_str().map(str::to_owned))
                .filter(|n| check_name(n).is_ok())
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(SkillError::io("cannot list", &dir, e)),
        };
        names.sort();
        let mut out = Vec::new();
        for n in names {
            let inst = self.installed(org, &n)?;
            for v in self.versions(org, &n)? {
                let bundle = self.bundle(org, &n, v)?;
                out.push(Entry {
                    name: n.clone(),
                    version: v,
                    state: self.state(org, &n, v)?,
                    installed: inst.as_ref().is_some_and(|i| i.version == v),
                    hash: bundle.hash(),
                    bundle,
                });
            }
        }
        Ok(out)
    }

    /// The installed bundles of `org` that still match their validated hash; a skill whose
    /// bundle was altered is left out (and named in the second list, with why).
    pub fn installed_bundles(&self, org: &str) -> (Vec<Bundle>, Vec<(String, String)>) {
        let mut ok = Vec::new();
        let mut bad = Vec::new();
        let Ok(entries) = self.list(org) else {
            return (ok, bad);
        };
        for e in entries.into_iter().filter(|e| e.installed) {
            match self.attested(org, &e.name, e.version, &e.state) {
                Ok(_) => ok.push(e.bundle),
                Err(why) => bad.push((e.name, why.to_string())),
            }
        }
        (ok, bad)
    }

    /// The export file of a version: the bundle and its hash.
    pub fn export(&self, org: &str, name: &str, version: u32) -> Result<(Value, Transition)> {
        let state = self.state(org, name, version)?;
        let hash = self.attested(org, name, version, &state)?;
        let bundle = self.bundle(org, name, version)?;
        let file = json!({
            "format": EXPORT_FORMAT,
            "org": org,
            "hash": hash,
            "bundle": bundle,
            "signature": state.signature,
        });
        Ok((
            file,
            Transition::new("exported", org, name, version, &hash, json!({})),
        ))
    }

    /// Imports an export file into `org` as a new draft version, after checking that the
    /// bundle is the one whose hash the file carries. It must be validated here again.
    pub fn import(&self, org: &str, file: &Value) -> Result<(String, u32, Transition)> {
        if file["format"] != EXPORT_FORMAT {
            return Err(SkillError::Invalid(format!(
                "not a skill export (format {}, expected {EXPORT_FORMAT})",
                file["format"]
            )));
        }
        let bundle: Bundle = serde_json::from_value(file["bundle"].clone())
            .map_err(|e| SkillError::Invalid(format!("the export's bundle: {e}")))?;
        let claimed = file["hash"].as_str().unwrap_or_default();
        let now = bundle.hash();
        if now != claimed {
            return Err(SkillError::Altered {
                name: bundle.manifest.name.clone(),
                version: bundle.manifest.version,
                validated: claimed.to_owned(),
                now,
            });
        }
        let from = file["org"].as_str().unwrap_or("?").to_owned();
        let name = bundle.manifest.name.clone();
        let (version, mut t) = self.save_draft(org, bundle, &format!("import from {from}"))?;
        t.kind = "skill.imported".into();
        if let Some(p) = t.payload.as_object_mut() {
            p.insert("from_org".into(), json!(from));
            p.insert("exported_hash".into(), json!(claimed));
        }
        Ok((name, version, t))
    }
}

/// The `format` of an export file.
pub const EXPORT_FORMAT: &str = "kernos-skill-export/v1";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::{Body, Kind, Manifest};
    use kernos_core::Step;

    fn bundle(dest: &str) -> Bundle {
        let mut s = Step::new("fs", "write");
        s.args.insert("path".into(), json!(dest));
        s.args.insert("content".into(), json!("hi"));
        Bundle {
            manifest: Manifest {
                name: "hello".into(),
                version: 0,
                summary: "write hi".into(),
                kind: Kind::Taught,
                params: vec![],
                phrasings: vec![],
                effects: vec![],
                read: vec![],
                write: vec![],
                network: vec![],
                reversible: true,
                language: None,
                tests: vec![],
            },
            body: Body::Template { steps: vec![s] },
        }
    }

    #[test]
    fn lifecycle_install_rollback_and_an_altered_bundle_refused() {
        let d = tempfile::tempdir().unwrap();
        let st = Store::new(d.path());
        let (v1, t) = st.save_draft("local", bundle("/tmp/a"), "hand").unwrap();
        assert_eq!((v1, t.kind.as_str()), (1, "skill.drafted"));
        // Not validated: no approval, no install.
        assert!(st.approve("local", "hello", 1, "me", None).is_err());
        assert!(st.install("local", "hello", 1).is_err());
        st.record_validation("local", "hello", 1, vec![], true)
            .unwrap();
        assert!(
            st.install("local", "hello", 1)
                .unwrap_err()
                .to_string()
                .contains("not approved")
        );
        st.approve("local", "hello", 1, "me", None).unwrap();
        st.install("local", "hello", 1).unwrap();
        let (v2, _) = st.save_draft("local", bundle("/tmp/b"), "hand").unwrap();
        st.record_validation("local", "hello", v2, vec![], true)
            .unwrap();
        st.approve("local", "hello", v2, "me", None).unwrap();
        // Altered after approval: refused at install, with both hashes.
        let path = d.path().join("skills/local/hello/2/bundle.json");
        let text = fs::read_to_string(&path)
            .unwrap()
            .replace("/tmp/b", "/etc/x");
        fs::write(&path, text).unwrap();
        let e = st.install("local", "hello", v2).unwrap_err();
        assert!(matches!(e, SkillError::Altered { .. }), "{e}");
        assert_eq!(st.installed("local", "hello").unwrap().unwrap().version, 1);
        // Put back: installs; rollback moves the pointer back to v1.
        let text = fs::read_to_string(&path)
            .unwrap()
            .replace("/etc/x", "/tmp/b");
        fs::write(&path, text).unwrap();
        st.install("local", "hello", v2).unwrap();
        assert_eq!(st.installed_bundles("local").0[0].manifest.version, 2);
        let t = st.rollback("local", "hello").unwrap();
        assert_eq!(t.payload["from"], 2);
        assert_eq!(st.installed("local", "hello").unwrap().unwrap().version, 1);
        assert!(st.rollback("local", "hello").is_err());
        // Other organisations see none of it.
        assert!(st.list("acme").unwrap().is_empty());
    }

    #[test]
    fn export_and_import_check_the_hash() {
        let d = tempfile::tempdir().unwrap();
        let st = Store::new(d.path());
        st.save_draft("local", bundle("/tmp/a"), "hand").unwrap();
        assert!(
            st.export("local", "hello", 1).is_err(),
            "drafts are not exported"
        );
        st.record_validation("local", "hello", 1, vec![], true)
            .unwrap();
        let (file, _) = st.export("local", "hello", 1).unwrap();
        let (name, v, t) = st.import("acme", &file).unwrap();
        assert_eq!(
            (name.as_str(), v, t.kind.as_str()),
            ("hello", 1, "skill.imported")
        );
        assert_eq!(st.state("acme", "hello", 1).unwrap().status, Status::Draft);
        let mut bad = file.clone();
        bad["bundle"]["body"]["steps"][0]["args"]["path"] = json!("/etc/shadow");
        assert!(matches!(
            st.import("acme", &bad).unwrap_err(),
            SkillError::Altered { .. }
        ));
    }
}
