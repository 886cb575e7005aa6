//! The Kubernetes source: the API client (`--kubernetes`, `--kubeconfig`,
//! `--kube-context`) and, from it, the watches that feed the catalog the
//! same objects a mesh file would.
//!
//! ```text
//! watcher(Namespaces)             ─┐  (pods start once these three listed, or after 5 s)
//! watcher(ReplicaSets, meta only) ─┤
//! watcher(Jobs, meta only)        ─┤
//! watcher(Services, EndpointSlices, Pods)          ─┼─ convert at once ─► Index ─► Catalog::update
//! watcher(DynamicObject: ServiceProfile, Server,   ─┘  (k8s object dropped)   │
//!         TrafficSplit, policy kinds, routes, Workload)                       └─► KubernetesStatus (/ready), metrics
//! ```
//!
//! No reflector stores: each event is converted into weft-core's lean types
//! ([`pod`], [`objects`]) and the Kubernetes object dropped; [`index`]
//! remembers only keys, pods' mesh annotations and owner references, and
//! owner names. Relists (start, 410 Gone) replace what a resource held in
//! one catalog update. A custom resource that is not installed (404) is
//! logged once, treated as empty and retried with backoff; it does not hold
//! readiness back. A bad object is logged (at most every 10 s per resource)
//! and counted; it never stops the source.

pub mod index;
pub mod namespaces;
pub mod objects;
pub mod owners;
pub mod pod;
pub mod status;

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use futures::stream::{BoxStream, SelectAll};
use futures::{Stream, StreamExt};
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::ResourceExt;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, PartialObjectMeta};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use prometheus_client::registry::Registry;
use serde::de::DeserializeOwned;

use crate::catalog::SharedCatalog;
use crate::config::KubernetesArgs;

pub use index::{Converted, Index, NamespacedName, Rejected, Update};
pub use status::{
    KubernetesMetrics, KubernetesStatus, Resource, ResourceStatus, SharedKubernetesStatus,
};

/// How long pods wait for the first lists of namespaces, ReplicaSets and
/// Jobs before their watch starts anyway (owners arriving later rebuild them).
const POD_START_PATIENCE: Duration = Duration::from_secs(5);
/// Bad objects are logged at most this often per resource (all are counted).
const REJECTED_LOG_INTERVAL: Duration = Duration::from_secs(10);
/// After a relist of at least this many objects, freed memory is handed back.
const RELEASE_MEMORY_AFTER_OBJECTS: usize = 1_000;
/// Objects per list page: a page is decoded whole, so this bounds the
/// memory a list takes (and the holes it leaves among long-lived objects).
const PAGE_SIZE: u32 = 100;

