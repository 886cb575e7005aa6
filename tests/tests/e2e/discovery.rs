//! Discovery-driven outbound routing: a real `weft-controller` serves the
//! Destination API from a mesh file, a real `weft-proxy` asks it where
//! `web.shop.svc.cluster.local` is, and keep-alive clients use the proxy's
//! outbound listener as an explicit HTTP proxy.
//!
//! ```text
//!  load clients ──GET http://web.shop.svc.cluster.local/──► weft-proxy ──► backends (127.0.0.1:P1..Pn)
//!                                                              │ GetProfile / Get
//!                                  mesh.yaml ──► weft-controller
//! ```
//!
//! Every backend is an [`HttpTestServer`] on its own loopback port, declared
//! as a Workload with `addresses: [127.0.0.1]` and a port named `http`. The
//! figures each test measures are printed (`--nocapture` shows them); timing
//! assertions are loose on purpose: the suite shares two cores.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use weft_test_support::load::{self, BackgroundLoad, LoadReport, Outcome};
use weft_test_support::{
    Behavior, ControllerProcess, HttpTestServer, MeshFile, ProxyProcess, eventually,
};

use crate::assert_metric_settles;

const NAMESPACE: &str = "shop";
/// The service every test talks to, as the proxy's metrics name it.
const WEB_AUTHORITY: &str = "web.shop.svc.cluster.local:80";
/// Failfast timeout given to the proxy (the default is 3s).
const FAILFAST: Duration = Duration::from_secs(1);
/// Bound for the proxy resolving the service before the measured traffic.
const RESOLVE_PATIENCE: Duration = Duration::from_secs(10);

/// `http://{service}.shop.svc.cluster.local{path}`.
fn service_url(service: &str, path: &str) -> String {
    format!("http://{service}.{NAMESPACE}.svc.cluster.local{path}")
}

/// `http://web.shop.svc.cluster.local{path}`.
fn web_url(path: &str) -> String {
    service_url("web", path)
}

/// Service `web` selecting `app: web`, one workload `web-N` per backend.
fn web_mesh(backends: &[&HttpTestServer]) -> MeshFile {
    let mut mesh = MeshFile::new().service(NAMESPACE, "web", &[("app", "web")]);
    for (i, backend) in backends.iter().enumerate() {
        mesh = with_workload(mesh, &format!("web-{}", i + 1), backend.addr());
    }
    mesh
}

fn with_workload(mesh: MeshFile, name: &str, address: SocketAddr) -> MeshFile {
    mesh.workload(NAMESPACE, name, &[("app", "web")], address)
}

/// A proxy whose outbound side asks `controller`, with a 1 s failfast.
fn meshed_proxy(controller: &ControllerProcess) -> ProxyProcess {
    ProxyProcess::builder()
        .env(
            "WEFT_PROXY_DESTINATION_SVC_ADDR",
            controller.destination_addr().to_string(),
        )
        .env(
            "WEFT_PROXY_OUTBOUND_FAILFAST_TIMEOUT",
            format!("{}s", FAILFAST.as_secs()),
        )
        .spawn()
}

