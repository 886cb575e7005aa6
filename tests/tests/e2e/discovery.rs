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
//!
//! - `balance`: endpoints by load, backends by TrafficSplit weights, names
//!   outside the mesh.
//! - `routes`: ServiceProfile routes: retries and their budget, timeouts,
//!   failfast, route and `dst_*` metrics.
//! - `changes`: a backend dying, mesh-file edits (good and broken), the
//!   controller restarting or starting late.
//! - `latency`: a caller's proxy, the server's proxy and the client's own
//!   clock on the same requests to a slow app (`response_latency_ms`).
//! - `inbound_routes`: the server's proxy counts requests under the routes
//!   of the service they name (`route_*{direction="inbound"}`), and names
//!   without profile routes, or a silent controller, cost nothing more.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use weft_test_support::load::{self, LoadReport, Outcome};
use weft_test_support::{Behavior, ControllerProcess, HttpTestServer, MeshFile, ProxyProcess};

use crate::assert_metric_settles;

mod balance;
mod changes;
mod endpoint_loss;
mod inbound_routes;
mod latency;
mod routes;

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
