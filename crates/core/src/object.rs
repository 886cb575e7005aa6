//! One mesh object of any kind ([`MeshObject`]), its [`Kind`] (chosen by
//! `apiVersion` + `kind`) and its [`ObjectKey`] (kind, namespace, name) — what
//! sources hand to the catalog.

use k8s_openapi::api::core::v1::Service;

use crate::endpoint_slice::{self, EndpointSlice};
use crate::policy::{
    AuthorizationPolicy, MeshTLSAuthentication, NetworkAuthentication, Server, authentication,
    authorization, server,
};
use crate::profile::{self, ServiceProfile};
use crate::route::{self, GrpcRoute, HttpRoute};
use crate::service::namespace_or_default;
use crate::split::{self, TrafficSplit};
use crate::workload::{self, Workload};

/// Why an object cannot enter the mesh model.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ObjectError {
    /// `apiVersion`/`kind` is not one of the kinds weft knows.
    #[error("unsupported kind {kind:?} of apiVersion {api_version:?} (expected v1 Service, discovery.k8s.io/v1 EndpointSlice, {workload} Workload, {profile} ServiceProfile, {split} TrafficSplit, HTTPRoute ({http_routes}), GRPCRoute ({grpc_routes}), or policy.linkerd.io Server, AuthorizationPolicy, MeshTLSAuthentication or NetworkAuthentication)",
        http_routes = route::HTTP_ROUTE_API_VERSIONS.join(", "), grpc_routes = route::GRPC_ROUTE_API_VERSIONS.join(", "),
        workload = workload::API_VERSION, profile = profile::API_VERSION, split = split::API_VERSION)]
    UnsupportedKind {
        /// `apiVersion` as written.
        api_version: String,
        /// `kind` as written.
        kind: String,
    },
    /// `metadata.name` is missing or empty.
    #[error("metadata.name is required")]
    MissingName,
}

/// The kinds of the mesh model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// core/v1 Service.
    Service,
    /// weft.dev/v1alpha1 Workload.
    Workload,
    /// linkerd.io/v1alpha2 ServiceProfile.
    ServiceProfile,
    /// split.smi-spec.io/v1alpha1 TrafficSplit.
    TrafficSplit,
    /// policy.linkerd.io/v1beta3 (v1beta1, v1beta2) Server.
    Server,
    /// policy.linkerd.io/v1alpha1 AuthorizationPolicy.
    AuthorizationPolicy,
    /// policy.linkerd.io/v1alpha1 MeshTLSAuthentication.
    MeshTLSAuthentication,
    /// policy.linkerd.io/v1alpha1 NetworkAuthentication.
    NetworkAuthentication,
    /// HTTPRoute (policy.linkerd.io/v1beta1..3, gateway.networking.k8s.io/v1, v1beta1).
    HttpRoute,
    /// gateway.networking.k8s.io/v1 GRPCRoute.
    GrpcRoute,
    /// discovery.k8s.io/v1 EndpointSlice.
    EndpointSlice,
}

impl Kind {
    /// The kind for an `apiVersion` and `kind` pair.
    pub fn from_type(api_version: &str, kind: &str) -> Result<Self, ObjectError> {
        match (api_version, kind) {
            ("v1", "Service") => Ok(Kind::Service),
            (workload::API_VERSION, workload::KIND) => Ok(Kind::Workload),
            (endpoint_slice::API_VERSION, endpoint_slice::KIND) => Ok(Kind::EndpointSlice),
            (profile::API_VERSION, profile::KIND) => Ok(Kind::ServiceProfile),
            (split::API_VERSION, split::KIND) => Ok(Kind::TrafficSplit),
            (version, server::KIND) if server::API_VERSIONS.contains(&version) => Ok(Kind::Server),
            (authorization::API_VERSION, authorization::KIND) => Ok(Kind::AuthorizationPolicy),
            (authentication::API_VERSION, authentication::MESH_TLS_KIND) => {
                Ok(Kind::MeshTLSAuthentication)
            }
            (authentication::API_VERSION, authentication::NETWORK_KIND) => {
                Ok(Kind::NetworkAuthentication)
            }
            (api_version, route::HTTP_ROUTE_KIND)
                if route::HTTP_ROUTE_API_VERSIONS.contains(&api_version) =>
            {
                Ok(Kind::HttpRoute)
            }
            (api_version, route::GRPC_ROUTE_KIND)
                if route::GRPC_ROUTE_API_VERSIONS.contains(&api_version) =>
            {
                Ok(Kind::GrpcRoute)
            }
            _ => Err(ObjectError::UnsupportedKind {
                api_version: api_version.to_string(),
                kind: kind.to_string(),
            }),
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, formatter)
    }
}

/// Identifies an object: kind, namespace (`default` when absent) and name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey {
    /// Its kind.
    pub kind: Kind,
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
}

