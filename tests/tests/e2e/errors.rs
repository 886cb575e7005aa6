//! Proxy-generated errors: refused targets and unresolvable names answer
//! 502 (or gRPC UNAVAILABLE, trailers-only) with an `l5d-proxy-error` reason.

use std::net::SocketAddr;
use std::time::Duration;

use tonic::Code;
use weft_e2e::InProcessProxy;
use weft_e2e::curl;
use weft_test_support::{HttpTestServer, RunningProxy, free_addr};

use crate::{assert_counted, proxy_arg, raw_unary_inbound, url};

/// A loopback address where nothing listens.
fn refused_addr() -> SocketAddr {
    let addr = free_addr();
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "{addr} unexpectedly accepts connections"
    );
    addr
}

fn assert_proxy_error_502(out: &weft_e2e::CurlOutput) {
    assert_eq!(out.exit_code, 0, "curl failed: {}", out.stderr);
    assert_eq!(
        out.http_code, 502,
        "expected 502, got {} with {:?}",
        out.http_code, out.headers
    );
    let reason = out.header("l5d-proxy-error").unwrap_or_default();
    assert!(
        !reason.is_empty(),
        "502 without an l5d-proxy-error reason: {:?}",
        out.headers
    );
}

#[test]
fn refused_target_outbound_is_502_with_proxy_error() {
    let proxy = InProcessProxy::builder().start();
    let target = refused_addr();
    assert_proxy_error_502(&curl(&["-x", &proxy_arg(&proxy), &url(target, "/")]));
    assert_counted(&proxy, "an outbound refused connection", |proxy| {
        proxy.metric_or_zero("outbound_http_errors_total", &[])
    });
    // The proxy still forwards to a live target.
    let app = HttpTestServer::start();
    let out = curl(&["-x", &proxy_arg(&proxy), &url(app.addr(), "/")]);
    assert_eq!(out.http_code, 200, "{}", out.stderr);
}

#[test]
fn refused_target_inbound_is_502_with_proxy_error() {
    let proxy = InProcessProxy::builder()
        .inbound_forward(refused_addr())
        .start();
    assert_proxy_error_502(&curl(&[&url(proxy.inbound_addr(), "/")]));
    assert_proxy_error_502(&curl(&[
        "--http2-prior-knowledge",
        &url(proxy.inbound_addr(), "/"),
    ]));
    assert_counted(&proxy, "an inbound refused connection", |proxy| {
        proxy.metric_or_zero("inbound_http_errors_total", &[])
    });
}

/// Sends a gRPC unary request to the proxy's inbound listener and checks the
/// proxy answered it itself: HTTP 200, `grpc-status: expected` in a
/// trailers-only response (no body), and an `l5d-proxy-error` reason.
async fn assert_grpc_proxy_error(proxy: &InProcessProxy, expected: Code) {
    let response = raw_unary_inbound(proxy, "anyone there", Code::Ok).await;
    assert_eq!(
        response.status, 200,
        "gRPC errors are HTTP 200: {response:?}"
    );
    // Trailers-only: grpc-status in the response headers, no message body.
    let status = response
        .headers
        .get("grpc-status")
        .map(|v| v.to_str().unwrap_or_default().to_string());
    let expected_code = (expected as i32).to_string();
    assert_eq!(
        status.as_deref(),
        Some(expected_code.as_str()),
        "expected {expected:?} in the headers: {response:?}"
    );
    assert!(
        response.body.is_empty(),
        "trailers-only response carried a body: {response:?}"
    );
    assert!(
        response.headers.contains_key("l5d-proxy-error"),
        "no l5d-proxy-error: {response:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_target_grpc_is_unavailable_trailers_only() {
    let proxy = InProcessProxy::builder()
        .inbound_forward(refused_addr())
        .start();
    assert_grpc_proxy_error(&proxy, Code::Unavailable).await;
}

#[test]
fn unresolvable_host_outbound_is_502_with_reason() {
    let proxy = InProcessProxy::builder().start();
    // A DNS label longer than 63 bytes cannot be encoded in a query, so the
    // system resolver fails locally: no packet leaves the machine.
    let unresolvable = format!("http://{}.invalid/", "a".repeat(64));
    let out = curl(&["-x", &proxy_arg(&proxy), &unresolvable]);
    assert_proxy_error_502(&out);
    assert_counted(&proxy, "an unresolvable host", |proxy| {
        proxy.metric_or_zero("outbound_http_errors_total", &[])
    });
}

#[test]
fn origin_form_request_on_outbound_is_400_with_reason() {
    let proxy = InProcessProxy::builder().start();
    // Not a proxy request: no absolute URI, no CONNECT.
    let exchange = weft_test_support::http_client::raw_exchange(
        proxy.outbound_addr(),
        b"GET /some/path HTTP/1.1\r\nHost: 127.0.0.1:1\r\nConnection: close\r\n\r\n",
        Duration::from_secs(15),
    );
    assert_eq!(exchange.status(), Some(400), "{}", exchange.text());
    assert!(
        exchange
            .text()
            .to_ascii_lowercase()
            .contains("\r\nl5d-proxy-error: "),
        "400 without an l5d-proxy-error reason: {}",
        exchange.text()
    );
    assert_counted(&proxy, "a malformed proxy request", |proxy| {
        proxy.metric_or_zero("outbound_http_errors_total", &[])
    });
}

/// A loopback listener whose accept queue is full: further connection
/// attempts get no answer, the way an overloaded or firewalled target
/// behaves, without sending anything off the machine.
struct UnansweringTarget {
    addr: SocketAddr,
    _listener: socket2::Socket,
    _queued: std::net::TcpStream,
}

impl UnansweringTarget {
    fn start() -> Self {
        use socket2::{Domain, Socket, Type};
        let listener = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
        listener
            .bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
            .expect("bind");
        // A backlog of 0 holds one connection; it is never accepted.
        listener.listen(0).expect("listen");
        let addr = listener
            .local_addr()
            .expect("local addr")
            .as_socket()
            .expect("IP address");
        let queued = std::net::TcpStream::connect(addr).expect("fill the accept queue");
        UnansweringTarget {
            addr,
            _listener: listener,
            _queued: queued,
        }
    }
}

#[test]
fn connect_timeout_outbound_is_504_with_reason() {
    let target = UnansweringTarget::start();
    let proxy = InProcessProxy::builder()
        .env("WEFT_PROXY_OUTBOUND_CONNECT_TIMEOUT", "200ms")
        .start();
    let out = curl(&["-x", &proxy_arg(&proxy), &url(target.addr, "/")]);
    assert_eq!(out.exit_code, 0, "curl failed: {}", out.stderr);
    assert_eq!(out.http_code, 504, "{:?}", out.headers);
    let reason = out.header("l5d-proxy-error").unwrap_or_default();
    assert!(
        reason.contains("timed out after 200ms"),
        "reason: {reason:?}"
    );
    assert_counted(&proxy, "a connect timeout", |proxy| {
        proxy.metric_or_zero(
            "outbound_http_errors_total",
            &[("error", "connect timeout")],
        )
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_timeout_grpc_is_deadline_exceeded() {
    let target = UnansweringTarget::start();
    let proxy = InProcessProxy::builder()
        .inbound_forward(target.addr)
        .env("WEFT_PROXY_INBOUND_CONNECT_TIMEOUT", "200ms")
        .start();
    assert_grpc_proxy_error(&proxy, Code::DeadlineExceeded).await;
}
