//! The route table: every endpoint of the API, once. The router registers exactly these
//! (each with its access check), the OpenAPI document describes exactly these, and the role ×
//! endpoint test walks exactly these, so the three cannot disagree.

use axum::routing::on;
use schemars::SchemaGenerator;
use serde_json::json;

use super::route::{Content, Param, Reply, RequestBody, Route, Schema, Verb};
use super::{actions, approvals, audit, events, keys, system, tools, transactions, usage};
use crate::auth::{Access, KeyInfo, Perm};
use crate::wire::{
    Accepted, ActionDetail, ActionSummary, ApprovalAnswer, ApprovalView, AuditParams, AuditRecord,
    Cancelled, Decided, EventParams, Health, KeyCreate, KeyCreated, KeyListParams, ListParams,
    SubmitRequest, UndoRequest, UsageView,
};

const OK: &str = "OK";

/// Every endpoint, in the order the OpenAPI document was first written.
pub static ROUTES: &[Route] = &[
    Route {
        verb: Verb::Get,
        path: "/v1/openapi.json",
        access: Access::Public,
        summary: "This document",
        description: "The OpenAPI 3.1 description of the API.",
        params: &[],
        body: None,
        reply: Reply {
            status: 200,
            description: OK,
            content: Content::Json(Schema::AnyObject),
        },
        handler: |m| on(m, system::openapi_doc),
    },
    Route {
        verb: Verb::Post,
        path: "/v1/actions",
        access: Access::Perm(Perm::Submit),
        summary: "Submit an action",
        description: "A request in plain language or a plan. Answers 202 at once with the action id; planning and running continue in the background (follow GET /v1/events?action=<id>). Needs operator. An Idempotency-Key header makes retries safe.",
        params: &[Param::Header {
            name: "Idempotency-Key",
            description: "Same key and body within 24 h: the same action id is answered again.",
            schema: || json!({"type": "string", "minLength": 1, "maxLength": 255}),
        }],
        body: Some(RequestBody {
            required: true,
            schema: SchemaGenerator::subschema_for::<SubmitRequest>,
        }),
        reply: Reply {
            status: 202,
            description: "Accepted",
            content: Content::Json(Schema::Of(SchemaGenerator::subschema_for::<Accepted>)),
        },
        handler: |m| on(m, actions::submit),
    },
    Route {
        verb: Verb::Post,
        path: "/v1/actions/{id}/cancel",
        access: Access::Perm(Perm::Submit),
        summary: "Cancel an action",
        description: "A running step stops cleanly (journaled as cancelled; what it did can be undone); a queued action never starts. Needs operator.",
        params: &[Param::Path {
            name: "id",
            description: "Action id",
        }],
        body: None,
        reply: Reply {
            status: 200,
            description: "Cancelling",
            content: Content::Json(Schema::Of(SchemaGenerator::subschema_for::<Cancelled>)),
        },
        handler: |m| on(m, actions::cancel),
    },
    Route {
        verb: Verb::Get,
        path: "/v1/events",
        access: Access::Perm(Perm::Read),
        summary: "Stream events (SSE)",
        description: "Server-Sent Events of your organisation, each with its journal sequence number as id. Resume with Last-Event-ID or ?after=: exactly the missed events in order, then live ones. A gap larger than the replay limit gets a `resync` event. With ?action= and no resume point, the stream starts at that action's first event. Needs viewer.",
        params: &[
            Param::Query(SchemaGenerator::root_schema_for::<EventParams>),
            Param::Header {
                name: "Last-Event-ID",
                description: "Sequence number of the last event received.",
                schema: || json!({"type": "string", "pattern": "^[0-9]+$"}),
            },
        ],
        body: None,
        reply: Reply {
            status: 200,
            description: "An event stream",
            content: Content::Text("text/event-stream"),
        },
        handler: |m| on(m, events::events),
    },
    Route {
        verb: Verb::Get,
        path: "/v1/state/actions",
        access: Access::Perm(Perm::Read),
        summary: "List actions",
        description: "Your organisation's actions, newest first. Needs viewer.",
        params: &[Param::Query(SchemaGenerator::root_schema_for::<ListParams>)],
        body: None,
        reply: Reply {
            status: 200,
            description: OK,
            content: Content::JsonList(Schema::Of(SchemaGenerator::subschema_for::<ActionSummary>)),
        },
        handler: |m| on(m, actions::list_actions),
    },
    Route {
        verb: Verb::Get,
        path: "/v1/state/actions/{id}",
        access: Access::Perm(Perm::Read),
        summary: "One action",
        description: "Every event of one action of your organisation. Needs viewer.",
        params: &[Param::Path {
            name: "id",
            description: "Action id",
        }],
        body: None,
        reply: Reply {
            status: 200,
            description: OK,
            content: Content::Json(Schema::Of(SchemaGenerator::subschema_for::<ActionDetail>)),
        },
        handler: |m| on(m, actions::get_action),
    },
    Route {
        verb: Verb::Get,
        path: "/v1/state/approvals",
        access: Access::Perm(Perm::Read),
        summary: "Pending approvals",
        description: "Steps of your organisation waiting for an answer. Needs viewer.",
        params: &[],
        body: None,
        reply: Reply {
            status: 200,
            description: OK,
            content: Content::JsonList(Schema::Of(SchemaGenerator::subschema_for::<ApprovalView>)),
        },
        handler: |m| on(m, approvals::list_approvals),
    },
    Route {
        verb: Verb::Get,
        path: "/v1/state/transactions",
        access: Access::Perm(Perm::Read),
        summary: "Transactions",
        description: "Your organisation's transactions, newest first. Needs viewer.",
        params: &[Param::Query(SchemaGenerator::root_schema_for::<ListParams>)],
        body: None,
        reply: Reply {
            status: 200,
            description: OK,
            content: Content::JsonList(Schema::AnyObject),
        },
        handler: |m| on(m, transactions::list_transactions),
    },
    Route {
        verb: Verb::Get,
        path: "/v1/state/transactions/{tx}",
        access: Access::Perm(Perm::Read),
        summary: "One transaction",
        description: "Every event of one of your organisation's transactions, in order. The id may be a unique part of it (at least 4 characters), as `kernos show` takes it. Needs viewer.",
        params: &[Param::Path {
            name: "tx",
            description: "Transaction id, or a unique part of it",
        }],
        body: None,
        reply: Reply {
            status: 200,
            description: OK,
            content: Content::JsonList(Schema::AnyObject),
        },
        handler: |m| on(m, transactions::get_transaction),
    },
    Route {
        verb: Verb::Get,
        path: "/v1/state/usage",
        access: Access::Perm(Perm::Read),
        summary: "Usage",
        description: "Run units used this month and before, and the quota. Needs viewer.",
        params: &[],
        body: None,
        reply: Reply {
            status: 200,
            description: OK,
            content: Content::Json(Schema::Of(SchemaGenerator::subschema_for::<UsageView>)),
        },
        handler: |m| on(m, usage::usage),
    },
    Route {
        verb: Verb::Get,
        path: "/v1/state/tools",
        access: Access::Perm(Perm::Read),
        summary: "Tool catalog",
        description: "Every tool and action with its effects. Needs viewer.",
        params: &[],
        body: None,
        reply: Reply {
            status: 200,
            description: OK,
            content: Content::JsonList(Schema::AnyObject),
        },
        handler: |m| on(m, tools::tools),
    },
    Route {
        verb: Verb::Post,
        path: "/v1/approvals/{id}",
        access: Access::Perm(Perm::Approve),
        summary: "Approve or deny a step",
        description: "Answers a pending approval. Operators may approve low and medium risk steps, admins and owners high risk ones. Needs operator.",
        params: &[Param::Path {
            name: "id",
            description: "Approval id",
        }],
        body: Some(RequestBody {
            required: true,
            schema: SchemaGenerator::subschema_for::<ApprovalAnswer>,
        }),
        reply: Reply {
            status: 200,
            description: "Decided",
            content: Content::Json(Schema::Of(SchemaGenerator::subschema_for::<Decided>)),
        },
        handler: |m| on(m, approvals::decide),
    },
    Route {
        verb: Verb::Post,
        path: "/v1/undo/{tx}",
        access: Access::Perm(Perm::Undo),
        summary: "Undo a transaction",
        description: "Queues an undo of one of your organisation's transactions; answers 202 with the action id. Needs operator.",
        params: &[Param::Path {
            name: "tx",
            description: "Transaction id",
        }],
        body: Some(RequestBody {
            required: false,
            schema: SchemaGenerator::subschema_for::<UndoRequest>,
        }),
        reply: Reply {
            status: 202,
            description: "Accepted",
            content: Content::Json(Schema::Of(SchemaGenerator::subschema_for::<Accepted>)),
        },
        handler: |m| on(m, transactions::undo),
    },
    Route {
        verb: Verb::Get,
        path: "/v1/keys",
        access: Access::Perm(Perm::ManageKeys),
        summary: "List API keys",
        description: "Keys of your organisation (never the secrets). Needs admin.",
        params: &[Param::Query(
            SchemaGenerator::root_schema_for::<KeyListParams>,
        )],
        body: None,
        reply: Reply {
            status: 200,
            description: OK,
            content: Content::JsonList(Schema::Of(SchemaGenerator::subschema_for::<KeyInfo>)),
        },
        handler: |m| on(m, keys::list_keys),
    },
    Route {
        verb: Verb::Post,
        path: "/v1/keys",
        access: Access::Perm(Perm::ManageKeys),
        summary: "Create an API key",
        description: "A 256-bit key, shown once in the answer and stored only as its SHA-256. Admins create keys up to admin, owners up to owner. Needs admin.",
        params: &[],
        body: Some(RequestBody {
            required: true,
            schema: SchemaGenerator::subschema_for::<KeyCreate>,
        }),
        reply: Reply {
            status: 201,
            description: "Created",
            content: Content::Json(Schema::Of(SchemaGenerator::subschema_for::<KeyCreated>)),
        },
        handler: |m| on(m, keys::create_key),
    },
    Route {
        verb: Verb::Delete,
        path: "/v1/keys/{id}",
        access: Access::Perm(Perm::ManageKeys),
        summary: "Revoke an API key",
        description: "The key stops working at once. Needs admin.",
        params: &[Param::Path {
            name: "id",
            description: "Key id",
        }],
        body: None,
        reply: Reply {
            status: 200,
            description: "Revoked",
            content: Content::Json(Schema::Of(SchemaGenerator::subschema_for::<KeyInfo>)),
        },
        handler: |m| on(m, keys::revoke_key),
    },
    Route {
        verb: Verb::Get,
        path: "/v1/audit",
        access: Access::Perm(Perm::Audit),
        summary: "Audit log",
        description: "Every mutation (actions, approvals, undo, keys, config) of your organisation, oldest first. Needs admin.",
        params: &[Param::Query(
            SchemaGenerator::root_schema_for::<AuditParams>,
        )],
        body: None,
        reply: Reply {
            status: 200,
            description: OK,
            content: Content::JsonList(Schema::Of(SchemaGenerator::subschema_for::<AuditRecord>)),
        },
        handler: |m| on(m, audit::audit_json),
    },
    Route {
        verb: Verb::Get,
        path: "/v1/audit.csv",
        access: Access::Perm(Perm::Audit),
        summary: "Audit log as CSV",
        description: "The same records as GET /v1/audit, as CSV. Needs admin.",
        params: &[Param::Query(
            SchemaGenerator::root_schema_for::<AuditParams>,
        )],
        body: None,
        reply: Reply {
            status: 200,
            description: "CSV",
            content: Content::Text("text/csv"),
        },
        handler: |m| on(m, audit::audit_csv),
    },
    Route {
        verb: Verb::Get,
        path: "/metrics",
        access: Access::HostOperator,
        summary: "Prometheus metrics",
        description: "Request latency by route, actions by outcome, queue depth, run units by org. Host operator only (Unix socket, or an owner key of org `local`).",
        params: &[],
        body: None,
        reply: Reply {
            status: 200,
            description: "Prometheus text",
            content: Content::Text("text/plain"),
        },
        handler: |m| on(m, system::metrics),
    },
    Route {
        verb: Verb::Get,
        path: "/healthz",
        access: Access::Public,
        summary: "Liveness",
        description: "Always 200 while the process runs.",
        params: &[],
        body: None,
        reply: Reply {
            status: 200,
            description: OK,
            content: Content::Json(Schema::Of(SchemaGenerator::subschema_for::<Health>)),
        },
        handler: |m| on(m, system::healthz),
    },
    Route {
        verb: Verb::Get,
        path: "/readyz",
        access: Access::Public,
        summary: "Readiness",
        description: "200 when the journal answers and the daemon is not stopping.",
        params: &[],
        body: None,
        reply: Reply {
            status: 200,
            description: "Ready",
            content: Content::Json(Schema::Of(SchemaGenerator::subschema_for::<Health>)),
        },
        handler: |m| on(m, system::readyz),
    },
];
