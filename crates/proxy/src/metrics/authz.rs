//! Inbound authorization metrics, named and labelled as Linkerd's proxy
//! writes them: `inbound_http_authz_allow_total`,
//! `inbound_http_authz_deny_total`, `inbound_tcp_authz_allow_total`,
//! `inbound_tcp_authz_deny_total` and `inbound_tcp_authz_terminate_total`.
//!
//! Every sample carries the target (`target_addr`, `target_ip`,
//! `target_port`, `tls`, `client_id` or `no_tls_reason`) and the Server
//! (`srv_group`, `srv_kind`, `srv_name`, `srv_port`); allows, terminations
//! and HTTP denials with a matched route add `route_*` and `authz_*`. The
//! label sets are [`IdleFamily`] entries, bounded like the other families;
//! the server, route and authorization parts are made once per policy
//! answer (see `policy::inbound`), so counting is a hash lookup, not an
//! allocation.

use super::HandleCache;
use super::family::{Expire, IdleFamily};
use super::labels::TargetLabels;
use prometheus_client::encoding::{EncodeLabel, EncodeLabelSet, LabelSetEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;
use std::sync::Arc;

/// A policy resource's identity as metric labels (`<prefix>_group`,
/// `<prefix>_kind`, `<prefix>_name`): a Server, a route or an authorization.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub(crate) struct ResourceLabels {
    /// API group (`policy.linkerd.io`, empty for defaults).
    pub group: Arc<str>,
    /// Kind (`server`, `default`, `authorizationpolicy`, `HTTPRoute`, ...).
    pub kind: Arc<str>,
    /// Name.
    pub name: Arc<str>,
}

impl ResourceLabels {
    /// Labels from their three parts.
    pub(crate) fn new(group: &str, kind: &str, name: &str) -> ResourceLabels {
        ResourceLabels {
            group: group.into(),
            kind: kind.into(),
            name: name.into(),
        }
    }

    fn encode_as(
        &self,
        names: [&'static str; 3],
        encoder: &mut LabelSetEncoder<'_>,
    ) -> Result<(), std::fmt::Error> {
        (names[0], &*self.group).encode(encoder.encode_label())?;
        (names[1], &*self.kind).encode(encoder.encode_label())?;
        (names[2], &*self.name).encode(encoder.encode_label())
    }
}

/// The Server a port's policy came from, and the port.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub(crate) struct ServerLabels {
    /// The Server resource (or default policy).
    pub resource: ResourceLabels,
    /// The port the policy is for (`srv_port`).
    pub port: u16,
}

/// One authorization metric's label set.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub(crate) struct AuthzLabels {
    /// The target, with the client's TLS status and identity.
    pub target: Arc<TargetLabels>,
    /// The port's Server.
    pub server: Arc<ServerLabels>,
    /// The route that matched (HTTP), when one did.
    pub route: Option<Arc<ResourceLabels>>,
    /// The authorization that allowed (or whose revocation terminated).
    pub authz: Option<Arc<ResourceLabels>>,
}

impl EncodeLabelSet for AuthzLabels {
    fn encode(&self, encoder: &mut LabelSetEncoder<'_>) -> Result<(), std::fmt::Error> {
        self.target.encode(encoder)?;
        self.server
            .resource
            .encode_as(["srv_group", "srv_kind", "srv_name"], encoder)?;
        ("srv_port", self.server.port).encode(encoder.encode_label())?;
        if let Some(route) = &self.route {
            route.encode_as(["route_group", "route_kind", "route_name"], encoder)?;
        }
        if let Some(authz) = &self.authz {
            authz.encode_as(["authz_group", "authz_kind", "authz_name"], encoder)?;
        }
        Ok(())
    }
}

/// The five authorization counter families.
#[derive(Clone)]
pub(crate) struct AuthzMetrics {
    http_allow: IdleFamily<AuthzLabels, Counter>,
    http_deny: IdleFamily<AuthzLabels, Counter>,
    tcp_allow: IdleFamily<AuthzLabels, Counter>,
    tcp_deny: IdleFamily<AuthzLabels, Counter>,
    tcp_terminate: IdleFamily<AuthzLabels, Counter>,
}

/// What an authorization counter counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AuthzEvent {
    /// An HTTP request allowed.
    HttpAllow,
    /// An HTTP request denied (403).
    HttpDeny,
    /// A TCP connection allowed.
    TcpAllow,
    /// A TCP connection refused.
    TcpDeny,
    /// An open TCP connection closed because its authorization was revoked.
    TcpTerminate,
}

impl AuthzMetrics {
    /// The families, registered in `registry`, and their expiry handles.
    pub(crate) fn new(registry: &mut Registry) -> (AuthzMetrics, Vec<Box<dyn Expire>>) {
        let metrics = AuthzMetrics {
            http_allow: IdleFamily::new(Counter::default),
            http_deny: IdleFamily::new(Counter::default),
            tcp_allow: IdleFamily::new(Counter::default),
            tcp_deny: IdleFamily::new(Counter::default),
            tcp_terminate: IdleFamily::new(Counter::default),
        };
        registry.register(
            "inbound_http_authz_allow",
            "Inbound HTTP requests allowed by an authorization.",
            metrics.http_allow.clone(),
        );
        registry.register(
            "inbound_http_authz_deny",
            "Inbound HTTP requests denied by the port's policy.",
            metrics.http_deny.clone(),
        );
        registry.register(
            "inbound_tcp_authz_allow",
            "Inbound TCP connections allowed by an authorization.",
            metrics.tcp_allow.clone(),
        );
        registry.register(
            "inbound_tcp_authz_deny",
            "Inbound TCP connections refused by the port's policy.",
            metrics.tcp_deny.clone(),
        );
        registry.register(
            "inbound_tcp_authz_terminate",
            "Open inbound TCP connections closed because a policy change revoked their authorization.",
            metrics.tcp_terminate.clone(),
        );
        let expiring: Vec<Box<dyn Expire>> = vec![
            Box::new(metrics.http_allow.clone()),
            Box::new(metrics.http_deny.clone()),
            Box::new(metrics.tcp_allow.clone()),
            Box::new(metrics.tcp_deny.clone()),
            Box::new(metrics.tcp_terminate.clone()),
        ];
        (metrics, expiring)
    }

    /// Counts one `event` with `labels`.
    pub(crate) fn record(&self, event: AuthzEvent, labels: &AuthzLabels) {
        self.family(event).get(labels).inc();
    }

    /// Counts one `event` with `labels`, through a connection's `cache` of
    /// the handle it last used (its requests nearly always carry the same
    /// labels: no hashing then).
    pub(crate) fn record_cached(
        &self,
        cache: &HandleCache<AuthzLabels, Counter>,
        event: AuthzEvent,
        labels: &AuthzLabels,
    ) {
        cache.get(self.family(event), labels).inc();
    }

    fn family(&self, event: AuthzEvent) -> &IdleFamily<AuthzLabels, Counter> {
        match event {
            AuthzEvent::HttpAllow => &self.http_allow,
            AuthzEvent::HttpDeny => &self.http_deny,
            AuthzEvent::TcpAllow => &self.tcp_allow,
            AuthzEvent::TcpDeny => &self.tcp_deny,
            AuthzEvent::TcpTerminate => &self.tcp_terminate,
        }
    }
}
