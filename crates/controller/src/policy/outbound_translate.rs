//! Pure conversions for the OutboundPolicies server: a `TrafficSpec` into
//! what it asks about ([`parse_target`], [`parse_workload`]) and the
//! catalog's [`OutboundAnswer`] into the `OutboundPolicy` linkerd2-proxy
//! reads ([`policy`]), in the shape Linkerd's policy controller answers:
//!
//! ```text
//! OutboundPolicy { metadata: Resource{core, Service, name, namespace, port},
//!   protocol: Detect{10s, opaque: [opaq], http1/http2: {routes, failure_accrual}}
//!           | Http1 | Http2 (appProtocol) | Grpc{routes} (GRPCRoutes attached) | Opaque{[opaq]} }
//! route:   metadata Resource{group, HTTPRoute|GRPCRoute, name, namespace} or Default "http"
//!          rules: matches, filters, backends (FirstAvailable [service] when no backendRefs,
//!                 else RandomAvailable weighted), timeouts, retry
//! backend: metadata Resource{core, Service, …}, queue {100, failfast 3s},
//!          Balancer{Dst{"<name>.<ns>.svc.<domain>:<port>"}, PeakEwma{30ms, 10s}}
//!          (a Service that does not exist: Default "invalid", no kind, FailureInjector 500)
//! ```
//!
//! Decisions, each as Linkerd's policy controller does: routes are ordered
//! by name (no creation timestamps here); a route's retry annotations replace
//! its Service's (likewise timeouts), an annotation wins over the rule's
//! `timeouts` field; `timeouts.request` → `request`, `backendRequest` →
//! `response`; retries allow 64 KiB bodies with a 25–250 ms backoff (jitter
//! 1.0); failure accrual goes in the protocol's `failure_accrual`; a GRPCRoute
//! `ResponseHeaderModifier` has no place in the proxy API and is dropped.

use std::net::SocketAddr;
use std::time::Duration;

use linkerd2_proxy_api::grpc_route as grpc_proto;
use linkerd2_proxy_api::http_route as http_proto;
use linkerd2_proxy_api::meta;
use linkerd2_proxy_api::outbound as proto;
use weft_core::names::ServiceName;
use weft_core::route::annotations::{ConsecutiveFailures, RouteAnnotations};
use weft_core::route::grpc::GrpcBackendRef;
use weft_core::route::{
    FilterType, GrpcRoute, HttpBackendRef, HttpRoute, HttpRouteFilter, HttpRouteMatch,
    HttpRouteRule,
};

use crate::catalog::{AppProtocol, OutboundAnswer};
use crate::policy::route_proto::{
    grpc_match, host_matches, http_match, redirect, request_header_modifier,
    response_header_modifier,
};

/// The port an authority without one means.
const DEFAULT_PORT: u16 = 80;
/// How long the proxy waits to detect HTTP (Linkerd's value).
pub const DETECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Requests a backend's queue holds (Linkerd's value).
pub const QUEUE_CAPACITY: u32 = 100;
/// How long a backend may stay unready before its queue fails (Linkerd's value).
pub const QUEUE_FAILFAST_TIMEOUT: Duration = Duration::from_secs(3);
/// Peak-EWMA's latency before any is observed (Linkerd's value).
pub const EWMA_DEFAULT_RTT: Duration = Duration::from_millis(30);
/// Peak-EWMA's decay window (Linkerd's value).
pub const EWMA_DECAY: Duration = Duration::from_secs(10);
/// Largest request body a retry may replay (Linkerd's value).
pub const RETRY_MAX_REQUEST_BYTES: u32 = 64 * 1024;
/// Retry backoff bounds and jitter (Linkerd's values).
const RETRY_MIN_BACKOFF: Duration = Duration::from_millis(25);
const RETRY_MAX_BACKOFF: Duration = Duration::from_millis(250);
const RETRY_JITTER: f32 = 1.0;

/// Why a TrafficSpec was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TranslateError {
    /// No target.
    #[error("target is required")]
    MissingTarget,
    /// An address without an IP, with port 0 or above 65535.
    #[error("invalid target address: {0}")]
    InvalidAddress(String),
    /// `source_workload` is not `{"ns":"<namespace>","pod":"<name>"}`.
    #[error(
        "invalid source_workload {0:?}: expected {{\"ns\":\"<namespace>\",\"pod\":\"<name>\"}}"
    )]
    InvalidWorkload(String),
    /// An authority that is not `<name>.<namespace>.svc.<domain>[:port]`.
    #[error("authority {authority:?} must be of the form <name>.<namespace>.svc.{domain}[:port]")]
    UnknownAuthority {
        /// As sent.
        authority: String,
        /// The cluster domain.
        domain: String,
    },
}

