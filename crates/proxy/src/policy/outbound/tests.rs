// The tests build messages with the deprecated timeout fields that older
// controllers still send.
#![allow(deprecated)]

use std::time::Duration;

use linkerd2_proxy_api::outbound as proto;
use linkerd2_proxy_api::{http_route as http_proto, http_types, meta};

use super::convert::ConvertError;
use super::*;

fn resource(name: &str, kind: &str) -> Option<meta::Metadata> {
    Some(meta::Metadata {
        kind: Some(meta::metadata::Kind::Resource(meta::Resource {
            group: "gateway.networking.k8s.io".into(),
            kind: kind.into(),
            name: name.into(),
            namespace: "shop".into(),
            ..Default::default()
        })),
    })
}

fn default_meta(name: &str) -> Option<meta::Metadata> {
    Some(meta::Metadata {
        kind: Some(meta::metadata::Kind::Default(name.into())),
    })
}

fn balancer(path: &str) -> proto::Backend {
    proto::Backend {
        metadata: None,
        queue: None,
        kind: Some(proto::backend::Kind::Balancer(proto::backend::BalanceP2c {
            discovery: Some(proto::backend::EndpointDiscovery {
                kind: Some(proto::backend::endpoint_discovery::Kind::Dst(
                    proto::backend::endpoint_discovery::DestinationGet { path: path.into() },
                )),
            }),
            load: None,
        })),
    }
}

fn weighted(path: &str, weight: u32) -> proto::http_route::WeightedRouteBackend {
    proto::http_route::WeightedRouteBackend {
        backend: Some(proto::http_route::RouteBackend {
            backend: Some(balancer(path)),
            filters: vec![],
            request_timeout: None,
        }),
        weight,
    }
}

fn duration(millis: u64) -> Option<prost_types::Duration> {
    Some(Duration::from_millis(millis).try_into().expect("duration"))
}

fn http_rule() -> proto::http_route::Rule {
    proto::http_route::Rule {
        matches: vec![http_proto::HttpRouteMatch {
            path: Some(http_proto::PathMatch {
                kind: Some(http_proto::path_match::Kind::Prefix("/".into())),
            }),
            ..Default::default()
        }],
        filters: vec![],
        backends: Some(proto::http_route::Distribution {
            kind: Some(proto::http_route::distribution::Kind::RandomAvailable(
                proto::http_route::distribution::RandomAvailable {
                    backends: vec![
                        weighted("a.shop.svc.cluster.local:80", 90),
                        weighted("b.shop.svc.cluster.local:80", 10),
                        weighted("zero:80", 0),
                    ],
                },
            )),
        }),
        request_timeout: None,
        timeouts: None,
        retry: None,
        allow_l5d_request_headers: false,
    }
}

fn detect(
    routes: Vec<proto::HttpRoute>,
    accrual: Option<proto::FailureAccrual>,
) -> proto::OutboundPolicy {
    proto::OutboundPolicy {
        metadata: None,
        protocol: Some(proto::ProxyProtocol {
            kind: Some(proto::proxy_protocol::Kind::Detect(
                proto::proxy_protocol::Detect {
                    timeout: duration(10_000),
                    opaque: None,
                    http1: Some(proto::proxy_protocol::Http1 {
                        routes: routes.clone(),
                        failure_accrual: accrual,
                    }),
                    http2: Some(proto::proxy_protocol::Http2 {
                        routes,
                        failure_accrual: accrual,
                    }),
                },
            )),
        }),
    }
}

fn route(
    metadata: Option<meta::Metadata>,
    rules: Vec<proto::http_route::Rule>,
) -> proto::HttpRoute {
    proto::HttpRoute {
        metadata,
        hosts: vec![],
        rules,
    }
}

fn http1_routes(policy: &OutboundPolicy) -> &[PolicyHttpRoute] {
    match &policy.protocol {
        Protocol::Detect { http1, .. } => http1,
        other => panic!("not detect: {other:?}"),
    }
}

