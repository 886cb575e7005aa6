//! The catalog: the mesh model in one synchronous, in-memory index.
//!
//! Sources (the mesh file now, Kubernetes later) [`Catalog::apply`],
//! [`Catalog::delete`] and [`Catalog::reset`] objects; servers ask questions
//! (endpoints of `service:port`, the profile of a service, which workload or
//! service owns an address) and subscribe to changes. No I/O and no protobuf:
//! subscriptions are tokio channels, so tests drive it directly.
//!
//! ```text
//! source ──apply/delete/reset──► Catalog ──refresh──► endpoint subscribers (mpsc: snapshot, then diffs)
//!                                   │                 profile subscribers  (watch: latest answer)
//!                                   └── queries: endpoints(), profile(), workload_at(), service_at()
//! ```
//!
//! Endpoints of a Service come from its EndpointSlices when it has any
//! (or always, once a Kubernetes source calls
//! [`Catalog::set_endpoints_from_slices`]), else from the Workloads its
//! selector matches (a mesh file).
//!
//! Share it as [`SharedCatalog`]; hold the lock only for one call.

mod endpoints;
mod policy;
mod profiles;
mod routes;
mod slices;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::Hash;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::Service;
use tokio::sync::{mpsc, watch};
use weft_core::names::{DEFAULT_CLUSTER_DOMAIN, ServiceName};
use weft_core::object::{Kind, MeshObject, ObjectError, ObjectKey};
use weft_core::profile::ServiceProfile;
use weft_core::route::{GrpcRoute, HttpRoute};
use weft_core::service::{cluster_ips, selects};
use weft_core::split::TrafficSplit;
use weft_core::workload::Workload;

pub use endpoints::{
    Endpoint, EndpointSet, EndpointTarget, EndpointUpdate, diff, endpoints_of, snapshot,
};
pub use policy::{PolicySettings, PortPolicy, PortTarget};
pub use profiles::{OPAQUE_PORTS_ANNOTATION, Profile, ProfileSources, lists_port, profile_of};
pub use routes::{AppProtocol, OutboundAnswer, attaches_to_service};
pub use slices::{
    SlicePortRule, SliceQuery, endpoints_from_slices, family_matches, hinted_for_zone,
};

/// How many updates may wait for an endpoint subscriber; one that falls
/// further behind is dropped (its channel closes) and should resubscribe.
pub const SUBSCRIBER_QUEUE_CAPACITY: usize = 100;

/// A catalog shared between sources and servers.
pub type SharedCatalog = Arc<Mutex<Catalog>>;

/// Why the catalog refused an object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    /// The object cannot be keyed (no name).
    #[error("{kind} rejected: {source}")]
    InvalidObject {
        /// Its kind.
        kind: Kind,
        /// Why.
        source: ObjectError,
    },
    /// `reset` was given two objects with the same kind, namespace and name.
    #[error("duplicate object {0}")]
    Duplicate(ObjectKey),
}

/// A service and one of its ports: what endpoint and profile subscriptions are keyed by.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServicePort {
    /// The service.
    pub service: ServiceName,
    /// The port clients address.
    pub port: u16,
}

impl ServicePort {
    /// `service.namespace:port`.
    pub fn new(namespace: &str, name: &str, port: u16) -> Self {
        Self {
            service: ServiceName::new(namespace, name),
            port,
        }
    }
}

impl std::fmt::Display for ServicePort {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "{}:{}", self.service, self.port)
    }
}

/// A profile question: a `service:port` and, when known and different from
/// the service's, the client's namespace (whose ServiceProfiles take precedence).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProfileTarget {
    /// The service and port.
    pub target: ServicePort,
    /// The client's namespace, if it differs from the service's.
    client_namespace: Option<String>,
}

impl ProfileTarget {
    /// The question for `target` from a client in `client_namespace`; a
    /// client in the service's own namespace asks the same as an unknown one.
    pub fn new(target: ServicePort, client_namespace: Option<String>) -> Self {
        let client_namespace =
            client_namespace.filter(|namespace| *namespace != target.service.namespace);
        Self {
            target,
            client_namespace,
        }
    }

    /// The client's namespace, when it differs from the service's.
    pub fn client_namespace(&self) -> Option<&str> {
        self.client_namespace.as_deref()
    }

    /// The namespaces whose objects the answer depends on.
    fn namespaces(&self) -> impl Iterator<Item = &String> {
        self.client_namespace
            .iter()
            .chain([&self.target.service.namespace])
    }
}

