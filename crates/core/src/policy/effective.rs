//! The decision: the effective inbound policy of one port of one workload,
//! from the policy objects — pure, table-tested (`policy/tests.rs`).
//!
//! ```text
//! (namespace, workload?, port) ─► Servers of the namespace selecting (workload, port)
//!     none ─► default policy: the Workload's config.linkerd.io/default-inbound-policy,
//!             else the controller's; protocol opaque when the Workload's
//!             config.linkerd.io/opaque-ports lists the port, else detect (10 s)
//!     some ─► the oldest one (first in the file) wins, the others are noted
//!             protocol: its proxyProtocol
//!             authorizations: every AuthorizationPolicy targeting it (or the
//!               namespace) whose authentications all resolve, then its
//!               accessPolicy's default authorizations (`deny`: none, so a
//!               Server without policies denies everything)
//!             routes: the HTTPRoutes/GRPCRoutes whose parent is the Server,
//!               each with the policies that target it
//! ```
//!
//! Linkerd's semantics throughout: a policy is satisfied only when ALL its
//! required authentications are (one identity source and one network source
//! together mean both); a policy naming an authentication that does not
//! exist is ignored (and noted), so it admits nobody; without a
//! NetworkAuthentication a policy admits every network (`0.0.0.0/0`, `::/0`);
//! without an identity source it admits unauthenticated clients.

use std::net::IpAddr;
use std::time::Duration;

use super::authentication::{
    IdentityMatch, MeshTLSAuthentication, NetworkAuthentication, NetworkMatch,
};
use super::authorization::{Authentication, AuthorizationPolicy, Target};
use super::default_policy::{DEFAULT_INBOUND_POLICY_ANNOTATION, DefaultPolicy};
use super::network::Cidr;
use super::server::{ProxyProtocol, Server};
use crate::ObjectMeta;
use crate::names::identity_name;
use crate::service::namespace_or_default;
use crate::workload::Workload;

/// How long a proxy waits to detect the protocol on a port without a Server (Linkerd's 10 s).
pub const DETECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The Workload annotation listing opaque ports, as Linkerd names it.
pub const OPAQUE_PORTS_ANNOTATION: &str = "config.linkerd.io/opaque-ports";

/// The policy objects a decision reads; the caller hands them in catalog
/// order (Servers oldest first). Objects of other namespaces are skipped
/// where the namespace matters.
#[derive(Debug, Clone, Copy, Default)]
pub struct PolicyObjects<'objects> {
    /// Servers, oldest first.
    pub servers: &'objects [&'objects Server],
    /// AuthorizationPolicies.
    pub authorization_policies: &'objects [&'objects AuthorizationPolicy],
    /// MeshTLSAuthentications.
    pub mesh_tls: &'objects [&'objects MeshTLSAuthentication],
    /// NetworkAuthentications.
    pub networks: &'objects [&'objects NetworkAuthentication],
    /// Routes whose parent is a Server, in precedence order.
    pub routes: &'objects [ServerRoute],
}

/// A route attached to a Server (its `parentRefs` name the Server).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ServerRoute {
    /// The Server's namespace.
    pub namespace: String,
    /// The Server's name.
    pub server: String,
    /// HTTPRoute or GRPCRoute.
    pub kind: RouteKind,
    /// The route's name.
    pub name: String,
}

/// The kinds of route an inbound port may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RouteKind {
    /// An HTTPRoute.
    Http,
    /// A GRPCRoute.
    Grpc,
}

/// What the decision needs besides the objects: the controller's settings.
#[derive(Debug, Clone, Copy)]
pub struct PolicyContext<'settings> {
    /// `--default-inbound-policy`.
    pub default_policy: DefaultPolicy,
    /// `--cluster-networks`, for the `cluster-*` policies.
    pub cluster_networks: &'settings [Cidr],
    /// The control plane's namespace in identity names.
    pub control_namespace: &'settings str,
    /// The trust domain in identity names.
    pub trust_domain: &'settings str,
}

/// The question: one port of one workload (`None`: a workload the mesh does not know).
#[derive(Debug, Clone, Copy)]
pub struct PortQuery<'query> {
    /// The workload's namespace.
    pub namespace: &'query str,
    /// The workload, when known.
    pub workload: Option<&'query Workload>,
    /// The port.
    pub port: u16,
}

/// Which resource answers for the port.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ServerRef {
    /// A Server resource, by name.
    Server(String),
    /// A default policy.
    Default(DefaultPolicy),
}

/// The protocol the proxy is told to expect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// Detect HTTP within the timeout, else forward opaquely.
    Detect(Duration),
    /// HTTP/1.
    Http1,
    /// HTTP/2.
    Http2,
    /// gRPC.
    Grpc,
    /// Opaque TCP.
    Opaque,
    /// TLS the app terminates.
    Tls,
}