/// Why the Kubernetes API client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// `--kubeconfig` cannot be read or parsed.
    #[error("--kubeconfig {path}: {source}")]
    Kubeconfig {
        /// The file.
        path: String,
        /// Why.
        source: kube::config::KubeconfigError,
    },
    /// No configuration could be found (not in a cluster, no kubeconfig).
    #[error("no Kubernetes configuration: {0}")]
    Infer(#[from] kube::config::InferConfigError),
    /// The configuration names no usable cluster or context.
    #[error("Kubernetes configuration: {0}")]
    Config(#[from] kube::config::KubeconfigError),
    /// The client could not be built from the configuration.
    #[error("Kubernetes client: {0}")]
    Client(#[from] kube::Error),
}

/// The API client the flags describe: `--kubeconfig` (and `--kube-context`)
/// when given, else the in-cluster ServiceAccount, else `$KUBECONFIG` or
/// `~/.kube/config`.
pub async fn connect(args: &KubernetesArgs) -> Result<kube::Client, ConnectError> {
    let options = KubeConfigOptions {
        context: args.kube_context.clone(),
        ..KubeConfigOptions::default()
    };
    let config = match &args.kubeconfig {
        Some(path) => {
            let kubeconfig =
                Kubeconfig::read_from(path).map_err(|source| ConnectError::Kubeconfig {
                    path: path.display().to_string(),
                    source,
                })?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &options).await?
        }
        None if args.kube_context.is_some() => kube::Config::from_kubeconfig(&options).await?,
        None => kube::Config::infer().await?,
    };
    Ok(kube::Client::try_from(config)?)
}

/// One watch's items: its resource and a converted update, or an error.
type Watch = BoxStream<'static, (Resource, Result<Update, watcher::Error>)>;

/// The Kubernetes source feeding a catalog.
pub struct KubernetesSource {
    client: kube::Client,
    index: Index,
    status: SharedKubernetesStatus,
    metrics: KubernetesMetrics,
    /// Per resource: when a rejected object was last logged, and how many since.
    rejected_log: std::collections::HashMap<Resource, (Option<Instant>, u64)>,
}

impl KubernetesSource {
    /// A source reading through `client` into `catalog`; its metrics go to
    /// `registry`. Nothing is watched until [`run`](Self::run).
    pub fn new(client: kube::Client, catalog: SharedCatalog, registry: &mut Registry) -> Self {
        // On Kubernetes a Service's endpoints come from its EndpointSlices only.
        catalog
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .set_endpoints_from_slices(true);
        Self {
            client,
            index: Index::new(catalog),
            status: Arc::new(std::sync::Mutex::new(KubernetesStatus::new())),
            metrics: KubernetesMetrics::new(registry),
            rejected_log: std::collections::HashMap::new(),
        }
    }

    /// The annotated namespaces' annotations (`weft.io/inject`, `config.*`),
    /// kept current while the source runs: the proxy injector's.
    pub fn namespace_handle(&self) -> namespaces::NamespaceAnnotations {
        self.index.namespace_handle()
    }

    /// The live status, for `/ready`.
    pub fn status_handle(&self) -> SharedKubernetesStatus {
        Arc::clone(&self.status)
    }

    /// Watches every resource until `shutdown` completes.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) {
        let mut watches: SelectAll<Watch> = SelectAll::new();
        for resource in Resource::ALL {
            if resource != Resource::Pods {
                watches.push(watch_of(&self.client, resource));
            }
        }
        let mut pods_started = false;
        let mut shutdown = pin!(shutdown);
        let mut patience = pin!(tokio::time::sleep(POD_START_PATIENCE));
        loop {
            if !pods_started && self.owners_listed() {
                pods_started = true;
                watches.push(watch_of(&self.client, Resource::Pods));
            }
            tokio::select! {
                () = &mut shutdown => break,
                () = &mut patience, if !pods_started => {
                    tracing::info!("namespaces, ReplicaSets or Jobs not listed yet; watching pods anyway");
                    pods_started = true;
                    watches.push(watch_of(&self.client, Resource::Pods));
                }
                item = watches.next() => match item {
                    Some((resource, Ok(update))) => self.on_update(resource, update),
                    Some((resource, Err(error))) => self.on_error(resource, &error),
                    // Watches never end; nothing left to do but wait.
                    None => {
                        shutdown.await;
                        break;
                    }
                },
            }
        }
    }

    /// Whether namespaces, ReplicaSets and Jobs have been listed once (pods
    /// are then converted with their namespace and owners known).
    fn owners_listed(&self) -> bool {
        let status = status::lock_status(&self.status);
        [Resource::Namespaces, Resource::ReplicaSets, Resource::Jobs]
            .iter()
            .all(|resource| {
                status
                    .resources
                    .get(resource.name())
                    .is_some_and(|entry| entry.listed)
            })
    }

    fn on_update(&mut self, resource: Resource, update: Update) {
        self.metrics
            .events
            .get_or_create(&status::EventLabels {
                resource: resource.name(),
                r#type: update.label(),
            })
            .inc();
        let done = matches!(update, Update::ListDone);
        let rejected = self.index.handle(resource, update);
        if !rejected.is_empty() {
            self.log_rejected(resource, &rejected);
        }
        let count = self.index.count(resource);
        if done && count >= RELEASE_MEMORY_AFTER_OBJECTS {
            // The list's pages are freed: hand their memory back.
            crate::memory::release_freed();
        }
        let mut status = status::lock_status(&self.status);
        let was_ready = status.is_ready();
        if let Some(entry) = status.resources.get_mut(resource.name()) {
            if done {
                if !entry.listed {
                    tracing::info!(
                        resource = resource.name(),
                        objects = self.index.count(resource),
                        "listed"
                    );
                }
                entry.listed = true;
                entry.absent = false;
            }
            entry.last_error = None;
            entry.objects = self.index.count(resource);
            entry.rejected += rejected.len() as u64;
        }
        if !was_ready && status.is_ready() {
            drop(status);
            tracing::info!("every resource listed");
            // The first lists' pages are all freed now.
            crate::memory::release_freed();
        }
    }

    fn on_error(&mut self, resource: Resource, error: &watcher::Error) {
        self.metrics
            .errors
            .get_or_create(&status::ResourceLabels {
                resource: resource.name(),
            })
            .inc();
        let absent = resource.custom().is_some() && is_not_found(error);
        let was_absent = {
            let mut status = status::lock_status(&self.status);
            let Some(entry) = status.resources.get_mut(resource.name()) else {
                return;
            };
            let was_absent = entry.absent;
            entry.absent = absent;
            entry.last_error = Some(error.to_string());
            entry.last_error_at = Some(SystemTime::now());
            was_absent
        };
        if absent {
            if !was_absent {
                tracing::info!(
                    resource = resource.name(),
                    "not installed (404): treated as empty; retrying with backoff"
                );
                // Whatever it held is gone with its definition.
                self.index.handle(resource, Update::Init);
                self.index.handle(resource, Update::ListDone);
                let mut status = status::lock_status(&self.status);
                if let Some(entry) = status.resources.get_mut(resource.name()) {
                    entry.objects = 0;
                }
            }
        } else {
            tracing::warn!(resource = resource.name(), %error, "watch failed; retrying with backoff");
        }
    }

    fn log_rejected(&mut self, resource: Resource, rejected: &[Rejected]) {
        self.metrics
            .rejected
            .get_or_create(&status::ResourceLabels {
                resource: resource.name(),
            })
            .inc_by(rejected.len() as u64);
        let now = Instant::now();
        let (last, suppressed) = self.rejected_log.entry(resource).or_insert((None, 0));
        if last.is_some_and(|last| now.duration_since(last) < REJECTED_LOG_INTERVAL) {
            *suppressed += rejected.len() as u64;
            return;
        }
        if let Some(object) = rejected.first() {
            tracing::warn!(
                resource = resource.name(),
                namespace = %object.name.0,
                name = %object.name.1,
                reason = %object.reason,
                others = rejected.len() - 1,
                suppressed = *suppressed,
                "object refused (logged at most every 10 s per resource)"
            );
        }
        *last = Some(now);
        *suppressed = 0;
    }
}

