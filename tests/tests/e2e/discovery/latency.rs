//! Latency as the caller's proxy and the server's proxy record it for the
//! same requests, against the client's own clock and the backend's delay.
//!
//! ```text
//! client (own timing) ─► proxy A (outbound, discovery) ─► proxy B (inbound) ─► app (sleeps)
//!                            response_latency_ms              response_latency_ms
//!                            {direction="outbound"}           {direction="inbound"}
//! ```
//!
//! Every request passes through both proxies, so on each one the outbound
//! proxy's interval (request sent → end of the response stream) holds the
//! inbound proxy's, which holds the app's delay; and the client's interval
//! holds the outbound proxy's. The histogram sums keep that order.

use std::time::Duration;

use weft_test_support::load::ProxyClient;
use weft_test_support::{Behavior, ControllerProcess, HttpTestServer, MeshFile, ProxyProcess};

use super::{NAMESPACE, meshed_proxy, wait_resolved, web_url};
use crate::assert_metric_settles;

/// The app's delay on every request.
const APP_DELAY: Duration = Duration::from_millis(25);
/// Requests measured.
const REQUESTS: usize = 20;

/// `(sum, count)` of a proxy's `response_latency_ms` in one direction.
fn latency(proxy: &ProxyProcess, direction: &str) -> (f64, f64) {
    let labels = [("direction", direction)];
    (
        proxy.metric_or_zero("response_latency_ms_sum", &labels),
        proxy.metric_or_zero("response_latency_ms_count", &labels),
    )
}

/// Service `web` whose one workload is `server`'s inbound listener.
fn mesh_through(server: &ProxyProcess) -> MeshFile {
    MeshFile::new()
        .service(NAMESPACE, "web", &[("app", "web")])
        .workload(NAMESPACE, "web-1", &[("app", "web")], server.inbound_addr())
}

#[test]
fn caller_latency_holds_the_servers_and_the_apps() {
    let app = HttpTestServer::start_with(Behavior::new().delay(APP_DELAY));
    let server = ProxyProcess::builder().inbound_forward(app.addr()).spawn();
    let controller = ControllerProcess::start(&mesh_through(&server).render());
    let client_proxy = meshed_proxy(&controller);
    let url = web_url("/");
    wait_resolved(&client_proxy, &url);

    let (outbound_sum, outbound_count) = latency(&client_proxy, "outbound");
    let (inbound_sum, inbound_count) = latency(&server, "inbound");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client_ms: f64 = runtime.block_on(async {
        let mut client = ProxyClient::new(client_proxy.outbound_addr());
        let mut total = 0.0;
        for _ in 0..REQUESTS {
            let outcome = client.get(&url).await;
            assert!(outcome.is_success(), "{}", outcome.summary());
            total += outcome.latency.as_secs_f64() * 1000.0;
        }
        total
    });
    let n = REQUESTS as f64;
    assert_metric_settles(
        &client_proxy,
        "response_latency_ms_count",
        &[("direction", "outbound")],
        outbound_count + n,
    );
    assert_metric_settles(
        &server,
        "response_latency_ms_count",
        &[("direction", "inbound")],
        inbound_count + n,
    );
    let outbound_ms = latency(&client_proxy, "outbound").0 - outbound_sum;
    let inbound_ms = latency(&server, "inbound").0 - inbound_sum;
    let app_ms = APP_DELAY.as_secs_f64() * 1000.0 * n;
    println!(
        "latency over {REQUESTS} requests (mean ms): app delay {:.3}, inbound proxy {:.3}, \
         outbound proxy {:.3}, client {:.3}",
        app_ms / n,
        inbound_ms / n,
        outbound_ms / n,
        client_ms / n
    );
    assert!(
        app_ms <= inbound_ms,
        "inbound latency {inbound_ms} ms < the app's delay {app_ms} ms"
    );
    assert!(
        inbound_ms <= outbound_ms,
        "outbound latency {outbound_ms} ms < inbound {inbound_ms} ms for the same requests\n{}",
        client_proxy.metrics_text()
    );
    assert!(
        outbound_ms <= client_ms,
        "outbound latency {outbound_ms} ms > the client's own {client_ms} ms"
    );
}
