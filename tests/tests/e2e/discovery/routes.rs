//! What a ServiceProfile route does to a request: retries within the
//! budget (with the request body replayed), timeouts, failfast without
//! endpoints, and the metrics that count it all.

use std::time::Duration;

use bytes::Bytes;
use http::Method;

use weft_test_support::grpc::GrpcEchoServer;
use weft_test_support::load::{self, Outcome};
use weft_test_support::{Behavior, ControllerProcess, HttpTestServer, MeshFile};

use super::{
    FAILFAST, NAMESPACE, WEB_AUTHORITY, assert_no_failures, meshed_proxy, service_url,
    wait_resolved, web_mesh, web_url,
};
use crate::assert_metric_settles;

/// A profile for `web` with one route, `GET /`, matching every GET.
fn web_profile(route_extra: &str, profile_extra: &str) -> String {
    format!(
        "  routes:\n  - name: GET /\n    condition:\n      method: GET\n      pathRegex: /.*\n\
         {route_extra}{profile_extra}"
    )
}

/// Route-metric labels of the `GET /` route.
fn route_labels(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
    let mut labels = vec![
        ("direction", "outbound"),
        ("dst", WEB_AUTHORITY),
        ("rt_route", "GET /"),
    ];
    labels.extend_from_slice(extra);
    labels
}

#[test]
fn retries_hide_a_thirty_percent_failure_rate() {
    let flaky = HttpTestServer::start_with(Behavior::new().fail(3, 10));
    // Retries fail 30% of the time too, so 500 requests need about 214
    // retries (0.3 × 714 attempts): more than the default budget allows in
    // under its ttl (0.2 × 500 + 10/s × 10 s = 200, which gives 98%). A
    // ratio of 0.5 holds.
    let profile = web_profile(
        "    isRetryable: true\n",
        "  retryBudget: {retryRatio: 0.5, minRetriesPerSecond: 10, ttl: 10s}\n",
    );
    let mesh = web_mesh(&[&flaky]).profile(NAMESPACE, "web", &profile);
    let controller = ControllerProcess::start(&mesh.render());
    let proxy = meshed_proxy(&controller);
    wait_resolved(&proxy, &web_url("/"));

    let before = flaky.requests_seen();
    let report = load::run(proxy.outbound_addr(), &web_url("/"), 500, 4);
    let attempts = flaky.requests_seen() - before;
    println!(
        "retries: success {:.2}% of 500 requests, {attempts} attempts reached the backend \
         ({} answered 500 in all) in {:?}; outcomes {:?}",
        report.success_rate() * 100.0,
        flaky.failures_answered(),
        report.elapsed,
        report.summary()
    );
    assert!(
        report.success_rate() >= 0.99,
        "success {:.2}% < 99%: {:?}",
        report.success_rate() * 100.0,
        report.summary()
    );
    assert!(attempts > 500, "no retries reached the backend: {attempts}");
    let requests = proxy.metric_or_zero("route_request_total", &route_labels(&[]));
    let actual = proxy.metric_or_zero("route_actual_request_total", &route_labels(&[]));
    println!("retries: route_request_total {requests}, route_actual_request_total {actual}");
    assert!(
        actual > requests,
        "retries not counted: {actual} <= {requests}"
    );
}

#[test]
fn retries_stay_within_an_exhausted_budget() {
    let broken = HttpTestServer::start_with(Behavior::new().fail(1, 1));
    const RATIO: f64 = 0.1;
    const MIN_PER_SECOND: f64 = 1.0;
    const TTL_SECONDS: f64 = 2.0;
    let profile = web_profile(
        "    isRetryable: true\n",
        "  retryBudget: {retryRatio: 0.1, minRetriesPerSecond: 1, ttl: 2s}\n",
    );
    let mesh = web_mesh(&[&broken]).profile(NAMESPACE, "web", &profile);
    let controller = ControllerProcess::start(&mesh.render());
    let proxy = meshed_proxy(&controller);

    // The first request (which also waits for discovery) alone: a wrong
    // answer stops the test here rather than after 300 slow failures.
    let first = load::get(proxy.outbound_addr(), &web_url("/"));
    assert_eq!(first.status, Some(500), "{first:?}");
    let mut report = load::run(proxy.outbound_addr(), &web_url("/"), 299, 4);
    report.outcomes.push(first);
    let statuses = report.summary();
    assert_eq!(
        statuses.get("500").copied(),
        Some(300),
        "every request answered with the backend's 500: {statuses:?}"
    );
    let labels = route_labels(&[]);
    assert_metric_settles(&proxy, "route_request_total", &labels, 300.0);
    let actual = proxy.metric_or_zero("route_actual_request_total", &labels);
    let skipped = proxy.metric_or_zero(
        "route_retryable_total",
        &route_labels(&[("skipped", "no_budget")]),
    );
    let seconds = report.elapsed.as_secs_f64();
    let allowed = 300.0 * (1.0 + RATIO) + MIN_PER_SECOND * (seconds + TTL_SECONDS) + 5.0;
    println!(
        "exhausted budget: 300 requests in {seconds:.2}s, {actual} attempts (allowed {allowed:.0}), \
         backend saw {}, {skipped} retries skipped for lack of budget",
        broken.requests_seen()
    );
    assert!(
        actual >= 300.0 && actual <= allowed,
        "attempts {actual} outside [300, {allowed:.0}]\n{}",
        proxy.metrics_text()
    );
    assert!(
        broken.requests_seen() as f64 <= allowed,
        "the backend saw {} attempts, more than {allowed:.0}",
        broken.requests_seen()
    );
    assert!(skipped > 0.0, "no retry was skipped for lack of budget");
}

