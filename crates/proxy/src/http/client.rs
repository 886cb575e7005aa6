//! Connections from the proxy to targets: a pool of HTTP/1.1 connections per
//! endpoint (idle ones closed after the idle timeout), one multiplexed
//! HTTP/2 connection per endpoint, and fresh connections for upgrades.
//!
//! HTTP/1 requests to a meshed proxy that takes HTTP/2 use up to
//! `meshed_http1_connections` HTTP/1.1 connections per endpoint while one is
//! free, and travel upgraded on the HTTP/2 connection only when they are all
//! busy ([`meshed_http1`]): at low load a request then costs what HTTP/1.1
//! over mutual TLS costs (no HTTP/2 framing, no task per stream on either
//! side), and under concurrency requests still share one connection. Those
//! connections stay open like the HTTP/2 one (until the peer closes them),
//! not closed after the pool's idle timeout: reopening would cost a TLS
//! handshake.
//!
//! Every connection is opened with the connect timeout and recorded in the
//! `tcp_*` metrics with `peer="dst"`.

use crate::connect;
use crate::http::errors::{ProxyError, describe_upstream_error, upstream_error};
use crate::http::request_body::{ClientBodyWatch, RequestBody};
use crate::http::resend::{self, Loss, ResendableCopy};
use crate::tls::transport::{self, ClientTls, Transport};
use crate::tls::transport_header::SessionProtocol;

/// A connection to an endpoint: metered TCP, plaintext or TLS.
type Upstream = Transport<MeteredIo<TcpStream>>;
use crate::direction::Direction;
use crate::io::MeteredIo;
use crate::metrics::TcpMetrics;
use crate::metrics::labels::{Peer, TargetLabels, TcpLabels};
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::PoisonError;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

/// Where one request goes and how to reach it.
#[derive(Clone, Debug)]
pub(crate) struct Endpoint {
    /// The endpoint's address.
    pub addr: SocketAddr,
    /// The direction of the traffic, for metrics.
    pub direction: Direction,
    /// The endpoint's metric labels (TLS status, `dst_*`).
    pub labels: Arc<TargetLabels>,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// Mutual TLS to the endpoint's proxy, when discovery names its identity.
    pub tls: Option<ClientTls>,
}

impl Endpoint {
    /// The pool key: connections are shared per address and TLS identity.
    fn key(&self) -> PoolKey {
        (
            self.addr,
            self.tls.as_ref().map(|tls| tls.server_name.clone()),
        )
    }
}

/// Pooled connections are keyed by address and the identity they verified.
type PoolKey = (SocketAddr, Option<Arc<str>>);

/// Pools by endpoint, looked up twice per request (checkout and checkin):
/// foldhash costs a fraction of SipHash on these short keys, and its seed is
/// still random per process.
type PoolMap<V> = HashMap<PoolKey, V, foldhash::fast::RandomState>;

/// Pool settings.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PoolSettings {
    /// Idle HTTP/1.1 connections are closed after this.
    pub idle_timeout: Duration,
    /// Idle HTTP/1.1 connections kept per endpoint.
    pub max_idle: usize,
    /// HTTP/1.1 connections per meshed endpoint that takes HTTP/2, used
    /// while free before requests travel upgraded (0: always upgraded).
    pub meshed_http1_connections: usize,
}

/// How an HTTP/1 request to a meshed proxy that takes HTTP/2 travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MeshedHttp1 {
    /// On a free HTTP/1.1 connection.
    Free,
    /// On a new HTTP/1.1 connection (fewer than the limit are open).
    Open,
    /// Upgraded, on the endpoint's HTTP/2 connection.
    Upgrade,
}

/// The choice for one request: a free connection first, a new one while
/// fewer than `limit` are open (or being opened), else upgraded.
pub(crate) fn meshed_http1(free: bool, open: usize, limit: usize) -> MeshedHttp1 {
    if limit == 0 {
        MeshedHttp1::Upgrade
    } else if free {
        MeshedHttp1::Free
    } else if open < limit {
        MeshedHttp1::Open
    } else {
        MeshedHttp1::Upgrade
    }
}

/// What became of an HTTP/1 request offered to a meshed endpoint's
/// HTTP/1.1 connections.
pub(crate) enum MeshedSend {
    /// It went out on one of them.
    Sent(Result<Response<Incoming>, SendError>),
    /// They were all busy: it is to travel upgraded.
    Busy(Request<RequestBody>),
}

