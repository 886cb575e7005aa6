//! One-shot HTTP clients for looking at exactly what goes over the wire.
//!
//! - [`send`]: one request on a fresh HTTP/1.1 or HTTP/2 (prior knowledge)
//!   connection, returning status, headers, whole body and trailers.
//! - [`connect_tunnel`]: an HTTP `CONNECT` tunnel through a proxy.
//! - [`raw_exchange`]: write arbitrary bytes, read whatever comes back until
//!   close, reset or timeout (for malformed-input tests).

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode, Version};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::BoxError;

/// A complete response.
#[derive(Debug, Clone)]
pub struct RawResponse {
    /// Status code.
    pub status: StatusCode,
    /// Protocol version.
    pub version: Version,
    /// Response headers.
    pub headers: HeaderMap,
    /// Whole body.
    pub body: Bytes,
    /// Trailers, if any were sent.
    pub trailers: Option<HeaderMap>,
}

impl RawResponse {
    /// Header (or, failing that, trailer) `name` as text.
    pub fn header_or_trailer(&self, name: &str) -> Option<String> {
        let value = self
            .headers
            .get(name)
            .or_else(|| self.trailers.as_ref().and_then(|t| t.get(name)))?;
        Some(String::from_utf8_lossy(value.as_bytes()).into_owned())
    }
}

/// Sends `request` on a new connection to `addr`, using the request's
/// version (`HTTP_2` = prior knowledge, anything else HTTP/1.1).
///
/// HTTP/1.1 requests are sent in origin form with a `Host` header taken from
/// the URI authority unless one is set.
pub async fn send(
    addr: SocketAddr,
    request: Request<Full<Bytes>>,
) -> Result<RawResponse, BoxError> {
    let stream = TcpStream::connect(addr).await?;
    let io = TokioIo::new(stream);
    let response = if request.version() == Version::HTTP_2 {
        let (mut sender, connection) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), io).await?;
        tokio::spawn(connection);
        sender.send_request(request).await?
    } else {
        let (mut sender, connection) = hyper::client::conn::http1::handshake(io).await?;
        tokio::spawn(connection);
        let (mut parts, body) = request.into_parts();
        if let Some(authority) = parts.uri.authority()
            && !parts.headers.contains_key(http::header::HOST)
        {
            let host = authority.as_str().parse()?;
            parts.headers.insert(http::header::HOST, host);
        }
        if parts.uri.authority().is_some() {
            let origin = parts
                .uri
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .to_string();
            parts.uri = origin.parse()?;
        }
        sender
            .send_request(Request::from_parts(parts, body))
            .await?
    };
    let (parts, body) = response.into_parts();
    let collected = body.collect().await?;
    let trailers = collected.trailers().cloned();
    Ok(RawResponse {
        status: parts.status,
        version: parts.version,
        headers: parts.headers,
        body: collected.to_bytes(),
        trailers,
    })
}

/// Opens a `CONNECT target` tunnel through the HTTP proxy at `proxy`.
pub async fn connect_tunnel(proxy: SocketAddr, target: &str) -> Result<TcpStream, BoxError> {
    let mut stream = TcpStream::connect(proxy).await?;
    let request = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    // Read the response head one byte at a time so nothing after it is consumed.
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let byte = stream.read_u8().await?;
        head.push(byte);
        if head.len() > 64 * 1024 {
            return Err("CONNECT response head too long".into());
        }
    }
    let text = String::from_utf8_lossy(&head);
    let status_line = text.lines().next().unwrap_or_default();
    if status_line.split_whitespace().nth(1) != Some("200") {
        return Err(format!("CONNECT {target} refused: {text}").into());
    }
    Ok(stream)
}

/// How a [`raw_exchange`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawEnd {
    /// The peer closed the connection (FIN).
    Closed,
    /// The connection was reset (or writing failed because the peer closed).
    Reset,
    /// Nothing more arrived within the timeout and the connection stayed open.
    TimedOut,
}

/// The result of [`raw_exchange`].
#[derive(Debug, Clone)]
pub struct RawExchange {
    /// Everything read.
    pub received: Vec<u8>,
    /// How it ended.
    pub end: RawEnd,
    /// Whether writing the input failed (peer closed or reset early).
    pub write_failed: bool,
}

impl RawExchange {
    /// The status code if what was received starts with an HTTP/1 status line.
    pub fn status(&self) -> Option<u16> {
        let text = String::from_utf8_lossy(&self.received);
        let line = text.lines().next()?;
        if !line.starts_with("HTTP/1.") {
            return None;
        }
        line.split_whitespace().nth(1)?.parse().ok()
    }

    /// What was received, as lossy text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.received).into_owned()
    }
}

/// Connects to `addr`, writes `input` (if any), half-closes nothing, and
/// reads until the peer closes, resets, or `timeout` passes.
pub fn raw_exchange(addr: SocketAddr, input: &[u8], timeout: Duration) -> RawExchange {
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    stream
        .set_write_timeout(Some(timeout))
        .expect("write timeout");
    let write_failed = stream.write_all(input).is_err();
    let deadline = Instant::now() + timeout;
    let mut received = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    let end = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break RawEnd::TimedOut;
        }
        stream.set_read_timeout(Some(left)).expect("read timeout");
        match stream.read(&mut buf) {
            Ok(0) => break RawEnd::Closed,
            Ok(n) => received.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                break RawEnd::TimedOut;
            }
            Err(_) => break RawEnd::Reset,
        }
    };
    RawExchange {
        received,
        end,
        write_failed,
    }
}
