//! Opaque TCP forwarding: connect to the target (with the connect timeout
//! and `TCP_NODELAY`), then copy bytes both ways with half-close until both
//! sides are done. Bytes are counted as they flow (see [`MeteredIo`]).
//!
//! With discovery, the plan decides the target: the original destination, the
//! one endpoint discovery named, or, for a logical service, an endpoint
//! balanced per connection (P2C over peak-EWMA; an endpoint that refuses is
//! penalised and another tried).
//!
//! Connecting ([`connect_planned`]: TCP, then mutual TLS and the transport
//! header for a meshed endpoint) is apart from relaying ([`Upstream::relay`]),
//! so a connection can be opened before the client has sent anything and
//! relayed once the server speaks first (see [`crate::server_first`]).

use crate::connect::{self, ConnectError};
use crate::context::connect_tls;
use crate::direction::Direction;
use crate::discovery::EndpointMeta;
use crate::http::errors::ProxyError;
use crate::io::PrefixedIo;
use crate::io::{Io, MeteredIo};
use crate::metrics::labels::{Peer, TargetLabels, TcpLabels};
use crate::proxy::Proxy;
use crate::routing::{CONNECT_ATTEMPTS, CONNECT_FAILURE_PENALTY, Lease, Plan};
use crate::tls::transport::{self, ClientTls, TlsConnectError, Transport};
use bytes::{Bytes, BytesMut};
use futures::future::BoxFuture;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::AsyncReadExt;
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
    Box::pin(async move {
        match connect_planned(proxy, target, plan, direction).await {
            Ok(upstream) => upstream.relay(client).await,
            Err(failure) => failure.record(proxy, direction),
        }
    })
}

/// Relays `client` over `upstream` when a connection was already made,
/// else forwards it like [`forward`].
pub(crate) fn forward_over<I: Io>(
    proxy: &Proxy,
    client: I,
    target: SocketAddr,
    upstream: Option<Upstream>,
    direction: Direction,
) -> BoxFuture<'_, ()> {
    match upstream {
        Some(upstream) => Box::pin(upstream.relay(client)),
        None => forward(proxy, client, target, direction),
    }
}

/// A connection to a forward's target, ready to carry the client's bytes:
/// connected, and for a meshed endpoint with mutual TLS (and the transport
/// header) set up. Counted in the `peer="dst"` TCP metrics from the connect.
pub(crate) struct Upstream {
    /// The server side.
    io: Transport<MeteredIo<TcpStream>>,
    /// The target's address (the endpoint's, for a discovered one).
    target: SocketAddr,
    /// What the server sent before the client's bytes were relayed.
    first: Bytes,
    /// The balancer's lease on a logical target's endpoint: it counts the
    /// connection as pending there until it closes, so new connections
    /// prefer quieter endpoints.
    lease: Option<Lease>,
}

/// How much of a server's first bytes is read before relaying starts (the
/// rest is relayed): a banner's worth, held while a silent client waits.
const FIRST_READ: usize = 128;

impl Upstream {
    /// Waits for the server's first bytes (empty: it closed) and keeps them
    /// to be relayed first.
    pub(crate) async fn read_first(&mut self) -> std::io::Result<&[u8]> {
        let mut first = BytesMut::with_capacity(FIRST_READ);
        self.io.read_buf(&mut first).await?;
        self.first = first.freeze();
        Ok(&self.first)
    }

    /// Copies bytes both ways between `client` and the server until both
    /// directions have closed.
    pub(crate) async fn relay<I: Io>(self, mut client: I) {
        let Upstream {
            io,
            target,
            first,
            lease,
        } = self;
        let mut server = PrefixedIo::new(first, io);
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
        drop(lease);
    }
}

/// Why a forward's connection could not be made.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ForwardError {
    /// The target is one of the proxy's own listeners (a forwarding loop).
    #[error("refusing to forward a connection to the proxy itself")]
    Loop,
    /// A logical target on a proxy without discovery (never planned so).
    #[error("a logical target without discovery")]
    NoDiscovery,
    /// No endpoint to pick, or mutual TLS this proxy cannot offer yet:
    /// labelled and described as the HTTP stage answers it.
    #[error(transparent)]
    Proxy(#[from] ProxyError),
    /// Connecting failed (refused, timed out, unreachable).
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// The TLS handshake (or the transport header) failed.
    #[error(transparent)]
    Tls(#[from] TlsConnectError),
}

impl ForwardError {
    /// The `*_tcp_errors_total` label value.
    fn metric_label(&self) -> &'static str {
        match self {
            ForwardError::Loop => "loop",
            ForwardError::NoDiscovery => "discovery",
            ForwardError::Proxy(error) => error.metric_label(),
            ForwardError::Connect(error) => error.metric_label(),
            ForwardError::Tls(_) => "tls",
        }
    }
}

