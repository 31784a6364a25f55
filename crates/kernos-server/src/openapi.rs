//! The OpenAPI 3.1 document, assembled here from the Rust types' schemars schemas so it says
//! exactly what the handlers accept and return.

use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, SchemaGenerator};
use serde_json::{Map, Value, json};

use crate::api::{
    Accepted, ActionDetail, ActionSummary, ApprovalAnswer, ApprovalView, AuditParams, AuditRecord,
    Cancelled, Decided, Health, KeyCreate, KeyCreated, KeyListParams, ListParams, UndoRequest,
    UsageView,
};
use crate::auth::KeyInfo;
use crate::error::Problem;
use crate::sse::EventParams;
use crate::worker::SubmitRequest;

struct Doc {
    generator: SchemaGenerator,
}

impl Doc {
    fn schema<T: JsonSchema>(&mut self) -> Value {
        serde_json::to_value(self.generator.subschema_for::<T>()).unwrap_or(Value::Null)
    }

    /// Query parameters from a struct's schema: one parameter per property.
    fn params<T: JsonSchema>(&mut self) -> Vec<Value> {
        let root = serde_json::to_value(self.generator.root_schema_for::<T>()).unwrap_or_default();
        let required: Vec<String> = root["required"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        root["properties"]
            .as_object()
            .map(|props| {
                props
                    .iter()
                    .map(|(name, schema)| {
                        let mut schema = schema.clone();
                        let description = schema
                            .as_object_mut()
                            .and_then(|o| o.remove("description"))
                            .unwrap_or(Value::Null);
                        json!({
                            "name": name,
                            "in": "query",
                            "required": required.contains(name),
                            "description": description,
                            "schema": schema,
                        })
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn json_content(schema: Value) -> Value {
    json!({"application/json": {"schema": schema}})
}

fn problem_responses(ok: (&str, &str, Value)) -> Value {
    let (code, desc, content) = ok;
    let mut m = Map::new();
    let mut okv = json!({"description": desc});
    if !content.is_null() {
        okv["content"] = content;
    }
    m.insert(code.to_owned(), okv);
    m.insert(
        "default".into(),
        json!({
            "description": "An RFC 7807 problem document saying what went wrong and what to do (400 bad input, 401 no or bad key, 403 role too low, 404 not found in your organisation, 409 conflict, 413 body too large, 422 not acceptable, 402 quota used up, 429 rate limit or full queue with Retry-After, 503 busy or stopping).",
            "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }),
    );
    Value::Object(m)
}

fn path_param(name: &str, desc: &str) -> Value {
    json!({"name": name, "in": "path", "required": true, "description": desc, "schema": {"type": "string"}})
}

/// The OpenAPI document served at GET /v1/openapi.json.
pub fn openapi() -> Value {
    let mut d = Doc {
        generator: SchemaGenerator::new(SchemaSettings::draft2020_12().with(|s| {
            s.definitions_path = "/components/schemas".into();
        })),
    };
    // Registered for the `default` responses, which refer to it by name.
    d.schema::<Problem>();
    let auth = json!([{"bearer": []}]);
    let public = json!([]);
    let op = |summary: &str, desc: &str, security: &Value, responses: Value| json!({"summary": summary, "description": desc, "security": security, "responses": responses});

    let submit = {
        let mut o = op(
            "Submit an action",
            "A request in plain language or a plan. Answers 202 at once with the action id; planning and running continue in the background (follow GET /v1/events?action=<id>). Needs operator. An Idempotency-Key header makes retries safe.",
            &auth,
            problem_responses(("202", "Accepted", json_content(d.schema::<Accepted>()))),
        );
        o["requestBody"] =
            json!({"required": true, "content": json_content(d.schema::<SubmitRequest>())});
        o["parameters"] = json!([{"name": "Idempotency-Key", "in": "header", "required": false, "description": "Same key and body within 24 h: the same action id is answered again.", "schema": {"type": "string", "minLength": 1, "maxLength": 255}}]);
        o
    };
    let events = {
        let mut o = op(
            "Stream events (SSE)",
            "Server-Sent Events of your organisation, each with its journal sequence number as id. Resume with Last-Event-ID or ?after=: exactly the missed events in order, then live ones. A gap larger than the replay limit gets a `resync` event. With ?action= and no resume point, the stream starts at that action's first event. Needs viewer.",
            &auth,
            problem_responses((
                "200",
                "An event stream",
                json!({"text/event-stream": {"schema": {"type": "string"}}}),
            )),
        );
        let mut params = d.params::<EventParams>();
        params.push(json!({"name": "Last-Event-ID", "in": "header", "required": false, "description": "Sequence number of the last event received.", "schema": {"type": "string", "pattern": "^[0-9]+$"}}));
        o["parameters"] = Value::Array(params);
        o
    };
    let list = |d: &mut Doc, summary: &str, desc: &str, item: Value, with_limit: bool| {
        let mut o = op(
            summary,
            desc,
            &auth,
            problem_responses((
                "200",
                "OK",
                json_content(json!({"type": "array", "items": item})),
            )),
        );
        if with_limit {
            o["parameters"] = Value::Array(d.params::<ListParams>());
        }
        o
    };
    let action_summary = d.schema::<ActionSummary>();
    let approval_view = d.schema::<ApprovalView>();
    let actions = list(
        &mut d,
        "List actions",
        "Your organisation's actions, newest first. Needs viewer.",
        action_summary,
        true,
    );
    let action = {
        let mut o = op(
            "One action",
            "Every event of one action of your organisation. Needs viewer.",
            &auth,
            problem_responses(("200", "OK", json_content(d.schema::<ActionDetail>()))),
        );
        o["parameters"] = json!([path_param("id", "Action id")]);
        o
    };
    let approvals = list(
        &mut d,
        "Pending approvals",
        "Steps of your organisation waiting for an answer. Needs viewer.",
        approval_view,
        false,
    );
    let transactions = list(
        &mut d,
        "Transactions",
        "Your organisation's transactions, newest first. Needs viewer.",
        json!({"type": "object"}),
        true,
    );
    let usage = op(
        "Usage",
        "Run units used this month and before, and the quota. Needs viewer.",
        &auth,
        problem_responses(("200", "OK", json_content(d.schema::<UsageView>()))),
    );
    let tools = list(
        &mut d,
        "Tool catalog",
        "Every tool and action with its effects. Needs viewer.",
        json!({"type": "object"}),
        false,
    );
    let cancel = {
        let mut o = op(
            "Cancel an action",
            "A running step stops cleanly (journaled as cancelled; what it did can be undone); a queued action never starts. Needs operator.",
            &auth,
            problem_responses(("200", "Cancelling", json_content(d.schema::<Cancelled>()))),
        );
        o["parameters"] = json!([path_param("id", "Action id")]);
        o
    };
    let decide = {
        let mut o = op(
            "Approve or deny a step",
            "Answers a pending approval. Operators may approve low and medium risk steps, admins and owners high risk ones. Needs operator.",
            &auth,
            problem_responses(("200", "Decided", json_content(d.schema::<Decided>()))),
        );
        o["parameters"] = json!([path_param("id", "Approval id")]);
        o["requestBody"] =
            json!({"required": true, "content": json_content(d.schema::<ApprovalAnswer>())});
        o
    };
    let undo = {
        let mut o = op(
            "Undo a transaction",
            "Queues an undo of one of your organisation's transactions; answers 202 with the action id. Needs operator.",
            &auth,
            problem_responses(("202", "Accepted", json_content(d.schema::<Accepted>()))),
        );
        o["parameters"] = json!([path_param("tx", "Transaction id")]);
        o["requestBody"] =
            json!({"required": false, "content": json_content(d.schema::<UndoRequest>())});
        o
    };
    let keys_list = {
        let mut o = op(
            "List API keys",
            "Keys of your organisation (never the secrets). Needs admin.",
            &auth,
            problem_responses((
                "200",
                "OK",
                json_content(json!({"type": "array", "items": d.schema::<KeyInfo>()})),
            )),
        );
        o["parameters"] = Value::Array(d.params::<KeyListParams>());
        o
    };
    let keys_create = {
        let mut o = op(
            "Create an API key",
            "A 256-bit key, shown once in the answer and stored only as its SHA-256. Admins create keys up to admin, owners up to owner. Needs admin.",
            &auth,
            problem_responses(("201", "Created", json_content(d.schema::<KeyCreated>()))),
        );
        o["requestBody"] =
            json!({"required": true, "content": json_content(d.schema::<KeyCreate>())});
        o
    };
    let keys_revoke = {
        let mut o = op(
            "Revoke an API key",
            "The key stops working at once. Needs admin.",
            &auth,
            problem_responses(("200", "Revoked", json_content(d.schema::<KeyInfo>()))),
        );
        o["parameters"] = json!([path_param("id", "Key id")]);
        o
    };
    let audit = {
        let mut o = op(
            "Audit log",
            "Every mutation (actions, approvals, undo, keys, config) of your organisation, oldest first. Needs admin.",
            &auth,
            problem_responses((
                "200",
                "OK",
                json_content(json!({"type": "array", "items": d.schema::<AuditRecord>()})),
            )),
        );
        o["parameters"] = Value::Array(d.params::<AuditParams>());
        o
    };
    let audit_csv = {
        let mut o = op(
            "Audit log as CSV",
            "The same records as GET /v1/audit, as CSV. Needs admin.",
            &auth,
            problem_responses((
                "200",
                "CSV",
                json!({"text/csv": {"schema": {"type": "string"}}}),
            )),
        );
        o["parameters"] = Value::Array(d.params::<AuditParams>());
        o
    };
    let metrics = op(
        "Prometheus metrics",
        "Request latency by route, actions by outcome, queue depth, run units by org. Host operator only (Unix socket, or an owner key of org `local`).",
        &auth,
        problem_responses((
            "200",
            "Prometheus text",
            json!({"text/plain": {"schema": {"type": "string"}}}),
        )),
    );
    let health = d.schema::<Health>();
    let healthz = op(
        "Liveness",
        "Always 200 while the process runs.",
        &public,
        problem_responses(("200", "OK", json_content(health.clone()))),
    );
    let readyz = op(
        "Readiness",
        "200 when the journal answers and the daemon is not stopping.",
        &public,
        problem_responses(("200", "Ready", json_content(health))),
    );
    let spec = op(
        "This document",
        "The OpenAPI 3.1 description of the API.",
        &public,
        problem_responses(("200", "OK", json_content(json!({"type": "object"})))),
    );
    let mut components = Map::new();
    for (k, v) in d.generator.take_definitions(true) {
        components.insert(k, v);
    }
    // Ids and plans reference core types; make sure every $defs entry lives under components.
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Kernos daemon API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The Kernos engine over HTTP: submit requests or plans, follow their events, answer approvals, undo, read state. Authenticate with `Authorization: Bearer <key>` (create keys with `kernos keys create`). Errors are RFC 7807 problem documents.",
        },
        "servers": [{"url": "/"}],
        "components": {
            "schemas": Value::Object(components),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "description": "An API key: kn_<id>_<secret>"}},
        },
        "security": auth,
        "paths": {
            "/v1/openapi.json": {"get": spec},
            "/v1/actions": {"post": submit},
            "/v1/actions/{id}/cancel": {"post": cancel},
            "/v1/events": {"get": events},
            "/v1/state/actions": {"get": actions},
            "/v1/state/actions/{id}": {"get": action},
            "/v1/state/approvals": {"get": approvals},
            "/v1/state/transactions": {"get": transactions},
            "/v1/state/usage": {"get": usage},
            "/v1/state/tools": {"get": tools},
            "/v1/approvals/{id}": {"post": decide},
            "/v1/undo/{tx}": {"post": undo},
            "/v1/keys": {"get": keys_list, "post": keys_create},
            "/v1/keys/{id}": {"delete": keys_revoke},
            "/v1/audit": {"get": audit},
            "/v1/audit.csv": {"get": audit_csv},
            "/metrics": {"get": metrics},
            "/healthz": {"get": healthz},
            "/readyz": {"get": readyz},
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reference_resolves() {
        let doc = openapi();
        let text = doc.to_string();
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        for part in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
            let name = part.split('"').next().unwrap();
            assert!(schemas.contains_key(name), "dangling $ref to {name}");
        }
        assert!(schemas.contains_key("Problem"));
        assert_eq!(doc["openapi"], "3.1.0");
    }
}
