//! The catalog's policy objects (Servers, AuthorizationPolicies,
//! MeshTLSAuthentications, NetworkAuthentications), the settings the
//! decision needs (`--default-inbound-policy`, `--cluster-networks`, the
//! identity names), and the inbound answer for one port of one workload:
//! weft-core's pure [`inbound_policy`] plus the objects of the routes it
//! names, which the gRPC layer translates.
//!
//! Servers keep the order they were first seen in (file order at the first
//! load, later additions after): when two Servers select the same workload
//! port, the older one applies, as Linkerd prefers the oldest resource.

use std::collections::BTreeMap;

use weft_core::names::{DEFAULT_CONTROL_NAMESPACE, DEFAULT_TRUST_DOMAIN};
use weft_core::object::MeshObject;
use weft_core::policy::default_policy::DEFAULT_CLUSTER_NETWORKS;
use weft_core::policy::effective::{PortQuery, RouteKind, ServerRoute};
use weft_core::policy::{
    AuthorizationPolicy, Cidr, DefaultPolicy, InboundPolicy, MeshTLSAuthentication,
    NetworkAuthentication, PolicyContext, PolicyObjects, Server, inbound_policy,
};
use weft_core::route::{GrpcRoute, HttpRoute};
use weft_core::workload::Workload;

use super::NamespacedName;
use super::routes::RouteObjects;

/// The controller's policy settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicySettings {
    /// `--default-inbound-policy`.
    pub default_policy: DefaultPolicy,
    /// `--cluster-networks`.
    pub cluster_networks: Vec<Cidr>,
    /// The control plane's namespace in identity names.
    pub control_namespace: String,
    /// The trust domain in identity names.
    pub trust_domain: String,
}

impl Default for PolicySettings {
    fn default() -> Self {
        Self {
            default_policy: DefaultPolicy::AllUnauthenticated,
            cluster_networks: Cidr::parse_list(DEFAULT_CLUSTER_NETWORKS).unwrap_or_default(),
            control_namespace: DEFAULT_CONTROL_NAMESPACE.to_string(),
            trust_domain: DEFAULT_TRUST_DOMAIN.to_string(),
        }
    }
}

/// One port of one workload: what inbound policy watches are keyed by.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortTarget {
    /// The workload's namespace.
    pub namespace: String,
    /// The workload's name (a Workload, on a host; a pod, in Linkerd).
    pub workload: String,
    /// The port.
    pub port: u16,
}

/// The answer for a port: the effective policy and the routes it names.
#[derive(Debug, Clone, PartialEq)]
pub struct PortPolicy {
    /// The effective policy.
    pub policy: InboundPolicy,
    /// Whether the workload exists (an unknown one gets the controller's default).
    pub workload_known: bool,
    /// The Servers that select the port, oldest first (the first applies).
    pub selection: Vec<String>,
    /// The HTTPRoutes of `policy.routes`, in the same order.
    pub http_routes: Vec<HttpRoute>,
    /// The GRPCRoutes of `policy.routes`, in the same order.
    pub grpc_routes: Vec<GrpcRoute>,
}

/// A Server and when it was first seen.
#[derive(Debug, Clone)]
struct Ordered {
    sequence: u64,
    server: Box<Server>,
}

/// The policy objects, one map per kind.
#[derive(Debug, Default, Clone)]
pub(super) struct PolicyStore {
    servers: BTreeMap<NamespacedName, Ordered>,
    authorization_policies: BTreeMap<NamespacedName, Box<AuthorizationPolicy>>,
    mesh_tls: BTreeMap<NamespacedName, Box<MeshTLSAuthentication>>,
    networks: BTreeMap<NamespacedName, Box<NetworkAuthentication>>,
    next_sequence: u64,
}

