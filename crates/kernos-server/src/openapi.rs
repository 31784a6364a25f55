//! The OpenAPI 3.1 document, built from the route table ([`crate::routes::ROUTES`]) and the
//! wire types' schemars schemas, so it lists exactly the routes the router serves and says
//! exactly what the handlers accept and return.

use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, SchemaGenerator};
use serde_json::{Map, Value, json};

use crate::auth::Access;
use crate::error::Problem;
use crate::routes::{Content, Param, ROUTES, Reply, Route, Schema, SchemaFn};

struct Doc {
    generator: SchemaGenerator,
}

impl Doc {
    fn schema<T: JsonSchema>(&mut self) -> Value {
        self.of(SchemaGenerator::subschema_for::<T>)
    }

    fn of(&mut self, f: SchemaFn) -> Value {
        serde_json::to_value(f(&mut self.generator)).unwrap_or(Value::Null)
    }

    fn value(&mut self, s: Schema) -> Value {
        match s {
            Schema::Of(f) => self.of(f),
            Schema::AnyObject => json!({"type": "object"}),
        }
    }

    /// Query parameters from a struct's root schema: one parameter per property.
    fn query_params(&mut self, root: SchemaFn) -> Vec<Value> {
        let root = serde_json::to_value(root(&mut self.generator)).unwrap_or_default();
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

    fn params(&mut self, params: &[Param]) -> Vec<Value> {
        let mut out = Vec::new();
        for p in params {
            match *p {
                Param::Path { name, description } => out.push(json!({
                    "name": name, "in": "path", "required": true,
                    "description": description, "schema": {"type": "string"},
                })),
                Param::Query(root) => out.extend(self.query_params(root)),
                Param::Header {
                    name,
                    description,
                    schema,
                } => out.push(json!({
                    "name": name, "in": "header", "required": false,
                    "description": description, "schema": schema(),
                })),
            }
        }
        out
    }

    fn responses(&mut self, reply: &Reply) -> Value {
        let content = match reply.content {
            Content::Json(s) => json_content(self.value(s)),
            Content::JsonList(s) => json_content(json!({"type": "array", "items": self.value(s)})),
            Content::Text(media) => json!({media: {"schema": {"type": "string"}}}),
        };
        let mut m = Map::new();
        m.insert(
            reply.status.to_string(),
            json!({"description": reply.description, "content": content}),
        );
        m.insert(
            "default".into(),
            json!({
                "description": "An RFC 7807 problem document saying what went wrong and what to do (400 bad input, 401 no or bad key, 403 role too low, 404 not found in your organisation, 409 conflict, 413 body too large, 422 not acceptable, 402 quota used up, 429 rate limit or full queue with Retry-After, 503 busy or stopping).",
                "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
            }),
        );
        Value::Object(m)
    }

    fn operation(&mut self, r: &Route) -> Value {
        let security = match r.access {
            Access::Public => json!([]),
            Access::Perm(_) | Access::HostOperator => bearer(),
        };
        let mut o = json!({
            "summary": r.summary,
            "description": r.description,
            "security": security,
            "responses": self.responses(&r.reply),
        });
        if !r.params.is_empty() {
            o["parameters"] = Value::Array(self.params(r.params));
        }
        if let Some(b) = r.body {
            o["requestBody"] =
                json!({"required": b.required, "content": json_content(self.of(b.schema))});
        }
        o
    }
}

fn json_content(schema: Value) -> Value {
    json!({"application/json": {"schema": schema}})
}

fn bearer() -> Value {
    json!([{"bearer": []}])
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
    let mut paths = Map::new();
    for r in ROUTES {
        let op = d.operation(r);
        let item = paths.entry(r.path).or_insert_with(|| json!({}));
        item[r.verb.openapi_key()] = op;
    }
    let mut components = Map::new();
    for (k, v) in d.generator.take_definitions(true) {
        components.insert(k, v);
    }
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
        "security": bearer(),
        "paths": Value::Object(paths),
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

    /// Every route of the table is documented, with its verb, and nothing else is.
    #[test]
    fn the_document_lists_exactly_the_route_table() {
        let doc = openapi();
        let mut documented: Vec<(String, String)> = doc["paths"]
            .as_object()
            .unwrap()
            .iter()
            .flat_map(|(p, item)| {
                item.as_object()
                    .unwrap()
                    .keys()
                    .map(move |v| (v.clone(), p.clone()))
            })
            .collect();
        let mut table: Vec<(String, String)> = ROUTES
            .iter()
            .map(|r| (r.verb.openapi_key().to_owned(), r.path.to_owned()))
            .collect();
        documented.sort();
        table.sort();
        assert_eq!(documented, table);
    }
}
