//! Tap: `GET /api/tap` streams live requests of the proxies a resource
//! covers, as NDJSON (`docs/api.md`).
//!
//! ```text
//! GET /api/tap?kind=…&namespace=…[&name=…][&to=…][&method=…][&authority=…][&path=…][&max_rps=…]
//!   1. authorize   token::ApiToken (Bearer header only)          ─► 401 {"error"}
//!   2. parse       query::TapRequest                             ─► 400 {"error"}
//!   3. resolve     targets::resolve (catalog → meshed workloads)  ─► 404 {"error"}
//!   4. stream      fanout::TapSession: Observe on every proxy's tap port,
//!                  events::tap_event on each event, lines multiplexed until
//!                  the client disconnects
//! ```
//!
//! Proxies are reached with gRPC (`tap_client`) at their workload's tap
//! address: with identity on, over mutual TLS with the controller's own
//! certificate, except to loopback addresses under `--tap-tls auto` (`weft
//! up` runs every proxy on loopback, where the proxy serves tap in plaintext).

pub mod events;
pub mod fanout;
pub mod query;
pub mod targets;
pub mod token;

use std::collections::HashMap;
use std::sync::{Arc, PoisonError};

use axum::Router;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use weft_core::names::ServiceName;

use crate::api::ApiError;
use crate::catalog::SharedCatalog;
use query::{ResourceKind, TapRequest};
use targets::{Peers, resolve};
use token::ApiToken;

/// Tap's metrics.
#[derive(Debug, Clone, Default)]
pub struct TapMetrics {
    /// Sessions streaming now.
    pub sessions: Gauge,
    /// Events sent to clients.
    pub events: Counter,
    /// Callers refused for a missing or wrong token.
    pub unauthorized: Counter,
    /// Observe calls that failed (proxy unreachable, refused, stream error).
    pub proxy_errors: Counter,
}

impl TapMetrics {
    /// Registers the families in `registry`.
    pub fn new(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        registry.register(
            "tap_sessions",
            "Tap sessions streaming to clients",
            metrics.sessions.clone(),
        );
        registry.register(
            "tap_events",
            "Tap events sent to clients",
            metrics.events.clone(),
        );
        registry.register(
            "tap_unauthorized",
            "Tap requests refused for a missing or wrong API token",
            metrics.unauthorized.clone(),
        );
        registry.register(
            "tap_proxy_errors",
            "Observe calls to proxies that failed or could not connect",
            metrics.proxy_errors.clone(),
        );
        metrics
    }
}

/// What `/api/tap` reads.
#[derive(Debug, Clone)]
pub struct TapState {
    /// The mesh model (targets and hydration).
    pub catalog: SharedCatalog,
    /// The API token; `None` refuses every caller.
    pub token: Option<ApiToken>,
    /// How proxies are reached (TLS or not).
    pub connector: fanout::ProxyConnector,
    /// Tap's metrics.
    pub metrics: TapMetrics,
}

/// The `/api/tap` route with its state.
pub fn router(state: Arc<TapState>) -> Router {
    Router::new().route("/api/tap", get(tap)).with_state(state)
}

async fn tap(
    State(state): State<Arc<TapState>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    // 1. Authorize.
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok());
    // A token in the URL (`?token=`) is not taken: logs and history keep URLs.
    let authorized = state
        .token
        .as_ref()
        .is_some_and(|token| token.authorizes(authorization));
    let in_url = query.contains_key("token");
    if !authorized || in_url {
        state.metrics.unauthorized.inc();
        let message = if in_url {
            "the API token is not taken from the URL (access logs and history keep URLs): \
             send it as `Authorization: Bearer <token>`"
        } else if state.token.is_some() {
            "tap needs the API token in the header `Authorization: Bearer <token>` (never in \
             the URL; the token is in the controller's --api-token-file)"
        } else {
            "tap needs the API token, and this controller has none: start it with --api-token-file"
        };
        let mut response = ApiError {
            status: StatusCode::UNAUTHORIZED,
            message: message.into(),
        }
        .into_response();
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return response;
    }

    // 2. Parse.
    let request = match TapRequest::parse(&query) {
        Ok(request) => request,
        Err(error) => return ApiError::bad_request(error.to_string()).into_response(),
    };

    // 3. Resolve the targets (one short lock).
    let (targets, peers) = {
        let catalog = state.catalog.lock().unwrap_or_else(PoisonError::into_inner);
        let workloads = catalog.workloads();
        let service = match (request.resource.kind, &request.resource.name) {
            (ResourceKind::Service, Some(name)) => catalog
                .service(&ServiceName::new(
                    request.resource.namespace.clone(),
                    name.clone(),
                ))
                .cloned(),
            _ => None,
        };
        let targets = resolve(&request.resource, &workloads, service.as_ref());
        (targets, Peers::new(&workloads))
    };
    if targets.is_empty() {
        return ApiError {
            status: StatusCode::NOT_FOUND,
            message: format!("no meshed workloads found for {}", request.resource),
        }
        .into_response();
    }
    tracing::info!(
        resource = %request.resource,
        proxies = targets.len(),
        max_rps = request.max_rps,
        "tap session started"
    );

    // 4. Stream.
    let observe = request.observe_request(targets.len());
    let session = fanout::TapSession::start(
        targets,
        observe,
        Arc::new(peers),
        &state.connector,
        state.metrics.clone(),
    );
    let mut response = Response::new(Body::from_stream(session));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
