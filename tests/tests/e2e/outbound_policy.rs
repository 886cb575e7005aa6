//! Outbound HTTPRoute/GRPCRoute routing: a real `weft-controller` serves
//! the Destination API (profiles, endpoints) from a mesh file, a fake
//! OutboundPolicies server ([`OutboundPolicyServer`]) serves the routes,
//! and a real `weft-proxy` routes `web.shop.svc.cluster.local` by them.
//!
//! ```text
//!  client ──http://web.shop.svc.cluster.local/…──► weft-proxy ──► web / web-a / web-b (HttpTestServer)
//!                                    GetProfile, Get │   │ Watch(TrafficSpec)
//!                                    weft-controller ◄┘   └► OutboundPolicyServer
//! ```
//!
//! Each backend counts the requests it receives, which is what the tests
//! assert on (and print: `--nocapture` shows the figures).

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Method;
use linkerd2_proxy_api::outbound::OutboundPolicy;
use linkerd2_proxy_api::outbound::http_route::Rule;
use weft_test_support::load::{self, Outcome};
use weft_test_support::outbound_policy_server::{
    OutboundPolicyServer, consecutive_failures, grpc_policy, header, http_policy, http_route,
    http_rule, prefix, request_timeout, retry_5xx,
};
use weft_test_support::{Behavior, ControllerProcess, HttpTestServer, MeshFile, ProxyProcess};

const NAMESPACE: &str = "shop";
/// The target as the proxy asks the policy server for it.
const WEB_TARGET: &str = "web.shop.svc.cluster.local:80";
const WEB_A: &str = "web-a.shop.svc.cluster.local:80";
const WEB_B: &str = "web-b.shop.svc.cluster.local:80";
/// Bound for the proxy resolving the service and its policy.
const PATIENCE: Duration = Duration::from_secs(15);

/// `http://web.shop.svc.cluster.local{path}`.
fn web_url(path: &str) -> String {
    format!("http://web.{NAMESPACE}.svc.cluster.local{path}")
}

/// One service per `(name, servers)`, selecting `app: name`, with one
/// workload per server.
fn mesh(services: &[(&str, &[&HttpTestServer])]) -> MeshFile {
    let mut mesh = MeshFile::new();
    for (name, servers) in services {
        mesh = mesh.service(NAMESPACE, name, &[("app", name)]);
        for (index, server) in servers.iter().enumerate() {
            mesh = mesh.workload(
                NAMESPACE,
                &format!("{name}-{}", index + 1),
                &[("app", name)],
                server.addr(),
            );
        }
    }
    mesh
}

/// A proxy asking `controller` for discovery and `policies` for routes.
fn proxy(controller: &ControllerProcess, policies: &OutboundPolicyServer) -> ProxyProcess {
    ProxyProcess::builder()
        .env(
            "WEFT_PROXY_DESTINATION_SVC_ADDR",
            controller.destination_addr().to_string(),
        )
        .env("WEFT_PROXY_POLICY_SVC_ADDR", policies.addr().to_string())
        .env(
            "WEFT_PROXY_POLICY_WORKLOAD",
            r#"{"ns":"shop","pod":"client"}"#,
        )
        .env("WEFT_PROXY_OUTBOUND_FAILFAST_TIMEOUT", "1s")
        .spawn()
}

/// A controller serving `mesh`, a policy server answering `policies`
/// (`(target, policy)`), and a proxy asking both.
struct Routing {
    proxy: ProxyProcess,
    policies: OutboundPolicyServer,
    _controller: ControllerProcess,
}

/// Starts the controller, the policy server with `policies` set, then the
/// proxy.
fn start(mesh: &MeshFile, policies: &[(&str, OutboundPolicy)]) -> Routing {
    let controller = ControllerProcess::start(&mesh.render());
    let server = OutboundPolicyServer::start();
    for (target, policy) in policies {
        server.set(target, policy.clone());
    }
    Routing {
        proxy: proxy(&controller, &server),
        policies: server,
        _controller: controller,
    }
}

/// A policy of one HTTPRoute named `name` with `rules`, no failure accrual.
fn one_route(name: &str, rules: Vec<Rule>) -> OutboundPolicy {
    http_policy(vec![http_route(name, rules)], None)
}