impl ObjectKey {
    /// A key from its parts.
    pub fn new(kind: Kind, namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            kind,
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

impl std::fmt::Display for ObjectKey {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "{} {}/{}", self.kind, self.namespace, self.name)
    }
}

/// One object of the mesh model.
#[derive(Debug, Clone, PartialEq)]
pub enum MeshObject {
    /// A Service.
    Service(Box<Service>),
    /// A Workload.
    Workload(Box<Workload>),
    /// A ServiceProfile.
    ServiceProfile(Box<ServiceProfile>),
    /// A TrafficSplit.
    TrafficSplit(Box<TrafficSplit>),
    /// A Server.
    Server(Box<Server>),
    /// An AuthorizationPolicy.
    AuthorizationPolicy(Box<AuthorizationPolicy>),
    /// A MeshTLSAuthentication.
    MeshTLSAuthentication(Box<MeshTLSAuthentication>),
    /// A NetworkAuthentication.
    NetworkAuthentication(Box<NetworkAuthentication>),
    /// An HTTPRoute.
    HttpRoute(Box<HttpRoute>),
    /// A GRPCRoute.
    GrpcRoute(Box<GrpcRoute>),
    /// An EndpointSlice.
    EndpointSlice(Box<EndpointSlice>),
}

impl MeshObject {
    /// Its kind.
    pub fn kind(&self) -> Kind {
        match self {
            MeshObject::Service(_) => Kind::Service,
            MeshObject::Workload(_) => Kind::Workload,
            MeshObject::ServiceProfile(_) => Kind::ServiceProfile,
            MeshObject::TrafficSplit(_) => Kind::TrafficSplit,
            MeshObject::Server(_) => Kind::Server,
            MeshObject::AuthorizationPolicy(_) => Kind::AuthorizationPolicy,
            MeshObject::MeshTLSAuthentication(_) => Kind::MeshTLSAuthentication,
            MeshObject::NetworkAuthentication(_) => Kind::NetworkAuthentication,
            MeshObject::HttpRoute(_) => Kind::HttpRoute,
            MeshObject::GrpcRoute(_) => Kind::GrpcRoute,
            MeshObject::EndpointSlice(_) => Kind::EndpointSlice,
        }
    }

    /// Its name and namespace, as written.
    pub fn name_and_namespace(&self) -> (Option<&str>, Option<&str>) {
        let metadata = match self {
            // A Workload keeps a lean metadata of its own, not an ObjectMeta.
            MeshObject::Workload(workload) => {
                let metadata = &workload.metadata;
                return (metadata.name.as_deref(), metadata.namespace.as_deref());
            }
            MeshObject::EndpointSlice(slice) => {
                let metadata = &slice.metadata;
                return (metadata.name.as_deref(), metadata.namespace.as_deref());
            }
            MeshObject::Service(service) => &service.metadata,
            MeshObject::ServiceProfile(profile) => &profile.metadata,
            MeshObject::TrafficSplit(split) => &split.metadata,
            MeshObject::Server(server) => &server.metadata,
            MeshObject::AuthorizationPolicy(policy) => &policy.metadata,
            MeshObject::MeshTLSAuthentication(authentication) => &authentication.metadata,
            MeshObject::NetworkAuthentication(authentication) => &authentication.metadata,
            MeshObject::HttpRoute(route) => &route.metadata,
            MeshObject::GrpcRoute(route) => &route.metadata,
        };
        (metadata.name.as_deref(), metadata.namespace.as_deref())
    }

    /// Its key; fails when it has no name.
    pub fn key(&self) -> Result<ObjectKey, ObjectError> {
        let (name, namespace) = self.name_and_namespace();
        let name = name
            .filter(|name| !name.is_empty())
            .ok_or(ObjectError::MissingName)?;
        Ok(ObjectKey::new(
            self.kind(),
            namespace_or_default(namespace),
            name,
        ))
    }
}

impl From<Service> for MeshObject {
    fn from(service: Service) -> Self {
        MeshObject::Service(Box::new(service))
    }
}

impl From<Workload> for MeshObject {
    fn from(workload: Workload) -> Self {
        MeshObject::Workload(Box::new(workload))
    }
}

impl From<ServiceProfile> for MeshObject {
    fn from(profile: ServiceProfile) -> Self {
        MeshObject::ServiceProfile(Box::new(profile))
    }
}

impl MeshObject {
    /// Checks what parsing cannot (the policy kinds' fields); the error
    /// names the field, e.g. `spec.port: 0 is not a port (1-65535)`.
    pub fn validate(&self) -> Result<(), crate::policy::FieldError> {
        match self {
            MeshObject::Server(server) => server.validate(),
            MeshObject::AuthorizationPolicy(policy) => policy.validate(),
            MeshObject::MeshTLSAuthentication(authentication) => authentication.validate(),
            MeshObject::NetworkAuthentication(authentication) => authentication.validate(),
            MeshObject::Service(_)
            | MeshObject::Workload(_)
            | MeshObject::ServiceProfile(_)
            | MeshObject::TrafficSplit(_)
            // Routes are checked as they are parsed.
            | MeshObject::HttpRoute(_)
            | MeshObject::GrpcRoute(_)
            // Slices are checked as they are converted.
            | MeshObject::EndpointSlice(_) => Ok(()),
        }
    }
}

