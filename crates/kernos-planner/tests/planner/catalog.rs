//! The shared request catalog: every line must plan to the expected steps and values.

use std::path::PathBuf;

use kernos_planner::Outcome;
use serde_json::Value;

use crate::common::{contains, ctx, flatten, planner, validate};

fn catalog_path() -> PathBuf {
    match std::env::var_os("KERNOS_INTENTS_DIR") {
        Some(d) => PathBuf::from(d).join("catalog.jsonl"),
        None => {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/intents/catalog.jsonl")
        }
    }
}

/// Checks one request against its expectation; `Err` says what differs.
pub fn check(request: &str, expect: &[Value]) -> Result<(), String> {
    let plan = match planner().plan(request, &ctx()) {
        Outcome::Plan { plan, .. } => plan,
        other => return Err(format!("no plan: {other:?}")),
    };
    let got: Vec<String> = plan.steps.iter().map(|s| s.name()).collect();
    let want: Vec<&str> = expect.iter().filter_map(|e| e["step"].as_str()).collect();
    if got != want {
        return Err(format!(
            "steps {got:?}, want {want:?}; plan {}",
            serde_json::to_string(&plan.steps).unwrap_or_default()
        ));
    }
    for (i, e) in expect.iter().enumerate() {
        let mut have = Vec::new();
        for v in plan.steps[i].args.values() {
            flatten(v, &mut have);
        }
        for w in e["values"].as_array().into_iter().flatten() {
            if !contains(&have, w) {
                return Err(format!(
                    "step {i} ({}) lacks {w}; args {}",
                    want[i],
                    Value::Object(plan.steps[i].args.clone())
                ));
            }
        }
    }
    let issues = validate(&plan);
    if !issues.is_empty() {
        return Err(format!("invalid plan: {issues:?}"));
    }
    Ok(())
}

#[test]
fn catalog_requests_plan_as_expected() {
    let path = catalog_path();
    let Ok(text) = std::fs::read_to_string(&path) else {
        println!(
            "catalog not found at {} (set KERNOS_INTENTS_DIR); skipping",
            path.display()
        );
        return;
    };
    let mut total = 0;
    let mut failures = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let entry: Value = serde_json::from_str(line).expect("catalog line is JSON");
        let request = entry["request"].as_str().expect("request");
        let expect = entry["expect"].as_array().expect("expect");
        total += 1;
        if let Err(e) = check(request, expect) {
            failures.push(format!("{request:?}: {e}"));
        }
    }
    let passed = total - failures.len();
    let pct = 100.0 * passed as f64 / total.max(1) as f64;
    println!("catalog: {passed}/{total} ({pct:.1} %)");
    for f in &failures {
        println!("  FAIL {f}");
    }
    assert!(total > 0, "the catalog is empty");
    assert!(
        pct >= 97.0,
        "catalog score {pct:.1} % is below 97 %: {failures:#?}"
    );
}
