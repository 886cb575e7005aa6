//! Requests to a logical service (a profile with a name): the route decides
//! the timeout, retries and response classes; each attempt goes to a backend
//! of the split and an endpoint its balancer picks.
//!
//! ```text
//! request ─► route (first match) ─► route_request_total
//!   └─ timeout (route's, covering every attempt, up to response headers) ─► 504
//!        └─ attempt: backend (dst_overrides weights) ─► endpoint (P2C peak-EWMA;
//!           │        no endpoint ─► wait ≤ failfast ─► 503; refused, or connection lost
//!           │        under an idempotent bodiless request ─► penalise, next endpoint)
//!           └─ response classified by the route: failure on a retryable route,
//!              body replayable (≤ 64 KiB, read in full) and budget allows? ─► next attempt
//! response ─► streamed back; route_response_total / latency at end of stream
//! ```
//!
//! Endpoint-level metrics (`request_total`, `response_total`) count every
//! attempt with its endpoint's `dst_*` labels; route metrics count requests
//! (`route_*`) and attempts (`route_actual_*`).

use crate::context::{ConnectionContext, Target};
use crate::direction::Direction;
use crate::http::body::{ProxyBody, ResponseRecorder, RouteRecording};
use crate::http::client::SendError;
use crate::http::errors::ProxyError;
use crate::http::headers::grpc_status_of;
use crate::http::request_body::{REPLAY_LIMIT, Replay, RequestBody};
use crate::http::upstream;
use crate::metrics::labels::{Classification, HttpLabels};
use crate::metrics::route::{RouteLabels, RouteOutcome};
use crate::routing::budget::RetryBudget;
use crate::routing::{
    Backend, CONNECT_ATTEMPTS, CONNECT_FAILURE_PENALTY, Lease, LogicalTarget, Router, policy,
};
use crate::tap::TapRequest;
use http::header::HeaderName;
use http::{HeaderMap, Method, Request, Response, Uri, Version};
use hyper::body::Incoming;
use std::sync::Arc;
use std::time::Instant;

/// The header naming the logical destination a request was routed to.
pub(crate) const L5D_DST_CANONICAL: HeaderName = HeaderName::from_static("l5d-dst-canonical");

/// Handles one request to a logical service.
pub(crate) async fn handle(
    context: &Arc<ConnectionContext>,
    mut request: Request<Incoming>,
    target: Arc<LogicalTarget>,
    started: Instant,
    is_grpc: bool,
) -> Response<ProxyBody> {
    let Some(router) = context.router() else {
        return upstream::error_response(context, ProxyError::MissingAuthority, is_grpc, None);
    };
    request
        .headers_mut()
        .insert(L5D_DST_CANONICAL, target.canonical.clone());

    // Tunnels (CONNECT, Upgrade) go to one balanced endpoint, unrouted.
    if upstream::is_upgrade(&request) {
        return tunnel(context, router, request, &target, started, is_grpc).await;
    }

    let explicit = context.target == Target::Explicit;
    upstream::prepare_request(&mut request, explicit, false);
    let choice = target.route(request.method(), request.uri().path());
    let route_labels = choice.labels.clone();
    let route = choice.route;
    let metrics = &context.proxy.metrics;
    metrics
        .route
        .request(&route_labels, context.route_handles());
    let route_recording = RouteRecording {
        metrics: metrics.route.clone(),
        labels: route_labels.clone(),
        classes: choice.classes(),
        started,
        cache: context.route_handles().clone(),
    };

    // Retries need a retryable route, a budget, and a replayable body.
    let budget = target
        .budget()
        .filter(|_| route.is_some_and(|route| route.is_retryable));
    if let Some(budget) = budget {
        budget.deposit(Instant::now());
    }
    let (parts, body) = request.into_parts();
    let (body, replay) = match budget {
        Some(_) => RequestBody::recording(body, REPLAY_LIMIT),
        None => (RequestBody::Streaming(body), None),
    };
    let retry = match (budget, replay) {
        (Some(budget), Some(replay)) => Some(Retry {
            budget,
            replay,
            head: RequestHead::of(&parts),
        }),
        _ => None,
    };
    let attempts = Attempts {
        context,
        router,
        target: &target,
        route_labels: &route_labels,
        classes: &route_recording.classes,
        retry,
    };
    let request = Request::from_parts(parts, body);
    let sent = match route.and_then(|route| route.timeout) {
        Some(timeout) => match tokio::time::timeout(timeout, attempts.run(request)).await {
            Ok(sent) => sent,
            Err(_) => Err(Failed::without_endpoint(ProxyError::ResponseTimeout(
                timeout,
            ))),
        },
        None => attempts.run(request).await,
    };
    match sent {
        Ok((response, recorder)) => {
            upstream::proxied_response(response, false, recorder.with_route(route_recording))
        }
        Err(failed) => {
            let recorder = match failed.recorder {
                Some(recorder) => Some(recorder.with_route(route_recording)),
                None => {
                    let status = failed.error.status().as_u16();
                    route_recording.finish(status, None, Some(failed.error.metric_label()));
                    None
                }
            };
            upstream::error_response(context, failed.error, is_grpc, recorder)
        }
    }
}

