//! Other wordings of the catalog's requests (synonyms, word order, politeness, typos, units,
//! quoted paths, command lines, composition), none of them in the shared catalog.

use serde_json::Value;

use crate::catalog::check;

const SET: &str = concat!(
    include_str!("paraphrases.jsonl"),
    include_str!("holdout.jsonl")
);

#[test]
fn paraphrases_plan_as_expected() {
    let mut total = 0;
    let mut failures = Vec::new();
    for line in SET.lines().filter(|l| !l.trim().is_empty()) {
        let entry: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"));
        let request = entry["request"].as_str().unwrap();
        total += 1;
        if let Err(e) = check(request, entry["expect"].as_array().unwrap()) {
            failures.push(format!("{request:?}: {e}"));
        }
    }
    let passed = total - failures.len();
    println!(
        "paraphrases: {passed}/{total} ({:.1} %)",
        100.0 * passed as f64 / total as f64
    );
    for f in &failures {
        println!("  FAIL {f}");
    }
    assert!(total >= 150, "only {total} paraphrases");
    assert!(
        failures.is_empty(),
        "{} paraphrases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// "Create a file" makes an empty one by appending nothing, so a file already there keeps
/// its content; text to put in it makes it a write.
#[test]
fn creating_a_file_never_truncates_an_existing_one() {
    for request in [
        "create a file called notes.txt",
        "touch notes.txt",
        "make an empty file notes.txt",
    ] {
        let p = crate::common::plan_with(request, &crate::common::ctx());
        assert_eq!(p.steps.len(), 1, "{request}");
        assert_eq!(p.steps[0].name(), "fs.append", "{request}");
        assert_eq!(p.steps[0].args["content"], "", "{request}");
    }
    let p = crate::common::plan_with(
        "create a file greeting.txt with 'hello'",
        &crate::common::ctx(),
    );
    assert_eq!(p.steps[0].name(), "fs.write");
    assert_eq!(p.steps[0].args["content"], "hello");
}
