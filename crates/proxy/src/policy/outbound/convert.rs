//! `OutboundPolicy` protobuf → [`super::OutboundPolicy`]: pure, with a
//! typed error naming the field. An invalid message is ignored by the
//! client (the last good answer stays).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderName, HeaderValue, StatusCode};
use linkerd2_proxy_api::outbound as proto;
use linkerd2_proxy_api::{
    destination, grpc_route as grpc_proto, http_route as http_proto, http_types, meta, net,
};

use super::{
    BackendTarget, Distribution, FailureAccrual, FailureInjector, Filter, HeaderModifier,
    OutboundPolicy, PathRewrite, Protocol, Redirect, RetryConditions, RetryPolicy, RouteBackend,
    RouteMeta, RouteRule,
};
use crate::policy::route_match::{self, MatchError, Route, Rule};

/// Routes per protocol list at most; more are refused (bounds what one
/// answer can make the proxy hold).
pub(crate) const MAX_ROUTES: usize = 1_000;

/// The body a retried request may have when the policy does not say
/// (`max_request_bytes` zero): Linkerd's 64 KiB.
pub(crate) const DEFAULT_MAX_REQUEST_BYTES: usize = 64 * 1024;

/// Why a policy could not be converted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ConvertError {
    /// A route match.
    #[error(transparent)]
    Match(#[from] MatchError),
    /// A field that must be set is missing.
    #[error("{0}: missing")]
    Missing(String),
    /// A field with a value the proxy cannot use.
    #[error("{field}: {reason}")]
    Invalid {
        /// The field.
        field: String,
        /// Why.
        reason: String,
    },
    /// More routes than [`MAX_ROUTES`].
    #[error("{field}: {count} routes, more than {MAX_ROUTES}")]
    TooManyRoutes {
        /// The route list.
        field: String,
        /// How many were sent.
        count: usize,
    },
}

fn invalid(field: impl Into<String>, reason: impl ToString) -> ConvertError {
    ConvertError::Invalid {
        field: field.into(),
        reason: reason.to_string(),
    }
}

impl TryFrom<proto::OutboundPolicy> for OutboundPolicy {
    type Error = ConvertError;

    fn try_from(policy: proto::OutboundPolicy) -> Result<OutboundPolicy, ConvertError> {
        use proto::proxy_protocol::Kind;
        let kind = policy
            .protocol
            .and_then(|protocol| protocol.kind)
            .ok_or_else(|| ConvertError::Missing("protocol.kind".into()))?;
        let (protocol, accrual) = match kind {
            Kind::Detect(detect) => {
                let accrual = detect
                    .http1
                    .as_ref()
                    .and_then(|http1| http1.failure_accrual)
                    .or_else(|| {
                        detect
                            .http2
                            .as_ref()
                            .and_then(|http2| http2.failure_accrual)
                    });
                let http1 = match detect.http1 {
                    Some(http1) => routes::<Http>("protocol.detect.http1.routes", http1.routes)?,
                    None => Vec::new(),
                };
                let http2 = match detect.http2 {
                    Some(http2) => routes::<Http>("protocol.detect.http2.routes", http2.routes)?,
                    None => Vec::new(),
                };
                (Protocol::Detect { http1, http2 }, accrual)
            }
            Kind::Http1(http1) => (
                Protocol::Http1(routes::<Http>("protocol.http1.routes", http1.routes)?),
                http1.failure_accrual,
            ),
            Kind::Http2(http2) => (
                Protocol::Http2(routes::<Http>("protocol.http2.routes", http2.routes)?),
                http2.failure_accrual,
            ),
            Kind::Grpc(grpc) => (
                Protocol::Grpc(routes::<Grpc>("protocol.grpc.routes", grpc.routes)?),
                grpc.failure_accrual,
            ),
            Kind::Opaque(_) | Kind::Tls(_) => (Protocol::Opaque, None),
        };
        let failure_accrual = match accrual {
            Some(accrual) => failure_accrual("failure_accrual", accrual)?,
            None => None,
        };
        Ok(OutboundPolicy {
            protocol,
            failure_accrual,
        })
    }
}

