//! A skill bundle: the manifest (what it is called, its parameters and phrasings, what it
//! declares it touches, its tests) and the body (a plan template, or a script), and the
//! content hash over its canonical form that attests it.

use std::collections::BTreeMap;

use kernos_core::{EffectKind, Step};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::error::{Result, SkillError};

/// How a skill came to be, and so what it can do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A plan template made from a plan a person ran (or written by hand): only catalog steps.
    Taught,
    /// A script a model wrote for what the catalog cannot do, run in the sandbox under the
    /// policy its manifest declares.
    Generated,
}

/// The interpreter of a generated skill's script.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Language {
    /// POSIX `sh`.
    Sh,
    /// `python3`.
    Python3,
}

impl Language {
    /// The command line that runs `code` (the script is an argument: nothing is written to
    /// disk, and the sandbox needs no path for it).
    pub fn argv<'a>(self, code: &'a str, name: &'a str) -> Vec<&'a str> {
        match self {
            Language::Sh => vec!["sh", "-c", code, name],
            Language::Python3 => vec!["python3", "-c", code],
        }
    }
}

/// One parameter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Param {
    /// Its name (`[a-z][a-z0-9_]*`): `{name}` in templates, `KS_NAME` in a script's
    /// environment.
    pub name: String,
    /// JSON type: `string`, `integer`, `number` or `boolean`.
    #[serde(rename = "type", default = "string")]
    pub kind: String,
    /// What it is, for people and the schema.
    #[serde(default)]
    pub description: String,
}

fn string() -> String {
    "string".into()
}

/// One test of a generated skill, run in the sandbox before the skill can be validated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestCase {
    /// Its name.
    pub name: String,
    /// Arguments; `{work}` in a string is the test's own fresh directory.
    #[serde(default)]
    pub args: Map<String, Value>,
    /// Files to create first, relative to `{work}`, with their content.
    #[serde(default)]
    pub files: BTreeMap<String, String>,
    /// Exit status expected (default 0).
    #[serde(default)]
    pub expect_exit: i32,
    /// Text standard output must contain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_stdout: Option<String>,
    /// Files (relative to `{work}`) that must exist afterwards.
    #[serde(default)]
    pub expect_files: Vec<String>,
}

/// What a skill is, declares and promises.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Its name (`[a-z][a-z0-9_-]*`, at most 40 characters).
    pub name: String,
    /// Version in the store (1, 2, …); the store assigns it.
    #[serde(default)]
    pub version: u32,
    /// One line saying what it does.
    pub summary: String,
    /// Taught or generated.
    pub kind: Kind,
    /// Its parameters.
    #[serde(default)]
    pub params: Vec<Param>,
    /// Sentences the offline planner understands as this skill, with `{param}` slots.
    #[serde(default)]
    pub phrasings: Vec<String>,
    /// Generated: the effect kinds it declares.
    #[serde(default)]
    pub effects: Vec<EffectKind>,
    /// Generated: paths it may read (`{param}` allowed).
    #[serde(default)]
    pub read: Vec<String>,
    /// Generated: paths it may write beneath (`{param}` allowed).
    #[serde(default)]
    pub write: Vec<String>,
    /// Generated: `host:port` peers it may reach (none: no network at all).
    #[serde(default)]
    pub network: Vec<String>,
    /// Generated: whether undo puts its declared write paths back.
    #[serde(default)]
    pub reversible: bool,
    /// Generated: the script's interpreter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<Language>,
    /// Generated: its tests.
    #[serde(default)]
    pub tests: Vec<TestCase>,
}

/// What the skill does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Body {
    /// Catalog steps with `{param}` placeholders in their arguments.
    Template {
        /// The steps.
        steps: Vec<Step>,
    },
    /// A script.
    Script {
        /// Its source.
        code: String,
    },
}

/// Manifest and body: what is hashed, validated, approved and installed as one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bundle {
    /// What it is.
    pub manifest: Manifest,
    /// What it does.
    pub body: Body,
}

/// The JSON with every object's keys sorted and no insignificant whitespace: the same bundle
/// always gives the same bytes, however its file was laid out.
pub fn canonical(v: &Value) -> String {
    kernos_core::canonical_json(v)
}

impl Bundle {
    /// The canonical bytes the hash is taken over.
    pub fn canonical(&self) -> String {
        canonical(&serde_json::to_value(self).unwrap_or(Value::Null))
    }

    /// `sha256:<hex>` of the canonical bundle: the attestation.
    pub fn hash(&self) -> String {
        let d = Sha256::digest(self.canonical().as_bytes());
        let hex: String = d.iter().map(|b| format!("{b:02x}")).collect();
        format!("sha256:{hex}")
    }

    /// The skill's name.
    pub fn name(&self) -> &str {
        &self.manifest.name
    }

