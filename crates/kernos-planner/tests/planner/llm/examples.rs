//! The worked examples compiled into the prompt (`src/llm/examples.jsonl`): the paraphrase
//! set's requests with the plans the offline planner makes for them, plus pipelines only
//! `shell.run` expresses. Regenerate after changing paraphrases or intents:
//!
//! ```sh
//! KERNOS_BLESS=1 cargo nextest run -p kernos-planner examples_file_is_current
//! ```

use kernos_planner::llm::{EXAMPLES, read_answer};
use kernos_planner::{Outcome, PlanContext, Planner};
use serde_json::{Map, Value, json};

use super::registry;

const PARAPHRASES: &str = include_str!("../paraphrases.jsonl");

/// Pipelines and one-liners no action expresses: the escape hatch, shown so a small model
/// learns what it is for.
const SHELL_EXAMPLES: &[(&str, &str)] = &[
    (
        "count the distinct lines of access.log",
        "sort access.log | uniq | wc -l",
    ),
    (
        "print the contents of notes.txt in reverse order",
        "tac notes.txt",
    ),
    (
        "show the 10 most common words in book.txt",
        "tr -s '[:space:]' '\\n' < book.txt | sort | uniq -c | sort -rn | head -10",
    ),
    (
        "md5 sum of the sorted list of files in /srv/data",
        "ls /srv/data | sort | md5sum",
    ),
    (
        "print the second column of data.csv",
        "cut -d, -f2 data.csv",
    ),
    (
        "how many lines do the .c files in src have in total",
        "cat src/*.c | wc -l",
    ),
    (
        "replace tabs with spaces in report.txt and show it",
        "expand report.txt",
    ),
];

/// `/home/u/x` → `~/x`, so examples never teach the test machine's home.
fn homeless(v: &Value, home: &str) -> Value {
    match v {
        Value::String(s) if s == home => json!("~"),
        Value::String(s) => match s.strip_prefix(&format!("{home}/")) {
            Some(rest) => json!(format!("~/{rest}")),
            None => v.clone(),
        },
        Value::Array(a) => Value::Array(a.iter().map(|x| homeless(x, home)).collect()),
        Value::Object(o) if o.contains_key("$step") => {
            json!({"step": o["$step"], "column": o.get("$field").cloned().unwrap_or(json!("path"))})
        }
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, x)| (k.clone(), homeless(x, home)))
                .collect::<Map<_, _>>(),
        ),
        other => other.clone(),
    }
}

fn generate() -> String {
    let planner = Planner::new();
    let ctx = PlanContext::new("/home/u", "/home/u/work");
    let mut out = String::new();
    for line in PARAPHRASES.lines().filter(|l| !l.trim().is_empty()) {
        let entry: Value = serde_json::from_str(line).unwrap();
        let request = entry["request"].as_str().unwrap();
        let Outcome::Plan { plan, .. } = planner.plan(request, &ctx) else {
            continue;
        };
        let steps: Vec<Value> = plan
            .steps
            .iter()
            .map(|s| json!({"action": s.name(), "args": homeless(&Value::Object(s.args.clone()), &ctx.home)}))
            .collect();
        let e = json!({"request": request, "answer": {"steps": steps}});
        out.push_str(&serde_json::to_string(&e).unwrap());
        out.push('\n');
    }
    for (request, command) in SHELL_EXAMPLES {
        let e = json!({"request": request, "answer": {"steps": [{"action": "shell.run", "args": {"command": command}}]}});
        out.push_str(&serde_json::to_string(&e).unwrap());
        out.push('\n');
    }
    out
}

#[test]
fn examples_file_is_current() {
    let want = generate();
    if std::env::var("KERNOS_BLESS").as_deref() == Ok("1") {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/llm/examples.jsonl");
        std::fs::write(path, &want).unwrap();
        return;
    }
    assert!(
        EXAMPLES == want,
        "src/llm/examples.jsonl is stale: regenerate it with KERNOS_BLESS=1 (see this file's docs)"
    );
}

#[test]
fn every_example_is_a_valid_plan() {
    let r = registry();
    let mut n = 0;
    for line in EXAMPLES.lines().filter(|l| !l.trim().is_empty()) {
        let e: Value = serde_json::from_str(line).unwrap();
        let a = read_answer(&e["answer"], &r).unwrap_or_else(|i| panic!("{line}: {i:?}"));
        assert!(
            r.validate(&a.plan).is_empty(),
            "{line}: {:?}",
            r.validate(&a.plan)
        );
        n += 1;
    }
    assert!(n >= 100, "only {n} examples");
}
