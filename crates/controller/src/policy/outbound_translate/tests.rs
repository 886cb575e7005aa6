//! Table tests: TrafficSpec parsing, and the answers for a mesh with a
//! header-match canary, a Service without routes, an opaque port, a gRPC
//! Service and failure accrual.

use linkerd2_proxy_api::http_types;
use linkerd2_proxy_api::net::TcpAddress;
use linkerd2_proxy_api::outbound::proxy_protocol::Kind as ProtocolKind;
use linkerd2_proxy_api::outbound::traffic_spec::Target;

use super::*;
use crate::catalog::{Catalog, ProfileTarget, ServicePort};
use crate::mesh_file::parse_mesh;

const MESH: &str = r#"
apiVersion: v1
kind: Service
metadata:
  name: books
  namespace: shop
  annotations:
    balancer.linkerd.io/failure-accrual: consecutive
    retry.linkerd.io/http: gateway-error
    timeout.linkerd.io/request: 9s
spec: {clusterIP: 10.96.0.10, selector: {app: books}, ports: [{port: 7002}]}
---
apiVersion: v1
kind: Service
metadata: {name: books-v1, namespace: shop}
spec: {selector: {app: books, version: v1}, ports: [{port: 7002}]}
---
apiVersion: v1
kind: Service
metadata: {name: books-v2, namespace: shop}
spec: {selector: {app: books, version: v2}, ports: [{port: 7002}]}
---
apiVersion: v1
kind: Service
metadata:
  name: db
  namespace: shop
  annotations: {config.linkerd.io/opaque-ports: "5432"}
spec: {clusterIP: 10.96.0.11, ports: [{port: 5432}, {port: 80, appProtocol: http}]}
---
apiVersion: v1
kind: Service
metadata: {name: greeter, namespace: shop}
spec: {ports: [{port: 50051}]}
---
apiVersion: policy.linkerd.io/v1beta3
kind: HTTPRoute
metadata:
  name: books-canary
  namespace: shop
  annotations: {retry.linkerd.io/limit: "3", retry.linkerd.io/http: 5xx}
spec:
  parentRefs: [{group: core, kind: Service, name: books, port: 7002}]
  hostnames: [books.example.com, "*.books.example.com"]
  rules:
  - matches:
    - headers: [{name: x-canary, value: "true"}]
      method: GET
    filters:
    - type: RequestHeaderModifier
      requestHeaderModifier: {set: [{name: x-route, value: canary}], remove: [x-debug]}
    backendRefs: [{name: books-v2, port: 7002}]
    timeouts: {request: 5s, backendRequest: 1s}
  - backendRefs:
    - {name: books-v1, port: 7002, weight: 90}
    - {name: books-v2, port: 7002, weight: 10}
    - {name: books-v3, port: 7002, weight: 5}
---
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata:
  name: greeter
  namespace: shop
  annotations: {retry.linkerd.io/grpc: "unavailable,cancelled"}
spec:
  parentRefs: [{kind: Service, name: greeter, port: 50051}]
  rules:
  - matches: [{method: {service: helloworld.Greeter, method: SayHello}}]
    filters:
    - type: ResponseHeaderModifier
      responseHeaderModifier: {remove: [x-dropped]}
"#;

fn catalog() -> Catalog {
    let mut catalog = Catalog::default();
    catalog
        .update(parse_mesh(MESH).expect("mesh parses"), Vec::new())
        .expect("catalog accepts");
    catalog
}

fn answer(name: &str, port: u16) -> proto::OutboundPolicy {
    let answer = catalog()
        .outbound(&ProfileTarget::new(
            ServicePort::new("shop", name, port),
            None,
        ))
        .expect("known service");
    policy(&answer)
}

fn seconds(value: u64) -> Option<prost_types::Duration> {
    duration(Duration::from_secs(value))
}