    /// Checks what can be checked without running anything: names, kinds, that the body
    /// fits the kind, that every placeholder is a parameter.
    pub fn check(&self) -> Result<()> {
        let m = &self.manifest;
        check_name(&m.name)?;
        if m.summary.trim().is_empty() {
            return Err(SkillError::Invalid(format!("{} has no summary", m.name)));
        }
        let mut seen = Vec::new();
        for p in &m.params {
            if p.name.is_empty()
                || !p.name.starts_with(|c: char| c.is_ascii_lowercase())
                || !p
                    .name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            {
                return Err(SkillError::Invalid(format!(
                    "parameter {:?}: use lowercase letters, digits and _",
                    p.name
                )));
            }
            if !["string", "integer", "number", "boolean"].contains(&p.kind.as_str()) {
                return Err(SkillError::Invalid(format!(
                    "parameter {}: type {:?} is not string, integer, number or boolean",
                    p.name, p.kind
                )));
            }
            if seen.contains(&&p.name) {
                return Err(SkillError::Invalid(format!(
                    "parameter {} is listed twice",
                    p.name
                )));
            }
            seen.push(&p.name);
        }
        let known = |text: &str| -> Result<()> {
            for slot in placeholders(text) {
                if !m.params.iter().any(|p| p.name == slot) {
                    return Err(SkillError::Invalid(format!(
                        "{{{slot}}} in {text:?} is not a parameter of {}",
                        m.name
                    )));
                }
            }
            Ok(())
        };
        for p in &m.phrasings {
            known(p)?;
            // A phrasing of slots alone would take every request for this skill.
            let literal = p
                .split_whitespace()
                .any(|w| placeholders(w).is_empty() && w.chars().any(char::is_alphanumeric));
            if !literal {
                return Err(SkillError::Invalid(format!(
                    "the phrasing {p:?} has no word of its own: it would match any request"
                )));
            }
        }
        match (&m.kind, &self.body) {
            (Kind::Taught, Body::Template { steps }) => {
                if steps.is_empty() {
                    return Err(SkillError::Invalid(format!("{} has no steps", m.name)));
                }
                for s in steps {
                    for v in s.args.values() {
                        if let Value::String(t) = v {
                            known(t)?;
                        }
                    }
                }
            }
            (Kind::Generated, Body::Script { code }) => {
                if code.trim().is_empty() {
                    return Err(SkillError::Invalid(format!("{} has no code", m.name)));
                }
                if m.language.is_none() {
                    return Err(SkillError::Invalid(format!(
                        "{} does not say its language (sh or python3)",
                        m.name
                    )));
                }
                for p in m.read.iter().chain(&m.write) {
                    known(p)?;
                }
                if m.tests.is_empty() {
                    return Err(SkillError::Invalid(format!(
                        "{} has no tests: a generated skill is validated by running them",
                        m.name
                    )));
                }
            }
            (k, _) => {
                return Err(SkillError::Invalid(format!(
                    "a {k:?} skill needs a {} body",
                    if *k == Kind::Taught {
                        "template"
                    } else {
                        "script"
                    }
                )));
            }
        }
        Ok(())
    }

    /// The JSON schema of its arguments (every parameter required).
    pub fn args_schema(&self) -> Value {
        let mut props = Map::new();
        for p in &self.manifest.params {
            props.insert(
                p.name.clone(),
                serde_json::json!({"type": p.kind, "description": p.description}),
            );
        }
        let required: Vec<&str> = self
            .manifest
            .params
            .iter()
            .map(|p| p.name.as_str())
            .collect();
        serde_json::json!({
            "type": "object",
            "properties": props,
            "required": required,
            "additionalProperties": false,
        })
    }
}

/// A skill name: `[a-z][a-z0-9_-]*`, at most 40 characters.
pub fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 40
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(SkillError::Invalid(format!(
            "{name:?} is not a skill name: use lowercase letters, digits, - and _ (at most 40), starting with a letter"
        )))
    }
}

/// The `{slot}` names in `text`, in order.
pub fn placeholders(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find('{') {
        let after = &rest[i + 1..];
        let Some(j) = after.find('}') else { break };
        let name = &after[..j];
        if !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            out.push(name.to_owned());
        }
        rest = &after[j + 1..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn taught() -> Bundle {
        let mut s = Step::new("fs", "copy");
        s.args.insert("source".into(), json!("{dir}/notes.txt"));
        s.args.insert("dest".into(), json!("{dir}/notes.bak"));
        Bundle {
            manifest: Manifest {
                name: "backup-notes".into(),
                version: 1,
                summary: "copy notes.txt to notes.bak".into(),
                kind: Kind::Taught,
                params: vec![Param {
                    name: "dir".into(),
                    kind: "string".into(),
                    description: String::new(),
                }],
                phrasings: vec!["back up the notes in {dir}".into()],
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
    fn the_hash_is_of_the_content_not_the_layout() {
        let b = taught();
        let a = b.hash();
        assert!(a.starts_with("sha256:") && a.len() == 71, "{a}");
        // Same bundle from a file with another key order and whitespace: same hash.
        let pretty = serde_json::to_string_pretty(&b).unwrap();
        let v: Value = serde_json::from_str(&pretty).unwrap();
        let mut m = v.as_object().unwrap().clone();
        let body = m.remove("body").unwrap();
        let mut reordered = Map::new();
        reordered.insert("body".into(), body);
        reordered.extend(m);
        let again: Bundle = serde_json::from_value(Value::Object(reordered)).unwrap();
        assert_eq!(again.hash(), a);
        // Any change to what it does changes the hash.
        let mut changed = b.clone();
        if let Body::Template { steps } = &mut changed.body {
            steps[0].args.insert("dest".into(), json!("/etc/passwd"));
        }
        assert_ne!(changed.hash(), a);
    }

    #[test]
    fn checks_say_what_is_wrong() {
        assert!(taught().check().is_ok());
        let mut b = taught();
        b.manifest.phrasings.push("save {nothing}".into());
        assert!(b.check().unwrap_err().to_string().contains("{nothing}"));
        let mut b = taught();
        b.manifest.phrasings.push("{dir}".into());
        assert!(b.check().unwrap_err().to_string().contains("any request"));
        let mut b = taught();
        b.manifest.name = "Bad Name".into();
        assert!(b.check().is_err());
        let mut b = taught();
        b.manifest.kind = Kind::Generated;
        assert!(b.check().unwrap_err().to_string().contains("script body"));
        assert_eq!(placeholders("a {x} b {y_2} {Z} {}"), vec!["x", "y_2"]);
    }
}
