//! The HTTP test app and a misbehaving raw-TCP server.
//!
//! [`HttpTestServer`] serves HTTP/1.1 and h2c (prior knowledge) on one port:
//!
//! | Path | Answer |
//! |---|---|
//! | `/` | 200, a short text |
//! | `/echo` | 200, streams the request body back |
//! | `/status/{code}` | that status, a short text |
//! | `/bytes/{n}` | 200, `n` bytes streamed in 64 KiB chunks (never buffered) |
//! | `/upload` | 200, the number of request body bytes received |
//! | `/headers` | 200, the request line, version and headers as JSON ([`HeadersEcho`]) |
//! | `/slow/{ms}` | 200 after `ms` milliseconds |
//!
//! For HTTP/1.x `/headers` reports header names with their original case and
//! order, taken from the raw bytes read on the connection (hyper lower-cases
//! names), so tests can see exactly what the proxy sent.
//!
//! [`HttpTestServer::start_with`] adds a [`Behavior`] applied to every request
//! before the table above: a fixed added delay, and a deterministic share of
//! requests answered `500` (evenly spread: `fail(3, 10)` fails requests 3, 6,
//! 9, 13, ... counting from 0).
//!
//! [`ResetServer`] answers every request with a status line, headers with
//! `content-length: 1000`, 10 body bytes, and then resets the connection.

use std::convert::Infallible;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody, combinators::UnsyncBoxBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

use crate::BoxError;
use crate::background::BackgroundServer;

/// Response body type of the test servers.
pub type ResponseBody = UnsyncBoxBody<Bytes, BoxError>;

/// Raw bytes kept per connection for `/headers` (a rolling window).
const RECORD_KEEP: usize = 1 << 20;

/// The HTTP/1.1 + h2c test app; stopped when dropped.
pub struct HttpTestServer {
    server: BackgroundServer,
    counters: Arc<Counters>,
}

/// What every request goes through before the path table: an added delay,
/// then (for a deterministic share of requests) a `500`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Behavior {
    delay: Duration,
    /// `(failures, period)`: `failures` of every `period` requests fail.
    failures: Option<(u64, u64)>,
}

impl Behavior {
    /// No delay, no failures: the plain app.
    pub fn new() -> Self {
        Self::default()
    }

    /// Waits `delay` before answering every request.
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// Answers `500` (after reading the request body) to `failures` out of
    /// every `period` requests, spread evenly over the count of requests
    /// received (not random, so a run is repeatable). `fail(1, 1)` fails
    /// everything.
    pub fn fail(mut self, failures: u64, period: u64) -> Self {
        assert!(
            period > 0 && failures <= period,
            "fail({failures}, {period}): need 0 <= failures <= period > 0"
        );
        self.failures = Some((failures, period));
        self
    }

    /// Whether request number `n` (counting from 0) is answered `500`:
    /// when `⌊(n+1)·f/p⌋ > ⌊n·f/p⌋`, so failures never bunch up.
    pub fn fails(&self, n: u64) -> bool {
        match self.failures {
            None => false,
            Some((failures, period)) => {
                let n = u128::from(n);
                let (failures, period) = (u128::from(failures), u128::from(period));
                (n + 1) * failures / period > n * failures / period
            }
        }
    }
}

/// Counts shared between an [`HttpTestServer`] handle and its connections.
#[derive(Debug, Default)]
struct Counters {
    requests: AtomicU64,
    failures: AtomicU64,
    behavior: Behavior,
}

impl HttpTestServer {
    /// Starts the app on `127.0.0.1:<free port>`.
    pub fn start() -> Self {
        Self::start_with(Behavior::new())
    }

    /// Starts the app with `behavior` applied to every request.
    pub fn start_with(behavior: Behavior) -> Self {
        let counters = Arc::new(Counters {
            behavior,
            ..Counters::default()
        });
        let shared = counters.clone();
        let server = BackgroundServer::start("http-test-server", move |listener| {
            accept_loop(listener, shared)
        });
        Self { server, counters }
    }

    /// The address the app listens on.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.server.addr()
    }

    /// Requests received so far.
    pub fn requests_seen(&self) -> u64 {
        self.counters.requests.load(Ordering::SeqCst)
    }

    /// Requests answered with the [`Behavior`]'s injected `500` so far.
    pub fn failures_answered(&self) -> u64 {
        self.counters.failures.load(Ordering::SeqCst)
    }
}

async fn accept_loop(listener: TcpListener, counters: Arc<Counters>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let recorder = Recorder::default();
        let io = TokioIo::new(RecordingIo {
            inner: stream,
            recorder: recorder.clone(),
        });
        let counters = counters.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request: Request<Incoming>| {
                let n = counters.requests.fetch_add(1, Ordering::SeqCst);
                let behavior = counters.behavior;
                let counters = counters.clone();
                let recorder = recorder.clone();
                async move {
                    if !behavior.delay.is_zero() {
                        tokio::time::sleep(behavior.delay).await;
                    }
                    if behavior.fails(n) {
                        // Read the request first, as a well-behaved app does:
                        // an early answer races the client's body upload.
                        let _ = request.into_body().collect().await;
                        counters.failures.fetch_add(1, Ordering::SeqCst);
                        return Ok(text(
                            StatusCode::INTERNAL_SERVER_ERROR,
                            "injected failure\n",
                        ));
                    }
                    handle(request, recorder).await
                }
            });
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection_with_upgrades(io, service)
                .await;
        });
    }
}

