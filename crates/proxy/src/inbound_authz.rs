//! Inbound TCP authorization: an opaque (or undetected) connection is
//! authorized once, when it is accepted (after TLS termination named the
//! client's identity), against its port's policy. Denied: closed before the
//! proxy connects to the app (`inbound_tcp_authz_deny_total`). Allowed
//! (`inbound_tcp_authz_allow_total`): forwarded while the policy keeps
//! admitting it; a change that revokes it closes both sides
//! (`inbound_tcp_authz_terminate_total`).

use crate::context::request_tls;
use crate::direction::Direction;
use crate::io::Io;
use crate::metrics::authz::{AuthzEvent, AuthzLabels};
use crate::metrics::labels::TargetLabels;
use crate::policy::inbound::{Client, ClientTls, Decision, PolicyWatch, authorize};
use crate::proxy::Proxy;
use crate::tcp;
use std::net::SocketAddr;
use std::sync::Arc;

/// Forwards an inbound connection from `client_addr` (verified as
/// `identity`) to `target` if its port's policy authorizes it, until it
/// ends or the policy stops authorizing it.
pub(crate) async fn forward<I: Io>(
    proxy: &Proxy,
    io: I,
    target: SocketAddr,
    client_addr: SocketAddr,
    identity: Option<Arc<str>>,
) {
    forward_over(proxy, io, target, client_addr, identity, None).await
}

/// Whether the port's current policy admits the client as it stands, asked
/// before connecting to the app ahead of the client's bytes (nothing is
/// counted: [`forward_over`] decides, and counts, again).
pub(crate) fn admits(
    proxy: &Proxy,
    target: SocketAddr,
    client_addr: SocketAddr,
    identity: Option<&str>,
) -> bool {
    let policy = proxy.inbound_policies.port(target.port());
    let client = Client {
        addr: client_addr.ip(),
        tls: ClientTls::from_identity(identity),
    };
    let current = policy.borrow();
    matches!(
        authorize(&current.authorizations, &client),
        Decision::Allow { .. }
    )
}

/// Like [`forward`], over `upstream` when the connection to the app was
/// already made (a server that spoke first); refused, it is closed unused.
pub(crate) async fn forward_over<I: Io>(
    proxy: &Proxy,
    io: I,
    target: SocketAddr,
    client_addr: SocketAddr,
    identity: Option<Arc<str>>,
    upstream: Option<tcp::Upstream>,
) {
    let mut policy = proxy.inbound_policies.port(target.port());
    let client = Client {
        addr: client_addr.ip(),
        tls: ClientTls::from_identity(identity.as_deref()),
    };
    let target_labels =
        TargetLabels::new(target, request_tls(Direction::Inbound, identity.as_ref()));
    let Some(allowed) = admit(proxy, &mut policy, &client, &target_labels, client_addr) else {
        return;
    };
    tokio::select! {
        () = tcp::forward_over(proxy, io, target, upstream, Direction::Inbound) => {}
        () = revoked(&mut policy, &client) => {
            proxy.metrics.authz.record(AuthzEvent::TcpTerminate, &allowed);
            proxy.log_traffic_error(
                Direction::Inbound,
                client_addr,
                "closed a connection",
                &"its authorization was revoked",
            );
        }
    }
}

/// The decision at accept: the allow labels, or `None` (counted, logged).
fn admit(
    proxy: &Proxy,
    policy: &mut PolicyWatch,
    client: &Client<'_>,
    target: &Arc<TargetLabels>,
    client_addr: SocketAddr,
) -> Option<AuthzLabels> {
    let current = policy.borrow_and_update().clone();
    match authorize(&current.authorizations, client) {
        Decision::Allow {
            authorization,
            audit,
        } => {
            let labels = AuthzLabels {
                target: target.clone(),
                server: current.labels.clone(),
                route: None,
                authz: Some(authorization.labels.clone()),
            };
            proxy.metrics.authz.record(AuthzEvent::TcpAllow, &labels);
            if audit {
                proxy.log_traffic_error(
                    Direction::Inbound,
                    client_addr,
                    "connection allowed by audit",
                    &format_args!("server {}", current.labels.resource.name),
                );
            }
            Some(labels)
        }
        Decision::Deny => {
            let labels = AuthzLabels {
                target: target.clone(),
                server: current.labels.clone(),
                route: None,
                authz: None,
            };
            proxy.metrics.authz.record(AuthzEvent::TcpDeny, &labels);
            proxy.log_traffic_error(
                Direction::Inbound,
                client_addr,
                "refused a connection",
                &format_args!(
                    "unauthorized connection on server {}",
                    current.labels.resource.name
                ),
            );
            None
        }
    }
}

/// Resolves when a policy change stops authorizing `client` (never while
/// the policy's source lives and keeps admitting it).
async fn revoked(policy: &mut PolicyWatch, client: &Client<'_>) {
    loop {
        if policy.changed().await.is_err() {
            return std::future::pending().await;
        }
        let current = policy.borrow_and_update().clone();
        if authorize(&current.authorizations, client) == Decision::Deny {
            return;
        }
    }
}
