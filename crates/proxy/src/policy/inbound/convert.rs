//! Converts the controller's `io.linkerd.proxy.inbound.Server` into a typed
//! [`ServerPolicy`], once per answer (a pure function).
//!
//! Labels, as Linkerd's controller writes them: the Server's from its
//! `labels` map (`group`, `kind`, `name`); an authorization's from its
//! `metadata` (`Resource{group, kind, name}`, or `Default{name}` = group
//! `""`, kind `default`), else its `labels` map; a route's from its
//! `metadata`. A route's authorizations are its own followed by the
//! Server's (linkerd2-proxy's rule). An answer that cannot be used (no protocol, a network
//! without an address, an authorization without authentication) is refused
//! whole: the port keeps its previous policy.

use super::server::{
    Authentication, Authorization, IdentitySuffix, InboundRoutes, Network, Protocol, RoutePolicy,
    ServerPolicy, default_route_labels,
};
use crate::config::IpNetwork;
use crate::metrics::authz::{ResourceLabels, ServerLabels};
use crate::policy::route_match::{self, MatchError, Route, Rule};
use linkerd2_proxy_api::inbound as api;
use linkerd2_proxy_api::meta::{Metadata, metadata};
use linkerd2_proxy_api::net as net_api;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::Duration;

/// Why an answer was refused.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub(crate) enum ConvertError {
    /// The Server names no protocol.
    #[error("the server has no protocol")]
    MissingProtocol,
    /// An authorization names no authentication.
    #[error("authorization {0:?} has no authentication")]
    MissingAuthentication(String),
    /// A network has no address, or an invalid prefix length.
    #[error("authorization {0:?} has an invalid network")]
    InvalidNetwork(String),
    /// A route's host or match cannot be used.
    #[error(transparent)]
    Route(#[from] MatchError),
}

/// The typed policy of `port` from the controller's answer.
pub(crate) fn server_policy(server: api::Server, port: u16) -> Result<ServerPolicy, ConvertError> {
    let kind = server
        .protocol
        .and_then(|protocol| protocol.kind)
        .ok_or(ConvertError::MissingProtocol)?;
    // Routes inherit the Server's authorizations (after their own), as
    // linkerd2-proxy's `mk_authorizations(route, server)`: Linkerd's
    // default route carries none of its own.
    let authorizations = authorizations(server.authorizations)?;
    let (protocol, routes) = match kind {
        api::proxy_protocol::Kind::Detect(detect) => (
            Protocol::Detect {
                timeout: detect.timeout.and_then(|timeout| {
                    let duration = Duration::try_from(timeout).ok()?;
                    (!duration.is_zero()).then_some(duration)
                }),
            },
            http_routes(detect.http_routes, &authorizations)?,
        ),
        api::proxy_protocol::Kind::Opaque(_) => (Protocol::Opaque, InboundRoutes::Default),
        api::proxy_protocol::Kind::Tls(_) => (Protocol::Tls, InboundRoutes::Default),
        api::proxy_protocol::Kind::Http1(http1) => {
            (Protocol::Http1, http_routes(http1.routes, &authorizations)?)
        }
        api::proxy_protocol::Kind::Http2(http2) => {
            (Protocol::Http2, http_routes(http2.routes, &authorizations)?)
        }
        api::proxy_protocol::Kind::Grpc(grpc) => {
            (Protocol::Grpc, grpc_routes(grpc.routes, &authorizations)?)
        }
    };
    Ok(ServerPolicy {
        protocol,
        authorizations,
        labels: Arc::new(ServerLabels {
            resource: labels_of_map(&server.labels, "server"),
            port,
        }),
        routes,
        default_route: default_route_labels(),
    })
}

/// HTTPRoutes with their matchers (none: the default route).
fn http_routes(
    routes: Vec<api::HttpRoute>,
    server: &[Authorization],
) -> Result<InboundRoutes, ConvertError> {
    if routes.is_empty() {
        return Ok(InboundRoutes::Default);
    }
    let parts = routes.into_iter().map(|route| RouteParts {
        metadata: route.metadata,
        hosts: route.hosts,
        rules: route.rules.into_iter().map(|rule| rule.matches).collect(),
        authorizations: route.authorizations,
    });
    let routes = convert_routes("http_routes", parts, route_match::convert_http, server)?;
    Ok(InboundRoutes::Http(routes))
}

/// GRPCRoutes with their matchers (none: the default route).
fn grpc_routes(
    routes: Vec<api::GrpcRoute>,
    server: &[Authorization],
) -> Result<InboundRoutes, ConvertError> {
    if routes.is_empty() {
        return Ok(InboundRoutes::Default);
    }
    let parts = routes.into_iter().map(|route| RouteParts {
        metadata: route.metadata,
        hosts: route.hosts,
        rules: route.rules.into_iter().map(|rule| rule.matches).collect(),
        authorizations: route.authorizations,
    });
    let routes = convert_routes("grpc_routes", parts, route_match::convert_grpc, server)?;
    Ok(InboundRoutes::Grpc(routes))
}

/// One route as sent, taken apart: HTTP and gRPC routes differ only in
/// their matches (`M`).
struct RouteParts<M> {
    metadata: Option<Metadata>,
    hosts: Vec<linkerd2_proxy_api::http_route::HostMatch>,
    /// Each rule's matches.
    rules: Vec<Vec<M>>,
    authorizations: Vec<api::Authz>,
}

