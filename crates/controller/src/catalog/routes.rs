//! The catalog's HTTPRoutes and GRPCRoutes, and which of them attach to a
//! Service port (outbound routing) or to a Server (inbound routes).
//!
//! A route attaches to a Service port when one of its `parentRefs` names the
//! Service (kind `Service`, its namespace or the route's) with that port or
//! no port. Routes are returned oldest first by name within a namespace
//! (the catalog has no creation timestamps; Linkerd orders equal-precedence
//! routes by creation time, then name).

use std::collections::BTreeMap;

use weft_core::names::ServiceName;
use weft_core::object::MeshObject;
use weft_core::route::{GrpcRoute, HttpRoute, ParentKind, ParentReference};

use super::NamespacedName;

/// The route objects, one map per kind.
#[derive(Debug, Default, Clone)]
pub(super) struct RouteObjects {
    http: BTreeMap<NamespacedName, Box<HttpRoute>>,
    grpc: BTreeMap<NamespacedName, Box<GrpcRoute>>,
}

impl RouteObjects {
    pub(super) fn insert_http(
        &mut self,
        name: NamespacedName,
        route: Box<HttpRoute>,
    ) -> Option<MeshObject> {
        self.http.insert(name, route).map(MeshObject::HttpRoute)
    }

    pub(super) fn insert_grpc(
        &mut self,
        name: NamespacedName,
        route: Box<GrpcRoute>,
    ) -> Option<MeshObject> {
        self.grpc.insert(name, route).map(MeshObject::GrpcRoute)
    }

    pub(super) fn remove_http(&mut self, name: &NamespacedName) -> Option<MeshObject> {
        self.http.remove(name).map(MeshObject::HttpRoute)
    }

    pub(super) fn remove_grpc(&mut self, name: &NamespacedName) -> Option<MeshObject> {
        self.grpc.remove(name).map(MeshObject::GrpcRoute)
    }

    /// Whether any route is in `namespace`.
    pub(super) fn any_in(&self, namespace: &str) -> bool {
        let start = (namespace.to_string(), String::new());
        self.http
            .range(start.clone()..)
            .next()
            .is_some_and(|(key, _)| key.0 == namespace)
            || self
                .grpc
                .range(start..)
                .next()
                .is_some_and(|(key, _)| key.0 == namespace)
    }

    /// The HTTPRoutes attached to `service:port`, by namespace then name.
    pub(super) fn http_routes_for(&self, service: &ServiceName, port: u16) -> Vec<&HttpRoute> {
        self.http
            .iter()
            .filter(|((namespace, _), route)| {
                attaches_to_service(&route.spec.parent_refs, namespace, service, port)
            })
            .map(|(_, route)| route.as_ref())
            .collect()
    }

    /// The GRPCRoutes attached to `service:port`, by namespace then name.
    pub(super) fn grpc_routes_for(&self, service: &ServiceName, port: u16) -> Vec<&GrpcRoute> {
        self.grpc
            .iter()
            .filter(|((namespace, _), route)| {
                attaches_to_service(&route.spec.parent_refs, namespace, service, port)
            })
            .map(|(_, route)| route.as_ref())
            .collect()
    }

    /// The HTTPRoutes whose parents include the Server `namespace/name`.
    pub(super) fn http_routes_for_server(&self, namespace: &str, name: &str) -> Vec<&HttpRoute> {
        self.http
            .iter()
            .filter(|((route_namespace, _), route)| {
                route.spec.parent_refs.iter().any(|parent| {
                    parent.parent_kind() == ParentKind::Server
                        && parent.name == name
                        && parent.namespace_or(route_namespace) == namespace
                })
            })
            .map(|(_, route)| route.as_ref())
            .collect()
    }

    /// The GRPCRoutes whose parents include the Server `namespace/name`.
    pub(super) fn grpc_routes_for_server(&self, namespace: &str, name: &str) -> Vec<&GrpcRoute> {
        self.grpc
            .iter()
            .filter(|((route_namespace, _), route)| {
                route.spec.parent_refs.iter().any(|parent| {
                    parent.parent_kind() == ParentKind::Server
                        && parent.name == name
                        && parent.namespace_or(route_namespace) == namespace
                })
            })
            .map(|(_, route)| route.as_ref())
            .collect()
    }

    /// Every HTTPRoute, copied, optionally of one namespace.
    pub(super) fn http_routes(&self, namespace: Option<&str>) -> Vec<HttpRoute> {
        self.http
            .iter()
            .filter(|((route_namespace, _), _)| {
                namespace.is_none_or(|wanted| route_namespace == wanted)
            })
            .map(|(_, route)| route.as_ref().clone())
            .collect()
    }
}

/// Whether one of `parents` (of a route in `route_namespace`) names the
/// Service `service` with `port` or without a port.
pub fn attaches_to_service(
    parents: &[ParentReference],
    route_namespace: &str,
    service: &ServiceName,
    port: u16,
) -> bool {
    parents.iter().any(|parent| {
        parent.parent_kind() == ParentKind::Service
            && parent.name == service.name
            && parent.namespace_or(route_namespace) == service.namespace
            && parent.port.is_none_or(|parent_port| parent_port == port)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parents_attach_by_name_namespace_and_port() {
        let parent = |namespace: Option<&str>, port: Option<u16>| ParentReference {
            group: Some("core".into()),
            kind: Some("Service".into()),
            name: "books".into(),
            namespace: namespace.map(str::to_string),
            section_name: None,
            port,
        };
        let books = ServiceName::new("shop", "books");
        let cases: &[(ParentReference, &str, u16, bool)] = &[
            (parent(None, Some(7002)), "shop", 7002, true),
            (parent(None, Some(7002)), "shop", 7003, false),
            (parent(None, None), "shop", 7003, true),
            (parent(None, None), "other", 7002, false),
            (parent(Some("shop"), None), "other", 7002, true),
            (
                ParentReference {
                    kind: Some("Server".into()),
                    group: Some("policy.linkerd.io".into()),
                    ..parent(None, None)
                },
                "shop",
                7002,
                false,
            ),
        ];
        for (parent, route_namespace, port, expected) in cases {
            assert_eq!(
                attaches_to_service(std::slice::from_ref(parent), route_namespace, &books, *port),
                *expected,
                "{parent:?} from {route_namespace} on {port}"
            );
        }
    }
}