/// What a TrafficSpec asks about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutboundTarget {
    /// An `ip:port` the proxy connects to.
    Address(SocketAddr),
    /// A Service port named by authority.
    Service {
        /// The Service.
        service: ServiceName,
        /// The port.
        port: u16,
    },
}

/// The workload asking: namespace and name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceWorkload {
    /// Its namespace.
    pub namespace: String,
    /// Its name (a mesh-file Workload on a host).
    pub name: String,
}

/// Parses `source_workload`: `{"ns":"<namespace>","pod":"<name>"}`, both non-empty.
pub fn parse_workload(text: &str) -> Result<SourceWorkload, TranslateError> {
    #[derive(serde::Deserialize)]
    struct Fields {
        ns: String,
        pod: String,
    }
    let invalid = || TranslateError::InvalidWorkload(text.to_string());
    let fields: Fields = serde_json::from_str(text).map_err(|_| invalid())?;
    if fields.ns.is_empty() || fields.pod.is_empty() {
        return Err(invalid());
    }
    Ok(SourceWorkload {
        namespace: fields.ns,
        name: fields.pod,
    })
}

/// The target: an address, or a Service authority (port 80 when absent).
pub fn parse_target(
    target: Option<proto::traffic_spec::Target>,
    cluster_domain: &str,
) -> Result<OutboundTarget, TranslateError> {
    match target.ok_or(TranslateError::MissingTarget)? {
        proto::traffic_spec::Target::Addr(address) => {
            let port = u16::try_from(address.port)
                .ok()
                .filter(|port| *port != 0)
                .ok_or_else(|| TranslateError::InvalidAddress(format!("port {}", address.port)))?;
            let ip = address
                .ip
                .ok_or_else(|| TranslateError::InvalidAddress("no IP".into()))?
                .try_into()
                .map_err(|_| TranslateError::InvalidAddress("malformed IP".into()))?;
            Ok(OutboundTarget::Address(SocketAddr::new(ip, port)))
        }
        proto::traffic_spec::Target::Authority(authority) => {
            let unknown = || TranslateError::UnknownAuthority {
                authority: authority.clone(),
                domain: cluster_domain.to_string(),
            };
            let (host, port) = match authority.rsplit_once(':') {
                Some((host, port)) => {
                    let port = port
                        .parse::<u16>()
                        .ok()
                        .filter(|port| *port != 0)
                        .ok_or_else(unknown)?;
                    (host, port)
                }
                None => (authority.as_str(), DEFAULT_PORT),
            };
            let host = host.to_ascii_lowercase();
            let suffix = format!(".svc.{cluster_domain}");
            if !host.strip_suffix('.').unwrap_or(&host).ends_with(&suffix) {
                return Err(unknown());
            }
            let service = ServiceName::parse(&host, cluster_domain).ok_or_else(unknown)?;
            Ok(OutboundTarget::Service { service, port })
        }
    }
}

// ---- the answer -------------------------------------------------------------