/// (namespace, name) — the key within one kind's map.
type NamespacedName = (String, String);

/// The objects, one map per kind, ordered so namespace scans are ranges.
/// They stay in the boxes they were parsed into: moving them into the map
/// nodes would make the nodes large and leave each box's memory behind as
/// a hole among long-lived allocations.
#[derive(Debug, Default, Clone)]
struct Objects {
    services: BTreeMap<NamespacedName, Box<Service>>,
    workloads: BTreeMap<NamespacedName, Box<Workload>>,
    profiles: BTreeMap<NamespacedName, Box<ServiceProfile>>,
    splits: BTreeMap<NamespacedName, Box<TrafficSplit>>,
    routes: routes::RouteObjects,
    policy: policy::PolicyStore,
    /// EndpointSlices (on a cluster: a Service's endpoints).
    slices: slices::SliceStore,
}

impl Objects {
    /// Inserts `object`, returning the one it replaced.
    fn insert(&mut self, key: ObjectKey, object: MeshObject) -> Option<MeshObject> {
        let name = (key.namespace, key.name);
        match object {
            MeshObject::Service(service) => {
                self.services.insert(name, service).map(MeshObject::Service)
            }
            MeshObject::Workload(workload) => self
                .workloads
                .insert(name, workload)
                .map(MeshObject::Workload),
            MeshObject::ServiceProfile(profile) => self
                .profiles
                .insert(name, profile)
                .map(MeshObject::ServiceProfile),
            MeshObject::TrafficSplit(split) => self
                .splits
                .insert(name, split)
                .map(MeshObject::TrafficSplit),
            MeshObject::HttpRoute(route) => self.routes.insert_http(name, route),
            MeshObject::GrpcRoute(route) => self.routes.insert_grpc(name, route),
            MeshObject::EndpointSlice(slice) => self
                .slices
                .insert(name, slice)
                .map(MeshObject::EndpointSlice),
            object @ (MeshObject::Server(_)
            | MeshObject::AuthorizationPolicy(_)
            | MeshObject::MeshTLSAuthentication(_)
            | MeshObject::NetworkAuthentication(_)) => self.policy.insert(name, object),
        }
    }

    /// Removes the object under `key`, returning it.
    fn remove(&mut self, key: &ObjectKey) -> Option<MeshObject> {
        let name = (key.namespace.clone(), key.name.clone());
        match key.kind {
            Kind::Service => self.services.remove(&name).map(MeshObject::Service),
            Kind::Workload => self.workloads.remove(&name).map(MeshObject::Workload),
            Kind::ServiceProfile => self.profiles.remove(&name).map(MeshObject::ServiceProfile),
            Kind::TrafficSplit => self.splits.remove(&name).map(MeshObject::TrafficSplit),
            Kind::HttpRoute => self.routes.remove_http(&name),
            Kind::GrpcRoute => self.routes.remove_grpc(&name),
            Kind::EndpointSlice => self.slices.remove(&name).map(MeshObject::EndpointSlice),
            Kind::Server => self.policy.remove_server(&name),
            Kind::AuthorizationPolicy => self.policy.remove_authorization_policy(&name),
            Kind::MeshTLSAuthentication => self.policy.remove_mesh_tls(&name),
            Kind::NetworkAuthentication => self.policy.remove_network(&name),
        }
    }

    fn workloads_in<'a>(&'a self, namespace: &'a str) -> impl Iterator<Item = &'a Workload> + 'a {
        self.workloads
            .range((namespace.to_string(), String::new())..)
            .take_while(move |((workload_namespace, _), _)| workload_namespace == namespace)
            .map(|(_, workload)| workload.as_ref())
    }
}

/// Batches larger than this refresh every watch instead of working out which
/// ones the changed objects touch.
const TARGETED_REFRESH_LIMIT: usize = 64;

/// Which watched answers a change may have altered.
#[derive(Debug)]
enum Scope {
    /// Everything (a reset, or a large batch).
    All,
    /// Only what these objects touch.
    Changed(Box<Changed>),
}