fn route_meta(
    field: &str,
    metadata: Option<meta::Metadata>,
    kind: &str,
) -> Result<RouteMeta, ConvertError> {
    match metadata.and_then(|metadata| metadata.kind) {
        Some(meta::metadata::Kind::Resource(resource)) => Ok(RouteMeta {
            name: Arc::from(resource.name.as_str()),
            kind: if resource.kind.is_empty() {
                kind.to_string()
            } else {
                resource.kind
            },
            is_resource: true,
        }),
        Some(meta::metadata::Kind::Default(name)) => Ok(RouteMeta {
            name: Arc::from(name.as_str()),
            kind: "default".to_string(),
            is_resource: false,
        }),
        None => Err(ConvertError::Missing(format!("{field}.metadata"))),
    }
}

/// What HTTP and gRPC routes differ in: their protobuf types (`Proto*`, as
/// sent), matches, filters and retry conditions. Routes, rules and backends
/// are converted alike ([`routes`], [`rule`], [`backend`]).
trait RouteProtocol {
    /// The route kind when the metadata leaves it empty.
    const KIND: &'static str;
    type ProtoRoute;
    type ProtoRule;
    type ProtoMatch;
    type ProtoFilter;
    type ProtoBackend;
    type ProtoRetry;
    /// A match as converted.
    type Match;

    /// The route's metadata, hosts and rules.
    fn route_parts(route: Self::ProtoRoute) -> RouteParts<Self>;
    /// The rule taken apart.
    fn rule_parts(rule: Self::ProtoRule) -> RuleParts<Self>;
    /// The backend taken apart.
    fn backend_parts(backend: Self::ProtoBackend) -> BackendParts<Self::ProtoFilter>;
    /// Converts one match.
    const CONVERT_MATCH: ConvertMatch<Self>;
    /// Converts one filter.
    fn filter(field: &str, filter: Self::ProtoFilter) -> Result<Filter, ConvertError>;
    /// Converts a retry policy (none when it allows no retries).
    fn retry(
        field: &str,
        retry: Self::ProtoRetry,
        timeouts: Option<&http_proto::Timeouts>,
    ) -> Result<Option<RetryPolicy>, ConvertError>;
}

/// A route's metadata, hosts and rules as sent.
type RouteParts<P> = (
    Option<meta::Metadata>,
    Vec<http_proto::HostMatch>,
    Vec<<P as RouteProtocol>::ProtoRule>,
);

/// A protocol's match conversion.
type ConvertMatch<P> =
    fn(&str, <P as RouteProtocol>::ProtoMatch) -> Result<<P as RouteProtocol>::Match, MatchError>;

/// A rule's protobuf, taken apart.
struct RuleParts<P: RouteProtocol + ?Sized> {
    matches: Vec<P::ProtoMatch>,
    filters: Vec<P::ProtoFilter>,
    backends: ProtoDistribution<P::ProtoBackend>,
    /// The deprecated `request_timeout`, which older controllers send.
    legacy_timeout: Option<prost_types::Duration>,
    timeouts: Option<http_proto::Timeouts>,
    retry: Option<P::ProtoRetry>,
}

/// A rule's backends as sent: random ones with their weight.
enum ProtoDistribution<B> {
    Empty,
    FirstAvailable(Vec<B>),
    RandomAvailable(Vec<(u32, Option<B>)>),
}

/// A backend's protobuf, taken apart.
struct BackendParts<F> {
    backend: Option<proto::Backend>,
    filters: Vec<F>,
    /// The deprecated per-backend timeout.
    request_timeout: Option<prost_types::Duration>,
}

