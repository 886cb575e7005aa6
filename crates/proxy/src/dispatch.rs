//! What happens to an accepted connection once its target is known (or known
//! to come per request, on the explicit listener): opaque ports go straight
//! to TCP forwarding; everything else is detected first.
//!
//! ```text
//! accepted ─► opaque port? ──yes──► tcp::forward
//!                │no
//!                ▼
//!             detect ─► HTTP/1, HTTP/2 ─► http::server (per-request forwarding)
//!                    ─► TLS, other, timeout ─► tcp::forward (explicit listener: refused)
//!
//! inbound refusals (inbound_policy): a transport header without a verified
//! client certificate or naming a port the workload does not serve; a direct
//! connection to the inbound port without one (it would loop); a request line
//! over 8 KiB (431) or one only a lenient server would read (400); a detect
//! timeout with identity on (by default)
//! ```
//!
//! A CONNECT tunnel opened on the explicit listener comes back here with its
//! target, so what travels inside it is detected and proxied the same way.

use crate::config::Config;
use crate::config::DetectTimeoutAction;
use crate::detect::{self, Detection, Protocol};
use crate::direction::Direction;
use crate::drain::DrainWatch;
use crate::http::client::HttpClient;
use crate::http::errors::ProxyError;
use crate::http::header_case::{CaseMaps, SniffedHeads};
use crate::inbound_policy::{self, InboundPorts, Refusal};
use crate::io::{Io, PrefixedIo};
use crate::log_limit::LogLimit;
use crate::metrics::labels::{TargetLabels, TlsStatus};
use crate::metrics::route::RouteHandleCache;
use crate::metrics::{HttpHandleCache, ProxyMetrics, TcpConnectionMetrics};
use crate::routing::{Plan, Router, TargetDiscovery};
use crate::tls::accept::{self, Accepted};
use crate::tls::config::{TlsConfigs, TlsStore};
use crate::tls::transport::ClientTls;
use crate::tls::transport_header::SessionProtocol;
use crate::{http, tcp};
use futures::future::BoxFuture;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// State shared by every connection of the process.
pub struct Proxy {
    /// The effective configuration.
    pub config: Arc<Config>,
    /// The data path's metrics.
    pub metrics: ProxyMetrics,
    /// Client towards local apps.
    pub inbound_client: HttpClient,
    /// Client towards remote targets.
    pub outbound_client: HttpClient,
    /// The addresses the proxy's own listeners are bound to.
    pub listener_addrs: Vec<SocketAddr>,
    /// Budget for log lines caused by traffic.
    pub log_limit: LogLimit,
    /// Discovery-driven outbound routing; `None` without a Destination service.
    pub outbound: Option<Router>,
    /// TLS made from the proxy's identity; `None` without an identity.
    pub tls: Option<Arc<TlsStore>>,
    /// hyper case maps for `l5d-orig-header-case` values (inbound).
    pub case_maps: CaseMaps,
    /// Active taps: every HTTP request is offered to them.
    pub taps: Arc<crate::tap::Taps>,
}

impl Proxy {
    /// The HTTP client for a direction.
    pub fn client(&self, direction: Direction) -> &HttpClient {
        match direction {
            Direction::Inbound => &self.inbound_client,
            Direction::Outbound => &self.outbound_client,
        }
    }

    /// The connect timeout for a direction.
    pub fn connect_timeout(&self, direction: Direction) -> Duration {
        match direction {
            Direction::Inbound => self.config.inbound_connect_timeout,
            Direction::Outbound => self.config.outbound_connect_timeout,
        }
    }

    /// Logs a problem caused by traffic (a malformed request, an unreachable
    /// target) at info level, within the log budget.
    pub fn log_traffic_error(
        &self,
        direction: Direction,
        peer: SocketAddr,
        what: &str,
        error: &dyn std::fmt::Display,
    ) {
        if let Some(allowed) = self.log_limit.allow() {
            tracing::info!(
                direction = direction.as_str(),
                %peer,
                held_back = allowed.held_back,
                "{what}: {error}"
            );
        }
    }

