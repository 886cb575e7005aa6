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
use crate::policy::outbound::{
    Filter, HeaderModifier, PathRewrite, Redirect, RetryPolicy, RouteBackend, RouteRule,
};
use crate::policy::route_match::RequestView;
use crate::routing::budget::RetryBudget;
use crate::routing::http_routes::PolicyRoutes;
use crate::routing::profile::ResponseClass;
use crate::routing::{
    Backend, CONNECT_ATTEMPTS, CONNECT_FAILURE_PENALTY, Lease, LogicalTarget, Router, policy,
};
use crate::tap::TapRequest;
use http::header::HeaderName;
use http::{HeaderMap, Method, Request, Response, Uri, Version};
use hyper::body::Incoming;
use std::sync::Arc;
use std::time::{Duration, Instant};

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
    let plan = match target.policy_routes() {
        Some(routes) => {
            match policy_plan(context, router, &mut request, &target, routes, is_grpc) {
                Ok(plan) => plan,
                Err(answer) => return *answer,
            }
        }
        None => profile_plan(&request, &target),
    };
    let route_labels = plan.labels.clone();
    let metrics = &context.proxy.metrics;
    metrics
        .route
        .request(&route_labels, context.route_handles());
    let route_recording = RouteRecording {
        metrics: metrics.route.clone(),
        labels: route_labels.clone(),
        classes: plan.classes.clone(),
        started,
        cache: context.route_handles().clone(),
    };

    // Retries need a retry rule (a retryable profile route with a budget,
    // or a policy retry) and a replayable body.
    if let RetryRule::Budget(budget) = plan.retry {
        budget.deposit(Instant::now());
    }
    let (parts, body) = request.into_parts();
    let (body, replay) = match plan.retry.replay_limit() {
        Some(limit) => RequestBody::recording(body, limit),
        None => (RequestBody::Streaming(body), None),
    };
    let retry = replay.map(|replay| Retry {
        rule: plan.retry,
        replay,
        head: RequestHead::of(&parts),
    });
    let attempts = Attempts {
        context,
        router,
        target: &target,
        backends: plan.backends,
        route_labels: &route_labels,
        classes: &route_recording.classes,
        retry,
    };
    let request = Request::from_parts(parts, body);
    let sent = match plan.timeout {
        Some(timeout) => match tokio::time::timeout(timeout, attempts.run(request)).await {
            Ok(sent) => sent,
            Err(_) => Err(Failed::without_endpoint(ProxyError::ResponseTimeout(
                timeout,
            ))),
        },
        None => attempts.run(request).await,
    };
    match sent {
        Ok((mut response, recorder)) => {
            for modifier in &plan.response_headers {
                modifier.apply(response.headers_mut());
            }
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

/// How one request goes through a logical target: the route's labels,
/// classes, timeout and retries, where its attempts go, and the response
/// header changes. Made from the profile or from the outbound policy.
struct RoutePlan<'a> {
    labels: RouteLabels,
    classes: Vec<ResponseClass>,
    /// Limit on the whole request (every attempt, up to response headers).
    timeout: Option<Duration>,
    retry: RetryRule<'a>,
    backends: Backends<'a>,
    response_headers: Vec<&'a HeaderModifier>,
}

/// When failed responses are sent again.
#[derive(Clone, Copy)]
enum RetryRule<'a> {
    /// Never.
    Never,
    /// A profile's retryable route: failures, within the budget.
    Budget(&'a RetryBudget),
    /// A policy route's retry: its conditions, at most `max_retries`.
    Policy(&'a RetryPolicy),
}

impl RetryRule<'_> {
    /// The largest body recorded for replay; `None` when never retried.
    fn replay_limit(&self) -> Option<usize> {
        match self {
            RetryRule::Never => None,
            RetryRule::Budget(_) => Some(REPLAY_LIMIT),
            RetryRule::Policy(policy) => Some(policy.max_request_bytes),
        }
    }
}

/// Where a request's attempts go.
#[derive(Clone, Copy)]
enum Backends<'a> {
    /// The profile's split (or its one backend).
    Profile,
    /// A policy rule's backends.
    Policy {
        routes: &'a PolicyRoutes,
        rule: &'a RouteRule,
        route: &'a str,
    },
}