#[test]
fn a_route_timeout_answers_504_in_time() {
    let slow = HttpTestServer::start_with(Behavior::new().delay(Duration::from_millis(500)));
    let profile = web_profile("    timeout: 100ms\n", "");
    let mesh = web_mesh(&[&slow]).profile(NAMESPACE, "web", &profile);
    let controller = ControllerProcess::start(&mesh.render());
    let proxy = meshed_proxy(&controller);

    // The first request also waits for discovery; measure the next ones.
    let first = load::get(proxy.outbound_addr(), &web_url("/"));
    println!("route timeout: first request {:?}", first);
    let outcomes: Vec<Outcome> = (0..5)
        .map(|_| load::get(proxy.outbound_addr(), &web_url("/")))
        .collect();
    let latencies: Vec<Duration> = outcomes.iter().map(|o| o.latency).collect();
    println!("route timeout 100ms on a 500ms backend: latencies {latencies:?}");
    for outcome in &outcomes {
        assert_eq!(outcome.status, Some(504), "{outcome:?}");
        let reason = outcome.proxy_error.as_deref().unwrap_or_default();
        assert!(reason.contains("timeout"), "l5d-proxy-error: {outcome:?}");
        assert!(
            outcome.latency < Duration::from_millis(400),
            "504 after {:?}",
            outcome.latency
        );
    }
}

#[test]
fn a_service_without_endpoints_fails_fast_with_503() {
    let mesh = MeshFile::new().service(NAMESPACE, "empty", &[("app", "nothing")]);
    let controller = ControllerProcess::start(&mesh.render());
    let proxy = meshed_proxy(&controller);

    let outcome = load::get(proxy.outbound_addr(), &service_url("empty", "/"));
    println!("failfast (timeout {FAILFAST:?}): {outcome:?}");
    assert_eq!(outcome.status, Some(503), "{outcome:?}");
    let reason = outcome.proxy_error.as_deref().unwrap_or_default();
    assert!(reason.contains("fail-fast"), "l5d-proxy-error: {outcome:?}");
    assert!(
        outcome.latency >= FAILFAST / 2 && outcome.latency < Duration::from_secs(6),
        "503 after {:?}, failfast timeout {FAILFAST:?}",
        outcome.latency
    );
}