    /// Mutual TLS for an endpoint whose proxy has `identity`; `None` for a
    /// plaintext endpoint. Fails when the identity is known but this proxy
    /// has no certificate yet (never falls back to plaintext).
    pub fn client_tls(
        &self,
        identity: Option<&Arc<str>>,
        transport_port: Option<u16>,
    ) -> Result<Option<ClientTls>, ProxyError> {
        let Some(identity) = identity else {
            return Ok(None);
        };
        let configs = self
            .tls
            .as_ref()
            .and_then(|store| store.current())
            .ok_or(ProxyError::NoIdentity)?;
        let config = match transport_port {
            Some(_) => configs.client_transport.clone(),
            None => configs.client.clone(),
        };
        Ok(Some(ClientTls {
            server_name: identity.clone(),
            config,
            transport_port,
        }))
    }

    /// Whether connecting to `target` would reach one of the proxy's own
    /// listeners (a forwarding loop).
    pub fn is_own_listener(&self, target: SocketAddr) -> bool {
        self.listener_addrs
            .iter()
            .any(|listener| targets_listener(target, *listener))
    }

    /// Whether an inbound connection's `target` is the proxy itself: a
    /// direct connection to the inbound port (transparent mode), whose only
    /// use is mutual TLS with a transport header. Inbound targets are local
    /// addresses (the original destination of traffic to this host), so any
    /// of the listeners' ports means the proxy, whatever IP it was reached on.
    pub fn is_direct_inbound(&self, target: SocketAddr) -> bool {
        self.config.inbound_forward_addr.is_none()
            && (self.is_own_listener(target)
                || self
                    .listener_addrs
                    .iter()
                    .any(|listener| listener.port() == target.port()))
    }

    /// Whether a transport header from `client_identity` may name `port`.
    pub fn transport_header_allowed(
        &self,
        client_identity: Option<&str>,
        port: u16,
    ) -> Result<(), Refusal> {
        let own_ports: Vec<u16> = self.listener_addrs.iter().map(SocketAddr::port).collect();
        let ports = InboundPorts {
            allowed: self.config.inbound_ports.as_ref(),
            forward_port: self.config.inbound_forward_addr.map(|addr| addr.port()),
            denied: &self.config.inbound_deny_ports,
            own_ports: &own_ports,
        };
        inbound_policy::transport_header_allowed(client_identity, port, &ports)
    }

    /// Logs (within the budget) and counts an inbound connection refused.
    pub fn refuse_inbound(&self, client_addr: SocketAddr, refusal: Refusal) {
        self.log_traffic_error(
            Direction::Inbound,
            client_addr,
            "refused a connection",
            &refusal,
        );
        self.metrics
            .tcp_errors
            .record(Direction::Inbound, refusal.metric_label());
    }
}

/// Whether a connection to `target` lands on `listener`. Connecting to the
/// unspecified address (`0.0.0.0`, `::`) reaches the host itself, so such a
/// target lands on every listener of its port.
pub fn targets_listener(target: SocketAddr, listener: SocketAddr) -> bool {
    if target.port() != listener.port() {
        return false;
    }
    let target_ip = target.ip().to_canonical();
    let listener_ip = listener.ip().to_canonical();
    target_ip == listener_ip
        || target_ip.is_unspecified()
        || (listener_ip.is_unspecified() && target_ip.is_loopback())
}

/// TLS status of connections the proxy opens in a direction (until mTLS).
pub fn connect_tls(direction: Direction) -> TlsStatus {
    match direction {
        Direction::Inbound => TlsStatus::Loopback,
        Direction::Outbound => TlsStatus::NotProvidedByServiceDiscovery,
    }
}

/// TLS status of connections the proxy accepts in a direction (until mTLS).
pub fn accept_tls(direction: Direction) -> TlsStatus {
    match direction {
        Direction::Inbound => TlsStatus::NoTlsFromRemote,
        Direction::Outbound => TlsStatus::Loopback,
    }
}

