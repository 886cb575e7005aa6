//! The catalog's HTTPRoutes and GRPCRoutes, and which of them attach to a
//! Service port (outbound routing) or to a Server (inbound routes).
//!
//! A route attaches to a Service port when one of its `parentRefs` names the
//! Service (kind `Service`, its namespace or the route's) with that port or
//! no port. Routes are returned oldest first by name within a namespace
//! (the catalog has no creation timestamps; Linkerd orders equal-precedence
//! routes by creation time, then name).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use k8s_openapi::api::core::v1::Service;
use tokio::sync::watch;
use weft_core::names::ServiceName;
use weft_core::object::MeshObject;
use weft_core::route::annotations::ConsecutiveFailures;
use weft_core::route::{GrpcRoute, HttpRoute, ParentKind, ParentReference, RouteAnnotations};
use weft_core::service::is_external_name;

use super::profiles::{OPAQUE_PORTS_ANNOTATION, lists_port};
use super::{Catalog, NamespacedName, ProfileTarget, Scope, publish_if_changed, release_watch};

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

    /// The HTTPRoutes attached to `service:port` as a client in
    /// `client_namespace` sees them (see [`routes_for_client`]).
    pub(super) fn http_routes_for(
        &self,
        service: &ServiceName,
        port: u16,
        client_namespace: Option<&str>,
    ) -> Vec<&HttpRoute> {
        routes_for_client(&self.http, service, port, client_namespace, |route| {
            &route.spec.parent_refs
        })
    }

    /// The GRPCRoutes attached to `service:port` as a client in
    /// `client_namespace` sees them (see [`routes_for_client`]).
    pub(super) fn grpc_routes_for(
        &self,
        service: &ServiceName,
        port: u16,
        client_namespace: Option<&str>,
    ) -> Vec<&GrpcRoute> {
        routes_for_client(&self.grpc, service, port, client_namespace, |route| {
            &route.spec.parent_refs
        })
    }

    /// The HTTPRoutes whose parents include the Server `namespace/name`.
    pub(super) fn http_routes_for_server(&self, namespace: &str, name: &str) -> Vec<&HttpRoute> {
        routes_for_server(&self.http, namespace, name, |route| &route.spec.parent_refs)
    }

    /// The GRPCRoutes whose parents include the Server `namespace/name`.
    pub(super) fn grpc_routes_for_server(&self, namespace: &str, name: &str) -> Vec<&GrpcRoute> {
        routes_for_server(&self.grpc, namespace, name, |route| &route.spec.parent_refs)
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

/// How the proxy should treat a Service port's traffic, from the port's
/// `appProtocol` and the Service's opaque-ports annotation (Linkerd's rules).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppProtocol {
    /// Detect HTTP (no appProtocol).
    Detect,
    /// `appProtocol: http`.
    Http1,
    /// `appProtocol: kubernetes.io/h2c`.
    Http2,
    /// Listed in `config.linkerd.io/opaque-ports`, or `appProtocol: linkerd.io/opaque`.
    Opaque,
}

/// What the catalog knows about outbound traffic to a Service port: the
/// inputs of an `OutboundPolicy` answer (protobuf is built elsewhere).
#[derive(Debug, Clone, PartialEq)]
pub struct OutboundAnswer {
    /// The Service.
    pub service: ServiceName,
    /// The port.
    pub port: u16,
    /// The cluster domain (`cluster.local`).
    pub cluster_domain: String,
    /// How its traffic is treated.
    pub protocol: AppProtocol,
    /// The Service's retry and timeout annotations (invalid ones ignored).
    pub service_annotations: RouteAnnotations,
    /// The Service's failure accrual (an invalid configuration is none).
    pub failure_accrual: Option<ConsecutiveFailures>,
    /// HTTPRoutes attached to the port, by namespace then name.
    pub http_routes: Vec<HttpRoute>,
    /// GRPCRoutes attached to the port, by namespace then name.
    pub grpc_routes: Vec<GrpcRoute>,
    /// Backend Services the routes name that do not exist.
    pub missing_backends: BTreeSet<ServiceName>,
}

/// The routes of one kind attached to `service:port` for a client in
/// `client_namespace`, by name, as Linkerd chooses them: consumer routes
/// (in the client's namespace, when it is not the Service's) apply to that
/// namespace's clients only and replace the producer routes (in the
/// Service's namespace), which apply to every other client. Routes in any
/// third namespace do not apply.
fn routes_for_client<'a, R>(
    routes: &'a BTreeMap<NamespacedName, Box<R>>,
    service: &ServiceName,
    port: u16,
    client_namespace: Option<&str>,
    parents: impl Fn(&R) -> &Vec<ParentReference>,
) -> Vec<&'a R> {
    let attached_in = |namespace: &str| -> Vec<&'a R> {
        routes
            .range((namespace.to_string(), String::new())..)
            .take_while(|((route_namespace, _), _)| route_namespace == namespace)
            .filter(|(_, route)| attaches_to_service(parents(route), namespace, service, port))
            .map(|(_, route)| route.as_ref())
            .collect()
    };
    if let Some(client_namespace) =
        client_namespace.filter(|namespace| *namespace != service.namespace)
    {
        let consumer = attached_in(client_namespace);
        if !consumer.is_empty() {
            return consumer;
        }
    }
    attached_in(&service.namespace)
}

