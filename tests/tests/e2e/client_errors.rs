//! A client's broken request is the client's fault: a chunked body with a
//! bad chunk-size line, sent over a raw socket through the inbound and the
//! outbound (explicit) listener to an app that reads the body, is answered
//! 400 with an `l5d-proxy-error` reason (never 502 "connection to app
//! failed"), and the metrics do not count it as an app failure.
//!
//! Across the mesh (HTTP/2 with mutual TLS between the proxies) the same
//! holds on both proxies.
//!
//! ```text
//! raw TCP client ─POST /upload, chunked: "5\r\nhello\r\n" … "zz\r\n"─► weft-proxy ─► app (reads the body)
//!                ◄─ 400 l5d-proxy-error: the client's request body failed …
//! ```

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use weft_e2e::InProcessProxy;
use weft_test_support::{HttpTestServer, RunningProxy};

use crate::assert_metric_settles;

/// Sends a POST whose chunked body turns bad after a first good chunk and
/// returns what the proxy answered (until it closed the connection).
fn send_broken_chunked(proxy_listener: SocketAddr, target: &str, host: &str) -> String {
    let mut stream = TcpStream::connect(proxy_listener).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let head = format!(
        "POST {target} HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"
    );
    stream.write_all(head.as_bytes()).unwrap();
    // Let the request reach the app first: the body fails on its way there.
    std::thread::sleep(Duration::from_millis(200));
    stream.write_all(b"zz\r\nnot a chunk\r\n").unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

/// The answer was 400 with the reason; never 502.
fn assert_client_error(answer: &str) {
    assert!(
        !answer.contains(" 502 "),
        "a 502 for the client's body: {answer}"
    );
    assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
    let lower = answer.to_ascii_lowercase();
    assert!(
        lower.contains("l5d-proxy-error: the client's request body failed"),
        "{answer}"
    );
}

/// The proxy counted a 400 (a success by Linkerd's rule: the app did not
/// fail) and no failure or 502 in `direction`.
fn assert_counted_as_client_error(proxy: &InProcessProxy, direction: &str) {
    assert_metric_settles(
        proxy,
        "response_total",
        &[("direction", direction), ("status_code", "400")],
        1.0,
    );
    assert_eq!(
        proxy.metric_or_zero(
            "response_total",
            &[("direction", direction), ("classification", "failure")]
        ),
        0.0,
        "{}",
        proxy.metrics_text()
    );
    assert_eq!(
        proxy.metric_or_zero(
            "response_total",
            &[("direction", direction), ("status_code", "502")]
        ),
        0.0
    );
    assert_eq!(
        proxy.metric_or_zero(
            &format!("{direction}_http_errors_total"),
            &[("error", "i/o")]
        ),
        0.0
    );
}

#[test]
fn a_broken_chunked_body_inbound_is_a_400_not_a_502() {
    let app = HttpTestServer::start();
    let proxy = InProcessProxy::builder()
        .inbound_forward(app.addr())
        .start();
    let answer = send_broken_chunked(proxy.inbound_addr(), "/upload", "web");
    assert_client_error(&answer);
    assert!(app.requests_seen() >= 1, "the request reached the app");
    assert_counted_as_client_error(&proxy, "inbound");
}

#[test]
fn a_broken_chunked_body_outbound_is_a_400_not_a_502() {
    let app = HttpTestServer::start();
    let proxy = InProcessProxy::builder().start();
    let target = format!("http://{}/upload", app.addr());
    let answer = send_broken_chunked(proxy.outbound_addr(), &target, &app.addr().to_string());
    assert_client_error(&answer);
    assert!(app.requests_seen() >= 1, "the request reached the app");
    assert_counted_as_client_error(&proxy, "outbound");
}

#[test]
fn a_broken_chunked_body_across_the_mesh_is_the_clients_fault() {
    // Between the proxies the request travels as HTTP/2: the client proxy
    // resets the stream when the client's body turns bad, and the server
    // proxy sees its client (the other proxy) reset the stream.
    let mesh = crate::mtls::Mesh::start();
    let answer = send_broken_chunked(
        mesh.client.outbound_addr(),
        "http://web.shop.svc.cluster.local/upload",
        "web.shop.svc.cluster.local",
    );
    assert_client_error(&answer);
    assert_metric_settles(
        &mesh.client,
        "response_total",
        &[("direction", "outbound"), ("status_code", "400")],
        1.0,
    );
    for (proxy, direction) in [(&mesh.client, "outbound"), (&mesh.server, "inbound")] {
        for labels in [
            [("direction", direction), ("classification", "failure")],
            [("direction", direction), ("status_code", "502")],
        ] {
            assert_eq!(
                proxy.metric_or_zero("response_total", &labels),
                0.0,
                "{labels:?}\n{}",
                proxy.metrics_text()
            );
        }
    }
}