/// A [`RouteProtocol`]'s `route_parts`, `rule_parts` and `backend_parts`:
/// the HTTP and gRPC protobufs (`proto::http_route`, `proto::grpc_route`)
/// have the same fields in different types.
macro_rules! take_apart {
    ($route:ty, $module:ident) => {
        fn route_parts(route: $route) -> RouteParts<Self> {
            (route.metadata, route.hosts, route.rules)
        }

        fn rule_parts(rule: proto::$module::Rule) -> RuleParts<Self> {
            use proto::$module::distribution::Kind;
            let backends = match rule.backends.and_then(|backends| backends.kind) {
                None | Some(Kind::Empty(_)) => ProtoDistribution::Empty,
                Some(Kind::FirstAvailable(first)) => {
                    ProtoDistribution::FirstAvailable(first.backends)
                }
                Some(Kind::RandomAvailable(random)) => ProtoDistribution::RandomAvailable(
                    random
                        .backends
                        .into_iter()
                        .map(|weighted| (weighted.weight, weighted.backend))
                        .collect(),
                ),
            };
            #[allow(deprecated)]
            let legacy_timeout = rule.request_timeout;
            RuleParts {
                matches: rule.matches,
                filters: rule.filters,
                backends,
                legacy_timeout,
                timeouts: rule.timeouts,
                retry: rule.retry,
            }
        }

        fn backend_parts(
            backend: proto::$module::RouteBackend,
        ) -> BackendParts<proto::$module::Filter> {
            #[allow(deprecated)]
            let request_timeout = backend.request_timeout;
            BackendParts {
                backend: backend.backend,
                filters: backend.filters,
                request_timeout,
            }
        }
    };
}

/// HTTPRoutes.
struct Http;

/// GRPCRoutes.
struct Grpc;

impl RouteProtocol for Http {
    const KIND: &'static str = "HTTPRoute";
    type ProtoRoute = proto::HttpRoute;
    type ProtoRule = proto::http_route::Rule;
    type ProtoMatch = http_proto::HttpRouteMatch;
    type ProtoFilter = proto::http_route::Filter;
    type ProtoBackend = proto::http_route::RouteBackend;
    type ProtoRetry = proto::http_route::Retry;
    type Match = route_match::HttpRouteMatch;
    const CONVERT_MATCH: ConvertMatch<Self> = route_match::convert_http;

    take_apart!(proto::HttpRoute, http_route);

    fn filter(field: &str, filter: proto::http_route::Filter) -> Result<Filter, ConvertError> {
        use proto::http_route::filter::Kind;
        match filter.kind {
            Some(Kind::RequestHeaderModifier(modifier)) => Ok(Filter::RequestHeaders(
                header_modifier(field, modifier.add, modifier.set, modifier.remove)?,
            )),
            Some(Kind::ResponseHeaderModifier(modifier)) => Ok(Filter::ResponseHeaders(
                header_modifier(field, modifier.add, modifier.set, modifier.remove)?,
            )),
            Some(Kind::Redirect(redirect)) => Ok(Filter::Redirect(redirect_of(field, redirect)?)),
            Some(Kind::FailureInjector(injector)) => {
                let status = StatusCode::from_u16(u16::try_from(injector.status).unwrap_or(0))
                    .map_err(|_| {
                        invalid(format!("{field}.failure_injector.status"), "invalid status")
                    })?;
                let (numerator, denominator) = ratio(injector.ratio);
                Ok(Filter::FailureInjector(FailureInjector {
                    status,
                    grpc_code: None,
                    message: injector.message,
                    numerator,
                    denominator,
                }))
            }
            None => Err(ConvertError::Missing(format!("{field}.kind"))),
        }
    }