/// The routes of one kind whose parents include the Server `namespace/name`.
fn routes_for_server<'a, R>(
    routes: &'a BTreeMap<NamespacedName, Box<R>>,
    namespace: &str,
    name: &str,
    parents: impl Fn(&R) -> &Vec<ParentReference>,
) -> Vec<&'a R> {
    routes
        .iter()
        .filter(|((route_namespace, _), route)| {
            parents(route).iter().any(|parent| {
                parent.parent_kind() == ParentKind::Server
                    && parent.name == name
                    && parent.namespace_or(route_namespace) == namespace
            })
        })
        .map(|(_, route)| route.as_ref())
        .collect()
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

/// The port's protocol: opaque-ports annotation or `appProtocol`.
fn app_protocol(service: &Service, port: u16) -> AppProtocol {
    let opaque_annotation = service
        .metadata
        .annotations
        .as_ref()
        .and_then(|annotations| annotations.get(OPAQUE_PORTS_ANNOTATION))
        .is_some_and(|list| lists_port(list, port));
    if opaque_annotation {
        return AppProtocol::Opaque;
    }
    let declared = service
        .spec
        .as_ref()
        .and_then(|spec| spec.ports.as_ref())
        .and_then(|ports| ports.iter().find(|entry| entry.port == i32::from(port)))
        .and_then(|entry| entry.app_protocol.as_deref());
    match declared {
        Some("http") => AppProtocol::Http1,
        Some("kubernetes.io/h2c") => AppProtocol::Http2,
        Some("linkerd.io/opaque") => AppProtocol::Opaque,
        _ => AppProtocol::Detect,
    }
}

impl Catalog {
    /// The outbound answer for `service:port` as a client in the
    /// request's namespace sees it (its namespace's consumer routes, else
    /// the Service's namespace's routes); `None` when the Service does not
    /// exist or is an ExternalName Service.
    pub fn outbound(&self, request: &ProfileTarget) -> Option<OutboundAnswer> {
        let target = &request.target;
        let client_namespace = request.client_namespace();
        let service = self.service(&target.service)?;
        if is_external_name(service) {
            return None;
        }
        let annotations = service.metadata.annotations.as_ref();
        let http_routes: Vec<HttpRoute> = self
            .objects
            .routes
            .http_routes_for(&target.service, target.port, client_namespace)
            .into_iter()
            .cloned()
            .collect();
        let grpc_routes: Vec<GrpcRoute> = self
            .objects
            .routes
            .grpc_routes_for(&target.service, target.port, client_namespace)
            .into_iter()
            .cloned()
            .collect();
        let route_namespace = |route_namespace: &Option<String>| {
            route_namespace
                .clone()
                .unwrap_or_else(|| "default".to_string())
        };
        let mut backends: BTreeSet<ServiceName> = BTreeSet::new();
        for route in &http_routes {
            let namespace = route_namespace(&route.metadata.namespace);
            for backend in route.spec.rules.iter().flat_map(|rule| &rule.backend_refs) {
                backends.insert(ServiceName::new(
                    backend.namespace_or(&namespace),
                    &backend.name,
                ));
            }
        }
        for route in &grpc_routes {
            let namespace = route_namespace(&route.metadata.namespace);
            for backend in route.spec.rules.iter().flat_map(|rule| &rule.backend_refs) {
                backends.insert(ServiceName::new(
                    backend.namespace_or(&namespace),
                    &backend.name,
                ));
            }
        }
        let missing_backends = backends
            .into_iter()
            .filter(|backend| self.service(backend).is_none())
            .collect();
        Some(OutboundAnswer {
            service: target.service.clone(),
            port: target.port,
            cluster_domain: self.cluster_domain.clone(),
            protocol: app_protocol(service, target.port),
            service_annotations: RouteAnnotations::parse(annotations).unwrap_or_default(),
            failure_accrual: ConsecutiveFailures::parse(annotations).unwrap_or(None),
            http_routes,
            grpc_routes,
            missing_backends,
        })
    }

    /// Subscribes to the outbound answer of `service:port` for a client in
    /// the request's namespace (`None` while the Service does not exist);
    /// the receiver sees each new answer once it changes.
    pub fn subscribe_outbound(
        &mut self,
        target: &ProfileTarget,
    ) -> watch::Receiver<Option<Arc<OutboundAnswer>>> {
        if let Some(sender) = self.outbound_watches.get(target) {
            return sender.subscribe();
        }
        let (sender, receiver) = watch::channel(self.outbound(target).map(Arc::new));
        self.outbound_watches.insert(target.clone(), sender);
        receiver
    }