/// The objects one batch changed: their namespaces, the services added,
/// changed or removed, and every old and new version of changed workloads.
/// EndpointSlices only touch their Service's endpoints: their namespace is
/// not recorded (profiles and policies do not read them).
#[derive(Debug, Default)]
struct Changed {
    namespaces: HashSet<String>,
    /// Services (namespace, name) whose slices changed, or whose slices
    /// name a changed workload as a pod ([`Changed::resolve_pods`]).
    slice_services: HashSet<NamespacedName>,
    /// Whether an object another namespace's inbound answer may read
    /// changed: a MeshTLSAuthentication or NetworkAuthentication (policies
    /// of any namespace may name them), an HTTPRoute or GRPCRoute (its
    /// parent Server may be in another namespace).
    cross_namespace: bool,
    /// Namespaces where a Server or a Workload changed: which Servers
    /// select a port may differ there, and nowhere else.
    selection_namespaces: HashSet<String>,
    services: HashSet<NamespacedName>,
    workloads: Vec<Workload>,
    /// A route or a Service changed (outbound answers cross namespaces).
    routes_or_services: bool,
}

impl Changed {
    fn record(&mut self, key: &ObjectKey, object: Option<&MeshObject>) {
        if key.kind == Kind::EndpointSlice {
            if let Some(MeshObject::EndpointSlice(slice)) = object
                && let Some(service) = &slice.service
            {
                self.slice_services
                    .insert((key.namespace.clone(), service.clone()));
            }
            return;
        }
        self.namespaces.insert(key.namespace.clone());
        if matches!(
            key.kind,
            Kind::MeshTLSAuthentication
                | Kind::NetworkAuthentication
                | Kind::HttpRoute
                | Kind::GrpcRoute
        ) {
            self.cross_namespace = true;
        }
        if matches!(key.kind, Kind::Server | Kind::Workload) {
            self.selection_namespaces.insert(key.namespace.clone());
        }
        match (key.kind, object) {
            (Kind::Service, _) => {
                self.services
                    .insert((key.namespace.clone(), key.name.clone()));
                self.routes_or_services = true;
            }
            (Kind::HttpRoute | Kind::GrpcRoute, _) => self.routes_or_services = true,
            (Kind::Workload, Some(MeshObject::Workload(workload))) => {
                self.workloads.push(workload.as_ref().clone());
            }
            _ => {}
        }
    }

    /// Adds the Services whose slices name a changed workload as a pod
    /// (once the batch is applied, so new slices count too).
    fn resolve_pods(&mut self, objects: &Objects) {
        if self.workloads.is_empty() || objects.slices.is_empty() {
            return;
        }
        let pods: Vec<(&str, &str)> = self
            .workloads
            .iter()
            .filter_map(|workload| {
                let name = workload.metadata.name.as_deref()?;
                let namespace = weft_core::service::namespace_or_default(
                    workload.metadata.namespace.as_deref(),
                );
                Some((namespace, name))
            })
            .collect();
        let services = objects.slices.services_serving(&pods);
        self.slice_services.extend(services);
    }

    /// Whether `service:port`'s endpoints may differ: its service or one of
    /// its slices changed, a changed workload is a pod its slices name, or
    /// a changed workload (before or after) is one it selects.
    fn touches_endpoints(&self, target: &ServicePort, service: Option<&Service>) -> bool {
        let ServiceName { namespace, name } = &target.service;
        let key = (namespace.clone(), name.clone());
        if self.slice_services.contains(&key) {
            return true;
        }
        if !self.namespaces.contains(namespace) {
            return false;
        }
        if self.services.contains(&key) {
            return true;
        }
        service.is_some_and(|service| {
            self.workloads
                .iter()
                .any(|workload| selects(service, workload))
        })
    }
}

/// Subscribers to one `service:port`, and the set they were last sent.
#[derive(Debug)]
struct EndpointWatch {
    current: EndpointSet,
    exists: bool,
    subscribers: Vec<mpsc::Sender<EndpointUpdate>>,
}

/// The mesh model and its subscribers.
#[derive(Debug)]
pub struct Catalog {
    cluster_domain: String,
    objects: Objects,
    endpoint_watches: HashMap<EndpointTarget, EndpointWatch>,
    /// Whether every Service's endpoints come from its slices (Kubernetes),
    /// never from its selector.
    endpoints_from_slices: bool,
    profile_watches: HashMap<ProfileTarget, watch::Sender<Option<Arc<Profile>>>>,
    policy_settings: PolicySettings,
    inbound_watches: HashMap<PortTarget, watch::Sender<Arc<PortPolicy>>>,
    outbound_watches: HashMap<ProfileTarget, watch::Sender<Option<Arc<OutboundAnswer>>>>,
}

impl Default for Catalog {
    fn default() -> Self {
        Self::new(DEFAULT_CLUSTER_DOMAIN)
    }
}

