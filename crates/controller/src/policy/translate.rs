//! Pure conversions for InboundServerPolicies: the request's workload
//! string and port → a [`PortTarget`]; a catalog answer ([`PortPolicy`]) →
//! `inbound::Server`, in the shape Linkerd's policy controller sends.
//!
//! ```text
//! Server.protocol        Detect{10s, http_routes} | Http1{routes} | Http2{routes}
//!                        | Grpc{routes} | Opaque | Tls
//! Server.authorizations  one Authz per authorization: networks, authn, metadata,
//!                        labels {group, kind, name}
//! Server.labels          {group: policy.linkerd.io, kind: server, name}  (a Server)
//!                        {group: "", kind: default, name: <policy>}       (a default)
//! routes                 the Server's HTTPRoutes / GRPCRoutes, each with the
//!                        authorizations limited to it; none: one route
//!                        Default("default") matching every request (path prefix /),
//!                        whose requests the Server's authorizations govern
//! ```
//!
//! No `probe` route: Linkerd adds one for a pod's kubelet probe paths, and
//! a Workload declares no probes (a host mesh has no kubelet; the proxy
//! answers its own admin-port probes).

use std::collections::HashMap;

use linkerd2_proxy_api::grpc_route as grpc_proto;
use linkerd2_proxy_api::inbound as proto;
use linkerd2_proxy_api::meta::{Metadata, Resource, metadata};
use linkerd2_proxy_api::net;
use weft_core::policy::GROUP;
use weft_core::policy::authentication::{IdentityMatch, NetworkMatch};
use weft_core::policy::effective::{
    Authorization, AuthorizationRef, ClientAuthentication, Protocol, RoutePolicy, ServerRef,
};
use weft_core::policy::network::Cidr;
use weft_core::route::{FilterType, GrpcRoute, HttpRoute, HttpRouteFilter, HttpRouteMatch};

use crate::catalog::{PortPolicy, PortTarget};
use crate::policy::route_proto::{
    grpc_match, host_matches, http_match, redirect, request_header_modifier,
};

/// Why a request cannot be answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TranslateError {
    /// The workload is not `{"ns":"<namespace>","pod":"<name>"}` (nor
    /// `external_workload` for `pod`, nor `<namespace>:<name>`).
    #[error("invalid workload {0:?}: expected {{\"ns\":\"<namespace>\",\"pod\":\"<name>\"}}")]
    InvalidWorkload(String),
    /// The port is 0 or above 65535.
    #[error("invalid port {0}: expected 1-65535")]
    InvalidPort(u32),
}

/// The workload string linkerd2-proxy sends: `{"ns":..,"pod":..}`, or
/// `{"ns":..,"external_workload":..}` (an ExternalWorkload's proxy; on weft
/// both name a Workload).
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct WorkloadSpec {
    ns: String,
    #[serde(default)]
    pod: Option<String>,
    #[serde(default)]
    external_workload: Option<String>,
}

/// The port a request asks about. The workload is JSON as above, or
/// Linkerd's older `<namespace>:<pod>`, as Linkerd's policy controller reads it.
pub fn port_target(workload: &str, port: u32) -> Result<PortTarget, TranslateError> {
    let invalid = || TranslateError::InvalidWorkload(workload.chars().take(200).collect());
    let (namespace, name) = if workload.starts_with('{') {
        let spec: WorkloadSpec = serde_json::from_str(workload).map_err(|_| invalid())?;
        match (spec.pod, spec.external_workload) {
            (Some(name), None) | (None, Some(name)) => (spec.ns, name),
            _ => return Err(invalid()),
        }
    } else {
        let (namespace, name) = workload.split_once(':').ok_or_else(invalid)?;
        (namespace.to_string(), name.to_string())
    };
    let is_name = |text: &str| {
        !text.is_empty()
            && text.len() <= 253
            && text
                .chars()
                .all(|character| character.is_ascii_alphanumeric() || "-._".contains(character))
    };
    if !is_name(&namespace) || !is_name(&name) {
        return Err(invalid());
    }
    let port = u16::try_from(port)
        .ok()
        .filter(|port| *port != 0)
        .ok_or(TranslateError::InvalidPort(port))?;
    Ok(PortTarget {
        namespace,
        workload: name,
        port,
    })
}

