//! Opt-in: plans twenty requests against a real OpenAI-compatible server and reports, per
//! request, whether the first answer was a valid plan, the latency and the prompt tokens.
//!
//! ```sh
//! # e.g. llama.cpp's llama-server with a small model on 127.0.0.1:8080
//! KERNOS_LIVE_LLM_URL=http://127.0.0.1:8080/v1 \
//!   cargo nextest run -p kernos-planner live --no-capture
//! ```
//!
//! Optional: `KERNOS_LIVE_LLM_MODEL` (default `local`; llama-server answers with whatever it
//! serves), `KERNOS_LIVE_LLM_KIND=anthropic`, `KERNOS_LIVE_LLM_KEY_ENV=OPENAI_API_KEY` (the
//! name of the variable holding the key), `KERNOS_LIVE_LLM_RECORD=FILE` (append every answer
//! as JSON lines, the raw material of `replay.rs`). `KERNOS_LIVE_LLM=1` with
//! `KERNOS_LIVE_LLM_BASE_URL` is accepted as well. Without a URL it says why it is skipped
//! and passes.

use std::collections::BTreeMap;
use std::io::Write as _;

use kernos_llm::{LlmConfig, ProviderConfig, ProviderKind};
use kernos_planner::Outcome;
use kernos_planner::llm::{HostFacts, PlanOptions, Source};

use super::*;

/// Requests of the kinds the issue measured: single actions, diagnoses, pipelines only a
/// command line expresses. None of them is answered by the model's examples word for word.
const REQUESTS: &[&str] = &[
    "show the 5 largest files in /var/log",
    "why is nginx failing?",
    "count the distinct lines of /etc/passwd",
    "print /etc/hostname in reverse order",
    "list the files in /tmp",
    "which processes use the most memory",
    "what is listening on port 22",
    "show the last 20 lines of /var/log/syslog",
    "find files bigger than 100MB in /home",
    "how much free disk space is there",
    "md5 sum of the sorted list of file names in /etc",
    "search for TODO in ~/src",
    "show the recent commits of this repo",
    "is the ssh service running",
    "how many .conf files are in /etc",
    "show the first 10 lines of /etc/services",
    "what are my ip addresses",
    "print the second column of /etc/fstab",
    "ping example.com",
    "how long has this machine been up",
];

#[test]
fn live_plans_against_a_real_server() {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let base = var("KERNOS_LIVE_LLM_URL").or_else(|| {
        (var("KERNOS_LIVE_LLM").as_deref() == Some("1"))
            .then(|| var("KERNOS_LIVE_LLM_BASE_URL"))
            .flatten()
    });
    let Some(base) = base else {
        eprintln!(
            "live_plans_against_a_real_server skipped: set KERNOS_LIVE_LLM_URL to an \
             OpenAI-compatible server's /v1 URL"
        );
        return;
    };
    let model = var("KERNOS_LIVE_LLM_MODEL").unwrap_or_else(|| "local".into());
    let kind = match var("KERNOS_LIVE_LLM_KIND").as_deref() {
        Some("anthropic") => ProviderKind::Anthropic,
        _ => ProviderKind::OpenAi,
    };
    let cfg = LlmConfig {
        providers: vec![ProviderConfig {
            name: "live".into(),
            kind,
            base_url: Some(base),
            api_key_env: var("KERNOS_LIVE_LLM_KEY_ENV"),
            lanes: BTreeMap::from([("fast".to_owned(), model)]),
            timeout_ms: 120_000,
            ..ProviderConfig::default()
        }],
        ..LlmConfig::default()
    };
    let mut record = var("KERNOS_LIVE_LLM_RECORD").map(|p| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .unwrap()
    });
    let c = kernos_planner::llm::Cascade::new(registry(), cfg, HostFacts::detect());
    let (mut first_try, mut planned) = (0, 0);
    let mut latencies = Vec::new();
    let mut prompts = Vec::new();
    for r in REQUESTS {
        let p = c.plan(
            r,
            &ctx(),
            &PlanOptions {
                no_cache: true,
                provider: Some("live".into()),
                ..PlanOptions::default()
            },
        );
        let report = p.report.as_ref().unwrap();
        let ms: u64 = report.attempts.iter().map(|a| a.latency_ms).sum();
        let prompt = report.attempts.first().map_or(0, |a| a.usage.input_tokens);
        latencies.push(ms);
        prompts.push(prompt);
        let model_plan = matches!(p.source, Source::Model { .. });
        planned += usize::from(model_plan);
        first_try += usize::from(model_plan && report.calls == 1);
        eprintln!(
            "{r:?}: {} in {ms} ms, {} call(s), prompt {prompt} tokens, output {} tokens",
            if model_plan { "plan" } else { "NO PLAN" },
            report.calls,
            report
                .attempts
                .iter()
                .map(|a| a.usage.output_tokens)
                .sum::<u64>(),
        );
        match &p.outcome {
            Outcome::Plan { plan, .. } => {
                for s in &plan.steps {
                    eprintln!(
                        "    {} {}",
                        s.name(),
                        serde_json::Value::Object(s.args.clone())
                    );
                }
                assert!(registry().validate(plan).is_empty(), "validated");
            }
            other => eprintln!("    {other:?}"),
        }
        if let Some(f) = record.as_mut() {
            let line = serde_json::json!({
                "request": r,
                "ok": model_plan,
                "calls": report.calls,
                "latency_ms": ms,
                "prompt_tokens": prompt,
                "plan": match &p.outcome { Outcome::Plan { plan, .. } => serde_json::to_value(&plan.steps).unwrap(), _ => serde_json::Value::Null },
                "notice": p.notice,
            });
            writeln!(f, "{line}").unwrap();
        }
    }
    latencies.sort_unstable();
    prompts.sort_unstable();
    eprintln!(
        "valid on the first try: {first_try}/{n}; planned: {planned}/{n}; median latency {} ms; \
         median prompt {} tokens",
        latencies[latencies.len() / 2],
        prompts[prompts.len() / 2],
        n = REQUESTS.len()
    );
    assert!(
        planned * 10 >= REQUESTS.len() * 8,
        "the model planned only {planned} of {}",
        REQUESTS.len()
    );
}