impl PolicyStore {
    /// Inserts a policy object, returning the one it replaced. A replaced
    /// Server keeps its place in the order.
    pub(super) fn insert(
        &mut self,
        name: NamespacedName,
        object: MeshObject,
    ) -> Option<MeshObject> {
        match object {
            MeshObject::Server(server) => {
                let sequence = match self.servers.get(&name) {
                    Some(old) => old.sequence,
                    None => {
                        self.next_sequence += 1;
                        self.next_sequence
                    }
                };
                self.servers
                    .insert(name, Ordered { sequence, server })
                    .map(|old| MeshObject::Server(old.server))
            }
            MeshObject::AuthorizationPolicy(policy) => self
                .authorization_policies
                .insert(name, policy)
                .map(MeshObject::AuthorizationPolicy),
            MeshObject::MeshTLSAuthentication(authentication) => self
                .mesh_tls
                .insert(name, authentication)
                .map(MeshObject::MeshTLSAuthentication),
            MeshObject::NetworkAuthentication(authentication) => self
                .networks
                .insert(name, authentication)
                .map(MeshObject::NetworkAuthentication),
            // Not a policy kind: the catalog never sends one here.
            _ => None,
        }
    }

    pub(super) fn remove_server(&mut self, name: &NamespacedName) -> Option<MeshObject> {
        self.servers
            .remove(name)
            .map(|old| MeshObject::Server(old.server))
    }

    pub(super) fn remove_authorization_policy(
        &mut self,
        name: &NamespacedName,
    ) -> Option<MeshObject> {
        self.authorization_policies
            .remove(name)
            .map(MeshObject::AuthorizationPolicy)
    }

    pub(super) fn remove_mesh_tls(&mut self, name: &NamespacedName) -> Option<MeshObject> {
        self.mesh_tls
            .remove(name)
            .map(MeshObject::MeshTLSAuthentication)
    }

    pub(super) fn remove_network(&mut self, name: &NamespacedName) -> Option<MeshObject> {
        self.networks
            .remove(name)
            .map(MeshObject::NetworkAuthentication)
    }

    /// Whether any policy object is in `namespace`.
    pub(super) fn any_in(&self, namespace: &str) -> bool {
        let start = (namespace.to_string(), String::new());
        let first = |key: Option<&NamespacedName>| key.is_some_and(|key| key.0 == namespace);
        first(
            self.servers
                .range(start.clone()..)
                .next()
                .map(|(key, _)| key),
        ) || first(
            self.authorization_policies
                .range(start.clone()..)
                .next()
                .map(|(key, _)| key),
        ) || first(
            self.mesh_tls
                .range(start.clone()..)
                .next()
                .map(|(key, _)| key),
        ) || first(self.networks.range(start..).next().map(|(key, _)| key))
    }

    /// The Servers of `namespace`, oldest first.
    pub(super) fn servers_in(&self, namespace: &str) -> Vec<&Server> {
        let mut servers: Vec<&Ordered> = self.range_of(namespace).collect();
        servers.sort_by_key(|ordered| ordered.sequence);
        servers
            .into_iter()
            .map(|ordered| ordered.server.as_ref())
            .collect()
    }

    /// The Servers of `namespace` that select `port` of `workload`, oldest
    /// first: one pass over the namespace's Servers, and only the few that
    /// select it sorted (a watch's answer is recomputed often).
    fn selecting(&self, namespace: &str, workload: &Workload, port: u16) -> Vec<&Server> {
        let mut selecting: Vec<&Ordered> = self
            .range_of(namespace)
            .filter(|ordered| ordered.server.port_on(workload) == Some(port))
            .collect();
        selecting.sort_by_key(|ordered| ordered.sequence);
        selecting
            .into_iter()
            .map(|ordered| ordered.server.as_ref())
            .collect()
    }

    fn range_of<'store>(&'store self, namespace: &str) -> impl Iterator<Item = &'store Ordered> {
        let owned = namespace.to_string();
        self.servers
            .range((owned.clone(), String::new())..)
            .take_while(move |((server_namespace, _), _)| *server_namespace == owned)
            .map(|(_, ordered)| ordered)
    }

    fn policies_in(&self, namespace: &str) -> Vec<&AuthorizationPolicy> {
        self.authorization_policies
            .range((namespace.to_string(), String::new())..)
            .take_while(|((policy_namespace, _), _)| policy_namespace == namespace)
            .map(|(_, policy)| policy.as_ref())
            .collect()
    }

    /// How many Servers there are.
    pub(super) fn server_count(&self) -> usize {
        self.servers.len()
    }
}