    fn retry(
        field: &str,
        retry: proto::http_route::Retry,
        timeouts: Option<&http_proto::Timeouts>,
    ) -> Result<Option<RetryPolicy>, ConvertError> {
        let ranges = retry
            .conditions
            .map(|conditions| conditions.status_ranges)
            .unwrap_or_default();
        let mut statuses = Vec::new();
        for (index, range) in ranges.iter().enumerate() {
            let valid = (100..=599).contains(&range.start)
                && (100..=599).contains(&range.end)
                && range.start <= range.end;
            if !valid {
                return Err(invalid(
                    format!("{field}.conditions.status_ranges[{index}]"),
                    format!("invalid status range {}-{}", range.start, range.end),
                ));
            }
            statuses.push((range.start as u16, range.end as u16));
        }
        // Linkerd's default condition is 5xx.
        if statuses.is_empty() {
            statuses.push((500, 599));
        }
        retry_policy(
            field,
            retry.max_retries,
            retry.max_request_bytes,
            retry.timeout,
            timeouts,
            RetryConditions::Statuses(statuses),
        )
    }
}

impl RouteProtocol for Grpc {
    const KIND: &'static str = "GRPCRoute";
    type ProtoRoute = proto::GrpcRoute;
    type ProtoRule = proto::grpc_route::Rule;
    type ProtoMatch = grpc_proto::GrpcRouteMatch;
    type ProtoFilter = proto::grpc_route::Filter;
    type ProtoBackend = proto::grpc_route::RouteBackend;
    type ProtoRetry = proto::grpc_route::Retry;
    type Match = route_match::GrpcRouteMatch;
    const CONVERT_MATCH: ConvertMatch<Self> = route_match::convert_grpc;

    take_apart!(proto::GrpcRoute, grpc_route);

    fn filter(field: &str, filter: proto::grpc_route::Filter) -> Result<Filter, ConvertError> {
        use proto::grpc_route::filter::Kind;
        match filter.kind {
            Some(Kind::RequestHeaderModifier(modifier)) => Ok(Filter::RequestHeaders(
                header_modifier(field, modifier.add, modifier.set, modifier.remove)?,
            )),
            Some(Kind::FailureInjector(injector)) => {
                let (numerator, denominator) = ratio(injector.ratio);
                Ok(Filter::FailureInjector(FailureInjector {
                    status: StatusCode::OK,
                    grpc_code: Some(injector.code),
                    message: injector.message,
                    numerator,
                    denominator,
                }))
            }
            None => Err(ConvertError::Missing(format!("{field}.kind"))),
        }
    }

    fn retry(
        field: &str,
        retry: proto::grpc_route::Retry,
        timeouts: Option<&http_proto::Timeouts>,
    ) -> Result<Option<RetryPolicy>, ConvertError> {
        let conditions = retry.conditions.unwrap_or_default();
        // gRPC codes: CANCELLED 1, DEADLINE_EXCEEDED 4,
        // RESOURCE_EXHAUSTED 8, INTERNAL 13, UNAVAILABLE 14.
        let codes: Vec<u32> = [
            (conditions.cancelled, 1),
            (conditions.deadine_exceeded, 4),
            (conditions.resource_exhausted, 8),
            (conditions.internal, 13),
            (conditions.unavailable, 14),
        ]
        .into_iter()
        .filter_map(|(set, code)| set.then_some(code))
        .collect();
        retry_policy(
            field,
            retry.max_retries,
            retry.max_request_bytes,
            retry.timeout,
            timeouts,
            RetryConditions::GrpcCodes(codes),
        )
    }
}

fn routes<P: RouteProtocol>(
    field: &str,
    routes: Vec<P::ProtoRoute>,
) -> Result<Vec<Route<P::Match, RouteMeta, RouteRule>>, ConvertError> {
    if routes.len() > MAX_ROUTES {
        return Err(ConvertError::TooManyRoutes {
            field: field.to_string(),
            count: routes.len(),
        });
    }
    routes
        .into_iter()
        .enumerate()
        .map(|(index, route)| {
            let field = format!("{field}[{index}]");
            let (metadata, hosts, rules) = P::route_parts(route);
            let data = route_meta(&field, metadata, P::KIND)?;
            let hosts = route_match::convert_hosts(&field, hosts)?;
            let rules = rules
                .into_iter()
                .enumerate()
                .map(|(index, rule)| self::rule::<P>(&format!("{field}.rules[{index}]"), rule))
                .collect::<Result<_, _>>()?;
            Ok(Route { hosts, rules, data })
        })
        .collect()
}

