//! Serves one detected HTTP/1 or HTTP/2 client connection with hyper: every
//! request goes to [`forward::handle`]; on drain, HTTP/1 finishes the
//! request in flight and HTTP/2 sends GOAWAY, then the connection closes.
//!
//! Every connection is bounded (see [`crate::http::activity`]): a request head (HTTP/2:
//! the preface and first SETTINGS) must arrive within the header-read
//! timeout, and a connection with no request open is closed after the idle
//! timeout. HTTP/2 settings bound what one client may hold: streams, header
//! list size, window sizes, resets.

use crate::context::ConnectionContext;
use crate::detect::Protocol;
use crate::drain::DrainWatch;
use crate::http::activity::{
    ConnectionActivity, Expiry, Framing, Timeouts, TrackedBody, WatchedIo,
};
use crate::http::forward;
use crate::http::header_case::HeadSniffer;
use crate::io::Io;
use crate::wake_gate::WakeGate;
use futures::future::BoxFuture;
use hyper::body::{Body, Incoming};
use hyper::rt::{Read, Write};
use hyper::server::conn::{http1, http2};
use hyper::service::{HttpService, service_fn};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// The largest HTTP/1 request head (and read buffer), and the largest
/// HTTP/2 header list: the same bound on both sides of an HTTP/2 hop.
pub(crate) const MAX_HEADER_BYTES: usize = 64 * 1024;
/// Concurrent streams an app's HTTP/2 client may open (hyper's default).
const MAX_CONCURRENT_STREAMS: u32 = 200;
/// Concurrent streams a peer proxy may open: it multiplexes many clients.
const MESH_MAX_CONCURRENT_STREAMS: u32 = 2000;
/// HTTP/2 flow-control windows: what a client may send before the proxy
/// reads it (a stream; the whole connection).
const STREAM_WINDOW: u32 = 256 * 1024;
const CONNECTION_WINDOW: u32 = 1024 * 1024;
/// Streams the proxy may reset for a client's protocol errors before it
/// closes the connection (rapid reset, h2's default).
const MAX_LOCAL_ERROR_RESETS: usize = 1024;
/// HTTP/2 keep-alive: a PING after this much silence, and the connection
/// closed when the answer takes longer than the timeout.
pub(crate) const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(10);
pub(crate) const KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(10);

/// How a direction's HTTP server treats its clients (set by the entry
/// points, [`crate::inbound`] and [`crate::outbound`]).
#[derive(Clone, Copy, Debug)]
pub(crate) struct ServerSettings {
    /// Clients are peer proxies (inbound). Their HTTP/2 connections each
    /// multiplex many clients: more concurrent streams, and more streams
    /// reset before they are accepted, than an app's client gets. Their
    /// requests follow the mesh's header rules (see [`forward::handle`]).
    pub mesh_clients: bool,
    /// HTTP/1 request heads are read as the client wrote them (header-name
    /// case), for requests that may cross an HTTP/2 hop (outbound, with an
    /// identity; see [`crate::http::header_case`]).
    pub sniff_header_case: bool,
}

/// Runs a connection's detection (`detecting`: it serves what is not HTTP
/// itself, and returns the HTTP server's future for what is) in a box of its
/// own, freed before HTTP is served: a connection served as HTTP (most of
/// them, for their whole life) keeps no room for detection's state. Not an
/// `async fn`: the callers pass the connection's context into `detecting`,
/// and one would keep room for its arguments for its whole life.
pub(crate) fn after_detection<F>(detecting: F) -> impl Future<Output = ()> + Send
where
    F: Future<Output = Option<BoxFuture<'static, ()>>> + Send + 'static,
{
    let detecting = Box::pin(detecting);
    async move {
        if let Some(http) = detecting.await {
            http.await;
        }
    }
}

/// Serves `io` as `protocol` until the client, a drain or a timeout closes it.
///
/// Boxed: hyper's connection state is large, and a connection waiting in
/// detection (or forwarded as TCP) should not carry room for it.
pub(crate) fn serve<I: Io>(
    io: I,
    protocol: Protocol,
    context: Arc<ConnectionContext>,
    drain: DrainWatch,
    settings: ServerSettings,
) -> BoxFuture<'static, ()> {
    Box::pin(serve_connection(io, protocol, context, drain, settings))
}