/// What a retry needs: the budget, the recorded body, the request head.
struct Retry<'a> {
    budget: &'a RetryBudget,
    replay: Replay,
    head: RequestHead,
}

/// The parts of a request needed to send it again.
struct RequestHead {
    method: Method,
    uri: Uri,
    version: Version,
    headers: HeaderMap,
}

impl RequestHead {
    fn of(parts: &http::request::Parts) -> RequestHead {
        RequestHead {
            method: parts.method.clone(),
            uri: parts.uri.clone(),
            version: parts.version,
            headers: parts.headers.clone(),
        }
    }

    fn request(&self, body: RequestBody) -> Request<RequestBody> {
        let mut request = Request::new(body);
        *request.method_mut() = self.method.clone();
        *request.uri_mut() = self.uri.clone();
        *request.version_mut() = self.version;
        *request.headers_mut() = self.headers.clone();
        request
    }
}

/// A request that got no response to pass on, with the recorder of the
/// endpoint it failed on, if it reached one.
struct Failed {
    error: ProxyError,
    recorder: Option<ResponseRecorder>,
}

impl Failed {
    fn without_endpoint(error: impl Into<ProxyError>) -> Failed {
        Failed {
            error: error.into(),
            recorder: None,
        }
    }
}

/// The attempts of one request.
struct Attempts<'a> {
    context: &'a Arc<ConnectionContext>,
    router: &'a Router,
    target: &'a LogicalTarget,
    route_labels: &'a RouteLabels,
    classes: &'a [crate::routing::profile::ResponseClass],
    retry: Option<Retry<'a>>,
}

