//! What the handlers of one client connection share ([`ConnectionContext`]):
//! the process state, the direction, the client, where traffic goes
//! ([`Target`]), the client's verified identity, and what the connection's
//! requests reuse (metric labels and handles, discovery of the last target).
//! Made by the direction's entry point ([`crate::inbound`],
//! [`crate::outbound`]) and read by every stage after it; it names no stage:
//! a connection opened inside this one (a CONNECT tunnel) is served by the
//! [`ServeFn`] the entry point put here.

use crate::direction::Direction;
use crate::drain::DrainWatch;
use crate::http::header_case::SniffedHeads;
use crate::io::Io;
use crate::metrics::labels::{TargetLabels, TlsStatus};
use crate::metrics::route::RouteHandleCache;
use crate::metrics::{HttpHandleCache, TcpConnectionMetrics};
use crate::policy::inbound::PortPolicy;
use crate::proxy::Proxy;
use crate::routing::inbound::{InboundDiscovery, InboundRoutes};
use crate::routing::{Plan, Router, TargetDiscovery};
use futures::future::BoxFuture;
use std::net::SocketAddr;
use std::sync::PoisonError;
use std::sync::{Arc, Mutex, OnceLock};

/// Serves a connection to completion: a direction's entry point, handed to
/// the stages that open connections inside others (CONNECT tunnels).
pub(crate) type ServeFn = fn(Box<dyn Io>, ConnectionContext) -> BoxFuture<'static, ()>;

/// TLS status of connections the proxy opens in a direction (until mTLS).
pub(crate) fn connect_tls(direction: Direction) -> TlsStatus {
    match direction {
        Direction::Inbound => TlsStatus::Loopback,
        Direction::Outbound => TlsStatus::NotProvidedByServiceDiscovery,
    }
}

/// The TLS labels of HTTP request metrics, as Linkerd writes them: inbound,
/// the client's side (mutual TLS with its identity, or plaintext from the
/// remote); outbound, the endpoint's side.
pub(crate) fn request_tls(direction: Direction, client_identity: Option<&Arc<str>>) -> TlsStatus {
    match (direction, client_identity) {
        (Direction::Inbound, Some(identity)) => TlsStatus::FromClient(Some(identity.clone())),
        (Direction::Inbound, None) => TlsStatus::NoTlsFromRemote,
        (Direction::Outbound, _) => TlsStatus::NotProvidedByServiceDiscovery,
    }
}

/// Where an accepted connection's traffic goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    /// One address for the whole connection (original destination,
    /// inbound forward address, or a CONNECT tunnel's target).
    Addr(SocketAddr),
    /// Named by each request (explicit HTTP proxy requests).
    Explicit,
}

/// What the handlers of one client connection share.
pub(crate) struct ConnectionContext {
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
    /// Serves a connection opened inside this one (a CONNECT tunnel): the
    /// entry point of this connection's direction.
    pub serve_tunnel: ServeFn,
    /// The client's verified identity, when the proxy terminated mutual TLS.
    pub client_identity: Option<Arc<str>>,
    /// The inbound port's authorization policy, read per request (inbound
    /// HTTP; `None` elsewhere).
    pub inbound_policy: Option<PortPolicy>,
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
    /// Boxed, as are the next two: only some connections use them, and
    /// every connection served as HTTP holds its context for its whole life.
    discovery: tokio::sync::Mutex<Option<Box<CachedDiscovery>>>,
    /// The profile lookup of the last service name this connection's
    /// requests named (inbound).
    inbound_discovery: tokio::sync::Mutex<Option<Box<CachedInbound>>>,
    /// A plan decided before the connection existed (a CONNECT tunnel to a
    /// discovered endpoint): used instead of asking discovery.
    fixed_plan: Option<Box<Plan>>,
    /// The accepted connection's TCP metrics, settled once its TLS status is
    /// known (inbound).
    pub accept_metrics: Option<Arc<TcpConnectionMetrics>>,
}