/// The TLS labels of HTTP request metrics, as Linkerd writes them: inbound,
/// the client's side (mutual TLS with its identity, or plaintext from the
/// remote); outbound, the endpoint's side.
pub fn request_tls(direction: Direction, client_identity: Option<&Arc<str>>) -> TlsStatus {
    match (direction, client_identity) {
        (Direction::Inbound, Some(identity)) => TlsStatus::FromClient(Some(identity.clone())),
        (Direction::Inbound, None) => TlsStatus::NoTlsFromRemote,
        (Direction::Outbound, _) => TlsStatus::NotProvidedByServiceDiscovery,
    }
}

/// Where an accepted connection's traffic goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// One address for the whole connection (original destination,
    /// inbound forward address, or a CONNECT tunnel's target).
    Addr(SocketAddr),
    /// Named by each request (explicit HTTP proxy requests).
    Explicit,
}

/// What the handlers of one client connection share.
pub struct ConnectionContext {
    /// Process-wide state.
    pub proxy: Arc<Proxy>,
    /// Traffic direction.
    pub direction: Direction,
    /// The client's address.
    pub client_addr: SocketAddr,
    /// Where traffic goes.
    pub target: Target,
    /// Held by tunnels spawned from this connection.
    pub drain: DrainWatch,
    /// The client's verified identity, when the proxy terminated mutual TLS.
    pub client_identity: Option<Arc<str>>,
    /// Metric labels of the last target, made at a connection's first
    /// request and reused while its requests keep one target.
    target_labels: Mutex<Option<(SocketAddr, Arc<TargetLabels>)>>,
    /// The last request authority and its metric label: clients mostly send
    /// the same one on every request of a connection.
    last_authority: Mutex<Option<(String, Arc<str>)>>,
    /// The HTTP metric handles this connection's requests last used.
    metric_handles: OnceLock<Arc<HttpHandleCache>>,
    /// The route metric handles this connection's requests last used.
    route_handles: OnceLock<Arc<RouteHandleCache>>,
    /// Request heads as the client wrote them (outbound HTTP/1 with mTLS).
    sniffed_heads: OnceLock<Arc<SniffedHeads>>,
    /// Discovery of the last target this connection's traffic went to.
    discovery: tokio::sync::Mutex<Option<CachedDiscovery>>,
    /// A plan decided before the connection existed (a CONNECT tunnel to a
    /// discovered endpoint): used instead of asking discovery.
    fixed_plan: Option<Plan>,
    /// The accepted connection's TCP metrics, settled once its TLS status is
    /// known (inbound).
    pub accept_metrics: Option<Arc<TcpConnectionMetrics>>,
}

/// A target and what discovery said about it (`None`: not covered).
struct CachedDiscovery {
    target: DiscoveryKey,
    discovery: Option<TargetDiscovery>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum DiscoveryKey {
    Addr(SocketAddr),
    Name(String, u16),
}

impl ConnectionContext {
    /// The context of a connection whose traffic goes to `target`.
    pub fn new(
        proxy: Arc<Proxy>,
        direction: Direction,
        client_addr: SocketAddr,
        target: Target,
        drain: DrainWatch,
    ) -> ConnectionContext {
        ConnectionContext {
            proxy,
            direction,
            client_addr,
            target,
            drain,
            client_identity: None,
            // Made at the first request (`target_labels`): a connection
            // that never carries HTTP holds none.
            target_labels: Mutex::new(None),
            last_authority: Mutex::new(None),
            metric_handles: OnceLock::new(),
            route_handles: OnceLock::new(),
            sniffed_heads: OnceLock::new(),
            discovery: tokio::sync::Mutex::new(None),
            fixed_plan: None,
            accept_metrics: None,
        }
    }

    /// Records the accepted connection's opening with its TLS status (no
    /// change when `None`); nothing after the first call.
    pub fn settle_accept(&self, tls: Option<TlsStatus>) {
        if let Some(metrics) = &self.accept_metrics {
            metrics.settle(tls);
        }
    }