    /// Forgets the outbound watch of `target` once no receiver is left. Call
    /// it after dropping a receiver from [`Self::subscribe_outbound`].
    pub fn release_outbound(&mut self, target: &ProfileTarget) {
        release_watch(&mut self.outbound_watches, target);
    }

    /// How many outbound questions (`service:port`, client namespace) have subscribers.
    pub fn outbound_subscriptions(&self) -> usize {
        self.outbound_watches.len()
    }

    /// Recomputes the outbound answers `scope` may have altered: any route
    /// or Service change may (routes and backends cross namespaces), else
    /// only changes in the target's namespace.
    pub(super) fn refresh_outbound(&mut self, scope: &Scope) {
        let targets: Vec<ProfileTarget> = self
            .outbound_watches
            .keys()
            .filter(|target| match scope {
                Scope::All => true,
                Scope::Changed(changed) => {
                    changed.routes_or_services
                        || target
                            .namespaces()
                            .any(|namespace| changed.namespaces.contains(namespace))
                }
            })
            .cloned()
            .collect();
        for target in targets {
            let fresh = self.outbound(&target);
            publish_if_changed(&mut self.outbound_watches, &target, fresh);
        }
    }
}

#[cfg(test)]
mod tests {
    use weft_core::object::Kind;

    use super::super::ServicePort;
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

    const MESH: &str = "
apiVersion: v1
kind: Service
metadata: {name: books, namespace: shop}
spec: {ports: [{port: 7002}]}
---
apiVersion: v1
kind: Service
metadata: {name: books-v2, namespace: shop}
spec: {ports: [{port: 7002}]}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: split, namespace: shop}
spec:
  parentRefs: [{kind: Service, name: books}]
  rules: [{backendRefs: [{name: books-v2, port: 7002, weight: 10}]}]
";

    fn objects(text: &str) -> Vec<MeshObject> {
        crate::mesh_file::parse_mesh(text).expect("mesh parses")
    }

    #[test]
    fn outbound_watches_see_route_edits_and_the_service_going() {
        let mut catalog = Catalog::default();
        catalog.update(objects(MESH), Vec::new()).unwrap();
        let target = ProfileTarget::new(ServicePort::new("shop", "books", 7002), None);
        let mut receiver = catalog.subscribe_outbound(&target);
        let first = receiver.borrow_and_update().clone().expect("known");
        assert_eq!(first.http_routes.len(), 1);
        assert!(first.missing_backends.is_empty());
        assert_eq!(catalog.outbound_subscriptions(), 1);

        // A change elsewhere that leaves the answer as it was publishes nothing.
        let other =
            "apiVersion: v1\nkind: Service\nmetadata: {name: x, namespace: other}\nspec: {}\n";
        catalog.update(objects(other), Vec::new()).unwrap();
        assert!(!receiver.has_changed().unwrap());

        // A weight edit publishes the new answer.
        catalog
            .update(
                objects(&MESH.replace("weight: 10", "weight: 20")),
                Vec::new(),
            )
            .unwrap();
        assert!(receiver.has_changed().unwrap());
        let edited = receiver.borrow_and_update().clone().expect("known");
        assert_eq!(
            edited.http_routes[0].spec.rules[0].backend_refs[0].weight,
            20
        );

        // Deleting a backend Service marks it missing; deleting the Service ends the answer.
        catalog.delete(Kind::Service, "shop", "books-v2");
        let missing = receiver.borrow_and_update().clone().expect("known");
        assert_eq!(
            missing.missing_backends.iter().collect::<Vec<_>>(),
            vec![&ServiceName::new("shop", "books-v2")]
        );
        catalog.delete(Kind::Service, "shop", "books");
        assert!(receiver.borrow_and_update().is_none());

        drop(receiver);
        catalog.release_outbound(&target);
        assert_eq!(catalog.outbound_subscriptions(), 0);
    }

    #[test]
    fn consumer_routes_replace_producer_routes_for_their_namespace_only() {
        let consumer = "
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: mine, namespace: web}
spec:
  parentRefs: [{kind: Service, name: books, namespace: shop}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: theirs, namespace: elsewhere}
spec:
  parentRefs: [{kind: Service, name: books, namespace: shop, port: 9999}]
";
        let mut catalog = Catalog::default();
        catalog
            .update(objects(&format!("{MESH}{consumer}")), Vec::new())
            .unwrap();
        let names = |client: Option<&str>| -> Vec<String> {
            let question = ProfileTarget::new(
                ServicePort::new("shop", "books", 7002),
                client.map(str::to_string),
            );
            catalog
                .outbound(&question)
                .expect("known")
                .http_routes
                .iter()
                .filter_map(|route| route.metadata.name.clone())
                .collect()
        };
        let cases: &[(Option<&str>, &[&str])] = &[
            (None, &["split"]),
            (Some("shop"), &["split"]),
            (Some("web"), &["mine"]),
            (Some("elsewhere"), &["split"]),
            (Some("other"), &["split"]),
        ];
        for (client, expected) in cases {
            assert_eq!(names(*client), *expected, "client in {client:?}");
        }
    }
}
