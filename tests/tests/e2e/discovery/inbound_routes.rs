//! Route metrics on the receiving side: the server's proxy looks up the
//! profile of the service a request names (inbound GetProfile) and counts
//! the request under its route, `direction="inbound"`.
//!
//! ```text
//! client ─► proxy A (outbound) ─► proxy B (inbound) ─► app
//!              │ GetProfile, Get      │ GetProfile(web.shop.svc.cluster.local:80)
//!              └──────────► weft-controller ◄──┘
//! ```
//!
//! Names with no profile routes (no ServiceProfile, unknown services, IP
//! addresses, names outside the profile suffixes) get no route metrics,
//! and a controller that never answers costs a new name's first request at
//! most the initial timeout, as outbound.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use weft_test_support::load::{self, LoadReport};
use weft_test_support::{ControllerProcess, HttpTestServer, MeshFile, ProxyProcess, free_port};

use super::{NAMESPACE, WEB_AUTHORITY, assert_no_failures, meshed_proxy, wait_resolved, web_url};
use crate::{assert_metric_reaches, assert_metric_settles};

/// `web`'s profile: one route for `/status/*`; everything else takes the
/// default route.
const PROFILE: &str =
    "  routes:\n  - name: status\n    condition: {method: GET, pathRegex: /status/.*}\n";

/// A proxy serving the app at `app` on `inbound`, asking `destination`.
fn server_proxy(inbound: SocketAddr, app: SocketAddr, destination: SocketAddr) -> ProxyProcess {
    ProxyProcess::builder()
        .inbound_addr(inbound)
        .inbound_forward(app)
        .env("WEFT_PROXY_DESTINATION_SVC_ADDR", destination.to_string())
        .spawn()
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Route labels of `web` in `direction`, with `extra`.
fn route<'a>(direction: &'a str, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut labels = vec![("direction", direction), ("dst", WEB_AUTHORITY)];
    labels.extend_from_slice(extra);
    labels
}

#[test]
fn the_server_proxy_counts_requests_by_the_services_routes() {
    let app = HttpTestServer::start();
    let inbound = loopback(free_port());
    let mesh = MeshFile::new()
        .service(NAMESPACE, "web", &[("app", "web")])
        .workload(NAMESPACE, "web-1", &[("app", "web")], inbound)
        .profile(NAMESPACE, "web", PROFILE);
    let controller = ControllerProcess::start(&mesh.render());
    let server = server_proxy(inbound, app.addr(), controller.destination_addr());
    let client = meshed_proxy(&controller);
    wait_resolved(&client, &web_url("/"));

    let ok = load::run(client.outbound_addr(), &web_url("/status/200"), 6, 2);
    assert_no_failures(&ok, "GET /status/200");
    let failed = load::run(client.outbound_addr(), &web_url("/status/500"), 3, 1);
    assert_eq!(
        failed.summary().get("500"),
        Some(&3),
        "{:?}",
        failed.summary()
    );
    let other = load::run(client.outbound_addr(), &web_url("/headers"), 4, 2);
    assert_no_failures(&other, "GET /headers");

    // The status route, as the client counted it, on both proxies.
    for (proxy, direction) in [(&server, "inbound"), (&client, "outbound")] {
        let status = route(direction, &[("rt_route", "status")]);
        assert_metric_settles(proxy, "route_request_total", &status, 9.0);
        let mut success = status.clone();
        success.extend([("status_code", "200"), ("classification", "success")]);
        assert_metric_settles(proxy, "route_response_total", &success, 6.0);
        let mut failure = status.clone();
        failure.extend([("status_code", "500"), ("classification", "failure")]);
        assert_metric_settles(proxy, "route_response_total", &failure, 3.0);
        assert_metric_settles(proxy, "route_response_latency_ms_count", &status, 9.0);
    }
    // The default route (no rt_route) has the 4 others, and wait_resolved's
    // once the server's lookup had its answer (at most all the app saw).
    let seen = app.requests_seen() as f64;
    let all = route("inbound", &[]);
    assert_metric_reaches(&server, "route_request_total", &all, 13.0);
    let total = server.metric_or_zero("route_request_total", &all);
    println!(
        "inbound routes: app saw {seen} requests; server proxy: status route 9 \
         (6 × 200, 3 × 500), default route {}",
        total - 9.0
    );
    assert!(total <= seen, "{total} route requests, the app saw {seen}");
}

/// `GET http://{authority}/` straight to `proxy`'s inbound listener.
fn inbound_get(proxy: &ProxyProcess, authority: &str, requests: usize) -> LoadReport {
    let url = format!("http://{authority}/");
    let report = load::run(proxy.inbound_addr(), &url, requests, 1);
    assert_no_failures(&report, &url);
    report
}

#[test]
fn names_without_profile_routes_get_no_route_metrics() {
    let app = HttpTestServer::start();
    let inbound = loopback(free_port());
    // `web` exists but has no ServiceProfile.
    let mesh = MeshFile::new()
        .service(NAMESPACE, "web", &[("app", "web")])
        .workload(NAMESPACE, "web-1", &[("app", "web")], inbound);
    let controller = ControllerProcess::start(&mesh.render());
    let server = server_proxy(inbound, app.addr(), controller.destination_addr());

    let app_authority = app.addr().to_string();
    for authority in [
        "web.shop.svc.cluster.local",
        "nothing.shop.svc.cluster.local:8080",
        "example.com",
        app_authority.as_str(),
    ] {
        inbound_get(&server, authority, 3);
    }
    assert_metric_settles(&server, "request_total", &[("direction", "inbound")], 12.0);
    let metrics = server.metrics_text();
    assert!(
        !metrics.lines().any(|line| line.starts_with("route_")),
        "route metrics without a profile with routes:\n{metrics}"
    );
}

#[test]
fn a_controller_that_never_answers_costs_one_bounded_wait() {
    let app = HttpTestServer::start();
    // Nothing listens on the destination address: lookups stay pending
    // until the initial timeout (500ms), then answer at once.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_addr = silent.local_addr().unwrap();
    drop(silent);
    let server = server_proxy(loopback(free_port()), app.addr(), silent_addr);

    let started = Instant::now();
    let first = inbound_get(&server, "web.shop.svc.cluster.local", 1);
    let first_took = started.elapsed();
    let rest = inbound_get(&server, "web.shop.svc.cluster.local", 20);
    println!(
        "no controller: first request {first_took:?} ({:?} as the client timed it), \
         then 20 requests in {:?}",
        first.outcomes[0].latency, rest.elapsed
    );
    // The first request waits for the lookup at most the initial timeout
    // (and the 20 after it not at all: together well under one more).
    assert!(
        first_took < Duration::from_secs(5),
        "first request took {first_took:?}"
    );
    assert!(
        rest.elapsed < Duration::from_secs(5),
        "20 requests took {:?}",
        rest.elapsed
    );
    assert_metric_settles(&server, "request_total", &[("direction", "inbound")], 21.0);
    let metrics = server.metrics_text();
    assert!(
        !metrics.lines().any(|line| line.starts_with("route_")),
        "route metrics without a controller:\n{metrics}"
    );
}
