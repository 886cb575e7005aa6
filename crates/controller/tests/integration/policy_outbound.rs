//! Wire contract of the real `weft-controller` binary's
//! `io.linkerd.proxy.outbound.OutboundPolicies`: the `linkerd2-proxy-api`
//! client asks as linkerd2-proxy does (`source_workload` JSON, target by
//! clusterIP:port and by authority) and every field linkerd2-proxy reads is
//! checked; a mesh-file weight edit reaches an open Watch within the bound.

use std::time::{Duration, Instant};

use linkerd2_proxy_api::http_route as http_proto;
use linkerd2_proxy_api::meta;
use linkerd2_proxy_api::net::TcpAddress;
use linkerd2_proxy_api::outbound::outbound_policies_client::OutboundPoliciesClient;
use linkerd2_proxy_api::outbound::proxy_protocol::Kind as ProtocolKind;
use linkerd2_proxy_api::outbound::traffic_spec::Target;
use linkerd2_proxy_api::outbound::{self as proto, OutboundPolicy, TrafficSpec};
use tonic::transport::Channel;
use tonic::{Code, Streaming};
use weft_test_support::ControllerProcess;

/// Generous bound for anything not stated by the issue (a first answer).
const PATIENCE: Duration = Duration::from_secs(10);
/// The issue's bound for a mesh-file edit to reach a stream.
const EDIT_DEADLINE: Duration = Duration::from_secs(1);

const SOURCE: &str = r#"{"ns":"shop","pod":"web-1"}"#;

