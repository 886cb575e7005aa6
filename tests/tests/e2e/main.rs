//! End-to-end tests: real `weft-proxy` child processes, real clients.
//!
//! ```text
//! curl / redis-cli / gRPC / WebSocket ──► weft-proxy (child process) ──► test servers
//!                                            └─ admin /metrics, /ready, /shutdown
//! ```
//!
//! Every test starts its own proxy and servers on free loopback ports, so the
//! tests run in parallel; all traffic stays on 127.0.0.0/8. Build the proxy
//! first (`cargo build --bins`), then `cargo test -p weft-e2e`.
//!
//! Modules follow the contract in `crates/proxy/README.md`:
//! - `admin`: `/ready`, `/live`, `/config`, process metrics.
//! - `http`: curl HTTP/1.1 and HTTP/2 through the outbound (explicit proxy,
//!   `CONNECT`) and inbound (forwarding) listeners; Host and hop-by-hop headers;
//!   `Expect: 100-continue`.
//! - `grpc`: unary and bidirectional streaming, trailers and error statuses.
//! - `websocket`: echo through inbound forwarding and a `CONNECT` tunnel.
//! - `redis`: opaque TCP with a real redis-server and redis-cli.
//! - `transfer`: 100 MB up and down with the proxy's RSS bounded.
//! - `bad_input`: malformed or silent clients and a resetting server.
//! - `errors`: proxy-generated errors (502/504, gRPC UNAVAILABLE/DEADLINE_EXCEEDED,
//!   `l5d-proxy-error`).
//! - `shutdown`: SIGTERM and `POST /shutdown` drain in-flight requests.
//! - `tcp`: opaque forwarding keeps half-close and counts bytes.
//! - `server_first`: a server that speaks first on a port not declared
//!   opaque (a banner) is relayed without waiting for the detect timeout,
//!   inbound, outbound and across the mesh; client-first traffic is
//!   detected as before.
//! - `config`: invalid environment is reported at once, exit 64.
//! - `metrics`: counter values after a known amount of traffic.
//! - `discovery`: outbound routing by a real `weft-controller`'s Destination
//!   answers: balancing, traffic splits, retries, timeouts, failfast, mesh-file
//!   edits and controller restarts.
//! - `outbound_policy`: outbound HTTPRoute/GRPCRoute routing by a fake
//!   OutboundPolicies server: matches, weights, gRPC, filters, timeouts,
//!   retries, failure accrual, a ServiceProfile winning, no policy, the
//!   policy server away.
//! - `authz`: inbound authorization by a fake InboundServerPolicies server's
//!   answers and the default policies: 403 / PERMISSION_DENIED, metrics, policy
//!   changes on open connections, the admin port's probes.
//! - `tap`: live tap (`Observe`) on the proxy's tap port: events per matching
//!   request until the limit, gRPC status, invalid requests, authorization.

mod admin;
mod authz;
mod bad_input;
mod client_errors;
mod config;
mod discovery;
mod errors;
mod grpc;
mod http;
mod metrics;
mod mtls;
mod outbound_policy;
mod redis;
mod resend;
mod server_first;
mod shutdown;
mod tap;
mod tcp;
mod transfer;
mod websocket;

use std::net::SocketAddr;
use std::time::Duration;

use weft_test_support::RunningProxy;

/// Generous bound for waiting on metrics that are recorded asynchronously.
const METRICS_SETTLE: Duration = Duration::from_secs(10);

/// Sends one hand-built gRPC unary request (an HTTP/2 POST) to the proxy's
/// inbound listener and returns the raw response, trailers included.
async fn raw_unary_inbound(
    proxy: &impl RunningProxy,
    message: &str,
    fail_code: tonic::Code,
) -> weft_test_support::http_client::RawResponse {
    let authority = proxy.inbound_addr().to_string();
    weft_e2e::within(
        "raw gRPC unary request through the proxy",
        Duration::from_secs(30),
        weft_test_support::http_client::send(
            proxy.inbound_addr(),
            weft_test_support::grpc::raw_unary_request(&authority, message, fail_code),
        ),
    )
    .await
    .expect("an HTTP/2 response")
}

/// `http://{addr}{path}`.
fn url(addr: SocketAddr, path: &str) -> String {
    format!("http://{addr}{path}")
}

/// `curl -x` argument for the proxy's outbound listener.
fn proxy_arg(proxy: &impl RunningProxy) -> String {
    format!("http://{}", proxy.outbound_addr())
}

/// Waits until `metric(name, labels)` reaches `expected` (or the settle time
/// passes), then asserts it is exactly `expected`.
fn assert_metric_settles(
    proxy: &impl RunningProxy,
    name: &str,
    labels: &[(&str, &str)],
    expected: f64,
) {
    let deadline = std::time::Instant::now() + METRICS_SETTLE;
    let mut value = proxy.metric(name, labels);
    while value.unwrap_or(0.0) < expected && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        value = proxy.metric(name, labels);
    }
    assert_eq!(
        value,
        Some(expected),
        "metric {name}{labels:?}: expected {expected}, got {value:?}\n--- metrics ---\n{}",
        proxy.metrics_text()
    );
}

/// Waits until `metric(name, labels)` is at least `minimum`; panics with the
/// metrics text otherwise.
fn assert_metric_reaches(
    proxy: &impl RunningProxy,
    name: &str,
    labels: &[(&str, &str)],
    minimum: f64,
) {
    let deadline = std::time::Instant::now() + METRICS_SETTLE;
    loop {
        let value = proxy.metric_or_zero(name, labels);
        if value >= minimum {
            return;
        }
        if std::time::Instant::now() >= deadline {
            panic!(
                "metric {name}{labels:?}: expected >= {minimum}, got {value}\n--- metrics ---\n{}",
                proxy.metrics_text()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The proxy still answers `/ready` and forwards a request through its
/// outbound listener to a fresh test app.
fn assert_still_serving(proxy: &impl RunningProxy) {
    let ready = proxy.admin_get("/ready").expect("GET /ready");
    assert_eq!(
        ready.status, 200,
        "proxy not ready after bad input: {}",
        ready.body
    );
    let app = weft_test_support::HttpTestServer::start();
    let out = weft_e2e::curl(&["-x", &proxy_arg(proxy), &url(app.addr(), "/")]);
    assert_eq!(
        (out.exit_code, out.http_code),
        (0, 200),
        "proxy no longer forwards after bad input: {}",
        out.stderr
    );
}

/// Waits until `count(proxy)` is at least 1; panics naming `what` and
/// printing the metrics otherwise.
fn assert_counted<P: RunningProxy>(proxy: &P, what: &str, count: impl Fn(&P) -> f64) {
    assert_eventually(proxy, &format!("{what} counted in /metrics"), |proxy| {
        count(proxy) >= 1.0
    });
}

/// Waits until `condition(proxy)` holds; panics naming `what` and printing
/// the metrics otherwise.
fn assert_eventually<P: RunningProxy>(proxy: &P, what: &str, condition: impl Fn(&P) -> bool) {
    let deadline = std::time::Instant::now() + METRICS_SETTLE;
    while !condition(proxy) {
        if std::time::Instant::now() >= deadline {
            panic!(
                "not observed: {what}\n--- metrics ---\n{}",
                proxy.metrics_text()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