impl Catalog {
    /// An empty catalog for this cluster domain (`cluster.local`).
    pub fn new(cluster_domain: &str) -> Self {
        Self {
            cluster_domain: cluster_domain.to_string(),
            objects: Objects::default(),
            endpoint_watches: HashMap::new(),
            endpoints_from_slices: false,
            profile_watches: HashMap::new(),
            policy_settings: PolicySettings::default(),
            inbound_watches: HashMap::new(),
            outbound_watches: HashMap::new(),
        }
    }

    /// The catalog behind a shared lock.
    pub fn shared(self) -> SharedCatalog {
        Arc::new(Mutex::new(self))
    }

    /// The cluster domain names are qualified with.
    pub fn cluster_domain(&self) -> &str {
        &self.cluster_domain
    }

    // ---- changes -------------------------------------------------------

    /// Adds or replaces one object, then publishes what changed.
    pub fn apply(&mut self, object: MeshObject) -> Result<(), CatalogError> {
        self.update(vec![object], Vec::new()).map(drop)
    }

    /// Removes one object (returns whether it existed), then publishes what changed.
    pub fn delete(&mut self, kind: Kind, namespace: &str, name: &str) -> bool {
        let key = ObjectKey::new(kind, namespace, name);
        self.update(Vec::new(), vec![key])
            .is_ok_and(|removed| removed == 1)
    }

    /// Applies a batch — `deleted` keys removed, `applied` objects added or
    /// replaced — then publishes once, recomputing only the watched answers
    /// the changed objects touch. Returns how many deleted keys existed.
    /// Nothing changes when any object is refused.
    pub fn update(
        &mut self,
        applied: Vec<MeshObject>,
        deleted: Vec<ObjectKey>,
    ) -> Result<usize, CatalogError> {
        let keyed = applied
            .into_iter()
            .map(|object| key_of(&object).map(|key| (key, object)))
            .collect::<Result<Vec<_>, _>>()?;
        let targeted = keyed.len() + deleted.len() <= TARGETED_REFRESH_LIMIT;
        let mut changed = Changed::default();
        let mut removed = 0;
        for key in deleted {
            let old = self.objects.remove(&key);
            removed += usize::from(old.is_some());
            if targeted && old.is_some() {
                changed.record(&key, old.as_ref());
            }
        }
        for (key, object) in keyed {
            if targeted {
                changed.record(&key, Some(&object));
            }
            let old = self.objects.insert(key.clone(), object);
            if targeted {
                changed.record(&key, old.as_ref());
            }
        }
        if targeted {
            changed.resolve_pods(&self.objects);
        }
        self.refresh(if targeted {
            Scope::Changed(Box::new(changed))
        } else {
            Scope::All
        });
        Ok(removed)
    }

    /// Replaces everything with `objects` (a source's full state), then
    /// publishes only what changed. Nothing changes when any object is refused.
    pub fn reset(&mut self, objects: Vec<MeshObject>) -> Result<(), CatalogError> {
        let mut fresh = Objects::default();
        let mut seen = std::collections::HashSet::new();
        for object in objects {
            let key = key_of(&object)?;
            if !seen.insert(key.clone()) {
                return Err(CatalogError::Duplicate(key));
            }
            fresh.insert(key, object);
        }
        self.objects = fresh;
        self.refresh(Scope::All);
        Ok(())
    }

    // ---- questions -----------------------------------------------------

    /// Whether the service exists.
    pub fn service_exists(&self, service: &ServiceName) -> bool {
        self.service(service).is_some()
    }

    /// The service object, if any.
    pub fn service(&self, service: &ServiceName) -> Option<&Service> {
        self.objects
            .services
            .get(&(service.namespace.clone(), service.name.clone()))
            .map(AsRef::as_ref)
    }

    /// The endpoints of `service:port`, or `None` when the service does not exist.
    pub fn endpoints(&self, target: &ServicePort) -> Option<EndpointSet> {
        self.endpoints_for(&EndpointTarget::service(target.clone()))
    }

    /// The profile answer for `service:port`, or `None` when the service does not exist.
    pub fn profile(&self, target: &ServicePort) -> Option<Profile> {
        self.profile_for(&ProfileTarget::new(target.clone(), None))
    }

