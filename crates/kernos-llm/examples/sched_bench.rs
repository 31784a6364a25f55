//! The model scheduler against a loopback server that behaves like llama.cpp's: N agents, each
//! a multi-step task of 3–8 model calls (observe → plan → act), run one after another
//! (sequential), all at once with no scheduler (naive: every agent is its own client straight
//! to the server, honouring the server's `Retry-After` and backing off on its own, as a plain
//! OpenAI client does), and all at once through the scheduler under each discipline; then one
//! organisation flooding with 10× the others' agents. Reports, per agent, waiting (time its
//! calls spent queued, here or in the server, or backing off after a 429) and turnaround (from
//! the common start to its last answer), p50/p90/mean, as AIOS (COLM 2025) measures them; and
//! the scheduler's own cost per call. A call that fails after all its retries (naive agents
//! under overload give up after 10 tries) counts as waiting for all its time, and the agent
//! goes on with its next step.
//!
//! Run: `cargo run --release -p kernos-llm --example sched_bench --features testing [-- N…]`
//! (default: 50 then 200 agents; the sequential run only up to 100 agents, and the other
//! disciplines than fair only at the first size).
//!
//! Server model, scaled 10× faster than the hardware so a run takes seconds:
//! - K = 4 slots: llama-server's `-np/--parallel` defaults to auto, which sets up 4 slots
//!   (seen in ggml-org/llama.cpp issue #17989, "--parallel 1 initializes 4 slots").
//! - A FIFO queue behind the slots: llama-server defers a request that finds every slot busy
//!   until one frees (counted as `llamacpp:requests_deferred` in its `/metrics`), and vLLM's
//!   scheduler runs at most `--max-num-seqs` and keeps the rest waiting. Neither rejects;
//!   the limit of 16 waiting and the 429 with `Retry-After: 1` beyond it model a hosted
//!   endpoint or a gateway in front of them, which is what "overload" means here.
//! - 0.05 ms per prompt token and 1.5 ms per answer token per slot. Unscaled: 2,000 prompt
//!   tokens/s and ~67 answer tokens/s per slot, the order of llama-bench's pp512 (thousands
//!   of t/s) and tg128 (60–120 t/s) for a 7–8B Q4_K_M model on an RTX 3090/4090-class GPU,
//!   rounded down; decoding is memory-bound, so a few parallel slots barely slow each other
//!   (the premise of llama.cpp's continuous batching and of vLLM's).
//! - Each call sends a ~400-token prompt and gets 48 answer tokens: ≈ 92 ms of service.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::{Duration, Instant};

use kernos_llm::testing::{FakeServer, SlotModel, sched_overhead, sched_overhead_uncontended};
use kernos_llm::{
    ChatRequest, LlmConfig, Message, ProviderConfig, RetryConfig, RouteOpts, Router, SchedPolicy,
};

const SLOTS: usize = 4;
const QUEUE_LIMIT: usize = 4 * SLOTS;
const OUT: u32 = 48;
const PROMPT_CHARS: usize = 1600;
const PER_PROMPT: Duration = Duration::from_micros(50);
const PER_OUTPUT: Duration = Duration::from_micros(1500);
/// When the bench's agents were spawned, for their task keys (any fixed time will do).
const T0_MS: u64 = 1_796_600_000_000;
const POLICIES: [SchedPolicy; 4] = [
    SchedPolicy::Fair,
    SchedPolicy::Fifo,
    SchedPolicy::RoundRobin,
    SchedPolicy::Priority,
];

/// One agent: who it is for, how many calls its task makes.
#[derive(Clone)]
struct Agent {
    client: String,
    org: usize,
    calls: usize,
}

/// How the agents reach the server.
#[derive(Clone, Copy)]
enum Mode {
    /// One after another through one router.
    Sequential,
    /// All at once, each agent with a router of its own (no shared queue, no shared pause).
    Naive,
    /// All at once through one router's scheduler.
    Sched(SchedPolicy),
}

struct Figures {
    waiting: Vec<Duration>,
    turnaround: Vec<Duration>,
    orgs: Vec<usize>,
    failed: usize,
    makespan: Duration,
}

fn service() -> Duration {
    let prompt = u32::try_from(PROMPT_CHARS.div_ceil(4) + 2).unwrap();
    PER_PROMPT * prompt + PER_OUTPUT * OUT
}

fn router(s: &FakeServer, slots: u32, policy: SchedPolicy) -> Router {
    let p = ProviderConfig {
        name: "local".into(),
        base_url: Some(s.v1()),
        model: Some("qwen2.5-7b-instruct-q4_k_m".into()),
        timeout_ms: 600_000,
        slots: Some(slots),
        sched: Some(policy),
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
    // Agents are spawned in index order (as the daemon's agent ids order them).
    let opts = RouteOpts {
        client: Some(a.client.clone()),
        task: Some(kernos_llm::task_key(T0_MS) + step as u64),
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
            // A call that failed after all its retries was all waiting and no service.
            Err(_) => {
                waiting += start.elapsed();
                failed += 1;
            }
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
        queue_limit: QUEUE_LIMIT,
        per_prompt_token: PER_PROMPT,
        per_output_token: PER_OUTPUT,
        output_tokens: OUT,
    })
}

