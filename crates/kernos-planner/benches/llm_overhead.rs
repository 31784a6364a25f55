//! The LLM path's own cost per request, outside the model and the network: build the prompt
//! and request, encode the body, decode the server's answer, extract the JSON, read it into a
//! plan and validate it against the real catalog. Budget: ≤ 2 ms.
//!
//! Run: `cargo bench -p kernos-planner --bench llm_overhead`
//!
//! Also reported: the one-time cost per process of building the LLM planner (prompts and
//! answer formats from the registry, the catalog version), and a cache key.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kernos_llm::wire::{self, EncodeArgs, Quirks};
use kernos_llm::{Mechanism, ProviderKind, RouteOpts};
use kernos_planner::PlanContext;
use kernos_planner::llm::{Cascade, HostFacts, LlmPlanner, PlanOptions};
use kernos_tools::Registry;
use serde_json::json;

fn answer_body() -> String {
    let plan = json!({
        "steps": [
            {"action": "fs.find", "args": [
                {"name": "path", "value": "/var/log"},
                {"name": "name", "value": "*.log"},
                {"name": "older_than", "value": 2_592_000},
                {"name": "min_size", "value": 10_485_760}
            ], "needs": [], "why": "Find large log files older than 30 days."},
            {"action": "fs.archive", "args": [
                {"name": "source", "value": {"step": 0, "column": "path"}},
                {"name": "dest", "value": "/var/tmp/old-logs.tar.gz"}
            ], "needs": [0], "why": "Compress them into one archive before removing them."},
            {"action": "fs.delete", "args": [
                {"name": "path", "value": {"step": 0, "column": "path"}}
            ], "needs": [1], "why": "Free the space once the archive exists."}
        ],
        "message": ""
    });
    // OpenAI's chat completion object with the plan as the json_schema content.
    json!({
        "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
        "object": "chat.completion",
        "created": 1_741_569_952,
        "model": "gpt-4.1-mini-2025-04-14",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": plan.to_string(), "refusal": null, "annotations": []}, "logprobs": null, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 2100, "completion_tokens": 180, "total_tokens": 2280}
    })
    .to_string()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn time<T>(rounds: usize, iters: usize, mut f: impl FnMut() -> T) -> Duration {
    let mut per = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let t = Instant::now();
        for _ in 0..iters {
            black_box(f());
        }
        per.push(t.elapsed() / iters as u32);
    }
    median(per)
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (rounds, iters) = if quick { (5, 20) } else { (15, 200) };
    let registry = Arc::new(Registry::builtin());
    let facts = HostFacts::detect();
    let planner = LlmPlanner::new(registry.clone(), facts.clone());
    let ctx = PlanContext::new("/home/u", "/home/u/work");
    let body = answer_body();
    let request = "archive the big old logs in /var/log and then free the space";

    let build = || {
        let spec = planner.request_spec(request, &ctx, &[], "fast", &RouteOpts::default());
        let job = planner.start(spec);
        let req = job.request().unwrap();
        wire::encode(
            ProviderKind::OpenAi,
            &EncodeArgs {
                model: "gpt-4.1-mini",
                req: &req,
                mechanism: Mechanism::JsonSchema,
                max_tokens: 2048,
                quirks: Quirks::default(),
            },
        )
    };
    let parse_validate = || {
        let decoded = wire::decode(ProviderKind::OpenAi, body.as_bytes()).unwrap();
        let (json, _) =
            wire::resolve(&decoded, Some(planner.schema(false)), Mechanism::JsonSchema).unwrap();
        let answer = planner.check_answer(&json.unwrap(), false).unwrap();
        assert_eq!(answer.plan.steps.len(), 3);
        answer
    };
    let encoded_len = build().len();
    let t_build = time(rounds, iters, build);
    let t_parse = time(rounds, iters, parse_validate);
    let t_total = time(rounds, iters, || {
        black_box(build());
        parse_validate()
    });
    // Everything a fresh planner computes before its first request.
    let t_new = time(rounds.min(7), 10, || {
        let p = LlmPlanner::new(registry.clone(), facts.clone());
        black_box(p.system_prompt(false).len() + p.schema(false).name.len());
        black_box(p.catalog_version().len());
        p
    });
    let t_registry = time(rounds.min(7), 10, Registry::builtin);
    let t_version = time(rounds.min(7), 10, || registry.catalog_version());
    let cfg: kernos_llm::LlmConfig = toml::from_str(
        "[[providers]]\nname = \"local\"\nbase_url = \"http://127.0.0.1:9/v1\"\nmodel = \"m\"\n",
    )
    .unwrap();
    let with_tier = Cascade::new(registry.clone(), cfg, facts);
    let t_key = time(rounds, iters, || {
        with_tier.cache_key(request, &ctx, &PlanOptions::default())
    });

    println!(
        "request body sent: {} bytes (system prompt {} chars)",
        encoded_len,
        planner.system_prompt(false).len()
    );
    println!(
        "build prompt + request + encode body   median {:>8.1} µs",
        t_build.as_secs_f64() * 1e6
    );
    println!(
        "decode + extract + read + validate     median {:>8.1} µs",
        t_parse.as_secs_f64() * 1e6
    );
    println!(
        "whole LLM-path overhead per call       median {:>8.1} µs  (budget 2000 µs: {})",
        t_total.as_secs_f64() * 1e6,
        if t_total <= Duration::from_millis(2) {
            "ok"
        } else {
            "OVER"
        }
    );
    println!(
        "prompt + schema + version (per process) median {:>8.1} µs",
        t_new.as_secs_f64() * 1e6
    );
    println!(
        "  of which Registry::catalog_version     median {:>8.1} µs",
        t_version.as_secs_f64() * 1e6
    );
    println!(
        "Registry::builtin (once per process)   median {:>8.1} µs",
        t_registry.as_secs_f64() * 1e6
    );
    println!(
        "cache key                              median {:>8.1} µs",
        t_key.as_secs_f64() * 1e6
    );
}
