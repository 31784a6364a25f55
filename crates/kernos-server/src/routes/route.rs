//! What one entry of the route table says: how the endpoint is called, who may call it, which
//! handler answers, and how the OpenAPI document describes it.

use axum::routing::{MethodFilter, MethodRouter};
use schemars::SchemaGenerator;
use serde_json::Value;

use crate::St;
use crate::auth::Access;

/// An HTTP method the API uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verb {
    /// GET (also answers HEAD).
    Get,
    /// POST.
    Post,
    /// DELETE.
    Delete,
}

impl Verb {
    /// The method's name in a request line: `GET`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "GET",
            Verb::Post => "POST",
            Verb::Delete => "DELETE",
        }
    }

    /// The key of an OpenAPI path item's operation: `get`.
    pub fn openapi_key(self) -> &'static str {
        match self {
            Verb::Get => "get",
            Verb::Post => "post",
            Verb::Delete => "delete",
        }
    }

    pub(crate) fn filter(self) -> MethodFilter {
        match self {
            Verb::Get => MethodFilter::GET,
            Verb::Post => MethodFilter::POST,
            Verb::Delete => MethodFilter::DELETE,
        }
    }
}

/// Makes the schema of a wire type in the OpenAPI document's generator (registering the
/// types it refers to as components).
pub type SchemaFn = fn(&mut SchemaGenerator) -> schemars::Schema;

/// A schema in the document.
#[derive(Clone, Copy)]
pub enum Schema {
    /// A wire type's.
    Of(SchemaFn),
    /// Any JSON object (types owned by other crates, or the document itself).
    AnyObject,
}

/// A parameter of a request.
#[derive(Clone, Copy)]
pub enum Param {
    /// A `{name}` segment of the path (always a string).
    Path {
        /// As in the path, without the braces.
        name: &'static str,
        /// What it names.
        description: &'static str,
    },
    /// Every field of a query-string type (pass its root schema).
    Query(SchemaFn),
    /// An optional header.
    Header {
        /// Header name.
        name: &'static str,
        /// What it does.
        description: &'static str,
        /// Its JSON schema.
        schema: fn() -> Value,
    },
}

/// A JSON request body.
#[derive(Clone, Copy)]
pub struct RequestBody {
    /// Whether it may be left out.
    pub required: bool,
    /// Its type.
    pub schema: SchemaFn,
}

/// What a successful answer carries.
#[derive(Clone, Copy)]
pub enum Content {
    /// One JSON value.
    Json(Schema),
    /// A JSON array of values.
    JsonList(Schema),
    /// Text of this media type (a stream, CSV, Prometheus metrics).
    Text(&'static str),
}

/// The successful answer (errors are problem documents everywhere).
#[derive(Clone, Copy)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// One or two words on it (`OK`, `Accepted`).
    pub description: &'static str,
    /// Body.
    pub content: Content,
}

/// How a route's handler is registered for its verb.
pub(crate) type Handler = fn(MethodFilter) -> MethodRouter<St>;

/// One endpoint: the single place its method, path, access and documentation are stated.
pub struct Route {
    /// Method.
    pub verb: Verb,
    /// Path, with `{name}` segments for parameters.
    pub path: &'static str,
    /// Who may call it; checked before the handler runs.
    pub access: Access,
    /// Short summary (OpenAPI).
    pub summary: &'static str,
    /// What it does and who may call it, in words (OpenAPI).
    pub description: &'static str,
    /// Path, query and header parameters, in the order documented.
    pub params: &'static [Param],
    /// Request body, if it takes one.
    pub body: Option<RequestBody>,
    /// The successful answer.
    pub reply: Reply,
    pub(crate) handler: Handler,
}

impl std::fmt::Debug for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} ({:?})",
            self.verb.as_str(),
            self.path,
            self.access
        )
    }
}