/// A request that failed. When it may go to another endpoint (none of it
/// was sent, or it is idempotent without a body and its connection was lost
/// before any response), the request comes back.
pub(crate) struct SendError {
    /// What went wrong.
    pub error: ProxyError,
    /// The request, if it may be sent again elsewhere.
    pub unsent: Option<Request<RequestBody>>,
    /// Whether the request had been written to the endpoint (it comes back
    /// only because it is idempotent and has no body): sent again once at
    /// most.
    pub written: bool,
}

impl SendError {
    fn sent(error: ProxyError) -> SendError {
        SendError {
            error,
            unsent: None,
            written: true,
        }
    }

    fn unsent(error: ProxyError, request: Request<RequestBody>) -> SendError {
        SendError {
            error,
            unsent: Some(request),
            written: false,
        }
    }

    fn resendable(error: ProxyError, request: Request<RequestBody>) -> SendError {
        SendError {
            error,
            unsent: Some(request),
            written: true,
        }
    }
}

impl From<SendError> for ProxyError {
    fn from(error: SendError) -> ProxyError {
        error.error
    }
}

struct PooledHttp1 {
    sender: http1::SendRequest<RequestBody>,
    returned: Instant,
}

/// An endpoint's HTTP/1.1 connections.
#[derive(Default)]
struct Http1Pool {
    /// Connections handed back (free, or still finishing a response).
    pooled: Vec<PooledHttp1>,
    /// Connections open or being opened, pooled or not.
    open: Arc<AtomicUsize>,
    /// Connections to a meshed proxy that takes HTTP/2: limited in number
    /// and not closed for idleness.
    meshed: bool,
}

impl Http1Pool {
    /// Drops closed connections, and those returned before `deadline`
    /// unless they are a meshed endpoint's.
    fn drop_stale(&mut self, deadline: Option<Instant>) {
        let meshed = self.meshed;
        self.pooled.retain(|pooled| {
            !pooled.sender.is_closed()
                && (meshed || deadline.is_none_or(|deadline| pooled.returned >= deadline))
        });
    }

    /// Takes a free connection after dropping stale ones ([`Self::drop_stale`]),
    /// the most recently returned first: it is the likeliest to be warm.
    fn take_free(&mut self, deadline: Option<Instant>) -> Option<http1::SendRequest<RequestBody>> {
        self.drop_stale(deadline);
        let position = self
            .pooled
            .iter()
            .rposition(|pooled| pooled.sender.is_ready())?;
        Some(self.pooled.swap_remove(position).sender)
    }
}

/// One open (or opening) HTTP/1.1 connection, counted in its pool while
/// this lives (it moves into the connection's task).
struct OpenConnection(Arc<AtomicUsize>);

