//! Outbound: the local app calling out. One connection, top to bottom:
//!
//! ```text
//! accept ─► target: SO_ORIGINAL_DST; not redirected ⇒ explicit proxy requests
//!   ├─ discovery first (routing::Router): the plan may say the target is opaque
//!   ├─ opaque port or opaque plan ─► tcp::forward_planned
//!   ▼
//! detect ─► a silent client (WEFT_PROXY_SERVER_FIRST_DELAY), a known target:
//!   │       connected early as the plan says; it speaks first ─► relayed as TCP
//!   ├─ HTTP/1, HTTP/2 ─► http::server (per-request routing and forwarding)
//!   └─ TLS, other, timeout ─► tcp::forward_planned (explicit listener: 400, closed)
//! ```
//!
//! A CONNECT tunnel opened on the explicit listener comes back to [`serve`]
//! with its target (the HTTP stage is handed `serve` in the connection's
//! context), so what travels inside it is detected and proxied the same way.

use crate::context::{ConnectionContext, Target};
use crate::detect::{Detection, Protocol};
use crate::direction::Direction;
use crate::drain::DrainWatch;
use crate::http::server::ServerSettings;
use crate::io::{Io, MeteredIo, PrefixedIo};
use crate::listen::Accepted;
use crate::metrics::labels::{Peer, TargetLabels, TcpLabels, TlsStatus};
use crate::proxy::Proxy;
use crate::routing::Plan;
use crate::server_first::{self, Early, EarlyTarget, FirstBytes};
use crate::tcp::Upstream;
use crate::{http, tcp};
use futures::future::BoxFuture;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::AsyncWriteExt;

/// Serves a connection accepted on an outbound listener to completion.
pub(crate) fn accept(
    accepted: Accepted,
    proxy: Arc<Proxy>,
    drain: DrainWatch,
) -> BoxFuture<'static, ()> {
    // Redirected traffic goes to its original destination; a connection
    // made to the listener itself carries explicit proxy requests.
    let target = match accepted.redirected {
        true => Target::Addr(accepted.original),
        false => Target::Explicit,
    };
    let metrics = Arc::new(proxy.metrics.tcp.open(TcpLabels {
        direction: Direction::Outbound,
        peer: Peer::Source,
        target: TargetLabels::new(accepted.original, TlsStatus::Loopback),
    }));
    let mut context = ConnectionContext::new(
        proxy,
        Direction::Outbound,
        accepted.client_addr,
        target,
        drain,
        serve,
    );
    context.accept_metrics = Some(metrics.clone());
    Box::pin(serve_connection(
        MeteredIo::shared(accepted.stream, metrics),
        context,
    ))
}

/// Serves an outbound connection (accepted, or the inside of a CONNECT
/// tunnel) to completion.
pub(crate) fn serve(io: Box<dyn Io>, context: ConnectionContext) -> BoxFuture<'static, ()> {
    Box::pin(serve_connection(io, context))
}

/// Serves a connection to completion. Discovery, detection and the TCP paths run in a box of
/// their own, freed before HTTP is served ([`http::server::after_detection`]).
fn serve_connection<I: Io>(io: I, context: ConnectionContext) -> impl Future<Output = ()> + Send {
    http::server::after_detection(detect_and_serve(io, context))
}