fn rule<P: RouteProtocol>(
    field: &str,
    rule: P::ProtoRule,
) -> Result<Rule<P::Match, RouteRule>, ConvertError> {
    let parts = P::rule_parts(rule);
    let matches = route_match::convert_matches(field, parts.matches, P::CONVERT_MATCH)?;
    let filters = filters::<P>(&format!("{field}.filters"), parts.filters)?;
    let distribution = match parts.backends {
        ProtoDistribution::Empty => Distribution::Empty,
        ProtoDistribution::FirstAvailable(backends) => Distribution::FirstAvailable(
            backends
                .into_iter()
                .enumerate()
                .map(|(index, backend)| {
                    let field = format!("{field}.backends.first_available[{index}]");
                    self::backend::<P>(&field, backend, 1)
                })
                .collect::<Result<_, _>>()?,
        ),
        ProtoDistribution::RandomAvailable(weighted) => {
            let mut backends = Vec::new();
            for (index, (weight, backend)) in weighted.into_iter().enumerate() {
                let field = format!("{field}.backends.random_available[{index}]");
                if weight == 0 {
                    continue;
                }
                let backend =
                    backend.ok_or_else(|| ConvertError::Missing(format!("{field}.backend")))?;
                backends.push(self::backend::<P>(&field, backend, weight)?);
            }
            Distribution::RandomAvailable(backends)
        }
    };
    let request_timeout = request_timeout(field, parts.legacy_timeout, parts.timeouts.as_ref())?;
    let retry = match parts.retry {
        Some(retry) => P::retry(&format!("{field}.retry"), retry, parts.timeouts.as_ref())?,
        None => None,
    };
    Ok(Rule {
        matches,
        data: RouteRule {
            filters,
            distribution,
            request_timeout,
            retry,
        },
    })
}

fn filters<P: RouteProtocol>(
    field: &str,
    filters: Vec<P::ProtoFilter>,
) -> Result<Vec<Filter>, ConvertError> {
    filters
        .into_iter()
        .enumerate()
        .map(|(index, filter)| P::filter(&format!("{field}[{index}]"), filter))
        .collect()
}

fn backend<P: RouteProtocol>(
    field: &str,
    backend: P::ProtoBackend,
    weight: u32,
) -> Result<RouteBackend, ConvertError> {
    let parts = P::backend_parts(backend);
    Ok(RouteBackend {
        target: backend_target(&format!("{field}.backend"), parts.backend)?,
        weight,
        filters: filters::<P>(&format!("{field}.filters"), parts.filters)?,
        request_timeout: match parts.request_timeout {
            Some(duration) => duration_of(&format!("{field}.request_timeout"), duration)?,
            None => None,
        },
    })
}

/// The whole-request timeout: `timeouts.request`, else the older
/// `request_timeout`. Zero means none.
fn request_timeout(
    field: &str,
    legacy: Option<prost_types::Duration>,
    timeouts: Option<&http_proto::Timeouts>,
) -> Result<Option<Duration>, ConvertError> {
    let from_timeouts = match timeouts.and_then(|timeouts| timeouts.request) {
        Some(duration) => duration_of(&format!("{field}.timeouts.request"), duration)?,
        None => None,
    };
    match from_timeouts {
        Some(timeout) => Ok(Some(timeout)),
        None => match legacy {
            Some(duration) => duration_of(&format!("{field}.request_timeout"), duration),
            None => Ok(None),
        },
    }
}

