//! `kernos skill new "…"`: a model writes a generated skill (manifest and script), its tests
//! run in the sandbox, failures go back to the model for at most N repairs. The loop stops
//! early when the same failure repeats (its fingerprint), and at once on a violation of the
//! sandbox: a model is never asked to find a way around its confinement.

use serde_json::Value;

use crate::bundle::{Body, Bundle, Kind, Manifest};
use crate::validate::Validation;

/// Whoever writes the module: a language model behind the router in the CLI, a script in tests.
pub trait Author {
    /// The answer to the conversation so far (`(role, text)`, `role` `user` or `assistant`;
    /// the first turn is the task), or why there is none.
    fn write(&mut self, system: &str, turns: &[(String, String)]) -> Result<String, String>;
}

/// How the loop ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Ending {
    /// Every test passed.
    Validated,
    /// The last attempt failed and no repair was left.
    Exhausted,
    /// The same failure twice in a row: repairing more would not help.
    Repeated {
        /// The failure's fingerprint.
        fingerprint: String,
    },
    /// A test hit the sandbox's walls: terminal.
    Violation(String),
    /// The model could not be asked.
    NoModel(String),
}

/// One attempt.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// The bundle the model wrote (when it could be read).
    pub bundle: Option<Bundle>,
    /// What validation found (or why the answer could not be read).
    pub failure: Option<String>,
    /// The failure's fingerprint.
    pub fingerprint: Option<String>,
}

/// The outcome.
#[derive(Debug, Clone)]
pub struct Generated {
    /// Every attempt, in order.
    pub attempts: Vec<Attempt>,
    /// How it ended.
    pub ending: Ending,
    /// The last readable bundle and its validation.
    pub last: Option<(Bundle, Validation)>,
}

/// The system prompt: what a module is, and the rules its manifest is held to.
pub const SYSTEM: &str = r#"You write one Kernos skill: a small script module run in a sandbox.
Answer with one JSON object and nothing else:
{"manifest": {"name": "lowercase-name", "summary": "one line", "kind": "generated",
  "language": "sh" | "python3",
  "params": [{"name": "dir", "type": "string", "description": "…"}],
  "phrasings": ["convert the images in {dir}"],
  "effects": ["read", "write"],
  "read": ["{dir}"], "write": ["{dir}"], "network": [],
  "reversible": true,
  "tests": [{"name": "…", "args": {"dir": "{work}"}, "files": {"a.txt": "content"},
             "expect_exit": 0, "expect_stdout": "…", "expect_files": ["a.out"]}]},
 "code": "the script"}
Rules: the script gets each argument as the environment variable KS_<NAME> (upper case) and
all of them as JSON on standard input. It may write only beneath the declared "write" paths,
read only what is declared, and use the network only to declared "host:port" peers (none:
no network). Anything else is blocked by the sandbox and ends the attempt. In tests, {work}
is a fresh directory holding the test's "files"."#;

/// Reads a model's answer: one JSON object (a fenced block is accepted) with `manifest` and
/// `code`.
pub fn read_answer(text: &str) -> Result<Bundle, String> {
    let t = text.trim();
    let t = t
        .strip_prefix("```json")
        .or_else(|| t.strip_prefix("```"))
        .map(|r| r.trim_end().trim_end_matches("```"))
        .unwrap_or(t);
    let start = t.find('{').ok_or("the answer holds no JSON object")?;
    let end = t.rfind('}').ok_or("the answer holds no JSON object")?;
    let v: Value = serde_json::from_str(&t[start..=end])
        .map_err(|e| format!("the answer is not valid JSON: {e}"))?;
    let mut manifest: Manifest = serde_json::from_value(v["manifest"].clone())
        .map_err(|e| format!("the manifest does not fit: {e}"))?;
    manifest.kind = Kind::Generated;
    let code = v["code"]
        .as_str()
        .ok_or("the answer has no \"code\" string")?
        .to_owned();
    let b = Bundle {
        manifest,
        body: Body::Script { code },
    };
    b.check().map_err(|e| e.to_string())?;
    Ok(b)
}