/// `route_request_total` of the outbound route `route` to `target`.
fn route_requests(proxy: &ProxyProcess, target: &str, route: &str) -> f64 {
    let labels = [
        ("direction", "outbound"),
        ("dst", target),
        ("rt_route", route),
    ];
    proxy.metric_or_zero("route_request_total", &labels)
}

/// Sends `GET url` until `done(outcome)`; panics after [`PATIENCE`].
fn until(proxy: &ProxyProcess, url: &str, what: &str, done: impl Fn(&Outcome) -> bool) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let outcome = load::get(proxy.outbound_addr(), url);
        if done(&outcome) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not within {PATIENCE:?}; last outcome {}",
            outcome.summary()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Sends `GET url` until `server` receives one: the policy routes there.
fn until_reaches(proxy: &ProxyProcess, url: &str, server: &HttpTestServer, what: &str) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let before = server.requests_seen();
        let outcome = load::get(proxy.outbound_addr(), url);
        if server.requests_seen() > before && outcome.is_success() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: {url} never reached the server; last outcome {}",
            outcome.summary()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One HTTP/2 `GET url` through the proxy with `headers`.
fn get_with_headers(
    proxy: &ProxyProcess,
    url: &str,
    headers: &[(&str, &str)],
) -> weft_test_support::http_client::RawResponse {
    let mut request = http::Request::builder()
        .method(Method::GET)
        .version(http::Version::HTTP_2)
        .uri(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request
        .body(http_body_util::Full::new(Bytes::new()))
        .expect("request");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime
        .block_on(weft_test_support::http_client::send(
            proxy.outbound_addr(),
            request,
        ))
        .expect("a response")
}

#[test]
fn path_and_header_matches_choose_the_backend() {
    let (web, a, b) = (
        HttpTestServer::start(),
        HttpTestServer::start(),
        HttpTestServer::start(),
    );
    let routing = start(
        &mesh(&[("web", &[&web]), ("web-a", &[&a]), ("web-b", &[&b])]),
        &[(
            WEB_TARGET,
            one_route(
                "web-routes",
                vec![
                    http_rule(vec![prefix("/status")], &[(WEB_A, 1)]),
                    http_rule(vec![header("x-canary", "1")], &[(WEB_B, 1)]),
                    http_rule(vec![prefix("/")], &[(WEB_TARGET, 1)]),
                ],
            ),
        )],
    );
    let proxy = &routing.proxy;
    until_reaches(proxy, &web_url("/status/200"), &a, "path /status → web-a");

    let seen = |servers: &[&HttpTestServer]| -> Vec<u64> {
        servers.iter().map(|s| s.requests_seen()).collect()
    };
    let before = seen(&[&web, &a, &b]);
    for _ in 0..10 {
        assert!(load::get(proxy.outbound_addr(), &web_url("/status/200")).is_success());
        assert!(load::get(proxy.outbound_addr(), &web_url("/")).is_success());
        let canary = get_with_headers(proxy, &web_url("/"), &[("x-canary", "1")]);
        assert_eq!(canary.status, 200, "{canary:?}");
    }
    let after = seen(&[&web, &a, &b]);
    let received: Vec<u64> = after.iter().zip(&before).map(|(a, b)| a - b).collect();
    println!("matches: web, web-a, web-b received {received:?} of 10 each");
    assert_eq!(received, vec![10, 10, 10]);
    let requests = route_requests(proxy, WEB_TARGET, "web-routes");
    assert!(requests >= 30.0, "route_request_total {requests}");
    // The proxy watched its target as its workload.
    let watches = routing.policies.watches();
    assert!(
        watches
            .iter()
            .any(|(target, workload)| target == WEB_TARGET
                && workload.contains("\"pod\":\"client\"")),
        "{watches:?}"
    );

    // No route matches: 404 from the proxy, nothing reaches a backend.
    routing.policies.set(
        WEB_TARGET,
        one_route(
            "only-status",
            vec![http_rule(vec![prefix("/status")], &[(WEB_A, 1)])],
        ),
    );
    until(proxy, &web_url("/"), "the new policy applies", |outcome| {
        outcome.status == Some(404)
    });
    let outcome = load::get(proxy.outbound_addr(), &web_url("/other"));
    assert_eq!(outcome.status, Some(404), "{}", outcome.summary());
    assert_eq!(
        outcome.proxy_error.as_deref(),
        Some("no route found for request"),
        "{}",
        outcome.summary()
    );
}

#[test]
fn weights_split_a_thousand_requests_ninety_ten() {
    let (web, a, b) = (
        HttpTestServer::start(),
        HttpTestServer::start(),
        HttpTestServer::start(),
    );
    let routing = start(
        &mesh(&[("web", &[&web]), ("web-a", &[&a]), ("web-b", &[&b])]),
        &[(
            WEB_TARGET,
            one_route(
                "split",
                vec![http_rule(vec![prefix("/")], &[(WEB_A, 90), (WEB_B, 10)])],
            ),
        )],
    );
    let proxy = &routing.proxy;
    until_reaches(proxy, &web_url("/"), &b, "some request → web-b");
    until_reaches(proxy, &web_url("/"), &a, "some request → web-a");

    let (a0, b0, web0) = (a.requests_seen(), b.requests_seen(), web.requests_seen());
    let report = load::run(proxy.outbound_addr(), &web_url("/"), 1000, 4);
    assert_eq!(report.failures(), 0, "{:?}", report.summary());
    let (to_a, to_b) = (a.requests_seen() - a0, b.requests_seen() - b0);
    // Binomial(n = 1000, p = 0.9): mean 900, standard deviation
    // sqrt(1000 × 0.9 × 0.1) ≈ 9.49; five deviations (±47) fail a correct
    // split about once in 1.7 million runs.
    let deviation = (1000.0_f64 * 0.9 * 0.1).sqrt();
    let tolerance = (5.0 * deviation).ceil() as i64;
    println!(
        "weights 90/10: web-a {to_a}, web-b {to_b} of 1000 (expected 900 ± {tolerance}, σ = {deviation:.2})"
    );
    assert_eq!(to_a + to_b, 1000);
    assert!(
        (to_a as i64 - 900).abs() <= tolerance,
        "web-a got {to_a}, expected 900 ± {tolerance}"
    );
    assert_eq!(
        web.requests_seen(),
        web0,
        "the service's own endpoints got traffic"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_routes_by_service_and_method() {
    let echo = weft_test_support::grpc::GrpcEchoServer::start();
    let other = HttpTestServer::start();
    let mut mesh = MeshFile::new()
        .service(NAMESPACE, "echo", &[("app", "echo")])
        .workload(NAMESPACE, "echo-1", &[("app", "echo")], echo.addr());
    mesh = mesh
        .service(NAMESPACE, "other", &[("app", "other")])
        .workload(NAMESPACE, "other-1", &[("app", "other")], other.addr());
    let echo_target = "echo.shop.svc.cluster.local:80";
    let routing = start(
        &mesh,
        &[(
            echo_target,
            grpc_policy(
                "echo-grpc",
                &[
                    ("weft.test.Echo", "Unary", echo_target),
                    ("weft.test.Other", "", "other.shop.svc.cluster.local:80"),
                ],
            ),
        )],
    );
    let proxy = &routing.proxy;
    let authority = "echo.shop.svc.cluster.local";
    let send = |path: Option<&str>| {
        let mut request =
            weft_test_support::grpc::raw_unary_request(authority, "hello", tonic::Code::Ok);
        if let Some(path) = path {
            *request.uri_mut() = format!("http://{authority}{path}").parse().expect("uri");
        }
        weft_test_support::http_client::send(proxy.outbound_addr(), request)
    };
    // Echo/Unary → the echo server.
    let deadline = Instant::now() + PATIENCE;
    loop {
        let ok = send(None).await.expect("a response");
        if ok.header_or_trailer("grpc-status").as_deref() == Some("0") {
            break;
        }
        assert!(Instant::now() < deadline, "echo never answered: {ok:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Another service, any method → `other` (an HTTP server counting it).
    let before = other.requests_seen();
    let routed = send(Some("/weft.test.Other/Anything"))
        .await
        .expect("a response");
    assert_eq!(other.requests_seen(), before + 1, "{routed:?}");
    // No rule for the service: NOT_FOUND from the proxy.
    let unmatched = send(Some("/weft.test.Nope/Unary"))
        .await
        .expect("a response");
    println!("grpc: unmatched answered {unmatched:?}");
    assert_eq!(unmatched.status, 200, "{unmatched:?}");
    assert_eq!(
        unmatched.header_or_trailer("grpc-status").as_deref(),
        Some("5"),
        "{unmatched:?}"
    );
    assert_eq!(other.requests_seen(), before + 1);
    let requests = route_requests(proxy, echo_target, "echo-grpc");
    assert!(requests >= 2.0, "route_request_total {requests}");
}

#[test]
fn a_route_timeout_answers_504() {
    let (web, slow) = (HttpTestServer::start(), HttpTestServer::start());
    let mut rule = http_rule(vec![prefix("/")], &[(WEB_A, 1)]);
    rule.timeouts = request_timeout(Duration::from_millis(300));
    let routing = start(
        &mesh(&[("web", &[&web]), ("web-a", &[&slow])]),
        &[(WEB_TARGET, one_route("timed", vec![rule]))],
    );
    let proxy = &routing.proxy;
    until_reaches(proxy, &web_url("/"), &slow, "→ web-a");
    let outcome = load::get(proxy.outbound_addr(), &web_url("/slow/3000"));
    println!(
        "timeout: /slow/3000 answered {} after {:?}",
        outcome.summary(),
        outcome.latency
    );
    assert_eq!(outcome.status, Some(504), "{}", outcome.summary());
    assert!(
        outcome.latency < Duration::from_millis(2500),
        "{:?}",
        outcome.latency
    );
    assert!(
        outcome
            .proxy_error
            .as_deref()
            .is_some_and(|error| error.contains("timeout")),
        "{}",
        outcome.summary()
    );
}

#[test]
fn retries_hide_failures_and_reach_the_backend_again() {
    let web = HttpTestServer::start();
    // Every other request fails.
    let flaky = HttpTestServer::start_with(Behavior::new().fail(1, 2));
    let mut rule = http_rule(vec![prefix("/")], &[(WEB_A, 1)]);
    rule.retry = retry_5xx(2);
    let routing = start(
        &mesh(&[("web", &[&web]), ("web-a", &[&flaky])]),
        &[(WEB_TARGET, one_route("retried", vec![rule]))],
    );
    let proxy = &routing.proxy;
    until_reaches(proxy, &web_url("/"), &flaky, "→ web-a");

    let (seen, failed) = (flaky.requests_seen(), flaky.failures_answered());
    // One client: attempts alternate failing and succeeding, so each
    // failure's retry succeeds (two clients in lockstep can fail one
    // request three times running).
    let report = load::run(proxy.outbound_addr(), &web_url("/"), 200, 1);
    let attempts = flaky.requests_seen() - seen;
    let failures = flaky.failures_answered() - failed;
    println!(
        "retries: {} of 200 succeeded; the backend saw {attempts} attempts, answered {failures} with 500",
        report.total() - report.failures()
    );
    assert_eq!(report.failures(), 0, "{:?}", report.summary());
    assert_eq!(attempts, 200 + failures, "every failure was retried once");
    assert!(failures >= 90, "the backend failed only {failures} times");
}

#[test]
fn failure_accrual_ejects_a_failing_endpoint_and_probes_it_back() {
    let web = HttpTestServer::start();
    let good = HttpTestServer::start();
    // Always 500.
    let bad = HttpTestServer::start_with(Behavior::new().fail(1, 1));
    let backoff = Duration::from_secs(2);
    let routing = start(
        &mesh(&[("web", &[&web]), ("web-a", &[&good, &bad])]),
        &[(
            WEB_TARGET,
            http_policy(
                vec![http_route(
                    "accrual",
                    vec![http_rule(vec![prefix("/")], &[(WEB_A, 1)])],
                )],
                consecutive_failures(3, backoff, Duration::from_secs(30)),
            ),
        )],
    );
    let proxy = &routing.proxy;
    until_reaches(proxy, &web_url("/"), &good, "→ web-a");
    // Until the bad endpoint has failed three times in a row.
    until(proxy, &web_url("/"), "bad endpoint reached", |_| {
        bad.requests_seen() >= 3
    });
    let ejected_at = Instant::now();
    let bad_before = bad.requests_seen();
    let report = load::run(proxy.outbound_addr(), &web_url("/"), 100, 2);
    let during = bad.requests_seen() - bad_before;
    let elapsed = ejected_at.elapsed();
    println!(
        "accrual: within {elapsed:?} of the ejection, 100 requests: {} failed, the bad endpoint saw {during}",
        report.failures()
    );
    if elapsed < backoff {
        assert_eq!(during, 0, "an ejected endpoint received requests");
        assert_eq!(report.failures(), 0, "{:?}", report.summary());
    }
    // After the backoff, one probe reaches it (and fails: ejected again, for
    // twice as long, 4 s: ten requests take far less even on a loaded machine).
    std::thread::sleep(backoff + Duration::from_millis(500));
    let bad_before = bad.requests_seen();
    let report = load::run(proxy.outbound_addr(), &web_url("/"), 10, 1);
    let probes = bad.requests_seen() - bad_before;
    println!(
        "accrual: after the backoff, 10 requests: {} failed, the bad endpoint saw {probes}",
        report.failures()
    );
    assert_eq!(probes, 1, "one probe after the backoff");

    // Every endpoint ejected: fail fast with 503.
    let lonely = HttpTestServer::start_with(Behavior::new().fail(1, 1));
    let all_ejected = start(
        &mesh(&[("web", &[&web]), ("web-b", &[&lonely])]),
        &[(
            WEB_TARGET,
            http_policy(
                vec![http_route(
                    "accrual",
                    vec![http_rule(vec![prefix("/")], &[(WEB_B, 1)])],
                )],
                consecutive_failures(3, Duration::from_secs(30), Duration::from_secs(60)),
            ),
        )],
    );
    until(&all_ejected.proxy, &web_url("/"), "three failures", |_| {
        lonely.requests_seen() >= 3
    });
    let outcome = load::get(all_ejected.proxy.outbound_addr(), &web_url("/"));
    println!(
        "accrual: all ejected: {} after {:?}",
        outcome.summary(),
        outcome.latency
    );
    // At once, not after a failfast wait (the latency is printed above,
    // never asserted: this machine is shared).
    assert_eq!(outcome.status, Some(503), "{}", outcome.summary());
    assert_eq!(lonely.requests_seen(), 3);
}

#[test]
fn a_service_profile_with_routes_wins_over_the_policy() {
    let (web, a) = (HttpTestServer::start(), HttpTestServer::start());
    let mesh = mesh(&[("web", &[&web]), ("web-a", &[&a])]).profile(
        NAMESPACE,
        "web",
        "  routes:\n  - name: GET /\n    condition:\n      method: GET\n      pathRegex: /.*\n",
    );
    let routing = start(
        &mesh,
        &[(
            WEB_TARGET,
            one_route("to-a", vec![http_rule(vec![prefix("/")], &[(WEB_A, 1)])]),
        )],
    );
    let proxy = &routing.proxy;
    until_reaches(proxy, &web_url("/"), &web, "→ web by the profile");
    let a_before = a.requests_seen();
    let report = load::run(proxy.outbound_addr(), &web_url("/"), 50, 2);
    assert_eq!(report.failures(), 0, "{:?}", report.summary());
    assert_eq!(
        a.requests_seen(),
        a_before,
        "the policy routed despite the profile"
    );
    let requests = route_requests(proxy, WEB_TARGET, "GET /");
    assert!(requests >= 50.0, "route_request_total {{GET /}} {requests}");
}

#[test]
fn no_policy_for_the_target_routes_as_before() {
    let web = HttpTestServer::start();
    // The policy server knows nothing: NotFound.
    let routing = start(&mesh(&[("web", &[&web])]), &[]);
    until_reaches(&routing.proxy, &web_url("/"), &web, "→ web");
    let report = load::run(routing.proxy.outbound_addr(), &web_url("/"), 50, 2);
    assert_eq!(report.failures(), 0, "{:?}", report.summary());
    assert!(
        !routing.policies.watches().is_empty(),
        "the proxy never asked"
    );
}

#[test]
fn the_last_policy_is_kept_while_the_policy_server_is_away() {
    let (web, a) = (HttpTestServer::start(), HttpTestServer::start());
    let routing = start(
        &mesh(&[("web", &[&web]), ("web-a", &[&a])]),
        &[(
            WEB_TARGET,
            one_route("to-a", vec![http_rule(vec![prefix("/")], &[(WEB_A, 1)])]),
        )],
    );
    let proxy = &routing.proxy;
    until_reaches(proxy, &web_url("/"), &a, "→ web-a");
    // The policy server goes away: its streams end, reconnects fail.
    drop(routing.policies);
    std::thread::sleep(Duration::from_millis(500));
    let (a_before, web_before) = (a.requests_seen(), web.requests_seen());
    // New connections share the target's watch, which keeps its answer.
    let report = load::run(proxy.outbound_addr(), &web_url("/"), 50, 2);
    assert_eq!(report.failures(), 0, "{:?}", report.summary());
    println!(
        "policy server away: web-a got {} of 50, web {}",
        a.requests_seen() - a_before,
        web.requests_seen() - web_before
    );
    assert_eq!(a.requests_seen() - a_before, 50);
}

#[test]
fn filters_change_headers_redirect_and_inject_failures() {
    use linkerd2_proxy_api::http_route as http_proto;
    use linkerd2_proxy_api::http_types;
    use linkerd2_proxy_api::outbound::http_route::{Filter, filter};
    let (web, a) = (HttpTestServer::start(), HttpTestServer::start());
    let headers = |pairs: &[(&str, &str)]| {
        Some(http_types::Headers {
            headers: pairs
                .iter()
                .map(|(name, value)| http_types::headers::Header {
                    name: name.to_string(),
                    value: value.as_bytes().to_vec(),
                })
                .collect(),
        })
    };
    let mut modified = http_rule(vec![prefix("/headers")], &[(WEB_A, 1)]);
    modified.filters = vec![
        Filter {
            kind: Some(filter::Kind::RequestHeaderModifier(
                http_proto::RequestHeaderModifier {
                    add: None,
                    set: headers(&[("x-route", "policy")]),
                    remove: vec!["x-secret".to_string()],
                },
            )),
        },
        Filter {
            kind: Some(filter::Kind::ResponseHeaderModifier(
                http_proto::ResponseHeaderModifier {
                    add: headers(&[("x-from-route", "headers")]),
                    set: None,
                    remove: vec![],
                },
            )),
        },
    ];
    let mut redirected = http_rule(vec![prefix("/old")], &[(WEB_A, 1)]);
    redirected.filters = vec![Filter {
        kind: Some(filter::Kind::Redirect(http_proto::RequestRedirect {
            scheme: None,
            host: "new.example.com".to_string(),
            path: Some(http_proto::PathModifier {
                replace: Some(http_proto::path_modifier::Replace::Full("/new".to_string())),
            }),
            port: 0,
            status: 301,
        })),
    }];
    let mut failing = http_rule(vec![prefix("/fail")], &[(WEB_A, 1)]);
    failing.filters = vec![Filter {
        kind: Some(filter::Kind::FailureInjector(
            http_proto::HttpFailureInjector {
                status: 503,
                message: "injected by the route".to_string(),
                ratio: None,
            },
        )),
    }];
    let routing = start(
        &mesh(&[("web", &[&web]), ("web-a", &[&a])]),
        &[(
            WEB_TARGET,
            one_route(
                "filtered",
                vec![
                    modified,
                    redirected,
                    failing,
                    http_rule(vec![prefix("/")], &[(WEB_A, 1)]),
                ],
            ),
        )],
    );
    let proxy = &routing.proxy;
    until_reaches(proxy, &web_url("/"), &a, "→ web-a");

    let echoed = get_with_headers(proxy, &web_url("/headers"), &[("x-secret", "s")]);
    assert_eq!(echoed.status, 200, "{echoed:?}");
    let echo = weft_test_support::HeadersEcho::from_json(&String::from_utf8_lossy(&echoed.body))
        .expect("the backend's echo");
    assert_eq!(echo.header("x-route"), Some("policy"), "{echoed:?}");
    assert_eq!(echo.header("x-secret"), None, "{echoed:?}");
    assert_eq!(
        echoed.headers.get("x-from-route").map(|v| v.as_bytes()),
        Some(&b"headers"[..]),
        "{echoed:?}"
    );

    let before = a.requests_seen();
    let moved = load::get(proxy.outbound_addr(), &web_url("/old/page"));
    assert_eq!(moved.status, Some(301), "{}", moved.summary());
    let failed = load::get(proxy.outbound_addr(), &web_url("/fail"));
    assert_eq!(failed.status, Some(503), "{}", failed.summary());
    assert_eq!(failed.proxy_error.as_deref(), Some("injected by the route"));
    assert_eq!(
        a.requests_seen(),
        before,
        "a filter's answer reached the backend"
    );
    let redirect = get_with_headers(proxy, &web_url("/old/page"), &[]);
    assert_eq!(
        redirect.headers.get("location").map(|v| v.as_bytes()),
        Some(&b"http://new.example.com/new"[..]),
        "{redirect:?}"
    );
}
