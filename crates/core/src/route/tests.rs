//! Table tests: Linkerd's and the Gateway API's YAML parse with their
//! defaults; each invalid field is reported by its path; annotations parse.

use std::collections::BTreeMap;
use std::time::Duration;

use super::annotations::{RetryAnnotations, TimeoutAnnotations};
use super::grpc::GrpcRouteMatch;
use super::*;

const CANARY: &str = r#"
apiVersion: policy.linkerd.io/v1beta3
kind: HTTPRoute
metadata:
  name: books-canary
  namespace: shop
  annotations:
    retry.linkerd.io/http: 5xx
    retry.linkerd.io/limit: "2"
    retry.linkerd.io/timeout: 300ms
    timeout.linkerd.io/request: 2s
spec:
  parentRefs:
  - {group: core, kind: Service, name: books, port: 7002}
  rules:
  - matches:
    - headers: [{name: x-canary, value: "true"}]
      path: {type: PathPrefix, value: /books}
      method: GET
    filters:
    - type: RequestHeaderModifier
      requestHeaderModifier:
        set: [{name: x-route, value: canary}]
        remove: [x-debug]
    backendRefs:
    - {name: books-v2, port: 7002}
    timeouts: {request: 5s, backendRequest: 1s}
  - backendRefs:
    - {name: books-v1, port: 7002, weight: 90}
    - {name: books-v2, port: 7002, weight: 10}
"#;

const GRPC: &str = r#"
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata:
  name: greeter
  namespace: shop
  annotations: {retry.linkerd.io/grpc: "unavailable, internal"}
spec:
  parentRefs: [{kind: Service, name: greeter, port: 50051}]
  rules:
  - matches:
    - method: {service: helloworld.Greeter, method: SayHello}
    backendRefs: [{name: greeter-v2, port: 50051}]
  - {}
"#;

fn http_route(yaml: &str) -> Result<HttpRoute, String> {
    serde_saphyr::from_str::<HttpRoute>(yaml).map_err(|error| error.to_string())
}

#[test]
fn parses_linkerd_yaml_with_defaults() {
    let route = http_route(CANARY).expect("canary parses");
    assert_eq!(route.group(), POLICY_GROUP);
    assert_eq!(route.spec.parent_refs[0].parent_kind(), ParentKind::Service);
    assert_eq!(route.spec.parent_refs[0].namespace_or("shop"), "shop");
    let first = &route.spec.rules[0];
    assert_eq!(
        first.matches[0].headers[0].match_type,
        ValueMatchType::Exact
    );
    assert_eq!(first.backend_refs[0].weight, 1);
    assert_eq!(
        first
            .timeouts
            .as_ref()
            .and_then(|timeouts| timeouts.backend_request.as_ref())
            .map(GoDuration::value),
        Some(Duration::from_secs(1))
    );
    let second = &route.spec.rules[1];
    assert_eq!(second.effective_matches(), vec![HttpRouteMatch::default()]);
    assert_eq!(
        HttpRouteMatch::default().path,
        Some(HttpPathMatch {
            match_type: PathMatchType::PathPrefix,
            value: "/".into()
        })
    );
    assert_eq!(
        second
            .backend_refs
            .iter()
            .map(|backend| backend.weight)
            .collect::<Vec<_>>(),
        vec![90, 10]
    );
    assert_eq!(
        route.annotations,
        RouteAnnotations {
            retry: RetryAnnotations {
                http: Some(vec![StatusRange {
                    start: 500,
                    end: 599
                }]),
                grpc: None,
                limit: Some(2),
                timeout: Some(Duration::from_millis(300)),
            },
            timeout: TimeoutAnnotations {
                request: Some(Duration::from_secs(2)),
                response: None,
                idle: None,
            },
        }
    );
}

#[test]
fn parses_grpc_routes() {
    let route: GrpcRoute = serde_saphyr::from_str(GRPC).expect("grpc route parses");
    assert_eq!(route.group(), GATEWAY_GROUP);
    assert_eq!(route.annotations.retry.grpc, Some(vec![14, 13]));
    assert_eq!(route.annotations.retry.effective_limit(), 1);
    assert_eq!(
        route.spec.rules[1].effective_matches(),
        vec![GrpcRouteMatch::default()]
    );
    let method = route.spec.rules[0].matches[0].method.as_ref().unwrap();
    assert_eq!(method.match_type, ValueMatchType::Exact);
    assert_eq!(method.method.as_deref(), Some("SayHello"));
}