    /// The profile answer for `service:port` as a client in
    /// `client_namespace` sees it: a ServiceProfile named after the service
    /// in the client's namespace takes precedence over the one in the
    /// service's namespace (Linkerd's client-side profiles). The TrafficSplit
    /// comes from the service's namespace. `None` when the service does not exist.
    pub fn profile_for(&self, request: &ProfileTarget) -> Option<Profile> {
        let target = &request.target;
        let service = self.service(&target.service)?;
        let opaque_ports_annotation = service
            .metadata
            .annotations
            .as_ref()
            .and_then(|annotations| annotations.get(profiles::OPAQUE_PORTS_ANNOTATION))
            .map(String::as_str);
        let ServiceName { namespace, name } = &target.service;
        let profile_name = target.service.fully_qualified(&self.cluster_domain);
        let profile = request
            .client_namespace
            .iter()
            .chain([namespace])
            .find_map(|namespace| {
                self.objects
                    .profiles
                    .get(&(namespace.clone(), profile_name.clone()))
            });
        let split = self
            .objects
            .splits
            .range((namespace.clone(), String::new())..)
            .take_while(|((split_namespace, _), _)| split_namespace == namespace)
            .map(|(_, split)| split)
            .find(|split| &split.spec.service == name);
        Some(profile_of(ProfileSources {
            service: &target.service,
            port: target.port,
            profile: profile.map(AsRef::as_ref),
            split: split.map(AsRef::as_ref),
            cluster_domain: &self.cluster_domain,
            opaque_ports_annotation,
        }))
    }

    /// Whether any object (service, workload, profile, split or route) is in `namespace`.
    pub fn namespace_exists(&self, namespace: &str) -> bool {
        let start = (namespace.to_string(), String::new());
        let in_namespace = |key: &NamespacedName| key.0 == namespace;
        self.objects
            .services
            .range(start.clone()..)
            .next()
            .is_some_and(|(key, _)| in_namespace(key))
            || self
                .objects
                .workloads
                .range(start.clone()..)
                .next()
                .is_some_and(|(key, _)| in_namespace(key))
            || self
                .objects
                .profiles
                .range(start.clone()..)
                .next()
                .is_some_and(|(key, _)| in_namespace(key))
            || self
                .objects
                .splits
                .range(start..)
                .next()
                .is_some_and(|(key, _)| in_namespace(key))
            || self.objects.routes.any_in(namespace)
            || self.objects.policy.any_in(namespace)
    }

    // ---- inbound policy ------------------------------------------------

    /// Sets the inbound policy settings (`--default-inbound-policy`,
    /// `--cluster-networks`, identity names) and republishes every answer.
    pub fn set_policy_settings(&mut self, settings: PolicySettings) {
        self.policy_settings = settings;
        self.refresh(Scope::All);
    }

    /// The inbound policy settings.
    pub fn policy_settings(&self) -> &PolicySettings {
        &self.policy_settings
    }

    /// The Workload `namespace/name`, if any.
    pub fn workload(&self, namespace: &str, name: &str) -> Option<&Workload> {
        self.objects
            .workloads
            .get(&(namespace.to_string(), name.to_string()))
            .map(AsRef::as_ref)
    }

    /// The effective inbound policy of one port of one workload (the
    /// default policy when nothing selects it, or the workload is unknown).
    pub fn inbound_policy(&self, target: &PortTarget) -> PortPolicy {
        self.inbound_policy_with(target, None)
    }

    /// [`Self::inbound_policy`], given the Servers known to select the port
    /// (oldest first) when no Server or Workload of its namespace changed.
    fn inbound_policy_with(&self, target: &PortTarget, selection: Option<&[String]>) -> PortPolicy {
        policy::port_policy(&policy::PortSources {
            target,
            workload: self.workload(&target.namespace, &target.workload),
            store: &self.objects.policy,
            settings: &self.policy_settings,
            routes: &self.objects.routes,
            selection,
        })
    }

    /// The ports of a workload with a policy to show: its declared ports
    /// and the ports Servers of its namespace select on it, sorted.
    pub fn inbound_ports(&self, namespace: &str, name: &str) -> Vec<u16> {
        let Some(workload) = self.workload(namespace, name) else {
            return Vec::new();
        };
        let mut ports: Vec<u16> = workload
            .spec
            .ports
            .iter()
            .map(|port| port.port)
            .chain(
                self.objects
                    .policy
                    .servers_in(namespace)
                    .into_iter()
                    .filter_map(|server| server.port_on(workload)),
            )
            .collect();
        ports.sort_unstable();
        ports.dedup();
        ports
    }

    /// How many Servers the catalog holds.
    pub fn server_count(&self) -> usize {
        self.objects.policy.server_count()
    }