/// The plan of a request by the target's profile: the first matching
/// route, or the default route.
fn profile_plan<'a>(request: &Request<Incoming>, target: &'a LogicalTarget) -> RoutePlan<'a> {
    let choice = target.route(request.method(), request.uri().path());
    let route = choice.route;
    let retry = match target
        .budget()
        .filter(|_| route.is_some_and(|route| route.is_retryable))
    {
        Some(budget) => RetryRule::Budget(budget),
        None => RetryRule::Never,
    };
    RoutePlan {
        labels: choice.labels.clone(),
        classes: choice.classes(),
        timeout: route.and_then(|route| route.timeout),
        retry,
        backends: Backends::Profile,
        response_headers: Vec::new(),
    }
}

/// The plan of a request by the target's HTTPRoutes/GRPCRoutes, after the
/// matched rule's request filters; `Err` with the answer when no route
/// matches (404), or a filter answers (redirect, injected failure).
fn policy_plan<'a>(
    context: &Arc<ConnectionContext>,
    router: &Router,
    request: &mut Request<Incoming>,
    target: &'a LogicalTarget,
    routes: &'a PolicyRoutes,
    is_grpc: bool,
) -> Result<RoutePlan<'a>, Box<Response<ProxyBody>>> {
    let view = RequestView::of(request);
    let Some(choice) = routes.route(&view, request.version(), is_grpc, &target.name) else {
        return Err(Box::new(upstream::error_response(
            context,
            ProxyError::NoRoute,
            is_grpc,
            None,
        )));
    };
    let rule = choice.rule;
    let mut response_headers = Vec::new();
    for filter in &rule.filters {
        match filter {
            Filter::RequestHeaders(modifier) => modifier.apply(request.headers_mut()),
            Filter::ResponseHeaders(modifier) => response_headers.push(modifier),
            Filter::Redirect(redirect) => {
                return Err(Box::new(redirect_response(request, redirect)));
            }
            Filter::FailureInjector(injector) => {
                let draw = router.random().next_u64() % u64::from(injector.denominator.max(1));
                if draw < u64::from(injector.numerator) {
                    let error = ProxyError::InjectedFailure {
                        status: injector.status,
                        grpc_code: injector.grpc_code,
                        message: injector.message.clone(),
                    };
                    return Err(Box::new(upstream::error_response(
                        context, error, is_grpc, None,
                    )));
                }
            }
        }
    }
    let retry = match &rule.retry {
        Some(policy) => RetryRule::Policy(policy),
        None => RetryRule::Never,
    };
    Ok(RoutePlan {
        labels: choice.labels,
        classes: Vec::new(),
        timeout: rule.request_timeout,
        retry,
        backends: Backends::Policy {
            routes,
            rule,
            route: choice.name,
        },
        response_headers,
    })
}

/// A redirect filter's answer: its status and `Location` (the request's
/// scheme, host, port and path where the filter leaves them). A prefix
/// rewrite replaces the whole path.
fn redirect_response(request: &Request<Incoming>, redirect: &Redirect) -> Response<ProxyBody> {
    let uri = request.uri();
    let scheme = redirect
        .scheme
        .clone()
        .or_else(|| uri.scheme().cloned())
        .unwrap_or(http::uri::Scheme::HTTP);
    let (host, port) = match crate::http::headers::authority_of(uri, request.headers())
        .and_then(|authority| authority.parse::<http::uri::Authority>().ok())
    {
        Some(authority) => (authority.host().to_string(), authority.port_u16()),
        None => (String::new(), None),
    };
    let host = redirect.host.clone().unwrap_or(host);
    let port = redirect.port.or(port);
    let path = match &redirect.path {
        Some(PathRewrite::Full(path) | PathRewrite::Prefix(path)) => path.clone(),
        None => uri
            .path_and_query()
            .map_or_else(|| "/".to_string(), |path| path.as_str().to_string()),
    };
    let location = match port {
        Some(port) => format!("{scheme}://{host}:{port}{path}"),
        None => format!("{scheme}://{host}{path}"),
    };
    let mut response = Response::new(ProxyBody::empty(None));
    *response.status_mut() = redirect.status;
    if let Ok(location) = http::HeaderValue::from_str(&location) {
        response
            .headers_mut()
            .insert(http::header::LOCATION, location);
    }
    response.headers_mut().insert(
        http::header::CONTENT_LENGTH,
        http::HeaderValue::from_static("0"),
    );
    response
}

/// What a retry needs: the rule, the recorded body, the request head.
struct Retry<'a> {
    rule: RetryRule<'a>,
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
    backends: Backends<'a>,
    route_labels: &'a RouteLabels,
    classes: &'a [ResponseClass],
    retry: Option<Retry<'a>>,
}