/// Runs the loop: ask, validate, repair at most `max_repairs` times.
pub fn generate(
    description: &str,
    author: &mut dyn Author,
    validate: &mut dyn FnMut(&Bundle) -> Validation,
    max_repairs: u32,
) -> Generated {
    let mut turns: Vec<(String, String)> = vec![(
        "user".into(),
        format!("Write a skill that does this: {description}"),
    )];
    let mut attempts = Vec::new();
    let mut last: Option<(Bundle, Validation)> = None;
    let mut previous: Option<String> = None;
    for n in 0..=max_repairs {
        let answer = match author.write(SYSTEM, &turns) {
            Ok(a) => a,
            Err(e) => {
                return Generated {
                    attempts,
                    ending: Ending::NoModel(e),
                    last,
                };
            }
        };
        turns.push(("assistant".into(), answer.clone()));
        let (failure, fingerprint) = match read_answer(&answer) {
            Err(why) => {
                let fp = format!("unreadable:{why}");
                attempts.push(Attempt {
                    bundle: None,
                    failure: Some(why.clone()),
                    fingerprint: Some(fp.clone()),
                });
                (why, fp)
            }
            Ok(bundle) => {
                let v = validate(&bundle);
                let passed = v.passed();
                let fp = v.fingerprint();
                let report = v.report();
                attempts.push(Attempt {
                    bundle: Some(bundle.clone()),
                    failure: (!passed).then(|| report.clone()),
                    fingerprint: (!passed).then(|| fp.clone()),
                });
                let violation = v.violation.clone();
                last = Some((bundle, v));
                if passed {
                    return Generated {
                        attempts,
                        ending: Ending::Validated,
                        last,
                    };
                }
                if let Some(why) = violation {
                    return Generated {
                        attempts,
                        ending: Ending::Violation(why),
                        last,
                    };
                }
                (report, fp)
            }
        };
        if previous.as_deref() == Some(fingerprint.as_str()) {
            return Generated {
                attempts,
                ending: Ending::Repeated { fingerprint },
                last,
            };
        }
        previous = Some(fingerprint);
        if n < max_repairs {
            turns.push((
                "user".into(),
                format!(
                    "It failed validation in the sandbox:\n{failure}\nAnswer with the whole corrected JSON object."
                ),
            ));
        }
    }
    Generated {
        attempts,
        ending: Ending::Exhausted,
        last,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::TestResult;

    struct Script(Vec<String>, usize);
    impl Author for Script {
        fn write(&mut self, _: &str, turns: &[(String, String)]) -> Result<String, String> {
            assert_eq!(turns.len() % 2, 1, "the model answers a user turn");
            self.1 += 1;
            self.0.get(self.1 - 1).cloned().ok_or("no more".into())
        }
    }

    fn answer(code: &str) -> String {
        serde_json::json!({"manifest": {"name": "x", "summary": "x", "kind": "generated",
            "language": "sh", "tests": [{"name": "t"}]}, "code": code})
        .to_string()
    }

    fn by_code(b: &Bundle) -> Validation {
        let Body::Script { code } = &b.body else {
            unreachable!()
        };
        let fail = |d: &str| Validation {
            tests: vec![TestResult {
                name: "t".into(),
                passed: false,
                detail: d.into(),
            }],
            violation: None,
        };
        match code.as_str() {
            "good" => Validation {
                tests: vec![],
                violation: None,
            },
            "wall" => Validation {
                violation: Some("Read-only file system".into()),
                ..fail("Read-only file system")
            },
            other => fail(other),
        }
    }

    #[test]
    fn repairs_stop_at_success_repetition_violation_or_the_limit() {
        let run = |codes: &[&str], n| {
            let mut a = Script(codes.iter().map(|c| answer(c)).collect(), 0);
            let g = generate("d", &mut a, &mut by_code, n);
            (g.ending, a.1)
        };
        assert_eq!(run(&["good"], 3), (Ending::Validated, 1));
        assert_eq!(run(&["e1", "e2", "good"], 3), (Ending::Validated, 3));
        assert!(matches!(
            run(&["e1", "e1", "good"], 3),
            (Ending::Repeated { .. }, 2)
        ));
        assert!(matches!(
            run(&["wall", "good"], 3),
            (Ending::Violation(_), 1)
        ));
        assert_eq!(run(&["e1", "e2", "e3", "good"], 2), (Ending::Exhausted, 3));
        assert!(read_answer("```json\n{\"manifest\": {}}\n```").is_err());
    }
}