impl Attempts<'_> {
    /// Sends attempts until one's response is passed on (a success, a
    /// failure that may not be retried) or an attempt fails outright.
    async fn run(
        self,
        mut request: Request<RequestBody>,
    ) -> Result<(Response<Incoming>, ResponseRecorder), Failed> {
        let route_metrics = &self.context.proxy.metrics.route;
        loop {
            let backend = self.target.backend(self.router.random());
            route_metrics.attempt(self.route_labels, self.context.route_handles());
            let (response, lease, recorder) = self.send(backend, request).await?;
            lease.complete(Instant::now());
            let status = response.status().as_u16();
            let grpc_status = grpc_status_of(response.headers());
            let classification = policy::classify(self.classes, status, grpc_status, None);
            let Some(retry) = self.retry.as_ref() else {
                return Ok((response, recorder));
            };
            if classification != Classification::Failure {
                return Ok((response, recorder));
            }
            let Some(body) = retry.replay.body() else {
                return Ok((response, recorder));
            };
            let allowed = retry.budget.withdraw(Instant::now());
            route_metrics.retryable(self.route_labels, allowed);
            if !allowed {
                return Ok((response, recorder));
            }
            route_metrics.attempt_response(
                self.route_labels,
                RouteOutcome {
                    status_code: status,
                    classification,
                    error: None,
                },
            );
            recorder.finish_now(status, response.headers());
            request = retry.head.request(body);
        }
    }

    /// Sends one attempt to an endpoint of `backend`; an endpoint that
    /// cannot be reached is penalised and the request (never sent) goes to
    /// another, up to [`CONNECT_ATTEMPTS`] endpoints. An idempotent request
    /// without a body whose connection was lost before any response (the
    /// endpoint died under it) goes to another endpoint once as well.
    async fn send(
        &self,
        backend: &Backend,
        mut request: Request<RequestBody>,
    ) -> Result<(Response<Incoming>, Lease, ResponseRecorder), Failed> {
        let proxy = &self.context.proxy;
        let client = proxy.client(Direction::Outbound);
        let mut tries = 0;
        let mut written_resent = false;
        let mut failed = Vec::new();
        loop {
            let lease = self
                .router
                .pick_avoiding(backend, &failed)
                .await
                .map_err(Failed::without_endpoint)?;
            tries += 1;
            let upstream = upstream::Upstream::new(
                self.context,
                lease.address(),
                lease.metadata().labels.clone(),
                Some(lease.metadata()),
            )
            .map_err(Failed::without_endpoint)?;
            let endpoint = upstream.endpoint;
            let tap = proxy.taps.begin(&TapRequest {
                direction: Direction::Outbound,
                source: self.context.client_addr,
                destination: endpoint.addr,
                target: &endpoint.labels,
                route: Some(self.route_labels),
                method: request.method(),
                uri: request.uri(),
                headers: request.headers(),
                version: request.version(),
            });
            // The endpoint's latency runs from here, as the inbound side's
            // runs from the request's arrival: the wait for the response
            // head is part of it, not only its body.
            let sent_at = Instant::now();
            match upstream::send(client, &endpoint, upstream.peer, request).await {
                Ok(response) => {
                    let recorder = self.recorder(&lease, sent_at).with_tap(tap);
                    return Ok((response, lease, recorder));
                }
                Err(SendError {
                    error,
                    unsent: Some(unsent),
                    written,
                }) if tries < CONNECT_ATTEMPTS && !(written && written_resent) => {
                    tracing::debug!(endpoint = %endpoint.addr, %error, written, "endpoint lost; trying another");
                    if let Some(tap) = tap {
                        tap.fail();
                    }
                    written_resent |= written;
                    failed.push(lease.address());
                    lease.fail(CONNECT_FAILURE_PENALTY);
                    request = unsent;
                }
                Err(SendError { error, unsent, .. }) => {
                    let recorder = self.recorder(&lease, sent_at).with_tap(tap);
                    if unsent.is_some() {
                        lease.fail(CONNECT_FAILURE_PENALTY);
                    }
                    return Err(Failed {
                        error,
                        recorder: Some(recorder),
                    });
                }
            }
        }
    }

    /// Counts the attempt (sent at `sent_at`) in the endpoint's metrics and
    /// returns the recorder of its response.
    fn recorder(&self, lease: &Lease, sent_at: Instant) -> ResponseRecorder {
        endpoint_recorder(self.context, &self.target.name, lease, sent_at)
    }
}

/// Counts a request to the endpoint of `lease` and returns the recorder of
/// its response.
fn endpoint_recorder(
    context: &ConnectionContext,
    authority: &Arc<str>,
    lease: &Lease,
    started: Instant,
) -> ResponseRecorder {
    let metrics = &context.proxy.metrics.http;
    let labels = HttpLabels {
        direction: Direction::Outbound,
        authority: authority.clone(),
        target: lease.metadata().labels.clone(),
    };
    metrics.request(&labels, context.metric_handles());
    ResponseRecorder::new(
        metrics.clone(),
        context.metric_handles().clone(),
        labels,
        started,
    )
}

/// An Upgrade or CONNECT request to a logical service: one balanced
/// endpoint, then the usual tunnel.
async fn tunnel(
    context: &Arc<ConnectionContext>,
    router: &Router,
    mut request: Request<Incoming>,
    target: &LogicalTarget,
    started: Instant,
    is_grpc: bool,
) -> Response<ProxyBody> {
    let backend = target.backend(router.random());
    let lease = match router.pick(backend).await {
        Ok(lease) => lease,
        Err(error) => return upstream::error_response(context, error.into(), is_grpc, None),
    };
    let recorder = endpoint_recorder(context, &target.name, &lease, started);
    let addr = lease.address();
    if context.target == Target::Explicit && request.method() == Method::CONNECT {
        let meta = Some(lease.metadata().clone());
        return upstream::open_tunnel(context, &mut request, addr, meta, recorder);
    }
    let labels = lease.metadata().labels.clone();
    let upstream = match upstream::Upstream::new(context, addr, labels, Some(lease.metadata())) {
        Ok(upstream) => upstream,
        Err(error) => return upstream::error_response(context, error, is_grpc, Some(recorder)),
    };
    // A logical service is outbound: the client is an app, not a peer proxy.
    upstream::proxy_to(context, request, upstream, recorder, is_grpc, false).await
}