impl Attempts<'_> {
    /// The backend of the next attempt, with the policy backend's request
    /// filters and attempt timeout.
    fn backend(&self) -> Result<(&Backend, Option<&RouteBackend>), ProxyError> {
        match self.backends {
            Backends::Profile => Ok((self.target.backend(self.router.random()), None)),
            Backends::Policy {
                routes,
                rule,
                route,
            } => match routes.backend(rule, self.router.random()) {
                Some((route_backend, backend)) => Ok((backend, Some(route_backend))),
                None => Err(ProxyError::NoBackend {
                    route: route.to_string(),
                }),
            },
        }
    }

    /// Sends attempts until one's response is passed on (a success, a
    /// failure that may not be retried) or an attempt fails outright.
    async fn run(
        self,
        mut request: Request<RequestBody>,
    ) -> Result<(Response<Incoming>, ResponseRecorder), Failed> {
        let route_metrics = &self.context.proxy.metrics.route;
        let mut retries = 0u32;
        loop {
            let (backend, route_backend) = self.backend().map_err(Failed::without_endpoint)?;
            let mut attempt_timeout = None;
            if let Some(route_backend) = route_backend {
                for filter in &route_backend.filters {
                    if let Filter::RequestHeaders(modifier) = filter {
                        modifier.apply(request.headers_mut());
                    }
                }
                attempt_timeout = route_backend.request_timeout;
            }
            if let Some(Retry {
                rule: RetryRule::Policy(policy),
                ..
            }) = &self.retry
            {
                attempt_timeout = match (attempt_timeout, policy.timeout) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
            }
            route_metrics.attempt(self.route_labels, self.context.route_handles());
            let sent = match attempt_timeout {
                Some(timeout) => {
                    match tokio::time::timeout(timeout, self.send(backend, request)).await {
                        Ok(sent) => sent,
                        Err(_) => {
                            // A timed-out attempt is retried like a failure
                            // while the policy allows.
                            let error = ProxyError::ResponseTimeout(timeout);
                            match self.policy_retry_body(retries) {
                                Some(body) => {
                                    route_metrics.retryable(self.route_labels, true);
                                    retries += 1;
                                    request = self.head().request(body);
                                    continue;
                                }
                                None => return Err(Failed::without_endpoint(error)),
                            }
                        }
                    }
                }
                None => self.send(backend, request).await,
            };
            let (response, lease, recorder) = sent?;
            let status = response.status().as_u16();
            let grpc_status = grpc_status_of(response.headers());
            let endpoint_failed =
                Classification::of(status, grpc_status, None) == Classification::Failure;
            backend.observe(lease.address(), endpoint_failed, self.router.random());
            lease.complete(Instant::now());
            let classification = policy::classify(self.classes, status, grpc_status, None);
            let Some(retry) = self.retry.as_ref() else {
                return Ok((response, recorder));
            };
            let wanted = match retry.rule {
                RetryRule::Never => false,
                RetryRule::Budget(_) => classification == Classification::Failure,
                RetryRule::Policy(policy) => {
                    retries < policy.max_retries && policy.conditions.retries(status, grpc_status)
                }
            };
            if !wanted {
                return Ok((response, recorder));
            }
            let Some(body) = retry.replay.body() else {
                return Ok((response, recorder));
            };
            let allowed = match retry.rule {
                RetryRule::Budget(budget) => budget.withdraw(Instant::now()),
                _ => true,
            };
            route_metrics.retryable(self.route_labels, allowed);
            if !allowed {
                return Ok((response, recorder));
            }
            retries += 1;
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

    /// The body of another attempt under a policy retry that still allows
    /// one (`retries` so far), if replayable.
    fn policy_retry_body(&self, retries: u32) -> Option<RequestBody> {
        let retry = self.retry.as_ref()?;
        let RetryRule::Policy(policy) = retry.rule else {
            return None;
        };
        if retries >= policy.max_retries {
            return None;
        }
        retry.replay.body()
    }

    fn head(&self) -> &RequestHead {
        &self.retry.as_ref().expect("only called with a retry").head
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
                    backend.observe(lease.address(), true, self.router.random());
                    lease.fail(CONNECT_FAILURE_PENALTY);
                    request = unsent;
                }
                Err(SendError { error, unsent, .. }) => {
                    let recorder = self.recorder(&lease, sent_at).with_tap(tap);
                    backend.observe(lease.address(), true, self.router.random());
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