async fn serve_connection<I: Io>(
    io: I,
    protocol: Protocol,
    context: Arc<ConnectionContext>,
    drain: DrainWatch,
    settings: ServerSettings,
) {
    let framing = match protocol {
        Protocol::Http2 => Framing::Http2,
        _ => Framing::Http1,
    };
    let activity = ConnectionActivity::new(framing);
    let timeouts = Timeouts {
        header_read: context.proxy.config.http_header_read_timeout,
        idle: context.proxy.config.http_idle_timeout,
    };
    let mesh_clients = settings.mesh_clients;
    let service_context = context.clone();
    let service_activity = activity.clone();
    let service = service_fn(move |request| {
        let context = service_context.clone();
        let open = service_activity.request_started();
        // Boxed: the request's future is several KiB, and hyper moves the
        // service future into a new task per HTTP/2 stream (and into its
        // dispatcher per HTTP/1 request). Moving a pointer beats copying it.
        let handled = Box::pin(forward::handle(context, request, mesh_clients));
        async move {
            let response = handled.await;
            Ok::<_, Infallible>(response.map(|body| TrackedBody::new(body, open)))
        }
    });
    let io = WatchedIo::new(io, activity.clone(), framing);
    let watch = Watch {
        drain: &drain,
        activity: &activity,
        timeouts,
    };
    // Each protocol's connection is boxed on its own: an HTTP/1 connection
    // does not carry room for HTTP/2's state, nor the reverse.
    let result = match protocol {
        Protocol::Http2 => {
            let mut builder = http2::Builder::new(TokioExecutor::new());
            builder
                .timer(TokioTimer::new())
                .keep_alive_interval(KEEP_ALIVE_INTERVAL)
                .keep_alive_timeout(KEEP_ALIVE_TIMEOUT)
                .max_header_list_size(MAX_HEADER_BYTES as u32)
                .initial_stream_window_size(STREAM_WINDOW)
                .initial_connection_window_size(CONNECTION_WINDOW)
                .max_local_error_reset_streams(Some(MAX_LOCAL_ERROR_RESETS));
            if settings.mesh_clients {
                // A peer proxy multiplexes many clients on one connection:
                // h2's default (20 streams reset before they are accepted)
                // would let one client cancelling requests end the
                // connection for all of them.
                builder
                    .max_pending_accept_reset_streams(MESH_PENDING_ACCEPT_RESETS)
                    .max_concurrent_streams(MESH_MAX_CONCURRENT_STREAMS);
            } else {
                builder.max_concurrent_streams(MAX_CONCURRENT_STREAMS);
            }
            let connection = builder.serve_connection(TokioIo::new(io), service);
            Box::pin(watch.until_closed(connection)).await
        }
        // Meshed HTTP/1 requests may cross an HTTP/2 hop: read the header
        // names' case as the client wrote them (see header_case).
        _ if settings.sniff_header_case => {
            let io = TokioIo::new(HeadSniffer::new(io, context.sniffed_heads().clone()));
            let connection = http1_builder()
                .serve_connection(io, service)
                .with_upgrades();
            Box::pin(watch.until_closed(connection)).await
        }
        _ => {
            let connection = http1_builder()
                .serve_connection(TokioIo::new(io), service)
                .with_upgrades();
            Box::pin(watch.until_closed(connection)).await
        }
    };
    match result {
        Ok(Closed::ByPeerOrDrain) => {}
        Ok(Closed::Idle) => {
            tracing::debug!(client = %context.client_addr, "closed an idle HTTP connection");
        }
        Err(ConnectionError::HeaderRead) => {
            let what = match framing {
                Framing::Http1 => "closed a slow HTTP client",
                Framing::Http2 => "closed a slow HTTP/2 client",
            };
            context.proxy.log_traffic_error(
                context.direction,
                context.client_addr,
                what,
                &ConnectionError::HeaderRead,
            );
            context
                .proxy
                .metrics
                .tcp_errors
                .record(context.direction, "header read timeout");
        }
        Err(ConnectionError::Hyper(error)) => {
            let label = connection_error_label(&error);
            if error.is_parse() || error.is_parse_too_large() || error.is_parse_status() {
                context.proxy.log_traffic_error(
                    context.direction,
                    context.client_addr,
                    "malformed HTTP request",
                    &error,
                );
            } else {
                tracing::debug!(client = %context.client_addr, %error, "HTTP connection ended with an error");
            }
            context
                .proxy
                .metrics
                .http_errors
                .record(context.direction, label);
        }
    }
}