    /// The context of a connection whose plan is already known.
    pub fn with_plan(mut self, plan: Plan) -> ConnectionContext {
        if let Plan::Endpoint { meta, .. } = &plan
            && let Target::Addr(addr) = self.target
        {
            *self.target_labels.get_mut().expect("labels lock poisoned") =
                Some((addr, meta.labels.clone()));
        }
        self.fixed_plan = Some(plan);
        self
    }

    /// The context of a connection whose client proved `identity` with
    /// mutual TLS (inbound).
    pub fn with_client_identity(mut self, identity: Option<Arc<str>>) -> ConnectionContext {
        self.client_identity = identity;
        // Labels made before carry the old TLS status.
        *self.target_labels.get_mut().expect("labels lock poisoned") = None;
        self
    }

    /// The HTTP metric handles this connection's requests last used (made
    /// at the first request: a connection that never carries HTTP holds none).
    pub fn metric_handles(&self) -> &Arc<HttpHandleCache> {
        self.metric_handles.get_or_init(Arc::default)
    }

    /// The route metric handles this connection's requests last used.
    pub fn route_handles(&self) -> &Arc<RouteHandleCache> {
        self.route_handles.get_or_init(Arc::default)
    }

    /// Request heads as the client wrote them (outbound HTTP/1 with mTLS).
    pub fn sniffed_heads(&self) -> &Arc<SniffedHeads> {
        self.sniffed_heads.get_or_init(Arc::default)
    }

    /// What discovery says to do with traffic to `addr` (outbound only).
    pub async fn plan_for_addr(&self, addr: SocketAddr) -> Plan {
        self.plan(
            |key| *key == DiscoveryKey::Addr(addr),
            || DiscoveryKey::Addr(addr),
        )
        .await
    }

    /// What discovery says to do with requests for `host:port` (outbound only).
    pub async fn plan_for_name(&self, host: &str, port: u16) -> Plan {
        self.plan(
            |key| matches!(key, DiscoveryKey::Name(known, known_port) if known == host && *known_port == port),
            || DiscoveryKey::Name(host.to_string(), port),
        )
        .await
    }

    /// The plan for a target, reusing this connection's discovery while its
    /// requests keep one target (`is_cached`), starting one otherwise.
    async fn plan(
        &self,
        is_cached: impl Fn(&DiscoveryKey) -> bool,
        key: impl FnOnce() -> DiscoveryKey,
    ) -> Plan {
        if let Some(plan) = &self.fixed_plan {
            return plan.clone();
        }
        let Some(outbound) = self.outbound() else {
            return Plan::Original;
        };
        let mut cached = self.discovery.lock().await;
        if !cached
            .as_ref()
            .is_some_and(|cached| is_cached(&cached.target))
        {
            let target = key();
            let discovery = match &target {
                DiscoveryKey::Addr(addr) => outbound.discover(&addr.ip().to_string(), addr.port()),
                DiscoveryKey::Name(host, port) => outbound.discover(host, *port),
            };
            *cached = Some(CachedDiscovery { target, discovery });
        }
        match cached.as_mut().and_then(|cached| cached.discovery.as_mut()) {
            Some(discovery) => outbound.plan(discovery).await,
            None => Plan::Original,
        }
    }

    /// The outbound router, for outbound connections when discovery is on.
    pub fn outbound(&self) -> Option<&Router> {
        match self.direction {
            Direction::Outbound => self.proxy.outbound.as_ref(),
            Direction::Inbound => None,
        }
    }

    /// Metric labels for requests sent to `addr`.
    pub fn target_labels(&self, addr: SocketAddr) -> Arc<TargetLabels> {
        let mut last = self.target_labels.lock().expect("labels lock poisoned");
        if let Some((last_addr, labels)) = last.as_ref()
            && *last_addr == addr
        {
            return labels.clone();
        }
        let labels = TargetLabels::new(
            addr,
            request_tls(self.direction, self.client_identity.as_ref()),
        );
        *last = Some((addr, labels.clone()));
        labels
    }