#[test]
fn workloads_and_targets_parse() {
    let workloads: &[(&str, Option<(&str, &str)>)] = &[
        (r#"{"ns":"shop","pod":"web"}"#, Some(("shop", "web"))),
        (r#"{"ns":"shop","pod":""}"#, None),
        ("shop:web", None),
        ("", None),
    ];
    for (text, expected) in workloads {
        let parsed = parse_workload(text).ok();
        assert_eq!(
            parsed
                .as_ref()
                .map(|workload| (workload.namespace.as_str(), workload.name.as_str())),
            *expected,
            "{text}"
        );
    }
    let address = |port: u32| {
        Some(Target::Addr(TcpAddress {
            ip: Some("10.96.0.10".parse::<std::net::IpAddr>().unwrap().into()),
            port,
        }))
    };
    let authority = |text: &str| Some(Target::Authority(text.to_string()));
    let service = |port| OutboundTarget::Service {
        service: ServiceName::new("shop", "books"),
        port,
    };
    let cases: Vec<(Option<Target>, Result<OutboundTarget, &str>)> = vec![
        (
            address(7002),
            Ok(OutboundTarget::Address("10.96.0.10:7002".parse().unwrap())),
        ),
        (address(0), Err("invalid target address")),
        (address(70_000), Err("invalid target address")),
        (
            Some(Target::Addr(TcpAddress { ip: None, port: 80 })),
            Err("invalid target address"),
        ),
        (
            authority("books.shop.svc.cluster.local:7002"),
            Ok(service(7002)),
        ),
        (
            authority("books.shop.svc.cluster.local.:7002"),
            Ok(service(7002)),
        ),
        (authority("books.shop.svc.cluster.local"), Ok(service(80))),
        (authority("books.shop:7002"), Err("must be of the form")),
        (authority("example.com:443"), Err("must be of the form")),
        (
            authority("books.shop.svc.cluster.local:0"),
            Err("must be of the form"),
        ),
        (None, Err("target is required")),
    ];
    for (target, expected) in cases {
        let parsed = parse_target(target.clone(), "cluster.local");
        match (parsed, expected) {
            (Ok(found), Ok(wanted)) => assert_eq!(found, wanted, "{target:?}"),
            (Err(error), Err(wanted)) => {
                assert!(error.to_string().contains(wanted), "{target:?}: {error}")
            }
            (found, wanted) => panic!("{target:?}: {found:?}, expected {wanted:?}"),
        }
    }
}

fn detect(policy: &proto::OutboundPolicy) -> &proto::proxy_protocol::Detect {
    match policy
        .protocol
        .as_ref()
        .and_then(|protocol| protocol.kind.as_ref())
    {
        Some(ProtocolKind::Detect(detect)) => detect,
        other => panic!("expected Detect, got {other:?}"),
    }
}

fn balancer_path(backend: &proto::Backend) -> &str {
    match &backend.kind {
        Some(proto::backend::Kind::Balancer(balancer)) => {
            match balancer
                .discovery
                .as_ref()
                .and_then(|discovery| discovery.kind.as_ref())
            {
                Some(proto::backend::endpoint_discovery::Kind::Dst(get)) => &get.path,
                None => panic!("no discovery"),
            }
        }
        other => panic!("expected a balancer, got {other:?}"),
    }
}

#[test]
fn a_service_without_routes_gets_the_default_route() {
    let policy = answer("books-v1", 7002);
    assert_eq!(
        policy.metadata,
        Some(resource("core", "Service", "books-v1", "shop", 7002))
    );
    let detect = detect(&policy);
    assert_eq!(detect.timeout, seconds(10));
    let http1 = detect.http1.as_ref().unwrap();
    assert_eq!(http1.failure_accrual, None);
    assert_eq!(
        detect.http2.as_ref().map(|http2| &http2.routes),
        Some(&http1.routes),
        "HTTP/1 and HTTP/2 get the same routes"
    );
    let [route] = http1.routes.as_slice() else {
        panic!("one default route: {:?}", http1.routes)
    };
    assert_eq!(route.metadata, Some(default_metadata("http")));
    let [rule] = route.rules.as_slice() else {
        panic!("one rule")
    };
    assert_eq!(
        rule.matches,
        vec![http_proto::HttpRouteMatch {
            path: Some(http_proto::PathMatch {
                kind: Some(http_proto::path_match::Kind::Prefix("/".into()))
            }),
            ..Default::default()
        }]
    );
    assert_eq!(rule.retry, None);
    let Some(proto::http_route::distribution::Kind::FirstAvailable(first)) = rule
        .backends
        .as_ref()
        .and_then(|backends| backends.kind.as_ref())
    else {
        panic!("FirstAvailable")
    };
    let backend = first.backends[0].backend.as_ref().unwrap();
    assert_eq!(
        balancer_path(backend),
        "books-v1.shop.svc.cluster.local:7002"
    );
    assert_eq!(
        backend.queue,
        Some(proto::Queue {
            capacity: 100,
            failfast_timeout: seconds(3)
        })
    );
    let Some(proto::backend::Kind::Balancer(balancer)) = &backend.kind else {
        panic!()
    };
    assert_eq!(
        balancer.load,
        Some(proto::backend::balance_p2c::Load::PeakEwma(
            proto::backend::balance_p2c::PeakEwma {
                default_rtt: duration(Duration::from_millis(30)),
                decay: seconds(10),
            }
        ))
    );
    let opaque = detect.opaque.as_ref().unwrap();
    assert_eq!(opaque.routes[0].metadata, Some(default_metadata("opaq")));
}

#[test]
fn the_canary_route_carries_matches_filters_weights_timeouts_and_retries() {
    let policy = answer("books", 7002);
    let detect = detect(&policy);
    let http1 = detect.http1.as_ref().unwrap();
    let accrual = http1.failure_accrual.as_ref().expect("failure accrual");
    assert_eq!(
        accrual.kind,
        Some(proto::failure_accrual::Kind::ConsecutiveFailures(
            proto::failure_accrual::ConsecutiveFailures {
                max_failures: 7,
                backoff: Some(proto::ExponentialBackoff {
                    min_backoff: seconds(1),
                    max_backoff: seconds(60),
                    jitter_ratio: 0.5,
                    respect_retry_after_hint: false,
                }),
            }
        ))
    );
    let [route] = http1.routes.as_slice() else {
        panic!("one route")
    };
    assert_eq!(
        route.metadata,
        Some(resource(
            "policy.linkerd.io",
            "HTTPRoute",
            "books-canary",
            "shop",
            0
        ))
    );
    assert_eq!(route.hosts.len(), 2);
    assert_eq!(
        route.hosts[1].r#match,
        Some(http_proto::host_match::Match::Suffix(
            http_proto::host_match::Suffix {
                reverse_labels: vec!["com".into(), "example".into(), "books".into()]
            }
        ))
    );
    let [canary, split] = route.rules.as_slice() else {
        panic!("two rules")
    };
    // The rule's match: header exact, method GET, and, with no path
    // written, the Gateway API's default `PathPrefix /` (so the header
    // outranks the split rule, whose only match is also `/`).
    let condition = &canary.matches[0];
    assert_eq!(
        condition.path,
        Some(http_proto::PathMatch {
            kind: Some(http_proto::path_match::Kind::Prefix("/".into()))
        })
    );
    assert_eq!(condition.headers[0].name, "x-canary");
    assert_eq!(
        condition.headers[0].value,
        Some(http_proto::header_match::Value::Exact(b"true".to_vec()))
    );
    assert_eq!(
        condition.method,
        Some(http_types::HttpMethod {
            r#type: Some(http_types::http_method::Type::Registered(
                http_types::http_method::Registered::Get as i32
            ))
        })
    );
    let Some(proto::http_route::filter::Kind::RequestHeaderModifier(modifier)) =
        &canary.filters[0].kind
    else {
        panic!("request header modifier")
    };
    assert_eq!(modifier.remove, vec!["x-debug".to_string()]);
    assert_eq!(modifier.set.as_ref().unwrap().headers[0].value, b"canary");
    // Timeouts: the Service's timeout annotation (the route has none) wins
    // over the rule's request field; backendRequest becomes response.
    assert_eq!(
        canary.timeouts,
        Some(http_proto::Timeouts {
            request: seconds(9),
            response: seconds(1),
            idle: None,
        })
    );
    // Retries: the route's annotations replace the Service's.
    let retry = canary.retry.as_ref().expect("retry");
    assert_eq!(retry.max_retries, 3);
    assert_eq!(retry.max_request_bytes, 64 * 1024);
    assert_eq!(
        retry.conditions.as_ref().unwrap().status_ranges,
        vec![proto::http_route::retry::conditions::StatusRange {
            start: 500,
            end: 599
        }]
    );
    // The split rule: no matches = prefix /, weights as written, a missing
    // Service becomes an invalid backend that fails with 500.
    assert_eq!(split.matches, vec![http_match(&HttpRouteMatch::default())]);
    let Some(proto::http_route::distribution::Kind::RandomAvailable(random)) = split
        .backends
        .as_ref()
        .and_then(|backends| backends.kind.as_ref())
    else {
        panic!("RandomAvailable")
    };
    let summary: Vec<(u32, String)> = random
        .backends
        .iter()
        .map(|weighted| {
            let backend = weighted
                .backend
                .as_ref()
                .and_then(|route_backend| route_backend.backend.as_ref())
                .unwrap();
            let path = match backend.kind {
                Some(_) => balancer_path(backend).to_string(),
                None => format!("{:?}", backend.metadata),
            };
            (weighted.weight, path)
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (90, "books-v1.shop.svc.cluster.local:7002".to_string()),
            (10, "books-v2.shop.svc.cluster.local:7002".to_string()),
            (5, format!("{:?}", Some(default_metadata("invalid")))),
        ]
    );
    let missing = random.backends[2].backend.as_ref().unwrap();
    assert_eq!(
        missing.filters[0].kind,
        Some(proto::http_route::filter::Kind::FailureInjector(
            http_proto::HttpFailureInjector {
                status: 500,
                message: "Service not found books-v3".into(),
                ratio: None
            }
        ))
    );
}