fn mesh(canary_weight: u32) -> String {
    format!(
        r#"
apiVersion: v1
kind: Service
metadata:
  name: books
  namespace: shop
  annotations:
    balancer.linkerd.io/failure-accrual: consecutive
    balancer.linkerd.io/failure-accrual-consecutive-max-failures: "5"
    balancer.linkerd.io/failure-accrual-consecutive-min-penalty: 2s
spec: {{clusterIP: 10.96.7.2, selector: {{app: books}}, ports: [{{port: 7002}}]}}
---
apiVersion: v1
kind: Service
metadata: {{name: books-v1, namespace: shop}}
spec: {{selector: {{app: books, version: v1}}, ports: [{{port: 7002}}]}}
---
apiVersion: v1
kind: Service
metadata: {{name: books-v2, namespace: shop}}
spec: {{selector: {{app: books, version: v2}}, ports: [{{port: 7002}}]}}
---
apiVersion: v1
kind: Service
metadata: {{name: web, namespace: shop}}
spec: {{clusterIP: 10.96.7.3, selector: {{app: web}}, ports: [{{port: 8080}}]}}
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {{name: web-1, namespace: shop, labels: {{app: web}}}}
spec: {{addresses: [127.0.0.21], ports: [{{name: http, port: 8080}}]}}
---
apiVersion: policy.linkerd.io/v1beta3
kind: HTTPRoute
metadata:
  name: books-canary
  namespace: shop
  annotations:
    retry.linkerd.io/http: 5xx
    retry.linkerd.io/limit: "2"
    retry.linkerd.io/timeout: 300ms
spec:
  parentRefs: [{{group: core, kind: Service, name: books, port: 7002}}]
  rules:
  - matches:
    - path: {{type: PathPrefix, value: /books}}
      headers: [{{name: x-canary, value: "true"}}]
    filters:
    - type: RequestHeaderModifier
      requestHeaderModifier: {{add: [{{name: x-route, value: canary}}]}}
    backendRefs: [{{name: books-v2, port: 7002}}]
    timeouts: {{request: 5s, backendRequest: 1s}}
  - backendRefs:
    - {{name: books-v1, port: 7002, weight: {stable}}}
    - {{name: books-v2, port: 7002, weight: {canary_weight}}}
---
apiVersion: v1
kind: Service
metadata:
  name: greeter
  namespace: shop
  annotations: {{retry.linkerd.io/grpc: unavailable}}
spec: {{clusterIP: 10.96.7.4, ports: [{{port: 50051}}]}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {{name: greeter, namespace: shop}}
spec:
  parentRefs: [{{kind: Service, name: greeter, port: 50051}}]
  rules:
  - matches: [{{method: {{service: helloworld.Greeter, method: SayHello}}}}]
---
apiVersion: v1
kind: Service
metadata:
  name: db
  namespace: shop
  annotations: {{config.linkerd.io/opaque-ports: "5432"}}
spec: {{clusterIP: 10.96.7.5, ports: [{{port: 5432}}]}}
"#,
        stable = 100 - canary_weight,
    )
}

async fn client(controller: &ControllerProcess) -> OutboundPoliciesClient<Channel> {
    OutboundPoliciesClient::connect(format!("http://{}", controller.destination_addr()))
        .await
        .expect("connects to the Destination listener")
}

/// Get's answer, which must come.
async fn get(client: &mut OutboundPoliciesClient<Channel>, spec: TrafficSpec) -> OutboundPolicy {
    client
        .get(spec.clone())
        .await
        .unwrap_or_else(|status| panic!("Get {spec:?}: {status}"))
        .into_inner()
}

/// A Watch stream, which must be accepted.
async fn watch(
    client: &mut OutboundPoliciesClient<Channel>,
    spec: TrafficSpec,
) -> Streaming<OutboundPolicy> {
    client
        .watch(spec.clone())
        .await
        .unwrap_or_else(|status| panic!("Watch {spec:?}: {status}"))
        .into_inner()
}

/// The stream's next answer, within [`PATIENCE`].
async fn next_answer(stream: &mut Streaming<OutboundPolicy>) -> OutboundPolicy {
    tokio::time::timeout(PATIENCE, stream.message())
        .await
        .expect("an answer in time")
        .expect("healthy")
        .expect("open")
}

fn by_address(ip: &str, port: u32) -> TrafficSpec {
    TrafficSpec {
        source_workload: SOURCE.to_string(),
        target: Some(Target::Addr(TcpAddress {
            ip: Some(ip.parse::<std::net::IpAddr>().unwrap().into()),
            port,
        })),
    }
}

fn by_authority(authority: &str) -> TrafficSpec {
    TrafficSpec {
        source_workload: SOURCE.to_string(),
        target: Some(Target::Authority(authority.to_string())),
    }
}

fn resource(group: &str, kind: &str, name: &str, port: u32) -> Option<meta::Metadata> {
    Some(meta::Metadata {
        kind: Some(meta::metadata::Kind::Resource(meta::Resource {
            group: group.into(),
            kind: kind.into(),
            name: name.into(),
            namespace: "shop".into(),
            section: String::new(),
            port,
        })),
    })
}

fn detect(policy: &OutboundPolicy) -> &proto::proxy_protocol::Detect {
    match policy
        .protocol
        .as_ref()
        .and_then(|protocol| protocol.kind.as_ref())
    {
        Some(ProtocolKind::Detect(detect)) => detect,
        other => panic!("expected Detect, got {other:?}"),
    }
}

fn discovery_path(backend: &proto::Backend) -> String {
    let Some(proto::backend::Kind::Balancer(balancer)) = &backend.kind else {
        panic!("expected a balancer: {backend:?}")
    };
    let Some(proto::backend::endpoint_discovery::Kind::Dst(get)) = balancer
        .discovery
        .as_ref()
        .and_then(|discovery| discovery.kind.as_ref())
    else {
        panic!("expected DestinationGet")
    };
    assert_eq!(
        balancer.load,
        Some(proto::backend::balance_p2c::Load::PeakEwma(
            proto::backend::balance_p2c::PeakEwma {
                default_rtt: Some(Duration::from_millis(30).try_into().unwrap()),
                decay: Some(Duration::from_secs(10).try_into().unwrap()),
            }
        ))
    );
    assert_eq!(
        backend.queue,
        Some(proto::Queue {
            capacity: 100,
            failfast_timeout: Some(Duration::from_secs(3).try_into().unwrap()),
        })
    );
    get.path.clone()
}

/// The split rule's (weight, discovery path) pairs.
fn split_weights(policy: &OutboundPolicy) -> Vec<(u32, String)> {
    let route = &detect(policy).http1.as_ref().unwrap().routes[0];
    let Some(proto::http_route::distribution::Kind::RandomAvailable(random)) = route.rules[1]
        .backends
        .as_ref()
        .and_then(|backends| backends.kind.as_ref())
    else {
        panic!("RandomAvailable")
    };
    random
        .backends
        .iter()
        .map(|weighted| {
            let backend = weighted.backend.as_ref().unwrap().backend.as_ref().unwrap();
            (weighted.weight, discovery_path(backend))
        })
        .collect()
}

#[tokio::test]
async fn outbound_policies_answer_every_field_linkerd2_proxy_reads() {
    let controller = ControllerProcess::start(&mesh(10));
    let mut client = client(&controller).await;

    // By clusterIP:port, as linkerd2-proxy asks for an original destination.
    let policy = get(&mut client, by_address("10.96.7.2", 7002)).await;
    assert_eq!(policy.metadata, resource("core", "Service", "books", 7002));
    let detected = detect(&policy);
    assert_eq!(
        detected.timeout,
        Some(Duration::from_secs(10).try_into().unwrap())
    );
    let http1 = detected.http1.as_ref().expect("http1");
    let http2 = detected.http2.as_ref().expect("http2");
    assert_eq!(http1.routes, http2.routes);
    for accrual in [&http1.failure_accrual, &http2.failure_accrual] {
        assert_eq!(
            accrual.as_ref().and_then(|accrual| accrual.kind),
            Some(proto::failure_accrual::Kind::ConsecutiveFailures(
                proto::failure_accrual::ConsecutiveFailures {
                    max_failures: 5,
                    backoff: Some(proto::ExponentialBackoff {
                        min_backoff: Some(Duration::from_secs(2).try_into().unwrap()),
                        max_backoff: Some(Duration::from_secs(60).try_into().unwrap()),
                        jitter_ratio: 0.5,
                        respect_retry_after_hint: false,
                    }),
                }
            ))
        );
    }
    let opaque = detected.opaque.as_ref().expect("opaque fallback");
    assert_eq!(
        opaque.routes[0].metadata,
        Some(meta::Metadata {
            kind: Some(meta::metadata::Kind::Default("opaq".into()))
        })
    );

    let [route] = http1.routes.as_slice() else {
        panic!("one HTTPRoute: {:?}", http1.routes)
    };
    assert_eq!(
        route.metadata,
        resource("policy.linkerd.io", "HTTPRoute", "books-canary", 0)
    );
    let [canary, split] = route.rules.as_slice() else {
        panic!("two rules")
    };
    assert_eq!(
        canary.matches,
        vec![http_proto::HttpRouteMatch {
            path: Some(http_proto::PathMatch {
                kind: Some(http_proto::path_match::Kind::Prefix("/books".into()))
            }),
            headers: vec![http_proto::HeaderMatch {
                name: "x-canary".into(),
                value: Some(http_proto::header_match::Value::Exact(b"true".to_vec())),
            }],
            query_params: Vec::new(),
            method: None,
        }]
    );
    let Some(proto::http_route::filter::Kind::RequestHeaderModifier(modifier)) =
        &canary.filters[0].kind
    else {
        panic!("a request header modifier")
    };
    assert_eq!(
        modifier.add.as_ref().unwrap().headers[0],
        linkerd2_proxy_api::http_types::headers::Header {
            name: "x-route".into(),
            value: b"canary".to_vec()
        }
    );
    assert_eq!(
        canary.timeouts,
        Some(http_proto::Timeouts {
            request: Some(Duration::from_secs(5).try_into().unwrap()),
            response: Some(Duration::from_secs(1).try_into().unwrap()),
            idle: None,
        })
    );
    let retry = canary.retry.as_ref().expect("retry from the annotations");
    assert_eq!(
        (retry.max_retries, retry.max_request_bytes, retry.timeout),
        (
            2,
            64 * 1024,
            Some(Duration::from_millis(300).try_into().unwrap())
        )
    );
    assert_eq!(
        retry.conditions.as_ref().unwrap().status_ranges,
        vec![proto::http_route::retry::conditions::StatusRange {
            start: 500,
            end: 599
        }]
    );
    let Some(proto::http_route::distribution::Kind::RandomAvailable(random)) = canary
        .backends
        .as_ref()
        .and_then(|backends| backends.kind.as_ref())
    else {
        panic!("RandomAvailable")
    };
    let backend = random.backends[0]
        .backend
        .as_ref()
        .unwrap()
        .backend
        .as_ref()
        .unwrap();
    assert_eq!(
        backend.metadata,
        resource("core", "Service", "books-v2", 7002)
    );
    assert_eq!(
        discovery_path(backend),
        "books-v2.shop.svc.cluster.local:7002"
    );
    assert_eq!(
        split.matches[0].path,
        Some(http_proto::PathMatch {
            kind: Some(http_proto::path_match::Kind::Prefix("/".into()))
        }),
        "a rule without matches matches prefix /"
    );
    assert_eq!(
        split_weights(&policy),
        vec![
            (90, "books-v1.shop.svc.cluster.local:7002".to_string()),
            (10, "books-v2.shop.svc.cluster.local:7002".to_string()),
        ]
    );

    // By authority, as a proxy asks for a name: the same answer.
    let named = get(
        &mut client,
        by_authority("books.shop.svc.cluster.local:7002"),
    )
    .await;
    assert_eq!(named, policy);

    // A Service without HTTPRoutes: one default route to itself.
    let web = get(&mut client, by_address("10.96.7.3", 8080)).await;
    let http1 = detect(&web).http1.as_ref().unwrap();
    assert_eq!(http1.failure_accrual, None);
    let [route] = http1.routes.as_slice() else {
        panic!("one default route")
    };
    assert_eq!(
        route.metadata,
        Some(meta::Metadata {
            kind: Some(meta::metadata::Kind::Default("http".into()))
        })
    );
    let rule = &route.rules[0];
    assert_eq!(rule.retry, None);
    let Some(proto::http_route::distribution::Kind::FirstAvailable(first)) = rule
        .backends
        .as_ref()
        .and_then(|backends| backends.kind.as_ref())
    else {
        panic!("FirstAvailable")
    };
    assert_eq!(
        discovery_path(first.backends[0].backend.as_ref().unwrap()),
        "web.shop.svc.cluster.local:8080"
    );

    // Watch: the first answer at once.
    let mut stream = watch(&mut client, by_authority("web.shop.svc.cluster.local:8080")).await;
    let first = next_answer(&mut stream).await;
    assert_eq!(first, web);
}

#[tokio::test]
async fn unknown_targets_are_not_found_and_malformed_specs_invalid() {
    let controller = ControllerProcess::start(&mesh(10));
    let mut client = client(&controller).await;
    let cases: Vec<(&str, TrafficSpec, Code)> = vec![
        (
            "an address no Service has",
            by_address("10.96.9.9", 80),
            Code::NotFound,
        ),
        (
            "a workload's address (the proxy synthesizes from its profile)",
            by_address("127.0.0.21", 8080),
            Code::NotFound,
        ),
        (
            "an unknown Service",
            by_authority("nope.shop.svc.cluster.local:80"),
            Code::NotFound,
        ),
        (
            "a name outside the cluster",
            by_authority("example.com:443"),
            Code::NotFound,
        ),
        (
            "a malformed source_workload",
            TrafficSpec {
                source_workload: "web-1".into(),
                ..by_address("10.96.7.2", 7002)
            },
            Code::InvalidArgument,
        ),
        (
            "no target",
            TrafficSpec {
                source_workload: SOURCE.into(),
                target: None,
            },
            Code::InvalidArgument,
        ),
    ];
    for (what, spec, code) in cases {
        let got = client.get(spec.clone()).await.expect_err(what).code();
        assert_eq!(got, code, "Get: {what}");
        let got = client.watch(spec).await.map(drop).expect_err(what).code();
        assert_eq!(got, code, "Watch: {what}");
    }
}

#[tokio::test]
async fn a_weight_edit_reaches_an_open_watch() {
    let controller = ControllerProcess::start(&mesh(10));
    let mut client = client(&controller).await;
    let mut stream = watch(&mut client, by_address("10.96.7.2", 7002)).await;
    let first = next_answer(&mut stream).await;
    assert_eq!(split_weights(&first)[1].0, 10);

    let mut latencies = Vec::new();
    for (loads, weight) in (2_u64..).zip([20_u32, 30, 40, 50, 60]) {
        let started = Instant::now();
        controller.rewrite_mesh(&mesh(weight));
        let next = tokio::time::timeout(EDIT_DEADLINE, stream.message())
            .await
            .unwrap_or_else(|_| panic!("weight {weight} within {EDIT_DEADLINE:?}"))
            .expect("healthy")
            .expect("open");
        latencies.push(started.elapsed());
        assert_eq!(
            split_weights(&next),
            vec![
                (
                    100 - weight,
                    "books-v1.shop.svc.cluster.local:7002".to_string()
                ),
                (weight, "books-v2.shop.svc.cluster.local:7002".to_string()),
            ]
        );
        controller.wait_good_loads(loads, PATIENCE);
    }
    latencies.sort();
    eprintln!(
        "outbound policy weight edit → Watch message: min {:?}, median {:?}, max {:?}",
        latencies[0],
        latencies[latencies.len() / 2],
        latencies[latencies.len() - 1]
    );

    // An edit that leaves the answer unchanged sends nothing.
    controller.rewrite_mesh(&format!("{}\n# a comment\n", mesh(60)));
    controller.wait_good_loads(7, PATIENCE);
    assert!(
        tokio::time::timeout(Duration::from_millis(300), stream.message())
            .await
            .is_err(),
        "no message for an unchanged answer"
    );
}

#[tokio::test]
async fn watches_count_in_the_destination_stream_limits_and_are_released() {
    let controller = ControllerProcess::start_with_args(
        &mesh(10),
        &["--destination-max-streams-per-client", "2"],
    );
    let mut client = client(&controller).await;
    let mut open = Vec::new();
    for target in [
        "books.shop.svc.cluster.local:7002",
        "web.shop.svc.cluster.local:8080",
    ] {
        let mut stream = watch(&mut client, by_authority(target)).await;
        tokio::time::timeout(PATIENCE, stream.message())
            .await
            .expect("first answer")
            .expect("healthy");
        open.push(stream);
    }
    let refused = client
        .watch(by_authority("books.shop.svc.cluster.local:7002"))
        .await
        .map(drop)
        .expect_err("a third stream from one client");
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert_eq!(
        controller.metric(
            "weft_controller_outbound_policy_streams_refused_total",
            &[("reason", "per_client")]
        ),
        Some(1.0)
    );
    assert_eq!(
        controller.metric("weft_controller_outbound_policy_watches", &[]),
        Some(2.0)
    );

    drop(open);
    let deadline = Instant::now() + PATIENCE;
    while controller.metric("weft_controller_outbound_policy_watches", &[]) != Some(0.0) {
        assert!(
            Instant::now() < deadline,
            "watches released with their streams"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        controller.metric("weft_controller_outbound_policy_watch_streams", &[]),
        Some(0.0)
    );
    client
        .watch(by_authority("books.shop.svc.cluster.local:7002"))
        .await
        .expect("room again once the streams are gone");
}

#[tokio::test]
async fn grpc_routes_answer_grpc_and_opaque_ports_answer_opaque() {
    let controller = ControllerProcess::start(&mesh(10));
    let mut client = client(&controller).await;
    let greeter = get(&mut client, by_address("10.96.7.4", 50051)).await;
    let Some(ProtocolKind::Grpc(grpc)) = greeter.protocol.and_then(|protocol| protocol.kind) else {
        panic!("a Service with GRPCRoutes is gRPC")
    };
    let route = &grpc.routes[0];
    assert_eq!(
        route.metadata,
        resource("gateway.networking.k8s.io", "GRPCRoute", "greeter", 0)
    );
    let rule = &route.rules[0];
    assert_eq!(
        rule.matches[0].rpc,
        Some(linkerd2_proxy_api::grpc_route::GrpcRpcMatch {
            service: "helloworld.Greeter".into(),
            method: "SayHello".into(),
        })
    );
    let retry = rule.retry.as_ref().expect("the Service's retry annotation");
    let conditions = retry.conditions.expect("conditions");
    assert!(
        conditions.unavailable && !conditions.internal,
        "{conditions:?}"
    );
    assert_eq!(retry.max_retries, 1);

    let db = get(&mut client, by_authority("db.shop.svc.cluster.local:5432")).await;
    let Some(ProtocolKind::Opaque(opaque)) = db.protocol.and_then(|protocol| protocol.kind) else {
        panic!("an opaque port is Opaque")
    };
    let Some(proto::opaque_route::distribution::Kind::FirstAvailable(first)) = opaque.routes[0]
        .rules[0]
        .backends
        .as_ref()
        .and_then(|backends| backends.kind.as_ref())
    else {
        panic!("FirstAvailable")
    };
    assert_eq!(
        discovery_path(first.backends[0].backend.as_ref().unwrap()),
        "db.shop.svc.cluster.local:5432"
    );
}

#[tokio::test]
async fn a_watch_ends_when_its_service_goes() {
    let controller = ControllerProcess::start(&mesh(10));
    let mut client = client(&controller).await;
    let mut stream = watch(&mut client, by_authority("db.shop.svc.cluster.local:5432")).await;
    next_answer(&mut stream).await;
    let without_db = mesh(10)
        .split("\n---\n")
        .filter(|document| !document.contains("name: db"))
        .collect::<Vec<_>>()
        .join("\n---\n");
    controller.rewrite_mesh(&without_db);
    let end = tokio::time::timeout(EDIT_DEADLINE, stream.message())
        .await
        .expect("the stream ends in time")
        .expect("ends cleanly");
    assert!(end.is_none(), "no more answers: {end:?}");
    let status = client
        .get(by_authority("db.shop.svc.cluster.local:5432"))
        .await
        .expect_err("gone");
    assert_eq!(status.code(), Code::NotFound);
}
