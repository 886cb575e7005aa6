//! Serves one detected HTTP/1 or HTTP/2 client connection with hyper: every
//! request goes to [`forward::handle`]; on drain, HTTP/1 finishes the
//! request in flight and HTTP/2 sends GOAWAY, then the connection closes.

use crate::detect::Protocol;
use crate::dispatch::ConnectionContext;
use crate::drain::DrainWatch;
use crate::http::forward;
use crate::http::header_case::HeadSniffer;
use crate::io::Io;
use crate::metrics::labels::Direction;
use hyper::body::{Body, Incoming};
use hyper::rt::{Read, Write};
use hyper::server::conn::{http1, http2};
use hyper::service::{HttpService, service_fn};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// Serves `io` as `protocol` until the client or a drain closes it.
pub async fn serve<I: Io>(
    io: I,
    protocol: Protocol,
    context: Arc<ConnectionContext>,
    drain: DrainWatch,
) {
    let service_context = context.clone();
    let service = service_fn(move |request| {
        let context = service_context.clone();
        // Boxed: the request's future is several KiB, and hyper moves the
        // service future into a new task per HTTP/2 stream (and into its
        // dispatcher per HTTP/1 request). Moving a pointer beats copying it.
        let handled = Box::pin(forward::handle(context, request));
        async move { Ok::<_, Infallible>(handled.await) }
    });
    let io = TokioIo::new(io);
    let result = match protocol {
        Protocol::Http2 => {
            let mut builder = http2::Builder::new(TokioExecutor::new());
            if context.direction == Direction::Inbound {
                // A peer proxy multiplexes many clients on one connection:
                // h2's default (20 streams reset before they are accepted)
                // would let one client cancelling requests end the
                // connection for all of them.
                builder.max_pending_accept_reset_streams(MESH_PENDING_ACCEPT_RESETS);
            }
            let connection = builder.serve_connection(io, service);
            until_closed(connection, &drain).await
        }
        // Meshed HTTP/1 requests may cross an HTTP/2 hop: read the header
        // names' case as the client wrote them (see header_case).
        _ if context.direction == Direction::Outbound && context.proxy.tls.is_some() => {
            let io = TokioIo::new(HeadSniffer::new(
                io.into_inner(),
                context.sniffed_heads.clone(),
            ));
            let connection = http1::Builder::new()
                .preserve_header_case(true)
                .serve_connection(io, service)
                .with_upgrades();
            until_closed(connection, &drain).await
        }
        _ => {
            let connection = http1::Builder::new()
                .preserve_header_case(true)
                .serve_connection(io, service)
                .with_upgrades();
            until_closed(connection, &drain).await
        }
    };
    if let Err(error) = result {
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

/// Drives `connection` to completion, asking it to finish gracefully once a
/// drain starts.
async fn until_closed<C: GracefulConnection>(
    connection: C,
    drain: &DrainWatch,
) -> hyper::Result<()> {
    tokio::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => result,
        _ = drain.signaled() => {
            connection.as_mut().start_graceful_shutdown();
            connection.await
        }
    }
}
