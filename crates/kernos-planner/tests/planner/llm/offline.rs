//! With no provider configured, or every provider down, the cascade's answer is exactly the
//! offline planner's — over the shared intents catalog, the paraphrases and the refusals.

use kernos_llm::{LlmConfig, StructuredMode};
use kernos_planner::llm::{CacheUse, PlanOptions, Source};
use serde_json::Value;

use super::*;
use crate::common::planner;
use kernos_llm::testing::closed_port_url;

fn requests() -> Vec<String> {
    let catalog = std::fs::read_to_string(
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/intents/catalog.jsonl"),
    )
    .unwrap_or_default();
    let set = format!(
        "{catalog}\n{}{}",
        include_str!("../paraphrases.jsonl"),
        include_str!("../holdout.jsonl")
    );
    let mut out: Vec<String> = set
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| v["request"].as_str().map(str::to_owned))
        .collect();
    out.extend(
        [
            NGINX,
            "free up space on this box",
            "configure the firewall to allow ssh",
            "delet old.log",
            "maybe remove the cache",
            "undo that",
            "",
        ]
        .map(String::from),
    );
    out
}

#[test]
fn no_provider_configured_is_identical_to_offline() {
    let c = cascade(LlmConfig::default());
    assert!(!c.has_model());
    let reqs = requests();
    assert!(reqs.len() > 300, "{}", reqs.len());
    for r in &reqs {
        let p = c.plan(r, &ctx(), &PlanOptions::default());
        assert_eq!(p.outcome, planner().plan(r, &ctx()), "{r}");
        assert_eq!((p.source, p.cache), (Source::Offline, CacheUse::NotUsed));
        assert!(p.notice.is_none() && p.report.is_none());
    }
}

#[test]
fn every_provider_down_is_identical_to_offline() {
    let mut cfg = config(vec![
        provider("a", &closed_port_url(), StructuredMode::Auto),
        provider("b", &closed_port_url(), StructuredMode::Auto),
    ]);
    cfg.retry.max_attempts = 1;
    let c = cascade(cfg);
    let mut asked = 0;
    for r in requests() {
        let p = c.plan(&r, &ctx(), &PlanOptions::default());
        assert_eq!(p.outcome, planner().plan(&r, &ctx()), "{r}");
        assert_eq!(p.source, Source::Offline);
        if let Some(report) = &p.report {
            asked += 1;
            let n = p.notice.as_deref().unwrap();
            assert!(
                n.contains("every language-model provider failed")
                    && n.contains("offline planner answered"),
                "{n}"
            );
            assert_eq!(report.attempts.len(), 2);
        }
    }
    assert!(
        asked >= 20,
        "the unconfident requests went to the (dead) model: {asked}"
    );
}

#[test]
fn the_threshold_keeps_the_whole_catalog_offline() {
    use kernos_planner::Outcome;
    use kernos_planner::llm::DEFAULT_THRESHOLD;
    let catalog = std::fs::read_to_string(
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/intents/catalog.jsonl"),
    );
    let Ok(catalog) = catalog else {
        println!("catalog not found; skipping");
        return;
    };
    for l in catalog.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(l).unwrap();
        let r = v["request"].as_str().unwrap();
        if let Outcome::Plan { confidence, .. } = planner().plan(r, &ctx()) {
            assert!(confidence >= DEFAULT_THRESHOLD, "{r}: {confidence}");
        }
    }
}
