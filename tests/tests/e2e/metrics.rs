//! Metric values after a known amount of traffic, with the contract's
//! label names and values.

use weft_e2e::InProcessProxy;
use weft_e2e::curl;
use weft_test_support::{HttpTestServer, RunningProxy};

use crate::{assert_metric_reaches, assert_metric_settles, proxy_arg, url};

#[test]
fn ten_outbound_requests_are_counted() {
    let app = HttpTestServer::start();
    let proxy = InProcessProxy::builder().start();
    for _ in 0..10 {
        // One curl process per request: ten accepted connections.
        let out = curl(&["-x", &proxy_arg(&proxy), &url(app.addr(), "/")]);
        assert_eq!((out.exit_code, out.http_code), (0, 200), "{}", out.stderr);
    }
    let app_addr = app.addr().to_string();
    let app_port = app.addr().port().to_string();
    let route = [
        ("direction", "outbound"),
        ("authority", app_addr.as_str()),
        ("target_addr", app_addr.as_str()),
        ("target_ip", "127.0.0.1"),
        ("target_port", app_port.as_str()),
    ];
    let with = |extra: &[(&'static str, &'static str)]| -> Vec<(&str, &str)> {
        route.iter().copied().chain(extra.iter().copied()).collect()
    };
    assert_metric_settles(&proxy, "request_total", &route, 10.0);
    assert_metric_settles(
        &proxy,
        "request_total",
        &with(&[("tls", "no_identity")]),
        10.0,
    );
    assert_metric_settles(
        &proxy,
        "response_total",
        &with(&[("status_code", "200"), ("classification", "success")]),
        10.0,
    );
    assert_metric_settles(
        &proxy,
        "response_latency_ms_count",
        &with(&[("status_code", "200")]),
        10.0,
    );
    assert_metric_settles(
        &proxy,
        "tcp_open_total",
        &[("direction", "outbound"), ("peer", "src")],
        10.0,
    );
    assert_metric_reaches(
        &proxy,
        "tcp_open_total",
        &[
            ("direction", "outbound"),
            ("peer", "dst"),
            ("target_addr", app_addr.as_str()),
        ],
        1.0,
    );
    assert_eq!(app.requests_seen(), 10);
    assert!(proxy.metric_or_zero("process_resident_memory_bytes", &[]) > 0.0);
    assert!(proxy.metric_or_zero("process_start_time_seconds", &[]) > 0.0);
}

#[test]
fn inbound_server_errors_are_failures() {
    let app = HttpTestServer::start();
    let proxy = InProcessProxy::builder()
        .inbound_forward(app.addr())
        .start();
    for path in ["/status/500", "/status/500", "/status/500", "/status/404"] {
        let out = curl(&[&url(proxy.inbound_addr(), path)]);
        assert_eq!(out.exit_code, 0, "{}", out.stderr);
    }
    let app_addr = app.addr().to_string();
    let inbound = proxy.inbound_addr().to_string();
    let route = [
        ("direction", "inbound"),
        ("target_addr", app_addr.as_str()),
        ("authority", inbound.as_str()),
    ];
    let with = |extra: &[(&'static str, &'static str)]| -> Vec<(&str, &str)> {
        route.iter().copied().chain(extra.iter().copied()).collect()
    };
    assert_metric_settles(&proxy, "request_total", &route, 4.0);
    assert_metric_settles(
        &proxy,
        "response_total",
        &with(&[("status_code", "500"), ("classification", "failure")]),
        3.0,
    );
    assert_metric_settles(
        &proxy,
        "response_total",
        &with(&[("status_code", "404"), ("classification", "success")]),
        1.0,
    );
    assert_metric_settles(
        &proxy,
        "tcp_open_total",
        &[("direction", "inbound"), ("peer", "src")],
        4.0,
    );
}
