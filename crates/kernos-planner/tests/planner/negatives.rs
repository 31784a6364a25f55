//! What must not be planned: gibberish, weak or unsure requests for changes.

use kernos_planner::{Outcome, Suggestion};

use crate::common::{ctx, planner, validate};

const MUTATING: &[&str] = &[
    "fs.write",
    "fs.append",
    "fs.mkdir",
    "fs.copy",
    "fs.move",
    "fs.delete",
    "fs.chmod",
    "fs.archive",
    "fs.extract",
    "proc.kill",
    "svc.start",
    "svc.stop",
    "svc.restart",
    "svc.enable",
    "svc.disable",
    "pkg.install",
    "pkg.remove",
    "shell.run",
];

fn not_understood(req: &str) -> (String, Vec<Suggestion>) {
    match planner().plan(req, &ctx()) {
        Outcome::NotUnderstood {
            message,
            suggestions,
        } => {
            assert!(
                !message.contains('\n'),
                "{req}: message is not one line: {message}"
            );
            assert_eq!(suggestions.len(), 3, "{req}: {suggestions:?}");
            (message, suggestions)
        }
        other => panic!("{req:?} should not be understood, got {other:?}"),
    }
}

#[test]
fn gibberish_gets_three_suggestions() {
    for req in [
        "asdf qwer zxcv",
        "blorp the snizzle",
        "",
        "   ",
        "?!",
        "purple monkey dishwasher",
        "lorem ipsum dolor sit amet",
    ] {
        let (m, s) = not_understood(req);
        assert!(!m.is_empty());
        let actions: Vec<&str> = s.iter().map(|x| x.action.as_str()).collect();
        let mut dedup = actions.clone();
        dedup.dedup();
        assert_eq!(dedup.len(), 3, "{actions:?}");
    }
}

#[test]
fn weak_matches_never_produce_a_change() {
    for req in [
        "delet everything maybe?",
        "kil it",
        "delet old.log",
        "instal nginx",
        "restrat nginx",
        "stopp nginx",
        "maybe delete old.log",
        "perhaps kill 1234",
        "don't delete old.log",
        "never restart nginx",
        "delete everything",
        "remove all the things",
        "rm",
        "kill",
        "stop",
        "install",
        "run the tests",
        "run",
        "shred secrets.txt",
        "delete old.log or something, not sure",
        "kill the process using port 8080",
        "shut down the computer",
        "please find all python files under ~/code and count them",
        "reboot",
        "format the disk",
        "restart the computer",
        "count the lines in all python files in src",
        "find .tmp files in ./cache and delet them",
        "find big files and mvoe them to /tmp",
        "stop nginx, then strat it again",
    ] {
        match planner().plan(req, &ctx()) {
            Outcome::Plan { plan, .. } => {
                let names: Vec<String> = plan.steps.iter().map(|s| s.name()).collect();
                assert!(
                    names.iter().all(|n| !MUTATING.contains(&n.as_str())),
                    "{req:?} produced a change: {names:?}"
                );
                panic!("{req:?} should not be planned at all: {names:?}");
            }
            Outcome::Undo { .. } => panic!("{req:?} became an undo"),
            Outcome::NotUnderstood {
                message,
                suggestions,
            } => {
                assert_eq!(suggestions.len(), 3, "{req}");
                assert!(!message.contains('\n'));
            }
        }
    }
}

#[test]
fn typo_refusals_name_the_exact_word() {
    let (m, s) = not_understood("delet old.log");
    assert!(m.contains("\u{201c}delete\u{201d}"), "{m}");
    assert_eq!(s[0].action, "fs.delete");
    let (m, _) = not_understood("maybe delete old.log");
    assert!(m.contains("maybe"), "{m}");
}

#[test]
fn missing_arguments_are_named() {
    let (m, s) = not_understood("delete");
    assert!(m.contains("fs.delete") || m.contains("delete"), "{m}");
    assert_eq!(s[0].action, "fs.delete");
    let (m, _) = not_understood("restart the service");
    assert!(m.contains("service name"), "{m}");
}