/// The `OutboundPolicy` for a Service port.
pub fn policy(answer: &OutboundAnswer) -> proto::OutboundPolicy {
    let default_backend = service_backend(&answer.service, answer.port, &answer.cluster_domain);
    let accrual = answer.failure_accrual.as_ref().map(failure_accrual);
    let opaque = || proto::proxy_protocol::Opaque {
        routes: vec![opaque_route(&default_backend)],
    };
    let http_routes = || {
        let mut routes: Vec<&HttpRoute> = answer.http_routes.iter().collect();
        routes.sort_by(|left, right| left.metadata.name.cmp(&right.metadata.name));
        let mut converted: Vec<proto::HttpRoute> = routes
            .into_iter()
            .map(|route| http_route(route, answer, &default_backend))
            .collect();
        if converted.is_empty() {
            converted.push(default_http_route(&default_backend));
        }
        converted
    };
    let grpc = || {
        let mut routes: Vec<&GrpcRoute> = answer.grpc_routes.iter().collect();
        routes.sort_by(|left, right| left.metadata.name.cmp(&right.metadata.name));
        proto::proxy_protocol::Kind::Grpc(proto::proxy_protocol::Grpc {
            routes: routes
                .into_iter()
                .map(|route| grpc_route(route, answer, &default_backend))
                .collect(),
            failure_accrual: accrual,
        })
    };
    let has_grpc = !answer.grpc_routes.is_empty();
    let kind = match answer.protocol {
        AppProtocol::Opaque => proto::proxy_protocol::Kind::Opaque(opaque()),
        AppProtocol::Http1 => proto::proxy_protocol::Kind::Http1(proto::proxy_protocol::Http1 {
            routes: http_routes(),
            failure_accrual: accrual,
        }),
        AppProtocol::Http2 | AppProtocol::Detect if has_grpc => grpc(),
        AppProtocol::Http2 => proto::proxy_protocol::Kind::Http2(proto::proxy_protocol::Http2 {
            routes: http_routes(),
            failure_accrual: accrual,
        }),
        AppProtocol::Detect => {
            let routes = http_routes();
            proto::proxy_protocol::Kind::Detect(proto::proxy_protocol::Detect {
                timeout: duration(DETECT_TIMEOUT),
                opaque: Some(opaque()),
                http1: Some(proto::proxy_protocol::Http1 {
                    routes: routes.clone(),
                    failure_accrual: accrual,
                }),
                http2: Some(proto::proxy_protocol::Http2 {
                    routes,
                    failure_accrual: accrual,
                }),
            })
        }
    };
    proto::OutboundPolicy {
        metadata: Some(service_metadata(&answer.service, answer.port)),
        protocol: Some(proto::ProxyProtocol { kind: Some(kind) }),
    }
}

fn duration(value: Duration) -> Option<prost_types::Duration> {
    prost_types::Duration::try_from(value).ok()
}

fn resource(group: &str, kind: &str, name: &str, namespace: &str, port: u16) -> meta::Metadata {
    meta::Metadata {
        kind: Some(meta::metadata::Kind::Resource(meta::Resource {
            group: group.to_string(),
            kind: kind.to_string(),
            name: name.to_string(),
            namespace: namespace.to_string(),
            section: String::new(),
            port: u32::from(port),
        })),
    }
}

fn default_metadata(name: &str) -> meta::Metadata {
    meta::Metadata {
        kind: Some(meta::metadata::Kind::Default(name.to_string())),
    }
}

fn service_metadata(service: &ServiceName, port: u16) -> meta::Metadata {
    resource("core", "Service", &service.name, &service.namespace, port)
}

/// `<name>.<namespace>.svc.<domain>:<port>`: the Destination `Get` path.
pub fn authority(service: &ServiceName, port: u16, cluster_domain: &str) -> String {
    format!("{}:{port}", service.fully_qualified(cluster_domain))
}

fn queue() -> proto::Queue {
    proto::Queue {
        capacity: QUEUE_CAPACITY,
        failfast_timeout: duration(QUEUE_FAILFAST_TIMEOUT),
    }
}

/// A balancer over the Service port's endpoints.
fn service_backend(service: &ServiceName, port: u16, cluster_domain: &str) -> proto::Backend {
    use proto::backend::{BalanceP2c, EndpointDiscovery, balance_p2c, endpoint_discovery};
    proto::Backend {
        metadata: Some(service_metadata(service, port)),
        queue: Some(queue()),
        kind: Some(proto::backend::Kind::Balancer(BalanceP2c {
            discovery: Some(EndpointDiscovery {
                kind: Some(endpoint_discovery::Kind::Dst(
                    endpoint_discovery::DestinationGet {
                        path: authority(service, port, cluster_domain),
                    },
                )),
            }),
            load: Some(balance_p2c::Load::PeakEwma(balance_p2c::PeakEwma {
                default_rtt: duration(EWMA_DEFAULT_RTT),
                decay: duration(EWMA_DECAY),
            })),
        })),
    }
}

/// A backend naming a Service that does not exist: no kind, as Linkerd.
fn invalid_backend() -> proto::Backend {
    proto::Backend {
        metadata: Some(default_metadata("invalid")),
        queue: Some(queue()),
        kind: None,
    }
}