impl OpenConnection {
    fn new(open: &Arc<AtomicUsize>) -> OpenConnection {
        open.fetch_add(1, Ordering::Relaxed);
        OpenConnection(open.clone())
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Where an HTTP/1 request's first attempt goes.
enum Http1Start {
    /// Any free pooled connection, else a new one.
    Checkout,
    /// This pooled connection.
    Pooled(http1::SendRequest<RequestBody>),
    /// A new connection, already counted.
    Open(OpenConnection),
}

type Http2Slot = Arc<tokio::sync::Mutex<Option<http2::SendRequest<RequestBody>>>>;

/// The proxy's HTTP client, shared by every connection of a direction.
pub(crate) struct HttpClient {
    http1_pools: Mutex<PoolMap<Http1Pool>>,
    http2_connections: Mutex<PoolMap<Http2Slot>>,
    settings: PoolSettings,
    tcp_metrics: TcpMetrics,
}

impl HttpClient {
    /// A client with empty pools.
    pub(crate) fn new(settings: PoolSettings, tcp_metrics: TcpMetrics) -> Self {
        HttpClient {
            http1_pools: Mutex::new(PoolMap::default()),
            http2_connections: Mutex::new(PoolMap::default()),
            settings,
            tcp_metrics,
        }
    }

    async fn connect(
        &self,
        endpoint: &Endpoint,
        protocol: SessionProtocol,
    ) -> Result<TokioIo<Upstream>, ProxyError> {
        let connect_addr = ClientTls::connect_addr(endpoint.tls.as_ref(), endpoint.addr);
        let stream = connect::connect(connect_addr, endpoint.connect_timeout).await?;
        let metrics = self.tcp_metrics.open(TcpLabels {
            direction: endpoint.direction,
            peer: Peer::Destination,
            target: endpoint.labels.clone(),
        });
        let metered = MeteredIo::new(stream, metrics);
        let transport = transport::connect(
            metered,
            endpoint.tls.as_ref(),
            endpoint.addr.port(),
            Some(protocol),
        )
        .await?;
        Ok(TokioIo::new(transport))
    }

    /// Sends an HTTP/1.x request, reusing an idle pooled connection when one
    /// is ready.
    ///
    /// A pooled connection may have been closed by the target just now:
    /// hyper hands the request back when nothing of it was written, and it
    /// goes out on the next connection. When the connection is lost after the
    /// request was written but before any response, an idempotent request
    /// without a body goes out once more ([`resend`](crate::http::resend)):
    /// on a fresh connection if the lost one was pooled, else handed back
    /// for another endpoint.
    pub(crate) async fn send_http1(
        &self,
        endpoint: &Endpoint,
        request: Request<RequestBody>,
    ) -> Result<Response<Incoming>, SendError> {
        self.send_http1_from(endpoint, request, Http1Start::Checkout)
            .await
    }

    /// Offers an HTTP/1 request for a meshed proxy that takes HTTP/2 to the
    /// endpoint's HTTP/1.1 connections ([`meshed_http1`]); it comes back
    /// when they are all busy, to travel upgraded.
    pub(crate) async fn send_meshed_http1(
        &self,
        endpoint: &Endpoint,
        request: Request<RequestBody>,
    ) -> MeshedSend {
        match self.choose_meshed_http1(endpoint.key()) {
            Some(start) => MeshedSend::Sent(self.send_http1_from(endpoint, request, start).await),
            None => MeshedSend::Busy(request),
        }
    }

    /// The first attempt of a meshed HTTP/1 request, decided under the pool's
    /// lock (a new connection counted at once, so racing requests do not
    /// open more than the limit); `None`: upgrade it.
    fn choose_meshed_http1(&self, key: PoolKey) -> Option<Http1Start> {
        let limit = self.settings.meshed_http1_connections;
        if limit == 0 {
            return None;
        }
        let mut pools = self
            .http1_pools
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let pool = pools.entry(key).or_default();
        pool.meshed = true;
        // With a limit, a free connection is always taken (`Free`).
        let free = pool.take_free(None);
        let open = pool.open.load(Ordering::Relaxed);
        match meshed_http1(free.is_some(), open, limit) {
            MeshedHttp1::Free => free.map(Http1Start::Pooled),
            MeshedHttp1::Open => Some(Http1Start::Open(OpenConnection::new(&pool.open))),
            MeshedHttp1::Upgrade => None,
        }
    }

    async fn send_http1_from(
        &self,
        endpoint: &Endpoint,
        request: Request<RequestBody>,
        start: Http1Start,
    ) -> Result<Response<Incoming>, SendError> {
        let (request, client_body) = watch_client_body(request);
        let copy = ResendableCopy::of(&request);
        let failed =
            |error: &hyper::Error| upstream_error(endpoint.addr, error, client_body.failed());
        let mut request = request;
        let mut start = start;
        let mut reuse = true;
        let mut resent = false;
        loop {
            let (pooled, counted) = match std::mem::replace(&mut start, Http1Start::Checkout) {
                Http1Start::Pooled(sender) => (Some(sender), None),
                Http1Start::Open(counted) => (None, Some(counted)),
                Http1Start::Checkout if reuse => (self.checkout_http1(&endpoint.key()), None),
                Http1Start::Checkout => (None, None),
            };
            let reused = pooled.is_some();
            let mut sender = match pooled {
                Some(sender) => sender,
                // Boxed: a new connection's future (connect, TLS, handshake)
                // is large, and most requests find a pooled one.
                None => match Box::pin(self.handshake_http1(endpoint, false, counted)).await {
                    Ok(sender) => sender,
                    Err(error) => {
                        return Err(SendError::unsent(error, request));
                    }
                },
            };
            let mut error = match sender.try_send_request(request).await {
                Ok(response) => {
                    self.checkin_http1(endpoint.key(), sender);
                    return Ok(response);
                }
                Err(error) => error,
            };
            if let Some(unsent) = error.take_message() {
                if reused {
                    request = unsent;
                    continue;
                }
                return Err(SendError::unsent(failed(&error.into_error()), unsent));
            }
            let error = error.into_error();
            let resend = copy.as_ref().filter(|copy| {
                resend::may_resend(copy.method(), true, client_body.failed(), Loss::of(&error))
            });
            // A written request goes out again once in all: here on a fresh
            // connection after a pooled one, or by the caller elsewhere.
            match resend {
                Some(_) if resent => return Err(SendError::sent(failed(&error))),
                Some(copy) if reused => {
                    tracing::debug!(endpoint = %endpoint.addr, %error, "pooled connection lost; sending again on a fresh one");
                    resent = true;
                    reuse = false;
                    request = copy.request();
                }
                Some(copy) => {
                    return Err(SendError::resendable(failed(&error), copy.request()));
                }
                None => return Err(SendError::sent(failed(&error))),
            }
        }
    }

    /// Sends a request that switches protocols (Upgrade or CONNECT) on a
    /// connection of its own, which hyper hands over after the 101/2xx.
    pub(crate) async fn send_upgrade(
        &self,
        endpoint: &Endpoint,
        request: Request<RequestBody>,
    ) -> Result<Response<Incoming>, ProxyError> {
        let mut sender = self.handshake_http1(endpoint, true, None).await?;
        sender
            .send_request(request)
            .await
            .map_err(|error| ProxyError::Upstream {
                target: endpoint.addr,
                reason: describe_upstream_error(&error),
            })
    }

    /// Opens an HTTP/1.1 connection, its task spawned; one for the pool is
    /// counted in it (`counted`, if the caller already did) while it is open.
    async fn handshake_http1(
        &self,
        endpoint: &Endpoint,
        upgrades: bool,
        counted: Option<OpenConnection>,
    ) -> Result<http1::SendRequest<RequestBody>, ProxyError> {
        let counted = match counted {
            Some(counted) => Some(counted),
            None if upgrades => None,
            None => Some(self.count_open(endpoint.key())),
        };
        let io = self.connect(endpoint, SessionProtocol::Http1).await?;
        let failed = |error: hyper::Error| ProxyError::Upstream {
            target: endpoint.addr,
            reason: describe_upstream_error(&error),
        };
        let (mut sender, connection) = http1::Builder::new()
            .preserve_header_case(true)
            .handshake(io)
            .await
            .map_err(failed)?;
        if upgrades {
            tokio::spawn(async move {
                let _ = connection.with_upgrades().await;
            });
        } else {
            tokio::spawn(async move {
                let _counted = counted;
                let _ = connection.await;
            });
        }
        sender.ready().await.map_err(failed)?;
        Ok(sender)
    }

    /// Counts a new connection to `key` in its pool.
    fn count_open(&self, key: PoolKey) -> OpenConnection {
        let mut pools = self
            .http1_pools
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        OpenConnection::new(&pools.entry(key).or_default().open)
    }

    fn checkout_http1(&self, key: &PoolKey) -> Option<http1::SendRequest<RequestBody>> {
        let mut pools = self
            .http1_pools
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        pools
            .get_mut(key)?
            .take_free(Instant::now().checked_sub(self.settings.idle_timeout))
    }

    fn checkin_http1(&self, key: PoolKey, sender: http1::SendRequest<RequestBody>) {
        let mut pools = self
            .http1_pools
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let pool = pools.entry(key).or_default();
        if pool.pooled.len() < self.settings.max_idle.max(1) * 2 {
            pool.pooled.push(PooledHttp1 {
                sender,
                returned: Instant::now(),
            });
        }
    }

    /// Closes pooled HTTP/1.1 connections idle past the idle timeout (but
    /// not a meshed endpoint's few) and forgets closed HTTP/2 connections.
    pub(crate) fn evict_idle(&self) {
        let deadline = Instant::now().checked_sub(self.settings.idle_timeout);
        let max_idle = self.settings.max_idle;
        let mut pools = self
            .http1_pools
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for pool in pools.values_mut() {
            pool.drop_stale(deadline);
            let idle = pool
                .pooled
                .iter()
                .filter(|pooled| pooled.sender.is_ready())
                .count();
            if idle > max_idle {
                let mut surplus = idle - max_idle;
                pool.pooled.retain(|pooled| {
                    if surplus > 0 && pooled.sender.is_ready() {
                        surplus -= 1;
                        false
                    } else {
                        true
                    }
                });
            }
        }
        pools.retain(|_, pool| !pool.pooled.is_empty() || pool.open.load(Ordering::Relaxed) > 0);
        drop(pools);
        let mut connections = self
            .http2_connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        connections.retain(|_, slot| match slot.try_lock() {
            Ok(sender) => sender.as_ref().is_some_and(|sender| !sender.is_closed()),
            Err(_) => true,
        });
    }

    /// Sends an HTTP/2 request on the endpoint's one multiplexed connection,
    /// opening it first if needed. A request that never went out (the
    /// connection could not be made or was closed) comes back for another
    /// endpoint, as does an idempotent one without a body whose connection
    /// was lost before any response ([`resend`](crate::http::resend)).
    pub(crate) async fn send_http2(
        &self,
        endpoint: &Endpoint,
        request: Request<RequestBody>,
    ) -> Result<Response<Incoming>, SendError> {
        let (request, client_body) = watch_client_body(request);
        let copy = ResendableCopy::of(&request);
        let failed =
            |error: &hyper::Error| upstream_error(endpoint.addr, error, client_body.failed());
        let slot = self
            .http2_connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(endpoint.key())
            .or_default()
            .clone();
        let mut sender = {
            let mut current = slot.lock().await;
            match current.as_ref() {
                Some(sender) if !sender.is_closed() => sender.clone(),
                // Boxed: a new connection's future (connect, TLS, handshake)
                // is large, and most requests find the open one.
                _ => match Box::pin(self.handshake_http2(endpoint)).await {
                    Ok(sender) => {
                        *current = Some(sender.clone());
                        sender
                    }
                    Err(Http2Handshake::Connect(error)) => {
                        return Err(SendError::unsent(error, request));
                    }
                    Err(Http2Handshake::Hyper(error)) => {
                        return Err(SendError::unsent(failed(&error), request));
                    }
                },
            }
        };
        if let Err(error) = sender.ready().await {
            return Err(SendError::unsent(failed(&error), request));
        }
        let mut error = match sender.try_send_request(request).await {
            Ok(response) => return Ok(response),
            Err(error) => error,
        };
        if let Some(unsent) = error.take_message() {
            return Err(SendError::unsent(failed(&error.into_error()), unsent));
        }
        let error = error.into_error();
        let resend = copy.filter(|copy| {
            resend::may_resend(copy.method(), true, client_body.failed(), Loss::of(&error))
        });
        Err(match resend {
            Some(copy) => SendError::resendable(failed(&error), copy.request()),
            None => SendError::sent(failed(&error)),
        })
    }
}

/// Why a new HTTP/2 connection could not be used.
enum Http2Handshake {
    /// Connecting (TCP, TLS, transport header) failed.
    Connect(ProxyError),
    /// The HTTP/2 handshake failed.
    Hyper(hyper::Error),
}

impl HttpClient {
    /// Opens a new HTTP/2 connection to the endpoint, its connection task
    /// spawned.
    async fn handshake_http2(
        &self,
        endpoint: &Endpoint,
    ) -> Result<http2::SendRequest<RequestBody>, Http2Handshake> {
        let io = self
            .connect(endpoint, SessionProtocol::Http2)
            .await
            .map_err(Http2Handshake::Connect)?;
        let (sender, connection) = http2::Builder::new(TokioExecutor::new())
            .handshake(io)
            .await
            .map_err(Http2Handshake::Hyper)?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(sender)
    }
}

/// The request with failures of the client's body noted.
fn watch_client_body(request: Request<RequestBody>) -> (Request<RequestBody>, ClientBodyWatch) {
    let (parts, body) = request.into_parts();
    let (body, watch) = body.watched();
    (Request::from_parts(parts, body), watch)
}

#[cfg(test)]
mod tests {
    use super::{MeshedHttp1, meshed_http1};

    #[test]
    fn a_meshed_http1_request_takes_a_free_connection_then_a_new_one_then_the_upgrade() {
        use MeshedHttp1::{Free, Open, Upgrade};
        // (a connection free, connections open, limit) → choice
        let table = [
            ((false, 0, 1), Open),
            ((true, 1, 1), Free),
            ((false, 1, 1), Upgrade),
            ((false, 1, 2), Open),
            ((true, 2, 2), Free),
            ((false, 2, 2), Upgrade),
            // More open than the limit (a pooled one lost and replaced).
            ((false, 3, 2), Upgrade),
            ((true, 3, 2), Free),
            // 0: always upgraded, as Linkerd.
            ((false, 0, 0), Upgrade),
            ((true, 1, 0), Upgrade),
        ];
        for ((free, open, limit), expected) in table {
            assert_eq!(
                meshed_http1(free, open, limit),
                expected,
                "free {free}, open {open}, limit {limit}"
            );
        }
    }
}
