//! The router, built from the route table ([`ROUTES`]): each entry's handler is registered
//! for its verb and path behind a layer that checks the entry's [`Access`](crate::auth::Access)
//! before the handler runs. Handlers live in one module per resource.

mod actions;
mod agents;
mod approvals;
mod audit;
mod events;
mod fleet;
mod journal;
mod keys;
mod leases;
mod log;
mod monitors;
mod offload;
mod route;
mod schedules;
mod session;
mod skills;
mod system;
mod table;
mod tools;
mod transactions;
mod usage;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::MethodRouter;

pub use route::{Content, Param, Reply, RequestBody, Route, Schema, SchemaFn, Verb};
pub use table::ROUTES;

use crate::authn::authorize;
use crate::middleware::{guard, method_not_allowed, not_found};
use crate::{St, State};

/// Builds the router over a daemon's state.
pub fn app(state: Arc<State>) -> Router {
    let body_limit = state.config().body_limit;
    let routes = ROUTES
        .iter()
        .fold(Router::new(), |r, route| {
            r.route(route.path, endpoint(route, &state))
        })
        .merge(crate::dashboard::router())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed);
    routes
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(middleware::from_fn_with_state(state.clone(), guard))
        .layer(
            tower_http::trace::TraceLayer::new_for_http()
                .make_span_with(
                    tower_http::trace::DefaultMakeSpan::new().level(tracing::Level::DEBUG),
                )
                .on_response(
                    tower_http::trace::DefaultOnResponse::new().level(tracing::Level::DEBUG),
                ),
        )
        .with_state(state)
}

/// A route's handler for its verb, behind its access check.
fn endpoint(route: &Route, st: &St) -> MethodRouter<St> {
    (route.handler)(route.verb.filter()).route_layer(middleware::from_fn_with_state(
        (st.clone(), route.access),
        authorize,
    ))
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::auth::Access;

    #[test]
    fn each_verb_and_path_is_in_the_table_once() {
        let mut seen = HashSet::new();
        for r in ROUTES {
            assert!(seen.insert((r.verb, r.path)), "{r:?} is in the table twice");
        }
    }

    /// Path parameters are documented exactly as the path names them.
    #[test]
    fn path_parameters_match_the_path() {
        for r in ROUTES {
            let in_path: Vec<&str> = r
                .path
                .split('/')
                .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
                .collect();
            let documented: Vec<&str> = r
                .params
                .iter()
                .filter_map(|p| match p {
                    Param::Path { name, .. } => Some(*name),
                    _ => None,
                })
                .collect();
            assert_eq!(in_path, documented, "{r:?}");
        }
    }

    /// The words a reader sees agree with the check the router makes.
    #[test]
    fn descriptions_state_the_access_the_router_checks() {
        for r in ROUTES {
            match r.access {
                Access::Perm(p) => {
                    let needs = format!("Needs {}.", p.min_role());
                    assert!(r.description.contains(&needs), "{r:?}: say {needs:?}");
                }
                Access::HostOperator => {
                    assert!(r.description.contains("Host operator only"), "{r:?}")
                }
                Access::Public => assert!(!r.description.contains("Needs "), "{r:?}"),
            }
        }
    }
}