/// Serves the connection to completion unless it carries HTTP: then the
/// HTTP server's future is returned, to run once this one is dropped.
async fn detect_and_serve<I: Io>(
    mut io: I,
    context: ConnectionContext,
) -> Option<BoxFuture<'static, ()>> {
    let proxy = context.proxy.clone();

    // 1. Discovery comes first: it may say the target is opaque. Opaque
    //    ports skip detection: the server may speak first.
    let plan = match context.target {
        Target::Addr(target) => context.plan_for_addr(target).await,
        Target::Explicit => Plan::Original,
    };
    if let Target::Addr(target) = context.target
        && (proxy.config.opaque_ports.contains(target.port()) || plan.is_opaque())
    {
        proxy.metrics.detected(Direction::Outbound, "opaque_port");
        context.settle_accept(None);
        tcp::forward_planned(&proxy, io, target, plan, Direction::Outbound).await;
        return None;
    }

    // 2. Detect. A client silent for a while may face a server that speaks
    //    first: the target is connected to early, as the plan says (a
    //    meshed endpoint over mutual TLS with an opaque transport header,
    //    as an opaque port's connection goes).
    let timeout = proxy.config.detect_timeout;
    let early_target = match context.target {
        Target::Addr(target) if proxy.is_own_listener(target) => EarlyTarget::OwnListener,
        Target::Addr(_) => EarlyTarget::Known,
        Target::Explicit => EarlyTarget::Unknown,
    };
    let early = match (
        server_first::early_delay(proxy.config.server_first_delay, timeout, early_target),
        context.target,
    ) {
        (Some(delay), Target::Addr(target)) => {
            let (proxy, plan) = (&proxy, &plan);
            Some(Early {
                delay,
                connect: move || connect_early(proxy, target, plan.clone()),
            })
        }
        _ => None,
    };
    let first = server_first::detect(&mut io, timeout, early).await;
    proxy
        .metrics
        .detected(Direction::Outbound, first.metric_label());
    context.settle_accept(None);
    let detection = match first {
        FirstBytes::Client(detection) => detection,
        FirstBytes::Server {
            client_prefix,
            upstream,
        } => {
            upstream.relay(PrefixedIo::new(client_prefix, io)).await;
            return None;
        }
    };

    // 3. HTTP is proxied per request; anything else is forwarded as opaque
    //    TCP (on the explicit listener, refused: it names no target).
    let prefix = match detection {
        Detection::Detected {
            protocol: protocol @ (Protocol::Http1 | Protocol::Http2),
            prefix,
        } => {
            // Meshed HTTP/1 requests may cross an HTTP/2 hop: the server
            // reads the header names' case as the client wrote them.
            let settings = ServerSettings {
                mesh_clients: false,
                sniff_header_case: proxy.tls.is_some(),
            };
            let drain = context.drain.clone();
            let io = PrefixedIo::new(prefix, io);
            return Some(http::server::serve(
                io,
                protocol,
                Arc::new(context),
                drain,
                settings,
            ));
        }
        Detection::Detected { prefix, .. }
        | Detection::HttpTooLarge { prefix }
        | Detection::MalformedHttp { prefix }
        | Detection::TimedOut { prefix } => prefix,
        Detection::Closed => return None,
        Detection::Failed(error) => {
            tracing::debug!(client = %context.client_addr, %error, "reading the first bytes failed");
            proxy.metrics.tcp_errors.record(Direction::Outbound, "i/o");
            return None;
        }
    };
    match context.target {
        Target::Addr(target) => {
            let io = PrefixedIo::new(prefix, io);
            tcp::forward_planned(&proxy, io, target, plan, Direction::Outbound).await;
        }
        Target::Explicit => {
            proxy.log_traffic_error(
                Direction::Outbound,
                context.client_addr,
                "closed a connection",
                &"not an HTTP proxy request",
            );
            proxy
                .metrics
                .tcp_errors
                .record(Direction::Outbound, "not a proxy request");
            if !prefix.is_empty() {
                let _ = io.write_all(NOT_A_PROXY_REQUEST).await;
            }
            let _ = io.shutdown().await;
        }
    }
    None
}

/// Connects to `target` as `plan` says before the client has spoken
/// (`None`: it failed; the forward that may follow detection reports it).
async fn connect_early(proxy: &Proxy, target: SocketAddr, plan: Plan) -> Option<Upstream> {
    match tcp::connect_planned(proxy, target, plan, Direction::Outbound).await {
        Ok(upstream) => Some(upstream),
        Err(failure) => {
            tracing::debug!(%target, error = %failure.error, "early connection failed");
            None
        }
    }
}

const NOT_A_PROXY_REQUEST: &[u8] = b"HTTP/1.1 400 Bad Request\r\n\
l5d-proxy-error: not a proxy request: use an absolute URI (GET http://host:port/path) or CONNECT host:port\r\n\
content-length: 0\r\nconnection: close\r\n\r\n";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::returned_size;

    #[test]
    fn an_http_connection_keeps_no_room_for_detection() {
        // What a connection holds while served as HTTP: the detection box's
        // pointer, then the HTTP server's.
        let serving = returned_size(&serve_connection::<tokio::net::TcpStream>);
        let detecting = returned_size(&detect_and_serve::<tokio::net::TcpStream>);
        assert!(serving <= 64, "{serving} bytes");
        assert!(detecting > 1024, "{detecting} bytes: worth its box");
    }
}