fn run(rt: &tokio::runtime::Runtime, list: &[Agent], mode: Mode) -> Figures {
    let s = server();
    let shared = match mode {
        Mode::Sched(p) => router(&s, SLOTS as u32, p),
        _ => router(&s, SLOTS as u32, SchedPolicy::Fair),
    };
    let t0 = Instant::now();
    let results = rt.block_on(async {
        if let Mode::Sequential = mode {
            let mut out = Vec::new();
            for (i, a) in list.iter().enumerate() {
                out.push(agent(shared.clone(), a.clone(), t0, i).await);
            }
            return out;
        }
        let hs: Vec<_> = list
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let r = match mode {
                    Mode::Naive => router(&s, 1, SchedPolicy::Fair),
                    _ => shared.clone(),
                };
                tokio::spawn(agent(r, a.clone(), t0, i))
            })
            .collect();
        let mut out = Vec::new();
        for h in hs {
            out.push(h.await.unwrap());
        }
        out
    });
    Figures {
        waiting: results.iter().map(|r| r.0).collect(),
        turnaround: results.iter().map(|r| r.1).collect(),
        orgs: list.iter().map(|a| a.org).collect(),
        failed: results.iter().map(|r| r.2).sum(),
        makespan: t0.elapsed(),
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
        "{name:<22} wait p50 {:7.3}s p90 {:7.3}s mean {:7.3}s | turnaround p50 {:7.3}s p90 {:7.3}s mean {:7.3}s | all done {:7.3}s | failed calls {}",
        pct(&f.waiting, 0.5),
        pct(&f.waiting, 0.9),
        mean(&f.waiting),
        pct(&f.turnaround, 0.5),
        pct(&f.turnaround, 0.9),
        mean(&f.turnaround),
        f.makespan.as_secs_f64(),
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

/// N agents, one client each: sequential (≤ 100 agents), naive, and the scheduler under
/// `policies`; prints the rows and the ratios the goals are stated in.
fn concurrency(rt: &tokio::runtime::Runtime, n: usize, policies: &[SchedPolicy]) {
    let mut solo = agents(&vec![1; n]);
    for (i, a) in solo.iter_mut().enumerate() {
        a.client = format!("local/agent{i}");
    }
    let calls: usize = solo.iter().map(|a| a.calls).sum();
    println!("\n{n} agents, {calls} model calls");
    let seq = (n <= 100).then(|| run(rt, &solo, Mode::Sequential));
    if let Some(f) = &seq {
        row("sequential", f);
    }
    let naive = run(rt, &solo, Mode::Naive);
    row("naive concurrency", &naive);
    // As the daemon runs them: every agent of the organisation is one client, so fair share
    // is between organisations and, within one, the oldest agent's call goes first.
    let one_org: Vec<Agent> = solo
        .iter()
        .map(|a| Agent {
            client: "local".into(),
            ..a.clone()
        })
        .collect();
    let runs = policies
        .iter()
        .map(|&p| (format!("scheduler ({})", p.as_str()), p, &solo))
        .chain(std::iter::once((
            "scheduler (fair, one org)".to_owned(),
            SchedPolicy::Fair,
            &one_org,
        )));
    for (name, p, list) in runs {
        let f = run(rt, list, Mode::Sched(p));
        row(&name, &f);
        let vs_naive = pct(&f.waiting, 0.9) / pct(&naive.waiting, 0.9).max(1e-9);
        match &seq {
            Some(s) => println!(
                "  {:<26} turnaround vs sequential: mean {:.2}× p90 {:.2}× all done {:.2}× better | p90 waiting {:.2}× naive's",
                name,
                mean(&s.turnaround) / mean(&f.turnaround),
                pct(&s.turnaround, 0.9) / pct(&f.turnaround, 0.9),
                s.makespan.as_secs_f64() / f.makespan.as_secs_f64(),
                vs_naive
            ),
            None => println!("  {name:<26} p90 waiting {vs_naive:.2}× naive's"),
        }
    }
}

/// Five orgs of n/10 agents each; then org0 runs ten times as many.
fn flood(rt: &tokio::runtime::Runtime, n: usize) {
    let per = (n / 10).max(1);
    let calm = agents(&[per; 5]);
    let flood = agents(&[10 * per, per, per, per, per]);
    println!(
        "\nflood: 5 orgs of {per} agents; then org0 with {}",
        10 * per
    );
    for (name, mode) in [
        ("naive", Mode::Naive),
        ("scheduler", Mode::Sched(SchedPolicy::Fair)),
    ] {
        let a = run(rt, &calm, mode);
        let b = run(rt, &flood, mode);
        println!(
            "{name:<10} other orgs' p90 turnaround: {:.3}s without the flood, {:.3}s with it ({:.2}×); failed calls {}",
            others_p90(&a),
            others_p90(&b),
            others_p90(&b) / others_p90(&a).max(1e-9),
            a.failed + b.failed
        );
    }
}

fn overhead() {
    println!();
    for p in POLICIES {
        let d = sched_overhead_uncontended(p, 100_000);
        println!(
            "scheduler overhead ({:<11}), no contention: {:6.2} µs per call (acquire + release)",
            p.as_str(),
            d.as_secs_f64() * 1e6
        );
    }
    for p in POLICIES {
        for clients in [1, 10, 200] {
            let d = sched_overhead(p, SLOTS, clients, 20_000);
            println!(
                "scheduler overhead ({:<11}), 20,000 calls of {clients:>3} clients contending for {SLOTS} slots: {:6.2} µs per call (spawn, queue, hand-over, release)",
                p.as_str(),
                d.as_secs_f64() * 1e6
            );
        }
    }
}

fn main() {
    let mut sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    if sizes.is_empty() {
        sizes = vec![50, 200];
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    println!(
        "server: {SLOTS} slots, queue limit {QUEUE_LIMIT} (then 429, Retry-After: 1), {PER_PROMPT:?}/prompt token, {PER_OUTPUT:?}/answer token; one call ≈ {:?} of service",
        service()
    );
    for (i, &n) in sizes.iter().enumerate() {
        let policies: &[SchedPolicy] = if i == 0 {
            &POLICIES
        } else {
            &[SchedPolicy::Fair]
        };
        concurrency(&rt, n, policies);
        flood(&rt, n);
    }
    overhead();
}