fn failure_accrual(accrual: &ConsecutiveFailures) -> proto::FailureAccrual {
    proto::FailureAccrual {
        kind: Some(proto::failure_accrual::Kind::ConsecutiveFailures(
            proto::failure_accrual::ConsecutiveFailures {
                max_failures: accrual.max_failures,
                backoff: Some(proto::ExponentialBackoff {
                    min_backoff: duration(accrual.min_penalty),
                    max_backoff: duration(accrual.max_penalty),
                    jitter_ratio: accrual.jitter_ratio,
                    respect_retry_after_hint: false,
                }),
            },
        )),
        ejection: None,
    }
}

fn retry_backoff() -> proto::ExponentialBackoff {
    proto::ExponentialBackoff {
        min_backoff: duration(RETRY_MIN_BACKOFF),
        max_backoff: duration(RETRY_MAX_BACKOFF),
        jitter_ratio: RETRY_JITTER,
        respect_retry_after_hint: false,
    }
}

fn opaque_route(backend: &proto::Backend) -> proto::OpaqueRoute {
    use proto::opaque_route::{Distribution, RouteBackend, Rule, distribution};
    proto::OpaqueRoute {
        metadata: Some(default_metadata("opaq")),
        rules: vec![Rule {
            backends: Some(Distribution {
                kind: Some(distribution::Kind::FirstAvailable(
                    distribution::FirstAvailable {
                        backends: vec![RouteBackend {
                            backend: Some(backend.clone()),
                            filters: Vec::new(),
                        }],
                    },
                )),
            }),
            filters: Vec::new(),
        }],
    }
}

/// The route a Service without HTTPRoutes gets: `/` prefix to the Service.
fn default_http_route(backend: &proto::Backend) -> proto::HttpRoute {
    use proto::http_route::{Distribution, RouteBackend, Rule, distribution};
    proto::HttpRoute {
        metadata: Some(default_metadata("http")),
        hosts: Vec::new(),
        rules: vec![Rule {
            matches: vec![http_match(&HttpRouteMatch::default())],
            backends: Some(Distribution {
                kind: Some(distribution::Kind::FirstAvailable(
                    distribution::FirstAvailable {
                        backends: vec![RouteBackend {
                            backend: Some(backend.clone()),
                            ..Default::default()
                        }],
                    },
                )),
            }),
            ..Default::default()
        }],
    }
}

fn http_filter(filter: &HttpRouteFilter) -> Option<proto::http_route::Filter> {
    use proto::http_route::filter::Kind;
    let kind = match filter.filter_type {
        FilterType::RequestHeaderModifier => filter
            .request_header_modifier
            .as_ref()
            .map(|modifier| Kind::RequestHeaderModifier(request_header_modifier(modifier))),
        FilterType::ResponseHeaderModifier => filter
            .response_header_modifier
            .as_ref()
            .map(|modifier| Kind::ResponseHeaderModifier(response_header_modifier(modifier))),
        FilterType::RequestRedirect => filter
            .request_redirect
            .as_ref()
            .map(|value| Kind::Redirect(redirect(value))),
    }?;
    Some(proto::http_route::Filter { kind: Some(kind) })
}

fn grpc_filter(filter: &HttpRouteFilter) -> Option<proto::grpc_route::Filter> {
    use proto::grpc_route::filter::Kind;
    match filter.filter_type {
        FilterType::RequestHeaderModifier => {
            filter
                .request_header_modifier
                .as_ref()
                .map(|modifier| proto::grpc_route::Filter {
                    kind: Some(Kind::RequestHeaderModifier(request_header_modifier(
                        modifier,
                    ))),
                })
        }
        // No place for them in the gRPC route's filters.
        FilterType::ResponseHeaderModifier | FilterType::RequestRedirect => None,
    }
}

/// The rule's timeouts: the annotations (route's, else Service's) win over
/// the rule's `timeouts` field.
fn timeouts(
    annotations: &RouteAnnotations,
    rule_request: Option<Duration>,
    rule_backend_request: Option<Duration>,
) -> http_proto::Timeouts {
    http_proto::Timeouts {
        request: annotations
            .timeout
            .request
            .or(rule_request)
            .and_then(duration),
        response: annotations
            .timeout
            .response
            .or(rule_backend_request)
            .and_then(duration),
        idle: annotations.timeout.idle.and_then(duration),
    }
}

fn rule_durations(rule: &HttpRouteRule) -> (Option<Duration>, Option<Duration>) {
    let Some(timeouts) = &rule.timeouts else {
        return (None, None);
    };
    (
        timeouts.request.as_ref().map(|value| value.value()),
        timeouts.backend_request.as_ref().map(|value| value.value()),
    )
}