#[test]
fn opaque_and_http1_ports() {
    let opaque = answer("db", 5432);
    assert!(
        matches!(
            opaque.protocol.and_then(|protocol| protocol.kind),
            Some(ProtocolKind::Opaque(ref routes)) if routes.routes[0].metadata == Some(default_metadata("opaq"))
        ),
        "opaque-ports annotation"
    );
    let http1 = answer("db", 80);
    assert!(
        matches!(
            http1.protocol.and_then(|protocol| protocol.kind),
            Some(ProtocolKind::Http1(ref http1)) if http1.routes[0].metadata == Some(default_metadata("http"))
        ),
        "appProtocol: http"
    );
}

#[test]
fn grpc_routes_make_the_protocol_grpc() {
    let policy = answer("greeter", 50051);
    let Some(ProtocolKind::Grpc(grpc)) = policy.protocol.and_then(|protocol| protocol.kind) else {
        panic!("Grpc")
    };
    let [route] = grpc.routes.as_slice() else {
        panic!("one route")
    };
    assert_eq!(
        route.metadata,
        Some(resource(
            "gateway.networking.k8s.io",
            "GRPCRoute",
            "greeter",
            "shop",
            0
        ))
    );
    let rule = &route.rules[0];
    assert_eq!(
        rule.matches[0].rpc,
        Some(grpc_proto::GrpcRpcMatch {
            service: "helloworld.Greeter".into(),
            method: "SayHello".into()
        })
    );
    assert!(rule.filters.is_empty(), "ResponseHeaderModifier is dropped");
    let conditions = rule.retry.as_ref().unwrap().conditions.unwrap();
    assert!(conditions.unavailable && conditions.cancelled && !conditions.internal);
    let Some(proto::grpc_route::distribution::Kind::FirstAvailable(first)) = rule
        .backends
        .as_ref()
        .and_then(|backends| backends.kind.as_ref())
    else {
        panic!("FirstAvailable: the parent Service")
    };
    assert_eq!(
        balancer_path(first.backends[0].backend.as_ref().unwrap()),
        "greeter.shop.svc.cluster.local:50051"
    );
}