    /// The `authority` metric label for a request's authority.
    pub fn authority_label(&self, authority: &str) -> Arc<str> {
        let mut last = self.last_authority.lock().expect("authority lock poisoned");
        if let Some((raw, label)) = last.as_ref()
            && raw == authority
        {
            return label.clone();
        }
        let label: Arc<str> = crate::http::headers::authority_label(authority).into();
        *last = Some((authority.to_string(), label.clone()));
        label
    }
}

/// Serves one accepted (or tunnelled) connection to completion.
pub fn serve<I: Io>(io: I, context: ConnectionContext) -> BoxFuture<'static, ()> {
    Box::pin(serve_connection(io, context))
}

async fn serve_connection<I: Io>(mut io: I, context: ConnectionContext) {
    let proxy = context.proxy.clone();
    let direction = context.direction;
    // Inbound, a connection to the proxy's own port carries mutual TLS with
    // a transport header or nothing: anything else would loop back here.
    let direct = match context.target {
        Target::Addr(target) => direction == Direction::Inbound && proxy.is_direct_inbound(target),
        Target::Explicit => false,
    };

    // Outbound, discovery comes first: it may say the target is opaque.
    let plan = match context.target {
        Target::Addr(target) => context.plan_for_addr(target).await,
        Target::Explicit => Plan::Original,
    };

    // Opaque ports skip detection: the server may speak first.
    if let Target::Addr(target) = context.target
        && !direct
        && (proxy.config.opaque_ports.contains(target.port()) || plan.is_opaque())
    {
        proxy.metrics.detected(direction, "opaque_port");
        context.settle_accept(None);
        tcp::forward_planned(&proxy, io, target, plan, direction).await;
        return;
    }

    let detection = detect::detect(&mut io, proxy.config.detect_timeout).await;
    proxy.metrics.detected(direction, detection.metric_label());
    // Inbound TLS asking for our identity is terminated; other TLS passes.
    let terminating = direction == Direction::Inbound
        && matches!(
            detection,
            Detection::Detected {
                protocol: Protocol::Tls,
                ..
            }
        )
        && proxy
            .tls
            .as_ref()
            .is_some_and(|store| store.current().is_some());
    if !terminating {
        context.settle_accept(None);
        if direct && !matches!(detection, Detection::Closed | Detection::Failed(_)) {
            proxy.refuse_inbound(context.client_addr, Refusal::DirectWithoutTransportHeader);
            return;
        }
    }
    let detection = match detection {
        Detection::Detected {
            protocol: Protocol::Tls,
            prefix,
        } if direction == Direction::Inbound => {
            match proxy.tls.as_ref().and_then(|store| store.current()) {
                Some(configs) => {
                    let Target::Addr(target) = context.target else {
                        return;
                    };
                    // Boxed: a connection waiting in detection keeps no room
                    // for the TLS path's state.
                    return Box::pin(terminate(io, prefix, context, target, plan, configs)).await;
                }
                None => Detection::Detected {
                    protocol: Protocol::Tls,
                    prefix,
                },
            }
        }
        // Inbound, what is not HTTP yet is never relayed raw where an HTTP
        // request could follow: the app would get the client's own l5d-*
        // headers unchecked.
        Detection::HttpTooLarge { .. } if direction == Direction::Inbound => {
            proxy.refuse_inbound(context.client_addr, Refusal::RequestLineTooLong);
            Box::pin(answer_and_close(io, REQUEST_LINE_TOO_LONG)).await;
            return;
        }
        Detection::MalformedHttp { .. } if direction == Direction::Inbound => {
            proxy.refuse_inbound(context.client_addr, Refusal::MalformedRequestLine);
            Box::pin(answer_and_close(io, MALFORMED_REQUEST_LINE)).await;
            return;
        }
        Detection::TimedOut { .. }
            if direction == Direction::Inbound
                && proxy.config.inbound_detect_timeout_action() == DetectTimeoutAction::Close =>
        {
            proxy.refuse_inbound(context.client_addr, Refusal::DetectTimeout);
            let _ = io.shutdown().await;
            return;
        }
        other => other,
    };
    match detection {
        Detection::Detected {
            protocol: protocol @ (Protocol::Http1 | Protocol::Http2),
            prefix,
        } => {
            let drain = context.drain.clone();
            http::server::serve(
                PrefixedIo::new(prefix, io),
                protocol,
                Arc::new(context),
                drain,
            )
            .await
        }
        Detection::Detected { prefix, .. }
        | Detection::HttpTooLarge { prefix }
        | Detection::MalformedHttp { prefix }
        | Detection::TimedOut { prefix } => match context.target {
            Target::Addr(target) => {
                tcp::forward_planned(&proxy, PrefixedIo::new(prefix, io), target, plan, direction)
                    .await
            }
            Target::Explicit => {
                proxy.log_traffic_error(
                    direction,
                    context.client_addr,
                    "closed a connection",
                    &"not an HTTP proxy request",
                );
                proxy
                    .metrics
                    .tcp_errors
                    .record(direction, "not a proxy request");
                if !prefix.is_empty() {
                    let _ = io.write_all(NOT_A_PROXY_REQUEST).await;
                }
                let _ = io.shutdown().await;
            }
        },
        Detection::Closed => {}
        Detection::Failed(error) => {
            tracing::debug!(client = %context.client_addr, %error, "reading the first bytes failed");
            proxy.metrics.tcp_errors.record(direction, "i/o");
        }
    }
}