/// The `inbound::Server` for a catalog answer.
pub fn server(answer: &PortPolicy) -> proto::Server {
    let policy = &answer.policy;
    let labels = match &policy.server {
        ServerRef::Server(name) => resource_labels(GROUP, "server", name),
        ServerRef::Default(default) => resource_labels("", "default", default.as_str()),
    };
    use proto::proxy_protocol::{Detect, Grpc, Http1, Http2, Kind, Opaque, Tls};
    let kind = match policy.protocol {
        Protocol::Detect(timeout) => Kind::Detect(Detect {
            timeout: prost_types::Duration::try_from(timeout).ok(),
            http_routes: http_routes(answer),
            http_local_rate_limit: None,
        }),
        Protocol::Http1 => Kind::Http1(Http1 {
            routes: http_routes(answer),
            local_rate_limit: None,
        }),
        Protocol::Http2 => Kind::Http2(Http2 {
            routes: http_routes(answer),
            local_rate_limit: None,
        }),
        Protocol::Grpc => Kind::Grpc(Grpc {
            routes: grpc_routes(answer),
        }),
        Protocol::Opaque => Kind::Opaque(Opaque {}),
        Protocol::Tls => Kind::Tls(Tls {}),
    };
    proto::Server {
        protocol: Some(proto::ProxyProtocol { kind: Some(kind) }),
        server_ips: Vec::new(),
        authorizations: policy.authorizations.iter().map(authz).collect(),
        labels,
    }
}

fn resource_labels(group: &str, kind: &str, name: &str) -> HashMap<String, String> {
    HashMap::from([
        ("group".to_string(), group.to_string()),
        ("kind".to_string(), kind.to_string()),
        ("name".to_string(), name.to_string()),
    ])
}

/// One authorization.
pub fn authz(authorization: &Authorization) -> proto::Authz {
    let (metadata, labels) = match &authorization.reference {
        AuthorizationRef::Policy(name) => (
            metadata::Kind::Resource(Resource {
                group: GROUP.to_string(),
                kind: "authorizationpolicy".to_string(),
                name: name.clone(),
                ..Resource::default()
            }),
            resource_labels(GROUP, "authorizationpolicy", name),
        ),
        AuthorizationRef::Default(policy) => (
            metadata::Kind::Default(policy.as_str().to_string()),
            resource_labels("", "default", policy.as_str()),
        ),
    };
    use proto::authn::permit_mesh_tls::{Clients, PermitClientIdentities};
    use proto::authn::{Permit, PermitMeshTls, PermitUnauthenticated};
    let permit = match &authorization.authentication {
        ClientAuthentication::Unauthenticated => Permit::Unauthenticated(PermitUnauthenticated {}),
        ClientAuthentication::MeshTls(matches) => {
            let mut identities = Vec::new();
            let mut suffixes = Vec::new();
            for pattern in matches {
                match pattern {
                    IdentityMatch::Exact(name) => {
                        identities.push(proto::Identity { name: name.clone() })
                    }
                    IdentityMatch::Suffix(parts) => suffixes.push(proto::IdentitySuffix {
                        parts: parts.clone(),
                    }),
                }
            }
            Permit::MeshTls(PermitMeshTls {
                clients: Some(Clients::Identities(PermitClientIdentities {
                    identities,
                    suffixes,
                })),
            })
        }
    };
    proto::Authz {
        networks: authorization.networks.iter().map(network).collect(),
        authentication: Some(proto::Authn {
            permit: Some(permit),
        }),
        labels,
        metadata: Some(Metadata {
            kind: Some(metadata),
        }),
    }
}

fn network(network: &NetworkMatch) -> proto::Network {
    proto::Network {
        net: Some(ip_network(network.net)),
        except: network.except.iter().copied().map(ip_network).collect(),
    }
}

fn ip_network(cidr: Cidr) -> net::IpNetwork {
    net::IpNetwork {
        ip: Some(net::IpAddress::from(cidr.address)),
        prefix_len: u32::from(cidr.prefix),
    }
}

fn route_authorizations(policy: &PortPolicy, kind_name: (&str, &str)) -> Vec<proto::Authz> {
    policy
        .policy
        .routes
        .iter()
        .find(|route: &&RoutePolicy| {
            let kind = match route.kind {
                weft_core::policy::effective::RouteKind::Http => "HTTPRoute",
                weft_core::policy::effective::RouteKind::Grpc => "GRPCRoute",
            };
            (kind, route.name.as_str()) == kind_name
        })
        .map(|route| route.authorizations.iter().map(authz).collect())
        .unwrap_or_default()
}