/// A target and what discovery said about it (`None`: not covered).
struct CachedDiscovery {
    target: DiscoveryKey,
    discovery: Option<TargetDiscovery>,
}

/// A service name and its profile lookup (`None`: not looked up).
struct CachedInbound {
    host: String,
    port: u16,
    discovery: Option<InboundDiscovery>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum DiscoveryKey {
    Addr(SocketAddr),
    Name(String, u16),
}

impl ConnectionContext {
    /// The context of a connection whose traffic goes to `target`.
    pub(crate) fn new(
        proxy: Arc<Proxy>,
        direction: Direction,
        client_addr: SocketAddr,
        target: Target,
        drain: DrainWatch,
        serve_tunnel: ServeFn,
    ) -> ConnectionContext {
        ConnectionContext {
            proxy,
            direction,
            client_addr,
            target,
            drain,
            serve_tunnel,
            client_identity: None,
            inbound_policy: None,
            // Made at the first request (`target_labels`): a connection
            // that never carries HTTP holds none.
            target_labels: Mutex::new(None),
            last_authority: Mutex::new(None),
            metric_handles: OnceLock::new(),
            route_handles: OnceLock::new(),
            sniffed_heads: OnceLock::new(),
            discovery: tokio::sync::Mutex::new(None),
            inbound_discovery: tokio::sync::Mutex::new(None),
            fixed_plan: None,
            accept_metrics: None,
        }
    }

    /// Records the accepted connection's opening with its TLS status (no
    /// change when `None`); nothing after the first call.
    pub(crate) fn settle_accept(&self, tls: Option<TlsStatus>) {
        if let Some(metrics) = &self.accept_metrics {
            metrics.settle(tls);
        }
    }

    /// The context of a connection whose plan is already known.
    pub(crate) fn with_plan(mut self, plan: Plan) -> ConnectionContext {
        if let Plan::Endpoint { meta, .. } = &plan
            && let Target::Addr(addr) = self.target
        {
            *self.target_labels.get_mut().expect("labels lock poisoned") =
                Some((addr, meta.labels.clone()));
        }
        self.fixed_plan = Some(Box::new(plan));
        self
    }

    /// The context of a connection whose client proved `identity` with
    /// mutual TLS (inbound).
    pub(crate) fn with_client_identity(mut self, identity: Option<Arc<str>>) -> ConnectionContext {
        self.client_identity = identity;
        // Labels made before carry the old TLS status.
        *self.target_labels.get_mut().expect("labels lock poisoned") = None;
        self
    }

    /// The HTTP metric handles this connection's requests last used (made
    /// at the first request: a connection that never carries HTTP holds none).
    pub(crate) fn metric_handles(&self) -> &Arc<HttpHandleCache> {
        self.metric_handles.get_or_init(Arc::default)
    }

    /// The route metric handles this connection's requests last used.
    pub(crate) fn route_handles(&self) -> &Arc<RouteHandleCache> {
        self.route_handles.get_or_init(Arc::default)
    }

    /// Request heads as the client wrote them, for an HTTP server that
    /// reads them (outbound HTTP/1 with mTLS).
    pub(crate) fn sniffed_heads(&self) -> &Arc<SniffedHeads> {
        self.sniffed_heads.get_or_init(Arc::default)
    }

    /// The request heads read as written, when this connection's HTTP
    /// server reads them (see [`ConnectionContext::sniffed_heads`]).
    pub(crate) fn heads_if_sniffed(&self) -> Option<&Arc<SniffedHeads>> {
        self.sniffed_heads.get()
    }

    /// What discovery says to do with traffic to `addr` (outbound only).
    pub(crate) async fn plan_for_addr(&self, addr: SocketAddr) -> Plan {
        self.plan(
            |key| *key == DiscoveryKey::Addr(addr),
            || DiscoveryKey::Addr(addr),
        )
        .await
    }