#[test]
fn a_route_with_weighted_backends() {
    let policy = OutboundPolicy::try_from(detect(
        vec![route(resource("web-split", "HTTPRoute"), vec![http_rule()])],
        None,
    ))
    .expect("valid");
    assert!(policy.routes_by_resource());
    let routes = http1_routes(&policy);
    assert_eq!(&*routes[0].data.name, "web-split");
    assert_eq!(routes[0].data.kind, "HTTPRoute");
    let rule = &routes[0].rules[0].data;
    let backends: Vec<(BackendTarget, u32)> = rule
        .distribution
        .backends()
        .iter()
        .map(|backend| (backend.target.clone(), backend.weight))
        .collect();
    // Zero weights are dropped.
    assert_eq!(
        backends,
        vec![
            (
                BackendTarget::Balancer("a.shop.svc.cluster.local:80".into()),
                90
            ),
            (
                BackendTarget::Balancer("b.shop.svc.cluster.local:80".into()),
                10
            ),
        ]
    );
    assert_eq!(rule.request_timeout, None);
    assert_eq!(rule.retry, None);
}

#[test]
fn only_default_routes_leave_routing_to_the_profile() {
    let policy = OutboundPolicy::try_from(detect(
        vec![route(default_meta("http"), vec![http_rule()])],
        None,
    ))
    .expect("valid");
    assert!(!policy.routes_by_resource());
    let opaque = proto::OutboundPolicy {
        metadata: None,
        protocol: Some(proto::ProxyProtocol {
            kind: Some(proto::proxy_protocol::Kind::Opaque(
                proto::proxy_protocol::Opaque { routes: vec![] },
            )),
        }),
    };
    let policy = OutboundPolicy::try_from(opaque).expect("valid");
    assert!(matches!(policy.protocol, Protocol::Opaque));
    assert!(!policy.routes_by_resource());
}

#[test]
fn timeouts_and_retries() {
    type Case = (
        &'static str,
        proto::http_route::Rule,
        Option<Duration>,
        Option<RetryPolicy>,
    );
    let with = |change: &dyn Fn(&mut proto::http_route::Rule)| {
        let mut rule = http_rule();
        change(&mut rule);
        rule
    };
    let cases: Vec<Case> = vec![
        ("none", http_rule(), None, None),
        (
            "timeouts.request",
            with(&|rule| {
                rule.timeouts = Some(http_proto::Timeouts {
                    request: duration(500),
                    ..Default::default()
                })
            }),
            Some(Duration::from_millis(500)),
            None,
        ),
        (
            "legacy request_timeout",
            with(&|rule| rule.request_timeout = duration(700)),
            Some(Duration::from_millis(700)),
            None,
        ),
        (
            "retry defaults to 5xx and 64 KiB",
            with(&|rule| {
                rule.retry = Some(proto::http_route::Retry {
                    max_retries: 3,
                    ..Default::default()
                })
            }),
            None,
            Some(RetryPolicy {
                max_retries: 3,
                conditions: RetryConditions::Statuses(vec![(500, 599)]),
                timeout: None,
                max_request_bytes: 64 * 1024,
            }),
        ),
        (
            "retry with ranges and timeout",
            with(&|rule| {
                rule.retry = Some(proto::http_route::Retry {
                    max_retries: 2,
                    max_request_bytes: 100,
                    conditions: Some(proto::http_route::retry::Conditions {
                        status_ranges: vec![proto::http_route::retry::conditions::StatusRange {
                            start: 502,
                            end: 504,
                        }],
                    }),
                    timeout: duration(250),
                    backoff: None,
                })
            }),
            None,
            Some(RetryPolicy {
                max_retries: 2,
                conditions: RetryConditions::Statuses(vec![(502, 504)]),
                timeout: Some(Duration::from_millis(250)),
                max_request_bytes: 100,
            }),
        ),
        (
            "zero retries is no retry",
            with(&|rule| rule.retry = Some(proto::http_route::Retry::default())),
            None,
            None,
        ),
    ];
    for (name, rule, timeout, retry) in cases {
        let policy = OutboundPolicy::try_from(detect(
            vec![route(resource("r", "HTTPRoute"), vec![rule])],
            None,
        ))
        .expect(name);
        let rule = &http1_routes(&policy)[0].rules[0].data;
        assert_eq!(rule.request_timeout, timeout, "{name}");
        assert_eq!(rule.retry, retry, "{name}");
    }
}

#[test]
fn retry_conditions() {
    let statuses = RetryConditions::Statuses(vec![(500, 599)]);
    let grpc = RetryConditions::GrpcCodes(vec![14]);
    let table = [
        (&statuses, 500, None, true),
        (&statuses, 599, None, true),
        (&statuses, 404, None, false),
        (&grpc, 200, Some(14), true),
        (&grpc, 200, Some(0), false),
        (&grpc, 503, None, false),
    ];
    for (conditions, status, grpc_status, expected) in table {
        assert_eq!(
            conditions.retries(status, grpc_status),
            expected,
            "{conditions:?} {status} {grpc_status:?}"
        );
    }
}