async fn handle(
    request: Request<Incoming>,
    recorder: Recorder,
) -> Result<Response<ResponseBody>, Infallible> {
    let path = request.uri().path().to_string();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let response = match segments.as_slice() {
        [""] => text(StatusCode::OK, "hello from weft test server\n"),
        ["echo"] => Response::new(request.into_body().map_err(BoxError::from).boxed_unsync()),
        ["status", code] => match code
            .parse::<u16>()
            .ok()
            .and_then(|c| StatusCode::from_u16(c).ok())
        {
            Some(status) => text(status, &format!("status {}\n", status.as_u16())),
            None => text(StatusCode::BAD_REQUEST, "bad status code\n"),
        },
        ["bytes", n] => match n.parse::<u64>() {
            Ok(n) => bytes_response(n),
            Err(_) => text(StatusCode::BAD_REQUEST, "bad byte count\n"),
        },
        ["upload"] => upload(request.into_body()).await,
        ["headers"] => {
            let echo = HeadersEcho::from_request(&request, &recorder);
            let mut response = text(StatusCode::OK, &echo.to_json());
            response
                .headers_mut()
                .insert("content-type", "application/json".parse().unwrap());
            response
        }
        ["slow", ms] => match ms.parse::<u64>() {
            Ok(ms) => {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                text(StatusCode::OK, &format!("slept {ms}ms\n"))
            }
            Err(_) => text(StatusCode::BAD_REQUEST, "bad delay\n"),
        },
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    };
    Ok(response)
}

fn text(status: StatusCode, body: &str) -> Response<ResponseBody> {
    let mut response = Response::new(
        Full::new(Bytes::from(body.to_string()))
            .map_err(BoxError::from)
            .boxed_unsync(),
    );
    *response.status_mut() = status;
    response
}

fn bytes_response(n: u64) -> Response<ResponseBody> {
    static CHUNK: [u8; 64 * 1024] = [b'x'; 64 * 1024];
    let stream = futures::stream::unfold(n, |left| async move {
        if left == 0 {
            return None;
        }
        let take = left.min(CHUNK.len() as u64) as usize;
        let frame = Frame::data(Bytes::from_static(&CHUNK[..take]));
        Some((Ok::<_, BoxError>(frame), left - take as u64))
    });
    let mut response = Response::new(StreamBody::new(stream).boxed_unsync());
    response.headers_mut().insert("content-length", n.into());
    response
}

async fn upload(mut body: Incoming) -> Response<ResponseBody> {
    let mut total: u64 = 0;
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => total += frame.data_ref().map_or(0, |d| d.len() as u64),
            Err(e) => return text(StatusCode::BAD_REQUEST, &format!("body error: {e}\n")),
        }
    }
    text(StatusCode::OK, &format!("{total}\n"))
}

/// What the app received, as answered by `/headers`.
#[derive(Debug, Clone, PartialEq)]
pub struct HeadersEcho {
    /// Request method.
    pub method: String,
    /// Request target as hyper saw it.
    pub uri: String,
    /// `HTTP/1.0`, `HTTP/1.1` or `HTTP/2.0`.
    pub version: String,
    /// The raw HTTP/1.x request line; `None` for HTTP/2.
    pub request_line: Option<String>,
    /// The URI authority (HTTP/2 `:authority`, or absolute-form HTTP/1).
    pub authority: Option<String>,
    /// Headers in received order; original name case for HTTP/1.x.
    pub headers: Vec<(String, String)>,
}

impl HeadersEcho {
    fn from_request(request: &Request<Incoming>, recorder: &Recorder) -> Self {
        let method = request.method().to_string();
        let uri = request.uri().to_string();
        let version = format!("{:?}", request.version());
        let raw = if request.version() < http::Version::HTTP_2 {
            recorder.raw_head(&method, &uri)
        } else {
            None
        };
        let (request_line, headers) = match raw {
            Some((line, headers)) => (Some(line), headers),
            None => {
                let headers = request
                    .headers()
                    .iter()
                    .map(|(n, v)| {
                        (
                            n.to_string(),
                            String::from_utf8_lossy(v.as_bytes()).into_owned(),
                        )
                    })
                    .collect();
                (None, headers)
            }
        };
        let authority = request.uri().authority().map(|a| a.to_string());
        Self {
            method,
            uri,
            version,
            request_line,
            authority,
            headers,
        }
    }

