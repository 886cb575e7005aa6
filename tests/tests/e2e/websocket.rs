//! WebSocket echo through inbound forwarding (HTTP/1.1 upgrade) and through
//! a `CONNECT` tunnel on the outbound listener.

use std::time::Duration;

use weft_e2e::InProcessProxy;
use weft_e2e::within;
use weft_test_support::RunningProxy;
use weft_test_support::http_client::connect_tunnel;
use weft_test_support::websocket::{WsEchoServer, connect, echo_roundtrips, handshake};

const WS_TIMEOUT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_echo_inbound_forwarding() {
    let server = WsEchoServer::start();
    let proxy = InProcessProxy::builder()
        .inbound_forward(server.addr())
        .start();
    let mut ws = within(
        "websocket handshake",
        WS_TIMEOUT,
        connect(proxy.inbound_addr(), "/chat"),
    )
    .await
    .expect("websocket upgrade through the inbound listener");
    within("websocket echo", WS_TIMEOUT, echo_roundtrips(&mut ws, 10))
        .await
        .expect("echo through the inbound listener");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_echo_through_connect_tunnel() {
    let server = WsEchoServer::start();
    let proxy = InProcessProxy::builder().start();
    let target = server.addr().to_string();
    let tunnel = within(
        "CONNECT",
        WS_TIMEOUT,
        connect_tunnel(proxy.outbound_addr(), &target),
    )
    .await
    .expect("CONNECT tunnel through the outbound listener");
    let mut ws = within(
        "websocket handshake",
        WS_TIMEOUT,
        handshake(tunnel, &target, "/chat"),
    )
    .await
    .expect("websocket upgrade inside the tunnel");
    within("websocket echo", WS_TIMEOUT, echo_roundtrips(&mut ws, 10))
        .await
        .expect("echo through the tunnel");
}