#[test]
fn filters() {
    let mut rule = http_rule();
    rule.filters = vec![
        proto::http_route::Filter {
            kind: Some(proto::http_route::filter::Kind::RequestHeaderModifier(
                http_proto::RequestHeaderModifier {
                    add: Some(http_types::Headers {
                        headers: vec![http_types::headers::Header {
                            name: "x-added".into(),
                            value: b"1".to_vec(),
                        }],
                    }),
                    set: None,
                    remove: vec!["x-secret".into()],
                },
            )),
        },
        proto::http_route::Filter {
            kind: Some(proto::http_route::filter::Kind::FailureInjector(
                http_proto::HttpFailureInjector {
                    status: 503,
                    message: "injected".into(),
                    ratio: Some(http_proto::Ratio {
                        numerator: 1,
                        denominator: 4,
                    }),
                },
            )),
        },
        proto::http_route::Filter {
            kind: Some(proto::http_route::filter::Kind::Redirect(
                http_proto::RequestRedirect {
                    scheme: None,
                    host: "other.example.com".into(),
                    path: None,
                    port: 0,
                    status: 301,
                },
            )),
        },
    ];
    let policy = OutboundPolicy::try_from(detect(
        vec![route(resource("r", "HTTPRoute"), vec![rule])],
        None,
    ))
    .expect("valid");
    let filters = &http1_routes(&policy)[0].rules[0].data.filters;
    assert_eq!(
        filters[0],
        Filter::RequestHeaders(HeaderModifier {
            add: vec![(
                http::HeaderName::from_static("x-added"),
                http::HeaderValue::from_static("1")
            )],
            set: vec![],
            remove: vec![http::HeaderName::from_static("x-secret")],
        })
    );
    assert_eq!(
        filters[1],
        Filter::FailureInjector(FailureInjector {
            status: http::StatusCode::SERVICE_UNAVAILABLE,
            grpc_code: None,
            message: "injected".into(),
            numerator: 1,
            denominator: 4,
        })
    );
    assert!(
        matches!(&filters[2], Filter::Redirect(redirect) if redirect.host.as_deref() == Some("other.example.com") && redirect.status == http::StatusCode::MOVED_PERMANENTLY)
    );
}

#[test]
fn failure_accrual() {
    let accrual = |max_failures: u32, min: u64, max: u64| proto::FailureAccrual {
        ejection: None,
        kind: Some(proto::failure_accrual::Kind::ConsecutiveFailures(
            proto::failure_accrual::ConsecutiveFailures {
                max_failures,
                backoff: Some(proto::ExponentialBackoff {
                    min_backoff: duration(min),
                    max_backoff: duration(max),
                    jitter_ratio: 0.5,
                    respect_retry_after_hint: false,
                }),
            },
        )),
    };
    let policy =
        OutboundPolicy::try_from(detect(vec![], Some(accrual(7, 1_000, 60_000)))).expect("valid");
    assert_eq!(
        policy.failure_accrual,
        Some(FailureAccrual {
            max_failures: 7,
            min_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            jitter_ratio: 0.5,
        })
    );
    let disabled =
        OutboundPolicy::try_from(detect(vec![], Some(accrual(0, 1_000, 60_000)))).expect("valid");
    assert_eq!(disabled.failure_accrual, None);
    let error = OutboundPolicy::try_from(detect(vec![], Some(accrual(7, 2_000, 1_000))))
        .expect_err("max < min");
    assert!(error.to_string().contains("max_backoff"), "{error}");
}