fn retry_policy(
    field: &str,
    max_retries: u32,
    max_request_bytes: u32,
    timeout: Option<prost_types::Duration>,
    timeouts: Option<&http_proto::Timeouts>,
    conditions: RetryConditions,
) -> Result<Option<RetryPolicy>, ConvertError> {
    if max_retries == 0 {
        return Ok(None);
    }
    // The per-attempt limit: the retry's own timeout, else the route's
    // response timeout.
    let attempt_timeout = match timeout {
        Some(duration) => duration_of(&format!("{field}.timeout"), duration)?,
        None => match timeouts.and_then(|timeouts| timeouts.response) {
            Some(duration) => duration_of(&format!("{field}.timeouts.response"), duration)?,
            None => None,
        },
    };
    Ok(Some(RetryPolicy {
        max_retries,
        conditions,
        timeout: attempt_timeout,
        max_request_bytes: if max_request_bytes == 0 {
            DEFAULT_MAX_REQUEST_BYTES
        } else {
            max_request_bytes as usize
        },
    }))
}

fn backend_target(
    field: &str,
    backend: Option<proto::Backend>,
) -> Result<BackendTarget, ConvertError> {
    use proto::backend::Kind;
    use proto::backend::endpoint_discovery::Kind as Discovery;
    let kind = backend
        .and_then(|backend| backend.kind)
        .ok_or_else(|| ConvertError::Missing(format!("{field}.kind")))?;
    match kind {
        Kind::Balancer(balancer) => {
            let Some(Discovery::Dst(get)) = balancer.discovery.and_then(|discovery| discovery.kind)
            else {
                return Err(ConvertError::Missing(format!(
                    "{field}.balancer.discovery.dst"
                )));
            };
            if get.path.is_empty() {
                return Err(ConvertError::Missing(format!(
                    "{field}.balancer.discovery.dst.path"
                )));
            }
            Ok(BackendTarget::Balancer(get.path))
        }
        Kind::Forward(weighted) => {
            let addr = forward_addr(&format!("{field}.forward.addr"), weighted)?;
            Ok(BackendTarget::Forward(addr))
        }
    }
}

fn forward_addr(
    field: &str,
    weighted: destination::WeightedAddr,
) -> Result<SocketAddr, ConvertError> {
    let addr: net::TcpAddress = weighted
        .addr
        .ok_or_else(|| ConvertError::Missing(field.to_string()))?;
    SocketAddr::try_from(addr).map_err(|error| invalid(field, error))
}

/// A failure injector's ratio; unset or a zero denominator means always.
fn ratio(ratio: Option<http_proto::Ratio>) -> (u32, u32) {
    match ratio {
        Some(ratio) if ratio.denominator > 0 => {
            (ratio.numerator.min(ratio.denominator), ratio.denominator)
        }
        _ => (1, 1),
    }
}

fn header_modifier(
    field: &str,
    add: Option<http_types::Headers>,
    set: Option<http_types::Headers>,
    remove: Vec<String>,
) -> Result<HeaderModifier, ConvertError> {
    let pairs = |part: &str, headers: Option<http_types::Headers>| {
        headers
            .map(|headers| headers.headers)
            .unwrap_or_default()
            .into_iter()
            .enumerate()
            .map(|(index, header)| {
                let field = format!("{field}.{part}[{index}]");
                let name = HeaderName::from_bytes(header.name.as_bytes()).map_err(|_| {
                    invalid(
                        format!("{field}.name"),
                        format!("invalid header name {:?}", header.name),
                    )
                })?;
                let value = HeaderValue::from_bytes(&header.value)
                    .map_err(|_| invalid(format!("{field}.value"), "invalid header value"))?;
                Ok((name, value))
            })
            .collect::<Result<Vec<_>, ConvertError>>()
    };
    let remove = remove
        .into_iter()
        .enumerate()
        .map(|(index, name)| {
            HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                invalid(
                    format!("{field}.remove[{index}]"),
                    format!("invalid header name {name:?}"),
                )
            })
        })
        .collect::<Result<_, _>>()?;
    Ok(HeaderModifier {
        add: pairs("add", add)?,
        set: pairs("set", set)?,
        remove,
    })
}

