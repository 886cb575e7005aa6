//! Serves one detected HTTP/1 or HTTP/2 client connection with hyper: every
//! request goes to [`forward::handle`]; on drain, HTTP/1 finishes the
//! request in flight and HTTP/2 sends GOAWAY, then the connection closes.

use crate::detect::Protocol;
use crate::dispatch::ConnectionContext;
use crate::drain::DrainWatch;
use crate::http::forward;
use crate::io::Io;
use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::convert::Infallible;
use std::sync::Arc;

/// Serves `io` as `protocol` until the client or a drain closes it.
pub async fn serve<I: Io>(
    io: I,
    protocol: Protocol,
    context: Arc<ConnectionContext>,
    drain: DrainWatch,
) {
    let metrics = context.proxy.metrics.clone();
    let direction = context.direction;
    let service_context = context.clone();
    let service = service_fn(move |request| {
        let context = service_context.clone();
        async move { Ok::<_, Infallible>(forward::handle(context, request).await) }
    });
    let io = TokioIo::new(io);
    let result = match protocol {
        Protocol::Http2 => {
            let connection =
                http2::Builder::new(TokioExecutor::new()).serve_connection(io, service);
            tokio::pin!(connection);
            tokio::select! {
                result = connection.as_mut() => result,
                _ = drain.signaled() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            }
        }
        _ => {
            let connection = http1::Builder::new()
                .preserve_header_case(true)
                .serve_connection(io, service)
                .with_upgrades();
            tokio::pin!(connection);
            tokio::select! {
                result = connection.as_mut() => result,
                _ = drain.signaled() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            }
        }
    };
    if let Err(error) = result {
        let label = if error.is_parse_too_large() {
            "headers too large"
        } else if error.is_parse() || error.is_parse_status() {
            "malformed request"
        } else if error.is_timeout() {
            "timeout"
        } else if error.is_incomplete_message() {
            "client closed early"
        } else {
            "i/o"
        };
        tracing::debug!(client = %context.client_addr, %error, "HTTP connection ended with an error");
        metrics.http_errors.record(direction, label);
    }
}
