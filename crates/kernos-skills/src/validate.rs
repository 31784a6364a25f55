//! Validation of a generated skill: each of its tests runs its script in the sandbox with
//! exactly the effects its manifest declares (the test's arguments put into the declared
//! paths), in a fresh directory of its own. A test that hits the sandbox's walls — a write
//! outside the declared paths, the network when none was declared, a forbidden system call —
//! is a violation: terminal, never sent back for repair.

use kernos_core::{CancelToken, ExecRequest, ProcessRunner};
use kernos_tools::Env;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::action::{effects_of, script_env};
use crate::bundle::{Body, Bundle, Language};
use crate::store::TestResult;

/// What one validation run found.
#[derive(Debug, Clone, PartialEq)]
pub struct Validation {
    /// Each test's result.
    pub tests: Vec<TestResult>,
    /// A sandbox or policy violation, when one test hit one: what it was.
    pub violation: Option<String>,
}

impl Validation {
    /// Whether every test passed.
    pub fn passed(&self) -> bool {
        self.violation.is_none() && self.tests.iter().all(|t| t.passed)
    }

    /// The failure's fingerprint: the same failure twice gives the same one (paths of the
    /// tests' own directories and numbers are left out), so a repair loop can see it repeat.
    pub fn fingerprint(&self) -> String {
        let mut h = Sha256::new();
        for t in self.tests.iter().filter(|t| !t.passed) {
            h.update(t.name.as_bytes());
            h.update(normalise(&t.detail).as_bytes());
        }
        let d = h.finalize();
        d.iter().take(8).map(|b| format!("{b:02x}")).collect()
    }

    /// The failures as the model is told them.
    pub fn report(&self) -> String {
        let mut s = String::new();
        for t in self.tests.iter().filter(|t| !t.passed) {
            s.push_str(&format!("test {} failed: {}\n", t.name, t.detail));
        }
        s
    }
}