#[test]
fn read_only_typos_are_tolerated_and_lower_confidence() {
    for (req, action) in [
        ("lagest files in /srv", "fs.largest"),
        ("show the biggest fils in /var/log", "fs.largest"),
        ("list runing procesess", "proc.list"),
        ("show netwrok interfaces", "net.interfaces"),
        ("how much memmory is used", "sys.memory"),
    ] {
        match planner().plan(req, &ctx()) {
            Outcome::Plan { plan, confidence } => {
                assert_eq!(plan.steps[0].name(), action, "{req}");
                assert!(confidence < 1.0, "{req}: a typo should lower confidence");
                assert!(validate(&plan).is_empty());
            }
            other => panic!("{req}: {other:?}"),
        }
    }
}

#[test]
fn every_capability_example_plans_to_its_action_and_validates() {
    for s in planner().capabilities() {
        match planner().plan(&s.example, &ctx()) {
            Outcome::Plan { plan, confidence } => {
                assert_eq!(plan.steps[0].name(), s.action, "{}", s.example);
                assert!(confidence >= 0.9, "{}: {confidence}", s.example);
                assert_eq!(plan.planner.as_deref(), Some("offline"));
                assert_eq!(plan.request.as_deref(), Some(s.example.as_str()));
                let issues = validate(&plan);
                assert!(issues.is_empty(), "{}: {issues:?}", s.example);
            }
            other => panic!("{}: {other:?}", s.example),
        }
    }
}

/// Every single-step change in the catalog and the paraphrase set, with its action word
/// misspelt by one edit, must not plan a change.
#[test]
fn misspelt_action_words_never_produce_a_change() {
    let catalog = std::fs::read_to_string(
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/intents/catalog.jsonl"),
    )
    .unwrap_or_default();
    let sets = [
        catalog.as_str(),
        include_str!("paraphrases.jsonl"),
        include_str!("holdout.jsonl"),
    ];
    let mut tried = 0;
    for line in sets
        .iter()
        .flat_map(|s| s.lines())
        .filter(|l| !l.trim().is_empty())
    {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let req = v["request"].as_str().unwrap();
        let steps: Vec<&str> = v["expect"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["step"].as_str())
            .collect();
        if steps.len() != 1 || !MUTATING.contains(&steps[0]) || steps[0] == "shell.run" {
            continue;
        }
        // The action verb of the request (4+ letters, so typo correction would apply).
        let verbs = [
            "delete",
            "remove",
            "erase",
            "move",
            "copy",
            "rename",
            "install",
            "uninstall",
            "purge",
            "restart",
            "reload",
            "start",
            "stop",
            "enable",
            "disable",
            "kill",
            "killall",
            "terminate",
            "append",
            "write",
            "overwrite",
            "create",
            "compress",
            "extract",
            "unpack",
            "unzip",
            "archive",
            "chmod",
            "duplicate",
            "mkdir",
            "decompress",
            "untar",
            "trash",
        ];
        let Some(word) = req
            .split_whitespace()
            .find(|w| verbs.contains(&w.to_lowercase().as_str()))
        else {
            continue;
        };
        let chars: Vec<char> = word.chars().collect();
        let mut variants = Vec::new();
        for i in 1..chars.len() {
            let mut d = chars.clone();
            d.remove(i);
            // Dropping a final "s" spells the singular, which is no typo.
            if !(i == chars.len() - 1 && chars[i] == 's') {
                variants.push(d.iter().collect::<String>());
            }
            if i + 1 < chars.len() {
                let mut t = chars.clone();
                t.swap(i, i + 1);
                variants.push(t.iter().collect::<String>());
            }
        }
        for typo in variants {
            if typo == word {
                continue;
            }
            let bad = req.replacen(word, &typo, 1);
            tried += 1;
            if let Outcome::Plan { plan, .. } = planner().plan(&bad, &ctx()) {
                let names: Vec<String> = plan.steps.iter().map(|s| s.name()).collect();
                assert!(
                    names.iter().all(|n| !MUTATING.contains(&n.as_str())),
                    "{bad:?} (from {req:?}) planned a change: {names:?}"
                );
            }
        }
    }
    assert!(tried > 100, "only {tried} variants");
}