    /// Subscribes to the inbound policy of a port: the receiver holds the
    /// current answer and sees each new one once it changes (never the same
    /// answer twice).
    pub fn subscribe_inbound(&mut self, target: &PortTarget) -> watch::Receiver<Arc<PortPolicy>> {
        if let Some(sender) = self.inbound_watches.get(target) {
            return sender.subscribe();
        }
        let answer = self.inbound_policy(target);
        log_notes(target, &answer);
        let (sender, receiver) = watch::channel(Arc::new(answer));
        self.inbound_watches.insert(target.clone(), sender);
        receiver
    }

    /// Forgets the inbound watch of `target` once no receiver is left. Call
    /// it after dropping a receiver from [`Self::subscribe_inbound`].
    pub fn release_inbound(&mut self, target: &PortTarget) {
        release_watch(&mut self.inbound_watches, target);
    }

    /// How many ports have inbound policy subscribers.
    pub fn inbound_subscriptions(&self) -> usize {
        self.inbound_watches.len()
    }

    /// The HTTPRoutes attached to `service:port` (parent kind Service) in
    /// the Service's namespace: the producer routes every client gets.
    pub fn http_routes_for(&self, target: &ServicePort) -> Vec<&HttpRoute> {
        self.objects
            .routes
            .http_routes_for(&target.service, target.port, None)
    }

    /// The GRPCRoutes attached to `service:port` (parent kind Service) in
    /// the Service's namespace.
    pub fn grpc_routes_for(&self, target: &ServicePort) -> Vec<&GrpcRoute> {
        self.objects
            .routes
            .grpc_routes_for(&target.service, target.port, None)
    }

    /// The HTTPRoutes attached to the Server `namespace/name` (parent kind Server).
    pub fn http_routes_for_server(&self, namespace: &str, name: &str) -> Vec<&HttpRoute> {
        self.objects.routes.http_routes_for_server(namespace, name)
    }

    /// The HTTPRoutes, sorted by namespace and name, optionally of one namespace.
    pub fn http_routes(&self, namespace: Option<&str>) -> Vec<HttpRoute> {
        self.objects.routes.http_routes(namespace)
    }

    /// The Services of `namespace`, copied, sorted by name.
    pub fn services_in(&self, namespace: &str) -> Vec<Service> {
        self.objects
            .services
            .range((namespace.to_string(), String::new())..)
            .take_while(|((service_namespace, _), _)| service_namespace == namespace)
            .map(|(_, service)| service.as_ref().clone())
            .collect()
    }

    /// The ServiceProfile named `name` (a service's FQDN) in `namespace`.
    pub fn service_profile(&self, namespace: &str, name: &str) -> Option<&ServiceProfile> {
        self.objects
            .profiles
            .get(&(namespace.to_string(), name.to_string()))
            .map(AsRef::as_ref)
    }

    /// The TrafficSplits, sorted by namespace and name, optionally of one namespace.
    pub fn traffic_splits(&self, namespace: Option<&str>) -> Vec<TrafficSplit> {
        self.objects
            .splits
            .iter()
            .filter(|((split_namespace, _), _)| {
                namespace.is_none_or(|wanted| split_namespace == wanted)
            })
            .map(|(_, split)| split.as_ref().clone())
            .collect()
    }

    /// Every Workload of the catalog, copied.
    pub fn workloads(&self) -> Vec<Workload> {
        self.map_workloads(|workload| Some(workload.clone()))
    }

    /// What `pick` takes from each workload (in namespace and name order),
    /// without copying the workloads: with tens of thousands of pods, a
    /// full copy per question is megabytes the allocator keeps.
    pub fn map_workloads<T>(&self, mut pick: impl FnMut(&Workload) -> Option<T>) -> Vec<T> {
        self.objects
            .workloads
            .values()
            .filter_map(|workload| pick(workload))
            .collect()
    }

    /// The workload serving at `address`: one with that IP declaring that
    /// port; else the only workload with that IP and an owner (a Kubernetes
    /// pod: pods seldom declare their ports, and a pod IP is the pod's
    /// own); else the only workload with that IP. The endpoint carries `address`.
    pub fn workload_at(&self, address: SocketAddr) -> Option<Endpoint> {
        let with_ip: Vec<(&NamespacedName, &Workload)> = self
            .objects
            .workloads
            .iter()
            .filter(|(_, workload)| workload.spec.addresses.contains(&address.ip()))
            .map(|(name, workload)| (name, workload.as_ref()))
            .collect();
        let chosen = with_ip
            .iter()
            .find(|(_, workload)| workload.has_port(address.port()))
            .or_else(|| {
                only_one(
                    with_ip
                        .iter()
                        .filter(|(_, workload)| workload.spec.owner.is_some()),
                )
            })
            .or_else(|| only_one(with_ip.iter()))?;
        let ((namespace, _), workload) = chosen;
        Some(Endpoint::new(workload, namespace, address))
    }

