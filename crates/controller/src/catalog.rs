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
//! Share it as [`SharedCatalog`]; hold the lock only for one call.

mod endpoints;
mod profiles;

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::Service;
use tokio::sync::{mpsc, watch};
use weft_core::names::{DEFAULT_CLUSTER_DOMAIN, ServiceName};
use weft_core::object::{Kind, MeshObject, ObjectError, ObjectKey};
use weft_core::profile::ServiceProfile;
use weft_core::service::cluster_ips;
use weft_core::split::TrafficSplit;
use weft_core::workload::Workload;

pub use endpoints::{Endpoint, EndpointSet, EndpointUpdate, diff, endpoints_of, snapshot};
pub use profiles::{OPAQUE_PORTS_ANNOTATION, Profile, ProfileSources, lists_port, profile_of};

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

/// (namespace, name) — the key within one kind's map.
type NamespacedName = (String, String);

/// The objects, one map per kind, ordered so namespace scans are ranges.
#[derive(Debug, Default, Clone)]
struct Objects {
    services: BTreeMap<NamespacedName, Service>,
    workloads: BTreeMap<NamespacedName, Workload>,
    profiles: BTreeMap<NamespacedName, ServiceProfile>,
    splits: BTreeMap<NamespacedName, TrafficSplit>,
}

impl Objects {
    fn insert(&mut self, key: ObjectKey, object: MeshObject) {
        let name = (key.namespace, key.name);
        match object {
            MeshObject::Service(service) => drop(self.services.insert(name, *service)),
            MeshObject::Workload(workload) => drop(self.workloads.insert(name, *workload)),
            MeshObject::ServiceProfile(profile) => drop(self.profiles.insert(name, *profile)),
            MeshObject::TrafficSplit(split) => drop(self.splits.insert(name, *split)),
        }
    }

    fn remove(&mut self, kind: Kind, namespace: &str, name: &str) -> bool {
        let name = (namespace.to_string(), name.to_string());
        match kind {
            Kind::Service => self.services.remove(&name).is_some(),
            Kind::Workload => self.workloads.remove(&name).is_some(),
            Kind::ServiceProfile => self.profiles.remove(&name).is_some(),
            Kind::TrafficSplit => self.splits.remove(&name).is_some(),
        }
    }

    fn workloads_in<'a>(&'a self, namespace: &'a str) -> impl Iterator<Item = &'a Workload> + 'a {
        self.workloads
            .range((namespace.to_string(), String::new())..)
            .take_while(move |((workload_namespace, _), _)| workload_namespace == namespace)
            .map(|(_, workload)| workload)
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
    endpoint_watches: HashMap<ServicePort, EndpointWatch>,
    profile_watches: HashMap<ServicePort, watch::Sender<Option<Arc<Profile>>>>,
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
            profile_watches: HashMap::new(),
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
        let key = key_of(&object)?;
        let namespace = key.namespace.clone();
        self.objects.insert(key, object);
        self.refresh(Some(&namespace));
        Ok(())
    }

    /// Removes one object (returns whether it existed), then publishes what changed.
    pub fn delete(&mut self, kind: Kind, namespace: &str, name: &str) -> bool {
        let existed = self.objects.remove(kind, namespace, name);
        if existed {
            self.refresh(Some(namespace));
        }
        existed
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
        self.refresh(None);
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
    }

    /// The endpoints of `service:port`, or `None` when the service does not exist.
    pub fn endpoints(&self, target: &ServicePort) -> Option<EndpointSet> {
        let service = self.service(&target.service)?;
        let namespace = &target.service.namespace;
        Some(endpoints_of(
            service,
            namespace,
            target.port,
            self.objects.workloads_in(namespace),
        ))
    }

    /// The profile answer for `service:port`, or `None` when the service does not exist.
    pub fn profile(&self, target: &ServicePort) -> Option<Profile> {
        let service = self.service(&target.service)?;
        let opaque_ports_annotation = service
            .metadata
            .annotations
            .as_ref()
            .and_then(|annotations| annotations.get(profiles::OPAQUE_PORTS_ANNOTATION))
            .map(String::as_str);
        let ServiceName { namespace, name } = &target.service;
        let profile_name = target.service.fully_qualified(&self.cluster_domain);
        let profile = self
            .objects
            .profiles
            .get(&(namespace.clone(), profile_name));
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
            profile,
            split,
            cluster_domain: &self.cluster_domain,
            opaque_ports_annotation,
        }))
    }

    /// The workload serving at `address`: one with that IP declaring that
    /// port, else the only workload with that IP. The endpoint carries `address`.
    pub fn workload_at(&self, address: SocketAddr) -> Option<Endpoint> {
        let with_ip: Vec<(&NamespacedName, &Workload)> = self
            .objects
            .workloads
            .iter()
            .filter(|(_, workload)| workload.spec.addresses.contains(&address.ip()))
            .collect();
        let chosen = with_ip
            .iter()
            .find(|(_, workload)| workload.has_port(address.port()))
            .or_else(|| {
                if with_ip.len() == 1 {
                    with_ip.first()
                } else {
                    None
                }
            })?;
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
        let (sender, receiver) = mpsc::channel(SUBSCRIBER_QUEUE_CAPACITY);
        if !self.endpoint_watches.contains_key(target) {
            let current = self.endpoints(target);
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

    /// Subscribes to the profile of `service:port` (`None` while the service
    /// does not exist); the receiver sees each new answer once it changes.
    pub fn subscribe_profile(
        &mut self,
        target: &ServicePort,
    ) -> watch::Receiver<Option<Arc<Profile>>> {
        if let Some(sender) = self.profile_watches.get(target) {
            return sender.subscribe();
        }
        let (sender, receiver) = watch::channel(self.profile(target).map(Arc::new));
        self.profile_watches.insert(target.clone(), sender);
        receiver
    }

    /// How many `service:port`s have endpoint subscribers (after pruning closed ones).
    pub fn endpoint_subscriptions(&self) -> usize {
        self.endpoint_watches.len()
    }

    /// Recomputes watched answers (in one namespace, or all) and publishes changes.
    fn refresh(&mut self, namespace: Option<&str>) {
        let in_scope = |target: &ServicePort| {
            namespace.is_none_or(|namespace| target.service.namespace == namespace)
        };
        let targets: Vec<ServicePort> = self
            .endpoint_watches
            .keys()
            .filter(|target| in_scope(target))
            .cloned()
            .collect();
        for target in targets {
            let fresh = self.endpoints(&target);
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
        let targets: Vec<ServicePort> = self
            .profile_watches
            .keys()
            .filter(|target| in_scope(target))
            .cloned()
            .collect();
        for target in targets {
            let fresh = self.profile(&target);
            let Some(sender) = self.profile_watches.get(&target) else {
                continue;
            };
            if sender.is_closed() {
                self.profile_watches.remove(&target);
                continue;
            }
            sender.send_if_modified(|current| {
                if current.as_deref() == fresh.as_ref() {
                    return false;
                }
                *current = fresh.map(Arc::new);
                true
            });
        }
    }
}

fn key_of(object: &MeshObject) -> Result<ObjectKey, CatalogError> {
    object.key().map_err(|source| CatalogError::InvalidObject {
        kind: object.kind(),
        source,
    })
}

#[cfg(test)]
mod tests;
