//! Outbound policy: what `io.linkerd.proxy.outbound.OutboundPolicies`
//! says about a target (HTTPRoute / GRPCRoute routes, their filters,
//! backends, timeouts, retries, and the backends' failure accrual), as
//! plain types the router reads.
//!
//! ```text
//! target (orig-dst ip:port, or name:port)
//!   └─ PolicyCache::watch (shared per target, evicted when idle, bounded) ─► PolicyWatch
//!        └─ Watch(TrafficSpec{source_workload, target}) ─► convert ─► Lookup<OutboundPolicy>
//!             NotFound | Unimplemented | InvalidArgument ─► NotDiscoverable: no policy
//!             stream lost ─► backoff, keep the last answer
//! ```
//!
//! Whether the routes are used is the router's decision
//! ([`OutboundPolicy::routes_by_resource`]): a ServiceProfile with routes
//! or a traffic split wins, and a policy whose routes are all defaults
//! (the controller's implicit `default` route) leaves routing to the
//! profile, so a mesh without HTTPRoutes behaves exactly as before.

pub(crate) mod client;
pub(crate) mod convert;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use http::{HeaderName, HeaderValue, StatusCode};

use crate::policy::route_match::{GrpcRoute, HttpRoute};

pub(crate) use client::{PolicyCache, PolicyWatch};

/// What the controller says about one target.
#[derive(Clone, Debug)]
pub(crate) struct OutboundPolicy {
    /// The protocol and the routes for it.
    pub protocol: Protocol,
    /// Failure accrual of the protocol's backends, if configured.
    pub failure_accrual: Option<FailureAccrual>,
}

/// The target's protocol, with its routes.
#[derive(Clone, Debug)]
pub(crate) enum Protocol {
    /// Detect HTTP; HTTP/1 and HTTP/2 requests use their own route lists.
    Detect {
        /// Routes for HTTP/1 requests.
        http1: Vec<PolicyHttpRoute>,
        /// Routes for HTTP/2 requests.
        http2: Vec<PolicyHttpRoute>,
    },
    /// HTTP/1 only.
    Http1(Vec<PolicyHttpRoute>),
    /// HTTP/2 only.
    Http2(Vec<PolicyHttpRoute>),
    /// gRPC.
    Grpc(Vec<PolicyGrpcRoute>),
    /// Opaque TCP (or TLS): no HTTP routing.
    Opaque,
}

/// An HTTPRoute as the proxy matches it.
pub(crate) type PolicyHttpRoute = HttpRoute<RouteMeta, RouteRule>;
/// A GRPCRoute as the proxy matches it.
pub(crate) type PolicyGrpcRoute = GrpcRoute<RouteMeta, RouteRule>;

/// Which resource a route is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RouteMeta {
    /// The resource's name (the `rt_route` metric label); for a default,
    /// the default's name.
    pub name: Arc<str>,
    /// The resource's kind (`HTTPRoute`, `GRPCRoute`); `default` for the
    /// controller's implicit routes.
    pub kind: String,
    /// Whether it is an actual resource (not a controller default).
    pub is_resource: bool,
}

/// What a matched rule does.
#[derive(Clone, Debug, Default)]
pub(crate) struct RouteRule {
    /// Filters, in order.
    pub filters: Vec<Filter>,
    /// The backends and how they are chosen.
    pub distribution: Distribution,
    /// Limit on the whole request, retries included (response headers):
    /// 504 when it passes.
    pub request_timeout: Option<Duration>,
    /// Retries of failed responses, if any.
    pub retry: Option<RetryPolicy>,
}

/// How a rule's backends are chosen.
#[derive(Clone, Debug, Default)]
pub(crate) enum Distribution {
    /// No backend: requests fail (503).
    #[default]
    Empty,
    /// The first backend.
    FirstAvailable(Vec<RouteBackend>),
    /// A weighted random choice (zero weights dropped).
    RandomAvailable(Vec<RouteBackend>),
}

impl Distribution {
    /// The backends to choose among, with their weights.
    pub(crate) fn backends(&self) -> &[RouteBackend] {
        match self {
            Distribution::Empty => &[],
            // Linkerd's FirstAvailable takes the first backend.
            Distribution::FirstAvailable(backends) => &backends[..backends.len().min(1)],
            Distribution::RandomAvailable(backends) => backends,
        }
    }
}

/// One backend of a rule.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct RouteBackend {
    /// Where its endpoints come from.
    pub target: BackendTarget,
    /// Its weight (never zero in a `RandomAvailable`).
    pub weight: u32,
    /// Filters applied to requests sent to this backend.
    pub filters: Vec<Filter>,
    /// Limit on each attempt sent to this backend.
    pub request_timeout: Option<Duration>,
}