impl Protocol {
    /// The name `/api/authz` shows.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Detect(_) => "detect",
            Protocol::Http1 => "http1",
            Protocol::Http2 => "http2",
            Protocol::Grpc => "grpc",
            Protocol::Opaque => "opaque",
            Protocol::Tls => "tls",
        }
    }
}

/// Which resource an authorization comes from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AuthorizationRef {
    /// An AuthorizationPolicy, by name.
    Policy(String),
    /// A default policy (`all-unauthenticated`, ..., `audit`).
    Default(DefaultPolicy),
}

/// Who an authorization admits, besides its networks.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ClientAuthentication {
    /// Anyone, TLS or not.
    Unauthenticated,
    /// Meshed clients whose identity matches one of these (`Suffix([])`: any identity).
    MeshTls(Vec<IdentityMatch>),
}

/// One authorization: clients from these networks, authenticated so.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Authorization {
    /// Where it comes from.
    pub reference: AuthorizationRef,
    /// The networks clients may come from.
    pub networks: Vec<NetworkMatch>,
    /// How they must authenticate.
    pub authentication: ClientAuthentication,
}

/// A route of the port and the authorizations limited to it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RoutePolicy {
    /// HTTPRoute or GRPCRoute.
    pub kind: RouteKind,
    /// The route's name.
    pub name: String,
    /// The AuthorizationPolicies targeting the route.
    pub authorizations: Vec<Authorization>,
}

/// The answer: what the port's proxy enforces.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct InboundPolicy {
    /// The Server, or the default policy.
    pub server: ServerRef,
    /// The workload's default policy (what applies where no Server does).
    pub default_policy: DefaultPolicy,
    /// The protocol.
    pub protocol: Protocol,
    /// Authorizations for the whole port.
    pub authorizations: Vec<Authorization>,
    /// Routes attached to the Server (empty: the default route applies).
    pub routes: Vec<RoutePolicy>,
    /// What was ignored and why (shadowed Servers, policies with missing references).
    pub notes: Vec<String>,
}

/// The workload's default policy: its annotation when valid, else the controller's.
pub fn workload_default_policy(
    workload: Option<&Workload>,
    controller_default: DefaultPolicy,
    notes: &mut Vec<String>,
) -> DefaultPolicy {
    let annotation = workload
        .and_then(|workload| workload.metadata.annotations.as_ref())
        .and_then(|annotations| annotations.get(DEFAULT_INBOUND_POLICY_ANNOTATION));
    match annotation.map(|text| DefaultPolicy::parse(text)) {
        Some(Ok(policy)) => policy,
        Some(Err(error)) => {
            notes.push(format!(
                "annotation {DEFAULT_INBOUND_POLICY_ANNOTATION} ignored: {error}"
            ));
            controller_default
        }
        None => controller_default,
    }
}

/// The authorizations a default policy grants (none for `deny`).
pub fn default_authorizations(
    policy: DefaultPolicy,
    cluster_networks: &[Cidr],
) -> Vec<Authorization> {
    let all = || {
        vec![
            NetworkMatch::all(Cidr::ALL_V4),
            NetworkMatch::all(Cidr::ALL_V6),
        ]
    };
    let cluster = || {
        cluster_networks
            .iter()
            .copied()
            .map(NetworkMatch::all)
            .collect()
    };
    let any_identity = || ClientAuthentication::MeshTls(vec![IdentityMatch::Suffix(Vec::new())]);
    let (networks, authentication) = match policy {
        DefaultPolicy::AllUnauthenticated | DefaultPolicy::Audit => {
            (all(), ClientAuthentication::Unauthenticated)
        }
        DefaultPolicy::AllAuthenticated => (all(), any_identity()),
        DefaultPolicy::ClusterUnauthenticated => (cluster(), ClientAuthentication::Unauthenticated),
        DefaultPolicy::ClusterAuthenticated => (cluster(), any_identity()),
        DefaultPolicy::Deny => return Vec::new(),
    };
    vec![Authorization {
        reference: AuthorizationRef::Default(policy),
        networks,
        authentication,
    }]
}

/// The Servers of `namespace` that select `port` of `workload`, oldest first.
pub fn selecting_servers<'objects>(
    objects: &PolicyObjects<'objects>,
    namespace: &str,
    workload: &Workload,
    port: u16,
) -> Vec<&'objects Server> {
    objects
        .servers
        .iter()
        .copied()
        .filter(|server| namespace_or_default(server.metadata.namespace.as_deref()) == namespace)
        .filter(|server| server.port_on(workload) == Some(port))
        .collect()
}