    /// The service whose virtual IP (`clusterIP`) is `ip`, if any.
    pub fn service_at(&self, ip: IpAddr) -> Option<ServiceName> {
        self.objects
            .services
            .iter()
            .find(|(_, service)| cluster_ips(service).contains(&ip))
            .map(|((namespace, name), _)| ServiceName::new(namespace.clone(), name.clone()))
    }

    // ---- subscriptions -------------------------------------------------

    /// Subscribes to `service:port`: the receiver gets the current set first
    /// (`Add`, or `NoEndpoints{exists}`), then only diffs. A closed channel
    /// means the subscriber fell more than [`SUBSCRIBER_QUEUE_CAPACITY`]
    /// updates behind; resubscribe.
    pub fn subscribe_endpoints(&mut self, target: &ServicePort) -> mpsc::Receiver<EndpointUpdate> {
        self.subscribe_endpoints_for(&EndpointTarget::service(target.clone()))
    }

    /// [`Self::subscribe_endpoints`] for a service or one instance of it
    /// (its endpoint hostname).
    pub fn subscribe_endpoints_for(
        &mut self,
        target: &EndpointTarget,
    ) -> mpsc::Receiver<EndpointUpdate> {
        let (sender, receiver) = mpsc::channel(SUBSCRIBER_QUEUE_CAPACITY);
        if !self.endpoint_watches.contains_key(target) {
            let current = self.endpoints_for(target);
            let exists = current.is_some();
            let watch = EndpointWatch {
                current: current.unwrap_or_default(),
                exists,
                subscribers: Vec::new(),
            };
            self.endpoint_watches.insert(target.clone(), watch);
        }
        if let Some(watch) = self.endpoint_watches.get_mut(target) {
            // A fresh channel has room for the snapshot.
            let _ = sender.try_send(snapshot(&watch.current, watch.exists));
            // Subscribers that went away are otherwise only noticed on the next change.
            watch
                .subscribers
                .retain(|subscriber| !subscriber.is_closed());
            watch.subscribers.push(sender);
        }
        receiver
    }

    /// Subscribes to the profile of `service:port` as a client in the
    /// request's namespace sees it (`None` while the service does not
    /// exist); the receiver sees each new answer once it changes.
    pub fn subscribe_profile(
        &mut self,
        request: &ProfileTarget,
    ) -> watch::Receiver<Option<Arc<Profile>>> {
        if let Some(sender) = self.profile_watches.get(request) {
            return sender.subscribe();
        }
        let (sender, receiver) = watch::channel(self.profile_for(request).map(Arc::new));
        self.profile_watches.insert(request.clone(), sender);
        receiver
    }

    /// How many `service:port`s have endpoint subscribers (after pruning closed ones).
    pub fn endpoint_subscriptions(&self) -> usize {
        self.endpoint_watches.len()
    }

    /// How many profile questions have subscribers.
    pub fn profile_subscriptions(&self) -> usize {
        self.profile_watches.len()
    }

    /// Forgets the subscribers of `service:port` whose receivers are gone,
    /// and the watch itself once none is left, so a name asked once (even
    /// one that never exists) costs nothing after its last client leaves.
    /// Call it after dropping a receiver from [`Self::subscribe_endpoints`].
    pub fn release_endpoints(&mut self, target: &ServicePort) {
        self.release_endpoints_for(&EndpointTarget::service(target.clone()));
    }

    /// [`Self::release_endpoints`] for a service or one instance of it.
    pub fn release_endpoints_for(&mut self, target: &EndpointTarget) {
        let Some(watch) = self.endpoint_watches.get_mut(target) else {
            return;
        };
        watch
            .subscribers
            .retain(|subscriber| !subscriber.is_closed());
        if watch.subscribers.is_empty() {
            self.endpoint_watches.remove(target);
        }
    }

    /// Forgets the profile watch of `request` once no receiver is left. Call
    /// it after dropping a receiver from [`Self::subscribe_profile`].
    pub fn release_profile(&mut self, request: &ProfileTarget) {
        release_watch(&mut self.profile_watches, request);
    }