/// The HTTP/1 server's settings. hyper's own header-read timeout is off:
/// it would run while a keep-alive connection waits for its next request,
/// which the idle timeout bounds instead (see [`crate::http::activity`]).
fn http1_builder() -> http1::Builder {
    let mut builder = http1::Builder::new();
    builder
        .preserve_header_case(true)
        .timer(TokioTimer::new())
        .header_read_timeout(None)
        .max_buf_size(MAX_HEADER_BYTES);
    builder
}

/// How a served connection ended without an error.
#[derive(Debug, PartialEq, Eq)]
enum Closed {
    /// The client closed it, or it finished after a drain.
    ByPeerOrDrain,
    /// No request was open for the idle timeout.
    Idle,
}

/// Why a served connection ended with an error.
#[derive(Debug, thiserror::Error)]
enum ConnectionError {
    /// hyper's error.
    #[error("{0}")]
    Hyper(#[from] hyper::Error),
    /// The client took longer than the header-read timeout.
    #[error(
        "request head (or HTTP/2 preface) not received within WEFT_PROXY_HTTP_HEADER_READ_TIMEOUT"
    )]
    HeaderRead,
}

/// The `*_http_errors_total` label of a connection-level error.
/// Streams a peer may reset before the inbound proxy accepts them, per
/// connection (h2's default is 20).
const MESH_PENDING_ACCEPT_RESETS: usize = 1024;

fn connection_error_label(error: &hyper::Error) -> &'static str {
    if error.is_parse_too_large() {
        "headers too large"
    } else if error.is_parse() || error.is_parse_status() {
        "malformed request"
    } else if error.is_timeout() {
        "timeout"
    } else if error.is_incomplete_message() {
        "client closed early"
    } else {
        "i/o"
    }
}

/// A hyper server connection that can be asked to finish gracefully.
trait GracefulConnection: Future<Output = hyper::Result<()>> {
    fn start_graceful_shutdown(self: Pin<&mut Self>);
}

impl<I, S, B> GracefulConnection for http1::UpgradeableConnection<I, S>
where
    S: HttpService<Incoming, ResBody = B>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    I: Read + Write + Unpin + Send + 'static,
    B: Body + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    fn start_graceful_shutdown(self: Pin<&mut Self>) {
        self.graceful_shutdown();
    }
}

impl<I, S, B, E> GracefulConnection for http2::Connection<I, S, E>
where
    S: HttpService<Incoming, ResBody = B>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    I: Read + Write + Unpin,
    B: Body + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    E: hyper::rt::bounds::Http2ServerConnExec<S::Future, B>,
{
    fn start_graceful_shutdown(self: Pin<&mut Self>) {
        self.graceful_shutdown();
    }
}

/// What may end a connection besides its client: a drain and its deadlines.
struct Watch<'a> {
    drain: &'a DrainWatch,
    activity: &'a ConnectionActivity,
    timeouts: Timeouts,
}

impl Watch<'_> {
    /// Drives `connection` to completion, asking it to finish gracefully
    /// once a drain starts or it idles out, and dropping it when a client
    /// is too slow sending a request head.
    async fn until_closed<C: GracefulConnection>(
        &self,
        connection: C,
    ) -> Result<Closed, ConnectionError> {
        tokio::pin!(connection);
        // The drain and the deadline are polled only when their own wakers
        // fire, not on each of the connection's reads and writes. What ended
        // the wait is handled after it: their futures are gone by then, and
        // the closing timer takes their room in the connection's future
        // rather than adding to it.
        let quiet = WakeGate::new(async {
            tokio::select! {
                biased;
                _ = self.drain.signaled() => None,
                expiry = self.activity.expired(self.timeouts) => Some(expiry),
            }
        });
        let ended = tokio::select! {
            biased;
            result = connection.as_mut() => {
                return result.map(|()| Closed::ByPeerOrDrain).map_err(ConnectionError::from);
            }
            ended = quiet => ended,
        };
        match ended {
            None => {
                connection.as_mut().start_graceful_shutdown();
                connection.await?;
                Ok(Closed::ByPeerOrDrain)
            }
            Some(Expiry::HeaderRead) => Err(ConnectionError::HeaderRead),
            Some(Expiry::Idle) => {
                // HTTP/2 sends GOAWAY; a client that does not read it is not
                // waited for longer than a head would be.
                connection.as_mut().start_graceful_shutdown();
                let _ = tokio::time::timeout(self.timeouts.header_read, connection).await;
                Ok(Closed::Idle)
            }
        }
    }
}