/// The decision.
pub fn inbound_policy(
    query: PortQuery<'_>,
    objects: &PolicyObjects<'_>,
    context: &PolicyContext<'_>,
) -> InboundPolicy {
    let mut notes = Vec::new();
    let default_policy =
        workload_default_policy(query.workload, context.default_policy, &mut notes);
    let servers = match query.workload {
        Some(workload) => selecting_servers(objects, query.namespace, workload, query.port),
        None => Vec::new(),
    };
    let Some((server, shadowed)) = servers.split_first() else {
        let opaque = query
            .workload
            .and_then(|workload| workload.metadata.annotations.as_ref())
            .and_then(|annotations| annotations.get(OPAQUE_PORTS_ANNOTATION))
            .is_some_and(|list| lists_port(list, query.port));
        return InboundPolicy {
            server: ServerRef::Default(default_policy),
            default_policy,
            protocol: if opaque {
                Protocol::Opaque
            } else {
                Protocol::Detect(DETECT_TIMEOUT)
            },
            authorizations: default_authorizations(default_policy, context.cluster_networks),
            routes: Vec::new(),
            notes,
        };
    };
    for other in shadowed {
        notes.push(format!(
            "Server {} also selects port {}; Server {} (older) applies",
            other.name(),
            query.port,
            server.name()
        ));
    }
    let resolver = Resolver {
        namespace: query.namespace,
        objects,
        context,
    };
    let mut authorizations = Vec::new();
    let mut routes: Vec<RoutePolicy> = objects
        .routes
        .iter()
        .filter(|route| route.namespace == query.namespace && route.server == server.name())
        .map(|route| RoutePolicy {
            kind: route.kind,
            name: route.name.clone(),
            authorizations: Vec::new(),
        })
        .collect();
    for policy in objects.authorization_policies {
        if namespace_or_default(policy.metadata.namespace.as_deref()) != query.namespace {
            continue;
        }
        let Ok(target) = policy.target() else {
            notes.push(format!(
                "AuthorizationPolicy {} ignored: invalid targetRef",
                policy.name()
            ));
            continue;
        };
        let destination = match &target {
            Target::Server(name) if name == server.name() => None,
            Target::Namespace(name) if name == query.namespace => None,
            Target::HttpRoute(name) => {
                match routes
                    .iter()
                    .position(|route| route.kind == RouteKind::Http && &route.name == name)
                {
                    Some(index) => Some(index),
                    None => continue,
                }
            }
            Target::GrpcRoute(name) => {
                match routes
                    .iter()
                    .position(|route| route.kind == RouteKind::Grpc && &route.name == name)
                {
                    Some(index) => Some(index),
                    None => continue,
                }
            }
            _ => continue,
        };
        let authorization = match resolver.authorization(policy) {
            Ok(authorization) => authorization,
            Err(reason) => {
                notes.push(format!(
                    "AuthorizationPolicy {} ignored: {reason}",
                    policy.name()
                ));
                continue;
            }
        };
        match destination.and_then(|index| routes.get_mut(index)) {
            Some(route) => route.authorizations.push(authorization),
            None => authorizations.push(authorization),
        }
    }
    authorizations.extend(default_authorizations(
        server.access_policy(),
        context.cluster_networks,
    ));
    routes.retain(|route| match (route.kind, server.protocol()) {
        (RouteKind::Grpc, ProxyProtocol::Grpc) => true,
        (RouteKind::Http, ProxyProtocol::Grpc) => false,
        (RouteKind::Http, _) => true,
        (RouteKind::Grpc, _) => false,
    });
    InboundPolicy {
        server: ServerRef::Server(server.name().to_string()),
        default_policy,
        protocol: match server.protocol() {
            ProxyProtocol::Unknown => Protocol::Detect(DETECT_TIMEOUT),
            ProxyProtocol::Http1 => Protocol::Http1,
            ProxyProtocol::Http2 => Protocol::Http2,
            ProxyProtocol::Grpc => Protocol::Grpc,
            ProxyProtocol::Opaque => Protocol::Opaque,
            ProxyProtocol::Tls => Protocol::Tls,
        },
        authorizations,
        routes,
        notes,
    }
}

/// Turns a policy's authentication references into one authorization.
struct Resolver<'decision> {
    namespace: &'decision str,
    objects: &'decision PolicyObjects<'decision>,
    context: &'decision PolicyContext<'decision>,
}