fn redirect_of(
    field: &str,
    redirect: http_proto::RequestRedirect,
) -> Result<Redirect, ConvertError> {
    use http_proto::path_modifier::Replace;
    use http_types::scheme::Type;
    let scheme = match redirect.scheme.and_then(|scheme| scheme.r#type) {
        None => None,
        Some(Type::Registered(0)) => Some(http::uri::Scheme::HTTP),
        Some(Type::Registered(1)) => Some(http::uri::Scheme::HTTPS),
        Some(Type::Registered(other)) => {
            return Err(invalid(
                format!("{field}.redirect.scheme"),
                format!("unknown scheme {other}"),
            ));
        }
        Some(Type::Unregistered(scheme)) => Some(scheme.parse().map_err(|_| {
            invalid(
                format!("{field}.redirect.scheme"),
                format!("invalid scheme {scheme:?}"),
            )
        })?),
    };
    let path = match redirect.path.and_then(|path| path.replace) {
        None => None,
        Some(Replace::Full(full)) => Some(PathRewrite::Full(full)),
        Some(Replace::Prefix(prefix)) => Some(PathRewrite::Prefix(prefix)),
    };
    let port = match redirect.port {
        0 => None,
        port => Some(
            u16::try_from(port)
                .map_err(|_| invalid(format!("{field}.redirect.port"), "port out of range"))?,
        ),
    };
    let status = match redirect.status {
        // Gateway API's default.
        0 => StatusCode::FOUND,
        status => StatusCode::from_u16(u16::try_from(status).unwrap_or(0))
            .ok()
            .filter(|status| status.is_redirection())
            .ok_or_else(|| {
                invalid(
                    format!("{field}.redirect.status"),
                    format!("not a redirect status: {status}"),
                )
            })?,
    };
    Ok(Redirect {
        scheme,
        host: (!redirect.host.is_empty()).then_some(redirect.host),
        path,
        port,
        status,
    })
}

fn failure_accrual(
    field: &str,
    accrual: proto::FailureAccrual,
) -> Result<Option<FailureAccrual>, ConvertError> {
    use proto::failure_accrual::Kind;
    match accrual.kind {
        Some(Kind::ConsecutiveFailures(consecutive)) => {
            if consecutive.max_failures == 0 {
                return Ok(None);
            }
            let field = format!("{field}.consecutive_failures.backoff");
            let backoff = consecutive
                .backoff
                .ok_or_else(|| ConvertError::Missing(field.clone()))?;
            let min_backoff = backoff
                .min_backoff
                .map(|duration| duration_of(&format!("{field}.min_backoff"), duration))
                .transpose()?
                .flatten()
                .unwrap_or(Duration::from_secs(1));
            let max_backoff = backoff
                .max_backoff
                .map(|duration| duration_of(&format!("{field}.max_backoff"), duration))
                .transpose()?
                .flatten()
                .unwrap_or(Duration::from_secs(60));
            if max_backoff < min_backoff {
                return Err(invalid(
                    format!("{field}.max_backoff"),
                    "shorter than min_backoff",
                ));
            }
            if !backoff.jitter_ratio.is_finite() || backoff.jitter_ratio < 0.0 {
                return Err(invalid(
                    format!("{field}.jitter_ratio"),
                    "must be at least 0",
                ));
            }
            Ok(Some(FailureAccrual {
                max_failures: consecutive.max_failures,
                min_backoff,
                max_backoff,
                jitter_ratio: f64::from(backoff.jitter_ratio),
            }))
        }
        // Other kinds (the unified success-rate breaker) are not
        // implemented: no accrual, as an older Linkerd proxy does.
        _ => Ok(None),
    }
}

/// A protobuf duration; zero means unset (`None`), negative is refused.
fn duration_of(
    field: &str,
    duration: prost_types::Duration,
) -> Result<Option<Duration>, ConvertError> {
    let duration = Duration::try_from(duration)
        .map_err(|_| invalid(field, "negative or out-of-range duration"))?;
    Ok((!duration.is_zero()).then_some(duration))
}
