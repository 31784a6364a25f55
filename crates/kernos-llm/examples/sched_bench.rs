//! The model scheduler against a loopback server that behaves like llama.cpp's: N agents, each
//! a multi-step task of 3–8 model calls (observe → plan → act), run one after another, all at
//! once with no scheduler (every call straight to the server: router slots unlimited, the
//! server queues FIFO and answers 429 beyond its queue limit), and all at once through the
//! scheduler; then one organisation flooding with 10× the others' agents. Reports, per agent,
//! waiting (time its calls spent queued, here or in the server) and turnaround (from the common
//! start to its last answer), p50/p90/mean, as AIOS (COLM 2025) measures them; and the
//! scheduler's own cost per call.
//!
//! Run: `cargo run -p kernos-llm --example sched_bench --features testing [-- AGENTS]`
//! (default 50 agents; the sequential run is skipped above 100 agents).
//!
//! Server model (scaled 10× faster than the hardware so a run takes seconds): K = 4 slots
//! (llama-server's default `--parallel` when it picks it), queue limit 16, 0.05 ms per prompt
//! token and 1.5 ms per answer token per slot. Unscaled that is 2,000 prompt tokens/s and ~67
//! answer tokens/s per slot: llama.cpp's published llama-bench figures for a 7–8B Q4_K_M model
//! on a consumer GPU (pp512 in the thousands of t/s, tg128 of 60–120 t/s on an RTX 3090/4090
//! class card), rounded down. Each call sends a ~400-token prompt and gets 48 answer tokens.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::{Duration, Instant};

use kernos_llm::testing::{FakeServer, SlotModel, sched_overhead};
use kernos_llm::{ChatRequest, LlmConfig, Message, ProviderConfig, RetryConfig, RouteOpts, Router};

const SLOTS: usize = 4;
const OUT: u32 = 48;
const PROMPT_CHARS: usize = 1600;
const PER_PROMPT: Duration = Duration::from_micros(50);
const PER_OUTPUT: Duration = Duration::from_micros(1500);

/// One agent: who it is for, how many calls its task makes.
#[derive(Clone)]
struct Agent {
    client: String,
    org: usize,
    calls: usize,
}

struct Figures {
    waiting: Vec<Duration>,
    turnaround: Vec<Duration>,
    orgs: Vec<usize>,
    failed: usize,
}

fn service() -> Duration {
    let prompt = u32::try_from(PROMPT_CHARS.div_ceil(4) + 2).unwrap();
    PER_PROMPT * prompt + PER_OUTPUT * OUT
}

fn router(s: &FakeServer, slots: u32) -> Router {
    let p = ProviderConfig {
        name: "local".into(),
        base_url: Some(s.v1()),
        model: Some("qwen2.5-7b-instruct-q4_k_m".into()),
        timeout_ms: 600_000,
        slots: Some(slots),
        ..ProviderConfig::default()
    };
    let mut cfg = LlmConfig {
        providers: vec![p],
        retry: RetryConfig {
            max_attempts: 10,
            base_delay_ms: 50,
            max_delay_ms: 1000,
            budget_ms: 600_000,
        },
        ..LlmConfig::default()
    };
    cfg.breaker.failure_threshold = 1_000_000;
    Router::new(cfg).unwrap()
}

/// Runs one agent's calls in order; returns (waiting, turnaround from `t0`, failed calls).
async fn agent(r: Router, a: Agent, t0: Instant, step: usize) -> (Duration, Duration, usize) {
    let opts = RouteOpts {
        client: Some(a.client.clone()),
        ..RouteOpts::default()
    };
    let mut waiting = Duration::ZERO;
    let mut failed = 0;
    for c in 0..a.calls {
        let kind = ["observe", "plan", "act"][c.min(2)];
        let req = ChatRequest {
            system: "x".repeat(PROMPT_CHARS),
            messages: vec![Message::user(format!("{kind} {step}"))],
            max_tokens: Some(OUT),
            ..ChatRequest::default()
        };
        let start = Instant::now();
        match r.complete("", &req, &opts).await {
            Ok(_) => waiting += start.elapsed().saturating_sub(service()),
            Err(_) => failed += 1,
        }
    }
    (waiting, t0.elapsed(), failed)
}

/// Agents of each org (`per_org[org]` of them), clients named by org.
fn agents(per_org: &[usize]) -> Vec<Agent> {
    let mut out = Vec::new();
    for (org, &count) in per_org.iter().enumerate() {
        for _ in 0..count {
            out.push(Agent {
                client: format!("org{org}"),
                org,
                calls: 3 + (out.len() * 7) % 6,
            });
        }
    }
    out
}