impl Resolver<'_> {
    fn authorization(&self, policy: &AuthorizationPolicy) -> Result<Authorization, String> {
        let authentications = policy
            .authentications()
            .map_err(|error| error.to_string())?;
        let mut identities = None;
        let mut networks = None;
        for authentication in authentications {
            match authentication {
                Authentication::MeshTls(namespace, name) => {
                    let namespace = namespace.as_deref().unwrap_or(self.namespace);
                    let found = find_named(
                        self.objects.mesh_tls,
                        |authn| &authn.metadata,
                        "MeshTLSAuthentication",
                        namespace,
                        &name,
                    )?;
                    identities = Some(self.identities(found, namespace)?);
                }
                Authentication::ServiceAccount(namespace, name) => {
                    let namespace = namespace.as_deref().unwrap_or(self.namespace);
                    identities = Some(vec![IdentityMatch::Exact(self.identity(&name, namespace))]);
                }
                Authentication::Network(namespace, name) => {
                    let namespace = namespace.as_deref().unwrap_or(self.namespace);
                    let found = find_named(
                        self.objects.networks,
                        |authn| &authn.metadata,
                        "NetworkAuthentication",
                        namespace,
                        &name,
                    )?;
                    networks = Some(found.networks().map_err(|error| error.to_string())?);
                }
            }
        }
        Ok(Authorization {
            reference: AuthorizationRef::Policy(policy.name().to_string()),
            networks: networks.unwrap_or_else(|| {
                vec![
                    NetworkMatch::all(Cidr::ALL_V4),
                    NetworkMatch::all(Cidr::ALL_V6),
                ]
            }),
            authentication: match identities {
                Some(identities) => ClientAuthentication::MeshTls(identities),
                None => ClientAuthentication::Unauthenticated,
            },
        })
    }

    fn identity(&self, service_account: &str, namespace: &str) -> String {
        identity_name(
            service_account,
            namespace,
            self.context.control_namespace,
            self.context.trust_domain,
        )
    }

    /// A MeshTLSAuthentication's identities: names and patterns as written,
    /// ServiceAccounts as their identity, Namespaces as the suffix every
    /// identity of the namespace ends with.
    fn identities(
        &self,
        authentication: &MeshTLSAuthentication,
        namespace: &str,
    ) -> Result<Vec<IdentityMatch>, String> {
        let mut matches = Vec::new();
        for identity in authentication.spec.identities.iter().flatten() {
            matches.push(IdentityMatch::parse(identity)?);
        }
        for reference in authentication.spec.identity_refs.iter().flatten() {
            let reference_namespace = reference.namespace.as_deref().unwrap_or(namespace);
            match reference.kind.as_str() {
                "ServiceAccount" => matches.push(IdentityMatch::Exact(
                    self.identity(&reference.name, reference_namespace),
                )),
                "Namespace" => {
                    let mut parts = vec![
                        reference.name.clone(),
                        "serviceaccount".to_string(),
                        "identity".to_string(),
                        self.context.control_namespace.to_string(),
                    ];
                    parts.extend(self.context.trust_domain.split('.').map(str::to_string));
                    matches.push(IdentityMatch::Suffix(parts));
                }
                other => return Err(format!("identityRefs kind {other:?} is not supported")),
            }
        }
        Ok(matches)
    }
}

/// The object named `namespace/name` among `objects` (of `kind`, for the
/// error saying it does not exist).
fn find_named<'found, Object>(
    objects: &[&'found Object],
    metadata: impl Fn(&Object) -> &ObjectMeta,
    kind: &str,
    namespace: &str,
    name: &str,
) -> Result<&'found Object, String> {
    objects
        .iter()
        .copied()
        .find(|object| {
            let metadata = metadata(object);
            metadata.name.as_deref().unwrap_or_default() == name
                && namespace_or_default(metadata.namespace.as_deref()) == namespace
        })
        .ok_or_else(|| format!("{kind} {namespace}/{name} does not exist"))
}

/// Whether a port list contains a port (shared with Workload's skipped ports).
pub use crate::port_list::lists_port;

impl ClientAuthentication {
    /// Whether a client with this identity (None: no TLS identity) is admitted.
    pub fn admits(&self, identity: Option<&str>) -> bool {
        match self {
            ClientAuthentication::Unauthenticated => true,
            ClientAuthentication::MeshTls(matches) => identity.is_some_and(|identity| {
                matches.iter().any(|pattern| match pattern {
                    IdentityMatch::Exact(name) => name == identity,
                    IdentityMatch::Suffix(parts) => {
                        let labels: Vec<&str> = identity.split('.').collect();
                        labels.len() > parts.len()
                            && labels[labels.len() - parts.len()..]
                                .iter()
                                .zip(parts)
                                .all(|(label, part)| label == part)
                    }
                })
            }),
        }
    }
}

impl Authorization {
    /// Whether a client at `address` with `identity` is admitted (what the
    /// proxy decides; here for tests and `weft authz`).
    pub fn admits(&self, address: IpAddr, identity: Option<&str>) -> bool {
        let in_networks = self.networks.iter().any(|network| {
            network.net.contains(address)
                && !network.except.iter().any(|except| except.contains(address))
        });
        in_networks && self.authentication.admits(identity)
    }
}
