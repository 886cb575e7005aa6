//! The authorization decision, a pure function: may this client (address,
//! TLS, verified identity) use this port (its authorizations)?
//!
//! Linkerd's semantics: an authorization admits a client when the client's
//! address is in one of its networks (and in none of that network's
//! `except`), and its authentication is satisfied — `unauthenticated`:
//! anyone; mesh TLS with `unauthenticated` clients: any TLS client;
//! mesh TLS with identities/suffixes: a verified identity equal to one of
//! the identities or ending with one of the suffixes (a suffix with no
//! parts: any verified identity). The first authorization that admits the
//! client is the one counted; none: denied. An authorization named `audit`
//! admits like any other and is marked for the audit log.
//!
//! The allow path allocates nothing: it hands back a reference to the
//! authorization, whose metric labels were made with the policy.

use super::server::{Authentication, Authorization};
use std::net::IpAddr;

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