    /// Serializes to the JSON the server answers.
    pub fn to_json(&self) -> String {
        let headers: Vec<serde_json::Value> = self
            .headers
            .iter()
            .map(|(n, v)| serde_json::json!([n, v]))
            .collect();
        serde_json::json!({
            "method": self.method,
            "uri": self.uri,
            "version": self.version,
            "request_line": self.request_line,
            "authority": self.authority,
            "headers": headers,
        })
        .to_string()
    }

    /// Parses the JSON answered by `/headers`.
    pub fn from_json(text: &str) -> Result<Self, String> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("{e}: {text:?}"))?;
        let string = |key: &str| value.get(key).and_then(|v| v.as_str()).map(str::to_string);
        let headers = value
            .get("headers")
            .and_then(|h| h.as_array())
            .ok_or_else(|| format!("no headers in {text:?}"))?
            .iter()
            .filter_map(|pair| {
                Some((
                    pair.get(0)?.as_str()?.to_string(),
                    pair.get(1)?.as_str()?.to_string(),
                ))
            })
            .collect();
        Ok(Self {
            method: string("method").unwrap_or_default(),
            uri: string("uri").unwrap_or_default(),
            version: string("version").unwrap_or_default(),
            request_line: string("request_line"),
            authority: string("authority"),
            headers,
        })
    }

    /// Values of header `name` (case-insensitive), in received order.
    pub fn header_values(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.header_values(name).into_iter().next()
    }

    /// The Host header for HTTP/1.x, else the `:authority`.
    pub fn host(&self) -> Option<&str> {
        self.header("host").or(self.authority.as_deref())
    }
}

/// Bytes read on one connection (a rolling window), shared with the handler.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<u8>>>);

impl Recorder {
    fn push(&self, bytes: &[u8]) {
        let mut buf = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        buf.extend_from_slice(bytes);
        if buf.len() > 2 * RECORD_KEEP {
            let excess = buf.len() - RECORD_KEEP;
            buf.drain(..excess);
        }
    }

    /// The last raw request head whose request line is `METHOD URI HTTP/1.x`.
    fn raw_head(&self, method: &str, uri: &str) -> Option<(String, Vec<(String, String)>)> {
        let buf = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let needle = format!("{method} {uri} HTTP/1.");
        let needle = needle.as_bytes();
        let start = (0..buf.len().saturating_sub(needle.len() - 1))
            .rev()
            .find(|&i| buf[i..].starts_with(needle) && (i == 0 || buf[i - 1] == b'\n'))?;
        let head = &buf[start..];
        let line_end = head.windows(2).position(|w| w == b"\r\n")?;
        let line = String::from_utf8_lossy(&head[..line_end]).into_owned();
        let mut headers = vec![httparse::EMPTY_HEADER; 1024];
        let mut parsed = httparse::Request::new(&mut headers);
        match parsed.parse(head) {
            Ok(httparse::Status::Complete(_)) => {}
            _ => return None,
        }
        let headers = parsed
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.to_string(),
                    String::from_utf8_lossy(h.value).into_owned(),
                )
            })
            .collect();
        Some((line, headers))
    }
}

/// A TCP stream that copies everything read into a [`Recorder`].
struct RecordingIo {
    inner: TcpStream,
    recorder: Recorder,
}

impl AsyncRead for RecordingIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let poll = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = &poll {
            this.recorder.push(&buf.filled()[before..]);
        }
        poll
    }
}

impl AsyncWrite for RecordingIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// A raw-TCP server that starts a 1000-byte response, sends 10 bytes and
/// resets the connection; stopped when dropped.
pub struct ResetServer {
    server: BackgroundServer,
    connections: Arc<AtomicU64>,
}

impl ResetServer {
    /// Starts the server on `127.0.0.1:<free port>`.
    pub fn start() -> Self {
        let connections = Arc::new(AtomicU64::new(0));
        let counter = connections.clone();
        let server = BackgroundServer::start("reset-server", move |listener| async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(reset_mid_response(stream));
            }
        });
        Self {
            server,
            connections,
        }
    }

    /// The address the server listens on.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.server.addr()
    }

    /// Connections accepted so far.
    pub fn connections_seen(&self) -> u64 {
        self.connections.load(Ordering::SeqCst)
    }
}

async fn reset_mid_response(mut stream: TcpStream) {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 64 * 1024 {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let response =
        b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 1000\r\n\r\n0123456789";
    let _ = stream.write_all(response).await;
    let _ = stream.flush().await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    // Linger 0: close sends RST instead of FIN.
    let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
    drop(stream);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_spread_evenly_and_exact() {
        let behavior = Behavior::new().fail(3, 10);
        let failing: Vec<u64> = (0..20).filter(|&n| behavior.fails(n)).collect();
        assert_eq!(failing, vec![3, 6, 9, 13, 16, 19]);
        assert_eq!((0..1000).filter(|&n| behavior.fails(n)).count(), 300);
        assert!((0..50).all(|n| Behavior::new().fail(1, 1).fails(n)));
        assert!((0..50).all(|n| !Behavior::new().fails(n)));
        assert!((0..50).all(|n| !Behavior::new().fail(0, 7).fails(n)));
    }
}