    /// Recomputes the watched answers `scope` may have altered and publishes changes.
    fn refresh(&mut self, scope: Scope) {
        self.refresh_outbound(&scope);
        let targets: Vec<EndpointTarget> = self
            .endpoint_watches
            .keys()
            .filter(|request| match &scope {
                Scope::All => true,
                Scope::Changed(changed) => changed
                    .touches_endpoints(&request.target, self.service(&request.target.service)),
            })
            .cloned()
            .collect();
        for target in targets {
            let fresh = self.endpoints_for(&target);
            let Some(watch) = self.endpoint_watches.get_mut(&target) else {
                continue;
            };
            let exists = fresh.is_some();
            let fresh = fresh.unwrap_or_default();
            let updates = diff(&watch.current, watch.exists, &fresh, exists);
            watch.current = fresh;
            watch.exists = exists;
            watch.subscribers.retain(|subscriber| {
                updates
                    .iter()
                    .all(|update| subscriber.try_send(update.clone()).is_ok())
                    && !subscriber.is_closed()
            });
            if watch.subscribers.is_empty() {
                self.endpoint_watches.remove(&target);
            }
        }
        let targets: Vec<ProfileTarget> = self
            .profile_watches
            .keys()
            .filter(|request| match &scope {
                Scope::All => true,
                Scope::Changed(changed) => request
                    .namespaces()
                    .any(|namespace| changed.namespaces.contains(namespace)),
            })
            .cloned()
            .collect();
        for target in targets {
            let fresh = self.profile_for(&target);
            publish_if_changed(&mut self.profile_watches, &target, fresh);
        }
        let targets: Vec<PortTarget> = self
            .inbound_watches
            .keys()
            .filter(|target| match &scope {
                Scope::All => true,
                Scope::Changed(changed) => {
                    changed.cross_namespace || changed.namespaces.contains(&target.namespace)
                }
            })
            .cloned()
            .collect();
        for target in targets {
            // A policy edit leaves the selecting Servers as they were: look
            // them up by name instead of matching every Server again.
            let known = match &scope {
                Scope::Changed(changed)
                    if !changed.selection_namespaces.contains(&target.namespace) =>
                {
                    self.inbound_watches
                        .get(&target)
                        .map(|sender| sender.borrow().selection.clone())
                }
                _ => None,
            };
            let fresh = self.inbound_policy_with(&target, known.as_deref());
            let Some(sender) = live_sender(&mut self.inbound_watches, &target) else {
                continue;
            };
            sender.send_if_modified(|current| {
                if **current == fresh {
                    return false;
                }
                log_notes(&target, &fresh);
                *current = Arc::new(fresh);
                true
            });
        }
    }
}

/// The single item of `items`, or `None` when there are none or several.
fn only_one<T>(mut items: impl Iterator<Item = T>) -> Option<T> {
    let first = items.next()?;
    items.next().is_none().then_some(first)
}

/// Forgets `key`'s watch once no receiver is left.
fn release_watch<K: Hash + Eq, V>(watches: &mut HashMap<K, watch::Sender<V>>, key: &K) {
    if watches.get(key).is_some_and(watch::Sender::is_closed) {
        watches.remove(key);
    }
}

/// The sender of `key`'s watch while it has receivers; a watch without
/// any is forgotten.
fn live_sender<'a, K: Hash + Eq, V>(
    watches: &'a mut HashMap<K, watch::Sender<V>>,
    key: &K,
) -> Option<&'a watch::Sender<V>> {
    if watches.get(key)?.is_closed() {
        watches.remove(key);
        return None;
    }
    watches.get(key)
}

/// Sends `fresh` on `key`'s watch unless it is the answer its receivers
/// already hold (never the same answer twice).
fn publish_if_changed<K: Hash + Eq, V: PartialEq>(
    watches: &mut HashMap<K, watch::Sender<Option<Arc<V>>>>,
    key: &K,
    fresh: Option<V>,
) {
    let Some(sender) = live_sender(watches, key) else {
        return;
    };
    sender.send_if_modified(|current| {
        if current.as_deref() == fresh.as_ref() {
            return false;
        }
        *current = fresh.map(Arc::new);
        true
    });
}

/// Logs what a watched inbound answer ignored (a shadowed Server, a policy
/// naming a missing authentication): once per new answer, not per request.
fn log_notes(target: &PortTarget, answer: &PortPolicy) {
    for note in &answer.policy.notes {
        tracing::info!(
            namespace = %target.namespace,
            workload = %target.workload,
            port = target.port,
            "inbound policy: {note}"
        );
    }
}

fn key_of(object: &MeshObject) -> Result<ObjectKey, CatalogError> {
    object.key().map_err(|source| CatalogError::InvalidObject {
        kind: object.kind(),
        source,
    })
}

#[cfg(test)]
mod slice_tests;
#[cfg(test)]
mod tests;
