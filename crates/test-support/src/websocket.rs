//! WebSocket echo server and client helpers (tokio-tungstenite).
//!
//! The server echoes every text and binary message. Clients connect over a
//! plain TCP stream, directly or through a `CONNECT` tunnel
//! ([`crate::http_client::connect_tunnel`]), so the test decides the route.

use std::net::SocketAddr;

use futures::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

use crate::BoxError;
use crate::background::BackgroundServer;

/// The WebSocket echo server; stopped when dropped.
pub struct WsEchoServer {
    server: BackgroundServer,
}

impl WsEchoServer {
    /// Starts the server on `127.0.0.1:<free port>`.
    pub fn start() -> Self {
        Self {
            server: BackgroundServer::start("ws-echo-server", accept_loop),
        }
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }
}

async fn accept_loop(listener: TcpListener) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(async move {
            let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
                return;
            };
            while let Some(Ok(message)) = ws.next().await {
                if (message.is_text() || message.is_binary()) && ws.send(message).await.is_err() {
                    return;
                }
            }
        });
    }
}

/// Performs the WebSocket handshake for `ws://{host}{path}` over `stream`.
pub async fn handshake(
    stream: TcpStream,
    host: &str,
    path: &str,
) -> Result<WebSocketStream<TcpStream>, BoxError> {
    let (ws, _response) =
        tokio_tungstenite::client_async(format!("ws://{host}{path}"), stream).await?;
    Ok(ws)
}

/// Connects to `addr` and performs the handshake for `ws://{addr}{path}`.
pub async fn connect(addr: SocketAddr, path: &str) -> Result<WebSocketStream<TcpStream>, BoxError> {
    handshake(TcpStream::connect(addr).await?, &addr.to_string(), path).await
}

/// Sends `count` text and `count` binary messages one at a time and checks
/// each echo; then closes the connection cleanly.
pub async fn echo_roundtrips(
    ws: &mut WebSocketStream<TcpStream>,
    count: usize,
) -> Result<(), BoxError> {
    for i in 0..count {
        let sent = [
            Message::text(format!("hello {i}")),
            Message::binary(vec![i as u8; 1000 + i]),
        ];
        for message in sent {
            ws.send(message.clone()).await?;
            let echoed = ws
                .next()
                .await
                .ok_or("websocket closed before the echo")??;
            if echoed != message {
                return Err(format!("echo mismatch: sent {message:?}, got {echoed:?}").into());
            }
        }
    }
    ws.close(None).await?;
    Ok(())
}