/// Where a backend's endpoints come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum BackendTarget {
    /// Destination `Get` of this path (`name:port`) and a balancer.
    Balancer(String),
    /// One address.
    Forward(std::net::SocketAddr),
}

/// A route or backend filter.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Filter {
    /// Modify the request's headers.
    RequestHeaders(HeaderModifier),
    /// Modify the response's headers.
    ResponseHeaders(HeaderModifier),
    /// Answer with a redirect.
    Redirect(Redirect),
    /// Answer with a failure for a share of requests.
    FailureInjector(FailureInjector),
}

/// Header changes, applied in order: add, set, remove.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct HeaderModifier {
    /// Values appended.
    pub add: Vec<(HeaderName, HeaderValue)>,
    /// Values replacing any present.
    pub set: Vec<(HeaderName, HeaderValue)>,
    /// Headers removed.
    pub remove: Vec<HeaderName>,
}

impl HeaderModifier {
    /// Applies the changes to `headers`.
    pub(crate) fn apply(&self, headers: &mut http::HeaderMap) {
        for (name, value) in &self.add {
            headers.append(name.clone(), value.clone());
        }
        for (name, value) in &self.set {
            headers.insert(name.clone(), value.clone());
        }
        for name in &self.remove {
            headers.remove(name);
        }
    }
}

/// A redirect answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Redirect {
    /// The scheme, if replaced.
    pub scheme: Option<http::uri::Scheme>,
    /// The host, if replaced.
    pub host: Option<String>,
    /// The path, if replaced.
    pub path: Option<PathRewrite>,
    /// The port, if replaced.
    pub port: Option<u16>,
    /// The status (302 when the policy leaves it unset, Gateway API's default).
    pub status: StatusCode,
}

/// How a redirect rewrites the path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum PathRewrite {
    /// The whole path.
    Full(String),
    /// The matched prefix.
    Prefix(String),
}

/// A failure answered for `numerator / denominator` of requests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FailureInjector {
    /// HTTP status (HTTP routes), or 200 with `grpc_code`.
    pub status: StatusCode,
    /// gRPC status code (gRPC routes).
    pub grpc_code: Option<u32>,
    /// The message (`l5d-proxy-error`, `grpc-message`).
    pub message: String,
    /// The share of requests failed.
    pub numerator: u32,
    /// Of this many.
    pub denominator: u32,
}

/// When and how often failed responses are retried.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct RetryPolicy {
    /// Retries per request at most.
    pub max_retries: u32,
    /// Which responses are retried.
    pub conditions: RetryConditions,
    /// Limit on each attempt (a timed-out attempt is retried).
    pub timeout: Option<Duration>,
    /// Requests with a larger body are not retried.
    pub max_request_bytes: usize,
}

/// Which responses are retried.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum RetryConditions {
    /// HTTP statuses within any of these inclusive ranges.
    Statuses(Vec<(u16, u16)>),
    /// gRPC statuses among these codes.
    GrpcCodes(Vec<u32>),
}

impl RetryConditions {
    /// Whether a response with `status` (and `grpc_status`) is retried.
    pub(crate) fn retries(&self, status: u16, grpc_status: Option<u32>) -> bool {
        match self {
            RetryConditions::Statuses(ranges) => ranges
                .iter()
                .any(|(start, end)| (*start..=*end).contains(&status)),
            RetryConditions::GrpcCodes(codes) => {
                grpc_status.is_some_and(|code| codes.contains(&code))
            }
        }
    }
}

/// Failure accrual (circuit breaking) of a backend's endpoints: after
/// `max_failures` consecutive failures an endpoint is ejected for a
/// backoff growing from `min_backoff` to `max_backoff`, then probed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct FailureAccrual {
    /// Consecutive failures that eject an endpoint (never zero).
    pub max_failures: u32,
    /// The first ejection.
    pub min_backoff: Duration,
    /// The longest ejection.
    pub max_backoff: Duration,
    /// Up to this share of the backoff is added at random.
    pub jitter_ratio: f64,
}

impl OutboundPolicy {
    /// Whether HTTP routing should follow this policy: some route for the
    /// request's protocol is an actual HTTPRoute/GRPCRoute (not only the
    /// controller's defaults).
    pub(crate) fn routes_by_resource(&self) -> bool {
        let http = |routes: &[PolicyHttpRoute]| routes.iter().any(|route| route.data.is_resource);
        match &self.protocol {
            Protocol::Detect { http1, http2 } => http(http1) || http(http2),
            Protocol::Http1(routes) | Protocol::Http2(routes) => http(routes),
            Protocol::Grpc(routes) => routes.iter().any(|route| route.data.is_resource),
            Protocol::Opaque => false,
        }
    }
}