fn default_metadata() -> Option<Metadata> {
    Some(Metadata {
        kind: Some(metadata::Kind::Default("default".to_string())),
    })
}

fn route_metadata(group: &str, kind: &str, name: &str) -> Option<Metadata> {
    Some(Metadata {
        kind: Some(metadata::Kind::Resource(Resource {
            group: group.to_string(),
            kind: kind.to_string(),
            name: name.to_string(),
            ..Resource::default()
        })),
    })
}

/// The HTTP routes: the Server's HTTPRoutes, or Linkerd's default route.
fn http_routes(answer: &PortPolicy) -> Vec<proto::HttpRoute> {
    if answer.http_routes.is_empty() {
        return vec![proto::HttpRoute {
            metadata: default_metadata(),
            hosts: Vec::new(),
            authorizations: Vec::new(),
            rules: vec![proto::http_route::Rule {
                matches: vec![http_match(&HttpRouteMatch::default())],
                filters: Vec::new(),
            }],
        }];
    }
    answer
        .http_routes
        .iter()
        .map(|route| http_route(answer, route))
        .collect()
}

fn http_route(answer: &PortPolicy, route: &HttpRoute) -> proto::HttpRoute {
    let name = route.metadata.name.as_deref().unwrap_or_default();
    proto::HttpRoute {
        metadata: route_metadata(route.group(), "HTTPRoute", name),
        hosts: host_matches(&route.spec.hostnames),
        authorizations: route_authorizations(answer, ("HTTPRoute", name)),
        rules: route
            .spec
            .rules
            .iter()
            .map(|rule| proto::http_route::Rule {
                matches: rule.effective_matches().iter().map(http_match).collect(),
                filters: rule.filters.iter().filter_map(http_filter).collect(),
            })
            .collect(),
    }
}

/// The gRPC routes: the Server's GRPCRoutes, or a default route matching every call.
fn grpc_routes(answer: &PortPolicy) -> Vec<proto::GrpcRoute> {
    if answer.grpc_routes.is_empty() {
        return vec![proto::GrpcRoute {
            metadata: default_metadata(),
            hosts: Vec::new(),
            authorizations: Vec::new(),
            rules: vec![proto::grpc_route::Rule {
                matches: vec![grpc_proto::GrpcRouteMatch::default()],
                filters: Vec::new(),
            }],
        }];
    }
    answer
        .grpc_routes
        .iter()
        .map(|route| grpc_route(answer, route))
        .collect()
}

fn grpc_route(answer: &PortPolicy, route: &GrpcRoute) -> proto::GrpcRoute {
    let name = route.metadata.name.as_deref().unwrap_or_default();
    proto::GrpcRoute {
        metadata: route_metadata(route.group(), "GRPCRoute", name),
        hosts: host_matches(&route.spec.hostnames),
        authorizations: route_authorizations(answer, ("GRPCRoute", name)),
        rules: route
            .spec
            .rules
            .iter()
            .map(|rule| proto::grpc_route::Rule {
                matches: rule.effective_matches().iter().map(grpc_match).collect(),
                filters: rule
                    .filters
                    .iter()
                    .filter(|filter| filter.filter_type == FilterType::RequestHeaderModifier)
                    .filter_map(|filter| filter.request_header_modifier.as_ref())
                    .map(|modifier| proto::grpc_route::Filter {
                        kind: Some(proto::grpc_route::filter::Kind::RequestHeaderModifier(
                            request_header_modifier(modifier),
                        )),
                    })
                    .collect(),
            })
            .collect(),
    }
}

/// RequestHeaderModifier and RequestRedirect (ResponseHeaderModifier has no
/// inbound form in the API).
fn http_filter(filter: &HttpRouteFilter) -> Option<proto::http_route::Filter> {
    use proto::http_route::filter::Kind;
    let kind = match filter.filter_type {
        FilterType::RequestHeaderModifier => Kind::RequestHeaderModifier(request_header_modifier(
            filter.request_header_modifier.as_ref()?,
        )),
        FilterType::RequestRedirect => Kind::Redirect(redirect(filter.request_redirect.as_ref()?)),
        FilterType::ResponseHeaderModifier => return None,
    };
    Some(proto::http_route::Filter { kind: Some(kind) })
}

#[cfg(test)]
mod tests;