/// Whether a watch error is the API's 404: the resource is not served.
fn is_not_found(error: &watcher::Error) -> bool {
    match error {
        watcher::Error::InitialListFailed(kube::Error::Api(status))
        | watcher::Error::WatchStartFailed(kube::Error::Api(status))
        | watcher::Error::WatchFailed(kube::Error::Api(status)) => status.code == 404,
        watcher::Error::WatchError(status) => status.code == 404,
        _ => false,
    }
}

/// The watch of `resource`, converting each object at once.
fn watch_of(client: &kube::Client, resource: Resource) -> Watch {
    let client = client.clone();
    let config = watcher::Config::default().page_size(PAGE_SIZE);
    match resource {
        Resource::Namespaces => converting(
            Api::<Namespace>::all(client),
            config,
            resource,
            |namespace| {
                Converted::Namespace(
                    namespace.name_any(),
                    pod::namespace_annotations(namespace.metadata.annotations.as_ref()),
                )
            },
        ),
        Resource::Services => {
            converting(Api::<Service>::all(client), config, resource, |service| {
                let name = key_of(&service);
                Converted::Object(name, objects::lean_service(service))
            })
        }
        Resource::EndpointSlices => converting(
            Api::<EndpointSlice>::all(client),
            config,
            resource,
            |slice| Converted::Object(key_of(&slice), objects::lean_slice(&slice)),
        ),
        Resource::Pods => converting(Api::<Pod>::all(client), config, resource, |pod| {
            Converted::Pod(key_of(&pod), pod::pod_facts(&pod).map(Box::new))
        }),
        Resource::ReplicaSets => converting(
            Api::<PartialObjectMeta<ReplicaSet>>::all(client),
            config,
            resource,
            |meta| {
                let owner = owners::controller_owner(
                    owners::OwnedKind::ReplicaSet,
                    meta.metadata.owner_references.as_ref(),
                );
                Converted::Owned(key_of(&meta), owner)
            },
        ),
        Resource::Jobs => converting(
            Api::<PartialObjectMeta<Job>>::all(client),
            config,
            resource,
            |meta| {
                let owner = owners::controller_owner(
                    owners::OwnedKind::Job,
                    meta.metadata.owner_references.as_ref(),
                );
                Converted::Owned(key_of(&meta), owner)
            },
        ),
        custom => {
            let (Some(coordinates), Some(kind)) = (custom.custom(), custom.catalog_kind()) else {
                return futures::stream::empty().boxed();
            };
            let gvk =
                GroupVersionKind::gvk(coordinates.group, coordinates.version, coordinates.kind);
            let api_resource = ApiResource::from_gvk_with_plural(&gvk, coordinates.plural);
            let api_version = coordinates.api_version();
            converting(
                Api::<DynamicObject>::all_with(client, &api_resource),
                config,
                resource,
                move |object| {
                    let converted =
                        objects::from_dynamic(&object, &api_version, kind, coordinates.kind);
                    Converted::Object(key_of(&object), converted)
                },
            )
        }
    }
}

