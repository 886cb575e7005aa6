//! The per-request stage: decide where a request goes, forward it, and
//! stream the response back — in three named phases.
//!
//! 1. **Context**: the destination (the connection's fixed target, or the
//!    request's own on the explicit listener, each first asked of discovery
//!    outbound) and the metric labels. A logical service goes on to
//!    [`logical`]: routes, retries, timeouts, splits, balancing.
//! 2. **Early checks**: malformed targets, unresolvable names and forwarding
//!    loops are answered by the proxy (see [`errors`](crate::http::errors)).
//! 3. **Proxy** (see [`upstream`]): hop-by-hop headers stripped, the request
//!    sent over the endpoint's pooled HTTP/1.1 or multiplexed HTTP/2
//!    connection (or its own connection for Upgrade/CONNECT, which become raw
//!    tunnels after the 101/2xx), and the response body streamed back and
//!    recorded at its end.

use crate::connect;
use crate::context::{ConnectionContext, Target};
use crate::direction::Direction;
use crate::discovery::EndpointMeta;
use crate::http::body::{ProxyBody, ResponseRecorder, RouteRecording};
use crate::http::errors::ProxyError;
use crate::http::upstream::{self, OrigHeaderCase, Upstream, error_response, open_tunnel};
use crate::http::{authorize, headers, logical};
use crate::metrics::labels::HttpLabels;
use crate::routing::{LogicalTarget, Plan};
use crate::tap::TapRequest;
use http::{Method, Request, Response, Version};
use hyper::body::Incoming;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

/// Where one request goes.
enum Destination {
    /// One address: the original destination, an explicit target resolved
    /// by DNS, or the endpoint discovery named (with its labels).
    Direct {
        addr: SocketAddr,
        meta: Option<EndpointMeta>,
    },
    /// A logical service: routed, split and balanced (see [`logical`]).
    Logical(Arc<LogicalTarget>),
}

/// Handles one request from a client connection. From a peer proxy
/// (`mesh_client`, inbound), the mesh's `l5d-*` headers count only when the
/// peer's identity was verified, an HTTP/1 request that crossed the HTTP/2
/// hop (`l5d-orig-proto`) is sent on as HTTP/1 again, and `l5d-client-id`
/// names the verified identity.
pub(crate) async fn handle(
    context: Arc<ConnectionContext>,
    mut request: Request<Incoming>,
    mesh_client: bool,
) -> Response<ProxyBody> {
    let started = Instant::now();
    let is_grpc = headers::is_grpc(request.headers()) && request.version() == Version::HTTP_2;
    // The mesh's headers count only from a verified peer.
    if mesh_client && context.client_identity.is_none() {
        headers::strip_mesh_headers(request.headers_mut());
    }
    if headers::has_duplicate_host(request.headers()) {
        return error_response(&context, ProxyError::DuplicateHost, is_grpc, None);
    }
    // Header names as the client wrote them, when the server read them.
    if request.version() != Version::HTTP_2
        && let Some(heads) = context.heads_if_sniffed()
        && let Some(spellings) = heads.take(request.method().as_str(), request.uri())
    {
        request.extensions_mut().insert(OrigHeaderCase(spellings));
    }

    // 1. Context: the destination and the labels.
    let (destination, authority) = match destination(&context, &request).await {
        Ok(destination) => destination,
        Err(error) => return error_response(&context, error, is_grpc, None),
    };
    let (addr, meta) = match destination {
        Destination::Logical(target) => {
            // Boxed, like every path most requests do not take: the handler's
            // future (moved into a box per request by the server) stays small.
            return Box::pin(logical::handle(&context, request, target, started, is_grpc)).await;
        }
        Destination::Direct { addr, meta } => (addr, meta),
    };
    let target_labels = match &meta {
        Some(meta) => meta.labels.clone(),
        None => context.target_labels(addr),
    };
    let labels = HttpLabels {
        direction: context.direction,
        authority,
        target: target_labels,
    };
    // Inbound, the route of the service the request names (if its profile
    // has routes) labels the route metrics.
    let route = match context.direction {
        Direction::Inbound if context.proxy.router.is_some() => {
            Box::pin(inbound_route(&context, &request, started)).await
        }
        Direction::Inbound => None,
        Direction::Outbound => None,
    };
    let metrics = &context.proxy.metrics.http;
    metrics.request(&labels, context.metric_handles());
    let tap = context.proxy.taps.begin(&TapRequest {
        direction: context.direction,
        source: context.client_addr,
        destination: addr,
        target: &labels.target,
        route: route.as_ref().map(|route| &route.labels),
        method: request.method(),
        uri: request.uri(),
        headers: request.headers(),
        version: request.version(),
    });
    let recorder = ResponseRecorder::new(
        metrics.clone(),
        context.metric_handles().clone(),
        labels,
        started,
    )
    .with_tap(tap);
    let recorder = match route {
        Some(route) => recorder.with_route(route),
        None => recorder,
    };

    // 2. Early checks: inbound authorization first (a denied request is
    //    answered 403 through the tap and never reaches the app), then loops.
    if let Err(error) = authorize::request(&context, &request, &recorder.target_labels()) {
        return error_response(&context, error, is_grpc, Some(recorder));
    }
    if context.proxy.is_own_listener(addr) {
        return error_response(&context, ProxyError::Loop(addr), is_grpc, Some(recorder));
    }
    if context.target == Target::Explicit && request.method() == Method::CONNECT {
        return open_tunnel(&context, &mut request, addr, meta, recorder);
    }

    // 3. Proxy.
    let upstream = match Upstream::new(&context, addr, recorder.target_labels(), meta.as_ref()) {
        Ok(upstream) => upstream,
        Err(error) => return error_response(&context, error, is_grpc, Some(recorder)),
    };
    upstream::proxy_to(&context, request, upstream, recorder, is_grpc, mesh_client).await
}