impl From<Server> for MeshObject {
    fn from(server: Server) -> Self {
        MeshObject::Server(Box::new(server))
    }
}

impl From<AuthorizationPolicy> for MeshObject {
    fn from(policy: AuthorizationPolicy) -> Self {
        MeshObject::AuthorizationPolicy(Box::new(policy))
    }
}

impl From<MeshTLSAuthentication> for MeshObject {
    fn from(authentication: MeshTLSAuthentication) -> Self {
        MeshObject::MeshTLSAuthentication(Box::new(authentication))
    }
}

impl From<NetworkAuthentication> for MeshObject {
    fn from(authentication: NetworkAuthentication) -> Self {
        MeshObject::NetworkAuthentication(Box::new(authentication))
    }
}

impl From<TrafficSplit> for MeshObject {
    fn from(split: TrafficSplit) -> Self {
        MeshObject::TrafficSplit(Box::new(split))
    }
}

impl From<EndpointSlice> for MeshObject {
    fn from(slice: EndpointSlice) -> Self {
        MeshObject::EndpointSlice(Box::new(slice))
    }
}

impl From<HttpRoute> for MeshObject {
    fn from(route: HttpRoute) -> Self {
        MeshObject::HttpRoute(Box::new(route))
    }
}

impl From<GrpcRoute> for MeshObject {
    fn from(route: GrpcRoute) -> Self {
        MeshObject::GrpcRoute(Box::new(route))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_by_type() {
        let cases: &[(&str, &str, Option<Kind>)] = &[
            ("v1", "Service", Some(Kind::Service)),
            ("weft.dev/v1alpha1", "Workload", Some(Kind::Workload)),
            (
                "linkerd.io/v1alpha2",
                "ServiceProfile",
                Some(Kind::ServiceProfile),
            ),
            (
                "split.smi-spec.io/v1alpha1",
                "TrafficSplit",
                Some(Kind::TrafficSplit),
            ),
            ("policy.linkerd.io/v1beta3", "Server", Some(Kind::Server)),
            ("policy.linkerd.io/v1beta1", "Server", Some(Kind::Server)),
            (
                "policy.linkerd.io/v1alpha1",
                "AuthorizationPolicy",
                Some(Kind::AuthorizationPolicy),
            ),
            (
                "policy.linkerd.io/v1alpha1",
                "MeshTLSAuthentication",
                Some(Kind::MeshTLSAuthentication),
            ),
            (
                "policy.linkerd.io/v1alpha1",
                "NetworkAuthentication",
                Some(Kind::NetworkAuthentication),
            ),
            ("policy.linkerd.io/v1alpha1", "Server", None),
            (
                "policy.linkerd.io/v1beta3",
                "HTTPRoute",
                Some(Kind::HttpRoute),
            ),
            (
                "policy.linkerd.io/v1beta1",
                "HTTPRoute",
                Some(Kind::HttpRoute),
            ),
            (
                "gateway.networking.k8s.io/v1",
                "HTTPRoute",
                Some(Kind::HttpRoute),
            ),
            (
                "gateway.networking.k8s.io/v1beta1",
                "HTTPRoute",
                Some(Kind::HttpRoute),
            ),
            (
                "gateway.networking.k8s.io/v1",
                "GRPCRoute",
                Some(Kind::GrpcRoute),
            ),
            ("policy.linkerd.io/v1alpha1", "HTTPRoute", None),
            ("policy.linkerd.io/v1beta3", "GRPCRoute", None),
            ("linkerd.io/v1alpha1", "ServiceProfile", None),
            ("v1", "Pod", None),
            (
                "discovery.k8s.io/v1",
                "EndpointSlice",
                Some(Kind::EndpointSlice),
            ),
        ];
        for (api_version, kind, expected) in cases {
            assert_eq!(
                Kind::from_type(api_version, kind).ok(),
                *expected,
                "{api_version} {kind}"
            );
        }
    }

    #[test]
    fn keys_default_the_namespace_and_need_a_name() {
        let named: Service =
            serde_saphyr::from_str("apiVersion: v1\nkind: Service\nmetadata: {name: web}\n")
                .unwrap();
        assert_eq!(
            MeshObject::from(named).key(),
            Ok(ObjectKey::new(Kind::Service, "default", "web"))
        );
        let unnamed: Service =
            serde_saphyr::from_str("apiVersion: v1\nkind: Service\nmetadata: {}\n").unwrap();
        assert_eq!(
            MeshObject::from(unnamed).key(),
            Err(ObjectError::MissingName)
        );
    }
}