#[test]
fn discovered_traffic_carries_destination_and_route_labels() {
    let backends = [HttpTestServer::start(), HttpTestServer::start()];
    let backends: Vec<&HttpTestServer> = backends.iter().collect();
    let mesh = web_mesh(&backends).profile(NAMESPACE, "web", &web_profile("", ""));
    let controller = ControllerProcess::start(&mesh.render());
    let proxy = meshed_proxy(&controller);

    // Exactly 20 requests, the first one waiting for discovery.
    let report = load::run(proxy.outbound_addr(), &web_url("/"), 20, 1);
    assert_no_failures(&report, "metrics traffic");

    let service = [
        ("direction", "outbound"),
        ("authority", WEB_AUTHORITY),
        ("dst_service", "web"),
        ("dst_namespace", "shop"),
    ];
    assert_metric_settles(&proxy, "request_total", &service, 20.0);
    let mut success = service.to_vec();
    success.extend([("status_code", "200"), ("classification", "success")]);
    assert_metric_settles(&proxy, "response_total", &success, 20.0);
    for (i, backend) in backends.iter().enumerate() {
        let target = backend.addr().to_string();
        let workload = format!("web-{}", i + 1);
        let labels = [
            ("direction", "outbound"),
            ("authority", WEB_AUTHORITY),
            ("target_addr", target.as_str()),
            ("dst_service", "web"),
            ("dst_workload", workload.as_str()),
        ];
        let counted = proxy.metric_or_zero("request_total", &labels);
        println!(
            "metrics: {target} ({workload}) request_total {counted}, received {}",
            backend.requests_seen()
        );
        assert_eq!(
            counted,
            backend.requests_seen() as f64,
            "request_total{labels:?}\n{}",
            proxy.metrics_text()
        );
    }

    assert_metric_settles(&proxy, "route_request_total", &route_labels(&[]), 20.0);
    assert_metric_settles(
        &proxy,
        "route_response_total",
        &route_labels(&[("status_code", "200"), ("classification", "success")]),
        20.0,
    );
    assert_metric_settles(
        &proxy,
        "route_response_latency_ms_count",
        &route_labels(&[]),
        20.0,
    );
    assert_metric_settles(
        &proxy,
        "route_actual_request_total",
        &route_labels(&[]),
        20.0,
    );
    assert_metric_settles(
        &proxy,
        "route_actual_response_total",
        &route_labels(&[("status_code", "200")]),
        20.0,
    );
}

#[test]
fn retries_replay_a_request_body_up_to_64_kib() {
    // Requests 1, 3, 5, ... (counting from 0) fail.
    let flaky = HttpTestServer::start_with(Behavior::new().fail(1, 2));
    let profile = "  routes:\n  - name: echo\n    condition: {pathRegex: /echo}\n    \
                   isRetryable: true\n  retryBudget: {retryRatio: 1.0, minRetriesPerSecond: 10, ttl: 10s}\n";
    let mesh = web_mesh(&[&flaky]).profile(NAMESPACE, "web", profile);
    let controller = ControllerProcess::start(&mesh.render());
    let proxy = meshed_proxy(&controller);
    wait_resolved(&proxy, &web_url("/"));
    assert_eq!(flaky.requests_seen(), 1, "request 0 succeeds");

    // Request 1 fails, the retry (request 2) echoes the same body.
    let small = Bytes::from(vec![b's'; 10 * 1024]);
    let outcome = load::request(
        proxy.outbound_addr(),
        Method::POST,
        &web_url("/echo"),
        small.clone(),
    );
    println!(
        "body replay: 10 KiB POST -> {} after {} attempts",
        outcome.summary(),
        flaky.requests_seen() - 1
    );
    assert_eq!(outcome.status, Some(200), "{}", outcome.summary());
    assert!(outcome.body == small, "the retry carried a different body");
    assert_eq!(flaky.requests_seen(), 3);

    // Request 3 fails; a 100 KiB body is not kept for a retry.
    let large = Bytes::from(vec![b'l'; 100 * 1024]);
    let outcome = load::request(
        proxy.outbound_addr(),
        Method::POST,
        &web_url("/echo"),
        large,
    );
    println!(
        "body replay: 100 KiB POST -> {} ({} attempts)",
        outcome.summary(),
        flaky.requests_seen() - 3
    );
    assert_eq!(outcome.status, Some(500), "{}", outcome.summary());
    assert_eq!(flaky.requests_seen(), 4, "a body over 64 KiB was retried");
}

#[test]
fn response_classes_decide_what_fails_and_is_retried() {
    let backend = HttpTestServer::start();
    // 404 counts as a failure on this route (and is retried); 500 does not
    // match a class, so the default applies: 5xx fails.
    let profile = "  routes:\n  - name: status\n    condition: {pathRegex: /status/.*}\n    \
                   isRetryable: true\n    responseClasses:\n    \
                   - condition: {status: {min: 404, max: 404}}\n      isFailure: true\n    \
                   - condition: {status: {min: 200, max: 299}}\n      isFailure: false\n";
    let mesh = web_mesh(&[&backend]).profile(NAMESPACE, "web", profile);
    let controller = ControllerProcess::start(&mesh.render());
    let proxy = meshed_proxy(&controller);
    wait_resolved(&proxy, &web_url("/"));

    let before = backend.requests_seen();
    let report = load::run(proxy.outbound_addr(), &web_url("/status/404"), 5, 1);
    assert_eq!(
        report.summary().get("404"),
        Some(&5),
        "{:?}",
        report.summary()
    );
    let attempts = backend.requests_seen() - before;
    let labels = |extra: &[(&'static str, &'static str)]| {
        let mut labels = vec![
            ("direction", "outbound"),
            ("dst", WEB_AUTHORITY),
            ("rt_route", "status"),
        ];
        labels.extend_from_slice(extra);
        labels
    };
    assert_metric_settles(&proxy, "route_request_total", &labels(&[]), 5.0);
    assert_metric_settles(
        &proxy,
        "route_response_total",
        &labels(&[("status_code", "404"), ("classification", "failure")]),
        5.0,
    );
    let actual = proxy.metric_or_zero("route_actual_request_total", &labels(&[]));
    println!("response classes: 5 requests answered 404, {attempts} attempts ({actual} counted)");
    assert!(attempts > 5, "a 404 classed as failure was not retried");
    assert_eq!(actual, attempts as f64);
}