/// The most a refused client's unread bytes are drained before closing, so
/// the kernel sends the answer rather than a reset.
const DRAIN_BEFORE_CLOSE: u64 = 64 * 1024;
/// How long a refused client's unread bytes are drained.
const DRAIN_BEFORE_CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// Writes `answer`, closes the sending side and drains (bounded) what the
/// client still sends, so it reads the answer instead of a reset.
async fn answer_and_close<I: Io>(mut io: I, answer: &[u8]) {
    if io.write_all(answer).await.is_err() || io.shutdown().await.is_err() {
        return;
    }
    let mut unread = (&mut io).take(DRAIN_BEFORE_CLOSE);
    let mut sink = tokio::io::sink();
    let draining = tokio::io::copy(&mut unread, &mut sink);
    let _ = tokio::time::timeout(DRAIN_BEFORE_CLOSE_TIMEOUT, draining).await;
}

/// Terminates inbound TLS that asks for our identity, then serves what is
/// inside: per the transport header (target port, protocol) when the client
/// sent one, else detected like any connection. Other TLS passes through.
async fn terminate<I: Io>(
    io: I,
    prefix: bytes::Bytes,
    context: ConnectionContext,
    target: SocketAddr,
    plan: Plan,
    configs: Arc<TlsConfigs>,
) {
    let proxy = context.proxy.clone();
    let direction = context.direction;
    let timeout = proxy.config.detect_timeout;
    let (mut stream, client_identity, transport) =
        match accept::accept(io, prefix, &configs, timeout).await {
            Ok(Accepted::Terminated {
                stream,
                client_identity,
                transport,
            }) => {
                context.settle_accept(Some(TlsStatus::FromClient(client_identity.clone())));
                (stream, client_identity, transport)
            }
            Ok(Accepted::PassThrough { prefix, io }) => {
                context.settle_accept(None);
                proxy.metrics.detected(direction, "tls_passthrough");
                if proxy.is_direct_inbound(target) {
                    proxy
                        .refuse_inbound(context.client_addr, Refusal::DirectWithoutTransportHeader);
                    return;
                }
                tcp::forward_planned(&proxy, PrefixedIo::new(prefix, io), target, plan, direction)
                    .await;
                return;
            }
            Err(error) => {
                proxy.log_traffic_error(direction, context.client_addr, "TLS not accepted", &error);
                proxy.metrics.tcp_errors.record(direction, "tls");
                return;
            }
        };
    // The transport header names a port of this workload: only a verified
    // mesh client may use it, and only for the workload's own ports.
    let (inner_target, protocol, rest) = if transport {
        if client_identity.is_none() {
            proxy.refuse_inbound(context.client_addr, Refusal::NoClientCertificate);
            return;
        }
        match accept::read_transport_header(&mut stream, timeout).await {
            Ok((header, rest)) => {
                if let Err(refusal) =
                    proxy.transport_header_allowed(client_identity.as_deref(), header.port)
                {
                    proxy.refuse_inbound(context.client_addr, refusal);
                    return;
                }
                (
                    SocketAddr::new(target.ip(), header.port),
                    Some(header.protocol),
                    rest,
                )
            }
            Err(error) => {
                proxy.log_traffic_error(
                    direction,
                    context.client_addr,
                    "transport header refused",
                    &error,
                );
                proxy
                    .metrics
                    .tcp_errors
                    .record(direction, "transport header");
                return;
            }
        }
    } else if proxy.is_direct_inbound(target) {
        proxy.refuse_inbound(context.client_addr, Refusal::DirectWithoutTransportHeader);
        return;
    } else {
        (target, None, bytes::Bytes::new())
    };
    let inner = ConnectionContext::new(
        proxy.clone(),
        direction,
        context.client_addr,
        Target::Addr(inner_target),
        context.drain.clone(),
    )
    .with_client_identity(client_identity);
    // Boxed: what is inside is served by the same (generic) code that
    // served the outer connection.
    let io: Box<dyn Io> = Box::new(PrefixedIo::new(rest, stream));
    match protocol {
        // No transport header: what is inside is detected.
        None => serve(io, inner).await,
        Some(None) => tcp::forward(&proxy, io, inner_target, direction).await,
        Some(Some(session)) => {
            let protocol = match session {
                SessionProtocol::Http1 => Protocol::Http1,
                SessionProtocol::Http2 => Protocol::Http2,
            };
            let drain = inner.drain.clone();
            http::server::serve(io, protocol, Arc::new(inner), drain).await
        }
    }
}