/// A route with `rule` as its only rule (indented as a list item's body).
fn with_rule(rule: &str) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {{name: r}}\nspec:\n  parentRefs: [{{kind: Service, name: web, port: 80}}]\n  rules:\n  - {rule}\n"
    )
}

#[test]
fn invalid_fields_are_named() {
    let cases: Vec<(String, &str)> = vec![
        (
            with_rule("matches: [{path: {type: Exact, value: books}}]"),
            "spec.rules[0].matches[0].path.value",
        ),
        (
            with_rule("matches: [{path: {type: RegularExpression, value: '(['}}]"),
            "spec.rules[0].matches[0].path.value",
        ),
        (
            with_rule("matches: [{headers: [{name: 'bad name', value: x}]}]"),
            "spec.rules[0].matches[0].headers[0].name",
        ),
        (
            with_rule(
                "matches: [{}, {queryParams: [{type: RegularExpression, name: q, value: '(('}]}]",
            ),
            "spec.rules[0].matches[1].queryParams[0].value",
        ),
        (
            with_rule("matches: [{method: 'GE T'}]"),
            "spec.rules[0].matches[0].method",
        ),
        (
            with_rule("backendRefs: [{name: web-v1}]"),
            "spec.rules[0].backendRefs[0].port",
        ),
        (
            with_rule("backendRefs: [{name: web-v1, port: 80, weight: 1000001}]"),
            "spec.rules[0].backendRefs[0].weight",
        ),
        (
            with_rule("backendRefs: [{kind: Pod, name: web-v1, port: 80}]"),
            "spec.rules[0].backendRefs[0].kind",
        ),
        (
            with_rule("filters: [{type: RequestHeaderModifier}]"),
            "spec.rules[0].filters[0].requestHeaderModifier",
        ),
        (
            with_rule("filters: [{type: RequestRedirect, requestRedirect: {statusCode: 307}}]"),
            "spec.rules[0].filters[0].requestRedirect.statusCode",
        ),
        (
            with_rule("filters: [{type: RequestRedirect, requestRedirect: {scheme: ftp}}]"),
            "spec.rules[0].filters[0].requestRedirect.scheme",
        ),
        (
            with_rule(
                "filters: [{type: RequestRedirect, requestRedirect: {path: {type: ReplaceFullPath}}}]",
            ),
            "spec.rules[0].filters[0].requestRedirect.path.replaceFullPath",
        ),
        (
            with_rule("timeouts: {request: 1s, backendRequest: 2s}"),
            "spec.rules[0].timeouts.backendRequest",
        ),
        (
            CANARY.replace("kind: Service, name: books", "kind: Gateway, name: books"),
            "spec.parentRefs[0].kind",
        ),
        (
            CANARY.replace("group: core, kind: Service", "group: core, kind: Server"),
            "spec.parentRefs[0].group",
        ),
        (
            CANARY.replace("retry.linkerd.io/http: 5xx", "retry.linkerd.io/http: 6xx"),
            "metadata.annotations[retry.linkerd.io/http]",
        ),
        (
            CANARY.replace("limit: \"2\"", "limit: \"two\""),
            "metadata.annotations[retry.linkerd.io/limit]",
        ),
        (
            CANARY.replace("request: 2s", "request: 2"),
            "metadata.annotations[timeout.linkerd.io/request]",
        ),
        (
            CANARY.replace("  rules:\n", "  hostnames: ['a..b']\n  rules:\n"),
            "spec.hostnames[0]",
        ),
    ];
    for (yaml, field) in cases {
        let error = http_route(&yaml).expect_err(field);
        assert!(
            error.contains(&format!("{field}:")),
            "expected {field} in {error:?}"
        );
    }
    let inbound = CANARY.replace(
        "group: core, kind: Service",
        "group: policy.linkerd.io, kind: Server",
    );
    let route = http_route(&inbound).expect("a Server parent is accepted");
    assert_eq!(route.spec.parent_refs[0].parent_kind(), ParentKind::Server);
    let wildcard = CANARY.replace("  rules:\n", "  hostnames: ['*.example.com']\n  rules:\n");
    assert!(http_route(&wildcard).is_ok());
}

