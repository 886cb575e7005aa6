//! Which endpoint and which backend a request goes to: P2C over peak-EWMA
//! across a service's workloads, TrafficSplit weights, numeric target ports,
//! and names outside the mesh.

use std::time::{Duration, Instant};

use weft_test_support::load;
use weft_test_support::{Behavior, ControllerProcess, HeadersEcho, HttpTestServer, MeshFile};

use super::{
    NAMESPACE, RESOLVE_PATIENCE, assert_no_failures, meshed_proxy, received_since, seen,
    service_url, wait_resolved, web_mesh, web_url,
};

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
    let echo = load::get(proxy.outbound_addr(), &service_url("api", "/headers"));
    let echo = HeadersEcho::from_json(&String::from_utf8_lossy(&echo.body)).expect("/headers");
    assert_eq!(
        echo.header("l5d-dst-canonical"),
        Some("api.shop.svc.cluster.local:80"),
        "{echo:?}"
    );

    // Not a mesh service: the name is resolved by the system and forwarded.
    let url = format!("http://localhost:{}/", outside.addr().port());
    let outcome = load::get(proxy.outbound_addr(), &url);
    assert!(outcome.is_success(), "{url}: {outcome:?}");
    let url = format!("http://{}/", outside.addr());
    let outcome = load::get(proxy.outbound_addr(), &url);
    assert!(outcome.is_success(), "{url}: {outcome:?}");
    assert_eq!(outside.requests_seen(), 2);
}
