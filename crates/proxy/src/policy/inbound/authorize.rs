//! The authorization decision, a pure function: may this client (address,
//! TLS, verified identity) use this port (its authorizations)?
//!
//! Linkerd's semantics: an authorization admits a client when the client's
//! address is in one of its networks (and in none of that network's
//! `except`), and its authentication is satisfied — `unauthenticated`:
//! anyone; mesh TLS with `unauthenticated` clients: any TLS client;
//! mesh TLS with identities/suffixes: a verified identity equal to one of
//! the identities or ending with `.` + one of the suffixes (a suffix with
//! no parts: any verified identity). HTTP requests are decided by their
//! route's authorizations, which hold the Server's too. The first authorization that admits the
//! client is the one counted; none: denied. An authorization named `audit`
//! admits like any other and is marked for the audit log.
//!
//! The allow path allocates nothing: it hands back a reference to the
//! authorization, whose metric labels were made with the policy.

use super::server::{Authentication, Authorization, InboundRoutes, ServerPolicy};
use crate::metrics::authz::ResourceLabels;
use crate::policy::route_match::{self, RequestView};
use std::net::IpAddr;
use std::sync::Arc;

/// What the proxy knows of a client when it decides.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Client<'a> {
    /// The client's address.
    pub addr: IpAddr,
    /// Whether it spoke TLS to the proxy, and as whom.
    pub tls: ClientTls<'a>,
}

/// The client's transport security as the proxy saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ClientTls<'a> {
    /// Plaintext (or TLS the proxy did not terminate).
    Plaintext,
    /// TLS the proxy terminated, with the identity of a verified client
    /// certificate (`None`: no certificate).
    Terminated {
        /// The verified identity.
        identity: Option<&'a str>,
    },
}

impl<'a> ClientTls<'a> {
    /// The TLS status of a connection whose verified identity is `identity`
    /// (an identity implies terminated TLS; none is taken as plaintext).
    pub(crate) fn from_identity(identity: Option<&'a str>) -> ClientTls<'a> {
        match identity {
            Some(identity) => ClientTls::Terminated {
                identity: Some(identity),
            },
            None => ClientTls::Plaintext,
        }
    }

    fn identity(self) -> Option<&'a str> {
        match self {
            ClientTls::Terminated { identity } => identity,
            ClientTls::Plaintext => None,
        }
    }
}

/// The decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Decision<'a> {
    /// Admitted by `authorization`; `audit` when it is the audit policy
    /// (log it).
    Allow {
        /// The authorization that admitted the client.
        authorization: &'a Authorization,
        /// Whether the admission is by audit only.
        audit: bool,
    },
    /// No authorization admits the client.
    Deny,
}

/// Decides whether `client` may use a port whose authorizations are
/// `authorizations`.
pub(crate) fn authorize<'a>(
    authorizations: &'a [Authorization],
    client: &Client<'_>,
) -> Decision<'a> {
    for authorization in authorizations {
        if admits(authorization, client) {
            return Decision::Allow {
                authorization,
                audit: authorization.is_audit(),
            };
        }
    }
    Decision::Deny
}

/// Whether one authorization admits `client`.
pub(crate) fn admits(authorization: &Authorization, client: &Client<'_>) -> bool {
    let in_network = authorization
        .networks
        .iter()
        .any(|network| network.admits(client.addr));
    if !in_network {
        return false;
    }
    match &authorization.authentication {
        Authentication::Unauthenticated => true,
        Authentication::TlsUnauthenticated => matches!(client.tls, ClientTls::Terminated { .. }),
        Authentication::MeshTls {
            identities,
            suffixes,
        } => match client.tls.identity() {
            Some(identity) => {
                identities.iter().any(|known| known == identity)
                    || suffixes.iter().any(|suffix| suffix.matches(identity))
            }
            None => false,
        },
    }
}

/// The decision for one HTTP request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RequestDecision<'a> {
    /// Admitted on `route` by `authorization`.
    Allow {
        /// The route's labels.
        route: &'a Arc<ResourceLabels>,
        /// The authorization that admitted the client.
        authorization: &'a Authorization,
        /// Whether the admission is by audit only.
        audit: bool,
    },
    /// The route matched but none of its authorizations admits the client.
    Deny {
        /// The route's labels.
        route: &'a Arc<ResourceLabels>,
    },
    /// The port has routes and none matches the request (404).
    NoRoute,
}

/// Decides whether `client` may send `request` on a port with `policy`:
/// the matched route's authorizations decide (Linkerd's default route,
/// matching everything with the Server's authorizations, when the policy
/// lists no routes); no route matched: [`RequestDecision::NoRoute`].
pub(crate) fn authorize_request<'a>(
    policy: &'a ServerPolicy,
    request: &RequestView<'_>,
    client: &Client<'_>,
) -> RequestDecision<'a> {
    let (route, authorizations) = match &policy.routes {
        InboundRoutes::Default => (&policy.default_route, policy.authorizations.as_slice()),
        InboundRoutes::Http(routes) => match route_match::select_http(routes, request) {
            Some(selected) => (
                &selected.route.data.labels,
                selected.route.data.authorizations.as_slice(),
            ),
            None => return RequestDecision::NoRoute,
        },
        InboundRoutes::Grpc(routes) => match route_match::select_grpc(routes, request) {
            Some(selected) => (
                &selected.route.data.labels,
                selected.route.data.authorizations.as_slice(),
            ),
            None => return RequestDecision::NoRoute,
        },
    };
    match authorize(authorizations, client) {
        Decision::Allow {
            authorization,
            audit,
        } => RequestDecision::Allow {
            route,
            authorization,
            audit,
        },
        Decision::Deny => RequestDecision::Deny { route },
    }
}