#[test]
fn invalid_grpc_fields_are_named() {
    let cases: Vec<(String, &str)> = vec![
        (
            GRPC.replace(
                "{service: helloworld.Greeter, method: SayHello}",
                "{type: Exact}",
            ),
            "spec.rules[0].matches[0].method",
        ),
        (
            GRPC.replace(
                "{service: helloworld.Greeter, method: SayHello}",
                "{type: RegularExpression, method: 'Say.*'}",
            ),
            "spec.rules[0].matches[0].method.type",
        ),
        (
            GRPC.replace(
                "  - {}\n",
                "  - filters: [{type: RequestRedirect, requestRedirect: {}}]\n",
            ),
            "spec.rules[1].filters[0].requestRedirect",
        ),
        (
            GRPC.replace(
                "retry.linkerd.io/grpc: \"unavailable, internal\"",
                "retry.linkerd.io/http: 5xx",
            ),
            "metadata.annotations[retry.linkerd.io/http]",
        ),
        (
            GRPC.replace("unavailable, internal", "unavailable, teapot"),
            "metadata.annotations[retry.linkerd.io/grpc]",
        ),
    ];
    for (yaml, field) in cases {
        let error = serde_saphyr::from_str::<GrpcRoute>(&yaml)
            .map(drop)
            .expect_err(field)
            .to_string();
        assert!(
            error.contains(&format!("{field}:")),
            "expected {field} in {error:?}"
        );
    }
}

#[test]
fn http_retry_conditions() {
    let range = |start, end| StatusRange { start, end };
    let cases: &[(&str, Option<Vec<StatusRange>>)] = &[
        ("5xx", Some(vec![range(500, 599)])),
        ("gateway-error", Some(vec![range(502, 504)])),
        ("504", Some(vec![range(504, 504)])),
        ("500-504, 429", Some(vec![range(500, 504), range(429, 429)])),
        ("504-500", None),
        ("600", None),
        ("", None),
        ("5xx,abc", None),
    ];
    for (text, expected) in cases {
        assert_eq!(
            annotations::parse_http_conditions(text).ok(),
            *expected,
            "{text:?}"
        );
    }
}

#[test]
fn route_annotations_override_the_services_per_group() {
    let parse = |pairs: &[(&str, &str)]| {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect();
        RouteAnnotations::parse(Some(&map)).unwrap()
    };
    let service = parse(&[
        ("retry.linkerd.io/http", "5xx"),
        ("retry.linkerd.io/limit", "3"),
        ("timeout.linkerd.io/request", "10s"),
    ]);
    let route_with_limit = parse(&[("retry.linkerd.io/limit", "2")]);
    let merged = route_with_limit.or_service(&service);
    assert_eq!(
        merged.retry.http, None,
        "the route's retry annotations replace all of the service's"
    );
    assert_eq!(merged.retry.limit, Some(2));
    assert_eq!(merged.timeout.request, Some(Duration::from_secs(10)));
    let bare = parse(&[]).or_service(&service);
    assert_eq!(bare, service);
}

#[test]
fn failure_accrual_annotations() {
    use super::annotations::ConsecutiveFailures;
    let parse = |pairs: &[(&str, &str)]| {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect();
        ConsecutiveFailures::parse(Some(&map))
    };
    let mode = ("balancer.linkerd.io/failure-accrual", "consecutive");
    assert_eq!(parse(&[]), Ok(None));
    assert_eq!(parse(&[mode]), Ok(Some(ConsecutiveFailures::default())));
    assert_eq!(
        parse(&[
            mode,
            (
                "balancer.linkerd.io/failure-accrual-consecutive-max-failures",
                "3"
            ),
            (
                "balancer.linkerd.io/failure-accrual-consecutive-min-penalty",
                "5s"
            ),
            (
                "balancer.linkerd.io/failure-accrual-consecutive-max-penalty",
                "10m"
            ),
            (
                "balancer.linkerd.io/failure-accrual-consecutive-jitter-ratio",
                "1.0"
            ),
        ]),
        Ok(Some(ConsecutiveFailures {
            max_failures: 3,
            min_penalty: Duration::from_secs(5),
            max_penalty: Duration::from_secs(600),
            jitter_ratio: 1.0,
        }))
    );
    let errors: &[(&[(&str, &str)], &str)] = &[
        (
            &[("balancer.linkerd.io/failure-accrual", "success-rate")],
            "failure-accrual]",
        ),
        (
            &[
                mode,
                (
                    "balancer.linkerd.io/failure-accrual-consecutive-max-failures",
                    "x",
                ),
            ],
            "max-failures]",
        ),
        (
            &[
                mode,
                (
                    "balancer.linkerd.io/failure-accrual-consecutive-min-penalty",
                    "2m",
                ),
            ],
            "min-penalty]",
        ),
        (
            &[
                mode,
                (
                    "balancer.linkerd.io/failure-accrual-consecutive-jitter-ratio",
                    "-1",
                ),
            ],
            "jitter-ratio]",
        ),
    ];
    for (pairs, field) in errors {
        let error = parse(pairs).expect_err(field);
        assert!(error.field.ends_with(field), "{error}");
    }
}