/// HTTP retries when `retry.linkerd.io/http`, `limit` or `timeout` is set
/// (the gRPC conditions do not count), as Linkerd parses them.
fn http_retry(annotations: &RouteAnnotations) -> Option<proto::http_route::Retry> {
    let retry = &annotations.retry;
    if retry.http.is_none() && retry.limit.is_none() && retry.timeout.is_none() {
        return None;
    }
    Some(proto::http_route::Retry {
        max_retries: retry.effective_limit(),
        max_request_bytes: RETRY_MAX_REQUEST_BYTES,
        conditions: Some(proto::http_route::retry::Conditions {
            status_ranges: retry
                .http
                .iter()
                .flatten()
                .map(|range| proto::http_route::retry::conditions::StatusRange {
                    start: u32::from(range.start),
                    end: u32::from(range.end),
                })
                .collect(),
        }),
        timeout: retry.timeout.and_then(duration),
        backoff: Some(retry_backoff()),
    })
}

/// gRPC retries when `retry.linkerd.io/grpc`, `limit` or `timeout` is set
/// (the HTTP conditions do not count).
fn grpc_retry(annotations: &RouteAnnotations) -> Option<proto::grpc_route::Retry> {
    let retry = &annotations.retry;
    if retry.grpc.is_none() && retry.limit.is_none() && retry.timeout.is_none() {
        return None;
    }
    let codes = retry.grpc.clone().unwrap_or_default();
    let on = |code: u32| codes.contains(&code);
    Some(proto::grpc_route::Retry {
        max_retries: retry.effective_limit(),
        max_request_bytes: RETRY_MAX_REQUEST_BYTES,
        conditions: Some(proto::grpc_route::retry::Conditions {
            cancelled: on(1),
            deadine_exceeded: on(4),
            resource_exhausted: on(8),
            internal: on(13),
            unavailable: on(14),
        }),
        timeout: retry.timeout.and_then(duration),
        backoff: Some(retry_backoff()),
    })
}

/// The backend a backendRef names: a balancer, or an invalid backend (with
/// the failure the proxy answers) when the Service does not exist.
fn named_backend(
    answer: &OutboundAnswer,
    route_namespace: &str,
    name: &str,
    namespace: Option<&str>,
    port: Option<u16>,
) -> Result<proto::Backend, String> {
    let service = ServiceName::new(namespace.unwrap_or(route_namespace), name);
    if answer.missing_backends.contains(&service) {
        return Err(format!("Service not found {name}"));
    }
    Ok(service_backend(
        &service,
        port.unwrap_or(answer.port),
        &answer.cluster_domain,
    ))
}

/// A backendRef's backend and filters: the Service's balancer with the
/// ref's own filters, or, for a Service that does not exist, an invalid
/// backend whose one filter is `failure` of the reason (a 500).
fn backend_and_filters<Filter>(
    found: Result<proto::Backend, String>,
    filters: impl FnOnce() -> Vec<Filter>,
    failure: impl FnOnce(String) -> Filter,
) -> (proto::Backend, Vec<Filter>) {
    match found {
        Ok(found) => (found, filters()),
        Err(message) => (invalid_backend(), vec![failure(message)]),
    }
}

/// Each of a route's rules translated; a route without rules has one
/// default rule (every request, to the Service).
fn each_rule<Rule: Default, Translated>(
    rules: &[Rule],
    translate: impl FnMut(&Rule) -> Translated,
) -> Vec<Translated> {
    if rules.is_empty() {
        [Rule::default()].iter().map(translate).collect()
    } else {
        rules.iter().map(translate).collect()
    }
}

fn namespace_of(namespace: &Option<String>) -> &str {
    namespace.as_deref().unwrap_or("default")
}

