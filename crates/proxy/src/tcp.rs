//! Opaque TCP forwarding: connect to the target (with the connect timeout
//! and `TCP_NODELAY`), then copy bytes both ways with half-close until both
//! sides are done. Bytes are counted as they flow (see [`MeteredIo`]).
//!
//! With discovery, the plan decides the target: the original destination, the
//! one endpoint discovery named, or, for a logical service, an endpoint
//! balanced per connection (P2C over peak-EWMA; an endpoint that refuses is
//! penalised and another tried).

use crate::connect::{self, ConnectError};
use crate::context::connect_tls;
use crate::direction::Direction;
use crate::discovery::EndpointMeta;
use crate::http::errors::ProxyError;
use crate::io::{Io, MeteredIo};
use crate::metrics::labels::{Peer, TargetLabels, TcpLabels};
use crate::proxy::Proxy;
use crate::routing::{CONNECT_ATTEMPTS, CONNECT_FAILURE_PENALTY, Lease, Plan};
use crate::tls::transport::{self, ClientTls};
use futures::future::BoxFuture;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpStream;

/// Size of the copy buffer in each direction.
const COPY_BUFFER_SIZE: usize = 8 * 1024;

/// Forwards `client` to `target` until both directions have closed.
pub(crate) fn forward<I: Io>(
    proxy: &Proxy,
    client: I,
    target: SocketAddr,
    direction: Direction,
) -> BoxFuture<'_, ()> {
    forward_planned(proxy, client, target, Plan::Original, direction)
}

/// Forwards `client` where `plan` says (`target` is the original
/// destination) until both directions have closed.
///
/// Boxed: connecting and TLS make a large future, and a connection waiting
/// in detection should not carry room for it.
pub(crate) fn forward_planned<I: Io>(
    proxy: &Proxy,
    client: I,
    target: SocketAddr,
    plan: Plan,
    direction: Direction,
) -> BoxFuture<'_, ()> {
    Box::pin(forward_planned_inline(
        proxy, client, target, plan, direction,
    ))
}

async fn forward_planned_inline<I: Io>(
    proxy: &Proxy,
    client: I,
    target: SocketAddr,
    plan: Plan,
    direction: Direction,
) {
    match plan {
        Plan::Original => {
            let labels = TargetLabels::new(target, connect_tls(direction));
            if let Some(stream) = connect_to(proxy, target, direction).await {
                copy(proxy, client, stream, target, labels, None, direction).await;
            }
        }
        Plan::Endpoint { addr, meta, .. } => {
            let Some(tls) = endpoint_tls(proxy, &meta, addr, direction) else {
                return;
            };
            let connect_addr = ClientTls::connect_addr(tls.as_ref(), addr);
            if let Some(stream) = connect_to(proxy, connect_addr, direction).await {
                copy(proxy, client, stream, addr, meta.labels, tls, direction).await;
            }
        }
        Plan::Logical(logical) => {
            let Some(outbound) = proxy.router.as_ref() else {
                return;
            };
            let mut tries = 0;
            let mut failed = Vec::new();
            let (stream, lease, tls) = loop {
                let backend = logical.backend(outbound.random());
                let lease: Lease = match outbound.pick_avoiding(backend, &failed).await {
                    Ok(lease) => lease,
                    Err(error) => {
                        // Labelled and described as the HTTP stage answers it.
                        let error = ProxyError::from(error);
                        record_error(proxy, direction, target, &error, error.metric_label());
                        return;
                    }
                };
                tries += 1;
                let addr = lease.address();
                let Some(tls) = endpoint_tls(proxy, lease.metadata(), addr, direction) else {
                    return;
                };
                let connect_addr = ClientTls::connect_addr(tls.as_ref(), addr);
                match connect::connect(connect_addr, proxy.connect_timeout(direction)).await {
                    Ok(stream) => break (stream, lease, tls),
                    Err(error) if tries < CONNECT_ATTEMPTS => {
                        tracing::debug!(%addr, %error, "endpoint refused; trying another");
                        failed.push(addr);
                        lease.fail(CONNECT_FAILURE_PENALTY);
                    }
                    Err(error) => {
                        lease.fail(CONNECT_FAILURE_PENALTY);
                        record_connect_error(proxy, direction, addr, &error);
                        return;
                    }
                }
            };
            let addr = lease.address();
            let labels = lease.metadata().labels.clone();
            // The lease counts the connection as pending on its endpoint
            // until it closes, so new connections prefer quieter endpoints.
            copy(proxy, client, stream, addr, labels, tls, direction).await;
            drop(lease);
        }
    }
}

/// Mutual TLS for a discovered endpoint (`Some(None)`: plaintext); `None`
/// when it needs TLS this proxy cannot offer yet (recorded).
fn endpoint_tls(
    proxy: &Proxy,
    meta: &EndpointMeta,
    addr: SocketAddr,
    direction: Direction,
) -> Option<Option<ClientTls>> {
    match proxy.client_tls(meta.identity.as_ref(), meta.opaque_transport_port) {
        Ok(tls) => Some(tls),
        Err(error) => {
            let error = ProxyError::from(error);
            record_error(proxy, direction, addr, &error, error.metric_label());
            None
        }
    }
}

async fn connect_to(proxy: &Proxy, target: SocketAddr, direction: Direction) -> Option<TcpStream> {
    if proxy.is_own_listener(target) {
        proxy.log_traffic_error(
            direction,
            target,
            "closed a connection",
            &"refusing to forward a connection to the proxy itself",
        );
        proxy.metrics.tcp_errors.record(direction, "loop");
        return None;
    }
    match connect::connect(target, proxy.connect_timeout(direction)).await {
        Ok(stream) => Some(stream),
        Err(error) => {
            record_connect_error(proxy, direction, target, &error);
            None
        }
    }
}

fn record_connect_error(
    proxy: &Proxy,
    direction: Direction,
    target: SocketAddr,
    error: &ConnectError,
) {
    record_error(proxy, direction, target, error, error.metric_label());
}

fn record_error(
    proxy: &Proxy,
    direction: Direction,
    target: SocketAddr,
    error: &dyn std::fmt::Display,
    label: &'static str,
) {
    proxy.log_traffic_error(direction, target, "TCP forward failed", error);
    proxy.metrics.tcp_errors.record(direction, label);
}

async fn copy<I: Io>(
    proxy: &Proxy,
    mut client: I,
    stream: TcpStream,
    target: SocketAddr,
    labels: Arc<TargetLabels>,
    tls: Option<ClientTls>,
    direction: Direction,
) {
    let metered = MeteredIo::new(
        stream,
        proxy.metrics.tcp.open(TcpLabels {
            direction,
            peer: Peer::Destination,
            target: labels,
        }),
    );
    let mut server = match transport::connect(metered, tls.as_ref(), target.port(), None).await {
        Ok(server) => server,
        Err(error) => {
            record_error(proxy, direction, target, &error, "tls");
            return;
        }
    };
    if let Err(error) = tokio::io::copy_bidirectional_with_sizes(
        &mut client,
        &mut server,
        COPY_BUFFER_SIZE,
        COPY_BUFFER_SIZE,
    )
    .await
    {
        tracing::debug!(%target, %error, "TCP forward ended with an error");
    }
}