/// A forward's connection that could not be made, and to whom.
#[derive(Debug)]
pub(crate) struct ForwardFailure {
    /// The address the failure concerns (the endpoint, or the target).
    pub peer: SocketAddr,
    /// What failed.
    pub error: ForwardError,
}

impl ForwardFailure {
    /// Logs (within the budget) and counts the failure.
    pub(crate) fn record(&self, proxy: &Proxy, direction: Direction) {
        let what = match self.error {
            ForwardError::Loop => "closed a connection",
            _ => "TCP forward failed",
        };
        proxy.log_traffic_error(direction, self.peer, what, &self.error);
        proxy
            .metrics
            .tcp_errors
            .record(direction, self.error.metric_label());
    }
}

/// Connects where `plan` says (`target` is the original destination): TCP,
/// then mutual TLS and the transport header (opaque) for a meshed endpoint.
pub(crate) async fn connect_planned(
    proxy: &Proxy,
    target: SocketAddr,
    plan: Plan,
    direction: Direction,
) -> Result<Upstream, ForwardFailure> {
    let failed = |peer: SocketAddr| move |error: ForwardError| ForwardFailure { peer, error };
    match plan {
        Plan::Original => {
            let labels = TargetLabels::new(target, connect_tls(direction));
            let stream = connect_to(proxy, target, direction)
                .await
                .map_err(failed(target))?;
            open(proxy, stream, target, labels, None, None, direction).await
        }
        Plan::Endpoint { addr, meta, .. } => {
            let tls = endpoint_tls(proxy, &meta).map_err(failed(addr))?;
            let connect_addr = ClientTls::connect_addr(tls.as_ref(), addr);
            let stream = connect_to(proxy, connect_addr, direction)
                .await
                .map_err(failed(connect_addr))?;
            open(proxy, stream, addr, meta.labels, tls, None, direction).await
        }
        Plan::Logical(logical) => {
            let Some(outbound) = proxy.router.as_ref() else {
                return Err(failed(target)(ForwardError::NoDiscovery));
            };
            let mut tries = 0;
            let mut failed_addrs = Vec::new();
            let (stream, lease, tls) = loop {
                let backend = logical.backend(outbound.random());
                let lease: Lease = outbound
                    .pick_avoiding(backend, &failed_addrs)
                    .await
                    .map_err(|error| failed(target)(ProxyError::from(error).into()))?;
                tries += 1;
                let addr = lease.address();
                let tls = endpoint_tls(proxy, lease.metadata()).map_err(failed(addr))?;
                let connect_addr = ClientTls::connect_addr(tls.as_ref(), addr);
                match connect::connect(connect_addr, proxy.connect_timeout(direction)).await {
                    Ok(stream) => break (stream, lease, tls),
                    Err(error) if tries < CONNECT_ATTEMPTS => {
                        tracing::debug!(%addr, %error, "endpoint refused; trying another");
                        failed_addrs.push(addr);
                        lease.fail(CONNECT_FAILURE_PENALTY);
                    }
                    Err(error) => {
                        lease.fail(CONNECT_FAILURE_PENALTY);
                        return Err(failed(addr)(error.into()));
                    }
                }
            };
            let addr = lease.address();
            let labels = lease.metadata().labels.clone();
            open(proxy, stream, addr, labels, tls, Some(lease), direction).await
        }
    }
}

/// Mutual TLS for a discovered endpoint (`None`: plaintext); an error when
/// it needs TLS this proxy cannot offer yet.
fn endpoint_tls(proxy: &Proxy, meta: &EndpointMeta) -> Result<Option<ClientTls>, ForwardError> {
    proxy
        .client_tls(meta.identity.as_ref(), meta.opaque_transport_port)
        .map_err(|error| ProxyError::from(error).into())
}

async fn connect_to(
    proxy: &Proxy,
    target: SocketAddr,
    direction: Direction,
) -> Result<TcpStream, ForwardError> {
    if proxy.is_own_listener(target) {
        return Err(ForwardError::Loop);
    }
    Ok(connect::connect(target, proxy.connect_timeout(direction)).await?)
}

/// Counts a connected stream in the TCP metrics and sets up TLS (and the
/// transport header) over it when the endpoint is meshed.
async fn open(
    proxy: &Proxy,
    stream: TcpStream,
    target: SocketAddr,
    labels: Arc<TargetLabels>,
    tls: Option<ClientTls>,
    lease: Option<Lease>,
    direction: Direction,
) -> Result<Upstream, ForwardFailure> {
    let metered = MeteredIo::new(
        stream,
        proxy.metrics.tcp.open(TcpLabels {
            direction,
            peer: Peer::Destination,
            target: labels,
        }),
    );
    match transport::connect(metered, tls.as_ref(), target.port(), None).await {
        Ok(io) => Ok(Upstream {
            io,
            target,
            first: Bytes::new(),
            lease,
        }),
        Err(error) => Err(ForwardFailure {
            peer: target,
            error: error.into(),
        }),
    }
}