/// The routes of the list `list`, each match converted with `convert`.
fn convert_routes<P, M>(
    list: &str,
    routes: impl Iterator<Item = RouteParts<P>>,
    convert: impl Fn(&str, P) -> Result<M, MatchError> + Copy,
    server: &[Authorization],
) -> Result<Vec<Route<M, RoutePolicy, ()>>, ConvertError> {
    routes
        .enumerate()
        .map(|(index, route)| {
            let field = format!("{list}[{index}]");
            let hosts = route_match::convert_hosts(&field, route.hosts)?;
            let rules = route
                .rules
                .into_iter()
                .enumerate()
                .map(|(rule_index, matches)| {
                    let field = format!("{field}.rules[{rule_index}]");
                    let matches = route_match::convert_matches(&field, matches, convert)?;
                    Ok(Rule { matches, data: () })
                })
                .collect::<Result<_, ConvertError>>()?;
            Ok(Route {
                hosts,
                rules,
                data: route_policy(route.metadata, route.authorizations, server)?,
            })
        })
        .collect()
}

fn route_policy(
    metadata: Option<Metadata>,
    authorizations_of_route: Vec<api::Authz>,
    server: &[Authorization],
) -> Result<RoutePolicy, ConvertError> {
    let labels = metadata
        .as_ref()
        .and_then(labels_of_metadata)
        .unwrap_or_else(|| ResourceLabels::new("", "default", "default"));
    Ok(RoutePolicy {
        labels: Arc::new(labels),
        authorizations: authorizations(authorizations_of_route)?
            .into_iter()
            .chain(server.iter().cloned())
            .collect(),
    })
}

fn authorizations(authorizations: Vec<api::Authz>) -> Result<Vec<Authorization>, ConvertError> {
    authorizations.into_iter().map(authorization).collect()
}

fn authorization(authz: api::Authz) -> Result<Authorization, ConvertError> {
    let labels = authz
        .metadata
        .as_ref()
        .and_then(labels_of_metadata)
        // Old-style labels when there is no metadata, as linkerd2-proxy
        // (kind `serverauthorization` unless they say).
        .unwrap_or_else(|| labels_of_map(&authz.labels, "serverauthorization"));
    let name = labels.name.to_string();
    let networks = authz
        .networks
        .into_iter()
        .map(|network| {
            let invalid = || ConvertError::InvalidNetwork(name.clone());
            let net = network
                .net
                .as_ref()
                .and_then(ip_network)
                .ok_or_else(invalid)?;
            let except = network
                .except
                .iter()
                .map(|except| ip_network(except).ok_or_else(invalid))
                .collect::<Result<_, _>>()?;
            Ok(Network { net, except })
        })
        .collect::<Result<Vec<_>, ConvertError>>()?;
    let permit = authz
        .authentication
        .and_then(|authn| authn.permit)
        .ok_or_else(|| ConvertError::MissingAuthentication(name.clone()))?;
    let authentication = match permit {
        api::authn::Permit::Unauthenticated(_) => Authentication::Unauthenticated,
        api::authn::Permit::MeshTls(mesh) => match mesh.clients {
            Some(api::authn::permit_mesh_tls::Clients::Unauthenticated(_)) => {
                Authentication::TlsUnauthenticated
            }
            Some(api::authn::permit_mesh_tls::Clients::Identities(clients)) => {
                Authentication::MeshTls {
                    identities: clients
                        .identities
                        .into_iter()
                        .map(|identity| identity.name)
                        .collect(),
                    suffixes: clients
                        .suffixes
                        .iter()
                        .map(|suffix| IdentitySuffix::new(&suffix.parts))
                        .collect(),
                }
            }
            None => return Err(ConvertError::MissingAuthentication(name)),
        },
    };
    Ok(Authorization {
        networks,
        authentication,
        labels: Arc::new(labels),
    })
}

/// Labels from a resource's metadata (`None` when it has no kind).
fn labels_of_metadata(metadata: &Metadata) -> Option<ResourceLabels> {
    match metadata.kind.as_ref()? {
        metadata::Kind::Default(name) => Some(ResourceLabels::new("", "default", name)),
        metadata::Kind::Resource(resource) => Some(ResourceLabels::new(
            &resource.group,
            &resource.kind,
            &resource.name,
        )),
    }
}

/// Labels from a `labels` map (`group`, `kind`, `name`; the kind defaults
/// to `default_kind`).
fn labels_of_map(labels: &HashMap<String, String>, default_kind: &str) -> ResourceLabels {
    let get = |key: &str| labels.get(key).map(String::as_str);
    ResourceLabels::new(
        get("group").unwrap_or(""),
        get("kind").unwrap_or(default_kind),
        get("name").unwrap_or(""),
    )
}

/// A protobuf network, when it has an address and a prefix that fits it.
fn ip_network(network: &net_api::IpNetwork) -> Option<IpNetwork> {
    let ip = match network.ip.as_ref()?.ip.as_ref()? {
        net_api::ip_address::Ip::Ipv4(ip) => IpAddr::V4(Ipv4Addr::from(*ip)),
        net_api::ip_address::Ip::Ipv6(ip) => IpAddr::V6(Ipv6Addr::from(
            (u128::from(ip.first) << 64) | u128::from(ip.last),
        )),
    };
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let prefix = u8::try_from(network.prefix_len)
        .ok()
        .filter(|prefix| *prefix <= max)?;
    Some(IpNetwork::new(ip, prefix))
}