/// Everything one answer reads, borrowed from the catalog.
pub(super) struct PortSources<'catalog> {
    pub(super) target: &'catalog PortTarget,
    pub(super) workload: Option<&'catalog Workload>,
    pub(super) store: &'catalog PolicyStore,
    pub(super) settings: &'catalog PolicySettings,
    /// The HTTPRoutes and GRPCRoutes, whose parents may be Servers.
    pub(super) routes: &'catalog RouteObjects,
    /// The names of the Servers known to select the port, oldest first
    /// (no Server or Workload of the namespace changed since); `None`: match.
    pub(super) selection: Option<&'catalog [String]>,
}

/// The answer for one port.
pub(super) fn port_policy(sources: &PortSources<'_>) -> PortPolicy {
    let namespace = sources.target.namespace.as_str();
    // Only the Servers selecting the port matter to the decision.
    let servers = match (sources.workload, sources.selection) {
        (Some(_), Some(names)) => names
            .iter()
            .filter_map(|name| {
                sources
                    .store
                    .servers
                    .get(&(namespace.to_string(), name.clone()))
                    .map(|ordered| ordered.server.as_ref())
            })
            .collect(),
        (Some(workload), None) => sources
            .store
            .selecting(namespace, workload, sources.target.port),
        (None, _) => Vec::new(),
    };
    let policies = sources.store.policies_in(namespace);
    let mesh_tls: Vec<&MeshTLSAuthentication> =
        sources.store.mesh_tls.values().map(AsRef::as_ref).collect();
    let networks: Vec<&NetworkAuthentication> =
        sources.store.networks.values().map(AsRef::as_ref).collect();
    // Only the selecting Server's routes matter; look them up for it alone.
    let selecting = servers.first();
    let (http_routes, grpc_routes) = match selecting {
        Some(server) => (
            sources
                .routes
                .http_routes_for_server(namespace, server.name()),
            sources
                .routes
                .grpc_routes_for_server(namespace, server.name()),
        ),
        None => (Vec::new(), Vec::new()),
    };
    let route_name = |metadata: &weft_core::ObjectMeta| metadata.name.clone().unwrap_or_default();
    let server_routes: Vec<ServerRoute> = selecting
        .map(|server| {
            let attached = |kind, name| ServerRoute {
                namespace: namespace.to_string(),
                server: server.name().to_string(),
                kind,
                name,
            };
            http_routes
                .iter()
                .map(|route| attached(RouteKind::Http, route_name(&route.metadata)))
                .chain(
                    grpc_routes
                        .iter()
                        .map(|route| attached(RouteKind::Grpc, route_name(&route.metadata))),
                )
                .collect()
        })
        .unwrap_or_default();
    let policy = inbound_policy(
        PortQuery {
            namespace,
            workload: sources.workload,
            port: sources.target.port,
        },
        &PolicyObjects {
            servers: &servers,
            authorization_policies: &policies,
            mesh_tls: &mesh_tls,
            networks: &networks,
            routes: &server_routes,
        },
        &PolicyContext {
            default_policy: sources.settings.default_policy,
            cluster_networks: &sources.settings.cluster_networks,
            control_namespace: &sources.settings.control_namespace,
            trust_domain: &sources.settings.trust_domain,
        },
    );
    // Keep the route objects the decision kept (gRPC routes only on gRPC
    // Servers, HTTP routes on the others), in its order.
    let named = |kind: RouteKind| -> Vec<&String> {
        policy
            .routes
            .iter()
            .filter(|route| route.kind == kind)
            .map(|route| &route.name)
            .collect()
    };
    let kept_http = named(RouteKind::Http);
    let kept_grpc = named(RouteKind::Grpc);
    PortPolicy {
        http_routes: http_routes
            .into_iter()
            .filter(|route| kept_http.contains(&&route_name(&route.metadata)))
            .cloned()
            .collect(),
        grpc_routes: grpc_routes
            .into_iter()
            .filter(|route| kept_grpc.contains(&&route_name(&route.metadata)))
            .cloned()
            .collect(),
        workload_known: sources.workload.is_some(),
        selection: servers
            .iter()
            .map(|server| server.name().to_string())
            .collect(),
        policy,
    }
}

#[cfg(test)]
mod tests {
    //! The catalog's inbound answers and their watches, and the mesh
    //! file's errors for the policy kinds.

    use weft_core::object::{Kind, ObjectKey};
    use weft_core::policy::effective::ServerRef;

    use super::PortTarget;
    use crate::catalog::Catalog;
    use crate::mesh_file::{parse_changes, parse_mesh};