const REQUEST_LINE_TOO_LONG: &[u8] = b"HTTP/1.1 431 Request Header Fields Too Large\r\n\
l5d-proxy-error: request line longer than the proxy's 8 KiB detection buffer\r\n\
content-length: 0\r\nconnection: close\r\n\r\n";

const MALFORMED_REQUEST_LINE: &[u8] = b"HTTP/1.1 400 Bad Request\r\n\
l5d-proxy-error: malformed HTTP request line\r\n\
content-length: 0\r\nconnection: close\r\n\r\n";

const NOT_A_PROXY_REQUEST: &[u8] = b"HTTP/1.1 400 Bad Request\r\n\
l5d-proxy-error: not a proxy request: use an absolute URI (GET http://host:port/path) or CONNECT host:port\r\n\
content-length: 0\r\nconnection: close\r\n\r\n";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loop_detection_table() {
        let table = [
            ("127.0.0.1:4140", "127.0.0.1:4140", true),
            ("127.0.0.1:4143", "0.0.0.0:4143", true),
            ("[::1]:4143", "[::]:4143", true),
            ("10.0.0.5:4143", "0.0.0.0:4143", false),
            ("127.0.0.1:8080", "0.0.0.0:4143", false),
            ("[::ffff:127.0.0.1]:4140", "127.0.0.1:4140", true),
            // The unspecified address connects to the host itself.
            ("0.0.0.0:4191", "127.0.0.1:4191", true),
            ("0.0.0.0:4143", "0.0.0.0:4143", true),
            ("[::]:4191", "127.0.0.1:4191", true),
            ("[::]:4140", "[::1]:4140", true),
            ("[::ffff:0.0.0.0]:4190", "127.0.0.1:4190", true),
            ("0.0.0.0:4192", "127.0.0.1:4191", false),
        ];
        for (target, listener, expected) in table {
            assert_eq!(
                targets_listener(target.parse().unwrap(), listener.parse().unwrap()),
                expected,
                "{target} vs {listener}"
            );
        }
    }
}
