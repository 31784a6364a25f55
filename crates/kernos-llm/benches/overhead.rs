//! The crate's own cost per call, outside the model and the network: building the request body,
//! decoding the answer (whole or streamed), extracting and shape-checking the JSON.
//!
//! Run: `cargo bench -p kernos-llm --bench overhead` (`-- --quick` for a short run).
//!
//! The request is planner-sized: a system prompt listing the v1 tool catalog (~5 KB), a plan
//! schema with the tool and action enums (~2 KB), a two-turn conversation; the answer is a
//! three-step plan (~600 B) — streamed as ~5-character deltas, as servers send them. Each
//! figure is the median of several rounds of many iterations.

#![allow(clippy::unwrap_used, missing_docs)]

use std::hint::black_box;
use std::time::Instant;

use kernos_llm::wire::{self, Decoded, EncodeArgs, Quirks, SseParser, StreamDecoder};
use kernos_llm::{ChatRequest, Mechanism, Message, OutputSchema, ProviderKind};
use serde_json::{Value, json};

const CATALOG: &[(&str, &[&str])] = &[
    (
        "fs",
        &[
            "list", "find", "largest", "usage", "read", "search", "write", "append", "mkdir",
            "copy", "move", "delete", "chmod", "archive", "extract", "checksum", "count",
        ],
    ),
    ("sys", &["info", "disk", "memory", "cpu", "uptime", "users"]),
    ("proc", &["list", "find", "kill"]),
    (
        "svc",
        &[
            "list", "status", "start", "stop", "restart", "enable", "disable", "logs",
        ],
    ),
    (
        "pkg",
        &["search", "info", "install", "remove", "list", "upgradable"],
    ),
    (
        "net",
        &[
            "interfaces",
            "ports",
            "connections",
            "resolve",
            "http",
            "ping",
        ],
    ),
    ("logs", &["errors", "tail"]),
    ("git", &["status", "log", "diff", "branches"]),
    ("shell", &["run"]),
];

fn request() -> ChatRequest {
    let mut system = String::from(
        "You are the Kernos planner. Turn the user's request into a plan of tool calls. Use only \
         these tools and actions; never invent one. Paths are relative to the working directory \
         unless absolute. Prefer read-only actions when the request is a question.\n\nTools:\n",
    );
    for (tool, actions) in CATALOG {
        for a in *actions {
            system.push_str(&format!(
                "- {tool}.{a}: {a} on {tool} objects; args as in the {tool}.{a} schema, e.g. path, glob, limit, older_than, min_size\n"
            ));
        }
    }
    let actions: Vec<&str> = CATALOG
        .iter()
        .flat_map(|(_, a)| a.iter().copied())
        .collect();
    let schema = json!({
        "type": "object",
        "properties": {
            "summary": {"type": "string", "description": "One line saying what the plan does"},
            "steps": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "tool": {"type": "string", "enum": CATALOG.iter().map(|(t, _)| *t).collect::<Vec<_>>()},
                        "action": {"type": "string", "enum": actions},
                        "args": {"type": "object", "description": "Arguments for tool.action as its schema says"},
                        "needs": {"type": "array", "items": {"type": "integer"}, "description": "Indexes of earlier steps whose output this step consumes"}
                    },
                    "required": ["tool", "action", "args", "needs"],
                    "additionalProperties": false
                }
            }
        },
        "required": ["summary", "steps"],
        "additionalProperties": false
    });
    ChatRequest {
        system,
        messages: vec![
            Message::user(
                "find log files bigger than 100 MB under /var/log older than a week and compress them",
            ),
            Message::user("and then show me how much space that freed"),
        ],
        schema: Some(OutputSchema {
            name: "plan".into(),
            description: "A Kernos plan".into(),
            schema,
            strict: true,
        }),
        max_tokens: Some(1024),
        temperature: Some(0.0),
        stream: false,
        sensitive: Vec::new(),
    }
}

const PLAN: &str = r#"{"summary":"Compress large week-old logs under /var/log and report the space freed","steps":[{"tool":"fs","action":"find","args":{"path":"/var/log","glob":"*.log","min_size":"100MB","older_than":"7d"},"needs":[]},{"tool":"fs","action":"archive","args":{"format":"gzip","remove_originals":true},"needs":[0]},{"tool":"fs","action":"usage","args":{"path":"/var/log"},"needs":[1]}]}"#;