fn server() -> FakeServer {
    FakeServer::with_slots(SlotModel {
        slots: SLOTS,
        queue_limit: 4 * SLOTS,
        per_prompt_token: PER_PROMPT,
        per_output_token: PER_OUTPUT,
        output_tokens: OUT,
    })
}

fn run(rt: &tokio::runtime::Runtime, list: &[Agent], slots: u32, sequential: bool) -> Figures {
    let s = server();
    let r = router(&s, slots);
    let t0 = Instant::now();
    let results = rt.block_on(async {
        if sequential {
            let mut out = Vec::new();
            for (i, a) in list.iter().enumerate() {
                out.push(agent(r.clone(), a.clone(), t0, i).await);
            }
            out
        } else {
            let hs: Vec<_> = list
                .iter()
                .enumerate()
                .map(|(i, a)| tokio::spawn(agent(r.clone(), a.clone(), t0, i)))
                .collect();
            let mut out = Vec::new();
            for h in hs {
                out.push(h.await.unwrap());
            }
            out
        }
    });
    Figures {
        waiting: results.iter().map(|r| r.0).collect(),
        turnaround: results.iter().map(|r| r.1).collect(),
        orgs: list.iter().map(|a| a.org).collect(),
        failed: results.iter().map(|r| r.2).sum(),
    }
}

fn pct(v: &[Duration], p: f64) -> f64 {
    let mut v: Vec<f64> = v.iter().map(Duration::as_secs_f64).collect();
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i]
}

fn mean(v: &[Duration]) -> f64 {
    v.iter().map(Duration::as_secs_f64).sum::<f64>() / v.len().max(1) as f64
}

fn row(name: &str, f: &Figures) {
    println!(
        "{name:<34} wait p50 {:7.3}s p90 {:7.3}s mean {:7.3}s | turnaround p50 {:7.3}s p90 {:7.3}s mean {:7.3}s | failed calls {}",
        pct(&f.waiting, 0.5),
        pct(&f.waiting, 0.9),
        mean(&f.waiting),
        pct(&f.turnaround, 0.5),
        pct(&f.turnaround, 0.9),
        mean(&f.turnaround),
        f.failed
    );
}

/// p90 turnaround of the agents of every org but org0.
fn others_p90(f: &Figures) -> f64 {
    let v: Vec<Duration> = f
        .turnaround
        .iter()
        .zip(&f.orgs)
        .filter(|(_, o)| **o != 0)
        .map(|(t, _)| *t)
        .collect();
    pct(&v, 0.9)
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(50);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    println!(
        "server: {SLOTS} slots, queue limit {}, {:?}/prompt token, {:?}/answer token; one call ≈ {:?} of service",
        4 * SLOTS,
        PER_PROMPT,
        PER_OUTPUT,
        service()
    );
    // One agent per client, as the planner cascade's clients are.
    let mut solo = agents(&vec![1; n]);
    for (i, a) in solo.iter_mut().enumerate() {
        a.client = format!("local/agent{i}");
    }
    let calls: usize = solo.iter().map(|a| a.calls).sum();
    println!("{n} agents, {calls} model calls");
    if n <= 100 {
        row("sequential", &run(&rt, &solo, SLOTS as u32, true));
    }
    row(
        "naive concurrency (no scheduler)",
        &run(&rt, &solo, 100_000, false),
    );
    row("scheduler", &run(&rt, &solo, SLOTS as u32, false));

    // Five orgs of n/10 agents each; then org0 runs ten times as many.
    let per = (n / 10).max(1);
    let calm = agents(&[per; 5]);
    let flood = agents(&[10 * per, per, per, per, per]);
    println!("flood: 5 orgs of {per} agents; then org0 with {}", 10 * per);
    for (name, slots) in [("naive", 100_000u32), ("scheduler", SLOTS as u32)] {
        let a = run(&rt, &calm, slots, false);
        let b = run(&rt, &flood, slots, false);
        println!(
            "{name:<10} other orgs' p90 turnaround: {:.3}s without the flood, {:.3}s with it ({:.2}×); failed calls {}",
            others_p90(&a),
            others_p90(&b),
            others_p90(&b) / others_p90(&a).max(1e-9),
            a.failed + b.failed
        );
    }
    for clients in [1, 10, 200] {
        let d = sched_overhead(kernos_llm::SchedPolicy::Fair, SLOTS, clients, 20_000);
        println!(
            "scheduler overhead, {clients} clients contending for {SLOTS} slots: {:.2} µs per call",
            d.as_secs_f64() * 1e6
        );
    }
}
