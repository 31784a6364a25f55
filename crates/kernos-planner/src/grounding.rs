//! The last check before a plan that changes something is returned: every target of a
//! changing step must be something real or something the user wrote as such. A word of the
//! sentence the vocabulary knows ("enable", "archive") or a typo of one ("largst") never
//! becomes a service, package, process or file to change unless the machine has one so named.

use std::path::Path;

use kernos_core::{Step, StepRef};

use crate::lex::Kind;
use crate::vocab::{Class, Word};

/// What a changing step's argument names, for the grounding rule that applies to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    /// A file or directory that must already be there (deleted, moved, copied, changed).
    Existing,
    /// A service, package or process.
    Name,
    /// A process id.
    Pid,
}

/// Which argument of a step is a target, and of which kind; `creates`: the step's `path`
/// is made by it (mkdir, write), so it need not exist.
pub(crate) fn target_of(arg: &str, creates: bool) -> Option<Target> {
    match arg {
        "path" if creates => None,
        "path" | "source" | "archive" => Some(Target::Existing),
        "name" | "packages" | "unit" => Some(Target::Name),
        "pid" => Some(Target::Pid),
        _ => None,
    }
}

/// The first target of `step` that is not grounded: (the word, what it was taken for).
/// `pids`: the numbers the request wrote as process ids ("pid 4242", "process 4242",
/// "kill 4242"); a pid is grounded only by being one of them, never by a number said for
/// something else ("kill the top 3 processes" signals no pid 3).
///
/// Whether a grounded pid runs now is not checked here: a plan is made from the words and
/// must not change with what happens to run at this instant (plans are cached and compared
/// across machines). `proc.kill` looks the pid up when the plan is previewed and refuses it,
/// naming the pid, before anything is asked or signalled.
pub(crate) fn ungrounded(
    step: &Step,
    creates: bool,
    words: &[Word],
    pids: &[u32],
    cwd: &str,
) -> Option<(String, &'static str)> {
    for (arg, v) in &step.args {
        let Some(target) = target_of(arg, creates) else {
            continue;
        };
        if StepRef::from_value(v).is_some() {
            continue;
        }
        if target == Target::Pid {
            let said = v.as_u64().and_then(|n| u32::try_from(n).ok());
            if !said.is_some_and(|p| pids.contains(&p)) {
                return Some((v.to_string(), "process id"));
            }
            continue;
        }
        for value in crate::strings_of(v) {
            let ok = match target {
                Target::Existing => path_grounded(&value, words, cwd),
                Target::Name => name_grounded(&value, &step.tool, words),
                Target::Pid => true,
            };
            if !ok {
                let role = match (target, step.tool.as_str()) {
                    (Target::Existing, _) => "file or directory",
                    (Target::Name, "svc") => "service",
                    (Target::Name, "pkg") => "package",
                    (Target::Name, _) => "process",
                    (Target::Pid, _) => "process id",
                };
                return Some((value, role));
            }
        }
    }
    None
}

/// The word of the request that produced `value`, if one did verbatim.
fn word_for<'w>(value: &str, words: &'w [Word]) -> Option<&'w Word> {
    words.iter().find(|w| w.tok.raw == value)
}

/// A word the vocabulary gives a meaning (or corrected as a typo), or filler: not a name the
/// user made up.
fn is_vocabulary(w: &Word) -> bool {
    w.fuzzy.is_some() || w.lex.concept.is_some() || w.lex.class != Class::Content
}

/// Exists (relative to the working directory), or was written as a path: with `/` or `~`,
/// a file extension, quoted, named as a place ("the logs folder"), or a word that means
/// nothing else to the planner.
pub(crate) fn path_grounded(value: &str, words: &[Word], cwd: &str) -> bool {
    if exists(value, cwd) || value.contains('/') || value.starts_with('~') || has_extension(value) {
        return true;
    }
    let Some(i) = words.iter().position(|w| w.tok.raw == value) else {
        return true;
    };
    let w = &words[i];
    let place_noun = |j: usize| {
        words.get(j).is_some_and(|n| {
            matches!(
                n.tok.low.as_str(),
                "folder" | "directory" | "dir" | "file" | "subfolder" | "subdirectory"
            )
        })
    };
    // "the folder called x": "called" introduces a name, it is none.
    let naming = matches!(w.tok.low.as_str(), "called" | "named");
    matches!(w.tok.kind, Kind::Quoted | Kind::Pathy)
        || !is_vocabulary(w)
        || !naming
            && w.lex.class == Class::Content
            && (place_noun(i + 1) || i > 0 && place_noun(i - 1))
}

