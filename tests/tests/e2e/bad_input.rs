//! Bad input on the inbound listener: each gets a clean outcome (an error
//! response or a close, never a hang), is visible in `/metrics`, and the
//! proxy keeps serving afterwards.

use std::time::Duration;

use weft_e2e::curl;
use weft_test_support::http_client::{RawEnd, raw_exchange};
use weft_test_support::{HttpTestServer, ProxyProcess, ResetServer};

use crate::{assert_counted, assert_eventually, assert_metric_reaches, assert_still_serving, url};

/// No clean outcome within this is a hang.
const HANG: Duration = Duration::from_secs(15);

fn inbound_proxy(app: &HttpTestServer) -> ProxyProcess {
    ProxyProcess::builder().inbound_forward(app.addr()).spawn()
}

/// Total of the families where a rejected or non-HTTP inbound connection shows up.
fn inbound_http_errors(proxy: &ProxyProcess) -> f64 {
    proxy.metric_or_zero("inbound_http_errors_total", &[])
}

#[test]
fn garbage_bytes_inbound() {
    let app = HttpTestServer::start();
    let proxy = inbound_proxy(&app);
    let garbage: Vec<u8> = (0u32..4096)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let exchange = raw_exchange(proxy.inbound_addr(), &garbage, HANG);
    // Not HTTP: detected as opaque and forwarded to the app, whose HTTP server
    // rejects it; either way the connection must end.
    assert_ne!(
        exchange.end,
        RawEnd::TimedOut,
        "garbage input hung: got {:?}",
        exchange.text()
    );
    if let Some(status) = exchange.status() {
        assert_eq!(status, 400, "{}", exchange.text());
    }
    assert_metric_reaches(
        &proxy,
        "tcp_detect_total",
        &[("direction", "inbound"), ("result", "opaque")],
        1.0,
    );
    assert_still_serving(&proxy);
}

#[test]
fn invalid_request_line_inbound() {
    let app = HttpTestServer::start();
    let proxy = inbound_proxy(&app);
    let exchange = raw_exchange(
        proxy.inbound_addr(),
        b"GET /a b c HTTP/1.1 trailing-junk\r\nHost: 127.0.0.1\r\n\r\n",
        HANG,
    );
    assert_ne!(
        exchange.end,
        RawEnd::TimedOut,
        "invalid request line hung: {:?}",
        exchange.text()
    );
    if !exchange.received.is_empty() {
        assert_eq!(
            exchange.status(),
            Some(400),
            "expected a 400: {:?}",
            exchange.text()
        );
    }
    assert_counted(&proxy, "an invalid request line", |proxy| {
        inbound_http_errors(proxy)
            + proxy.metric_or_zero(
                "tcp_detect_total",
                &[("direction", "inbound"), ("result", "opaque")],
            )
            + proxy.metric_or_zero(
                "tcp_detect_total",
                &[("direction", "inbound"), ("result", "http_malformed")],
            )
            + proxy.metric_or_zero(
                "tcp_detect_total",
                &[("direction", "inbound"), ("result", "error")],
            )
    });
    assert_still_serving(&proxy);
}

#[test]
fn one_megabyte_of_headers_inbound() {
    let app = HttpTestServer::start();
    let proxy = inbound_proxy(&app);
    let mut request = b"GET /headers HTTP/1.1\r\nHost: 127.0.0.1\r\n".to_vec();
    let filler = "f".repeat(1000);
    for i in 0..1024 {
        request.extend_from_slice(format!("X-Filler-{i}: {filler}\r\n").as_bytes());
    }
    request.extend_from_slice(b"\r\n");
    let exchange = raw_exchange(proxy.inbound_addr(), &request, HANG);
    assert_ne!(
        exchange.end,
        RawEnd::TimedOut,
        "1 MB of headers hung: {:?}",
        exchange.text()
    );
    if let Some(status) = exchange.status() {
        assert!(
            matches!(status, 400 | 431),
            "expected 400 or 431, got {}",
            exchange.text()
        );
    }
    assert_eq!(
        app.requests_seen(),
        0,
        "the 1 MB header block reached the app"
    );
    assert_counted(&proxy, "1 MB of request headers", |proxy| {
        inbound_http_errors(proxy)
            + proxy.metric_or_zero(
                "tcp_detect_total",
                &[("direction", "inbound"), ("result", "error")],
            )
    });
    // Logged at the default level, naming the client.
    weft_test_support::eventually(Duration::from_secs(10), || {
        proxy.log().contains("malformed HTTP request")
    });
    assert_still_serving(&proxy);
}

#[test]
fn silent_client_hits_detect_timeout() {
    let app = HttpTestServer::start();
    let proxy = ProxyProcess::builder()
        .inbound_forward(app.addr())
        .env("WEFT_PROXY_DETECT_TIMEOUT", "300ms")
        .spawn();
    let client = std::net::TcpStream::connect(proxy.inbound_addr()).expect("connect");
    // After the detect timeout the connection is forwarded as opaque TCP.
    assert_metric_reaches(
        &proxy,
        "tcp_detect_total",
        &[("direction", "inbound"), ("result", "timeout")],
        1.0,
    );
    assert_metric_reaches(
        &proxy,
        "tcp_open_total",
        &[("direction", "inbound"), ("peer", "dst")],
        1.0,
    );
    drop(client);
    // Once the client leaves, no connection is left open.
    assert_metric_reaches(
        &proxy,
        "tcp_close_total",
        &[("direction", "inbound"), ("peer", "src")],
        1.0,
    );
    assert_eventually(
        &proxy,
        "tcp_open_connections{direction=inbound} back to 0",
        |proxy| proxy.metric_or_zero("tcp_open_connections", &[("direction", "inbound")]) == 0.0,
    );
    assert_still_serving(&proxy);
}

#[test]
fn server_reset_mid_response_inbound() {
    let reset = ResetServer::start();
    let proxy = ProxyProcess::builder()
        .inbound_forward(reset.addr())
        .spawn();
    let out = curl(&[&url(proxy.inbound_addr(), "/")]);
    // curl must see an error (partial body / reset), not a timeout (28) and not success.
    assert_ne!(
        out.exit_code, 0,
        "a truncated response was delivered as complete: {out:?}"
    );
    assert_ne!(
        out.exit_code, 28,
        "curl timed out: the proxy hung on the reset: {out:?}"
    );
    assert!(
        reset.connections_seen() >= 1,
        "the request never reached the resetting server"
    );
    assert_counted(&proxy, "a response reset mid-body", |proxy| {
        inbound_http_errors(proxy)
            + proxy.metric_or_zero(
                "response_total",
                &[("direction", "inbound"), ("classification", "failure")],
            )
    });
    assert_still_serving(&proxy);
}