    const WORKLOADS: &str = "
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: web-1, namespace: shop, labels: {app: web}}
spec: {addresses: [127.0.0.1], ports: [{name: http, port: 8080}]}
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: db-1, namespace: shop, labels: {app: db}}
spec: {addresses: [127.0.0.2], ports: [{name: sql, port: 5432}]}
";

    fn server(name: &str, app: &str, port: &str) -> String {
        format!(
            "---\napiVersion: policy.linkerd.io/v1beta3\nkind: Server\nmetadata: {{name: {name}, namespace: shop}}\nspec: {{podSelector: {{matchLabels: {{app: {app}}}}}, port: {port}}}\n"
        )
    }

    fn target(workload: &str, port: u16) -> PortTarget {
        PortTarget {
            namespace: "shop".into(),
            workload: workload.into(),
            port,
        }
    }

    #[test]
    fn watchers_see_a_new_answer_only_when_theirs_changed() {
        let mut catalog = Catalog::default();
        catalog
            .reset(
                parse_mesh(&format!("{WORKLOADS}{}", server("web-http", "web", "http"))).unwrap(),
            )
            .unwrap();
        let mut web = catalog.subscribe_inbound(&target("web-1", 8080));
        let mut db = catalog.subscribe_inbound(&target("db-1", 5432));
        assert_eq!(
            web.borrow_and_update().policy.server,
            ServerRef::Server("web-http".into())
        );
        assert!(matches!(
            db.borrow_and_update().policy.server,
            ServerRef::Default(_)
        ));
        // A Server for the database: only the database's watcher hears.
        catalog
            .apply(
                parse_mesh(&server("db-sql", "db", "sql"))
                    .unwrap()
                    .remove(0),
            )
            .unwrap();
        assert!(db.has_changed().unwrap());
        assert!(!web.has_changed().unwrap());
        assert_eq!(
            db.borrow_and_update().policy.server,
            ServerRef::Server("db-sql".into())
        );
        // The same object again changes nothing.
        catalog
            .apply(
                parse_mesh(&server("db-sql", "db", "sql"))
                    .unwrap()
                    .remove(0),
            )
            .unwrap();
        assert!(!db.has_changed().unwrap());
        // An AuthorizationPolicy for the web Server: only web hears.
        let policy = "apiVersion: policy.linkerd.io/v1alpha1\nkind: AuthorizationPolicy\nmetadata: {name: anyone, namespace: shop}\nspec: {targetRef: {group: policy.linkerd.io, kind: Server, name: web-http}}\n";
        catalog
            .apply(parse_mesh(policy).unwrap().remove(0))
            .unwrap();
        assert!(web.has_changed().unwrap());
        assert!(!db.has_changed().unwrap());
        assert_eq!(web.borrow_and_update().policy.authorizations.len(), 1);
        // Recomputed from the known selection, it is what a full match gives.
        assert_eq!(
            **web.borrow(),
            catalog.inbound_policy(&target("web-1", 8080))
        );
        assert_eq!(web.borrow().selection, ["web-http"]);
        // Deleting the Server: back to the default.
        assert!(catalog.delete(Kind::Server, "shop", "db-sql"));
        assert!(db.has_changed().unwrap());
        assert!(matches!(
            db.borrow_and_update().policy.server,
            ServerRef::Default(_)
        ));
        // Watches go with their last receiver.
        assert_eq!(catalog.inbound_subscriptions(), 2);
        drop(db);
        catalog.release_inbound(&target("db-1", 5432));
        assert_eq!(catalog.inbound_subscriptions(), 1);
    }

    #[test]
    fn the_older_server_wins_and_keeps_its_place_when_edited() {
        let mut catalog = Catalog::default();
        let text = format!(
            "{WORKLOADS}{}{}",
            server("zz-first", "web", "8080"),
            server("aa-second", "web", "http")
        );
        catalog.reset(parse_mesh(&text).unwrap()).unwrap();
        let answer = catalog.inbound_policy(&target("web-1", 8080));
        assert_eq!(answer.policy.server, ServerRef::Server("zz-first".into()));
        assert_eq!(answer.policy.notes.len(), 1, "{:?}", answer.policy.notes);
        // An edit of the older one keeps it older.
        let edited = server("zz-first", "web", "8080")
            .replace("app: web}}", "app: web}, matchExpressions: []}");
        catalog
            .apply(parse_mesh(&edited).unwrap().remove(0))
            .unwrap();
        let answer = catalog.inbound_policy(&target("web-1", 8080));
        assert_eq!(answer.policy.server, ServerRef::Server("zz-first".into()));
        assert_eq!(catalog.inbound_ports("shop", "web-1"), [8080]);
        assert_eq!(catalog.server_count(), 2);
        let _ = ObjectKey::new(Kind::Server, "shop", "zz-first");
    }

    #[test]
    fn the_example_answers_as_its_comments_say() {
        use weft_core::policy::DefaultPolicy;
        use weft_core::policy::effective::Protocol;
        let mut catalog = Catalog::default();
        catalog
            .reset(parse_mesh(include_str!("../../examples/policy.yaml")).unwrap())
            .unwrap();
        let client = Some("client.shop.serviceaccount.identity.weft.cluster.local");
        let web = catalog.inbound_policy(&target("web-1", 8080));
        assert_eq!(web.policy.server, ServerRef::Server("web-http".into()));
        assert_eq!(web.policy.protocol, Protocol::Http1);
        let admits = |policy: &weft_core::policy::InboundPolicy, address: &str, identity| {
            policy
                .authorizations
                .iter()
                .any(|authorization| authorization.admits(address.parse().unwrap(), identity))
        };
        assert!(admits(&web.policy, "10.1.2.3", client));
        assert!(!admits(&web.policy, "192.168.1.1", client));
        assert!(!admits(&web.policy, "10.1.2.3", None));
        assert_eq!(web.http_routes.len(), 1);
        let metrics = &web.policy.routes[0];
        assert!(metrics.authorizations[0].admits("192.168.1.1".parse().unwrap(), None));
        assert!(!metrics.authorizations[0].admits("192.168.9.1".parse().unwrap(), None));
        let admin = catalog.inbound_policy(&target("web-1", 9000));
        assert_eq!(
            admin.policy.server,
            ServerRef::Default(DefaultPolicy::ClusterAuthenticated)
        );
        let db = catalog.inbound_policy(&target("db-1", 5432));
        assert_eq!(db.policy.protocol, Protocol::Opaque);
        assert!(admits(&db.policy, "8.8.8.8", client));
        assert!(!admits(
            &db.policy,
            "8.8.8.8",
            Some("client.other.serviceaccount.identity.weft.cluster.local")
        ));
        assert!(web.policy.notes.is_empty() && db.policy.notes.is_empty());
    }

    #[test]
    fn mesh_file_errors_name_document_line_and_field() {
        let cases: &[(&str, usize, u64, &str)] = &[
            (
                "apiVersion: policy.linkerd.io/v1beta3\nkind: Server\nmetadata: {name: s}\nspec:\n  podSelector: {}\n  port: 0\n",
                1,
                6,
                "spec.port",
            ),
            (
                "apiVersion: weft.dev/v1alpha1\nkind: Workload\nmetadata: {name: w}\nspec: {addresses: [127.0.0.1]}\n---\napiVersion: policy.linkerd.io/v1alpha1\nkind: NetworkAuthentication\nmetadata: {name: n}\nspec:\n  networks:\n    - cidr: 10.0.0.0/99\n",
                2,
                11,
                "spec.networks[0].cidr",
            ),
            (
                "apiVersion: policy.linkerd.io/v1alpha1\nkind: AuthorizationPolicy\nmetadata: {name: p}\nspec:\n  targetRef: {kind: Deployment, name: web}\n",
                1,
                5,
                "spec.targetRef.kind",
            ),
            (
                "apiVersion: policy.linkerd.io/v1alpha1\nkind: MeshTLSAuthentication\nmetadata: {name: m}\nspec:\n  identitys: [a]\n",
                1,
                5,
                "identitys",
            ),
        ];
        for (text, document, line, field) in cases {
            let problems = parse_changes(text, &Default::default()).unwrap_err();
            assert_eq!(problems.len(), 1, "{problems:?}");
            assert_eq!(problems[0].document, *document, "{problems:?}");
            assert_eq!(problems[0].line, *line, "{problems:?}");
            assert!(problems[0].reason.contains(field), "{problems:?}");
        }
    }
}
