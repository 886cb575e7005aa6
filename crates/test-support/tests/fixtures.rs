//! Self-tests of the fixtures, without a proxy: the test servers answer as
//! documented when talked to directly.

use std::time::Duration;

use bytes::Bytes;
use http::{Request, Version};
use http_body_util::Full;
use tonic::Code;
use weft_test_support::grpc::{GrpcEchoClient, GrpcEchoServer, raw_unary_request};
use weft_test_support::http_client::{RawEnd, connect_tunnel, raw_exchange, send};
use weft_test_support::websocket::{WsEchoServer, connect, echo_roundtrips};
use weft_test_support::{HeadersEcho, HttpTestServer, ResetServer, prom};

fn get(addr: std::net::SocketAddr, path: &str, version: Version) -> Request<Full<Bytes>> {
    Request::builder()
        .uri(format!("http://{addr}{path}"))
        .version(version)
        .header("X-Mixed-Case", "yes")
        .body(Full::new(Bytes::new()))
        .unwrap()
}

#[tokio::test]
async fn http_server_endpoints() {
    let app = HttpTestServer::start();
    let addr = app.addr();

    let h1 = send(addr, get(addr, "/headers", Version::HTTP_11))
        .await
        .unwrap();
    let echo = HeadersEcho::from_json(std::str::from_utf8(&h1.body).unwrap()).unwrap();
    assert_eq!(echo.version, "HTTP/1.1");
    assert_eq!(echo.request_line.as_deref(), Some("GET /headers HTTP/1.1"));
    assert_eq!(echo.host(), Some(addr.to_string().as_str()));

    // Original header-name case survives for HTTP/1 (hyper's client lower-cases, so go raw).
    let raw = raw_exchange(
        addr,
        b"GET /headers HTTP/1.1\r\nHost: h\r\nX-Mixed-Case: yes\r\nConnection: close\r\n\r\n",
        Duration::from_secs(5),
    );
    let body = raw
        .text()
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap();
    let echo = HeadersEcho::from_json(&body).unwrap();
    assert_eq!(
        echo.headers[1],
        ("X-Mixed-Case".to_string(), "yes".to_string()),
        "{echo:?}"
    );

    let h2 = send(addr, get(addr, "/headers", Version::HTTP_2))
        .await
        .unwrap();
    let echo = HeadersEcho::from_json(std::str::from_utf8(&h2.body).unwrap()).unwrap();
    assert_eq!(echo.version, "HTTP/2.0");
    assert_eq!(echo.authority.as_deref(), Some(addr.to_string().as_str()));

    let bytes = send(addr, get(addr, "/bytes/200000", Version::HTTP_11))
        .await
        .unwrap();
    assert_eq!(bytes.body.len(), 200_000);
    let status = send(addr, get(addr, "/status/503", Version::HTTP_2))
        .await
        .unwrap();
    assert_eq!(status.status, 503);

    let mut upload = get(addr, "/upload", Version::HTTP_11);
    *upload.method_mut() = http::Method::POST;
    *upload.body_mut() = Full::new(Bytes::from(vec![0u8; 12345]));
    let upload = send(addr, upload).await.unwrap();
    assert_eq!(std::str::from_utf8(&upload.body).unwrap().trim(), "12345");

    let mut echo_req = get(addr, "/echo", Version::HTTP_2);
    *echo_req.method_mut() = http::Method::POST;
    *echo_req.body_mut() = Full::new(Bytes::from_static(b"round trip"));
    assert_eq!(send(addr, echo_req).await.unwrap().body, "round trip");
    assert!(app.requests_seen() >= 6);
}

#[test]
fn reset_server_resets_mid_response() {
    let server = ResetServer::start();
    let exchange = raw_exchange(
        server.addr(),
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        Duration::from_secs(5),
    );
    assert_eq!(exchange.status(), Some(200));
    assert!(
        exchange.text().ends_with("0123456789"),
        "{:?}",
        exchange.text()
    );
    assert_eq!(exchange.end, RawEnd::Reset);
}

#[tokio::test]
async fn grpc_echo_direct() {
    let server = GrpcEchoServer::start();
    let mut client = GrpcEchoClient::connect(server.addr()).await.unwrap();
    assert_eq!(
        client
            .unary("hi", Code::Ok)
            .await
            .unwrap()
            .get_ref()
            .message,
        "hi"
    );
    let status = client.unary("nope", Code::NotFound).await.unwrap_err();
    assert_eq!((status.code(), status.message()), (Code::NotFound, "nope"));
    let outcome = client.bidi_ping_pong(&["a", "b", "c"], None).await.unwrap();
    assert_eq!(outcome.replies, ["a", "b", "c"]);
    assert!(outcome.status.is_ok());
    let outcome = client
        .bidi_ping_pong(&["a", "b", "c"], Some(("b", Code::Aborted)))
        .await
        .unwrap();
    assert_eq!(outcome.replies, ["a"]);
    assert_eq!(outcome.status.unwrap_err().code(), Code::Aborted);

    let raw = send(
        server.addr(),
        raw_unary_request(&server.addr().to_string(), "x", Code::Ok),
    )
    .await
    .unwrap();
    assert_eq!(raw.trailers.unwrap().get("grpc-status").unwrap(), "0");
}

#[tokio::test]
async fn websocket_echo_direct() {
    let server = WsEchoServer::start();
    let mut ws = connect(server.addr(), "/").await.unwrap();
    echo_roundtrips(&mut ws, 3).await.unwrap();
    // A CONNECT to something that is not a proxy fails cleanly rather than hanging.
    assert!(connect_tunnel(server.addr(), "127.0.0.1:1").await.is_err());
}

#[test]
fn prometheus_parser_handles_openmetrics() {
    let samples = prom::parse("# TYPE a counter\na_total{x=\"1\"} 2\na_total{x=\"2\"} 3\n# EOF\n");
    assert_eq!(prom::sum(&samples, "a_total", &[]), Some(5.0));
}