/// The route recording of an inbound request: the route of the service its
/// `l5d-dst-canonical` or authority names, from that service's profile,
/// counted in `route_request_total` now. `None` when there is no profile
/// with routes for it (see [`crate::routing::inbound`]).
async fn inbound_route(
    context: &ConnectionContext,
    request: &Request<Incoming>,
    started: Instant,
) -> Option<RouteRecording> {
    // Without discovery, nothing to parse.
    context.proxy.router.as_ref()?;
    let (host, port) = headers::logical_name(request.uri(), request.headers())?;
    let routes = context.inbound_routes(&host, port).await?;
    let choice = routes.route(request.method(), request.uri().path());
    let metrics = &context.proxy.metrics.route;
    metrics.request(choice.labels, context.route_handles());
    Some(RouteRecording {
        metrics: metrics.clone(),
        labels: choice.labels.clone(),
        classes: choice.classes(),
        started,
        cache: context.route_handles().clone(),
    })
}

/// The request's destination and its `authority` metric label.
async fn destination(
    context: &ConnectionContext,
    request: &Request<Incoming>,
) -> Result<(Destination, Arc<str>), ProxyError> {
    match context.target {
        Target::Addr(addr) => {
            let plan = match context.settled_plan() {
                Some(plan) => plan,
                None => Box::pin(context.plan_for_addr(addr)).await,
            };
            if let Plan::Logical(target) = plan {
                let authority = target.name.clone();
                return Ok((Destination::Logical(target), authority));
            }
            let authority = match headers::authority_of(request.uri(), request.headers()) {
                Some(authority) => context.authority_label(authority),
                None => context.authority_label(&addr.to_string()),
            };
            let destination = match plan {
                Plan::Endpoint { addr, meta, .. } => Destination::Direct {
                    addr,
                    meta: Some(meta),
                },
                _ => Destination::Direct { addr, meta: None },
            };
            Ok((destination, authority))
        }
        Target::Explicit => {
            let explicit = headers::explicit_target(
                request.method(),
                request.uri(),
                request.version() == Version::HTTP_2,
            )?;
            let plan = match context.settled_plan() {
                Some(plan) => plan,
                None => Box::pin(context.plan_for_name(&explicit.host, explicit.port)).await,
            };
            let destination = match plan {
                Plan::Logical(target) => {
                    let authority = target.name.clone();
                    return Ok((Destination::Logical(target), authority));
                }
                Plan::Endpoint { addr, meta, .. } => Destination::Direct {
                    addr,
                    meta: Some(meta),
                },
                Plan::Original => Destination::Direct {
                    addr: Box::pin(connect::resolve(&explicit.host, explicit.port)).await?,
                    meta: None,
                },
            };
            Ok((destination, context.authority_label(&explicit.authority)))
        }
    }
}