/// Whether `p` exists, relative to `cwd` when it is relative.
pub(crate) fn exists(p: &str, cwd: &str) -> bool {
    let path = Path::new(p);
    if path.is_absolute() {
        path.exists()
    } else if cwd.is_empty() {
        false
    } else {
        Path::new(cwd).join(path).exists()
    }
}

/// "notes.txt", "archive.tar.gz": a dot with something on both sides.
fn has_extension(p: &str) -> bool {
    p.rsplit_once('.')
        .is_some_and(|(stem, ext)| !stem.is_empty() && !ext.is_empty() && ext.len() <= 8)
}

/// A name the user quoted, the vocabulary knows as a program, is no word of the vocabulary,
/// or the machine has (a unit, an installed package, a running process).
fn name_grounded(value: &str, tool: &str, words: &[Word]) -> bool {
    let Some(w) = word_for(value, words) else {
        return true;
    };
    if w.tok.kind == Kind::Quoted || w.lex.known_name || !is_vocabulary(w) {
        return true;
    }
    match tool {
        "svc" => service_exists(value),
        "pkg" => package_installed(value),
        _ => process_exists(value),
    }
}

fn service_exists(name: &str) -> bool {
    let unit = if name.contains('.') {
        name.to_owned()
    } else {
        format!("{name}.service")
    };
    [
        "/etc/systemd/system",
        "/run/systemd/system",
        "/lib/systemd/system",
        "/usr/lib/systemd/system",
    ]
    .iter()
    .any(|d| Path::new(d).join(&unit).exists())
        || Path::new("/etc/init.d").join(name).exists()
}

fn package_installed(name: &str) -> bool {
    let info = Path::new("/var/lib/dpkg/info");
    info.join(format!("{name}.list")).exists()
        || std::fs::read_dir(info).is_ok_and(|mut d| {
            let prefix = format!("{name}:");
            d.any(|e| e.is_ok_and(|e| e.file_name().to_string_lossy().starts_with(&prefix)))
        })
}

fn process_exists(name: &str) -> bool {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return false;
    };
    dir.flatten()
        .any(|e| std::fs::read_to_string(e.path().join("comm")).is_ok_and(|c| c.trim_end() == name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lex::lex;
    use crate::vocab::Vocab;

    #[test]
    fn vocabulary_words_and_typos_are_not_names() {
        let v = Vocab::new();
        let w = v.annotate(lex("enable largst frobnicator"));
        let step = |n: &str| Step::new("svc", "enable").arg("name", n);
        assert!(ungrounded(&step("largst"), false, &w, &[], "/").is_some());
        assert!(ungrounded(&step("enable"), false, &w, &[], "/").is_some());
        assert!(ungrounded(&step("frobnicator"), false, &w, &[], "/").is_none());
    }

    #[test]
    fn a_pid_is_grounded_only_when_written_as_one() {
        let v = Vocab::new();
        let w = v.annotate(lex("kill process 4242"));
        let step = |p: u32| Step::new("proc", "kill").arg("pid", p);
        assert!(ungrounded(&step(4242), false, &w, &[4242], "/").is_none());
        let (word, role) = ungrounded(&step(3), false, &w, &[4242], "/").unwrap_or_default();
        assert_eq!((word.as_str(), role), ("3", "process id"));
    }

    #[test]
    fn paths_are_grounded_by_existence_or_by_how_they_were_written() {
        let v = Vocab::new();
        let w = v.annotate(lex("delete cache notes.txt ./x 'my file' the logs folder"));
        let dir = std::env::temp_dir();
        let cwd = dir.to_string_lossy();
        assert!(path_grounded("notes.txt", &w, &cwd));
        assert!(path_grounded("./x", &w, &cwd));
        assert!(path_grounded("my file", &w, &cwd));
        assert!(path_grounded("logs", &w, &cwd));
        assert!(!path_grounded("cache", &w, "/nonexistent-kernos-dir"));
    }
}