/// A watcher of `api` (with the default backoff after errors) whose objects
/// `convert` turns into [`Converted`] as they arrive.
fn converting<K>(
    api: Api<K>,
    config: watcher::Config,
    resource: Resource,
    convert: impl Fn(K) -> Converted + Send + 'static,
) -> Watch
where
    K: kube::Resource + Clone + DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    let events: std::pin::Pin<Box<dyn Stream<Item = Result<Event<K>, watcher::Error>> + Send>> =
        Box::pin(watcher::watcher(api, config));
    events
        .default_backoff()
        .map(move |result| {
            let update = result.map(|event| match event {
                Event::Init => Update::Init,
                Event::InitApply(object) => Update::Listed(convert(object)),
                Event::InitDone => Update::ListDone,
                Event::Apply(object) => Update::Applied(convert(object)),
                Event::Delete(object) => Update::Deleted(key_of(&object)),
            });
            (resource, update)
        })
        .boxed()
}

/// (namespace, name) of an object (namespace empty for cluster objects).
fn key_of<K: kube::Resource>(object: &K) -> NamespacedName {
    let metadata = object.meta();
    (
        metadata.namespace.clone().unwrap_or_default(),
        metadata.name.clone().unwrap_or_default(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;

    fn api_error(code: u16) -> watcher::Error {
        let status: kube::core::Status = serde_json::from_value(serde_json::json!({
            "status": "Failure", "code": code, "reason": "NotFound", "message": "the server could not find the requested resource",
        }))
        .unwrap();
        watcher::Error::InitialListFailed(kube::Error::Api(Box::new(status)))
    }

    /// A source whose client is never used (the tests call its handlers).
    fn source() -> KubernetesSource {
        let config = kube::Config::new("http://127.0.0.1:9".parse().unwrap());
        let client = kube::Client::try_from(config).unwrap();
        KubernetesSource::new(
            client,
            Catalog::default().shared(),
            &mut Registry::default(),
        )
    }

    #[tokio::test]
    async fn an_absent_custom_resource_does_not_hold_readiness_back() {
        let mut source = source();
        for resource in Resource::ALL {
            if resource != Resource::GatewayGrpcRoutes {
                source.on_update(resource, Update::Init);
                source.on_update(resource, Update::ListDone);
            }
        }
        assert!(!status::lock_status(&source.status).is_ready());
        // A 404 for a built-in resource is an error like any other.
        source.on_error(Resource::Pods, &api_error(404));
        assert!(!status::lock_status(&source.status).resources["pods"].absent);
        // For a custom resource it means "not installed": treated as empty.
        source.on_error(Resource::GatewayGrpcRoutes, &api_error(404));
        let status = status::lock_status(&source.status).clone();
        assert!(status.is_ready(), "{status:?}");
        let grpc_routes = &status.resources[Resource::GatewayGrpcRoutes.name()];
        assert!(grpc_routes.absent && !grpc_routes.listed);
        assert!(
            grpc_routes
                .last_error
                .as_deref()
                .is_some_and(|error| error.contains("404") || error.contains("could not find"))
        );
        // Other errors are not absence.
        source.on_error(Resource::Servers, &api_error(500));
        assert!(!status::lock_status(&source.status).resources[Resource::Servers.name()].absent);
        // Installed later: its first list completes.
        source.on_update(Resource::GatewayGrpcRoutes, Update::Init);
        source.on_update(Resource::GatewayGrpcRoutes, Update::ListDone);
        let status = status::lock_status(&source.status).clone();
        let grpc_routes = &status.resources[Resource::GatewayGrpcRoutes.name()];
        assert!(grpc_routes.listed && !grpc_routes.absent && grpc_routes.last_error.is_none());
    }

    #[test]
    fn not_found_is_recognised_in_every_watch_error() {
        assert!(is_not_found(&api_error(404)));
        assert!(!is_not_found(&api_error(403)));
        assert!(!is_not_found(&watcher::Error::NoResourceVersion));
    }
}
