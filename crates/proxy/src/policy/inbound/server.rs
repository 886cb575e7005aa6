//! A port's inbound policy as the proxy uses it ([`ServerPolicy`]): the
//! protocol, who is authorized (networks and authentication), the Server's
//! and each authorization's metric labels (made once per answer), and the
//! routes with their own authorizations. Converted once from the
//! controller's answer ([`super::convert`]) or made from a default policy
//! ([`ServerPolicy::default_for`]).

use crate::config::{DefaultPolicy, IpNetwork};
use crate::metrics::authz::{ResourceLabels, ServerLabels};
use crate::policy::route_match::{GrpcRoute, HttpRoute};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::Duration;

/// How a port's connections are served, as the policy says (Linkerd's
/// `ProxyProtocol`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Protocol {
    /// Detect HTTP (the proxy's own detection timeout applies when the
    /// policy gives none).
    Detect {
        /// The policy's detection timeout.
        timeout: Option<Duration>,
    },
    /// Opaque TCP: no detection.
    Opaque,
    /// TLS the app terminates: forwarded as TCP.
    Tls,
    /// HTTP/1 without detection.
    Http1,
    /// HTTP/2 without detection.
    Http2,
    /// gRPC (HTTP/2) without detection.
    Grpc,
}

/// Who an authorization admits once the address matched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Authentication {
    /// Anyone, meshed or not.
    Unauthenticated,
    /// Any client that spoke TLS to the proxy, with or without a certificate.
    TlsUnauthenticated,
    /// Clients with a verified mesh identity that is one of `identities`
    /// or ends with one of `suffixes`.
    MeshTls {
        /// Identities matched exactly.
        identities: Vec<String>,
        /// Suffixes matched on label boundaries; an empty suffix matches
        /// any identity.
        suffixes: Vec<IdentitySuffix>,
    },
}

/// An identity suffix, as linkerd2-proxy matches it: the identity ends
/// with `.` + the parts joined with dots, so `["ns","serviceaccount"]` admits
/// `a.ns.serviceaccount` but neither `ans.serviceaccount` nor
/// `ns.serviceaccount` itself. No parts: any identity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct IdentitySuffix {
    /// `.` + the parts (empty: any identity).
    ends_with: String,
}

impl IdentitySuffix {
    /// The suffix of `parts`.
    pub(crate) fn new(parts: &[String]) -> IdentitySuffix {
        let ends_with = if parts.is_empty() {
            String::new()
        } else {
            format!(".{}", parts.join("."))
        };
        IdentitySuffix { ends_with }
    }

    /// Whether `identity` ends with this suffix.
    pub(crate) fn matches(&self, identity: &str) -> bool {
        identity.ends_with(self.ends_with.as_str())
    }
}

/// A network an authorization admits, minus its exceptions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Network {
    /// The network.
    pub net: IpNetwork,
    /// Parts of it that are not admitted.
    pub except: Vec<IpNetwork>,
}

impl Network {
    /// Every address (`0.0.0.0/0` or `::/0`).
    pub(crate) fn all() -> Vec<Network> {
        vec![
            Network {
                net: IpNetwork::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
                except: Vec::new(),
            },
            Network {
                net: IpNetwork::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0),
                except: Vec::new(),
            },
        ]
    }

    /// Whether `ip` is in the network and in none of its exceptions.
    pub(crate) fn admits(&self, ip: IpAddr) -> bool {
        self.net.contains(ip) && !self.except.iter().any(|except| except.contains(ip))
    }
}

/// One authorization: where clients may come from and how they must
/// authenticate, with its metric labels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Authorization {
    /// Client networks admitted.
    pub networks: Vec<Network>,
    /// Authentication required.
    pub authentication: Authentication,
    /// `authz_group`, `authz_kind`, `authz_name`.
    pub labels: Arc<ResourceLabels>,
}