#[test]
fn errors_name_the_field() {
    let mut bad_backend = http_rule();
    bad_backend.backends = Some(proto::http_route::Distribution {
        kind: Some(proto::http_route::distribution::Kind::RandomAvailable(
            proto::http_route::distribution::RandomAvailable {
                backends: vec![weighted("", 1)],
            },
        )),
    });
    let mut bad_match = http_rule();
    bad_match.matches[0].path = Some(http_proto::PathMatch {
        kind: Some(http_proto::path_match::Kind::Regex("(".into())),
    });
    let mut bad_retry = http_rule();
    bad_retry.retry = Some(proto::http_route::Retry {
        max_retries: 1,
        conditions: Some(proto::http_route::retry::Conditions {
            status_ranges: vec![proto::http_route::retry::conditions::StatusRange {
                start: 600,
                end: 700,
            }],
        }),
        ..Default::default()
    });
    let cases: Vec<(&str, proto::OutboundPolicy, &str)> = vec![
        (
            "no protocol",
            proto::OutboundPolicy {
                metadata: None,
                protocol: None,
            },
            "protocol.kind: missing",
        ),
        (
            "no metadata",
            detect(vec![route(None, vec![http_rule()])], None),
            "protocol.detect.http1.routes[0].metadata: missing",
        ),
        (
            "empty backend path",
            detect(
                vec![route(resource("r", "HTTPRoute"), vec![bad_backend])],
                None,
            ),
            "protocol.detect.http1.routes[0].rules[0].backends.random_available[0].backend.balancer.discovery.dst.path: missing",
        ),
        (
            "bad regex",
            detect(
                vec![route(resource("r", "HTTPRoute"), vec![bad_match])],
                None,
            ),
            "protocol.detect.http1.routes[0].rules[0].matches[0].path.regex",
        ),
        (
            "bad status range",
            detect(
                vec![route(resource("r", "HTTPRoute"), vec![bad_retry])],
                None,
            ),
            "protocol.detect.http1.routes[0].rules[0].retry.conditions.status_ranges[0]",
        ),
    ];
    for (name, proto, expected) in cases {
        let error: ConvertError = OutboundPolicy::try_from(proto).expect_err(name);
        assert!(error.to_string().starts_with(expected), "{name}: {error}");
    }
    let too_many = detect(
        (0..=convert::MAX_ROUTES)
            .map(|_| route(resource("r", "HTTPRoute"), vec![]))
            .collect(),
        None,
    );
    assert!(matches!(
        OutboundPolicy::try_from(too_many),
        Err(ConvertError::TooManyRoutes { .. })
    ));
}

#[test]
fn grpc_routes_and_retry_codes() {
    let rule = proto::grpc_route::Rule {
        matches: vec![linkerd2_proxy_api::grpc_route::GrpcRouteMatch {
            rpc: Some(linkerd2_proxy_api::grpc_route::GrpcRpcMatch {
                service: "pkg.Users".into(),
                method: "Get".into(),
            }),
            headers: vec![],
        }],
        filters: vec![],
        backends: None,
        request_timeout: None,
        timeouts: None,
        retry: Some(proto::grpc_route::Retry {
            max_retries: 2,
            conditions: Some(proto::grpc_route::retry::Conditions {
                unavailable: true,
                internal: true,
                ..Default::default()
            }),
            ..Default::default()
        }),
        allow_l5d_request_headers: false,
    };
    let policy = proto::OutboundPolicy {
        metadata: None,
        protocol: Some(proto::ProxyProtocol {
            kind: Some(proto::proxy_protocol::Kind::Grpc(
                proto::proxy_protocol::Grpc {
                    routes: vec![proto::GrpcRoute {
                        metadata: resource("users", "GRPCRoute"),
                        hosts: vec![],
                        rules: vec![rule],
                    }],
                    failure_accrual: None,
                },
            )),
        }),
    };
    let policy = OutboundPolicy::try_from(policy).expect("valid");
    assert!(policy.routes_by_resource());
    let Protocol::Grpc(routes) = &policy.protocol else {
        panic!("grpc")
    };
    let rule = &routes[0].rules[0];
    assert_eq!(rule.matches[0].service.as_deref(), Some("pkg.Users"));
    assert!(matches!(rule.data.distribution, Distribution::Empty));
    assert_eq!(
        rule.data
            .retry
            .as_ref()
            .map(|retry| retry.conditions.clone()),
        Some(RetryConditions::GrpcCodes(vec![13, 14]))
    );
}

#[test]
fn traffic_targets() {
    use linkerd2_proxy_api::outbound::traffic_spec::Target;
    assert!(matches!(
        client::traffic_target("10.96.0.10:80"),
        Target::Addr(_)
    ));
    assert!(matches!(
        client::traffic_target("[fd00::1]:80"),
        Target::Addr(_)
    ));
    assert!(
        matches!(client::traffic_target("web.shop.svc.cluster.local:80"), Target::Authority(name) if name == "web.shop.svc.cluster.local:80")
    );
    for (code, rejected) in [
        (tonic::Code::NotFound, true),
        (tonic::Code::Unimplemented, true),
        (tonic::Code::InvalidArgument, true),
        (tonic::Code::Unavailable, false),
        (tonic::Code::Internal, false),
    ] {
        assert_eq!(client::is_rejection(code), rejected, "{code:?}");
    }
}