/// Sends requests until one succeeds: the proxy has resolved `url`'s
/// service and has endpoints. Returns how many requests it took.
fn wait_resolved(proxy: &ProxyProcess, url: &str) -> usize {
    let deadline = Instant::now() + RESOLVE_PATIENCE;
    let mut sent = 0;
    loop {
        let outcome = load::get(proxy.outbound_addr(), url);
        sent += 1;
        if outcome.is_success() {
            return sent;
        }
        assert!(
            Instant::now() < deadline,
            "{url} not served within {RESOLVE_PATIENCE:?}; last outcome: {}",
            outcome.summary()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Requests each backend received since `before` (same order).
fn received_since(backends: &[&HttpTestServer], before: &[u64]) -> Vec<u64> {
    backends
        .iter()
        .zip(before)
        .map(|(backend, before)| backend.requests_seen() - before)
        .collect()
}

fn seen(backends: &[&HttpTestServer]) -> Vec<u64> {
    backends.iter().map(|b| b.requests_seen()).collect()
}

fn assert_no_failures(report: &LoadReport, what: &str) {
    assert_eq!(
        report.failures(),
        0,
        "{what}: {} of {} requests failed: {:?}",
        report.failures(),
        report.total(),
        report.summary()
    );
}

/// Failures among `outcomes`, grouped.
fn failure_summary(outcomes: &[Outcome]) -> Vec<String> {
    let mut failed: Vec<String> = outcomes
        .iter()
        .filter(|o| !o.is_success())
        .map(Outcome::summary)
        .collect();
    failed.sort();
    failed.dedup();
    failed
}

#[test]
fn controller_harness_reports_ready_and_follows_edits() {
    let backend = HttpTestServer::start();
    let mut controller = ControllerProcess::start(&web_mesh(&[&backend]).render());
    let (status, ready) = controller.ready();
    assert_eq!(status, 200, "{ready}");
    assert_eq!(ready["mesh_file"]["objects"], 2, "{ready}");
    assert_eq!(ready["mesh_file"]["good_loads"], 1, "{ready}");

    // An edit is loaded: one more object.
    let other = HttpTestServer::start();
    let edited = with_workload(web_mesh(&[&backend]), "web-2", other.addr());
    controller.rewrite_mesh(&edited.render());
    controller.wait_good_loads(2, Duration::from_secs(5));
    assert_eq!(controller.ready().1["mesh_file"]["objects"], 3);
    assert_eq!(
        controller.metric("weft_controller_mesh_file_current", &[]),
        Some(1.0)
    );

    // Killed, then restarted on the same ports with the edited file.
    let (destination, admin) = (controller.destination_addr(), controller.admin_addr());
    controller.kill();
    assert!(!controller.is_running());
    assert!(controller.admin_get("/ready").is_err());
    controller.restart();
    assert!(controller.is_running());
    assert_eq!(
        (controller.destination_addr(), controller.admin_addr()),
        (destination, admin)
    );
    let (status, ready) = controller.ready();
    assert_eq!((status, &ready["mesh_file"]["objects"]), (200, &3.into()));
}

#[test]
fn load_client_keeps_connections_alive_and_records_outcomes() {
    // No discovery: the proxy forwards to the URL's address, as before.
    let half_failing = HttpTestServer::start_with(Behavior::new().fail(1, 2));
    let proxy = ProxyProcess::builder().spawn();
    let url = format!("http://{}/", half_failing.addr());
    let report = load::run(proxy.outbound_addr(), &url, 100, 4);
    assert_eq!(report.total(), 100);
    assert_eq!(report.failures(), 50, "{:?}", report.summary());
    assert_eq!(report.summary().get("500"), Some(&50));
    assert_metric_settles(
        &proxy,
        "tcp_open_total",
        &[("direction", "outbound"), ("peer", "src")],
        4.0,
    );
}

#[test]
fn load_spreads_over_three_backends() {
    let backends = [
        HttpTestServer::start(),
        HttpTestServer::start(),
        HttpTestServer::start(),
    ];
    let backends: Vec<&HttpTestServer> = backends.iter().collect();
    let controller = ControllerProcess::start(&web_mesh(&backends).render());
    let proxy = meshed_proxy(&controller);
    wait_resolved(&proxy, &web_url("/"));

    let before = seen(&backends);
    let report = load::run(proxy.outbound_addr(), &web_url("/"), 300, 6);
    let received = received_since(&backends, &before);
    println!(
        "three backends: 300 requests in {:?}, received {received:?}",
        report.elapsed
    );
    assert_no_failures(&report, "three backends");
    assert_eq!(received.iter().sum::<u64>(), 300, "{received:?}");
    for (i, count) in received.iter().enumerate() {
        assert!(
            *count >= 45,
            "backend {i} got {count} of 300 requests (< 15%): {received:?}"
        );
    }
}

#[test]
fn a_slower_backend_gets_little_traffic() {
    let fast = [HttpTestServer::start(), HttpTestServer::start()];
    let slow = HttpTestServer::start_with(Behavior::new().delay(Duration::from_millis(50)));
    let backends = [&fast[0], &fast[1], &slow];
    let controller = ControllerProcess::start(&web_mesh(&backends).render());
    let proxy = meshed_proxy(&controller);
    wait_resolved(&proxy, &web_url("/"));

    let before = seen(&backends);
    let report = load::run(proxy.outbound_addr(), &web_url("/"), 300, 6);
    let received = received_since(&backends, &before);
    let slow_share = received[2] as f64 / 300.0;
    println!(
        "slow backend (+50 ms): received {received:?} (slow share {:.1}%) in {:?}",
        slow_share * 100.0,
        report.elapsed
    );
    assert_no_failures(&report, "one slow backend");
    assert!(
        slow_share < 0.10,
        "the slow backend got {:.1}% of requests: {received:?}",
        slow_share * 100.0
    );
}

#[test]
fn a_killed_backend_costs_few_requests_and_none_once_removed() {
    let survivors = [HttpTestServer::start(), HttpTestServer::start()];
    let doomed = HttpTestServer::start();
    let controller =
        ControllerProcess::start(&web_mesh(&[&survivors[0], &survivors[1], &doomed]).render());
    let proxy = meshed_proxy(&controller);
    wait_resolved(&proxy, &web_url("/"));

    let traffic = BackgroundLoad::start(
        proxy.outbound_addr(),
        &web_url("/"),
        4,
        Duration::from_millis(2),
    );
    traffic.wait_for_more(100, Duration::from_secs(10));
    eventually(Duration::from_secs(5), || doomed.requests_seen() > 0);

    // Killed mid-traffic: its listener and open connections go away.
    let killed_at = traffic.completed();
    let doomed_served = doomed.requests_seen();
    drop(doomed);
    traffic.wait_for_more(300, Duration::from_secs(20));

    // Then removed from the mesh file; once the controller has loaded the
    // edit and a second has passed for it to reach the proxy, nothing fails.
    controller.rewrite_mesh(&web_mesh(&[&survivors[0], &survivors[1]]).render());
    controller.wait_good_loads(2, Duration::from_secs(5));
    std::thread::sleep(Duration::from_secs(1));
    let removed_at = traffic.completed();
    traffic.wait_for_more(300, Duration::from_secs(20));
    let report = traffic.stop();

    let while_dead = &report.outcomes[killed_at..removed_at];
    let dead_failures = while_dead.iter().filter(|o| !o.is_success()).count();
    let after = &report.outcomes[removed_at..];
    let after_failures = after.iter().filter(|o| !o.is_success()).count();
    println!(
        "killed backend (had served {doomed_served} of {killed_at}): {dead_failures} of {} \
         requests failed before its removal {:?}; {after_failures} of {} failed after",
        while_dead.len(),
        failure_summary(while_dead),
        after.len()
    );
    assert!(
        dead_failures * 20 <= while_dead.len(),
        "more than 5% failed while a backend was dead: {dead_failures} of {}: {:?}",
        while_dead.len(),
        failure_summary(while_dead)
    );
    assert_eq!(
        after_failures,
        0,
        "failures after the dead backend was removed: {:?}",
        failure_summary(after)
    );
}

#[test]
fn traffic_split_sends_ninety_ten() {
    let v1 = HttpTestServer::start();
    let v2 = HttpTestServer::start();
    let mesh = MeshFile::new()
        .service(NAMESPACE, "web", &[("app", "web")])
        .service(NAMESPACE, "web-v1", &[("app", "web"), ("version", "v1")])
        .service(NAMESPACE, "web-v2", &[("app", "web"), ("version", "v2")])
        .workload(
            NAMESPACE,
            "web-v1",
            &[("app", "web"), ("version", "v1")],
            v1.addr(),
        )
        .workload(
            NAMESPACE,
            "web-v2",
            &[("app", "web"), ("version", "v2")],
            v2.addr(),
        )
        .split(NAMESPACE, "web", &[("web-v1", 900), ("web-v2", 100)]);
    let controller = ControllerProcess::start(&mesh.render());
    let proxy = meshed_proxy(&controller);
    // Both backends resolved before counting: until web-v2 has endpoints its
    // share of requests waits for them.
    let deadline = Instant::now() + RESOLVE_PATIENCE;
    while v1.requests_seen() == 0 || v2.requests_seen() == 0 {
        assert!(
            Instant::now() < deadline,
            "both sides of the split not served within {RESOLVE_PATIENCE:?}"
        );
        wait_resolved(&proxy, &web_url("/"));
    }

    let before = seen(&[&v1, &v2]);
    let report = load::run(proxy.outbound_addr(), &web_url("/"), 2000, 8);
    let received = received_since(&[&v1, &v2], &before);
    let v2_share = received[1] as f64 / 2000.0;
    println!(
        "split 900m/100m: web-v1 {} web-v2 {} (v2 share {:.2}%) in {:?}",
        received[0],
        received[1],
        v2_share * 100.0,
        report.elapsed
    );
    assert_no_failures(&report, "split");
    assert_eq!(received.iter().sum::<u64>(), 2000, "{received:?}");
    assert!(
        (0.07..=0.13).contains(&v2_share),
        "web-v2 got {:.2}% of requests, expected 10% ± 3%",
        v2_share * 100.0
    );
}

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
fn a_controller_restart_under_traffic_fails_nothing() {
    let backends = [HttpTestServer::start(), HttpTestServer::start()];
    let third = HttpTestServer::start();
    let mut controller =
        ControllerProcess::start(&web_mesh(&[&backends[0], &backends[1]]).render());
    let proxy = meshed_proxy(&controller);
    wait_resolved(&proxy, &web_url("/"));

    let traffic = BackgroundLoad::start(
        proxy.outbound_addr(),
        &web_url("/"),
        2,
        Duration::from_millis(5),
    );
    traffic.wait_for_more(50, Duration::from_secs(10));
    controller.kill();
    let down = Instant::now();
    traffic.wait_for_more(100, Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(500));
    controller.restart();
    println!(
        "controller restart: down for {:?}, {} requests so far, {} failed",
        down.elapsed(),
        traffic.completed(),
        traffic.failures()
    );
    traffic.wait_for_more(100, Duration::from_secs(10));

    // The streams came back: an edit after the restart reaches the proxy.
    let edited = with_workload(
        web_mesh(&[&backends[0], &backends[1]]),
        "web-3",
        third.addr(),
    );
    controller.rewrite_mesh(&edited.render());
    let edited_at = Instant::now();
    let deadline = edited_at + Duration::from_secs(10);
    while third.requests_seen() == 0 {
        assert!(
            Instant::now() < deadline,
            "an endpoint added after the controller restart got no traffic within 10s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    println!(
        "controller restart: endpoint added after the restart used after {:?}",
        edited_at.elapsed()
    );
    let report = traffic.stop();
    println!(
        "controller restart: {} requests, {} failed",
        report.total(),
        report.failures()
    );
    assert_no_failures(&report, "controller restart");
}

#[test]
fn an_added_endpoint_is_used_within_a_second() {
    let first = HttpTestServer::start();
    let added = HttpTestServer::start();
    let controller = ControllerProcess::start(&web_mesh(&[&first]).render());
    let proxy = meshed_proxy(&controller);
    wait_resolved(&proxy, &web_url("/"));

    let traffic = BackgroundLoad::start(
        proxy.outbound_addr(),
        &web_url("/"),
        2,
        Duration::from_millis(2),
    );
    traffic.wait_for_more(20, Duration::from_secs(10));
    controller.rewrite_mesh(&web_mesh(&[&first, &added]).render());
    let edited = Instant::now();
    // The issue's bound is 1 s; allow 2 s on a busy machine.
    let deadline = edited + Duration::from_secs(2);
    while added.requests_seen() == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let used_after = edited.elapsed();
    let report = traffic.stop();
    println!(
        "added endpoint: first request after {used_after:?} ({} requests, {} failed)",
        report.total(),
        report.failures()
    );
    assert!(
        added.requests_seen() > 0,
        "the added endpoint got no request within 2s of the edit"
    );
    assert_no_failures(&report, "adding an endpoint");
}

#[test]
fn a_broken_mesh_edit_is_reported_and_traffic_continues() {
    let backends = [HttpTestServer::start(), HttpTestServer::start()];
    let backends: Vec<&HttpTestServer> = backends.iter().collect();
    let good = web_mesh(&backends).render();
    let controller = ControllerProcess::start(&good);
    let proxy = meshed_proxy(&controller);
    wait_resolved(&proxy, &web_url("/"));

    let traffic = BackgroundLoad::start(
        proxy.outbound_addr(),
        &web_url("/"),
        2,
        Duration::from_millis(5),
    );
    traffic.wait_for_more(20, Duration::from_secs(10));
    let broken = format!(
        "{good}---\napiVersion: v1\nkind: Service\nmetadata: {{name: broken, namespace: shop}}\n\
         spec: {{ports: nope}}\n"
    );
    controller.rewrite_mesh(&broken);
    let deadline = Instant::now() + Duration::from_secs(5);
    let ready = loop {
        let (status, ready) = controller.ready();
        if ready["mesh_file"]["current"] == false {
            assert_eq!(status, 200, "the last good version keeps serving: {ready}");
            break ready;
        }
        assert!(
            Instant::now() < deadline,
            "broken edit not reported: {ready}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let error = ready["mesh_file"]["last_error"]
        .as_str()
        .unwrap_or_default();
    println!("broken edit: controller reports {error:?}");
    assert!(error.contains("document 4"), "{ready}");
    assert_eq!(
        controller.metric("weft_controller_mesh_file_current", &[]),
        Some(0.0)
    );

    let before = seen(&backends);
    traffic.wait_for_more(200, Duration::from_secs(10));
    let report = traffic.stop();
    let received = received_since(&backends, &before);
    println!(
        "broken edit: {} requests, {} failed; backends received {received:?} after the edit",
        report.total(),
        report.failures()
    );
    assert_no_failures(&report, "broken edit");
    assert!(
        received.iter().all(|&n| n > 0),
        "both backends keep serving: {received:?}"
    );
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
fn a_numeric_target_port_resolves_and_other_names_are_forwarded_as_before() {
    let api = HttpTestServer::start();
    let outside = HttpTestServer::start();
    let port = api.addr().port();
    let mesh = MeshFile::new()
        .document(&format!(
            "apiVersion: v1\nkind: Service\nmetadata: {{name: api, namespace: shop}}\n\
             spec:\n  selector: {{app: api}}\n  ports:\n  - {{port: 80, targetPort: {port}}}\n"
        ))
        .document(&format!(
            "apiVersion: weft.dev/v1alpha1\nkind: Workload\n\
             metadata: {{name: api-1, namespace: shop, labels: {{app: api}}}}\n\
             spec:\n  addresses: [127.0.0.1]\n  ports: [{{port: {port}}}]\n"
        ));
    let controller = ControllerProcess::start(&mesh.render());
    let proxy = meshed_proxy(&controller);

    wait_resolved(&proxy, &service_url("api", "/"));
    assert!(api.requests_seen() > 0);

    // Not a mesh service: the name is resolved by the system and forwarded.
    let url = format!("http://localhost:{}/", outside.addr().port());
    let outcome = load::get(proxy.outbound_addr(), &url);
    assert!(outcome.is_success(), "{url}: {outcome:?}");
    let url = format!("http://{}/", outside.addr());
    let outcome = load::get(proxy.outbound_addr(), &url);
    assert!(outcome.is_success(), "{url}: {outcome:?}");
    assert_eq!(outside.requests_seen(), 2);
}