fn openai_body(content: &Value) -> String {
    json!({
        "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT", "object": "chat.completion", "created": 1741569952,
        "model": "gpt-4.1-mini-2025-04-14",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content, "refusal": null, "annotations": []}, "logprobs": null, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1500, "completion_tokens": 160, "total_tokens": 1660},
        "service_tier": "default", "system_fingerprint": "fp_38647f5e19"
    })
    .to_string()
}

fn anthropic_tool_body() -> String {
    let input: Value = serde_json::from_str(PLAN).unwrap();
    json!({
        "id": "msg_01Aq9w938a90dw8q", "type": "message", "role": "assistant", "model": "claude-haiku-4-5-20251001",
        "content": [{"type": "tool_use", "id": "toolu_01A09q90qw90lq917835lq9", "name": "plan", "input": input}],
        "stop_reason": "tool_use", "stop_sequence": null,
        "usage": {"input_tokens": 1500, "output_tokens": 160, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
    })
    .to_string()
}

fn openai_stream() -> Vec<u8> {
    let head = r#""id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,"model":"gpt-4.1-mini-2025-04-14","system_fingerprint":"fp_44709d6fcb""#;
    let mut s = format!(
        "data: {{{head},\"choices\":[{{\"index\":0,\"delta\":{{\"role\":\"assistant\",\"content\":\"\"}},\"finish_reason\":null}}]}}\n\n"
    );
    let chars: Vec<char> = PLAN.chars().collect();
    for piece in chars.chunks(5) {
        let p: String = piece.iter().collect();
        s.push_str(&format!(
            "data: {{{head},\"choices\":[{{\"index\":0,\"delta\":{{\"content\":{}}},\"logprobs\":null,\"finish_reason\":null}}],\"usage\":null}}\n\n",
            serde_json::to_string(&p).unwrap()
        ));
    }
    s.push_str(&format!("data: {{{head},\"choices\":[{{\"index\":0,\"delta\":{{}},\"finish_reason\":\"stop\"}}]}}\n\n"));
    s.push_str(&format!("data: {{{head},\"choices\":[],\"usage\":{{\"prompt_tokens\":1500,\"completion_tokens\":160,\"total_tokens\":1660}}}}\n\n"));
    s.push_str("data: [DONE]\n\n");
    s.into_bytes()
}

fn anthropic_stream() -> Vec<u8> {
    let mut s = String::from(
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"claude-haiku-4-5-20251001\",\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":1500,\"output_tokens\":1}}}\n\n\
         event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_1\",\"name\":\"plan\",\"input\":{}}}\n\n",
    );
    let chars: Vec<char> = PLAN.chars().collect();
    for piece in chars.chunks(5) {
        let p: String = piece.iter().collect();
        s.push_str(&format!(
            "event: content_block_delta\ndata: {{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{{\"type\":\"input_json_delta\",\"partial_json\":{}}}}}\n\n",
            serde_json::to_string(&p).unwrap()
        ));
    }
    s.push_str(
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
    );
    s.push_str("event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":160}}\n\n");
    s.push_str("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
    s.into_bytes()
}

/// Feeds a stream in network-sized pieces (1400 bytes, a typical TCP segment payload).
fn decode_stream(kind: ProviderKind, bytes: &[u8]) -> Decoded {
    let mut parser = SseParser::new();
    let mut dec = StreamDecoder::new(kind);
    let mut events = Vec::new();
    let mut sink = |s: &str| {
        black_box(s);
    };
    for piece in bytes.chunks(1400) {
        parser.push(piece, &mut events);
        for ev in events.drain(..) {
            dec.on_event(&ev, &mut sink).unwrap();
        }
    }
    dec.finish().unwrap()
}

fn median_us(rounds: usize, iters: usize, mut f: impl FnMut()) -> f64 {
    let mut samples: Vec<f64> = (0..rounds)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..iters {
                f();
            }
            t.elapsed().as_secs_f64() * 1e6 / iters as f64
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (rounds, iters) = if quick { (5, 200) } else { (15, 2000) };
    let req = request();
    let schema = req.schema.clone().unwrap();
    let args = |m| EncodeArgs {
        model: "gpt-4.1-mini",
        req: &req,
        mechanism: m,
        max_tokens: 1024,
        quirks: Quirks::default(),
    };
    let oa_json = openai_body(&Value::from(PLAN));
    let oa_prose = openai_body(&Value::from(format!(
        "Sure! Here is the plan:\n\n```json\n{PLAN}\n```\n\nIt compresses the logs and then reports the space."
    )));
    let an_tool = anthropic_tool_body();
    let oa_sse = openai_stream();
    let an_sse = anthropic_stream();

    let body_len = wire::encode(ProviderKind::OpenAi, &args(Mechanism::JsonSchema)).len();
    println!(
        "request body {body_len} B (system {} B, schema {} B); answer {} B; streams {} / {} B",
        req.system.len(),
        schema.schema.to_string().len(),
        PLAN.len(),
        oa_sse.len(),
        an_sse.len()
    );
    println!("{:<58} {:>10}", "operation", "median µs");

    let row = |name: &str, f: &mut dyn FnMut()| {
        println!("{name:<58} {:>10.1}", median_us(rounds, iters, f));
    };
    row("encode openai json_schema", &mut || {
        black_box(wire::encode(
            ProviderKind::OpenAi,
            &args(Mechanism::JsonSchema),
        ));
    });
    row("encode openai tools", &mut || {
        black_box(wire::encode(ProviderKind::OpenAi, &args(Mechanism::Tools)));
    });
    row("encode openai text (schema in prompt)", &mut || {
        black_box(wire::encode(ProviderKind::OpenAi, &args(Mechanism::Text)));
    });
    row("encode anthropic tools", &mut || {
        black_box(wire::encode(
            ProviderKind::Anthropic,
            &args(Mechanism::Tools),
        ));
    });
    row("decode+resolve openai json_schema answer", &mut || {
        let d = wire::decode(ProviderKind::OpenAi, oa_json.as_bytes()).unwrap();
        black_box(wire::resolve(&d, Some(&schema), Mechanism::JsonSchema).unwrap());
    });
    row(
        "decode+resolve openai prose answer (fence extraction)",
        &mut || {
            let d = wire::decode(ProviderKind::OpenAi, oa_prose.as_bytes()).unwrap();
            black_box(wire::resolve(&d, Some(&schema), Mechanism::Text).unwrap());
        },
    );
    row("decode+resolve anthropic tool_use answer", &mut || {
        let d = wire::decode(ProviderKind::Anthropic, an_tool.as_bytes()).unwrap();
        black_box(wire::resolve(&d, Some(&schema), Mechanism::Tools).unwrap());
    });
    row("stream openai (SSE parse + chunks + resolve)", &mut || {
        let d = decode_stream(ProviderKind::OpenAi, &oa_sse);
        black_box(wire::resolve(&d, Some(&schema), Mechanism::JsonSchema).unwrap());
    });
    row(
        "stream anthropic (SSE parse + events + resolve)",
        &mut || {
            let d = decode_stream(ProviderKind::Anthropic, &an_sse);
            black_box(wire::resolve(&d, Some(&schema), Mechanism::Tools).unwrap());
        },
    );
    row(
        "TOTAL openai: encode + stream decode + resolve",
        &mut || {
            black_box(wire::encode(
                ProviderKind::OpenAi,
                &args(Mechanism::JsonSchema),
            ));
            let d = decode_stream(ProviderKind::OpenAi, &oa_sse);
            black_box(wire::resolve(&d, Some(&schema), Mechanism::JsonSchema).unwrap());
        },
    );
    row(
        "TOTAL text mode: encode + prose decode + extract",
        &mut || {
            black_box(wire::encode(ProviderKind::OpenAi, &args(Mechanism::Text)));
            let d = wire::decode(ProviderKind::OpenAi, oa_prose.as_bytes()).unwrap();
            black_box(wire::resolve(&d, Some(&schema), Mechanism::Text).unwrap());
        },
    );
}