#[test]
fn the_example_http_route_answers_a_header_canary_and_a_split() {
    let text = include_str!("../../../../../examples/http-route.yaml");
    let mut catalog = Catalog::default();
    catalog
        .update(parse_mesh(text).expect("the example parses"), Vec::new())
        .expect("the catalog accepts it");
    let answer = catalog
        .outbound(&ProfileTarget::new(
            ServicePort::new("canary", "books", 80),
            None,
        ))
        .expect("books exists");
    let policy = policy(&answer);
    let route = &detect(&policy).http1.as_ref().unwrap().routes[0];
    let [canary, split] = route.rules.as_slice() else {
        panic!("two rules")
    };
    assert_eq!(canary.matches[0].headers[0].name, "x-canary");
    let Some(proto::http_route::distribution::Kind::RandomAvailable(random)) = split
        .backends
        .as_ref()
        .and_then(|backends| backends.kind.as_ref())
    else {
        panic!("RandomAvailable")
    };
    let weights: Vec<(u32, &str)> = random
        .backends
        .iter()
        .map(|weighted| {
            let backend = weighted.backend.as_ref().unwrap().backend.as_ref().unwrap();
            (weighted.weight, balancer_path(backend))
        })
        .collect();
    assert_eq!(
        weights,
        vec![
            (90, "books-v1.canary.svc.cluster.local:80"),
            (10, "books-v2.canary.svc.cluster.local:80"),
        ]
    );
    assert_eq!(
        canary.retry.as_ref().map(|retry| retry.max_retries),
        Some(1)
    );
}

#[test]
fn retries_exist_per_protocol() {
    let annotations = |pairs: &[(&str, &str)]| {
        let map: std::collections::BTreeMap<String, String> = pairs
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect();
        RouteAnnotations::parse(Some(&map)).unwrap()
    };
    type Annotations<'a> = &'a [(&'a str, &'a str)];
    let cases: &[(Annotations<'_>, bool, bool)] = &[
        (&[], false, false),
        (&[("retry.linkerd.io/http", "5xx")], true, false),
        (&[("retry.linkerd.io/grpc", "internal")], false, true),
        (&[("retry.linkerd.io/limit", "2")], true, true),
        (&[("retry.linkerd.io/timeout", "1s")], true, true),
    ];
    for (pairs, http, grpc) in cases {
        let parsed = annotations(pairs);
        assert_eq!(
            (http_retry(&parsed).is_some(), grpc_retry(&parsed).is_some()),
            (*http, *grpc),
            "{pairs:?}"
        );
    }
}
