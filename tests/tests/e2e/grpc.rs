//! gRPC through inbound forwarding: unary and bidirectional streaming, with
//! `grpc-status` trailers (and non-OK statuses with their message) intact.

use std::time::Duration;

use prost::Message;
use tonic::Code;
use weft_e2e::InProcessProxy;
use weft_e2e::within;
use weft_test_support::RunningProxy;
use weft_test_support::grpc::{EchoReply, GrpcEchoClient, GrpcEchoServer};

use crate::{assert_metric_reaches, raw_unary_inbound};

const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// A gRPC echo server behind a proxy's inbound listener, and a client
/// connected through the proxy.
async fn echo_through_inbound() -> (GrpcEchoServer, InProcessProxy, GrpcEchoClient) {
    let server = GrpcEchoServer::start();
    let proxy = InProcessProxy::builder()
        .inbound_forward(server.addr())
        .start();
    let client = within(
        "connect",
        CALL_TIMEOUT,
        GrpcEchoClient::connect(proxy.inbound_addr()),
    )
    .await
    .expect("connect to the inbound listener");
    (server, proxy, client)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_unary_inbound_keeps_trailers() {
    let (_server, proxy, mut client) = echo_through_inbound().await;
    let reply = within("unary", CALL_TIMEOUT, client.unary("hello grpc", Code::Ok))
        .await
        .expect("unary call through the proxy");
    assert_eq!(reply.get_ref().message, "hello grpc");

    // On the wire: response headers, one message, then a trailers frame with grpc-status 0.
    let raw = raw_unary_inbound(&proxy, "raw call", Code::Ok).await;
    assert_eq!(raw.status, 200);
    let trailers = raw.trailers.as_ref().expect("response trailers present");
    assert_eq!(
        trailers.get("grpc-status").map(|v| v.as_bytes()),
        Some(&b"0"[..]),
        "{raw:?}"
    );
    assert!(raw.body.len() >= 5, "no gRPC message frame: {raw:?}");
    let reply = EchoReply::decode(&raw.body[5..]).expect("decode reply");
    assert_eq!(reply.message, "raw call");

    assert_metric_reaches(
        &proxy,
        "response_total",
        &[("direction", "inbound"), ("grpc_status", "0")],
        2.0,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_error_status_and_message_survive_inbound() {
    let (_server, proxy, mut client) = echo_through_inbound().await;
    let status = within(
        "unary",
        CALL_TIMEOUT,
        client.unary("resource-went-missing", Code::NotFound),
    )
    .await
    .expect_err("the server answers NOT_FOUND");
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    assert_eq!(status.message(), "resource-went-missing");

    let raw = raw_unary_inbound(&proxy, "denied-here", Code::PermissionDenied).await;
    assert_eq!(raw.status, 200);
    assert_eq!(
        raw.header_or_trailer("grpc-status").as_deref(),
        Some("7"),
        "{raw:?}"
    );
    assert_eq!(
        raw.header_or_trailer("grpc-message").as_deref(),
        Some("denied-here"),
        "{raw:?}"
    );

    assert_metric_reaches(
        &proxy,
        "response_total",
        &[
            ("direction", "inbound"),
            ("grpc_status", "5"),
            ("classification", "failure"),
        ],
        1.0,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_bidi_streaming_inbound() {
    let (_server, _proxy, mut client) = echo_through_inbound().await;

    // Ping-pong: each message is sent only after the previous reply arrived,
    // so this completes only if both directions stream through the proxy.
    let messages: Vec<String> = (0..20).map(|i| format!("ping {i}")).collect();
    let messages: Vec<&str> = messages.iter().map(String::as_str).collect();
    let outcome = within(
        "bidi stream",
        CALL_TIMEOUT,
        client.bidi_ping_pong(&messages, None),
    )
    .await
    .expect("stream starts");
    assert_eq!(outcome.replies, messages);
    assert!(
        outcome.status.is_ok(),
        "stream ended with {:?}",
        outcome.status
    );

    // A failure in the middle of the stream arrives as trailers after the replies.
    let outcome = within(
        "bidi stream with failure",
        CALL_TIMEOUT,
        client.bidi_ping_pong(
            &["one", "two", "three", "four"],
            Some(("three", Code::ResourceExhausted)),
        ),
    )
    .await
    .expect("stream starts");
    assert_eq!(outcome.replies, ["one", "two"]);
    let status = outcome.status.expect_err("stream fails at `three`");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert_eq!(status.message(), "three");
}