#[test]
fn the_retry_budget_holds_across_connections() {
    // Clients that open a connection per request (HTTP/1.0, `Connection:
    // close`, curl in a loop) share the destination's one budget too.
    let broken = HttpTestServer::start_with(Behavior::new().fail(1, 1));
    let profile = web_profile(
        "    isRetryable: true\n",
        "  retryBudget: {retryRatio: 0.1, minRetriesPerSecond: 1, ttl: 2s}\n",
    );
    let mesh = web_mesh(&[&broken]).profile(NAMESPACE, "web", &profile);
    let controller = ControllerProcess::start(&mesh.render());
    let proxy = meshed_proxy(&controller);

    let started = std::time::Instant::now();
    let outcomes: Vec<Outcome> = (0..30)
        .map(|_| load::get(proxy.outbound_addr(), &web_url("/")))
        .collect();
    let seconds = started.elapsed().as_secs_f64();
    assert!(
        outcomes.iter().all(|o| o.status == Some(500)),
        "{:?}",
        outcomes.iter().map(Outcome::summary).collect::<Vec<_>>()
    );
    let attempts = broken.requests_seen() as f64;
    // 30 × (1 + 0.1) + 1/s × (elapsed + ttl 2s), and a little slack.
    let allowed = 30.0 * 1.1 + (seconds + 2.0) + 3.0;
    println!(
        "budget across connections: 30 requests, one connection each, in {seconds:.2}s: \
         {attempts} attempts (allowed {allowed:.0})"
    );
    assert!(
        attempts <= allowed,
        "{attempts} attempts for 30 requests on separate connections; the budget allows \
         {allowed:.0}: each connection seems to get a fresh budget"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_over_http2_is_routed_and_classified_by_grpc_status() {
    let echo = GrpcEchoServer::start();
    let mesh = MeshFile::new()
        .service(NAMESPACE, "echo", &[("app", "echo")])
        .workload(NAMESPACE, "echo-1", &[("app", "echo")], echo.addr())
        .profile(
            NAMESPACE,
            "echo",
            "  routes:\n  - name: unary\n    condition: {method: POST, pathRegex: /weft.test.Echo/Unary}\n",
        );
    let controller = ControllerProcess::start(&mesh.render());
    let proxy = meshed_proxy(&controller);

    let authority = "echo.shop.svc.cluster.local";
    let send = |message: &str, code: tonic::Code| {
        weft_test_support::http_client::send(
            proxy.outbound_addr(),
            weft_test_support::grpc::raw_unary_request(authority, message, code),
        )
    };
    let ok = send("hello", tonic::Code::Ok).await.expect("a response");
    assert_eq!(ok.status, 200, "{ok:?}");
    assert_eq!(
        ok.header_or_trailer("grpc-status").as_deref(),
        Some("0"),
        "{ok:?}"
    );
    let failed = send("nope", tonic::Code::Unavailable)
        .await
        .expect("a response");
    assert_eq!(
        failed.header_or_trailer("grpc-status").as_deref(),
        Some("14"),
        "{failed:?}"
    );

    let route = |extra: &[(&'static str, &'static str)]| {
        let mut labels = vec![
            ("direction", "outbound"),
            ("dst", "echo.shop.svc.cluster.local:80"),
            ("rt_route", "unary"),
        ];
        labels.extend_from_slice(extra);
        labels
    };
    assert_metric_settles(&proxy, "route_request_total", &route(&[]), 2.0);
    assert_metric_settles(
        &proxy,
        "route_response_total",
        &route(&[("classification", "success")]),
        1.0,
    );
    assert_metric_settles(
        &proxy,
        "route_response_total",
        &route(&[("classification", "failure")]),
        1.0,
    );
}