fn http_route(
    route: &HttpRoute,
    answer: &OutboundAnswer,
    default_backend: &proto::Backend,
) -> proto::HttpRoute {
    use proto::http_route::{Distribution, RouteBackend, WeightedRouteBackend, distribution};
    let route_namespace = namespace_of(&route.metadata.namespace);
    let annotations = route.annotations.or_service(&answer.service_annotations);
    let backend_of = |backend: &HttpBackendRef| {
        let found = named_backend(
            answer,
            route_namespace,
            &backend.name,
            backend.namespace.as_deref(),
            backend.port,
        );
        let (found, filters) = backend_and_filters(
            found,
            || backend.filters.iter().filter_map(http_filter).collect(),
            |message| proto::http_route::Filter {
                kind: Some(proto::http_route::filter::Kind::FailureInjector(
                    http_proto::HttpFailureInjector {
                        status: 500,
                        message,
                        ratio: None,
                    },
                )),
            },
        );
        WeightedRouteBackend {
            weight: backend.weight,
            backend: Some(RouteBackend {
                backend: Some(found),
                filters,
                ..Default::default()
            }),
        }
    };
    #[expect(
        deprecated,
        reason = "set for older proxies, as Linkerd's controller does"
    )]
    let rules = each_rule(&route.spec.rules, |rule| {
        let backends = if rule.backend_refs.is_empty() {
            distribution::Kind::FirstAvailable(distribution::FirstAvailable {
                backends: vec![RouteBackend {
                    backend: Some(default_backend.clone()),
                    ..Default::default()
                }],
            })
        } else {
            distribution::Kind::RandomAvailable(distribution::RandomAvailable {
                backends: rule.backend_refs.iter().map(backend_of).collect(),
            })
        };
        let (request, backend_request) = rule_durations(rule);
        let timeouts = timeouts(&annotations, request, backend_request);
        proto::http_route::Rule {
            matches: rule.effective_matches().iter().map(http_match).collect(),
            filters: rule.filters.iter().filter_map(http_filter).collect(),
            backends: Some(Distribution {
                kind: Some(backends),
            }),
            request_timeout: timeouts.request,
            timeouts: Some(timeouts),
            retry: http_retry(&annotations),
            allow_l5d_request_headers: false,
        }
    });
    proto::HttpRoute {
        metadata: Some(resource(
            route.group(),
            "HTTPRoute",
            route.metadata.name.as_deref().unwrap_or_default(),
            route_namespace,
            0,
        )),
        hosts: host_matches(&route.spec.hostnames),
        rules,
    }
}

fn grpc_route(
    route: &GrpcRoute,
    answer: &OutboundAnswer,
    default_backend: &proto::Backend,
) -> proto::GrpcRoute {
    use proto::grpc_route::{Distribution, RouteBackend, WeightedRouteBackend, distribution};
    let route_namespace = namespace_of(&route.metadata.namespace);
    let annotations = route.annotations.or_service(&answer.service_annotations);
    let backend_of = |backend: &GrpcBackendRef| {
        let found = named_backend(
            answer,
            route_namespace,
            &backend.name,
            backend.namespace.as_deref(),
            backend.port,
        );
        let (found, filters) = backend_and_filters(
            found,
            || backend.filters.iter().filter_map(grpc_filter).collect(),
            |message| proto::grpc_route::Filter {
                kind: Some(proto::grpc_route::filter::Kind::FailureInjector(
                    grpc_proto::GrpcFailureInjector {
                        code: 500,
                        message,
                        ratio: None,
                    },
                )),
            },
        );
        WeightedRouteBackend {
            weight: backend.weight,
            backend: Some(RouteBackend {
                backend: Some(found),
                filters,
                ..Default::default()
            }),
        }
    };
    #[expect(
        deprecated,
        reason = "set for older proxies, as Linkerd's controller does"
    )]
    let rules = each_rule(&route.spec.rules, |rule| {
        let backends = if rule.backend_refs.is_empty() {
            distribution::Kind::FirstAvailable(distribution::FirstAvailable {
                backends: vec![RouteBackend {
                    backend: Some(default_backend.clone()),
                    ..Default::default()
                }],
            })
        } else {
            distribution::Kind::RandomAvailable(distribution::RandomAvailable {
                backends: rule.backend_refs.iter().map(backend_of).collect(),
            })
        };
        let timeouts = timeouts(&annotations, None, None);
        proto::grpc_route::Rule {
            matches: rule.effective_matches().iter().map(grpc_match).collect(),
            filters: rule.filters.iter().filter_map(grpc_filter).collect(),
            backends: Some(Distribution {
                kind: Some(backends),
            }),
            request_timeout: timeouts.request,
            timeouts: Some(timeouts),
            retry: grpc_retry(&annotations),
            allow_l5d_request_headers: false,
        }
    });
    proto::GrpcRoute {
        metadata: Some(resource(
            route.group(),
            "GRPCRoute",
            route.metadata.name.as_deref().unwrap_or_default(),
            route_namespace,
            0,
        )),
        hosts: host_matches(&route.spec.hostnames),
        rules,
    }
}

#[cfg(test)]
mod tests;