impl Authorization {
    /// Whether this authorization is the audit policy (allowed, but
    /// logged as such).
    pub(crate) fn is_audit(&self) -> bool {
        &*self.labels.name == "audit"
    }
}

/// An inbound route's own data: its labels and who may use it (matched by
/// [`crate::policy::route_match`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RoutePolicy {
    /// `route_group`, `route_kind`, `route_name`.
    pub labels: Arc<ResourceLabels>,
    /// Who may use the route.
    pub authorizations: Vec<Authorization>,
}

/// A port's routes: HTTPRoutes (detect, HTTP/1, HTTP/2) or GRPCRoutes
/// (gRPC). None listed: every request takes Linkerd's default route, with
/// the Server's authorizations.
#[derive(Clone, Debug, Default)]
pub(crate) enum InboundRoutes {
    /// No routes: the default route.
    #[default]
    Default,
    /// HTTPRoutes.
    Http(Vec<HttpRoute<RoutePolicy, ()>>),
    /// GRPCRoutes.
    Grpc(Vec<GrpcRoute<RoutePolicy, ()>>),
}

/// A port's whole inbound policy.
#[derive(Clone, Debug)]
pub(crate) struct ServerPolicy {
    /// How connections are served.
    pub protocol: Protocol,
    /// Who may connect (TCP), and make requests on the default route.
    pub authorizations: Vec<Authorization>,
    /// The Server's metric labels.
    pub labels: Arc<ServerLabels>,
    /// HTTP or gRPC routes, with their authorizations.
    pub routes: InboundRoutes,
    /// The default route's labels (`{group:"", kind:"default",
    /// name:"default"}`), made once.
    pub default_route: Arc<ResourceLabels>,
}

/// The labels of Linkerd's default route.
pub(crate) fn default_route_labels() -> Arc<ResourceLabels> {
    Arc::new(ResourceLabels::new("", "default", "default"))
}

impl ServerPolicy {
    /// The policy of `port` under the default policy `policy`, as Linkerd's
    /// controller answers for a port no Server selects: Server labels
    /// `{group:"", kind:"default", name:<policy>}`, detect, and one
    /// authorization named after the policy (`audit` admits everyone and is
    /// named `audit`; `deny` has none). `cluster-*` admit `cluster_networks`
    /// only.
    pub(crate) fn default_for(
        policy: DefaultPolicy,
        port: u16,
        cluster_networks: &[IpNetwork],
    ) -> ServerPolicy {
        let cluster = || {
            cluster_networks
                .iter()
                .map(|net| Network {
                    net: *net,
                    except: Vec::new(),
                })
                .collect::<Vec<_>>()
        };
        let any_identity = || Authentication::MeshTls {
            identities: Vec::new(),
            suffixes: vec![IdentitySuffix::new(&[])],
        };
        let (networks, authentication) = match policy {
            DefaultPolicy::AllUnauthenticated | DefaultPolicy::Audit => {
                (Network::all(), Authentication::Unauthenticated)
            }
            DefaultPolicy::AllAuthenticated => (Network::all(), any_identity()),
            DefaultPolicy::ClusterUnauthenticated => (cluster(), Authentication::Unauthenticated),
            DefaultPolicy::ClusterAuthenticated => (cluster(), any_identity()),
            DefaultPolicy::Deny => (Vec::new(), Authentication::Unauthenticated),
        };
        let authorizations = match policy {
            DefaultPolicy::Deny => Vec::new(),
            _ => vec![Authorization {
                networks,
                authentication,
                labels: Arc::new(ResourceLabels::new("", "default", policy.as_str())),
            }],
        };
        ServerPolicy {
            protocol: Protocol::Detect { timeout: None },
            authorizations,
            labels: Arc::new(ServerLabels {
                resource: ResourceLabels::new("", "default", policy.as_str()),
                port,
            }),
            routes: InboundRoutes::Default,
            default_route: default_route_labels(),
        }
    }
}