    /// What discovery says to do with requests for `host:port` (outbound only).
    pub(crate) async fn plan_for_name(&self, host: &str, port: u16) -> Plan {
        self.plan(
            |key| matches!(key, DiscoveryKey::Name(known, known_port) if known == host && *known_port == port),
            || DiscoveryKey::Name(host.to_string(), port),
        )
        .await
    }

    /// The plan of every request on this connection when no discovery is
    /// needed to know it (a fixed plan, or no discovery in this direction),
    /// so the request path awaits nothing for it.
    pub(crate) fn settled_plan(&self) -> Option<Plan> {
        match (&self.fixed_plan, self.router()) {
            (Some(plan), _) => Some(Plan::clone(plan)),
            (None, None) => Some(Plan::Original),
            (None, Some(_)) => None,
        }
    }

    /// The plan for a target, reusing this connection's discovery while its
    /// requests keep one target (`is_cached`), starting one otherwise.
    async fn plan(
        &self,
        is_cached: impl Fn(&DiscoveryKey) -> bool,
        key: impl FnOnce() -> DiscoveryKey,
    ) -> Plan {
        if let Some(plan) = &self.fixed_plan {
            return Plan::clone(plan);
        }
        let Some(router) = self.router() else {
            return Plan::Original;
        };
        let mut cached = self.discovery.lock().await;
        if !cached
            .as_ref()
            .is_some_and(|cached| is_cached(&cached.target))
        {
            let target = key();
            let discovery = match &target {
                DiscoveryKey::Addr(addr) => router.discover(&addr.ip().to_string(), addr.port()),
                DiscoveryKey::Name(host, port) => router.discover(host, *port),
            };
            *cached = Some(Box::new(CachedDiscovery { target, discovery }));
        }
        match cached.as_mut().and_then(|cached| cached.discovery.as_mut()) {
            Some(discovery) => router.plan(discovery).await,
            None => Plan::Original,
        }
    }

    /// The routes of the service `host:port` names, for an inbound
    /// request's route metrics (waiting for a new name's first answer at
    /// most the initial timeout); `None` without discovery, for names it
    /// does not cover, and for profiles without routes. The lookup is
    /// reused while the connection's requests keep naming one service.
    pub(crate) async fn inbound_routes(&self, host: &str, port: u16) -> Option<Arc<InboundRoutes>> {
        let router = self.proxy.router.as_ref()?;
        let mut cached = self.inbound_discovery.lock().await;
        let known = cached
            .as_ref()
            .is_some_and(|cached| cached.port == port && cached.host == host);
        if !known {
            *cached = Some(Box::new(CachedInbound {
                host: host.to_string(),
                port,
                discovery: router.discover_inbound(host, port),
            }));
        }
        cached.as_mut()?.discovery.as_mut()?.routes().await
    }

    /// The router, for outbound connections when discovery is on.
    pub(crate) fn router(&self) -> Option<&Router> {
        match self.direction {
            Direction::Outbound => self.proxy.router.as_ref(),
            Direction::Inbound => None,
        }
    }

    /// Metric labels for requests sent to `addr`.
    pub(crate) fn target_labels(&self, addr: SocketAddr) -> Arc<TargetLabels> {
        let mut last = self
            .target_labels
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
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
    pub(crate) fn authority_label(&self, authority: &str) -> Arc<str> {
        let mut last = self
            .last_authority
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_context_holds_what_few_connections_use_boxed() {
        // An HTTP connection holds its context (in an Arc) for its whole
        // life: discovery caches and fixed plans (224, 120 and 72 bytes
        // inline) are boxed; 448 bytes fit mimalloc's 512-byte class with
        // the Arc's counts (776 took the 896-byte class).
        let size = std::mem::size_of::<ConnectionContext>();
        assert!(size <= 448, "{size} bytes");
    }
}