/// `text` without what differs between two runs of the same failure.
fn normalise(text: &str) -> String {
    text.split_whitespace()
        .map(|w| {
            if w.contains("/tmp/") || w.contains(".tmp") {
                "<path>".to_owned()
            } else {
                // Long numbers (pids, times, sizes) differ between runs; an exit status or a
                // line number is part of the failure.
                let mut out = String::new();
                let mut run = String::new();
                for c in w.chars().chain(std::iter::once(' ')) {
                    if c.is_ascii_digit() {
                        run.push(c);
                        continue;
                    }
                    if run.len() >= 3 {
                        out.push('#');
                    } else {
                        out.push_str(&run);
                    }
                    run.clear();
                    if c != ' ' {
                        out.push(c);
                    }
                }
                out
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// What the sandbox says when a program reaches past its confinement (Landlock and the
/// read-only mounts answer EACCES/EROFS, the empty network namespace ENETUNREACH, seccomp
/// EPERM or SIGSYS), as the shell and Python print it.
const WALLS: &[&str] = &[
    "Read-only file system",
    "Permission denied",
    "Operation not permitted",
    "Network is unreachable",
    "[Errno 13]",
    "[Errno 30]",
    "[Errno 101]",
    "[Errno 1]",
];

/// Runs every test of `bundle` through `runner`. `env` is the session's environment (its
/// credential stores and data directory stay hidden from the script).
pub fn validate(bundle: &Bundle, runner: &dyn ProcessRunner, env: &Env) -> Validation {
    let mut tests = Vec::new();
    let m = &bundle.manifest;
    let (Body::Script { code }, Some(language)) = (&bundle.body, m.language) else {
        return Validation {
            tests: vec![TestResult {
                name: "manifest".into(),
                passed: false,
                detail: "a generated skill needs a script and its language".into(),
            }],
            violation: None,
        };
    };
    for t in &m.tests {
        let result = run_test(bundle, code, language, t, runner, env);
        let violation = result.1.clone();
        tests.push(result.0);
        if let Some(v) = violation {
            return Validation {
                tests,
                violation: Some(v),
            };
        }
    }
    Validation {
        tests,
        violation: None,
    }
}

fn run_test(
    bundle: &Bundle,
    code: &str,
    language: Language,
    t: &crate::bundle::TestCase,
    runner: &dyn ProcessRunner,
    env: &Env,
) -> (TestResult, Option<String>) {
    let fail = |detail: String| TestResult {
        name: t.name.clone(),
        passed: false,
        detail,
    };
    let dir = match tempfile::Builder::new()
        .prefix("kernos-skill-test")
        .tempdir()
    {
        Ok(d) => d,
        Err(e) => return (fail(format!("cannot make a test directory: {e}")), None),
    };
    let work = dir.path().to_string_lossy().into_owned();
    for (rel, content) in &t.files {
        let p = dir.path().join(rel);
        if rel.starts_with('/') || rel.split('/').any(|c| c == "..") {
            return (
                fail(format!("test file {rel:?} must be inside {{work}}")),
                None,
            );
        }
        if let Some(parent) = p.parent() {
            let _ = std::fs::create_dir_all(parent);
        }
        if let Err(e) = std::fs::write(&p, content) {
            return (fail(format!("cannot create {rel}: {e}")), None);
        }
    }
    let args: Map<String, Value> = t
        .args
        .iter()
        .map(|(k, v)| {
            let v = match v {
                Value::String(s) => Value::String(s.replace("{work}", &work)),
                other => other.clone(),
            };
            (k.clone(), v)
        })
        .collect();
    let mut test_env = env.clone();
    test_env.cwd = dir.path().to_path_buf();
    let effects = effects_of(bundle, &args, &|p| test_env.resolve(p));
    let mut policy = kernos_tools::sandbox::policy_for(&effects, &test_env);
    policy.cwd = Some(dir.path().to_path_buf());
    policy.limits.wall_ms = Some(30_000);
    let argv = language.argv(code, &bundle.manifest.name);
    let mut req = ExecRequest::new(&argv, policy);
    req.stdin = Some(serde_json::to_vec(&args).unwrap_or_default());
    req.env = script_env(&args);
    let out = match runner.run(&req, &CancelToken::new()) {
        Ok(o) => o,
        Err(e) => {
            // The sandbox itself refused: never something a repair may try to get around.
            let why = format!("the sandbox refused to run it: {e}");
            return (fail(why.clone()), Some(why));
        }
    };
    let stdout = out.stdout_text();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let tail = |s: &str| {
        let s = s.trim();
        let start = s.len().saturating_sub(800);
        let start = (start..=s.len())
            .find(|i| s.is_char_boundary(*i))
            .unwrap_or(s.len());
        s[start..].to_owned()
    };
    if out.signal == Some(31) {
        let why = "a forbidden system call (seccomp, SIGSYS)".to_owned();
        return (fail(why.clone()), Some(why));
    }
    let code_ok = out.code == Some(t.expect_exit);
    if !code_ok || out.code != Some(0) {
        if let Some(wall) = WALLS.iter().find(|w| stderr.contains(*w)) {
            let why = format!(
                "it reached past its declared effects ({wall}): {}",
                tail(&stderr)
            );
            return (fail(why.clone()), Some(why));
        }
    }
    if !code_ok {
        return (
            fail(format!(
                "exit status {:?} (expected {}); stderr: {}; stdout: {}",
                out.code,
                t.expect_exit,
                tail(&stderr),
                tail(&stdout)
            )),
            None,
        );
    }
    if let Some(want) = &t.expect_stdout {
        if !stdout.contains(want.as_str()) {
            return (
                fail(format!(
                    "standard output does not contain {want:?}; it was: {}",
                    tail(&stdout)
                )),
                None,
            );
        }
    }
    for f in &t.expect_files {
        if !dir.path().join(f).exists() {
            return (
                fail(format!("{f} was not created; stderr: {}", tail(&stderr))),
                None,
            );
        }
    }
    (
        TestResult {
            name: t.name.clone(),
            passed: true,
            detail: format!("passed ({} ms)", out.wall_ms),
        },
        None,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_failure_in_another_directory_has_the_same_fingerprint() {
        let v = |detail: &str| Validation {
            tests: vec![TestResult {
                name: "t".into(),
                passed: false,
                detail: detail.into(),
            }],
            violation: None,
        };
        let a = v("exit 1: cannot open /tmp/kernos-skill-testAb12/x.heic line 3");
        let b = v("exit 1: cannot open /tmp/kernos-skill-testZz99/x.heic line 3");
        let c = v("exit 1: syntax error near fi");
        let d = v("exit 2: cannot open /tmp/kernos-skill-testZz99/x.heic line 3");
        assert_ne!(a.fingerprint(), d.fingerprint(), "another exit status");
        assert_eq!(
            v("took 1234 ms").fingerprint(),
            v("took 98765 ms").fingerprint()
        );
        assert_eq!(a.fingerprint(), b.fingerprint());
        assert_ne!(a.fingerprint(), c.fingerprint());
    }
}
